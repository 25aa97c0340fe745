//! Secrets with a literal prefix. The shared aho-corasick automaton reports
//! where a prefix occurs; these functions confirm the rest of the token on
//! a window of a few dozen bytes and validate it.

use super::validators::github_checksum_valid;
use super::{is_word_byte, Span};

pub const AWS_PREFIXES: &[&str] = &["AKIA", "ASIA", "ABIA", "ACCA"];
pub const GITHUB_PREFIXES: &[&str] = &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"];
pub const PEM_PREFIXES: &[&str] = &["-----BEGIN "];

/// Largest PEM block we follow to its END line; a 16 kbit RSA key is ~12 KiB.
const PEM_MAX_BLOCK: usize = 32 * 1024;

fn boundary_before(hay: &[u8], pos: usize) -> bool {
    pos == 0 || !hay[pos - 1].is_ascii_alphanumeric()
}

fn boundary_after(hay: &[u8], end: usize) -> bool {
    end >= hay.len() || !is_word_byte(hay[end])
}

pub fn aws_access_key_id(hay: &[u8], pos: usize) -> Option<Span> {
    let end = pos + 20;
    let token = hay.get(pos..end)?;
    if !boundary_before(hay, pos) || !boundary_after(hay, end) {
        return None;
    }
    // Key ids are base32 (A-Z, 2-7) after the 4-byte prefix.
    if !token[4..]
        .iter()
        .all(|&b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return None;
    }
    // AWS documentation examples (AKIAIOSFODNN7EXAMPLE and friends).
    if token.ends_with(b"EXAMPLE") {
        return None;
    }
    Some(Span { start: pos, end })
}

pub fn github_classic_token(hay: &[u8], pos: usize) -> Option<Span> {
    let end = pos + 40;
    let token = hay.get(pos..end)?;
    if !boundary_before(hay, pos) || !boundary_after(hay, end) {
        return None;
    }
    let body = &token[4..];
    if !body.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let (random, checksum) = body.split_at(30);
    if !github_checksum_valid(random, checksum) {
        return None;
    }
    Some(Span { start: pos, end })
}

/// `-----BEGIN <TYPE>PRIVATE KEY-----` (or `PGP PRIVATE KEY BLOCK`) through
/// the matching END line. Without an END line within the bound, the span
/// covers the header and the base64 body that follows, so a truncated key is
/// still redacted.
pub fn pem_private_key(hay: &[u8], pos: usize) -> Option<Span> {
    let after_begin = pos + PEM_PREFIXES[0].len();
    let window_end = (after_begin + 64).min(hay.len());
    let label_end =
        after_begin + memchr::memmem::find(hay.get(after_begin..window_end)?, b"-----")?;
    let label = &hay[after_begin..label_end];
    let is_private = label.ends_with(b"PRIVATE KEY") || label == b"PGP PRIVATE KEY BLOCK";
    if !is_private
        || !label
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b == b' ' || b.is_ascii_digit())
    {
        return None;
    }
    let body_start = label_end + 5;
    let limit = (pos + PEM_MAX_BLOCK).min(hay.len());
    let region = &hay[body_start..limit];
    let mut end_marker = Vec::with_capacity(label.len() + 14);
    end_marker.extend_from_slice(b"-----END ");
    end_marker.extend_from_slice(label);
    end_marker.extend_from_slice(b"-----");
    if let Some(i) = memchr::memmem::find(region, &end_marker) {
        return Some(Span {
            start: pos,
            end: body_start + i + end_marker.len(),
        });
    }
    // Truncated: take base64, whitespace, header lines and JSON/string
    // escapes of newlines (`\n`).
    let body_len = region
        .iter()
        .position(|&b| {
            !(b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'+' | b'/' | b'=' | b'\n' | b'\r' | b' ' | b'\\' | b':' | b'-' | b','
                ))
        })
        .unwrap_or(region.len());
    Some(Span {
        start: pos,
        end: body_start + body_len,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::validators::base62_padded;
    use super::*;

    /// Builds a checksum-valid GitHub token from 30 random chars.
    pub fn github_token(prefix: &str, random30: &str) -> String {
        assert_eq!(random30.len(), 30);
        let crc = crc32fast::hash(random30.as_bytes());
        format!("{prefix}{random30}{}", base62_padded(crc, 6))
    }

    #[test]
    fn aws_key_ids() {
        let hay = b"key=AKIAZ3MSJ5TVQ4GQDKWY;";
        assert_eq!(aws_access_key_id(hay, 4), Some(Span { start: 4, end: 24 }));
        assert_eq!(aws_access_key_id(b"AKIAIOSFODNN7EXAMPLE", 0), None);
        assert_eq!(aws_access_key_id(b"AKIAZ3MSJ5TVQ4GQDKW", 0), None, "short");
        assert_eq!(aws_access_key_id(b"AKIAZ3MSJ5TVQ4GQDKWYX", 0), None, "long");
        assert_eq!(
            aws_access_key_id(b"XAKIAZ3MSJ5TVQ4GQDKWY", 1),
            None,
            "glued"
        );
        assert_eq!(
            aws_access_key_id(b"AKIAZ3MSJ5TVQ4GQDK0Y", 0),
            None,
            "not base32"
        );
    }

    #[test]
    fn github_tokens_need_a_valid_checksum() {
        let token = github_token("ghp_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123");
        let hay = format!("token: {token}\n");
        assert_eq!(
            github_classic_token(hay.as_bytes(), 7),
            Some(Span { start: 7, end: 47 })
        );
        let mut broken = token.clone().into_bytes();
        broken[10] = if broken[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(github_classic_token(&broken, 0), None);
        assert_eq!(
            github_classic_token(b"ghp_abcdefghijklmnopqrstuvwxyzABCD012345", 0),
            None
        );
    }

    #[test]
    fn pem_blocks_complete_and_truncated() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY-----";
        let hay = format!("{{\"key\":\"{pem}\"}}");
        let sp = pem_private_key(hay.as_bytes(), 8).unwrap();
        assert_eq!(&hay[sp.start..sp.end], pem);

        let cut = "{\"key\":\"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXk\"}";
        let sp = pem_private_key(cut.as_bytes(), 8).unwrap();
        assert_eq!(
            &cut[sp.start..sp.end],
            "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXk"
        );

        assert_eq!(
            pem_private_key(b"-----BEGIN CERTIFICATE-----\nMII", 0),
            None
        );
        assert_eq!(pem_private_key(b"-----BEGIN ", 0), None);
    }
}

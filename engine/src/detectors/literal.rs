//! Secrets with a literal prefix. The shared literal prefilter reports
//! where a prefix occurs; these functions confirm the rest of the token on
//! a window of a few dozen bytes and validate it.

use super::tokens::looks_placeholder;
use super::validators::{base64_decode, entropy_at_least, github_checksum_valid, ByteStats};
use super::{is_word_byte, Cx, Span};

pub const AWS_PREFIXES: &[&str] = &["AKIA", "ASIA", "ABIA", "ACCA"];
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

pub(crate) fn aws_access_key_id_cx(cx: &Cx, pos: usize, _end: usize) -> Option<Span> {
    aws_access_key_id(cx.hay, pos)
}

pub(crate) fn pem_private_key_cx(cx: &Cx, pos: usize, _end: usize) -> Option<Span> {
    pem_private_key(cx.hay, pos)
}

/// Token validator: `gh?_` + 30 random + 6 checksum chars.
pub(crate) fn github_checksum_ok(token: &[u8]) -> bool {
    token.len() == 40 && github_checksum_valid(&token[4..34], &token[34..])
}

/// `https://<32 hex>@o<digits>.ingest[.<region>].sentry.io/<project>`; the
/// anchor is `.ingest.`; the span is the 32-hex key.
pub(crate) fn sentry_dsn(cx: &Cx, pos: usize, end: usize) -> Option<Span> {
    let hay = cx.hay;
    let tail = hay.get(end..(end + 16).min(hay.len()))?;
    if !(tail.starts_with(b"sentry.io/")
        || tail.get(3..).is_some_and(|t| t.starts_with(b"sentry.io/")))
    {
        return None;
    }
    // Back over "o<digits>" to the '@'.
    let mut i = pos;
    while i > 0 && pos - i < 12 && hay[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i < 2 || hay[i - 1] != b'o' || hay[i - 2] != b'@' {
        return None;
    }
    let at = i - 2;
    let start = at.checked_sub(32)?;
    let key = &hay[start..at];
    if !key.iter().all(|b| b.is_ascii_hexdigit()) || !hay[..start].ends_with(b"://") {
        return None;
    }
    Some(Span { start, end: at })
}

fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')
}

fn is_userinfo_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace()
        || b.is_ascii_control()
        || matches!(
            b,
            b':' | b'@' | b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\' | b'[' | b']'
        ))
}

/// `scheme://user:password@host`; the span is the password.
pub(crate) fn password_in_url(cx: &Cx, pos: usize, end: usize) -> Option<Span> {
    let hay = cx.hay;
    let mut s = pos;
    while s > 0 && pos - s < 24 && is_scheme_byte(hay[s - 1]) {
        s -= 1;
    }
    if s == pos || !hay[s].is_ascii_alphabetic() {
        return None;
    }
    let limit = (end + 256).min(hay.len());
    let mut i = end;
    while i < limit && is_userinfo_byte(hay[i]) {
        i += 1;
    }
    if hay.get(i) != Some(&b':') {
        return None;
    }
    let pw_start = i + 1;
    let mut j = pw_start;
    while j < limit && (is_userinfo_byte(hay[j]) || hay[j] == b':') {
        j += 1;
    }
    if hay.get(j) != Some(&b'@') || j == pw_start {
        return None;
    }
    let host = hay.get(j + 1)?;
    if !host.is_ascii_alphanumeric() && *host != b'[' {
        return None;
    }
    let pw = &hay[pw_start..j];
    if pw.len() < 3 || url_placeholder(pw) {
        return None;
    }
    Some(Span {
        start: pw_start,
        end: j,
    })
}

static URL_PLACEHOLDERS: super::WordSet = super::WordSet::new(&[
    b"password",
    b"passwd",
    b"pass",
    b"secret",
    b"${",
    b"{{",
    b"%s",
    b"<",
    b"xxx",
    b"***",
    b"changeme",
    b"example",
    b"your",
    b"pwd",
    b"$(",
    b"%(",
]);

fn url_placeholder(pw: &[u8]) -> bool {
    URL_PLACEHOLDERS.found_in(pw)
        || pw
            .first()
            .is_none_or(|f| pw.iter().all(|b| b.eq_ignore_ascii_case(f)))
}

/// `Basic <base64>` decoding to printable `user:password`.
pub(crate) fn basic_auth(cx: &Cx, pos: usize, end: usize) -> Option<Span> {
    let hay = cx.hay;
    if pos > 0 && is_word_byte(hay[pos - 1]) {
        return None;
    }
    let limit = (end + 512).min(hay.len());
    let mut i = end;
    while i < limit && (hay[i].is_ascii_alphanumeric() || matches!(hay[i], b'+' | b'/')) {
        i += 1;
    }
    while i < limit && hay[i] == b'=' && i - end < 1024 {
        i += 1;
    }
    if hay.get(i).is_some_and(|&b| is_word_byte(b)) || i - end < 8 {
        return None;
    }
    let decoded = base64_decode(&hay[end..i])?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    if colon == 0 || colon + 1 >= decoded.len() || !decoded.iter().all(|b| (0x20..0x7f).contains(b))
    {
        return None;
    }
    let pw = &decoded[colon + 1..];
    if url_placeholder(pw) {
        return None;
    }
    Some(Span { start: end, end: i })
}

/// `Bearer <token>`: 16+ token characters with mixed classes and entropy.
pub(crate) fn bearer_token(cx: &Cx, pos: usize, end: usize) -> Option<Span> {
    let hay = cx.hay;
    if pos > 0 && is_word_byte(hay[pos - 1]) {
        return None;
    }
    let limit = (end + 4096).min(hay.len());
    let mut i = end;
    while i < limit
        && (hay[i].is_ascii_alphanumeric()
            || matches!(hay[i], b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
    {
        i += 1;
    }
    while i < limit && hay[i] == b'=' {
        i += 1;
    }
    let v = &hay[end..i];
    if v.len() < 16 || hay.get(i).is_some_and(|&b| is_word_byte(b)) {
        return None;
    }
    let stats = ByteStats::of(v);
    if !stats.has_digit()
        || !stats.has_letter()
        || !entropy_at_least(v, 3.0)
        || looks_placeholder(v)
    {
        return None;
    }
    Some(Span { start: end, end: i })
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
        assert!(github_checksum_ok(token.as_bytes()));
        let mut broken = token.clone().into_bytes();
        broken[10] = if broken[10] == b'a' { b'b' } else { b'a' };
        assert!(!github_checksum_ok(&broken));
        assert!(!github_checksum_ok(
            b"ghp_abcdefghijklmnopqrstuvwxyzABCD012345"
        ));
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

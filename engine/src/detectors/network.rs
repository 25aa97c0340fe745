//! Network and crypto-currency addresses: IPv4 (from digit runs), IPv6
//! (from `:`), Bitcoin (base58check from digit runs starting `1`/`3`,
//! bech32 after `bc`), Ethereum (`0x` anchor, EIP-55).

use super::crypto::{base58_decode_25, bech32_verify, keccak256, sha256};
use super::{Cx, DigitRun, Span};

fn glued(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(crate) fn ipv4(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let hay = cx.hay;
    let start = run.start;
    if run.group_count != 1 || run.digits > 3 {
        return None;
    }
    if start > 0 {
        let b = hay[start - 1];
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-' {
            return None;
        }
    }
    let mut i = start;
    for octet in 0..4 {
        let s = i;
        while i < hay.len() && hay[i].is_ascii_digit() && i - s < 4 {
            i += 1;
        }
        let len = i - s;
        if len == 0 || len > 3 || (len > 1 && hay[s] == b'0') {
            return None;
        }
        let v: u32 = hay[s..i]
            .iter()
            .fold(0, |a, d| a * 10 + u32::from(d - b'0'));
        if v > 255 {
            return None;
        }
        if octet < 3 {
            if hay.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    let next = hay.get(i).copied();
    if glued(next) || next == Some(b'-') {
        return None;
    }
    if next == Some(b'.') && hay.get(i + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    if &hay[start..i] == b"0.0.0.0" {
        return None;
    }
    Some(Span { start, end: i })
}

fn is_v6_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

pub(crate) fn ipv6(cx: &Cx, pos: usize) -> Option<Span> {
    let hay = cx.hay;
    let before = pos.checked_sub(1).map(|i| hay[i]);
    let after = hay.get(pos + 1).copied();
    let ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_hexdigit() || b == b':');
    if !ok(before) && !ok(after) {
        return None;
    }
    // Only the first colon of an address starts the work.
    let mut start = pos;
    while start > 0 && pos - start < 40 && is_v6_byte(hay[start - 1]) {
        start -= 1;
    }
    if start > 0 && (is_v6_byte(hay[start - 1]) || glued(Some(hay[start - 1]))) {
        return None;
    }
    if hay[start..pos].contains(&b':') {
        return None;
    }
    let mut end = pos;
    while end < hay.len() && end - start < 46 && is_v6_byte(hay[end]) {
        end += 1;
    }
    if glued(hay.get(end).copied()) {
        return None;
    }
    while end > pos + 1 && hay[end - 1] == b'.' {
        end -= 1;
    }
    let text = &hay[start..end];
    let colons = text.iter().filter(|&&b| b == b':').count();
    if colons < 2 || text == b"::" {
        return None;
    }
    ipv6_parses(text).then_some(Span { start, end })
}

/// `text` is an IPv6 address as `std::net::Ipv6Addr`'s parser reads one
/// (the reference the tests hold it to), checked over the bytes without
/// building the address. The parser's own structure is kept, since its
/// order of attempts is what decides edge cases: at each group but the
/// last, a trailing dotted IPv4 is tried before a hex group; at most one
/// `::`; no IPv4 before it; the whole text consumed. std's version (a
/// rollback closure per attempt, an IPv4 attempt at every group, a UTF-8
/// check first) was most of this detector's time.
fn ipv6_parses(text: &[u8]) -> bool {
    let mut at = 0;
    let (head, head_v4) = v6_groups(text, &mut at, 8);
    if head == 8 {
        return at == text.len();
    }
    if head_v4 || text.get(at..at + 2) != Some(b"::") {
        return false;
    }
    at += 2;
    // The `::` stands for at least one group of zeros.
    v6_groups(text, &mut at, 7 - head);
    at == text.len()
}

/// Reads up to `limit` `:`-separated groups from `text[*at..]`, the last
/// two possibly as an IPv4 address, and moves `at` past what it read:
/// the number of groups and whether an IPv4 address ended them.
fn v6_groups(text: &[u8], at: &mut usize, limit: usize) -> (usize, bool) {
    for i in 0..limit {
        let from = if i == 0 {
            Some(*at)
        } else {
            (text.get(*at) == Some(&b':')).then_some(*at + 1)
        };
        let Some(from) = from else {
            return (i, false);
        };
        let n = digits_at(text, from, u8::is_ascii_hexdigit);
        // An IPv4 address's first number ends at a `.`, so does the hex
        // run it is part of: any other group skips the attempt.
        if i + 1 < limit && text.get(from + n) == Some(&b'.') {
            if let Some(end) = v4_end(text, from) {
                *at = end;
                return (i + 2, true);
            }
        }
        // 1 to 4 hex digits; more fail the group (the parser reads every
        // digit there is before it checks the count).
        if n == 0 || n > 4 {
            return (i, false);
        }
        *at = from + n;
    }
    (limit, false)
}

/// The end of a dotted IPv4 address at `text[from..]` (four decimal
/// numbers of 1 to 3 digits up to 255, no leading zero), or `None`.
fn v4_end(text: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    for k in 0..4 {
        if k > 0 {
            if text.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let n = digits_at(text, at, u8::is_ascii_digit);
        let digits = text.get(at..at + n).filter(|_| (1..=3).contains(&n))?;
        let value = digits
            .iter()
            .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
        if value > 255 || (n > 1 && digits[0] == b'0') {
            return None;
        }
        at += n;
    }
    Some(at)
}

/// How many bytes from `text[from]` on are `digit`s.
fn digits_at(text: &[u8], from: usize, digit: fn(&u8) -> bool) -> usize {
    text.get(from..)
        .map_or(0, |rest| rest.iter().take_while(|b| digit(b)).count())
}

/// The base58 alphabet as a table: a token scan tests each byte with one
/// load, where the range tests branch on every digit/letter change in a
/// hex digest (most of what starts `1`/`3` before a letter).
static BASE58: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() && !matches!(c, b'0' | b'O' | b'I' | b'l');
        b += 1;
    }
    t
};

#[inline]
pub(crate) fn is_base58(b: u8) -> bool {
    BASE58[usize::from(b)]
}

#[inline]
fn is_bech32(b: u8) -> bool {
    (b.is_ascii_lowercase() || b.is_ascii_digit()) && !matches!(b, b'1' | b'b' | b'i' | b'o')
}

pub(crate) fn bitcoin(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let hay = cx.hay;
    let s = run.start;
    // bech32: "bc1…": the run starts at the 1.
    if s >= 2 && &hay[s - 2..s] == b"bc" {
        let start = s - 2;
        if start > 0 && glued(Some(hay[start - 1])) {
            return None;
        }
        let mut end = s + 1;
        while end < hay.len() && end - start < 91 && is_bech32(hay[end]) {
            end += 1;
        }
        if glued(hay.get(end).copied()) {
            return None;
        }
        let len = end - start;
        let witness = *hay.get(s + 1)?;
        let shape = (witness == b'q' && (len == 42 || len == 62)) || (witness == b'p' && len == 62);
        if !shape {
            return None;
        }
        bech32_verify(&hay[start..end])?;
        return Some(Span { start, end });
    }
    let first = hay[s];
    if first != b'1' && first != b'3' {
        return None;
    }
    if s > 0 && glued(Some(hay[s - 1])) {
        return None;
    }
    let mut end = s;
    while end < hay.len() && end - s < 36 && is_base58(hay[end]) {
        end += 1;
    }
    if !(26..=35).contains(&(end - s)) || glued(hay.get(end).copied()) {
        return None;
    }
    let token = &hay[s..end];
    if !token.iter().any(u8::is_ascii_alphabetic) {
        return None;
    }
    // A P2PKH/P2SH address decodes to a version byte (0 after `1`, 5
    // after `3`), a 20-byte hash and a 4-byte checksum: the length and
    // version are tested before the double SHA-256, which most base58-ish
    // words (base64 pieces, ids) never reach.
    let raw = base58_decode_25(token)?;
    let version = if first == b'1' { 0 } else { 5 };
    if raw[0] != version {
        return None;
    }
    let (payload, check) = raw.split_at(21);
    (sha256(&sha256(payload))[..4] == *check).then_some(Span { start: s, end })
}

pub(crate) fn ethereum(cx: &Cx, pos: usize, _end: usize) -> Option<Span> {
    let hay = cx.hay;
    if pos > 0 && glued(Some(hay[pos - 1])) {
        return None;
    }
    let end = pos + 42;
    let hex = hay.get(pos + 2..end)?;
    if !hex.iter().all(u8::is_ascii_hexdigit) || glued(hay.get(end).copied()) {
        return None;
    }
    let has_lower = hex.iter().any(u8::is_ascii_lowercase);
    let has_upper = hex.iter().any(u8::is_ascii_uppercase);
    if has_lower && has_upper {
        // EIP-55: a letter is upper case iff its nibble of keccak(lower) >= 8.
        let mut lower = [0u8; 40];
        for (l, h) in lower.iter_mut().zip(hex) {
            *l = h.to_ascii_lowercase();
        }
        let hash = keccak256(&lower);
        for (i, &c) in hex.iter().enumerate() {
            if c.is_ascii_alphabetic() {
                let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
                if (nibble >= 8) != c.is_ascii_uppercase() {
                    return None;
                }
            }
        }
    } else if !cx.context_before(pos, 32) {
        return None;
    }
    if hex.iter().all(|&b| b == b'0') {
        return None;
    }
    Some(Span { start: pos, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-level IPv6 check accepts exactly what std's parser does:
    /// random texts over the address alphabet (groups, `::`, dotted
    /// quads, long digit runs), and real addresses cut and changed.
    #[test]
    fn ipv6_check_agrees_with_std() {
        let std_ok = |t: &[u8]| {
            std::str::from_utf8(t).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
        };
        let pieces: [&[u8]; 14] = [
            b":", b"::", b".", b"0", b"1", b"25", b"255", b"256", b"01", b"ffff", b"aB", b"12345",
            b"1.2.3.4", b"fe80",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut accepted = 0;
        let mut texts: Vec<Vec<u8>> = Vec::new();
        for _ in 0..200_000 {
            let n = crate::test_rng::xorshift(&mut state) % 14;
            let mut t = Vec::new();
            for _ in 0..n {
                let k = crate::test_rng::xorshift(&mut state) as usize % pieces.len();
                t.extend_from_slice(pieces[k]);
            }
            texts.push(t);
        }
        for a in [
            "2001:db8:85a3::8a2e:370:7334",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "::ffff:192.168.0.1",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:1.2.3.4",
            "::1",
            "1::",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
        ] {
            let a = a.as_bytes();
            for i in 0..=a.len() {
                for j in i..=a.len() {
                    texts.push(a[i..j].to_vec());
                }
                for b in [b'0', b':', b'.', b'f', b'g'] {
                    let mut t = a.to_vec();
                    if let Some(c) = t.get_mut(i) {
                        *c = b;
                    }
                    texts.push(t.clone());
                    t.insert(i, b);
                    texts.push(t);
                }
            }
        }
        for t in &texts {
            let want = std_ok(t);
            assert_eq!(ipv6_parses(t), want, "{:?}", String::from_utf8_lossy(t));
            accepted += usize::from(want);
        }
        assert!(accepted > 1000, "{accepted}");
    }

    /// The length and version test before the checksum against the
    /// whole base58check payload: real addresses, each with one character
    /// changed, cut or grown, and with the other version's prefix.
    #[test]
    fn base58_address_test_is_base58check() {
        use crate::detectors::crypto::base58check_payload;
        let alphabet = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let mut tokens = Vec::new();
        for addr in [
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
            "3CVRHcfx1G6YQg2uMcHM9RZbYSu2WLgU6k",
        ] {
            let a = addr.as_bytes().to_vec();
            tokens.push(a.clone());
            for i in 1..a.len() {
                for &c in alphabet.iter().step_by(7) {
                    let mut t = a.clone();
                    t[i] = c;
                    tokens.push(t);
                }
                tokens.push(a[..i].to_vec());
            }
            let mut longer = a.clone();
            longer.push(b'z');
            tokens.push(longer);
            let mut other = a.clone();
            other[0] = if a[0] == b'1' { b'3' } else { b'1' };
            tokens.push(other);
        }
        let mut found = 0;
        for t in tokens {
            let hay = [b" ".as_slice(), &t, b" "].concat();
            let mut run = None;
            crate::detectors::digit_runs(&hay, |r| {
                if run.is_none() {
                    run = Some(r.clone());
                }
            });
            let Some(run) = run.filter(|r| r.start == 1) else {
                continue;
            };
            let cx = Cx {
                hay: &hay,
                field: b"",
                keywords: &[],
                firsts: None,
            };
            let want = (26..=35).contains(&t.len())
                && t.iter().any(u8::is_ascii_alphabetic)
                && base58check_payload(&t).is_some_and(|p| {
                    p.len() == 21 && matches!((t[0], p[0]), (b'1', 0) | (b'3', 5))
                });
            found += usize::from(want);
            assert_eq!(
                bitcoin(&cx, &run).is_some(),
                want,
                "{}",
                String::from_utf8_lossy(&t)
            );
        }
        // The real addresses (also where a change put back the same character).
        assert!(found >= 4, "{found}");
    }

    #[test]
    fn base58_table_is_the_alphabet() {
        for b in 0..=255u8 {
            let want = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".contains(&b);
            assert_eq!(is_base58(b), want, "{b}");
        }
    }
}

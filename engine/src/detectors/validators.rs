//! Checksums and validity rules that turn "looks like" into "is": they are
//! what separates a card number from an order id, and a GitHub token from a
//! random string with the right prefix.

/// Luhn (mod 10) over the ASCII digits of `s`; other bytes are skipped.
pub fn luhn_valid(s: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    let mut count = 0;
    for &b in s.iter().rev() {
        if !b.is_ascii_digit() {
            continue;
        }
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
        count += 1;
    }
    count >= 2 && sum.is_multiple_of(10)
}

/// US SSN validity from its three parts (area, group, serial), following the
/// SSA's rules: no area 000, 666 or 900-999, no group 00, no serial 0000,
/// and not one of the numbers SSA retired after they were printed in ads.
pub fn ssn_valid(area: u32, group: u32, serial: u32) -> bool {
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return false;
    }
    // Woolworth's wallet card and the "123-45-6789" advertising number.
    !matches!(
        (area, group, serial),
        (78, 5, 1120) | (123, 45, 6789) | (219, 9, 9999)
    )
}

/// Same as `ssn_valid` over 9 ASCII digits (separators skipped).
pub fn ssn_digits_valid(s: &[u8]) -> bool {
    // Called for every SSN-shaped run, so the nine digits are read into an
    // array: no allocation per candidate.
    let mut digits = [0u32; 9];
    let mut n = 0;
    for b in s.iter().filter(|b| b.is_ascii_digit()) {
        match digits.get_mut(n) {
            Some(slot) => *slot = u32::from(b - b'0'),
            None => return false,
        }
        n += 1;
    }
    if n != 9 {
        return false;
    }
    let num = |r: &[u32]| r.iter().fold(0, |acc, d| acc * 10 + d);
    ssn_valid(num(&digits[0..3]), num(&digits[3..5]), num(&digits[5..9]))
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 encoding of `n`, left-padded with `0` to `width`.
pub fn base62_padded(mut n: u32, width: usize) -> String {
    let mut out = Vec::with_capacity(width);
    while n > 0 {
        out.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// GitHub's token checksum: the last 6 characters are the base62 CRC32 of
/// the random part that precedes them (GitHub, "Behind GitHub's new
/// authentication token formats", 2021).
pub fn github_checksum_valid(random_part: &[u8], checksum: &[u8]) -> bool {
    let crc = crc32fast::hash(random_part);
    base62_padded(crc, checksum.len()).as_bytes() == checksum
}

/// Verhoeff check digit (Aadhaar): the whole number, check digit last.
pub fn verhoeff_valid(digits: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    let mut count = 0;
    for (i, &b) in digits
        .iter()
        .filter(|b| b.is_ascii_digit())
        .rev()
        .enumerate()
    {
        c = D[c as usize][P[i % 8][(b - b'0') as usize] as usize];
        count += 1;
    }
    count > 1 && c == 0
}

/// IBAN length per country (ISO 13616 registry).
pub fn iban_length(country: &[u8]) -> Option<usize> {
    const LENGTHS: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|&(_, n)| n)
}

/// IBAN check (ISO 7064 mod 97-10) over the compact form (no spaces).
pub fn iban_valid(compact: &[u8]) -> bool {
    if compact.len() < 15 || compact.len() > 34 {
        return false;
    }
    if iban_length(&compact[..2]) != Some(compact.len()) {
        return false;
    }
    if !compact[2..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut rem: u32 = 0;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    // The bytes present, so the sum visits only them, in byte order (the
    // order, and so the rounding, of a walk over all 256 counts).
    let mut present = [0u64; 4];
    for &b in s {
        counts[b as usize] += 1;
        present[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    let n = s.len() as f64;
    present
        .iter()
        .enumerate()
        .flat_map(|(w, &bits)| {
            std::iter::successors((bits != 0).then_some(bits), |&m| {
                let rest = m & (m - 1);
                (rest != 0).then_some(rest)
            })
            .map(move |m| w * 64 + m.trailing_zeros() as usize)
        })
        .map(|b| {
            let p = f64::from(counts[b]) / n;
            -p * p.log2()
        })
        .sum()
}

/// The character classes of a value, from one pass (one table load and
/// one OR in a register per byte): what the class tests of a confirmer
/// need. The entropy test counts bytes on its own (`entropy_at_least`),
/// only when it runs: counting here cleared and filled a 768-byte table
/// for every value.
pub(crate) struct ByteStats {
    /// OR of `CLASS` over the bytes.
    classes: u8,
}

const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
/// `u8::is_ascii_punctuation`.
const PUNCT: u8 = 8;
const SPACE: u8 = 16;
/// Not a digit, `.`, `-` or `:` (a value of only those is a number, a
/// date or a time).
const NOT_NUMERIC: u8 = 32;

/// The class bits of every byte.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let mut bits = 0;
        if c.is_ascii_lowercase() {
            bits |= LOWER;
        }
        if c.is_ascii_uppercase() {
            bits |= UPPER;
        }
        if c.is_ascii_digit() {
            bits |= DIGIT;
        }
        if c.is_ascii_punctuation() {
            bits |= PUNCT;
        }
        if c == b' ' {
            bits |= SPACE;
        }
        if !(c.is_ascii_digit() || c == b'.' || c == b'-' || c == b':') {
            bits |= NOT_NUMERIC;
        }
        t[b] = bits;
        b += 1;
    }
    t
};

/// Values up to this long take the table path of `entropy_at_least`.
const TABLE_LEN: usize = 256;

/// `c * log2(c)` for every count of a value of at most `TABLE_LEN` bytes.
fn nlog2n() -> &'static [f64; TABLE_LEN + 1] {
    static TABLE: std::sync::OnceLock<[f64; TABLE_LEN + 1]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|c| {
            if c == 0 {
                0.0
            } else {
                c as f64 * (c as f64).log2()
            }
        })
    })
}

/// How far the table path's entropy may be from `shannon_entropy`'s
/// (both are within about 1e-13 of the true value for 256 bytes); closer
/// to a threshold than this, the exact function decides.
const ENTROPY_SLACK: f64 = 1e-9;

impl ByteStats {
    pub(crate) fn of(s: &[u8]) -> ByteStats {
        ByteStats {
            classes: s.iter().fold(0, |c, &b| c | CLASS[usize::from(b)]),
        }
    }

    pub(crate) fn has_lowercase(&self) -> bool {
        self.classes & LOWER != 0
    }
    pub(crate) fn has_uppercase(&self) -> bool {
        self.classes & UPPER != 0
    }
    pub(crate) fn has_digit(&self) -> bool {
        self.classes & DIGIT != 0
    }
    pub(crate) fn has_letter(&self) -> bool {
        self.classes & (LOWER | UPPER) != 0
    }
    pub(crate) fn has_space(&self) -> bool {
        self.classes & SPACE != 0
    }
    /// Every byte is a digit, `.`, `-` or `:`.
    pub(crate) fn only_numeric(&self) -> bool {
        self.classes & NOT_NUMERIC == 0
    }

    /// How many of lower case, upper case, digits and punctuation occur.
    pub(crate) fn char_classes(&self) -> usize {
        (self.classes & (LOWER | UPPER | DIGIT | PUNCT)).count_ones() as usize
    }
}

/// `shannon_entropy(s) >= threshold` without a logarithm per distinct
/// byte: `log2 n - sum(c log2 c) / n` from a table, and the exact function
/// only when that lands within `ENTROPY_SLACK` of the threshold, so the
/// answer is always the exact function's. The byte counts are taken here,
/// only when the test runs: most values a confirmer looks at fail a class
/// test (`ByteStats`) first.
pub(crate) fn entropy_at_least(s: &[u8], threshold: f64) -> bool {
    if s.is_empty() || s.len() > TABLE_LEN {
        return shannon_entropy(s) >= threshold;
    }
    let table = nlog2n();
    let mut counts = [0u16; 256];
    for &b in s {
        let c = &mut counts[usize::from(b)];
        *c = c.wrapping_add(1);
    }
    // Each distinct byte's term at its first occurrence (its count is
    // then cleared): no list of distinct bytes to keep.
    let mut sum = 0.0;
    for &b in s {
        let c = std::mem::take(&mut counts[usize::from(b)]);
        if c != 0 {
            sum += table[usize::from(c)];
        }
    }
    let n = s.len() as f64;
    let approx = table[s.len()] / n - sum / n;
    if approx >= threshold + ENTROPY_SLACK {
        true
    } else if approx < threshold - ENTROPY_SLACK {
        false
    } else {
        shannon_entropy(s) >= threshold
    }
}

/// Atlassian API token: the last 8 characters are the upper-case hex
/// CRC32 of everything before them.
pub fn atlassian_checksum_valid(token: &[u8]) -> bool {
    if token.len() < 9 {
        return false;
    }
    let (body, sum) = token.split_at(token.len() - 8);
    let crc = crc32fast::hash(body);
    // Upper-case hex of the CRC, compared digit by digit (no string).
    sum.iter().enumerate().all(|(i, &d)| {
        let nibble = (crc >> (28 - 4 * i)) & 0xf;
        d == b"0123456789ABCDEF"[nibble as usize]
    })
}

/// Decodes unpadded or padded base64 / base64url; `None` on other bytes.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A JWT: `header.payload.signature`, the header base64url-decodes to a
/// JSON object with an `alg` member and the payload to a JSON object.
pub fn jwt_valid(token: &[u8]) -> bool {
    let mut parts = token.split(|&b| b == b'.');
    let (Some(h), Some(p), Some(_s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some(header) = base64_decode(h) else {
        return false;
    };
    json_object(&header)
        && base64_json_object(p)
        && memchr::memmem::find(&header, b"\"alg\"").is_some()
}

/// `v`, trimmed, starts with `{` and ends with `}`.
fn json_object(v: &[u8]) -> bool {
    let t = v.trim_ascii();
    t.first() == Some(&b'{') && t.last() == Some(&b'}')
}

/// The 6-bit value of each base64 / base64url byte (`0xff`: none).
static B64_VALUES: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = 26 + i as u8;
        if i < 10 {
            t[b'0' as usize + i] = 52 + i as u8;
        }
        i += 1;
    }
    t[b'+' as usize] = 62;
    t[b'-' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b'_' as usize] = 63;
    t
};

/// `base64_decode(s)` decodes and `json_object` holds of the result,
/// reading only the first and last decoded bytes: a JWT payload can be
/// hundreds of bytes, and decoding all of them into a vector was most of
/// the JWT check. The bytes before any `=` are validated; when a decoded
/// end is whitespace (which `json_object` trims) the whole is decoded.
fn base64_json_object(s: &[u8]) -> bool {
    let n = memchr::memchr(b'=', s).unwrap_or(s.len());
    let digits = &s[..n];
    if digits.iter().any(|&c| B64_VALUES[usize::from(c)] == 0xff) {
        return false;
    }
    // Decoded byte k is bits 8k..8k + 8 of the digits' 6-bit stream: in
    // digits c and c + 1, 4 - (8k mod 6) bits from the right.
    let byte = |k: usize| -> Option<u8> {
        let c = 8 * k / 6;
        let v = u32::from(B64_VALUES[usize::from(*digits.get(c)?)]) << 6
            | u32::from(B64_VALUES[usize::from(*digits.get(c + 1)?)]);
        Some((v >> (4 - 8 * k % 6)) as u8)
    };
    let len = n * 6 / 8;
    let (Some(first), Some(last)) = (
        (len >= 1).then_some(0).and_then(byte),
        len.checked_sub(1).and_then(byte),
    ) else {
        return false;
    };
    if first.is_ascii_whitespace() || last.is_ascii_whitespace() {
        return base64_decode(s).is_some_and(|v| json_object(&v));
    }
    len >= 2 && first == b'{' && last == b'}'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JWT payload test reads the decoded ends only: it agrees with
    /// decoding everything, on random base64 around `{`, `}` and spaces,
    /// with and without padding and stray bytes.
    #[test]
    fn base64_json_object_agrees_with_decoding() {
        let encode = |v: &[u8]| -> Vec<u8> {
            let a = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = Vec::new();
            for ch in v.chunks(3) {
                let w = ch
                    .iter()
                    .enumerate()
                    .fold(0u32, |w, (i, &b)| w | u32::from(b) << (16 - 8 * i));
                for k in 0..=ch.len() {
                    out.push(a[(w >> (18 - 6 * k) & 63) as usize]);
                }
            }
            out
        };
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut objects = 0;
        for round in 0..20_000u32 {
            let len = (round % 40) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    crate::test_rng::xorshift(&mut state);
                    b"{}  \n\t\"a:1"[(state >> 24) as usize % 10]
                })
                .collect();
            let mut s = encode(&v);
            match round % 9 {
                0 => s.extend_from_slice(b"=="),
                1 => s.push(b'='),
                2 if !s.is_empty() => {
                    let at = (state >> 8) as usize % s.len();
                    s[at] = b"=.+/$"[(state >> 40) as usize % 5];
                }
                3 => s.extend_from_slice(b"=x!"),
                _ => {}
            }
            let want = base64_decode(&s).is_some_and(|d| json_object(&d));
            assert_eq!(
                base64_json_object(&s),
                want,
                "{:?}",
                String::from_utf8_lossy(&s)
            );
            objects += usize::from(want);
        }
        assert!(objects > 200, "{objects}");
    }

    #[test]
    fn atlassian_checksum_is_the_upper_case_hex_crc() {
        let body = b"ATATT3xFfGF0abcdefghijklmnop";
        let good = format!(
            "{}{:08X}",
            String::from_utf8_lossy(body),
            crc32fast::hash(body)
        );
        assert!(atlassian_checksum_valid(good.as_bytes()));
        let lower = format!(
            "{}{:08x}",
            String::from_utf8_lossy(body),
            crc32fast::hash(body)
        );
        assert_eq!(atlassian_checksum_valid(lower.as_bytes()), lower == good);
        let mut bad = good.into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert!(!atlassian_checksum_valid(&bad));
    }

    #[test]
    fn entropy_of_every_byte_value() {
        let all: Vec<u8> = (0..=255).collect();
        let h = shannon_entropy(&all);
        assert!(entropy_at_least(&all, h) && !entropy_at_least(&all, h + 1e-6));
        let mut skewed = all.clone();
        skewed[255] = b'a';
        let h = shannon_entropy(&skewed);
        assert!(entropy_at_least(&skewed, h - 1e-6) && !entropy_at_least(&skewed, h + 1e-6));
    }

    #[test]
    fn byte_stats_agree_with_the_direct_tests() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300usize {
            for round in 0..8 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        crate::test_rng::xorshift(&mut state);
                        (state >> 56) as u8 % (2 + (len * 7 + round * 31) as u8 % 254)
                    })
                    .map(|b| if round % 2 == 0 { b'!' + b % 94 } else { b })
                    .collect();
                let st = ByteStats::of(&s);
                assert_eq!(st.has_lowercase(), s.iter().any(u8::is_ascii_lowercase));
                assert_eq!(st.has_uppercase(), s.iter().any(u8::is_ascii_uppercase));
                assert_eq!(st.has_digit(), s.iter().any(u8::is_ascii_digit));
                let classes = [
                    s.iter().any(u8::is_ascii_lowercase),
                    s.iter().any(u8::is_ascii_uppercase),
                    s.iter().any(u8::is_ascii_digit),
                    s.iter().any(u8::is_ascii_punctuation),
                ];
                assert_eq!(st.char_classes(), classes.iter().filter(|&&c| c).count());
                assert_eq!(st.has_letter(), s.iter().any(u8::is_ascii_alphabetic));
                assert_eq!(st.has_space(), s.contains(&b' '));
                assert_eq!(
                    st.only_numeric(),
                    s.iter()
                        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b':'))
                );
                let h = shannon_entropy(&s);
                // The thresholds the confirmers use, and the exact value
                // and its neighbours (the exact fallback decides those).
                for t in [
                    2.75,
                    3.0,
                    3.5,
                    4.2,
                    h,
                    f64::from_bits(h.to_bits().wrapping_add(1)),
                    f64::from_bits(h.to_bits().wrapping_sub(1)),
                    h + 1e-6,
                    h - 1e-6,
                ] {
                    assert_eq!(entropy_at_least(&s, t), h >= t, "{s:?} {t}");
                }
            }
        }
    }

    #[test]
    fn luhn_accepts_test_cards_and_rejects_off_by_one() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"4111-1111-1111-1111"));
        assert!(luhn_valid(b"378282246310005"));
        assert!(luhn_valid(b"5555555555554444"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!luhn_valid(b"0"));
    }

    #[test]
    fn ssn_rules() {
        assert!(ssn_digits_valid(b"123-45-6788"));
        assert!(!ssn_digits_valid(b"000-45-6788"));
        assert!(!ssn_digits_valid(b"666-45-6788"));
        assert!(!ssn_digits_valid(b"912-45-6788"));
        assert!(!ssn_digits_valid(b"123-00-6788"));
        assert!(!ssn_digits_valid(b"123-45-0000"));
        assert!(!ssn_digits_valid(b"078-05-1120"));
        assert!(!ssn_digits_valid(b"123-45-678"));
    }

    #[test]
    fn base62_pads_and_encodes() {
        assert_eq!(base62_padded(0, 6), "000000");
        assert_eq!(base62_padded(61, 2), "0z");
        assert_eq!(base62_padded(62, 2), "10");
        assert_eq!(base62_padded(u32::MAX, 6), "4gfFC3");
    }

    #[test]
    fn entropy_is_bit_identical_to_the_sum_over_all_counts() {
        let reference = |s: &[u8]| -> f64 {
            let mut counts = [0u32; 256];
            for &b in s {
                counts[b as usize] += 1;
            }
            let n = s.len() as f64;
            counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = f64::from(c) / n;
                    -p * p.log2()
                })
                .sum()
        };
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 1..300 {
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    crate::test_rng::xorshift(&mut state);
                    (state >> 56) as u8 % (1 + (len % 200) as u8)
                })
                .collect();
            assert_eq!(
                shannon_entropy(&s).to_bits(),
                reference(&s).to_bits(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn verhoeff_iban_entropy_and_checksums() {
        assert!(verhoeff_valid(b"2363"));
        assert!(!verhoeff_valid(b"2364"));
        assert!(verhoeff_valid(b"234123412346"));
        assert!(iban_valid(b"DE89370400440532013000"));
        assert!(iban_valid(b"GB82WEST12345698765432"));
        assert!(!iban_valid(b"GB82WEST12345698765433"));
        assert!(!iban_valid(b"DE8937040044053201300"));
        assert!(shannon_entropy(b"aaaa") < 0.01);
        assert!(shannon_entropy(b"abcd") > 1.99);
        assert!(jwt_valid(
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
        ));
        assert!(!jwt_valid(b"eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln"));
        assert!(atlassian_checksum_valid(
            b"ATATT3xFfGF0pTyGJMuHbEL31IeL2HPcHyGcFRl1SPnXNYvMIHa-2o76umfXfKm-r5kJP1VrT_1FJors-6ILi8IHn5kxsC7tVO-HbkQfyy-KV5zjR3j1twdTKWTddB_XhkAS1voQG6yyzyN9zHYIa4UOrGNATMuDJawTgsu8PO_799nKSNrh9UC=260689B5"
        ));
    }
}

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
    let digits: Vec<u32> = s
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| u32::from(b - b'0'))
        .collect();
    if digits.len() != 9 {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

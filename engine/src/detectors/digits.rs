//! Anchorless numeric PII (payment cards, SSNs): one pass groups digits
//! into maximal runs, optionally split by single spaces or dashes, and each
//! numeric detector judges a run by its shape and checksum. No regex runs
//! over the body.

use super::validators::{luhn_valid, ssn_digits_valid};
use super::{has_keyword_before, Span};

/// Most digit groups a run records; longer runs are never PII we match.
const MAX_GROUPS: usize = 8;

/// A maximal run of digits in `hay[start..end]`, e.g. `4111-1111-1111-1111`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitRun {
    pub start: usize,
    pub end: usize,
    pub digits: usize,
    /// Lengths of the digit groups (only the first `MAX_GROUPS`).
    pub groups: [u8; MAX_GROUPS],
    pub group_count: usize,
    /// The separator between groups, if any; `None` for a plain run.
    pub separator: Option<u8>,
    /// True when groups were separated by different bytes.
    pub mixed_separators: bool,
}

impl DigitRun {
    pub fn group_lengths(&self) -> &[u8] {
        &self.groups[..self.group_count.min(MAX_GROUPS)]
    }

    /// The run is glued to a word or a decimal number on either side, so it
    /// is part of a larger token (hex digest, float, identifier).
    fn is_embedded(&self, hay: &[u8]) -> bool {
        let before = self.start.checked_sub(1).map(|i| hay[i]);
        let after = hay.get(self.end).copied();
        let glued = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if glued(before) || glued(after) {
            return true;
        }
        let decimal_before =
            before == Some(b'.') && self.start >= 2 && hay[self.start - 2].is_ascii_digit();
        let decimal_after =
            after == Some(b'.') && hay.get(self.end + 1).is_some_and(|b| b.is_ascii_digit());
        decimal_before || decimal_after
    }
}

/// Calls `f` for every maximal digit run in `hay`.
pub fn digit_runs(hay: &[u8], mut f: impl FnMut(&DigitRun)) {
    let n = hay.len();
    let mut i = 0;
    while i < n {
        if !hay[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut run = DigitRun {
            start: i,
            end: i,
            digits: 0,
            groups: [0; MAX_GROUPS],
            group_count: 0,
            separator: None,
            mixed_separators: false,
        };
        loop {
            let group_start = i;
            while i < n && hay[i].is_ascii_digit() {
                i += 1;
            }
            let len = i - group_start;
            run.digits += len;
            if run.group_count < MAX_GROUPS {
                run.groups[run.group_count] = len.min(255) as u8;
            }
            run.group_count += 1;
            run.end = i;
            // A single separator followed by a digit continues the run.
            if i + 1 < n && matches!(hay[i], b' ' | b'-') && hay[i + 1].is_ascii_digit() {
                match run.separator {
                    None => run.separator = Some(hay[i]),
                    Some(s) if s != hay[i] => run.mixed_separators = true,
                    _ => {}
                }
                i += 1;
                continue;
            }
            break;
        }
        f(&run);
    }
}

/// Known issuer prefixes and the lengths they issue.
fn card_issuer_ok(digits: &[u8]) -> bool {
    let len = digits.len();
    let prefix = |n: usize| -> u32 {
        digits[..n]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let p1 = prefix(1);
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    match p1 {
        // Visa
        4 => matches!(len, 13 | 16 | 19),
        // Mastercard 51-55 and 2221-2720
        5 if (51..=55).contains(&p2) => len == 16,
        2 if (2221..=2720).contains(&p4) => len == 16,
        3 => {
            // Amex
            (matches!(p2, 34 | 37) && len == 15)
                // JCB
                || ((3528..=3589).contains(&p4) && (16..=19).contains(&len))
                // Diners Club
                || (((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && (14..=19).contains(&len))
        }
        6 => {
            // Discover, UnionPay
            (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || p2 == 62)
                && (16..=19).contains(&len)
        }
        _ => false,
    }
}

/// Card numbers print as 4-4-4-4(-3), or 4-6-5 / 4-6-4 (Amex, Diners).
fn card_grouping_ok(groups: &[u8]) -> bool {
    match groups {
        [_] => true,
        [4, 6, 4] | [4, 6, 5] => true,
        [rest @ .., last] => rest.iter().all(|&g| g == 4) && (1..=4).contains(last),
        [] => false,
    }
}

pub fn payment_card(hay: &[u8], run: &DigitRun) -> Option<Span> {
    if !(13..=19).contains(&run.digits) || run.mixed_separators || run.is_embedded(hay) {
        return None;
    }
    if !card_grouping_ok(run.group_lengths()) {
        return None;
    }
    let text = &hay[run.start..run.end];
    let digits: Vec<u8> = text.iter().copied().filter(u8::is_ascii_digit).collect();
    // A run of one repeated digit passes Luhn for some lengths and is never a card.
    if digits.iter().all(|&d| d == digits[0]) {
        return None;
    }
    if !card_issuer_ok(&digits) || !luhn_valid(&digits) {
        return None;
    }
    Some(Span {
        start: run.start,
        end: run.end,
    })
}

const SSN_KEYWORDS: &[&[u8]] = &[
    b"ssn",
    b"social security",
    b"social_security",
    b"socialsecurity",
    b"ss#",
    b"ss_num",
];
const SSN_KEYWORD_WINDOW: usize = 48;

pub fn us_ssn(hay: &[u8], run: &DigitRun) -> Option<Span> {
    if run.digits != 9 || run.mixed_separators || run.is_embedded(hay) {
        return None;
    }
    let dashed = run.separator == Some(b'-') && run.group_lengths() == [3, 2, 4];
    let spaced = run.separator == Some(b' ') && run.group_lengths() == [3, 2, 4];
    let plain = run.group_count == 1;
    if !(dashed || spaced || plain) {
        return None;
    }
    if !ssn_digits_valid(&hay[run.start..run.end]) {
        return None;
    }
    // Nine bare digits are far more often an id than an SSN: ask for context.
    if !dashed && !has_keyword_before(hay, run.start, SSN_KEYWORD_WINDOW, SSN_KEYWORDS) {
        return None;
    }
    Some(Span {
        start: run.start,
        end: run.end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(s: &str) -> Vec<DigitRun> {
        let mut out = Vec::new();
        digit_runs(s.as_bytes(), |r| out.push(r.clone()));
        out
    }

    fn cards(s: &str) -> Vec<&str> {
        runs(s)
            .iter()
            .filter_map(|r| payment_card(s.as_bytes(), r))
            .map(|sp| &s[sp.start..sp.end])
            .collect()
    }

    fn ssns(s: &str) -> Vec<&str> {
        runs(s)
            .iter()
            .filter_map(|r| us_ssn(s.as_bytes(), r))
            .map(|sp| &s[sp.start..sp.end])
            .collect()
    }

    #[test]
    fn groups_runs_with_separators() {
        let r = runs("a 4111-1111-1111-1111 b 12 3");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].digits, 16);
        assert_eq!(r[0].group_lengths(), &[4, 4, 4, 4]);
        assert_eq!(r[1].group_lengths(), &[2, 1]);
    }

    #[test]
    fn finds_cards_of_each_issuer_and_format() {
        for card in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "3782 822463 10005",
            "6011111111111117",
            "3530111333300000",
            "30569309025904",
            "6200000000000005",
        ] {
            let text = format!("{{\"card\":\"{card}\"}}");
            assert_eq!(cards(&text), vec![card], "{card}");
        }
    }

    #[test]
    fn rejects_card_lookalikes() {
        assert!(cards("4111111111111112").is_empty(), "Luhn");
        assert!(cards("order 1234567812345670").is_empty(), "no issuer");
        assert!(cards("0000000000000000").is_empty());
        assert!(cards("sha a4111111111111111").is_empty(), "embedded in hex");
        assert!(cards("3.4111111111111111").is_empty(), "decimal");
        assert!(cards("4111-1111 1111-1111").is_empty(), "mixed separators");
        assert!(cards("41 11 11 11 11 11 11 11").is_empty(), "odd grouping");
    }

    #[test]
    fn ssn_dashed_without_context_undashed_only_with_context() {
        assert_eq!(ssns("id 123-45-6788"), vec!["123-45-6788"]);
        assert!(ssns("id 123456788").is_empty());
        assert_eq!(ssns(r#"{"ssn": "123456788"}"#), vec!["123456788"]);
        assert_eq!(ssns("Social Security: 123 45 6788"), vec!["123 45 6788"]);
        assert!(ssns("id 666-45-6788").is_empty());
        assert!(ssns("phone 1-123-45-6788").is_empty());
    }
}

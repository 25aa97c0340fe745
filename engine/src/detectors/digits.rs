//! Anchorless numeric PII (payment cards, SSNs): one pass groups digits
//! into maximal runs, optionally split by single spaces or dashes, and each
//! numeric detector judges a run by its shape and checksum. No regex runs
//! over the body.

use super::validators::{iban_valid, luhn_valid, ssn_digits_valid, verhoeff_valid};
use super::{Cx, Span};

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
    pub(crate) fn is_embedded(&self, hay: &[u8]) -> bool {
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

/// Position of the first ASCII digit at or after `i` (or `hay.len()`),
/// eight bytes at a time: a byte is a digit iff `b ^ 0x30 < 10`, and the
/// SWAR "has byte less than" test flags exactly those (bytes >= 0x80 never
/// flag; a borrow only follows a flagged lower byte, so the lowest flag is
/// exact).
#[inline]
fn next_digit(hay: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    while i + 8 <= hay.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&hay[i..i + 8]);
        let t = u64::from_le_bytes(w) ^ (0x30 * ONES);
        let m = t.wrapping_sub(10 * ONES) & !t & (0x80 * ONES);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < hay.len() && !hay[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Position of the first byte at or after `i` that is not an ASCII digit
/// (or `hay.len()`), eight bytes at a time: with `t = b ^ 0x30`, a byte is
/// no digit iff `t >= 10`, i.e. its top bit is set or its low seven bits
/// plus 0x76 carry into the top bit (never into the next byte), so every
/// flag is exact.
#[inline]
fn digits_end(hay: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    while i + 8 <= hay.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&hay[i..i + 8]);
        let t = u64::from_le_bytes(w) ^ (0x30 * ONES);
        let m = (((t & (0x7f * ONES)) + 0x76 * ONES) | t) & (0x80 * ONES);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < hay.len() && hay[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Calls `f` for every maximal digit run in `hay`.
pub fn digit_runs(hay: &[u8], mut f: impl FnMut(&DigitRun)) {
    let mut i = 0;
    while i < hay.len() {
        if !hay[i].is_ascii_digit() {
            i = next_digit(hay, i + 1);
            continue;
        }
        let run = measure_run(hay, i);
        i = run.end;
        f(&run);
    }
}

/// The digit runs a numeric detector could accept (`wanted` is not
/// empty): like `digit_runs`, but the byte-class prefilter drops most runs
/// unmeasured, among them every run glued to a lower-case letter before it
/// (inside a hex digest, a UUID, an identifier) except after `bc` (bech32
/// `bc1…`): every numeric detector rejects those.
pub fn candidate_digit_runs(hay: &[u8], mut f: impl FnMut(&DigitRun)) {
    super::classes::candidates(hay, true, false, |c| {
        if let super::classes::Candidate::DigitRun(i) = c {
            let run = measure_run(hay, i);
            if wanted(hay, &run) != 0 {
                f(&run);
            }
        }
    });
}

/// One bit per digit-run detector, for `wanted`.
pub(crate) mod kind {
    pub const CARD: u16 = 1 << 0;
    pub const SSN: u16 = 1 << 1;
    pub const ITIN: u16 = 1 << 2;
    pub const PHONE: u16 = 1 << 3;
    pub const IBAN: u16 = 1 << 4;
    pub const IPV4: u16 = 1 << 5;
    pub const NINO: u16 = 1 << 6;
    pub const SIN: u16 = 1 << 7;
    pub const AADHAAR: u16 = 1 << 8;
    pub const BITCOIN: u16 = 1 << 9;

    /// The bit of a digit-run detector by id; every bit for an unknown one,
    /// so a new detector is offered every run until it gets its own.
    pub fn of(id: &str) -> u16 {
        match id {
            "payment_card" => CARD,
            "us_ssn" => SSN,
            "us_itin" => ITIN,
            "phone_number" => PHONE,
            "iban" => IBAN,
            "ipv4_address" => IPV4,
            "uk_nino" => NINO,
            "ca_sin" => SIN,
            "in_aadhaar" => AADHAAR,
            "bitcoin_address" => BITCOIN,
            _ => u16::MAX,
        }
    }
}

impl super::Builtin {
    /// This detector's `kind` bit, from a table built once.
    #[inline]
    pub(crate) fn digit_kind(self) -> u16 {
        static KINDS: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
        let kinds = KINDS.get_or_init(|| {
            super::ALL_BUILTINS
                .iter()
                .map(|b| kind::of(b.def().id))
                .collect()
        });
        kinds.get(usize::from(self.0)).copied().unwrap_or(u16::MAX)
    }
}

/// The detectors that can possibly accept `run` (`kind` bits): each one's
/// cheapest necessary conditions on the run's digit count, grouping and
/// neighbours, so a run is measured once and most reach one detector or
/// none. Only runs `run_may_matter` lets through count, as before.
#[inline]
pub(crate) fn wanted(hay: &[u8], run: &DigitRun) -> u16 {
    let at = |i: usize| hay.get(i).copied().unwrap_or(0);
    let prev = if run.start > 0 { at(run.start - 1) } else { 0 };
    let prev2 = if run.start > 1 { at(run.start - 2) } else { 0 };
    let next = at(run.end);
    let first = at(run.start);
    let glued = prev.is_ascii_alphanumeric() || prev == b'_';
    let d = run.digits;
    let mut want = 0;
    if !glued {
        // Issuers' first digits are 2 to 6 (`card_issuer_ok`): most
        // 13-digit runs are millisecond timestamps, which start with 1.
        if (13..=19).contains(&d) && prev != b'+' && (b'2'..=b'6').contains(&first) {
            want |= kind::CARD;
        }
        if d == 9 {
            // Area 9xx is no SSN but an ITIN's; SIN 8xx is a business's.
            want |= match first {
                b'9' => kind::SIN | kind::ITIN,
                b'8' => kind::SSN,
                _ => kind::SSN | kind::SIN,
            };
        }
        if d == 12 && first >= b'2' {
            want |= kind::AADHAAR;
        }
        // A phone number reads past its first run only over `.`, `(`,
        // `)`, or a separator before a parenthesis.
        let goes_on = matches!(next, b'.' | b'(' | b')')
            || (matches!(next, b' ' | b'-') && matches!(at(run.end + 1), b'(' | b')'));
        // It has at most 12 digits, 15 after a `+`, and it reads the
        // whole run when the run fits in its 24 bytes.
        let most = if prev == b'+' { 15 } else { 12 };
        let too_many = d > most && run.end - run.start <= 22;
        if !matches!(prev, b'/' | b':' | b',') && (d >= 10 || goes_on) && !too_many {
            want |= kind::PHONE;
        }
        if run.group_count == 1 && d <= 3 && next == b'.' && !matches!(prev, b'.' | b'-') {
            want |= kind::IPV4;
        }
        if matches!(first, b'1' | b'3') && run.group_count == 1 && next.is_ascii_alphabetic() {
            want |= kind::BITCOIN;
        }
    }
    if prev.is_ascii_uppercase() && prev2.is_ascii_uppercase() && iban_country(prev2, prev) {
        want |= kind::IBAN;
    }
    if d == 6 && (prev.is_ascii_uppercase() || (prev == b' ' && prev2.is_ascii_uppercase())) {
        want |= kind::NINO;
    }
    if prev == b'c' && prev2 == b'b' {
        want |= kind::BITCOIN;
    }
    if want != 0 && !run_may_matter(hay, run) {
        return 0;
    }
    want
}

/// Whether `iban_length` knows the two capitals `a b` as a country: a
/// bit per code, from `iban_length` itself at first use, where `iban`'s own
/// lookup walks the whole list (most capitals before a digit in JSON are
/// SKUs and ids, not IBANs).
#[inline]
fn iban_country(a: u8, b: u8) -> bool {
    static COUNTRIES: std::sync::OnceLock<[u32; 26]> = std::sync::OnceLock::new();
    let rows = COUNTRIES.get_or_init(|| {
        let mut rows = [0u32; 26];
        for (i, row) in rows.iter_mut().enumerate() {
            for j in 0..26u8 {
                if super::validators::iban_length(&[b'A' + i as u8, b'A' + j]).is_some() {
                    *row |= 1 << j;
                }
            }
        }
        rows
    });
    let (i, j) = (usize::from(a.wrapping_sub(b'A')), b.wrapping_sub(b'A'));
    j < 26 && rows.get(i).is_some_and(|row| row >> j & 1 == 1)
}

/// The maximal run starting at the digit `hay[i]`.
pub(crate) fn measure_run(hay: &[u8], mut i: usize) -> DigitRun {
    let n = hay.len();
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
        i = digits_end(hay, i);
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
    run
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
    // `+4915112345678` is a phone number in E.164, not a card.
    if run.start > 0 && hay[run.start - 1] == b'+' {
        return None;
    }
    if !card_grouping_ok(run.group_lengths()) {
        return None;
    }
    let digits = digits_of(hay, run.start, run.end);
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

const SSN_KEYWORD_WINDOW: usize = 48;

/// Card numbers of 17-19 digits printed without grouping look like any
/// long numeric id (request ids, snowflakes): they need a keyword.
pub(crate) fn payment_card_cx(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let span = payment_card(cx.hay, run)?;
    if run.digits > 16 && run.group_count == 1 && !cx.context_before(run.start, CONTEXT_WINDOW) {
        return None;
    }
    Some(span)
}

pub(crate) fn us_ssn(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let hay = cx.hay;
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
    if !dashed && !cx.context_before(run.start, SSN_KEYWORD_WINDOW) {
        return None;
    }
    Some(Span {
        start: run.start,
        end: run.end,
    })
}

/// Whether any numeric detector could accept `run`: the union of their
/// cheapest necessary conditions, so the many short digit runs inside hex
/// digests, UUIDs and identifiers skip every detector. Keep in step with
/// the digit-triggered detectors (a test runs all their examples).
#[inline]
pub fn run_may_matter(hay: &[u8], run: &DigitRun) -> bool {
    let at = |i: usize| hay.get(i).copied().unwrap_or(0);
    let prev = if run.start > 0 { at(run.start - 1) } else { 0 };
    let prev2 = if run.start > 1 { at(run.start - 2) } else { 0 };
    let next = at(run.end);
    let first = at(run.start);
    // SSN, ITIN, SIN, Aadhaar, cards and national phone numbers have at
    // least 9 digits.
    run.digits >= 9
        // UK NINO: six digits after two capitals ("AB123456C", "AB 12 34 56 C");
        // a phone number's first group before a dot or parenthesis.
        || (run.digits >= 6
            && (prev.is_ascii_uppercase()
                || (prev == b' ' && prev2.is_ascii_uppercase())
                || matches!(next, b'.' | b'(' | b')')))
        // Phone "(415) …" or E.164 "+1 …".
        || (prev == b'(' || prev == b'+')
        // IBAN "DE89…", NINO "AB123456C": two capitals at a word start
        // right before the digits.
        || (prev.is_ascii_uppercase()
            && prev2.is_ascii_uppercase()
            && !(run.start > 2 && at(run.start - 3).is_ascii_alphanumeric()))
        // Bitcoin bech32 "bc1q…", and base58 "1A1z…"/"3J98…": a word of at
        // least 26 base58 characters.
        || (first == b'1' && prev == b'c' && prev2 == b'b')
        || (matches!(first, b'1' | b'3')
            && next.is_ascii_alphabetic()
            && !prev.is_ascii_alphanumeric()
            && hay
                .get(run.start..run.start + 26)
                .is_some_and(|w| !has_zero_digit(w) && w.iter().all(|&b| super::network::is_base58(b))))
        // IPv4 dotted quad.
        || (run.digits <= 3 && next == b'.' && at(run.end + 1).is_ascii_digit())
}

/// Whether the 26-byte window holds a `0` (never base58), in four
/// overlapping eight-byte words: most words starting `1`/`3` before a
/// letter are hex digests, and four out of five of them have a `0` in
/// their first 26 bytes, so this rejects them without a byte loop. The
/// zero-byte test on `w ^ "00000000"` may flag a byte above a true zero
/// (a borrow), never a word without one.
#[inline]
fn has_zero_digit(w: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    [0, 8, 16, 18].iter().any(|&i| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&w[i..i + 8]);
        let t = u64::from_le_bytes(b) ^ (0x30 * ONES);
        t.wrapping_sub(ONES) & !t & (0x80 * ONES) != 0
    })
}

/// The digits of a short span, separators dropped, on the stack (at most
/// 40; callers have bounded the digit count before).
pub(crate) struct Digits {
    buf: [u8; 40],
    len: usize,
}

impl std::ops::Deref for Digits {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Digits of `hay[start..end]`, separators dropped.
pub(crate) fn digits_of(hay: &[u8], start: usize, end: usize) -> Digits {
    let mut d = Digits {
        buf: [0; 40],
        len: 0,
    };
    for &b in &hay[start..end] {
        if b.is_ascii_digit() && d.len < d.buf.len() {
            d.buf[d.len] = b;
            d.len += 1;
        }
    }
    d
}

const CONTEXT_WINDOW: usize = 48;

/// US ITIN: area 9XX, group 50-65, 70-88, 90-92 or 94-99.
pub(crate) fn us_itin(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let hay = cx.hay;
    if run.digits != 9 || run.mixed_separators || run.is_embedded(hay) {
        return None;
    }
    let dashed = run.separator == Some(b'-') && run.group_lengths() == [3, 2, 4];
    let spaced = run.separator == Some(b' ') && run.group_lengths() == [3, 2, 4];
    if !(dashed || spaced || run.group_count == 1) {
        return None;
    }
    let d = digits_of(hay, run.start, run.end);
    let group = u32::from(d[3] - b'0') * 10 + u32::from(d[4] - b'0');
    let group_ok = matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99);
    if d[0] != b'9' || !group_ok {
        return None;
    }
    if !dashed && !cx.context_before(run.start, CONTEXT_WINDOW) {
        return None;
    }
    Some(Span {
        start: run.start,
        end: run.end,
    })
}

fn is_phone_sep(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')')
}

/// Phone numbers. One candidate per number: the run that starts it.
pub(crate) fn phone_number(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let hay = cx.hay;
    let (start, plus) = phone_start(hay, run)?;
    // Most candidates are one run that ends the number (10-digit ids,
    // unix timestamps, "ORD-2022-553332"): within 24 bytes the number is
    // the run itself, and `phone_read` would find exactly that.
    let next = hay.get(run.end).copied();
    if !next.is_some_and(is_phone_sep) && run.end <= start + 24 {
        // "(415 555 0132" never closes its parenthesis.
        if hay[start] == b'(' || next.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        if run.group_count == 1 {
            return phone_digits_ok(cx, &hay[run.start..run.end], plus, start, run.end);
        }
        if !(10..=15).contains(&run.digits) {
            return None;
        }
        let d = digits_of(hay, run.start, run.end);
        return phone_digits_ok(cx, &d, plus, start, run.end);
    }
    phone_read(cx, start, plus)
}

/// Where a phone number starting with `run` begins (an opening
/// parenthesis or the E.164 plus belongs to it) and whether it has the
/// plus; `None` when the run continues an earlier number or token.
fn phone_start(hay: &[u8], run: &DigitRun) -> Option<(usize, bool)> {
    let mut start = run.start;
    // An opening parenthesis or the E.164 plus belongs to the number.
    let mut plus = false;
    if start > 0 && hay[start - 1] == b'(' {
        start -= 1;
        if start > 0 && hay[start - 1] == b'+' {
            return None; // "+(…" is not a shape we read
        }
    } else if start > 0 && hay[start - 1] == b'+' {
        start -= 1;
        plus = true;
    }
    // Not the continuation of an earlier number or token.
    if start > 0 {
        let mut j = start;
        let mut seps = 0;
        while j > 0 && is_phone_sep(hay[j - 1]) && seps < 2 {
            j -= 1;
            seps += 1;
        }
        if j > 0
            && (hay[j - 1].is_ascii_alphanumeric() || hay[j - 1] == b'_')
            && (seps == 0 || hay[j - 1].is_ascii_digit())
        {
            return None;
        }
        if seps == 0 && matches!(hay[start - 1], b'/' | b'.' | b':' | b',') {
            return None;
        }
        if j > 0 && seps > 0 && matches!(hay[j - 1], b')' | b'+') {
            return None;
        }
    }
    Some((start, plus))
}

/// Reads the number from `start`: digits and single separators, at most
/// 24 bytes, then judges its parentheses, neighbours and digits.
fn phone_read(cx: &Cx, start: usize, plus: bool) -> Option<Span> {
    let hay = cx.hay;
    let mut end = if plus { start + 1 } else { start };
    let limit = (start + 24).min(hay.len());
    let mut last_digit_end = end;
    let mut prev_sep = false;
    while end < limit {
        let b = hay[end];
        if b.is_ascii_digit() {
            prev_sep = false;
            end += 1;
            last_digit_end = end;
        } else if is_phone_sep(b) {
            if prev_sep && !matches!(b, b'(' | b')') && hay[end - 1] != b')' {
                break;
            }
            prev_sep = true;
            end += 1;
        } else {
            break;
        }
    }
    let end = last_digit_end;
    let opens = hay[start..end].iter().filter(|&&b| b == b'(').count();
    let closes = hay[start..end].iter().filter(|&&b| b == b')').count();
    if opens != closes || opens > 1 {
        return None;
    }
    if let Some(&next) = hay.get(end) {
        if next.is_ascii_alphanumeric() || next == b'_' {
            return None;
        }
        if next == b'.' && hay.get(end + 1).is_some_and(u8::is_ascii_digit) {
            return None;
        }
    }
    let text = &hay[start..end];
    // Dots only as the sole separator kind (415.555.0132), never mixed
    // into a decimal or a version string.
    if text.contains(&b'.') && text.iter().any(|&b| matches!(b, b' ' | b'-')) {
        return None;
    }
    phone_digits_ok(cx, &digits_of(hay, start, end), plus, start, end)
}

/// The digit tests of a phone number `hay[start..end]` whose digits are
/// `d`: E.164 length after a plus, else a national shape and a keyword.
fn phone_digits_ok(cx: &Cx, d: &[u8], plus: bool, start: usize, end: usize) -> Option<Span> {
    let n = d.len();
    if plus {
        if !(10..=15).contains(&n) || d[0] == b'0' {
            return None;
        }
        // A bare +digits run glued to a number before it (1e+10) is not a
        // phone; the walk above already rejected alphanumerics.
        return Some(Span { start, end });
    }
    if !(10..=12).contains(&n) || d.iter().all(|&x| x == d[0]) {
        return None;
    }
    let at = |i: usize| d[i] - b'0';
    let us = (n == 10 && at(0) >= 2 && at(3) >= 2)
        || (n == 11 && at(0) == 1 && at(1) >= 2 && at(4) >= 2);
    let uk = n == 11 && at(0) == 0 && matches!(at(1), 1 | 2 | 3 | 7 | 8);
    let de = (10..=12).contains(&n) && at(0) == 0 && at(1) != 0;
    let fr = n == 10 && at(0) == 0 && at(1) != 0;
    let india = (n == 10 && at(0) >= 6) || (n == 11 && at(0) == 0 && at(1) >= 6);
    let br = (n == 10 || (n == 11 && at(2) == 9)) && at(0) != 0 && at(1) != 0;
    if !(us || uk || de || fr || india || br) {
        return None;
    }
    // The keyword search last: it is the dearest check.
    if !cx.context_before(start, CONTEXT_WINDOW) {
        return None;
    }
    Some(Span { start, end })
}

/// IBAN: the digit run right after a two-letter country code.
pub(crate) fn iban(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let hay = cx.hay;
    let start = run.start.checked_sub(2)?;
    if !hay[start].is_ascii_uppercase() || !hay[start + 1].is_ascii_uppercase() {
        return None;
    }
    if start > 0 && (hay[start - 1].is_ascii_alphanumeric() || hay[start - 1] == b'_') {
        return None;
    }
    let want = super::validators::iban_length(&hay[start..start + 2])?;
    let mut compact = Vec::with_capacity(want);
    let mut i = start;
    while i < hay.len() && compact.len() < want {
        let b = hay[i];
        if b.is_ascii_digit() || b.is_ascii_uppercase() {
            compact.push(b);
            i += 1;
        } else if b == b' '
            && compact.len() % 4 == 0
            && hay.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric())
        {
            i += 1;
        } else {
            return None;
        }
    }
    if compact.len() != want {
        return None;
    }
    if let Some(&next) = hay.get(i) {
        if next.is_ascii_alphanumeric() || next == b'_' {
            return None;
        }
    }
    iban_valid(&compact).then_some(Span { start, end: i })
}

/// UK National Insurance number around a 6-digit run.
pub(crate) fn uk_nino(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let hay = cx.hay;
    let spaced = run.group_lengths() == [2, 2, 2] && run.separator == Some(b' ');
    if !(run.digits == 6 && (run.group_count == 1 || spaced)) {
        return None;
    }
    // Prefix letters, directly before or one space before.
    let mut p = run.start;
    if p >= 1 && hay[p - 1] == b' ' && spaced {
        p -= 1;
    }
    let start = p.checked_sub(2)?;
    let (a, b) = (hay[start], hay[start + 1]);
    if !a.is_ascii_uppercase() || !b.is_ascii_uppercase() {
        return None;
    }
    if start > 0 && (hay[start - 1].is_ascii_alphanumeric() || hay[start - 1] == b'_') {
        return None;
    }
    if b"DFIQUV".contains(&a) || b"DFIOQUV".contains(&b) {
        return None;
    }
    if matches!(
        &[a, b],
        b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ"
    ) {
        return None;
    }
    let mut end = run.end;
    if spaced && hay.get(end) == Some(&b' ') {
        end += 1;
    }
    let suffix = *hay.get(end)?;
    if !(b'A'..=b'D').contains(&suffix) {
        return None;
    }
    end += 1;
    if hay
        .get(end)
        .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
    {
        return None;
    }
    Some(Span { start, end })
}

/// Canadian SIN: 9 digits (3-3-3), Luhn, context.
pub(crate) fn ca_sin(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let hay = cx.hay;
    if run.digits != 9 || run.mixed_separators || run.is_embedded(hay) {
        return None;
    }
    if !(run.group_count == 1 || run.group_lengths() == [3, 3, 3]) {
        return None;
    }
    let d = digits_of(hay, run.start, run.end);
    if d[0] == b'8' {
        // 8 is for business numbers.
        return None;
    }
    if !luhn_valid(&d) || !cx.context_before(run.start, CONTEXT_WINDOW) {
        return None;
    }
    Some(Span {
        start: run.start,
        end: run.end,
    })
}

/// Aadhaar: 12 digits (4-4-4), first digit 2-9, Verhoeff, context.
pub(crate) fn in_aadhaar(cx: &Cx, run: &DigitRun) -> Option<Span> {
    let hay = cx.hay;
    if run.digits != 12 || run.mixed_separators || run.is_embedded(hay) {
        return None;
    }
    if !(run.group_count == 1 || run.group_lengths() == [4, 4, 4]) {
        return None;
    }
    let d = digits_of(hay, run.start, run.end);
    if d[0] < b'2' || !verhoeff_valid(&d) || !cx.context_before(run.start, CONTEXT_WINDOW) {
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
            .filter_map(|r| {
                us_ssn(
                    &Cx {
                        hay: s.as_bytes(),
                        field: b"",
                        keywords: super::super::Builtin::from_id("us_ssn")
                            .unwrap()
                            .info()
                            .keywords,
                        firsts: None,
                    },
                    r,
                )
            })
            .map(|sp| &s[sp.start..sp.end])
            .collect()
    }

    #[test]
    fn iban_country_is_iban_length() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let known = a.is_ascii_uppercase()
                    && b.is_ascii_uppercase()
                    && super::super::validators::iban_length(&[a, b]).is_some();
                assert_eq!(iban_country(a, b), known, "{a} {b}");
            }
        }
        assert!(iban_country(b'D', b'E') && !iban_country(b'D', b'M'));
    }

    #[test]
    fn next_digit_is_exact() {
        let hay = "abcdefghij/:klmno9pqrs é ü 7".as_bytes();
        for i in 0..hay.len() {
            let want = (i..hay.len())
                .find(|&j| hay[j].is_ascii_digit())
                .unwrap_or(hay.len());
            assert_eq!(next_digit(hay, i), want, "{i}");
        }
        let all: Vec<u8> = (0u8..=255).collect();
        for i in 0..all.len() {
            let want = (i..all.len())
                .find(|&j| all[j].is_ascii_digit())
                .unwrap_or(all.len());
            assert_eq!(next_digit(&all, i), want);
        }
    }

    #[test]
    fn digits_end_is_exact() {
        let mut all: Vec<u8> = (0u8..=255).collect();
        all.extend_from_slice(b"0123456789012345678/9:");
        for start in 0..all.len() {
            // Every byte after a digit prefix of every length.
            for len in 0..20 {
                let mut hay = vec![b'7'; len];
                hay.extend_from_slice(&all[start..]);
                let want = hay
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(hay.len());
                assert_eq!(digits_end(&hay, 0), want, "{start} {len}");
            }
        }
    }

    #[test]
    fn has_zero_digit_is_exact() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..20000 {
            let mut w = [0u8; 26];
            for b in w.iter_mut() {
                crate::test_rng::xorshift(&mut seed);
                // Mostly hex digits and letters, now and then any byte.
                *b = match seed % 4 {
                    0 => (seed >> 8) as u8,
                    _ => b"0123456789abcdefAZlOI"[((seed >> 8) % 21) as usize],
                };
            }
            assert_eq!(has_zero_digit(&w), w.contains(&b'0'), "{w:?}");
        }
    }

    #[test]
    fn candidate_runs_skip_runs_glued_to_lower_case() {
        let hay = b"x sha 3f9a0b12c4 d 41-11 a4111-1111 bc1qw 12";
        let mut all = Vec::new();
        digit_runs(hay, |r| all.push((r.start, r.end)));
        let mut kept = Vec::new();
        candidate_digit_runs(hay, |r| kept.push((r.start, r.end)));
        let text = |v: &[(usize, usize)]| -> Vec<String> {
            v.iter()
                .map(|&(s, e)| String::from_utf8_lossy(&hay[s..e]).into_owned())
                .collect()
        };
        // "9", "0", "12" follow hex letters and "4111-1111" follows "a";
        // "3", "4", "41-11" and the last "12" are too short for any
        // detector ("3f9a0b12c4" is too short for base58); "1" after "bc"
        // may start bech32.
        assert_eq!(text(&kept), ["1"]);
        assert!(all.len() > kept.len());
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

/// The prefilter (`classes::candidates` then `wanted`) against the plain
/// reference (every run `run_may_matter` lets through, offered to every
/// numeric detector): the same spans from the same detectors, over
/// generated text full of near misses.
#[cfg(test)]
mod prefilter_tests {
    use super::super::classes::{candidates, Candidate};
    use super::super::{Builtin, Input, ALL_BUILTINS};
    use super::*;

    const PIECES: &[&str] = &[
        "4111111111111111",
        "4111 1111 1111 1111",
        "378282246310005",
        "3782 822463 10005",
        "123-45-6788",
        "123456788",
        "912-70-1234",
        "912701234",
        "046 454 286",
        "046454286",
        "2345 6789 0124",
        "234567890124",
        "415.555.0132",
        "(415) 555-0132",
        "+1 415 555 0132",
        "+4915112345678",
        "020 7946 0958",
        "+33 1 23 45 67 89",
        "98765 43210",
        "5105105105105100",
        "6011111111111117",
        "2221000000000009",
        "1734481755541",
        "+491511234567890",
        "0 2 0 7 9 4 6 0 9 5 8 1 2",
        "862701234",
        "234567890124",
        "DE89370400440532013000",
        "GB82 WEST 1234 5698 7654 32",
        "AB123456C",
        "AB 12 34 56 C",
        "QQ123456C",
        "192.168.1.10",
        "10.0.0.1",
        "255.255.255.255",
        "1.2.3",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        "bc1",
        "bc2",
        "2025-07-05T20:36:07Z",
        "ORD-14957435",
        "1590.25",
        "173.77",
        "3c469249-27f2-4d24",
        "a66886a34170e50d",
        "1",
        "12",
        "123",
        "1234",
        "12345",
        "123456",
        "1234567",
        "12345678",
        "9",
        "99",
        "0",
        " ",
        " ",
        " ",
        "-",
        "-",
        ".",
        ".",
        "(",
        ")",
        "+",
        ":",
        ",",
        "\"",
        "\":\"",
        "{",
        "}",
        "_",
        "/",
        "x",
        "A",
        "Z",
        "c",
        "b",
        "bc",
        "T",
        "phone ",
        "ssn: ",
        "card ",
        "itin ",
        "sin ",
        "aadhaar ",
        "tel:",
        "\"phone\":\"",
        "\"card\":",
        "IBAN ",
        "ip ",
        "é",
    ];

    fn text(seed: &mut u64, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < len {
            crate::test_rng::xorshift(seed);
            let piece = PIECES[(*seed % PIECES.len() as u64) as usize].as_bytes();
            // Now and then cut a piece short.
            let cut = match (*seed >> 20) % 5 {
                0 => ((*seed >> 24) as usize) % (piece.len() + 1),
                _ => piece.len(),
            };
            out.extend_from_slice(&piece[..cut]);
        }
        out
    }

    fn digit_builtins() -> Vec<Builtin> {
        ALL_BUILTINS
            .iter()
            .copied()
            .filter(|b| matches!(b.def().how, super::super::catalogue::How::Digits(_)))
            .collect()
    }

    fn reference(hay: &[u8], dets: &[Builtin]) -> Vec<(usize, Span)> {
        let input = Input { hay, field: b"" };
        let mut out = Vec::new();
        digit_runs(hay, |run| {
            if run_may_matter(hay, run) {
                for (k, b) in dets.iter().enumerate() {
                    if let Some(span) = b.confirm_digits(&input, run) {
                        out.push((k, span));
                    }
                }
            }
        });
        out
    }

    fn prefiltered(hay: &[u8], dets: &[Builtin]) -> Vec<(usize, Span)> {
        let input = Input { hay, field: b"" };
        let mut out = Vec::new();
        candidates(hay, true, false, |c| {
            if let Candidate::DigitRun(i) = c {
                let run = measure_run(hay, i);
                let want = wanted(hay, &run);
                for (k, b) in dets.iter().enumerate() {
                    if b.digit_kind() & want != 0 {
                        if let Some(span) = b.confirm_digits(&input, &run) {
                            out.push((k, span));
                        }
                    }
                }
            }
        });
        out
    }

    /// `phone_number`'s plain-run shortcut against the general read, on
    /// every run of the generated text (near misses, cut pieces, keywords).
    #[test]
    fn phone_shortcut_is_the_read() {
        let keywords = Builtin::from_id("phone_number").unwrap().def().keywords;
        let mut seed = 0x2545_f491_4f6c_dd1d;
        let mut found = 0;
        for round in 0..3000 {
            let hay = text(&mut seed, 40 + round % 300);
            let cx = Cx {
                hay: &hay,
                field: b"",
                keywords,
                firsts: None,
            };
            digit_runs(&hay, |run| {
                let want = phone_start(&hay, run).and_then(|(s, plus)| phone_read(&cx, s, plus));
                found += usize::from(want.is_some());
                assert_eq!(
                    phone_number(&cx, run),
                    want,
                    "{}",
                    String::from_utf8_lossy(&hay)
                );
            });
        }
        assert!(found > 200, "{found}");
    }

    #[test]
    fn every_digit_detector_has_a_kind() {
        let dets = digit_builtins();
        assert_eq!(dets.len(), 10);
        for b in dets {
            assert_ne!(b.digit_kind(), u16::MAX, "{}", b.def().id);
        }
    }

    #[test]
    fn prefilter_finds_what_every_run_finds() {
        let dets = digit_builtins();
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let mut found = 0;
        for round in 0..3000 {
            let hay = text(&mut seed, 40 + round % 300);
            let want = reference(&hay, &dets);
            found += want.len();
            assert_eq!(
                prefiltered(&hay, &dets),
                want,
                "{}",
                String::from_utf8_lossy(&hay)
            );
        }
        // The generator does reach the detectors.
        assert!(found > 1000, "{found}");
    }
}

//! Secrets with a literal anchor, confirmed by a small anchored regex.
//!
//! The anchor (`xoxb-`, `sk_live_`, `.atlasv1.`, ...) comes from the shared
//! automaton. The token start is the anchor itself or, for anchors in the
//! middle of a token, found by walking back over the token's alphabet
//! (bounded). The confirming regex runs anchored at the token start over a
//! window of at most `max` bytes, so its cost is bounded per hit. Then the
//! byte after the token must end it, the token must not be a documented
//! placeholder, and an optional validator (checksum, structure) decides.

use super::shape::Shape;
use super::{Builtin, Cx, Span};
use regex::bytes::{Regex, RegexBuilder};
use std::sync::OnceLock;

pub(crate) struct TokenSpec {
    pub anchors: &'static [&'static str],
    /// Most bytes to walk back from the anchor to the token start; 0 when
    /// the token starts with its anchor.
    pub back: u16,
    /// The token's alphabet for the walk back.
    pub back_class: fn(u8) -> bool,
    /// The whole token, matched at the token start (no `^` needed).
    pub re: &'static str,
    /// Longest token; the regex never looks further.
    pub max: u16,
    /// A validator of the whole token (checksum, structure).
    pub check: Option<fn(&[u8]) -> bool>,
    /// The capture group that is the secret (0: the whole token).
    pub group: u8,
}

/// Defaults for `TokenSpec` literals in the catalogue.
pub(crate) const TOKEN: TokenSpec = TokenSpec {
    anchors: &[],
    back: 0,
    back_class: b64url_byte,
    re: "",
    max: 128,
    check: None,
    group: 0,
};

pub(crate) fn alnum_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
pub(crate) fn hex_byte(b: u8) -> bool {
    b.is_ascii_hexdigit()
}
pub(crate) fn b64url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}
pub(crate) fn azure_secret_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'~' | b'.')
}
pub(crate) fn digit_byte(b: u8) -> bool {
    b.is_ascii_digit()
}

static REGEXES: [OnceLock<Option<Regex>>; super::catalogue::DEFS.len()] =
    [const { OnceLock::new() }; super::catalogue::DEFS.len()];

static SHAPES: [OnceLock<Option<Shape>>; super::catalogue::DEFS.len()] =
    [const { OnceLock::new() }; super::catalogue::DEFS.len()];

/// The backtracking matcher of a token detector's pattern (built once per
/// process on first use; microseconds, unlike the regex).
fn shape_for(b: Builtin, spec: &TokenSpec) -> Option<&'static Shape> {
    SHAPES
        .get(b.0 as usize)?
        .get_or_init(|| Shape::new(spec.re))
        .as_ref()
}

pub(crate) fn prepare(b: Builtin, spec: &TokenSpec) {
    if shape_for(b, spec).is_none() {
        let _ = regex_for(b);
    }
}

/// The end of the token's match anchored at `window[0]`: the small matcher
/// when it has an answer, the regex engine otherwise (a pattern it cannot
/// express, or a window that exhausted its step budget).
fn find_end(b: Builtin, spec: &TokenSpec, window: &[u8]) -> Option<usize> {
    if let Some(shape) = shape_for(b, spec) {
        if let Ok(end) = shape.find(window) {
            return end;
        }
    }
    regex_for(b)?.find(window).map(|m| m.end())
}

/// The span of capture `group` of the token at `token[0]`, as `find_end`.
fn find_group(b: Builtin, spec: &TokenSpec, token: &[u8], group: usize) -> Option<(usize, usize)> {
    if let Some(shape) = shape_for(b, spec) {
        if let Ok(span) = shape.group(token, group) {
            return span;
        }
    }
    let caps = regex_for(b)?.captures(token)?;
    let part = caps.get(group)?;
    Some((part.start(), part.end()))
}

/// The compiled confirming regex of a token detector (compiled once per
/// process, on first use when the small matcher has no answer).
pub(crate) fn regex_for(b: Builtin) -> Option<&'static Regex> {
    let super::catalogue::How::Token(spec) = &b.def().how else {
        return None;
    };
    REGEXES
        .get(b.0 as usize)?
        .get_or_init(|| {
            RegexBuilder::new(&format!("^(?:{})", spec.re))
                .unicode(false)
                .size_limit(1 << 20)
                .build()
                .ok()
        })
        .as_ref()
}

pub(crate) fn confirm(b: Builtin, spec: &TokenSpec, cx: &Cx, anchor: usize) -> Option<Span> {
    let hay = cx.hay;
    let mut start = anchor;
    if spec.back > 0 {
        let limit = anchor.saturating_sub(spec.back as usize);
        while start > limit && (spec.back_class)(hay[start - 1]) {
            start -= 1;
        }
    }
    // The token must begin at a boundary: not glued to a longer word.
    if start > 0 && hay[start - 1].is_ascii_alphanumeric() {
        return None;
    }
    if spec.back > 0 && start > 0 && (spec.back_class)(hay[start - 1]) {
        return None;
    }
    let window_end = (start + spec.max as usize + 1).min(hay.len());
    let mut end = start + find_end(b, spec, &hay[start..window_end])?;
    // A trailing dot ends the sentence, not the token, when the token is
    // complete without it.
    while end > anchor + 1 && hay[end - 1] == b'.' {
        match find_end(b, spec, &hay[start..end - 1]) {
            Some(m) if start + m == end - 1 => end -= 1,
            _ => break,
        }
    }
    if end <= anchor {
        return None;
    }
    if let Some(&next) = hay.get(end) {
        if next.is_ascii_alphanumeric() || next == b'_' || next == b'-' {
            return None;
        }
    }
    let token = &hay[start..end];
    if looks_placeholder(token) {
        return None;
    }
    if let Some(check) = spec.check {
        if !check(token) {
            return None;
        }
    }
    if spec.group == 0 {
        return Some(Span { start, end });
    }
    let (s, e) = find_group(b, spec, &hay[start..end], spec.group as usize)?;
    Some(Span {
        start: start + s,
        end: (start + e).min(end),
    })
}

/// Filler words of documentation keys and placeholders.
static FILLERS: super::WordSet = super::WordSet::new(&[
    b"example",
    b"xxxxxxxx",
    b"00000000",
    b"********",
    b"aaaaaaaa",
    b"12345678",
    b"abcdefgh",
    b"changeme",
    b"placeholder",
    b"your_",
    b"your-",
    b"yourkey",
    b"redacted",
    b"dummy",
    b"insert",
]);

/// Vendors' documentation keys and obvious fillers: `...EXAMPLE...`,
/// `xxxxxxxx`, `00000000`, runs of one character, very few distinct bytes.
pub(crate) fn looks_placeholder(token: &[u8]) -> bool {
    FILLERS.found_in(token) || (token.len() >= 16 && few_distinct(token))
}

/// Fewer than 8 distinct bytes. A real token has 8 within its first few
/// dozen bytes, so the count stops there instead of reading the rest.
/// It counts bytes folded to their low 6 bits first: one 64-bit set, one
/// shift per byte (no 128-bit shifts, and a popcount per chunk of one word
/// instead of four; this target has no popcount instruction). Folding only
/// merges bytes, so 8 distinct folds prove 8 distinct bytes; a token that
/// never reaches 8 folds (a placeholder, mostly) is counted exactly.
fn few_distinct(token: &[u8]) -> bool {
    let mut folded = 0u64;
    for chunk in token.chunks(8) {
        for &b in chunk {
            folded |= 1u64 << (b & 63);
        }
        if folded.count_ones() >= 8 {
            return false;
        }
    }
    few_distinct_exact(token)
}

/// The exact count behind `few_distinct`. The seen-set lives in two
/// registers (ASCII and the rest), not in a bitmap in memory that each
/// byte would read and write back.
fn few_distinct_exact(token: &[u8]) -> bool {
    let (mut ascii, mut high) = (0u128, 0u128);
    for chunk in token.chunks(8) {
        for &b in chunk {
            let bit = 1u128 << (b & 127);
            if b < 128 {
                ascii |= bit;
            } else {
                high |= bit;
            }
        }
        if ascii.count_ones() + high.count_ones() >= 8 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_counts_the_whole_token() {
        let count = |t: &[u8]| {
            let mut seen = [false; 256];
            t.iter().for_each(|&b| seen[usize::from(b)] = true);
            seen.iter().filter(|&&x| x).count()
        };
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        // The second alphabet's bytes share their low 6 bits in threes
        // and fours: few folds, many bytes.
        let alphabets: [&[u8]; 2] = [
            b"a\xc3b\xa9c\xffd\x80efgh",
            b"\x01A\x81\xc1\x02B\x82\xc2\x03C\x83",
        ];
        for (len, alphabet) in (0..100usize).flat_map(|len| alphabets.map(|a| (len, a))) {
            for spread in 1..12u64 {
                let t: Vec<u8> = (0..len)
                    .map(|i| {
                        crate::test_rng::xorshift(&mut state);
                        // New bytes late in the token too.
                        if i == len.saturating_sub(1) && spread % 3 == 0 {
                            b'z'
                        } else {
                            alphabet[(state % spread) as usize]
                        }
                    })
                    .collect();
                assert_eq!(few_distinct(&t), count(&t) < 8, "{t:?}");
                assert_eq!(few_distinct_exact(&t), count(&t) < 8, "{t:?}");
            }
        }
    }

    /// Every token pattern of the catalogue runs on the small matcher, so
    /// no scan compiles a regex; and the matcher agrees with the regex
    /// engine on the detector's own examples and their truncations.
    #[test]
    fn every_token_pattern_has_a_matcher_that_agrees_with_its_regex() {
        for &b in super::super::ALL_BUILTINS {
            let super::super::catalogue::How::Token(spec) = &b.def().how else {
                continue;
            };
            let shape = Shape::new(spec.re)
                .unwrap_or_else(|| panic!("{}: no matcher for {}", b.info().id, spec.re));
            let re = regex_for(b).expect("regex compiles");
            for ex in b.info().positives.iter().chain(b.info().negatives) {
                let text = ex.replace(['«', '»'], "");
                let bytes = text.as_bytes();
                for &a in spec.anchors {
                    for (at, _) in text.match_indices(a) {
                        let from = at.saturating_sub(spec.back as usize);
                        for start in from..=at {
                            for end in start..=bytes.len() {
                                let w = &bytes[start..end];
                                assert_eq!(
                                    shape.find(w),
                                    Ok(re.find(w).map(|m| m.end())),
                                    "{}: {:?}",
                                    b.info().id,
                                    String::from_utf8_lossy(w)
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

//! Built-in detectors: the catalogue addressable from bundles by id.
//!
//! A detector never scans a whole buffer by itself. The scanner finds
//! candidates cheaply (a literal anchor or context keyword from the shared
//! literal prefilter (`anchors.rs`), an `@`, a `:`, a run of digits) and hands the
//! detector a position; the detector confirms on a small window around it
//! (a hand-written parser or an anchored regex over at most a few hundred
//! bytes) and validates (Luhn, SSN area rules, mod-97, Verhoeff, GitHub and
//! Atlassian CRC32, base58check, bech32, EIP-55, JWT structure, entropy).
//! This keeps the cost per byte independent of the number of detectors.
//!
//! The catalogue itself (ids, categories, defaults, context keywords,
//! examples) is one table in `catalogue.rs`; `policy-schema/CATALOGUE.md`
//! is generated from it by `catalogue_markdown`.

pub mod anchors;
mod catalogue;
pub(crate) mod classes;
pub mod crypto;
mod digits;
mod doc;
mod email;
mod keyword;
mod literal;
mod network;
mod shape;
mod tokens;
pub mod validators;
mod wordset;

use crate::bundle::{Action, Severity};
pub use digits::{candidate_digit_runs, digit_runs, run_may_matter, DigitRun};
pub(crate) use digits::{measure_run, wanted};
pub use doc::{catalogue_markdown, full_catalogue_bundle};
pub(crate) use wordset::WordSet;

/// A 16-byte table lookup by indices that are always below 16 (nibbles),
/// for the simd128 passes (anchors, classes). `i8x16.swizzle` zeroes
/// lanes with an index >= 16, which V8 lowers to `pshufb` plus a
/// saturating-add fix-up; the relaxed form is a bare `pshufb`, and both
/// agree on indices below 16. A module built without relaxed SIMD (see
/// the README) takes the plain swizzle.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub(crate) fn nibble_lookup(
    table: core::arch::wasm32::v128,
    idx: core::arch::wasm32::v128,
) -> core::arch::wasm32::v128 {
    #[cfg(target_feature = "relaxed-simd")]
    {
        core::arch::wasm32::i8x16_relaxed_swizzle(table, idx)
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        core::arch::wasm32::u8x16_swizzle(table, idx)
    }
}

/// A confirmed match of a detector: byte offsets into the scanned buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// How the scanner finds candidates for a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Case-sensitive literal anchors fed to the shared automaton.
    Literals(&'static [&'static str]),
    /// Context keywords, fed to the same automaton in their common
    /// spellings (`password`, `Password`, `PASSWORD`, `dbPassword`...).
    Keywords(&'static [&'static str]),
    /// Every `@` byte.
    AtSign,
    /// Every maximal run of digits (with single space or dash separators).
    DigitRun,
    /// Every `:` byte (IPv6).
    Colon,
}

/// How sure a match of the detector is, before any bundle context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// Documentation of one built-in detector, used by the CLI and the
/// generated catalogue.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinInfo {
    /// The id bundles name in `{"detector": {"builtin": ID}}`.
    pub id: &'static str,
    /// Default dotted category (`pii.email`, `secret.github_token`).
    pub category: &'static str,
    /// One-line doc.
    pub summary: &'static str,
    /// A value the detector finds (the first positive example).
    pub example: &'static str,
    pub severity: Severity,
    /// Default action in requests and in responses.
    pub request_action: Action,
    pub response_action: Action,
    pub confidence: Confidence,
    /// Context keywords (case-insensitive); header names and JSON keys
    /// count as context.
    pub keywords: &'static [&'static str],
    /// Texts the detector must find something in. The value found is the
    /// part between `«` and `»`, or the whole text without markers.
    pub positives: &'static [&'static str],
    /// Texts the detector must find nothing in.
    pub negatives: &'static [&'static str],
    /// Whether the embedded default bundle uses it.
    pub in_default_bundle: bool,
}

/// One built-in detector: an index into the catalogue table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Builtin(u16);

pub const ALL_BUILTINS: &[Builtin] = &{
    let mut all = [Builtin(0); catalogue::DEFS.len()];
    let mut i = 0;
    while i < all.len() {
        all[i] = Builtin(i as u16);
        i += 1;
    }
    all
};

/// The detector whose value end and value test wait for `settle`
/// (`Builtin::resolve`, `Builtin::settles`).
const GENERIC_SECRET: Builtin = builtin_by_id("generic_secret");

/// The catalogue entry `id`, at compile time (a missing id fails the
/// build).
const fn builtin_by_id(id: &str) -> Builtin {
    let id = id.as_bytes();
    let mut i = 0;
    while i < catalogue::DEFS.len() {
        let d = catalogue::DEFS[i].id.as_bytes();
        if d.len() == id.len() {
            let mut k = 0;
            while k < d.len() && d[k] == id[k] {
                k += 1;
            }
            if k == d.len() {
                return Builtin(i as u16);
            }
        }
        i += 1;
    }
    panic!("no such builtin")
}

/// Where a scan happens: the buffer and, for a header value, the header
/// name (lower-cased), which counts as context.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub hay: &'a [u8],
    pub field: &'a [u8],
}

/// What a confirming function sees: the input plus the detector's context
/// keywords.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'a> {
    pub hay: &'a [u8],
    pub field: &'a [u8],
    pub keywords: &'static [&'static str],
    /// `keyword_firsts(keywords)`, built with the program for catalogue
    /// entries (`None`: computed when needed).
    pub firsts: Option<&'static KeywordFirsts>,
}

/// The first bytes of a keyword list in both cases, as a 256-bit set,
/// and its first two bytes case-folded (`& 31`) as a 32 x 32 bit table:
/// `keyword_in` compares keywords only where a region byte is in the
/// first and the pair from it is in the second. Most bytes of a field
/// name start some phone or date keyword (`p`, `t`, `m`, `d`...); few
/// pairs do.
#[derive(Clone, Copy)]
pub(crate) struct KeywordFirsts {
    firsts: [u64; 4],
    /// Bit `b & 31` of `pairs[a & 31]`: a keyword starts with `a`, then
    /// `b` (every bit for a one-byte keyword).
    pairs: [u32; 32],
}

impl KeywordFirsts {
    /// A keyword may start at `region[i]`, whose byte is `b`.
    #[inline]
    fn admit(&self, region: &[u8], i: usize, b: u8) -> bool {
        self.firsts[usize::from(b >> 6)] >> (b & 63) & 1 == 1 && {
            let next = region.get(i + 1).copied().unwrap_or(0);
            self.pairs[usize::from(b & 31)] >> (next & 31) & 1 == 1
        }
    }
}

const fn keyword_firsts(keywords: &[&str]) -> KeywordFirsts {
    let mut firsts = [0u64; 4];
    let mut pairs = [0u32; 32];
    let mut i = 0;
    while i < keywords.len() {
        let kw = keywords[i].as_bytes();
        if !kw.is_empty() {
            let (lo, up) = (kw[0].to_ascii_lowercase(), kw[0].to_ascii_uppercase());
            firsts[(lo >> 6) as usize] |= 1 << (lo & 63);
            firsts[(up >> 6) as usize] |= 1 << (up & 63);
            // `& 31` maps both cases of a letter to one row and column.
            pairs[(kw[0] & 31) as usize] |= if kw.len() == 1 {
                u32::MAX
            } else {
                1 << (kw[1] & 31)
            };
        }
        i += 1;
    }
    KeywordFirsts { firsts, pairs }
}

/// `keyword_firsts` of every catalogue entry's keywords, at compile time:
/// a digit run's context check no longer rebuilds its detector's set
/// (15 phone keywords) on every call.
static KEYWORD_FIRSTS: [KeywordFirsts; catalogue::DEFS.len()] = {
    let mut t = [keyword_firsts(&[]); catalogue::DEFS.len()];
    let mut i = 0;
    while i < t.len() {
        t[i] = keyword_firsts(catalogue::DEFS[i].keywords);
        i += 1;
    }
    t
};

impl Cx<'_> {
    /// One of the detector's keywords occurs within `window` bytes before
    /// `pos`, or in the header name.
    /// The window stops at the previous field separator (`,` `{` `}` `[`
    /// `]` `&` `;` or a line break), so in JSON, form and line-oriented text
    /// a keyword only counts for its own field: `"phone":"…","order":"…"`
    /// gives no phone context to the order number.
    pub fn context_before(&self, pos: usize, window: usize) -> bool {
        let built;
        let firsts = match self.firsts {
            Some(f) => f,
            None => {
                built = keyword_firsts(self.keywords);
                &built
            }
        };
        keyword_in(self.field, self.keywords, firsts) || {
            let pos = pos.min(self.hay.len());
            let mut from = pos.saturating_sub(window);
            if let Some(sep) = self.hay[from..pos]
                .iter()
                .rposition(|b| matches!(b, b',' | b'{' | b'}' | b'[' | b']' | b'&' | b';' | b'\n'))
            {
                from += sep + 1;
            }
            keyword_in(&self.hay[from..pos], self.keywords, firsts)
        }
    }
}

/// Case-insensitive keyword search where a keyword must start a word: not
/// preceded by a lower-case letter unless it starts with a capital
/// (`userPhone`, `user_phone`, `PHONE` count; `telephone` counts for `tel`;
/// `hotel` does not).
/// One pass over the region: bitmaps of the keywords' first bytes (both
/// cases) and first two bytes pick the positions worth comparing, instead
/// of comparing every keyword at every position.
/// `firsts` is `keyword_firsts(keywords)`.
fn keyword_in(region: &[u8], keywords: &[&str], firsts: &KeywordFirsts) -> bool {
    if region.is_empty() {
        return false;
    }
    region.iter().enumerate().any(|(i, &b)| {
        firsts.admit(region, i, b)
            && {
                // Only the keywords with this first byte are compared.
                let c = b.to_ascii_lowercase();
                keywords.iter().any(|kw| {
                    let kw = kw.as_bytes();
                    kw.first().is_some_and(|f| f.to_ascii_lowercase() == c)
                        && region
                            .get(i..i + kw.len())
                            .is_some_and(|w| w.eq_ignore_ascii_case(kw))
                })
            }
            && starts_word(region, i)
    })
}

/// `keyword_in` as every keyword at every position: the reference the
/// tests hold it to.
#[cfg(test)]
fn keyword_in_slow(region: &[u8], keywords: &[&str]) -> bool {
    keywords.iter().any(|kw| {
        let kw = kw.as_bytes();
        !kw.is_empty()
            && region.len() >= kw.len()
            && region
                .windows(kw.len())
                .enumerate()
                .any(|(i, w)| w.eq_ignore_ascii_case(kw) && starts_word(region, i))
    })
}

#[inline]
fn starts_word(hay: &[u8], i: usize) -> bool {
    i == 0 || !hay[i - 1].is_ascii_lowercase() || hay[i].is_ascii_uppercase()
}

impl Builtin {
    pub fn from_id(id: &str) -> Option<Builtin> {
        ALL_BUILTINS.iter().copied().find(|b| b.def().id == id)
    }

    pub(crate) fn def(self) -> &'static catalogue::Def {
        &catalogue::DEFS[self.0 as usize]
    }

    pub fn info(self) -> BuiltinInfo {
        let d = self.def();
        BuiltinInfo {
            id: d.id,
            category: d.category,
            summary: d.summary,
            example: d
                .positives
                .first()
                .map(|p| doc::marked_value(p))
                .unwrap_or(""),
            severity: d.severity,
            request_action: d.actions[0],
            response_action: d.actions[1],
            confidence: d.confidence,
            keywords: d.keywords,
            positives: d.positives,
            negatives: d.negatives,
            in_default_bundle: d.in_default,
        }
    }

    pub fn trigger(self) -> Trigger {
        match &self.def().how {
            catalogue::How::Token(t) => Trigger::Literals(t.anchors),
            catalogue::How::Anchor { anchors, .. } => Trigger::Literals(anchors),
            catalogue::How::Keyword { .. } | catalogue::How::KeywordOrNear { .. } => {
                Trigger::Keywords(self.def().keywords)
            }
            catalogue::How::AtSign(_) => Trigger::AtSign,
            catalogue::How::Digits(_) => Trigger::DigitRun,
            catalogue::How::Colon(_) => Trigger::Colon,
        }
    }

    /// Literal anchors a keyword-triggered detector also starts from (the
    /// AWS secret key from a nearby access key id).
    pub fn extra_anchors(self) -> &'static [&'static str] {
        match &self.def().how {
            catalogue::How::KeywordOrNear { anchors, .. } => anchors,
            _ => &[],
        }
    }

    /// Generic detectors (entropy-based assignments, bearer values) give
    /// way to a specific detector that matched overlapping bytes.
    pub fn yields_to_specific(self) -> bool {
        self.def().yields
    }

    /// Builds whatever the detector needs to confirm (its token matcher)
    /// now rather than at its first anchor hit. Policies do not call this:
    /// a matcher is built from its parsed pattern in microseconds at first
    /// use. Cheap after the first call in a process.
    pub fn prepare(self) {
        if let catalogue::How::Token(t) = &self.def().how {
            tokens::prepare(self, t);
        }
    }

    fn cx<'a>(self, input: &Input<'a>) -> Cx<'a> {
        Cx {
            hay: input.hay,
            field: input.field,
            keywords: self.def().keywords,
            firsts: KEYWORD_FIRSTS.get(usize::from(self.0)),
        }
    }

    /// How a hit of the literal `pattern` (one of the detector's anchors
    /// or keyword spellings) is confirmed, decided once when a policy is
    /// compiled instead of at every hit: which branch of the detector's
    /// `How` applies depends only on the pattern's bytes.
    pub(crate) fn literal_confirmer(self, pattern: &[u8]) -> LiteralConfirmer {
        let how = match &self.def().how {
            catalogue::How::Token(t) => LiteralHow::Token(t),
            catalogue::How::Anchor { confirm, .. } => LiteralHow::Anchor(*confirm),
            catalogue::How::KeywordOrNear { anchors, near, .. }
                if anchors.iter().any(|a| a.as_bytes() == pattern) =>
            {
                LiteralHow::Anchor(*near)
            }
            catalogue::How::Keyword { value, .. } | catalogue::How::KeywordOrNear { value, .. } => {
                LiteralHow::Value(*value)
            }
            _ => LiteralHow::Nothing,
        };
        LiteralConfirmer {
            builtin: self,
            keywords: self.def().keywords,
            firsts: KEYWORD_FIRSTS.get(usize::from(self.0)),
            how,
        }
    }

    /// The span a confirmed span of a detector that yields to specific
    /// ones stands for, when `confirm_*` left finding its end to `settle`
    /// (`generic_secret`): same start, an end no further, `None` if there
    /// was no value after all. The span itself for every other detector.
    pub(crate) fn resolve(self, hay: &[u8], span: Span) -> Option<Span> {
        if self != GENERIC_SECRET {
            return Some(span);
        }
        keyword::resolve_generic_secret(hay, span)
    }

    /// The part of confirming that `confirm_*` leave to `settle`: a test of
    /// the reported bytes alone, for a detector that yields to specific
    /// ones, so `settle` can skip it for a span that is dropped anyway.
    /// True for every other detector. `span` is resolved (`resolve`).
    /// Inlined, so `settle` asks most spans (specific ones) without a
    /// call.
    #[inline]
    pub fn settles(self, hay: &[u8], span: Span) -> bool {
        self != GENERIC_SECRET || generic_secret_settles(hay, span)
    }

    /// A keyword-triggered detector whose keyword is the header name: the
    /// value is the header value itself.
    pub fn confirm_field_value(self, input: &Input) -> Option<Span> {
        match &self.def().how {
            catalogue::How::Keyword { value, .. } | catalogue::How::KeywordOrNear { value, .. } => {
                value(&self.cx(input), 0)
            }
            _ => None,
        }
    }

    /// Confirms around the `@` at `at`.
    pub fn confirm_at_sign(self, input: &Input, at: usize) -> Option<Span> {
        match &self.def().how {
            catalogue::How::AtSign(f) => f(&self.cx(input), at),
            _ => None,
        }
    }

    /// Confirms a digit run.
    pub fn confirm_digits(self, input: &Input, run: &DigitRun) -> Option<Span> {
        match &self.def().how {
            catalogue::How::Digits(f) => f(&self.cx(input), run),
            _ => None,
        }
    }

    /// Confirms around the `:` at `pos`.
    pub fn confirm_colon(self, input: &Input, pos: usize) -> Option<Span> {
        match &self.def().how {
            catalogue::How::Colon(f) => f(&self.cx(input), pos),
            _ => None,
        }
    }
}

/// `Builtin::settles` for `generic_secret`.
fn generic_secret_settles(hay: &[u8], span: Span) -> bool {
    hay.get(span.start..span.end)
        .is_some_and(keyword::generic_secret_value)
}

/// One detector's confirmation of a literal hit, resolved for one pattern
/// (`Builtin::literal_confirmer`): the scanner's literal loop calls it
/// without going through the catalogue entry per hit.
#[derive(Clone, Copy)]
pub(crate) struct LiteralConfirmer {
    builtin: Builtin,
    keywords: &'static [&'static str],
    firsts: Option<&'static KeywordFirsts>,
    how: LiteralHow,
}

#[derive(Clone, Copy)]
enum LiteralHow {
    Token(&'static tokens::TokenSpec),
    /// `confirm(cx, start, end)`: an anchor's own confirmation, or the
    /// `near` search of a keyword detector's related anchor.
    Anchor(fn(&Cx, usize, usize) -> Option<Span>),
    /// A keyword spelling: the value after it, if the keyword starts a word.
    Value(fn(&Cx, usize) -> Option<Span>),
    /// Not a literal-triggered detector.
    Nothing,
}

impl std::fmt::Debug for LiteralConfirmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LiteralConfirmer")
            .field(&self.builtin.def().id)
            .finish()
    }
}

impl LiteralConfirmer {
    /// Confirms a literal-anchor or keyword hit at `hay[start..end]`.
    #[inline]
    pub(crate) fn confirm(&self, input: &Input, start: usize, end: usize) -> Option<Span> {
        let cx = Cx {
            hay: input.hay,
            field: input.field,
            keywords: self.keywords,
            firsts: self.firsts,
        };
        let span = match self.how {
            LiteralHow::Token(t) => tokens::confirm(self.builtin, t, &cx, start),
            LiteralHow::Anchor(confirm) => confirm(&cx, start, end),
            LiteralHow::Value(value) => {
                if !starts_word(input.hay, start) {
                    return None;
                }
                value(&cx, end)
            }
            LiteralHow::Nothing => None,
        }?;
        (span.end > span.start && span.end <= input.hay.len()).then_some(span)
    }
}

/// The spellings of a context keyword fed to the case-sensitive automaton:
/// as written (lower case), UPPER, Capitalised, and for `snake_case`
/// keywords also `camelCase` and `PascalCase`.
pub fn keyword_variants(kw: &str) -> Vec<String> {
    let lower = kw.to_ascii_lowercase();
    let mut out = vec![lower.clone(), lower.to_ascii_uppercase()];
    let mut cap = lower.clone();
    if let Some(first) = cap.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out.push(cap);
    if lower.contains('_') || lower.contains(' ') || lower.contains('-') {
        let mut camel = String::new();
        let mut upper_next = false;
        for c in lower.chars() {
            if c == '_' || c == ' ' || c == '-' {
                upper_next = true;
            } else if upper_next {
                camel.push(c.to_ascii_uppercase());
                upper_next = false;
            } else {
                camel.push(c);
            }
        }
        let mut pascal = camel.clone();
        if let Some(first) = pascal.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        out.push(camel);
        out.push(pascal);
    }
    out.sort();
    out.dedup();
    out
}

/// `a == b` for the short slices of confirmation (a token's literal
/// part, an anchor's bytes past its first 16) without a call to `memcmp`:
/// up to 16 bytes as two overlapping words a side, longer ones compared
/// the usual way.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w8 = |s: &[u8], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let w4 = |s: &[u8], i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    match n {
        0 => true,
        1..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        _ => a == b,
    }
}

/// True for bytes that may continue an identifier-like token; used for
/// word-boundary checks on both sides of a match.
#[inline]
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Case-insensitive search for any keyword in the `window` bytes before
/// `pos`.
pub(crate) fn has_keyword_before(
    hay: &[u8],
    pos: usize,
    window: usize,
    keywords: &[&[u8]],
) -> bool {
    let from = pos.saturating_sub(window);
    let region = &hay[from..pos];
    keywords
        .iter()
        .any(|kw| !kw.is_empty() && region.windows(kw.len()).any(|w| w.eq_ignore_ascii_case(kw)))
}

/// Parses a pattern the way the engine's regexes read it (bytes, no
/// Unicode classes, as `compile` builds them), for code that inspects a
/// pattern's structure instead of running it.
pub(crate) fn parse_byte_pattern(pattern: &str) -> Option<regex_syntax::hir::Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for b in ALL_BUILTINS {
            let id = b.info().id;
            assert!(seen.insert(id), "duplicate id {id}");
            assert_eq!(Builtin::from_id(id), Some(*b));
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
                "{id} is not snake_case"
            );
        }
        assert_eq!(Builtin::from_id("nope"), None);
    }

    #[test]
    fn keyword_search_is_case_insensitive_and_windowed() {
        let hay = b"my SSN is 123456789";
        assert!(has_keyword_before(hay, 10, 16, &[b"ssn"]));
        assert!(!has_keyword_before(hay, 10, 3, &[b"ssn"]));
    }

    #[test]
    fn keyword_in_agrees_with_every_keyword_at_every_position() {
        let keywords: &[&str] = &["tel", "phone", "ssn", "date of birth", "Zip", "#"];
        let alphabet = b"telphonsiDATEOFBIRTHzZ# _-x";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut found = 0;
        for len in 0..60usize {
            for _ in 0..200 {
                let region: Vec<u8> = (0..len)
                    .map(|_| {
                        crate::test_rng::xorshift(&mut state);
                        alphabet[(state >> 8) as usize % alphabet.len()]
                    })
                    .collect();
                let want = keyword_in_slow(&region, keywords);
                let firsts = keyword_firsts(keywords);
                assert_eq!(keyword_in(&region, keywords, &firsts), want, "{region:?}");
                found += usize::from(want);
            }
        }
        assert!(found > 100);
        for (region, want) in [
            (&b"userPhone"[..], true),
            (b"telephone", true),
            (b"hotel", false),
            (b"DATE OF BIRTH:", true),
            (b"", false),
        ] {
            assert_eq!(
                keyword_in(region, keywords, &keyword_firsts(keywords)),
                want,
                "{region:?}"
            );
        }
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..40usize {
            for _ in 0..200 {
                let a: Vec<u8> = (0..n)
                    .map(|_| {
                        crate::test_rng::xorshift(&mut state);
                        b"ab"[(state >> 8) as usize % 2]
                    })
                    .collect();
                let mut b = a.clone();
                if n > 0 && state.is_multiple_of(3) {
                    let i = (state >> 20) as usize % n;
                    b[i] ^= 1;
                }
                assert_eq!(same_bytes(&a, &b), a == b, "{a:?} {b:?}");
                assert!(!same_bytes(&a, &b[..n.saturating_sub(1)]) || n == 0);
            }
        }
    }

    #[test]
    fn keyword_variants_cover_common_spellings() {
        let v = keyword_variants("client_secret");
        for s in [
            "client_secret",
            "CLIENT_SECRET",
            "Client_secret",
            "clientSecret",
            "ClientSecret",
        ] {
            assert!(v.contains(&s.to_string()), "{s}");
        }
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// Runs a detector alone over `text` the way the scanner does.
    pub(crate) fn find_with(b: Builtin, text: &str) -> Vec<(usize, usize)> {
        let bundle = format!(
            r#"{{"version":1,"metadata":{{"name":"t","revision":"1"}},"rules":[{{"id":"r","category":"c","detector":{{"builtin":"{}"}},"action":"alert"}}]}}"#,
            b.info().id
        );
        let p = crate::CompiledPolicy::from_json(bundle.as_bytes()).expect("compiles");
        p.scan(
            crate::Direction::Request,
            crate::Target::Body {
                content_type: Some("text/plain"),
            },
            text.as_bytes(),
        )
        .iter()
        .map(|f| (f.start, f.end))
        .collect()
    }

    fn strip_marks(example: &str) -> (String, Option<(usize, usize)>) {
        match (example.find('«'), example.find('»')) {
            (Some(s), Some(e)) if e > s => {
                let text = example.replace(['«', '»'], "");
                (text, Some((s, e - '«'.len_utf8())))
            }
            _ => (example.to_string(), None),
        }
    }

    #[test]
    fn json_escaped_values_are_found_and_redacted_without_breaking_json() {
        let p = crate::CompiledPolicy::embedded_default().unwrap();
        let t = crate::Target::Body {
            content_type: Some("application/json"),
        };
        let body = br#"{"to":"jo\u0040example.org","db":"mysql:\/\/root:Q7v-x9Lk2@db\/app"}"#;
        let ins = p.inspect(crate::Direction::Response, t, body);
        let out = ins.rewritten.expect("redacted");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("still JSON");
        assert!(!v["to"].as_str().unwrap().contains("jo@"), "{v}");
        assert!(!v["db"].as_str().unwrap().contains("Q7v-x9Lk2"), "{v}");
        assert!(
            v["db"].as_str().unwrap().starts_with("mysql://root:"),
            "{v}"
        );
    }

    /// Hostile input: every prefix and suffix of every example, and random
    /// bytes biased towards anchor characters, through the whole catalogue.
    /// Nothing may panic (slicing past the end is the usual way).
    #[test]
    fn no_input_makes_a_detector_panic() {
        let rules: Vec<String> = ALL_BUILTINS
            .iter()
            .map(|b| {
                format!(
                    r#"{{"id":"{id}","category":"c","detector":{{"builtin":"{id}"}},"action":"redact"}}"#,
                    id = b.info().id
                )
            })
            .collect();
        let bundle = format!(
            r#"{{"version":1,"metadata":{{"name":"all","revision":"1"}},"rules":[{}]}}"#,
            rules.join(",")
        );
        let p = crate::CompiledPolicy::from_json(bundle.as_bytes()).unwrap();
        let scan = |data: &[u8]| {
            for ct in [
                "application/json",
                "text/plain",
                "application/x-www-form-urlencoded",
            ] {
                let t = crate::Target::Body {
                    content_type: Some(ct),
                };
                let _ = p.inspect(crate::Direction::Request, t, data);
            }
            let _ = p.inspect(
                crate::Direction::Request,
                crate::Target::Header { name: "X-Api-Key" },
                data,
            );
        };
        for b in ALL_BUILTINS {
            for ex in b.info().positives.iter().chain(b.info().negatives) {
                let bytes = ex.replace(['«', '»'], "").into_bytes();
                for i in 0..=bytes.len() {
                    scan(&bytes[..i]);
                    scan(&bytes[i..]);
                }
            }
        }
        let alphabet = b"0123456789abcdefABCDEF@:./-_+=~ \"{}Q~AKIAghp_xoxb-eyJ\\u0040(),\n";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [1usize, 7, 64, 300, 4096] {
            for _ in 0..50 {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        crate::test_rng::xorshift(&mut state);
                        if state.is_multiple_of(5) {
                            (state >> 24) as u8
                        } else {
                            alphabet[(state >> 8) as usize % alphabet.len()]
                        }
                    })
                    .collect();
                scan(&data);
            }
        }
    }

    #[test]
    fn header_names_count_as_context() {
        let bundle = r#"{"version":1,"metadata":{"name":"h","revision":"1"},"rules":[
            {"id":"g","category":"secret.generic","detector":{"builtin":"generic_secret"},"action":"redact",
             "scope":{"request":{"headers":["X-Api-Key","X-Other"]}}},
            {"id":"dd","category":"secret.datadog_api_key","detector":{"builtin":"datadog_api_key"},"action":"block",
             "scope":{"request":{"headers":["DD-API-KEY"]}}},
            {"id":"ssn","category":"pii.us_ssn","detector":{"builtin":"us_ssn"},"action":"redact",
             "scope":{"request":{"headers":["X-Customer-SSN"]}}}]}"#;
        let p = crate::CompiledPolicy::from_json(bundle.as_bytes()).unwrap();
        let scan = |name: &str, value: &str| {
            p.scan(
                crate::Direction::Request,
                crate::Target::Header { name },
                value.as_bytes(),
            )
            .iter()
            .map(|f| (f.rule_id.to_string(), f.start, f.end))
            .collect::<Vec<_>>()
        };
        assert_eq!(
            scan("X-Api-Key", "f3Kp9Zq2Lx7Vw4Rt8Yb1"),
            [("g".to_string(), 0, 20)]
        );
        assert!(scan("X-Other", "f3Kp9Zq2Lx7Vw4Rt8Yb1").is_empty());
        assert_eq!(
            scan("dd-api-key", "3f1c9a7be2d04c5a8e6f9b1d2c3e4f5a"),
            [("dd".to_string(), 0, 32)]
        );
        assert_eq!(
            scan("X-Customer-SSN", "123456788"),
            [("ssn".to_string(), 0, 9)]
        );
    }

    #[test]
    fn every_example_behaves_as_documented() {
        let mut failures = Vec::new();
        for &b in ALL_BUILTINS {
            let info = b.info();
            assert!(
                !info.positives.is_empty(),
                "{} has no positive example",
                info.id
            );
            for p in info.positives {
                let (text, marked) = strip_marks(p);
                let contexts: Vec<(String, usize)> = match marked {
                    Some(_) => vec![(text.clone(), 0)],
                    None => vec![
                        (text.clone(), 0),
                        (format!("{{\"v\":\"{text}\"}}"), 6),
                        (format!("a=1&v={text}&b=2"), 6),
                        (format!("héllo — {text}. ok"), "héllo — ".len()),
                    ],
                };
                for (hay, offset) in contexts {
                    let want = match marked {
                        Some(m) => m,
                        None => (offset, offset + text.len()),
                    };
                    let got = find_with(b, &hay);
                    if !got.contains(&want) {
                        failures.push(format!(
                            "{}: expected {:?} in {hay:?}, got {got:?}",
                            info.id,
                            &hay[want.0..want.1]
                        ));
                    }
                }
            }
            for n in info.negatives {
                let got = find_with(b, n);
                if !got.is_empty() {
                    failures.push(format!("{}: negative {n:?} matched {got:?}", info.id));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

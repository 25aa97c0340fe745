//! Detectors driven by a context keyword: the keyword (a JSON key, a form
//! field, an env variable, a header name) comes from the shared automaton,
//! and the detector reads the value assigned to it or following it within a
//! few dozen bytes. `kw_end == 0` means the keyword was the header name and
//! the whole buffer is the value.

use super::tokens::looks_placeholder;
use super::validators::{entropy_at_least, ByteStats};
use super::{Cx, Span};

/// Longest value an assignment detector reads.
const MAX_VALUE: usize = 256;

/// After a keyword ending at `kw_end`: the rest of the key, its closing
/// quote, a separator (`:`, `=`, `:=`, `=>`), and the value's opening quote.
/// Returns where the value starts, its quote byte if any, and the key
/// suffix after the keyword (`_hash` in `password_hash`).
fn assignment(hay: &[u8], kw_end: usize) -> Option<(usize, Option<u8>, &[u8])> {
    if kw_end == 0 {
        let mut i = 0;
        while i < hay.len() && hay[i] == b' ' {
            i += 1;
        }
        return Some((i, None, b""));
    }
    let suffix = key_suffix(hay, kw_end);
    let mut i = kw_end + suffix.len();
    // Closing quote of the key (JSON, YAML, code), or a JSON-escaped one.
    if hay.get(i) == Some(&b'\\') && hay.get(i + 1) == Some(&b'"') {
        i += 2;
    } else if matches!(hay.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    // A JSON member's `":"`, the common case, without the blank and
    // separator steps (each finds nothing more to skip).
    if hay.get(i..i + 2) == Some(b":\"") {
        return Some((i + 2, Some(b'"'), suffix));
    }
    while i < hay.len() && matches!(hay[i], b' ' | b'\t') && i - kw_end < 40 {
        i += 1;
    }
    match hay.get(i) {
        Some(b'=') => {
            i += 1;
            if hay.get(i) == Some(&b'>') {
                i += 1;
            }
        }
        Some(b':') => {
            i += 1;
            if hay.get(i) == Some(&b'=') {
                i += 1;
            }
        }
        _ => return None,
    }
    while i < hay.len() && matches!(hay[i], b' ' | b'\t') && i - kw_end < 48 {
        i += 1;
    }
    let mut quote = None;
    if hay.get(i) == Some(&b'\\') && hay.get(i + 1) == Some(&b'"') {
        i += 2;
        quote = Some(b'\\');
    } else if let Some(&q @ (b'"' | b'\'' | b'`')) = hay.get(i) {
        i += 1;
        quote = Some(q);
    }
    Some((i, quote, suffix))
}

/// The rest of the key after a keyword ending at `kw_end` (`_hash` in
/// `password_hash`), at most 32 bytes.
fn key_suffix(hay: &[u8], kw_end: usize) -> &[u8] {
    let rest = hay.get(kw_end..(kw_end + 32).min(hay.len())).unwrap_or(&[]);
    &rest[..rest
        .iter()
        .position(|&b| !KEY_REST[usize::from(b)])
        .unwrap_or(rest.len())]
}

/// The quote `assignment` took before a value starting at `start`, read
/// back from the byte before it: a byte before the value that is no
/// opening quote is a separator or a blank (or the header value's start),
/// and one before an opening quote is never a backslash, so `\"` there is
/// the JSON-escaped quote.
fn quote_before(hay: &[u8], start: usize) -> Option<u8> {
    let before = |k: usize| start.checked_sub(k).and_then(|i| hay.get(i)).copied();
    match before(1)? {
        b'"' if before(2) == Some(b'\\') => Some(b'\\'),
        q @ (b'"' | b'\'' | b'`') => Some(q),
        _ => None,
    }
}

/// Bytes of the rest of a key after its keyword (`_hash`, `-id`, `.v2`):
/// one table load per byte instead of a chain of compares.
static KEY_REST: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.');
        b += 1;
    }
    t
};

/// Bytes that may end a value, per quote: the quote itself and line
/// breaks, a backslash (it ends the value when it escapes a `"`), and for
/// unquoted values whitespace and delimiters. One lookup per byte instead
/// of a chain of compares.
const fn stop_table(quote: Option<u8>) -> [bool; 256] {
    let mut t = [false; 256];
    match quote {
        Some(q) => {
            t[q as usize] = true;
            t[b'\n' as usize] = true;
            t[b'\r' as usize] = true;
            t[b'\\' as usize] = true;
        }
        None => {
            let mut b = 0;
            while b < 256 {
                let c = b as u8;
                t[b] = c.is_ascii_whitespace()
                    || matches!(
                        c,
                        b'&' | b',' | b';' | b'}' | b']' | b')' | b'"' | b'\'' | b'<' | b'>'
                    );
                b += 1;
            }
        }
    }
    t
}

static STOP_DQUOTE: [bool; 256] = stop_table(Some(b'"'));
static STOP_SQUOTE: [bool; 256] = stop_table(Some(b'\''));
static STOP_BACKTICK: [bool; 256] = stop_table(Some(b'`'));
static STOP_ESCAPED: [bool; 256] = stop_table(Some(b'\\'));
static STOP_BARE: [bool; 256] = stop_table(None);

/// The value from `start`: up to its closing quote, or for unquoted values
/// up to whitespace or a delimiter (`&`, `,`, `;`, `}`...).
fn value_end(hay: &[u8], start: usize, quote: Option<u8>) -> Option<usize> {
    let limit = (start + MAX_VALUE + 1).min(hay.len());
    let stop = match quote {
        Some(b'"') => &STOP_DQUOTE,
        Some(b'\'') => &STOP_SQUOTE,
        Some(b'`') => &STOP_BACKTICK,
        Some(b'\\') => &STOP_ESCAPED,
        Some(_) => return value_end_slow(hay, start, quote),
        None => &STOP_BARE,
    };
    // A backslash ends a quoted value only before a `"` (a JSON-escaped
    // closing quote), unless it is the quote itself.
    let ends = |i: usize| {
        quote.is_none() || hay[i] != b'\\' || quote == Some(b'\\') || hay.get(i + 1) == Some(&b'"')
    };
    let mut i = start;
    // Quoted values: 16 bytes a step through the four stop bytes (most
    // values are a few dozen bytes, most bytes no stop).
    if let Some(q) = quote {
        'blocks: while let Some(block) = hay.get(i..i + 16).filter(|_| i + 16 <= limit) {
            let mut m = quoted_stops(block, q);
            while m != 0 {
                let j = i + m.trailing_zeros() as usize;
                if ends(j) {
                    i = j;
                    break 'blocks;
                }
                m &= m - 1;
            }
            i += 16;
        }
    }
    while i < limit {
        if stop[usize::from(hay[i])] && ends(i) {
            break;
        }
        i += 1;
    }
    if i == limit && limit - start > MAX_VALUE {
        return None;
    }
    (i > start).then_some(i)
}

/// Bit `k` set: `block[k]` is `q`, a line break or a backslash (the stop
/// bytes of a value quoted with `q`). `block` has at least 16 bytes.
#[inline]
fn quoted_stops(block: &[u8], q: u8) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64; the load reads block[0..16],
        // in bounds as the caller guarantees 16 bytes (checked below).
        if block.len() >= 16 {
            return unsafe {
                let v = _mm_loadu_si128(block.as_ptr().cast());
                let eq = |b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
                let m = _mm_or_si128(
                    _mm_or_si128(eq(q), eq(b'\n')),
                    _mm_or_si128(eq(b'\r'), eq(b'\\')),
                );
                _mm_movemask_epi8(m) as u32
            };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::*;
        if block.len() >= 16 {
            // SAFETY: block has at least 16 bytes (checked just above);
            // v128_load has no alignment requirement.
            let v = unsafe { v128_load(block.as_ptr().cast()) };
            let eq = |b: u8| u8x16_eq(v, u8x16_splat(b));
            let m = v128_or(v128_or(eq(q), eq(b'\n')), v128_or(eq(b'\r'), eq(b'\\')));
            return u32::from(u8x16_bitmask(m));
        }
    }
    quoted_stops_scalar(block, q)
}

/// `quoted_stops` byte by byte: the other targets' path, and the
/// reference the tests hold the vector paths to.
fn quoted_stops_scalar(block: &[u8], q: u8) -> u32 {
    block
        .iter()
        .take(16)
        .enumerate()
        .filter(|&(_, &b)| b == q || matches!(b, b'\n' | b'\r' | b'\\'))
        .fold(0, |m, (k, _)| m | 1 << k)
}

/// `value_end` byte by byte, for any quote byte; the reference the tests
/// hold the table path to.
fn value_end_slow(hay: &[u8], start: usize, quote: Option<u8>) -> Option<usize> {
    let limit = (start + MAX_VALUE + 1).min(hay.len());
    let mut i = start;
    while i < limit {
        let b = hay[i];
        let stop = match quote {
            Some(q) => {
                b == q
                    || b == b'\n'
                    || b == b'\r'
                    || (q != b'\\' && b == b'\\' && hay.get(i + 1) == Some(&b'"'))
            }
            None => {
                b.is_ascii_whitespace()
                    || matches!(
                        b,
                        b'&' | b',' | b';' | b'}' | b']' | b')' | b'"' | b'\'' | b'<' | b'>'
                    )
            }
        };
        if stop {
            break;
        }
        i += 1;
    }
    if i == limit && limit - start > MAX_VALUE {
        return None;
    }
    (i > start).then_some(i)
}

/// Key suffixes that name something other than the secret itself.
static BENIGN_SUFFIXES: super::WordSet = super::WordSet::new(&[
    b"type",
    b"name",
    b"id",
    b"url",
    b"uri",
    b"hash",
    b"len",
    b"length",
    b"count",
    b"expir",
    b"hint",
    b"policy",
    b"file",
    b"path",
    b"field",
    b"label",
    b"required",
    b"reset",
    b"changed",
    b"updated",
    b"created",
    b"version",
    b"format",
    b"endpoint",
    b"header",
    b"prefix",
    b"ttl",
    b"enabled",
    b"strength",
    b"min",
    b"max",
    b"rotation",
    b"age",
    b"scope",
    b"status",
    b"kind",
]);

#[inline(always)]
fn benign_suffix(suffix: &[u8]) -> bool {
    BENIGN_SUFFIXES.found_in(suffix)
}

/// Placeholders people put where a secret goes.
static PLACEHOLDER_WORDS: super::WordSet = super::WordSet::new(&[
    b"${",
    b"{{",
    b"<",
    b">",
    b"xxxx",
    b"****",
    b"....",
    b"changeme",
    b"change_me",
    b"example",
    b"password",
    b"secret",
    b"your",
    b"replace",
    b"todo",
    b"fixme",
    b"sample",
    b"dummy",
    b"null",
    b"none",
    b"undefined",
    b"redacted",
    b"process.env",
    b"os.environ",
    b"getenv",
    b"env(",
    b"vault:",
    b"arn:aws",
    b"$(",
]);

fn placeholder_value(v: &[u8]) -> bool {
    if PLACEHOLDER_WORDS.found_in(v) {
        return true;
    }
    let is = |w: &[u8]| v.eq_ignore_ascii_case(w);
    v.starts_with(b"%(")
        || is(b"true")
        || is(b"false")
        || is(b"bearer")
        || is(b"basic")
        || is(b"%s")
}

/// The generic assignment detector: a high-entropy value assigned to a
/// password/secret/token/api-key style key. Confirming here finds only
/// where the value starts: most such values are a token a specific
/// detector claims, and a specific span covering the value's start claims
/// the generic one whatever its end, so the rest of confirming (the key's
/// suffix, the value's end and length: `generic_secret_now`) waits for
/// `settle` (`resolve_generic_secret`), which runs it only when the answer
/// can change what is reported, as it runs `generic_secret_value`.
/// The span returned until then ends `PUT_OFF` plus the keyword's distance
/// before the value past the value's start: past any value's end, so it
/// bounds the real span, and the keyword's end can be found again from
/// it. Near the buffer's end, where that does not fit, it confirms now.
pub(crate) fn generic_secret(cx: &Cx, kw_end: usize) -> Option<Span> {
    let hay = cx.hay;
    let (start, _, _) = assignment(hay, kw_end)?;
    let end = start + PUT_OFF + (start - kw_end);
    if end <= hay.len() {
        return Some(Span { start, end });
    }
    generic_secret_now(hay, kw_end)
}

/// How far past a value's start a put-off `generic_secret` span ends, at
/// least: one past the longest value `value_end` gives.
const PUT_OFF: usize = MAX_VALUE + 1;

/// `generic_secret` confirmed in full: the key suffix is not benign and
/// the value has an end and at least 8 bytes.
fn generic_secret_now(hay: &[u8], kw_end: usize) -> Option<Span> {
    let (start, quote, suffix) = assignment(hay, kw_end)?;
    if benign_suffix(suffix) {
        return None;
    }
    let end = value_end(hay, start, quote)?;
    (end - start >= 8).then_some(Span { start, end })
}

/// The span a `generic_secret` span stands for: itself when it was
/// confirmed in full, else what `generic_secret_now` gives for the keyword
/// end it encodes (`None`: there was no value).
pub(crate) fn resolve_generic_secret(hay: &[u8], span: Span) -> Option<Span> {
    let Some(distance) = (span.end - span.start).checked_sub(PUT_OFF) else {
        return Some(span);
    };
    let kw_end = span.start.checked_sub(distance)?;
    // What `assignment` found before the value is read again from the
    // bytes next to the keyword's end and the value's start.
    let suffix = if kw_end == 0 {
        &[][..]
    } else {
        key_suffix(hay, kw_end)
    };
    if benign_suffix(suffix) {
        return None;
    }
    let end = value_end(hay, span.start, quote_before(hay, span.start))?;
    (end - span.start >= 8).then_some(Span {
        start: span.start,
        end,
    })
}

/// The value test of `generic_secret`: it depends on the value's bytes
/// alone (not on the key or the context), which is what lets `settle` run
/// it late and skip it.
pub(crate) fn generic_secret_value(v: &[u8]) -> bool {
    // One pass over the value serves the space, number, class and entropy
    // tests.
    let stats = ByteStats::of(v);
    // Numbers, dates, booleans and plain words are settings, not secrets.
    if stats.has_space() || stats.only_numeric() {
        return false;
    }
    // Cheapest test first: most values under a `token` or `key` key are
    // low-entropy settings, rejected before the placeholder word lists.
    let classes = stats.char_classes();
    let strong = if v.len() >= 16 {
        classes >= 2 && entropy_at_least(v, 3.5)
    } else {
        classes >= 3 && entropy_at_least(v, 2.75)
    };
    strong && !placeholder_value(v) && !looks_placeholder(v)
}

/// The value assigned after `kw_end` when it is `len` bytes of `ok` and
/// passes `more` (a cheaper test than the placeholder lists, so it runs
/// first) and is no placeholder.
fn exact_token(
    hay: &[u8],
    kw_end: usize,
    len: usize,
    ok: impl Fn(u8) -> bool,
    more: impl Fn(&[u8]) -> bool,
) -> Option<Span> {
    let (start, quote, _) = assignment(hay, kw_end)?;
    let end = value_end(hay, start, quote)?;
    let v = &hay[start..end];
    (v.len() == len && v.iter().all(|&b| ok(b)) && more(v) && !looks_placeholder(v))
        .then_some(Span { start, end })
}

pub(crate) fn aws_secret_access_key(cx: &Cx, kw_end: usize) -> Option<Span> {
    exact_token(cx.hay, kw_end, 40, |_| true, aws_secret_classes_ok)
}

/// Per byte of an AWS secret access key: its class bit (lower, upper,
/// digit, `/` or `+`), or `AWS_NOT_SECRET` for a byte no key has.
static AWS_CLASSES: [u8; 256] = {
    let mut t = [AWS_NOT_SECRET; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_lowercase() {
            1
        } else if c.is_ascii_uppercase() {
            2
        } else if c.is_ascii_digit() {
            4
        } else if c == b'/' || c == b'+' {
            8
        } else {
            AWS_NOT_SECRET
        };
        b += 1;
    }
    t
};
const AWS_NOT_SECRET: u8 = 16;

/// Every byte is a secret-key byte (`is_aws_secret_byte`) and at least
/// three of lower case, upper case, digits and punctuation occur: both
/// from one table load and OR per byte.
fn aws_secret_classes_ok(v: &[u8]) -> bool {
    let m = v.iter().fold(0u8, |m, &b| m | AWS_CLASSES[usize::from(b)]);
    m & AWS_NOT_SECRET == 0 && (m & 15).count_ones() >= 3
}

/// How far from an AWS access key id its secret key is looked for.
const AWS_PAIR_WINDOW: usize = 256;

fn is_aws_secret_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/' || b == b'+'
}

/// Bytes that would make a 40-char run part of a longer token (base64url,
/// padding, dotted or dashed segments).
fn glued(b: u8) -> bool {
    is_aws_secret_byte(b) || matches!(b, b'-' | b'_' | b'=' | b'.' | b'~')
}

/// The secret access key next to a valid access key id at
/// `hay[id_start..]` (an IAM credentials CSV, a JSON credentials object):
/// the nearest standalone run of exactly 40 base64 characters with lower
/// case, upper case and digits, high entropy and no placeholder, within
/// `AWS_PAIR_WINDOW` bytes, after the id first.
pub(crate) fn aws_secret_near_key_id(cx: &Cx, id_start: usize, _anchor_end: usize) -> Option<Span> {
    let hay = cx.hay;
    let id = super::literal::aws_access_key_id(hay, id_start)?;
    let candidate = |s: usize, e: usize| -> Option<Span> {
        let v = &hay[s..e];
        let ok = e - s == 40
            && (s == 0 || !glued(hay[s - 1]))
            && hay.get(e).is_none_or(|&b| !glued(b))
            && {
                let stats = ByteStats::of(v);
                stats.has_lowercase()
                    && stats.has_uppercase()
                    && stats.has_digit()
                    && entropy_at_least(v, 4.2)
            }
            && !looks_placeholder(v);
        ok.then_some(Span { start: s, end: e })
    };
    let after = (id.end + AWS_PAIR_WINDOW).min(hay.len());
    let before = id.start.saturating_sub(AWS_PAIR_WINDOW);
    let bits = SecretBits::of(hay, before, after + AWS_PAIR_LEN + 1);
    if let Some(span) = bits
        .runs_from(id.end, after)
        .find_map(|(s, e)| candidate(s, e))
    {
        return Some(span);
    }
    let back = bits
        .runs_back(before, id.start)
        .find_map(|(s, e)| candidate(s, e.min(id.start)));
    back
}

/// Length of an AWS secret access key.
const AWS_PAIR_LEN: usize = 40;

/// Words of `SecretBits`: both windows, the 20-byte id, and the bytes
/// that tell a 40-byte run starting at the window's end from a longer one.
const SECRET_WORDS: usize = (2 * AWS_PAIR_WINDOW + 20 + AWS_PAIR_LEN + 1).div_ceil(64);

/// Which bytes of `hay[base..base + len]` are secret-key bytes, one bit
/// each, classified eight bytes a step (SWAR, the same on every target).
/// The pair search walks runs of them on both sides of a key id; a loop
/// of compares per byte was most of its time.
struct SecretBits {
    base: usize,
    len: usize,
    words: [u64; SECRET_WORDS],
}

impl SecretBits {
    fn of(hay: &[u8], base: usize, end: usize) -> SecretBits {
        let end = end.min(hay.len()).min(base + SECRET_WORDS * 64);
        let mut words = [0u64; SECRET_WORDS];
        let bytes = hay.get(base..end).unwrap_or(&[]);
        for (w, chunk) in words.iter_mut().zip(bytes.chunks(64)) {
            *w = chunk
                .chunks(8)
                .enumerate()
                .fold(0, |m, (k, c)| m | u64::from(secret_lanes(c)) << (8 * k));
        }
        SecretBits {
            base,
            len: bytes.len(),
            words,
        }
    }

    /// The first position in `[r, lim)` (relative) whose bit is `want`,
    /// or `lim`.
    fn first(&self, mut r: usize, lim: usize, want: bool) -> usize {
        while r < lim {
            let w = r / 64;
            let Some(&x) = self.words.get(w) else { break };
            let x = if want { x } else { !x } & !0u64 << (r % 64);
            if x != 0 {
                return (w * 64 + x.trailing_zeros() as usize).min(lim);
            }
            r = (w + 1) * 64;
        }
        lim
    }

    /// The last position in `[lo, hi)` (relative) whose bit is `want`.
    fn last(&self, lo: usize, mut hi: usize, want: bool) -> Option<usize> {
        while hi > lo {
            let w = (hi - 1) / 64;
            let x = *self.words.get(w)?;
            let x = if want { x } else { !x } & (!0u64 >> (63 - (hi - 1) % 64));
            if x != 0 {
                let k = w * 64 + 63 - x.leading_zeros() as usize;
                return (k >= lo).then_some(k);
            }
            hi = w * 64;
        }
        None
    }

    /// `runs_from(hay, from, to)` within these bytes: the same runs, but
    /// a run reaching the end of the bytes ends there (it is longer than a
    /// key either way, as the bytes reach `AWS_PAIR_LEN + 1` past `to`).
    fn runs_from(&self, from: usize, to: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let to = to.saturating_sub(self.base).min(self.len);
        let mut i = from.saturating_sub(self.base);
        std::iter::from_fn(move || {
            i = self.first(i, to, true);
            if i >= to {
                return None;
            }
            let s = i;
            i = self.first(i, self.len, false);
            Some((self.base + s, self.base + i))
        })
    }

    /// `runs_back(hay, from, to)` within these bytes, each run's end cut
    /// at `to` (all the caller looks at).
    fn runs_back(&self, from: usize, to: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let lo = from.saturating_sub(self.base);
        let to = to.saturating_sub(self.base).min(self.len);
        let mut j = to;
        std::iter::from_fn(move || {
            let k = self.last(lo, j, true)?;
            let s = self.last(lo, k, false).map_or(lo, |z| z + 1);
            let e = self.first(k, to, false);
            j = s;
            Some((self.base + s, self.base + e))
        })
    }
}

/// Bit `k` set: `chunk[k]` (up to 8 bytes) is a secret-key byte
/// (`is_aws_secret_byte`). Per lane, `(v | 0x80) - lo` keeps its high bit
/// exactly when `v >= lo` (for ASCII `v` and `lo <= 0x80`), without
/// borrowing from the next lane.
fn secret_lanes(chunk: &[u8]) -> u8 {
    const L: u64 = 0x0101_0101_0101_0101;
    const H: u64 = 0x8080_8080_8080_8080;
    let mut b = [0u8; 8];
    let n = chunk.len().min(8);
    b[..n].copy_from_slice(&chunk[..n]);
    let x = u64::from_le_bytes(b);
    let ge = |v: u64, lo: u8| ((v | H) - L * u64::from(lo)) & H;
    let digit_or_slash = ge(x, b'/') & !ge(x, b':');
    let folded = x | (L * 0x20);
    let alpha = ge(folded, b'a') & !ge(folded, b'{');
    let t = x ^ (L * u64::from(b'+'));
    let plus = !(((t & !H) + !H) | t) & H;
    let m = (digit_or_slash | alpha | plus) & !x & H;
    let lanes = ((m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8;
    lanes & (((1u16 << n) - 1) as u8)
}

/// The runs of secret-key bytes that start in `hay[from..to]`, in order:
/// each up to its end (past `to` too), the first cut at `from` (the
/// reference `SecretBits::runs_from` is held to).
#[cfg(test)]
fn runs_from(hay: &[u8], from: usize, to: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = from;
    std::iter::from_fn(move || {
        while i < to && !is_aws_secret_byte(hay[i]) {
            i += 1;
        }
        if i >= to {
            return None;
        }
        let s = i;
        while i < hay.len() && is_aws_secret_byte(hay[i]) {
            i += 1;
        }
        Some((s, i))
    })
}

/// `runs_from(hay, from, to)` last first, without collecting them.
#[cfg(test)]
fn runs_back(hay: &[u8], from: usize, to: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut j = to.min(hay.len());
    std::iter::from_fn(move || {
        let k = (from..j).rev().find(|&k| is_aws_secret_byte(hay[k]))?;
        let mut s = k;
        while s > from && is_aws_secret_byte(hay[s - 1]) {
            s -= 1;
        }
        let mut e = k + 1;
        while e < hay.len() && is_aws_secret_byte(hay[e]) {
            e += 1;
        }
        j = s;
        Some((s, e))
    })
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

pub(crate) fn datadog_api_key(cx: &Cx, kw_end: usize) -> Option<Span> {
    exact_token(cx.hay, kw_end, 32, is_lower_hex, |_| true)
}

pub(crate) fn datadog_app_key(cx: &Cx, kw_end: usize) -> Option<Span> {
    exact_token(cx.hay, kw_end, 40, is_lower_hex, |_| true)
}

pub(crate) fn hex32(cx: &Cx, kw_end: usize) -> Option<Span> {
    exact_token(cx.hay, kw_end, 32, is_lower_hex, |_| true)
}

/// `"private_key_id": "<40 hex>"` in a document that says
/// `"type": "service_account"` within 2 KiB.
pub(crate) fn gcp_service_account_key(cx: &Cx, _start: usize, end: usize) -> Option<Span> {
    let hay = cx.hay;
    let span = exact_token(hay, end, 40, is_lower_hex, |_| true)?;
    let from = end.saturating_sub(2048);
    let to = (end + 2048).min(hay.len());
    memchr::memmem::find(&hay[from..to], b"service_account")?;
    Some(span)
}

/// Skips from a keyword to the next candidate value: the rest of the key,
/// quotes, separators and filler words (`no.`, `number`, `#`).
fn next_token(hay: &[u8], from: usize, window_end: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < window_end && !hay[i].is_ascii_alphanumeric() {
        if hay[i] == b'\n' {
            return None;
        }
        i += 1;
    }
    let start = i;
    while i < window_end && (hay[i].is_ascii_alphanumeric() || hay[i] == b'-') {
        i += 1;
    }
    while i > start && hay[i - 1] == b'-' {
        i -= 1;
    }
    (i > start).then_some((start, i))
}

/// Values right after the keyword: skips the rest of the key and up to two
/// filler tokens, and offers each token to `accept`.
fn value_after(
    hay: &[u8],
    kw_end: usize,
    accept: impl Fn(&[u8], usize, usize) -> Option<Span>,
) -> Option<Span> {
    let mut i = kw_end;
    if kw_end > 0 {
        while i < hay.len() && (hay[i].is_ascii_alphanumeric() || hay[i] == b'_') && i - kw_end < 24
        {
            i += 1;
        }
    }
    let window_end = (i + 40).min(hay.len());
    for _ in 0..3 {
        let (s, e) = next_token(hay, i, window_end)?;
        if let Some(span) = accept(hay, s, e) {
            return Some(span);
        }
        let word = hay[s..e].to_ascii_lowercase();
        if !matches!(
            word.as_slice(),
            b"no" | b"nr" | b"num" | b"number" | b"id" | b"is" | b"of" | b"card" | b"dl"
        ) {
            return None;
        }
        i = e;
    }
    None
}

pub(crate) fn passport_number(cx: &Cx, kw_end: usize) -> Option<Span> {
    value_after(cx.hay, kw_end, |hay, s, e| {
        let v = &hay[s..e];
        let digits = v.iter().filter(|b| b.is_ascii_digit()).count();
        let ok = (6..=9).contains(&v.len())
            && digits >= 2
            && v.iter()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        ok.then_some(Span { start: s, end: e })
    })
}

pub(crate) fn drivers_license(cx: &Cx, kw_end: usize) -> Option<Span> {
    value_after(cx.hay, kw_end, |hay, s, e| {
        let v = &hay[s..e];
        let digits = v.iter().filter(|b| b.is_ascii_digit()).count();
        let ok = (5..=20).contains(&v.len())
            && digits >= 4
            && v.iter()
                .all(|&b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'-');
        ok.then_some(Span { start: s, end: e })
    })
}

fn num(v: &[u8]) -> Option<u32> {
    if v.is_empty() || v.len() > 4 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0')))
}

fn plausible_date(y: u32, m: u32, d: u32) -> bool {
    (1900..=2026).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
}

/// A date at `s`: YYYY-MM-DD, YYYY/MM/DD, DD.MM.YYYY, DD/MM/YYYY,
/// MM/DD/YYYY, DD-MM-YYYY.
fn date_at(hay: &[u8], s: usize) -> Option<usize> {
    let end = (s + 10).min(hay.len());
    let t = &hay[s..end];
    if t.len() < 8 {
        return None;
    }
    let parts: Vec<&[u8]> = t.split(|&b| matches!(b, b'-' | b'/' | b'.')).collect();
    if parts.len() < 3 {
        return None;
    }
    let (a, b, c) = (parts[0], parts[1], parts[2]);
    // Third part may run past the date (time, quote): keep its digits.
    let c_len = c.iter().take_while(|b| b.is_ascii_digit()).count();
    let c = &c[..c_len];
    let ok = if a.len() == 4 {
        c.len() == 2 && plausible_date(num(a)?, num(b)?, num(c)?)
    } else if c.len() == 4 && a.len() <= 2 && b.len() <= 2 {
        let (x, y, year) = (num(a)?, num(b)?, num(c)?);
        plausible_date(year, y, x) || plausible_date(year, x, y)
    } else {
        false
    };
    if !ok {
        return None;
    }
    let len = a.len() + b.len() + c.len() + 2;
    let e = s + len;
    if hay.get(e).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(e)
}

pub(crate) fn date_of_birth(cx: &Cx, kw_end: usize) -> Option<Span> {
    let hay = cx.hay;
    if kw_end > 0 {
        // `dob` inside a word (`adobe`) is not the keyword.
        let kw_start = kw_end.saturating_sub(3);
        if kw_start > 0
            && hay[kw_start - 1].is_ascii_lowercase()
            && hay[kw_start].is_ascii_lowercase()
            && &hay[kw_start..kw_end] == b"dob"
        {
            return None;
        }
    }
    let mut i = kw_end;
    while i < hay.len() && (hay[i].is_ascii_alphanumeric() || hay[i] == b'_') && i - kw_end < 24 {
        i += 1;
    }
    let window_end = (i + 24).min(hay.len());
    while i < window_end && !hay[i].is_ascii_digit() {
        if hay[i] == b'\n' || hay[i].is_ascii_alphabetic() {
            return None;
        }
        i += 1;
    }
    if i >= window_end {
        return None;
    }
    let end = date_at(hay, i)?;
    Some(Span { start: i, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` random bytes: one in `one_in` drawn from `alphabet` (the bytes
    /// the code under test decides on), the others `filler(state)`.
    fn sprinkled(
        len: usize,
        state: &mut u64,
        alphabet: &[u8],
        one_in: u64,
        filler: impl Fn(u64) -> u8,
    ) -> Vec<u8> {
        (0..len)
            .map(|_| {
                let s = crate::test_rng::xorshift(state);
                if s.is_multiple_of(one_in) {
                    alphabet[(s >> 8) as usize % alphabet.len()]
                } else {
                    filler(s)
                }
            })
            .collect()
    }

    fn near(hay: &str, id: &str) -> Option<String> {
        let cx = Cx {
            hay: hay.as_bytes(),
            field: b"",
            keywords: &[],
            firsts: None,
        };
        let at = hay.find(id)?;
        aws_secret_near_key_id(&cx, at, at + 4).map(|s| hay[s.start..s.end].to_string())
    }

    #[test]
    fn a_put_off_generic_span_resolves_to_the_span_confirmed_in_full() {
        let alphabet = b"kQ7_\"'`\\ \t:=>\n,}x_hash";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let (mut put_off, mut found) = (0, 0);
        for len in [0usize, 1, 9, 40, 200, 300, 420] {
            for _ in 0..40 {
                let hay = sprinkled(len, &mut state, alphabet, 3, |s| {
                    b'a' + (s >> 16) as u8 % 26
                });
                let cx = Cx {
                    hay: &hay,
                    field: b"",
                    keywords: &[],
                    firsts: None,
                };
                // Every span of a start resolves to the same end: `settle`
                // relies on it.
                let mut ends = std::collections::HashMap::new();
                for kw_end in 0..=len {
                    let now = generic_secret_now(&hay, kw_end);
                    let lazy = generic_secret(&cx, kw_end);
                    if let Some(l) = lazy {
                        assert!(l.end <= hay.len());
                        put_off += usize::from(l.end - l.start > MAX_VALUE);
                    }
                    let got = lazy.and_then(|l| resolve_generic_secret(&hay, l));
                    assert_eq!(got, now, "{kw_end} {:?}", String::from_utf8_lossy(&hay));
                    if let (Some(l), Some(n)) = (lazy, now) {
                        assert!(l.start == n.start && l.end >= n.end);
                    }
                    if let Some(n) = now {
                        found += 1;
                        assert_eq!(*ends.entry(n.start).or_insert(n.end), n.end);
                    }
                }
            }
        }
        assert!(put_off > 1000 && found > 100, "{put_off} {found}");
    }

    #[test]
    fn aws_secret_classes_agree_with_the_byte_tests() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"aZ09/+-_= \xffkQ";
        let mut seen = [0usize; 2];
        for len in 0..60 {
            for round in 0..50 {
                let v: Vec<u8> = (0..len)
                    .map(|_| {
                        crate::test_rng::xorshift(&mut state);
                        alphabet[(state % (3 + round % 11)) as usize]
                    })
                    .collect();
                let want = v.iter().all(|&b| is_aws_secret_byte(b))
                    && ByteStats::of(&v).char_classes() >= 3;
                assert_eq!(aws_secret_classes_ok(&v), want, "{v:?}");
                seen[usize::from(want)] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n > 100), "{seen:?}");
    }

    #[test]
    fn value_end_tables_agree_with_the_byte_by_byte_rules() {
        let alphabet = b"ab\"'`\\\n\r \t&,;}])<>=:x";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300usize {
            for _ in 0..20 {
                let hay = sprinkled(len, &mut state, alphabet, 4, |_| b'k');
                for quote in [None, Some(b'"'), Some(b'\''), Some(b'`'), Some(b'\\')] {
                    for start in [0, 1, len / 2] {
                        assert_eq!(
                            value_end(&hay, start, quote),
                            value_end_slow(&hay, start, quote),
                            "{quote:?} {start} {:?}",
                            String::from_utf8_lossy(&hay)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn quoted_stops_agree_with_the_scalar_rule() {
        let alphabet = b"ab\"'`\\\n\r \x00\xff\x8a\x0a\x5c";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut marked = 0;
        for _ in 0..2000 {
            let block: Vec<u8> = (0..16)
                .map(|_| {
                    crate::test_rng::xorshift(&mut state);
                    alphabet[(state >> 8) as usize % alphabet.len()]
                })
                .collect();
            for q in [b'"', b'\'', b'`', b'\\'] {
                let m = quoted_stops(&block, q);
                assert_eq!(m, quoted_stops_scalar(&block, q), "{block:?} {q}");
                marked += m.count_ones();
            }
        }
        assert!(marked > 1000);
    }

    #[test]
    fn secret_lanes_classify_every_byte_in_every_lane() {
        for b in 0..=255u8 {
            for k in 0..8 {
                for n in k + 1..=8 {
                    let mut chunk = [b'!'; 8];
                    chunk[k] = b;
                    let want = u8::from(is_aws_secret_byte(b)) << k;
                    assert_eq!(secret_lanes(&chunk[..n]), want, "{b:#x} at {k} of {n}");
                }
            }
        }
        assert_eq!(secret_lanes(b"aZ9+/Q0z"), 0xff);
    }

    #[test]
    fn secret_bits_give_the_reference_runs() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [0usize, 1, 7, 40, 63, 64, 65, 130, 300, 600, 700] {
            for round in 0..40 {
                let alphabet: &[u8] = if round % 2 == 0 {
                    b"aZ9+/ -_,"
                } else {
                    b"aZ9+/Qx7 "
                };
                let hay: Vec<u8> = (0..len)
                    .map(|_| alphabet[crate::test_rng::xorshift(&mut state) as usize % 9])
                    .collect();
                let mut r = |m: usize| crate::test_rng::xorshift(&mut state) as usize % (m + 1);
                let base = r(len.min(300));
                let from = base + r(len - base);
                let to = from + r(len - from);
                let end = to + AWS_PAIR_LEN + 1;
                let bits = SecretBits::of(&hay, base, end);
                let lim = end.min(hay.len()).min(base + SECRET_WORDS * 64);
                if lim < end.min(hay.len()) {
                    continue;
                }
                let want: Vec<_> = runs_from(&hay, from, to)
                    .map(|(s, e)| (s, e.min(lim)))
                    .collect();
                let got: Vec<_> = bits.runs_from(from, to).collect();
                assert_eq!(got, want, "{base} {from}..{to}");
                let want: Vec<_> = runs_back(&hay, from, to)
                    .map(|(s, e)| (s, e.min(to)))
                    .collect();
                let got: Vec<_> = bits.runs_back(from, to).collect();
                assert_eq!(got, want, "back {base} {from}..{to}");
            }
        }
    }

    #[test]
    fn runs_back_are_runs_from_last_first() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..80usize {
            for _ in 0..30 {
                let hay: Vec<u8> = (0..len)
                    .map(|_| b"aZ9+/ -_,"[crate::test_rng::xorshift(&mut state) as usize % 9])
                    .collect();
                for (from, to) in [
                    (0, len),
                    (len / 3, len),
                    (len / 4, len / 2),
                    (1.min(len), len),
                ] {
                    let mut forward: Vec<_> = runs_from(&hay, from, to).collect();
                    forward.reverse();
                    let back: Vec<_> = runs_back(&hay, from, to).collect();
                    assert_eq!(
                        back,
                        forward,
                        "{from}..{to} {:?}",
                        String::from_utf8_lossy(&hay)
                    );
                }
            }
        }
    }

    #[test]
    fn aws_secret_next_to_its_key_id() {
        let secret = "kY8h3RrN2vQp7WmX5tLz9aBc4dEf6gHj1iKoPq2s";
        let csv = format!("Access key ID,Secret access key\nAKIAZ3MSJ5TVQ4GQDKWY,{secret}\n");
        assert_eq!(near(&csv, "AKIA").as_deref(), Some(secret));
        let before = format!("{{\"secret\":\"{secret}\",\"id\":\"ASIAZ3MSJ5TVQ4GQDKWY\"}}");
        assert_eq!(near(&before, "ASIA").as_deref(), Some(secret));
        // A 40-char stretch of a longer token is not a secret key.
        let glued = format!("AKIAZ3MSJ5TVQ4GQDKWY sk-proj-abc-{secret}-xyz");
        assert_eq!(near(&glued, "AKIA"), None);
        // SHA-1 hex, and documentation ids.
        let hex = "AKIAZ3MSJ5TVQ4GQDKWY 3f1c9a7be2d04c5a8e6f9b1d2c3e4f5a6b7c8d9e";
        assert_eq!(near(hex, "AKIA"), None);
        assert_eq!(
            near(&format!("AKIAIOSFODNN7EXAMPLE,{secret}"), "AKIA"),
            None
        );
    }
}

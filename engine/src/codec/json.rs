//! JSON, structure-aware: an iterative tokenizer (no recursion, nesting
//! capped at `MAX_DEPTH` with a defined error) that validates RFC 8259 JSON
//! and reports keys, strings and scalars with their raw byte spans to a
//! `Visitor`. Two visitors live here: `decode` (one pass: validate and, only
//! if the document has a backslash, build the decoded copy the scanner
//! reads) and `PathWalker` (a second pass, run only when findings or
//! field rules need it, that knows the path of every token).
//!
//! Strings are found with a word-at-a-time search for `"`, `\` and control
//! bytes, so string content (most of a JSON body) costs a few instructions
//! per 8 bytes.
//!
//! `decode` first asks the vector validator (`fast`, over `stage1`'s
//! 64-byte bitmasks) whether the document is valid; only when it says no
//! does the tokenizer run, to give the exact error. The tokenizer stays the
//! reference: tests hold the validator equal to it. When no key rule needs
//! every leaf, `hit_paths` asks the validator for the paths of the hits
//! alone, in its validating pass (tests hold them equal to `walk`'s).

use super::Decoded;
use std::ops::Range;

mod fast;
mod stage1;

/// Deepest nesting accepted. Deeper documents are a parse error (and the
/// caller scans them as text): memory stays bounded by this, not by input.
pub const MAX_DEPTH: usize = 512;

/// Why a document is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub reason: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

/// What the tokenizer reports. Spans of strings are their content, without
/// the quotes; `escaped` says whether it holds a backslash.
pub trait Visitor {
    fn open(&mut self, _object: bool) {}
    fn close(&mut self) {}
    fn key(&mut self, _raw: Range<usize>, _escaped: bool) {}
    fn string(&mut self, _raw: Range<usize>, _escaped: bool) {}
    fn scalar(&mut self, _raw: Range<usize>, _number: bool) {}
}

/// Nesting kinds of the open containers, one bit each (1 = object).
struct BitStack {
    bits: [u64; MAX_DEPTH / 64],
    depth: usize,
}

impl BitStack {
    fn push(&mut self, object: bool) -> bool {
        if self.depth >= MAX_DEPTH {
            return false;
        }
        let (w, b) = (self.depth / 64, self.depth % 64);
        if let Some(word) = self.bits.get_mut(w) {
            if object {
                *word |= 1 << b;
            } else {
                *word &= !(1 << b);
            }
        }
        self.depth += 1;
        true
    }

    fn top_is_object(&self) -> bool {
        let Some(d) = self.depth.checked_sub(1) else {
            return false;
        };
        self.bits
            .get(d / 64)
            .is_some_and(|w| w & (1 << (d % 64)) != 0)
    }

    fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    /// Right after `[`.
    ValueOrClose,
    /// Right after `{`.
    KeyOrClose,
    Key,
    Colon,
    CommaOrClose,
    Done,
}

#[inline]
fn skip_ws(data: &[u8], mut i: usize) -> usize {
    while let Some(&b) = data.get(i) {
        if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            break;
        }
        i += 1;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// First index at or after `i` holding `"`, `\` or a byte below 0x20.
/// `high` collects the bits of the bytes read, so `high & HIGHS != 0` when
/// some may be non-ASCII (then the string's UTF-8 is checked).
#[inline]
fn string_special(data: &[u8], mut i: usize, high: &mut u64) -> usize {
    while let Some(chunk) = data.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        *high |= x;
        let quote = x ^ (ONES * b'"' as u64);
        let slash = x ^ (ONES * b'\\' as u64);
        // Classic "has zero byte" / "has byte below n" tests; the lowest set
        // flag is exact (borrows only disturb higher bytes).
        let hits = (quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let hits = hits & HIGHS;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = data.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        *high |= u64::from(b);
        i += 1;
    }
    i
}

fn hex4(data: &[u8], at: usize) -> Option<u32> {
    let h = data.get(at..at + 4)?;
    let mut v = 0u32;
    for &c in h {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Validates the escape at `data[i] == b'\\'` and returns its length (2,
/// 6, or 12 for a surrogate pair) and the code point.
fn escape(data: &[u8], i: usize) -> Result<(usize, u32), ParseError> {
    let err = |reason| ParseError { offset: i, reason };
    let c = match data.get(i + 1) {
        Some(b'"') => '"' as u32,
        Some(b'\\') => '\\' as u32,
        Some(b'/') => '/' as u32,
        Some(b'b') => 8,
        Some(b'f') => 12,
        Some(b'n') => '\n' as u32,
        Some(b'r') => '\r' as u32,
        Some(b't') => '\t' as u32,
        Some(b'u') => {
            let hi = hex4(data, i + 2).ok_or_else(|| err("invalid \\u escape"))?;
            return match hi {
                0xD800..=0xDBFF => {
                    if data.get(i + 6..i + 8) != Some(b"\\u".as_slice()) {
                        return Err(err("lone surrogate in \\u escape"));
                    }
                    let lo = hex4(data, i + 8).ok_or_else(|| err("invalid \\u escape"))?;
                    if !(0xDC00..=0xDFFF).contains(&lo) {
                        return Err(err("lone surrogate in \\u escape"));
                    }
                    Ok((12, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)))
                }
                0xDC00..=0xDFFF => Err(err("lone surrogate in \\u escape")),
                _ => Ok((6, hi)),
            };
        }
        Some(_) => return Err(err("invalid escape")),
        None => return Err(err("unterminated string")),
    };
    Ok((2, c))
}

/// Scans the string whose opening quote is at `start`; returns the index
/// of the closing quote and whether it holds escapes.
#[inline]
fn string(data: &[u8], start: usize) -> Result<(usize, bool), ParseError> {
    string_in::<false>(data, start)
}

/// `string`; `TRUSTED` (the document is known to be valid) skips the UTF-8
/// check, the one part of it that reads the content twice.
#[inline]
fn string_in<const TRUSTED: bool>(data: &[u8], start: usize) -> Result<(usize, bool), ParseError> {
    let mut i = start + 1;
    let mut escaped = false;
    let mut high = 0u64;
    loop {
        i = string_special(data, i, &mut high);
        match data.get(i) {
            Some(b'"') => {
                // Only strings can hold non-ASCII bytes in valid JSON, so
                // UTF-8 is checked here, and only when there are some.
                if !TRUSTED && high & HIGHS != 0 {
                    if let Err(e) = std::str::from_utf8(&data[start + 1..i]) {
                        return Err(ParseError {
                            offset: start + 1 + e.valid_up_to(),
                            reason: "invalid UTF-8",
                        });
                    }
                }
                return Ok((i, escaped));
            }
            Some(b'\\') => {
                escaped = true;
                i += escape(data, i)?.0;
            }
            Some(_) => {
                return Err(ParseError {
                    offset: i,
                    reason: "control character in string",
                })
            }
            None => {
                return Err(ParseError {
                    offset: start,
                    reason: "unterminated string",
                })
            }
        }
    }
}

fn digits(data: &[u8], mut i: usize) -> usize {
    while data.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` starting at `start`.
#[inline]
fn number(data: &[u8], start: usize) -> Result<usize, ParseError> {
    let err = |offset| ParseError {
        offset,
        reason: "invalid number",
    };
    let mut i = start;
    if data.get(i) == Some(&b'-') {
        i += 1;
    }
    match data.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(data, i),
        _ => return Err(err(i)),
    }
    if data.get(i) == Some(&b'.') {
        let d = digits(data, i + 1);
        if d == i + 1 {
            return Err(err(i));
        }
        i = d;
    }
    if matches!(data.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(data.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let d = digits(data, i);
        if d == i {
            return Err(err(i));
        }
        i = d;
    }
    Ok(i)
}

/// Tokenizes one JSON document (RFC 8259: UTF-8, any value at the top,
/// nothing but whitespace after it), reporting to `v`. Never recurses.
pub fn tokenize<V: Visitor>(data: &[u8], v: &mut V) -> Result<(), ParseError> {
    tokenize_in::<V, false>(data, v)
}

/// `tokenize`, `TRUSTED` as in `string_in`.
fn tokenize_in<V: Visitor, const TRUSTED: bool>(data: &[u8], v: &mut V) -> Result<(), ParseError> {
    let mut stack = BitStack {
        bits: [0; MAX_DEPTH / 64],
        depth: 0,
    };
    let mut expect = Expect::Value;
    let mut i = 0;
    loop {
        i = skip_ws(data, i);
        let Some(&b) = data.get(i) else { break };
        let err = |reason| ParseError { offset: i, reason };
        let mut value_done = false;
        match expect {
            Expect::Value | Expect::ValueOrClose => match b {
                b'{' | b'[' => {
                    let object = b == b'{';
                    if !stack.push(object) {
                        return Err(err("nesting deeper than the limit"));
                    }
                    v.open(object);
                    expect = if object {
                        Expect::KeyOrClose
                    } else {
                        Expect::ValueOrClose
                    };
                    i += 1;
                }
                b']' if expect == Expect::ValueOrClose => {
                    stack.pop();
                    v.close();
                    i += 1;
                    value_done = true;
                }
                b'"' => {
                    let (end, escaped) = string_in::<TRUSTED>(data, i)?;
                    v.string(i + 1..end, escaped);
                    i = end + 1;
                    value_done = true;
                }
                b'-' | b'0'..=b'9' => {
                    let end = number(data, i)?;
                    v.scalar(i..end, true);
                    i = end;
                    value_done = true;
                }
                b't' | b'f' | b'n' => {
                    let lit: &[u8] = match b {
                        b't' => b"true",
                        b'f' => b"false",
                        _ => b"null",
                    };
                    if data.get(i..i + lit.len()) != Some(lit) {
                        return Err(err("invalid literal"));
                    }
                    v.scalar(i..i + lit.len(), false);
                    i += lit.len();
                    value_done = true;
                }
                _ if b >= 0x80 => return Err(err("invalid UTF-8")),
                _ => return Err(err("expected a value")),
            },
            Expect::KeyOrClose | Expect::Key => match b {
                b'"' => {
                    let (end, escaped) = string_in::<TRUSTED>(data, i)?;
                    v.key(i + 1..end, escaped);
                    i = end + 1;
                    expect = Expect::Colon;
                }
                b'}' if expect == Expect::KeyOrClose => {
                    stack.pop();
                    v.close();
                    i += 1;
                    value_done = true;
                }
                _ => return Err(err("expected a key")),
            },
            Expect::Colon => {
                if b != b':' {
                    return Err(err("expected ':'"));
                }
                expect = Expect::Value;
                i += 1;
            }
            Expect::CommaOrClose => {
                let object = stack.top_is_object();
                match b {
                    b',' => {
                        expect = if object { Expect::Key } else { Expect::Value };
                        i += 1;
                    }
                    b'}' if object => {
                        stack.pop();
                        v.close();
                        i += 1;
                        value_done = true;
                    }
                    b']' if !object => {
                        stack.pop();
                        v.close();
                        i += 1;
                        value_done = true;
                    }
                    _ => return Err(err("expected ',' or a closing bracket")),
                }
            }
            Expect::Done => return Err(err("trailing characters after the document")),
        }
        if value_done {
            expect = if stack.depth == 0 {
                Expect::Done
            } else {
                Expect::CommaOrClose
            };
        }
    }
    match expect {
        Expect::Done => Ok(()),
        _ if data.iter().all(|b| b.is_ascii_whitespace()) => Err(ParseError {
            offset: 0,
            reason: "empty document",
        }),
        _ => Err(ParseError {
            offset: data.len(),
            reason: "truncated document",
        }),
    }
}

/// Appends the decoded content of the JSON string `raw` (validated, without
/// quotes) to `out`. Invalid escapes (impossible after `tokenize`) are
/// copied as they are.
pub fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let next = memchr::memchr(b'\\', &raw[i..]).map_or(raw.len(), |p| i + p);
        out.extend_from_slice(&raw[i..next]);
        if next >= raw.len() {
            break;
        }
        match escape(raw, next) {
            Ok((len, c)) => {
                push_char(out, c);
                i = next + len;
            }
            Err(_) => {
                out.push(b'\\');
                i = next + 1;
            }
        }
    }
}

fn push_char(out: &mut Vec<u8>, c: u32) {
    let ch = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

/// The decoded value of one escape unit of a JSON string (`\u0034` -> `4`),
/// when it is a single ASCII byte; used by the masks.
pub fn escape_ascii(unit: &[u8]) -> Option<u8> {
    match escape(unit, 0) {
        Ok((len, c)) if len == unit.len() && c < 0x80 => Some(c as u8),
        _ => None,
    }
}

/// Pass 1: validates and, for escaped strings only, records the decoded
/// content in `decoded` (which then covers the whole buffer).
struct DecodeVisitor<'a> {
    data: &'a [u8],
    decoded: Option<&'a mut Decoded>,
    scratch: Vec<u8>,
}

impl DecodeVisitor<'_> {
    fn decode(&mut self, raw: Range<usize>) {
        if let Some(out) = self.decoded.as_deref_mut() {
            decode_string_into(self.data, raw, out, &mut self.scratch);
        }
    }
}

/// Records the escapes of one string's content `data[raw]` (validated,
/// without quotes) in `out`, which maps `data` offsets; `scratch` is a
/// reusable buffer. Used per document (`decode`) and per string by callers
/// that take single values (server-sent event text).
pub fn decode_string_into(
    data: &[u8],
    raw: Range<usize>,
    out: &mut Decoded,
    scratch: &mut Vec<u8>,
) {
    decode_escapes_from(data, raw, 0, out, scratch);
}

/// `decode_string_into` for content whose first `from` bytes hold no
/// backslash (the caller has searched them, so they are not searched
/// again).
fn decode_escapes_from(
    data: &[u8],
    raw: Range<usize>,
    from: usize,
    out: &mut Decoded,
    scratch: &mut Vec<u8>,
) {
    let content = data.get(raw.clone()).unwrap_or_default();
    let mut i = from.min(content.len());
    while let Some(p) = memchr::memchr(b'\\', content.get(i..).unwrap_or_default()) {
        let at = i + p;
        let Some((len, _)) = push_escape(data, content, raw.start, at, out, scratch) else {
            return;
        };
        i = at + len;
    }
}

/// Records in `out` the escape at `content[at]`, where `content` is
/// `data[start..]` up to the end of its string (an escape may not read
/// past it); its length and the char it stands for, or `None` when it
/// does not decode.
fn push_escape(
    data: &[u8],
    content: &[u8],
    start: usize,
    at: usize,
    out: &mut Decoded,
    scratch: &mut Vec<u8>,
) -> Option<(usize, u32)> {
    let (len, c) = escape(content, at).ok()?;
    scratch.clear();
    push_char(scratch, c);
    out.push_unit(data, start + at, len, scratch);
    Some((len, c))
}

impl Visitor for DecodeVisitor<'_> {
    fn key(&mut self, raw: Range<usize>, escaped: bool) {
        if escaped {
            self.decode(raw);
        }
    }
    fn string(&mut self, raw: Range<usize>, escaped: bool) {
        if escaped {
            self.decode(raw);
        }
    }
}

/// Validates `data[range]` as one JSON document. When `decoded` is given,
/// escaped strings of the document are decoded into it (the caller copies
/// the bytes between documents and finishes it).
pub fn decode(
    data: &[u8],
    range: Range<usize>,
    decoded: Option<&mut Decoded>,
) -> Result<(), ParseError> {
    let doc = data.get(range.clone()).unwrap_or_default();
    if fast::validate(doc) {
        // What the visitor below does string by string.
        if let Some(out) = decoded {
            decode_unchecked(data, range, out);
        }
        return Ok(());
    }
    // Not valid: the reference tokenizer gives the error, and decodes
    // (as before) the escaped strings that precede it.
    let mut v = DecodeVisitor {
        data,
        decoded,
        scratch: Vec::new(),
    };
    // Tokenize the document slice, but report spans in `data` offsets.
    let mut shifted = Shift {
        base: range.start,
        inner: &mut v,
    };
    tokenize(doc, &mut shifted).map_err(|e| ParseError {
        offset: e.offset + range.start,
        reason: e.reason,
    })
}

/// The paths `walk` would give hits starting at `starts` (sorted, `data`
/// offsets inside `range`) of the document `data[range]`, found while the
/// vector validator checks it, without the tokenizer: for each start, the
/// path of the first key, string or scalar whose content ends at or after
/// it (`None` after the last token). `None` when the document is not
/// valid; `walk` then gives the error.
pub fn hit_paths(data: &[u8], range: Range<usize>, starts: &[usize]) -> Option<HitPaths> {
    let doc = data.get(range.clone())?;
    let rel: Vec<usize> = starts
        .iter()
        .map(|s| s.saturating_sub(range.start))
        .collect();
    fast::validate_paths(doc, &rel)
}

/// What `decode` does to `data[range]` when it is valid, without checking
/// that it is: every backslash of a valid document starts or continues an
/// escape inside a string, so decoding them in order decodes the
/// document's strings. Given an invalid document the copy may differ from
/// `decode`'s; a caller that does not know the document is valid must
/// check it (`hit_paths`) and redo the work with `decode` if it is not.
pub fn decode_unchecked(data: &[u8], range: Range<usize>, decoded: &mut Decoded) {
    let doc = data.get(range.clone()).unwrap_or_default();
    if let Some(first) = memchr::memchr(b'\\', doc) {
        decode_escapes_from(data, range, first, decoded, &mut Vec::new());
    }
}

/// `decode_unchecked` for the document `data[range]` whose first
/// backslash is at `first` (a `data` offset; the bytes before it are not
/// searched again), which also appends to `ats` where the copy will hold
/// an `@` after that point (offsets into `decoded.bytes`): the scanner's
/// `@` search then needs no pass of its own. False when that list cannot
/// stand for the search: an escape decodes to a backslash (the search also
/// looks at those, for `\u0040`) or one does not decode (an invalid
/// document, which the caller redoes the careful way). The copy is what
/// `decode_unchecked` makes either way.
pub fn decode_unchecked_ats(
    data: &[u8],
    range: Range<usize>,
    first: usize,
    decoded: &mut Decoded,
    ats: &mut Vec<usize>,
) -> bool {
    let content = data.get(range.clone()).unwrap_or_default();
    let mut i = first.saturating_sub(range.start).min(content.len());
    let mut exact = true;
    let mut scratch = Vec::with_capacity(4);
    while let Some(p) = memchr::memchr2(b'@', b'\\', content.get(i..).unwrap_or_default()) {
        let at = i + p;
        if content.get(at) == Some(&b'@') {
            ats.push(decoded.copied_offset(range.start + at));
            i = at + 1;
            continue;
        }
        let Some((len, c)) = push_escape(data, content, range.start, at, decoded, &mut scratch)
        else {
            return false;
        };
        if c == u32::from(b'@') {
            ats.push(decoded.bytes.len() - 1);
        }
        exact &= c != u32::from(b'\\');
        i = at + len;
    }
    exact
}

/// Adds `base` to every span a visitor sees.
struct Shift<'v, V> {
    base: usize,
    inner: &'v mut V,
}

impl<V: Visitor> Visitor for Shift<'_, V> {
    fn open(&mut self, object: bool) {
        self.inner.open(object)
    }
    fn close(&mut self) {
        self.inner.close()
    }
    fn key(&mut self, raw: Range<usize>, escaped: bool) {
        self.inner
            .key(raw.start + self.base..raw.end + self.base, escaped)
    }
    fn string(&mut self, raw: Range<usize>, escaped: bool) {
        self.inner
            .string(raw.start + self.base..raw.end + self.base, escaped)
    }
    fn scalar(&mut self, raw: Range<usize>, number: bool) {
        self.inner
            .scalar(raw.start + self.base..raw.end + self.base, number)
    }
}

/// One step of a path: an object key (raw span, decoded lazily) or an
/// array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(Vec<u8>),
    Index(usize),
}

/// A path step as the walker keeps it: keys stay raw spans until someone
/// needs them decoded (a finding in the value, a key rule).
#[derive(Debug, Clone)]
enum RawSegment {
    Key { raw: Range<usize>, escaped: bool },
    Index(usize),
}

/// A leaf (string or scalar) or key the path walker reports, with the path
/// of the value it belongs to.
pub struct Leaf<'p> {
    pub raw: Range<usize>,
    pub is_key: bool,
    /// A string value or number (what a key-name rule masks); false for
    /// keys, `true`, `false`, `null`.
    pub maskable: bool,
    path: &'p [RawSegment],
    data: &'p [u8],
    /// How many containers are open.
    pub depth: usize,
}

impl Leaf<'_> {
    fn decode(&self, raw: &Range<usize>, escaped: bool) -> Vec<u8> {
        let content = self.data.get(raw.clone()).unwrap_or_default();
        let mut key = Vec::with_capacity(content.len());
        if escaped {
            unescape_into(content, &mut key);
        } else {
            key.extend_from_slice(content);
        }
        key
    }

    /// The path of this token, keys decoded.
    pub fn path(&self) -> Vec<Segment> {
        self.path
            .iter()
            .map(|s| match s {
                RawSegment::Key { raw, escaped } => Segment::Key(self.decode(raw, *escaped)),
                RawSegment::Index(i) => Segment::Index(*i),
            })
            .collect()
    }

    /// The innermost key of the path, decoded (the key itself for a key).
    pub fn key(&self) -> Option<Vec<u8>> {
        match self.path.last()? {
            RawSegment::Key { raw, escaped } => Some(self.decode(raw, *escaped)),
            RawSegment::Index(_) => None,
        }
    }
}

/// What `walk` calls: `leaf` for every key and leaf value, `value_end`
/// when the value at `depth` (a leaf or a whole container) is complete.
pub trait LeafSink {
    fn leaf(&mut self, leaf: Leaf<'_>);
    fn value_end(&mut self, _depth: usize) {}
}

struct PathWalker<'a, S> {
    data: &'a [u8],
    /// One entry per open container: its key or index slot.
    path: Vec<RawSegment>,
    /// Per open container: is it an array, and its next index.
    arrays: Vec<Option<usize>>,
    sink: &'a mut S,
}

impl<S: LeafSink> PathWalker<'_, S> {
    /// Sets the path slot for the next value of the innermost array.
    fn array_slot(&mut self) {
        if let Some(Some(next)) = self.arrays.last_mut() {
            let idx = *next;
            *next += 1;
            if let Some(last) = self.path.last_mut() {
                *last = RawSegment::Index(idx);
            }
        }
    }
    fn depth(&self) -> usize {
        self.arrays.len()
    }
}

impl<S: LeafSink> Visitor for PathWalker<'_, S> {
    fn open(&mut self, object: bool) {
        self.array_slot();
        self.arrays.push(if object { None } else { Some(0) });
        self.path.push(RawSegment::Index(0));
    }
    fn close(&mut self) {
        self.arrays.pop();
        self.path.pop();
        self.sink.value_end(self.depth());
    }
    fn key(&mut self, raw: Range<usize>, escaped: bool) {
        if let Some(last) = self.path.last_mut() {
            *last = RawSegment::Key {
                raw: raw.clone(),
                escaped,
            };
        }
        let depth = self.depth();
        self.sink.leaf(Leaf {
            raw,
            is_key: true,
            maskable: false,
            path: &self.path,
            data: self.data,
            depth,
        });
    }
    fn string(&mut self, raw: Range<usize>, _escaped: bool) {
        self.array_slot();
        let depth = self.depth();
        self.sink.leaf(Leaf {
            raw,
            is_key: false,
            maskable: true,
            path: &self.path,
            data: self.data,
            depth,
        });
        self.sink.value_end(depth);
    }
    fn scalar(&mut self, raw: Range<usize>, number: bool) {
        self.array_slot();
        let depth = self.depth();
        self.sink.leaf(Leaf {
            raw,
            is_key: false,
            maskable: number,
            path: &self.path,
            data: self.data,
            depth,
        });
        self.sink.value_end(depth);
    }
}

/// Pass 2: walks the (already validated) document `data[range]` and
/// reports every key and leaf with its path. Memory: one segment per open
/// container, at most `MAX_DEPTH`.
pub fn walk<S: LeafSink>(data: &[u8], range: Range<usize>, sink: &mut S) -> Result<(), ParseError> {
    walk_in::<S, false>(data, range, sink)
}

/// `walk` over a document `decode` has accepted: the same leaves, without
/// checking UTF-8 again. (Given an invalid document it may report leaves
/// of invalid strings; it never panics.)
pub fn walk_valid<S: LeafSink>(
    data: &[u8],
    range: Range<usize>,
    sink: &mut S,
) -> Result<(), ParseError> {
    walk_in::<S, true>(data, range, sink)
}

fn walk_in<S: LeafSink, const TRUSTED: bool>(
    data: &[u8],
    range: Range<usize>,
    sink: &mut S,
) -> Result<(), ParseError> {
    let doc = data.get(range.clone()).unwrap_or_default();
    let mut w = PathWalker {
        data,
        path: Vec::new(),
        arrays: Vec::new(),
        sink,
    };
    let mut shifted = Shift {
        base: range.start,
        inner: &mut w,
    };
    tokenize_in::<_, TRUSTED>(doc, &mut shifted)
}

/// `"key": value` pairs found by a forgiving scan of text that did not
/// parse (malformed or truncated JSON), so key-name rules still see them:
/// the decoded key and the raw span of a string's content or a number.
/// Nesting is not tracked; values that are containers are skipped.
pub fn lenient_pairs(data: &[u8], range: Range<usize>) -> Vec<(Vec<u8>, Range<usize>)> {
    let end = range.end.min(data.len());
    let mut out = Vec::new();
    let mut i = range.start;
    // The end of the string whose opening quote is at `q` (its closing
    // quote), escapes skipped without validation.
    let string_end = |q: usize| {
        let mut j = q + 1;
        while j < end {
            match data[j] {
                b'"' => return Some(j),
                b'\\' => j += 2,
                _ => j += 1,
            }
        }
        None
    };
    while let Some(q) = memchr::memchr(b'"', &data[i..end]).map(|p| i + p) {
        let Some(close) = string_end(q) else { break };
        let mut j = skip_ws(&data[..end], close + 1);
        if data.get(j) != Some(&b':') || j >= end {
            i = close + 1;
            continue;
        }
        j = skip_ws(&data[..end], j + 1);
        let mut key = Vec::new();
        unescape_into(&data[q + 1..close], &mut key);
        // Only values that are themselves valid JSON: masking must not
        // repair (or hide) what made the document invalid.
        let doc = &data[..end];
        match doc.get(j) {
            Some(b'"') => match string(doc, j) {
                Ok((v_end, _)) => {
                    if v_end > j + 1 {
                        out.push((key, j + 1..v_end));
                    }
                    i = v_end + 1;
                }
                Err(_) => i = j + 1,
            },
            Some(b'-' | b'0'..=b'9') => match number(doc, j) {
                Ok(v_end) => {
                    out.push((key, j..v_end));
                    i = v_end;
                }
                Err(_) => i = j + 1,
            },
            _ => i = j.max(close + 1),
        }
    }
    out
}

/// `hit_paths`' answer: the path of each query, all in one arena (keys
/// decoded into one buffer, steps in one list), so a body with a thousand
/// hits costs a few buffers rather than a few allocations per hit, and the
/// queries one token owns share one answer.
#[derive(Debug, Default, Clone)]
pub struct HitPaths {
    keys: Vec<u8>,
    steps: Vec<Step>,
    /// Per query: its steps (`steps[a..b]`), `None` after the last token.
    answers: Vec<Option<(usize, usize)>>,
}

/// One path step in the arena: a key (`keys[a..b]`, decoded) or an index.
#[derive(Debug, Clone, Copy)]
enum Step {
    Key(usize, usize),
    Index(usize),
}

/// A path step borrowed from wherever it is kept.
#[derive(Clone, Copy)]
enum StepRef<'a> {
    Key(&'a [u8]),
    Index(usize),
}

impl HitPaths {
    /// Room for `queries` answers, none given yet.
    pub(super) fn with_queries(queries: usize) -> HitPaths {
        // Room for the usual answer (a short key under an index) so the
        // arena rarely grows while the validator fills it.
        HitPaths {
            keys: Vec::with_capacity(queries * 16),
            steps: Vec::with_capacity(queries * 2),
            answers: vec![None; queries],
        }
    }

    /// Where the next path's steps start (for `answer`).
    pub(super) fn mark(&self) -> usize {
        self.steps.len()
    }

    pub(super) fn push_index(&mut self, i: usize) {
        self.steps.push(Step::Index(i));
    }

    /// Adds a key step: `fill` appends the decoded key to the buffer.
    pub(super) fn push_key(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        let a = self.keys.len();
        fill(&mut self.keys);
        self.steps.push(Step::Key(a, self.keys.len()));
    }

    /// Query `q` owns the path of the steps pushed since `mark`.
    pub(super) fn answer(&mut self, q: usize, mark: usize) {
        if let Some(slot) = self.answers.get_mut(q) {
            *slot = Some((mark, self.steps.len()));
        }
    }

    /// Number of queries.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Which answer query `q` got: equal ids mean the same path (`None`:
    /// no path).
    pub fn id(&self, q: usize) -> Option<(usize, usize)> {
        self.answers.get(q).copied().flatten()
    }

    fn steps_of(&self, q: usize) -> Option<impl Iterator<Item = StepRef<'_>> + '_> {
        let (a, b) = self.id(q)?;
        Some(
            self.steps
                .get(a..b)
                .unwrap_or_default()
                .iter()
                .map(|s| match *s {
                    Step::Key(a, b) => StepRef::Key(self.keys.get(a..b).unwrap_or_default()),
                    Step::Index(i) => StepRef::Index(i),
                }),
        )
    }

    /// The path of query `q` as `Segment`s (for field selectors).
    pub fn segments(&self, q: usize) -> Option<Vec<Segment>> {
        Some(
            self.steps_of(q)?
                .map(|s| match s {
                    StepRef::Key(k) => Segment::Key(k.to_vec()),
                    StepRef::Index(i) => Segment::Index(i),
                })
                .collect(),
        )
    }

    /// Renders the path of query `q` (as `render_path` does, UTF-8) at
    /// the end of `out` (a caller's buffer of many paths); false when `q`
    /// has no path.
    pub fn render_onto(&self, q: usize, out: &mut Vec<u8>) -> bool {
        match self.steps_of(q) {
            Some(steps) => {
                render_steps(steps, out);
                true
            }
            None => false,
        }
    }

    /// Every answer as `Segment`s (tests compare them with the walk's).
    #[cfg(test)]
    pub(super) fn all_segments(&self) -> Vec<Option<Vec<Segment>>> {
        (0..self.len()).map(|q| self.segments(q)).collect()
    }
}

/// Renders a path for `veil.location`: `$.user.email`, `$.items[2].card`.
/// Keys that are not plain identifiers (or hold 4+ digits in a row, so a
/// card number used as a key cannot leak) are shown as `*`; long paths are
/// cut at `MAX_RENDERED_PATH` bytes with `…`.
pub fn render_path(path: &[Segment]) -> String {
    let mut s = Vec::with_capacity(32);
    render_path_into(path, &mut s);
    // `render_steps` writes ASCII and whole `…`s: always UTF-8.
    String::from_utf8(s).unwrap_or_default()
}

/// `render_path` as UTF-8 bytes into `out` (cleared first), which a
/// caller reuses.
pub fn render_path_into(path: &[Segment], out: &mut Vec<u8>) {
    out.clear();
    render_steps(
        path.iter().map(|s| match s {
            Segment::Key(k) => StepRef::Key(k),
            Segment::Index(i) => StepRef::Index(*i),
        }),
        out,
    );
}

/// Bytes, not chars: a path per finding, and every byte written is ASCII
/// but the cut's `…`, which goes in whole.
fn render_steps<'a>(path: impl Iterator<Item = StepRef<'a>>, s: &mut Vec<u8>) {
    let start = s.len();
    s.push(b'$');
    for seg in path {
        if s.len() - start > MAX_RENDERED_PATH {
            s.extend_from_slice("…".as_bytes());
            break;
        }
        match seg {
            StepRef::Index(i) => {
                s.push(b'[');
                push_decimal(s, i);
                s.push(b']');
            }
            StepRef::Key(k) if plain_key(k) => {
                s.push(b'.');
                s.extend_from_slice(k);
            }
            StepRef::Key(_) => s.extend_from_slice(b".*"),
        }
    }
}

/// `i` in decimal, without the formatting machinery (a path per hit).
fn push_decimal(s: &mut Vec<u8>, mut i: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while let Some(d) = digits.get_mut(at.wrapping_sub(1)) {
        *d = b'0' + (i % 10) as u8;
        at -= 1;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    s.extend_from_slice(digits.get(at..).unwrap_or_default());
}

pub const MAX_RENDERED_PATH: usize = 200;

/// Per byte: 1 for a digit, 2 for the other bytes a plain key may hold.
const KEY_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            1
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'-' || c == b'$' {
            2
        } else {
            0
        };
        b += 1;
    }
    t
};

/// Whether key `k` is shown as it is: 1 to 64 bytes of `[A-Za-z0-9_$-]`,
/// not starting with a digit, no 4 digits in a row (a rendered path per
/// finding: one table lookup per byte, no copy until it passes).
fn plain_key(k: &[u8]) -> bool {
    if k.is_empty() || k.len() > 64 || k.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    // Digits in a row so far.
    let mut run = 0u32;
    for &b in k {
        let class = KEY_CLASS[b as usize];
        run = if class == 1 { run + 1 } else { 0 };
        if class == 0 || run == 4 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(doc: &str) -> bool {
        decode(doc.as_bytes(), 0..doc.len(), None).is_ok()
    }

    #[test]
    fn accepts_json_and_rejects_everything_else() {
        for ok in [
            r#"{}"#,
            r#"[]"#,
            r#" {"a":[1,-2.5e+3,true,false,null,"x\"y\u00e9\ud83d\ude00"],"b":{}} "#,
            r#""top""#,
            "0",
            "-0.0e0",
            "[[[]]]",
            "{\"é\":\"ü\"}",
        ] {
            assert!(valid(ok), "{ok}");
        }
        for bad in [
            "",
            "  ",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "01",
            "1.",
            "-",
            "1e",
            "tru",
            "nul",
            "[1 2]",
            "{} {}",
            "\"a\u{1}b\"",
            r#""\x""#,
            r#""\u12G4""#,
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            "\"unterminated",
            "[1}",
            "{\"a\":1]",
            "NaN",
            "'a'",
        ] {
            assert!(!valid(bad), "{bad:?}");
        }
        assert!(decode(b"\"\xff\"", 0..3, None).is_err());
        assert_eq!(
            decode(b"[\"\xc3\"]", 0..4, None).unwrap_err().reason,
            "invalid UTF-8"
        );
    }

    #[test]
    fn deep_nesting_is_a_bounded_error_not_a_crash() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let err = decode(deep.as_bytes(), 0..deep.len(), None).unwrap_err();
        assert_eq!(err.reason, "nesting deeper than the limit");
        assert_eq!(err.offset, MAX_DEPTH);
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(valid(&ok));
        let objs = "{\"a\":".repeat(100_000);
        assert!(decode(objs.as_bytes(), 0..objs.len(), None).is_err());
    }

    #[test]
    fn decoding_copies_unescaped_bytes_and_maps_escapes_back() {
        let doc = r#"{"to":"jo\u0040example.org","p":"a\/b\"c","e":"\ud83d\ude00x"}"#;
        let mut d = Decoded::default();
        decode(doc.as_bytes(), 0..doc.len(), Some(&mut d)).unwrap();
        d.finish(doc.as_bytes());
        let text = String::from_utf8(d.bytes.clone()).unwrap();
        assert_eq!(
            text,
            "{\"to\":\"jo@example.org\",\"p\":\"a/b\"c\",\"e\":\"😀x\"}"
        );
        let s = text.find("jo@").unwrap();
        let (rs, re) = d.raw_span(s, s + "jo@example.org".len());
        assert_eq!(&doc[rs..re], r"jo\u0040example.org");
        let e = text.find('😀').unwrap();
        let (rs, re) = d.raw_span(e, e + 4);
        assert_eq!(&doc[rs..re], r"\ud83d\ude00");
    }

    #[test]
    fn string_search_finds_specials_in_any_word_position() {
        for n in 0..20 {
            let mut s = vec![b'a'; n];
            s.push(b'"');
            s.extend_from_slice(b"bbbbbbbbbbbb");
            let mut high = 0;
            assert_eq!(string_special(&s, 0, &mut high), n);
            s[n] = 0x1f;
            assert_eq!(string_special(&s, 0, &mut high), n);
            s[n] = b'\\';
            assert_eq!(string_special(&s, 0, &mut high), n);
            assert_eq!(high & HIGHS, 0);
            s[n] = 0xe9;
            assert_eq!(string_special(&s, 0, &mut high), s.len());
            assert_ne!(high & HIGHS, 0);
        }
    }

    struct Collect(Vec<(String, String, bool)>);
    impl LeafSink for Collect {
        fn leaf(&mut self, leaf: Leaf<'_>) {
            self.0.push((
                render_path(&leaf.path()),
                format!("{:?}", leaf.raw),
                leaf.is_key,
            ));
        }
    }

    #[test]
    fn walk_reports_paths() {
        let doc = r#"{"user":{"email":"a","tags":["x",{"card":"4"}]},"n":[1,2],"jane@x.com":1}"#;
        let mut c = Collect(Vec::new());
        walk(doc.as_bytes(), 0..doc.len(), &mut c).unwrap();
        let paths: Vec<&str> = c.0.iter().filter(|l| !l.2).map(|l| l.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.user.email",
                "$.user.tags[0]",
                "$.user.tags[1].card",
                "$.n[0]",
                "$.n[1]",
                "$.*"
            ]
        );
    }

    #[test]
    fn decoding_with_ats_copies_the_same_and_finds_every_at() {
        for doc in [
            r#"{"a@b":"x\ny@z","c":"@\u0040@","d":["q@r"]}"#,
            r#"{"e":"a\"@\"b","f":"tail@end"}"#,
            r#"["\\u0040", "@"]"#,
            r#"["x\\", "@"]"#,
            r#"["\ud83d\ude00@", "\u00e9@\t"]"#,
            r#"["@", "\q@"]"#,
            r#"["@@\n@@"]"#,
        ] {
            let data = doc.as_bytes();
            let Some(first) = memchr::memchr(b'\\', data) else {
                panic!("{doc}: no backslash");
            };
            let mut want = Decoded::with_capacity(data.len());
            decode_unchecked(data, 0..data.len(), &mut want);
            want.finish(data);
            let mut got = Decoded::with_capacity(data.len());
            let mut ats: Vec<usize> = (0..first).filter(|&i| data[i] == b'@').collect();
            let exact = decode_unchecked_ats(data, 0..data.len(), first, &mut got, &mut ats);
            got.finish(data);
            assert_eq!(got.bytes, want.bytes, "{doc}");
            assert_eq!(
                got.raw_span(0, got.bytes.len()),
                want.raw_span(0, want.bytes.len()),
                "{doc}"
            );
            let has_backslash = got.bytes.contains(&b'\\');
            assert_eq!(exact, !has_backslash, "{doc}");
            if exact {
                let every: Vec<usize> = (0..got.bytes.len())
                    .filter(|&i| got.bytes[i] == b'@')
                    .collect();
                assert_eq!(ats, every, "{doc}");
            }
        }
    }

    #[test]
    fn trusted_walk_reports_what_walk_reports() {
        let doc = "{\"ü\":[\"é\\u0041\",{\"k\":\"ø\"}],\"n\":1}".as_bytes();
        let (mut a, mut b) = (Collect(Vec::new()), Collect(Vec::new()));
        walk(doc, 0..doc.len(), &mut a).unwrap();
        walk_valid(doc, 0..doc.len(), &mut b).unwrap();
        assert_eq!(a.0, b.0);
        assert_eq!(a.0.len(), 6);
    }

    /// Whether a path shows key `k`; when it does, it must be `$.k` (and
    /// `$.*` when it does not).
    fn shows_key(k: &[u8]) -> bool {
        let mut s = b"stale".to_vec();
        render_path_into(&[Segment::Key(k.to_vec())], &mut s);
        let shown = plain_key(k);
        let want: Vec<u8> = if shown {
            [b"$.".as_slice(), k].concat()
        } else {
            b"$.*".to_vec()
        };
        assert_eq!(s, want, "{k:?}");
        shown
    }

    /// `plain_key`'s definition, byte by byte.
    fn plain_key_reference(k: &[u8]) -> bool {
        let mut digits = 0;
        !k.is_empty()
            && k.len() <= 64
            && !k[0].is_ascii_digit()
            && k.iter().all(|&b| {
                digits = if b.is_ascii_digit() { digits + 1 } else { 0 };
                digits < 4 && (b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'$')
            })
    }

    #[test]
    fn plain_keys_follow_their_definition() {
        let mut seed = 0x5eed_u64;
        let alphabet = b"aZ09_-$.* \xe9\x00\xff1234";
        for n in 0..3000 {
            let len = n % 70;
            let k: Vec<u8> = (0..len)
                .map(|_| {
                    crate::test_rng::xorshift(&mut seed);
                    if seed >> 60 == 0 {
                        (seed >> 20) as u8
                    } else {
                        alphabet[(seed >> 24) as usize % alphabet.len()]
                    }
                })
                .collect();
            assert_eq!(shows_key(&k), plain_key_reference(&k), "{k:?}");
        }
        for k in [
            &b"user_id"[..],
            b"a123",
            b"a1234",
            b"1a",
            b"x-$",
            b"",
            &[b'k'; 64],
            &[b'k'; 65],
        ] {
            assert_eq!(shows_key(k), plain_key_reference(k), "{k:?}");
        }
    }

    #[test]
    fn rendered_paths_never_show_values_as_keys() {
        let p = [
            Segment::Key(b"users".to_vec()),
            Segment::Key(b"4111111111111111".to_vec()),
            Segment::Key(b"id_4111".to_vec()),
            Segment::Key(b"user-id".to_vec()),
        ];
        assert_eq!(render_path(&p), "$.users.*.*.user-id");
        for i in [0, 7, 10, 99, 4096, usize::MAX] {
            let p = [Segment::Index(i), Segment::Key(b"k".to_vec())];
            assert_eq!(render_path(&p), format!("$[{i}].k"));
        }
        let long = vec![Segment::Key(b"abcdefghij".to_vec()); 100];
        assert!(render_path(&long).len() < MAX_RENDERED_PATH + 20);
    }

    #[test]
    fn hit_paths_render_as_their_segments_and_share_a_token() {
        let doc = br#"{"a":[1,{"k\u0041y":"xyz","4111222233334444":"v"}],"b":7}"#;
        let at = |s: &str| memchr::memmem::find(doc, s.as_bytes()).unwrap_or(0);
        let starts = [at("1,"), at("xyz"), at("xyz") + 1, at("\"v") + 1, at("7}")];
        let paths = hit_paths(doc, 0..doc.len(), &starts).unwrap_or_default();
        let mut got = Vec::new();
        let mut buf = Vec::new();
        for q in 0..paths.len() {
            buf.clear();
            assert!(paths.render_onto(q, &mut buf));
            let segs = paths.segments(q).unwrap_or_default();
            assert_eq!(buf, render_path(&segs).as_bytes());
            got.push(String::from_utf8(buf.clone()).unwrap_or_default());
        }
        assert_eq!(
            got,
            ["$.a[0]", "$.a[1].kAy", "$.a[1].kAy", "$.a[1].*", "$.b"]
        );
        assert_eq!(paths.id(1), paths.id(2));
        assert_ne!(paths.id(0), paths.id(1));
        let none = hit_paths(doc, 0..doc.len(), &[doc.len()]).unwrap_or_default();
        buf = b"kept".to_vec();
        assert!(!none.render_onto(0, &mut buf) && none.id(0).is_none());
        assert_eq!(buf, b"kept");
    }

    #[test]
    fn lenient_pairs_find_key_values_in_broken_json() {
        let doc = br#"{"password": "hun\"ter2", "n":42, "o":{"token":"t"}, oops "x":"#;
        let pairs = lenient_pairs(doc, 0..doc.len());
        let got: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, r)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(&doc[r.clone()]).into_owned(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("password".into(), r#"hun\"ter2"#.into()),
                ("n".into(), "42".into()),
                ("token".into(), "t".into())
            ]
        );
        assert!(lenient_pairs(b"\"unterminated", 0..13).is_empty());
        assert!(
            lenient_pairs(b"{\"a\":\"\xff\"", 0..9).is_empty(),
            "invalid values are skipped"
        );
    }

    #[test]
    fn escape_ascii_decodes_single_units() {
        assert_eq!(escape_ascii(br"\u0034"), Some(b'4'));
        assert_eq!(escape_ascii(br"\n"), Some(b'\n'));
        assert_eq!(escape_ascii(br"\u00e9"), None);
        assert_eq!(escape_ascii(br"\q"), None);
    }
}

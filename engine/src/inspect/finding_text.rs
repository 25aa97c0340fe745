//! The text fields of a `Finding`: its rule id, category and path
//! (`$.records[17].email`).
//!
//! A body full of findings has 1,195 of them per MiB (the mixed corpus).
//! A heap path each cost a `malloc`, a copy and a `free` per finding per
//! scan, and the rule id and category, shared `Arc<str>`s, two atomic
//! increments and two decrements (about 2.5% of such a scan). Nearly every
//! such text is short, so it is kept inline in the finding: making one is
//! a copy of a few words, dropping one is nothing. A longer one (deep
//! documents, long ids) is one shared heap string, as before.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// Texts up to this many bytes are kept inline (the mixed corpus' longest
/// path is 29 bytes; `$.data.attributes.billing.card_number` is 37, the
/// catalogue's longest category 40).
pub(crate) const INLINE: usize = 39;

/// A finding's rule id, category or path: reads as a `&str` (`Deref`,
/// `as_str`, `Display`), compares with strings, and is made from one
/// (`From<&str>`).
#[derive(Clone)]
pub struct FindingText(Repr);

#[derive(Clone)]
enum Repr {
    Inline(Inline),
    Heap(Arc<str>),
}

/// `bytes[..len]` (UTF-8; the bytes after it are unspecified). The bytes
/// first and aligned: with the length first they sat at odd offsets and
/// every move of a finding was byte-wise and stalled on store forwarding
/// (making a finding in `analyze` still stalls once, on its wide copy of
/// the narrow stores that built it).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Inline {
    bytes: [u8; INLINE],
    len: u8,
}

impl FindingText {
    pub fn new(text: &str) -> FindingText {
        let src = text.as_bytes();
        let mut bytes = [0u8; INLINE];
        match (bytes.get_mut(..src.len()), u8::try_from(src.len())) {
            (Some(dst), Ok(len)) => {
                dst.copy_from_slice(src);
                FindingText(Repr::Inline(Inline { bytes, len }))
            }
            _ => FindingText(Repr::Heap(Arc::from(text))),
        }
    }

    /// `text` as UTF-8 bytes; `None` when they are not UTF-8.
    pub fn from_utf8(text: &[u8]) -> Option<FindingText> {
        std::str::from_utf8(text).ok().map(FindingText::new)
    }

    /// The path rendered at `arena[range]` (whole UTF-8, as the renderer
    /// writes it), written into `out` in place. A short one is copied as a
    /// fixed `INLINE` bytes when the arena holds that many from its start
    /// (the caller pads it), so the copy is a few word moves instead of a
    /// `memcpy` of a length known only here; and it goes from the arena
    /// straight into the finding (made on the stack and then copied in,
    /// its narrow stores stalled the copy's wide loads: store forwarding
    /// fails). `None` when the range is not in the arena or a long path
    /// is not UTF-8.
    #[inline]
    pub(crate) fn from_arena_into(
        arena: &[u8],
        range: Range<usize>,
        out: &mut Option<FindingText>,
    ) {
        let padded = arena.get(range.start..range.start.saturating_add(INLINE));
        match (padded, u8::try_from(range.len())) {
            (Some(padded), Ok(len)) if range.len() <= INLINE && range.start <= range.end => {
                // The bytes are copied from the arena into `out` itself
                // (through a value, the compiler staged them on the stack
                // with overlapping stores and stalled reading them back).
                let inline = out.insert(FindingText(Repr::Inline(Inline {
                    bytes: [0; INLINE],
                    len,
                })));
                match (&mut inline.0, <&[u8; INLINE]>::try_from(padded)) {
                    (Repr::Inline(Inline { bytes, .. }), Ok(src)) => *bytes = *src,
                    _ => *out = None,
                }
            }
            _ => *out = arena.get(range).and_then(FindingText::from_utf8),
        }
    }

    /// `from_arena_into` as a value.
    #[cfg(test)]
    fn from_arena(arena: &[u8], range: Range<usize>) -> Option<FindingText> {
        let mut out = None;
        FindingText::from_arena_into(arena, range, &mut out);
        out
    }

    /// The text's bytes, unchecked: what equality and order compare.
    fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(Inline { bytes, len }) => {
                bytes.get(..usize::from(*len)).unwrap_or_default()
            }
            Repr::Heap(s) => s.as_bytes(),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Copied from whole UTF-8, so the check cannot fail; it keeps
            // the conversion safe and costs a few instructions when read.
            Repr::Inline(_) => std::str::from_utf8(self.bytes()).unwrap_or_default(),
            Repr::Heap(s) => s,
        }
    }
}

impl Deref for FindingText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for FindingText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for FindingText {
    fn from(text: &str) -> FindingText {
        FindingText::new(text)
    }
}

impl From<String> for FindingText {
    fn from(text: String) -> FindingText {
        FindingText::new(&text)
    }
}

impl From<Arc<str>> for FindingText {
    fn from(text: Arc<str>) -> FindingText {
        if text.len() <= INLINE {
            FindingText::new(&text)
        } else {
            FindingText(Repr::Heap(text))
        }
    }
}

/// Like a string's: `"$.email"`, quoted (what `Option<Arc<str>>` printed).
impl fmt::Debug for FindingText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for FindingText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// By bytes (a string's equality and order), without `as_str`'s check:
/// findings are compared by rule id when they are sorted and deduplicated.
impl PartialEq for FindingText {
    fn eq(&self, other: &FindingText) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for FindingText {}

impl std::hash::Hash for FindingText {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl PartialOrd for FindingText {
    fn partial_cmp(&self, other: &FindingText) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FindingText {
    fn cmp(&self, other: &FindingText) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

/// Eq, Ord and Hash are the string's, so a map keyed by `FindingText`
/// can be looked up by `&str`.
impl std::borrow::Borrow<str> for FindingText {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for FindingText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for FindingText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_paths_read_back_as_made() {
        let long = format!("$.{}", "k".repeat(INLINE));
        for s in ["", "$", "$.email", "$[0].a", &long, "$.é…"] {
            let p = FindingText::new(s);
            assert_eq!(p.as_str(), s);
            assert_eq!(&*p, s);
            assert_eq!(p, s);
            assert_eq!(p.to_string(), s);
            assert_eq!(format!("{p:?}"), format!("{s:?}"));
            assert_eq!(FindingText::from(Arc::<str>::from(s)), p);
            assert_eq!(FindingText::from_utf8(s.as_bytes()), Some(p));
        }
        assert!(matches!(FindingText::new(&long).0, Repr::Heap(_)));
        let edge = "x".repeat(INLINE);
        assert!(matches!(FindingText::new(&edge).0, Repr::Inline(_)));
        assert_eq!(FindingText::from_utf8(b"\xff"), None);
    }

    #[test]
    fn arena_paths_read_as_their_range_padded_or_not() {
        let long = format!("$.{}", "k".repeat(INLINE));
        let mut arena = Vec::new();
        let mut ranges = Vec::new();
        for s in ["$.a", "", "$.é…", &long, "$[7].b"] {
            let a = arena.len();
            arena.extend_from_slice(s.as_bytes());
            ranges.push((a..arena.len(), s));
        }
        // Unpadded: the last short paths lack `INLINE` bytes after them.
        for (r, s) in &ranges {
            assert_eq!(
                FindingText::from_arena(&arena, r.clone()),
                Some(FindingText::new(s))
            );
        }
        arena.resize(arena.len() + INLINE, b'x');
        for (r, s) in &ranges {
            assert_eq!(
                FindingText::from_arena(&arena, r.clone()),
                Some(FindingText::new(s))
            );
        }
        assert_eq!(FindingText::from_arena(&arena, 0..arena.len() + 1), None);
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = FindingText::from_arena(&arena, 3..1);
        assert_eq!(backwards, None);
    }

    #[test]
    fn inline_and_heap_paths_of_one_text_are_equal() {
        let s = "$.a";
        let heap = FindingText(Repr::Heap(Arc::from(s)));
        assert_eq!(heap, FindingText::new(s));
        assert_eq!(Some(heap).as_deref(), Some(s));
    }
}

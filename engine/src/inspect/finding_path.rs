//! `Finding::path`, the field a finding is in as text (`$.records[17].email`).
//!
//! A body full of findings has one path per finding (1,195 per MiB in the
//! mixed corpus), and a heap string each cost a `malloc`, a copy and a
//! `free` per finding per scan (about 5% of such a scan). Nearly every
//! path is short, so it is kept inline in the finding: making one is a
//! copy of a few bytes, dropping one is nothing. A longer path (deep
//! documents, long keys) is one shared heap string, as before.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// Paths up to this many bytes are kept inline (the mixed corpus' longest
/// is 29; `$.data.attributes.billing.card_number` is 37).
pub(crate) const INLINE: usize = 39;

/// A finding's JSONPath: reads as a `&str` (`Deref`, `as_str`, `Display`),
/// compares with strings, and is made from one (`From<&str>`).
#[derive(Clone)]
pub struct FindingPath(Repr);

#[derive(Clone)]
enum Repr {
    Inline(Inline),
    Heap(Arc<str>),
}

/// `bytes[..len]` (UTF-8; the bytes after it are unspecified). The bytes
/// first, aligned, and a whole number of words: a finding is moved in
/// whole words, where bytes at odd offsets made each move a
/// store-forwarding stall.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Inline {
    bytes: [u8; INLINE],
    len: u8,
}

impl FindingPath {
    pub fn new(path: &str) -> FindingPath {
        let src = path.as_bytes();
        let mut bytes = [0u8; INLINE];
        match (bytes.get_mut(..src.len()), u8::try_from(src.len())) {
            (Some(dst), Ok(len)) => {
                dst.copy_from_slice(src);
                FindingPath(Repr::Inline(Inline { bytes, len }))
            }
            _ => FindingPath(Repr::Heap(Arc::from(path))),
        }
    }

    /// `path` as UTF-8 bytes; `None` when they are not UTF-8.
    pub fn from_utf8(path: &[u8]) -> Option<FindingPath> {
        std::str::from_utf8(path).ok().map(FindingPath::new)
    }

    /// The path rendered at `arena[range]` (whole UTF-8, as the renderer
    /// writes it). A short one is copied as a fixed `INLINE` bytes when
    /// the arena holds that many from its start (the caller pads it), so
    /// the copy is a few word moves instead of a `memcpy` of a length
    /// known only here. `None` when the range is not in the arena or a
    /// long path is not UTF-8.
    pub(crate) fn from_arena(arena: &[u8], range: Range<usize>) -> Option<FindingPath> {
        let padded = arena.get(range.start..range.start.saturating_add(INLINE));
        match (padded, u8::try_from(range.len())) {
            (Some(padded), Ok(len)) if range.len() <= INLINE && range.start <= range.end => {
                let bytes: [u8; INLINE] = padded.try_into().ok()?;
                Some(FindingPath(Repr::Inline(Inline { bytes, len })))
            }
            _ => FindingPath::from_utf8(arena.get(range)?),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Copied from whole UTF-8, so the check cannot fail; it keeps
            // the conversion safe and costs a few instructions when read.
            Repr::Inline(Inline { bytes, len }) => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Repr::Heap(s) => s,
        }
    }
}

impl Deref for FindingPath {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for FindingPath {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for FindingPath {
    fn from(path: &str) -> FindingPath {
        FindingPath::new(path)
    }
}

impl From<String> for FindingPath {
    fn from(path: String) -> FindingPath {
        FindingPath::new(&path)
    }
}

impl From<Arc<str>> for FindingPath {
    fn from(path: Arc<str>) -> FindingPath {
        if path.len() <= INLINE {
            FindingPath::new(&path)
        } else {
            FindingPath(Repr::Heap(path))
        }
    }
}

/// Like a string's: `"$.email"`, quoted (what `Option<Arc<str>>` printed).
impl fmt::Debug for FindingPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for FindingPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for FindingPath {
    fn eq(&self, other: &FindingPath) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for FindingPath {}

impl std::hash::Hash for FindingPath {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl PartialEq<str> for FindingPath {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for FindingPath {
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
            let p = FindingPath::new(s);
            assert_eq!(p.as_str(), s);
            assert_eq!(&*p, s);
            assert_eq!(p, s);
            assert_eq!(p.to_string(), s);
            assert_eq!(format!("{p:?}"), format!("{s:?}"));
            assert_eq!(FindingPath::from(Arc::<str>::from(s)), p);
            assert_eq!(FindingPath::from_utf8(s.as_bytes()), Some(p));
        }
        assert!(matches!(FindingPath::new(&long).0, Repr::Heap(_)));
        let edge = "x".repeat(INLINE);
        assert!(matches!(FindingPath::new(&edge).0, Repr::Inline(_)));
        assert_eq!(FindingPath::from_utf8(b"\xff"), None);
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
                FindingPath::from_arena(&arena, r.clone()),
                Some(FindingPath::new(s))
            );
        }
        arena.resize(arena.len() + INLINE, b'x');
        for (r, s) in &ranges {
            assert_eq!(
                FindingPath::from_arena(&arena, r.clone()),
                Some(FindingPath::new(s))
            );
        }
        assert_eq!(FindingPath::from_arena(&arena, 0..arena.len() + 1), None);
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = FindingPath::from_arena(&arena, 3..1);
        assert_eq!(backwards, None);
    }

    #[test]
    fn inline_and_heap_paths_of_one_text_are_equal() {
        let s = "$.a";
        let heap = FindingPath(Repr::Heap(Arc::from(s)));
        assert_eq!(heap, FindingPath::new(s));
        assert_eq!(Some(heap).as_deref(), Some(s));
    }
}

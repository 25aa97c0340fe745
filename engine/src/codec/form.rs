//! URL-style encodings: `application/x-www-form-urlencoded` bodies and query
//! strings (`&`-separated `name=value`, percent-escapes, `+` as space), URL
//! path segments (percent-escapes only), and cookie headers (`; `-separated
//! pairs, percent-escapes decoded as most frameworks do). The scanner reads
//! the decoded bytes; findings map back to whole `%XX` escapes, and masks
//! rewrite only the escapes they cover.

use super::Decoded;
use std::ops::Range;

/// Which URL-style syntax a buffer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Form bodies and query strings: `&` pairs, `+` is a space.
    Form,
    /// A URL path: `/` segments, `+` is itself.
    Path,
    /// `cookie` (`a=1; b=2`) and `set-cookie` (first pair only).
    Cookie { set: bool },
}

#[inline]
fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The byte a `%XX` at `data[i]` encodes.
#[inline]
pub fn percent_at(data: &[u8], i: usize) -> Option<u8> {
    if data.get(i) != Some(&b'%') {
        return None;
    }
    Some(hex(*data.get(i + 1)?)? << 4 | hex(*data.get(i + 2)?)?)
}

/// Decodes `data` (percent-escapes, and `+` for forms); `None` when there
/// is nothing to decode, so the caller scans the raw bytes in place.
pub fn decode(data: &[u8], syntax: Syntax) -> Option<Decoded> {
    let plus = syntax == Syntax::Form;
    let first = data
        .iter()
        .position(|&b| b == b'%' || (plus && b == b'+'))?;
    let mut d = Decoded::with_capacity(data.len());
    let mut i = first;
    while i < data.len() {
        match data[i] {
            b'%' => {
                if let Some(v) = percent_at(data, i) {
                    d.push_unit(data, i, 3, &[v]);
                    i += 3;
                    continue;
                }
            }
            b'+' if plus => d.push_unit(data, i, 1, b" "),
            _ => {}
        }
        i += 1;
    }
    d.finish(data);
    d.changed().then_some(d)
}

/// One `name=value` pair: raw spans of the name and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub name: Range<usize>,
    pub value: Range<usize>,
}

/// The pairs of `data` in `syntax` (none for a path).
pub fn pairs(data: &[u8], syntax: Syntax) -> Vec<Pair> {
    let sep = match syntax {
        Syntax::Form => b'&',
        Syntax::Cookie { .. } => b';',
        Syntax::Path => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start <= data.len() {
        let end = memchr::memchr(sep, &data[start..]).map_or(data.len(), |p| start + p);
        let mut s = start;
        if matches!(syntax, Syntax::Cookie { .. }) {
            while s < end && data[s] == b' ' {
                s += 1;
            }
        }
        if s < end {
            let (name, value) = match memchr::memchr(b'=', &data[s..end]) {
                Some(eq) => (s..s + eq, s + eq + 1..end),
                None => (s..end, end..end),
            };
            out.push(Pair { name, value });
        }
        if matches!(syntax, Syntax::Cookie { set: true }) {
            break; // attributes (`Path=/; HttpOnly`) are not cookies
        }
        start = end + 1;
    }
    out
}

/// The decoded form of a raw name or value (for key rules and paths).
pub fn decoded_text(raw: &[u8], syntax: Syntax) -> Vec<u8> {
    match decode(raw, syntax) {
        Some(d) => d.bytes,
        None => raw.to_vec(),
    }
}

/// Length of the URL unit at `data[i]`: 3 for a valid `%XX`, else 1.
#[inline]
pub fn unit_len(data: &[u8], i: usize) -> usize {
    if percent_at(data, i).is_some() {
        3
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus_and_maps_back() {
        let raw = b"user=jane&email=jane.doe%40example.com&c=4111+1111";
        let d = decode(raw, Syntax::Form).unwrap();
        let text = String::from_utf8(d.bytes.clone()).unwrap();
        assert_eq!(text, "user=jane&email=jane.doe@example.com&c=4111 1111");
        let s = text.find("jane.doe").unwrap();
        let (rs, re) = d.raw_span(s, s + "jane.doe@example.com".len());
        assert_eq!(&raw[rs..re], b"jane.doe%40example.com");
        assert!(decode(b"a=1&b=2", Syntax::Form).is_none());
        assert!(decode(b"bad%zz", Syntax::Form).is_none(), "stray % is kept");
        assert_eq!(decode(b"/a+b%2Fc", Syntax::Path).unwrap().bytes, b"/a+b/c");
    }

    #[test]
    fn splits_pairs_and_cookies() {
        let raw = b"a=1&&b&c=x=y";
        let p = pairs(raw, Syntax::Form);
        let names: Vec<&[u8]> = p.iter().map(|p| &raw[p.name.clone()]).collect();
        let values: Vec<&[u8]> = p.iter().map(|p| &raw[p.value.clone()]).collect();
        assert_eq!(names, [b"a".as_slice(), b"b", b"c"]);
        assert_eq!(values, [b"1".as_slice(), b"", b"x=y"]);
        let c = b"sid=abc; theme=dark";
        let p = pairs(c, Syntax::Cookie { set: false });
        assert_eq!(&c[p[1].name.clone()], b"theme");
        let s = b"sid=abc; Path=/; HttpOnly";
        assert_eq!(pairs(s, Syntax::Cookie { set: true }).len(), 1);
    }
}

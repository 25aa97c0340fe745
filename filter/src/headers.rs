//! A header map read with one host call. Each `get_header_map_value` is a
//! host call and, when the header is present, Envoy calls back into the
//! module (`proxy_on_memory_allocate`) for the value: reading the dozen
//! headers a request needs one by one cost ~12 host calls and ~8 more V8
//! entries per stream. `get_header_map_pairs` hands the whole map over
//! once; this snapshot answers lookups from it and mirrors the filter's
//! own edits, so a read after a write sees what Envoy would return.
//! When the pairs call fails (or its bytes do not parse) lookups fall back
//! to one host call each, as before.

use crate::host::{self, HostError};
use proxy_wasm::types::MapType;
use std::ops::Range;

/// The headers of one map, as Envoy had them at the snapshot, plus the
/// filter's later edits.
pub struct Headers {
    map: MapType,
    /// `None`: no snapshot, every lookup asks the host.
    snapshot: Option<Snapshot>,
}

struct Snapshot {
    bytes: Vec<u8>,
    /// (key, value) ranges in `bytes`, in the map's order.
    entries: Vec<(Range<usize>, Range<usize>)>,
    /// Headers set (`Some`) or removed (`None`) since, latest last.
    edits: Vec<(String, Option<Vec<u8>>)>,
}

impl Headers {
    /// Reads `map` with one host call.
    pub fn read(map: MapType) -> Headers {
        let snapshot = match host::get_header_pairs(map) {
            Ok(bytes) => parse(&bytes).map(|entries| Snapshot {
                bytes,
                entries,
                edits: Vec::new(),
            }),
            Err(_) => None,
        };
        Headers { map, snapshot }
    }

    /// The first value of `name` (lower-case), as `get_header_map_value`
    /// returns it.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        let Some(s) = &self.snapshot else {
            return host::get_header(self.map, name);
        };
        if let Some((_, edit)) = s.edits.iter().rev().find(|(k, _)| k == name) {
            return Ok(edit.clone());
        }
        Ok(s.entries
            .iter()
            .find(|(k, _)| s.bytes[k.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| s.bytes[v.clone()].to_vec()))
    }

    /// A header value as text; values that are not UTF-8 are absent, as
    /// with [`host::get_header_text`].
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
    }

    /// Replaces every value of `name` in Envoy's map (and the snapshot).
    pub fn set(&mut self, name: &str, value: &[u8]) -> Result<(), HostError> {
        host::set_header(self.map, name, value)?;
        if let Some(s) = &mut self.snapshot {
            s.edits.push((name.to_string(), Some(value.to_vec())));
        }
        Ok(())
    }

    /// Removes `name` from Envoy's map (and the snapshot).
    pub fn remove(&mut self, name: &str) -> Result<(), HostError> {
        host::remove_header(self.map, name)?;
        if let Some(s) = &mut self.snapshot {
            s.edits.push((name.to_string(), None));
        }
        Ok(())
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The (key, value) ranges of a serialized map (a u32 count, the (key,
/// value) sizes, then each key and value NUL-terminated); `None` if the
/// bytes do not hold what their sizes say. An empty buffer is an empty map.
fn parse(bytes: &[u8]) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = u32_at(bytes, 0)?;
    // Each entry takes at least 10 bytes: two sizes and two NULs.
    if count > bytes.len() / 10 {
        return None;
    }
    let mut entries = Vec::with_capacity(count);
    let mut at = 4 + count * 8;
    for i in 0..count {
        let key_len = u32_at(bytes, 4 + i * 8)?;
        let value_len = u32_at(bytes, 8 + i * 8)?;
        let key = at..at.checked_add(key_len)?;
        let value = key.end + 1..(key.end + 1).checked_add(value_len)?;
        if value.end >= bytes.len() || bytes[key.end] != 0 || bytes[value.end] != 0 {
            return None;
        }
        at = value.end + 1;
        entries.push((key, value));
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(pairs: &[(&str, &str)]) -> Headers {
        let bytes = crate::host::serialize_headers(pairs);
        let entries = parse(&bytes).unwrap();
        Headers {
            map: MapType::HttpRequestHeaders,
            snapshot: Some(Snapshot {
                bytes,
                entries,
                edits: Vec::new(),
            }),
        }
    }

    #[test]
    fn lookups_return_the_first_value_like_get_header_map_value() {
        let h = snapshot(&[
            (":path", "/a?b"),
            ("x-dup", "one"),
            ("x-dup", "two"),
            ("empty", ""),
        ]);
        assert_eq!(h.text(":path").as_deref(), Some("/a?b"));
        assert_eq!(h.text("x-dup").as_deref(), Some("one"));
        assert_eq!(h.text("empty").as_deref(), Some(""));
        assert_eq!(h.text("absent"), None);
    }

    #[test]
    fn non_utf8_values_are_absent_as_text() {
        let mut bytes = crate::host::serialize_headers(&[("k", "ab")]);
        let at = bytes.len() - 3;
        bytes[at] = 0xff;
        let entries = parse(&bytes).unwrap();
        let h = Headers {
            map: MapType::HttpRequestHeaders,
            snapshot: Some(Snapshot {
                bytes,
                entries,
                edits: Vec::new(),
            }),
        };
        assert_eq!(h.get("k").unwrap(), Some(vec![0xff, b'b']));
        assert_eq!(h.text("k"), None);
    }

    #[test]
    fn edits_are_seen_by_later_lookups() {
        let mut h = snapshot(&[("content-length", "5"), ("a", "1")]);
        if let Some(s) = &mut h.snapshot {
            s.edits.push(("content-length".into(), None));
            s.edits.push(("a".into(), Some(b"2".to_vec())));
            s.edits.push(("new".into(), Some(b"3".to_vec())));
        }
        assert_eq!(h.text("content-length"), None);
        assert_eq!(h.text("a").as_deref(), Some("2"));
        assert_eq!(h.text("new").as_deref(), Some("3"));
    }

    #[test]
    fn malformed_maps_are_rejected() {
        assert_eq!(parse(&[]), Some(Vec::new()));
        let good = crate::host::serialize_headers(&[("key", "value")]);
        assert!(parse(&good).is_some());
        for cut in 1..good.len() {
            assert_eq!(parse(&good[..cut]), None, "cut at {cut}");
        }
        let mut bad_nul = good.clone();
        let at = 4 + 8 + 3;
        bad_nul[at] = b'x';
        assert_eq!(parse(&bad_nul), None);
        let mut huge = good;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&huge), None);
    }
}

//! Body and value codecs: how a wire format hides bytes from a plain scan
//! (JSON `\u` escapes, percent-encoding, multipart framing) and how they are
//! undone for the scanner. A codec produces the bytes the detectors see
//! (`Decoded`: the raw buffer with its escapes decoded) and maps every
//! decoded span back to the raw bytes it came from, so findings, events and
//! redaction always speak raw offsets. Codecs never allocate when there is
//! nothing to decode: the scanner then reads the raw buffer in place.

pub mod form;
pub mod json;
pub mod multipart;
pub mod selector;

/// A decoded copy of a buffer plus the map back to raw offsets. Only the
/// escape units are recorded; between them decoded and raw bytes
/// correspond one to one.
#[derive(Debug, Default, Clone)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    units: Vec<Unit>,
    /// Raw bytes up to here are accounted for (copied or decoded).
    raw_done: usize,
}

/// One escape: `raw_len` raw bytes at `raw` became `decoded_len` bytes at
/// `decoded`.
#[derive(Debug, Clone, Copy)]
struct Unit {
    decoded: usize,
    raw: usize,
    decoded_len: u32,
    raw_len: u32,
}

impl Decoded {
    pub fn with_capacity(n: usize) -> Decoded {
        Decoded {
            bytes: Vec::with_capacity(n),
            units: Vec::new(),
            raw_done: 0,
        }
    }

    /// Copies `raw[self.raw_done..upto]` unchanged.
    pub fn copy_until(&mut self, raw: &[u8], upto: usize) {
        let upto = upto.min(raw.len());
        if upto > self.raw_done {
            self.bytes.extend_from_slice(&raw[self.raw_done..upto]);
            self.raw_done = upto;
        }
    }

    /// Records that `raw[at..at + raw_len]` decodes to `decoded`; the raw
    /// bytes before `at` are copied first.
    pub fn push_unit(&mut self, raw: &[u8], at: usize, raw_len: usize, decoded: &[u8]) {
        self.copy_until(raw, at);
        if decoded.is_empty() {
            // Nothing to map to; keep the raw bytes so offsets stay sane.
            return;
        }
        self.units.push(Unit {
            decoded: self.bytes.len(),
            raw: at,
            decoded_len: decoded.len() as u32,
            raw_len: raw_len as u32,
        });
        self.bytes.extend_from_slice(decoded);
        self.raw_done = at + raw_len;
    }

    /// Where raw offset `pos`, at or after the bytes accounted for so far,
    /// lands in `bytes` once the bytes up to it are copied unchanged.
    pub fn copied_offset(&self, pos: usize) -> usize {
        self.bytes.len() + pos.saturating_sub(self.raw_done)
    }

    /// Copies the rest of `raw`.
    pub fn finish(&mut self, raw: &[u8]) {
        self.copy_until(raw, raw.len());
    }

    /// Whether any escape was decoded.
    pub fn changed(&self) -> bool {
        !self.units.is_empty()
    }

    /// The raw offset of decoded offset `pos`; a position inside an escape
    /// maps to the escape's start (`end == false`) or end (`end == true`,
    /// `pos` exclusive).
    fn raw_pos(&self, pos: usize, end: bool) -> usize {
        let probe = if end {
            match pos.checked_sub(1) {
                Some(p) => p,
                None => return 0,
            }
        } else {
            pos
        };
        let idx = self.units.partition_point(|u| u.decoded <= probe);
        let Some(u) = idx.checked_sub(1).and_then(|i| self.units.get(i)) else {
            return pos;
        };
        let u_end = u.decoded + u.decoded_len as usize;
        let raw_end = u.raw + u.raw_len as usize;
        if probe < u_end {
            return if end { raw_end } else { u.raw };
        }
        raw_end + (pos - u_end)
    }

    /// A mapper for spans given in order of start (`SpanCursor::raw_span`
    /// equals `raw_span`), which walks the escapes instead of searching.
    pub fn cursor(&self) -> SpanCursor<'_> {
        SpanCursor { d: self, next: 0 }
    }

    /// Maps a decoded span to the raw span that holds it, widened to whole
    /// escapes.
    pub fn raw_span(&self, start: usize, end: usize) -> (usize, usize) {
        if self.units.is_empty() {
            return (start, end);
        }
        let s = self.raw_pos(start, false);
        let e = self.raw_pos(end, true).max(s);
        (s, e)
    }
}

/// `Decoded::raw_span` for spans sorted by start: `next` is the first
/// escape starting after the last start seen, so each step moves forward.
pub struct SpanCursor<'d> {
    d: &'d Decoded,
    next: usize,
}

impl SpanCursor<'_> {
    /// The unit holding or preceding decoded offset `probe`, searching
    /// forward from `from`: (its index + 1, or 0 when there is none).
    fn after(&self, from: usize, probe: usize) -> usize {
        let units = &self.d.units;
        let mut i = from;
        while units.get(i).is_some_and(|u| u.decoded <= probe) {
            i += 1;
        }
        i
    }

    /// `raw_pos` with the unit index already found.
    fn raw_pos(&self, idx: usize, pos: usize, end: bool) -> usize {
        let Some(u) = idx.checked_sub(1).and_then(|i| self.d.units.get(i)) else {
            return pos;
        };
        let probe = if end { pos - 1 } else { pos };
        let u_end = u.decoded + u.decoded_len as usize;
        let raw_end = u.raw + u.raw_len as usize;
        if probe < u_end {
            return if end { raw_end } else { u.raw };
        }
        raw_end + (pos - u_end)
    }

    /// `Decoded::raw_span(start, end)`; `start` must not be below the
    /// previous call's (else this falls back to the search).
    pub fn raw_span(&mut self, start: usize, end: usize) -> (usize, usize) {
        if self.d.units.is_empty() {
            return (start, end);
        }
        let back = self
            .next
            .checked_sub(1)
            .and_then(|i| self.d.units.get(i))
            .is_some_and(|u| u.decoded > start);
        if back {
            return self.d.raw_span(start, end);
        }
        self.next = self.after(self.next, start);
        let s = self.raw_pos(self.next, start, false);
        let e = match end.checked_sub(1) {
            // An end at or before the start maps from units up to start.
            Some(probe) if probe >= start => {
                let idx = self.after(self.next, probe);
                self.raw_pos(idx, end, true)
            }
            Some(_) => self.d.raw_pos(end, true),
            None => 0,
        };
        (s, e.max(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_map_back_to_whole_escapes() {
        let raw = b"ab%40cd%20e";
        let mut d = Decoded::default();
        d.push_unit(raw, 2, 3, b"@");
        d.push_unit(raw, 7, 3, b" ");
        d.finish(raw);
        assert_eq!(d.bytes, b"ab@cd e");
        // "b@c" -> "b%40c"
        assert_eq!(d.raw_span(1, 4), (1, 6));
        // "@" alone -> "%40"
        assert_eq!(d.raw_span(2, 3), (2, 5));
        // after both escapes
        assert_eq!(d.raw_span(6, 7), (10, 11));
        // span ending right after an escape
        assert_eq!(d.raw_span(0, 3), (0, 5));
        // span starting right after an escape
        assert_eq!(d.raw_span(3, 5), (5, 7));
        assert_eq!(d.raw_span(0, 7), (0, 11));
    }

    #[test]
    fn the_cursor_maps_as_the_search_does() {
        let raw = b"ab%40cd%20e%41%42fg%43";
        let mut d = Decoded::default();
        for at in [2, 7, 11, 14, 19] {
            d.push_unit(raw, at, 3, &raw[at + 1..at + 2]);
        }
        d.finish(raw);
        let n = d.bytes.len();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for s in 0..=n {
            for e in 0..=n {
                spans.push((s, e));
            }
        }
        // In order of start (ends in any order), then out of order.
        let mut c = d.cursor();
        for &(s, e) in &spans {
            assert_eq!(c.raw_span(s, e), d.raw_span(s, e), "{s}..{e}");
        }
        let mut c = d.cursor();
        for &(s, e) in spans.iter().rev() {
            assert_eq!(c.raw_span(s, e), d.raw_span(s, e), "{s}..{e}");
        }
    }

    #[test]
    fn nothing_decoded_is_identity() {
        let mut d = Decoded::default();
        d.finish(b"plain");
        assert!(!d.changed());
        assert_eq!(d.raw_span(1, 3), (1, 3));
    }
}

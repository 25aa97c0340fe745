//! The redaction planner: findings -> non-overlapping edits -> rewritten
//! bytes. Rewriting must never corrupt what it does not own: in JSON a mask
//! stays inside its string (escapes and multi-byte characters are masked
//! whole or not at all) and a bare number becomes a masked string of the
//! same length, so redacted JSON is still valid JSON.

use crate::bundle::MaskStyle;
use crate::inspect::{Finding, FindingText};
use crate::media::ContentKind;

/// One planned rewrite of `data[start..end]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub mask: MaskStyle,
    pub category: FindingText,
}

/// Merges overlapping findings into sorted, disjoint edits. When findings
/// overlap, the edit covers their union with the mask that hides most.
pub fn plan_edits<'a>(findings: impl Iterator<Item = &'a Finding>) -> Vec<Edit> {
    let edits: Vec<Edit> = findings
        .filter(|f| f.end > f.start)
        .map(|f| Edit {
            start: f.start,
            end: f.end,
            mask: f.mask,
            category: f.category.clone(),
        })
        .collect();
    merge_edits(edits)
}

/// Sorts edits and merges overlapping ones into their union, with the
/// mask that hides most.
pub fn merge_edits(mut edits: Vec<Edit>) -> Vec<Edit> {
    edits.sort_by_key(|e| (e.start, std::cmp::Reverse(e.end)));
    let mut merged: Vec<Edit> = Vec::with_capacity(edits.len());
    for e in edits {
        match merged.last_mut() {
            Some(last) if e.start < last.end => {
                last.end = last.end.max(e.end);
                last.mask = stronger(last.mask, e.mask);
            }
            _ => merged.push(e),
        }
    }
    merged
}

fn stronger(a: MaskStyle, b: MaskStyle) -> MaskStyle {
    let rank = |m: MaskStyle| match m {
        MaskStyle::Full => 2,
        MaskStyle::Placeholder => 1,
        MaskStyle::KeepLast4 => 0,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

/// A replacement of `data[start..end]` by `bytes`.
struct Replacement {
    start: usize,
    end: usize,
    bytes: Vec<u8>,
}

/// Applies disjoint, sorted `edits` to `data`.
pub fn apply_edits(data: &[u8], edits: &[Edit], kind: ContentKind) -> Vec<u8> {
    let replacements = match kind {
        k if k.is_json() => json_replacements(data, edits),
        k if k.is_url() => url_replacements(data, edits),
        _ => edits
            .iter()
            .map(|e| {
                let (start, end) = char_boundaries(data, e.start, e.end);
                Replacement {
                    start,
                    end,
                    bytes: mask_plain(&data[start..end], e, kind),
                }
            })
            .collect(),
    };
    let mut out = Vec::with_capacity(data.len() + 32);
    let mut pos = 0;
    for r in replacements {
        if r.start < pos {
            continue; // overlapped an earlier, already expanded replacement
        }
        out.extend_from_slice(&data[pos..r.start]);
        out.extend_from_slice(&r.bytes);
        pos = r.end;
    }
    out.extend_from_slice(&data[pos..]);
    out
}

#[inline]
fn is_continuation(b: u8) -> bool {
    (0x80..0xC0).contains(&b)
}

/// Length of the UTF-8 sequence a lead byte starts (1 for ASCII and for
/// bytes that start nothing).
#[inline]
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// Where the character holding `data[pos]` starts and ends, if `pos` is
/// inside a multi-byte sequence; stray continuation bytes belong to none.
fn enclosing_char(data: &[u8], pos: usize) -> Option<(usize, usize)> {
    if !data.get(pos).is_some_and(|&b| is_continuation(b)) {
        return None;
    }
    let lead = (pos.saturating_sub(3)..pos)
        .rev()
        .find(|&i| !is_continuation(data[i]))?;
    let end = lead + utf8_len(data[lead]);
    (end > pos).then_some((lead, end.min(data.len())))
}

/// Widens `[start, end)` so it does not cut a UTF-8 character. Invalid
/// bytes next to the span are left alone: masking must not repair (or
/// break) what it does not own.
fn char_boundaries(data: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    if let Some((s, _)) = enclosing_char(data, start) {
        start = s;
    }
    if end > 0 && end < data.len() {
        if let Some((s, e)) = enclosing_char(data, end) {
            if s < end {
                end = e;
            }
        }
    }
    (start, end.min(data.len()))
}

fn placeholder(e: &Edit) -> Vec<u8> {
    format!("[REDACTED:{}]", e.category).into_bytes()
}

/// One written unit of a value: a byte, a JSON escape (`\u0034`) or a
/// percent-escape (`%20`), with the ASCII byte it stands for.
struct Unit<'a> {
    raw: &'a [u8],
    ascii: Option<u8>,
}

/// Masks all but the last four letters and digits; separators stay as they
/// are written (`4111%201111` -> `****%201111`), and an escaped digit is
/// a digit (`\u0034` is masked like `4`).
fn keep_last4(units: &[Unit<'_>]) -> Vec<u8> {
    let alnum = |u: &Unit<'_>| u.ascii.is_some_and(|b| b.is_ascii_alphanumeric());
    let keep_from = units.iter().filter(|u| alnum(u)).count().saturating_sub(4);
    let mut seen = 0;
    let mut out = Vec::new();
    for u in units {
        if alnum(u) {
            if seen >= keep_from {
                out.extend_from_slice(u.raw);
            } else {
                out.push(b'*');
            }
            seen += 1;
        } else if u.ascii.is_some() {
            out.extend_from_slice(u.raw); // separators stay
        } else {
            out.extend(std::iter::repeat_n(b'*', u.raw.len()));
        }
    }
    out
}

fn byte_units(value: &[u8]) -> Vec<Unit<'_>> {
    value
        .chunks(1)
        .map(|raw| Unit {
            raw,
            ascii: raw.first().copied().filter(u8::is_ascii),
        })
        .collect()
}

fn mask_plain(value: &[u8], e: &Edit, _kind: ContentKind) -> Vec<u8> {
    match e.mask {
        MaskStyle::Full => vec![b'*'; value.len()],
        MaskStyle::KeepLast4 => keep_last4(&byte_units(value)),
        MaskStyle::Placeholder => placeholder(e),
    }
}

/// Splits JSON string content into units: an escape sequence (`\n`,
/// `\u0040`) or a single byte.
fn json_units(content: &[u8]) -> Vec<Unit<'_>> {
    let mut units = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        let len = escape_len(content, i);
        let raw = &content[i..(i + len).min(content.len())];
        let ascii = if len == 1 {
            raw.first().copied().filter(u8::is_ascii)
        } else {
            crate::codec::json::escape_ascii(raw)
        };
        units.push(Unit { raw, ascii });
        i += len;
    }
    units
}

/// URL-style values (query strings, form bodies, paths, cookies): an edit
/// is widened to whole `%XX` escapes, every decoded character becomes one
/// `*`, and placeholders are the URL-safe `REDACTED`.
fn url_replacements(data: &[u8], edits: &[Edit]) -> Vec<Replacement> {
    use crate::codec::form::{percent_at, unit_len};
    let inside_escape = |pos: usize| {
        (1..=2).find_map(|back| {
            let at = pos.checked_sub(back)?;
            percent_at(data, at).map(|_| at)
        })
    };
    edits
        .iter()
        .map(|e| {
            let mut start = e.start.min(data.len());
            let mut end = e.end.min(data.len()).max(start);
            if let Some(at) = inside_escape(start) {
                start = at;
            }
            if let Some(at) = inside_escape(end) {
                end = (at + 3).max(end);
            }
            let mut units = Vec::new();
            let mut i = start;
            while i < end {
                let len = unit_len(data, i).min(data.len() - i);
                let raw = &data[i..i + len];
                let ascii = match percent_at(data, i) {
                    Some(v) => Some(v).filter(u8::is_ascii),
                    None if raw == b"+" => Some(b' '),
                    None => raw.first().copied().filter(u8::is_ascii),
                };
                units.push(Unit { raw, ascii });
                i += len;
            }
            let end = i.max(end);
            let bytes = match e.mask {
                MaskStyle::Full => vec![b'*'; units.len()],
                MaskStyle::KeepLast4 => keep_last4(&units),
                MaskStyle::Placeholder => b"REDACTED".to_vec(),
            };
            Replacement { start, end, bytes }
        })
        .collect()
}

/// Length of the unit starting at `i` inside a JSON string.
#[inline]
fn escape_len(s: &[u8], i: usize) -> usize {
    if s[i] != b'\\' {
        return 1;
    }
    match s.get(i + 1) {
        Some(b'u') => 6,
        Some(_) => 2,
        None => 1,
    }
}

#[inline]
fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
}

/// Masks one piece of JSON string content.
fn mask_json_string(content: &[u8], e: &Edit, first_piece: bool) -> Vec<u8> {
    match e.mask {
        MaskStyle::Full => vec![b'*'; content.len()],
        MaskStyle::KeepLast4 => keep_last4(&json_units(content)),
        MaskStyle::Placeholder if first_piece => placeholder(e),
        MaskStyle::Placeholder => Vec::new(),
    }
}

/// Masks a bare JSON number as a string: `4111111111111111` ->
/// `"**************"` (same length) so the document stays valid.
fn mask_json_number(number: &[u8], e: &Edit) -> Vec<u8> {
    let inner = number.len().saturating_sub(2).max(1);
    let mut out = vec![b'"'];
    match e.mask {
        MaskStyle::Full => out.extend(std::iter::repeat_n(b'*', inner)),
        MaskStyle::KeepLast4 => {
            let digits: Vec<u8> = number.iter().copied().filter(u8::is_ascii_digit).collect();
            let keep = digits.len().min(4).min(inner);
            out.extend(std::iter::repeat_n(b'*', inner - keep));
            out.extend_from_slice(&digits[digits.len() - keep..]);
        }
        MaskStyle::Placeholder => out.extend_from_slice(&placeholder(e)),
    }
    out.push(b'"');
    out
}

/// Walks the document once, left to right, tracking whether each byte is
/// inside a string, and turns each edit into replacements that touch only
/// string content and number tokens.
fn json_replacements(data: &[u8], edits: &[Edit]) -> Vec<Replacement> {
    let mut out = Vec::new();
    let mut i = 0; // walker position: start of the next unit
    let mut in_string = false;
    for e in edits {
        let start = e.start.min(data.len());
        let end = e.end.min(data.len());
        // Advance to the unit containing `start`.
        while i < data.len() {
            let len = if in_string { escape_len(data, i) } else { 1 };
            if i + len > start {
                break;
            }
            if data[i] == b'"' {
                in_string = !in_string;
            }
            i += len;
        }
        let mut first_piece = true;
        let mut piece_start: Option<usize> = None;
        if in_string && i < data.len() && data[i] != b'"' {
            let (s, _) = char_boundaries(data, i, i);
            piece_start = Some(s);
        } else if !in_string && i < data.len() && is_number_byte(data[i]) {
            // Span begins inside a number token: back up to its start.
            let mut s = i;
            while s > 0 && is_number_byte(data[s - 1]) {
                s -= 1;
            }
            i = s;
        }
        while i < data.len() && i < end {
            if in_string {
                let len = escape_len(data, i);
                if data[i] == b'"' {
                    if let Some(ps) = piece_start.take() {
                        out.push(Replacement {
                            start: ps,
                            end: i,
                            bytes: mask_json_string(&data[ps..i], e, first_piece),
                        });
                        first_piece = false;
                    }
                    in_string = false;
                    i += 1;
                } else {
                    if piece_start.is_none() {
                        piece_start = Some(i);
                    }
                    i += len;
                }
            } else if data[i] == b'"' {
                in_string = true;
                i += 1;
                if i < end && i < data.len() && data[i] != b'"' {
                    piece_start = Some(i);
                }
            } else if is_number_byte(data[i]) && (data[i] != b'e' && data[i] != b'E') {
                let s = i;
                while i < data.len() && is_number_byte(data[i]) {
                    i += 1;
                }
                out.push(Replacement {
                    start: s,
                    end: i,
                    bytes: mask_json_number(&data[s..i], e),
                });
                first_piece = false;
            } else {
                i += 1;
            }
        }
        if let Some(ps) = piece_start.take() {
            // The span ends inside a string: finish the unit (escape or
            // multi-byte character) it ends in.
            let (_, pe) = char_boundaries(data, i, i.min(data.len()));
            i = pe;
            out.push(Replacement {
                start: ps,
                end: pe,
                bytes: mask_json_string(&data[ps..pe], e, first_piece),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Action, Severity};

    fn finding(start: usize, end: usize, mask: MaskStyle) -> Finding {
        Finding {
            rule_id: "r".into(),
            category: "pii.test".into(),
            action: Action::Redact,
            severity: Severity::Medium,
            confidence: crate::detectors::Confidence::High,
            mask,
            monitor: false,
            start,
            end,
            path: None,
        }
    }

    fn redact(data: &str, spans: &[(usize, usize)], mask: MaskStyle, kind: ContentKind) -> String {
        let fs: Vec<Finding> = spans.iter().map(|&(s, e)| finding(s, e, mask)).collect();
        let edits = plan_edits(fs.iter());
        String::from_utf8(apply_edits(data.as_bytes(), &edits, kind)).unwrap()
    }

    fn span_of(data: &str, needle: &str) -> (usize, usize) {
        let s = data.find(needle).unwrap();
        (s, s + needle.len())
    }

    #[test]
    fn overlapping_findings_merge() {
        let fs = [
            finding(0, 10, MaskStyle::KeepLast4),
            finding(5, 15, MaskStyle::Full),
            finding(20, 25, MaskStyle::Full),
        ];
        let edits = plan_edits(fs.iter());
        assert_eq!(edits.len(), 2);
        assert_eq!(
            (edits[0].start, edits[0].end, edits[0].mask),
            (0, 15, MaskStyle::Full)
        );
    }

    #[test]
    fn json_masks_never_break_escapes_quotes_or_numbers() {
        let cases = [
            // span ends between a backslash and the escaped quote
            (r#"{"a":"x\"y"}"#, (6, 8)),
            // span starts in the middle of \u0040
            (r#"{"a":"jo\u0040ex.com"}"#, (10, 20)),
            // span crosses a string boundary into a key
            (r#"{"a":"secret","b":"more"}"#, (7, 20)),
            // span covers a bare number
            (r#"{"n":4111111111111111}"#, (5, 21)),
            // span starts in the middle of a number
            (r#"[12345678, 1]"#, (3, 6)),
            // span cuts a multi-byte character
            ("{\"a\":\"h\u{e9}llo\"}", (7, 9)),
        ];
        for mask in [
            MaskStyle::Full,
            MaskStyle::KeepLast4,
            MaskStyle::Placeholder,
        ] {
            for (doc, span) in cases {
                let out = redact(doc, &[span], mask, ContentKind::Json);
                serde_json::from_str::<serde_json::Value>(&out)
                    .unwrap_or_else(|e| panic!("{mask:?} {doc} -> {out}: {e}"));
            }
        }
    }

    #[test]
    fn json_full_mask_keeps_length_and_structure() {
        let doc = r#"{"email":"jane@example.com","n":4111111111111111}"#;
        let out = redact(
            doc,
            &[
                span_of(doc, "jane@example.com"),
                span_of(doc, "4111111111111111"),
            ],
            MaskStyle::Full,
            ContentKind::Json,
        );
        assert_eq!(out, r#"{"email":"****************","n":"**************"}"#);
        assert_eq!(out.len(), doc.len());
    }

    #[test]
    fn masks_widen_over_real_characters_only() {
        // A stray continuation byte after the span is not part of it.
        let doc = b"x jane@ex.me\x9e y";
        let f = [finding(2, 12, MaskStyle::Full)];
        let out = apply_edits(doc, &plan_edits(f.iter()), ContentKind::Text);
        assert_eq!(out, b"x **********\x9e y".to_vec());
        // A span cutting a real character takes all of it.
        let doc = "ab\u{e9}cd".as_bytes();
        let f = [finding(1, 3, MaskStyle::Full)];
        let out = apply_edits(doc, &plan_edits(f.iter()), ContentKind::Text);
        assert_eq!(out, b"a***cd".to_vec());
    }

    #[test]
    fn keep_last4_keeps_separators() {
        let doc = "card 4111-1111-1111-1111 ok";
        let out = redact(
            doc,
            &[span_of(doc, "4111-1111-1111-1111")],
            MaskStyle::KeepLast4,
            ContentKind::Text,
        );
        assert_eq!(out, "card ****-****-****-1111 ok");
    }

    #[test]
    fn placeholder_in_query_stays_url_safe() {
        let doc = "a=1&e=jo@ex.org";
        let out = redact(
            doc,
            &[span_of(doc, "jo@ex.org")],
            MaskStyle::Placeholder,
            ContentKind::Query,
        );
        assert_eq!(out, "a=1&e=REDACTED");
    }
}

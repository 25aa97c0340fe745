//! Streaming inspection: a body that is never held whole. The filter feeds
//! chunks as they arrive and forwards what comes back; a bounded tail is
//! held so a value split across chunk boundaries is still found whole and
//! is never forwarded unmasked.
//!
//! Why it is shaped like this:
//! - Output depends only on the bytes, never on how they were chunked: scans
//!   run on windows at positions fixed by the stream itself (every `step`
//!   bytes, or at each server-sent-event boundary), so feeding one byte per
//!   chunk gives the same output as feeding the body at once (the fuzz
//!   target `stream_window` checks exactly this).
//! - A window is `context + pending[..step + span]`: `span` covers the
//!   longest match any enabled detector can make (PEM keys: 32 KiB; user
//!   regexes: their maximum length, bounded), `context` the look-behind of
//!   context keywords. Bytes before the release point are final; a finding
//!   that crosses it moves the point to its end (or back to its start when
//!   it may still grow), so no finding is ever released half-masked.
//! - `text/event-stream` is released one complete event at a time (up to a
//!   bounded event size), so a client gets each event as soon as it is
//!   whole and redacted.
//! - JSON masking needs to know whether a byte is inside a string; the
//!   scanner carries that lexer state across release points.
//! - Complete events also go through `sse::SseAssembler` (unless the
//!   bundle turns it off), which joins the text of successive events so a
//!   value streamed token by token across events is found and masked in
//!   each event; it holds events back until enough text follows them.

use crate::bundle::{Action, MaskStyle};
use crate::compile::{CompiledPolicy, Detector, Direction, LocationKind};
use crate::inspect::{Finding, FindingText, Notice, Target};
use crate::media::ContentKind;
use crate::redact::{apply_edits, merge_edits, plan_edits, Edit};
use crate::sse::{ScannedEvent, SseAssembler};

/// Bytes released per window at least; larger steps cost more memory,
/// smaller ones rescan the overlap more often.
pub const MIN_STEP: usize = 16 * 1024;
/// Upper bound of the held-back span, whatever the policy says.
pub const MAX_SPAN: usize = 64 * 1024;
/// Bytes after a match that detectors may look at (word boundaries).
const LOOKAHEAD: usize = 64;
/// The longest match of any built-in detector except PEM private keys
/// (tokens are at most a few hundred bytes, keyword values 256).
const BUILTIN_SPAN: usize = 1024;
/// PEM blocks are followed up to 32 KiB to their END line.
const PEM_SPAN: usize = 32 * 1024 + 128;
/// Look-behind for context keywords of built-in detectors.
const BUILTIN_CONTEXT: usize = 256;
/// A server-sent event larger than this is released in windows instead of
/// whole, so one endless event cannot hold the stream.
pub const DEFAULT_MAX_EVENT: usize = 64 * 1024;

/// How the stream is cut into release units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Fixed windows of bytes.
    Bytes,
    /// `text/event-stream`: one event (ended by a blank line) at a time.
    Events,
}

impl Framing {
    /// Server-sent events are framed by event, anything else by bytes.
    pub fn for_content_type(content_type: Option<&str>) -> Framing {
        match content_type.map(crate::media::essence) {
            Some(e) if e == "text/event-stream" => Framing::Events,
            _ => Framing::Bytes,
        }
    }
}

/// Window sizes of a stream, derived from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamWindow {
    /// Longest match (plus look-ahead) the enabled detectors can make.
    pub span: usize,
    /// Bytes released per window.
    pub step: usize,
    /// Already released bytes kept for keyword look-behind.
    pub context: usize,
    /// Largest server-sent event released whole.
    pub max_event: usize,
    /// Like `span`, without PEM private keys: the text window events are
    /// held for when their text is joined (`sse`).
    pub text_span: usize,
    /// PEM private keys are enabled.
    pub pem: bool,
}

impl StreamWindow {
    /// The most bytes the scanner holds between two chunks.
    pub fn max_held(&self) -> usize {
        (self.step + self.span).max(self.max_event) + self.context
    }
}

impl CompiledPolicy {
    /// The window a stream in `direction` needs so that every match of
    /// every enabled body rule is seen whole.
    pub fn stream_window(&self, direction: Direction) -> StreamWindow {
        let windows = self.body.stream_windows.get_or_init(|| {
            [
                self.derive_stream_window(Direction::Request),
                self.derive_stream_window(Direction::Response),
            ]
        });
        match direction {
            Direction::Request => windows[0],
            Direction::Response => windows[1],
        }
    }

    fn derive_stream_window(&self, direction: Direction) -> StreamWindow {
        let program = self.program(direction, LocationKind::Body);
        let mut span = 0usize;
        let mut text_span = 0usize;
        let mut pem = false;
        let mut context = BUILTIN_CONTEXT;
        for (det, detector) in self.detectors.iter().enumerate() {
            if !program.detector_enabled.get(det).copied().unwrap_or(false) {
                continue;
            }
            match detector {
                Detector::Builtin(b) if b.info().id == "pem_private_key" => {
                    span = span.max(PEM_SPAN);
                    pem = true;
                }
                Detector::Builtin(_) => {
                    span = span.max(BUILTIN_SPAN);
                    text_span = text_span.max(BUILTIN_SPAN);
                }
                // Key-name rules need the document's structure; a stream
                // is scanned as raw bytes, so they find nothing here.
                Detector::Key { .. } => {}
                Detector::Regex {
                    regex,
                    keywords,
                    keyword_window,
                    ..
                } => {
                    let longest = regex_max_len(regex.as_str()).unwrap_or(MAX_SPAN);
                    span = span.max(longest);
                    text_span = text_span.max(longest);
                    if !keywords.is_empty() {
                        context = context.max(*keyword_window + LOOKAHEAD);
                    }
                }
            }
        }
        let span = (span + LOOKAHEAD).min(MAX_SPAN);
        let step = MIN_STEP.max(span);
        StreamWindow {
            span,
            step,
            context,
            max_event: DEFAULT_MAX_EVENT.max(step + span),
            text_span: (text_span + LOOKAHEAD).min(MAX_SPAN),
            pem,
        }
    }
}

/// The longest match of a user regex, if it is bounded.
fn regex_max_len(pattern: &str) -> Option<usize> {
    crate::detectors::parse_byte_pattern(pattern)?
        .properties()
        .maximum_len()
}

/// One finding of a stream: offsets are stream offsets, `value` the
/// matched (original) bytes for the event's masked preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFinding {
    pub finding: Finding,
    pub value: Vec<u8>,
}

/// What one `feed` or `finish` produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Release {
    /// Bytes that may be forwarded now, redactions applied.
    pub bytes: Vec<u8>,
    /// Findings in the released bytes (and the blocking one).
    pub findings: Vec<StreamFinding>,
    /// Set when an enforced block rule matched: nothing more is released
    /// and the stream must be refused.
    pub blocked: Option<FindingText>,
    /// Things worth an event that are not findings (`sse_hold_limit`).
    pub notices: Vec<Notice>,
}

/// JSON lexer state at a stream offset: inside a string, and how many
/// bytes of an escape sequence are still to come.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct JsonCursor {
    in_string: bool,
    escape_left: u8,
}

impl JsonCursor {
    /// Walks `bytes`; returns the state after them and the start of the
    /// escape unit `cut` falls into, if it falls inside one.
    fn walk(mut self, bytes: &[u8], cut: usize) -> (JsonCursor, Option<usize>) {
        let mut inside_unit = None;
        let mut i = 0;
        while i < bytes.len() {
            if self.escape_left > 0 {
                self.escape_left -= 1;
                i += 1;
                continue;
            }
            let b = bytes[i];
            if self.in_string && b == b'\\' {
                let len: u8 = match bytes.get(i + 1) {
                    Some(b'u') => 6,
                    _ => 2,
                };
                if i < cut && cut < i + usize::from(len) {
                    inside_unit = Some(i);
                }
                self.escape_left = len - 1;
            } else if b == b'"' {
                self.in_string = !self.in_string;
            }
            i += 1;
        }
        (self, inside_unit)
    }
}

/// A redaction cut at a release point: its remaining bytes are masked at
/// the start of the next window.
#[derive(Debug, Clone)]
struct Carry {
    end: usize,
    category: FindingText,
}

/// Streaming inspection state of one body.
#[derive(Debug)]
pub struct StreamScanner {
    direction: Direction,
    kind: ContentKind,
    framing: Framing,
    window: StreamWindow,
    /// The last `window.context` released bytes (original, for look-behind).
    context: Vec<u8>,
    /// Received, not yet released.
    pending: Vec<u8>,
    /// Stream offset of `pending[0]`.
    offset: usize,
    /// `pending[..searched]` holds no event boundary.
    searched: usize,
    json: JsonCursor,
    carry: Option<Carry>,
    blocked: Option<FindingText>,
    /// Joins the text of complete server-sent events.
    assembler: Option<Box<SseAssembler>>,
}

impl StreamScanner {
    pub fn new(
        policy: &CompiledPolicy,
        direction: Direction,
        content_type: Option<&str>,
    ) -> StreamScanner {
        let framing = Framing::for_content_type(content_type);
        let scanner = StreamScanner::with_window(
            policy.stream_window(direction),
            direction,
            content_type,
            framing,
        );
        match policy.sse_limits(direction) {
            Some(limits) if framing == Framing::Events => {
                scanner.with_assembler(SseAssembler::new(direction, limits))
            }
            _ => scanner,
        }
    }

    /// Complete events also go through `assembler` (event framing only).
    pub fn with_assembler(mut self, assembler: SseAssembler) -> StreamScanner {
        if self.framing == Framing::Events {
            self.assembler = Some(Box::new(assembler));
        }
        self
    }

    pub fn with_window(
        window: StreamWindow,
        direction: Direction,
        content_type: Option<&str>,
        framing: Framing,
    ) -> StreamScanner {
        StreamScanner {
            direction,
            kind: ContentKind::for_body(content_type),
            framing,
            window,
            context: Vec::new(),
            pending: Vec::new(),
            offset: 0,
            searched: 0,
            json: JsonCursor::default(),
            carry: None,
            blocked: None,
            assembler: None,
        }
    }

    pub fn window(&self) -> StreamWindow {
        self.window
    }

    /// Bytes received and not yet released.
    pub fn held(&self) -> usize {
        self.pending.len() + self.assembler.as_ref().map_or(0, |a| a.held_bytes())
    }

    /// Bytes released so far.
    pub fn released(&self) -> usize {
        self.offset
    }

    pub fn blocked(&self) -> Option<&FindingText> {
        self.blocked.as_ref()
    }

    /// Adds a chunk; returns what may be forwarded now.
    pub fn feed(&mut self, policy: &CompiledPolicy, chunk: &[u8]) -> Release {
        let mut out = Release::default();
        if self.blocked.is_some() {
            out.blocked = self.blocked.clone();
            return out;
        }
        self.pending.extend_from_slice(chunk);
        self.drain(policy, &mut out);
        out
    }

    /// The body ended: releases everything held.
    pub fn finish(&mut self, policy: &CompiledPolicy) -> Release {
        let mut out = Release::default();
        if self.blocked.is_some() {
            out.blocked = self.blocked.clone();
            return out;
        }
        self.drain(policy, &mut out);
        if self.blocked.is_none() && !self.pending.is_empty() {
            let len = self.pending.len();
            self.release_window(policy, len, true, &mut out);
        }
        self.flush_events(policy, &mut out);
        out
    }

    /// Releases every event the assembler holds.
    fn flush_events(&mut self, policy: &CompiledPolicy, out: &mut Release) {
        if self.blocked.is_some() {
            return;
        }
        if let Some(a) = self.assembler.as_mut() {
            a.finish(policy, out);
            self.blocked.clone_from(&out.blocked);
        }
    }

    fn drain(&mut self, policy: &CompiledPolicy, out: &mut Release) {
        let full = self.window.step + self.window.span;
        while self.blocked.is_none() && !self.pending.is_empty() {
            match self.framing {
                Framing::Bytes => {
                    if self.pending.len() < full {
                        return;
                    }
                    self.release_window(policy, full, false, out);
                }
                Framing::Events => {
                    let limit = self.pending.len().min(self.window.max_event);
                    match event_end(&self.pending[..limit], self.searched.saturating_sub(3)) {
                        Some(end) => self.release_window(policy, end, true, out),
                        None if self.pending.len() >= self.window.max_event => {
                            self.release_window(policy, full, false, out)
                        }
                        None => {
                            self.searched = limit;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Scans `context + pending[..len]` and releases a prefix of
    /// `pending`: all of it when `complete` (an event, or the end of the
    /// body), else about `step` bytes.
    fn release_window(
        &mut self,
        policy: &CompiledPolicy,
        len: usize,
        complete: bool,
        out: &mut Release,
    ) {
        let len = len.min(self.pending.len());
        if !complete {
            // Events before a window of an endless event go first.
            self.flush_events(policy, out);
            if self.blocked.is_some() {
                return;
            }
        }
        let ctx = self.context.len();
        let mut buf = Vec::with_capacity(ctx + len);
        buf.extend_from_slice(&self.context);
        buf.extend_from_slice(&self.pending[..len]);
        let findings: Vec<Finding> = policy
            .scan(self.direction, Target::Body { content_type: None }, &buf)
            .into_iter()
            .filter(|f| f.end > ctx)
            .collect();
        // Pending-relative spans (a start before `ctx` is clipped to 0).
        let span = |f: &Finding| (f.start.saturating_sub(ctx), f.end - ctx);

        if let Some(f) = findings
            .iter()
            .find(|f| !f.monitor && f.action == Action::Block)
        {
            self.blocked = Some(f.rule_id.clone());
            out.blocked = self.blocked.clone();
            out.findings.push(self.stream_finding(f, &buf, ctx));
            return;
        }

        let cut = if complete {
            len
        } else {
            self.release_point(&findings, len, span)
        };
        let region = &self.pending[..cut];
        let (json_after, _) = self.json.walk(region, cut);

        let mut edits: Vec<Edit> = Vec::new();
        if let Some(carry) = self.carry.take() {
            let end = carry.end.saturating_sub(self.offset).min(cut);
            if end > 0 {
                edits.push(Edit {
                    start: 0,
                    end,
                    mask: MaskStyle::Full,
                    category: carry.category.clone(),
                });
            }
            if carry.end > self.offset + cut {
                self.carry = Some(carry);
            }
        }
        let redacting: Vec<&Finding> = findings
            .iter()
            .filter(|f| !f.monitor && f.action == Action::Redact && span(f).0 < cut)
            .collect();
        let planned = plan_edits(redacting.iter().copied());
        for e in planned {
            let start = e.start.saturating_sub(ctx);
            let end = e.end - ctx;
            let clipped = (start < cut && end > cut) || e.start < ctx;
            if end > cut {
                let carry_end = self.offset + end;
                if self.carry.as_ref().is_none_or(|c| c.end < carry_end) {
                    self.carry = Some(Carry {
                        end: carry_end,
                        category: e.category.clone(),
                    });
                }
            }
            edits.push(Edit {
                start,
                end: end.min(cut),
                // A piece of a value is masked whole: keeping "the last
                // four" of a piece would show the middle of the value.
                mask: if clipped { MaskStyle::Full } else { e.mask },
                category: e.category,
            });
        }
        let merged = merge_edits(edits);

        let window_findings: Vec<StreamFinding> = findings
            .iter()
            .filter(|f| f.start >= ctx && f.start - ctx < cut)
            .map(|f| self.stream_finding(f, &buf, ctx))
            .collect();
        match self.assembler.as_mut() {
            Some(assembler) if complete => {
                // The event's own masks are applied by the assembler,
                // together with those of values it shares with others.
                let event = ScannedEvent {
                    raw: region.to_vec(),
                    offset: self.offset,
                    edits: merged,
                    findings: window_findings,
                };
                assembler.push(policy, event, out);
                self.blocked.clone_from(&out.blocked);
            }
            _ => {
                let released = self.mask_region(region, merged);
                out.bytes.extend_from_slice(&released);
                out.findings.extend(window_findings);
            }
        }

        self.json = json_after;
        let keep = self.window.context;
        if cut >= keep {
            self.context.clear();
            self.context
                .extend_from_slice(&self.pending[cut - keep..cut]);
        } else {
            self.context.extend_from_slice(&self.pending[..cut]);
            let excess = self.context.len().saturating_sub(keep);
            self.context.drain(..excess);
        }
        self.pending.drain(..cut);
        self.offset += cut;
        self.searched = 0;
    }

    /// `region` with `merged` edits applied.
    fn mask_region(&self, region: &[u8], merged: Vec<Edit>) -> Vec<u8> {
        if merged.is_empty() {
            region.to_vec()
        } else if self.kind.is_json() && self.json.in_string {
            // Let the JSON masker see that the region starts in a string.
            let mut data = Vec::with_capacity(region.len() + 1);
            data.push(b'"');
            data.extend_from_slice(region);
            let shifted: Vec<Edit> = merged
                .into_iter()
                .map(|e| Edit {
                    start: e.start + 1,
                    end: e.end + 1,
                    ..e
                })
                .collect();
            let mut masked = apply_edits(&data, &shifted, self.kind);
            masked.remove(0);
            masked
        } else {
            apply_edits(region, &merged, self.kind)
        }
    }

    /// Where to cut a non-final window of `len` pending bytes: about
    /// `step`, moved so no finding is cut, on a character and JSON escape
    /// boundary.
    fn release_point(
        &self,
        findings: &[Finding],
        len: usize,
        span: impl Fn(&Finding) -> (usize, usize),
    ) -> usize {
        let limit = len.saturating_sub(LOOKAHEAD);
        let mut cut = self.window.step.min(limit);
        loop {
            let crossing = findings
                .iter()
                .map(&span)
                .filter(|&(s, e)| s < cut && e > cut);
            let Some(max_end) = crossing.clone().map(|(_, e)| e).max() else {
                break;
            };
            if max_end <= limit {
                cut = max_end;
                continue;
            }
            // A finding that may still grow: hold it back whole, unless it
            // starts the window (then it is masked in pieces via `carry`).
            let min_start = crossing.map(|(s, _)| s).min().unwrap_or(0);
            if min_start > 0 {
                cut = min_start;
            }
            break;
        }
        if self.kind.is_json() {
            if let (_, Some(unit_start)) = self.json.walk(&self.pending[..len], cut) {
                if unit_start > 0 {
                    cut = unit_start;
                }
            }
        }
        while cut > 1 && cut < len && (0x80..0xC0).contains(&self.pending[cut]) {
            cut -= 1;
        }
        cut.max(1)
    }

    fn stream_finding(&self, f: &Finding, buf: &[u8], ctx: usize) -> StreamFinding {
        let value = buf.get(f.start..f.end).unwrap_or_default().to_vec();
        let mut finding = f.clone();
        // `buf[ctx]` is stream offset `self.offset`.
        finding.start = (self.offset + f.start).saturating_sub(ctx);
        finding.end = self.offset + f.end - ctx;
        StreamFinding { finding, value }
    }
}

/// The end (exclusive) of the first complete server-sent event in `buf`,
/// searching from `from`: an event ends with a blank line (`\n\n`,
/// `\r\r`, `\r\n\r\n`).
pub(crate) fn event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = memchr::memchr2(b'\n', b'\r', buf.get(i..)?) {
        let at = i + p;
        let next = buf.get(at + 1).copied();
        match (buf[at], next) {
            (b'\n', Some(b'\n')) | (b'\r', Some(b'\r')) => return Some(at + 2),
            (b'\r', Some(b'\n')) => match (buf.get(at + 2), buf.get(at + 3)) {
                (Some(b'\r'), Some(b'\n')) => return Some(at + 4),
                (Some(b'\n'), _) => return Some(at + 3),
                _ => {}
            },
            (b'\n', Some(b'\r')) if buf.get(at + 2) == Some(&b'\n') => return Some(at + 3),
            _ => {}
        }
        i = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::Decision;

    const EMAIL: &str = "jane.doe@example.com";
    const AWS: &str = "AKIAZ3MSJ5TVQ4GQDKWY";

    fn policy() -> CompiledPolicy {
        CompiledPolicy::embedded_default().unwrap()
    }

    /// Feeds `data` in chunks of the given sizes (cycled), then finishes.
    fn run(
        p: &CompiledPolicy,
        dir: Direction,
        ct: Option<&str>,
        data: &[u8],
        sizes: &[usize],
    ) -> (Vec<u8>, Vec<StreamFinding>, Option<FindingText>, usize) {
        let mut s = StreamScanner::new(p, dir, ct);
        let (mut out, mut findings, mut max_held) = (Vec::new(), Vec::new(), 0);
        let mut pos = 0;
        let mut k = 0;
        while pos < data.len() {
            let n = sizes[k % sizes.len()].max(1).min(data.len() - pos);
            k += 1;
            let r = s.feed(p, &data[pos..pos + n]);
            pos += n;
            max_held = max_held.max(s.held());
            out.extend(r.bytes);
            findings.extend(r.findings);
            if r.blocked.is_some() {
                return (out, findings, r.blocked, max_held);
            }
        }
        let r = s.finish(p);
        out.extend(r.bytes);
        findings.extend(r.findings);
        (out, findings, r.blocked, max_held)
    }

    #[test]
    fn window_derives_from_the_policy() {
        let p = policy();
        let w = p.stream_window(Direction::Response);
        assert!(w.span >= PEM_SPAN, "default bundle has PEM keys: {w:?}");
        assert!(w.span <= MAX_SPAN);
        let small = CompiledPolicy::from_json(
            br#"{"version":1,"metadata":{"name":"t","revision":"1"},"rules":[
            {"id":"e","category":"pii.email","detector":{"builtin":"email"},"action":"redact"},
            {"id":"r","category":"x","detector":{"regex":"EMP-[0-9]{6}","keywords":["employee"],"keyword_window":900},"action":"redact"}]}"#,
        )
        .unwrap();
        let w = small.stream_window(Direction::Request);
        assert_eq!(w.span, BUILTIN_SPAN + LOOKAHEAD);
        assert_eq!(w.step, MIN_STEP);
        assert_eq!(w.context, 900 + LOOKAHEAD);
        let unbounded = CompiledPolicy::from_json(
            br#"{"version":1,"metadata":{"name":"t","revision":"1"},"rules":[
            {"id":"r","category":"x","detector":{"regex":"x[a-z]+y"},"action":"redact"}]}"#,
        )
        .unwrap();
        assert_eq!(unbounded.stream_window(Direction::Request).span, MAX_SPAN);
    }

    #[test]
    fn value_split_across_chunks_is_masked_and_never_released_early() {
        let p = policy();
        let body = format!("{{\"note\":\"mail {EMAIL} now\"}}");
        let at = body.find(EMAIL).unwrap() + 5;
        let mut s = StreamScanner::new(&p, Direction::Request, Some("application/json"));
        let first = s.feed(&p, &body.as_bytes()[..at]);
        assert!(first.bytes.is_empty(), "a small body is held whole");
        let second = s.feed(&p, &body.as_bytes()[at..]);
        assert!(second.bytes.is_empty());
        let end = s.finish(&p);
        let out = String::from_utf8(end.bytes).unwrap();
        assert_eq!(out, body.replace(EMAIL, &"*".repeat(EMAIL.len())));
        assert_eq!(end.findings.len(), 1);
        let f = &end.findings[0];
        assert_eq!(f.value, EMAIL.as_bytes());
        assert_eq!(&body[f.finding.start..f.finding.end], EMAIL);
    }

    #[test]
    fn chunking_never_changes_the_output() {
        let p = policy();
        let mut body = Vec::new();
        for i in 0..3000 {
            body.extend_from_slice(
                format!("{{\"i\":{i},\"email\":\"user{i}@example.com\",\"card\":\"4111 1111 1111 1111\",\"t\":\"h\\u00e9llo \\\"q\\\" ü\"}}\n").as_bytes(),
            );
        }
        let ct = Some("application/x-ndjson");
        let (whole, wf, _, _) = run(&p, Direction::Response, ct, &body, &[body.len()]);
        for sizes in [&[1usize][..], &[7, 3, 1000], &[16 * 1024], &[65_537, 13]] {
            let (out, f, _, _) = run(&p, Direction::Response, ct, &body, sizes);
            assert!(out == whole, "chunk sizes {sizes:?} changed the output");
            assert_eq!(f, wf, "chunk sizes {sizes:?} changed the findings");
        }
        assert_eq!(wf.len(), 6000);
        let text = String::from_utf8(whole).unwrap();
        assert!(!text.contains("@example.com"));
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("still JSON");
            assert_eq!(v["card"], "**** **** **** 1111");
        }
    }

    #[test]
    fn stream_equals_whole_buffer_inspection() {
        let p = policy();
        let mut body = String::new();
        for i in 0..4000 {
            body.push_str(&format!(
                "line {i} reach me at a{i}@example.org, card 4111 1111 1111 1111; "
            ));
        }
        let t = Target::Body {
            content_type: Some("text/plain"),
        };
        let whole = p.inspect(Direction::Response, t, body.as_bytes());
        assert_eq!(whole.decision, Decision::Redact);
        let (out, findings, _, max_held) = run(
            &p,
            Direction::Response,
            Some("text/plain"),
            body.as_bytes(),
            &[4096],
        );
        assert_eq!(out, whole.rewritten.unwrap());
        assert_eq!(findings.len(), whole.findings.len());
        let w = p.stream_window(Direction::Response);
        assert!(max_held < w.step + w.span + 4096, "held {max_held}");
    }

    #[test]
    fn a_block_rule_stops_the_stream_mid_way() {
        let p = policy();
        let mut body = "xy ".repeat(70_000);
        let at = 150_000;
        body.replace_range(at..at + AWS.len() + 2, &format!(" {AWS} "));
        let at = at + 1;
        let mut s = StreamScanner::new(&p, Direction::Request, Some("text/plain"));
        let mut released = 0;
        let mut blocked = None;
        for chunk in body.as_bytes().chunks(10_000) {
            let r = s.feed(&p, chunk);
            released += r.bytes.len();
            if r.blocked.is_some() {
                assert_eq!(r.findings.len(), 1);
                assert_eq!(r.findings[0].finding.start, at);
                blocked = r.blocked;
                break;
            }
        }
        assert!(blocked.is_some_and(|r| r.contains("aws")));
        assert!(released <= at, "bytes past the secret were released");
        assert!(released > 0, "bytes before it streamed");
        assert!(s.feed(&p, b"more").blocked.is_some());
        assert!(s.finish(&p).bytes.is_empty());
    }

    #[test]
    fn server_sent_events_are_released_one_complete_event_at_a_time() {
        let p = policy();
        let ct = Some("text/event-stream");
        // Framing alone: joining text across events holds events back
        // (`sse` tests that).
        let w = p.stream_window(Direction::Response);
        let mut s = StreamScanner::with_window(w, Direction::Response, ct, Framing::Events);
        let e1 = format!("data: {{\"delta\":\"write to {EMAIL}\"}}\n\n");
        let (a, b) = e1.split_at(20);
        assert!(s.feed(&p, a.as_bytes()).bytes.is_empty());
        let r = s.feed(&p, format!("{b}data: partial").as_bytes());
        assert_eq!(
            String::from_utf8(r.bytes).unwrap(),
            e1.replace(EMAIL, &"*".repeat(EMAIL.len()))
        );
        assert_eq!(r.findings.len(), 1);
        let r = s.feed(&p, b" bob@example.org\r\n\r\ndata: x\r\r");
        assert_eq!(
            r.bytes,
            b"data: partial ***************\r\n\r\ndata: x\r\r".to_vec()
        );
        assert!(s.finish(&p).bytes.is_empty());
    }

    #[test]
    fn an_endless_event_is_released_in_windows() {
        let p = policy();
        let w = p.stream_window(Direction::Response);
        let mut s = StreamScanner::new(&p, Direction::Response, Some("text/event-stream"));
        let r = s.feed(&p, &vec![b'a'; w.max_event + 10]);
        assert!(!r.bytes.is_empty());
        assert!(s.held() < w.max_event);
    }

    #[test]
    fn json_state_is_carried_across_release_points() {
        let p = policy();
        // A long string whose release point falls inside it, then a card
        // number as a bare JSON number much later.
        let body = format!(
            "{{\"a\":\"{}\\\"{}\",\"n\":4111111111111111}}",
            "y".repeat(MIN_STEP + 100),
            "z".repeat(50_000)
        );
        let (out, _, _, _) = run(
            &p,
            Direction::Response,
            Some("application/json"),
            body.as_bytes(),
            &[333],
        );
        let v: serde_json::Value = serde_json::from_slice(&out).expect("still JSON");
        assert_eq!(v["n"], "**********1111");
    }

    #[test]
    fn monitor_findings_are_reported_not_applied() {
        let p = CompiledPolicy::from_json(
            br#"{"version":1,"metadata":{"name":"m","revision":"1"},"mode":"monitor","rules":[
            {"id":"e","category":"pii.email","detector":{"builtin":"email"},"action":"redact"},
            {"id":"a","category":"secret.aws","detector":{"builtin":"aws_access_key_id"},"action":"block"}]}"#,
        )
        .unwrap();
        let body = format!("{EMAIL} {AWS}");
        let (out, f, blocked, _) = run(&p, Direction::Request, None, body.as_bytes(), &[3]);
        assert_eq!(out, body.as_bytes());
        assert_eq!(f.len(), 2);
        assert!(blocked.is_none());
    }

    #[test]
    fn event_boundaries() {
        assert_eq!(event_end(b"data: a\n\nrest", 0), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r\n", 0), Some(11));
        assert_eq!(event_end(b"data: a\r\rx", 0), Some(9));
        assert_eq!(event_end(b"data: a\n\r\n", 0), Some(10));
        assert_eq!(event_end(b"data: a\r\n", 0), None);
        assert_eq!(event_end(b"data: a\n", 0), None);
        assert_eq!(event_end(b"", 0), None);
    }
}

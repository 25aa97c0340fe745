//! Cross-event assembly of server-sent events: an LLM answer streamed token
//! by token (`data: {"choices":[{"delta":{"content":"jo"}}]}`, then
//! `"hn@"`, ...) never holds a whole email or token in one event, so each
//! event scanned on its own lets it through. This module joins the text
//! the events contribute, scans the joined text, and masks each piece of a
//! finding inside the event that carries it.
//!
//! How:
//! - Each complete event contributes fragments of text: for a JSON `data:`
//!   payload, the string values at the bundle's `body.sse.text_paths`
//!   (escapes decoded, with the map back to raw bytes); for any other
//!   payload, its `data:` lines (joined by `\n`, as the SSE spec joins
//!   them). Fragments of successive events are concatenated.
//! - Events are held, in order, until `window` bytes of joined text follow
//!   the oldest one's text (or the stream ends): every finding that starts
//!   in it is then complete, because no detector matches more than
//!   `window` bytes. An event that contributes no text goes as soon as
//!   everything before it has gone.
//! - At release the joined text (the held events' text plus `window` bytes
//!   of already released text, for look-behind) is scanned. A finding's
//!   pieces are masked in each event: the piece in the released event now,
//!   the rest remembered (`carries`) and masked when its events go. A
//!   piece is masked whole (full mask), so no "last four" of a fragment
//!   shows the middle of a value; a finding inside one unescaped fragment
//!   keeps its rule's mask. Masks replace raw bytes one for one and whole
//!   JSON escapes at once, so JSON payloads stay valid.
//! - Held events are bounded (`max_held_bytes`, `max_held_events`). Past
//!   a bound the oldest event is released with what is known so far, and
//!   the stream gets one `sse_hold_limit` notice: a value split across that
//!   event may show its first part (its later parts are still masked).
//! - Decisions depend only on the sequence of complete events, never on
//!   how the bytes were chunked (the `stream_window` fuzz target checks
//!   this with assembly on).
//! - A PEM private key is longer than any window a stream should wait
//!   for; instead, while the held text has a `-----BEGIN` with no
//!   `-----END` after it, events are held (up to the bounds).

use crate::bundle::{Action, MaskStyle};
use crate::codec::json::{self, Leaf, LeafSink};
use crate::codec::selector::Selector;
use crate::codec::Decoded;
use crate::compile::{CompiledPolicy, Direction, PolicyError};
use crate::inspect::{Finding, FindingText, Notice, Target};
use crate::media::ContentKind;
use crate::redact::{apply_edits, merge_edits, Edit};
use crate::stream::{Release, StreamFinding};
use serde::Deserialize;
use std::collections::VecDeque;
use std::ops::Range;

/// Held raw event bytes, by default.
pub const DEFAULT_MAX_HELD_BYTES: usize = 256 * 1024;
/// Held events, by default.
pub const DEFAULT_MAX_HELD_EVENTS: usize = 1024;
/// The largest `max_held_bytes` a bundle may set.
pub const MAX_MAX_HELD_BYTES: usize = 4 * 1024 * 1024;
/// The largest `max_held_events` a bundle may set.
pub const MAX_MAX_HELD_EVENTS: usize = 16 * 1024;
/// The smallest and largest `window` a bundle may set.
pub const MIN_WINDOW: usize = 16;
pub const MAX_WINDOW: usize = crate::stream::MAX_SPAN;
/// Most text paths per bundle.
const MAX_TEXT_PATHS: usize = 64;
/// `Finding::path` of a finding in assembled event text
/// (`veil.location` `body:sse_text`).
pub const SSE_TEXT_PATH: &str = "sse_text";

/// `body.sse` in the bundle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseSettings {
    /// Join the text of successive events and scan it (default on).
    #[serde(default = "default_true")]
    pub assemble: bool,
    /// Where a JSON `data:` payload holds text (a JSONPath subset; a
    /// string value at exactly this path).
    #[serde(default = "default_text_paths")]
    pub text_paths: Vec<String>,
    /// Bytes of joined text that must follow an event before it goes;
    /// derived from the policy when absent.
    #[serde(default)]
    pub window: Option<usize>,
    #[serde(default = "default_max_held_bytes")]
    pub max_held_bytes: usize,
    #[serde(default = "default_max_held_events")]
    pub max_held_events: usize,
}

impl Default for SseSettings {
    fn default() -> Self {
        SseSettings {
            assemble: true,
            text_paths: default_text_paths(),
            window: None,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
            max_held_events: DEFAULT_MAX_HELD_EVENTS,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_max_held_bytes() -> usize {
    DEFAULT_MAX_HELD_BYTES
}

fn default_max_held_events() -> usize {
    DEFAULT_MAX_HELD_EVENTS
}

/// OpenAI chat completions and completions, OpenAI responses, Anthropic
/// messages (text and tool-input deltas), and OpenAI tool-call arguments.
pub fn default_text_paths() -> Vec<String> {
    [
        "$.choices[*].delta.content",
        "$.choices[*].delta.reasoning_content",
        "$.choices[*].delta.tool_calls[*].function.arguments",
        "$.choices[*].text",
        "$.delta.text",
        "$.delta.partial_json",
        "$.delta.thinking",
        "$.delta",
    ]
    .map(String::from)
    .to_vec()
}

/// The compiled `body.sse`.
#[derive(Debug, Clone)]
pub(crate) struct SsePolicy {
    pub(crate) assemble: bool,
    paths: Vec<Selector>,
    window: Option<usize>,
    max_held_bytes: usize,
    max_held_events: usize,
}

impl Default for SsePolicy {
    fn default() -> Self {
        SsePolicy::compile(&SseSettings::default()).unwrap_or(SsePolicy {
            assemble: false,
            paths: Vec::new(),
            window: None,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
            max_held_events: DEFAULT_MAX_HELD_EVENTS,
        })
    }
}

impl SsePolicy {
    pub(crate) fn compile(s: &SseSettings) -> Result<SsePolicy, PolicyError> {
        let invalid = |pointer: String, message: String| PolicyError::Invalid { pointer, message };
        if s.text_paths.len() > MAX_TEXT_PATHS {
            return Err(invalid(
                "/body/sse/text_paths".into(),
                format!("at most {MAX_TEXT_PATHS} paths"),
            ));
        }
        let mut paths = Vec::with_capacity(s.text_paths.len());
        for (i, p) in s.text_paths.iter().enumerate() {
            paths.push(
                Selector::parse(p).map_err(|e| invalid(format!("/body/sse/text_paths/{i}"), e))?,
            );
        }
        if let Some(w) = s.window {
            if !(MIN_WINDOW..=MAX_WINDOW).contains(&w) {
                return Err(invalid(
                    "/body/sse/window".into(),
                    format!("must be {MIN_WINDOW} to {MAX_WINDOW} bytes of text"),
                ));
            }
        }
        if s.max_held_bytes == 0 || s.max_held_bytes > MAX_MAX_HELD_BYTES {
            return Err(invalid(
                "/body/sse/max_held_bytes".into(),
                format!("must be 1 to {MAX_MAX_HELD_BYTES}"),
            ));
        }
        if s.max_held_events == 0 || s.max_held_events > MAX_MAX_HELD_EVENTS {
            return Err(invalid(
                "/body/sse/max_held_events".into(),
                format!("must be 1 to {MAX_MAX_HELD_EVENTS}"),
            ));
        }
        Ok(SsePolicy {
            assemble: s.assemble,
            paths,
            window: s.window,
            max_held_bytes: s.max_held_bytes,
            max_held_events: s.max_held_events,
        })
    }
}

/// How long events may be held, for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssemblyLimits {
    /// Bytes of joined text that must follow an event's text.
    pub window: usize,
    pub max_held_bytes: usize,
    pub max_held_events: usize,
    /// Hold while a PEM block is open.
    pub pem: bool,
}

impl CompiledPolicy {
    /// The assembly limits of event streams in `direction`, or `None` when
    /// the bundle turned assembly off.
    pub fn sse_limits(&self, direction: Direction) -> Option<AssemblyLimits> {
        let sse = &self.body.sse;
        if !sse.assemble {
            return None;
        }
        let w = self.stream_window(direction);
        Some(AssemblyLimits {
            window: sse.window.unwrap_or(w.text_span),
            max_held_bytes: sse.max_held_bytes,
            max_held_events: sse.max_held_events,
            pem: w.pem,
        })
    }
}

/// One piece of an event's text: `text` in joined-text offsets, `raw` the
/// bytes of the event that hold it, `decoded` the map when escapes made
/// them differ.
#[derive(Debug)]
struct Fragment {
    text: Range<usize>,
    raw: Range<usize>,
    decoded: Option<Decoded>,
}

impl Fragment {
    /// The event bytes holding `text[a..b]` (fragment-relative offsets).
    fn raw_span(&self, a: usize, b: usize) -> Range<usize> {
        let (s, e) = match &self.decoded {
            Some(d) => d.raw_span(a, b),
            None => (a, b),
        };
        let s = (self.raw.start + s).min(self.raw.end);
        let e = (self.raw.start + e).min(self.raw.end);
        s..e
    }
}

/// An event released by the window scan: its bytes, the stream offset of
/// its first byte, and what the scan of its own bytes found.
#[derive(Debug)]
pub struct ScannedEvent {
    pub raw: Vec<u8>,
    pub offset: usize,
    pub edits: Vec<Edit>,
    pub findings: Vec<StreamFinding>,
}

#[derive(Debug)]
struct HeldEvent {
    event: ScannedEvent,
    fragments: Vec<Fragment>,
    text: Range<usize>,
}

/// The assembly state of one event stream.
#[derive(Debug)]
pub struct SseAssembler {
    direction: Direction,
    limits: AssemblyLimits,
    held: VecDeque<HeldEvent>,
    held_bytes: usize,
    /// Joined text from offset `text_base` on: released look-behind, then
    /// the held events' text.
    text: Vec<u8>,
    text_base: usize,
    /// Pieces of findings still to mask in events not yet released.
    carries: Vec<(Range<usize>, FindingText)>,
    /// Findings already reported that reach into held events.
    reported: Vec<(FindingText, Range<usize>)>,
    limit_noticed: bool,
    blocked: bool,
    scratch: Vec<u8>,
}

impl SseAssembler {
    pub fn new(direction: Direction, limits: AssemblyLimits) -> SseAssembler {
        SseAssembler {
            direction,
            limits,
            held: VecDeque::new(),
            held_bytes: 0,
            text: Vec::new(),
            text_base: 0,
            carries: Vec::new(),
            reported: Vec::new(),
            limit_noticed: false,
            blocked: false,
            scratch: Vec::new(),
        }
    }

    /// Raw bytes held.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    pub fn held_events(&self) -> usize {
        self.held.len()
    }

    /// Adds one complete event; releases what may go into `out`.
    pub fn push(&mut self, policy: &CompiledPolicy, event: ScannedEvent, out: &mut Release) {
        if self.blocked {
            return;
        }
        let start = self.text_base + self.text.len();
        let mut fragments = Vec::new();
        extract(
            &event.raw,
            &policy.body.sse.paths,
            &mut self.scratch,
            &mut |text: &[u8], raw: Range<usize>, decoded: Option<Decoded>| {
                let at = self.text_base + self.text.len();
                self.text.extend_from_slice(text);
                fragments.push(Fragment {
                    text: at..at + text.len(),
                    raw,
                    decoded,
                });
            },
        );
        let end = self.text_base + self.text.len();
        self.held_bytes += event.raw.len();
        self.held.push_back(HeldEvent {
            event,
            fragments,
            text: start..end,
        });
        self.drain(policy, out, false);
    }

    /// The stream ended, or an event too long to hold comes next: releases
    /// all, and joining starts afresh (text is never joined across such
    /// an event).
    pub fn finish(&mut self, policy: &CompiledPolicy, out: &mut Release) {
        self.drain(policy, out, true);
        if !self.blocked {
            self.text_base += self.text.len();
            self.text.clear();
            self.carries.clear();
            self.reported.clear();
        }
    }

    fn drain(&mut self, policy: &CompiledPolicy, out: &mut Release, all: bool) {
        while !self.blocked {
            let Some(front) = self.held.front() else {
                return;
            };
            let text_end = self.text_base + self.text.len();
            let ready = front.fragments.is_empty()
                || (text_end - front.text.end >= self.limits.window && !self.pem_open(front));
            let over = self.held_bytes > self.limits.max_held_bytes
                || self.held.len() > self.limits.max_held_events;
            if !(all || ready || over) {
                return;
            }
            if over && !ready && !all && !self.limit_noticed {
                self.limit_noticed = true;
                out.notices.push(Notice {
                    reason: "sse_hold_limit",
                    detail: format!(
                        "{} events ({} bytes) held without {} bytes of text after the oldest (bounds: {} events, {} bytes); it was released with the text seen so far, so a value split across it may show its first part",
                        self.held.len(),
                        self.held_bytes,
                        self.limits.window,
                        self.limits.max_held_events,
                        self.limits.max_held_bytes
                    ),
                });
            }
            self.release_front(policy, out);
        }
    }

    /// Whether the held text from `front` on opens a PEM block it does not
    /// close.
    fn pem_open(&self, front: &HeldEvent) -> bool {
        if !self.limits.pem {
            return false;
        }
        let from = front.text.start.saturating_sub(self.text_base);
        let text = self.text.get(from..).unwrap_or_default();
        let Some(begin) = memchr::memmem::rfind(text, b"-----BEGIN") else {
            return false;
        };
        memchr::memmem::find(&text[begin..], b"-----END").is_none()
    }

    fn release_front(&mut self, policy: &CompiledPolicy, out: &mut Release) {
        let Some(ev) = self.held.pop_front() else {
            return;
        };
        self.held_bytes -= ev.event.raw.len();
        let base = self.text_base;
        let findings: Vec<Finding> = if ev.fragments.is_empty() && self.carries.is_empty() {
            Vec::new()
        } else {
            policy.scan(
                self.direction,
                Target::Body { content_type: None },
                &self.text,
            )
        };
        let abs = |f: &Finding| base + f.start..base + f.end;
        let overlaps = |r: &Range<usize>| r.start < ev.text.end && r.end > ev.text.start;

        if let Some(f) = findings
            .iter()
            .find(|f| !f.monitor && f.action == Action::Block && overlaps(&abs(f)))
        {
            self.blocked = true;
            out.blocked = Some(f.rule_id.clone());
            out.findings.push(self.stream_finding(f, &ev, base));
            self.held.clear();
            self.held_bytes = 0;
            return;
        }

        let mut edits = ev.event.edits.clone();
        for (range, category) in &self.carries {
            push_pieces(&ev, range.clone(), MaskStyle::Full, category, &mut edits);
        }
        let mut reports = Vec::new();
        for f in &findings {
            let r = abs(f);
            if !overlaps(&r) {
                continue;
            }
            if !f.monitor && f.action == Action::Redact {
                let whole = ev
                    .fragments
                    .iter()
                    .find(|fr| fr.text.start <= r.start && r.end <= fr.text.end)
                    .is_some_and(|fr| fr.decoded.is_none());
                let mask = if whole { f.mask } else { MaskStyle::Full };
                push_pieces(&ev, r.clone(), mask, &f.category, &mut edits);
                if r.end > ev.text.end {
                    self.carries.push((ev.text.end..r.end, f.category.clone()));
                }
            }
            let seen = self
                .reported
                .iter()
                .any(|(rule, range)| *rule == f.rule_id && *range == r);
            if seen || self.found_by_event_scan(&ev, f, &r) {
                continue;
            }
            if r.end > ev.text.end {
                self.reported.push((f.rule_id.clone(), r.clone()));
            }
            reports.push(self.stream_finding(f, &ev, base));
        }
        let merged = merge_edits(edits);
        let bytes = if merged.is_empty() {
            ev.event.raw
        } else {
            apply_edits(&ev.event.raw, &merged, ContentKind::Text)
        };
        out.bytes.extend_from_slice(&bytes);
        out.findings.extend(ev.event.findings);
        out.findings.extend(reports);

        let done = ev.text.end;
        self.carries.retain(|(r, _)| r.end > done);
        self.reported.retain(|(_, r)| r.end > done);
        let keep_from = done.saturating_sub(self.limits.window);
        if keep_from > self.text_base {
            let cut = (keep_from - self.text_base).min(self.text.len());
            self.text.drain(..cut);
            self.text_base += cut;
        }
    }

    /// Whether the event's own scan already reported this finding (a value
    /// inside one event's bytes, unescaped).
    fn found_by_event_scan(&self, ev: &HeldEvent, f: &Finding, r: &Range<usize>) -> bool {
        let Some(fr) = ev
            .fragments
            .iter()
            .find(|fr| fr.text.start <= r.start && r.end <= fr.text.end)
        else {
            return false;
        };
        let raw = fr.raw_span(r.start - fr.text.start, r.end - fr.text.start);
        let (s, e) = (ev.event.offset + raw.start, ev.event.offset + raw.end);
        ev.event
            .findings
            .iter()
            .any(|g| g.finding.rule_id == f.rule_id && g.finding.start < e && g.finding.end > s)
    }

    /// A finding of the joined text as a stream finding: offsets are the
    /// stream offsets of its first and last byte where the held events
    /// know them, `value` the joined text it matched.
    fn stream_finding(&self, f: &Finding, ev: &HeldEvent, base: usize) -> StreamFinding {
        let (s, e) = (base + f.start, base + f.end);
        let events = std::iter::once(ev).chain(self.held.iter());
        let mut start = None;
        let mut end = None;
        for h in events {
            for fr in &h.fragments {
                if fr.text.end <= s || fr.text.start >= e {
                    continue;
                }
                let a = s.max(fr.text.start) - fr.text.start;
                let b = e.min(fr.text.end) - fr.text.start;
                let raw = fr.raw_span(a, b);
                start.get_or_insert(h.event.offset + raw.start);
                end = Some(h.event.offset + raw.end);
            }
        }
        let start = start.unwrap_or(ev.event.offset);
        let mut finding = f.clone();
        finding.start = start;
        finding.end = end.unwrap_or(start).max(start);
        finding.path = Some(SSE_TEXT_PATH.into());
        StreamFinding {
            finding,
            value: self.text.get(f.start..f.end).unwrap_or_default().to_vec(),
        }
    }
}

/// Edits masking the part of joined-text `range` that lies in `ev`.
fn push_pieces(
    ev: &HeldEvent,
    range: Range<usize>,
    mask: MaskStyle,
    category: &FindingText,
    edits: &mut Vec<Edit>,
) {
    for fr in &ev.fragments {
        if fr.text.end <= range.start || fr.text.start >= range.end {
            continue;
        }
        let a = range.start.max(fr.text.start) - fr.text.start;
        let b = range.end.min(fr.text.end) - fr.text.start;
        let raw = fr.raw_span(a, b);
        if raw.is_empty() {
            continue;
        }
        edits.push(Edit {
            start: raw.start,
            end: raw.end,
            mask,
            category: category.clone(),
        });
    }
}

/// The `data:` line values of one event (raw ranges, `data:` and one
/// optional space stripped).
fn data_lines(event: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < event.len() {
        let end = memchr::memchr2(b'\n', b'\r', &event[i..]).map_or(event.len(), |p| i + p);
        let line = &event[i..end];
        if let Some(rest) = line.strip_prefix(b"data") {
            let mut v = i + 4;
            match rest.first() {
                None => out.push(v..v),
                Some(b':') => {
                    v += 1;
                    if event.get(v) == Some(&b' ') {
                        v += 1;
                    }
                    out.push(v..end.max(v));
                }
                // `datax: ...` is another field.
                Some(_) => {}
            }
        }
        i = end + 1;
        if event.get(end) == Some(&b'\r') && event.get(i) == Some(&b'\n') {
            i += 1;
        }
    }
    out
}

/// Receives a fragment: its text, the event bytes holding it, and the
/// escape map when they differ.
type EmitFragment<'a> = dyn FnMut(&[u8], Range<usize>, Option<Decoded>) + 'a;

/// Calls `emit(text, raw, decoded)` for each fragment of text `event`
/// contributes, in order.
fn extract(event: &[u8], paths: &[Selector], scratch: &mut Vec<u8>, emit: &mut EmitFragment<'_>) {
    let lines = data_lines(event);
    if let [only] = lines.as_slice() {
        let payload = event.get(only.clone()).unwrap_or_default();
        let first = payload.iter().find(|b| !b.is_ascii_whitespace());
        if matches!(first, Some(b'{' | b'[')) && json::decode(event, only.clone(), None).is_ok() {
            let mut sink = TextLeaves {
                event,
                paths,
                found: Vec::new(),
            };
            if json::walk(event, only.clone(), &mut sink).is_ok() {
                for raw in sink.found {
                    let content = event.get(raw.clone()).unwrap_or_default();
                    if content.contains(&b'\\') {
                        let mut d = Decoded::with_capacity(content.len());
                        json::decode_string_into(content, 0..content.len(), &mut d, scratch);
                        d.finish(content);
                        // `raw_span` needs only the escape map.
                        let text = std::mem::take(&mut d.bytes);
                        emit(&text, raw, Some(d));
                    } else {
                        emit(content, raw, None);
                    }
                }
            }
            return;
        }
    }
    for (n, line) in lines.iter().enumerate() {
        if n > 0 {
            let at = lines[n - 1].end;
            emit(b"\n", at..at, None);
        }
        emit(
            event.get(line.clone()).unwrap_or_default(),
            line.clone(),
            None,
        );
    }
}

/// Collects the raw spans of string values at exactly one of `paths`.
struct TextLeaves<'a> {
    event: &'a [u8],
    paths: &'a [Selector],
    found: Vec<Range<usize>>,
}

impl LeafSink for TextLeaves<'_> {
    fn leaf(&mut self, leaf: Leaf<'_>) {
        // A string's content follows its opening quote; numbers and
        // literals do not.
        let is_string = leaf
            .raw
            .start
            .checked_sub(1)
            .and_then(|q| self.event.get(q))
            == Some(&b'"');
        if leaf.is_key || !is_string || self.paths.is_empty() {
            return;
        }
        let path = leaf.path();
        let Some((_, parent)) = path.split_last() else {
            return;
        };
        // A selector selects a subtree; text is a string at exactly the
        // path, so `$.delta` takes `{"delta":"hi"}`, not `$.delta.type`.
        if self
            .paths
            .iter()
            .any(|s| s.matches(&path) && !s.matches(parent))
        {
            self.found.push(leaf.raw.clone());
        }
    }
}

/// The joined text of every complete event in `stream` (checks and tests).
#[doc(hidden)]
pub fn joined_text(policy: &CompiledPolicy, stream: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    let mut scratch = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let end = crate::stream::event_end(rest, 0).unwrap_or(rest.len());
        let (event, tail) = rest.split_at(end);
        extract(
            event,
            &policy.body.sse.paths,
            &mut scratch,
            &mut |t: &[u8], _, _| text.extend_from_slice(t),
        );
        rest = tail;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamScanner;

    const EMAIL: &str = "jane.doe@example.com";
    const AWS: &str = "AKIAZ3MSJ5TVQ4GQDKWY";
    const CT: Option<&str> = Some("text/event-stream");

    fn policy() -> CompiledPolicy {
        CompiledPolicy::embedded_default().unwrap()
    }

    fn openai(text: &str) -> String {
        let content = serde_json::to_string(text).unwrap();
        format!("data: {{\"id\":\"c1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{content}}}}}]}}\n\n")
    }

    fn anthropic(text: &str) -> String {
        let text = serde_json::to_string(text).unwrap();
        format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":{text}}}}}\n\n")
    }

    /// Feeds whole events, one `feed` each; returns the output per feed.
    fn run(p: &CompiledPolicy, events: &[String]) -> (Vec<Vec<u8>>, Release) {
        let mut s = StreamScanner::new(p, Direction::Response, CT);
        let mut per_feed = Vec::new();
        let mut all = Release::default();
        for e in events {
            let r = s.feed(p, e.as_bytes());
            per_feed.push(r.bytes.clone());
            all.bytes.extend(r.bytes);
            all.findings.extend(r.findings);
            all.notices.extend(r.notices);
            all.blocked = all.blocked.or(r.blocked);
        }
        let r = s.finish(p);
        per_feed.push(r.bytes.clone());
        all.bytes.extend(r.bytes);
        all.findings.extend(r.findings);
        all.notices.extend(r.notices);
        all.blocked = all.blocked.or(r.blocked);
        (per_feed, all)
    }

    /// The delta texts of each OpenAI event of `stream`, parsed as JSON.
    fn deltas(stream: &[u8], path: &[&str]) -> Vec<String> {
        String::from_utf8_lossy(stream)
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .map(|d| {
                let mut v: serde_json::Value = serde_json::from_str(d).expect("still JSON");
                for step in path {
                    v = match step.parse::<usize>() {
                        Ok(i) => v[i].take(),
                        Err(_) => v[*step].take(),
                    };
                }
                v.as_str().unwrap_or_default().to_string()
            })
            .collect()
    }

    fn filler(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                openai(&format!(
                    " and then some more words, part {i:03} of the answer,"
                ))
            })
            .collect()
    }

    #[test]
    fn an_email_split_across_openai_events_is_masked_in_each() {
        let p = policy();
        let mut events = vec![
            openai("Write to jane"),
            openai(".doe@exa"),
            openai("mple.com today"),
        ];
        events.extend(filler(40));
        let (_, all) = run(&p, &events);
        let texts = deltas(&all.bytes, &["choices", "0", "delta", "content"]);
        assert_eq!(texts[0], "Write to ****");
        assert_eq!(texts[1], "********");
        assert_eq!(texts[2], "******** today");
        let f: Vec<_> = all
            .findings
            .iter()
            .filter(|f| f.finding.rule_id.as_ref() == "pii-email")
            .collect();
        assert_eq!(f.len(), 1, "reported once: {f:?}");
        assert_eq!(f[0].value, EMAIL.as_bytes());
        assert_eq!(f[0].finding.path.as_deref(), Some(SSE_TEXT_PATH));
        let stream = events.concat();
        assert_eq!(&stream[f[0].finding.start..][..4], "jane");
        assert_eq!(&stream[..f[0].finding.end][f[0].finding.end - 3..], "com");
        assert!(all.notices.is_empty());
    }

    #[test]
    fn a_secret_split_across_anthropic_events_and_escapes() {
        let p = policy();
        // The key in three deltas, its `4` escaped in the third.
        let mut events = vec![
            anthropic("key: AKIA"),
            anthropic("Z3MSJ5"),
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"TVQ\\u0034GQDKWY\"}}\n\n".to_string(),
            anthropic(" done"),
        ];
        events.extend(filler(40));
        let (_, all) = run(&p, &events);
        let out = String::from_utf8(all.bytes.clone()).unwrap();
        let texts = deltas(&all.bytes, &["delta", "text"]);
        assert_eq!(texts[0], "key: ****");
        assert_eq!(texts[1], "******");
        // `\u0034` is masked whole: six stars for one character.
        assert_eq!(texts[2], "*".repeat(15));
        assert_eq!(texts[3], " done");
        assert!(!out.contains("KWY"));
        let f = all
            .findings
            .iter()
            .find(|f| f.finding.rule_id.as_ref() == "secret-aws-access-key-id")
            .expect("aws finding");
        assert_eq!(f.value, AWS.as_bytes());
    }

    #[test]
    fn plain_data_lines_are_joined_too() {
        let p = policy();
        let mut events: Vec<String> = ["mail bob", "@example", ".org now"]
            .iter()
            .map(|t| format!("data: {t}\n\n"))
            .collect();
        events.push(format!("data: {}\n\n", "x ".repeat(600)));
        let (_, all) = run(&p, &events);
        let out = String::from_utf8(all.bytes).unwrap();
        assert!(
            out.starts_with("data: mail ***\n\ndata: ********\n\ndata: ****"),
            "{out}"
        );
    }

    #[test]
    fn events_go_once_enough_text_follows_and_clean_streams_are_unchanged() {
        let p = policy();
        let window = p.sse_limits(Direction::Response).unwrap().window;
        assert_eq!(window, 1024 + 64, "the default bundle's window without PEM");
        let events = filler(60);
        let (per_feed, all) = run(&p, &events);
        assert_eq!(
            all.bytes,
            events.concat().as_bytes(),
            "clean stream unchanged"
        );
        // The first event goes once a window's worth of text follows it,
        // long before the end.
        let each = " and then some more words, part 000 of the answer,".len();
        let first = per_feed.iter().position(|b| !b.is_empty()).unwrap();
        assert_eq!(first, window.div_ceil(each));
        assert!(first < events.len());
        // Events that carry no text (ids, pings, `[DONE]`) are not held
        // for text.
        let mut s = StreamScanner::new(&p, Direction::Response, CT);
        let r = s.feed(
            &p,
            b": ping\n\nevent: done\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        assert_eq!(r.bytes.len(), 51);
    }

    #[test]
    fn the_hold_is_bounded_and_named() {
        let src = br#"{"version":1,"metadata":{"name":"t","revision":"1"},
            "body":{"sse":{"max_held_events":4,"window":200}},
            "rules":[{"id":"e","category":"pii.email","detector":{"builtin":"email"},"action":"redact"}]}"#;
        let p = CompiledPolicy::from_json(src).unwrap();
        let mut events: Vec<String> = (0..10).map(|_| openai("ab")).collect();
        events.extend([openai("x jane"), openai(".doe@example.com")]);
        let (_, all) = run(&p, &events);
        assert_eq!(all.notices.len(), 1, "one notice per stream");
        assert_eq!(all.notices[0].reason, "sse_hold_limit");
        let texts = deltas(&all.bytes, &["choices", "0", "delta", "content"]);
        assert_eq!(texts.len(), 12);
        // The last two were released at the end, whole: masked.
        assert_eq!(texts[10], "x ****");
        assert_eq!(texts[11], "*".repeat(16));
    }

    #[test]
    fn held_events_go_before_an_endless_event_in_order() {
        let p = policy();
        let w = p.stream_window(Direction::Response);
        let mut events = vec![openai("mail jane"), openai(".doe@example.com ok")];
        // No blank line for longer than an event may be: released in
        // windows, after the held events.
        events.push(format!("data: {}", "z".repeat(w.max_event + 100)));
        let stream = events.concat();
        let mut outs = Vec::new();
        for size in [stream.len(), 7, 4096] {
            let mut s = StreamScanner::new(&p, Direction::Response, CT);
            let mut out = Vec::new();
            for c in stream.as_bytes().chunks(size) {
                out.extend(s.feed(&p, c).bytes);
            }
            out.extend(s.finish(&p).bytes);
            outs.push(out);
        }
        assert!(
            outs.iter().all(|o| *o == outs[0]),
            "chunking changed the output"
        );
        let out = String::from_utf8(outs.swap_remove(0)).unwrap();
        let expected = [
            openai("mail ****"),
            openai("**************** ok"),
            events[2].clone(),
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_block_rule_across_events_stops_the_stream() {
        let src = br#"{"version":1,"metadata":{"name":"t","revision":"1"},
            "rules":[{"id":"a","category":"secret.aws","detector":{"builtin":"aws_access_key_id"},"action":"block"}]}"#;
        let p = CompiledPolicy::from_json(src).unwrap();
        let events = [openai("k AKIAZ3MS"), openai("J5TVQ4GQDKWY end")];
        let (_, all) = run(&p, &events);
        assert_eq!(all.blocked.as_deref(), Some("a"));
        assert!(all.bytes.is_empty(), "nothing of the key went out");
    }

    #[test]
    fn text_paths_select_strings_at_exactly_the_path() {
        let paths: Vec<Selector> = default_text_paths()
            .iter()
            .map(|p| Selector::parse(p).unwrap())
            .collect();
        let mut got = Vec::new();
        let mut scratch = Vec::new();
        for e in [
            anthropic("hi"),
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"yo\"}\n\n".into(),
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"a\\u0040b\"}}]}\r\n\r\n".into(),
            "data: [DONE]\n\n".into(),
            "data: one\ndata: two\n\n".into(),
            "id: 7\n: comment\n\n".into(),
        ] {
            extract(e.as_bytes(), &paths, &mut scratch, &mut |t: &[u8], _, _| {
                got.push(String::from_utf8_lossy(t).into_owned())
            });
        }
        assert_eq!(got, ["hi", "yo", "a@b", "[DONE]", "one", "\n", "two"]);
    }

    #[test]
    fn bad_settings_name_the_field() {
        for (sse, pointer) in [
            (r#"{"text_paths":["choices"]}"#, "/body/sse/text_paths/0"),
            (r#"{"window":1}"#, "/body/sse/window"),
            (r#"{"max_held_bytes":0}"#, "/body/sse/max_held_bytes"),
            (r#"{"max_held_events":100000}"#, "/body/sse/max_held_events"),
        ] {
            let src = format!(
                r#"{{"version":1,"metadata":{{"name":"t","revision":"1"}},"body":{{"sse":{sse}}},"rules":[]}}"#
            );
            let err = CompiledPolicy::from_json(src.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(pointer), "{sse}: {err}");
        }
        let off = CompiledPolicy::from_json(
            br#"{"version":1,"metadata":{"name":"t","revision":"1"},"body":{"sse":{"assemble":false}},"rules":[]}"#,
        )
        .unwrap();
        assert!(off.sse_limits(Direction::Response).is_none());
    }
}

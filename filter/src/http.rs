//! The per-stream HTTP context: a header/body state machine per direction
//! that decides how each body is inspected (buffered whole, streamed
//! through the engine's window, decoded first when gzip/deflate), hands
//! bytes to the engine, and applies its decisions through host calls. No
//! detection logic lives here.
//!
//! Envoy facts this code is shaped by (checked against Envoy 1.40):
//! - `body_size` is cumulative once a body callback returned `Pause`, so the
//!   whole buffered body is `[0, body_size)`. A callback that returns
//!   `Continue` sees only its chunk, which streaming replaces whole.
//! - HTTP/2 requests with trailers never see `end_of_stream` on the body:
//!   the scan is finished in the trailers callback, or the body would skip it.
//!   Once a chunk was continued Envoy gives the filter no body buffer in the
//!   trailers callback (its wasm host hands out the decoding buffer only
//!   while the last body callback returned `Pause`), so a streamed body's
//!   held tail cannot be appended there, and a `Continue` always forwards
//!   the whole buffer, so no tail can be kept in Envoy's buffer while the
//!   rest streams. A message whose headers announce trailers (`trailer`,
//!   `te: trailers`, gRPC) is therefore buffered instead of streamed; one
//!   that sends trailers unannounced with a held tail is refused
//!   (`stream_tail`).
//! - A body can only be replaced whole (offset 0), never patched.
//! - Pausing in a headers callback pauses the body callbacks too: the host
//!   turns `StopIteration` into `StopAllIterationAndWatermark`; a filter
//!   that paused response headers got no body callback (the client waited)
//!   and, resumed from a timer, Envoy sent the headers before delivering
//!   the buffered body (tested with a probe module, December 2026). So
//!   headers always continue: a blocked request body never reaches the
//!   upstream, only its headers do, followed by a reset; response headers
//!   cannot be held for the body's verdict.
//! - A local reply after response headers went out becomes a stream reset:
//!   a response that must be blocked (or refused) from its body has its
//!   buffer replaced and is reset, so the client sees an aborted response.
//!   Decisions taken from response headers (a content-coding the bundle
//!   refuses) still get a real local reply.

use crate::config::{FailMode, OverLimit, Settings};
use crate::headers::Headers;
use crate::host::{self, HostError, Level};
use crate::Shared;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use serde_json::Value;
use std::cell::Cell;
use std::rc::Rc;
use veil_engine::event::FindingLines;
use veil_engine::{
    block_body, finding_record, notice_record, AttrValue, BodyHandling, BodyMode, Decision,
    DecodeError, Decoder, Direction, Encoder, Encoding, EventContext, Finding, FindingText,
    Inspection, Record, Release, RequestInfo, Severity, StreamScanner, Target, UnsupportedEncoding,
};

/// The filter-state key (`set_property` path) of the per-request summary:
/// access logs read it as `%FILTER_STATE(wasm.veil.summary:PLAIN)%`.
pub const SUMMARY_PROPERTY: &str = "veil.summary";
/// At most this many distinct rule ids are listed in the summary.
const SUMMARY_MAX_RULES: usize = 16;

/// What happened on this stream, written to filter state as compact JSON
/// whenever it changes (only streams with findings or notices have one).
#[derive(Debug, Default)]
struct Summary {
    request: Option<Decision>,
    response: Option<Decision>,
    findings: u32,
    monitor: u32,
    rules: Vec<FindingText>,
    notices: Vec<&'static str>,
    /// Findings where the shadow bundle differs from the enforced one.
    shadow_diffs: u32,
    /// Findings past `max_finding_events`, counted but not reported.
    unreported: u32,
}

impl Summary {
    fn to_json(&self, event_id: &str) -> Value {
        let decision = self
            .request
            .into_iter()
            .chain(self.response)
            .max()
            .unwrap_or(Decision::Allow);
        let mut v = serde_json::json!({
            "event_id": event_id,
            "decision": decision.as_str(),
            "findings": self.findings,
        });
        if let Some(d) = self.request {
            v["request"] = d.as_str().into();
        }
        if let Some(d) = self.response {
            v["response"] = d.as_str().into();
        }
        if self.monitor > 0 {
            v["monitor"] = self.monitor.into();
        }
        if !self.rules.is_empty() {
            v["rules"] = self.rules.iter().map(|r| Value::from(&**r)).collect();
        }
        if !self.notices.is_empty() {
            v["notices"] = self.notices.iter().map(|n| Value::from(*n)).collect();
        }
        if self.shadow_diffs > 0 {
            v["shadow_diffs"] = self.shadow_diffs.into();
        }
        if self.unreported > 0 {
            v["unreported"] = self.unreported.into();
        }
        v
    }
}

/// Inspection state of one direction's body.
#[derive(Debug, Default)]
struct BodyState {
    /// The body is inspected (buffered, or streamed when `stream` is set).
    inspect: bool,
    /// The scan (or the decision to skip it) is done.
    finished: bool,
    content_type: Option<String>,
    /// The `content-encoding` decoded before scanning.
    decode: Option<Encoding>,
    /// Size of the body buffer in the current callback: cumulative while
    /// buffering (after `Pause`), the current chunk when streaming.
    size: usize,
    stream: Option<Box<BodyStream>>,
}

/// A body inspected as a stream: decoded, windowed, re-encoded per chunk.
#[derive(Debug)]
struct BodyStream {
    scanner: StreamScanner,
    decoder: Option<Decoder>,
    encoder: Option<Encoder>,
    /// After a fail-open inspection failure the rest passes untouched.
    passthrough: bool,
}

/// What one streamed chunk becomes.
enum StreamOutcome {
    /// These bytes replace the chunk.
    Forward(Vec<u8>),
    /// The chunk passes as it is.
    Untouched,
    Blocked(String),
    Failed(DecodeError),
}

/// Whether a message's headers say trailers follow its body: a `trailer`
/// header naming them, a client that accepts them (`te: trailers`, as
/// gRPC clients send), or a gRPC content type.
fn announces_trailers(te: Option<&str>, trailer: Option<&str>, content_type: Option<&str>) -> bool {
    let te_trailers = te.is_some_and(|te| {
        te.split(',').any(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("trailers")
        })
    });
    let grpc = content_type.is_some_and(|ct| {
        ct.trim_start()
            .get(..16)
            .is_some_and(|p| p.eq_ignore_ascii_case("application/grpc"))
    });
    te_trailers || grpc || trailer.is_some_and(|t| !t.trim().is_empty())
}

fn body_buffer(direction: Direction) -> BufferType {
    match direction {
        Direction::Request => BufferType::HttpRequestBody,
        Direction::Response => BufferType::HttpResponseBody,
    }
}

/// The status of a request refused because its body does not decode: a
/// bomb is too large (413), a truncated or corrupt body is bad (400).
fn decode_failure_status(err: &DecodeError) -> u32 {
    match err {
        DecodeError::TooLarge { .. } => 413,
        DecodeError::Corrupt { .. } | DecodeError::Truncated { .. } => 400,
    }
}

/// What applying a decision to a header-like value produced.
enum ValueOutcome {
    Unchanged,
    Rewrite(Vec<u8>),
    Blocked,
}

pub struct VeilHttp {
    settings: Rc<Settings>,
    shared: Rc<Shared>,
    context_id: u32,
    seed: u64,
    request: RequestInfo,
    event_id: Option<String>,
    request_body: BodyState,
    response_body: BodyState,
    summary: Option<Summary>,
    /// `source.address` / `destination.address` were read (on first event).
    connection_read: bool,
    /// Finding events emitted so far (capped by `max_finding_events`).
    finding_events: u32,
    /// The proxy's log level, asked at this stream's first event.
    log_level: Cell<Option<Option<u32>>>,
}

impl VeilHttp {
    pub fn new(shared: Rc<Shared>, context_id: u32, seed: u64) -> VeilHttp {
        VeilHttp {
            settings: Rc::clone(&shared.settings),
            shared,
            context_id,
            seed,
            request: RequestInfo::default(),
            event_id: None,
            request_body: BodyState::default(),
            response_body: BodyState::default(),
            summary: None,
            connection_read: false,
            finding_events: 0,
            log_level: Cell::new(None),
        }
    }

    /// Connection facts for events, read only when there is an event.
    fn read_connection(&mut self) {
        if !self.connection_read {
            self.connection_read = true;
            self.request.peer_address = host::get_property_text(&["source", "address"]);
            self.request.local_address = host::get_property_text(&["destination", "address"]);
        }
    }

    /// Writes the summary to filter state (for access logs).
    fn write_summary(&mut self) {
        let event_id = self.event_id();
        let Some(summary) = &self.summary else { return };
        let text = summary.to_json(&event_id).to_string();
        if let Err(e) = host::set_property(&[SUMMARY_PROPERTY], text.as_bytes()) {
            host::log(
                Level::Warn,
                &format!("veil: could not write the filter-state summary: {e}"),
            );
        }
    }

    /// Reads the connection facts (once) and returns the stream's event id:
    /// what every event needs before its context can be built.
    fn begin_event(&mut self) -> String {
        self.read_connection();
        self.event_id()
    }

    /// The context shared by every record this stream emits.
    fn event_context<'a>(
        &'a self,
        event_id: &'a str,
        direction: Direction,
        location: &'a str,
        decision: Decision,
    ) -> EventContext<'a> {
        let policy = &self.settings.policy;
        EventContext {
            event_id,
            time_unix_nano: host::now_nanos(),
            direction,
            location,
            decision,
            bundle_name: policy.name(),
            bundle_revision: policy.revision(),
            request: &self.request,
            resource: Some(&self.shared.resource),
        }
    }

    /// Whether the proxy keeps this module's log lines at `level`. Envoy
    /// drops lines below its level (Istio's sidecars run at warning), so
    /// finding events at info are then not even built unless exported.
    /// Asked once per stream: a level changed through the admin API holds
    /// from the next stream on.
    fn logged(&self, level: Level) -> bool {
        let host = self.log_level.get().unwrap_or_else(|| {
            let l = host::log_level();
            self.log_level.set(Some(l));
            l
        });
        kept_at(level, host)
    }

    /// Logs and/or exports one event record.
    fn emit(&self, level: Level, record: &Record, log: bool) {
        if log && self.logged(level) {
            host::log(level, &record.to_json_line(Some(&self.shared.resource)));
        }
        if let Some(queue) = &self.shared.export {
            crate::export::enqueue(queue, record, &self.shared.metrics.export);
        }
    }

    /// The id shared by every event of this stream and shown to clients on
    /// a block; made on first use so clean traffic costs nothing.
    fn event_id(&mut self) -> String {
        if self.event_id.is_none() {
            let mixed =
                splitmix64(self.seed ^ host::now_nanos() ^ (u64::from(self.context_id) << 40));
            self.event_id = Some(format!("{mixed:016x}"));
        }
        self.event_id.clone().unwrap_or_default()
    }

    fn body_state(&mut self, direction: Direction) -> &mut BodyState {
        match direction {
            Direction::Request => &mut self.request_body,
            Direction::Response => &mut self.response_body,
        }
    }

    fn report(
        &mut self,
        direction: Direction,
        location: &str,
        inspection: &Inspection,
        data: &[u8],
    ) {
        self.report_findings(direction, location, inspection, Some(data), |f, ctx| {
            finding_record(f, data, ctx)
        });
    }

    /// Metrics, summary and one event per finding (built by `event_for`).
    /// With the findings' buffer as `lines_from` and no exporter, the log
    /// lines are written straight from the findings, without a `Record`
    /// each (the same lines: `FindingLines`).
    fn report_findings(
        &mut self,
        direction: Direction,
        location: &str,
        inspection: &Inspection,
        lines_from: Option<&[u8]>,
        event_for: impl Fn(&Finding, &EventContext<'_>) -> Record,
    ) {
        if inspection.findings.is_empty() {
            return;
        }
        let metrics = &self.shared.metrics;
        for finding in &inspection.findings {
            metrics.finding(direction, finding);
        }
        metrics.decision(direction, inspection.decision);
        let summary = self.summary.get_or_insert_with(Summary::default);
        let slot = match direction {
            Direction::Request => &mut summary.request,
            Direction::Response => &mut summary.response,
        };
        *slot = Some(slot.map_or(inspection.decision, |d| d.max(inspection.decision)));
        for f in &inspection.findings {
            summary.findings += 1;
            if f.monitor {
                summary.monitor += 1;
            }
            if summary.rules.len() < SUMMARY_MAX_RULES && !summary.rules.contains(&f.rule_id) {
                summary.rules.push(f.rule_id.clone());
            }
        }
        let room = self
            .settings
            .max_finding_events
            .saturating_sub(self.finding_events) as usize;
        let reported = inspection.findings.len().min(room);
        let unreported = (inspection.findings.len() - reported) as u32;
        let first_unreported = unreported > 0 && summary.unreported == 0;
        summary.unreported += unreported;
        self.finding_events += reported as u32;
        self.write_summary();
        let log = self.settings.log_findings && self.logged(Level::Info);
        if !log && self.shared.export.is_none() {
            return;
        }
        let event_id = self.begin_event();
        let ctx = self.event_context(&event_id, direction, location, inspection.decision);
        let findings = &inspection.findings[..reported];
        match lines_from {
            Some(data) if log && self.shared.export.is_none() => {
                let mut lines = FindingLines::new(&ctx, Some(&self.shared.resource));
                for finding in findings {
                    host::log(Level::Info, lines.line(finding, data));
                }
            }
            _ => {
                for finding in findings {
                    self.emit(Level::Info, &event_for(finding, &ctx), log);
                }
            }
        }
        if first_unreported {
            let detail = format!(
                "more than {} findings in this stream: the rest are enforced and counted (metrics, veil.summary \"unreported\") but not reported one by one (max_finding_events)",
                self.settings.max_finding_events
            );
            self.notice(direction, "finding_events_capped", &detail, Severity::Low);
        }
    }

    fn notice(
        &mut self,
        direction: Direction,
        reason: &'static str,
        detail: &str,
        severity: Severity,
    ) {
        match reason {
            "body_limit" => self.shared.metrics.body_limit(direction),
            "internal_error" | "decode_error" | "stream_tail" => {
                self.shared.metrics.internal_error(direction)
            }
            "parse_error" => self.shared.metrics.parse_error(direction),
            _ => {}
        }
        let summary = self.summary.get_or_insert_with(Summary::default);
        if !summary.notices.contains(&reason) {
            summary.notices.push(reason);
        }
        self.write_summary();
        let event_id = self.begin_event();
        let ctx = self.event_context(&event_id, direction, "body", Decision::Allow);
        let level = match severity {
            Severity::Low | Severity::Medium => Level::Warn,
            Severity::High | Severity::Critical => Level::Error,
        };
        self.emit(level, &notice_record(&ctx, reason, detail, severity), true);
    }

    /// Evaluates the shadow bundle on the same bytes and reports only where
    /// it differs from the enforced result: findings it adds (`added`) or
    /// no longer makes (`removed`), keyed by rule, span, action and mode.
    fn shadow(
        &mut self,
        direction: Direction,
        target: Target<'_>,
        data: &[u8],
        enforced: &Inspection,
    ) {
        let Some(shadow) = self.settings.shadow.clone() else {
            return;
        };
        let candidate = shadow.inspect(direction, target, data);
        if candidate.findings.is_empty() && enforced.findings.is_empty() {
            return;
        }
        let key =
            |f: &veil_engine::Finding| (f.rule_id.clone(), f.start, f.end, f.action, f.monitor);
        let enforced_keys: Vec<_> = enforced.findings.iter().map(key).collect();
        let candidate_keys: Vec<_> = candidate.findings.iter().map(key).collect();
        let added: Vec<_> = candidate
            .findings
            .iter()
            .filter(|f| !enforced_keys.contains(&key(f)))
            .collect();
        let removed: Vec<_> = enforced
            .findings
            .iter()
            .filter(|f| !candidate_keys.contains(&key(f)))
            .collect();
        if added.is_empty() && removed.is_empty() {
            return;
        }
        let metrics = &self.shared.metrics;
        metrics.shadow_diff(direction, "added", added.len());
        metrics.shadow_diff(direction, "removed", removed.len());
        let summary = self.summary.get_or_insert_with(Summary::default);
        summary.shadow_diffs += (added.len() + removed.len()) as u32;
        self.write_summary();
        let log = self.settings.log_findings && self.logged(Level::Info);
        if !log && self.shared.export.is_none() {
            return;
        }
        let location = target.location();
        let event_id = self.begin_event();
        let ctx = self.event_context(&event_id, direction, &location, enforced.decision);
        let changes = added
            .iter()
            .map(|f| ("added", *f))
            .chain(removed.iter().map(|f| ("removed", *f)));
        for (change, f) in changes {
            let mut record = finding_record(f, data, &ctx);
            record.body = format!(
                "veil shadow bundle {} {} {} {} ({}) in {} {}",
                shadow.revision(),
                if change == "added" {
                    "would add"
                } else {
                    "would drop"
                },
                if f.monitor { "monitor" } else { "enforced" },
                f.category,
                f.action.as_str(),
                direction.as_str(),
                location
            );
            record.set("veil.shadow.diff", AttrValue::text(change));
            record.set(
                "veil.shadow.decision",
                AttrValue::text(candidate.decision.as_str()),
            );
            record.set("veil.shadow.bundle.name", AttrValue::text(shadow.name()));
            record.set(
                "veil.shadow.bundle.revision",
                AttrValue::text(shadow.revision()),
            );
            self.emit(Level::Info, &record, log);
        }
    }

    /// Answers the client with a JSON error carrying the event id.
    fn local_reply(&mut self, status: u32, details: &str, body: Vec<u8>) {
        let event_id = self.event_id();
        let headers = [
            ("content-type", "application/json"),
            ("x-veil-event-id", event_id.as_str()),
        ];
        if let Err(e) = host::send_local_response(status, details, &headers, &body) {
            host::log(
                Level::Error,
                &format!("veil: could not send local reply {status}: {e}"),
            );
        }
    }

    fn block(&mut self, direction: Direction, rule: &str) {
        let event_id = self.event_id();
        self.local_reply(403, "veil_blocked", block_body(direction, rule, &event_id));
    }

    /// A host call failed: follow the configured fail mode.
    fn internal_error(&mut self, direction: Direction, err: HostError) -> Action {
        self.fail(direction, "internal_error", &err.to_string(), 503)
    }

    /// veil cannot inspect this message (a host call failed, or a body it
    /// must decode does not decode): pass it unscanned (`fail_mode:
    /// open`) or refuse it with `status` (`closed`), with an event either
    /// way.
    fn fail(
        &mut self,
        direction: Direction,
        reason: &'static str,
        detail: &str,
        status: u32,
    ) -> Action {
        let state = self.body_state(direction);
        state.finished = true;
        if let Some(stream) = state.stream.as_mut() {
            stream.passthrough = true;
        }
        match self.settings.fail_mode {
            FailMode::Open => {
                self.notice(
                    direction,
                    reason,
                    &format!("{detail}; passed unscanned (fail_mode open)"),
                    Severity::High,
                );
                Action::Continue
            }
            FailMode::Closed => {
                self.notice(
                    direction,
                    reason,
                    &format!("{detail}; refused (fail_mode closed)"),
                    Severity::High,
                );
                let event_id = self.event_id();
                let body = serde_json::json!({
                    "error": "veil could not inspect this message and is configured to fail closed",
                    "event_id": event_id,
                })
                .to_string()
                .into_bytes();
                self.refuse(direction, status, "veil_inspection_failed", body)
            }
        }
    }

    /// Ends the stream with `status`. A request gets a local reply (its
    /// upstream, if already reached, is reset). A response's headers are
    /// already out, so a local reply is impossible: its body buffer is
    /// replaced by `body` and the stream is reset (Envoy turns a local
    /// reply after response headers into a reset), so the client sees an
    /// aborted response and never the held bytes.
    fn refuse(
        &mut self,
        direction: Direction,
        status: u32,
        details: &str,
        body: Vec<u8>,
    ) -> Action {
        if direction == Direction::Response {
            let state = self.body_state(direction);
            state.finished = true;
            let size = state.size;
            let streaming = state.stream.is_some();
            let replacement: &[u8] = if streaming { b"" } else { &body };
            if let Err(e) = host::replace_buffer(BufferType::HttpResponseBody, size, replacement) {
                host::log(
                    Level::Warn,
                    &format!("veil: could not replace a refused response body: {e}"),
                );
            }
        }
        self.local_reply(status, details, body);
        Action::Pause
    }

    /// Inspects a query string or header value and applies the decision.
    fn inspect_value(
        &mut self,
        direction: Direction,
        target: Target<'_>,
        value: &[u8],
    ) -> ValueOutcome {
        let inspection = self.settings.policy.inspect(direction, target, value);
        self.shadow(direction, target, value, &inspection);
        if inspection.findings.is_empty() {
            return ValueOutcome::Unchanged;
        }
        self.report(direction, &target.location(), &inspection, value);
        match inspection.decision {
            Decision::Block => {
                let rule = inspection
                    .blocking_rule
                    .as_deref()
                    .unwrap_or("unknown")
                    .to_string();
                self.block(direction, &rule);
                ValueOutcome::Blocked
            }
            Decision::Redact => match inspection.rewritten {
                Some(new) => ValueOutcome::Rewrite(new),
                None => ValueOutcome::Unchanged,
            },
            Decision::Allow | Decision::Alert => ValueOutcome::Unchanged,
        }
    }

    /// Scans configured headers of `direction`; returns false if blocked.
    fn scan_headers(&mut self, direction: Direction, headers: &mut Headers) -> bool {
        let names = self.settings.policy.header_names(direction).to_vec();
        for name in &names {
            let Ok(Some(value)) = headers.get(name) else {
                continue;
            };
            match self.inspect_value(direction, Target::Header { name }, &value) {
                ValueOutcome::Blocked => return false,
                ValueOutcome::Rewrite(new) => {
                    if let Err(e) = headers.set(name, &new) {
                        host::log(
                            Level::Error,
                            &format!("veil: could not rewrite header {name}: {e}"),
                        );
                    }
                }
                ValueOutcome::Unchanged => {}
            }
        }
        true
    }

    /// Asks the upstream only for response codings veil can decode
    /// (`body.encodings.accept_encoding`), so responses stay inspectable.
    fn narrow_accept_encoding(&mut self, headers: &mut Headers) {
        let current = headers.text("accept-encoding");
        let Some(change) = self.settings.policy.accept_encoding(current.as_deref()) else {
            return;
        };
        let result = match change {
            Some(value) => headers.set("accept-encoding", value.as_bytes()),
            None => headers.remove("accept-encoding"),
        };
        if let Err(e) = result {
            host::log(
                Level::Warn,
                &format!("veil: could not rewrite accept-encoding: {e}"),
            );
        }
    }

    /// Decides from the headers how the body is handled; returns false if
    /// the message was refused (an encoding the policy blocks).
    fn plan_body(
        &mut self,
        direction: Direction,
        headers: &mut Headers,
        end_of_stream: bool,
    ) -> bool {
        if end_of_stream {
            return true;
        }
        let content_type = headers.text("content-type");
        let content_encoding = headers.text("content-encoding");
        let policy = Rc::clone(&self.settings.policy);
        let handling = policy.body_handling(
            direction,
            content_type.as_deref(),
            content_encoding.as_deref(),
        );
        let (mode, decode) = match handling {
            BodyHandling::Skip => return true,
            BodyHandling::Unsupported { encoding, action } => {
                return self.unsupported_encoding(direction, &encoding, action)
            }
            BodyHandling::Inspect { mode, decode } => (mode, decode),
        };
        let plan = policy.body_plan(direction, content_type.as_deref());
        let may_change = plan.may_rewrite
            || decode.is_some()
            || (plan.may_block && direction == Direction::Response);
        if may_change {
            // The body may change length (masks, re-encoding, a block
            // message, a switch to streaming); let Envoy frame it.
            if let Err(e) = headers.remove("content-length") {
                host::log(
                    Level::Warn,
                    &format!("veil: could not remove content-length: {e}"),
                );
            }
        }
        // A streamed body's held tail cannot be forwarded from the
        // trailers callback, so a message that says it will end with
        // trailers is buffered instead (up to max_body_bytes, then
        // over_limit applies).
        let streams = mode == BodyMode::Stream
            && !announces_trailers(
                headers.text("te").as_deref(),
                headers.text("trailer").as_deref(),
                content_type.as_deref(),
            );
        let state = self.body_state(direction);
        state.inspect = true;
        state.decode = decode;
        state.content_type = content_type;
        if streams {
            self.start_stream(direction);
        }
        true
    }

    /// `content-encoding` veil does not decode: pass unscanned or refuse,
    /// as the bundle says (`body.encodings.unsupported`).
    fn unsupported_encoding(
        &mut self,
        direction: Direction,
        encoding: &str,
        action: UnsupportedEncoding,
    ) -> bool {
        match action {
            UnsupportedEncoding::Pass => {
                self.notice(
                    direction,
                    "unsupported_encoding",
                    &format!("content-encoding {encoding:?} is not decoded; body passed unscanned"),
                    Severity::Medium,
                );
                true
            }
            UnsupportedEncoding::Block => {
                self.notice(
                    direction,
                    "unsupported_encoding",
                    &format!("content-encoding {encoding:?} is not decoded; refused"),
                    Severity::Medium,
                );
                let event_id = self.event_id();
                let body = serde_json::json!({
                    "error": format!("content-encoding {encoding} is not accepted by veil data-protection policy"),
                    "event_id": event_id,
                })
                .to_string()
                .into_bytes();
                // Still in a headers callback: a real local reply.
                let status = match direction {
                    Direction::Request => 415,
                    Direction::Response => 502,
                };
                self.local_reply(status, "veil_unsupported_encoding", body);
                false
            }
        }
    }

    fn start_stream(&mut self, direction: Direction) {
        let policy = Rc::clone(&self.settings.policy);
        let state = self.body_state(direction);
        let decoder = state
            .decode
            .map(|e| Decoder::new(e, policy.max_decoded_bytes()));
        state.stream = Some(Box::new(BodyStream {
            scanner: StreamScanner::new(&policy, direction, state.content_type.as_deref()),
            encoder: state.decode.map(Encoder::for_encoding),
            decoder,
            passthrough: false,
        }));
    }

    fn on_body(&mut self, direction: Direction, body_size: usize, end_of_stream: bool) -> Action {
        host::tally(host::Call::BodyCallback);
        let max = self.settings.max_body(direction);
        let state = self.body_state(direction);
        if !state.inspect || state.finished {
            return Action::Continue;
        }
        state.size = body_size;
        if state.stream.is_some() {
            return self.stream_chunk(direction, body_size, end_of_stream);
        }
        // A body that fills the limit and is not over yet will be: decide
        // now, because Envoy's own buffer limit (1 MiB by default, like
        // ours) answers a plain 413 before a callback could see more.
        if body_size > max || (body_size == max && !end_of_stream) {
            return self.over_limit(direction, body_size, end_of_stream);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.finish_body(direction)
    }

    fn over_limit(&mut self, direction: Direction, size: usize, end_of_stream: bool) -> Action {
        let max = self.settings.max_body(direction);
        let encoded = self.body_state(direction).decode.is_some();
        match self.settings.over_limit(direction) {
            OverLimit::Reject => {
                self.notice(
                    direction,
                    "body_limit",
                    &format!("body larger than max_body_bytes ({max}); rejected"),
                    Severity::Medium,
                );
                let event_id = self.event_id();
                let body = serde_json::json!({
                    "error": format!("{} body larger than the {max} bytes veil may inspect", direction.as_str()),
                    "event_id": event_id,
                })
                .to_string()
                .into_bytes();
                self.refuse(direction, 413, "veil_body_limit", body)
            }
            over @ (OverLimit::Stream | OverLimit::Pass)
                if over == OverLimit::Stream || encoded =>
            {
                self.notice(
                    direction,
                    "body_limit",
                    &format!("body larger than max_body_bytes ({max}); inspected as a stream"),
                    Severity::Low,
                );
                self.start_stream(direction);
                self.stream_chunk(direction, size, end_of_stream)
            }
            _ => self.scan_prefix(direction, size, max),
        }
    }

    /// `over_limit: pass`: scans the first `max` bytes, applies the
    /// decision to them and lets the rest through unscanned.
    fn scan_prefix(&mut self, direction: Direction, size: usize, max: usize) -> Action {
        self.body_state(direction).finished = true;
        self.notice(
            direction,
            "body_limit",
            &format!(
                "body larger than max_body_bytes ({max}); the first {max} bytes were scanned, the rest passed unscanned"
            ),
            Severity::Medium,
        );
        let buffer = body_buffer(direction);
        let body = match host::get_buffer(buffer, 0, size) {
            Ok(Some(body)) => body,
            Ok(None) => return Action::Continue,
            Err(e) => return self.internal_error(direction, e),
        };
        let cut = max.min(body.len());
        let (head, tail) = body.split_at(cut);
        self.decide_body(direction, &body, head, |rewritten| {
            let mut whole = rewritten.to_vec();
            whole.extend_from_slice(tail);
            whole
        })
    }

    /// Scans `data` (the whole body, its decoded form, or its first
    /// bytes), reports, and applies the decision to the body buffer, which
    /// holds `original`; `rebuild` turns rewritten scan bytes into the new
    /// buffer content.
    fn decide_body(
        &mut self,
        direction: Direction,
        original: &[u8],
        data: &[u8],
        rebuild: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Action {
        let buffer = body_buffer(direction);
        let content_type = self.body_state(direction).content_type.clone();
        let target = Target::Body {
            content_type: content_type.as_deref(),
        };
        let settings = Rc::clone(&self.settings);
        let started = host::now_nanos();
        let inspection = settings.policy.inspect(direction, target, data);
        let micros = host::now_nanos().saturating_sub(started) / 1000;
        self.shared.metrics.scan(direction, data.len(), micros);
        self.shadow(direction, target, data, &inspection);
        self.report(direction, "body", &inspection, data);
        for n in &inspection.notices {
            self.notice(direction, n.reason, &n.detail, Severity::Low);
        }
        match inspection.decision {
            Decision::Block => {
                let rule = inspection.blocking_rule.as_deref().unwrap_or("unknown");
                self.block_body(direction, rule)
            }
            Decision::Redact => {
                if let Some(new) = &inspection.rewritten {
                    let new = rebuild(new);
                    if let Err(e) = host::replace_buffer(buffer, original.len(), &new) {
                        return self.internal_error(direction, e);
                    }
                }
                Action::Continue
            }
            Decision::Allow | Decision::Alert => Action::Continue,
        }
    }

    /// A block rule matched in a body: a request gets the 403 block reply;
    /// a response (headers already sent) is replaced and reset.
    fn block_body(&mut self, direction: Direction, rule: &str) -> Action {
        let event_id = self.event_id();
        let message = block_body(direction, rule, &event_id);
        self.body_state(direction).finished = true;
        match direction {
            Direction::Request => {
                self.local_reply(403, "veil_blocked", message);
                Action::Pause
            }
            Direction::Response => self.refuse(direction, 403, "veil_blocked", message),
        }
    }

    /// Stream mode: this chunk goes through the window now; what may be
    /// released replaces it (whole, from offset 0), the rest stays held.
    fn stream_chunk(&mut self, direction: Direction, size: usize, end_of_stream: bool) -> Action {
        let buffer = body_buffer(direction);
        let chunk = if size == 0 {
            Vec::new()
        } else {
            match host::get_buffer(buffer, 0, size) {
                Ok(Some(chunk)) => chunk,
                Ok(None) => Vec::new(),
                Err(e) => return self.internal_error(direction, e),
            }
        };
        let Some(mut stream) = self.body_state(direction).stream.take() else {
            return Action::Continue;
        };
        let outcome = self.stream_step(direction, &mut stream, &chunk, end_of_stream);
        let state = self.body_state(direction);
        state.stream = Some(stream);
        if end_of_stream {
            state.finished = true;
        }
        match outcome {
            StreamOutcome::Forward(out) => {
                if out != chunk {
                    if let Err(e) = host::replace_buffer(buffer, size, &out) {
                        return self.internal_error(direction, e);
                    }
                }
                Action::Continue
            }
            StreamOutcome::Untouched => Action::Continue,
            StreamOutcome::Blocked(rule) => self.block_body(direction, &rule),
            StreamOutcome::Failed(err) => {
                let status = decode_failure_status(&err);
                self.fail(direction, "decode_error", &err.to_string(), status)
            }
        }
    }

    /// Decode, scan, re-encode one chunk of a streamed body.
    fn stream_step(
        &mut self,
        direction: Direction,
        stream: &mut BodyStream,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> StreamOutcome {
        if stream.passthrough {
            return StreamOutcome::Untouched;
        }
        let policy = Rc::clone(&self.settings.policy);
        let mut decoded = Vec::new();
        let input: &[u8] = match stream.decoder.as_mut() {
            Some(decoder) => {
                decoder.refill();
                let result = decoder.push(chunk, &mut decoded).and_then(|()| {
                    if end_of_stream {
                        decoder.finish()
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = result {
                    return StreamOutcome::Failed(e);
                }
                &decoded
            }
            None => chunk,
        };
        let started = host::now_nanos();
        let mut release = stream.scanner.feed(&policy, input);
        if end_of_stream && release.blocked.is_none() {
            let rest = stream.scanner.finish(&policy);
            release.bytes.extend_from_slice(&rest.bytes);
            release.findings.extend(rest.findings);
            release.notices.extend(rest.notices);
            release.blocked = rest.blocked;
        }
        let micros = host::now_nanos().saturating_sub(started) / 1000;
        self.shared.metrics.scan(direction, input.len(), micros);
        self.report_stream(direction, &release);
        for n in &release.notices {
            self.notice(direction, n.reason, &n.detail, Severity::Medium);
        }
        if let Some(rule) = release.blocked {
            return StreamOutcome::Blocked(rule.to_string());
        }
        let out = match stream.encoder.as_mut() {
            Some(encoder) => {
                let mut out = encoder.push(&release.bytes);
                if end_of_stream {
                    out.extend(encoder.finish());
                }
                out
            }
            None => release.bytes,
        };
        StreamOutcome::Forward(out)
    }

    /// Metrics, summary and events for the findings of one stream release.
    fn report_stream(&mut self, direction: Direction, release: &Release) {
        if release.findings.is_empty() {
            return;
        }
        let findings: Vec<Finding> = release.findings.iter().map(|f| f.finding.clone()).collect();
        let decision = if release.blocked.is_some() {
            Decision::Block
        } else {
            findings
                .iter()
                .filter(|f| !f.monitor)
                .map(|f| match f.action {
                    veil_engine::Action::Alert => Decision::Alert,
                    veil_engine::Action::Redact => Decision::Redact,
                    veil_engine::Action::Block => Decision::Block,
                })
                .max()
                .unwrap_or(Decision::Allow)
        };
        let inspection = Inspection {
            findings,
            decision,
            would_decide: decision,
            blocking_rule: release.blocked.clone(),
            rewritten: None,
            notices: Vec::new(),
        };
        // A stream has no buffer to read values from: each finding carries
        // its matched bytes.
        self.report_findings(direction, "body", &inspection, None, |f, ctx| {
            let value = release
                .findings
                .iter()
                .find(|s| s.finding.start == f.start && s.finding.rule_id == f.rule_id)
                .map_or(&[][..], |s| &s.value[..]);
            let local = Finding {
                start: 0,
                end: value.len(),
                ..f.clone()
            };
            let mut record = finding_record(&local, value, ctx);
            let offset = |n: usize| AttrValue::Int(i64::try_from(n).unwrap_or(i64::MAX));
            record.set("veil.match.start", offset(f.start));
            record.set("veil.match.end", offset(f.end));
            record.set("veil.body.mode", AttrValue::text("stream"));
            record
        });
    }

    /// Trailers end a body that never saw `end_of_stream` (HTTP/2 with
    /// trailers): finish its scan here so trailers cannot skip it.
    fn on_trailers(&mut self, direction: Direction) -> Action {
        let state = self.body_state(direction);
        if !state.inspect || state.finished {
            return Action::Continue;
        }
        if state.stream.is_none() {
            return self.finish_body(direction);
        }
        // Stream mode: the held tail is scanned now. After a body callback
        // returned Continue, Envoy gives a filter no body buffer in the
        // trailers callback, so a non-empty tail may not be deliverable.
        state.finished = true;
        let Some(mut stream) = state.stream.take() else {
            return Action::Continue;
        };
        let outcome = self.stream_step(direction, &mut stream, &[], true);
        self.body_state(direction).stream = Some(stream);
        match outcome {
            StreamOutcome::Untouched => Action::Continue,
            StreamOutcome::Forward(out) if out.is_empty() => Action::Continue,
            StreamOutcome::Forward(out) => {
                let buffer = body_buffer(direction);
                if host::replace_buffer(buffer, 0, &out).is_ok() {
                    return Action::Continue;
                }
                // Neither fail mode can pass these bytes on: refuse.
                let detail = format!(
                    "the last {} bytes of a streamed body ended by trailers cannot be forwarded (proxy-wasm has no body buffer in the trailers callback); refused",
                    out.len()
                );
                self.notice(direction, "stream_tail", &detail, Severity::High);
                let event_id = self.event_id();
                let body = serde_json::json!({
                    "error": "veil could not forward this streamed message: it ended with trailers",
                    "event_id": event_id,
                })
                .to_string()
                .into_bytes();
                self.refuse(direction, 502, "veil_stream_tail", body)
            }
            StreamOutcome::Blocked(rule) => self.block_body(direction, &rule),
            StreamOutcome::Failed(err) => {
                let status = decode_failure_status(&err);
                self.fail(direction, "decode_error", &err.to_string(), status)
            }
        }
    }

    /// Scans the whole buffered body (decoded first if encoded) and
    /// applies the decision.
    fn finish_body(&mut self, direction: Direction) -> Action {
        let buffer = body_buffer(direction);
        let state = self.body_state(direction);
        state.finished = true;
        let size = state.size;
        let decode = state.decode;
        if size == 0 {
            return Action::Continue;
        }
        let body = match host::get_buffer(buffer, 0, size) {
            Ok(Some(body)) => body,
            Ok(None) => return Action::Continue,
            Err(e) => return self.internal_error(direction, e),
        };
        let Some(encoding) = decode else {
            return self.decide_body(direction, &body, &body, <[u8]>::to_vec);
        };
        let mut decoder = Decoder::new(encoding, self.settings.policy.max_decoded_bytes());
        let mut decoded = Vec::new();
        let result = decoder
            .push(&body, &mut decoded)
            .and_then(|()| decoder.finish());
        if let Err(err) = result {
            let status = decode_failure_status(&err);
            return self.fail(direction, "decode_error", &err.to_string(), status);
        }
        self.decide_body(direction, &body, &decoded, |rewritten| {
            veil_engine::compress::encode_like(&decoder, rewritten)
        })
    }
}

impl Context for VeilHttp {}

impl HttpContext for VeilHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let mut headers = Headers::read(MapType::HttpRequestHeaders);
        let full_path = headers.text(":path").unwrap_or_default();
        let (path, query) = match full_path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (full_path.clone(), None),
        };
        self.request = RequestInfo {
            method: headers.text(":method"),
            path: Some(path.clone()),
            authority: headers.text(":authority"),
            request_id: headers.text("x-request-id"),
            traceparent: headers.text("traceparent"),
            user_agent: headers.text("user-agent"),
            peer_address: None,
            local_address: None,
            response_status: None,
        };
        let mut new_path = None;
        if self.settings.policy.scans_path(Direction::Request) {
            match self.inspect_value(Direction::Request, Target::Path, path.as_bytes()) {
                ValueOutcome::Blocked => return Action::Pause,
                ValueOutcome::Rewrite(new) => new_path = Some(new),
                ValueOutcome::Unchanged => {}
            }
        }
        let mut new_query = None;
        if let Some(query) = &query {
            if self.settings.policy.scans_query(Direction::Request) {
                match self.inspect_value(Direction::Request, Target::Query, query.as_bytes()) {
                    ValueOutcome::Blocked => return Action::Pause,
                    ValueOutcome::Rewrite(new) => new_query = Some(new),
                    ValueOutcome::Unchanged => {}
                }
            }
        }
        if new_path.is_some() || new_query.is_some() {
            let mut rewritten = new_path.unwrap_or_else(|| path.clone().into_bytes());
            if let Some(q) = new_query.or_else(|| query.map(String::into_bytes)) {
                rewritten.push(b'?');
                rewritten.extend_from_slice(&q);
            }
            if let Err(e) = headers.set(":path", &rewritten) {
                return self.internal_error(Direction::Request, e);
            }
        }
        if !self.scan_headers(Direction::Request, &mut headers) {
            return Action::Pause;
        }
        self.narrow_accept_encoding(&mut headers);
        if !self.plan_body(Direction::Request, &mut headers, end_of_stream) {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.on_body(Direction::Request, body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.on_trailers(Direction::Request)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let mut headers = Headers::read(MapType::HttpResponseHeaders);
        // Read here, not lazily at the first event: Envoy does not expose
        // the response headers to the body callbacks, where most response
        // findings are made (tried; the status came back empty).
        self.request.response_status = headers.text(":status").and_then(|s| s.trim().parse().ok());
        if !self.scan_headers(Direction::Response, &mut headers) {
            return Action::Pause;
        }
        if !self.plan_body(Direction::Response, &mut headers, end_of_stream) {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.on_body(Direction::Response, body_size, end_of_stream)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.on_trailers(Direction::Response)
    }
}

/// Whether a line at `level` passes a proxy at `host` level (`None`: the
/// host did not say, so every line is sent, as before it could be asked).
fn kept_at(level: Level, host: Option<u32>) -> bool {
    host.is_none_or(|h| level as u32 >= h)
}

/// A fast, well-mixed 64-bit hash step (SplitMix64) for event ids.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_announced_by_trailer_te_or_grpc() {
        assert!(announces_trailers(None, Some("x-checksum"), None));
        assert!(announces_trailers(Some("gzip, Trailers"), None, None));
        assert!(announces_trailers(Some("trailers;q=1"), None, None));
        assert!(announces_trailers(
            None,
            None,
            Some("application/grpc+proto")
        ));
        assert!(!announces_trailers(
            Some("gzip"),
            Some(" "),
            Some("application/json")
        ));
        assert!(!announces_trailers(None, None, None));
    }

    #[test]
    fn lines_below_the_proxy_log_level_are_not_sent() {
        // The ABI's levels: trace 0, debug 1, info 2, warn 3, error 4,
        // critical 5, off 6.
        assert!(kept_at(Level::Info, Some(2)));
        assert!(kept_at(Level::Info, Some(1)));
        assert!(!kept_at(Level::Info, Some(3)));
        assert!(kept_at(Level::Warn, Some(3)));
        assert!(!kept_at(Level::Error, Some(6)));
        assert!(kept_at(Level::Info, None));
    }

    #[test]
    fn summary_is_compact_and_omits_empty_parts() {
        let mut s = Summary {
            request: Some(Decision::Redact),
            findings: 2,
            rules: vec!["pii-email".into()],
            ..Default::default()
        };
        assert_eq!(
            s.to_json("e1").to_string(),
            r#"{"decision":"redact","event_id":"e1","findings":2,"request":"redact","rules":["pii-email"]}"#
        );
        s.response = Some(Decision::Block);
        s.monitor = 1;
        s.notices.push("body_limit");
        let v = s.to_json("e1");
        assert_eq!(v["decision"], "block");
        assert_eq!(v["monitor"], 1);
        assert_eq!(v["notices"][0], "body_limit");
        assert!(v.get("unreported").is_none());
        s.unreported = 7;
        assert_eq!(s.to_json("e1")["unreported"], 7);
    }
}

//! The per-stream HTTP context: a header/body state machine per direction
//! that decides what to buffer, hands complete buffers to the engine, and
//! applies its decisions through host calls. No detection logic lives here.
//!
//! Envoy facts this code is shaped by:
//! - `body_size` is cumulative once a body callback returned `Pause`, so the
//!   whole buffered body is `[0, body_size)`.
//! - HTTP/2 requests with trailers never see `end_of_stream` on the body:
//!   the scan is finished in the trailers callback, or the body would skip it.
//! - A body can only be replaced whole (offset 0), never patched.
//! - Pausing in a headers callback pauses the body callbacks too (the host
//!   turns `StopIteration` into `StopAllIterationAndWatermark`), so headers
//!   always continue and the body is held instead: a blocked request body
//!   never reaches the upstream, only its headers do, followed by a reset.
//! - A response whose headers already left cannot get a local reply: a
//!   blocked response body is replaced by the block message instead.

use crate::config::{FailMode, OverLimit, Settings};
use crate::host::{self, HostError, Level};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use std::rc::Rc;
use veil_engine::{
    block_body, finding_event, notice_event, Decision, Direction, EventContext, Inspection,
    RequestInfo, Severity, Target,
};

/// Buffering state of one direction's body.
#[derive(Debug, Default)]
struct BodyState {
    /// The body is being buffered for a scan.
    inspect: bool,
    /// The scan (or the decision to skip it) is done.
    finished: bool,
    content_type: Option<String>,
    /// Cumulative buffered size reported by the host.
    size: usize,
}

/// What applying a decision to a header-like value produced.
enum ValueOutcome {
    Unchanged,
    Rewrite(Vec<u8>),
    Blocked,
}

pub struct VeilHttp {
    settings: Rc<Settings>,
    context_id: u32,
    seed: u64,
    request: RequestInfo,
    event_id: Option<String>,
    request_body: BodyState,
    response_body: BodyState,
}

impl VeilHttp {
    pub fn new(settings: Rc<Settings>, context_id: u32, seed: u64) -> VeilHttp {
        VeilHttp {
            settings,
            context_id,
            seed,
            request: RequestInfo::default(),
            event_id: None,
            request_body: BodyState::default(),
            response_body: BodyState::default(),
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
        if !self.settings.log_findings || inspection.findings.is_empty() {
            return;
        }
        let event_id = self.event_id();
        let policy = &self.settings.policy;
        let ctx = EventContext {
            event_id: &event_id,
            time_unix_nano: host::now_nanos(),
            direction,
            location,
            decision: inspection.decision,
            bundle_name: policy.name(),
            bundle_revision: policy.revision(),
            request: &self.request,
        };
        for finding in &inspection.findings {
            host::log(Level::Info, &finding_event(finding, data, &ctx).to_string());
        }
    }

    fn notice(&mut self, direction: Direction, reason: &str, detail: &str, severity: Severity) {
        let event_id = self.event_id();
        let policy = &self.settings.policy;
        let ctx = EventContext {
            event_id: &event_id,
            time_unix_nano: host::now_nanos(),
            direction,
            location: "body",
            decision: Decision::Allow,
            bundle_name: policy.name(),
            bundle_revision: policy.revision(),
            request: &self.request,
        };
        let level = match severity {
            Severity::Low | Severity::Medium => Level::Warn,
            Severity::High | Severity::Critical => Level::Error,
        };
        host::log(
            level,
            &notice_event(&ctx, reason, detail, severity).to_string(),
        );
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
        self.body_state(direction).finished = true;
        match self.settings.fail_mode {
            FailMode::Open => {
                self.notice(
                    direction,
                    "internal_error",
                    &format!("{err}; passed unscanned (fail_mode open)"),
                    Severity::High,
                );
                Action::Continue
            }
            FailMode::Closed => {
                self.notice(
                    direction,
                    "internal_error",
                    &format!("{err}; refused (fail_mode closed)"),
                    Severity::High,
                );
                let event_id = self.event_id();
                let body = serde_json::json!({
                    "error": "veil could not inspect this message and is configured to fail closed",
                    "event_id": event_id,
                })
                .to_string()
                .into_bytes();
                self.local_reply(503, "veil_internal_error", body);
                Action::Pause
            }
        }
    }

    /// Inspects a query string or header value and applies the decision.
    fn inspect_value(
        &mut self,
        direction: Direction,
        target: Target<'_>,
        value: &[u8],
    ) -> ValueOutcome {
        let inspection = self.settings.policy.inspect(direction, target, value);
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
    fn scan_headers(&mut self, direction: Direction, map: MapType) -> bool {
        let names = self.settings.policy.header_names(direction).to_vec();
        for name in &names {
            let Ok(Some(value)) = host::get_header(map, name) else {
                continue;
            };
            match self.inspect_value(direction, Target::Header { name }, &value) {
                ValueOutcome::Blocked => return false,
                ValueOutcome::Rewrite(new) => {
                    if let Err(e) = host::set_header(map, name, &new) {
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

    /// Decides from the headers whether the body is buffered.
    fn plan_body(&mut self, direction: Direction, map: MapType, end_of_stream: bool) {
        if end_of_stream {
            return;
        }
        let content_type = host::get_header_text(map, "content-type");
        let plan = self
            .settings
            .policy
            .body_plan(direction, content_type.as_deref());
        if !plan.inspect {
            return;
        }
        if plan.may_rewrite || (plan.may_block && direction == Direction::Response) {
            // The body may change length; let Envoy frame it.
            if let Err(e) = host::remove_header(map, "content-length") {
                host::log(
                    Level::Warn,
                    &format!("veil: could not remove content-length: {e}"),
                );
            }
        }
        let state = self.body_state(direction);
        state.inspect = true;
        state.content_type = content_type;
    }

    fn on_body(&mut self, direction: Direction, body_size: usize, end_of_stream: bool) -> Action {
        let max = self.settings.max_body_bytes;
        let state = self.body_state(direction);
        if !state.inspect || state.finished {
            return Action::Continue;
        }
        state.size = body_size;
        // A body that fills the limit and is not over yet will be: decide
        // now, because Envoy's own buffer limit (1 MiB by default, like
        // ours) answers a plain 413 before a callback could see more.
        if body_size > max || (body_size == max && !end_of_stream) {
            state.finished = true;
            return match self.settings.over_limit {
                OverLimit::Pass => {
                    self.notice(
                        direction,
                        "body_limit",
                        &format!("body larger than max_body_bytes ({max}); passed unscanned"),
                        Severity::Medium,
                    );
                    Action::Continue
                }
                OverLimit::Reject => {
                    self.notice(
                        direction,
                        "body_limit",
                        &format!("body larger than max_body_bytes ({max}); rejected"),
                        Severity::Medium,
                    );
                    let event_id = self.event_id();
                    let (status, what) = match direction {
                        Direction::Request => (413, "request"),
                        Direction::Response => (502, "response"),
                    };
                    let body = serde_json::json!({
                        "error": format!("{what} body larger than the {max} bytes veil may inspect"),
                        "event_id": event_id,
                    })
                    .to_string()
                    .into_bytes();
                    self.local_reply(status, "veil_body_limit", body);
                    Action::Pause
                }
            };
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.finish_body(direction)
    }

    /// Scans the whole buffered body and applies the decision.
    fn finish_body(&mut self, direction: Direction) -> Action {
        let buffer = match direction {
            Direction::Request => BufferType::HttpRequestBody,
            Direction::Response => BufferType::HttpResponseBody,
        };
        let state = self.body_state(direction);
        state.finished = true;
        let size = state.size;
        let content_type = state.content_type.clone();
        if size == 0 {
            return Action::Continue;
        }
        let body = match host::get_buffer(buffer, 0, size) {
            Ok(Some(body)) => body,
            Ok(None) => return Action::Continue,
            Err(e) => return self.internal_error(direction, e),
        };
        let settings = Rc::clone(&self.settings);
        let inspection = settings.policy.inspect(
            direction,
            Target::Body {
                content_type: content_type.as_deref(),
            },
            &body,
        );
        self.report(direction, "body", &inspection, &body);
        match inspection.decision {
            Decision::Block => {
                let rule = inspection.blocking_rule.as_deref().unwrap_or("unknown");
                match direction {
                    Direction::Request => {
                        self.block(direction, rule);
                        Action::Pause
                    }
                    Direction::Response => {
                        let event_id = self.event_id();
                        let message = block_body(direction, rule, &event_id);
                        if let Err(e) = host::replace_buffer(buffer, body.len(), &message) {
                            return self.internal_error(direction, e);
                        }
                        Action::Continue
                    }
                }
            }
            Decision::Redact => {
                if let Some(new) = &inspection.rewritten {
                    if let Err(e) = host::replace_buffer(buffer, body.len(), new) {
                        return self.internal_error(direction, e);
                    }
                }
                Action::Continue
            }
            Decision::Allow | Decision::Alert => Action::Continue,
        }
    }
}

impl Context for VeilHttp {}

impl HttpContext for VeilHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let map = MapType::HttpRequestHeaders;
        let full_path = host::get_header_text(map, ":path").unwrap_or_default();
        let (path, query) = match full_path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (full_path.clone(), None),
        };
        self.request = RequestInfo {
            method: host::get_header_text(map, ":method"),
            path: Some(path.clone()),
            authority: host::get_header_text(map, ":authority"),
            request_id: host::get_header_text(map, "x-request-id"),
            traceparent: host::get_header_text(map, "traceparent"),
            user_agent: host::get_header_text(map, "user-agent"),
        };
        if let Some(query) = query {
            if self.settings.policy.scans_query(Direction::Request) {
                match self.inspect_value(Direction::Request, Target::Query, query.as_bytes()) {
                    ValueOutcome::Blocked => return Action::Pause,
                    ValueOutcome::Rewrite(new) => {
                        let mut rewritten = path.into_bytes();
                        rewritten.push(b'?');
                        rewritten.extend_from_slice(&new);
                        if let Err(e) = host::set_header(map, ":path", &rewritten) {
                            return self.internal_error(Direction::Request, e);
                        }
                    }
                    ValueOutcome::Unchanged => {}
                }
            }
        }
        if !self.scan_headers(Direction::Request, map) {
            return Action::Pause;
        }
        self.plan_body(Direction::Request, map, end_of_stream);
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.on_body(Direction::Request, body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.request_body.inspect && !self.request_body.finished {
            return self.finish_body(Direction::Request);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let map = MapType::HttpResponseHeaders;
        if !self.scan_headers(Direction::Response, map) {
            return Action::Pause;
        }
        self.plan_body(Direction::Response, map, end_of_stream);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.on_body(Direction::Response, body_size, end_of_stream)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.response_body.inspect && !self.response_body.finished {
            return self.finish_body(Direction::Response);
        }
        Action::Continue
    }
}

/// A fast, well-mixed 64-bit hash step (SplitMix64) for event ids.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

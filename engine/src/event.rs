//! The event model: one record per finding, in the OpenTelemetry log data
//! model as JSON, shared by the filter (proxy log lines), the CLI and later
//! exporters. Events never carry the sensitive value, only a masked preview.

use crate::compile::Direction;
use crate::inspect::{Decision, Finding};
use serde_json::{json, Map, Value};

/// Request-level facts attached to every event of that request.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub method: Option<String>,
    /// `url.path`: the path without its query string.
    pub path: Option<String>,
    pub authority: Option<String>,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    pub user_agent: Option<String>,
    /// The downstream peer as `ip:port` (Envoy's `source.address`).
    pub peer_address: Option<String>,
    /// The local address that accepted the connection as `ip:port`
    /// (Envoy's `destination.address`).
    pub local_address: Option<String>,
    /// The upstream's response status, once response headers were seen.
    pub response_status: Option<u16>,
}

/// Attributes of the emitting entity (OpenTelemetry `resource`): the same
/// for every event of one proxy. Built once per configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub attributes: Vec<(String, String)>,
}

/// What the proxy knows about itself (Envoy node, Istio node metadata).
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    /// Explicit `service.name` from the plugin configuration.
    pub service_name: Option<String>,
    /// Envoy `node.id` (Istio: `sidecar~IP~POD.NS~NS.svc.cluster.local`).
    pub node_id: Option<String>,
    /// Envoy `node.cluster` (`--service-cluster`).
    pub node_cluster: Option<String>,
    /// Istio node metadata `NAME` (the pod name).
    pub pod_name: Option<String>,
    /// Istio node metadata `NAMESPACE`.
    pub namespace: Option<String>,
    /// Istio node metadata `WORKLOAD_NAME`.
    pub workload_name: Option<String>,
    /// Pod label `service.istio.io/canonical-name`.
    pub canonical_name: Option<String>,
    /// Pod label `app`.
    pub app_label: Option<String>,
    /// Pod label `service.istio.io/canonical-revision`.
    pub canonical_revision: Option<String>,
}

impl Resource {
    /// OpenTelemetry resource attributes from the node facts: `service.name`
    /// is the configured name, else Istio's canonical service name, the
    /// `app` label, the workload name, Envoy's `node.cluster`, and last
    /// `unknown_service:envoy` (the OTel convention).
    pub fn from_node(n: &NodeFacts) -> Resource {
        fn nonempty(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.trim().is_empty())
        }
        let service = nonempty(&n.service_name)
            .or(nonempty(&n.canonical_name))
            .or(nonempty(&n.app_label))
            .or(nonempty(&n.workload_name))
            .or(nonempty(&n.node_cluster))
            .unwrap_or("unknown_service:envoy");
        let mut attributes = vec![("service.name".to_string(), service.to_string())];
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = nonempty(v) {
                attributes.push((k.to_string(), v.to_string()));
            }
        };
        put("service.version", &n.canonical_revision);
        put("service.instance.id", &n.node_id);
        put("k8s.pod.name", &n.pod_name);
        put("k8s.namespace.name", &n.namespace);
        put("k8s.deployment.name", &n.workload_name);
        attributes.push(("telemetry.sdk.name".into(), "veil".into()));
        attributes.push(("telemetry.sdk.language".into(), "rust".into()));
        Resource { attributes }
    }

    /// The resource as the flat JSON object used in event records.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.attributes
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect(),
        )
    }
}

/// Splits `host:port` / `[v6]:port` / `ip:port`; a bare host has no port.
pub fn split_host_port(value: &str) -> (&str, Option<u16>) {
    if let Some(rest) = value.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port);
        }
        return (value, None);
    }
    match value.rsplit_once(':') {
        // A second colon means an IPv6 literal without brackets: no port.
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (value, None),
        },
        _ => (value, None),
    }
}

/// One attribute value of an event record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl AttrValue {
    pub fn text(s: &str) -> AttrValue {
        AttrValue::Str(s.to_string())
    }

    fn int(n: usize) -> AttrValue {
        AttrValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// One event (a finding or a notice) in the OpenTelemetry log data model.
///
/// Built as a flat list with static keys and written straight to JSON
/// text: events are written on the traffic path, and on a request with
/// many findings building a `serde_json` map per event cost more than the
/// scan itself (the proxy-log vs no-sink rows of "Cost of exporting
/// events" in `benches/RESULTS.md`, from `cargo xtask bench`, show what
/// events cost end to end). [`Record::to_value`] gives the same record as
/// a JSON value for callers that want one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time_unix_nano: u64,
    pub severity_number: u8,
    pub severity_text: &'static str,
    pub body: String,
    /// `(traceId, spanId)` as lower-case hex, from `traceparent`.
    pub trace: Option<(String, String)>,
    /// In the order they were added; keys are unique.
    pub attributes: Vec<(&'static str, AttrValue)>,
}

impl Record {
    /// Sets `key`, replacing an earlier value.
    pub fn set(&mut self, key: &'static str, value: AttrValue) {
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The record as one line of JSON (the proxy-log form), with the
    /// resource attributes as a flat object when given.
    pub fn to_json_line(&self, resource: Option<&Resource>) -> String {
        let mut out = String::with_capacity(640);
        self.write_json_line(&mut out, resource);
        out
    }

    /// Appends the line of [`Record::to_json_line`] to `out`, so a writer
    /// of many records can reuse one buffer.
    pub fn write_json_line(&self, out: &mut String, resource: Option<&Resource>) {
        self.write_json_line_head(out);
        for (i, (k, v)) in self.attributes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_attr(out, k, v);
        }
        out.push('}');
        push_resource(out, resource);
        out.push('}');
    }

    /// The JSON line up to and including `"attributes":{` (what
    /// [`Record::write_json_line`] starts with, `self.attributes` left
    /// out), for a writer that serializes the attributes itself: the
    /// kernel exporter copies the parts of a record that are the same for
    /// every event of a process from bytes serialized once.
    pub fn write_json_line_head(&self, out: &mut String) {
        out.push_str("{\"timeUnixNano\":\"");
        push_u64(out, self.time_unix_nano);
        out.push_str("\",\"severityNumber\":");
        push_u64(out, self.severity_number.into());
        out.push_str(",\"severityText\":");
        push_json_str(out, self.severity_text);
        out.push_str(",\"body\":");
        push_json_str(out, &self.body);
        if let Some((trace_id, span_id)) = &self.trace {
            out.push_str(",\"traceId\":");
            push_json_str(out, trace_id);
            out.push_str(",\"spanId\":");
            push_json_str(out, span_id);
        }
        out.push_str(",\"attributes\":{");
    }

    /// The record as a JSON value (the same document as [`Record::to_json_line`]).
    pub fn to_value(&self, resource: Option<&Resource>) -> Value {
        let mut attrs = Map::new();
        for (k, v) in &self.attributes {
            let v = match v {
                AttrValue::Str(s) => json!(s),
                AttrValue::Int(n) => json!(n),
                AttrValue::Bool(b) => json!(b),
            };
            attrs.insert((*k).to_string(), v);
        }
        let mut record = json!({
            "timeUnixNano": self.time_unix_nano.to_string(),
            "severityNumber": self.severity_number,
            "severityText": self.severity_text,
            "body": self.body,
            "attributes": Value::Object(attrs),
        });
        if let Some((trace_id, span_id)) = &self.trace {
            record["traceId"] = json!(trace_id);
            record["spanId"] = json!(span_id);
        }
        if let Some(resource) = resource {
            record["resource"] = resource.to_json();
        }
        record
    }

    /// The record as an OTLP/JSON `LogRecord` (what [`otlp_log_record`]
    /// makes of [`Record::to_value`]), ready to join a batch made by
    /// [`otlp_logs_body`].
    pub fn to_otlp_json(&self, observed_time_unix_nano: u64) -> String {
        let mut out = String::with_capacity(1280);
        out.push_str("{\"timeUnixNano\":\"");
        push_u64(&mut out, self.time_unix_nano);
        out.push_str("\",\"observedTimeUnixNano\":\"");
        push_u64(&mut out, observed_time_unix_nano);
        out.push_str("\",\"severityNumber\":");
        push_u64(&mut out, self.severity_number.into());
        out.push_str(",\"severityText\":");
        push_json_str(&mut out, self.severity_text);
        out.push_str(",\"body\":{\"stringValue\":");
        push_json_str(&mut out, &self.body);
        out.push_str("},\"attributes\":[");
        for (i, (k, v)) in self.attributes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_otlp_key_value(&mut out, k, v);
        }
        out.push(']');
        if let Some((trace_id, span_id)) = &self.trace {
            out.push_str(",\"traceId\":");
            push_json_str(&mut out, trace_id);
            out.push_str(",\"spanId\":");
            push_json_str(&mut out, span_id);
        }
        out.push('}');
        out
    }
}

fn push_otlp_key_value(out: &mut String, key: &str, value: &AttrValue) {
    out.push_str("{\"key\":");
    push_json_str(out, key);
    out.push_str(",\"value\":{");
    match value {
        AttrValue::Str(s) => {
            out.push_str("\"stringValue\":");
            push_json_str(out, s);
        }
        AttrValue::Int(n) => {
            out.push_str("\"intValue\":\"");
            push_i64(out, *n);
            out.push('"');
        }
        AttrValue::Bool(b) => {
            out.push_str("\"boolValue\":");
            out.push_str(if *b { "true" } else { "false" });
        }
    }
    out.push_str("}}");
}

/// An OTLP/HTTP JSON `ExportLogsServiceRequest` body from records already
/// rendered by [`Record::to_otlp_json`] (the same document as
/// [`otlp_logs_request`]).
pub fn otlp_logs_body(resource: &Resource, scope_version: &str, records: &[String]) -> String {
    let mut out = String::with_capacity(256 + records.iter().map(|r| r.len() + 1).sum::<usize>());
    out.push_str("{\"resourceLogs\":[{\"resource\":{\"attributes\":[");
    for (i, (k, v)) in resource.attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_otlp_key_value(&mut out, k, &AttrValue::text(v));
    }
    out.push_str("]},\"scopeLogs\":[{\"scope\":{\"name\":");
    push_json_str(&mut out, OTLP_SCOPE_NAME);
    out.push_str(",\"version\":");
    push_json_str(&mut out, scope_version);
    out.push_str("},\"logRecords\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push_str("]}]}]}");
    out
}

/// Appends `n` in decimal (what `write!(out, "{n}")` writes, without
/// core::fmt).
pub fn push_u64(out: &mut String, mut n: u64) {
    // Digits from the right into a stack buffer: the records carry a
    // dozen integers each, and core::fmt's machinery costs more than the
    // digits (a u64 has at most 20).
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        start -= 1;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(digits.get(start..).unwrap_or_default()).unwrap_or_default());
}

/// Appends `n` in decimal, with a `-` when negative.
pub fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` below `n` (n <= 0x80) is set, and
/// possibly of bytes above such a byte: nonzero exactly when some byte is
/// below `n`.
fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

/// Whether `s` has a byte a JSON string escapes (a control character,
/// `"` or `\\`). Eight bytes a word, without an early exit, so the
/// compiler can vectorize it.
fn needs_json_escape(s: &[u8]) -> bool {
    let mut words = s.chunks_exact(8);
    let mut found = 0;
    for chunk in &mut words {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        found |= bytes_below(w, 0x20)
            | bytes_below(w ^ (ONES * u64::from(b'"')), 1)
            | bytes_below(w ^ (ONES * u64::from(b'\\')), 1);
    }
    found != 0
        || words
            .remainder()
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// `s` as a JSON string literal: quotes, backslashes and control
/// characters escaped, everything else (UTF-8 included) as is. Most of a
/// record's text (names, paths, addresses) has nothing to escape and is
/// copied whole after one check.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    push_json_str_inner(out, s);
    out.push('"');
}

/// The inside of [`push_json_str`]'s literal, without the quotes: escaping
/// works byte by byte, so a string written in pieces escapes as the whole.
fn push_json_str_inner(out: &mut String, s: &str) {
    if !needs_json_escape(s.as_bytes()) {
        out.push_str(s);
        return;
    }
    let mut plain_from = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // An ASCII byte: both ends are char boundaries.
        out.push_str(s.get(plain_from..i).unwrap_or_default());
        if esc.is_empty() {
            out.push_str("\\u00");
            for nibble in [b >> 4, b & 0xf] {
                out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
            }
        } else {
            out.push_str(esc);
        }
        plain_from = i + 1;
    }
    out.push_str(s.get(plain_from..).unwrap_or_default());
}

/// Facts about the decision a finding belongs to.
#[derive(Debug, Clone)]
pub struct EventContext<'a> {
    pub event_id: &'a str,
    pub time_unix_nano: u64,
    pub direction: Direction,
    pub location: &'a str,
    pub decision: Decision,
    pub bundle_name: &'a str,
    pub bundle_revision: &'a str,
    pub request: &'a RequestInfo,
    /// The proxy's resource attributes, when known.
    pub resource: Option<&'a Resource>,
}

/// OpenTelemetry severity number and text for a veil severity.
pub fn otel_severity(sev: crate::bundle::Severity) -> (u8, &'static str) {
    use crate::bundle::Severity::*;
    match sev {
        Low => (9, "INFO"),
        Medium => (13, "WARN"),
        High => (17, "ERROR"),
        // 21-24 (FATAL) means the emitting process is failing; a critical
        // finding is the worst *error* instead.
        Critical => (20, "CRITICAL"),
    }
}

/// A preview that lets a human recognise the kind of value without
/// learning it: a secret keeps its (public) 4-byte prefix, anything else its
/// first byte and last two; the length is always given.
pub fn masked_preview(category: &str, value: &[u8]) -> String {
    let mut out = String::with_capacity(16);
    push_preview(&mut out, category, value, false);
    out
}

/// Appends [`masked_preview`]; with `json`, escaped as inside a JSON string
/// (the only bytes it can hold that JSON escapes are `"` and `\\`), so a
/// log line takes it without a `String` of its own.
fn push_preview(out: &mut String, category: &str, value: &[u8], json: bool) {
    let shown = |out: &mut String, b: u8| {
        if !b.is_ascii_graphic() {
            out.push('*');
            return;
        }
        if json && (b == b'"' || b == b'\\') {
            out.push('\\');
        }
        out.push(char::from(b));
    };
    let n = value.len();
    match value {
        _ if n < 8 => (0..n).for_each(|_| out.push('*')),
        [a, b, c, d, ..] if category.starts_with("secret") => {
            for x in [*a, *b, *c, *d] {
                shown(out, x);
            }
            out.push('…');
        }
        [a, .., y, z] => {
            shown(out, *a);
            out.push('…');
            shown(out, *y);
            shown(out, *z);
        }
        _ => {}
    }
    out.push('[');
    push_u64(out, n as u64);
    out.push(']');
}

/// `(trace_id, span_id)` from a W3C `traceparent` header.
pub fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let _flags = parts.next()?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(version, 2) || !hex(trace_id, 32) || !hex(span_id, 16) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
        return None;
    }
    Some((trace_id, span_id))
}

/// Attributes every event of a request carries.
fn request_attributes(attrs: &mut Vec<(&'static str, AttrValue)>, ctx: &EventContext<'_>) {
    let mut put = |k: &'static str, v: AttrValue| attrs.push((k, v));
    put("veil.event_id", AttrValue::text(ctx.event_id));
    put("veil.direction", AttrValue::text(ctx.direction.as_str()));
    put("veil.location", AttrValue::text(ctx.location));
    put("veil.decision", AttrValue::text(ctx.decision.as_str()));
    put("veil.bundle.name", AttrValue::text(ctx.bundle_name));
    put("veil.bundle.revision", AttrValue::text(ctx.bundle_revision));
    let r = ctx.request;
    if let Some(m) = &r.method {
        put("http.request.method", AttrValue::text(m));
    }
    if let Some(p) = &r.path {
        put("url.path", AttrValue::text(p));
    }
    if let Some(a) = &r.authority {
        let (host, port) = split_host_port(a);
        put("server.address", AttrValue::text(host));
        if let Some(port) = port {
            put("server.port", AttrValue::Int(port.into()));
        }
    }
    if let Some(peer) = &r.peer_address {
        let (ip, port) = split_host_port(peer);
        put("client.address", AttrValue::text(ip));
        put("network.peer.address", AttrValue::text(ip));
        if let Some(port) = port {
            put("client.port", AttrValue::Int(port.into()));
            put("network.peer.port", AttrValue::Int(port.into()));
        }
    }
    if let Some(local) = &r.local_address {
        let (ip, port) = split_host_port(local);
        put("network.local.address", AttrValue::text(ip));
        if let Some(port) = port {
            put("network.local.port", AttrValue::Int(port.into()));
        }
    }
    if let Some(id) = &r.request_id {
        put("http.request.header.x-request-id", AttrValue::text(id));
    }
    if let Some(ua) = &r.user_agent {
        put("user_agent.original", AttrValue::text(ua));
    }
    if let Some(status) = r.response_status {
        put("http.response.status_code", AttrValue::Int(status.into()));
    }
}

fn record(
    ctx: &EventContext<'_>,
    sev: (u8, &'static str),
    body: String,
    attributes: Vec<(&'static str, AttrValue)>,
) -> Record {
    let trace = ctx
        .request
        .traceparent
        .as_deref()
        .and_then(parse_traceparent)
        .map(|(t, s)| (t.to_string(), s.to_string()));
    Record {
        time_unix_nano: ctx.time_unix_nano,
        severity_number: sev.0,
        severity_text: sev.1,
        body,
        trace,
        attributes,
    }
}

/// One attribute value in OTLP/JSON (`AnyValue`): 64-bit integers are
/// decimal strings, as the protobuf JSON mapping requires.
fn otlp_any_value(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({ "stringValue": s }),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({ "intValue": n.to_string() }),
        Value::Number(n) => json!({ "doubleValue": n.as_f64().unwrap_or(0.0) }),
        Value::Null => json!({}),
        other => json!({ "stringValue": other.to_string() }),
    }
}

fn otlp_key_values(attrs: Option<&Map<String, Value>>) -> Value {
    Value::Array(
        attrs
            .into_iter()
            .flatten()
            .map(|(k, v)| json!({ "key": k, "value": otlp_any_value(v) }))
            .collect(),
    )
}

/// An event record (as made by [`finding_event`] / [`notice_event`]) as an
/// OTLP/JSON `LogRecord`: attributes become key/value lists, the body an
/// `AnyValue`; `traceId`/`spanId` stay hex strings (the OTLP/JSON rule).
pub fn otlp_log_record(event: &Value, observed_time_unix_nano: u64) -> Value {
    let mut r = json!({
        "timeUnixNano": event.get("timeUnixNano").cloned().unwrap_or(json!("0")),
        "observedTimeUnixNano": observed_time_unix_nano.to_string(),
        "severityNumber": event.get("severityNumber").cloned().unwrap_or(json!(0)),
        "severityText": event.get("severityText").cloned().unwrap_or(json!("")),
        "body": otlp_any_value(event.get("body").unwrap_or(&Value::Null)),
        "attributes": otlp_key_values(event.get("attributes").and_then(Value::as_object)),
    });
    for k in ["traceId", "spanId"] {
        if let Some(v) = event.get(k) {
            r[k] = v.clone();
        }
    }
    r
}

/// The instrumentation scope of veil's log records.
pub const OTLP_SCOPE_NAME: &str = "veil";

/// An OTLP/HTTP JSON `ExportLogsServiceRequest` body (POST to `/v1/logs`
/// with `content-type: application/json`) for one resource.
pub fn otlp_logs_request(
    resource: &Resource,
    scope_version: &str,
    events: &[Value],
    observed_time_unix_nano: u64,
) -> Value {
    let attrs: Map<String, Value> = resource
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "resourceLogs": [{
            "resource": { "attributes": otlp_key_values(Some(&attrs)) },
            "scopeLogs": [{
                "scope": { "name": OTLP_SCOPE_NAME, "version": scope_version },
                "logRecords": events
                    .iter()
                    .map(|e| otlp_log_record(e, observed_time_unix_nano))
                    .collect::<Vec<_>>(),
            }],
        }],
    })
}

/// One finding as an event record.
pub fn finding_record(finding: &Finding, data: &[u8], ctx: &EventContext<'_>) -> Record {
    let value = data.get(finding.start..finding.end).unwrap_or_default();
    let mut attrs = Vec::with_capacity(32);
    request_attributes(&mut attrs, ctx);
    // A finding in a structured field says which: `body:$.user.email`.
    let location = match &finding.path {
        Some(path) => format!("{}:{path}", ctx.location),
        None => ctx.location.to_string(),
    };
    if let Some(slot) = attrs.iter_mut().find(|(k, _)| *k == "veil.location") {
        slot.1 = AttrValue::text(&location);
    }
    let mut put = |k: &'static str, v: AttrValue| attrs.push((k, v));
    put("veil.rule.id", AttrValue::text(&finding.rule_id));
    put("veil.category", AttrValue::text(&finding.category));
    put("veil.action", AttrValue::text(finding.action.as_str()));
    put("veil.enforced", AttrValue::Bool(!finding.monitor));
    put("veil.severity", AttrValue::text(finding.severity.as_str()));
    put(
        "veil.confidence",
        AttrValue::text(finding.confidence.as_str()),
    );
    put("veil.match.start", AttrValue::int(finding.start));
    put("veil.match.end", AttrValue::int(finding.end));
    put(
        "veil.match.preview",
        AttrValue::Str(masked_preview(&finding.category, value)),
    );
    let body = format!(
        "veil {} {} {} in {} {}",
        if finding.monitor { "would" } else { "did" },
        finding.action.as_str(),
        finding.category,
        ctx.direction.as_str(),
        location
    );
    record(ctx, otel_severity(finding.severity), body, attrs)
}

/// Writes the proxy-log lines of the findings of one event (one
/// [`EventContext`]): the line of [`finding_record`] and
/// [`Record::to_json_line`], without a `Record` per finding.
///
/// All findings of an event share the time, trace, request attributes and
/// resource, and on a body with a dozen findings rendering those for each
/// line cost more than the rest of the line; here they are rendered once,
/// and each line appends only what its finding changes, into one buffer.
#[derive(Debug)]
pub struct FindingLines {
    /// `{"timeUnixNano":"…","severityNumber":`
    head: String,
    /// The event's `location`, escaped as inside a JSON string.
    location: String,
    direction: &'static str,
    /// Trace ids and the attributes before `veil.location`, from `,"traceId"`
    /// (or `,"attributes"`) to `"veil.location":`.
    before_location: String,
    /// The request attributes after `veil.location`, each after a comma.
    after_location: String,
    /// The attributes' closing brace, the resource and the record's brace.
    tail: String,
    line: String,
}

impl FindingLines {
    pub fn new(ctx: &EventContext<'_>, resource: Option<&Resource>) -> FindingLines {
        let mut head = String::with_capacity(48);
        head.push_str("{\"timeUnixNano\":\"");
        push_u64(&mut head, ctx.time_unix_nano);
        head.push_str("\",\"severityNumber\":");
        let mut location = String::with_capacity(ctx.location.len());
        push_json_str_inner(&mut location, ctx.location);
        let mut before_location = String::with_capacity(160);
        if let Some((trace_id, span_id)) = ctx
            .request
            .traceparent
            .as_deref()
            .and_then(parse_traceparent)
        {
            before_location.push_str(",\"traceId\":");
            push_json_str(&mut before_location, trace_id);
            before_location.push_str(",\"spanId\":");
            push_json_str(&mut before_location, span_id);
        }
        before_location.push_str(",\"attributes\":{");
        let mut attrs = Vec::with_capacity(24);
        request_attributes(&mut attrs, ctx);
        let at = attrs
            .iter()
            .position(|(k, _)| *k == "veil.location")
            .unwrap_or(attrs.len());
        for (k, v) in attrs.get(..at).unwrap_or_default() {
            push_attr(&mut before_location, k, v);
            before_location.push(',');
        }
        before_location.push_str("\"veil.location\":");
        let mut after_location = String::with_capacity(320);
        for (k, v) in attrs.get(at + 1..).unwrap_or_default() {
            after_location.push(',');
            push_attr(&mut after_location, k, v);
        }
        let mut tail = String::with_capacity(256);
        tail.push('}');
        push_resource(&mut tail, resource);
        tail.push('}');
        FindingLines {
            head,
            location,
            direction: ctx.direction.as_str(),
            before_location,
            after_location,
            tail,
            line: String::with_capacity(1024),
        }
    }

    /// The line of `finding` (its value at `finding.start..finding.end` of
    /// `data`), valid until the next call.
    pub fn line(&mut self, finding: &Finding, data: &[u8]) -> &str {
        let out = &mut self.line;
        out.clear();
        let (number, text) = otel_severity(finding.severity);
        let action = finding.action.as_str();
        out.push_str(&self.head);
        push_u64(out, number.into());
        out.push_str(",\"severityText\":");
        push_json_str(out, text);
        out.push_str(",\"body\":\"veil ");
        out.push_str(if finding.monitor { "would " } else { "did " });
        push_json_str_inner(out, action);
        out.push(' ');
        push_json_str_inner(out, &finding.category);
        out.push_str(" in ");
        out.push_str(self.direction);
        out.push(' ');
        push_location(out, &self.location, finding.path.as_deref());
        out.push('"');
        out.push_str(&self.before_location);
        out.push('"');
        push_location(out, &self.location, finding.path.as_deref());
        out.push('"');
        out.push_str(&self.after_location);
        out.push_str(",\"veil.rule.id\":");
        push_json_str(out, &finding.rule_id);
        out.push_str(",\"veil.category\":");
        push_json_str(out, &finding.category);
        out.push_str(",\"veil.action\":");
        push_json_str(out, action);
        out.push_str(",\"veil.enforced\":");
        out.push_str(if finding.monitor { "false" } else { "true" });
        out.push_str(",\"veil.severity\":");
        push_json_str(out, finding.severity.as_str());
        out.push_str(",\"veil.confidence\":");
        push_json_str(out, finding.confidence.as_str());
        out.push_str(",\"veil.match.start\":");
        push_i64(out, i64::try_from(finding.start).unwrap_or(i64::MAX));
        out.push_str(",\"veil.match.end\":");
        push_i64(out, i64::try_from(finding.end).unwrap_or(i64::MAX));
        out.push_str(",\"veil.match.preview\":");
        let value = data.get(finding.start..finding.end).unwrap_or_default();
        out.push('"');
        push_preview(out, &finding.category, value, true);
        out.push('"');
        out.push_str(&self.tail);
        out
    }
}

/// `location` (already escaped) and `:path` when the finding has one, as
/// inside a JSON string: what [`finding_record`] writes as `veil.location`.
fn push_location(out: &mut String, location: &str, path: Option<&str>) {
    out.push_str(location);
    if let Some(path) = path {
        out.push(':');
        push_json_str_inner(out, path);
    }
}

/// `,"resource":{...}` of a line, when there is a resource.
fn push_resource(out: &mut String, resource: Option<&Resource>) {
    let Some(resource) = resource else {
        return;
    };
    out.push_str(",\"resource\":{");
    for (i, (k, v)) in resource.attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, k);
        out.push(':');
        push_json_str(out, v);
    }
    out.push('}');
}

/// `"key":value`, as [`Record::write_json_line`] writes an attribute.
fn push_attr(out: &mut String, key: &str, value: &AttrValue) {
    push_json_str(out, key);
    out.push(':');
    match value {
        AttrValue::Str(s) => push_json_str(out, s),
        AttrValue::Int(n) => push_i64(out, *n),
        AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
    }
}

/// One finding as an OpenTelemetry log record (JSON object).
pub fn finding_event(finding: &Finding, data: &[u8], ctx: &EventContext<'_>) -> Value {
    finding_record(finding, data, ctx).to_value(ctx.resource)
}

/// An event that is not a finding: a body passed unscanned over the size
/// limit, a parse or host failure handled by the fail mode. `reason` is a
/// stable token (`body_limit`, `internal_error`, ...) for alerting.
pub fn notice_record(
    ctx: &EventContext<'_>,
    reason: &str,
    detail: &str,
    severity: crate::bundle::Severity,
) -> Record {
    let mut attrs = Vec::with_capacity(24);
    request_attributes(&mut attrs, ctx);
    attrs.push(("veil.reason", AttrValue::text(reason)));
    attrs.push(("veil.detail", AttrValue::text(detail)));
    let body = format!(
        "veil {reason} in {} {}: {detail}",
        ctx.direction.as_str(),
        ctx.location
    );
    record(ctx, otel_severity(severity), body, attrs)
}

/// [`notice_record`] as a JSON object.
pub fn notice_event(
    ctx: &EventContext<'_>,
    reason: &str,
    detail: &str,
    severity: crate::bundle::Severity,
) -> Value {
    notice_record(ctx, reason, detail, severity).to_value(ctx.resource)
}

/// The body of a block response: small, JSON, with the event id a
/// developer can look up in the findings log.
pub fn block_body(direction: Direction, rule_id: &str, event_id: &str) -> Vec<u8> {
    let error = match direction {
        Direction::Request => "request blocked by veil data-protection policy",
        Direction::Response => "response blocked by veil data-protection policy",
    };
    json!({"error": error, "rule": rule_id, "event_id": event_id})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Action, MaskStyle, Severity};

    #[test]
    fn strings_and_integers_are_written_as_serde_json_writes_them() {
        // Every ASCII byte, and multi-byte characters, at every offset of
        // the eight-byte words the escaper skips.
        let mut cases: Vec<String> = (0u8..128).map(|b| char::from(b).to_string()).collect();
        for special in [
            "\"", "\\", "\n", "\u{1}", "\u{1f}", "\u{7f}", "é", "€", "𝄞", " ",
        ] {
            for at in 0..18 {
                let mut s = "abcdefghijklmnopqrstuvwx".to_string();
                s.insert_str(at, special);
                cases.push(s);
            }
        }
        cases.push(String::new());
        cases.push("/var/run/secrets/kubernetes.io/serviceaccount/token".into());
        for s in &cases {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
        for n in [0, 1, -1, 9, 10, -10, 42, i64::MAX, i64::MIN, 1_000_000_007] {
            let mut out = String::new();
            push_i64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for n in [0, 7, 10, 99, 100, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    /// A request-side context with the fields tests rarely care about.
    fn test_ctx<'a>(
        request: &'a RequestInfo,
        resource: Option<&'a Resource>,
        decision: Decision,
    ) -> EventContext<'a> {
        EventContext {
            event_id: "e",
            time_unix_nano: 1,
            direction: Direction::Request,
            location: "body",
            decision,
            bundle_name: "b",
            bundle_revision: "1",
            request,
            resource,
        }
    }

    /// An enforced finding of rule `r` with a full mask.
    fn test_finding(
        category: &str,
        action: Action,
        severity: Severity,
        span: std::ops::Range<usize>,
    ) -> Finding {
        Finding {
            rule_id: "r".into(),
            category: category.into(),
            action,
            severity,
            confidence: crate::detectors::Confidence::High,
            mask: MaskStyle::Full,
            monitor: false,
            start: span.start,
            end: span.end,
            path: None,
        }
    }

    #[test]
    fn preview_never_contains_the_value() {
        let secret = b"AKIAZ3MSJ5TVQ4GQDKWY";
        let p = masked_preview("secret.aws_access_key_id", secret);
        assert_eq!(p, "AKIA…[20]");
        let email = b"jane.doe@example.com";
        let p = masked_preview("pii.email", email);
        assert_eq!(p, "j…om[20]");
        assert_eq!(masked_preview("pii.x", b"12345"), "*****[5]");
        assert_eq!(masked_preview("pii.x", b" \xff\"a\\b\"z\x01"), "*…z*[9]");
        assert_eq!(
            masked_preview("secret.x", b"\"\\\x7f\xe9abcd"),
            "\"\\**…[8]"
        );
    }

    #[test]
    fn traceparent_parsing() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(tp),
            Some(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"))
        );
        assert_eq!(parse_traceparent("00-0000-00f067aa0ba902b7-01"), None);
        assert_eq!(parse_traceparent("garbage"), None);
    }

    #[test]
    fn event_has_otel_shape_and_no_raw_value() {
        let data = br#"{"email":"jane.doe@example.com"}"#;
        let f = Finding {
            rule_id: "pii-email".into(),
            ..test_finding("pii.email", Action::Redact, Severity::Medium, 10..30)
        };
        let req = RequestInfo {
            method: Some("POST".into()),
            path: Some("/users".into()),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            ..Default::default()
        };
        let ctx = EventContext {
            event_id: "abc",
            bundle_name: "veil-default",
            ..test_ctx(&req, None, Decision::Redact)
        };
        let ev = finding_event(&f, data, &ctx);
        let text = ev.to_string();
        assert!(!text.contains("jane.doe@example.com"));
        assert_eq!(ev["severityText"], "WARN");
        assert_eq!(ev["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ev["attributes"]["veil.rule.id"], "pii-email");
        assert_eq!(ev["attributes"]["http.request.method"], "POST");
        assert_eq!(ev["attributes"]["veil.confidence"], "high");
        assert!(
            ev["attributes"].get("http.response.status_code").is_none(),
            "no status before response headers"
        );
        assert_eq!(ev["attributes"]["veil.location"], "body");
        let with_path = Finding {
            path: Some("$.email".into()),
            ..f
        };
        let ev = finding_event(&with_path, data, &ctx);
        assert_eq!(ev["attributes"]["veil.location"], "body:$.email");
        assert!(ev["body"]
            .as_str()
            .unwrap()
            .ends_with("in request body:$.email"));
    }

    /// Every key an event can carry is documented in the JSON Schema.
    #[test]
    fn events_match_the_documented_schema() {
        let schema: Value =
            serde_json::from_str(include_str!("../../policy-schema/event.schema.json")).unwrap();
        let req = RequestInfo {
            method: Some("POST".into()),
            path: Some("/p".into()),
            authority: Some("h:1".into()),
            request_id: Some("r".into()),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            user_agent: Some("ua".into()),
            peer_address: Some("10.0.0.1:2".into()),
            local_address: Some("10.0.0.2:3".into()),
            response_status: Some(200),
        };
        let resource = Resource::from_node(&NodeFacts {
            node_id: Some("n".into()),
            pod_name: Some("p".into()),
            namespace: Some("ns".into()),
            workload_name: Some("w".into()),
            canonical_revision: Some("v1".into()),
            ..Default::default()
        });
        let ctx = EventContext {
            event_id: "0123456789abcdef",
            ..test_ctx(&req, Some(&resource), Decision::Block)
        };
        let f = test_finding("secret.x", Action::Block, Severity::Critical, 0..20);
        let events = [
            finding_event(&f, b"AKIAZ3MSJ5TVQ4GQDKWY", &ctx),
            notice_event(&ctx, "body_limit", "d", Severity::Medium),
        ];
        let props = |v: &Value| -> Vec<String> {
            v["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        let top = props(&schema);
        let attrs = props(&schema["properties"]["attributes"]);
        let res = props(&schema["properties"]["resource"]);
        for ev in &events {
            for k in ev.as_object().unwrap().keys() {
                assert!(top.contains(k), "top-level {k} not in event.schema.json");
            }
            for k in ev["attributes"].as_object().unwrap().keys() {
                assert!(attrs.contains(k), "attribute {k} not in event.schema.json");
            }
            for k in ev["resource"].as_object().unwrap().keys() {
                assert!(res.contains(k), "resource {k} not in event.schema.json");
            }
            for k in schema["required"].as_array().unwrap() {
                assert!(ev.get(k.as_str().unwrap()).is_some(), "{k} missing");
            }
        }
    }

    #[test]
    fn host_port_splitting() {
        assert_eq!(split_host_port("127.0.0.1:8080"), ("127.0.0.1", Some(8080)));
        assert_eq!(split_host_port("[::1]:443"), ("::1", Some(443)));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("example.com"), ("example.com", None));
        assert_eq!(split_host_port("example.com:x"), ("example.com:x", None));
    }

    #[test]
    fn resource_prefers_istio_names() {
        let r = Resource::from_node(&NodeFacts {
            node_cluster: Some("payments-api.payments".into()),
            app_label: Some("payments-api".into()),
            pod_name: Some("payments-api-7d9f-abc".into()),
            namespace: Some("payments".into()),
            ..Default::default()
        });
        let j = r.to_json();
        assert_eq!(j["service.name"], "payments-api");
        assert_eq!(j["k8s.pod.name"], "payments-api-7d9f-abc");
        assert_eq!(j["k8s.namespace.name"], "payments");
        let bare = Resource::from_node(&NodeFacts::default()).to_json();
        assert_eq!(bare["service.name"], "unknown_service:envoy");
        assert!(bare.get("k8s.pod.name").is_none());
    }

    #[test]
    fn addresses_follow_semantic_conventions() {
        let req = RequestInfo {
            authority: Some("api.example.com:8443".into()),
            peer_address: Some("10.1.2.3:51000".into()),
            local_address: Some("10.1.2.4:15006".into()),
            ..Default::default()
        };
        let ctx = test_ctx(&req, None, Decision::Allow);
        let ev = notice_event(&ctx, "body_limit", "x", Severity::Medium);
        let a = &ev["attributes"];
        assert_eq!(a["server.address"], "api.example.com");
        assert_eq!(a["server.port"], 8443);
        assert_eq!(a["client.address"], "10.1.2.3");
        assert_eq!(a["network.peer.port"], 51000);
        assert_eq!(a["network.local.address"], "10.1.2.4");
        assert_eq!(a["network.local.port"], 15006);
    }

    #[test]
    fn otlp_request_has_the_wire_shape() {
        let ev = json!({"timeUnixNano":"5","severityNumber":13,"severityText":"WARN","body":"b",
            "traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",
            "attributes":{"veil.rule.id":"r","veil.enforced":true,"veil.match.start":3}});
        let res = Resource::from_node(&NodeFacts {
            service_name: Some("svc".into()),
            ..Default::default()
        });
        let req = otlp_logs_request(&res, "0.1.0", &[ev], 9);
        let rl = &req["resourceLogs"][0];
        assert_eq!(rl["resource"]["attributes"][0]["key"], "service.name");
        assert_eq!(
            rl["resource"]["attributes"][0]["value"]["stringValue"],
            "svc"
        );
        let rec = &rl["scopeLogs"][0]["logRecords"][0];
        assert_eq!(rec["body"]["stringValue"], "b");
        assert_eq!(rec["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(rec["observedTimeUnixNano"], "9");
        let attrs = rec["attributes"].as_array().unwrap();
        let get = |k: &str| attrs.iter().find(|kv| kv["key"] == k).unwrap()["value"].clone();
        assert_eq!(get("veil.enforced"), json!({"boolValue": true}));
        assert_eq!(get("veil.match.start"), json!({"intValue": "3"}));
    }

    #[test]
    fn block_body_is_json_with_event_id() {
        let b = block_body(Direction::Request, "secret-aws", "e1");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["rule"], "secret-aws");
        assert_eq!(v["event_id"], "e1");
    }

    #[test]
    fn fast_json_forms_equal_the_json_value_forms() {
        let req = RequestInfo {
            method: Some("POST".into()),
            path: Some("/a\"b\\c\u{1}d\n\u{e9}\u{2028}".into()),
            authority: Some("h:8443".into()),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            user_agent: Some("tab\there".into()),
            peer_address: Some("[::1]:5000".into()),
            response_status: Some(503),
            ..Default::default()
        };
        let resource = Resource::from_node(&NodeFacts {
            pod_name: Some("p\"od".into()),
            ..Default::default()
        });
        let ctx = EventContext {
            event_id: "e1",
            time_unix_nano: 1_795_320_000_000_000_000,
            direction: Direction::Response,
            ..test_ctx(&req, Some(&resource), Decision::Redact)
        };
        let f = Finding {
            confidence: crate::detectors::Confidence::Medium,
            monitor: true,
            path: Some("$.contact".into()),
            ..test_finding("pii.email", Action::Redact, Severity::High, 0..12)
        };
        let records = [
            finding_record(&f, b"jane@example", &ctx),
            notice_record(&ctx, "body_limit", "over \"limit\"", Severity::Low),
        ];
        for r in &records {
            for res in [None, Some(&resource)] {
                let line: Value = serde_json::from_str(&r.to_json_line(res)).expect("valid JSON");
                assert_eq!(line, r.to_value(res));
            }
            let otlp: Value = serde_json::from_str(&r.to_otlp_json(7)).expect("valid JSON");
            assert_eq!(by_key(otlp), by_key(otlp_log_record(&r.to_value(None), 7)));
        }
        let values: Vec<Value> = records.iter().map(|r| r.to_value(None)).collect();
        let rendered: Vec<String> = records.iter().map(|r| r.to_otlp_json(7)).collect();
        let body: Value =
            serde_json::from_str(&otlp_logs_body(&resource, "0.1.0", &rendered)).unwrap();
        assert_eq!(
            by_key(body),
            by_key(otlp_logs_request(&resource, "0.1.0", &values, 7))
        );
    }

    #[test]
    fn finding_lines_equal_the_record_lines() {
        let full = RequestInfo {
            method: Some("POST".into()),
            path: Some("/a\"b\\c\u{1}d\n\u{e9}".into()),
            authority: Some("h:8443".into()),
            request_id: Some("rid".into()),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            user_agent: Some("tab\there".into()),
            peer_address: Some("[::1]:5000".into()),
            local_address: Some("10.0.0.1:80".into()),
            response_status: Some(503),
        };
        let bare = RequestInfo::default();
        let resource = Resource::from_node(&NodeFacts {
            pod_name: Some("p\"od".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        });
        let data = b"jane\"doe@example.com\\ AKIAZ3MSJ5TVQ4GQDKWY 12 \xff\xfe tail";
        let findings = [
            test_finding("pii.email", Action::Redact, Severity::High, 0..21),
            Finding {
                monitor: true,
                path: Some("$.a[\"x\\y\"].b\u{2}".into()),
                confidence: crate::detectors::Confidence::Low,
                ..test_finding(
                    "secret.aws_access_key_id",
                    Action::Block,
                    Severity::Critical,
                    23..43,
                )
            },
            Finding {
                path: Some("$.n".into()),
                ..test_finding("pii.phone", Action::Alert, Severity::Low, 44..46)
            },
            test_finding("pii.x", Action::Alert, Severity::Medium, 47..54),
            test_finding("odd\"cat", Action::Redact, Severity::Medium, 40..400),
            test_finding("secret.q", Action::Redact, Severity::Medium, 4..14),
            test_finding("pii.ctl", Action::Redact, Severity::Medium, 45..53),
        ];
        for (req, location, direction) in [
            (&full, "body", Direction::Request),
            (&bare, "header:x-\"q\"", Direction::Response),
        ] {
            for res in [None, Some(&resource)] {
                let ctx = EventContext {
                    location,
                    direction,
                    time_unix_nano: 1_795_320_000_000_000_123,
                    ..test_ctx(req, res, Decision::Block)
                };
                let mut lines = FindingLines::new(&ctx, res);
                for f in &findings {
                    let want = finding_record(f, data, &ctx).to_json_line(res);
                    assert_eq!(lines.line(f, data), want);
                }
            }
        }
    }

    /// `v` with every OTLP key/value list sorted by key: the fast form keeps
    /// insertion order, the `serde_json::Map` form sorts keys.
    fn by_key(mut v: Value) -> Value {
        match &mut v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    *x = by_key(x.take());
                    if k == "attributes" {
                        if let Value::Array(a) = x {
                            a.sort_by(|p, q| p["key"].as_str().cmp(&q["key"].as_str()));
                        }
                    }
                }
            }
            Value::Array(a) => {
                for x in a.iter_mut() {
                    *x = by_key(x.take());
                }
            }
            _ => {}
        }
        v
    }

    #[test]
    fn record_attributes_are_set_once() {
        let req = RequestInfo::default();
        let ctx = test_ctx(&req, None, Decision::Allow);
        let mut r = notice_record(&ctx, "x", "y", Severity::Low);
        r.set("veil.decision", AttrValue::text("block"));
        r.set("veil.shadow.diff", AttrValue::text("added"));
        let v = r.to_value(None);
        assert_eq!(v["attributes"]["veil.decision"], "block");
        assert_eq!(v["attributes"]["veil.shadow.diff"], "added");
        assert_eq!(
            r.attributes
                .iter()
                .filter(|(k, _)| *k == "veil.decision")
                .count(),
            1
        );
        assert_eq!(r.get("veil.reason"), Some(&AttrValue::text("x")));
    }
}

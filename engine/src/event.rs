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
}

/// OpenTelemetry severity number and text for a veil severity.
fn otel_severity(sev: crate::bundle::Severity) -> (u8, &'static str) {
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
    let ascii = |b: &u8| {
        if b.is_ascii_graphic() {
            *b as char
        } else {
            '*'
        }
    };
    let n = value.len();
    if n < 8 {
        return format!("{}[{n}]", "*".repeat(n));
    }
    if category.starts_with("secret") {
        let head: String = value[..4].iter().map(ascii).collect();
        format!("{head}…[{n}]")
    } else {
        let head: String = value[..1].iter().map(ascii).collect();
        let tail: String = value[n - 2..].iter().map(ascii).collect();
        format!("{head}…{tail}[{n}]")
    }
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
fn request_attributes(attrs: &mut Map<String, Value>, ctx: &EventContext<'_>) {
    let mut put = |k: &str, v: Value| {
        attrs.insert(k.to_string(), v);
    };
    put("veil.event_id", json!(ctx.event_id));
    put("veil.direction", json!(ctx.direction.as_str()));
    put("veil.location", json!(ctx.location));
    put("veil.decision", json!(ctx.decision.as_str()));
    put("veil.bundle.name", json!(ctx.bundle_name));
    put("veil.bundle.revision", json!(ctx.bundle_revision));
    let r = ctx.request;
    if let Some(m) = &r.method {
        put("http.request.method", json!(m));
    }
    if let Some(p) = &r.path {
        put("url.path", json!(p));
    }
    if let Some(a) = &r.authority {
        put("server.address", json!(a));
    }
    if let Some(id) = &r.request_id {
        put("http.request.header.x-request-id", json!(id));
    }
    if let Some(ua) = &r.user_agent {
        put("user_agent.original", json!(ua));
    }
}

fn record(
    ctx: &EventContext<'_>,
    sev: (u8, &str),
    body: String,
    attrs: Map<String, Value>,
) -> Value {
    let mut record = json!({
        "timeUnixNano": ctx.time_unix_nano.to_string(),
        "severityNumber": sev.0,
        "severityText": sev.1,
        "body": body,
        "attributes": Value::Object(attrs),
    });
    if let Some((trace_id, span_id)) = ctx
        .request
        .traceparent
        .as_deref()
        .and_then(parse_traceparent)
    {
        record["traceId"] = json!(trace_id);
        record["spanId"] = json!(span_id);
    }
    record
}

/// One finding as an OpenTelemetry log record (JSON object).
pub fn finding_event(finding: &Finding, data: &[u8], ctx: &EventContext<'_>) -> Value {
    let value = data.get(finding.start..finding.end).unwrap_or_default();
    let mut attrs = Map::new();
    request_attributes(&mut attrs, ctx);
    let mut put = |k: &str, v: Value| {
        attrs.insert(k.to_string(), v);
    };
    put("veil.rule.id", json!(&*finding.rule_id));
    put("veil.category", json!(&*finding.category));
    put("veil.action", json!(finding.action.as_str()));
    put("veil.enforced", json!(!finding.monitor));
    put("veil.severity", json!(finding.severity.as_str()));
    put("veil.match.start", json!(finding.start));
    put("veil.match.end", json!(finding.end));
    put(
        "veil.match.preview",
        json!(masked_preview(&finding.category, value)),
    );
    let body = format!(
        "veil {} {} {} in {} {}",
        if finding.monitor { "would" } else { "did" },
        finding.action.as_str(),
        finding.category,
        ctx.direction.as_str(),
        ctx.location
    );
    record(ctx, otel_severity(finding.severity), body, attrs)
}

/// An event that is not a finding: a body passed unscanned over the size
/// limit, a parse or host failure handled by the fail mode. `reason` is a
/// stable token (`body_limit`, `internal_error`, ...) for alerting.
pub fn notice_event(
    ctx: &EventContext<'_>,
    reason: &str,
    detail: &str,
    severity: crate::bundle::Severity,
) -> Value {
    let mut attrs = Map::new();
    request_attributes(&mut attrs, ctx);
    attrs.insert("veil.reason".into(), json!(reason));
    attrs.insert("veil.detail".into(), json!(detail));
    let body = format!(
        "veil {reason} in {} {}: {detail}",
        ctx.direction.as_str(),
        ctx.location
    );
    record(ctx, otel_severity(severity), body, attrs)
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
    use std::sync::Arc;

    #[test]
    fn preview_never_contains_the_value() {
        let secret = b"AKIAZ3MSJ5TVQ4GQDKWY";
        let p = masked_preview("secret.aws_access_key_id", secret);
        assert_eq!(p, "AKIA…[20]");
        let email = b"jane.doe@example.com";
        let p = masked_preview("pii.email", email);
        assert_eq!(p, "j…om[20]");
        assert_eq!(masked_preview("pii.x", b"12345"), "*****[5]");
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
            rule_id: Arc::from("pii-email"),
            category: Arc::from("pii.email"),
            action: Action::Redact,
            severity: Severity::Medium,
            mask: MaskStyle::Full,
            monitor: false,
            start: 10,
            end: 30,
        };
        let req = RequestInfo {
            method: Some("POST".into()),
            path: Some("/users".into()),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            ..Default::default()
        };
        let ctx = EventContext {
            event_id: "abc",
            time_unix_nano: 1,
            direction: Direction::Request,
            location: "body",
            decision: Decision::Redact,
            bundle_name: "veil-default",
            bundle_revision: "1",
            request: &req,
        };
        let ev = finding_event(&f, data, &ctx);
        let text = ev.to_string();
        assert!(!text.contains("jane.doe@example.com"));
        assert_eq!(ev["severityText"], "WARN");
        assert_eq!(ev["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ev["attributes"]["veil.rule.id"], "pii-email");
        assert_eq!(ev["attributes"]["http.request.method"], "POST");
    }

    #[test]
    fn block_body_is_json_with_event_id() {
        let b = block_body(Direction::Request, "secret-aws", "e1");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["rule"], "secret-aws");
        assert_eq!(v["event_id"], "e1");
    }
}

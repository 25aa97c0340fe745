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
        let (host, port) = split_host_port(a);
        put("server.address", json!(host));
        if let Some(port) = port {
            put("server.port", json!(port));
        }
    }
    if let Some(peer) = &r.peer_address {
        let (ip, port) = split_host_port(peer);
        put("client.address", json!(ip));
        put("network.peer.address", json!(ip));
        if let Some(port) = port {
            put("client.port", json!(port));
            put("network.peer.port", json!(port));
        }
    }
    if let Some(local) = &r.local_address {
        let (ip, port) = split_host_port(local);
        put("network.local.address", json!(ip));
        if let Some(port) = port {
            put("network.local.port", json!(port));
        }
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
    if let Some(resource) = ctx.resource {
        record["resource"] = resource.to_json();
    }
    record
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
            resource: None,
        };
        let ev = finding_event(&f, data, &ctx);
        let text = ev.to_string();
        assert!(!text.contains("jane.doe@example.com"));
        assert_eq!(ev["severityText"], "WARN");
        assert_eq!(ev["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ev["attributes"]["veil.rule.id"], "pii-email");
        assert_eq!(ev["attributes"]["http.request.method"], "POST");
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
            time_unix_nano: 1,
            direction: Direction::Request,
            location: "body",
            decision: Decision::Block,
            bundle_name: "b",
            bundle_revision: "1",
            request: &req,
            resource: Some(&resource),
        };
        let f = Finding {
            rule_id: Arc::from("r"),
            category: Arc::from("secret.x"),
            action: Action::Block,
            severity: Severity::Critical,
            mask: MaskStyle::Full,
            monitor: false,
            start: 0,
            end: 20,
        };
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
        let ctx = EventContext {
            event_id: "e",
            time_unix_nano: 1,
            direction: Direction::Request,
            location: "body",
            decision: Decision::Allow,
            bundle_name: "b",
            bundle_revision: "1",
            request: &req,
            resource: None,
        };
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
}

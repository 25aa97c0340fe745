//! What security and platform teams see of veil in a real Envoy: labelled
//! Prometheus metrics, the filter-state summary in an access log, and
//! events exported over OTLP/HTTP to a real receiver.

mod common;

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::any_value;
use serde_json::{json, Value};
use veil_integration_tests::otlp::{attr, attr_str, hex, OtlpReceiver};
use veil_integration_tests::{test_id, Harness, Proto, TestRequest};

const EMAIL: &str = "jane.doe@example.com";
const AWS_KEY: &str = "AKIAZ3MSJ5TVQ4GQDKWY";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";
const WAIT: Duration = Duration::from_secs(15);

use veil_integration_tests::prometheus_sample as sample;

async fn wait_prometheus(
    h: &Harness,
    mut done: impl FnMut(&str) -> bool,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let prom = h.prometheus().await?;
        if done(&prom) {
            return Ok(prom);
        }
        if Instant::now() > deadline {
            let veil: Vec<&str> = prom.lines().filter(|l| l.contains("veil")).collect();
            anyhow::bail!("expected samples missing; veil lines:\n{}", veil.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_shows_labelled_veil_metrics() -> anyhow::Result<()> {
    let h = common::builder()
        .config_raw("")
        .veil_stats_tags()
        .start()
        .await?;
    let id = test_id("metrics");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/users", &id).json(&json!({"email": EMAIL})),
        )
        .await?;
    assert_eq!(resp.status, 200);
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/keys", &id).json(&json!({"k": AWS_KEY})),
        )
        .await?;
    assert_eq!(resp.status, 403);
    let clean = h
        .send(
            Proto::Http1,
            TestRequest::post("/clean", &id).json(&json!({"order": "A-1"})),
        )
        .await?;
    assert_eq!(clean.status, 200);

    // Histograms reach the admin endpoint at the next stats flush.
    let prom = wait_prometheus(&h, |p| {
        sample(
            p,
            "veil_decisions",
            &[("decision", "block"), ("direction", "request")],
        ) == Some(1.0)
            && sample(p, "veil_scan_time_us_count", &[("direction", "request")]) == Some(3.0)
    })
    .await?;
    let email = sample(
        &prom,
        "veil_findings",
        &[
            ("category", "pii.email"),
            ("action", "redact"),
            ("direction", "request"),
            ("mode", "enforce"),
        ],
    );
    assert_eq!(email, Some(1.0), "email finding counter:\n{prom}");
    let rule_label = prom
        .lines()
        .find(|l| l.starts_with("veil_findings{") && l.contains("category=\"pii.email\""))
        .unwrap_or_default();
    assert!(rule_label.contains("rule=\""), "rule label: {rule_label}");
    assert_eq!(
        sample(
            &prom,
            "veil_findings",
            &[
                ("category", "secret.aws_access_key_id"),
                ("action", "block")
            ]
        ),
        Some(1.0),
        "{prom}"
    );
    assert_eq!(
        sample(
            &prom,
            "veil_decisions",
            &[("decision", "redact"), ("direction", "request")]
        ),
        Some(1.0)
    );
    // Three request bodies and two echoed response bodies (the block has none).
    let scanned = sample(&prom, "veil_scanned_bytes", &[("direction", "request")]).unwrap_or(0.0);
    assert!(scanned > 40.0, "scanned bytes: {scanned}\n{prom}");
    let scans = sample(
        &prom,
        "veil_scan_time_us_count",
        &[("direction", "request")],
    );
    assert_eq!(scans, Some(3.0), "scan-time histogram count:\n{prom}");
    assert!(
        prom.lines()
            .any(|l| l.starts_with("veil_scan_time_us_bucket{") && l.contains("le=\"25\"")),
        "microsecond buckets:\n{prom}"
    );
    assert_eq!(
        sample(&prom, "veil_bundle", &[("bundle", "veil-default")]),
        Some(1.0),
        "bundle info gauge:\n{prom}"
    );
    assert!(
        prom.lines()
            .any(|l| l.starts_with("veil_bundle{") && l.contains("revision=\"")),
        "{prom}"
    );
    assert_eq!(
        sample(&prom, "veil_body_limit", &[("direction", "request")]),
        Some(0.0)
    );
    assert_eq!(
        sample(&prom, "veil_internal_errors", &[("direction", "request")]),
        Some(0.0)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_carries_the_filter_state_summary() -> anyhow::Result<()> {
    let h = common::builder()
        .config_raw("")
        .access_log_json(json!({
            "path": "%REQ(:PATH)%",
            "status": "%RESPONSE_CODE%",
            "veil": "%FILTER_STATE(wasm.veil.summary:PLAIN)%",
        }))
        .start()
        .await?;
    let id = test_id("alog");
    let blocked = h
        .send(
            Proto::Http1,
            TestRequest::post("/blocked", &id).json(&json!({"k": AWS_KEY})),
        )
        .await?;
    assert_eq!(blocked.status, 403);
    let event_id = blocked
        .header("x-veil-event-id")
        .unwrap_or_default()
        .to_string();
    let redacted = h
        .send(
            Proto::Http1,
            TestRequest::post("/redacted", &id).json(&json!({"email": EMAIL})),
        )
        .await?;
    assert_eq!(redacted.status, 200);
    let clean = h
        .send(Proto::Http1, TestRequest::get("/clean", &id))
        .await?;
    assert_eq!(clean.status, 200);

    let deadline = Instant::now() + WAIT;
    let lines = loop {
        let lines = h.access_log();
        if lines.len() >= 3 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_path = |p: &str| {
        lines
            .iter()
            .find(|l| l["path"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("no access log line for {p}: {lines:?}"))
    };
    let summary = |line: &Value| -> Value {
        let text = line["veil"].as_str().unwrap_or_default();
        serde_json::from_str(text).unwrap_or_else(|e| panic!("summary {text:?} is not JSON: {e}"))
    };
    let b = summary(&by_path("/blocked"));
    assert_eq!(b["decision"], "block", "{b}");
    assert_eq!(b["request"], "block", "{b}");
    assert_eq!(b["event_id"], event_id.as_str(), "{b}");
    assert!(
        b["rules"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.contains("aws")))),
        "{b}"
    );
    let r = summary(&by_path("/redacted"));
    assert_eq!(r["decision"], "redact", "{r}");
    assert_eq!(r["request"], "redact", "{r}");
    assert_eq!(r["findings"], 1, "{r}");
    assert_eq!(r["rules"], json!(["pii-email"]), "{r}");
    assert!(!r.to_string().contains(EMAIL));
    // Clean traffic writes nothing: the access log shows Envoy's "-" (null in JSON).
    let c = by_path("/clean");
    assert!(c["veil"].is_null() || c["veil"] == "-", "{c}");
    Ok(())
}

/// One request full of values cannot flood the log: past
/// `max_finding_events` the stream reports one `finding_events_capped`
/// notice instead, while every value is still masked and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_events_are_capped_per_stream() -> anyhow::Result<()> {
    let h = common::builder()
        .config_json(json!({"max_finding_events": 5}))
        .access_log_json(json!({
            "path": "%REQ(:PATH)%",
            "veil": "%FILTER_STATE(wasm.veil.summary:PLAIN)%",
        }))
        .start()
        .await?;
    let id = test_id("capped");
    let users: Vec<Value> = (0..12)
        .map(|i| json!({"email": format!("user{i}@example.com")}))
        .collect();
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/capped", &id).json(&json!({ "users": users })),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = h.recorded(&id).await?;
    let upstream = rec[0].body_text();
    assert!(!upstream.contains("@example.com"), "{upstream}");

    let on_path = |e: &&Value| veil_integration_tests::event_attr(e, "url.path") == Some("/capped");
    let events = h
        .wait_for_events(WAIT, |evs| {
            evs.iter().filter(on_path).any(|e| {
                veil_integration_tests::event_attr(e, "veil.reason")
                    == Some("finding_events_capped")
            })
        })
        .await?;
    let mine: Vec<&Value> = events.iter().filter(on_path).collect();
    let findings = mine
        .iter()
        .filter(|e| veil_integration_tests::event_attr(e, "veil.rule.id") == Some("pii-email"))
        .count();
    let notices = mine
        .iter()
        .filter(|e| {
            veil_integration_tests::event_attr(e, "veil.reason") == Some("finding_events_capped")
        })
        .count();
    assert_eq!((findings, notices), (5, 1), "{mine:#?}");

    let deadline = Instant::now() + WAIT;
    let line = loop {
        let line = h.access_log().into_iter().find(|l| l["path"] == "/capped");
        if line.is_some() || Instant::now() > deadline {
            break line;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = line
        .as_ref()
        .and_then(|l| l["veil"].as_str())
        .unwrap_or_default();
    let summary: Value = serde_json::from_str(text)?;
    assert_eq!(summary["findings"], 12, "{summary}");
    assert_eq!(summary["unreported"], 7, "{summary}");
    Ok(())
}

fn otlp_config(cluster: &str, extra: Value) -> Value {
    let mut otlp = json!({
        "cluster": cluster,
        "authority": "collector.test",
        "batch_size": 50,
        "flush_interval_ms": 100,
        "max_queue": 100,
        "timeout_ms": 1000,
        "max_retries": 1,
        "headers": {"x-api-key": "test-key"},
    });
    if let (Some(o), Some(e)) = (otlp.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    json!({ "otlp": otlp })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_exported_over_otlp_with_trace_ids_and_resource() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let h = common::builder()
        .config_json(otlp_config("otel_collector", json!({})))
        .cluster("otel_collector", receiver.addr())
        .node(json!({
            "id": "sidecar~10.0.0.7~payments-api-7d9f-abc.payments~payments.svc.cluster.local",
            "cluster": "payments-api.payments",
            "metadata": {
                "NAME": "payments-api-7d9f-abc",
                "NAMESPACE": "payments",
                "WORKLOAD_NAME": "payments-api",
                "LABELS": {"app": "payments-api", "service.istio.io/canonical-name": "payments"},
            },
        }))
        .start()
        .await?;
    let id = test_id("otlp");
    // The upstream answers with PII of its own (an echo would return the
    // already redacted request): one record per direction.
    h.set_upstream_response(
        &id,
        200,
        Some("application/json"),
        json!({"contact": EMAIL}).to_string(),
    )
    .await?;
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/users?x=1", &id)
                .header("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01"))
                .header("x-request-id", "req-42")
                .header("user-agent", "veil-test/1")
                .json(&json!({"email": EMAIL})),
        )
        .await?;
    assert_eq!(resp.status, 200);

    let records = receiver
        .wait_for_records(WAIT, |rs| {
            ["request", "response"].iter().all(|d| {
                rs.iter()
                    .any(|r| attr_str(&r.attributes, "veil.direction") == Some(d))
            })
        })
        .await?;
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    let rec = records
        .iter()
        .find(|r| attr_str(&r.attributes, "veil.direction") == Some("request"))
        .expect("a request-side record");
    let a = &rec.attributes;
    assert_eq!(hex(&rec.trace_id), TRACE_ID);
    assert_eq!(hex(&rec.span_id), SPAN_ID);
    assert_eq!(rec.severity_text, "WARN");
    assert_eq!(rec.severity_number, 13);
    assert!(
        rec.time_unix_nano > 1_600_000_000_000_000_000,
        "{}",
        rec.time_unix_nano
    );
    assert_eq!(attr_str(a, "veil.category"), Some("pii.email"));
    assert_eq!(attr_str(a, "veil.action"), Some("redact"));
    assert_eq!(attr_str(a, "veil.location"), Some("body:$.email"));
    assert_eq!(attr_str(a, "http.request.method"), Some("POST"));
    assert_eq!(attr_str(a, "url.path"), Some("/users"));
    assert_eq!(
        attr_str(a, "http.request.header.x-request-id"),
        Some("req-42")
    );
    assert_eq!(attr_str(a, "user_agent.original"), Some("veil-test/1"));
    assert_eq!(attr_str(a, "client.address"), Some("127.0.0.1"));
    assert_eq!(attr_str(a, "network.peer.address"), Some("127.0.0.1"));
    assert_eq!(attr_str(a, "network.local.address"), Some("127.0.0.1"));
    assert!(attr(a, "client.port").is_some() && attr(a, "network.local.port").is_some());
    assert!(attr(a, "veil.enforced").is_some());
    let preview = attr_str(a, "veil.match.preview").unwrap_or_default();
    assert!(!preview.is_empty() && !preview.contains(EMAIL), "{preview}");
    assert_eq!(attr_str(a, "veil.confidence"), Some("high"));
    assert!(
        attr(a, "http.response.status_code").is_none(),
        "a request finding is made before any response"
    );
    let response = records
        .iter()
        .find(|r| attr_str(&r.attributes, "veil.direction") == Some("response"))
        .expect("a response-side record");
    let status =
        attr(&response.attributes, "http.response.status_code").and_then(|v| v.value.as_ref());
    assert!(
        matches!(status, Some(any_value::Value::IntValue(200))),
        "response status attribute: {status:?}"
    );

    let exports = receiver.exports();
    let first = &exports[0];
    assert_eq!(first.path, "/v1/logs");
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(first.authority.as_deref(), Some("collector.test"));
    assert!(first
        .headers
        .iter()
        .any(|(k, v)| k == "x-api-key" && v == "test-key"));
    let rl = &first.request.resource_logs[0];
    let res = &rl.resource.as_ref().expect("resource").attributes;
    assert_eq!(attr_str(res, "service.name"), Some("payments"));
    assert_eq!(attr_str(res, "k8s.pod.name"), Some("payments-api-7d9f-abc"));
    assert_eq!(attr_str(res, "k8s.namespace.name"), Some("payments"));
    assert_eq!(
        rl.scope_logs[0].scope.as_ref().map(|s| s.name.as_str()),
        Some("veil")
    );
    // No record anywhere carries the raw value.
    for e in &exports {
        assert!(!format!("{:?}", e.request).contains(EMAIL));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_down_loses_no_traffic_and_counts_drops() -> anyhow::Result<()> {
    // A port with nothing listening: every export attempt fails to connect.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let h = common::builder()
        .config_json(otlp_config(
            "otel_collector",
            json!({"max_queue": 5, "max_retries": 1}),
        ))
        .cluster("otel_collector", dead)
        .veil_stats_tags()
        .start()
        .await?;
    let id = test_id("otlp-down");
    for i in 0..12 {
        let resp = h
            .send(
                Proto::Http1,
                TestRequest::post(&format!("/u/{i}"), &id).json(&json!({"email": EMAIL})),
            )
            .await?;
        assert_eq!(resp.status, 200, "traffic flows with the collector down");
        let v = resp.json()?;
        assert_ne!(v["email"], EMAIL, "and is still redacted");
    }
    let prom = wait_prometheus(&h, |p| {
        let full = sample(p, "veil_export_dropped", &[("reason", "queue_full")]).unwrap_or(0.0);
        let failed =
            sample(p, "veil_export_dropped", &[("reason", "export_failed")]).unwrap_or(0.0);
        full > 0.0 && failed > 0.0
    })
    .await?;
    assert!(
        sample(&prom, "veil_export_failed_attempts", &[]).unwrap_or(0.0) >= 2.0,
        "{prom}"
    );
    assert_eq!(sample(&prom, "veil_export_sent", &[]), Some(0.0), "{prom}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_recovers_after_collector_errors() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    receiver.set_status(503);
    let h = common::builder()
        .config_json(otlp_config("otel_collector", json!({"max_retries": 5})))
        .cluster("otel_collector", receiver.addr())
        .start()
        .await?;
    let id = test_id("otlp-retry");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/u", &id).json(&json!({"email": EMAIL})),
        )
        .await?;
    assert_eq!(resp.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(receiver.records().is_empty());
    receiver.set_status(200);
    let records = receiver.wait_for_records(WAIT, |rs| !rs.is_empty()).await?;
    assert!(records
        .iter()
        .any(|r| attr_str(&r.attributes, "veil.category") == Some("pii.email")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_mode_changes_no_byte_and_reports_everywhere() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let bundle = json!({
        "version": 1,
        "metadata": {"name": "trial", "revision": "r2"},
        "mode": "monitor",
        "rules": [
            {"id": "trial-email", "category": "pii.email", "detector": {"builtin": "email"}, "action": "redact"},
            {"id": "trial-aws", "category": "secret.aws_access_key_id",
             "detector": {"builtin": "aws_access_key_id"}, "action": "block"},
        ],
    });
    let mut config = otlp_config("otel_collector", json!({}));
    config["bundle"] = bundle;
    let h = common::builder()
        .config_json(config)
        .cluster("otel_collector", receiver.addr())
        .veil_stats_tags()
        .access_log_json(json!({
            "path": "%REQ(:PATH)%",
            "veil": "%FILTER_STATE(wasm.veil.summary:PLAIN)%",
        }))
        .start()
        .await?;
    let id = test_id("monitor");
    // Odd spacing and key order: the upstream must get these exact bytes.
    let body = format!("{{ \"k\":\"{AWS_KEY}\",  \"email\" : \"{EMAIL}\" }}");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/trial", &id)
                .content_type("application/json")
                .body(body.clone()),
        )
        .await?;
    assert_eq!(
        resp.status,
        200,
        "monitor mode never blocks: {}",
        resp.text()
    );
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].body, body.as_bytes(), "upstream body byte-identical");
    assert_eq!(resp.body, body.as_bytes(), "client body byte-identical");

    // OTLP: both rules reported, not enforced, with what enforce would do.
    let records = receiver
        .wait_for_records(WAIT, |rs| {
            rs.iter()
                .filter(|r| attr_str(&r.attributes, "veil.direction") == Some("request"))
                .count()
                >= 2
        })
        .await?;
    for rule in ["trial-email", "trial-aws"] {
        let r = records
            .iter()
            .find(|r| attr_str(&r.attributes, "veil.rule.id") == Some(rule))
            .unwrap_or_else(|| panic!("no record for {rule}"));
        let enforced = attr(&r.attributes, "veil.enforced").and_then(|v| v.value.clone());
        assert_eq!(
            enforced,
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::BoolValue(false)),
            "{rule}"
        );
        assert_eq!(attr_str(&r.attributes, "veil.decision"), Some("allow"));
        assert_eq!(attr_str(&r.attributes, "veil.bundle.revision"), Some("r2"));
    }
    // Metrics: labelled mode="monitor", no enforced decision counted.
    let prom = wait_prometheus(&h, |p| {
        sample(
            p,
            "veil_findings",
            &[
                ("rule", "trial-aws"),
                ("action", "block"),
                ("mode", "monitor"),
            ],
        ) == Some(1.0)
    })
    .await?;
    assert_eq!(
        sample(
            &prom,
            "veil_decisions",
            &[("decision", "block"), ("direction", "request")]
        ),
        Some(0.0)
    );
    // Access log: the summary says allow, with monitor findings.
    let deadline = Instant::now() + WAIT;
    let line = loop {
        if let Some(l) = h.access_log().into_iter().find(|l| l["path"] == "/trial") {
            break l;
        }
        assert!(Instant::now() < deadline, "no access log line");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let s: Value = serde_json::from_str(line["veil"].as_str().unwrap_or("null"))?;
    assert_eq!(s["decision"], "allow", "{s}");
    assert!(s["monitor"].as_u64().is_some_and(|n| n >= 2), "{s}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_bundle_reports_only_differences() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    // Candidate revision: adds an employee-id rule, drops the email rule.
    let candidate = json!({
        "version": 1,
        "metadata": {"name": "candidate", "revision": "r3"},
        "rules": [{"id": "emp-id", "category": "pii.employee_id",
                   "detector": {"regex": "EMP-[0-9]{6}"}, "action": "redact"}],
    });
    let mut config = otlp_config("otel_collector", json!({}));
    config["shadow_bundle"] = candidate;
    let h = common::builder()
        .config_json(config)
        .cluster("otel_collector", receiver.addr())
        .veil_stats_tags()
        .start()
        .await?;
    let id = test_id("shadow");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/hr", &id).json(&json!({"email": EMAIL, "emp": "EMP-123456"})),
        )
        .await?;
    assert_eq!(resp.status, 200);
    // Only the enforced bundle acts: email masked, employee id untouched.
    let up = h.recorded(&id).await?[0].body_json()?;
    assert_ne!(up["email"], EMAIL);
    assert_eq!(up["emp"], "EMP-123456");

    let is_shadow = |r: &opentelemetry_proto::tonic::logs::v1::LogRecord, diff: &str| {
        attr_str(&r.attributes, "veil.shadow.diff") == Some(diff)
            && attr_str(&r.attributes, "veil.direction") == Some("request")
    };
    let records = receiver
        .wait_for_records(WAIT, |rs| {
            rs.iter().any(|r| is_shadow(r, "added")) && rs.iter().any(|r| is_shadow(r, "removed"))
        })
        .await?;
    let added = records.iter().find(|r| is_shadow(r, "added")).unwrap();
    assert_eq!(attr_str(&added.attributes, "veil.rule.id"), Some("emp-id"));
    assert_eq!(
        attr_str(&added.attributes, "veil.shadow.bundle.revision"),
        Some("r3")
    );
    assert_eq!(
        attr_str(&added.attributes, "veil.shadow.decision"),
        Some("redact")
    );
    let removed = records.iter().find(|r| is_shadow(r, "removed")).unwrap();
    assert_eq!(
        attr_str(&removed.attributes, "veil.category"),
        Some("pii.email")
    );
    // Request findings both bundles agree on are not repeated as shadow events.
    let shadow_request = records
        .iter()
        .filter(|r| {
            attr(&r.attributes, "veil.shadow.diff").is_some()
                && attr_str(&r.attributes, "veil.direction") == Some("request")
        })
        .count();
    assert_eq!(shadow_request, 2);

    let prom = wait_prometheus(&h, |p| {
        sample(
            p,
            "veil_shadow_diffs",
            &[("diff", "added"), ("direction", "request")],
        ) == Some(1.0)
    })
    .await?;
    assert_eq!(
        sample(
            &prom,
            "veil_shadow_diffs",
            &[("diff", "removed"), ("direction", "request")]
        ),
        Some(1.0)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_collector_cluster_never_breaks_the_vm() -> anyhow::Result<()> {
    // Envoy refuses the call itself (BadArgument): counted, logged, no panic.
    let h = common::builder()
        .config_json(otlp_config("no_such_cluster", json!({"max_retries": 0})))
        .veil_stats_tags()
        .start()
        .await?;
    let id = test_id("otlp-nocluster");
    for i in 0..3 {
        let resp = h
            .send(
                Proto::Http1,
                TestRequest::post(&format!("/n/{i}"), &id).json(&json!({"email": EMAIL})),
            )
            .await?;
        assert_eq!(resp.status, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    wait_prometheus(&h, |p| {
        sample(p, "veil_export_dropped", &[("reason", "export_failed")]).unwrap_or(0.0) >= 1.0
    })
    .await?;
    assert!(
        h.log().contains("OTLP export of"),
        "the failure is logged:\n{}",
        h.log()
    );
    assert!(!h.log().contains("panicked"), "{}", h.log());
    Ok(())
}

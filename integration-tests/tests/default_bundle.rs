//! veil with an empty configuration (the embedded default bundle) inside a
//! real Envoy: what clients and upstreams actually see.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use veil_integration_tests::{
    event_attr, pseudo_random_bytes, test_id, Harness, Proto, TestRequest, TestResponse,
};

const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111 1111 1111 1111";
const AWS_KEY: &str = "AKIAZ3MSJ5TVQ4GQDKWY";
const EVENT_WAIT: Duration = Duration::from_secs(10);

async fn default_envoy(upstream: Proto) -> anyhow::Result<Harness> {
    common::builder()
        .config_raw("")
        .upstream(upstream)
        .start()
        .await
}

fn stars(n: usize) -> String {
    "*".repeat(n)
}

fn pii_body() -> Value {
    json!({"name": "Jane", "email": EMAIL, "card": CARD})
}

/// The masked form of `pii_body()` that the default bundle must produce.
fn assert_pii_masked(v: &Value, who: &str) {
    assert_eq!(v["name"], "Jane", "{who}: name must be intact: {v}");
    assert_eq!(
        v["email"],
        stars(EMAIL.len()),
        "{who}: email fully masked: {v}"
    );
    assert_eq!(
        v["card"], "**** **** **** 1111",
        "{who}: card keeps last 4 and separators: {v}"
    );
    assert_eq!(v.as_object().map(|o| o.len()), Some(3), "{who}: {v}");
}

/// 403 with the JSON body and header of the block contract; returns the event id.
fn assert_blocked(resp: &TestResponse, rule_part: &str) -> anyhow::Result<String> {
    assert_eq!(resp.status, 403, "expected a block, got: {}", resp.text());
    assert!(
        resp.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "content-type: {:?}",
        resp.header("content-type")
    );
    let body = resp.json()?;
    assert!(
        body["error"].as_str().is_some_and(|s| !s.is_empty()),
        "error: {body}"
    );
    let rule = body["rule"].as_str().unwrap_or_default();
    assert!(
        rule.contains(rule_part),
        "rule {rule:?} should contain {rule_part:?}"
    );
    let event_id = body["event_id"].as_str().unwrap_or_default().to_string();
    assert!(!event_id.is_empty(), "event_id: {body}");
    assert_eq!(
        resp.header("x-veil-event-id"),
        Some(event_id.as_str()),
        "x-veil-event-id header must equal the body's event_id"
    );
    assert!(
        !resp.text().contains(AWS_KEY),
        "the block answer must not echo the secret"
    );
    Ok(event_id)
}

async fn request_json_redaction(proto: Proto) -> anyhow::Result<()> {
    let h = default_envoy(proto).await?;
    let id = test_id("req-redact");
    let resp = h
        .send(proto, TestRequest::post("/users", &id).json(&pii_body()))
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());

    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1, "upstream reached exactly once");
    let upstream_json = rec[0].body_json()?;
    assert_pii_masked(&upstream_json, "upstream");
    assert!(!rec[0].body_text().contains(EMAIL));
    if let Some(cl) = rec[0].header("content-length") {
        assert_eq!(cl, rec[0].body.len().to_string(), "content-length matches");
    }

    // The echo of the masked body comes back to the client.
    assert_pii_masked(&resp.json()?, "client");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_json_body_is_redacted_http1() -> anyhow::Result<()> {
    request_json_redaction(Proto::Http1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_json_body_is_redacted_h2c() -> anyhow::Result<()> {
    request_json_redaction(Proto::Http2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_json_body_is_redacted() -> anyhow::Result<()> {
    let h = default_envoy(Proto::Http1).await?;
    let id = test_id("resp-redact");
    let canned = json!({"id": 7, "contact": EMAIL, "ssn": "123-45-6788", "note": "ok"});
    h.set_upstream_response(&id, 200, Some("application/json"), canned.to_string())
        .await?;
    let resp = h
        .send(Proto::Http1, TestRequest::get("/profile/7", &id))
        .await?;
    assert_eq!(resp.status, 200);
    let v = resp.json()?; // still valid JSON
    assert_eq!(v["id"], 7);
    assert_eq!(v["note"], "ok");
    assert_eq!(v["contact"], stars(EMAIL.len()), "email masked: {v}");
    let ssn = v["ssn"].as_str().unwrap_or_default();
    assert_eq!(ssn.len(), "123-45-6788".len(), "same length: {v}");
    assert!(
        !ssn.bytes().any(|b| b.is_ascii_digit()),
        "no SSN digit may survive: {v}"
    );
    assert!(!resp.text().contains(EMAIL) && !resp.text().contains("6788"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_key_in_request_body_is_blocked_before_upstream() -> anyhow::Result<()> {
    let h = default_envoy(Proto::Http1).await?;
    let id = test_id("block-body");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/keys", &id).json(&json!({"key": AWS_KEY})),
        )
        .await?;
    let event_id = assert_blocked(&resp, "aws")?;
    assert!(
        h.recorded(&id).await?.is_empty(),
        "the upstream must not see a blocked request"
    );
    let events = h.wait_for_event_id(&event_id, EVENT_WAIT).await?;
    assert!(events
        .iter()
        .any(|e| event_attr(e, "veil.rule.id").is_some_and(|r| r.contains("aws"))));
    assert!(!h.log().contains(AWS_KEY), "the raw key must not be logged");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_secret_blocked_and_email_masked() -> anyhow::Result<()> {
    let h = default_envoy(Proto::Http1).await?;

    let id = test_id("block-query");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::get(&format!("/api?token={AWS_KEY}&page=2"), &id),
        )
        .await?;
    assert_blocked(&resp, "aws")?;
    assert!(h.recorded(&id).await?.is_empty(), "upstream not reached");

    let id = test_id("mask-query");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::get(&format!("/search?email={EMAIL}&page=2"), &id),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert_eq!(
        rec[0].path,
        format!("/search?email={}&page=2", stars(EMAIL.len())),
        "upstream must see the email masked and the rest of the query intact"
    );

    // The events of both requests never carry the raw values.
    h.wait_for_events(EVENT_WAIT, |evs| {
        evs.iter()
            .any(|e| event_attr(e, "veil.rule.id") == Some("pii-email"))
    })
    .await?;
    let log = h.log();
    assert!(!log.contains(EMAIL), "raw email found in Envoy's log");
    assert!(!log.contains(AWS_KEY), "raw AWS key found in Envoy's log");
    Ok(())
}

async fn assert_passthrough(
    h: &Harness,
    proto: Proto,
    content_type: &str,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let id = test_id("passthrough");
    let resp = h
        .send(
            proto,
            TestRequest::post("/upload", &id)
                .content_type(content_type)
                .body(body.clone()),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert!(
        rec[0].body == body,
        "{content_type} over {proto:?}: upstream bytes differ ({} vs {} bytes)",
        rec[0].body.len(),
        body.len()
    );
    assert!(
        resp.body.as_ref() == body.as_slice(),
        "{content_type} over {proto:?}: client bytes differ ({} vs {} bytes)",
        resp.body.len(),
        body.len()
    );
    assert_eq!(resp.header("content-type"), Some(content_type));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_json_and_binary_bodies_pass_byte_identical() -> anyhow::Result<()> {
    let h = default_envoy(Proto::Http2).await?;
    // Odd spacing, key order, escapes, non-ASCII and numbers that a
    // parse-and-reserialise would change.
    let clean = "{ \"b\" :1,\n\t\"a\":\"h\u{e9}llo \\u00e9 \\\"q\\\"\", \"n\":[1, 2.50,3e2 ,-0],\
                 \"id\":\"4111\", \"empty\":{} }\n"
        .as_bytes()
        .to_vec();
    let binary = pseudo_random_bytes(64 << 10, 42);
    for proto in [Proto::Http1, Proto::Http2] {
        assert_passthrough(&h, proto, "application/json", clean.clone()).await?;
        assert_passthrough(&h, proto, "application/octet-stream", binary.clone()).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_and_cookie_headers_are_untouched() -> anyhow::Result<()> {
    let h = default_envoy(Proto::Http1).await?;
    let id = test_id("headers");
    let auth = format!("Bearer {AWS_KEY}");
    let cookie = "sid=jane@example.com";
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::get("/me", &id)
                .header("authorization", &auth)
                .header("cookie", cookie),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].header("authorization"), Some(auth.as_str()));
    assert_eq!(rec[0].header("cookie"), Some(cookie));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_finding_is_one_json_event_without_the_raw_value() -> anyhow::Result<()> {
    let h = default_envoy(Proto::Http1).await?;
    let id = test_id("events");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/users", &id).json(&pii_body()),
        )
        .await?;
    assert_eq!(resp.status, 200);

    let count = |evs: &[Value], rule: &str| {
        evs.iter()
            .filter(|e| event_attr(e, "veil.rule.id") == Some(rule))
            .count()
    };
    let events = h
        .wait_for_events(EVENT_WAIT, |evs| {
            count(evs, "pii-email") >= 1 && count(evs, "pii-payment-card") >= 1
        })
        .await?;
    assert_eq!(count(&events, "pii-email"), 1, "{events:#?}");
    assert_eq!(count(&events, "pii-payment-card"), 1, "{events:#?}");
    for e in events
        .iter()
        .filter(|e| event_attr(e, "veil.rule.id").is_some())
    {
        for key in [
            "veil.event_id",
            "veil.category",
            "veil.action",
            "veil.direction",
            "veil.location",
            "veil.match.preview",
        ] {
            assert!(event_attr(e, key).is_some(), "{key} missing in {e}");
        }
        assert!(
            e["timeUnixNano"].is_string() || e["timeUnixNano"].is_u64(),
            "{e}"
        );
        assert!(e["severityText"].is_string(), "{e}");
        assert!(e["body"].is_string(), "{e}");
        assert_eq!(event_attr(e, "veil.direction"), Some("request"), "{e}");
    }

    let log = h.log();
    for raw in [EMAIL, CARD, "4111111111111111", "4111 1111 1111"] {
        assert!(!log.contains(raw), "raw value {raw:?} found in Envoy's log");
    }
    // One line per finding: each event line holds exactly one record.
    let lines_with_rule = log
        .lines()
        .filter(|l| l.contains("\"veil.rule.id\""))
        .count();
    assert_eq!(
        lines_with_rule,
        events
            .iter()
            .filter(|e| event_attr(e, "veil.rule.id").is_some())
            .count()
    );
    Ok(())
}

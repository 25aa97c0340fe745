//! Structure-aware bodies and values through the real Envoy: JSON escapes,
//! field selectors and key-name rules, NDJSON, forms, multipart, cookies,
//! URL paths, and bad input (malformed or 100 000-deep JSON, invalid UTF-8,
//! wrong content-type labels, multipart without a boundary), each with the
//! answer and the event a user would look for.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use veil_integration_tests::{event_attr, prometheus_sample, test_id, Harness, Proto, TestRequest};

const EVENT_WAIT: Duration = Duration::from_secs(15);
const EMAIL: &str = "jane.doe@example.com";

async fn default_envoy() -> anyhow::Result<Harness> {
    common::builder()
        .config_raw("")
        .veil_stats_tags()
        .start()
        .await
}

/// Posts `body` with `content_type`; returns what the upstream received
/// (`None` when it was not reached) and the response status.
async fn post(
    h: &Harness,
    name: &str,
    content_type: &str,
    body: impl Into<bytes::Bytes>,
) -> anyhow::Result<(u16, Option<Vec<u8>>, String)> {
    let id = test_id(name);
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/in", &id)
                .content_type(content_type)
                .body(body),
        )
        .await?;
    let rec = h.recorded(&id).await?;
    Ok((
        resp.status.as_u16(),
        rec.first().map(|r| r.body.clone()),
        id,
    ))
}

fn text(b: &Option<Vec<u8>>) -> String {
    String::from_utf8_lossy(b.as_deref().unwrap_or_default()).into_owned()
}

/// Notices with `reason` whose detail contains `detail`, once they are in
/// the log.
async fn wait_notice(h: &Harness, reason: &str, detail: &str) -> anyhow::Result<Value> {
    let events = h
        .wait_for_events(EVENT_WAIT, |evs| {
            evs.iter().any(|e| {
                event_attr(e, "veil.reason") == Some(reason)
                    && event_attr(e, "veil.detail").is_some_and(|d| d.contains(detail))
            })
        })
        .await?;
    events
        .into_iter()
        .find(|e| {
            event_attr(e, "veil.reason") == Some(reason)
                && event_attr(e, "veil.detail").is_some_and(|d| d.contains(detail))
        })
        .ok_or_else(|| anyhow::anyhow!("no {reason} event with {detail:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_escapes_are_redacted_and_json_stays_valid() -> anyhow::Result<()> {
    let h = default_envoy().await?;
    let body = r#"{"user":{"email":"jane.doe\u0040example.com","bio":"say \"hi\"\n\u00e9"},"dsn":"mysql:\/\/root:Q7v-x9Lk2@db\/app","n":4111111111111111}"#;
    // A response: secrets there are redacted (in requests they block).
    let id = test_id("esc");
    h.set_upstream_response(&id, 200, Some("application/json"), body)
        .await?;
    let resp = h.send(Proto::Http1, TestRequest::get("/esc", &id)).await?;
    assert_eq!(resp.status, 200);
    let seen = resp.body.to_vec();
    let v: Value = serde_json::from_slice(&seen)?;
    let email = v["user"]["email"].as_str().unwrap_or_default();
    assert!(!email.is_empty() && email.chars().all(|c| c == '*'), "{v}");
    assert_eq!(v["user"]["bio"], "say \"hi\"\n\u{e9}", "escapes kept: {v}");
    assert!(!text(&Some(seen)).contains("Q7v-x9Lk2"), "{v}");
    assert!(
        v["n"].is_string(),
        "a bare card number becomes a string: {v}"
    );
    // The event names the field.
    let at = |evs: &[Value], want: &str| {
        evs.iter()
            .any(|e| event_attr(e, "veil.location") == Some(want))
    };
    h.wait_for_events(EVENT_WAIT, |evs| {
        at(evs, "body:$.user.email") && at(evs, "body:$.n")
    })
    .await?;
    assert!(!h.log().contains("jane.doe\\u0040example.com"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_pass_with_parse_error_events() -> anyhow::Result<()> {
    let h = default_envoy().await?;

    // Malformed JSON without PII passes byte for byte.
    let malformed = r#"{"order":"A-1", "items": [1, 2,]}"#;
    let (status, seen, _) = post(&h, "malformed", "application/json", malformed).await?;
    assert_eq!(status, 200);
    assert_eq!(seen.as_deref(), Some(malformed.as_bytes()));
    let ev = wait_notice(&h, "parse_error", "json: expected a value").await?;
    assert_eq!(event_attr(&ev, "veil.direction"), Some("request"));

    // Truncated JSON with PII: scanned as text, PII still masked.
    let truncated = format!(r#"{{"email":"{EMAIL}","rest":["#);
    let (status, seen, _) = post(&h, "truncated", "application/json", truncated).await?;
    assert_eq!(status, 200);
    assert!(text(&seen).starts_with(r#"{"email":"*"#), "{}", text(&seen));
    wait_notice(&h, "parse_error", "truncated document").await?;

    // 100 000 levels: bounded, a parse error, the email inside still masked.
    let deep = format!("{}\"{EMAIL}\"{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, seen, _) = post(&h, "deep", "application/json", deep.clone()).await?;
    assert_eq!(status, 200);
    let seen = seen.unwrap_or_default();
    assert_eq!(seen.len(), deep.len());
    assert!(!String::from_utf8_lossy(&seen).contains(EMAIL));
    wait_notice(&h, "parse_error", "nesting deeper than the limit").await?;

    // Invalid UTF-8 in JSON and in text.
    let mut bad = format!(r#"{{"email":"{EMAIL}","x":""#).into_bytes();
    bad.extend_from_slice(b"\xff\xfe\"}");
    let (status, seen, _) = post(&h, "utf8-json", "application/json", bad.clone()).await?;
    assert_eq!(status, 200);
    let seen = seen.unwrap_or_default();
    assert!(seen.ends_with(b"\xff\xfe\"}"), "other bytes untouched");
    assert!(!String::from_utf8_lossy(&seen).contains(EMAIL));
    wait_notice(&h, "parse_error", "json: invalid UTF-8").await?;
    let (status, _, _) = post(&h, "utf8-text", "text/plain", b"caf\xe9 ok".to_vec()).await?;
    assert_eq!(status, 200);
    wait_notice(&h, "parse_error", "text: invalid UTF-8").await?;

    // Multipart without a boundary parameter: scanned as text.
    let mp =
        format!("--x\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\n{EMAIL}\r\n--x--\r\n");
    let (status, seen, _) = post(&h, "mp-nob", "multipart/form-data", mp).await?;
    assert_eq!(status, 200);
    assert!(!text(&seen).contains(EMAIL));
    wait_notice(&h, "parse_error", "multipart: no boundary").await?;

    // Every parse error is counted.
    let prom = h.prometheus().await?;
    let n = prometheus_sample(&prom, "veil_parse_errors", &[("direction", "request")]);
    assert!(n.is_some_and(|n| n >= 6.0), "veil_parse_errors: {n:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_labels_get_a_defined_answer() -> anyhow::Result<()> {
    let h = default_envoy().await?;
    // JSON labelled text/plain (what CORS "simple requests" send): scanned
    // and masked as JSON, escapes included, with a content_mismatch event.
    let body = r#"{"email":"jane.doe\u0040example.com","n":4111111111111111}"#;
    let (status, seen, _) = post(&h, "json-as-text", "text/plain", body).await?;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&seen.unwrap_or_default())?;
    assert!(v["email"]
        .as_str()
        .is_some_and(|e| e.chars().all(|c| c == '*')));
    assert!(v["n"].is_string(), "still valid JSON: {v}");
    wait_notice(&h, "content_mismatch", "body labelled text/plain is JSON").await?;

    // Text labelled application/json: a parse error, masked as text.
    let (status, seen, _) = post(
        &h,
        "text-as-json",
        "application/json",
        format!("hi {EMAIL}"),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(text(&seen), format!("hi {}", "*".repeat(EMAIL.len())));
    wait_notice(&h, "parse_error", "json: expected a value").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_forms_and_multipart_bodies() -> anyhow::Result<()> {
    let h = default_envoy().await?;

    let ndjson =
        format!("{{\"a\":\"{EMAIL}\"}}\n{{\"b\":\"ok\"}}\n{{\"c\":\"x\\u0040example.org\"}}\n");
    let (status, seen, _) = post(&h, "ndjson", "application/x-ndjson", ndjson).await?;
    assert_eq!(status, 200);
    let seen = text(&seen);
    let lines: Vec<Value> = seen
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 3, "{seen}");
    assert_eq!(lines[1]["b"], "ok");
    assert!(lines[0]["a"]
        .as_str()
        .is_some_and(|s| s.chars().all(|c| c == '*')));
    assert!(lines[2]["c"]
        .as_str()
        .is_some_and(|s| s.chars().all(|c| c == '*')));

    let form = "user=jane&email=jane.doe%40example.com&card=4111+1111+1111+1111&x=a%2Bb";
    let (status, seen, _) = post(&h, "form", "application/x-www-form-urlencoded", form).await?;
    assert_eq!(status, 200);
    assert_eq!(
        text(&seen),
        "user=jane&email=********************&card=****+****+****+1111&x=a%2Bb"
    );

    let mp = format!(
        "--B\r\ncontent-disposition: form-data; name=\"note\"\r\n\r\nmail {EMAIL}\r\n\
         --B\r\ncontent-disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\
         content-type: application/octet-stream\r\n\r\nraw {EMAIL}\r\n--B--\r\n"
    );
    let (status, seen, _) = post(
        &h,
        "multipart",
        "multipart/form-data; boundary=B",
        mp.clone(),
    )
    .await?;
    assert_eq!(status, 200);
    let seen = text(&seen);
    assert!(
        seen.contains(&format!("mail {}\r\n", "*".repeat(EMAIL.len()))),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("raw {EMAIL}")),
        "binary part untouched"
    );
    assert_eq!(seen.len(), mp.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selectors_key_rules_cookies_and_paths() -> anyhow::Result<()> {
    let bundle = json!({
        "version": 1, "metadata": {"name": "fields", "revision": "1"},
        "rules": [
            {"id": "secret-field", "category": "secret.field",
             "detector": {"key": "pass(word)?|secret|token|api[_-]?key|sid"},
             "scope": {"request": {"body": true, "query": true, "headers": ["cookie"]},
                       "response": {"body": true, "headers": ["set-cookie"]}},
             "action": "redact", "mask": "placeholder"},
            {"id": "user-email", "category": "pii.email", "detector": {"builtin": "email"},
             "fields": {"include": ["$.user", "$.items[*].contact"], "exclude": ["$..public_email"]},
             "action": "redact"},
            {"id": "path-email", "category": "pii.email", "detector": {"builtin": "email"},
             "scope": {"request": {"path": true}}, "action": "redact"}
        ]
    });
    let h = common::builder()
        .config_json(json!({ "bundle": bundle }))
        .start()
        .await?;

    let body = json!({
        "user": {"email": "a@example.com", "public_email": "b@example.com", "password": "hunter2"},
        "note": "c@example.com",
        "items": [{"contact": "d@example.com"}],
        "token_type": "Bearer", "tokens": 123,
        "auth": {"api_key": "k-123", "secret": {"n": 42}}
    });
    let id = test_id("fields");
    let resp = h
        .send(Proto::Http1, TestRequest::post("/f", &id).json(&body))
        .await?;
    assert_eq!(resp.status, 200);
    let v = h.recorded(&id).await?[0].body_json()?;
    assert_eq!(v["user"]["email"], "*************");
    assert_eq!(v["user"]["public_email"], "b@example.com", "excluded");
    assert_eq!(v["note"], "c@example.com", "not included");
    assert_eq!(v["items"][0]["contact"], "*************");
    assert_eq!(v["user"]["password"], "[REDACTED:secret.field]");
    assert_eq!(v["auth"]["api_key"], "[REDACTED:secret.field]");
    assert_eq!(v["auth"]["secret"]["n"], "[REDACTED:secret.field]");
    assert_eq!(v["token_type"], "Bearer", "whole-key match only");
    assert_eq!(v["tokens"], 123);

    // Cookies: split into pairs, the session value masked, the rest intact.
    let id = test_id("cookie");
    h.send(
        Proto::Http1,
        TestRequest::get("/c?page=1&api_key=zz9", &id).header("cookie", "theme=dark; sid=abc123"),
    )
    .await?;
    let rec = &h.recorded(&id).await?[0];
    assert_eq!(rec.header("cookie"), Some("theme=dark; sid=REDACTED"));
    assert_eq!(rec.path, "/c?page=1&api_key=REDACTED");

    // URL path segments, percent-decoded.
    let id = test_id("path");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::get("/users/jane.doe%40example.com/orders?x=1", &id),
        )
        .await?;
    assert_eq!(resp.status, 200);
    assert_eq!(
        h.recorded(&id).await?[0].path,
        "/users/********************/orders?x=1"
    );

    let wanted = [
        "header:cookie:$.sid",
        "body:$.user.email",
        "body:$.auth.secret.n",
        "query:$.api_key",
        "path",
    ];
    let at = |evs: &[Value], want: &str| {
        evs.iter()
            .any(|e| event_attr(e, "veil.location") == Some(want))
    };
    let events = h
        .wait_for_events(EVENT_WAIT, |evs| wanted.iter().all(|w| at(evs, w)))
        .await?;
    for want in wanted {
        assert!(at(&events, want), "no event at {want}");
    }
    assert!(!h.log().contains("hunter2") && !h.log().contains("abc123"));
    Ok(())
}

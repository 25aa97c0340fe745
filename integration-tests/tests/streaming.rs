//! Bodies that arrive in pieces: HTTP/2 with trailers, HTTP/1.1 chunked with
//! the sensitive value split across chunks, and bodies over the size limit.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use veil_integration_tests::{event_attr, test_id, Harness, Proto, TestRequest, TestResponse};

const EMAIL: &str = "jane.doe@example.com";
const AWS_KEY: &str = "AKIAZ3MSJ5TVQ4GQDKWY";
const EVENT_WAIT: Duration = Duration::from_secs(10);
/// Pause between chunks so Envoy hands them to the filter separately.
const CHUNK_GAP: Duration = Duration::from_millis(50);

fn assert_blocked(resp: &TestResponse) -> anyhow::Result<()> {
    assert_eq!(resp.status, 403, "expected a block, got: {}", resp.text());
    let body = resp.json()?;
    assert!(
        body["rule"].as_str().is_some_and(|r| r.contains("aws")),
        "{body}"
    );
    let event_id = body["event_id"].as_str().unwrap_or_default();
    assert!(!event_id.is_empty(), "{body}");
    assert_eq!(resp.header("x-veil-event-id"), Some(event_id));
    Ok(())
}

/// Splits `text` in two inside `needle`.
fn split_inside(text: &str, needle: &str) -> [String; 2] {
    let at = text.find(needle).expect("needle in text") + needle.len() / 2;
    [text[..at].to_string(), text[at..].to_string()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_request_with_trailers_is_still_scanned() -> anyhow::Result<()> {
    let h = common::builder()
        .config_raw("")
        .upstream(Proto::Http2)
        .start()
        .await?;

    // A secret in a body that ends with trailers (no END_STREAM on DATA).
    let id = test_id("h2-trailers-block");
    let text = json!({"key": AWS_KEY, "pad": "x"}).to_string();
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/grpcish", &id)
                .content_type("application/json")
                .chunks(split_inside(&text, AWS_KEY), CHUNK_GAP)
                .trailers(&[("x-checksum", "abc")]),
        )
        .await?;
    assert_blocked(&resp)?;
    assert!(
        h.recorded(&id).await?.is_empty(),
        "upstream reached by a request whose body ends with trailers"
    );

    // PII in such a body is masked, and the trailers still reach the upstream.
    let id = test_id("h2-trailers-redact");
    let text = json!({"email": EMAIL, "n": 1}).to_string();
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/grpcish", &id)
                .content_type("application/json")
                .chunks(split_inside(&text, EMAIL), CHUNK_GAP)
                .trailers(&[("x-checksum", "abc")]),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    let v = rec[0].body_json()?;
    assert_eq!(v["email"], "*".repeat(EMAIL.len()), "{v}");
    assert_eq!(v["n"], 1);
    assert_eq!(
        rec[0].trailer("x-checksum"),
        Some("abc"),
        "trailers forwarded"
    );
    assert_eq!(resp.header("x-echo-trailers"), Some("x-checksum=abc"));

    common::trailers_only_request_passes_whole(&h, "h2-trailers-only").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_http1_body_with_value_split_across_chunks() -> anyhow::Result<()> {
    let h = common::builder().config_raw("").start().await?;

    let id = test_id("chunked-email");
    let text = json!({"user": "jane", "email": EMAIL}).to_string();
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/signup", &id)
                .content_type("application/json")
                .chunks(split_inside(&text, EMAIL), CHUNK_GAP),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].header("content-length"), None, "sent chunked");
    let v = rec[0].body_json()?;
    assert_eq!(v["email"], "*".repeat(EMAIL.len()), "{v}");
    assert_eq!(v["user"], "jane");

    let id = test_id("chunked-aws");
    let text = json!({"key": AWS_KEY}).to_string();
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/keys", &id)
                .content_type("application/json")
                .chunks(split_inside(&text, AWS_KEY), CHUNK_GAP),
        )
        .await?;
    assert_blocked(&resp)?;
    assert!(h.recorded(&id).await?.is_empty(), "upstream not reached");
    Ok(())
}

/// About 200 KiB of JSON with an email near the end.
fn big_json() -> String {
    let items: Vec<Value> = (0..2700)
        .map(
            |i| json!({"id": i, "note": "lorem ipsum dolor sit amet, consectetur adipiscing elit"}),
        )
        .collect();
    let v = json!({"items": items, "contact": EMAIL});
    let s = v.to_string();
    assert!(s.len() > 190 << 10 && s.len() < 256 << 10, "{}", s.len());
    s
}

async fn limited(over_limit: &str) -> anyhow::Result<Harness> {
    common::builder()
        .config_json(json!({"max_body_bytes": 65536, "over_limit": over_limit}))
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_limit_rejected_with_413() -> anyhow::Result<()> {
    let h = limited("reject").await?;
    let id = test_id("limit-reject");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/bulk", &id)
                .content_type("application/json")
                .body(big_json()),
        )
        .await?;
    assert_eq!(resp.status, 413, "{}", resp.text());
    let body = resp.json()?;
    assert!(
        body["event_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert!(h.recorded(&id).await?.is_empty(), "upstream not reached");

    // Under the limit still works with the same configuration.
    let id = test_id("limit-small");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/small", &id).json(&json!({"email": EMAIL})),
        )
        .await?;
    assert_eq!(resp.status, 200);
    assert_eq!(
        h.recorded(&id).await?[0].body_json()?["email"],
        "*".repeat(EMAIL.len())
    );
    Ok(())
}

/// `over_limit: pass`: the first `max_body_bytes` are scanned and
/// redacted, the rest passes unscanned, and a `body_limit` event says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_limit_is_scanned_up_to_the_limit_then_passed() -> anyhow::Result<()> {
    const LATE: &str = "late.person@example.org";
    let h = limited("pass").await?;
    let id = test_id("limit-pass");
    let big = big_json();
    // One email at the start (inside the first 64 KiB), one at the end.
    assert!(
        big.find(EMAIL).is_some_and(|p| p < 1024),
        "contact comes first"
    );
    let body = format!("{},\"late\":\"{LATE}\"}}", &big[..big.len() - 1]);
    let expected = body.replacen(EMAIL, &"*".repeat(EMAIL.len()), 1);
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/bulk", &id)
                .content_type("application/json")
                .body(body.clone()),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert!(
        rec[0].body == expected.as_bytes(),
        "the first 64 KiB are redacted, the rest reaches the upstream unchanged"
    );
    assert!(
        resp.body == expected.as_bytes(),
        "the echo is handled the same way"
    );
    let events = h
        .wait_for_events(EVENT_WAIT, |evs| {
            evs.iter()
                .any(|e| event_attr(e, "veil.reason") == Some("body_limit"))
                && evs
                    .iter()
                    .any(|e| event_attr(e, "veil.rule.id") == Some("pii-email"))
        })
        .await?;
    let detail = events
        .iter()
        .filter(|e| event_attr(e, "veil.reason") == Some("body_limit"))
        .find_map(|e| event_attr(e, "veil.detail"))
        .unwrap_or_default();
    assert!(
        detail.contains("first 65536 bytes were scanned"),
        "{detail}"
    );
    Ok(())
}

/// A body over the default limit (960 KiB) must be handled as configured
/// (default `over_limit: pass`: the first 960 KiB are scanned and
/// redacted, the rest is forwarded unscanned, both ways), not answered by
/// Envoy's own 413 or cut off mid-response. Envoy appends each chunk to its
/// buffer before veil sees it, and one socket read can bring hundreds of
/// KiB, so Envoy's connection buffer limit must leave room above
/// `max_body_bytes`: the README asks for 2x, and this test runs with 4 MiB.
/// (`over_limit: stream`, or stream mode, removes the dependency.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_default_limit_is_scanned_up_to_the_limit_over_http1() -> anyhow::Result<()> {
    let h = common::builder()
        .config_raw("")
        .customize(|v| {
            let limit = serde_json::json!(4 << 20);
            v["static_resources"]["listeners"][0]["per_connection_buffer_limit_bytes"] =
                limit.clone();
            v["static_resources"]["clusters"][0]["per_connection_buffer_limit_bytes"] = limit;
        })
        .start()
        .await?;
    let body = format!(
        "{{\"contact\":\"{EMAIL}\",\"blob\":\"{}\"}}",
        "a".repeat(2 << 20)
    );
    let id = test_id("default-limit");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/bulk", &id)
                .content_type("application/json")
                .body(body.clone()),
        )
        .await?;
    assert_eq!(
        resp.status,
        200,
        "a 2 MiB request must pass with the default config, got: {:.200}",
        resp.text()
    );
    // The email sits in the scanned first 960 KiB; the rest is unchanged.
    let expected = body.replace(EMAIL, &"*".repeat(EMAIL.len()));
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert!(rec[0].body == expected.as_bytes(), "upstream bytes differ");
    assert!(
        resp.body == expected.as_bytes(),
        "client bytes differ (echo of 2 MiB)"
    );
    h.wait_for_events(EVENT_WAIT, |evs| {
        let limit_in = |dir: &str| {
            evs.iter().any(|e| {
                event_attr(e, "veil.reason") == Some("body_limit")
                    && event_attr(e, "veil.direction") == Some(dir)
            })
        };
        limit_in("request") && limit_in("response")
    })
    .await?;
    Ok(())
}

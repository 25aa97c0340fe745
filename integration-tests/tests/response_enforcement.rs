//! Enforcing on a response whose headers are already on their way.
//!
//! proxy-wasm cannot hold response headers while it reads the body: a
//! filter that pauses in the response headers callback gets no body
//! callback until it resumes, and resuming sends the headers first (see
//! filter/src/http.rs). So a response is refused either from its headers
//! (a real local reply with a status, e.g. a content-coding the bundle
//! blocks) or, once the body shows it must be blocked, by replacing the
//! body and resetting the stream: the client sees an aborted response and
//! never the sensitive bytes.

mod common;

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use veil_integration_tests::{event_attr, test_id, CannedResponse, Proto, TestRequest};

const AWS_KEY: &str = "AKIAZ3MSJ5TVQ4GQDKWY";
const EVENT_WAIT: Duration = Duration::from_secs(10);

fn bundle() -> serde_json::Value {
    json!({
        "version": 1,
        "metadata": {"name": "response-block", "revision": "1"},
        "body": {"encodings": {"unsupported": "block"}},
        "rules": [
            {"id": "aws-key", "category": "secret.aws_access_key_id",
             "detector": {"builtin": "aws_access_key_id"}, "action": "block",
             "scope": {"request": {"body": true}, "response": {"body": true}}}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_responses_are_reset_or_refused_with_a_status() -> anyhow::Result<()> {
    let h = common::builder()
        .config_json(json!({"bundle": bundle()}))
        .upstream(Proto::Http2)
        .start()
        .await?;
    let leaked = |body: &[u8]| body.windows(AWS_KEY.len()).any(|w| w == AWS_KEY.as_bytes());

    for proto in [Proto::Http1, Proto::Http2] {
        let id = test_id("response-secret");
        let body = json!({"key": AWS_KEY, "pad": "z".repeat(2000)}).to_string();
        h.echo()
            .set_canned(
                &id,
                &CannedResponse {
                    content_type: Some("application/json".into()),
                    body: Bytes::from(body),
                    ..Default::default()
                },
            )
            .await?;
        let mut resp = h
            .send_streaming(proto, TestRequest::get("/secret", &id))
            .await?;
        // The status line was already on its way when the body was read.
        assert_eq!(resp.status, 200);
        let end = resp.read_to_end().await;
        assert!(
            end.is_err(),
            "{proto:?}: a blocked response must end in a reset, got a complete body {:?}",
            String::from_utf8_lossy(&resp.received)
        );
        assert!(
            !leaked(&resp.received),
            "{proto:?}: the secret reached the client"
        );
    }
    let evs = h
        .wait_for_events(EVENT_WAIT, |evs| {
            evs.iter().any(|e| {
                event_attr(e, "veil.rule.id") == Some("aws-key")
                    && event_attr(e, "veil.direction") == Some("response")
                    && event_attr(e, "veil.decision") == Some("block")
            })
        })
        .await?;
    assert!(!evs.is_empty());

    // Decided from the headers (a coding the bundle refuses): a real 502.
    let id = test_id("response-br");
    h.echo()
        .set_canned(
            &id,
            &CannedResponse::encoded(
                "application/json",
                "br",
                Bytes::from_static(b"\x0b\x02\x80{}\x03"),
            ),
        )
        .await?;
    let resp = h.send(Proto::Http1, TestRequest::get("/br", &id)).await?;
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert!(resp.header("x-veil-event-id").is_some());
    assert!(resp.json()?["error"]
        .as_str()
        .is_some_and(|e| e.contains("br")));

    // The same coding on a request: 415, and the upstream is not reached.
    let id = test_id("request-br");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/upload", &id)
                .content_type("application/json")
                .header("content-encoding", "br")
                .body(Bytes::from_static(b"\x0b\x02\x80{}\x03")),
        )
        .await?;
    assert_eq!(resp.status, 415, "{}", resp.text());
    assert!(h.recorded(&id).await?.is_empty());
    Ok(())
}

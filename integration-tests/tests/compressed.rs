//! Compressed bodies through the real Envoy: gzip is decoded (with a cap),
//! scanned, and re-encoded when rewritten; a bomb is refused within the
//! cap; a body veil must decode but cannot (truncated gzip) is an
//! inspection failure that `fail_mode` decides; codings veil does not
//! decode follow the bundle; `accept-encoding` is narrowed so responses
//! stay inspectable.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use veil_integration_tests::{event_attr, test_id, CannedResponse, Proto, TestRequest};

const EMAIL: &str = "jane.doe@example.com";
const EVENT_WAIT: Duration = Duration::from_secs(10);

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(data).expect("writing to a Vec");
    w.finish().expect("writing to a Vec")
}

/// Strict: trailing bytes, a bad CRC or a cut stream are errors.
fn gunzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut d = flate2::read::GzDecoder::new(data);
    d.read_to_end(&mut out)?;
    anyhow::ensure!(d.into_inner().is_empty(), "bytes after the gzip member");
    Ok(out)
}

/// The `veil.detail` of the first event with `reason`.
fn detail_of(evs: &[Value], reason: &str) -> String {
    evs.iter()
        .filter(|e| event_attr(e, "veil.reason") == Some(reason))
        .find_map(|e| event_attr(e, "veil.detail"))
        .unwrap_or_default()
        .to_string()
}

/// 1 GiB of zeros as 1024 concatenated gzip members: about 1 MB.
fn gzip_bomb() -> Vec<u8> {
    gzip(&vec![0u8; 1 << 20]).repeat(1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_json_is_redacted_and_stays_valid_gzip() -> anyhow::Result<()> {
    let h = common::builder().config_raw("").start().await?;

    // Response: the upstream sends gzip JSON with PII.
    let id = test_id("gzip-response");
    let doc =
        json!({"user": {"email": EMAIL, "card": "4111 1111 1111 1111"}, "note": "x".repeat(5000)});
    h.echo()
        .set_canned(
            &id,
            &CannedResponse::encoded(
                "application/json",
                "gzip",
                Bytes::from(gzip(doc.to_string().as_bytes())),
            ),
        )
        .await?;
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::get("/profile", &id).header("accept-encoding", "gzip"),
        )
        .await?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    let plain = gunzip(&resp.body)?;
    let v: Value = serde_json::from_slice(&plain)?;
    assert_eq!(v["user"]["email"], "*".repeat(EMAIL.len()));
    assert_eq!(v["user"]["card"], "**** **** **** 1111");
    assert_eq!(v["note"], doc["note"]);

    // A clean gzip response passes byte for byte.
    let id = test_id("gzip-clean");
    let clean = gzip(
        json!({"ok": true, "items": [1, 2, 3]})
            .to_string()
            .as_bytes(),
    );
    h.echo()
        .set_canned(
            &id,
            &CannedResponse::encoded("application/json", "gzip", Bytes::from(clean.clone())),
        )
        .await?;
    let resp = h
        .send(Proto::Http2, TestRequest::get("/clean", &id))
        .await?;
    assert!(resp.body == clean, "clean gzip must pass unchanged");

    // Request: a gzip body with PII reaches the upstream masked, still gzip.
    let id = test_id("gzip-request");
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/signup", &id)
                .content_type("application/json")
                .header("content-encoding", "gzip")
                .body(gzip(json!({"email": EMAIL}).to_string().as_bytes())),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = h.recorded(&id).await?;
    let up: Value = serde_json::from_slice(&gunzip(&rec[0].body)?)?;
    assert_eq!(up["email"], "*".repeat(EMAIL.len()));

    // A gzip event stream (stream mode in the default bundle): decoded,
    // redacted event by event, re-encoded as valid gzip.
    let id = test_id("gzip-sse");
    let events = format!("data: {{\"t\":\"mail {EMAIL}\"}}\n\ndata: {{\"t\":\"ok\"}}\n\n");
    let gz = gzip(events.as_bytes());
    h.echo()
        .set_canned(
            &id,
            &CannedResponse {
                content_type: Some("text/event-stream".into()),
                content_encoding: Some("gzip".into()),
                split_at: vec![gz.len() / 3, 2 * gz.len() / 3],
                body: Bytes::from(gz),
                chunk_delay: Duration::from_millis(20),
                ..Default::default()
            },
        )
        .await?;
    let resp = h.send(Proto::Http1, TestRequest::get("/sse", &id)).await?;
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert_eq!(
        String::from_utf8(gunzip(&resp.body)?)?,
        events.replace(EMAIL, &"*".repeat(EMAIL.len()))
    );

    // accept-encoding is narrowed to what veil decodes.
    let id = test_id("accept-encoding");
    h.send(
        Proto::Http1,
        TestRequest::get("/ae", &id).header("accept-encoding", "br, gzip;q=0.8, zstd"),
    )
    .await?;
    let rec = h.recorded(&id).await?;
    assert_eq!(rec[0].header("accept-encoding"), Some("gzip;q=0.8"));

    // A coding veil does not decode passes unscanned with an event (the
    // default bundle's `unsupported: pass`).
    let id = test_id("brotli");
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
    assert_eq!(resp.status, 200);
    assert_eq!(&resp.body[..], b"\x0b\x02\x80{}\x03");
    h.wait_for_events(EVENT_WAIT, |evs| {
        evs.iter()
            .any(|e| event_attr(e, "veil.reason") == Some("unsupported_encoding"))
    })
    .await?;
    Ok(())
}

/// A bomb is refused once the decoded size passes the cap (8 MiB in the
/// default bundle), with an event; the upstream never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bomb_is_refused_within_the_cap() -> anyhow::Result<()> {
    // Room above max_body_bytes for Envoy's own buffer (README).
    let h = common::builder()
        .config_raw("")
        .customize(|v| {
            let limit = json!(4 << 20);
            v["static_resources"]["listeners"][0]["per_connection_buffer_limit_bytes"] =
                limit.clone();
            v["static_resources"]["clusters"][0]["per_connection_buffer_limit_bytes"] = limit;
        })
        .start()
        .await?;
    let id = test_id("bomb-request");
    let bomb = gzip_bomb();
    assert!(bomb.len() < 2 << 20);
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/upload", &id)
                .content_type("application/json")
                .header("content-encoding", "gzip")
                .body(bomb.clone()),
        )
        .await?;
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert!(resp.json()?["event_id"].as_str().is_some());
    assert!(h.recorded(&id).await?.is_empty(), "upstream reached");
    let evs = h
        .wait_for_events(EVENT_WAIT, |evs| {
            evs.iter()
                .any(|e| event_attr(e, "veil.reason") == Some("decode_error"))
        })
        .await?;
    let detail = detail_of(&evs, "decode_error");
    assert!(detail.contains("8388608"), "{detail}");

    // The same bomb as a response: its headers are out, so the stream is
    // reset and the client never gets a complete body.
    let id = test_id("bomb-response");
    h.echo()
        .set_canned(
            &id,
            &CannedResponse::encoded("application/json", "gzip", Bytes::from(bomb)),
        )
        .await?;
    match h.send(Proto::Http2, TestRequest::get("/bomb", &id)).await {
        Err(_) => {}
        Ok(resp) => panic!(
            "a bomb response must be reset, got {} with {} bytes",
            resp.status,
            resp.body.len()
        ),
    }
    Ok(())
}

/// A truncated gzip body is an inspection failure: `fail_mode: closed`
/// refuses it (400 for a request), `open` passes it unscanned; both log a
/// `decode_error` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_gzip_follows_fail_mode() -> anyhow::Result<()> {
    let full = gzip(
        json!({"email": EMAIL, "pad": "y".repeat(3000)})
            .to_string()
            .as_bytes(),
    );
    let truncated = full[..full.len() - 20].to_vec();
    for (mode, expect) in [("closed", 400), ("open", 200)] {
        let h = common::builder()
            .config_json(json!({"fail_mode": mode}))
            .start()
            .await?;
        let id = test_id(&format!("truncated-{mode}"));
        let resp = h
            .send(
                Proto::Http1,
                TestRequest::post("/upload", &id)
                    .content_type("application/json")
                    .header("content-encoding", "gzip")
                    .body(truncated.clone()),
            )
            .await?;
        assert_eq!(resp.status, expect, "fail_mode {mode}: {}", resp.text());
        let rec = h.recorded(&id).await?;
        if mode == "open" {
            assert_eq!(rec.len(), 1);
            assert!(rec[0].body == truncated, "passed unscanned, unchanged");
        } else {
            assert!(rec.is_empty(), "fail_mode closed reached the upstream");
        }
        let evs = h
            .wait_for_events(EVENT_WAIT, |evs| {
                evs.iter()
                    .any(|e| event_attr(e, "veil.reason") == Some("decode_error"))
            })
            .await?;
        let detail = detail_of(&evs, "decode_error");
        assert!(detail.contains("truncated"), "{detail}");
        assert!(detail.contains(&format!("fail_mode {mode}")), "{detail}");
    }
    Ok(())
}

//! Stream mode through the real Envoy: bodies that are redacted chunk by
//! chunk through a bounded window instead of being buffered whole.
//! Server-sent events arrive redacted one event at a time, values split
//! across chunks (and across events: LLM answers streamed token by token)
//! are still masked, 10 MB bodies pass Envoy's 1 MiB buffer
//! limit, one byte per chunk works, and a streamed body ended by HTTP/2
//! trailers is refused rather than forwarded with its tail missing.

mod common;

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use veil_integration_tests::{event_attr, test_id, CannedResponse, Harness, Proto, TestRequest};

const EMAIL: &str = "jane.doe@example.com";
const AWS_KEY: &str = "AKIAZ3MSJ5TVQ4GQDKWY";
const EVENT_WAIT: Duration = Duration::from_secs(10);
const CHUNK_GAP: Duration = Duration::from_millis(50);

fn masked(s: &str) -> String {
    "*".repeat(s.len())
}

/// The default bundle with every text body streamed in both directions.
fn streaming_bundle() -> anyhow::Result<Value> {
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(
        veil_integration_tests::workspace_root().join("policy-schema/bundles/default.json"),
    )?)?;
    bundle["body"]["modes"] = json!([
        {"content_types": ["application/json", "text/*", "application/x-ndjson"], "mode": "stream"}
    ]);
    Ok(bundle)
}

async fn streaming_harness() -> anyhow::Result<Harness> {
    common::builder()
        .config_json(json!({"bundle": streaming_bundle()?}))
        .upstream(Proto::Http2)
        .start()
        .await
}

/// The default bundle streams `text/event-stream` responses: each event
/// reaches the client redacted as soon as it is complete, while the
/// upstream still holds the last one back (it sends it only after the
/// client has the first), and an email split across two frames inside an
/// event is masked too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_arrive_redacted_one_by_one() -> anyhow::Result<()> {
    let h = common::builder().config_raw("").start().await?;
    let id = test_id("sse");
    let events = [
        format!("event: delta\ndata: {{\"text\":\"contact {EMAIL} for access\"}}\n\n"),
        "data: {\"text\":\"card 4111 1111 1111 1111 on file\"}\n\n".to_string(),
        "data: {\"text\":\"or bob@example.org\"}\n\ndata: [DONE]\n\n".to_string(),
    ];
    let body = events.concat();
    // Frames: the first event cut inside the email, the second whole, the
    // third held by the upstream until released.
    let in_email = events[0].find(EMAIL).unwrap_or(0) + 6;
    let first_end = events[0].len();
    let second_end = first_end + events[1].len();
    h.echo()
        .set_canned(
            &id,
            &CannedResponse {
                content_type: Some("text/event-stream".into()),
                body: Bytes::from(body.clone()),
                split_at: vec![in_email, first_end, second_end],
                chunk_delay: CHUNK_GAP,
                gate_last: true,
                ..Default::default()
            },
        )
        .await?;
    let mut resp = h
        .send_streaming(Proto::Http1, TestRequest::get("/v1/chat", &id))
        .await?;
    assert_eq!(resp.status, 200);
    assert!(
        resp.read_until(b"for access\"}\n\n").await?,
        "the first event never arrived"
    );
    let first = String::from_utf8_lossy(&resp.received).into_owned();
    assert_eq!(first, events[0].replace(EMAIL, &masked(EMAIL)));
    // Only now does the upstream send its last event.
    h.echo().release(&id).await?;
    let all = String::from_utf8(resp.read_to_end().await?)?;
    assert_eq!(
        all,
        body.replace(EMAIL, &masked(EMAIL))
            .replace("4111 1111 1111 1111", "**** **** **** 1111")
            .replace("bob@example.org", &masked("bob@example.org"))
    );
    let evs = h
        .wait_for_events(EVENT_WAIT, |evs| {
            evs.iter()
                .filter(|e| event_attr(e, "veil.body.mode") == Some("stream"))
                .count()
                >= 3
        })
        .await?;
    let email = evs
        .iter()
        .find(|e| event_attr(e, "veil.rule.id") == Some("pii-email"))
        .expect("an email finding");
    assert_eq!(
        email["attributes"]["veil.match.start"].as_u64(),
        body.find(EMAIL).map(|p| p as u64),
        "stream offsets in events"
    );
    Ok(())
}

/// One OpenAI chat-completions streaming event carrying `text`.
fn openai_event(text: &str) -> String {
    let content = Value::from(text).to_string();
    format!(
        "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{content}}},\"finish_reason\":null}}]}}\n\n"
    )
}

/// An LLM answer streamed token by token: an email and an AWS key each
/// split across three events arrive masked inside each event (JSON still
/// valid), the client gets the early events while the upstream still
/// holds its last one back, and a clean stream passes byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_values_split_across_events_are_masked_in_each_event() -> anyhow::Result<()> {
    let h = common::builder().config_raw("").start().await?;
    // Enough text after the values for them to be released before the
    // end: the default bundle holds an event until 1088 bytes of joined
    // text follow it.
    let filler: Vec<String> = (0..30)
        .map(|i| {
            openai_event(&format!(
                " and this is sentence number {i:02} of the answer."
            ))
        })
        .collect();
    let tokens = [
        ("Contact jane", "Contact ****"),
        (".doe@exa", "********"),
        ("mple.com, key AKIAZ3", "********, key ******"),
        ("MSJ5TVQ4", "********"),
        ("GQDKWY now.", "****** now."),
    ];
    let last = format!("{}data: [DONE]\n\n", openai_event(" Bye."));
    let mut events: Vec<String> = tokens.iter().map(|(t, _)| openai_event(t)).collect();
    events.extend(filler.iter().cloned());
    events.push(last.clone());
    let mut expected: Vec<String> = tokens.iter().map(|(_, m)| openai_event(m)).collect();
    expected.extend(filler.iter().cloned());
    expected.push(last.clone());

    // One frame per event, the last held by the upstream until released.
    let frames = |events: &[String]| {
        let mut at = 0;
        events[..events.len() - 1]
            .iter()
            .map(|e| {
                at += e.len();
                at
            })
            .collect::<Vec<usize>>()
    };
    let canned = |events: &[String]| CannedResponse {
        content_type: Some("text/event-stream".into()),
        body: Bytes::from(events.concat()),
        split_at: frames(events),
        chunk_delay: Duration::from_millis(5),
        gate_last: true,
        ..Default::default()
    };

    let id = test_id("sse-joined");
    h.echo().set_canned(&id, &canned(&events)).await?;
    let mut resp = h
        .send_streaming(Proto::Http2, TestRequest::get("/v1/chat/completions", &id))
        .await?;
    assert_eq!(resp.status, 200);
    // The fifth event (the key's last piece) arrives masked before the
    // upstream sends its last event.
    assert!(
        resp.read_until(expected[4].as_bytes()).await?,
        "the early events never arrived: {}",
        String::from_utf8_lossy(&resp.received)
    );
    let early = String::from_utf8_lossy(&resp.received).into_owned();
    assert!(early.starts_with(&expected[..5].concat()), "{early}");
    assert!(!early.contains(" Bye."), "the last event is still upstream");
    h.echo().release(&id).await?;
    let all = String::from_utf8(resp.read_to_end().await?)?;
    assert_eq!(all, expected.concat());
    for event in all.split("\n\n").filter(|e| e.starts_with("data: {")) {
        let v: Value = serde_json::from_str(&event["data: ".len()..])?;
        assert!(v["choices"][0]["delta"]["content"].is_string(), "{event}");
    }
    let evs = h
        .wait_for_events(EVENT_WAIT, |evs| {
            evs.iter()
                .filter(|e| event_attr(e, "veil.location") == Some("body:sse_text"))
                .count()
                >= 2
        })
        .await?;
    let joined: Vec<&Value> = evs
        .iter()
        .filter(|e| event_attr(e, "veil.location") == Some("body:sse_text"))
        .collect();
    let rules: Vec<&str> = joined
        .iter()
        .filter_map(|e| event_attr(e, "veil.rule.id"))
        .collect();
    assert_eq!(rules.len(), 2, "each value reported once: {rules:?}");
    assert!(rules.contains(&"pii-email"));
    assert!(rules.contains(&"secret-aws-access-key-id"));
    let body = events.concat();
    let email = joined
        .iter()
        .find(|e| event_attr(e, "veil.rule.id") == Some("pii-email"))
        .expect("email finding");
    assert_eq!(
        email["attributes"]["veil.match.start"].as_u64(),
        body.find("jane").map(|p| p as u64),
        "the finding starts at the first piece's stream offset"
    );

    // A clean stream: every byte as the upstream sent it.
    let id = test_id("sse-clean");
    let mut clean = filler.clone();
    clean.push(last);
    h.echo().set_canned(&id, &canned(&clean)).await?;
    let mut resp = h
        .send_streaming(Proto::Http1, TestRequest::get("/v1/chat/completions", &id))
        .await?;
    assert!(resp.read_until(filler[0].as_bytes()).await?);
    h.echo().release(&id).await?;
    assert_eq!(resp.read_to_end().await?, clean.concat().as_bytes());
    Ok(())
}

/// Stream mode in both directions: a value split across two request
/// chunks is masked before the upstream sees it, a secret split across
/// chunks blocks, an HTTP/2 body ended by unannounced trailers is refused
/// with an event (its held tail cannot be forwarded), and one that
/// announces them is buffered, scanned, and passed with its trailers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_bodies_split_values_and_trailers() -> anyhow::Result<()> {
    let h = streaming_harness().await?;

    let id = test_id("stream-split-email");
    let text = json!({"user": "jane", "email": EMAIL}).to_string();
    let at = text.find(EMAIL).unwrap_or(0) + 7;
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/signup", &id)
                .content_type("application/json")
                .chunks([text[..at].to_string(), text[at..].to_string()], CHUNK_GAP),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].body_json()?["email"], masked(EMAIL));
    assert_eq!(resp.json()?["email"], masked(EMAIL), "echo streamed back");

    let id = test_id("stream-split-aws");
    let text = json!({"key": AWS_KEY}).to_string();
    let at = text.find(AWS_KEY).unwrap_or(0) + 9;
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/keys", &id)
                .content_type("application/json")
                .chunks([text[..at].to_string(), text[at..].to_string()], CHUNK_GAP),
        )
        .await?;
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(resp.json()?["rule"]
        .as_str()
        .is_some_and(|r| r.contains("aws")));
    assert!(
        h.recorded(&id).await?.is_empty(),
        "upstream got a whole request"
    );

    // HTTP/2 with trailers: the body never sees end_of_stream, so the
    // held tail is finished in the trailers callback.
    let id = test_id("stream-trailers");
    let text = json!({"email": EMAIL, "n": 1}).to_string();
    let at = text.find(EMAIL).unwrap_or(0) + 4;
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/upload", &id)
                .content_type("application/json")
                .chunks([text[..at].to_string(), text[at..].to_string()], CHUNK_GAP)
                .trailers(&[("x-checksum", "abc")]),
        )
        .await?;
    // Envoy gives a filter no body buffer in the trailers callback once
    // it has continued the body's chunks, so the held tail cannot be
    // forwarded: the message is refused (never passed with a hole in it),
    // and the event says why. Buffer mode, the default, scans such bodies
    // whole in the trailers callback (streaming.rs).
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert!(resp.header("x-veil-event-id").is_some());
    let rec = h.recorded(&id).await?;
    assert!(
        rec.is_empty(),
        "the upstream got a whole request: {:?}",
        rec.first().map(|r| r.body_text())
    );
    h.wait_for_events(EVENT_WAIT, |evs| {
        evs.iter()
            .any(|e| event_attr(e, "veil.reason") == Some("stream_tail"))
    })
    .await?;

    // The same body announcing its trailers (`trailer: x-checksum`): it is
    // buffered instead of streamed, so the scan and the masks are done in
    // the trailers callback, where Envoy still holds the paused body, and
    // the trailers reach the upstream.
    for (announce, value) in [("trailer", "x-checksum"), ("te", "trailers")] {
        let id = test_id("stream-trailers-announced");
        let resp = h
            .send(
                Proto::Http2,
                TestRequest::post("/upload", &id)
                    .content_type("application/json")
                    .header(announce, value)
                    .chunks([text[..at].to_string(), text[at..].to_string()], CHUNK_GAP)
                    .trailers(&[("x-checksum", "abc")]),
            )
            .await?;
        assert_eq!(resp.status, 200, "{announce}: {}", resp.text());
        let rec = h.recorded(&id).await?;
        assert_eq!(rec.len(), 1, "{announce}");
        assert_eq!(rec[0].body_json()?["email"], masked(EMAIL), "{announce}");
        assert_eq!(rec[0].trailer("x-checksum"), Some("abc"), "{announce}");
    }

    common::trailers_only_request_passes_whole(&h, "stream-trailers-only").await
}

/// 10 MB through stream mode in both directions (Envoy's own 1 MiB
/// per-connection buffer limit never applies: nothing is buffered whole),
/// with PII spread through it, and a response sent one byte per frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_and_one_byte_per_chunk() -> anyhow::Result<()> {
    let h = streaming_harness().await?;
    let mut body = String::with_capacity(10 << 20);
    let mut n = 0;
    while body.len() < 10_000_000 {
        body.push_str(&format!(
            "{{\"i\":{n},\"note\":\"lorem ipsum dolor sit amet consectetur\",\"mail\":\"user{n}@example.com\"}}\n"
        ));
        n += 1;
    }
    let chunks: Vec<Bytes> = Bytes::from(body.clone())
        .chunks(256 * 1024)
        .map(Bytes::copy_from_slice)
        .collect();
    let id = test_id("stream-10mb");
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/bulk", &id)
                .content_type("application/x-ndjson")
                .chunks(chunks, Duration::ZERO),
        )
        .await?;
    assert_eq!(resp.status, 200, "{:.300}", resp.text());
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    let up = rec[0].body_text();
    assert_eq!(up.len(), body.len(), "masks keep the length");
    assert!(
        !up.contains("@example.com"),
        "an email reached the upstream"
    );
    assert_eq!(up.lines().count(), n);
    for line in up.lines().step_by(997) {
        let v: Value = serde_json::from_str(line)?;
        assert!(v["mail"]
            .as_str()
            .is_some_and(|m| m.bytes().all(|b| b == b'*')));
    }
    assert_eq!(resp.body.len(), body.len(), "echo streamed back whole");
    assert!(!String::from_utf8_lossy(&resp.body).contains("@example.com"));

    // One byte per frame from the upstream.
    let id = test_id("stream-bytewise");
    let text = format!("{{\"email\":\"{EMAIL}\",\"card\":\"4111111111111111\"}}");
    h.echo()
        .set_canned(
            &id,
            &CannedResponse {
                content_type: Some("application/json".into()),
                body: Bytes::from(text.clone()),
                chunk_size: Some(1),
                chunk_delay: Duration::from_millis(2),
                ..Default::default()
            },
        )
        .await?;
    let resp = h
        .send(Proto::Http1, TestRequest::get("/bytes", &id))
        .await?;
    assert_eq!(resp.status, 200);
    let v = resp.json()?;
    assert_eq!(v["email"], masked(EMAIL));
    assert_eq!(v["card"], "************1111");
    Ok(())
}

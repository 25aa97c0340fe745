//! The shipped `envoy-config/*.yaml` files load in the real Envoy with the
//! built module and do what their comments say. Their fixed ports are
//! rewritten to free ones (and the relative wasm path to the built module),
//! nothing else.

mod common;

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;
use veil_integration_tests::{
    event_attr, test_id, workspace_root, BootstrapInputs, Proto, TestRequest,
};

const EMAIL: &str = "jane.doe@example.com";

fn replace_once(text: &str, from: &str, to: &str, file: &str) -> anyhow::Result<String> {
    match text.matches(from).count() {
        1 => Ok(text.replacen(from, to, 1)),
        n => bail!("{file}: expected `{from}` exactly once, found {n} times"),
    }
}

fn shipped(file: &'static str) -> impl FnOnce(&BootstrapInputs) -> anyhow::Result<String> {
    move |inputs| {
        let path = workspace_root().join("envoy-config").join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let wasm = inputs
            .wasm
            .as_ref()
            .context("these configs need the wasm module")?;
        let text = replace_once(&text, "port_value: 10000", "port_value: 0", file)?;
        let text = replace_once(&text, "port_value: 9901", "port_value: 0", file)?;
        let text = replace_once(
            &text,
            "port_value: 18080",
            &format!("port_value: {}", inputs.upstream.port()),
            file,
        )?;
        replace_once(
            &text,
            "filename: target/wasm32-wasip1/release/veil_filter.wasm",
            &format!("filename: {}", wasm.display()),
            file,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_yaml_redacts_and_blocks_with_the_default_bundle() -> anyhow::Result<()> {
    let h = common::builder()
        .bootstrap_yaml(shipped("demo.yaml"))
        .start()
        .await?;
    let id = test_id("demo");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/users", &id)
                .json(&json!({"email": EMAIL, "card": "4111 1111 1111 1111"})),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = h.recorded(&id).await?[0].body_json()?;
    assert_eq!(v["email"], "*".repeat(EMAIL.len()));
    assert_eq!(v["card"], "**** **** **** 1111");

    let id = test_id("demo-block");
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/keys", &id).json(&json!({"key": "AKIAZ3MSJ5TVQ4GQDKWY"})),
        )
        .await?;
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(h.recorded(&id).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_bundle_yaml_loads_its_inline_bundle_and_options() -> anyhow::Result<()> {
    let h = common::builder()
        .bootstrap_yaml(shipped("custom-bundle.yaml"))
        .start()
        .await?;

    // Inline rules apply: email masked; the monitor-mode rule only reports.
    let id = test_id("custom");
    let body = json!({"email": EMAIL, "note": "see ticket ACME-123456"});
    let resp = h
        .send(Proto::Http2, TestRequest::post("/pay", &id).json(&body))
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = h.recorded(&id).await?[0].body_json()?;
    assert_eq!(v["email"], "*".repeat(EMAIL.len()));
    assert_eq!(
        v["note"], "see ticket ACME-123456",
        "monitor mode changes nothing"
    );
    h.wait_for_events(Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| event_attr(e, "veil.rule.id") == Some("acme-ticket-id"))
    })
    .await?;
    let events = h.events();
    assert!(
        events
            .iter()
            .any(|e| event_attr(e, "veil.bundle.name") == Some("acme-payments")),
        "events name the inline bundle: {events:#?}"
    );

    // over_limit "reject" with max_body_bytes 262144.
    let id = test_id("custom-limit");
    let big = format!("{{\"blob\":\"{}\"}}", "a".repeat(300 << 10));
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/pay", &id)
                .content_type("application/json")
                .body(big),
        )
        .await?;
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert!(h.recorded(&id).await?.is_empty());
    Ok(())
}

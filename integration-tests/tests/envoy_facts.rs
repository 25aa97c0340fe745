//! Facts about Envoy's proxy-wasm host that veil's design rests on, checked
//! against the pinned Envoy with a probe module
//! (`integration-tests/probes/pause-headers`, built here), not veil:
//!
//! A filter that pauses in the response headers callback gets no body
//! callback while paused (Envoy turns `StopIteration` into
//! `StopAllIterationAndWatermark`), and resuming it sends the headers
//! before the body reaches the filter, so a local reply from the body
//! callback comes too late and Envoy resets the stream instead. This is
//! why veil cannot hold response headers until the body is scanned, and
//! resets a response blocked by its body.

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use veil_integration_tests::{target_dir, test_id, workspace_root, Proto, TestRequest};

fn build_probe() -> anyhow::Result<PathBuf> {
    let manifest = workspace_root().join("integration-tests/probes/pause-headers/Cargo.toml");
    let target = target_dir().join("probes");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()?;
    anyhow::ensure!(status.success(), "building the probe module failed");
    Ok(target.join("wasm32-wasip1/release/pause_headers_probe.wasm"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_response_headers_pause_the_body_callbacks_too() -> anyhow::Result<()> {
    let probe = build_probe()?;
    let filename = json!(probe.to_string_lossy());
    let h = common::builder()
        .config_raw("")
        .customize(move |v| {
            let hcm = &mut v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"];
            hcm["http_filters"][0]["typed_config"]["config"]["vm_config"]["code"]["local"]
                ["filename"] = filename;
        })
        .start()
        .await?;
    let id = test_id("probe");
    h.set_upstream_response(&id, 200, Some("text/plain"), "upstream body\n")
        .await?;
    let mut resp = h
        .send_streaming(Proto::Http1, TestRequest::get("/", &id))
        .await?;
    // The headers left when the timer resumed the stream: the client has
    // the upstream's 200, not the probe's 451, and the probe's local reply
    // from the body callback became a reset of the half-sent response.
    assert_eq!(resp.status, 200);
    assert!(
        resp.read_to_end().await.is_err(),
        "a local reply after the headers went out must reset the response"
    );
    let log = h.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("probe: ")).collect();
    let at = |what: &str| lines.iter().position(|l| l.contains(what));
    let paused = at("response headers paused").expect("headers callback ran");
    let resumed = at("timer resumes the response").expect("the timer resumed it");
    let body = at("response body callback").expect("a body callback after resuming");
    assert!(
        paused < resumed && resumed < body,
        "no body callback while the headers were paused: {lines:#?}"
    );
    Ok(())
}

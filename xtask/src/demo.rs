//! `cargo xtask demo`: veil in a real Envoy in front of a real upstream,
//! shown to a newcomer in four exchanges: a request with an email and a
//! card number is redacted before the service sees it; a request carrying
//! an AWS key is blocked and its body never reaches it; a response with an SSN and
//! an email is redacted before the client sees it; and the finding events
//! Envoy logged carry only masked previews.
//!
//! The demo checks what it shows: if veil does not redact, block or log as
//! described it fails with a non-zero exit, so it doubles as a smoke test.

use crate::envoy::{self, Echo, Envoy, EnvoyOptions};
use crate::http;
use crate::util::{self, port_free, step};
use crate::{setup, wasm};
use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const DEMO_PORTS: [u16; 3] = [18080, 10000, 9901];

const ORDER: &str = r#"{
  "customer": {"name": "Jane Doe", "email": "jane.doe@example.com"},
  "payment": {"card": "4111 1111 1111 1111", "amount": 42.50, "currency": "EUR"},
  "note": "leave the parcel at the door"
}"#;

const DEPLOY: &str = r#"{
  "pipeline": "nightly",
  "aws_access_key_id": "AKIAZ3MSJ5TVQ4GQDKWY",
  "region": "eu-west-1"
}"#;

const PATIENT: &str = r#"{
  "patient": {"name": "John Smith", "ssn": "536-22-1874", "email": "john.smith@example.org"},
  "visit": "2026-11-02T09:30:00Z",
  "status": "confirmed"
}"#;

/// Raw values that must never appear in Envoy's log.
const RAW_VALUES: [&str; 5] = [
    "jane.doe@example.com",
    "4111 1111 1111 1111",
    "AKIAZ3MSJ5TVQ4GQDKWY",
    "536-22-1874",
    "john.smith@example.org",
];

pub fn demo() -> Result<()> {
    let tools = setup::setup(false)?;
    let wasm = wasm::build_filter()?;
    let echo_bin = wasm::build_echo(false)?;
    let dir = util::fresh_dir("xtask-demo")?;

    step("start veil-echo (the upstream service) and Envoy with veil");
    let (echo, envoy) = start(&tools.envoy, &wasm, &echo_bin, &dir)?;
    println!(
        "Envoy listens on {} (admin {}), upstream veil-echo on {}; ready in {} ms",
        envoy.listener,
        envoy.admin,
        echo.addr,
        envoy.ready_after.as_millis()
    );
    println!("logs: {}", dir.display());

    let result = exchanges(&echo, &envoy);
    step("stop Envoy and veil-echo");
    drop(envoy);
    drop(echo);
    result?;
    println!("\nDemo finished: veil redacted PII, blocked a secret, and logged masked previews.");
    Ok(())
}

/// Envoy with envoy-config/demo.yaml on its fixed ports when they are free
/// (what the README shows); otherwise an equivalent generated config on
/// free ports.
fn start(envoy_bin: &Path, wasm: &Path, echo_bin: &Path, dir: &Path) -> Result<(Echo, Envoy)> {
    let root = util::root();
    let demo_yaml = root.join("envoy-config/demo.yaml");
    let default_wasm = root.join("target/wasm32-wasip1/release/veil_filter.wasm");
    let busy: Vec<u16> = DEMO_PORTS.into_iter().filter(|p| !port_free(*p)).collect();
    let use_demo_yaml = if !demo_yaml.exists() {
        println!(
            "note: {} not found; using a generated config",
            demo_yaml.display()
        );
        false
    } else if wasm != default_wasm {
        println!("note: CARGO_TARGET_DIR moves the module away from the path in demo.yaml; using a generated config");
        false
    } else if !busy.is_empty() {
        println!("note: ports {busy:?} are busy; using a generated config on free ports");
        false
    } else {
        true
    };
    let echo_stderr = dir.join("veil-echo.stderr");
    let (echo, config) = if use_demo_yaml {
        let echo = Echo::start(echo_bin, "127.0.0.1:18080", &echo_stderr, None)?;
        (echo, demo_yaml)
    } else {
        let echo = Echo::start(echo_bin, "127.0.0.1:0", &echo_stderr, None)?;
        let config = dir.join("envoy.json");
        let doc = envoy::bootstrap(echo.addr, Some(wasm), "{}");
        std::fs::write(&config, serde_json::to_string_pretty(&doc)?)?;
        (echo, config)
    };
    let envoy = Envoy::start(&EnvoyOptions {
        bin: envoy_bin,
        config: &config,
        cwd: &root,
        dir,
        name: "envoy",
        cpus: None,
    })?;
    Ok((echo, envoy))
}

fn exchanges(echo: &Echo, envoy: &Envoy) -> Result<()> {
    let json = ("content-type", "application/json");

    // 1. Request redaction.
    step("1. A request with personal data: redacted before the service sees it");
    let resp = http::request(
        envoy.listener,
        "POST",
        "/orders",
        &[json, ("x-test-id", "demo-request")],
        ORDER.as_bytes(),
    )?;
    let received = recorded_bodies(echo.addr, "demo-request")?;
    println!("client sent (POST /orders):");
    print_block(ORDER, None);
    let Some(upstream) = received.first() else {
        bail!(
            "the upstream received nothing (status {}), expected the redacted order",
            resp.status
        );
    };
    println!("upstream received (^^^ = redacted):");
    print_block(upstream, Some(ORDER));
    println!(
        "client got back: {} (the service echoes what it received)",
        resp.status
    );
    ensure!(
        resp.status == 200,
        "expected 200, got {}: {}",
        resp.status,
        resp.text()
    );
    ensure!(
        !upstream.contains("jane.doe@example.com") && !upstream.contains("4111 1111 1111 1111"),
        "the upstream received the raw email or card number"
    );
    ensure!(
        serde_json::from_str::<Value>(upstream).is_ok(),
        "the redacted body is not valid JSON"
    );

    // 2. Secret blocked.
    step("2. A request carrying an AWS access key: blocked, its body never reaches the service");
    let resp = http::request(
        envoy.listener,
        "POST",
        "/deploy",
        &[json, ("x-test-id", "demo-block")],
        DEPLOY.as_bytes(),
    )?;
    println!("client sent (POST /deploy):");
    print_block(DEPLOY, None);
    println!("client got back: {}", resp.status);
    print_block(&pretty(&resp.body), None);
    let received = recorded_bodies(echo.addr, "demo-block")?;
    println!(
        "upstream received: {}",
        if received.is_empty() {
            "nothing (veil-echo recorded no request)".to_string()
        } else {
            format!("{} request(s)!", received.len())
        }
    );
    ensure!(resp.status == 403, "expected 403, got {}", resp.status);
    ensure!(
        received.is_empty(),
        "the blocked request reached the upstream"
    );
    let event_id = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| v["event_id"].as_str().map(str::to_owned));

    // 3. Response redaction.
    step("3. A response with an SSN and an email: redacted before the client sees it");
    let canned = http::request(
        echo.addr,
        "PUT",
        "/__veil_echo/response/demo-response",
        &[("x-echo-content-type", "application/json")],
        PATIENT.as_bytes(),
    )?;
    ensure!(
        canned.status == 200,
        "veil-echo refused the canned response: {}",
        canned.text()
    );
    let resp = http::request(
        envoy.listener,
        "GET",
        "/patients/42",
        &[("x-test-id", "demo-response")],
        b"",
    )?;
    println!("upstream sent (GET /patients/42):");
    print_block(PATIENT, None);
    let got = resp.text();
    println!("client received: {} (^^^ = redacted)", resp.status);
    print_block(&got, Some(PATIENT));
    ensure!(resp.status == 200, "expected 200, got {}", resp.status);
    ensure!(
        !got.contains("536-22-1874") && !got.contains("john.smith@example.org"),
        "the client received the raw SSN or email"
    );

    // 4. Events.
    step("4. What veil logged: one JSON event per finding, masked previews only");
    let events = wait_for_events(envoy, 5)?;
    println!(
        "{:<9} {:<8} {:<26} {:<24} preview",
        "direction", "decision", "rule", "category"
    );
    for e in &events {
        let a = &e["attributes"];
        let s = |k: &str| a[k].as_str().unwrap_or("-").to_string();
        println!(
            "{:<9} {:<8} {:<26} {:<24} {}",
            s("veil.direction"),
            s("veil.decision"),
            s("veil.rule.id"),
            s("veil.category"),
            s("veil.match.preview")
        );
    }
    let example = event_id
        .as_deref()
        .and_then(|id| {
            events
                .iter()
                .find(|e| e["attributes"]["veil.event_id"].as_str() == Some(id))
        })
        .or(events.first());
    if let Some(e) = example {
        println!(
            "\nThe block's event as logged (the 403 body's event_id points here), an \
             OpenTelemetry log record:"
        );
        print_block(&serde_json::to_string_pretty(e)?, None);
    }
    let log = envoy.log();
    let leaked: Vec<&str> = RAW_VALUES
        .iter()
        .copied()
        .filter(|v| log.contains(v))
        .collect();
    ensure!(
        leaked.is_empty(),
        "Envoy's log contains raw values: {leaked:?}"
    );
    println!(
        "Envoy's log ({}) contains none of the raw values.",
        envoy.log_path.display()
    );
    Ok(())
}

/// Bodies the upstream recorded for a test id.
fn recorded_bodies(echo: SocketAddr, id: &str) -> Result<Vec<String>> {
    let resp = http::get(echo, &format!("/__veil_echo/requests/{id}"))?;
    ensure!(
        resp.status == 200,
        "veil-echo answered {}: {}",
        resp.status,
        resp.text()
    );
    let v: Value = serde_json::from_slice(&resp.body).context("veil-echo's request log")?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|r| r["body"].as_str().unwrap_or_default().to_string())
        .collect())
}

/// Envoy flushes its log every 50 ms; wait until `n` events are there.
fn wait_for_events(envoy: &Envoy, n: usize) -> Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events = envoy::events(&envoy.log());
        if events.len() >= n || Instant::now() >= deadline {
            ensure!(
                !events.is_empty(),
                "no veil events in Envoy's log {}",
                envoy.log_path.display()
            );
            return Ok(events);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pretty(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned())
}

/// Prints `text` indented; with `before`, marks changed characters of
/// each line that kept its length with `^` underneath.
fn print_block(text: &str, before: Option<&str>) {
    let old: Vec<&str> = before.map(|b| b.lines().collect()).unwrap_or_default();
    for (i, line) in text.lines().enumerate() {
        println!("    {line}");
        if let Some(m) = old.get(i).and_then(|prev| marks(prev, line)) {
            println!("    {m}");
        }
    }
}

/// `^` under each character of `line` that differs from `prev`, when the
/// line changed but kept its length (veil's full masks keep lengths).
fn marks(prev: &str, line: &str) -> Option<String> {
    if prev == line || prev.chars().count() != line.chars().count() {
        return None;
    }
    let m: String = prev
        .chars()
        .zip(line.chars())
        .map(|(a, b)| if a == b { ' ' } else { '^' })
        .collect();
    Some(m.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_point_at_changed_characters_only() {
        assert_eq!(
            marks(r#"  "e": "jo@x.org","#, r#"  "e": "********","#).as_deref(),
            Some("        ^^^^^^^^")
        );
        assert_eq!(marks("same", "same"), None);
        assert_eq!(marks("short", "longer line"), None);
        assert_eq!(marks("é1", "é*").as_deref(), Some(" ^"));
    }
}

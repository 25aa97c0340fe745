//! What one finding's proxy-log line costs to build, natively: the
//! `Record` path (`finding_record` + `to_json_line`, what the filter did for
//! every finding) against `FindingLines` (the constant parts rendered once
//! per event). Run: `perf stat -e task-clock <target>/release/examples/event_lines
//! {record|lines} [BODY.json]` (default body: a small one with a few PII values;
//! the Envoy bench uses `pii-4KiB.json`, 17 findings).

use std::hint::black_box;
use std::time::Instant;
use veil_engine::event::{FindingLines, NodeFacts, Resource};
use veil_engine::{finding_record, CompiledPolicy, Decision, Direction, EventContext};
use veil_engine::{RequestInfo, Target};

const DEFAULT_BODY: &str = r#"[{"customer":{"name":"Jane Roe","email":"jane.roe@example.co.uk","phone":"+1 415 555 0132"},"card":"4111 1111 1111 1111","note":"call me"},{"tax":{"ssn":"123-45-6789"},"ip":"10.1.2.3","key":"AKIAZ3MSJ5TVQ4GQDKWY"}]"#;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "lines".into());
    assert!(mode == "record" || mode == "lines", "mode: record | lines");
    let body = match std::env::args().nth(2) {
        Some(p) => std::fs::read(p).expect("readable body"),
        None => DEFAULT_BODY.as_bytes().to_vec(),
    };
    let policy = CompiledPolicy::embedded_default().expect("default bundle");
    let ins = policy.inspect(
        Direction::Request,
        Target::Body {
            content_type: Some("application/json"),
        },
        &body,
    );
    let request = RequestInfo {
        method: Some("POST".into()),
        path: Some("/".into()),
        authority: Some("127.0.0.1:10000".into()),
        request_id: Some("ff4c756d-1d1a-4524-b498-387d3f10673e".into()),
        user_agent: Some("h2load nghttp2/1.52.0".into()),
        peer_address: Some("127.0.0.1:50000".into()),
        local_address: Some("127.0.0.1:10000".into()),
        ..Default::default()
    };
    let resource = Resource::from_node(&NodeFacts::default());
    let ctx = EventContext {
        event_id: "0123456789abcdef",
        time_unix_nano: 1_795_320_000_000_000_000,
        direction: Direction::Request,
        location: "body",
        decision: Decision::Redact,
        bundle_name: policy.name(),
        bundle_revision: policy.revision(),
        request: &request,
        resource: Some(&resource),
    };
    let n = ins.findings.len();
    assert!(n > 0, "the body has no findings");
    let rounds = 50_000usize;
    let mut bytes = 0usize;
    let t = Instant::now();
    if mode == "record" {
        for _ in 0..rounds {
            for f in &ins.findings {
                let line = finding_record(f, &body, &ctx).to_json_line(Some(&resource));
                bytes += black_box(line.len());
            }
        }
    } else {
        for _ in 0..rounds {
            let mut lines = FindingLines::new(&ctx, Some(&resource));
            for f in &ins.findings {
                bytes += black_box(lines.line(f, &body).len());
            }
        }
    }
    // Wall time is only honest on an idle core: compare CPU time under
    // `perf stat -e task-clock` when the machine is shared.
    println!(
        "{mode}: {} lines of {} bytes, {:.0} ns/line wall",
        rounds * n,
        bytes / (rounds * n),
        t.elapsed().as_nanos() as f64 / (rounds * n) as f64
    );
}

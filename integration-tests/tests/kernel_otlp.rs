//! The kernel exporter's OTLP/HTTP export against the real OTLP receiver
//! (decoding with the official OpenTelemetry protobuf definitions): its
//! records arrive in the same mapping as the filter's, a collector that
//! answers 503 gets the batch again after a backoff, and with no collector
//! at all every record is still written as a JSON line and every one that
//! could not be delivered is counted, by reason. Needs root for BPF; as
//! another user each test says it is skipped and passes.

use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use std::path::{Path, PathBuf};
use std::time::Duration;
use veil_integration_tests::kernel::{exporter_binary, rec_has, skip_without_root, KernelExporter};
use veil_integration_tests::otlp::{attr, attr_str, OtlpReceiver};

const WAIT: Duration = Duration::from_secs(15);

/// A scratch directory removed when the test ends, passed or not.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file the rules call sensitive, and rules that report only its opens.
fn sensitive_file(name: &str) -> anyhow::Result<(PathBuf, PathBuf, Scratch)> {
    let dir = std::env::temp_dir().join(format!("veil-kotlp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("id.key");
    std::fs::write(&key, "k")?;
    let rules = dir.join("rules.json");
    std::fs::write(
        &rules,
        format!(
            r#"{{"kernel": {{"report": "matches", "sensitive_paths": [{{"pattern": "{}/*.key", "id": "otlp-test-key", "severity": "high"}}]}}}}"#,
            dir.display()
        ),
    )?;
    Ok((key, rules, Scratch(dir)))
}

fn start(
    name: &str,
    rules: &Path,
    endpoint: &str,
    extra: &[&str],
) -> anyhow::Result<KernelExporter> {
    let pid = std::process::id().to_string();
    let mut args = vec![
        "--rules",
        rules.to_str().unwrap_or_default(),
        "--watch-pid",
        &pid,
        "--otlp-endpoint",
        endpoint,
    ];
    args.extend_from_slice(extra);
    KernelExporter::start(&exporter_binary()?, name, &args)
}

fn is_key_open(r: &LogRecord, key: &str) -> bool {
    attr_str(&r.attributes, "file.path") == Some(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_records_reach_a_real_otlp_receiver() -> anyhow::Result<()> {
    if skip_without_root() {
        return Ok(());
    }
    let receiver = OtlpReceiver::start().await?;
    let (key, rules, _scratch) = sensitive_file("ok")?;
    let ex = start(
        "otlp-ok",
        &rules,
        &format!("http://{}", receiver.addr()),
        &["--otlp-header", "x-api-key=kernel-key"],
    )?;
    std::fs::read(&key)?;
    let key_s = key.to_string_lossy().to_string();
    let records = receiver
        .wait_for_records(WAIT, |rs| rs.iter().any(|r| is_key_open(r, &key_s)))
        .await?;
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    let rec = records
        .iter()
        .find(|r| is_key_open(r, &key_s))
        .expect("the open record");
    let a = &rec.attributes;
    assert_eq!(rec.severity_number, 17);
    assert_eq!(rec.severity_text, "ERROR");
    assert!(rec.time_unix_nano > 1_600_000_000_000_000_000);
    assert!(rec.observed_time_unix_nano >= rec.time_unix_nano);
    match rec.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => assert!(s.contains("otlp-test-key"), "{s}"),
        other => panic!("body is not a string: {other:?}"),
    }
    assert_eq!(attr_str(a, "veil.source"), Some("kernel"));
    assert_eq!(attr_str(a, "veil.kernel.event"), Some("open"));
    assert_eq!(attr_str(a, "veil.rule.id"), Some("otlp-test-key"));
    assert_eq!(attr_str(a, "veil.action"), Some("report"));
    // Integers are OTLP intValues, as in the filter's records.
    assert_eq!(
        attr(a, "process.pid").and_then(|v| v.value.clone()),
        Some(AnyValue::IntValue(i64::from(std::process::id())))
    );
    let exports = receiver.exports();
    let first = &exports[0];
    assert_eq!(first.path, "/v1/logs");
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert!(first
        .headers
        .iter()
        .any(|(k, v)| k == "x-api-key" && v == "kernel-key"));
    let rl = &first.request.resource_logs[0];
    let res = &rl.resource.as_ref().expect("resource").attributes;
    assert_eq!(attr_str(res, "service.name"), Some("veil-ebpf-exporter"));
    assert!(attr_str(res, "host.name").is_some());
    assert_eq!(
        rl.scope_logs[0].scope.as_ref().map(|s| s.name.as_str()),
        Some("veil")
    );
    tokio::task::block_in_place(|| {
        ex.wait_for_counter("veil_exporter_otlp_records_exported_total", 1, WAIT)
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_answering_503_gets_the_batch_again_after_backoff() -> anyhow::Result<()> {
    if skip_without_root() {
        return Ok(());
    }
    let receiver = OtlpReceiver::start().await?;
    receiver.set_status(503);
    let (key, rules, _scratch) = sensitive_file("retry")?;
    let ex = start(
        "otlp-retry",
        &rules,
        &format!("http://{}", receiver.addr()),
        &["--otlp-retries", "20"],
    )?;
    std::fs::read(&key)?;
    // Refused at least once...
    let failures = "veil_exporter_otlp_request_failures_total";
    tokio::task::block_in_place(|| ex.wait_for_counter(failures, 1, WAIT))?;
    assert!(receiver.records().is_empty());
    // ...then delivered by a retry once the collector is back.
    receiver.set_status(200);
    let key_s = key.to_string_lossy().to_string();
    receiver
        .wait_for_records(WAIT, |rs| rs.iter().any(|r| is_key_open(r, &key_s)))
        .await?;
    let m = ex.scrape()?;
    assert!(
        m.contains("veil_exporter_otlp_records_dropped_total{reason=\"export_failed\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("veil_exporter_otlp_records_exported_total 1"),
        "{m}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_collector_every_record_is_written_and_every_loss_counted() -> anyhow::Result<()> {
    if skip_without_root() {
        return Ok(());
    }
    // Nothing listens on this port: every export attempt fails to connect.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let (key, rules, _scratch) = sensitive_file("down")?;
    // A queue of 2 records, one record per request and one retry: most
    // records are dropped at the queue while the export thread backs off,
    // the rest when it gives up.
    let ex = start(
        "otlp-down",
        &rules,
        &format!("http://{dead}"),
        &[
            "--otlp-queue",
            "2",
            "--otlp-batch",
            "1",
            "--otlp-retries",
            "1",
        ],
    )?;
    const OPENS: u64 = 40;
    for _ in 0..OPENS {
        std::fs::read(&key)?;
    }
    let key_s = key.to_string_lossy().to_string();
    // The event loop never waited on the collector: every record is in
    // the JSON lines output.
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let n = ex
                .records()
                .iter()
                .filter(|r| rec_has(r, "file.path", &key_s))
                .count() as u64;
            if n == OPENS {
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "{n} of {OPENS} records written"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })?;
    // Every record that did not reach the collector is counted, by reason.
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let queue =
                ex.counter("veil_exporter_otlp_records_dropped_total{reason=\"queue_full\"}")?;
            let failed =
                ex.counter("veil_exporter_otlp_records_dropped_total{reason=\"export_failed\"}")?;
            if queue + failed == OPENS {
                anyhow::ensure!(queue > 0 && failed > 0, "queue {queue}, failed {failed}");
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "dropped: queue_full {queue} + export_failed {failed} != {OPENS}\n{}",
                ex.scrape()?
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })?;
    assert_eq!(ex.counter("veil_exporter_otlp_records_exported_total")?, 0);
    assert!(ex.counter("veil_exporter_otlp_request_failures_total")? >= 2);
    // And it still stops promptly and cleanly.
    let mut ex = ex;
    assert!(tokio::task::block_in_place(|| ex.stop()), "clean exit");
    Ok(())
}

//! `cargo xtask bench`: the numbers behind benches/RESULTS.md.
//!
//! 1. The criterion engine bench (native MB/s), read back from
//!    target/criterion.
//! 2. End to end: one veil-echo upstream and three Envoys with one worker
//!    each, identical but for their filter: none, veil (default bundle),
//!    and the wasm floor (`benches/wasm-floor`: buffers and reads each body,
//!    nothing else, so it is the least any body-inspecting wasm filter
//!    costs). h2load loads them with the same POST bodies, alternately,
//!    several rounds; the medians are reported side by side with their
//!    ratios. Comparing against Envoys in the same run is the only
//!    comparison that survives a noisy 2-core machine.
//!
//! Everything is bounded: request counts are calibrated to ~2 s per run,
//! each h2load run is killed after 90 s, and the whole command stays
//! within a few minutes once compiled.

use crate::envoy::{self, Echo, Envoy, EnvoyOptions};
use crate::http;
use crate::util::{self, cargo, human_duration, probe, run, step};
use crate::{setup, wasm};
use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use veil_benches::{clean_json, mixed_json, size_label};

/// Concurrent clients of the throughput runs (each one stream at a time):
/// enough to keep one Envoy worker saturated.
const CLIENTS: u32 = 16;
/// Rounds of the throughput runs; medians are reported.
const ROUNDS: usize = 5;
/// Rounds of the latency runs (one client, one request at a time): the
/// added latency per request, without queueing behind 15 others.
const LATENCY_ROUNDS: usize = 3;
/// Target wall time of one measured throughput run.
const RUN_SECS: f64 = 2.0;
const MIN_REQUESTS: u64 = 200;
const MAX_REQUESTS: u64 = 40_000;
const CALIBRATION_REQUESTS: u64 = 500;
const H2LOAD_LIMIT: Duration = Duration::from_secs(90);

struct Workload {
    name: &'static str,
    size: usize,
    pii: bool,
    /// DESIGN.md's lower bound on veil rps / no-filter rps, if any.
    target_ratio: Option<f64>,
    file: PathBuf,
    body: Vec<u8>,
}

/// One h2load run.
#[derive(Debug, Clone, Default)]
struct Run {
    rps: f64,
    succeeded: u64,
    failed: u64,
    non_2xx: u64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
}

struct Side {
    envoy: Envoy,
    url: String,
}

pub fn bench() -> Result<()> {
    let started = Instant::now();
    let load_before = loadavg();
    let tools = setup::setup(true)?;
    let h2load_bin = tools
        .h2load
        .clone()
        .context("setup did not provide h2load")?;

    step("engine bench (criterion, native)");
    let criterion_started = SystemTime::now();
    run(cargo().args(["bench", "-p", "veil-benches", "--bench", "engine"]))?;
    let engine = read_criterion("engine", criterion_started)?;
    let structure = read_criterion("structure", criterion_started)?;

    let wasm_path = wasm::build_filter()?;
    let floor_path = wasm::build_wasm_floor()?;
    let echo_bin = wasm::build_echo(true)?;
    let dir = util::fresh_dir("xtask-bench")?;

    let workloads = write_bodies(&dir)?;
    let pin = cpu_plan();

    step("start veil-echo and three Envoys (no filter / veil / wasm floor)");
    let echo = Echo::start(
        &echo_bin,
        "127.0.0.1:0",
        &dir.join("veil-echo.stderr"),
        pin.as_ref().map(|p| p.load.as_str()),
    )?;
    let mut sides = Vec::new();
    // Indices: 0 no filter, 1 veil, 2 the wasm floor (the export runs and
    // the sanity check rely on this order).
    for (name, module) in [
        ("baseline", None),
        ("veil", Some(wasm_path.as_path())),
        ("wasm-floor", Some(floor_path.as_path())),
    ] {
        let config = dir.join(format!("{name}.json"));
        let doc = envoy::bootstrap(echo.addr, module, "{}");
        fs::write(&config, serde_json::to_string_pretty(&doc)?)?;
        let envoy = Envoy::start(&EnvoyOptions {
            bin: &tools.envoy,
            config: &config,
            cwd: &util::root(),
            dir: &dir,
            name,
            cpus: pin.as_ref().map(|p| p.envoy.as_str()),
        })?;
        println!(
            "{name}: listener {} ready in {} ms",
            envoy.listener,
            envoy.ready_after.as_millis()
        );
        sides.push(Side {
            url: format!("http://{}/ingest", envoy.listener),
            envoy,
        });
    }
    let rss_idle: Vec<Option<u64>> = sides.iter().map(|s| s.envoy.rss_kib()).collect();
    let ready: Vec<Duration> = sides.iter().map(|s| s.envoy.ready_after).collect();

    step("sanity: clean bodies pass unchanged, PII bodies are redacted by veil only");
    sanity(&echo, &sides, &workloads)?;

    let load_cpus = pin.as_ref().map(|p| p.load.clone());
    let h2load = |url: &str, w: &Workload, n: u64, clients: u32, log: &Path| -> Result<Run> {
        h2load_run(
            &h2load_bin,
            url,
            &w.file,
            n,
            clients,
            log,
            load_cpus.as_deref(),
        )
    };
    let mut results = Vec::new();
    for w in &workloads {
        step(&format!("load: {} ({} bytes)", w.name, w.size));
        // Warm-up and calibration on both; the request count comes from
        // the slower side so every run takes about RUN_SECS.
        let mut slowest = f64::INFINITY;
        for s in &sides {
            let r = h2load(
                &s.url,
                w,
                CALIBRATION_REQUESTS,
                CLIENTS,
                &dir.join("calibrate.log"),
            )?;
            slowest = slowest.min(r.rps);
        }
        let n = ((slowest * RUN_SECS) as u64).clamp(MIN_REQUESTS, MAX_REQUESTS);
        println!(
            "throughput: {CLIENTS} clients, {n} requests per run (calibrated at {slowest:.0} rps)"
        );
        let names: Vec<&str> = sides.iter().map(|s| s.envoy.proc.name.as_str()).collect();
        let [base, veil, floor] = trio(rounds(&names, &[0, 1, 2], ROUNDS, |i, round| {
            let log = dir.join(format!("{}-{i}-{round}.log", w.name));
            h2load(&sides[i].url, w, n, CLIENTS, &log)
        })?)?;
        // One client is a few times slower than sixteen; aim at ~1 s.
        let n_latency = (n / 4).clamp(MIN_REQUESTS, 4_000);
        println!("latency: 1 client, {n_latency} requests per run");
        let [base_latency, veil_latency, floor_latency] =
            trio(rounds(&names, &[0, 1, 2], LATENCY_ROUNDS, |i, round| {
                let log = dir.join(format!("{}-{i}-{round}-c1.log", w.name));
                h2load(&sides[i].url, w, n_latency, 1, &log)
            })?)?;
        results.push(Summary {
            name: w.name,
            size: w.size,
            pii: w.pii,
            target_ratio: w.target_ratio,
            requests: n,
            base,
            veil,
            floor,
            base_latency,
            veil_latency,
            floor_latency,
        });
    }
    let export = match workloads.iter().find(|w| w.name == EXPORT_WORKLOAD) {
        Some(w) => {
            step(&format!(
                "export cost: veil with and without OTLP export ({EXPORT_WORKLOAD})"
            ));
            let setup = ExportSetup {
                envoy_bin: &tools.envoy,
                wasm: &wasm_path,
                echo: echo.addr,
                dir: &dir,
                cpus: pin.as_ref().map(|p| p.envoy.as_str()),
            };
            Some(export_cost(&setup, &sides, w, &h2load)?)
        }
        None => None,
    };
    let rss_loaded: Vec<Option<u64>> = sides.iter().map(|s| s.envoy.rss_kib()).collect();
    let log_bytes = fs::metadata(&sides[1].envoy.log_path)
        .map(|m| m.len())
        .unwrap_or(0);

    let facts = Facts {
        wasm_kib: fs::metadata(&wasm_path)?.len() as f64 / 1024.0,
        // `/path/envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL`
        envoy_version: probe(Command::new(&tools.envoy).arg("--version"))
            .unwrap_or_default()
            .split("version:")
            .last()
            .unwrap_or_default()
            .trim()
            .to_string(),
        h2load_version: probe(Command::new(&h2load_bin).arg("--version"))
            .unwrap_or_default()
            .trim()
            .to_string(),
        pin,
        rss_idle,
        rss_loaded,
        ready,
        veil_log_bytes: log_bytes,
        elapsed: started.elapsed(),
        load_before,
        load_after: loadavg(),
    };
    drop(sides);
    drop(echo);
    // The veil Envoy logs one event per finding; the PII runs leave
    // hundreds of MB of log behind.
    let _ = fs::remove_file(dir.join("veil.log"));

    let mut report = render(&results, &engine, &facts)?;
    report = insert_before_reproduce(&report, &render_structure(&structure)?);
    if let Some(export) = &export {
        report = insert_before_reproduce(&report, &render_export(export)?);
    }
    report = insert_before_reproduce(&report, &crate::bench_kernel::section());
    report = insert_before_reproduce(
        &report,
        &crate::bench_catalogue::section(&tools.envoy, &wasm_path),
    );
    let path = util::root().join("benches/RESULTS.md");
    fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    step("results");
    println!("{report}");
    println!(
        "written to {} in {}",
        path.display(),
        human_duration(started.elapsed())
    );
    Ok(())
}

fn write_bodies(dir: &Path) -> Result<Vec<Workload>> {
    let specs: [(&str, usize, bool, Option<f64>); 4] = [
        ("clean-4KiB", 4 << 10, false, Some(0.85)),
        ("clean-64KiB", 64 << 10, false, Some(0.5)),
        ("pii-4KiB", 4 << 10, true, None),
        ("pii-64KiB", 64 << 10, true, None),
    ];
    specs
        .into_iter()
        .map(|(name, size, pii, target_ratio)| {
            let body = if pii {
                mixed_json(size, 7)
            } else {
                clean_json(size, 7)
            };
            let file = dir.join(format!("{name}.json"));
            fs::write(&file, &body)?;
            Ok(Workload {
                name,
                size,
                pii,
                target_ratio,
                file,
                body,
            })
        })
        .collect()
}

/// One request per workload and side before any load: a benchmark of a
/// filter that does nothing (or breaks traffic) would be worthless.
fn sanity(echo: &Echo, sides: &[Side], workloads: &[Workload]) -> Result<()> {
    for w in workloads {
        for (i, s) in sides.iter().enumerate() {
            let id = format!("sanity-{}-{i}", w.name);
            let resp = http::request(
                s.envoy.listener,
                "POST",
                "/ingest",
                &[("content-type", "application/json"), ("x-test-id", &id)],
                &w.body,
            )?;
            ensure!(
                resp.status == 200,
                "{}: {} answered {}",
                w.name,
                s.envoy.proc.name,
                resp.status
            );
            let log = http::get(echo.addr, &format!("/__veil_echo/requests/{id}"))?;
            let v: Value = serde_json::from_slice(&log.body)?;
            let received = v[0]["body"].as_str().unwrap_or_default().as_bytes();
            let unchanged = received == w.body.as_slice();
            let expect_unchanged = !(w.pii && i == 1);
            ensure!(
                unchanged == expect_unchanged,
                "{} through {}: upstream body {} (expected {})",
                w.name,
                s.envoy.proc.name,
                if unchanged { "unchanged" } else { "changed" },
                if expect_unchanged {
                    "unchanged"
                } else {
                    "redacted"
                }
            );
            if !expect_unchanged {
                serde_json::from_slice::<Value>(received)
                    .with_context(|| format!("{}: redacted body is not JSON", w.name))?;
            }
        }
        println!("{}: ok", w.name);
    }
    Ok(())
}

/// Runs `measure(side, round)` for each of `sides` (indices into `names`),
/// `rounds` times, rotating which side goes first to cancel drift; returns
/// the per-side medians in the order of `sides`.
fn rounds(
    names: &[&str],
    sides: &[usize],
    rounds: usize,
    mut measure: impl FnMut(usize, usize) -> Result<Run>,
) -> Result<Vec<Run>> {
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); sides.len()];
    for round in 0..rounds {
        for k in 0..sides.len() {
            let slot = (k + round) % sides.len();
            let i = sides[slot];
            let r = measure(i, round)?;
            println!(
                "  round {} {:<16} {:>8.0} rps  p50 {:>7.0} µs  p99 {:>7.0} µs  max {:>7.0} µs{}",
                round + 1,
                names.get(i).copied().unwrap_or("?"),
                r.rps,
                r.p50_us,
                r.p99_us,
                r.max_us,
                if r.failed > 0 || r.non_2xx > 0 {
                    format!("  ({} failed, {} non-2xx)", r.failed, r.non_2xx)
                } else {
                    String::new()
                }
            );
            runs[slot].push(r);
        }
    }
    Ok(runs.iter().map(|r| median_run(r)).collect())
}

/// The three medians of a no-filter / veil / wasm-floor run of `rounds`.
fn trio(runs: Vec<Run>) -> Result<[Run; 3]> {
    let n = runs.len();
    runs.try_into()
        .map_err(|_| anyhow::anyhow!("expected three sides, got {n}"))
}

fn h2load_run(
    bin: &Path,
    url: &str,
    body: &Path,
    n: u64,
    clients: u32,
    log: &Path,
    cpus: Option<&str>,
) -> Result<Run> {
    let mut cmd = match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", c]).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    cmd.arg("-n")
        .arg(n.to_string())
        .arg("-c")
        .arg(clients.to_string())
        .args(["-t", "1", "-m", "1"])
        .args(["-H", "content-type: application/json"])
        .arg("-d")
        .arg(body)
        .arg("--log-file")
        .arg(log)
        .arg(url);
    let (status, stdout, stderr) = util::run_bounded(&mut cmd, H2LOAD_LIMIT)?;
    if !status.success() {
        bail!(
            "`{}` failed ({status}):\n{stdout}\n{stderr}",
            util::display(&cmd)
        );
    }
    let mut r = parse_h2load(&stdout)
        .with_context(|| format!("unexpected h2load output:\n{stdout}\n{stderr}"))?;
    let latencies =
        fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let (p50, p99, max) = percentiles(&latencies)?;
    r.p50_us = p50;
    r.p99_us = p99;
    r.max_us = max;
    Ok(r)
}

/// rps and outcome counts from h2load's summary.
fn parse_h2load(out: &str) -> Result<Run> {
    let mut r = Run::default();
    let mut seen_rps = false;
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            // finished in 2.03s, 4926.11 req/s, 19.77MB/s
            let rps = rest
                .split(", ")
                .find_map(|p| p.strip_suffix(" req/s"))
                .context("no req/s")?;
            r.rps = rps.trim().parse()?;
            seen_rps = true;
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            // 10000 total, 10000 started, 10000 done, 10000 succeeded, 0 failed, ...
            for part in rest.split(", ") {
                let mut it = part.split_whitespace();
                let (Some(num), Some(what)) = (it.next(), it.next()) else {
                    continue;
                };
                let num: u64 = num.parse().unwrap_or(0);
                match what {
                    "succeeded" => r.succeeded = num,
                    "failed" => r.failed = num,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            // 10000 2xx, 0 3xx, 0 4xx, 0 5xx
            r.non_2xx = rest
                .split(", ")
                .filter(|p| !p.ends_with("2xx"))
                .filter_map(|p| p.split_whitespace().next()?.parse::<u64>().ok())
                .sum();
        }
    }
    ensure!(seen_rps, "no `finished in` line");
    Ok(r)
}

/// (p50, p99, max) of request latency in µs from an h2load `--log-file`
/// (`start_us \t status \t duration_us` per request); failed streams
/// (status -1) are excluded.
fn percentiles(log: &str) -> Result<(f64, f64, f64)> {
    let mut d: Vec<u64> = log
        .lines()
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let _start = cols.next()?;
            let status: i64 = cols.next()?.trim().parse().ok()?;
            let dur: u64 = cols.next()?.trim().parse().ok()?;
            (status > 0).then_some(dur)
        })
        .collect();
    ensure!(!d.is_empty(), "no completed requests in the h2load log");
    d.sort_unstable();
    let rank = |q: f64| d[((q * d.len() as f64).ceil() as usize).clamp(1, d.len()) - 1] as f64;
    Ok((rank(0.50), rank(0.99), *d.last().unwrap() as f64))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Field-wise median over rounds; failures are summed.
fn median_run(runs: &[Run]) -> Run {
    let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    Run {
        rps: m(|r| r.rps),
        p50_us: m(|r| r.p50_us),
        p99_us: m(|r| r.p99_us),
        max_us: runs.iter().map(|r| r.max_us).fold(0.0, f64::max),
        succeeded: runs.iter().map(|r| r.succeeded).sum(),
        failed: runs.iter().map(|r| r.failed).sum(),
        non_2xx: runs.iter().map(|r| r.non_2xx).sum(),
    }
}

/// Where processes run: Envoy alone on the last CPU, the load generator
/// and upstream on the others, so the rps measured is Envoy's CPU cost and
/// not a scheduling fight. Off with VEIL_BENCH_NO_PIN=1 or on one CPU.
#[derive(Debug, Clone)]
struct CpuPlan {
    envoy: String,
    load: String,
}

fn cpu_plan() -> Option<CpuPlan> {
    if std::env::var_os("VEIL_BENCH_NO_PIN").is_some() {
        return None;
    }
    let n = std::thread::available_parallelism().map(|n| n.get()).ok()?;
    if n < 2 || probe(Command::new("taskset").arg("--version")).is_none() {
        return None;
    }
    Some(CpuPlan {
        envoy: (n - 1).to_string(),
        load: if n == 2 {
            "0".into()
        } else {
            format!("0-{}", n - 2)
        },
    })
}

/// The workload of the export-cost runs: it has findings, so every
/// request produces events for the sinks.
const EXPORT_WORKLOAD: &str = "pii-4KiB";

/// The plugin configurations compared in the export-cost runs, next to
/// the default veil Envoy (events logged to a file): name, what it does,
/// configuration, and whether its collector is up.
const EXPORT_VARIANTS: [(&str, &str, &str, bool); 4] = [
    (
        "veil-quiet",
        "no event sink (`log_findings: false`, no export)",
        r#"{"log_findings": false}"#,
        true,
    ),
    (
        "veil-otlp",
        "proxy log + OTLP/HTTP export to a collector",
        r#"{"otlp": {"cluster": "otlp_collector", "authority": "collector", "path": "/__veil_echo/sink/v1-logs"}}"#,
        true,
    ),
    (
        "veil-otlp-only",
        "OTLP/HTTP export only (`log_findings: false`)",
        r#"{"log_findings": false, "otlp": {"cluster": "otlp_collector", "authority": "collector", "path": "/__veil_echo/sink/v1-logs"}}"#,
        true,
    ),
    (
        "veil-otlp-down",
        "proxy log + OTLP/HTTP export, collector down (connection refused)",
        r#"{"otlp": {"cluster": "otlp_collector", "authority": "collector", "path": "/__veil_echo/sink/v1-logs"}}"#,
        false,
    ),
];

/// One h2load run: (url, workload, requests, clients, latency log).
type H2load<'a> = dyn Fn(&str, &Workload, u64, u32, &Path) -> Result<Run> + 'a;

struct ExportSetup<'a> {
    envoy_bin: &'a Path,
    wasm: &'a Path,
    /// The upstream of every side, and the collector: veil-echo's sink
    /// endpoint answers 200 `{}` to every export request, as a collector does.
    echo: std::net::SocketAddr,
    dir: &'a Path,
    cpus: Option<&'a str>,
}

/// One side of the export-cost runs.
struct ExportRow {
    name: String,
    what: String,
    run: Run,
    /// `wasmcustom.veil.export.*` counters after the runs.
    sent: u64,
    dropped: u64,
    failed_attempts: u64,
}

struct ExportCost {
    requests: u64,
    base: Run,
    rows: Vec<ExportRow>,
}

/// Runs the export workload on the no-filter Envoy, the default veil
/// Envoy and one Envoy per `EXPORT_VARIANTS` entry, rotated per round.
fn export_cost(
    setup: &ExportSetup<'_>,
    sides: &[Side],
    w: &Workload,
    h2load: &H2load<'_>,
) -> Result<ExportCost> {
    // A port nobody listens on: bound, then released.
    let down = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut variants = Vec::new();
    for (name, _, plugin_config, up) in EXPORT_VARIANTS {
        let config = setup.dir.join(format!("{name}.json"));
        let mut doc = envoy::bootstrap(setup.echo, Some(setup.wasm), plugin_config);
        envoy::add_cluster(
            &mut doc,
            "otlp_collector",
            if up { setup.echo } else { down },
        );
        fs::write(&config, serde_json::to_string_pretty(&doc)?)?;
        let envoy = Envoy::start(&EnvoyOptions {
            bin: setup.envoy_bin,
            config: &config,
            cwd: &util::root(),
            dir: setup.dir,
            name,
            cpus: setup.cpus,
        })?;
        variants.push(Side {
            url: format!("http://{}/ingest", envoy.listener),
            envoy,
        });
    }
    let all: Vec<&Side> = sides.iter().take(2).chain(variants.iter()).collect();
    let names: Vec<&str> = all.iter().map(|s| s.envoy.proc.name.as_str()).collect();
    let mut slowest = f64::INFINITY;
    for s in &all {
        let r = h2load(
            &s.url,
            w,
            CALIBRATION_REQUESTS,
            CLIENTS,
            &setup.dir.join("calibrate.log"),
        )?;
        slowest = slowest.min(r.rps);
    }
    let n = ((slowest * RUN_SECS) as u64).clamp(MIN_REQUESTS, MAX_REQUESTS);
    println!("throughput: {CLIENTS} clients, {n} requests per run");
    let indices: Vec<usize> = (0..all.len()).collect();
    let medians = rounds(&names, &indices, ROUNDS, |i, round| {
        let log = setup.dir.join(format!("export-{i}-{round}.log"));
        h2load(&all[i].url, w, n, CLIENTS, &log)
    })?;
    // Queued events are flushed on a 1 s timer: give the last batch time
    // to leave before reading the counters.
    std::thread::sleep(Duration::from_millis(1500));
    let mut rows = Vec::new();
    for (i, run) in medians.iter().enumerate().skip(1) {
        let side = all[i];
        let what = match i {
            1 => "proxy log (the default: one JSON line per finding)".to_string(),
            _ => EXPORT_VARIANTS[i - 2].1.to_string(),
        };
        let stats = http::get(side.envoy.admin, "/stats?filter=veil%5C.export")
            .map(|r| r.text())
            .unwrap_or_default();
        let counter = |name: &str| export_counter(&stats, name);
        rows.push(ExportRow {
            name: names[i].to_string(),
            what,
            run: run.clone(),
            sent: counter("veil.export.sent"),
            dropped: counter("veil.export.dropped.reason.queue_full")
                + counter("veil.export.dropped.reason.export_failed"),
            failed_attempts: counter("veil.export.failed_attempts"),
        });
    }
    Ok(ExportCost {
        requests: n,
        base: medians.first().cloned().context("no baseline run")?,
        rows,
    })
}

/// A counter from Envoy's `/stats` text (`wasmcustom.NAME: VALUE`); 0 when
/// absent (Envoy lists a counter only once it was defined).
fn export_counter(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .filter_map(|l| l.split_once(": "))
        .find(|(k, _)| k.trim() == format!("wasmcustom.{name}"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Puts `section` before the report's closing "## Reproduce" section.
fn insert_before_reproduce(report: &str, section: &str) -> String {
    match report.find("## Reproduce") {
        Some(at) => format!("{}{section}{}", &report[..at], &report[at..]),
        None => format!("{report}\n{section}"),
    }
}

fn render_export(e: &ExportCost) -> Result<String> {
    let mut s = String::new();
    writeln!(s, "## Cost of exporting events\n")?;
    writeln!(
        s,
        "Workload `{EXPORT_WORKLOAD}` (every request has findings, so every request makes \
         events), {CLIENTS} clients, {} requests per run, {ROUNDS} rounds rotating which Envoy \
         goes first, medians. Each veil Envoy runs the default bundle; they differ only in \
         where events go. The collector is veil-echo's sink endpoint, which answers 200 `{{}}` \
         to each OTLP/HTTP JSON request as a collector does; \"down\" points the collector \
         cluster at a closed loopback port. Export counters are read from each Envoy's \
         `/stats` after the runs.\n",
        e.requests
    )?;
    writeln!(
        s,
        "| Envoy | event sinks | rps | vs. no filter | vs. proxy log only | p50 | p99 | exported | dropped | failed export attempts |"
    )?;
    writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    writeln!(
        s,
        "| no filter | – | {:.0} | 1.00 | – | {:.0} µs | {:.0} µs | – | – | – |",
        e.base.rps, e.base.p50_us, e.base.p99_us
    )?;
    let log_only = e.rows.first().map_or(f64::NAN, |r| r.run.rps);
    for r in &e.rows {
        writeln!(
            s,
            "| {} | {} | {:.0} | {:.2} | **{:.2}** | {:.0} µs | {:.0} µs | {} | {} | {} |",
            r.name,
            r.what,
            r.run.rps,
            r.run.rps / e.base.rps,
            r.run.rps / log_only,
            r.run.p50_us,
            r.run.p99_us,
            r.sent,
            r.dropped,
            r.failed_attempts,
        )?;
    }
    let failures: Vec<String> = e
        .rows
        .iter()
        .filter(|r| r.run.failed > 0 || r.run.non_2xx > 0)
        .map(|r| {
            format!(
                "{}: {} failed, {} non-2xx",
                r.name, r.run.failed, r.run.non_2xx
            )
        })
        .collect();
    if failures.is_empty() {
        writeln!(
            s,
            "\nEvery request succeeded with a 2xx on every Envoy, the collector being down \
             included: export never blocks traffic; what the queue cannot hold is dropped and \
             counted.\n"
        )?;
    } else {
        writeln!(s, "\n**Failed requests:** {}.\n", failures.join("; "))?;
    }
    Ok(s)
}

struct Summary {
    name: &'static str,
    size: usize,
    pii: bool,
    target_ratio: Option<f64>,
    requests: u64,
    /// Throughput runs (CLIENTS clients).
    base: Run,
    veil: Run,
    floor: Run,
    /// Latency runs (one client).
    base_latency: Run,
    veil_latency: Run,
    floor_latency: Run,
}

/// A criterion result: `engine/<function>/<size>`.
#[derive(Debug, Clone)]
struct EngineResult {
    function: String,
    size_label: String,
    bytes: u64,
    ns: f64,
}

impl EngineResult {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.ns * 1e3
    }
}

/// Reads target/criterion/<group>/*/*/new/{benchmark,estimates}.json
/// written after `since` (older ones are stale results of another run).
fn read_criterion(group: &str, since: SystemTime) -> Result<Vec<EngineResult>> {
    let base = util::target_dir().join("criterion").join(group);
    let mut out = Vec::new();
    for function in fs::read_dir(&base).with_context(|| format!("reading {}", base.display()))? {
        let function = function?.path();
        if !function.is_dir() {
            continue;
        }
        for size in fs::read_dir(&function)? {
            let new = size?.path().join("new");
            let (bench, est) = (new.join("benchmark.json"), new.join("estimates.json"));
            let Ok(modified) = fs::metadata(&est).and_then(|m| m.modified()) else {
                continue;
            };
            if modified < since {
                continue;
            }
            let b: Value = serde_json::from_slice(&fs::read(&bench)?)
                .with_context(|| format!("parsing {}", bench.display()))?;
            let e: Value = serde_json::from_slice(&fs::read(&est)?)
                .with_context(|| format!("parsing {}", est.display()))?;
            // Criterion reports the slope when it has one, else the mean.
            let ns = e["slope"]["point_estimate"]
                .as_f64()
                .or_else(|| e["mean"]["point_estimate"].as_f64())
                .context("no point estimate")?;
            let Some(bytes) = b["throughput"]["Bytes"].as_u64() else {
                continue;
            };
            out.push(EngineResult {
                function: b["function_id"].as_str().unwrap_or("?").to_string(),
                size_label: b["value_str"].as_str().unwrap_or("?").to_string(),
                bytes,
                ns,
            });
        }
    }
    ensure!(
        !out.is_empty(),
        "no fresh criterion results under {}",
        base.display()
    );
    out.sort_by(|a, b| (a.function.as_str(), a.bytes).cmp(&(b.function.as_str(), b.bytes)));
    Ok(out)
}

/// The JSON-aware vs raw table (criterion group `structure`).
fn render_structure(results: &[EngineResult]) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "## JSON-aware vs raw scanning (criterion, native, default bundle)\n"
    )?;
    let find = |f: &str, size: &str| {
        results
            .iter()
            .find(|r| r.function == f && r.size_label == size)
    };
    writeln!(
        s,
        "| body | raw bytes | JSON-aware | JSON-aware / raw | JSON-aware, non-ASCII `\\u`-escaped |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|")?;
    for size in ["64KiB", "1MiB"] {
        let (Some(raw), Some(json)) = (find("raw", size), find("json_aware", size)) else {
            continue;
        };
        let escaped = find("json_aware_escaped", size)
            .map_or("–".to_string(), |e| format!("{:.0} MB/s", e.mb_per_s()));
        writeln!(
            s,
            "| {size} mixed JSON | {:.0} MB/s | {:.0} MB/s | {:.2} | {escaped} |",
            raw.mb_per_s(),
            json.mb_per_s(),
            json.mb_per_s() / raw.mb_per_s()
        )?;
    }
    writeln!(
        s,
        "\n`scan` of the same bodies labelled `application/octet-stream` (raw: bytes as they are) \
         and `application/json` (validated by the iterative tokenizer, escapes decoded, findings \
         mapped back, paths computed for findings). The escaped column scans the same records \
         written as `json.dumps` does by default (every non-ASCII character as `\\uXXXX`, so \
         the body is larger and must be decoded). From `target/criterion/structure/`.\n"
    )?;
    Ok(s)
}

struct Facts {
    wasm_kib: f64,
    envoy_version: String,
    h2load_version: String,
    pin: Option<CpuPlan>,
    rss_idle: Vec<Option<u64>>,
    rss_loaded: Vec<Option<u64>>,
    ready: Vec<Duration>,
    veil_log_bytes: u64,
    elapsed: Duration,
    load_before: String,
    load_after: String,
}

/// The 1/5/15-minute load averages: other work on the machine is the main
/// source of noise, so the report says how busy it was.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn shell(cmd: &str, args: &[&str]) -> String {
    probe(Command::new(cmd).args(args).current_dir(util::root()))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn workload_name(r: &Summary) -> String {
    if r.pii {
        format!("{} (redacted)", r.name)
    } else {
        r.name.to_string()
    }
}

fn render(results: &[Summary], engine: &[EngineResult], f: &Facts) -> Result<String> {
    let mut s = String::new();
    let date = shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let commit = shell("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = !shell("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kib = |v: Option<u64>| v.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:+.1} MiB", (b as f64 - a as f64) / 1024.0),
        _ => "?".into(),
    };

    writeln!(s, "# veil benchmark results\n")?;
    writeln!(
        s,
        "Written by `cargo xtask bench` on {date} (commit {commit}{}); every run overwrites \
         this file. Timings on a small shared machine are noisy: compare ratios measured in \
         the same run, not absolute numbers across runs.\n",
        if dirty { ", uncommitted changes" } else { "" }
    )?;
    writeln!(s, "## Setup\n")?;
    writeln!(
        s,
        "- Machine: {nproc} CPUs, {}; load average {} before the bench, {} after \
         (anything above ~0.5 before means other work shared the CPUs)",
        cpu_model(),
        f.load_before,
        f.load_after
    )?;
    writeln!(s, "- Envoy: `{}`, `--concurrency 1`", f.envoy_version)?;
    match &f.pin {
        Some(p) => writeln!(
            s,
            "- CPU pinning (taskset): Envoy on CPU {}, h2load and veil-echo on CPU {}",
            p.envoy, p.load
        )?,
        None => writeln!(
            s,
            "- No CPU pinning: Envoy, h2load and veil-echo share all CPUs"
        )?,
    }
    writeln!(
        s,
        "- veil: `veil_filter.wasm` {:.1} KiB (release), embedded default bundle (plugin \
         configuration `{{}}`), findings logged at info to a file",
        f.wasm_kib
    )?;
    writeln!(
        s,
        "- Load: `{}`, HTTP/2 cleartext, {CLIENTS} clients × 1 stream, POST \
         `content-type: application/json`; the upstream (veil-echo, release) echoes the body, \
         so veil scans it in both directions",
        f.h2load_version
    )?;
    writeln!(
        s,
        "- Each workload: one warm-up/calibration run per Envoy, then {ROUNDS} throughput \
         rounds ({CLIENTS} clients) and {LATENCY_ROUNDS} latency rounds (1 client), each \
         alternating which Envoy goes first; the tables show medians over rounds. Latency \
         percentiles come from h2load's per-request `--log-file`."
    )?;
    writeln!(
        s,
        "- Bodies: deterministic order-export JSON from `veil-benches` (`clean_json`: no \
         findings; `mixed_json`: emails, card numbers and the odd SSN, a few findings per \
         KiB, redacted by veil)\n"
    )?;

    writeln!(s, "## End to end: Envoy without and with veil\n")?;
    writeln!(
        s,
        "A third Envoy runs the wasm floor (`benches/wasm-floor`): a proxy-wasm filter on the \
         same SDK that buffers each body and reads it once, and does nothing else. It is the \
         least any body-inspecting wasm filter costs in this Envoy; \"veil / floor\" is what \
         veil itself costs on top of that.\n"
    )?;
    writeln!(
        s,
        "### Throughput ({CLIENTS} clients, Envoy saturated)\n\n\
         Latency here is mostly queueing (16 requests in flight on one worker), so it \
         follows from the rps; the added latency per request is in the next table.\n"
    )?;
    writeln!(
        s,
        "| workload | body | requests/run | rps no filter | rps veil | ratio | target | rps wasm floor | floor / no filter | veil / floor | p50 no filter | p50 veil | p99 no filter | p99 veil |"
    )?;
    writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for r in results {
        let ratio = r.veil.rps / r.base.rps;
        let target = match r.target_ratio {
            Some(t) => format!("≥ {t:.2} {}", if ratio >= t { "✅" } else { "❌" }),
            None => "–".into(),
        };
        writeln!(
            s,
            "| {} | {} | {} | {:.0} | {:.0} | **{:.2}** | {} | {:.0} | {:.2} | **{:.2}** | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs |",
            workload_name(r),
            size_label(r.size),
            r.requests,
            r.base.rps,
            r.veil.rps,
            ratio,
            target,
            r.floor.rps,
            r.floor.rps / r.base.rps,
            r.veil.rps / r.floor.rps,
            r.base.p50_us,
            r.veil.p50_us,
            r.base.p99_us,
            r.veil.p99_us,
        )?;
    }
    writeln!(s, "\n### Added latency (1 client, one request at a time)\n")?;
    writeln!(
        s,
        "| workload | body | p50 no filter | p50 veil | Δp50 | p99 no filter | p99 veil | Δp99 | target | p50 wasm floor | Δp50 veil over floor |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")?;
    for r in results {
        let (b, v) = (&r.base_latency, &r.veil_latency);
        let dp99 = v.p99_us - b.p99_us;
        let target = if r.size == 4 << 10 && !r.pii {
            format!("Δp99 ≤ +100 µs {}", if dp99 <= 100.0 { "✅" } else { "❌" })
        } else {
            "–".into()
        };
        writeln!(
            s,
            "| {} | {} | {:.0} µs | {:.0} µs | **{:+.0} µs** | {:.0} µs | {:.0} µs | **{:+.0} µs** | {} | {:.0} µs | {:+.0} µs |",
            workload_name(r),
            size_label(r.size),
            b.p50_us,
            v.p50_us,
            v.p50_us - b.p50_us,
            b.p99_us,
            v.p99_us,
            dp99,
            target,
            r.floor_latency.p50_us,
            v.p50_us - r.floor_latency.p50_us,
        )?;
    }
    let problems: Vec<String> = results
        .iter()
        .flat_map(|r| {
            [
                ("no filter", &r.base),
                ("veil", &r.veil),
                ("wasm floor", &r.floor),
                ("no filter, 1 client", &r.base_latency),
                ("veil, 1 client", &r.veil_latency),
                ("wasm floor, 1 client", &r.floor_latency),
            ]
            .map(|(n, run)| (r.name, n, run))
        })
        .filter(|(_, _, run)| run.failed > 0 || run.non_2xx > 0)
        .map(|(w, n, run)| format!("{w} / {n}: {} failed, {} non-2xx", run.failed, run.non_2xx))
        .collect();
    if problems.is_empty() {
        writeln!(s, "\nEvery request of every run succeeded with a 2xx.")?;
    } else {
        writeln!(s, "\n**Failed requests:** {}.", problems.join("; "))?;
    }
    writeln!(
        s,
        "\nOn a shared 2-CPU machine the 1% tail is dominated by scheduling stalls of a few \
         ms that hit both Envoys alike; Δp50 is the robust measure of the added latency, \
         Δp99 needs a quiet machine."
    )?;
    writeln!(
        s,
        "\nDESIGN.md targets: 4 KiB ≥ 0.85 of no-filter rps with p99 ≤ +100 µs; 64 KiB ≥ 0.5. \
         The redacted rows have no target; they show the cost when every request is rewritten \
         and each finding is logged as an event (the veil Envoy wrote {:.0} MiB of log in this \
         run).\n",
        f.veil_log_bytes as f64 / (1024.0 * 1024.0)
    )?;

    writeln!(s, "## Envoy memory and start-up\n")?;
    writeln!(s, "| | no filter | veil | difference |")?;
    writeln!(s, "|---|---:|---:|---:|")?;
    let get = |v: &Vec<Option<u64>>, i: usize| v.get(i).copied().flatten();
    writeln!(
        s,
        "| RSS when ready | {} | {} | {} |",
        kib(get(&f.rss_idle, 0)),
        kib(get(&f.rss_idle, 1)),
        delta(get(&f.rss_idle, 0), get(&f.rss_idle, 1))
    )?;
    writeln!(
        s,
        "| RSS after all runs | {} | {} | {} |",
        kib(get(&f.rss_loaded, 0)),
        kib(get(&f.rss_loaded, 1)),
        delta(get(&f.rss_loaded, 0), get(&f.rss_loaded, 1))
    )?;
    let ms = |i: usize| f.ready.get(i).map_or(0, |d| d.as_millis());
    writeln!(
        s,
        "| start to serving | {} ms | {} ms | {:+} ms |",
        ms(0),
        ms(1),
        ms(1) as i128 - ms(0) as i128
    )?;
    writeln!(
        s,
        "\nDESIGN.md targets: veil ≤ +32 MiB RSS over no filter, ready in ≤ 0.5 s, flat over time.\n"
    )?;

    writeln!(s, "## Engine (criterion, native, default bundle)\n")?;
    let mut sizes: Vec<(u64, String)> = engine
        .iter()
        .map(|e| (e.bytes, e.size_label.clone()))
        .collect();
    sizes.sort();
    sizes.dedup();
    let mut functions: Vec<String> = engine.iter().map(|e| e.function.clone()).collect();
    functions.dedup();
    write!(s, "| benchmark |")?;
    for (_, l) in &sizes {
        write!(s, " {l} |")?;
    }
    writeln!(s)?;
    writeln!(s, "|---|{}", "---:|".repeat(sizes.len()))?;
    for func in &functions {
        let what = match func.as_str() {
            "scan" => "`scan` mixed JSON (find only)",
            "inspect" => "`inspect` mixed JSON (scan + decide + redact)",
            "scan_clean" => "`scan` clean JSON (nothing to find)",
            other => other,
        };
        write!(s, "| {what} |")?;
        for (bytes, _) in &sizes {
            match engine
                .iter()
                .find(|e| &e.function == func && e.bytes == *bytes)
            {
                Some(e) => write!(s, " {:.0} MB/s |", e.mb_per_s())?,
                None => write!(s, " – |")?,
            }
        }
        writeln!(s)?;
    }
    writeln!(
        s,
        "\nMB/s = 10⁶ bytes per second, from criterion's estimate in \
         `target/criterion/engine/*/*/new/estimates.json`. DESIGN.md target: ≥ 1.5 GB/s \
         native on mixed JSON; the wasm figures are under \"Detection catalogue throughput\" below.\n"
    )?;
    writeln!(s, "## Reproduce\n")?;
    writeln!(
        s,
        "```sh\ncargo xtask bench\n```\n\nInstalls h2load (Debian `nghttp2-client`) if missing and \
         run as root; this run took {} including builds.",
        human_duration(f.elapsed)
    )?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H2LOAD_OUT: &str = "\
starting benchmark...
spawning thread #0: 16 total client(s). 2000 total requests
Application protocol: h2c
progress: 10% done

finished in 412.35ms, 4850.25 req/s, 19.61MB/s
requests: 2000 total, 2000 started, 2000 done, 1990 succeeded, 10 failed, 10 errored, 0 timeout
status codes: 1990 2xx, 0 3xx, 3 4xx, 0 5xx
traffic: 8.09MB (8478456) total, 62.50KB (64000) headers (space savings 95.25%), 7.97MB (8355840) data
                     min         max         mean         sd        +/- sd
time for request:      412us     12.51ms      3.20ms      1.02ms    70.10%
";

    #[test]
    fn parses_h2load_summary() {
        let r = parse_h2load(H2LOAD_OUT).unwrap();
        assert_eq!(r.rps, 4850.25);
        assert_eq!(r.succeeded, 1990);
        assert_eq!(r.failed, 10);
        assert_eq!(r.non_2xx, 3);
        assert!(parse_h2load("garbage").is_err());
    }

    #[test]
    fn percentiles_use_nearest_rank_and_skip_failed_streams() {
        let mut log = String::new();
        for i in 1..=100 {
            log.push_str(&format!("1700000000000000\t200\t{i}\n"));
        }
        log.push_str("1700000000000000\t-1\t999999\n");
        let (p50, p99, max) = percentiles(&log).unwrap();
        assert_eq!((p50, p99, max), (50.0, 99.0, 100.0));
        assert!(percentiles("").is_err());
    }

    fn run(rps: f64, p50: f64, p99: f64) -> Run {
        Run {
            rps,
            p50_us: p50,
            p99_us: p99,
            max_us: p99 * 2.0,
            succeeded: 100,
            ..Run::default()
        }
    }

    #[test]
    fn structure_section_compares_json_aware_with_raw() {
        let r = |function: &str, size: &str, ns: f64| EngineResult {
            function: function.into(),
            size_label: size.into(),
            bytes: 1_000_000,
            ns,
        };
        let s = render_structure(&[
            r("raw", "64KiB", 1e6),
            r("json_aware", "64KiB", 2e6),
            r("json_aware_escaped", "64KiB", 4e6),
        ])
        .unwrap();
        assert!(
            s.contains("| 64KiB mixed JSON | 1000 MB/s | 500 MB/s | 0.50 | 250 MB/s |"),
            "{s}"
        );
        assert!(!s.contains("1MiB mixed"));
        let report = insert_before_reproduce("a\n## Reproduce\nb", "S\n");
        assert_eq!(report, "a\nS\n## Reproduce\nb");
    }

    #[test]
    fn report_shows_ratios_targets_and_failures() {
        let mut summary = Summary {
            name: "clean-4KiB",
            size: 4096,
            pii: false,
            target_ratio: Some(0.85),
            requests: 1000,
            base: run(10_000.0, 800.0, 1500.0),
            veil: run(9_000.0, 900.0, 1600.0),
            floor: run(9_500.0, 850.0, 1550.0),
            base_latency: run(3000.0, 180.0, 400.0),
            veil_latency: run(2900.0, 200.0, 450.0),
            floor_latency: run(2950.0, 190.0, 420.0),
        };
        let engine = [EngineResult {
            function: "scan".into(),
            size_label: "64KiB".into(),
            bytes: 65536,
            ns: 65536.0,
        }];
        let facts = Facts {
            wasm_kib: 100.0,
            envoy_version: "x/1.40.0/Clean".into(),
            h2load_version: "h2load".into(),
            pin: None,
            rss_idle: vec![Some(1024), Some(2048)],
            rss_loaded: vec![None, None],
            ready: vec![Duration::from_millis(100), Duration::from_millis(300)],
            veil_log_bytes: 0,
            elapsed: Duration::from_secs(90),
            load_before: "0.10 0.20 0.30".into(),
            load_after: "1.0 1.0 1.0".into(),
        };
        let report = render(std::slice::from_ref(&summary), &engine, &facts).unwrap();
        assert!(
            report.contains(
                "| clean-4KiB | 4KiB | 1000 | 10000 | 9000 | **0.90** | ≥ 0.85 ✅ | 9500 | 0.95 | **0.95** |"
            ),
            "{report}"
        );
        assert!(
            report.contains("| Δp99 ≤ +100 µs ✅ | 190 µs | +10 µs |"),
            "{report}"
        );
        assert!(
            report.contains("**+20 µs** | 400 µs | 450 µs | **+50 µs** | Δp99 ≤ +100 µs ✅"),
            "{report}"
        );
        assert!(report.contains("Every request of every run succeeded"));
        assert!(!report.contains("Failed requests"));
        assert!(report.contains("| RSS when ready | 1.0 MiB | 2.0 MiB | +1.0 MiB |"));
        assert!(
            report.contains("| `scan` mixed JSON (find only) | 1000 MB/s |"),
            "{report}"
        );

        summary.veil.failed = 3;
        let report = render(&[summary], &engine, &facts).unwrap();
        assert!(report.contains("**Failed requests:** clean-4KiB / veil: 3 failed, 0 non-2xx."));
    }

    #[test]
    fn export_counters_are_read_from_admin_stats() {
        let stats = "wasmcustom.veil.export.sent: 120\nwasmcustom.veil.export.dropped.reason.queue_full: 3\n";
        assert_eq!(export_counter(stats, "veil.export.sent"), 120);
        assert_eq!(
            export_counter(stats, "veil.export.dropped.reason.queue_full"),
            3
        );
        assert_eq!(export_counter(stats, "veil.export.failed_attempts"), 0);
    }

    #[test]
    fn export_table_compares_each_sink_with_log_only_and_no_filter() {
        let row = |name: &str, rps: f64, sent: u64, dropped: u64| ExportRow {
            name: name.into(),
            what: "sinks".into(),
            run: run(rps, 800.0, 1500.0),
            sent,
            dropped,
            failed_attempts: 0,
        };
        let cost = ExportCost {
            requests: 1000,
            base: run(10_000.0, 700.0, 1200.0),
            rows: vec![
                row("veil", 5_000.0, 0, 0),
                row("veil-otlp", 4_500.0, 9000, 0),
            ],
        };
        let table = render_export(&cost).unwrap();
        assert!(
            table.contains("| veil-otlp | sinks | 4500 | 0.45 | **0.90** |"),
            "{table}"
        );
        assert!(table.contains("| 9000 | 0 | 0 |"), "{table}");
        let report = insert_before_reproduce("# r\n\n## Reproduce\n\nx", &table);
        assert!(report.find("## Cost of exporting events") < report.find("## Reproduce"));
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}

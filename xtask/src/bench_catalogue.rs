//! The detection catalogue's section of benches/RESULTS.md: the criterion
//! bench `eval/benches/catalogue.rs` (whole catalogue and default bundle
//! on the mixed and clean 1 MiB JSON corpora, compile time), and, when
//! `node` is installed, the same engine built for wasm32-wasip1 run in V8
//! by `eval/wasm-run.mjs`, and what compiling a bundle costs inside Envoy's
//! own V8 (the filter logs it). Self-contained so `bench.rs` only inserts
//! what this returns; details and the profile: eval/RESULTS.md.

use crate::envoy::{self, Envoy, EnvoyOptions};
use crate::util::{self, cargo, probe, run, run_bounded, step};
use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

const LIMIT: Duration = Duration::from_secs(15 * 60);
/// Issue 3's targets, MB/s.
const TARGET_NATIVE: f64 = 1500.0;
const TARGET_WASM: f64 = 750.0;

/// One criterion result: `group/function` and its mean time.
#[derive(Debug, Clone, PartialEq)]
struct Measured {
    name: String,
    bytes: Option<u64>,
    ns: f64,
}

/// The Markdown section (never fails the bench: a failure is reported in
/// the section instead). `envoy_bin` and `filter_wasm` are the bench's own.
pub fn section(envoy_bin: &Path, filter_wasm: &Path) -> String {
    let mut s = String::from("## Detection catalogue throughput (engine, 1 MiB JSON)\n\n");
    let native = measure_native();
    let wasm = measure_wasm();
    let in_envoy = measure_envoy_compile(envoy_bin, filter_wasm);
    s.push_str(&render(&native, &wasm, &in_envoy));
    s
}

/// Compile times per wasm VM, from the filter's `loaded bundle ... in N ms`
/// lines: (bundle label, one figure per VM Envoy configured).
type EnvoyCompile = Vec<(&'static str, Vec<f64>)>;

/// Starts Envoy with the filter twice, with the embedded default bundle and
/// with the whole catalogue, and reads what the filter logged for compiling
/// each in every VM. No request is sent, so the upstream is never dialled.
fn measure_envoy_compile(envoy_bin: &Path, filter_wasm: &Path) -> Result<EnvoyCompile> {
    step("bundle compile time inside Envoy (the filter's `loaded bundle` log line)");
    run(cargo().args(["build", "--release", "-p", "veil-cli"]))?;
    let veil = util::target_dir().join("release/veil");
    let (status, full, stderr) = run_bounded(
        Command::new(&veil).args(["catalogue", "--bundle"]),
        Duration::from_secs(60),
    )?;
    ensure!(
        status.success(),
        "veil catalogue --bundle: {}",
        stderr.trim()
    );
    let full: Value = serde_json::from_str(&full).context("veil catalogue --bundle output")?;
    let dir = util::fresh_dir("xtask-bench-compile")?;
    let upstream = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut out = Vec::new();
    for (name, label, config) in [
        ("default", "embedded default bundle", "{}".to_string()),
        (
            "full",
            "whole catalogue",
            json!({ "bundle": full }).to_string(),
        ),
    ] {
        let path = dir.join(format!("{name}.json"));
        let doc = envoy::bootstrap(upstream, Some(filter_wasm), &config);
        fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
        let envoy = Envoy::start(&EnvoyOptions {
            bin: envoy_bin,
            config: &path,
            cwd: &util::root(),
            dir: &dir,
            name,
            cpus: None,
        })?;
        // The log is flushed every 50 ms; every VM is configured before the
        // listener serves.
        std::thread::sleep(Duration::from_millis(300));
        let ms = compile_ms(&envoy.log());
        ensure!(
            !ms.is_empty(),
            "no `veil: loaded bundle ... in N ms` line in {}",
            envoy.log_path.display()
        );
        out.push((label, ms));
    }
    Ok(out)
}

/// The N of each `veil: loaded bundle ... in N ms` line.
fn compile_ms(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find("veil: loaded bundle")?..];
            let rest = &rest[rest.find(") in ")? + 5..];
            rest[..rest.find(" ms")?].parse().ok()
        })
        .collect()
}

fn measure_native() -> Result<Vec<Measured>> {
    step("detection catalogue throughput (eval/benches/catalogue.rs)");
    let since = SystemTime::now();
    let (status, _, stderr) = run_bounded(
        cargo().args(["bench", "-p", "veil-eval", "--bench", "catalogue"]),
        LIMIT,
    )?;
    if !status.success() {
        bail!(
            "cargo bench failed ({status}): {}",
            stderr.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
        );
    }
    read_criterion(since)
}

/// target/criterion/<group>/<function>/new/{benchmark,estimates}.json of
/// the catalogue bench, written after `since`.
fn read_criterion(since: SystemTime) -> Result<Vec<Measured>> {
    let base = util::target_dir().join("criterion");
    let mut out = Vec::new();
    for group in [
        "catalogue_mixed_1MiB",
        "catalogue_clean_1MiB",
        "compile_full_catalogue",
    ] {
        let dir = base.join(group);
        let functions: Vec<_> = if dir.join("new").is_dir() {
            vec![dir.clone()]
        } else {
            fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("new").is_dir())
                .collect()
        };
        for f in functions {
            let new = f.join("new");
            let est = new.join("estimates.json");
            let fresh = fs::metadata(&est)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= since);
            if !fresh {
                continue;
            }
            let e: Value = serde_json::from_slice(&fs::read(&est)?)?;
            let b: Value = serde_json::from_slice(&fs::read(new.join("benchmark.json"))?)?;
            out.push(Measured {
                name: b["full_id"].as_str().unwrap_or("?").to_string(),
                bytes: b["throughput"]["Bytes"].as_u64(),
                ns: e["mean"]["point_estimate"]
                    .as_f64()
                    .context("no mean estimate")?,
            });
        }
    }
    if out.is_empty() {
        bail!("no fresh criterion results under {}", base.display());
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn measure_wasm() -> Result<String> {
    if probe(Command::new("node").arg("--version")).is_none() {
        bail!("node is not installed");
    }
    step("detection catalogue throughput as wasm32-wasip1 in V8 (eval/wasm-run.mjs)");
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "veil-eval",
        "--target",
        "wasm32-wasip1",
        "--bin",
        "veil-eval",
    ]))?;
    let wasm = util::target_dir().join("wasm32-wasip1/release/veil-eval.wasm");
    let (status, stdout, stderr) = run_bounded(
        Command::new("node")
            .current_dir(util::root())
            .arg("eval/wasm-run.mjs")
            .arg(&wasm)
            .args(["throughput", "--secs", "3"]),
        LIMIT,
    )?;
    if !status.success() {
        bail!("wasm runner failed ({status}): {}", stderr.trim());
    }
    Ok(stdout)
}

fn mbps(m: &Measured) -> Option<f64> {
    m.bytes.map(|b| b as f64 / m.ns * 1e3)
}

fn render(
    native: &Result<Vec<Measured>>,
    wasm: &Result<String>,
    in_envoy: &Result<EnvoyCompile>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "The whole catalogue (every built-in detector) and the default bundle scanning \
         `eval/src/mixed.rs`'s JSON order records, with about one sensitive value per KiB \
         (mixed) or none (clean). Targets of issue 3 for the whole catalogue on mixed JSON: \
         {TARGET_NATIVE:.0} MB/s native, {TARGET_WASM:.0} MB/s as wasm; compile < 20 ms.\n"
    );
    match native {
        Ok(results) => {
            let _ = writeln!(s, "Native, criterion (mean):\n");
            let _ = writeln!(s, "| benchmark | time | MB/s |");
            let _ = writeln!(s, "|---|---:|---:|");
            for m in results {
                let rate = mbps(m).map_or("-".into(), |r| format!("{r:.0}"));
                let time = if m.ns >= 1e6 {
                    format!("{:.2} ms", m.ns / 1e6)
                } else {
                    format!("{:.1} µs", m.ns / 1e3)
                };
                let _ = writeln!(s, "| {} | {time} | {rate} |", m.name);
            }
            if let Some(full) = results
                .iter()
                .find(|m| m.name == "catalogue_mixed_1MiB/full_catalogue_scan")
                .and_then(mbps)
            {
                let met = if full >= TARGET_NATIVE {
                    "met"
                } else {
                    "not met"
                };
                let _ = writeln!(
                    s,
                    "\nWhole catalogue, mixed, native: {full:.0} MB/s against {TARGET_NATIVE:.0} ({met})."
                );
            }
        }
        Err(e) => {
            let _ = writeln!(s, "Native: not measured: {e:#}");
        }
    }
    match wasm {
        Ok(out) => {
            let _ = writeln!(
                s,
                "\nwasm32-wasip1 in V8 (Node's WASI), `veil-eval throughput --secs 3`:\n\n```\n{}\n```",
                out.trim()
            );
        }
        Err(e) => {
            let _ = writeln!(s, "\nwasm: not measured: {e:#}");
        }
    }
    match in_envoy {
        Ok(bundles) => {
            let _ = writeln!(
                s,
                "\nCompile inside Envoy's V8, per wasm VM (the filter times parsing and compiling \
                 its bundle with the proxy's clock and logs it in its `loaded bundle` line):\n"
            );
            for (label, ms) in bundles {
                let lo = ms.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = ms.iter().copied().fold(0.0, f64::max);
                let _ = writeln!(s, "- {label}: {lo:.1}-{hi:.1} ms over {} VMs", ms.len());
            }
        }
        Err(e) => {
            let _ = writeln!(s, "\nCompile inside Envoy: not measured: {e:#}");
        }
    }
    let _ = writeln!(
        s,
        "\nReproduce: `cargo bench -p veil-eval --bench catalogue`; \
         `cargo build --release -p veil-eval --target wasm32-wasip1 --bin veil-eval && \
         node eval/wasm-run.mjs target/wasm32-wasip1/release/veil-eval.wasm throughput --secs 3`. \
         Profile and history: eval/RESULTS.md.\n"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_compile_times_from_the_filter_log() {
        let log = "[info][wasm] wasm log veil veil: loaded bundle full-catalogue revision eval (108 rules) in 1.1 ms, max_body_bytes 1048576\n\
                   [info] unrelated line in 5 ms\n\
                   [info][wasm] wasm log veil veil: loaded bundle veil-default revision 1 (99 rules, embedded default) in 0.9 ms, fail_mode Open\n";
        assert_eq!(compile_ms(log), vec![1.1, 0.9]);
    }

    #[test]
    fn renders_rates_targets_and_failures() {
        let native = Ok(vec![
            Measured {
                name: "catalogue_mixed_1MiB/full_catalogue_scan".into(),
                bytes: Some(1_048_576),
                ns: 2_097_152.0,
            },
            Measured {
                name: "compile_full_catalogue".into(),
                bytes: None,
                ns: 1_500_000.0,
            },
        ]);
        let wasm = Ok("full catalogue, mixed: 1049081 bytes, mean 300 MB/s\n".to_string());
        let in_envoy = Ok(vec![("whole catalogue", vec![1.2, 0.9])]);
        let s = render(&native, &wasm, &in_envoy);
        assert!(
            s.contains("- whole catalogue: 0.9-1.2 ms over 2 VMs"),
            "{s}"
        );
        assert!(
            s.contains("| catalogue_mixed_1MiB/full_catalogue_scan | 2.10 ms | 500 |"),
            "{s}"
        );
        assert!(
            s.contains("| compile_full_catalogue | 1.50 ms | - |"),
            "{s}"
        );
        assert!(s.contains("500 MB/s against 1500 (not met)"), "{s}");
        assert!(s.contains("mean 300 MB/s"), "{s}");
        let s = render(
            &Err(anyhow::anyhow!("no cargo")),
            &Err(anyhow::anyhow!("node is not installed")),
            &Err(anyhow::anyhow!("Envoy exited")),
        );
        assert!(
            s.contains("Compile inside Envoy: not measured: Envoy exited"),
            "{s}"
        );
        assert!(s.contains("Native: not measured: no cargo"), "{s}");
        assert!(
            s.contains("wasm: not measured: node is not installed"),
            "{s}"
        );
    }
}

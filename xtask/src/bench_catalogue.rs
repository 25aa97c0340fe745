//! The detection catalogue's section of benches/RESULTS.md: the criterion
//! bench `eval/benches/catalogue.rs` (whole catalogue and default bundle
//! on the mixed and clean 1 MiB JSON corpora, compile time), and, when
//! `node` is installed, the same engine built for wasm32-wasip1 run in V8
//! by `eval/wasm-run.mjs`. Self-contained so `bench.rs` only inserts what
//! this returns; details and the profile: eval/RESULTS.md.

use crate::util::{self, cargo, probe, run, run_bounded, step};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::fs;
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
/// the section instead).
pub fn section() -> String {
    let mut s = String::from("## Detection catalogue throughput (engine, 1 MiB JSON)\n\n");
    let native = measure_native();
    let wasm = measure_wasm();
    s.push_str(&render(&native, &wasm));
    s
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

fn render(native: &Result<Vec<Measured>>, wasm: &Result<String>) -> String {
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
        let s = render(&native, &wasm);
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
        );
        assert!(s.contains("Native: not measured: no cargo"), "{s}");
        assert!(
            s.contains("wasm: not measured: node is not installed"),
            "{s}"
        );
    }
}

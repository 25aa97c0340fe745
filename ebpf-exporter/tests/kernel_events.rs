//! The real exporter against the real kernel: each test starts the
//! binary (BPF programs loaded and attached), triggers one kind of event
//! from this test process or its children, and asserts the exported
//! OpenTelemetry records and metrics. Needs root (CI runs as root); as
//! another user every test prints why it is skipped and passes.
//! The process harness is shared with the join tests in
//! integration-tests (`veil_integration_tests::kernel`).

use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use veil_integration_tests::kernel::{
    rec_attr as attr, rec_has as has, skip_without_root, KernelExporter,
};

const EXPORTER: &str = env!("CARGO_BIN_EXE_veil-ebpf-exporter");
const WAIT: Duration = Duration::from_secs(10);

macro_rules! require_root {
    () => {
        if skip_without_root() {
            return;
        }
    };
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veil-ebpf-t-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the exporter watching this test process and its children.
fn start(name: &str, flag: &str, file: &Path, extra: &[&str]) -> KernelExporter {
    let pid = std::process::id().to_string();
    let mut args = vec![flag, file.to_str().unwrap(), "--watch-pid", &pid];
    args.extend_from_slice(extra);
    KernelExporter::start(Path::new(EXPORTER), name, &args).unwrap()
}

fn start_rules(name: &str, rules: &str) -> (KernelExporter, PathBuf) {
    let dir = scratch(name);
    let p = dir.join("rules.json");
    std::fs::write(&p, rules).unwrap();
    (start(name, "--rules", &p, &[]), dir)
}

#[test]
fn sensitive_file_opens_from_a_bundle_are_reported_with_process_and_result() {
    require_root!();
    let secrets = scratch("secrets");
    let key = secrets.join("tls.key");
    std::fs::write(&key, "not really a key").unwrap();
    let plain = secrets.join("plain.txt");
    // A whole bundle, as the filter reads it, with its kernel section.
    let bundle = format!(
        r#"{{"version": 1, "metadata": {{"name": "t", "revision": "1"}},
            "rules": [{{"id": "pii-email", "category": "pii.email", "detector": {{"builtin": "email"}}, "action": "redact"}}],
            "kernel": {{"report": "matches", "sensitive_paths": ["/etc/shadow", {{"pattern": "{}/*.key", "id": "test-keys", "severity": "critical"}}]}}}}"#,
        secrets.display()
    );
    let bundle_path = secrets.join("bundle.json");
    std::fs::write(&bundle_path, bundle).unwrap();
    let ex = start("open", "--bundle", &bundle_path, &[]);

    // From this process: opens of the key, of a missing key, of a plain file.
    std::fs::read(&key).unwrap();
    let missing = secrets.join("missing.key");
    assert!(std::fs::File::open(&missing).is_err());
    std::fs::write(&plain, "x").unwrap();
    // From a short-lived child: its exe and argv must still be known.
    let st = Command::new("/usr/bin/cat")
        .arg("/etc/shadow")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());

    let key_s = key.to_str().unwrap();
    let r = ex
        .wait_for("for the key", WAIT, |r| has(r, "file.path", key_s))
        .unwrap();
    assert_eq!(r["severityNumber"], 20);
    assert_eq!(r["severityText"], "CRITICAL");
    assert!(has(&r, "veil.rule.id", "test-keys"), "{r}");
    assert!(has(&r, "veil.severity", "critical"));
    assert!(has(&r, "veil.kernel.event", "open"));
    assert!(has(&r, "process.pid", &std::process::id().to_string()));
    assert!(attr(&r, "veil.kernel.result").as_i64().unwrap() >= 0, "{r}");
    assert!(
        r["timeUnixNano"].as_str().unwrap().parse::<u64>().unwrap() > 1_600_000_000_000_000_000
    );
    let exe = std::env::current_exe().unwrap();
    assert!(
        has(&r, "process.executable.path", exe.to_str().unwrap()),
        "{r}"
    );

    let r = ex
        .wait_for("for the missing key", WAIT, |r| {
            has(r, "file.path", missing.to_str().unwrap())
        })
        .unwrap();
    assert_eq!(
        attr(&r, "veil.kernel.result").as_i64(),
        Some(-2),
        "ENOENT: {r}"
    );

    let r = ex
        .wait_for("for cat /etc/shadow", WAIT, |r| {
            has(r, "file.path", "/etc/shadow")
        })
        .unwrap();
    assert!(has(&r, "veil.rule.id", "kernel-sensitive-file"), "{r}");
    assert!(has(&r, "process.executable.path", "/usr/bin/cat"), "{r}");
    assert!(
        has(&r, "process.command_line", "/usr/bin/cat /etc/shadow"),
        "{r}"
    );
    assert!(
        has(&r, "process.parent_pid", &std::process::id().to_string()),
        "{r}"
    );
    assert_eq!(r["severityText"], "ERROR");

    // Nothing else: the plain file matched no rule and report is "matches".
    std::thread::sleep(Duration::from_millis(300));
    let recs = ex.records();
    assert!(
        recs.iter().all(|r| !attr(r, "veil.rule.id").is_null()),
        "only rule matches are reported: {recs:?}"
    );
    let m = ex.scrape().unwrap();
    assert!(
        m.contains("veil_exporter_events_matched_total{rule=\"test-keys\"} 2"),
        "{m}"
    );
    assert!(m.contains("veil_exporter_ringbuf_dropped_total 0"), "{m}");
    let _ = std::fs::remove_dir_all(&secrets);
}

/// `cd /etc && cat shadow`, `openat(dirfd("/etc"), "shadow")` and
/// `/tmp/../etc//shadow` are all the file /etc/shadow: the kernel side
/// resolves relative paths against the cwd or the directory fd, and
/// paths with `.`, `..` or empty components reach user space to be
/// normalized, so none of them slips past the prefix filter.
#[test]
fn relative_and_dotted_paths_cannot_bypass_path_rules() {
    require_root!();
    let (ex, dir) = start_rules(
        "relpath",
        r#"{"kernel": {"report": "matches", "sensitive_paths": ["/etc/shadow"]}}"#,
    );
    let st = Command::new("/usr/bin/cat")
        .arg("shadow")
        .arg("veil-cwd-marker")
        .current_dir("/etc")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success(), "the marker argument does not exist");
    let st = Command::new("/usr/bin/cat")
        .arg("/tmp/../etc//shadow")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    // openat with a directory fd, from this process.
    let etc = std::fs::File::open("/etc").unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: a valid directory fd and a NUL-terminated path.
    let fd = unsafe { libc::openat(etc.as_raw_fd(), c"shadow".as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    // SAFETY: fd was just opened by us.
    unsafe { libc::close(fd) };

    let by_cwd = ex
        .wait_for("for cat shadow in /etc", WAIT, |r| {
            has(r, "file.path", "/etc/shadow")
                && attr(r, "process.command_line")
                    .as_str()
                    .is_some_and(|c| c.contains("veil-cwd-marker"))
        })
        .unwrap();
    assert!(
        has(&by_cwd, "veil.kernel.path_relative", "true"),
        "{by_cwd}"
    );
    assert!(has(&by_cwd, "veil.rule.id", "kernel-sensitive-file"));
    let dotted = ex
        .wait_for("for /tmp/../etc//shadow", WAIT, |r| {
            has(r, "file.path", "/etc/shadow")
                && has(
                    r,
                    "process.command_line",
                    "/usr/bin/cat /tmp/../etc//shadow",
                )
        })
        .unwrap();
    assert!(attr(&dotted, "veil.kernel.path_relative").is_null());
    let by_dirfd = ex
        .wait_for("for openat(dirfd, shadow)", WAIT, |r| {
            has(r, "file.path", "/etc/shadow")
                && has(r, "process.pid", &std::process::id().to_string())
        })
        .unwrap();
    assert!(
        has(&by_dirfd, "veil.kernel.path_relative", "true"),
        "{by_dirfd}"
    );
    drop(ex);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cgroup v2 mount (unified or hybrid layout), if any.
fn cgroup2_root() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next() != Some("cgroup2") {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// Watching a cgroup covers its descendants: a process moved into a child
/// cgroup (as a pod's containers sit below the pod's cgroup) is reported,
/// while this test process, outside the watched cgroup, is not.
#[test]
fn a_watched_cgroup_includes_its_child_cgroups() {
    require_root!();
    let Some(root) = cgroup2_root() else {
        eprintln!("skipped: no cgroup v2 mount");
        return;
    };
    let name = format!("veil-test-{}", std::process::id());
    let parent = root.join(&name);
    let child = parent.join("workload");
    if let Err(e) = std::fs::create_dir_all(&child) {
        eprintln!(
            "skipped: cannot create a cgroup under {}: {e}",
            root.display()
        );
        return;
    }
    let dir = scratch("cgroup");
    let rules = dir.join("rules.json");
    std::fs::write(
        &rules,
        r#"{"kernel": {"report": "matches", "sensitive_paths": ["/etc/gshadow"]}}"#,
    )
    .unwrap();
    let watched = format!("/{name}");
    let ex = KernelExporter::start(
        Path::new(EXPORTER),
        "cgroup",
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--watch-cgroup",
            &watched,
        ],
    )
    .unwrap();
    // Not watched: this process is in another cgroup.
    std::fs::read("/etc/gshadow").unwrap();
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec /usr/bin/cat /etc/gshadow",
        child.display()
    );
    let st = Command::new("/bin/sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let r = ex
        .wait_for("for the child cgroup's open", WAIT, |r| {
            has(r, "file.path", "/etc/gshadow")
        })
        .unwrap();
    assert!(
        has(&r, "veil.cgroup.path", &format!("/{name}/workload")),
        "{r}"
    );
    assert!(has(&r, "process.executable.path", "/usr/bin/cat"), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    let mine: Vec<Value> = ex
        .records()
        .into_iter()
        .filter(|r| has(r, "process.pid", &std::process::id().to_string()))
        .collect();
    assert!(mine.is_empty(), "this process is not watched: {mine:?}");
    drop(ex);
    let _ = std::fs::remove_dir(&child);
    let _ = std::fs::remove_dir(&parent);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unexpected_executables_are_reported_and_allowed_ones_are_not() {
    require_root!();
    let me = std::env::current_exe().unwrap();
    let (ex, dir) = start_rules(
        "exec",
        &format!(
            r#"{{"kernel": {{"report": "matches", "allowed_executables": [{{"executables": ["/usr/bin/cat", "{}", "{EXPORTER}"]}}]}}}}"#,
            me.display()
        ),
    );
    let st = Command::new("/usr/bin/cat")
        .arg("/dev/null")
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("/usr/bin/env")
        .args(["true", "veil-marker-arg"])
        .status()
        .unwrap();
    assert!(st.success());

    let r = ex
        .wait_for("for env", WAIT, |r| {
            has(r, "veil.kernel.event", "exec") && has(r, "process.executable.path", "/usr/bin/env")
        })
        .unwrap();
    assert!(has(&r, "veil.rule.id", "kernel-unexpected-exec"), "{r}");
    assert!(
        has(
            &r,
            "process.command_line",
            "/usr/bin/env true veil-marker-arg"
        ),
        "{r}"
    );
    assert!(
        has(&r, "process.parent_pid", &std::process::id().to_string()),
        "{r}"
    );
    assert_eq!(r["severityText"], "ERROR");
    // env then execs true: a descendant of a watched process is watched too.
    ex.wait_for("for true, exec'd by env", WAIT, |r| {
        has(r, "veil.kernel.event", "exec")
            && attr(r, "process.command_line")
                .as_str()
                .is_some_and(|c| c.starts_with("true veil-marker-arg"))
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let cat = ex
        .records()
        .into_iter()
        .find(|r| has(r, "process.executable.path", "/usr/bin/cat"));
    assert!(cat.is_none(), "cat is allowed: {cat:?}");
    drop(ex);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn disallowed_egress_and_accepted_connections_carry_the_5_tuple() {
    require_root!();
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = allowed.local_addr().unwrap().port();
    let other_port = other.local_addr().unwrap().port();
    let (ex, dir) = start_rules(
        "net",
        &format!(
            r#"{{"kernel": {{"allowed_egress": [{{"destinations": [{{"cidr": "127.0.0.1/32", "ports": [{allowed_port}]}}]}}]}}}}"#
        ),
    );

    let ok = TcpStream::connect(("127.0.0.1", allowed_port)).unwrap();
    let bad = TcpStream::connect(("127.0.0.1", other_port)).unwrap();
    let (srv, peer) = other.accept().unwrap();
    let bad_local = bad.local_addr().unwrap().port();
    assert_eq!(peer.port(), bad_local);

    let r = ex
        .wait_for("for the disallowed connect", WAIT, |r| {
            has(r, "veil.kernel.event", "connect")
                && has(r, "network.peer.port", &other_port.to_string())
        })
        .unwrap();
    assert!(has(&r, "veil.rule.id", "kernel-unexpected-egress"), "{r}");
    assert!(has(&r, "veil.severity", "medium"));
    assert_eq!(r["severityText"], "WARN");
    assert!(has(&r, "network.peer.address", "127.0.0.1"), "{r}");
    assert!(has(&r, "network.local.address", "127.0.0.1"), "{r}");
    assert!(has(&r, "network.local.port", &bad_local.to_string()), "{r}");
    assert!(has(&r, "network.transport", "tcp"));
    assert!(has(&r, "client.port", &bad_local.to_string()));
    assert!(has(&r, "server.port", &other_port.to_string()));
    assert_eq!(attr(&r, "veil.kernel.result").as_i64(), Some(0));

    // The allowed connect is exported too (report "connections", the
    // default) but as plain INFO, without a rule.
    let ok_local = ok.local_addr().unwrap().port();
    let r = ex
        .wait_for("for the allowed connect", WAIT, |r| {
            has(r, "veil.kernel.event", "connect")
                && has(r, "network.local.port", &ok_local.to_string())
        })
        .unwrap();
    assert!(attr(&r, "veil.rule.id").is_null(), "{r}");
    assert_eq!(r["severityText"], "INFO");

    // The accept, on the server side of the same connection: same 5-tuple
    // seen from the other end.
    let r = ex
        .wait_for("for the accept", WAIT, |r| {
            has(r, "veil.kernel.event", "accept")
                && has(r, "network.peer.port", &bad_local.to_string())
        })
        .unwrap();
    assert!(
        has(&r, "network.local.port", &other_port.to_string()),
        "{r}"
    );
    assert!(has(&r, "client.port", &bad_local.to_string()), "{r}");
    assert!(has(&r, "server.port", &other_port.to_string()), "{r}");
    assert!(has(&r, "process.pid", &std::process::id().to_string()));

    // A refused connect is reported with its errno.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert!(TcpStream::connect(("127.0.0.1", closed)).is_err());
    let r = ex
        .wait_for("for the refused connect", WAIT, |r| {
            has(r, "network.peer.port", &closed.to_string())
        })
        .unwrap();
    assert_eq!(
        attr(&r, "veil.kernel.result").as_i64(),
        Some(-111),
        "ECONNREFUSED: {r}"
    );
    let m = ex.scrape().unwrap();
    assert!(
        m.contains("veil_exporter_events_total{kind=\"accept\"}"),
        "{m}"
    );
    drop((ok, bad, srv, ex));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_root_it_names_what_is_missing() {
    require_root!();
    use std::os::unix::process::CommandExt;
    let out = Command::new(EXPORTER)
        .args(["--metrics-addr", "off", "--duration", "1"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("root is required"), "{err}");
}

/// A pod without the host's /sys/kernel mounted: the exporter names the
/// missing kernel BTF instead of failing inside libbpf.
#[test]
fn without_kernel_btf_it_names_the_missing_mount() {
    require_root!();
    if Command::new("unshare").arg("--help").output().is_err() {
        eprintln!("skipped: unshare (util-linux) is not installed");
        return;
    }
    // A private mount namespace where /sys/kernel is an empty tmpfs.
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg(format!(
            "mount -t tmpfs veil-empty /sys/kernel && exec {EXPORTER} --metrics-addr off --duration 1"
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("kernel BTF is missing") && err.contains("/sys/kernel/btf/vmlinux"),
        "{err}"
    );
}

#[test]
fn bad_rules_are_rejected_with_the_field() {
    let dir = scratch("bad");
    let check = |flag: &str, text: &str| {
        let p = dir.join("file.json");
        std::fs::write(&p, text).unwrap();
        let out = Command::new(EXPORTER)
            .arg(flag)
            .arg(&p)
            .arg("--check-rules")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = check(
        "--rules",
        r#"{"kernel": {"allowed_egress": [{"destinations": [{"cidr": "300.0.0.1"}]}]}}"#,
    );
    assert!(
        err.contains("/kernel/allowed_egress/0/destinations/0/cidr") && err.contains("300.0.0.1"),
        "{err}"
    );
    let err = check(
        "--bundle",
        r#"{"version": 1, "metadata": {"name": "t", "revision": "1"}, "rules": [],
            "kernel": {"allowed_executables": [{"executabls": []}]}}"#,
    );
    assert!(
        err.contains("/kernel/allowed_executables/0/executabls"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_daemonset_bundle_is_valid() {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../istio-manifests/exporter-daemonset.yaml"
    );
    let text = std::fs::read_to_string(manifest).unwrap();
    let json = text
        .split("bundle.json: |")
        .nth(1)
        .and_then(|rest| rest.split("\n---").next())
        .expect("the ConfigMap carries bundle.json");
    let dir = scratch("ds");
    let p = dir.join("bundle.json");
    std::fs::write(&p, json).unwrap();
    let out = Command::new(EXPORTER)
        .arg("--bundle")
        .arg(&p)
        .arg("--check-rules")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("rules ok"));
}

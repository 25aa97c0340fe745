//! The real exporter against the real kernel: each test starts the
//! binary (BPF programs loaded and attached), triggers one kind of event
//! from this test process or its children, and asserts the exported
//! OpenTelemetry records and metrics. Needs root (CI runs as root); as
//! another user every test prints why it is skipped and passes, except
//! `without_root_it_names_what_is_missing`, which needs root to drop it.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const EXPORTER: &str = env!("CARGO_BIN_EXE_veil-ebpf-exporter");

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: loading BPF programs needs root");
            return;
        }
    };
}

struct Exporter {
    child: Child,
    dir: PathBuf,
    out: PathBuf,
    metrics: String,
}

impl Exporter {
    /// Starts the exporter watching this test process (and its children)
    /// with `rules` and waits until its programs are attached.
    fn start(name: &str, rules: &str) -> Exporter {
        let dir = std::env::temp_dir().join(format!("veil-ebpf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rules_path = dir.join("rules.json");
        std::fs::write(&rules_path, rules).unwrap();
        let out = dir.join("events.jsonl");
        let mut child = Command::new(EXPORTER)
            .arg("--rules")
            .arg(&rules_path)
            .arg("--output")
            .arg(&out)
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--watch-pid", &std::process::id().to_string()])
            .args(["--duration", "120"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the exporter");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[exporter] {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
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
                        panic!("exporter failed to start: {line}");
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("exporter did not attach within 30 s");
                }
            }
        }
        Exporter {
            child,
            dir,
            out,
            metrics: metrics.expect("metrics address line"),
        }
    }

    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is one JSON record"))
            .collect()
    }

    /// The first record for which `pred` holds, waiting up to 10 s.
    fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(r) = self.records().into_iter().find(|r| pred(r)) {
                return r;
            }
            if Instant::now() > deadline {
                let all: Vec<String> = self.records().iter().map(|r| r.to_string()).collect();
                panic!("no record {what} within 10 s; got:\n{}", all.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn scrape(&self) -> String {
        let mut c = TcpStream::connect(&self.metrics).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK"), "{s}");
        s
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        // SIGTERM, then a bounded wait, then SIGKILL.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn attr<'a>(r: &'a Value, k: &str) -> &'a Value {
    &r["attributes"][k]
}

fn has(r: &Value, k: &str, v: &str) -> bool {
    match attr(r, k) {
        Value::String(s) => s == v,
        Value::Number(n) => n.to_string() == v,
        _ => false,
    }
}

#[test]
fn sensitive_file_opens_are_reported_with_process_and_result() {
    require_root!();
    let secrets = std::env::temp_dir().join(format!("veil-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&secrets).unwrap();
    let key = secrets.join("tls.key");
    std::fs::write(&key, "not really a key").unwrap();
    let plain = secrets.join("../veil-plain.txt");
    let rules = format!(
        r#"{{"kernel": {{"report": "matches", "sensitive_paths": ["/etc/shadow", {{"pattern": "{}/*.key", "id": "test-keys", "severity": "critical"}}]}}}}"#,
        secrets.display()
    );
    let ex = Exporter::start("open", &rules);

    // From this process: opens of the key, of a missing key, of a plain file.
    std::fs::read(&key).unwrap();
    let missing = secrets.join("missing.key");
    assert!(std::fs::File::open(&missing).is_err());
    let _ = std::fs::write(&plain, "x");
    // From a short-lived child: its exe and argv must still be known.
    let st = Command::new("/usr/bin/cat")
        .arg("/etc/shadow")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());

    let key_s = key.to_str().unwrap();
    let r = ex.wait_for("for the key", |r| has(r, "file.path", key_s));
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

    let r = ex.wait_for("for the missing key", |r| {
        has(r, "file.path", missing.to_str().unwrap())
    });
    assert_eq!(
        attr(&r, "veil.kernel.result").as_i64(),
        Some(-2),
        "ENOENT: {r}"
    );

    let r = ex.wait_for("for cat /etc/shadow", |r| {
        has(r, "file.path", "/etc/shadow")
    });
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
    let m = ex.scrape();
    assert!(
        m.contains("veil_exporter_events_matched_total{rule=\"test-keys\"} 2"),
        "{m}"
    );
    assert!(m.contains("veil_exporter_ringbuf_dropped_total 0"), "{m}");
    let _ = std::fs::remove_dir_all(&secrets);
    let _ = std::fs::remove_file(&plain);
}

#[test]
fn unexpected_executables_are_reported_and_allowed_ones_are_not() {
    require_root!();
    let me = std::env::current_exe().unwrap();
    let rules = format!(
        r#"{{"kernel": {{"report": "matches", "allowed_executables": [{{"executables": ["/usr/bin/cat", "{}", "{EXPORTER}"]}}]}}}}"#,
        me.display()
    );
    let ex = Exporter::start("exec", &rules);
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

    let r = ex.wait_for("for env", |r| {
        has(r, "veil.kernel.event", "exec") && has(r, "process.executable.path", "/usr/bin/env")
    });
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
    ex.wait_for("for true, exec'd by env", |r| {
        has(r, "veil.kernel.event", "exec")
            && attr(r, "process.command_line")
                .as_str()
                .is_some_and(|c| c.starts_with("true veil-marker-arg"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let cat = ex
        .records()
        .into_iter()
        .find(|r| has(r, "process.executable.path", "/usr/bin/cat"));
    assert!(cat.is_none(), "cat is allowed: {cat:?}");
}

#[test]
fn disallowed_egress_and_accepted_connections_carry_the_5_tuple() {
    require_root!();
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = allowed.local_addr().unwrap().port();
    let other_port = other.local_addr().unwrap().port();
    let rules = format!(
        r#"{{"kernel": {{"allowed_egress": [{{"destinations": [{{"cidr": "127.0.0.1/32", "ports": [{allowed_port}]}}]}}]}}}}"#
    );
    let ex = Exporter::start("net", &rules);

    let ok = TcpStream::connect(("127.0.0.1", allowed_port)).unwrap();
    let bad = TcpStream::connect(("127.0.0.1", other_port)).unwrap();
    let (srv, peer) = other.accept().unwrap();
    let bad_local = bad.local_addr().unwrap().port();
    assert_eq!(peer.port(), bad_local);

    let r = ex.wait_for("for the disallowed connect", |r| {
        has(r, "veil.kernel.event", "connect")
            && has(r, "network.peer.port", &other_port.to_string())
    });
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
    let r = ex.wait_for("for the allowed connect", |r| {
        has(r, "veil.kernel.event", "connect")
            && has(r, "network.local.port", &ok_local.to_string())
    });
    assert!(attr(&r, "veil.rule.id").is_null(), "{r}");
    assert_eq!(r["severityText"], "INFO");

    // The accept, on the server side of the same connection: same 5-tuple
    // seen from the other end.
    let r = ex.wait_for("for the accept", |r| {
        has(r, "veil.kernel.event", "accept") && has(r, "network.peer.port", &bad_local.to_string())
    });
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
    let r = ex.wait_for("for the refused connect", |r| {
        has(r, "network.peer.port", &closed.to_string())
    });
    assert_eq!(
        attr(&r, "veil.kernel.result").as_i64(),
        Some(-111),
        "ECONNREFUSED: {r}"
    );
    let m = ex.scrape();
    assert!(
        m.contains("veil_exporter_events_total{kind=\"accept\"}"),
        "{m}"
    );
    drop((ok, bad, srv));
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

#[test]
fn bad_rules_are_rejected_with_the_field() {
    let dir = std::env::temp_dir().join(format!("veil-ebpf-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p: &Path = &dir.join("bad.json");
    std::fs::write(
        p,
        r#"{"kernel": {"allowed_egress": [{"destinations": [{"cidr": "300.0.0.1"}]}]}}"#,
    )
    .unwrap();
    let out = Command::new(EXPORTER)
        .arg("--rules")
        .arg(p)
        .arg("--check-rules")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("allowed_egress[0]") && err.contains("300.0.0.1"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_daemonset_rules_are_valid() {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../istio-manifests/exporter-daemonset.yaml"
    );
    let text = std::fs::read_to_string(manifest).unwrap();
    let json = text
        .split("rules.json: |")
        .nth(1)
        .and_then(|rest| rest.split("\n---").next())
        .expect("the ConfigMap carries rules.json");
    let dir = std::env::temp_dir().join(format!("veil-ebpf-ds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("rules.json");
    std::fs::write(&p, json).unwrap();
    let out = Command::new(EXPORTER)
        .arg("--rules")
        .arg(&p)
        .arg("--check-rules")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("rules ok"));
}

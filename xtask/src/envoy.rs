//! Starting the real pieces the demo and the bench drive: the `veil-echo`
//! upstream and Envoy (with or without the veil wasm filter), each as a
//! `Proc` that is killed when dropped. Envoy binds port 0 for its listener
//! and admin and reports the admin address through a file, and xtask asks
//! the admin API which port the listener got, so parallel runs and busy
//! machines never collide on fixed ports.

use crate::http;
use crate::util::{self, Proc};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const LISTENER_NAME: &str = "veil_ingress";

/// The wasm HTTP filter entry for veil, as in envoy-config/demo.yaml.
pub fn wasm_filter(wasm: &Path, plugin_config: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "veil",
                "root_id": "veil",
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config,
                },
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "vm_id": "veil",
                    "code": { "local": { "filename": wasm.to_string_lossy() } },
                },
            },
        },
    })
}

fn socket_address(addr: SocketAddr) -> Value {
    json!({ "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() } })
}

/// A bootstrap with one HTTP listener (codec AUTO: HTTP/1.1 and h2c), the
/// veil filter when `wasm` is given, the router, and an HTTP/1.1 cluster
/// to `upstream`. Listener and admin bind port 0. With and without the
/// filter the configuration is otherwise identical, which is what makes
/// the bench's comparison fair.
pub fn bootstrap(upstream: SocketAddr, wasm: Option<&Path>, plugin_config: &str) -> Value {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut filters = Vec::new();
    if let Some(wasm) = wasm {
        filters.push(wasm_filter(wasm, plugin_config));
    }
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
    }));
    json!({
        "admin": { "address": socket_address(any) },
        "static_resources": {
            "listeners": [{
                "name": LISTENER_NAME,
                "address": socket_address(any),
                "filter_chains": [{
                    "filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "veil",
                            "codec_type": "AUTO",
                            "route_config": {
                                "name": "local",
                                "virtual_hosts": [{
                                    "name": "all",
                                    "domains": ["*"],
                                    "routes": [{
                                        "match": { "prefix": "/" },
                                        "route": { "cluster": "upstream", "timeout": "30s" },
                                    }],
                                }],
                            },
                            "http_filters": filters,
                        },
                    }],
                }],
            }],
            "clusters": [static_cluster("upstream", upstream)],
        },
    })
}

/// Adds a STATIC HTTP/1.1 cluster `name` towards `addr` to a bootstrap
/// made by `bootstrap` (e.g. the OTLP collector of veil's export).
pub fn add_cluster(doc: &mut Value, name: &str, addr: SocketAddr) {
    if let Some(clusters) = doc["static_resources"]["clusters"].as_array_mut() {
        clusters.push(static_cluster(name, addr));
    }
}

fn static_cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket_address(addr) } }] }],
        },
    })
}

/// A running Envoy.
pub struct Envoy {
    pub proc: Proc,
    pub admin: SocketAddr,
    pub listener: SocketAddr,
    pub log_path: PathBuf,
    /// From spawn to serving the listener.
    pub ready_after: Duration,
}

pub struct EnvoyOptions<'a> {
    pub bin: &'a Path,
    pub config: &'a Path,
    /// Working directory (relative wasm paths resolve against it).
    pub cwd: &'a Path,
    /// Where the log, stderr and admin address file go.
    pub dir: &'a Path,
    pub name: &'a str,
    /// `taskset` CPU list to pin Envoy to.
    pub cpus: Option<&'a str>,
}

impl Envoy {
    pub fn start(o: &EnvoyOptions<'_>) -> Result<Envoy> {
        let log_path = o.dir.join(format!("{}.log", o.name));
        let stderr_path = o.dir.join(format!("{}.stderr", o.name));
        let admin_path = o.dir.join(format!("{}.admin", o.name));
        let _ = fs::remove_file(&admin_path);
        let stderr = fs::File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;
        let mut cmd = match o.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(o.bin);
                c
            }
            None => Command::new(o.bin),
        };
        cmd.current_dir(o.cwd)
            .arg("-c")
            .arg(o.config)
            .args(["--concurrency", "1"])
            // No shared memory: several Envoys can run side by side and a
            // killed one leaves nothing in /dev/shm.
            .arg("--disable-hot-restart")
            .args(["-l", "info"])
            .arg("--log-path")
            .arg(&log_path)
            .args(["--file-flush-interval-msec", "50"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(stderr.try_clone()?)
            .stderr(stderr);
        println!("$ {}", util::display(&cmd));
        let started = Instant::now();
        let mut proc = Proc::spawn(o.name, &mut cmd)?;
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Some(status) = proc.exited() {
                bail!(
                    "Envoy ({}) exited during start-up ({status}); log tail:\n{}\n{}",
                    o.name,
                    util::tail(&log_path, 30),
                    util::tail(&stderr_path, 10)
                );
            }
            if let Some((admin, listener)) = probe_ready(&admin_path)? {
                return Ok(Envoy {
                    proc,
                    admin,
                    listener,
                    log_path,
                    ready_after: started.elapsed(),
                });
            }
            if Instant::now() >= deadline {
                bail!(
                    "Envoy ({}) was not ready within 60 s; log tail:\n{}",
                    o.name,
                    util::tail(&log_path, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.proc.pid())
    }
}

/// Resident set size of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `(admin, listener)` once Envoy says LIVE and its listener has a port.
fn probe_ready(admin_path: &Path) -> Result<Option<(SocketAddr, SocketAddr)>> {
    let Ok(text) = fs::read_to_string(admin_path) else {
        return Ok(None);
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let admin: SocketAddr = text
        .trim()
        .parse()
        .with_context(|| format!("unexpected admin address {text:?}"))?;
    match http::get(admin, "/ready") {
        Ok(r) if r.status == 200 => {}
        _ => return Ok(None),
    }
    let listeners = http::get(admin, "/listeners?format=json")?;
    let v: Value = serde_json::from_slice(&listeners.body).context("parsing /listeners")?;
    let port = v["listener_statuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
        .find(|p| *p != 0);
    Ok(port.map(|p| (admin, SocketAddr::from(([127, 0, 0, 1], p as u16)))))
}

/// A running `veil-echo`.
pub struct Echo {
    /// Held so the process is killed when the `Echo` is dropped.
    _proc: Proc,
    pub addr: SocketAddr,
}

impl Echo {
    /// Starts `veil-echo --listen <listen>` and waits for its
    /// `listening on IP:PORT` line.
    pub fn start(bin: &Path, listen: &str, stderr: &Path, cpus: Option<&str>) -> Result<Echo> {
        let mut cmd = match cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["--listen", listen])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(stderr)?);
        println!("$ {}", util::display(&cmd));
        let mut proc = Proc::spawn("veil-echo", &mut cmd)?;
        let stdout = proc.child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            // Keep the pipe open and drained for the child's lifetime.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| anyhow!("veil-echo did not report its address within 20 s"))?
            .context("reading veil-echo's stdout")?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                anyhow!(
                    "veil-echo printed {line:?}, expected `listening on IP:PORT`; stderr:\n{}",
                    util::tail(stderr, 10)
                )
            })?;
        Ok(Echo { _proc: proc, addr })
    }
}

/// veil's finding events in an Envoy log: each is a JSON object on a
/// `wasm log` line, with `veil.*` attributes.
pub fn events(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find("wasm log")?..];
            let json = &rest[rest.find('{')?..];
            let v: Value = serde_json::Deserializer::from_str(json)
                .into_iter::<Value>()
                .next()?
                .ok()?;
            v["attributes"].as_object()?;
            Some(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_found_after_envoys_prefix() {
        let log = concat!(
            "[2026-11-22 03:00:00.000][1][info][main] starting\n",
            "[2026-11-22 03:00:01.000][2][info][wasm] [source/extensions/common/wasm/context.cc:1195] ",
            "wasm log veil veil: {\"body\":\"x\",\"attributes\":{\"veil.rule.id\":\"pii-email\"}}\n",
            "[2026-11-22 03:00:01.000][2][info][wasm] wasm log veil veil: not json\n",
        );
        let ev = events(log);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["attributes"]["veil.rule.id"], "pii-email");
    }

    #[test]
    fn bootstrap_with_and_without_filter_differ_only_in_the_filter() {
        let up: SocketAddr = "127.0.0.1:1234".parse().unwrap();
        let with = bootstrap(up, Some(Path::new("/x/veil.wasm")), "{}");
        let mut without = bootstrap(up, None, "{}");
        let path =
            "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters";
        assert_eq!(with.pointer(path).unwrap().as_array().unwrap().len(), 2);
        let filters = with.pointer(path).unwrap().clone();
        *without.pointer_mut(path).unwrap() = filters;
        assert_eq!(with, without);
    }
}

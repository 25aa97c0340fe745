//! Prometheus metrics on a real HTTP endpoint: a std TcpListener thread
//! answering `GET /metrics` (text format 0.0.4) and `GET /healthz`.

use crate::event::Kind;
use crate::otlp::{DROP_EXPORT_FAILED, DROP_QUEUE_FULL, DROP_REJECTED};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    /// Events received from the ring buffer, by kind (index: Kind::index).
    pub seen: [AtomicU64; Kind::ALL.len()],
    /// Events that matched a rule, by rule id.
    pub matched: Mutex<BTreeMap<String, u64>>,
    /// Records written.
    pub exported: AtomicU64,
    /// Events the kernel could not reserve ring-buffer space for (sum over CPUs).
    pub dropped: AtomicU64,
    /// Events the kernel submitted (sum over CPUs).
    pub submitted: AtomicU64,
    /// Records that could not be written (output error).
    pub write_errors: AtomicU64,
    /// Records the OTLP collector accepted.
    pub otlp_exported: AtomicU64,
    /// Records that did not reach the collector, by reason.
    pub otlp_dropped: Mutex<BTreeMap<&'static str, u64>>,
    /// Failed OTLP requests (each retry counts).
    pub otlp_failures: AtomicU64,
    /// Per attached program: (tracepoint, run time ns, runs), as the
    /// kernel counts them with kernel.bpf_stats_enabled=1.
    pub bpf_stats: Mutex<Vec<(&'static str, (u64, u64))>>,
}

impl Metrics {
    pub fn saw(&self, kind: Kind) {
        self.seen[kind.index()].fetch_add(1, Ordering::Relaxed);
    }
    pub fn count_otlp_drop(&self, reason: &'static str, n: u64) {
        *self
            .otlp_dropped
            .lock()
            .expect("metrics lock")
            .entry(reason)
            .or_default() += n;
    }
    pub fn set_bpf_stats(&self, stats: Vec<(&'static str, (u64, u64))>) {
        *self.bpf_stats.lock().expect("metrics lock") = stats;
    }

    pub fn matched(&self, rule: &str) {
        let mut m = self.matched.lock().expect("metrics lock");
        match m.get_mut(rule) {
            Some(n) => *n += 1,
            None => {
                m.insert(rule.to_string(), 1);
            }
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP veil_exporter_events_total Kernel events received from the ring buffer.\n",
        );
        out.push_str("# TYPE veil_exporter_events_total counter\n");
        for k in Kind::ALL {
            let v = self.seen[k.index()].load(Ordering::Relaxed);
            out.push_str(&format!(
                "veil_exporter_events_total{{kind=\"{}\"}} {v}\n",
                k.as_str()
            ));
        }
        out.push_str(
            "# HELP veil_exporter_events_matched_total Kernel events that matched a rule.\n",
        );
        out.push_str("# TYPE veil_exporter_events_matched_total counter\n");
        for (k, v) in self.matched.lock().expect("metrics lock").iter() {
            let k = k.replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!(
                "veil_exporter_events_matched_total{{rule=\"{k}\"}} {v}\n"
            ));
        }
        let simple = [
            (
                "veil_exporter_records_exported_total",
                "Log records written.",
                &self.exported,
            ),
            (
                "veil_exporter_ringbuf_dropped_total",
                "Events lost because the BPF ring buffer was full (counted per CPU in the kernel).",
                &self.dropped,
            ),
            (
                "veil_exporter_kernel_submitted_total",
                "Events the BPF programs submitted to the ring buffer.",
                &self.submitted,
            ),
            (
                "veil_exporter_write_errors_total",
                "Records that could not be written to the output.",
                &self.write_errors,
            ),
            (
                "veil_exporter_otlp_records_exported_total",
                "Records the OTLP collector accepted.",
                &self.otlp_exported,
            ),
            (
                "veil_exporter_otlp_request_failures_total",
                "OTLP export requests that failed (each retry counts).",
                &self.otlp_failures,
            ),
        ];
        for (name, help, v) in simple {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out.push_str(
            "# HELP veil_exporter_otlp_records_dropped_total Records that did not reach the OTLP collector (queue_full: the export queue was full; export_failed: retries exhausted; rejected: the collector refused them).\n",
        );
        out.push_str("# TYPE veil_exporter_otlp_records_dropped_total counter\n");
        let stats = self.bpf_stats.lock().expect("metrics lock");
        out.push_str(
            "# HELP veil_exporter_bpf_run_time_seconds_total Time the kernel spent in each BPF program (counted while sysctl kernel.bpf_stats_enabled=1).\n\
             # TYPE veil_exporter_bpf_run_time_seconds_total counter\n",
        );
        for (name, (ns, _)) in stats.iter() {
            out.push_str(&format!(
                "veil_exporter_bpf_run_time_seconds_total{{tracepoint=\"{name}\"}} {:.9}\n",
                *ns as f64 / 1e9
            ));
        }
        out.push_str(
            "# HELP veil_exporter_bpf_runs_total Runs of each BPF program (counted while sysctl kernel.bpf_stats_enabled=1).\n\
             # TYPE veil_exporter_bpf_runs_total counter\n",
        );
        for (name, (_, runs)) in stats.iter() {
            out.push_str(&format!(
                "veil_exporter_bpf_runs_total{{tracepoint=\"{name}\"}} {runs}\n"
            ));
        }
        drop(stats);
        let dropped = self.otlp_dropped.lock().expect("metrics lock");
        // Every reason, zeros included, so rate() and alerts see the series.
        for k in [DROP_QUEUE_FULL, DROP_EXPORT_FAILED, DROP_REJECTED] {
            out.push_str(&format!(
                "veil_exporter_otlp_records_dropped_total{{reason=\"{k}\"}} {}\n",
                dropped.get(k).copied().unwrap_or(0)
            ));
        }
        out
    }
}

/// Binds `addr` and serves metrics from a background thread; returns the
/// bound address (port 0 picks a free one).
pub fn serve(addr: &str, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = handle(conn, &metrics);
            }
        })?;
    Ok(local)
}

fn handle(mut conn: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        let n = conn.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        ),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_metrics_over_http() {
        let m = Arc::new(Metrics::default());
        m.saw(Kind::Open);
        m.matched("kernel-sensitive-file");
        m.dropped.store(3, Ordering::Relaxed);
        let addr = serve("127.0.0.1:0", m).unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK"), "{s}");
        assert!(
            s.contains("veil_exporter_events_total{kind=\"open\"} 1"),
            "{s}"
        );
        assert!(s.contains("veil_exporter_events_matched_total{rule=\"kernel-sensitive-file\"} 1"));
        assert!(s.contains("veil_exporter_ringbuf_dropped_total 3"));
    }
}

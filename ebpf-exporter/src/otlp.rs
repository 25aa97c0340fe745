//! OTLP/HTTP export of the records (JSON encoding, `POST /v1/logs`), in
//! the mapping the filter uses (`Record::to_otlp_json` and
//! `otlp_logs_body` in veil_engine::event).
//! The event loop hands each record to a bounded queue and never waits:
//! when the queue is full the record is dropped and counted. One export
//! thread batches records, posts them, and retries transient failures
//! (connection errors, 429, 502-504) with exponential backoff; a batch it
//! gives up on, or one the collector rejects, is counted by reason in the
//! Prometheus metrics. Nothing is lost silently.

use crate::metrics::Metrics;
use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use veil_engine::event::{otlp_logs_body, Resource};

#[derive(Debug, Clone)]
pub struct Config {
    /// `http://host:port/v1/logs` (a URL without a path gets `/v1/logs`).
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    /// Records per request.
    pub batch: usize,
    /// Records waiting for the export thread; beyond it records are dropped.
    pub queue: usize,
    /// A partial batch is sent after this long.
    pub flush_interval: Duration,
    /// Per request.
    pub timeout: Duration,
    /// Attempts after the first for a transient failure.
    pub retries: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Config {
    pub fn new(endpoint: &str) -> Result<Config> {
        let Some(rest) = endpoint.strip_prefix("http://") else {
            if endpoint.starts_with("https://") {
                bail!(
                    "OTLP endpoint {endpoint}: https is not supported; export to a node-local \
                     collector over http (its exporter can use TLS)"
                );
            }
            bail!("OTLP endpoint {endpoint} must be an http:// URL");
        };
        let endpoint = match rest.split_once('/') {
            None | Some((_, "")) => format!("http://{}/v1/logs", rest.trim_end_matches('/')),
            Some(_) => endpoint.to_string(),
        };
        Ok(Config {
            endpoint,
            headers: Vec::new(),
            batch: 512,
            queue: 16_384,
            flush_interval: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            retries: 5,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
        })
    }
}

/// Why records did not reach the collector (the `reason` label).
pub const DROP_QUEUE_FULL: &str = "queue_full";
pub const DROP_EXPORT_FAILED: &str = "export_failed";
pub const DROP_REJECTED: &str = "rejected";

/// The event loop's handle on the export thread.
pub struct Sender {
    tx: Option<SyncSender<String>>,
    metrics: Arc<Metrics>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sender {
    pub fn start(cfg: Config, resource: Resource, metrics: Arc<Metrics>) -> Result<Sender> {
        let (tx, rx) = mpsc::sync_channel::<String>(cfg.queue.max(1));
        let stopping = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(cfg.timeout))
                .build()
                .into(),
            cfg,
            resource,
            metrics: metrics.clone(),
            stopping: stopping.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("otlp".into())
            .spawn(move || worker.run(rx))
            .context("starting the OTLP export thread")?;
        Ok(Sender {
            tx: Some(tx),
            metrics,
            stopping,
            thread: Some(thread),
        })
    }

    /// Queues one record (an OTLP/JSON `LogRecord`); drops and counts it
    /// when the queue is full.
    pub fn send(&self, record: String) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.metrics.count_otlp_drop(DROP_QUEUE_FULL, 1);
            }
        }
    }

    /// Sends what is queued, one attempt per batch, waiting at most
    /// `within`; what is still queued after that is counted as dropped.
    pub fn shutdown(mut self, within: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + within;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

struct Worker {
    agent: ureq::Agent,
    cfg: Config,
    resource: Resource,
    metrics: Arc<Metrics>,
    stopping: Arc<AtomicBool>,
}

enum Outcome {
    Delivered,
    Retry(String),
    Rejected(String),
}

impl Worker {
    fn run(self, rx: mpsc::Receiver<String>) {
        let mut batch: Vec<String> = Vec::with_capacity(self.cfg.batch);
        let mut oldest: Option<Instant> = None;
        loop {
            let wait = match oldest {
                Some(t) => self.cfg.flush_interval.saturating_sub(t.elapsed()),
                None => Duration::from_secs(3600),
            };
            match rx.recv_timeout(wait) {
                Ok(record) => {
                    batch.push(record);
                    oldest.get_or_insert_with(Instant::now);
                    if batch.len() >= self.cfg.batch {
                        self.export(&mut batch);
                        oldest = None;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if !batch.is_empty() {
                        self.export(&mut batch);
                    }
                    oldest = None;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if !batch.is_empty() {
                        self.export(&mut batch);
                    }
                    return;
                }
            }
        }
    }

    fn export(&self, batch: &mut Vec<String>) {
        let n = batch.len() as u64;
        let body = otlp_logs_body(&self.resource, env!("CARGO_PKG_VERSION"), batch);
        batch.clear();
        let mut backoff = self.cfg.backoff_initial;
        let mut attempt = 0;
        loop {
            match self.post(body.as_bytes()) {
                Outcome::Delivered => {
                    self.metrics.otlp_exported.fetch_add(n, Ordering::Relaxed);
                    return;
                }
                Outcome::Rejected(why) => {
                    self.metrics.otlp_failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("veil-ebpf-exporter: OTLP collector rejected {n} records: {why}");
                    self.metrics.count_otlp_drop(DROP_REJECTED, n);
                    return;
                }
                Outcome::Retry(why) => {
                    self.metrics.otlp_failures.fetch_add(1, Ordering::Relaxed);
                    if attempt >= self.cfg.retries || self.stopping.load(Ordering::SeqCst) {
                        eprintln!(
                            "veil-ebpf-exporter: OTLP export of {n} records failed after {} attempts: {why}",
                            attempt + 1
                        );
                        self.metrics.count_otlp_drop(DROP_EXPORT_FAILED, n);
                        return;
                    }
                    attempt += 1;
                    sleep_unless_stopping(backoff, &self.stopping);
                    backoff = (backoff * 2).min(self.cfg.backoff_max);
                }
            }
        }
    }

    fn post(&self, body: &[u8]) -> Outcome {
        let mut req = self
            .agent
            .post(&self.cfg.endpoint)
            .header("content-type", "application/json");
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send(body) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                // Drain the (small) answer so the connection is reused.
                let answer = resp
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                match status {
                    200..=299 => Outcome::Delivered,
                    // The retryable statuses of the OTLP/HTTP specification.
                    429 | 502 | 503 | 504 => Outcome::Retry(format!("HTTP {status}")),
                    _ => Outcome::Rejected(format!(
                        "HTTP {status}: {}",
                        answer.chars().take(200).collect::<String>()
                    )),
                }
            }
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }
}

fn sleep_unless_stopping(d: Duration, stopping: &AtomicBool) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stopping.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20).min(d));
    }
}

/// The exporter's OpenTelemetry resource: who emitted the records.
pub fn resource(host: Option<&str>) -> Resource {
    let mut attributes = vec![
        ("service.name".to_string(), "veil-ebpf-exporter".to_string()),
        (
            "service.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ];
    if let Some(h) = host {
        attributes.push(("host.name".into(), h.to_string()));
    }
    // The DaemonSet passes the node name through the downward API.
    if let Ok(node) = std::env::var("NODE_NAME") {
        if !node.is_empty() {
            attributes.push(("k8s.node.name".into(), node));
        }
    }
    attributes.push(("telemetry.sdk.name".into(), "veil".into()));
    attributes.push(("telemetry.sdk.language".into(), "rust".into()));
    Resource { attributes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Config::new("http://127.0.0.1:4318").unwrap().endpoint,
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(
            Config::new("http://collector:4318/").unwrap().endpoint,
            "http://collector:4318/v1/logs"
        );
        assert_eq!(
            Config::new("http://c:4318/custom/logs").unwrap().endpoint,
            "http://c:4318/custom/logs"
        );
        assert!(Config::new("https://c:4318")
            .unwrap_err()
            .to_string()
            .contains("https"));
        assert!(Config::new("c:4318").is_err());
    }
}

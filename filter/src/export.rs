//! OTLP/HTTP (JSON) export of events, from the root context.
//!
//! HTTP contexts of the VM push event records into a bounded queue shared
//! through `Rc<RefCell<..>>` (one VM is one thread); the root context drains
//! it with `dispatch_http_call` to the collector cluster, one request in
//! flight at a time. The timer ticks faster than the flush interval
//! ([`tick_period_ms`]) so a full batch never waits for the interval: a
//! proxy making events faster than one batch per interval would otherwise
//! fill the queue between ticks and drop. A failed batch (no answer, timeout, 429,
//! 5xx) is retried with doubling backoff up to `max_retries`, then dropped
//! and counted; a full queue drops the new record and counts it. Nothing
//! here ever waits for the collector: traffic never blocks on export.

use crate::config::OtlpSettings;
use crate::host::{self, Level};
use crate::metrics::ExportIds;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use veil_engine::event::{otlp_logs_body, Record, Resource};

/// Records waiting for export.
#[derive(Debug)]
pub struct ExportQueue {
    /// OTLP/JSON `LogRecord`s, rendered when queued.
    records: VecDeque<String>,
    max: usize,
}

pub type SharedQueue = Rc<RefCell<ExportQueue>>;

impl ExportQueue {
    pub fn new(max: usize) -> ExportQueue {
        ExportQueue {
            records: VecDeque::new(),
            max,
        }
    }

    /// Adds a record; false (and the record is dropped) when full.
    pub fn push(&mut self, record: String) -> bool {
        if self.records.len() >= self.max {
            return false;
        }
        self.records.push_back(record);
        true
    }

    pub fn is_full(&self) -> bool {
        self.records.len() >= self.max
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn take(&mut self, n: usize) -> Vec<String> {
        let n = n.min(self.records.len());
        self.records.drain(..n).collect()
    }
}

/// Hands one event to the exporter (from an HTTP context); counts a drop.
pub fn enqueue(queue: &SharedQueue, record: &Record, ids: &ExportIds) {
    // A full queue drops the record before it is rendered.
    let accepted = match queue.try_borrow_mut() {
        Ok(mut q) if !q.is_full() => q.push(record.to_otlp_json(host::now_nanos())),
        _ => false,
    };
    if !accepted {
        if let Some(id) = ids.dropped_queue_full {
            host::increment_metric(id, 1);
        }
    }
}

#[derive(Debug)]
struct Batch {
    records: Vec<String>,
    /// Failed attempts so far.
    failures: u32,
}

/// What the exporter should do with a finished attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retry,
    Drop,
}

/// OTLP/HTTP: 2xx is success; 429, 502, 503, 504 and no answer at all are
/// retryable; any other status means the collector will never accept it.
pub fn classify(status: Option<u16>) -> Outcome {
    match status {
        Some(s) if (200..300).contains(&s) => Outcome::Sent,
        None | Some(429) | Some(502) | Some(503) | Some(504) => Outcome::Retry,
        Some(s) if s >= 500 => Outcome::Retry,
        Some(_) => Outcome::Drop,
    }
}

/// Delay before retry number `failures` (1-based): the flush interval,
/// doubled per failure, at most 60 s.
pub fn backoff_ms(flush_interval_ms: u32, failures: u32) -> u64 {
    let base = u64::from(flush_interval_ms.max(10));
    base.saturating_mul(1u64 << failures.saturating_sub(1).min(16))
        .min(60_000)
}

/// The timer period for an exporter flushing every `flush_interval_ms`:
/// often enough that a batch filled between two ticks goes out at once.
pub fn tick_period_ms(flush_interval_ms: u32) -> u32 {
    flush_interval_ms.clamp(10, 50)
}

/// Whether a tick sends the queued records now: a full batch always, a
/// partial one once the flush interval has passed since the last send.
pub fn due(
    queued: usize,
    batch_size: usize,
    since_last_send_ms: u64,
    flush_interval_ms: u32,
) -> bool {
    queued >= batch_size || (queued > 0 && since_last_send_ms >= u64::from(flush_interval_ms))
}

/// The root context's export state.
pub struct Exporter {
    settings: OtlpSettings,
    queue: SharedQueue,
    resource: Rc<Resource>,
    ids: ExportIds,
    in_flight: Option<(u32, Batch)>,
    retry: Option<Batch>,
    next_attempt_ms: u64,
    /// When the last batch was sent (ms), for the flush interval.
    last_send_ms: u64,
    /// Failures logged so far (the log is rate-limited to a few lines).
    failures_logged: u64,
}

fn now_ms() -> u64 {
    host::now_nanos() / 1_000_000
}

impl Exporter {
    pub fn new(settings: OtlpSettings, resource: Rc<Resource>, ids: ExportIds) -> Exporter {
        let queue = Rc::new(RefCell::new(ExportQueue::new(settings.max_queue)));
        Exporter {
            settings,
            queue,
            resource,
            ids,
            in_flight: None,
            retry: None,
            next_attempt_ms: 0,
            last_send_ms: now_ms(),
            failures_logged: 0,
        }
    }

    pub fn queue(&self) -> SharedQueue {
        Rc::clone(&self.queue)
    }

    pub fn settings(&self) -> &OtlpSettings {
        &self.settings
    }

    /// Timer: send the pending retry when due, else the next batch when
    /// one is full or the flush interval has passed.
    pub fn on_tick(&mut self) {
        let queued = self.queue.try_borrow().map(|q| q.len()).unwrap_or(0);
        if let Some(id) = self.ids.queued {
            host::record_metric(id, queued as u64);
        }
        if self.in_flight.is_some() {
            return;
        }
        if self.retry.is_some() {
            if now_ms() < self.next_attempt_ms {
                return;
            }
            if let Some(batch) = self.retry.take() {
                self.send(batch);
            }
            return;
        }
        let now = now_ms();
        let s = &self.settings;
        if due(
            queued,
            s.batch_size,
            now.saturating_sub(self.last_send_ms),
            s.flush_interval_ms,
        ) {
            self.send_next();
        }
    }

    fn send_next(&mut self) {
        let records = match self.queue.try_borrow_mut() {
            Ok(mut q) if !q.is_empty() => q.take(self.settings.batch_size),
            _ => return,
        };
        self.send(Batch {
            records,
            failures: 0,
        });
    }

    fn send(&mut self, batch: Batch) {
        self.last_send_ms = now_ms();
        let body = otlp_logs_body(&self.resource, env!("CARGO_PKG_VERSION"), &batch.records);
        let s = &self.settings;
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":path", s.path.as_str()),
            (":authority", s.authority.as_str()),
            ("content-type", "application/json"),
        ];
        for (k, v) in &s.headers {
            headers.push((k.as_str(), v.as_str()));
        }
        // The SDK's wrapper registers the token so the response reaches
        // this root context; Envoy answers Ok, BadArgument (unknown
        // cluster, missing header) or InternalFailure, all handled here.
        match proxy_wasm::hostcalls::dispatch_http_call(
            &s.cluster,
            headers,
            Some(body.as_bytes()),
            vec![],
            std::time::Duration::from_millis(u64::from(s.timeout_ms)),
        ) {
            Ok(token) => self.in_flight = Some((token, batch)),
            Err(status) => {
                let why = format!("dispatch to cluster {:?} failed: {status:?}", s.cluster);
                self.failed(batch, Outcome::Retry, &why);
            }
        }
    }

    /// The collector answered (or the call failed: no `:status`).
    pub fn on_response(&mut self, token: u32, status: Option<u16>) {
        let batch = match self.in_flight.take() {
            Some((t, batch)) if t == token => batch,
            other => {
                self.in_flight = other;
                return;
            }
        };
        match classify(status) {
            Outcome::Sent => {
                if let Some(id) = self.ids.sent {
                    host::increment_metric(id, batch.records.len() as i64);
                }
                // Keep up with a busy proxy: a full batch goes out at once.
                let full = self
                    .queue
                    .try_borrow()
                    .map(|q| q.len() >= self.settings.batch_size)
                    .unwrap_or(false);
                if full {
                    self.send_next();
                }
            }
            outcome => {
                let why = match status {
                    Some(s) => format!("collector answered {s}"),
                    None => "no answer from the collector (connection failure or timeout)".into(),
                };
                self.failed(batch, outcome, &why);
            }
        }
    }

    fn failed(&mut self, mut batch: Batch, outcome: Outcome, why: &str) {
        if let Some(id) = self.ids.failed_attempts {
            host::increment_metric(id, 1);
        }
        batch.failures += 1;
        let n = batch.records.len();
        let give_up = outcome == Outcome::Drop || batch.failures > self.settings.max_retries;
        if self.failures_logged < 5 || self.failures_logged.is_power_of_two() {
            host::log(
                Level::Warn,
                &format!(
                    "veil: OTLP export of {n} records failed: {why}; {}",
                    if give_up {
                        "dropped".to_string()
                    } else {
                        format!("retry {} of {}", batch.failures, self.settings.max_retries)
                    }
                ),
            );
        }
        self.failures_logged += 1;
        if give_up {
            if let Some(id) = self.ids.dropped_failed {
                host::increment_metric(id, n as i64);
            }
        } else {
            self.next_attempt_ms =
                now_ms() + backoff_ms(self.settings.flush_interval_ms, batch.failures);
            self.retry = Some(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_bounded() {
        let mut q = ExportQueue::new(2);
        assert!(q.push("1".into()));
        assert!(!q.is_full());
        assert!(q.push("2".into()));
        assert!(q.is_full());
        assert!(!q.push("3".into()));
        assert_eq!(q.take(5), vec!["1".to_string(), "2".to_string()]);
        assert!(q.is_empty());
    }

    #[test]
    fn statuses_are_classified_like_otlp_http() {
        assert_eq!(classify(Some(200)), Outcome::Sent);
        assert_eq!(classify(Some(204)), Outcome::Sent);
        assert_eq!(classify(None), Outcome::Retry);
        assert_eq!(classify(Some(503)), Outcome::Retry);
        assert_eq!(classify(Some(429)), Outcome::Retry);
        assert_eq!(classify(Some(400)), Outcome::Drop);
        assert_eq!(classify(Some(404)), Outcome::Drop);
    }

    #[test]
    fn a_full_batch_goes_out_at_the_next_tick_a_partial_one_after_the_interval() {
        assert!(due(512, 512, 0, 1000));
        assert!(due(600, 512, 3, 1000));
        assert!(!due(511, 512, 999, 1000));
        assert!(due(1, 512, 1000, 1000));
        assert!(!due(0, 512, 5000, 1000));
        // Ticks come well inside the interval, however long it is.
        assert_eq!(tick_period_ms(1000), 50);
        assert_eq!(tick_period_ms(600_000), 50);
        assert_eq!(tick_period_ms(20), 20);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(500, 1), 500);
        assert_eq!(backoff_ms(500, 2), 1000);
        assert_eq!(backoff_ms(500, 3), 2000);
        assert_eq!(backoff_ms(500, 40), 60_000);
    }
}

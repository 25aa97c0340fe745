//! veil's proxy-wasm metrics. Envoy shows each as `wasmcustom.<name>`;
//! label values are embedded in the name as `.<label>.<value>` segments and
//! the `stats_tags` regexes of [`STATS_TAGS_JSON`] (documented in the README and
//! shipped in `envoy-config/`) turn them into Prometheus labels, e.g.
//! `wasmcustom.veil.findings.rule.pii-email.category.pii.email.action.redact.direction.request.mode.enforce`
//! becomes `veil_findings{rule="pii-email",category="pii.email",action="redact",direction="request",mode="enforce"}`.
//!
//! Ids are defined once per VM (in the root context, or the first time a
//! rule fires) and cached; the traffic path only increments by id.

use crate::host::{self, MetricKind};
use std::cell::RefCell;
use std::collections::HashMap;
use veil_engine::{Decision, Direction, Finding, FindingText};

/// Envoy `stats_config.stats_tags` entries (`[{"tag_name", "regex"}]`)
/// that turn veil's name-embedded labels into Prometheus labels. Every
/// regex matches only veil's metrics; the first capture group is removed
/// from the name, the second is the label value. The same file is used by
/// the integration tests and shipped for deployments.
pub const STATS_TAGS_JSON: &str = include_str!("../stats_tags.json");

/// A label value as it may appear inside a stat name: characters other
/// than `[A-Za-z0-9_\-.:/@]` become `_` (bundle ids and categories are
/// already in that set).
pub fn label_value(value: &str) -> String {
    let v: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.:/@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if v.is_empty() {
        "_".into()
    } else {
        v
    }
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Request => 0,
        Direction::Response => 1,
    }
}

const DIRECTIONS: [Direction; 2] = [Direction::Request, Direction::Response];

/// Per-direction counters and histograms, `None` where the host refused.
#[derive(Debug, Default, Clone, Copy)]
struct PerDirection {
    /// Messages decided alert / redact / block.
    alert: Option<u32>,
    redact: Option<u32>,
    block: Option<u32>,
    scanned_bytes: Option<u32>,
    scan_time_us: Option<u32>,
    body_limit: Option<u32>,
    internal_errors: Option<u32>,
    /// Bodies that did not parse as their content type (scanned as text).
    parse_errors: Option<u32>,
    shadow_added: Option<u32>,
    shadow_removed: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FindingKey {
    rule: FindingText,
    direction: usize,
    action: &'static str,
    monitor: bool,
}

/// Export counters (OTLP).
#[derive(Debug, Default, Clone, Copy)]
pub struct ExportIds {
    /// Records dropped (queue full, or retries exhausted).
    pub dropped_queue_full: Option<u32>,
    pub dropped_failed: Option<u32>,
    /// Records accepted by the collector (2xx).
    pub sent: Option<u32>,
    /// Export attempts that failed (non-2xx, timeout, no connection).
    pub failed_attempts: Option<u32>,
    /// Records waiting in the queue (gauge).
    pub queued: Option<u32>,
}

/// All of veil's metrics for one VM.
#[derive(Debug, Default)]
pub struct Metrics {
    dirs: [PerDirection; 2],
    findings: RefCell<HashMap<FindingKey, Option<u32>>>,
    bundle_info: RefCell<Option<(String, u32)>>,
    pub export: ExportIds,
}

fn counter(name: &str) -> Option<u32> {
    host::define_metric(MetricKind::Counter, name).ok()
}

impl Metrics {
    /// Defines the fixed metrics (a few dozen host calls, once per VM).
    pub fn define() -> Metrics {
        let mut dirs = [PerDirection::default(); 2];
        for d in DIRECTIONS {
            let dir = d.as_str();
            dirs[dir_index(d)] = PerDirection {
                alert: counter(&format!("veil.decisions.decision.alert.direction.{dir}")),
                redact: counter(&format!("veil.decisions.decision.redact.direction.{dir}")),
                block: counter(&format!("veil.decisions.decision.block.direction.{dir}")),
                scanned_bytes: counter(&format!("veil.scanned_bytes.direction.{dir}")),
                scan_time_us: host::define_metric(
                    MetricKind::Histogram,
                    &format!("veil.scan_time_us.direction.{dir}"),
                )
                .ok(),
                body_limit: counter(&format!("veil.body_limit.direction.{dir}")),
                internal_errors: counter(&format!("veil.internal_errors.direction.{dir}")),
                parse_errors: counter(&format!("veil.parse_errors.direction.{dir}")),
                shadow_added: counter(&format!("veil.shadow_diffs.diff.added.direction.{dir}")),
                shadow_removed: counter(&format!("veil.shadow_diffs.diff.removed.direction.{dir}")),
            };
        }
        let export = ExportIds {
            dropped_queue_full: counter("veil.export.dropped.reason.queue_full"),
            dropped_failed: counter("veil.export.dropped.reason.export_failed"),
            sent: counter("veil.export.sent"),
            failed_attempts: counter("veil.export.failed_attempts"),
            queued: host::define_metric(MetricKind::Gauge, "veil.export.queued").ok(),
        };
        Metrics {
            dirs,
            findings: RefCell::new(HashMap::new()),
            bundle_info: RefCell::new(None),
            export,
        }
    }

    /// `veil.bundle.name.<n>.revision.<r>` = 1 for the bundle in force (the
    /// previous one, if any, goes back to 0).
    pub fn set_bundle(&self, name: &str, revision: &str) {
        let metric = format!(
            "veil.bundle.name.{}.revision.{}",
            label_value(name),
            label_value(revision)
        );
        let mut info = self.bundle_info.borrow_mut();
        if let Some((old, id)) = info.as_ref() {
            if *old == metric {
                return;
            }
            host::record_metric(*id, 0);
        }
        *info = None;
        if let Ok(id) = host::define_metric(MetricKind::Gauge, &metric) {
            host::record_metric(id, 1);
            *info = Some((metric, id));
        }
    }

    /// One finding (defines its counter the first time this rule, direction,
    /// action and mode is seen in this VM).
    pub fn finding(&self, direction: Direction, f: &Finding) {
        let key = FindingKey {
            rule: f.rule_id.clone(),
            direction: dir_index(direction),
            action: f.action.as_str(),
            monitor: f.monitor,
        };
        let mut map = self.findings.borrow_mut();
        let id = *map.entry(key).or_insert_with(|| {
            counter(&format!(
                "veil.findings.rule.{}.category.{}.action.{}.direction.{}.mode.{}",
                label_value(&f.rule_id),
                label_value(&f.category),
                f.action.as_str(),
                direction.as_str(),
                if f.monitor { "monitor" } else { "enforce" },
            ))
        });
        if let Some(id) = id {
            host::increment_metric(id, 1);
        }
    }

    /// The decision on one message (headers, query or body) that had findings.
    pub fn decision(&self, direction: Direction, decision: Decision) {
        let d = &self.dirs[dir_index(direction)];
        let id = match decision {
            Decision::Allow => None,
            Decision::Alert => d.alert,
            Decision::Redact => d.redact,
            Decision::Block => d.block,
        };
        if let Some(id) = id {
            host::increment_metric(id, 1);
        }
    }

    /// One body scan: its size and how long the engine took.
    pub fn scan(&self, direction: Direction, bytes: usize, micros: u64) {
        let d = &self.dirs[dir_index(direction)];
        if let Some(id) = d.scanned_bytes {
            host::increment_metric(id, bytes as i64);
        }
        if let Some(id) = d.scan_time_us {
            host::record_metric(id, micros);
        }
    }

    /// Findings where the shadow bundle differs (`added` / `removed`).
    pub fn shadow_diff(&self, direction: Direction, change: &str, n: usize) {
        if n == 0 {
            return;
        }
        let d = &self.dirs[dir_index(direction)];
        let id = if change == "added" {
            d.shadow_added
        } else {
            d.shadow_removed
        };
        if let Some(id) = id {
            host::increment_metric(id, n as i64);
        }
    }

    pub fn body_limit(&self, direction: Direction) {
        if let Some(id) = self.dirs[dir_index(direction)].body_limit {
            host::increment_metric(id, 1);
        }
    }

    pub fn parse_error(&self, direction: Direction) {
        if let Some(id) = self.dirs[dir_index(direction)].parse_errors {
            host::increment_metric(id, 1);
        }
    }

    pub fn internal_error(&self, direction: Direction) {
        if let Some(id) = self.dirs[dir_index(direction)].internal_errors {
            host::increment_metric(id, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_cannot_break_the_name() {
        assert_eq!(label_value("pii.email"), "pii.email");
        assert_eq!(label_value("a b{c}"), "a_b_c_");
        assert_eq!(label_value(""), "_");
    }

    #[test]
    fn stats_tags_are_scoped_to_veil() {
        let tags: Vec<serde_json::Value> = serde_json::from_str(STATS_TAGS_JSON).unwrap();
        assert!(tags.len() >= 8);
        for t in &tags {
            let re = t["regex"].as_str().unwrap();
            assert!(re.starts_with(r"^wasmcustom\.veil\."), "{re}");
            assert!(t["tag_name"].as_str().is_some_and(|n| !n.is_empty()));
        }
    }

    /// The Grafana dashboard only queries series that events.md documents.
    #[test]
    fn dashboard_queries_documented_series() {
        let doc = include_str!("../../policy-schema/events.md");
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../../envoy-config/grafana-dashboard.json"))
                .unwrap();
        let mut seen = 0;
        for panel in dash["panels"].as_array().unwrap() {
            for t in panel["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap();
                for (i, _) in expr.match_indices("veil_") {
                    let name: String = expr[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let base = name
                        .trim_end_matches("_bucket")
                        .trim_end_matches("_count")
                        .trim_end_matches("_sum");
                    assert!(
                        doc.contains(&format!("`{base}`")),
                        "{base} not in events.md"
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen > 10);
    }

    #[test]
    fn documented_stats_tags_match_the_shipped_file() {
        let doc = include_str!("../../policy-schema/events.md");
        let tags: Vec<serde_json::Value> = serde_json::from_str(STATS_TAGS_JSON).unwrap();
        for t in &tags {
            let line = format!(
                "tag_name: {}, regex: '{}'",
                t["tag_name"].as_str().unwrap(),
                t["regex"].as_str().unwrap()
            );
            let squeezed: String = doc.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(squeezed.contains(&line), "events.md lacks {line}");
        }
    }
}

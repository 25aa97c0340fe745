//! The plugin configuration: what Envoy (`configuration` of the Wasm
//! filter) or Istio (`WasmPlugin.pluginConfig`, delivered as JSON text)
//! passes to `on_configure`. Parsing is pure so it is tested natively;
//! errors name the field, and bundle errors name the rule and its pointer.

use serde::Deserialize;
use std::rc::Rc;
use veil_engine::{CompiledPolicy, Direction};

/// Envoy adds each chunk to the buffered body before the filter sees it and
/// answers its own plain 413/500 once the buffer passes the connection
/// buffer limit (1 MiB by default). Deciding at 960 KiB leaves room for the
/// chunk that crosses our limit, so over-limit bodies get veil's behaviour
/// (pass with an event, or veil's 413) instead of Envoy's.
pub const DEFAULT_MAX_BODY_BYTES: usize = 960 * 1024;
/// Envoy cannot buffer more per stream without raising its own limits; a
/// larger setting would only move the failure into Envoy.
pub const MAX_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One request can carry thousands of values (a 960 KiB body with an email
/// per line makes ~20 000 findings); an event each would let a single
/// client flood the proxy log and the collector. Past this many finding
/// events a stream reports one `finding_events_capped` notice; every
/// finding is still enforced, counted in the metrics and in the summary.
pub const DEFAULT_MAX_FINDING_EVENTS: u32 = 100;

/// What happens to a buffered body larger than `max_body_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    /// Scan (and redact or block on) the first `max_body_bytes`, forward
    /// the rest unscanned, and report a `body_limit` event. An encoded
    /// (gzip) body is streamed instead: a compressed prefix cannot be
    /// rewritten on its own.
    Pass,
    /// Answer 413 (requests); responses are reset.
    Reject,
    /// Switch to streaming inspection for the rest of the body (what was
    /// buffered so far goes through the stream window first).
    Stream,
}

/// A setting given once for both directions or per direction
/// (`{"request": .., "response": ..}`). Parsed by hand so an invalid value
/// keeps its own error (`unknown variant ...`) instead of serde's untagged
/// "did not match any variant".
#[derive(Debug, Clone, Copy)]
enum PerDirection<T> {
    Both(T),
    Each(EachDirection<T>),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct EachDirection<T> {
    #[serde(default = "none")]
    request: Option<T>,
    #[serde(default = "none")]
    response: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for PerDirection<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.is_object() {
            serde_json::from_value(value)
                .map(PerDirection::Each)
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(PerDirection::Both)
                .map_err(D::Error::custom)
        }
    }
}

impl<T: Copy> PerDirection<T> {
    fn split(v: Option<PerDirection<T>>, default: T) -> [T; 2] {
        match v {
            None => [default, default],
            Some(PerDirection::Both(t)) => [t, t],
            Some(PerDirection::Each(EachDirection { request, response })) => {
                [request.unwrap_or(default), response.unwrap_or(default)]
            }
        }
    }
}

/// What happens when the filter itself fails (a host call error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Let the traffic through unscanned, and report it.
    Open,
    /// Refuse the traffic with 503.
    Closed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Inline bundle: a JSON object, or the bundle document as a string.
    #[serde(default)]
    bundle: Option<serde_json::Value>,
    /// Istio passes numbers through float64, so accept `65536.0` too.
    #[serde(default)]
    max_body_bytes: Option<PerDirection<f64>>,
    #[serde(default)]
    over_limit: Option<PerDirection<OverLimit>>,
    #[serde(default)]
    fail_mode: Option<FailMode>,
    /// Log one JSON line per finding through the proxy log (default true).
    #[serde(default)]
    log_findings: Option<bool>,
    /// Finding events per stream (request and response together); the
    /// rest are counted, not reported one by one.
    #[serde(default)]
    max_finding_events: Option<f64>,
    /// A candidate bundle evaluated next to the enforced one; only the
    /// differences are reported.
    #[serde(default)]
    shadow_bundle: Option<serde_json::Value>,
    /// OTLP/HTTP JSON export of events to a collector cluster.
    #[serde(default)]
    otlp: Option<RawOtlp>,
    /// `service.name` of events (default: from Istio node metadata or Envoy's node).
    #[serde(default)]
    service_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOtlp {
    cluster: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    batch_size: Option<f64>,
    #[serde(default)]
    flush_interval_ms: Option<f64>,
    #[serde(default)]
    max_queue: Option<f64>,
    #[serde(default)]
    timeout_ms: Option<f64>,
    #[serde(default)]
    max_retries: Option<f64>,
    /// Extra request headers (e.g. an API key for the collector).
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
}

/// Where and how events are exported over OTLP/HTTP (JSON encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The Envoy cluster of the collector.
    pub cluster: String,
    /// `:authority` of the export requests (default: the cluster name).
    pub authority: String,
    /// Default `/v1/logs`.
    pub path: String,
    /// Records per export request (default 100).
    pub batch_size: usize,
    /// Timer period: a partial batch waits at most this long (default 1000).
    pub flush_interval_ms: u32,
    /// Records held at most; newer records are dropped and counted beyond it (default 1000).
    pub max_queue: usize,
    /// Per export request (default 5000).
    pub timeout_ms: u32,
    /// Retries of a failed batch, with doubling backoff, before it is dropped (default 3).
    pub max_retries: u32,
    pub headers: Vec<(String, String)>,
}

/// The validated configuration with the compiled policy.
#[derive(Debug)]
pub struct Settings {
    pub policy: Rc<CompiledPolicy>,
    /// Per direction (request, response): see `max_body` and `over_limit`.
    pub max_body_bytes: [usize; 2],
    pub over_limit: [OverLimit; 2],
    pub fail_mode: FailMode,
    pub log_findings: bool,
    /// At most this many finding events per stream; see `DEFAULT_MAX_FINDING_EVENTS`.
    pub max_finding_events: u32,
    pub otlp: Option<OtlpSettings>,
    pub service_name: Option<String>,
    /// The shadow (candidate) bundle, compiled.
    pub shadow: Option<Rc<CompiledPolicy>>,
    /// True when the embedded default bundle is in force.
    pub default_bundle: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid veil configuration at {pointer}: {message}")]
    Field { pointer: String, message: String },
    #[error("invalid veil bundle: {0}")]
    Bundle(veil_engine::PolicyError),
    #[error("invalid veil shadow_bundle: {0}")]
    ShadowBundle(veil_engine::PolicyError),
}

/// A bundle given as a JSON object or as JSON text, compiled.
fn compile_bundle(
    value: &serde_json::Value,
    pointer: &str,
    wrap: fn(veil_engine::PolicyError) -> ConfigError,
) -> Result<CompiledPolicy, ConfigError> {
    match value {
        serde_json::Value::String(text) => CompiledPolicy::from_json(text.as_bytes()).map_err(wrap),
        serde_json::Value::Object(_) => {
            let text = serde_json::to_vec(value).map_err(|e| ConfigError::Field {
                pointer: pointer.into(),
                message: e.to_string(),
            })?;
            CompiledPolicy::from_json(&text).map_err(wrap)
        }
        _ => Err(ConfigError::Field {
            pointer: pointer.into(),
            message: "expected the bundle as a JSON object or as JSON text".into(),
        }),
    }
}

impl Settings {
    /// The largest body of `direction` that is buffered whole.
    pub fn max_body(&self, direction: Direction) -> usize {
        self.max_body_bytes[direction_index(direction)]
    }

    pub fn over_limit(&self, direction: Direction) -> OverLimit {
        self.over_limit[direction_index(direction)]
    }

    /// Parses the plugin configuration; empty (or `{}`) means the embedded
    /// default bundle with default settings.
    pub fn parse(bytes: &[u8]) -> Result<Settings, ConfigError> {
        let trimmed = bytes.trim_ascii();
        let raw: RawConfig = if trimmed.is_empty() {
            RawConfig {
                bundle: None,
                max_body_bytes: None,
                over_limit: None,
                fail_mode: None,
                log_findings: None,
                max_finding_events: None,
                otlp: None,
                service_name: None,
                shadow_bundle: None,
            }
        } else {
            let mut de = serde_json::Deserializer::from_slice(trimmed);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let pointer = e.path().iter().map(|s| format!("/{s}")).collect::<String>();
                ConfigError::Field {
                    pointer: if pointer.is_empty() {
                        "/".into()
                    } else {
                        pointer
                    },
                    message: e.into_inner().to_string(),
                }
            })?
        };
        let limits = PerDirection::split(raw.max_body_bytes, DEFAULT_MAX_BODY_BYTES as f64);
        let mut max_body_bytes = [0usize; 2];
        for (slot, (v, name)) in max_body_bytes
            .iter_mut()
            .zip(limits.into_iter().zip(["request", "response"]))
        {
            if v.fract() != 0.0 || v < 1.0 || v > MAX_MAX_BODY_BYTES as f64 {
                return Err(ConfigError::Field {
                    pointer: "/max_body_bytes".into(),
                    message: format!(
                        "{v} ({name}) is not a whole number of bytes from 1 to {MAX_MAX_BODY_BYTES}"
                    ),
                });
            }
            *slot = v as usize;
        }
        let (policy, default_bundle) = match &raw.bundle {
            None => (
                CompiledPolicy::embedded_default().map_err(ConfigError::Bundle)?,
                true,
            ),
            Some(value) => (
                compile_bundle(value, "/bundle", ConfigError::Bundle)?,
                false,
            ),
        };
        let shadow = match &raw.shadow_bundle {
            None => None,
            Some(value) => Some(Rc::new(compile_bundle(
                value,
                "/shadow_bundle",
                ConfigError::ShadowBundle,
            )?)),
        };
        let otlp = raw.otlp.map(parse_otlp).transpose()?;
        Ok(Settings {
            shadow,
            otlp,
            service_name: raw.service_name,
            policy: Rc::new(policy),
            max_body_bytes,
            over_limit: PerDirection::split(raw.over_limit, OverLimit::Pass),
            fail_mode: raw.fail_mode.unwrap_or(FailMode::Closed),
            log_findings: raw.log_findings.unwrap_or(true),
            max_finding_events: whole(
                "/max_finding_events",
                raw.max_finding_events,
                DEFAULT_MAX_FINDING_EVENTS.into(),
                1,
                1_000_000,
            )? as u32,
            default_bundle,
        })
    }
}

fn direction_index(direction: Direction) -> usize {
    match direction {
        Direction::Request => 0,
        Direction::Response => 1,
    }
}

/// A whole number in `[min, max]` (Istio passes numbers as float64).
fn whole(
    pointer: &str,
    v: Option<f64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if v.fract() == 0.0 && v >= min as f64 && v <= max as f64 => Ok(v as u64),
        Some(v) => Err(ConfigError::Field {
            pointer: pointer.to_string(),
            message: format!("{v} is not a whole number from {min} to {max}"),
        }),
    }
}

fn parse_otlp(raw: RawOtlp) -> Result<OtlpSettings, ConfigError> {
    if raw.cluster.trim().is_empty() {
        return Err(ConfigError::Field {
            pointer: "/otlp/cluster".into(),
            message: "the collector's Envoy cluster name is required".into(),
        });
    }
    let path = raw.path.unwrap_or_else(|| "/v1/logs".into());
    if !path.starts_with('/') {
        return Err(ConfigError::Field {
            pointer: "/otlp/path".into(),
            message: format!("{path:?} must start with /"),
        });
    }
    Ok(OtlpSettings {
        authority: raw
            .authority
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| raw.cluster.clone()),
        cluster: raw.cluster,
        path,
        batch_size: whole("/otlp/batch_size", raw.batch_size, 512, 1, 10_000)? as usize,
        flush_interval_ms: whole(
            "/otlp/flush_interval_ms",
            raw.flush_interval_ms,
            1000,
            10,
            600_000,
        )? as u32,
        max_queue: whole("/otlp/max_queue", raw.max_queue, 2048, 1, 1_000_000)? as usize,
        timeout_ms: whole("/otlp/timeout_ms", raw.timeout_ms, 5000, 10, 600_000)? as u32,
        max_retries: whole("/otlp/max_retries", raw.max_retries, 3, 0, 100)? as u32,
        headers: raw.headers.unwrap_or_default().into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_configuration_means_default_bundle() {
        for cfg in [&b""[..], b"  ", b"{}"] {
            let s = Settings::parse(cfg).unwrap();
            assert!(s.default_bundle);
            assert_eq!(s.policy.name(), "veil-default");
            assert_eq!(s.max_body(Direction::Request), DEFAULT_MAX_BODY_BYTES);
            assert_eq!(s.max_body(Direction::Response), DEFAULT_MAX_BODY_BYTES);
            assert_eq!(s.fail_mode, FailMode::Closed);
            assert_eq!(s.over_limit(Direction::Response), OverLimit::Pass);
        }
    }

    #[test]
    fn istio_float_numbers_are_accepted() {
        let s = Settings::parse(br#"{"max_body_bytes": 65536.0, "over_limit": "reject"}"#).unwrap();
        assert_eq!(s.max_body_bytes, [65536, 65536]);
        assert_eq!(s.over_limit, [OverLimit::Reject, OverLimit::Reject]);
        assert!(Settings::parse(br#"{"max_body_bytes": 1.5}"#).is_err());
        assert!(Settings::parse(br#"{"max_body_bytes": 0}"#).is_err());
    }

    #[test]
    fn limits_can_differ_per_direction() {
        let s = Settings::parse(
            br#"{"max_body_bytes": {"request": 4096, "response": 1048576.0},
                 "over_limit": {"response": "stream"}}"#,
        )
        .unwrap();
        assert_eq!(s.max_body(Direction::Request), 4096);
        assert_eq!(s.max_body(Direction::Response), 1 << 20);
        assert_eq!(s.over_limit(Direction::Request), OverLimit::Pass);
        assert_eq!(s.over_limit(Direction::Response), OverLimit::Stream);
        let err = Settings::parse(br#"{"max_body_bytes": {"request": 0}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/max_body_bytes") && err.contains("request"),
            "{err}"
        );
        let err = Settings::parse(br#"{"over_limit": "drop"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/over_limit") && err.contains("stream"),
            "{err}"
        );
        let err = Settings::parse(br#"{"over_limit": {"requests": "pass"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("requests"), "{err}");
    }

    #[test]
    fn finding_events_are_capped_per_stream_by_default() {
        let s = Settings::parse(b"{}").unwrap();
        assert_eq!(s.max_finding_events, DEFAULT_MAX_FINDING_EVENTS);
        let s = Settings::parse(br#"{"max_finding_events": 5.0}"#).unwrap();
        assert_eq!(s.max_finding_events, 5);
        let err = Settings::parse(br#"{"max_finding_events": 0}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/max_finding_events"), "{err}");
    }

    #[test]
    fn otlp_settings_have_defaults_and_checks() {
        let s = Settings::parse(br#"{"otlp": {"cluster": "otel"}}"#).unwrap();
        let o = s.otlp.unwrap();
        assert_eq!(o.authority, "otel");
        assert_eq!(o.path, "/v1/logs");
        assert_eq!(
            (o.batch_size, o.flush_interval_ms, o.max_queue),
            (512, 1000, 2048)
        );
        let s = Settings::parse(
            br#"{"otlp": {"cluster": "otel", "batch_size": 5.0, "max_queue": 50, "headers": {"x-k": "v"}}}"#,
        )
        .unwrap();
        let o = s.otlp.unwrap();
        assert_eq!((o.batch_size, o.max_queue), (5, 50));
        assert_eq!(o.headers, vec![("x-k".to_string(), "v".to_string())]);
        let err = Settings::parse(br#"{"otlp": {"cluster": "otel", "batch_size": 0}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/otlp/batch_size"), "{err}");
        let err = Settings::parse(br#"{"otlp": {"cluster": "otel", "bach_size": 1}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bach_size"), "{err}");
        assert!(Settings::parse(br#"{"otlp": {}}"#).is_err());
    }

    #[test]
    fn shadow_bundle_is_compiled_and_its_errors_named() {
        let s = Settings::parse(
            format!(
                r#"{{"shadow_bundle": {}}}"#,
                veil_engine::DEFAULT_BUNDLE_JSON
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(s.default_bundle);
        assert_eq!(s.shadow.unwrap().name(), "veil-default");
        let cfg = br#"{"shadow_bundle": {"version":1,"metadata":{"name":"x","revision":"1"},
            "rules":[{"id":"bad-rule","category":"c","detector":{"regex":"(unclosed"},"action":"block"}]}}"#;
        let err = Settings::parse(cfg).unwrap_err().to_string();
        assert!(
            err.contains("shadow_bundle") && err.contains("bad-rule"),
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let err = Settings::parse(br#"{"max_body_byts": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_body_byts"), "{err}");
    }

    #[test]
    fn bundle_errors_name_rule_and_pointer() {
        let cfg = br#"{"bundle": {"version":1,"metadata":{"name":"x","revision":"1"},
            "rules":[{"id":"bad-rule","category":"c","detector":{"regex":"(unclosed"},"action":"block"}]}}"#;
        let err = Settings::parse(cfg).unwrap_err().to_string();
        assert!(
            err.contains("bad-rule") && err.contains("/rules/0/detector/regex"),
            "{err}"
        );
    }

    #[test]
    fn bundle_as_json_text_is_accepted() {
        let bundle = veil_engine::DEFAULT_BUNDLE_JSON;
        let cfg = serde_json::json!({ "bundle": bundle }).to_string();
        let s = Settings::parse(cfg.as_bytes()).unwrap();
        assert!(!s.default_bundle);
        assert_eq!(s.policy.name(), "veil-default");
    }
}

//! The plugin configuration: what Envoy (`configuration` of the Wasm
//! filter) or Istio (`WasmPlugin.pluginConfig`, delivered as JSON text)
//! passes to `on_configure`. Parsing is pure so it is tested natively;
//! errors name the field, and bundle errors name the rule and its pointer.

use serde::Deserialize;
use std::rc::Rc;
use veil_engine::CompiledPolicy;

/// Envoy adds each chunk to the buffered body before the filter sees it and
/// answers its own plain 413/500 once the buffer passes the connection
/// buffer limit (1 MiB by default). Deciding at 960 KiB leaves room for the
/// chunk that crosses our limit, so over-limit bodies get veil's behaviour
/// (pass with an event, or veil's 413) instead of Envoy's.
pub const DEFAULT_MAX_BODY_BYTES: usize = 960 * 1024;
/// Envoy cannot buffer more per stream without raising its own limits; a
/// larger setting would only move the failure into Envoy.
pub const MAX_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// What happens to a body larger than `max_body_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    /// Forward it unscanned and report a `body_limit` event.
    Pass,
    /// Answer 413 (requests) or 502 (responses).
    Reject,
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
    max_body_bytes: Option<f64>,
    #[serde(default)]
    over_limit: Option<OverLimit>,
    #[serde(default)]
    fail_mode: Option<FailMode>,
    /// Log one JSON line per finding through the proxy log (default true).
    #[serde(default)]
    log_findings: Option<bool>,
}

/// The validated configuration with the compiled policy.
#[derive(Debug)]
pub struct Settings {
    pub policy: Rc<CompiledPolicy>,
    pub max_body_bytes: usize,
    pub over_limit: OverLimit,
    pub fail_mode: FailMode,
    pub log_findings: bool,
    /// True when the embedded default bundle is in force.
    pub default_bundle: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid veil configuration at {pointer}: {message}")]
    Field { pointer: String, message: String },
    #[error("invalid veil bundle: {0}")]
    Bundle(veil_engine::PolicyError),
}

impl Settings {
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
        let max_body_bytes = match raw.max_body_bytes {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(v) if v.fract() == 0.0 && v >= 1.0 && v <= MAX_MAX_BODY_BYTES as f64 => v as usize,
            Some(v) => {
                return Err(ConfigError::Field {
                    pointer: "/max_body_bytes".into(),
                    message: format!(
                        "{v} is not a whole number of bytes from 1 to {MAX_MAX_BODY_BYTES}"
                    ),
                })
            }
        };
        let (policy, default_bundle) = match &raw.bundle {
            None => (
                CompiledPolicy::embedded_default().map_err(ConfigError::Bundle)?,
                true,
            ),
            Some(serde_json::Value::String(text)) => (
                CompiledPolicy::from_json(text.as_bytes()).map_err(ConfigError::Bundle)?,
                false,
            ),
            Some(value @ serde_json::Value::Object(_)) => {
                let text = serde_json::to_vec(value).map_err(|e| ConfigError::Field {
                    pointer: "/bundle".into(),
                    message: e.to_string(),
                })?;
                (
                    CompiledPolicy::from_json(&text).map_err(ConfigError::Bundle)?,
                    false,
                )
            }
            Some(_) => {
                return Err(ConfigError::Field {
                    pointer: "/bundle".into(),
                    message: "expected the bundle as a JSON object or as JSON text".into(),
                })
            }
        };
        Ok(Settings {
            policy: Rc::new(policy),
            max_body_bytes,
            over_limit: raw.over_limit.unwrap_or(OverLimit::Pass),
            fail_mode: raw.fail_mode.unwrap_or(FailMode::Closed),
            log_findings: raw.log_findings.unwrap_or(true),
            default_bundle,
        })
    }
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
            assert_eq!(s.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
            assert_eq!(s.fail_mode, FailMode::Closed);
            assert_eq!(s.over_limit, OverLimit::Pass);
        }
    }

    #[test]
    fn istio_float_numbers_are_accepted() {
        let s = Settings::parse(br#"{"max_body_bytes": 65536.0, "over_limit": "reject"}"#).unwrap();
        assert_eq!(s.max_body_bytes, 65536);
        assert_eq!(s.over_limit, OverLimit::Reject);
        assert!(Settings::parse(br#"{"max_body_bytes": 1.5}"#).is_err());
        assert!(Settings::parse(br#"{"max_body_bytes": 0}"#).is_err());
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

//! The policy bundle as security teams write it (format v1), and its parser.
//!
//! This module owns the *source* form of policy only: it checks shape and
//! names (unknown fields are rejected with the JSON pointer of the offending
//! field) but not meaning; `compile` turns a parsed bundle into the immutable
//! `CompiledPolicy` and reports semantic errors (bad regex, unknown detector).

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// The only bundle format version this engine understands.
pub const FORMAT_VERSION: u32 = 1;

/// Upper bound on bundle size accepted by the parser: bundles come from the
/// network (bundle servers, Istio config) and must not exhaust the VM.
pub const MAX_BUNDLE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Format version of the bundle document; must be 1.
    pub version: u32,
    pub metadata: Metadata,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub body: BodySettings,
    pub rules: Vec<Rule>,
    /// Rules for veil-ebpf-exporter (`kernel_policy`); the filter ignores
    /// them, the compiler validates them.
    #[serde(default)]
    pub kernel: Option<crate::kernel_policy::KernelPolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    pub revision: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `enforce` applies decisions; `monitor` reports what enforce would do and
/// changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    Monitor,
}

/// Which bodies are decoded and scanned at all. Anything else (images,
/// archives, octet streams) passes untouched and unscanned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodySettings {
    /// Media-type patterns: exact (`application/json`), subtype wildcard
    /// (`text/*`) or structured-suffix (`application/*+json`).
    #[serde(default = "default_content_types")]
    pub content_types: Vec<String>,
    /// Whether a body without a `content-type` header is scanned.
    #[serde(default = "default_true")]
    pub scan_missing_content_type: bool,
    /// Per direction and content type: `buffer` (default), `stream` or
    /// `skip`; the first matching entry decides.
    #[serde(default)]
    pub modes: Vec<crate::body::BodyModeRule>,
    /// Which content-codings are decoded, and what happens to others.
    #[serde(default)]
    pub encodings: crate::body::EncodingSettings,
    /// How the text of server-sent events is joined across events.
    #[serde(default)]
    pub sse: crate::sse::SseSettings,
}

impl Default for BodySettings {
    fn default() -> Self {
        BodySettings {
            content_types: default_content_types(),
            scan_missing_content_type: true,
            modes: Vec::new(),
            encodings: crate::body::EncodingSettings::default(),
            sse: crate::sse::SseSettings::default(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_content_types() -> Vec<String> {
    [
        "application/json",
        "application/*+json",
        "application/x-ndjson",
        "application/jsonl",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/xml",
        "application/*+xml",
        "application/graphql",
        "application/javascript",
        "text/*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    /// Dotted category, e.g. `pii.email`, `secret.aws_access_key_id`.
    pub category: String,
    pub detector: DetectorSpec,
    #[serde(default)]
    pub scope: Option<Scope>,
    /// Field selectors for structured bodies and values (JSON, NDJSON,
    /// forms, multipart parts, query parameters, cookies).
    #[serde(default)]
    pub fields: Option<Fields>,
    pub action: ActionSpec,
    #[serde(default)]
    pub mask: MaskStyle,
    #[serde(default)]
    pub severity: Severity,
    /// Per-rule mode; overrides the bundle mode when set.
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Exactly one of `builtin`, `regex` or `key` must be set; the compiler
/// checks it so the error can name the rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    pub builtin: Option<String>,
    pub regex: Option<String>,
    /// A key-name rule: a regex that must match a whole field name (JSON
    /// key, form field, multipart part, query parameter, cookie name),
    /// case-insensitively; every string or number value under a matching
    /// field is a finding, whatever its content.
    pub key: Option<String>,
    /// Post-match validator for user regexes: `luhn`, `ssn`, ...
    pub validator: Option<String>,
    /// When non-empty, a match counts only if one of these words occurs
    /// (case-insensitively) within `keyword_window` bytes before it.
    #[serde(default)]
    pub keywords: Vec<String>,
    pub keyword_window: Option<usize>,
    /// Which capture group of `regex` is the sensitive value (default 0: the
    /// whole match).
    pub group: Option<usize>,
}

/// Where a rule applies, per direction. A direction that is absent is not
/// scanned by the rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub request: Option<Locations>,
    pub response: Option<Locations>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locations {
    #[serde(default)]
    pub body: bool,
    #[serde(default)]
    pub query: bool,
    /// URL path segments (percent-decoded). Off by default: rewriting a
    /// path changes which resource is asked for.
    #[serde(default)]
    pub path: bool,
    /// Header names (case-insensitive) whose values are scanned.
    #[serde(default)]
    pub headers: Vec<String>,
}

/// JSONPath-subset selectors (`$.user.ssn`, `$..password`,
/// `$.items[*].card`). With `include`, the rule reports only findings at
/// or under a selected field; `exclude` drops findings at or under a
/// selected field. Exclude wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Scope {
    /// The scope used when a rule names none: request body and query string,
    /// response body.
    pub fn default_for_rule() -> Scope {
        Scope {
            request: Some(Locations {
                body: true,
                query: true,
                path: false,
                headers: Vec::new(),
            }),
            response: Some(Locations {
                body: true,
                query: false,
                path: false,
                headers: Vec::new(),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Report only.
    Alert,
    /// Rewrite the sensitive bytes.
    Redact,
    /// Refuse the request or response.
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::Redact => "redact",
            Action::Block => "block",
        }
    }
}

/// Either one action for both directions (`"redact"`) or one per direction
/// (`{"request": "block", "response": "redact"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSpec {
    pub request: Action,
    pub response: Action,
}

impl<'de> Deserialize<'de> for ActionSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ActionVisitor;
        impl<'de> Visitor<'de> for ActionVisitor {
            type Value = ActionSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an action (\"alert\", \"redact\", \"block\") or an object {\"request\": action, \"response\": action}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ActionSpec, E> {
                let action = parse_action(v).map_err(E::custom)?;
                Ok(ActionSpec {
                    request: action,
                    response: action,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ActionSpec, A::Error> {
                let mut request = None;
                let mut response = None;
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "request" => &mut request,
                        "response" => &mut response,
                        other => {
                            return Err(de::Error::unknown_field(other, &["request", "response"]))
                        }
                    };
                    let value: String = map.next_value()?;
                    *slot = Some(parse_action(&value).map_err(de::Error::custom)?);
                }
                match (request, response) {
                    (Some(request), Some(response)) => Ok(ActionSpec { request, response }),
                    (None, _) => Err(de::Error::missing_field("request")),
                    (_, None) => Err(de::Error::missing_field("response")),
                }
            }
        }
        deserializer.deserialize_any(ActionVisitor)
    }
}

fn parse_action(v: &str) -> Result<Action, String> {
    match v {
        "alert" => Ok(Action::Alert),
        "redact" => Ok(Action::Redact),
        "block" => Ok(Action::Block),
        other => Err(format!(
            "unknown action `{other}`, expected one of `alert`, `redact`, `block`"
        )),
    }
}

/// How redacted bytes are rewritten.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskStyle {
    /// Every byte becomes `*`; length is kept, so JSON stays valid and
    /// offsets of everything else are unchanged.
    #[default]
    Full,
    /// Like `full` but the last four alphanumerics and all separators stay
    /// (`****-****-****-1111`).
    KeepLast4,
    /// Replaced by `[REDACTED:<category>]`; the length changes.
    Placeholder,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A bundle that could not be parsed, with the JSON pointer of the field at
/// fault (empty for the document root).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bundle at {pointer}: {message}")]
pub struct BundleError {
    pub pointer: String,
    pub message: String,
}

/// Parses a bundle document. Errors carry a JSON pointer such as
/// `/rules/2/detector/regexx`.
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle, BundleError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError {
            pointer: String::new(),
            message: format!(
                "bundle is {} bytes, more than the {} byte limit",
                bytes.len(),
                MAX_BUNDLE_BYTES
            ),
        });
    }
    let bundle: Bundle = from_json_with_pointer(bytes)?;
    if bundle.version != FORMAT_VERSION {
        return Err(BundleError {
            pointer: "/version".into(),
            message: format!(
                "unsupported bundle format version {}, this engine reads version {}",
                bundle.version, FORMAT_VERSION
            ),
        });
    }
    Ok(bundle)
}

/// Deserializes one JSON document into `T`; errors carry the JSON pointer
/// of the field at fault. Shared by the bundle and the exporter's
/// standalone kernel rules file.
pub(crate) fn from_json_with_pointer<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, BundleError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let mut pointer = path_to_pointer(err.path());
        let inner = err.into_inner();
        let message = strip_position(&inner.to_string());
        // serde names the unknown field only in the message; put it in the
        // pointer too so the error points at the field, not its parent.
        if let Some(field) = unknown_field_name(&message) {
            let token = escape_pointer_token(&field);
            if !pointer.ends_with(&format!("/{token}")) {
                pointer.push('/');
                pointer.push_str(&token);
            }
        }
        BundleError { pointer, message }
    })?;
    de.end().map_err(|e| BundleError {
        pointer: String::new(),
        message: strip_position(&e.to_string()),
    })?;
    Ok(value)
}

fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&escape_pointer_token(key));
            }
            Segment::Enum { variant } => {
                out.push('/');
                out.push_str(&escape_pointer_token(variant));
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

/// serde_json appends " at line L column C"; keep it, it helps humans, but
/// trim the duplicated wording serde_path_to_error can add.
fn strip_position(message: &str) -> String {
    message.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(rule: &str) -> String {
        format!(r#"{{"version":1,"metadata":{{"name":"t","revision":"1"}},"rules":[{rule}]}}"#)
    }

    #[test]
    fn parses_minimal_bundle_with_per_direction_action() {
        let b = parse_bundle(
            minimal(
                r#"{"id":"a","category":"secret.x","detector":{"builtin":"aws_access_key_id"},
                 "action":{"request":"block","response":"redact"}}"#,
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(b.rules[0].action.request, Action::Block);
        assert_eq!(b.rules[0].action.response, Action::Redact);
        assert_eq!(b.mode, Mode::Enforce);
    }

    #[test]
    fn unknown_field_error_names_its_json_pointer() {
        let err = parse_bundle(
            minimal(r#"{"id":"a","category":"c","detector":{"regexx":"x"},"action":"alert"}"#)
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.pointer, "/rules/0/detector/regexx");
        assert!(
            err.message.contains("unknown field `regexx`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_action_names_rule_field() {
        let err = parse_bundle(
            minimal(r#"{"id":"a","category":"c","detector":{"builtin":"email"},"action":"drop"}"#)
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.pointer, "/rules/0/action");
        assert!(
            err.message.contains("unknown action `drop`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn wrong_version_is_rejected() {
        let err =
            parse_bundle(br#"{"version":2,"metadata":{"name":"t","revision":"1"},"rules":[]}"#)
                .unwrap_err();
        assert_eq!(err.pointer, "/version");
    }

    #[test]
    fn trailing_garbage_and_non_json_are_rejected() {
        assert!(parse_bundle(b"{}").is_err());
        assert!(parse_bundle(b"not json").is_err());
        let ok =
            minimal(r#"{"id":"a","category":"c","detector":{"builtin":"email"},"action":"alert"}"#);
        assert!(parse_bundle(format!("{ok} trailing").as_bytes()).is_err());
    }
}

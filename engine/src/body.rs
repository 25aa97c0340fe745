//! How bodies are handled, per direction and content type: buffered whole,
//! streamed through a bounded window, or skipped; which content-codings
//! are decoded (with what cap) and what happens to the ones veil cannot
//! decode; and whether requests' `accept-encoding` is narrowed so
//! responses come back in a form veil can inspect.
//!
//! This module owns both the bundle's source form (`body.modes`,
//! `body.encodings`, parsed with the rest of the bundle) and its compiled
//! form inside `CompiledPolicy`, so the filter asks one question per
//! message: `policy.body_handling(direction, content_type, encoding)`.

use crate::compile::{CompiledPolicy, Direction, PolicyError};
use crate::compress::{ContentEncoding, Encoding};
use crate::media::{essence, MediaPattern};
use serde::Deserialize;

/// What is done with a body of a given direction and content type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyMode {
    /// Held whole (up to the size limit) and scanned at its end.
    #[default]
    Buffer,
    /// Scanned and forwarded chunk by chunk through a bounded window.
    Stream,
    /// Not scanned at all.
    Skip,
}

impl BodyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyMode::Buffer => "buffer",
            BodyMode::Stream => "stream",
            BodyMode::Skip => "skip",
        }
    }
}

/// `"request"`, `"response"`, or both when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectionSpec {
    Request,
    Response,
}

/// One entry of `body.modes`: the first entry that matches a body decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyModeRule {
    #[serde(default)]
    pub direction: Option<DirectionSpec>,
    /// Media-type patterns as in `body.content_types`.
    pub content_types: Vec<String>,
    pub mode: BodyMode,
}

/// A body whose `content-encoding` veil does not decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsupportedEncoding {
    /// Forwarded unscanned, with an `unsupported_encoding` event.
    #[default]
    Pass,
    /// Refused: 415 for requests, the response is blocked.
    Block,
}

/// What veil does to requests' `accept-encoding`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptEncoding {
    /// Untouched.
    Keep,
    /// Only codings veil decodes stay (`br`, `zstd` go), when response
    /// bodies are inspected.
    #[default]
    Restrict,
    /// Replaced by `identity`, when response bodies are inspected.
    Identity,
}

/// The largest decoded body, by default (a bomb stops here).
pub const DEFAULT_MAX_DECODED_BYTES: usize = 8 * 1024 * 1024;
/// The largest `max_decoded_bytes` a bundle may set.
pub const MAX_MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodingSettings {
    /// Codings decoded, scanned and re-encoded when rewritten.
    #[serde(default = "default_decode")]
    pub decode: Vec<String>,
    #[serde(default)]
    pub unsupported: UnsupportedEncoding,
    #[serde(default)]
    pub accept_encoding: AcceptEncoding,
    #[serde(default = "default_max_decoded")]
    pub max_decoded_bytes: usize,
}

impl Default for EncodingSettings {
    fn default() -> Self {
        EncodingSettings {
            decode: default_decode(),
            unsupported: UnsupportedEncoding::default(),
            accept_encoding: AcceptEncoding::default(),
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
        }
    }
}

fn default_decode() -> Vec<String> {
    vec!["gzip".into(), "deflate".into()]
}

fn default_max_decoded() -> usize {
    DEFAULT_MAX_DECODED_BYTES
}

/// The compiled `body.modes` and `body.encodings`.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyPolicy {
    modes: Vec<([bool; 2], Vec<MediaPattern>, BodyMode)>,
    decode: Vec<Encoding>,
    unsupported: UnsupportedEncoding,
    accept_encoding: AcceptEncoding,
    max_decoded_bytes: usize,
    /// Stream windows per direction, derived on first use (user regexes
    /// are parsed once per policy, not per stream).
    pub(crate) stream_windows: std::sync::OnceLock<[crate::stream::StreamWindow; 2]>,
    /// `body.sse`: joining server-sent event text.
    pub(crate) sse: crate::sse::SsePolicy,
}

impl BodyPolicy {
    pub(crate) fn compile(
        modes: &[BodyModeRule],
        encodings: &EncodingSettings,
        sse: &crate::sse::SseSettings,
    ) -> Result<BodyPolicy, PolicyError> {
        let invalid = |pointer: String, message: String| PolicyError::Invalid { pointer, message };
        let mut compiled = Vec::with_capacity(modes.len());
        for (i, m) in modes.iter().enumerate() {
            if m.content_types.is_empty() {
                return Err(invalid(
                    format!("/body/modes/{i}/content_types"),
                    "name at least one media-type pattern".into(),
                ));
            }
            let mut patterns = Vec::with_capacity(m.content_types.len());
            for (j, ct) in m.content_types.iter().enumerate() {
                patterns.push(MediaPattern::parse(ct).ok_or_else(|| {
                    invalid(
                        format!("/body/modes/{i}/content_types/{j}"),
                        format!("{ct:?} is not a media-type pattern (`type/subtype`, `type/*` or `type/*+suffix`)"),
                    )
                })?);
            }
            let directions = match m.direction {
                None => [true, true],
                Some(DirectionSpec::Request) => [true, false],
                Some(DirectionSpec::Response) => [false, true],
            };
            compiled.push((directions, patterns, m.mode));
        }
        let mut decode = Vec::new();
        for (i, name) in encodings.decode.iter().enumerate() {
            match ContentEncoding::parse(Some(name)) {
                ContentEncoding::Known(e) => decode.push(e),
                _ => {
                    return Err(invalid(
                        format!("/body/encodings/decode/{i}"),
                        format!("veil decodes `gzip` and `deflate`, not {name:?}"),
                    ))
                }
            }
        }
        if encodings.max_decoded_bytes == 0 || encodings.max_decoded_bytes > MAX_MAX_DECODED_BYTES {
            return Err(invalid(
                "/body/encodings/max_decoded_bytes".into(),
                format!("must be 1 to {MAX_MAX_DECODED_BYTES} bytes"),
            ));
        }
        Ok(BodyPolicy {
            modes: compiled,
            decode,
            unsupported: encodings.unsupported,
            accept_encoding: encodings.accept_encoding,
            max_decoded_bytes: encodings.max_decoded_bytes,
            stream_windows: std::sync::OnceLock::new(),
            sse: crate::sse::SsePolicy::compile(sse)?,
        })
    }
}

/// How one body is handled, decided from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyHandling {
    /// Not inspected (content type not scanned, no rules, or `skip`).
    Skip,
    /// Inspected in `mode` (buffer or stream), decoded first when encoded.
    Inspect {
        mode: BodyMode,
        decode: Option<Encoding>,
    },
    /// Encoded in a way veil does not decode.
    Unsupported {
        encoding: String,
        action: UnsupportedEncoding,
    },
}

impl CompiledPolicy {
    /// The body mode for `content_type` in `direction`: the first matching
    /// `body.modes` entry, else `buffer`.
    pub fn body_mode(&self, direction: Direction, content_type: Option<&str>) -> BodyMode {
        let d = match direction {
            Direction::Request => 0,
            Direction::Response => 1,
        };
        let Some(ct) = content_type else {
            return BodyMode::Buffer;
        };
        let e = essence(ct);
        self.body
            .modes
            .iter()
            .find(|(dirs, patterns, _)| dirs[d] && patterns.iter().any(|p| p.matches(&e)))
            .map_or(BodyMode::Buffer, |(_, _, mode)| *mode)
    }

    /// Everything the filter must know about a body before its first byte.
    pub fn body_handling(
        &self,
        direction: Direction,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> BodyHandling {
        if !self.body_plan(direction, content_type).inspect {
            return BodyHandling::Skip;
        }
        let mode = self.body_mode(direction, content_type);
        if mode == BodyMode::Skip {
            return BodyHandling::Skip;
        }
        match ContentEncoding::parse(content_encoding) {
            ContentEncoding::Identity => BodyHandling::Inspect { mode, decode: None },
            ContentEncoding::Known(e) if self.body.decode.contains(&e) => BodyHandling::Inspect {
                mode,
                decode: Some(e),
            },
            ContentEncoding::Known(e) => BodyHandling::Unsupported {
                encoding: e.as_str().to_string(),
                action: self.body.unsupported,
            },
            ContentEncoding::Unsupported(encoding) => BodyHandling::Unsupported {
                encoding,
                action: self.body.unsupported,
            },
        }
    }

    /// The cap on a decoded body.
    pub fn max_decoded_bytes(&self) -> usize {
        self.body.max_decoded_bytes
    }

    /// The new `accept-encoding` of a request, if it must change:
    /// `Some(None)` removes the header, `Some(Some(v))` sets it.
    pub fn accept_encoding(&self, value: Option<&str>) -> Option<Option<String>> {
        let inspects_responses = [
            Some("application/json"),
            Some("text/plain"),
            Some("text/event-stream"),
            None,
        ]
        .iter()
        .any(|ct| self.body_plan(Direction::Response, *ct).inspect);
        if !inspects_responses {
            return None;
        }
        match (self.body.accept_encoding, value) {
            (AcceptEncoding::Keep, _) | (_, None) => None,
            (AcceptEncoding::Identity, Some(v)) if v.trim().eq_ignore_ascii_case("identity") => {
                None
            }
            (AcceptEncoding::Identity, Some(_)) => Some(Some("identity".into())),
            (AcceptEncoding::Restrict, Some(v)) => {
                let allowed: Vec<&str> = self.body.decode.iter().map(|e| e.as_str()).collect();
                let kept = crate::compress::restrict_accept_encoding(v, &allowed);
                if kept.as_deref() == Some(v.trim()) {
                    None
                } else {
                    Some(kept)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(body: &str) -> Result<CompiledPolicy, PolicyError> {
        CompiledPolicy::from_json(
            format!(
                r#"{{"version":1,"metadata":{{"name":"t","revision":"1"}},"body":{body},
                "rules":[{{"id":"e","category":"pii.email","detector":{{"builtin":"email"}},"action":"redact"}}]}}"#
            )
            .as_bytes(),
        )
    }

    #[test]
    fn default_bundle_streams_event_streams_and_buffers_the_rest() {
        let p = CompiledPolicy::embedded_default().unwrap();
        assert_eq!(
            p.body_mode(
                Direction::Response,
                Some("text/event-stream; charset=utf-8")
            ),
            BodyMode::Stream
        );
        assert_eq!(
            p.body_mode(Direction::Request, Some("text/event-stream")),
            BodyMode::Buffer
        );
        assert_eq!(
            p.body_mode(Direction::Response, Some("application/json")),
            BodyMode::Buffer
        );
        assert_eq!(
            p.body_handling(Direction::Response, Some("application/json"), Some("gzip")),
            BodyHandling::Inspect {
                mode: BodyMode::Buffer,
                decode: Some(Encoding::Gzip)
            }
        );
        assert_eq!(
            p.body_handling(Direction::Response, Some("application/json"), Some("br")),
            BodyHandling::Unsupported {
                encoding: "br".into(),
                action: UnsupportedEncoding::Pass
            }
        );
        assert_eq!(
            p.body_handling(Direction::Response, Some("image/png"), Some("br")),
            BodyHandling::Skip
        );
        assert_eq!(
            p.accept_encoding(Some("gzip, deflate, br, zstd")),
            Some(Some("gzip, deflate".into()))
        );
        assert_eq!(p.accept_encoding(Some("gzip")), None);
        assert_eq!(p.accept_encoding(Some("br")), Some(None));
        assert_eq!(p.accept_encoding(None), None);
    }

    #[test]
    fn modes_first_match_wins_per_direction() {
        let p = bundle(
            r#"{"modes":[{"direction":"request","content_types":["application/x-ndjson"],"mode":"stream"},
                {"content_types":["text/*"],"mode":"skip"}],
               "encodings":{"decode":["gzip"],"unsupported":"block","accept_encoding":"identity","max_decoded_bytes":1000}}"#,
        )
        .unwrap();
        assert_eq!(
            p.body_mode(Direction::Request, Some("application/x-ndjson")),
            BodyMode::Stream
        );
        assert_eq!(
            p.body_mode(Direction::Response, Some("application/x-ndjson")),
            BodyMode::Buffer
        );
        assert_eq!(
            p.body_handling(Direction::Response, Some("text/plain"), None),
            BodyHandling::Skip
        );
        assert_eq!(
            p.body_handling(
                Direction::Request,
                Some("application/json"),
                Some("deflate")
            ),
            BodyHandling::Unsupported {
                encoding: "deflate".into(),
                action: UnsupportedEncoding::Block
            }
        );
        assert_eq!(p.max_decoded_bytes(), 1000);
        assert_eq!(
            p.accept_encoding(Some("gzip")),
            Some(Some("identity".into()))
        );
    }

    #[test]
    fn bad_body_settings_name_their_pointer() {
        let e = bundle(r#"{"modes":[{"content_types":["nope"],"mode":"stream"}]}"#).unwrap_err();
        assert_eq!(e.pointer(), "/body/modes/0/content_types/0");
        let e = bundle(r#"{"modes":[{"content_types":["text/*"],"mode":"fast"}]}"#).unwrap_err();
        assert!(e.pointer().starts_with("/body/modes/0/mode"), "{e}");
        let e = bundle(r#"{"encodings":{"decode":["br"]}}"#).unwrap_err();
        assert_eq!(e.pointer(), "/body/encodings/decode/0");
        let e = bundle(r#"{"encodings":{"max_decoded_bytes":0}}"#).unwrap_err();
        assert_eq!(e.pointer(), "/body/encodings/max_decoded_bytes");
    }
}

//! veil-engine: everything veil decides, with no proxy in sight.
//!
//! The filter (proxy-wasm), the CLI and the benches all drive this crate,
//! so a bundle behaves the same offline and in Envoy. Flow: `bundle`
//! (parse) -> `compile` (`CompiledPolicy`) -> `inspect` (scan, decide) ->
//! `redact` (rewrite) -> `event` (report).

pub mod body;
pub mod bundle;
pub mod codec;
pub mod compile;
pub mod compress;
pub mod detectors;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod inspect;
pub mod kernel_policy;
pub mod media;
pub mod redact;
pub mod sse;
pub mod stream;
#[cfg(test)]
mod test_rng;

pub use body::{AcceptEncoding, BodyHandling, BodyMode, UnsupportedEncoding};
pub use bundle::{parse_bundle, Action, Bundle, BundleError, MaskStyle, Mode, Severity};
pub use compile::{CompiledPolicy, Direction, PolicyError, DEFAULT_BUNDLE_JSON};
pub use compress::{ContentEncoding, DecodeError, Decoder, Encoder, Encoding};
pub use detectors::Confidence;
pub use event::{
    block_body, finding_event, finding_record, masked_preview, notice_event, notice_record,
    AttrValue, EventContext, Record, RequestInfo,
};
pub use inspect::{BodyPlan, Decision, Finding, FindingText, Inspection, Notice, Target};
pub use media::ContentKind;
pub use sse::{AssemblyLimits, SseAssembler, SseSettings};
pub use stream::{Framing, Release, StreamFinding, StreamScanner, StreamWindow};

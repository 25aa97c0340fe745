//! veil-eval: a seeded, labelled corpus of HTTP bodies and the per-detector
//! precision / recall / F1 of the engine's catalogue on it.

pub mod corpus;
pub mod mixed;
pub mod rng;
pub mod score;
pub mod values;

/// The fixed seed of the quality gate.
pub const SEED: u64 = 20_261_122;
/// Labelled values per detector type.
pub const PER_TYPE: usize = 60;
/// Documents with hard negatives only.
pub const NEGATIVE_DOCS: usize = 1_500;
/// Issue 3's thresholds, per type.
pub const MIN_PRECISION: f64 = 0.99;
pub const MIN_RECALL: f64 = 0.98;

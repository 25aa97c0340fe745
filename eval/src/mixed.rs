//! A mixed JSON corpus for throughput: order/user records (names with
//! non-ASCII, addresses, amounts, UUIDs, timestamps, free text, base64
//! thumbnails, hex digests) with about one sensitive value per KiB drawn
//! from the whole catalogue (PII and secrets) and the corpus's hard
//! negatives. Deterministic for a seed; valid JSON of at least `size` bytes.

use crate::rng::Rng;
use crate::values::{hard_negative, pattern, sample};
use veil_engine::detectors::ALL_BUILTINS;

const NAMES: &[&str] = &[
    "Jane Doe",
    "Zoë Ångström",
    "Mateo Núñez",
    "Aiko Tanaka",
    "Olúwaseun Adé",
    "Priya Raman",
    "Lars Øberg",
    "Chloé Martin",
];
const CITIES: &[&str] = &[
    "München",
    "São Paulo",
    "Kraków",
    "Zürich",
    "Lyon",
    "Bengaluru",
    "Austin",
    "Osaka",
];
const WORDS: &[&str] = &[
    "delivered",
    "to",
    "the",
    "front",
    "desk",
    "after",
    "two",
    "attempts",
    "customer",
    "requested",
    "gift",
    "wrap",
    "and",
    "a",
    "receipt",
    "without",
    "prices",
    "item",
    "backordered",
    "until",
    "next",
    "week",
];

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn mixed_json(seed: u64, size: usize) -> Vec<u8> {
    records(seed, size, 60)
}

/// The same records with no sensitive value (hard negatives stay): the
/// common case in production.
pub fn clean_json(seed: u64, size: usize) -> Vec<u8> {
    records(seed, size, 0)
}

fn records(seed: u64, size: usize, sensitive_percent: usize) -> Vec<u8> {
    let mut r = Rng::new(seed);
    let ids: Vec<&'static str> = ALL_BUILTINS.iter().map(|b| b.info().id).collect();
    let mut out = String::with_capacity(size + 4096);
    out.push('[');
    let mut n = 0u64;
    while out.len() < size {
        if n > 0 {
            out.push(',');
        }
        n += 1;
        let words: Vec<&str> = (0..r.range(8, 30)).map(|_| *r.pick(WORDS)).collect();
        out.push_str(&format!(
            "{{\"id\":\"{}\",\"order\":\"ORD-{}\",\"customer\":\"{}\",\"city\":\"{}\",\"total\":{}.{:02},\"qty\":{},\"created\":\"2025-{:02}-{:02}T{:02}:{:02}:{:02}Z\",\"note\":\"{}\",\"sku\":\"{}\",\"digest\":\"{}\"",
            pattern(&mut r, "{hl:8}-{hl:4}-4{hl:3}-a{hl:3}-{hl:12}"),
            pattern(&mut r, "{d:8}"),
            r.pick(NAMES),
            r.pick(CITIES),
            r.range(1, 2000),
            r.range(0, 99),
            r.range(1, 9),
            r.range(1, 12),
            r.range(1, 28),
            r.range(0, 23),
            r.range(0, 59),
            r.range(0, 59),
            words.join(" "),
            pattern(&mut r, "{up:10}"),
            pattern(&mut r, "{hl:64}"),
        ));
        if r.chance(15) {
            out.push_str(&format!(",\"thumb\":\"{}\"", pattern(&mut r, "{b64:160}")));
        }
        let (k, v) = hard_negative(&mut r);
        out.push_str(&format!(",\"{k}\":\"{}\"", escape(&v)));
        // About one sensitive value per KiB of records.
        if r.chance(sensitive_percent) {
            let id = *r.pick(&ids);
            if let Some(s) = sample(id, &mut r) {
                if s.whole_json.is_none() {
                    out.push_str(&format!(",\"{}\":\"{}\"", s.key, escape(&s.value)));
                }
            }
        }
        out.push('}');
    }
    out.push(']');
    out.into_bytes()
}

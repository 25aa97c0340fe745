//! The labelled corpus: JSON, form and text bodies with embedded values
//! (labelled with their detector id and exact byte span) and hard
//! negatives, from a seed.

use crate::rng::Rng;
use crate::values::{hard_negative, sample, Sample};
use veil_engine::detectors::ALL_BUILTINS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub struct Doc {
    pub content_type: &'static str,
    pub body: String,
    pub labels: Vec<Label>,
}

/// JSON string escaping (the value as it appears inside quotes).
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

fn form_safe(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

const FILLER: &[&str] = &[
    "Grüße aus München — Ünïcödé ✓",
    "Привет, мир 👋 order shipped",
    "東京の倉庫から発送しました",
    "lorem ipsum dolor sit amet",
    "the parcel left the warehouse",
    "see attached invoice",
];

/// Builds documents so that every detector gets `per_type` labelled
/// values, two per document, plus hard negatives in every document and
/// `negative_docs` documents with hard negatives only.
pub fn generate(seed: u64, per_type: usize, negative_docs: usize) -> Vec<Doc> {
    let mut r = Rng::new(seed);
    let ids: Vec<&'static str> = ALL_BUILTINS.iter().map(|b| b.info().id).collect();
    let mut queue: Vec<(&'static str, Sample)> = Vec::new();
    for round in 0..per_type {
        for (i, id) in ids.iter().enumerate() {
            let mut rr = Rng::new(seed ^ ((round as u64) << 20) ^ (i as u64) << 40);
            if let Some(s) = sample(id, &mut rr) {
                queue.push((id, s));
            }
        }
    }
    // Shuffle so documents mix types.
    for i in (1..queue.len()).rev() {
        let j = r.range(0, i);
        queue.swap(i, j);
    }
    let mut docs = Vec::new();
    // File-shaped samples (service-account key files) are documents alone.
    let (files, queue): (Vec<_>, Vec<_>) =
        queue.into_iter().partition(|(_, s)| s.whole_json.is_some());
    for item in files {
        docs.push(build(&mut r, vec![item]));
    }
    let mut items = queue.into_iter().peekable();
    while items.peek().is_some() {
        let mut batch = Vec::new();
        for _ in 0..2 {
            if let Some(x) = items.next() {
                batch.push(x);
            }
        }
        docs.push(build(&mut r, batch));
    }
    for _ in 0..negative_docs {
        docs.push(build(&mut r, Vec::new()));
    }
    docs
}

fn build(r: &mut Rng, batch: Vec<(&'static str, Sample)>) -> Doc {
    if let Some((id, s)) = batch.iter().find(|(_, s)| s.whole_json.is_some()) {
        // A file-shaped document (service-account key): alone.
        let body = s.whole_json.clone().unwrap_or_default();
        let label = |kind: &str, value: &str| {
            let start = body.find(value).unwrap_or(0);
            Label {
                kind: kind.to_string(),
                start,
                end: start + value.len(),
            }
        };
        let mut labels = vec![label(id, &s.value)];
        labels.extend(s.also.iter().map(|(kind, value)| label(kind, value)));
        labels.sort_by_key(|l| l.start);
        let content_type = if body.starts_with('{') {
            "application/json"
        } else {
            "text/csv"
        };
        return Doc {
            content_type,
            labels,
            body,
        };
    }
    let negatives: Vec<(&str, String)> = (0..r.range(2, 4)).map(|_| hard_negative(r)).collect();
    let all_form_safe = batch.iter().all(|(_, s)| form_safe(&s.value));
    let format = match r.range(0, 9) {
        0..=4 => 0,
        5..=6 if all_form_safe => 1,
        _ => 2,
    };
    let mut body = String::new();
    let mut labels = Vec::new();
    match format {
        0 => {
            body.push_str(&format!(
                "{{\"request_id\":\"{}\",\"note\":\"{}\",\"items\":[",
                r.next_u64(),
                json_escape(r.pick::<&str>(FILLER))
            ));
            for (k, (id, s)) in batch.iter().enumerate() {
                if k > 0 {
                    body.push(',');
                }
                body.push_str(&format!("{{\"{}\":\"", s.key));
                let base = body.len();
                // Some serialisers escape `@` as \u0040 and `/` as `\/`.
                let escape: fn(&str) -> String = match *id {
                    "email" if r.chance(25) => |v| json_escape(v).replace('@', "\\u0040"),
                    "password_in_url" if r.chance(25) => |v| json_escape(v).replace('/', "\\/"),
                    _ => json_escape,
                };
                let pre = escape(&s.value[..s.label.0]).len();
                let lab = escape(&s.value[s.label.0..s.label.1]).len();
                body.push_str(&escape(&s.value));
                labels.push(Label {
                    kind: id.to_string(),
                    start: base + pre,
                    end: base + pre + lab,
                });
                body.push_str("\"}");
            }
            body.push_str("],\"meta\":[");
            for (k, (key, v)) in negatives.iter().enumerate() {
                if k > 0 {
                    body.push(',');
                }
                body.push_str(&format!("{{\"{key}\":\"{}\"}}", json_escape(v)));
            }
            body.push_str("]}");
            Doc {
                content_type: "application/json",
                body,
                labels,
            }
        }
        1 => {
            body.push_str(&format!("id={}", r.range(1, 99999)));
            for (id, s) in &batch {
                body.push_str(&format!("&{}=", s.key));
                let base = body.len();
                body.push_str(&s.value);
                labels.push(Label {
                    kind: id.to_string(),
                    start: base + s.label.0,
                    end: base + s.label.1,
                });
            }
            for (key, v) in &negatives {
                if form_safe(v) {
                    body.push_str(&format!("&{key}={v}"));
                }
            }
            Doc {
                content_type: "application/x-www-form-urlencoded",
                body,
                labels,
            }
        }
        _ => {
            body.push_str(r.pick::<&str>(FILLER));
            body.push_str(".\n");
            for (id, s) in &batch {
                body.push_str(&format!("{} ", s.phrase));
                let base = body.len();
                body.push_str(&s.value);
                labels.push(Label {
                    kind: id.to_string(),
                    start: base + s.label.0,
                    end: base + s.label.1,
                });
                body.push_str(" — ");
                body.push_str(r.pick::<&str>(FILLER));
                body.push('\n');
            }
            for (key, v) in &negatives {
                body.push_str(&format!("{key}: {v}\n"));
            }
            Doc {
                content_type: "text/plain",
                body,
                labels,
            }
        }
    }
}

//! Scores the engine's findings against the labels: per detector type,
//! a finding is a true positive only if its byte span equals a label of
//! the same type exactly.

use crate::corpus::Doc;
use std::collections::BTreeMap;
use veil_engine::detectors::ALL_BUILTINS;
use veil_engine::{CompiledPolicy, Direction, Target};

#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }
    pub fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

pub use veil_engine::detectors::full_catalogue_bundle;

pub struct Report {
    pub per_type: BTreeMap<String, Counts>,
    /// Examples of mistakes, for humans: (type, "FP"/"FN", excerpt).
    pub mistakes: Vec<(String, &'static str, String)>,
}

fn excerpt(body: &str, start: usize, end: usize) -> String {
    let mut s = start.saturating_sub(30);
    while !body.is_char_boundary(s) {
        s -= 1;
    }
    let mut e = (end + 10).min(body.len());
    while !body.is_char_boundary(e) {
        e += 1;
    }
    let mut m_s = start;
    while !body.is_char_boundary(m_s) {
        m_s -= 1;
    }
    let mut m_e = end.min(body.len());
    while !body.is_char_boundary(m_e) {
        m_e += 1;
    }
    format!("{}[[{}]]{}", &body[s..m_s], &body[m_s..m_e], &body[m_e..e]).replace('\n', "⏎")
}

pub fn evaluate(policy: &CompiledPolicy, docs: &[Doc]) -> Report {
    let mut per_type: BTreeMap<String, Counts> = ALL_BUILTINS
        .iter()
        .map(|b| (b.info().id.to_string(), Counts::default()))
        .collect();
    let mut mistakes = Vec::new();
    for doc in docs {
        let findings = policy.scan(
            Direction::Request,
            Target::Body {
                content_type: Some(doc.content_type),
            },
            doc.body.as_bytes(),
        );
        let mut matched = vec![false; doc.labels.len()];
        for f in &findings {
            let kind = f.rule_id.to_string();
            let hit = doc
                .labels
                .iter()
                .position(|l| l.kind == kind && l.start == f.start && l.end == f.end);
            let c = per_type.entry(kind.clone()).or_default();
            match hit {
                Some(i) if !matched[i] => {
                    matched[i] = true;
                    c.tp += 1;
                }
                _ => {
                    c.fp += 1;
                    mistakes.push((kind, "FP", excerpt(&doc.body, f.start, f.end)));
                }
            }
        }
        for (i, l) in doc.labels.iter().enumerate() {
            if !matched[i] {
                per_type.entry(l.kind.clone()).or_default().fn_ += 1;
                mistakes.push((l.kind.clone(), "FN", excerpt(&doc.body, l.start, l.end)));
            }
        }
    }
    Report { per_type, mistakes }
}

impl Report {
    pub fn total(&self) -> Counts {
        self.per_type
            .values()
            .fold(Counts::default(), |a, c| Counts {
                tp: a.tp + c.tp,
                fp: a.fp + c.fp,
                fn_: a.fn_ + c.fn_,
            })
    }

    /// Types below the thresholds.
    pub fn failing(&self, min_precision: f64, min_recall: f64) -> Vec<String> {
        self.per_type
            .iter()
            .filter(|(_, c)| c.precision() < min_precision || c.recall() < min_recall)
            .map(|(k, c)| {
                format!(
                    "{k}: P {:.3} R {:.3} (tp {} fp {} fn {})",
                    c.precision(),
                    c.recall(),
                    c.tp,
                    c.fp,
                    c.fn_
                )
            })
            .collect()
    }

    /// The markdown table `cargo xtask eval` prints.
    pub fn table(&self) -> String {
        let mut out = String::from("| type | labels | TP | FP | FN | precision | recall | F1 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (k, c) in &self.per_type {
            out.push_str(&format!(
                "| {k} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} |\n",
                c.tp + c.fn_,
                c.tp,
                c.fp,
                c.fn_,
                c.precision(),
                c.recall(),
                c.f1()
            ));
        }
        let t = self.total();
        out.push_str(&format!(
            "| **all** | {} | {} | {} | {} | {:.4} | {:.4} | {:.4} |\n",
            t.tp + t.fn_,
            t.tp,
            t.fp,
            t.fn_,
            t.precision(),
            t.recall(),
            t.f1()
        ));
        out
    }
}

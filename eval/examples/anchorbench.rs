//! The anchor prefilter alone (`AnchorSet::for_each_match`) over the eval
//! corpora, with the catalogue's anchors gathered as `compile` gathers
//! them: a maintainer's tool for tuning the mask passes, native or wasm
//! (`node eval/wasm-run.mjs <target>/wasm32-wasip1/release/examples/anchorbench.wasm`).
//! Arguments: rounds (default 200, best of them is printed), or `- build`
//! to time building the set alone.
use std::time::Instant;
use veil_engine::detectors::anchors::{AnchorSet, AnchorSpec};
use veil_engine::detectors::{keyword_variants, Trigger, ALL_BUILTINS};

fn main() {
    let mut anchors: Vec<(String, bool)> = Vec::new();
    let mut add = |lit: String, keyword: bool| match anchors.iter_mut().find(|a| a.0 == lit) {
        Some(a) => a.1 |= keyword,
        None => anchors.push((lit, keyword)),
    };
    for b in ALL_BUILTINS {
        match b.trigger() {
            Trigger::Literals(l) => l.iter().for_each(|s| add(s.to_string(), false)),
            Trigger::Keywords(k) => k
                .iter()
                .for_each(|k| keyword_variants(k).into_iter().for_each(|v| add(v, true))),
            _ => {}
        }
        for lit in b.extra_anchors() {
            add(lit.to_string(), false);
        }
    }
    let specs: Vec<AnchorSpec> = anchors
        .iter()
        .map(|(a, k)| AnchorSpec {
            bytes: a.as_bytes(),
            fold_case: *k,
        })
        .collect();
    let t = Instant::now();
    let set = AnchorSet::new(&specs);
    let build = t.elapsed();
    let t = Instant::now();
    let again = AnchorSet::new(&specs);
    let build2 = t.elapsed();
    assert_eq!(again.len(), set.len());
    if std::env::args().nth(2).as_deref() == Some("build") {
        let t = Instant::now();
        for _ in 0..200 {
            std::hint::black_box(AnchorSet::new(&specs));
        }
        println!(
            "build best-of-none mean {:.3} ms",
            t.elapsed().as_secs_f64() * 1e3 / 200.0
        );
        return;
    }
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    println!(
        "{} anchors, build first {:.2} ms, again {:.2} ms",
        set.len(),
        build.as_secs_f64() * 1e3,
        build2.as_secs_f64() * 1e3
    );
    for (name, body) in [
        (
            "clean",
            veil_eval::mixed::clean_json(veil_eval::SEED, 1 << 20),
        ),
        (
            "mixed",
            veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20),
        ),
    ] {
        let marked = set.marked_positions(&body);
        let mut best_marks = f64::MAX;
        for _ in 0..rounds {
            let t = Instant::now();
            std::hint::black_box(set.marked_positions(&body));
            best_marks = best_marks.min(t.elapsed().as_secs_f64());
        }
        let per_mib = |d: f64| d * 1e6 * (1 << 20) as f64 / body.len() as f64;
        println!(
            "{name}: mask pass alone best {:.1} us/MiB, {marked} positions marked",
            per_mib(best_marks)
        );
        let mut best = f64::MAX;
        let mut hits = 0usize;
        for _ in 0..rounds {
            let t = Instant::now();
            let mut n = 0usize;
            set.for_each_match(&body, |id, s, e| n += id + s + e);
            let d = t.elapsed().as_secs_f64();
            best = best.min(d);
            hits = std::hint::black_box(n);
        }
        println!(
            "{name}: best {:.1} us/MiB ({:.0} MB/s), checksum {hits}",
            best * 1e6 * (1 << 20) as f64 / body.len() as f64,
            body.len() as f64 / best / 1e6
        );
    }
}

//! Anchor hit counts and raw automaton speed on the mixed corpus (a
//! maintainer's tool for tuning the prefilter).
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use std::time::Instant;
use veil_engine::detectors::{keyword_variants, Trigger, ALL_BUILTINS};

fn main() {
    let body = veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20);
    let mut anchors: Vec<String> = Vec::new();
    for b in ALL_BUILTINS {
        match b.trigger() {
            Trigger::Literals(l) => anchors.extend(l.iter().map(|s| s.to_string())),
            Trigger::Keywords(k) => k.iter().for_each(|k| anchors.extend(keyword_variants(k))),
            _ => {}
        }
    }
    anchors.sort();
    anchors.dedup();
    prefilter_speed();
    println!("{} anchors", anchors.len());
    for (name, kind, mk, overlapping) in [
        (
            "dfa overlapping",
            Some(AhoCorasickKind::DFA),
            MatchKind::Standard,
            true,
        ),
        (
            "dfa standard",
            Some(AhoCorasickKind::DFA),
            MatchKind::Standard,
            false,
        ),
        (
            "dfa leftmost-first",
            Some(AhoCorasickKind::DFA),
            MatchKind::LeftmostFirst,
            false,
        ),
        ("auto leftmost-first", None, MatchKind::LeftmostFirst, false),
        ("auto overlapping", None, MatchKind::Standard, true),
    ] {
        let ac = AhoCorasick::builder()
            .kind(kind)
            .match_kind(mk)
            .build(&anchors)
            .unwrap();
        let mut counts = vec![0usize; anchors.len()];
        let t = Instant::now();
        for _ in 0..10 {
            counts.iter_mut().for_each(|c| *c = 0);
            if overlapping {
                for m in ac.find_overlapping_iter(&body) {
                    counts[m.pattern().as_usize()] += 1;
                }
            } else {
                for m in ac.find_iter(&body) {
                    counts[m.pattern().as_usize()] += 1;
                }
            }
        }
        let d = t.elapsed() / 10;
        println!(
            "{name}: {:.0} MB/s, {} hits",
            body.len() as f64 / d.as_secs_f64() / 1e6,
            counts.iter().sum::<usize>()
        );
        if name == "dfa overlapping" {
            let mut top: Vec<(usize, &String)> = counts.iter().copied().zip(&anchors).collect();
            top.sort_by_key(|t| std::cmp::Reverse(t.0));
            println!("  top: {:?}", &top[..12]);
        }
    }
}

/// The catalogue's own prefilter (`AnchorSet`, spelled as `compile` feeds
/// it: keyword spellings case-folded) alone, with a counting callback:
/// best of 400 passes per corpus, so verification changes can be compared
/// without the rest of a scan.
fn prefilter_speed() {
    use veil_engine::detectors::anchors::{AnchorSet, AnchorSpec};
    let mut specs: Vec<(String, bool)> = Vec::new();
    let mut add = |a: String, keyword: bool| match specs.iter_mut().find(|(s, _)| *s == a) {
        Some(s) => s.1 |= keyword,
        None => specs.push((a, keyword)),
    };
    for b in ALL_BUILTINS {
        match b.trigger() {
            Trigger::Literals(l) => l.iter().for_each(|s| add(s.to_string(), false)),
            Trigger::Keywords(k) => k
                .iter()
                .for_each(|k| keyword_variants(k).into_iter().for_each(|v| add(v, true))),
            _ => {}
        }
        b.extra_anchors()
            .iter()
            .for_each(|s| add(s.to_string(), false));
    }
    let set = AnchorSet::new(
        &specs
            .iter()
            .map(|(a, keyword)| AnchorSpec {
                bytes: a.as_bytes(),
                fold_case: *keyword,
            })
            .collect::<Vec<_>>(),
    );
    for (name, body) in [
        (
            "mixed",
            veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20),
        ),
        (
            "clean",
            veil_eval::mixed::clean_json(veil_eval::SEED, 1 << 20),
        ),
    ] {
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..400 {
            n = 0;
            let t = Instant::now();
            set.for_each_match(&body, |_, s, e| n += 1 + (s ^ e) % 2);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("prefilter {name}: best {:.1} us/MiB, {n}", best * 1e6);
    }
}

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

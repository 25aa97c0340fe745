//! Throughput per trigger kind (a maintainer's tool for finding the slow part).
use std::time::Instant;
use veil_engine::detectors::{Trigger, ALL_BUILTINS};
use veil_engine::{CompiledPolicy, Direction, Target};

fn main() {
    let body = veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20);
    type Kind = (&'static str, fn(Trigger) -> bool);
    let kinds: [Kind; 5] = [
        ("literals", |t| matches!(t, Trigger::Literals(_))),
        ("keywords", |t| matches!(t, Trigger::Keywords(_))),
        ("at", |t| matches!(t, Trigger::AtSign)),
        ("digits", |t| matches!(t, Trigger::DigitRun)),
        ("colon", |t| matches!(t, Trigger::Colon)),
    ];
    let only = std::env::args().nth(1);
    {
        let start = Instant::now();
        let (mut runs, mut gated) = (0, 0);
        for _ in 0..20 {
            runs = 0;
            gated = 0;
            veil_engine::detectors::digit_runs(&body, |r| {
                runs += 1;
                if veil_engine::detectors::run_may_matter(&body, r) {
                    gated += 1;
                }
            });
        }
        let d = start.elapsed() / 20;
        println!(
            "digit_runs alone: {runs} runs, {gated} pass the gate, {:.0} MB/s",
            body.len() as f64 / d.as_secs_f64() / 1e6
        );
    }
    for (name, f) in kinds {
        let rules: Vec<String> = ALL_BUILTINS
            .iter()
            .filter(|b| f(b.trigger()))
            .filter(|b| only.as_deref().is_none_or(|o| o == b.info().id))
            .map(|b| format!(r#"{{"id":"{id}","category":"c","detector":{{"builtin":"{id}"}},"action":"alert"}}"#, id = b.info().id))
            .collect();
        if rules.is_empty() {
            continue;
        }
        let bundle = format!(
            r#"{{"version":1,"metadata":{{"name":"p","revision":"1"}},"rules":[{}]}}"#,
            rules.join(",")
        );
        let p = CompiledPolicy::from_json(bundle.as_bytes()).unwrap();
        let t = Target::Body {
            content_type: Some("application/json"),
        };
        let start = Instant::now();
        let mut n = 0;
        for _ in 0..20 {
            n = p.scan(Direction::Request, t, &body).len();
        }
        let d = start.elapsed() / 20;
        println!(
            "{name:10} {:3} rules {n:5} findings {:8.0} MB/s",
            rules.len(),
            body.len() as f64 / d.as_secs_f64() / 1e6
        );
    }
}

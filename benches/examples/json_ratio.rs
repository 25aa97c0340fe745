//! Interleaved timing of the JSON-aware and raw scans of the same bodies:
//! on a busy machine, alternating the two and keeping each one's fastest
//! round gives a steadier ratio than two separate criterion runs.
//! `cargo run --release -p veil-benches --example json_ratio`

use std::hint::black_box;
use std::time::{Duration, Instant};
use veil_benches::{ascii_escaped, clean_json, mixed_json, size_label};
use veil_engine::{CompiledPolicy, Direction, Target};

fn fastest(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let policy = CompiledPolicy::embedded_default().expect("default bundle");
    let raw = Target::Body {
        content_type: Some("application/octet-stream"),
    };
    let json = Target::Body {
        content_type: Some("application/json"),
    };
    for size in [4 << 10, 64 << 10, 1 << 20] {
        let rounds = if size > 100_000 { 15 } else { 200 };
        for (name, body) in [
            ("mixed", mixed_json(size, 42)),
            ("clean", clean_json(size, 42)),
            ("escaped", ascii_escaped(&mixed_json(size, 42))),
        ] {
            let (mut r, mut j) = (Duration::MAX, Duration::MAX);
            for _ in 0..5 {
                r = r.min(fastest(rounds, || {
                    black_box(policy.scan(Direction::Request, raw, black_box(&body)));
                }));
                j = j.min(fastest(rounds, || {
                    black_box(policy.scan(Direction::Request, json, black_box(&body)));
                }));
            }
            let mbs = |d: Duration| body.len() as f64 / d.as_secs_f64() / 1e6;
            println!(
                "{:>6} {name:<8} raw {:>7.0} MB/s  json-aware {:>7.0} MB/s  ratio {:.2}",
                size_label(size),
                mbs(r),
                mbs(j),
                mbs(j) / mbs(r)
            );
        }
    }
}

//! Engine throughput on realistic JSON with the embedded default bundle,
//! natively: `scan` (find only) and `inspect` (scan + decide + redact) on
//! 1 KiB, 64 KiB and 1 MiB bodies with a few findings per KiB, plus `scan`
//! on clean bodies (the common case in production). Criterion reports
//! MB/s via `Throughput::Bytes`; `cargo xtask bench` copies the figures
//! into benches/RESULTS.md from target/criterion. Kept short (3 s per
//! measurement) so the whole bench takes well under a minute.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use veil_benches::{clean_json, mixed_json, size_label};
use veil_engine::{CompiledPolicy, Decision, Direction, Target};

const SIZES: [usize; 3] = [1 << 10, 64 << 10, 1 << 20];
const JSON: Target<'static> = Target::Body {
    content_type: Some("application/json"),
};

fn engine(c: &mut Criterion) {
    let policy = CompiledPolicy::embedded_default().expect("embedded default bundle compiles");
    let mut group = c.benchmark_group("engine");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3));
    for size in SIZES {
        let label = size_label(size);
        let mixed = mixed_json(size, 42);
        let clean = clean_json(size, 42);
        // Guard the workload itself: a bench of a body that is blocked or
        // has no findings would measure something else.
        let check = policy.inspect(Direction::Request, JSON, &mixed);
        assert_eq!(check.decision, Decision::Redact, "{label} mixed body");
        assert!(policy.scan(Direction::Request, JSON, &clean).is_empty());

        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("scan", &label), &mixed, |b, body| {
            b.iter(|| policy.scan(Direction::Request, JSON, black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("inspect", &label), &mixed, |b, body| {
            b.iter(|| policy.inspect(Direction::Request, JSON, black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("scan_clean", &label), &clean, |b, body| {
            b.iter(|| policy.scan(Direction::Request, JSON, black_box(body)))
        });
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);

//! Engine throughput on realistic JSON with the embedded default bundle,
//! natively: `scan` (find only) and `inspect` (scan + decide + redact) on
//! 1 KiB, 64 KiB and 1 MiB bodies with a few findings per KiB, plus `scan`
//! on clean bodies (the common case in production). Criterion reports
//! MB/s via `Throughput::Bytes`; `cargo xtask bench` copies the figures
//! into benches/RESULTS.md from target/criterion. Kept short (3 s per
//! measurement) so the whole bench takes well under a minute.
//!
//! The `structure` group compares the JSON-aware scan (validate, decode
//! escapes, map back) with a raw byte scan of the same mixed bodies at
//! 64 KiB and 1 MiB, plus the JSON-aware scan of the same bodies with every
//! non-ASCII character `\u`-escaped (where decoding is needed).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use veil_benches::{ascii_escaped, clean_json, mixed_json, size_label};
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

/// The raw baseline: a label the engine does not decode or sniff.
const RAW: Target<'static> = Target::Body {
    content_type: Some("application/octet-stream"),
};

fn structure(c: &mut Criterion) {
    let policy = CompiledPolicy::embedded_default().expect("embedded default bundle compiles");
    let mut group = c.benchmark_group("structure");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3));
    for size in [64 << 10, 1 << 20] {
        let label = size_label(size);
        let mixed = mixed_json(size, 42);
        let escaped = ascii_escaped(&mixed);
        // Same findings either way (nothing in these bodies needs decoding
        // to be found), so the figures compare the cost of the same answer.
        let raw_n = policy.scan(Direction::Request, RAW, &mixed).len();
        assert_eq!(raw_n, policy.scan(Direction::Request, JSON, &mixed).len());
        assert!(raw_n > 0);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("raw", &label), &mixed, |b, body| {
            b.iter(|| policy.scan(Direction::Request, RAW, black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("json_aware", &label), &mixed, |b, body| {
            b.iter(|| policy.scan(Direction::Request, JSON, black_box(body)))
        });
        group.throughput(Throughput::Bytes(escaped.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("json_aware_escaped", &label),
            &escaped,
            |b, body| b.iter(|| policy.scan(Direction::Request, JSON, black_box(body))),
        );
    }
    group.finish();
}

criterion_group!(benches, engine, structure);
criterion_main!(benches);

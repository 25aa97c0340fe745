//! Throughput of the whole detection catalogue on the mixed 1 MiB JSON
//! corpus (MB/s), next to the default bundle, and the catalogue's compile
//! time. `cargo bench -p veil-eval --bench catalogue`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use veil_engine::{CompiledPolicy, Direction, Target};
use veil_eval::{mixed, score};

fn scan(c: &mut Criterion) {
    let body = mixed::mixed_json(veil_eval::SEED, 1 << 20);
    let full = CompiledPolicy::from_json(score::full_catalogue_bundle().as_bytes()).unwrap();
    let default = CompiledPolicy::embedded_default().unwrap();
    let target = Target::Body {
        content_type: Some("application/json"),
    };
    let mut g = c.benchmark_group("catalogue_mixed_1MiB");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.sample_size(20);
    g.bench_function("full_catalogue_scan", |b| {
        b.iter(|| black_box(full.scan(Direction::Request, target, black_box(&body))).len())
    });
    g.bench_function("default_bundle_scan", |b| {
        b.iter(|| black_box(default.scan(Direction::Request, target, black_box(&body))).len())
    });
    g.bench_function("default_bundle_inspect", |b| {
        b.iter(|| {
            black_box(default.inspect(Direction::Response, target, black_box(&body)))
                .findings
                .len()
        })
    });
    g.finish();
    let clean = mixed::clean_json(veil_eval::SEED, 1 << 20);
    let mut g = c.benchmark_group("catalogue_clean_1MiB");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.sample_size(20);
    g.bench_function("full_catalogue_scan", |b| {
        b.iter(|| black_box(full.scan(Direction::Request, target, black_box(&clean))).len())
    });
    g.bench_function("default_bundle_scan", |b| {
        b.iter(|| black_box(default.scan(Direction::Request, target, black_box(&clean))).len())
    });
    g.finish();
}

fn compile(c: &mut Criterion) {
    let bundle = score::full_catalogue_bundle();
    c.bench_function("compile_full_catalogue", |b| {
        b.iter(|| {
            CompiledPolicy::from_json(black_box(bundle.as_bytes()))
                .unwrap()
                .rule_count()
        })
    });
}

criterion_group!(benches, scan, compile);
criterion_main!(benches);

//! Scans the clean 1 MiB corpus with the full catalogue in a loop, for a
//! profiler: `perf record target/release/examples/clean_profile`.
fn main() {
    let body = veil_eval::mixed::clean_json(veil_eval::SEED, 1 << 20);
    let p = veil_engine::CompiledPolicy::from_json(
        veil_eval::score::full_catalogue_bundle().as_bytes(),
    )
    .unwrap();
    let t = veil_engine::Target::Body {
        content_type: Some("application/json"),
    };
    let start = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..300 {
        n += p.scan(veil_engine::Direction::Request, t, &body).len();
    }
    println!(
        "{n} findings, {:.0} MB/s",
        300.0 * body.len() as f64 / start.elapsed().as_secs_f64() / 1e6
    );
}

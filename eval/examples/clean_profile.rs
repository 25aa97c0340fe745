//! Scans the 1 MiB corpus (clean by default, `mixed` as the first
//! argument; `default` as the second for the default bundle) in a loop,
//! for a profiler: `perf record target/release/examples/clean_profile`, or
//! `perf stat -e task-clock` for CPU time on a busy machine.
fn main() {
    let mut args = std::env::args().skip(1);
    let body = match args.next().as_deref() {
        Some("mixed") => veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20),
        _ => veil_eval::mixed::clean_json(veil_eval::SEED, 1 << 20),
    };
    let p = match args.next().as_deref() {
        Some("default") => veil_engine::CompiledPolicy::embedded_default().unwrap(),
        _ => veil_engine::CompiledPolicy::from_json(
            veil_eval::score::full_catalogue_bundle().as_bytes(),
        )
        .unwrap(),
    };
    let t = veil_engine::Target::Body {
        content_type: Some("application/json"),
    };
    let start = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..300 {
        n += p.scan(veil_engine::Direction::Request, t, &body).len();
    }
    println!(
        "{n} findings, {:.0} MB/s wall",
        300.0 * body.len() as f64 / start.elapsed().as_secs_f64() / 1e6
    );
}

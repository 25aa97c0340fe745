//! Scans the 1 MiB corpus (clean by default, `mixed` as the first
//! argument; `default` as the second for the default bundle) in a loop,
//! for a profiler: `perf record target/release/examples/clean_profile`, or
//! `perf stat -e task-clock` for CPU time on a busy machine. A third
//! argument sets the number of scans (300); the best single scan is the
//! figure least disturbed by other processes.
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
    let scans: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(300);
    let start = std::time::Instant::now();
    let mut n = 0;
    let mut each = Vec::with_capacity(scans);
    for _ in 0..scans {
        let clock = std::time::Instant::now();
        n += p.scan(veil_engine::Direction::Request, t, &body).len();
        each.push(clock.elapsed().as_secs_f64());
    }
    each.sort_by(f64::total_cmp);
    let mbs = |secs: f64| body.len() as f64 / secs / 1e6;
    println!(
        "{n} findings, {:.0} MB/s wall; per scan: best {:.0} MB/s, median {:.0} MB/s",
        scans as f64 * body.len() as f64 / start.elapsed().as_secs_f64() / 1e6,
        mbs(each[0]),
        mbs(each[each.len() / 2]),
    );
}

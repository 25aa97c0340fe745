//! Counts heap allocations (and bytes) per scan of the 1 MiB corpus
//! (`mixed` or `clean` as the first argument), with a counting global
//! allocator: the per-finding bookkeeping (paths, ids, vectors) shows up
//! here long before it shows in a wall-clock figure. Also prints how many
//! backslashes and findings the body has.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size(), Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(n, Relaxed);
        // SAFETY: `p` came from `System.alloc` with `l`.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let body = match args.next().as_deref() {
        Some("mixed") => veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20),
        _ => veil_eval::mixed::clean_json(veil_eval::SEED, 1 << 20),
    };
    let p = veil_engine::CompiledPolicy::from_json(
        veil_eval::score::full_catalogue_bundle().as_bytes(),
    )
    .unwrap();
    let t = veil_engine::Target::Body {
        content_type: Some("application/json"),
    };
    let backslashes = body.iter().filter(|&&b| b == b'\\').count();
    // One scan to warm up, then the counted one.
    let _ = p.scan(veil_engine::Direction::Request, t, &body);
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    let findings = p.scan(veil_engine::Direction::Request, t, &body);
    let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    let paths = findings.iter().filter(|f| f.path.is_some()).count();
    if std::env::var_os("PATHS").is_some() {
        for f in findings.iter().take(12) {
            eprintln!("{:?}", f.path);
        }
    }
    println!(
        "{} bytes, {backslashes} backslashes, {} findings ({paths} with paths): {} allocations, {} bytes per scan",
        body.len(),
        findings.len(),
        a1 - a0,
        b1 - b0
    );
}

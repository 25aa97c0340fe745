//! Peak heap per body, by mode: what one request costs veil's VM on top of
//! the compiled policy. Run: `cargo run --release -p veil-engine --example body_memory`
//! (figures in README "Memory per request").
//!
//! A counting allocator records the high-water mark of live heap bytes
//! while one body goes through each path the filter uses.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use veil_engine::compress::{self, Decoder, Encoder, Encoding};
use veil_engine::{CompiledPolicy, Direction, StreamScanner, Target};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap above what was live before `f` ran (inputs excluded).
fn peak_of(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

fn body(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 128);
    let mut i = 0;
    while v.len() < len {
        v.extend_from_slice(
            format!("{{\"i\":{i},\"note\":\"lorem ipsum dolor sit amet\",\"mail\":\"u{i}@example.com\"}}\n")
                .as_bytes(),
        );
        i += 1;
    }
    v.truncate(len);
    v
}

fn kib(n: usize) -> String {
    format!("{:.0} KiB", n as f64 / 1024.0)
}

fn main() {
    let policy = CompiledPolicy::embedded_default().expect("default bundle");
    let ct = Some("application/x-ndjson");
    let dir = Direction::Response;
    let w = policy.stream_window(dir);
    println!(
        "default bundle stream window: span {} B, step {} B, context {} B, max held {} B",
        w.span,
        w.step,
        w.context,
        w.max_held()
    );
    println!("| path | body | peak heap |");
    println!("|---|---|---|");

    let buffered = body(960 * 1024);
    let p = peak_of(|| {
        let ins = policy.inspect(dir, Target::Body { content_type: ct }, &buffered);
        std::hint::black_box(ins);
    });
    println!("| buffer: inspect + rewrite | 960 KiB | {} |", kib(p));

    let big = body(10_000_000);
    for chunk in [16 * 1024, 256 * 1024] {
        let p = peak_of(|| {
            let mut s = StreamScanner::new(&policy, dir, ct);
            let mut out = 0;
            for c in big.chunks(chunk) {
                out += s.feed(&policy, c).bytes.len();
            }
            out += s.finish(&policy).bytes.len();
            assert_eq!(out, big.len());
        });
        println!("| stream, {} chunks | 10 MB | {} |", kib(chunk), kib(p));
    }

    // An LLM answer streamed token by token: 20 000 OpenAI-style events of
    // a few characters each, one event per chunk, text joined across
    // events (held until 1088 bytes of text follow each).
    let words = [
        "The", " answer", " is", " to", " mail", " u", "12", "@", "example", ".com", ",", " then",
    ];
    let events: Vec<Vec<u8>> = (0..20_000)
        .map(|i| {
            format!(
                "data: {{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1733000000,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n",
                words[i % words.len()]
            )
            .into_bytes()
        })
        .collect();
    let total: usize = events.iter().map(Vec::len).sum();
    let (mut held_max, mut found) = (0, 0);
    let ct_sse = Some("text/event-stream");
    let p = peak_of(|| {
        let mut s = StreamScanner::new(&policy, dir, ct_sse);
        let mut out = 0;
        for e in &events {
            let r = s.feed(&policy, e);
            out += r.bytes.len();
            found += r.findings.len();
            held_max = held_max.max(s.held());
        }
        let r = s.finish(&policy);
        out += r.bytes.len();
        found += r.findings.len();
        assert_eq!(out, total);
    });
    println!(
        "| stream, server-sent events joined (20 000 OpenAI deltas, {found} emails) | {} | {} (at most {} of events held) |",
        kib(total),
        kib(p),
        kib(held_max)
    );

    let gz = compress::encode(Encoding::Gzip, &buffered);
    let p = peak_of(|| {
        let mut d = Decoder::new(Encoding::Gzip, policy.max_decoded_bytes());
        let mut plain = Vec::new();
        d.push(&gz, &mut plain).expect("gzip");
        d.finish().expect("gzip");
        let ins = policy.inspect(dir, Target::Body { content_type: ct }, &plain);
        if let Some(new) = ins.rewritten {
            std::hint::black_box(compress::encode_like(&d, &new));
        }
    });
    println!(
        "| buffer, gzip: decode + inspect + re-encode | {} gzip ({} decoded) | {} |",
        kib(gz.len()),
        kib(buffered.len()),
        kib(p)
    );

    let gz_big = compress::encode(Encoding::Gzip, &big);
    let p = peak_of(|| {
        let mut d = Decoder::new(Encoding::Gzip, usize::MAX);
        let mut e = Encoder::for_encoding(Encoding::Gzip);
        let mut s = StreamScanner::new(&policy, dir, ct);
        for c in gz_big.chunks(64 * 1024) {
            let mut plain = Vec::new();
            d.push(c, &mut plain).expect("gzip");
            let r = s.feed(&policy, &plain);
            std::hint::black_box(e.push(&r.bytes));
        }
        let r = s.finish(&policy);
        std::hint::black_box(e.push(&r.bytes));
        std::hint::black_box(e.finish());
    });
    println!(
        "| stream, gzip: decode + window + re-encode, 64 KiB chunks | {} gzip (10 MB decoded) | {} |",
        kib(gz_big.len()),
        kib(p)
    );

    let member = compress::encode(Encoding::Gzip, &vec![0u8; 1 << 20]);
    let bomb = member.repeat(1024);
    let p = peak_of(|| {
        let mut d = Decoder::new(Encoding::Gzip, policy.max_decoded_bytes());
        let mut out = Vec::new();
        let r = d.push(&bomb, &mut out);
        assert!(r.is_err());
    });
    println!(
        "| gzip bomb (1 GiB from {}) refused at the 8 MiB cap | | {} |",
        kib(bomb.len()),
        kib(p)
    );
}

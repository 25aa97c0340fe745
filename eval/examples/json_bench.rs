//! Times the JSON layer alone over the 1 MiB corpora: validation
//! (`decode(.., None)`), the path walk and `hit_paths` (validation with
//! paths at sparse starts), best of N runs, in µs per MiB.
use veil_engine::codec::json::{self, Leaf, LeafSink};

struct Count(usize);
impl LeafSink for Count {
    fn leaf(&mut self, leaf: Leaf<'_>) {
        self.0 += leaf.raw.len();
    }
}

fn best(n: usize, mut f: impl FnMut()) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..n {
        let t = std::time::Instant::now();
        f();
        b = b.min(t.elapsed().as_secs_f64());
    }
    b * 1e6
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let only_paths = std::env::args().nth(2).as_deref() == Some("paths");
    for (name, body) in [
        (
            "clean",
            veil_eval::mixed::clean_json(veil_eval::SEED, 1 << 20),
        ),
        (
            "mixed",
            veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20),
        ),
    ] {
        let mib = body.len() as f64 / (1 << 20) as f64;
        // About the mixed corpus' hit density: one start per 877 bytes.
        let starts: Vec<usize> = (0..body.len()).step_by(877).collect();
        if only_paths {
            let p = best(n, || {
                assert!(json::hit_paths(&body, 0..body.len(), &starts).is_some());
            });
            println!("{name}: hit_paths {:.0} us/MiB", p / mib);
            continue;
        }
        let v = best(n, || {
            assert!(json::decode(&body, 0..body.len(), None).is_ok())
        });
        let mut d = veil_engine::codec::Decoded::default();
        let dec = best(n, || {
            d = veil_engine::codec::Decoded::with_capacity(body.len());
            assert!(json::decode(&body, 0..body.len(), Some(&mut d)).is_ok())
        });
        let w = best(n, || {
            let mut c = Count(0);
            assert!(json::walk(&body, 0..body.len(), &mut c).is_ok());
        });
        let p = best(n, || {
            assert!(json::hit_paths(&body, 0..body.len(), &starts).is_some());
        });
        let p0 = best(n, || {
            assert!(json::hit_paths(&body, 0..body.len(), &[]).is_some());
        });
        eprintln!("{name}: hit_paths without starts {:.0} us/MiB", p0 / mib);
        println!(
            "{name}: validate {:.0} us/MiB, decode {:.0} us/MiB, walk {:.0} us/MiB, hit_paths {:.0} us/MiB",
            v / mib,
            dec / mib,
            w / mib,
            p / mib
        );
    }
}

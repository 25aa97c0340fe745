//! Prints a digest of everything a scan decides over a fixed set of
//! corpora: the findings (rule, span, path, action), the notices and the
//! rewritten bodies, for the whole catalogue and the default bundle.
//! Speed work must not change what veil finds: run this before and after
//! a change and compare the output (`--list` prints every finding, for a
//! diff when the digests differ).
//!
//! `cargo run --release -p veil-eval --example findings_digest [-- --list]`
//! (the base to compare with: build this example at the commit before)

use std::fmt::Write as _;
use veil_engine::{CompiledPolicy, Direction, Target};

/// FNV-1a: stable across runs and builds, unlike `DefaultHasher`.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn corpora() -> Vec<(String, &'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for seed in [veil_eval::SEED, 1, 2, 3] {
        let mixed = veil_eval::mixed::mixed_json(seed, 256 << 10);
        // The same records with escapes: `@` as `\u0040`, `/` as `\/`.
        let escaped = String::from_utf8_lossy(&mixed)
            .replace('@', "\\u0040")
            .replace('/', "\\/")
            .into_bytes();
        out.push((format!("mixed/{seed}"), "application/json", mixed));
        out.push((format!("escaped/{seed}"), "application/json", escaped));
        out.push((
            format!("clean/{seed}"),
            "application/json",
            veil_eval::mixed::clean_json(seed, 256 << 10),
        ));
        for (i, doc) in veil_eval::corpus::generate(seed, 6, 100)
            .into_iter()
            .enumerate()
        {
            out.push((
                format!("doc/{seed}/{i}"),
                doc.content_type,
                doc.body.into_bytes(),
            ));
        }
    }
    // Malformed JSON: cut the mixed corpus short and break a value.
    let mut broken = veil_eval::mixed::mixed_json(7, 64 << 10);
    broken.truncate(broken.len() / 2);
    out.push(("truncated".into(), "application/json", broken.clone()));
    broken.extend_from_slice(b"}}]]");
    out.push(("unbalanced".into(), "application/json", broken));
    // A control byte and invalid UTF-8 inside a string; JSON labelled as text.
    let body = veil_eval::mixed::mixed_json(8, 64 << 10);
    let mut bad = body.clone();
    bad[body.len() / 2] = 0x01;
    out.push(("control-byte".into(), "application/json", bad));
    let mut bad = body.clone();
    bad[body.len() / 3] = 0xff;
    out.push(("bad-utf8".into(), "application/json", bad));
    out.push(("json-as-text".into(), "text/plain", body));
    out
}

fn main() {
    let list = std::env::args().any(|a| a == "--list");
    let full = CompiledPolicy::from_json(veil_eval::score::full_catalogue_bundle().as_bytes())
        .expect("the full catalogue bundle compiles");
    let default = CompiledPolicy::embedded_default().expect("the default bundle compiles");
    let corpora = corpora();
    for (name, policy) in [("full", &full), ("default", &default)] {
        for direction in [Direction::Request, Direction::Response] {
            let mut hash = Fnv::new();
            let (mut findings, mut notices, mut rewritten) = (0, 0, 0);
            for (corpus, content_type, body) in &corpora {
                let target = Target::Body {
                    content_type: Some(content_type),
                };
                let ins = policy.inspect(direction, target, body);
                for f in &ins.findings {
                    let mut line = String::new();
                    let _ = write!(
                        line,
                        "{corpus} {} {}..{} {:?} {:?}",
                        f.rule_id, f.start, f.end, f.path, f.action
                    );
                    if list {
                        println!("{name} {direction:?} {line}");
                    }
                    hash.write(line.as_bytes());
                    findings += 1;
                }
                for n in &ins.notices {
                    hash.write(n.reason.as_bytes());
                    hash.write(n.detail.as_bytes());
                    notices += 1;
                }
                if let Some(out) = &ins.rewritten {
                    hash.write(out);
                    rewritten += 1;
                }
                hash.write(ins.decision.as_str().as_bytes());
            }
            println!(
                "{name} {direction:?}: {} bodies, {findings} findings, {notices} notices, \
                 {rewritten} rewritten, digest {:016x}",
                corpora.len(),
                hash.0
            );
        }
    }
}

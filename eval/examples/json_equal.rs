//! Prints a digest of `inspect` (findings, paths, notices, rewritten body)
//! over the corpora, several seeds, and broken variants, so two builds can
//! be compared line by line.
use std::hash::{Hash, Hasher};

fn main() {
    let full = veil_engine::CompiledPolicy::from_json(
        veil_eval::score::full_catalogue_bundle().as_bytes(),
    )
    .unwrap();
    let default = veil_engine::CompiledPolicy::embedded_default().unwrap();
    for seed in [veil_eval::SEED, 1, 2, 3] {
        for (name, body) in [
            ("mixed", veil_eval::mixed::mixed_json(seed, 1 << 18)),
            ("clean", veil_eval::mixed::clean_json(seed, 1 << 18)),
        ] {
            let mut variants = vec![("ok", body.clone())];
            variants.push(("truncated", body[..body.len() * 2 / 3].to_vec()));
            let mut bad = body.clone();
            bad[body.len() / 2] = 0x01;
            variants.push(("ctrl", bad));
            let mut bad = body.clone();
            bad[body.len() / 3] = 0xff;
            variants.push(("utf8", bad));
            let mut esc = body.clone();
            esc.splice(
                1..1,
                br#"{"e":"a\u0040b.example.org \ud83d\ude00 \"q\"","n":"x\/y"},"#
                    .iter()
                    .copied(),
            );
            variants.push(("escaped", esc));
            for (v, data) in variants {
                for (p, policy) in [("full", &full), ("default", &default)] {
                    for ct in ["application/json", "text/plain"] {
                        let t = veil_engine::Target::Body {
                            content_type: Some(ct),
                        };
                        let i = policy.inspect(veil_engine::Direction::Request, t, &data);
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        format!("{i:?}").hash(&mut h);
                        println!(
                            "{name} seed {seed} {v} {p} {ct}: {} findings, {} notices {:?}, digest {:016x}",
                            i.findings.len(),
                            i.notices.len(),
                            i.notices.first().map(|n| format!("{n:?}")),
                            h.finish()
                        );
                    }
                }
            }
        }
    }
}

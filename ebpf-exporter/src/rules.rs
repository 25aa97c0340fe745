//! Where the exporter's rules come from, and what of them runs in the
//! kernel. The `kernel` section's model, validation and matching live in
//! the engine (`engine/src/kernel_policy.rs`) so `veil check` and the
//! exporter read a bundle the same way; this module loads it from a bundle
//! (`--bundle`), a standalone rules file (`--rules`, `{"kernel": {...}}`)
//! or the embedded default bundle, and derives the in-kernel open filter.

use anyhow::{Context, Result};
use veil_engine::kernel_policy::{glob, parse_rules_file, KernelRules};
use veil_engine::{parse_bundle, CompiledPolicy, DEFAULT_BUNDLE_JSON};

pub use veil_engine::kernel_policy::{KernelMatch as Match, Report, Subject};
pub type Rules = KernelRules;

/// The BPF side's limits (`MAX_PREFIXES`, `PREFIX_LEN` in bpf/veil.bpf.c).
pub const MAX_KERNEL_PREFIXES: usize = 16;
pub const KERNEL_PREFIX_LEN: usize = 64;

/// The kernel section of a whole bundle. The bundle is compiled whole, so
/// the exporter refuses a bundle the filter would refuse.
pub fn from_bundle(bytes: &[u8]) -> Result<Rules> {
    let bundle = parse_bundle(bytes)?;
    CompiledPolicy::compile(&bundle)?;
    Ok(match &bundle.kernel {
        Some(k) => KernelRules::compile(k)?,
        None => KernelRules::defaults(),
    })
}

/// A standalone rules file, `{"kernel": {...}}`.
pub fn from_rules_file(bytes: &[u8]) -> Result<Rules> {
    let k = parse_rules_file(bytes)?;
    Ok(KernelRules::compile(&k)?)
}

/// `--bundle`, else `--rules`, else the embedded default bundle.
pub fn load(bundle: Option<&str>, rules: Option<&str>) -> Result<Rules> {
    match (bundle, rules) {
        (Some(_), Some(_)) => anyhow::bail!("give --bundle or --rules, not both"),
        (Some(path), None) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading bundle {path}"))?;
            from_bundle(&bytes).with_context(|| format!("bundle {path}"))
        }
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading rules {path}"))?;
            from_rules_file(&bytes).with_context(|| format!("rules {path}"))
        }
        (None, None) => {
            from_bundle(DEFAULT_BUNDLE_JSON.as_bytes()).context("the embedded default bundle")
        }
    }
}

/// Prefixes for the in-kernel open filter, or `None` when some pattern
/// has no literal prefix (then every absolute path of a watched task goes
/// to user space) or there are more distinct prefixes than the BPF side
/// holds.
pub fn kernel_prefixes(rules: &Rules) -> Option<Vec<String>> {
    let mut prefixes: Vec<String> = Vec::new();
    for p in &rules.sensitive_paths {
        let mut lit = glob::literal_prefix(&p.pattern).to_string();
        if lit.is_empty() {
            return None;
        }
        if lit.len() > KERNEL_PREFIX_LEN {
            let mut end = KERNEL_PREFIX_LEN;
            while !lit.is_char_boundary(end) {
                end -= 1;
            }
            lit.truncate(end);
        }
        prefixes.push(lit);
    }
    prefixes.sort();
    prefixes.dedup();
    // Drop prefixes covered by a shorter one.
    let mut kept: Vec<String> = Vec::new();
    for p in prefixes {
        if !kept.iter().any(|k| p.starts_with(k.as_str())) {
            kept.push(p);
        }
    }
    (kept.len() <= MAX_KERNEL_PREFIXES).then_some(kept)
}

/// A kernel prefix as the BPF side compares it: little-endian 8-byte
/// words of its bytes and masks covering exactly those bytes (0 past the
/// end), as `struct prefix` in bpf/veil.bpf.c.
pub fn prefix_words(prefix: &str) -> ([u64; KERNEL_PREFIX_LEN / 8], [u64; KERNEL_PREFIX_LEN / 8]) {
    let mut words = [0u64; KERNEL_PREFIX_LEN / 8];
    let mut masks = [0u64; KERNEL_PREFIX_LEN / 8];
    for (i, b) in prefix.bytes().take(KERNEL_PREFIX_LEN).enumerate() {
        let (k, shift) = (i / 8, (i % 8) * 8);
        words[k] |= u64::from(b) << shift;
        masks[k] |= 0xff << shift;
    }
    (words, masks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bundle_prefixes_fit_the_kernel_filter() {
        let r = load(None, None).unwrap();
        assert!(r.check_open("/etc/shadow").is_some());
        let prefixes = kernel_prefixes(&r).unwrap();
        assert!(prefixes.len() <= MAX_KERNEL_PREFIXES);
        assert!(prefixes.contains(&"/etc/shadow".to_string()));
        assert!(prefixes.contains(&"/home/".to_string()));
        assert!(!prefixes.contains(&"/home/*/.ssh".to_string()));
    }

    #[test]
    fn prefix_words_are_little_endian_with_exact_masks() {
        let (w, m) = prefix_words("/etc/shadow");
        assert_eq!(w[0], u64::from_le_bytes(*b"/etc/sha"));
        assert_eq!(m[0], u64::MAX);
        assert_eq!(w[1], u64::from_le_bytes([b'd', b'o', b'w', 0, 0, 0, 0, 0]));
        assert_eq!(m[1], 0x00ff_ffff);
        assert!(w[2..].iter().chain(&m[2..]).all(|&x| x == 0));
        // A path compares equal under the mask exactly when it starts so.
        let path = |s: &str| {
            let mut b = [0u8; 16];
            b[..s.len()].copy_from_slice(s.as_bytes());
            [
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                u64::from_le_bytes(b[8..].try_into().unwrap()),
            ]
        };
        let matches = |p: [u64; 2]| (0..2).all(|k| p[k] & m[k] == w[k]);
        assert!(matches(path("/etc/shadow")));
        assert!(matches(path("/etc/shadow-")));
        assert!(!matches(path("/etc/shado")));
        assert!(!matches(path("/etc/passwd")));
    }

    #[test]
    fn a_pattern_without_literal_prefix_turns_the_kernel_filter_off() {
        let r = from_rules_file(br#"{"kernel": {"sensitive_paths": ["**/id_rsa"]}}"#).unwrap();
        assert_eq!(kernel_prefixes(&r), None);
    }

    #[test]
    fn a_bundle_with_a_broken_l7_half_is_refused() {
        let e = from_bundle(
            br#"{"version":1,"metadata":{"name":"t","revision":"1"},"rules":[
                {"id":"a","category":"c","detector":{"builtin":"no_such"},"action":"alert"}],
                "kernel": {}}"#,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("/rules/0"), "{e:#}");
        let e = from_bundle(
            br#"{"version":1,"metadata":{"name":"t","revision":"1"},"rules":[],
                "kernel": {"allowed_egress": [{"destinations": [{"cidr": "300.0.0.1"}]}]}}"#,
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("/kernel/allowed_egress/0/destinations/0/cidr"),
            "{e:#}"
        );
    }
}

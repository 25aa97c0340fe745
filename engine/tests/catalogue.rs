//! The generated catalogue documentation, the schema's list of built-in
//! ids and the default bundle must all agree with the catalogue in code.
//! `VEIL_UPDATE_CATALOGUE=1 cargo test -p veil-engine --test catalogue`
//! (or `cargo xtask catalogue`) rewrites `policy-schema/CATALOGUE.md`.

use std::path::PathBuf;
use veil_engine::detectors::{catalogue_markdown, ALL_BUILTINS};
use veil_engine::Action;

fn policy_schema() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../policy-schema"))
}

#[test]
fn catalogue_md_is_generated_from_code() {
    let path = policy_schema().join("CATALOGUE.md");
    let generated = catalogue_markdown();
    if std::env::var_os("VEIL_UPDATE_CATALOGUE").is_some() {
        std::fs::write(&path, &generated).expect("write CATALOGUE.md");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "policy-schema/CATALOGUE.md is stale: run `cargo xtask catalogue` \
         (or VEIL_UPDATE_CATALOGUE=1 cargo test -p veil-engine --test catalogue)"
    );
}

#[test]
fn catalogue_has_the_breadth_issue_3_asks_for() {
    let secrets = ALL_BUILTINS
        .iter()
        .filter(|b| b.info().category.starts_with("secret."))
        .count();
    assert!(secrets >= 60, "only {secrets} secret detectors");
    for b in ALL_BUILTINS {
        let i = b.info();
        assert!(!i.summary.is_empty() && !i.positives.is_empty(), "{}", i.id);
    }
}

#[test]
fn default_bundle_uses_every_default_detector_with_its_defaults() {
    let text = std::fs::read_to_string(policy_schema().join("bundles/default.json")).unwrap();
    let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rules = bundle["rules"].as_array().unwrap();
    let parse = |v: &serde_json::Value| match v.as_str() {
        Some("block") => Action::Block,
        Some("redact") => Action::Redact,
        _ => Action::Alert,
    };
    for b in ALL_BUILTINS {
        let info = b.info();
        let using: Vec<&serde_json::Value> = rules
            .iter()
            .filter(|r| r["detector"]["builtin"] == info.id)
            .collect();
        if !info.in_default_bundle {
            assert!(
                using.is_empty(),
                "{} is off by default but in default.json",
                info.id
            );
            continue;
        }
        assert_eq!(
            using.len(),
            1,
            "{} must have one rule in default.json",
            info.id
        );
        let rule = using[0];
        let (req, resp) = match &rule["action"] {
            serde_json::Value::String(_) => (parse(&rule["action"]), parse(&rule["action"])),
            a => (parse(&a["request"]), parse(&a["response"])),
        };
        assert_eq!(
            (req, resp),
            (info.request_action, info.response_action),
            "{}",
            info.id
        );
        assert_eq!(rule["category"], info.category, "{}", info.id);
        // No header scanning in the default bundle.
        assert!(rule["scope"]["request"]["headers"].is_null(), "{}", info.id);
    }
}

/// Prints the default-bundle rules for the catalogue (a helper for
/// maintainers: `cargo test -p veil-engine --test catalogue -- --ignored --nocapture`).
#[test]
#[ignore]
fn print_default_rules() {
    for b in ALL_BUILTINS {
        let i = b.info();
        println!(
            "{}",
            serde_json::json!({"id": i.id, "category": i.category, "severity": i.severity.as_str(),
                "req": i.request_action.as_str(), "resp": i.response_action.as_str(), "default": i.in_default_bundle})
        );
    }
}

//! `veil check`: parse + compile a bundle exactly as the filter's
//! `on_configure` does, and explain a rejection precisely enough to fix it
//! without opening the engine: the rule id, the JSON pointer of the field
//! and the message. JSON syntax errors get line and column instead, since a
//! pointer means nothing in a document that does not parse.

use anyhow::Result;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use veil_engine::{CompiledPolicy, PolicyError};

pub fn run(path: &Path, out: &mut impl Write) -> Result<ExitCode> {
    let bytes = crate::read_input(path)?;
    match compile(&bytes) {
        Ok(policy) => {
            let n = policy.rule_count();
            writeln!(
                out,
                "ok: {} revision {}, {n} rule{}",
                policy.name(),
                policy.revision(),
                if n == 1 { "" } else { "s" }
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            let name = if path.as_os_str() == "-" {
                "<stdin>".into()
            } else {
                path.display().to_string()
            };
            eprintln!("error: {name}: {message}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Compiles a bundle, or describes why it is unusable.
fn compile(bytes: &[u8]) -> std::result::Result<CompiledPolicy, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    CompiledPolicy::from_json(bytes).map_err(|e| describe(&e, &doc))
}

/// `rule "pii-email" at /rules/0/detector/regexx: unknown field ...`
fn describe(err: &PolicyError, doc: &Value) -> String {
    let (rule_id, message) = match err {
        PolicyError::Bundle(e) => (None, e.message.clone()),
        PolicyError::Rule {
            rule_id, message, ..
        } => (Some(rule_id.clone()), message.clone()),
        PolicyError::Invalid { message, .. } => (None, message.clone()),
    };
    let pointer = err.pointer();
    // Parse errors only carry a pointer; recover the rule id from the
    // document so every error about a rule names it.
    let rule_id = rule_id.or_else(|| rule_id_at(doc, pointer));
    let location = if pointer.is_empty() {
        "document root".to_string()
    } else {
        pointer.to_string()
    };
    match rule_id {
        Some(id) => format!("rule {id:?} at {location}: {message}"),
        None => format!("at {location}: {message}"),
    }
}

/// The `id` of the rule a pointer such as `/rules/3/detector` lies in.
fn rule_id_at(doc: &Value, pointer: &str) -> Option<String> {
    let mut parts = pointer.strip_prefix("/rules/")?.split('/');
    let index = parts.next()?;
    doc.pointer(&format!("/rules/{index}/id"))?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bundle_compiles() {
        let p = compile(veil_engine::DEFAULT_BUNDLE_JSON.as_bytes()).unwrap();
        assert!(p.rule_count() > 0);
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = compile(b"{\n  \"version\": 1,\n  oops\n}").unwrap_err();
        assert!(e.starts_with("not valid JSON"), "{e}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn parse_errors_inside_a_rule_name_the_rule() {
        let bundle = br#"{"version":1,"metadata":{"name":"t","revision":"1"},"rules":[
            {"id":"ok","category":"pii.email","detector":{"builtin":"email"},"action":"redact"},
            {"id":"typo","category":"pii.email","detector":{"builtin":"email"},"action":"redact","sevrity":"high"}]}"#;
        let e = compile(bundle).unwrap_err();
        assert!(e.starts_with("rule \"typo\" at /rules/1/sevrity: "), "{e}");
    }

    #[test]
    fn pointer_outside_rules_has_no_rule() {
        let doc: Value = serde_json::json!({"rules": [{"id": "a"}]});
        assert_eq!(rule_id_at(&doc, "/metadata/name"), None);
        assert_eq!(rule_id_at(&doc, "/rules/0/action"), Some("a".into()));
        assert_eq!(rule_id_at(&doc, "/rules/7"), None);
    }
}

//! The bundles and schema shipped in policy-schema/ are documentation users
//! copy from: they must compile, and the schema must name exactly the
//! built-in detectors the engine has.

use std::path::Path;
use veil_engine::detectors::ALL_BUILTINS;
use veil_engine::CompiledPolicy;

fn policy_schema_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policy-schema"))
}

#[test]
fn every_shipped_bundle_compiles() {
    let dir = policy_schema_dir().join("bundles");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("policy-schema/bundles exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&path).unwrap();
            CompiledPolicy::from_json(&bytes)
                .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()));
            count += 1;
        }
    }
    assert!(
        count >= 3,
        "expected the default and example bundles, found {count}"
    );
}

#[test]
fn schema_lists_exactly_the_builtin_detectors() {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(policy_schema_dir().join("bundle.schema.json")).unwrap(),
    )
    .unwrap();
    let listed: Vec<String> = schema["$defs"]["rule"]["properties"]["detector"]["properties"]
        ["builtin"]["enum"]
        .as_array()
        .expect("builtin enum in schema")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let known: Vec<String> = ALL_BUILTINS
        .iter()
        .map(|b| b.info().id.to_string())
        .collect();
    assert_eq!(listed, known);
}

//! Broken configurations: Envoy must refuse to serve and say precisely why.

mod common;

use serde_json::json;
use veil_integration_tests::StartFailure;

/// Envoy 1.40 with a static listener exits with an error when veil's
/// on_configure returns false (see HarnessBuilder::start_expect_failure).
fn assert_plugin_refused(f: &StartFailure) {
    match f.exit_status {
        Some(status) => assert!(!status.success(), "Envoy exited with success: {status}"),
        None => panic!(
            "Envoy kept running (not serving) instead of exiting; log:\n{}",
            f.log
        ),
    }
    assert!(
        f.log.contains("Unable to create Wasm plugin veil"),
        "Envoy should say the plugin did not load; log:\n{}",
        f.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bundle_is_refused_naming_rule_and_field() -> anyhow::Result<()> {
    let config = json!({"bundle": {
        "version": 1,
        "metadata": {"name": "x", "revision": "1"},
        "rules": [{
            "id": "bad-rule",
            "category": "c",
            "detector": {"regex": "(unclosed"},
            "action": "block"
        }]
    }});
    let f = common::builder()
        .config_json(config)
        .start_expect_failure()
        .await?;
    assert_plugin_refused(&f);
    let error_lines: Vec<&str> = f
        .log
        .lines()
        .filter(|l| {
            l.contains("[error]") && l.contains("bad-rule") && l.contains("/rules/0/detector/regex")
        })
        .collect();
    assert!(
        !error_lines.is_empty(),
        "no error line names the rule and the JSON pointer; log:\n{}",
        f.log
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_configuration_field_is_refused() -> anyhow::Result<()> {
    let f = common::builder()
        .config_json(json!({"max_body_byts": 1}))
        .start_expect_failure()
        .await?;
    assert_plugin_refused(&f);
    assert!(
        f.log
            .lines()
            .any(|l| l.contains("[error]") && l.contains("max_body_byts")),
        "an error line must name the unknown field; log:\n{}",
        f.log
    );
    Ok(())
}

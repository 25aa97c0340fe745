//! The `veil` binary as users run it: exit codes, stdout/stderr contract,
//! exact byte offsets. Runs the built binary; needs nothing else.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn veil(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn veil");
    let mut input = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        // veil may exit before reading (e.g. a bad bundle): a broken pipe
        // here is not the test's concern, the exit status is.
        let _ = input.write_all(data);
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch file under the target dir, unique per test.
fn scratch(name: &str, contents: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("veil-cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn default_bundle_path() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policy-schema/bundles/default.json"
    )
    .to_string()
}

#[test]
fn check_accepts_the_default_bundle() {
    let out = veil(&["check", &default_bundle_path()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ok: veil-default revision "), "{stdout}");
    assert!(stdout.trim_end().ends_with(" rules"), "{stdout}");
}

#[test]
fn check_names_rule_and_pointer_of_a_bad_field() {
    let bundle = br#"{"version":1,"metadata":{"name":"t","revision":"1"},"rules":[
        {"id":"mail","category":"pii.email","detector":{"builtin":"email"},"action":"redact"},
        {"id":"bad-action","category":"pii.email","detector":{"builtin":"email"},"action":"explode"}]}"#;
    let path = scratch("bad-action.json", bundle);
    let out = veil(&["check", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(err.contains("\"bad-action\""), "names the rule: {err}");
    assert!(err.contains("/rules/1/action"), "names the pointer: {err}");
    assert!(err.contains("explode"), "says what is wrong: {err}");
}

#[test]
fn check_names_an_unknown_builtin_detector() {
    let bundle = br#"{"version":1,"metadata":{"name":"t","revision":"1"},"rules":[
        {"id":"nope","category":"pii.x","detector":{"builtin":"no_such_detector"},"action":"redact"}]}"#;
    let path = scratch("unknown-builtin.json", bundle);
    let out = veil(&["check", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("\"nope\""), "{err}");
    assert!(err.contains("/rules/0/detector"), "{err}");
    assert!(err.contains("no_such_detector"), "{err}");
}

#[test]
fn check_reports_json_syntax_with_line_and_column() {
    let path = scratch("syntax.json", b"{\n \"version\": 1,\n}\n");
    let out = veil(&["check", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("not valid JSON") && err.contains("line 3"),
        "{err}"
    );
}

#[test]
fn check_of_a_missing_file_is_a_clear_error() {
    let out = veil(&["check", "/nonexistent/bundle.json"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot read /nonexistent/bundle.json"),
        "{err}"
    );
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(veil(&["check"], None).status.code(), Some(2));
    assert_eq!(veil(&["frobnicate"], None).status.code(), Some(2));
    let out = veil(&["scan", "--direction", "sideways", "-"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scan_offsets_are_byte_offsets_after_multibyte_text() {
    // 2-, 3- and 4-byte UTF-8 sequences before the email.
    let body = "Grüße — 東京 🦀 contact: jane.doe@example.com, thanks";
    let path = scratch("multibyte.txt", body.as_bytes());
    let out = veil(&["scan", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let start = body.find("jane.doe@example.com").unwrap();
    let f = &lines[0];
    assert_eq!(f["start"], start);
    assert_eq!(f["end"], start + "jane.doe@example.com".len());
    assert_eq!(f["rule"], "pii-email");
    assert_eq!(f["category"], "pii.email");
    assert_eq!(f["action"], "redact");
    // The key order is part of the output contract.
    assert!(stdout.starts_with(&format!(r#"{{"start":{start},"end":"#)));
}

#[test]
fn scan_reads_stdin_and_honours_direction_and_bundle() {
    let body = br#"{"key":"AKIAZ3MSJ5TVQ4GQDKWY","card":"4111 1111 1111 1111"}"#;
    let out = veil(
        &["scan", "--content-type", "application/json", "-"],
        Some(body),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["rule"], "secret-aws-access-key-id");
    assert_eq!(lines[0]["action"], "block");
    assert_eq!(lines[1]["rule"], "pii-payment-card");

    let out = veil(&["scan", "--direction", "response", "-"], Some(body));
    assert!(text(&out.stdout).contains(r#""action":"redact""#));
    assert!(!text(&out.stdout).contains(r#""action":"block""#));

    let only_cards = br#"{"version":1,"metadata":{"name":"cards","revision":"1"},"rules":[
        {"id":"cards","category":"pii.payment_card","detector":{"builtin":"payment_card"},"action":"alert"}]}"#;
    let path = scratch("cards.json", only_cards);
    let out = veil(
        &["scan", "--bundle", path.to_str().unwrap(), "-"],
        Some(body),
    );
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(r#""rule":"cards""#) && stdout.contains(r#""action":"alert""#));
}

#[test]
fn scan_with_an_invalid_bundle_fails_with_exit_1() {
    let path = scratch("invalid-for-scan.json", b"{\"version\":1}");
    let out = veil(
        &["scan", "--bundle", path.to_str().unwrap(), "-"],
        Some(b"x"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn scan_jsonl_batch_keeps_going_after_a_bad_line() {
    let input = [
        r#"{"id":"r1","content_type":"application/json","body":"{\"name\":\"Zoë\",\"email\":\"zoe@example.com\"}"}"#,
        r#"{"id":"r2","content_type":null,"body":"no findings"}"#,
        r#"this is not json"#,
        r#"{"id":"r4","body":"ssn 123-45-6788 and card 4111111111111111"}"#,
    ]
    .join("\n");
    let path = scratch("batch.jsonl", input.as_bytes());
    let out = veil(&["scan", "--jsonl", path.to_str().unwrap()], None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a malformed line makes the run fail"
    );
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");

    assert_eq!(lines[0]["id"], "r1");
    let body1 = r#"{"name":"Zoë","email":"zoe@example.com"}"#;
    let f = &lines[0]["findings"][0];
    assert_eq!(
        f["start"],
        body1.find("zoe@").unwrap(),
        "byte offsets into the body"
    );
    assert_eq!(f["category"], "pii.email");

    assert_eq!(lines[1], serde_json::json!({"id": "r2", "findings": []}));

    assert_eq!(lines[2]["id"], serde_json::Value::Null);
    assert_eq!(lines[2]["line"], 3);
    assert!(lines[2]["error"].is_string());

    assert_eq!(lines[3]["id"], "r4");
    let rules: Vec<&str> = lines[3]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["pii-us-ssn", "pii-payment-card"]);
    assert!(text(&out.stderr).contains("1 of 4 lines malformed"));
}

#[test]
fn scan_jsonl_from_stdin_all_good_exits_0() {
    let out = veil(
        &["scan", "--jsonl", "-"],
        Some(b"{\"id\":1,\"body\":\"mail me: a.b@example.net\"}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"id\":1,\"findings\":[{\"start\":9,\"end\":24,\"rule\":\"pii-email\",\"category\":\"pii.email\",\"action\":\"redact\"}]}\n"
    );
}

#[test]
fn catalogue_lists_every_builtin() {
    let out = veil(&["catalogue"], None);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ID"), "{stdout}");
    for id in ["email", "payment_card", "us_ssn", "aws_access_key_id"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(id)),
            "{id} in {stdout}"
        );
    }
    let out = veil(&["catalogue", "--json"], None);
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["id"].is_string() && v["category"].is_string());
    }
}

#[test]
fn catalogue_bundle_compiles_and_reaches_every_builtin() {
    let out = veil(&["catalogue", "--bundle"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bundle = text(&out.stdout);
    let listed = text(&veil(&["catalogue", "--json"], None).stdout);
    let v: serde_json::Value = serde_json::from_str(&bundle).unwrap();
    let ids: Vec<&str> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["detector"]["builtin"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), listed.lines().count());
    let path = scratch("full-catalogue.json", bundle.as_bytes());
    let check = veil(&["check", path.to_str().unwrap()], None);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
}

//! Sensitive values written in an encoding the wire format allows: percent-
//! encoding in query strings and form bodies, `\u` escapes in JSON strings.
//! Clients (a browser submitting a GET form, any URL builder) produce these
//! routinely, so they must not slip past the default bundle.
//!
//! The engine decodes them before scanning (`engine/src/codec/`) and masks
//! whole escapes, so what the upstream receives stays well-formed.

mod common;

use veil_integration_tests::{test_id, Harness, Proto, TestRequest};

/// Percent-decodes (`+` as space); good enough for assertions.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn default_envoy() -> anyhow::Result<Harness> {
    common::builder().config_raw("").start().await
}

/// What the upstream received for a GET, decoded; `None` if it was not reached.
async fn upstream_query(h: &Harness, path: &str) -> anyhow::Result<(u16, Option<String>)> {
    let id = test_id("enc-query");
    let resp = h.send(Proto::Http1, TestRequest::get(path, &id)).await?;
    let rec = h.recorded(&id).await?;
    Ok((resp.status.as_u16(), rec.first().map(|r| decode(&r.path))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_encoded_pii_in_query_is_masked() -> anyhow::Result<()> {
    let h = default_envoy().await?;
    for path in [
        "/s?email=jane.doe%40example.com",
        "/s?card=4111%201111%201111%201111",
        "/s?card=4111+1111+1111+1111",
    ] {
        let (status, seen) = upstream_query(&h, path).await?;
        assert_eq!(status, 200, "{path}");
        let seen = seen.unwrap_or_default();
        assert!(
            !seen.contains("jane.doe") && !seen.contains("4111 1111 1111 1111"),
            "{path}: upstream saw {seen:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_encoded_secret_in_query_is_blocked() -> anyhow::Result<()> {
    let h = default_envoy().await?;
    // %41 is `A`: the same AWS key id as the plain-text block test.
    let (status, seen) = upstream_query(&h, "/s?k=%41KIAZ3MSJ5TVQ4GQDKWY").await?;
    assert_eq!(status, 403, "upstream saw {seen:?}");
    assert_eq!(seen, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_email_in_form_and_json_bodies_is_masked() -> anyhow::Result<()> {
    let h = default_envoy().await?;
    // Form body: what a browser sends for an email field.
    let id = test_id("enc-form");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/signup", &id)
                .content_type("application/x-www-form-urlencoded")
                .body("user=jane&email=jane.doe%40example.com"),
        )
        .await?;
    assert_eq!(resp.status, 200);
    let seen = decode(&h.recorded(&id).await?[0].body_text());
    assert!(seen.starts_with("user=jane&email="), "{seen:?}");
    assert!(!seen.contains("jane.doe"), "form: upstream saw {seen:?}");

    // JSON with a \u escape: the same string once parsed.
    let id = test_id("enc-json");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/users", &id)
                .content_type("application/json")
                .body(r#"{"email":"jane.doe\u0040example.com"}"#),
        )
        .await?;
    assert_eq!(resp.status, 200);
    let v = h.recorded(&id).await?[0].body_json()?;
    let email = v["email"].as_str().unwrap_or_default();
    assert!(!email.contains("jane.doe"), "json: upstream saw {email:?}");
    Ok(())
}

#[test]
fn decode_handles_percent_plus_and_stray_percent() {
    assert_eq!(decode("a%40b+c%2"), "a@b c%2");
    assert_eq!(decode("%zz%41"), "%zzA");
}

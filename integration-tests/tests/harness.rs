//! Checks of the harness itself: Envoy without the veil filter (the bench
//! baseline) in front of veil-echo, over HTTP/1.1 and h2c, with streamed and
//! large bodies. If these fail, the veil tests cannot be trusted either.

mod common;

use std::time::Duration;

use serde_json::json;
use veil_integration_tests::{pseudo_random_bytes, send, test_id, Proto, TestRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_without_filter_proxies_http1_to_http1_upstream() -> anyhow::Result<()> {
    let h = common::builder().without_filter().start().await?;
    let id = test_id("nofilter-h1");
    let body = json!({"email": "jane.doe@example.com"});
    let resp = h
        .send(Proto::Http1, TestRequest::post("/a/b?x=1", &id).json(&body))
        .await?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.json()?,
        body,
        "no filter: the echo comes back unchanged"
    );

    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].method, "POST");
    assert_eq!(rec[0].path, "/a/b?x=1");
    assert_eq!(rec[0].body_json()?, body);
    assert!(
        rec[0].header("x-request-id").is_some(),
        "went through Envoy"
    );

    // Canned responses replace the echo for that test id only.
    h.set_upstream_response(&id, 201, Some("text/plain"), "canned")
        .await?;
    let resp = h.send(Proto::Http1, TestRequest::get("/", &id)).await?;
    assert_eq!(resp.status, 201);
    assert_eq!(resp.text(), "canned");
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    assert_eq!(h.recorded(&id).await?.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_without_filter_proxies_h2c_with_trailers_and_large_bodies() -> anyhow::Result<()> {
    let h = common::builder()
        .without_filter()
        .upstream(Proto::Http2)
        .start()
        .await?;

    // Streamed HTTP/2 body with trailers reaches the upstream over h2c.
    let id = test_id("nofilter-h2");
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/t", &id)
                .content_type("text/plain")
                .chunks(["hello ", "world"], Duration::from_millis(5))
                .trailers(&[("x-checksum", "abc")]),
        )
        .await?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello world");
    assert_eq!(resp.header("x-echo-trailers"), Some("x-checksum=abc"));
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].trailer("x-checksum"), Some("abc"));

    // 10 MiB through Envoy, HTTP/1.1 client (content-length) to h2c upstream.
    let big = pseudo_random_bytes(10 << 20, 7);
    let id = test_id("nofilter-big");
    let resp = h
        .send(
            Proto::Http1,
            TestRequest::post("/big", &id)
                .content_type("application/octet-stream")
                .body(big.clone()),
        )
        .await?;
    assert_eq!(resp.status, 200);
    assert!(resp.body.as_ref() == big.as_slice(), "10 MiB echo differs");
    assert!(h.recorded(&id).await?[0].body == big);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_serves_chunked_http1_and_h2c_directly() -> anyhow::Result<()> {
    let echo = veil_integration_tests::EchoServer::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_veil-echo")),
        None,
    )?;
    let big = pseudo_random_bytes(10 << 20, 11);
    let chunks: Vec<Vec<u8>> = big.chunks(1 << 20).map(<[u8]>::to_vec).collect();
    for proto in [Proto::Http1, Proto::Http2] {
        let id = test_id("echo-direct");
        let resp = send(
            echo.addr(),
            proto,
            TestRequest::post("/x", &id).chunks(chunks.clone(), Duration::ZERO),
        )
        .await?;
        assert_eq!(resp.status, 200, "{proto:?}");
        assert_eq!(
            resp.header("content-type"),
            None,
            "no content-type in, none out"
        );
        assert!(
            resp.body.as_ref() == big.as_slice(),
            "{proto:?}: echo differs"
        );
        let rec = echo.recorded(&id).await?;
        assert_eq!(rec.len(), 1);
        if proto == Proto::Http1 {
            assert_eq!(rec[0].header("transfer-encoding"), Some("chunked"));
        }
    }
    // Unknown test ids have no records; requests without x-test-id are not recorded.
    assert!(echo.recorded("nobody").await?.is_empty());
    Ok(())
}

//! Shared by the test files: a harness builder that knows this package's
//! `veil-echo` binary (`CARGO_BIN_EXE_*` exists only in tests of the package).

use veil_integration_tests::{test_id, Harness, HarnessBuilder, Proto, TestRequest};

pub fn builder() -> HarnessBuilder {
    Harness::builder().echo_bin(env!("CARGO_BIN_EXE_veil-echo"))
}

/// An HTTP/2 request of headers and trailers only (no body at all) must
/// pass whole, trailers included, in whatever body mode the harness runs:
/// there is nothing to hold or scan, and nothing may be refused.
#[allow(dead_code)] // used by the body-mode test files only
pub async fn trailers_only_request_passes_whole(h: &Harness, label: &str) -> anyhow::Result<()> {
    let id = test_id(label);
    let resp = h
        .send(
            Proto::Http2,
            TestRequest::post("/trailers-only", &id)
                .content_type("application/json")
                .trailers(&[("x-checksum", "none")]),
        )
        .await?;
    assert_eq!(resp.status, 200, "{label}: {}", resp.text());
    let rec = h.recorded(&id).await?;
    assert_eq!(rec.len(), 1, "{label}");
    assert!(rec[0].body.is_empty(), "{label}");
    assert_eq!(rec[0].trailer("x-checksum"), Some("none"), "{label}");
    Ok(())
}

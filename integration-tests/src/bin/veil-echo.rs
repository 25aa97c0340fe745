//! `veil-echo`: the upstream test server of veil's integration tests, the demo
//! (`cargo xtask demo`) and the end-to-end bench.
//!
//! ```text
//! veil-echo --listen 127.0.0.1:0
//! ```
//!
//! After binding, it prints exactly one line to stdout, `listening on IP:PORT`,
//! and flushes; tools parse that line to learn the port. One port serves
//! HTTP/1.1 and HTTP/2 with prior knowledge (h2c).
//!
//! Behaviour for proxied traffic:
//! - echo: 200 with the exact request body bytes and the request's
//!   `content-type` (none if the request had none); if the request had
//!   trailers, the response carries `x-echo-trailers: name=value;...`.
//! - a request carrying `x-test-id: ID` is recorded (method, path and query,
//!   headers, body, trailers), and if a canned response was registered for ID
//!   it is served instead of the echo. Requests without `x-test-id` are not
//!   recorded, so load tests do not grow the server's memory.
//!
//! Control endpoints (called directly on this port, not through Envoy):
//! - `GET /__veil_echo/requests/ID`: JSON array of the recorded requests,
//!   `[{"method","path","headers":[[name,value],...],"body_base64","body",
//!   "trailers":[[name,value],...]}]` (`body` is the UTF-8-lossy text).
//! - `PUT /__veil_echo/response/ID`: register a canned response for ID: its
//!   body is this request's body, its content-type the value of
//!   `x-echo-content-type` (none if absent), its status `x-echo-status`
//!   (default 200). Optional, for bodies that arrive in pieces:
//!   `x-echo-content-encoding` (sent as `content-encoding`, the body is
//!   taken as already encoded), `x-echo-split: 10,250` (one frame per piece,
//!   cut at these byte offsets), `x-echo-chunk-size: N` (frames of N bytes;
//!   1 sends one byte per frame), `x-echo-chunk-delay-ms: N` (pause between
//!   frames), `x-echo-gate: 1` (the last frame waits for a release),
//!   `x-echo-trailers: name=value;...` (response trailers).
//! - `POST /__veil_echo/release/ID`: lets the gated last frame of ID's
//!   canned response go (a release before the wait is remembered). Tests
//!   use it to prove a client got earlier frames before the upstream sent
//!   the last one.
//! - `POST /__veil_echo/sink/NAME`: reads the body and answers 200 `{}`
//!   (`application/json`), as an OTLP/HTTP collector does: the bench points
//!   veil's event export here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use tokio::net::TcpListener;

const CONTROL_PREFIX: &str = "/__veil_echo/";

#[derive(Serialize, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body_base64: String,
    body: String,
    trailers: Vec<(String, String)>,
}

#[derive(Clone)]
struct Canned {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
    content_encoding: Option<HeaderValue>,
    /// Frame boundaries (byte offsets); empty: one frame.
    cuts: Vec<usize>,
    delay: std::time::Duration,
    gate: bool,
    trailers: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    recorded: Mutex<HashMap<String, Vec<Recorded>>>,
    canned: Mutex<HashMap<String, Canned>>,
    gates: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
}

impl State {
    fn gate(&self, id: &str) -> Arc<tokio::sync::Notify> {
        lock(&self.gates).entry(id.to_string()).or_default().clone()
    }
}

type Resp = Response<BoxBody<Bytes, Infallible>>;

fn usage() -> ! {
    eprintln!("usage: veil-echo --listen IP:PORT   (e.g. --listen 127.0.0.1:0)");
    std::process::exit(2);
}

fn parse_args() -> SocketAddr {
    let mut args = std::env::args().skip(1);
    let mut listen = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next(),
            s if s.starts_with("--listen=") => listen = Some(s["--listen=".len()..].to_string()),
            "-h" | "--help" => usage(),
            other => {
                eprintln!("veil-echo: unknown argument {other:?}");
                usage()
            }
        }
    }
    let Some(listen) = listen else { usage() };
    match listen.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("veil-echo: --listen {listen:?} is not an IP:PORT address: {e}");
            std::process::exit(2);
        }
    }
}

#[tokio::main]
async fn main() {
    let addr = parse_args();
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("veil-echo: cannot bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("veil-echo: cannot read the bound address: {e}");
            std::process::exit(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        // Tools wait for this line: if stdout is gone there is nobody to serve.
        if writeln!(out, "listening on {local}")
            .and_then(|_| out.flush())
            .is_err()
        {
            std::process::exit(1);
        }
    }

    let state = Arc::new(State::default());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: report and keep serving.
                eprintln!("veil-echo: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http2()
                // Large (10 MiB) bodies: bigger windows than the 64 KiB default.
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(8 << 20)
                .max_concurrent_streams(1024);
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                // Clients (and Envoy) reset connections routinely; keep it quiet
                // unless asked.
                if std::env::var_os("VEIL_ECHO_DEBUG").is_some() {
                    eprintln!("veil-echo: connection: {e}");
                }
            }
        });
    }
}

fn full(body: Bytes) -> BoxBody<Bytes, Infallible> {
    Full::new(body).boxed()
}

fn text(status: StatusCode, msg: impl Into<String>) -> Resp {
    let mut resp = Response::new(full(Bytes::from(msg.into())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn pairs(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

async fn handle(state: &State, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix(CONTROL_PREFIX) {
        return control(state, rest, req).await;
    }

    let method = req.method().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let test_id = req
        .headers()
        .get("x-test-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let content_type = req.headers().get(CONTENT_TYPE).cloned();
    let headers = pairs(req.headers());

    let collected = match req.into_body().collect().await {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("body read error: {e}\n")),
    };
    let trailers = collected.trailers().cloned();
    let body = collected.to_bytes();
    let trailer_pairs = trailers.as_ref().map(pairs).unwrap_or_default();

    let mut canned = None;
    let gate = test_id.as_deref().map(|id| state.gate(id));
    if let Some(id) = &test_id {
        let rec = Recorded {
            method,
            path: path_and_query,
            headers,
            body_base64: base64::engine::general_purpose::STANDARD.encode(&body),
            body: String::from_utf8_lossy(&body).into_owned(),
            trailers: trailer_pairs.clone(),
        };
        lock(&state.recorded)
            .entry(id.clone())
            .or_default()
            .push(rec);
        canned = lock(&state.canned).get(id).cloned();
    }

    let mut resp = match canned {
        Some(c) => canned_response(c, gate),
        None => {
            let mut resp = Response::new(full(body));
            if let Some(ct) = content_type {
                resp.headers_mut().insert(CONTENT_TYPE, ct);
            }
            resp
        }
    };
    if !trailer_pairs.is_empty() {
        let joined = trailer_pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        if let Ok(v) = HeaderValue::from_str(&joined) {
            resp.headers_mut().insert("x-echo-trailers", v);
        }
    }
    resp
}

/// A canned response, in frames when asked for.
fn canned_response(c: Canned, gate: Option<Arc<tokio::sync::Notify>>) -> Resp {
    let streamed = !c.cuts.is_empty() || c.gate || !c.trailers.is_empty();
    let body = if streamed {
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
        let mut pieces = Vec::new();
        let mut from = 0;
        for &cut in c.cuts.iter().chain(std::iter::once(&c.body.len())) {
            let cut = cut.clamp(from, c.body.len());
            if cut > from || (cut == c.body.len() && pieces.is_empty()) {
                pieces.push(c.body.slice(from..cut));
            }
            from = cut;
        }
        let trailers = c.trailers.clone();
        tokio::spawn(async move {
            let last = pieces.len().saturating_sub(1);
            for (i, piece) in pieces.into_iter().enumerate() {
                if i > 0 && !c.delay.is_zero() {
                    tokio::time::sleep(c.delay).await;
                }
                if i == last && c.gate {
                    if let Some(g) = &gate {
                        g.notified().await;
                    }
                }
                if tx.send_data(piece).await.is_err() {
                    return;
                }
            }
            if !trailers.is_empty() {
                let mut map = HeaderMap::new();
                for (k, v) in &trailers {
                    if let (Ok(k), Ok(v)) = (
                        hyper::header::HeaderName::from_bytes(k.as_bytes()),
                        HeaderValue::from_str(v),
                    ) {
                        map.append(k, v);
                    }
                }
                let _ = tx.send_trailers(map).await;
            }
        });
        body.boxed()
    } else {
        full(c.body)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = c.status;
    if let Some(ct) = c.content_type {
        resp.headers_mut().insert(CONTENT_TYPE, ct);
    }
    if let Some(ce) = c.content_encoding {
        resp.headers_mut().insert("content-encoding", ce);
    }
    resp
}

fn header_text(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

async fn control(state: &State, rest: &str, req: Request<Incoming>) -> Resp {
    let (kind, id) = match rest.split_once('/') {
        Some((k, id)) if !id.is_empty() => (k.to_string(), id.to_string()),
        _ => return text(StatusCode::NOT_FOUND, "unknown control endpoint\n"),
    };
    match (req.method().clone(), kind.as_str()) {
        (Method::GET, "requests") => {
            let recorded = lock(&state.recorded).get(&id).cloned().unwrap_or_default();
            match serde_json::to_vec(&recorded) {
                Ok(json) => {
                    let mut resp = Response::new(full(Bytes::from(json)));
                    resp.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    resp
                }
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            }
        }
        (Method::PUT, "response") => {
            let status = match req.headers().get("x-echo-status") {
                None => StatusCode::OK,
                Some(v) => match v
                    .to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u16>().ok())
                    .and_then(|n| StatusCode::from_u16(n).ok())
                {
                    Some(s) => s,
                    None => return text(StatusCode::BAD_REQUEST, "bad x-echo-status\n"),
                },
            };
            let content_type = req.headers().get("x-echo-content-type").cloned();
            let content_encoding = req.headers().get("x-echo-content-encoding").cloned();
            let split: Vec<usize> = header_text(&req, "x-echo-split")
                .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
                .unwrap_or_default();
            let chunk_size: Option<usize> = header_text(&req, "x-echo-chunk-size")
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0);
            let delay = std::time::Duration::from_millis(
                header_text(&req, "x-echo-chunk-delay-ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            );
            let gate = header_text(&req, "x-echo-gate").is_some_and(|v| v == "1");
            let trailers: Vec<(String, String)> = header_text(&req, "x-echo-trailers")
                .map(|v| {
                    v.split(';')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let body = match req.into_body().collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => return text(StatusCode::BAD_REQUEST, format!("body read error: {e}\n")),
            };
            let cuts = match chunk_size {
                Some(n) => (1..body.len().div_ceil(n)).map(|i| i * n).collect(),
                None => split,
            };
            lock(&state.canned).insert(
                id,
                Canned {
                    status,
                    content_type,
                    body,
                    content_encoding,
                    cuts,
                    delay,
                    gate,
                    trailers,
                },
            );
            text(StatusCode::OK, "ok\n")
        }
        (Method::POST, "release") => {
            state.gate(&id).notify_one();
            text(StatusCode::OK, "released\n")
        }
        (Method::POST, "sink") => {
            // What an OTLP/HTTP collector answers to an accepted export:
            // the bench's collector, without echoing the batch back.
            if let Err(e) = req.into_body().collect().await {
                return text(StatusCode::BAD_REQUEST, format!("body read error: {e}\n"));
            }
            let mut resp = Response::new(full(Bytes::from_static(b"{}")));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "control endpoints: GET /__veil_echo/requests/ID, PUT /__veil_echo/response/ID, \
             POST /__veil_echo/release/ID, POST /__veil_echo/sink/NAME\n",
        ),
    }
}

/// A poisoned lock only means another handler panicked mid-update; the maps
/// stay usable for a test server.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! A real OTLP/HTTP logs receiver for the tests: a hyper server that
//! accepts `POST /v1/logs` with `content-type: application/json` and decodes
//! the body with the official OpenTelemetry protobuf definitions
//! (`opentelemetry-proto`, its OTLP/JSON serde mapping). A body that does
//! not decode is answered 400 and kept as an error, so a test sees it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

#[derive(Default)]
struct State {
    requests: Vec<ReceivedExport>,
    errors: Vec<String>,
}

/// One export request as received.
#[derive(Debug, Clone)]
pub struct ReceivedExport {
    pub path: String,
    pub content_type: Option<String>,
    pub authority: Option<String>,
    pub headers: Vec<(String, String)>,
    pub request: ExportLogsServiceRequest,
}

/// A running receiver; stops when dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// Listens on 127.0.0.1 (any free port).
    pub async fn start() -> Result<OtlpReceiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the OTLP receiver")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let status = Arc::new(AtomicU16::new(200));
        let (st, stat) = (Arc::clone(&state), Arc::clone(&status));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (st, stat) = (Arc::clone(&st), Arc::clone(&stat));
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (st, stat) = (Arc::clone(&st), Arc::clone(&stat));
                        async move { Ok::<_, std::convert::Infallible>(handle(req, st, stat).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(OtlpReceiver {
            addr,
            state,
            status,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The status answered to the next exports (default 200).
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn exports(&self) -> Vec<ReceivedExport> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    /// Bodies that failed to decode, with the reason.
    pub fn errors(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.errors.clone())
            .unwrap_or_default()
    }

    /// Every log record received so far.
    pub fn records(&self) -> Vec<LogRecord> {
        self.exports()
            .into_iter()
            .flat_map(|e| e.request.resource_logs)
            .flat_map(|rl| rl.scope_logs)
            .flat_map(|sl| sl.log_records)
            .collect()
    }

    /// Polls until `done(records)` holds.
    pub async fn wait_for_records(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[LogRecord]) -> bool,
    ) -> Result<Vec<LogRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.records();
            if done(&records) {
                return Ok(records);
            }
            if Instant::now() >= deadline {
                bail!(
                    "the OTLP receiver did not get the expected records within {timeout:?}: \
                     {} records in {} exports, decode errors: {:?}",
                    records.len(),
                    self.exports().len(),
                    self.errors()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
    status: Arc<AtomicU16>,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type");
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| header("host"));
    let path = req.uri().path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let reply = |code: u16, body: &str| {
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(400, &format!("{{\"error\":\"{e}\"}}")),
    };
    let code = status.load(Ordering::SeqCst);
    if code != 200 {
        return reply(code, "{}");
    }
    match serde_json::from_slice::<ExportLogsServiceRequest>(&body) {
        Ok(request) => {
            if let Ok(mut s) = state.lock() {
                s.requests.push(ReceivedExport {
                    path,
                    content_type,
                    authority,
                    headers,
                    request,
                });
            }
            reply(200, "{}")
        }
        Err(e) => {
            if let Ok(mut s) = state.lock() {
                s.errors
                    .push(format!("{e}: {}", String::from_utf8_lossy(&body)));
            }
            reply(400, "{}")
        }
    }
}

/// A string value of an OTLP attribute list.
pub fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key)?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// An OTLP attribute value.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key)?.value.as_ref()
}

/// Lower-case hex of an id (trace/span ids are bytes in the protobuf).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

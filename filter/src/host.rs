//! Host calls the HTTP path needs, returning `Result` on every status.
//!
//! The proxy-wasm SDK's wrappers (`hostcalls::set_buffer`,
//! `send_http_response`, ...) `panic!` on any status they do not expect,
//! and a panic kills the VM for every request on the worker. Envoy does
//! answer with such statuses (a body write at a non-zero offset, a local
//! reply after headers went out), so the traffic path goes through these
//! wrappers instead. Statuses are read as plain `u32`: an enum return type
//! would be undefined behaviour for a status this SDK does not know.

use proxy_wasm::types::{BufferType, MapType};
use std::ptr::{null, null_mut};

/// A non-OK status from the host, with the call that produced it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host call {call} failed with status {status}")]
pub struct HostError {
    pub call: &'static str,
    pub status: u32,
}

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;

#[cfg(target_arch = "wasm32")]
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
}

/// Native builds (unit tests, clippy on the host) have no proxy: every call
/// reports "not found" so code paths stay type-checked.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    pub unsafe fn proxy_log(_: u32, _: *const u8, _: usize) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_get_log_level(_: *mut u32) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_get_current_time_nanoseconds(_: *mut u64) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_get_buffer_bytes(
        _: u32,
        _: usize,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_set_buffer_bytes(
        _: u32,
        _: usize,
        _: usize,
        _: *const u8,
        _: usize,
    ) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_get_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_replace_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
    ) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_remove_header_map_value(_: u32, _: *const u8, _: usize) -> u32 {
        super::NOT_FOUND
    }
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn proxy_send_local_response(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: i32,
    ) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_define_metric(_: u32, _: *const u8, _: usize, _: *mut u32) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_increment_metric(_: u32, _: i64) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_record_metric(_: u32, _: u64) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_get_property(
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_set_property(_: *const u8, _: usize, _: *const u8, _: usize) -> u32 {
        super::NOT_FOUND
    }
    pub unsafe fn proxy_set_tick_period_milliseconds(_: u32) -> u32 {
        super::NOT_FOUND
    }
}
#[cfg(not(target_arch = "wasm32"))]
use native::*;

/// Host-call accounting for measurements (`--features count-hostcalls`):
/// a count per kind of call, and how many calls handed bytes back (each
/// of those made Envoy call `proxy_on_memory_allocate`, another V8 entry).
/// Without the feature every `tally` is an empty inline function.
#[cfg(feature = "count-hostcalls")]
pub mod tally {
    use std::sync::atomic::{AtomicU64, Ordering};

    pub const NAMES: [&str; 16] = [
        "log",
        "time",
        "get_buffer",
        "set_buffer",
        "get_header",
        "get_headers",
        "set_header",
        "remove_header",
        "local_response",
        "define_metric",
        "increment_metric",
        "record_metric",
        "get_property",
        "set_property",
        "host_allocations",
        "body_callbacks",
    ];
    static COUNTS: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];

    pub fn add(kind: usize) {
        COUNTS[kind].fetch_add(1, Ordering::Relaxed);
    }

    /// `name=count` per kind, divided by `per` (e.g. streams).
    pub fn report(per: u64) -> String {
        let mut out = String::new();
        let mut total = 0;
        for (i, name) in NAMES.iter().enumerate() {
            let n = COUNTS[i].load(Ordering::Relaxed);
            // Host allocations and body callbacks are entries into the
            // module, not host calls.
            if i < super::Call::HostAllocation as usize {
                total += n;
            }
            if n > 0 {
                out.push_str(&format!(" {name}={:.2}", n as f64 / per as f64));
            }
        }
        format!(
            "host calls per stream {:.2}:{out}",
            total as f64 / per as f64
        )
    }
}

/// Kinds of host calls counted under `count-hostcalls`.
#[derive(Debug, Clone, Copy)]
pub enum Call {
    Log = 0,
    Time,
    GetBuffer,
    SetBuffer,
    GetHeader,
    GetHeaders,
    SetHeader,
    RemoveHeader,
    LocalResponse,
    DefineMetric,
    IncrementMetric,
    RecordMetric,
    GetProperty,
    SetProperty,
    HostAllocation,
    BodyCallback,
}

#[inline(always)]
pub fn tally(_call: Call) {
    #[cfg(feature = "count-hostcalls")]
    tally::add(_call as usize);
}

fn check(call: &'static str, status: u32) -> Result<(), HostError> {
    if status == OK {
        Ok(())
    } else {
        Err(HostError { call, status })
    }
}

/// Takes ownership of a buffer the host allocated through the SDK's
/// `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes).
///
/// # Safety
/// `data` must come from the host after an OK status, with that `size`.
unsafe fn take_host_bytes(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    tally(Call::HostAllocation);
    Vec::from_raw_parts(data, size, size)
}

/// Log levels of the proxy-wasm ABI.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    Info = 2,
    Warn = 3,
    Error = 4,
}

pub fn log(level: Level, message: &str) {
    // Nothing useful can be done when logging itself fails.
    tally(Call::Log);
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

/// The level below which the proxy drops this module's log lines (the
/// ABI's numbering, as [`Level`]); `None` when the host cannot say.
pub fn log_level() -> Option<u32> {
    let mut level = 0u32;
    tally(Call::Log);
    let status = unsafe { proxy_get_log_level(&mut level) };
    (status == OK).then_some(level)
}

pub fn now_nanos() -> u64 {
    let mut t = 0u64;
    tally(Call::Time);
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    if status == OK {
        t
    } else {
        0
    }
}

/// The whole buffer of `kind` (up to `max` bytes); `None` if the host has
/// no such buffer.
pub fn get_buffer(
    kind: BufferType,
    start: usize,
    max: usize,
) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    tally(Call::GetBuffer);
    let status = unsafe { proxy_get_buffer_bytes(kind as u32, start, max, &mut data, &mut size) };
    match status {
        OK => Ok(Some(unsafe { take_host_bytes(data, size) })),
        NOT_FOUND => Ok(None),
        status => Err(HostError {
            call: "get_buffer_bytes",
            status,
        }),
    }
}

/// Replaces the first `size` bytes of the buffer by `value`. Envoy only
/// supports `start == 0` (replace) or appending, so callers replace whole.
pub fn replace_buffer(kind: BufferType, size: usize, value: &[u8]) -> Result<(), HostError> {
    tally(Call::SetBuffer);
    let status =
        unsafe { proxy_set_buffer_bytes(kind as u32, 0, size, value.as_ptr(), value.len()) };
    check("set_buffer_bytes", status)
}

pub fn get_header(map: MapType, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    tally(Call::GetHeader);
    let status = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match status {
        OK if data.is_null() => Ok(None),
        OK => Ok(Some(unsafe { take_host_bytes(data, size) })),
        NOT_FOUND => Ok(None),
        status => Err(HostError {
            call: "get_header_map_value",
            status,
        }),
    }
}

/// The whole header map of `map`, serialized (see [`crate::headers`]).
pub fn get_header_pairs(map: MapType) -> Result<Vec<u8>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    tally(Call::GetHeaders);
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    match status {
        OK => Ok(unsafe { take_host_bytes(data, size) }),
        status => Err(HostError {
            call: "get_header_map_pairs",
            status,
        }),
    }
}

/// A header value as text; headers that are not UTF-8 are treated as absent
/// for the request facts we report (method, path, ids).
pub fn get_header_text(map: MapType, name: &str) -> Option<String> {
    get_header(map, name)
        .ok()
        .flatten()
        .and_then(|v| String::from_utf8(v).ok())
}

pub fn set_header(map: MapType, name: &str, value: &[u8]) -> Result<(), HostError> {
    tally(Call::SetHeader);
    let status = unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    check("replace_header_map_value", status)
}

pub fn remove_header(map: MapType, name: &str) -> Result<(), HostError> {
    tally(Call::RemoveHeader);
    let status = unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) };
    check("remove_header_map_value", status)
}

/// Header pairs in the ABI's serialized map format: a u32 count, the
/// (key, value) sizes, then each key and value NUL-terminated.
pub(crate) fn serialize_headers(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for (k, v) in headers {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Sends a local reply and ends the stream; `details` shows up as Envoy's
/// response code details (`%RESPONSE_CODE_DETAILS%`).
pub fn send_local_response(
    status_code: u32,
    details: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    let headers = serialize_headers(headers);
    tally(Call::LocalResponse);
    let status = unsafe {
        proxy_send_local_response(
            status_code,
            if details.is_empty() {
                null()
            } else {
                details.as_ptr()
            },
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    };
    check("send_local_response", status)
}

/// Kinds of proxy-wasm metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// Defines (or finds: Envoy returns the same id for the same name) a metric.
/// Envoy shows it as `wasmcustom.<name>`.
pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32, HostError> {
    let mut id = 0u32;
    tally(Call::DefineMetric);
    let status = unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    check("define_metric", status).map(|_| id)
}

/// Adds `offset` to a counter or gauge; failures are ignored (a metric is
/// never worth failing traffic for).
pub fn increment_metric(id: u32, offset: i64) {
    tally(Call::IncrementMetric);
    let _ = unsafe { proxy_increment_metric(id, offset) };
}

/// Sets a gauge or records a histogram sample; failures are ignored.
pub fn record_metric(id: u32, value: u64) {
    tally(Call::RecordMetric);
    let _ = unsafe { proxy_record_metric(id, value) };
}

/// A property path in the ABI's format: segments separated by NUL.
fn property_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// A property of the stream or the proxy (`source.address`,
/// `node.metadata.NAME`, ...); `None` when absent or on any error.
pub fn get_property(path: &[&str]) -> Option<Vec<u8>> {
    let path = property_path(path);
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    tally(Call::GetProperty);
    let status = unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
    if status == OK && !data.is_null() {
        Some(unsafe { take_host_bytes(data, size) })
    } else {
        None
    }
}

/// A string property (see [`get_property`]); non-UTF-8 values are absent.
pub fn get_property_text(path: &[&str]) -> Option<String> {
    get_property(path).and_then(|v| String::from_utf8(v).ok())
}

/// Writes filter state: Envoy stores it under `wasm.<path>` (readable in
/// access logs as `%FILTER_STATE(wasm.<path>:PLAIN)%`).
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    let path = property_path(path);
    tally(Call::SetProperty);
    let status =
        unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
    check("set_property", status)
}

/// Starts (or with 0 stops) the root context's `on_tick` timer.
pub fn set_tick_period_ms(period: u32) -> Result<(), HostError> {
    let status = unsafe { proxy_set_tick_period_milliseconds(period) };
    check("set_tick_period_milliseconds", status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_paths_are_nul_separated() {
        assert_eq!(property_path(&["node", "id"]), b"node\0id".to_vec());
        assert_eq!(property_path(&["veil.summary"]), b"veil.summary".to_vec());
    }

    #[test]
    fn header_map_serialization_matches_the_abi() {
        let bytes = serialize_headers(&[("a", "bc")]);
        assert_eq!(
            bytes,
            vec![1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', b'c', 0]
        );
    }
}

//! The floor of `cargo xtask bench`: a proxy-wasm filter that buffers each
//! request and response body to its end and reads it once, and does nothing
//! else. Any filter that inspects bodies in Envoy pays at least this (VM
//! entries per callback, body buffering, one copy of each body into wasm
//! memory), so veil's own cost is the difference between veil and this,
//! not between veil and no filter.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Floor) });
}}

struct Floor;

impl Context for Floor {}

impl RootContext for Floor {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FloorStream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FloorStream;

impl Context for FloorStream {}

impl HttpContext for FloorStream {
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let _ = self.get_http_request_body(0, body_size);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let _ = self.get_http_response_body(0, body_size);
        Action::Continue
    }
}

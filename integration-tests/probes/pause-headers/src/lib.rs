//! Pauses every response in its headers callback, logs each callback, and
//! resumes paused streams from the root context's timer. In the body
//! callback it tries a local reply (451), which only works if the response
//! headers were still held.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::RefCell;
use std::time::Duration;

thread_local! {
    static PAUSED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

fn log(message: &str) {
    let _ = hostcalls::log(LogLevel::Warn, &format!("probe: {message}"));
}

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        self.set_tick_period(Duration::from_millis(500));
        true
    }

    fn on_tick(&mut self) {
        let paused: Vec<u32> = PAUSED.with(|p| p.borrow_mut().drain(..).collect());
        for id in paused {
            log("timer resumes the response");
            let _ = hostcalls::set_effective_context(id);
            let _ = hostcalls::resume_http_response();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { id: context_id }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    id: u32,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        log("response headers paused");
        PAUSED.with(|p| p.borrow_mut().push(self.id));
        Action::Pause
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        log(&format!("response body callback size={size} end_of_stream={end_of_stream}"));
        if end_of_stream {
            let _ = hostcalls::send_http_response(451, vec![], Some(b"probe reply\n"));
            return Action::Pause;
        }
        Action::Continue
    }
}

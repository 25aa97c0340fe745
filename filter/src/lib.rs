//! veil-filter: the proxy-wasm module Envoy loads. A thin adapter: the root
//! context turns the plugin configuration into `Settings` (compiled policy
//! included) once per (re)configuration; each HTTP stream gets a `VeilHttp`
//! that applies the engine's decisions through host calls.

pub mod config;
pub mod host;
pub mod http;

use config::Settings;
use host::Level;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(VeilRoot::new()) });
}}

/// Owns the configuration shared by all streams of this VM.
pub struct VeilRoot {
    settings: Option<Rc<Settings>>,
    /// Per-VM random seed, so event ids from different workers differ.
    seed: u64,
}

impl VeilRoot {
    pub fn new() -> VeilRoot {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(host::now_nanos());
        VeilRoot {
            settings: None,
            seed: h.finish(),
        }
    }
}

impl Default for VeilRoot {
    fn default() -> Self {
        VeilRoot::new()
    }
}

impl Context for VeilRoot {}

impl RootContext for VeilRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = match host::get_buffer(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        ) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(e) => {
                host::log(
                    Level::Error,
                    &format!("veil: cannot read the plugin configuration: {e}"),
                );
                return false;
            }
        };
        match Settings::parse(&bytes) {
            Ok(settings) => {
                host::log(
                    Level::Info,
                    &format!(
                        "veil: loaded bundle {} revision {} ({} rules{}), max_body_bytes {}, over_limit {:?}, fail_mode {:?}",
                        settings.policy.name(),
                        settings.policy.revision(),
                        settings.policy.rule_count(),
                        if settings.default_bundle { ", embedded default" } else { "" },
                        settings.max_body_bytes,
                        settings.over_limit,
                        settings.fail_mode,
                    ),
                );
                self.settings = Some(Rc::new(settings));
                true
            }
            Err(e) => {
                // Returning false makes Envoy reject this configuration: on
                // first load the listener does not come up, on reload the
                // previous configuration stays in force.
                host::log(Level::Error, &format!("veil: configuration rejected: {e}"));
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let settings = self.settings.as_ref()?;
        Some(Box::new(http::VeilHttp::new(
            Rc::clone(settings),
            context_id,
            self.seed,
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

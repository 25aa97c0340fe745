//! veil-filter: the proxy-wasm module Envoy loads. A thin adapter: the root
//! context turns the plugin configuration into `Settings` (compiled policy
//! included) once per (re)configuration; each HTTP stream gets a `VeilHttp`
//! that applies the engine's decisions through host calls.

pub mod config;
pub mod export;
pub mod headers;
pub mod host;
pub mod http;
pub mod metrics;

use config::Settings;
use export::Exporter;
use host::Level;
use metrics::Metrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};
use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use veil_engine::event::{NodeFacts, Resource};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(VeilRoot::new()) });
}}

/// What every stream of this VM shares: built on each (re)configuration.
pub struct Shared {
    pub settings: Rc<Settings>,
    pub metrics: Rc<Metrics>,
    pub resource: Rc<Resource>,
    /// Present when OTLP export is configured.
    pub export: Option<export::SharedQueue>,
}

/// Owns the configuration shared by all streams of this VM.
pub struct VeilRoot {
    shared: Option<Rc<Shared>>,
    /// Defined on the first configuration, then reused.
    metrics: Option<Rc<Metrics>>,
    exporter: Option<Rc<RefCell<Exporter>>>,
    /// Per-VM random seed, so event ids from different workers differ.
    seed: u64,
}

/// Resource facts from Envoy's node (Istio fills its metadata). Envoy 1.40
/// exposes the node as the `xds.node` attribute; older proxies as `node`.
fn node_facts(service_name: Option<String>) -> NodeFacts {
    let text = |path: &[&str]| {
        let mut xds = vec!["xds"];
        xds.extend_from_slice(path);
        host::get_property_text(&xds)
            .or_else(|| host::get_property_text(path))
            .filter(|s| !s.is_empty())
    };
    NodeFacts {
        service_name,
        node_id: text(&["node", "id"]),
        node_cluster: text(&["node", "cluster"]),
        pod_name: text(&["node", "metadata", "NAME"]),
        namespace: text(&["node", "metadata", "NAMESPACE"]),
        workload_name: text(&["node", "metadata", "WORKLOAD_NAME"]),
        canonical_name: text(&[
            "node",
            "metadata",
            "LABELS",
            "service.istio.io/canonical-name",
        ]),
        app_label: text(&["node", "metadata", "LABELS", "app"]),
        canonical_revision: text(&[
            "node",
            "metadata",
            "LABELS",
            "service.istio.io/canonical-revision",
        ]),
    }
}

impl VeilRoot {
    pub fn new() -> VeilRoot {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(host::now_nanos());
        VeilRoot {
            shared: None,
            metrics: None,
            exporter: None,
            seed: h.finish(),
        }
    }
}

impl Default for VeilRoot {
    fn default() -> Self {
        VeilRoot::new()
    }
}

impl Context for VeilRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        let status = host::get_header_text(MapType::HttpCallResponseHeaders, ":status")
            .and_then(|s| s.parse::<u16>().ok());
        if let Some(exporter) = &self.exporter {
            if let Ok(mut e) = exporter.try_borrow_mut() {
                e.on_response(token_id, status);
            }
        }
    }
}

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
        // Timed with the host's clock so operators see what compiling their
        // bundle costs in this proxy's wasm runtime, first use included.
        let started = host::now_nanos();
        let parsed = Settings::parse(&bytes);
        let compile_ms = host::now_nanos().saturating_sub(started) as f64 / 1e6;
        match parsed {
            Ok(settings) => {
                host::log(
                    Level::Info,
                    &format!(
                        "veil: loaded bundle {} revision {} ({} rules{}) in {compile_ms:.1} ms, max_body_bytes {:?}, over_limit {:?}, fail_mode {:?}{}",
                        settings.policy.name(),
                        settings.policy.revision(),
                        settings.policy.rule_count(),
                        if settings.default_bundle { ", embedded default" } else { "" },
                        settings.max_body_bytes,
                        settings.over_limit,
                        settings.fail_mode,
                        settings.shadow.as_ref().map_or(String::new(), |p| format!(
                            ", shadow bundle {} revision {} ({} rules)",
                            p.name(),
                            p.revision(),
                            p.rule_count()
                        )),
                    ),
                );
                let metrics = Rc::clone(
                    self.metrics
                        .get_or_insert_with(|| Rc::new(Metrics::define())),
                );
                metrics.set_bundle(settings.policy.name(), settings.policy.revision());
                let facts = node_facts(settings.service_name.clone());
                let resource = Rc::new(Resource::from_node(&facts));
                let exporter = settings.otlp.clone().map(|otlp| {
                    let period = otlp.flush_interval_ms;
                    host::log(
                        Level::Info,
                        &format!(
                            "veil: exporting events over OTLP/HTTP to cluster {} ({}{}), batch {}, every {} ms, queue {}",
                            otlp.cluster, otlp.authority, otlp.path, otlp.batch_size, period, otlp.max_queue
                        ),
                    );
                    (Exporter::new(otlp, Rc::clone(&resource), metrics.export), period)
                });
                let tick = exporter
                    .as_ref()
                    .map_or(0, |(_, p)| export::tick_period_ms(*p));
                if let Err(e) = host::set_tick_period_ms(tick) {
                    host::log(
                        Level::Error,
                        &format!("veil: cannot start the export timer: {e}"),
                    );
                }
                self.exporter = exporter.map(|(e, _)| Rc::new(RefCell::new(e)));
                let queue = self
                    .exporter
                    .as_ref()
                    .and_then(|e| e.try_borrow().ok().map(|e| e.queue()));
                self.shared = Some(Rc::new(Shared {
                    settings: Rc::new(settings),
                    metrics,
                    resource,
                    export: queue,
                }));
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

    fn on_tick(&mut self) {
        if let Some(exporter) = &self.exporter {
            if let Ok(mut e) = exporter.try_borrow_mut() {
                e.on_tick();
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.as_ref()?;
        #[cfg(feature = "count-hostcalls")]
        {
            use std::sync::atomic::{AtomicU64, Ordering};
            static STREAMS: AtomicU64 = AtomicU64::new(0);
            let n = STREAMS.fetch_add(1, Ordering::Relaxed);
            if n > 0 && n.is_multiple_of(1000) {
                host::log(Level::Warn, &host::tally::report(n));
            }
        }
        Some(Box::new(http::VeilHttp::new(
            Rc::clone(shared),
            context_id,
            self.seed,
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

//! Prometheus metrics. Every labeled handle is created once at start (labels are server names,
//! target kinds and classifier reasons, all from small fixed sets) and kept in plain vectors,
//! so the query path increments an atomic and never looks a label set up. Labels never hold
//! SQL text or user names.

use crate::classifier::Reason;
use crate::router::Target;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rwsplit_replication::{Health, Role, Topology};
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

/// Handles for one server.
#[derive(Debug, Clone)]
pub struct ServerMetrics {
    /// Statements sent, by target kind: [writer, replica, fallback_writer].
    pub statements: [Counter; 3],
    pub backend_errors: Counter,
    pub open_connections: Gauge,
    pub up: Gauge,
    pub readable: Gauge,
    pub writer: Gauge,
    pub lag_seconds: Gauge<f64, AtomicU64>,
}

/// All of rwsplit's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub servers: Vec<ServerMetrics>,
    /// Statements by classifier reason, indexed by `Reason as usize`.
    reasons: Vec<Counter>,
    pub client_connections: Gauge,
    pub client_connections_total: Counter,
    pub client_errors: Counter,
    pub auth_failures: Counter,
    pub read_fallbacks: Counter,
    pub read_retries: Counter,
    pub no_server_errors: Counter,
    pub pool_resets: Counter,
    /// Reads sent to the writer because no replica reached the session's GTID in time.
    pub causal_fallbacks: Counter,
    /// Writes refused because semi-sync was off and routing.require_semisync is set.
    pub semisync_refusals: Counter,
    /// Time from receiving a command to relaying the end of its response.
    pub latency: [Histogram; 3],
    pub config_reloads: Family<Labels, Counter>,
    pub topology_generation: Gauge,
}

fn target_index(t: &Target) -> usize {
    match t {
        Target::Writer(_) => 0,
        Target::Replica(_) => 1,
        Target::FallbackWriter(_) => 2,
    }
}

const TARGETS: [&str; 3] = ["writer", "replica", "fallback_writer"];

impl Metrics {
    pub fn new(server_names: &[String]) -> Self {
        let mut registry = Registry::with_prefix("rwsplit");
        let statements = Family::<Labels, Counter>::default();
        registry.register("statements", "Statements routed, by server and target kind", statements.clone());
        let backend_errors = Family::<Labels, Counter>::default();
        registry.register("backend_errors", "Failures talking to a server (connect, IO, timeout, protocol)", backend_errors.clone());
        let open = Family::<Labels, Gauge>::default();
        registry.register("backend_connections", "Open connections to a server, idle and leased", open.clone());
        let up = Family::<Labels, Gauge>::default();
        registry.register("server_up", "1 when the monitor sees the server healthy", up.clone());
        let readable = Family::<Labels, Gauge>::default();
        registry.register("server_readable", "1 when the server takes reads", readable.clone());
        let writer = Family::<Labels, Gauge>::default();
        registry.register("server_writer", "1 for the server taking writes", writer.clone());
        let lag = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register("replication_lag_seconds", "Replication lag as last measured (-1 when unknown)", lag.clone());
        let servers = server_names
            .iter()
            .map(|name| {
                let l = |extra: Option<(&str, &str)>| {
                    let mut v = vec![("server".to_string(), name.clone())];
                    if let Some((k, val)) = extra {
                        v.push((k.to_string(), val.to_string()));
                    }
                    v
                };
                ServerMetrics {
                    statements: TARGETS.map(|t| statements.get_or_create_owned(&l(Some(("target", t))))),
                    backend_errors: backend_errors.get_or_create_owned(&l(None)),
                    open_connections: open.get_or_create_owned(&l(None)),
                    up: up.get_or_create_owned(&l(None)),
                    readable: readable.get_or_create_owned(&l(None)),
                    writer: writer.get_or_create_owned(&l(None)),
                    lag_seconds: lag.get_or_create_owned(&l(None)),
                }
            })
            .collect();
        let by_reason = Family::<Labels, Counter>::default();
        registry.register("classified", "Statements by the classifier's reason for their route", by_reason.clone());
        let reasons = Reason::ALL.iter().map(|r| by_reason.get_or_create_owned(&vec![("reason".to_string(), r.as_str().to_string())])).collect();

        let client_connections = Gauge::default();
        registry.register("client_connections", "Client sessions open now", client_connections.clone());
        let client_connections_total = Counter::default();
        registry.register("client_connections", "Client sessions accepted", client_connections_total.clone());
        let client_errors = Counter::default();
        registry.register("client_protocol_errors", "Clients closed for malformed packets or timeouts", client_errors.clone());
        let auth_failures = Counter::default();
        registry.register("auth_failures", "Client logins refused", auth_failures.clone());
        let read_fallbacks = Counter::default();
        registry.register("read_fallbacks", "Reads sent to the writer because no replica was usable", read_fallbacks.clone());
        let read_retries = Counter::default();
        registry.register("read_retries", "Reads re-run on another server after a failure before any byte reached the client", read_retries.clone());
        let no_server_errors = Counter::default();
        registry.register("no_server_errors", "Statements refused because no server could take them", no_server_errors.clone());
        let pool_resets = Counter::default();
        registry.register("pool_state_resets", "Pooled connections reset and brought to another session's state", pool_resets.clone());
        let causal_fallbacks = Counter::default();
        registry.register("causal_read_fallbacks", "Reads sent to the writer because no replica reached the session's GTID in time", causal_fallbacks.clone());
        let semisync_refusals = Counter::default();
        registry.register("semisync_write_refusals", "Writes refused while semi-sync was off (routing.require_semisync)", semisync_refusals.clone());
        let latency_family = Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 20)));
        registry.register("statement_duration_seconds", "Time from a command's arrival to the end of its relayed response", latency_family.clone());
        let latency = TARGETS.map(|t| latency_family.get_or_create_owned(&vec![("target".to_string(), t.to_string())]));
        let config_reloads = Family::<Labels, Counter>::default();
        registry.register("config_reloads", "Config reloads by outcome", config_reloads.clone());
        let topology_generation = Gauge::default();
        registry.register("topology_generation", "Generation of the topology snapshot in use", topology_generation.clone());
        Metrics {
            registry,
            servers,
            reasons,
            client_connections,
            client_connections_total,
            client_errors,
            auth_failures,
            read_fallbacks,
            read_retries,
            no_server_errors,
            pool_resets,
            causal_fallbacks,
            semisync_refusals,
            latency,
            config_reloads,
            topology_generation,
        }
    }

    /// Counts one routed statement.
    pub fn routed(&self, target: &Target, reason: Reason) {
        if let Some(s) = self.servers.get(target.server()) {
            s.statements[target_index(target)].inc();
        }
        if let Some(c) = self.reasons.get(reason as usize) {
            c.inc();
        }
        if matches!(target, Target::FallbackWriter(_)) {
            self.read_fallbacks.inc();
        }
    }

    pub fn observe_latency(&self, target: &Target, seconds: f64) {
        self.latency[target_index(target)].observe(seconds);
    }

    pub fn backend_error(&self, server: usize) {
        if let Some(s) = self.servers.get(server) {
            s.backend_errors.inc();
        }
    }

    /// Copies topology state into the gauges (called before each scrape).
    pub fn refresh(&self, topology: &Topology, open: impl Fn(usize) -> u32) {
        self.topology_generation.set(topology.generation as i64);
        for (i, (m, s)) in self.servers.iter().zip(&topology.servers).enumerate() {
            m.up.set(i64::from(s.health == Health::Up));
            m.readable.set(i64::from(s.readable));
            m.writer.set(i64::from(s.role == Role::Writer && topology.writer == Some(i)));
            m.lag_seconds.set(s.lag_ms.map_or(-1.0, |ms| ms as f64 / 1000.0));
            m.open_connections.set(i64::from(open(i)));
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

//! Prometheus metrics. Every labeled handle is created once at start (labels are server names,
//! target kinds and classifier reasons, all from small fixed sets) and kept in plain vectors,
//! so the query path increments an atomic and never looks a label set up. Labels never hold
//! SQL text or user names.

use crate::classifier::Reason;
use crate::router::Target;
use arc_swap::ArcSwap;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use rwsplit_replication::{Health, Role, Topology};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// 1 while the replica acknowledges semi-sync, 0 when it does not, -1 where it does not
    /// apply (the writer, a server without semi-sync, not checked yet).
    pub semisync_acking: Gauge,
    /// Client sessions whose reads stay on this server (`routing.read_balance = "session"`).
    pub reading_sessions: Gauge,
}

/// The per-server metric families, from which each server slot's handles are made.
#[derive(Debug)]
struct ServerFamilies {
    statements: Family<Labels, Counter>,
    backend_errors: Family<Labels, Counter>,
    open: Family<Labels, Gauge>,
    up: Family<Labels, Gauge>,
    readable: Family<Labels, Gauge>,
    writer: Family<Labels, Gauge>,
    lag: Family<Labels, Gauge<f64, AtomicU64>>,
    semisync_acking: Family<Labels, Gauge>,
    reading_sessions: Family<Labels, Gauge>,
}

impl ServerFamilies {
    fn register(registry: &mut Registry) -> Self {
        let f = ServerFamilies {
            statements: Family::default(),
            backend_errors: Family::default(),
            open: Family::default(),
            up: Family::default(),
            readable: Family::default(),
            writer: Family::default(),
            lag: Family::default(),
            semisync_acking: Family::default(),
            reading_sessions: Family::default(),
        };
        registry.register("statements", "Statements routed, by server and target kind", f.statements.clone());
        registry.register(
            "backend_errors",
            "Failures talking to a server (connect, IO, timeout, protocol)",
            f.backend_errors.clone(),
        );
        registry.register("backend_connections", "Open connections to a server, idle and leased", f.open.clone());
        registry.register("server_up", "1 when the monitor sees the server healthy", f.up.clone());
        registry.register("server_readable", "1 when the server is a replica in the read pool", f.readable.clone());
        registry.register("server_writer", "1 for the server taking writes", f.writer.clone());
        registry.register(
            "replication_lag_seconds",
            "Replication lag as last measured (-1 when unknown)",
            f.lag.clone(),
        );
        registry.register(
            "server_semisync_acking",
            "1 while the replica acknowledges semi-sync, 0 when not, -1 where it does not apply",
            f.semisync_acking.clone(),
        );
        registry.register(
            "server_reading_sessions",
            "Client sessions whose reads stay on the server (routing.read_balance = session)",
            f.reading_sessions.clone(),
        );
        f
    }

    /// One server's handles (a name seen before gets the same series again).
    fn handles(&self, name: &str) -> ServerMetrics {
        let l = |extra: Option<(&str, &str)>| {
            let mut v = vec![("server".to_string(), name.to_string())];
            if let Some((k, val)) = extra {
                v.push((k.to_string(), val.to_string()));
            }
            v
        };
        ServerMetrics {
            statements: TARGETS.map(|t| self.statements.get_or_create_owned(&l(Some(("target", t))))),
            backend_errors: self.backend_errors.get_or_create_owned(&l(None)),
            open_connections: self.open.get_or_create_owned(&l(None)),
            up: self.up.get_or_create_owned(&l(None)),
            readable: self.readable.get_or_create_owned(&l(None)),
            writer: self.writer.get_or_create_owned(&l(None)),
            lag_seconds: self.lag.get_or_create_owned(&l(None)),
            semisync_acking: self.semisync_acking.get_or_create_owned(&l(None)),
            reading_sessions: self.reading_sessions.get_or_create_owned(&l(None)),
        }
    }
}

/// All of rwsplit's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    server_families: ServerFamilies,
    /// Handles per server slot; a reload that adds servers swaps in a longer list.
    servers: ArcSwap<Vec<ServerMetrics>>,
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
    pub latency: [LatencyHistogram; 3],
    pub config_reloads: Family<Labels, Counter>,
    /// Switchovers, failovers and rejoins, by kind and outcome (done, refused, failed).
    pub promotions: Family<Labels, Counter>,
    /// Steps of switchovers and failovers run (one per logged step line).
    pub promotion_steps: Counter,
    pub topology_generation: Gauge,
    /// The writer's semi-sync: 1 while commits wait for an acknowledgement, 0 when off or
    /// fallen back to asynchronous, -1 unknown.
    semisync_active: Gauge,
    /// Semi-sync replicas connected to the writer (-1 unknown).
    semisync_clients: Gauge,
    vrrp_state: Family<Labels, Gauge>,
    vrrp_priority: Family<Labels, Gauge>,
    vrrp_transitions: Family<Labels, Counter>,
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
        let families = ServerFamilies::register(&mut registry);
        let servers = ArcSwap::from_pointee(server_names.iter().map(|name| families.handles(name)).collect());
        let by_reason = Family::<Labels, Counter>::default();
        registry.register("classified", "Statements by the classifier's reason for their route", by_reason.clone());
        let reasons = Reason::ALL
            .iter()
            .map(|r| by_reason.get_or_create_owned(&vec![("reason".to_string(), r.as_str().to_string())]))
            .collect();

        let client_connections = Gauge::default();
        registry.register("client_connections", "Client sessions open now", client_connections.clone());
        let client_connections_total = Counter::default();
        registry.register(
            "client_connections_accepted",
            "Client connections accepted",
            client_connections_total.clone(),
        );
        let client_errors = Counter::default();
        registry.register(
            "client_protocol_errors",
            "Clients closed for malformed packets or timeouts",
            client_errors.clone(),
        );
        let auth_failures = Counter::default();
        registry.register("auth_failures", "Client logins refused", auth_failures.clone());
        let read_fallbacks = Counter::default();
        registry.register(
            "read_fallbacks",
            "Reads sent to the writer because no replica was usable",
            read_fallbacks.clone(),
        );
        let read_retries = Counter::default();
        registry.register(
            "read_retries",
            "Reads re-run on another server after a failure before any byte reached the client",
            read_retries.clone(),
        );
        let no_server_errors = Counter::default();
        registry.register(
            "no_server_errors",
            "Statements refused because no server could take them",
            no_server_errors.clone(),
        );
        let pool_resets = Counter::default();
        registry.register(
            "pool_state_resets",
            "Pooled connections reset and brought to another session's state",
            pool_resets.clone(),
        );
        let causal_fallbacks = Counter::default();
        registry.register(
            "causal_read_fallbacks",
            "Reads sent to the writer because no replica reached the session's GTID in time",
            causal_fallbacks.clone(),
        );
        let semisync_refusals = Counter::default();
        registry.register(
            "semisync_write_refusals",
            "Writes refused while semi-sync was off (routing.require_semisync)",
            semisync_refusals.clone(),
        );
        let latency_family = Family::<Labels, LatencyHistogram>::new_with_constructor(|| {
            LatencyHistogram::new(exponential_buckets(0.0001, 2.0, 20))
        });
        registry.register(
            "statement_duration_seconds",
            "Time from a command's arrival to the end of its relayed response",
            latency_family.clone(),
        );
        let latency = TARGETS.map(|t| latency_family.get_or_create_owned(&vec![("target".to_string(), t.to_string())]));
        let config_reloads = Family::<Labels, Counter>::default();
        registry.register("config_reloads", "Config reloads by outcome", config_reloads.clone());
        let promotions = Family::<Labels, Counter>::default();
        registry.register(
            "promotions",
            "Switchovers, failovers and rejoins of a former writer, by kind and outcome",
            promotions.clone(),
        );
        let promotion_steps = Counter::default();
        registry.register("promotion_steps", "Steps of switchovers and failovers run", promotion_steps.clone());
        let topology_generation = Gauge::default();
        registry.register(
            "topology_generation",
            "Generation of the topology snapshot in use",
            topology_generation.clone(),
        );
        let semisync_active = Gauge::default();
        registry.register(
            "semisync_active",
            "1 while the writer's commits wait for a semi-sync acknowledgement, 0 when not, -1 unknown",
            semisync_active.clone(),
        );
        let semisync_clients = Gauge::default();
        registry.register(
            "semisync_clients",
            "Semi-sync replicas connected to the writer (-1 unknown)",
            semisync_clients.clone(),
        );
        let vrrp_state = Family::<Labels, Gauge>::default();
        registry.register("vrrp_state", "VRRP instance state: 0 init, 1 backup, 2 master, 3 fault", vrrp_state.clone());
        let vrrp_priority = Family::<Labels, Gauge>::default();
        registry.register(
            "vrrp_priority",
            "Priority the VRRP instance advertises now (after tracking)",
            vrrp_priority.clone(),
        );
        let vrrp_transitions = Family::<Labels, Counter>::default();
        registry.register("vrrp_transitions", "VRRP state changes", vrrp_transitions.clone());
        Metrics {
            registry,
            server_families: families,
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
            promotions,
            promotion_steps,
            topology_generation,
            semisync_active,
            semisync_clients,
            vrrp_state,
            vrrp_priority,
            vrrp_transitions,
        }
    }

    /// Handles for the server slots of a reload (`names` in slot order; the list only grows).
    pub fn set_servers(&self, names: &[String]) {
        let current = self.servers.load();
        if names.len() <= current.len() {
            return;
        }
        let mut next = current.as_ref().clone();
        next.extend(names[current.len()..].iter().map(|n| self.server_families.handles(n)));
        self.servers.store(std::sync::Arc::new(next));
    }

    /// Counts one routed statement.
    pub fn routed(&self, target: &Target, reason: Reason) {
        if let Some(s) = self.servers.load().get(target.server()) {
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
        if let Some(s) = self.servers.load().get(server) {
            s.backend_errors.inc();
        }
    }

    /// Copies topology state into the gauges (called before each scrape): `open` and
    /// `reading` give a server slot's open backend connections and reading sessions.
    pub fn refresh(&self, topology: &Topology, open: impl Fn(usize) -> u32, reading: impl Fn(usize) -> u32) {
        self.topology_generation.set(topology.generation as i64);
        // A name used by two slots (a server re-addressed by a reload) shows the newer slot:
        // it comes later and is written last.
        for (i, (m, s)) in self.servers.load().iter().zip(&topology.servers).enumerate() {
            m.up.set(i64::from(s.health == Health::Up));
            m.readable.set(i64::from(s.readable && topology.writer != Some(i)));
            m.writer.set(i64::from(s.role == Role::Writer && topology.writer == Some(i)));
            m.lag_seconds.set(s.lag_ms.map_or(-1.0, |ms| ms as f64 / 1000.0));
            m.open_connections.set(i64::from(open(i)));
            m.reading_sessions.set(i64::from(reading(i)));
            m.semisync_acking.set(match s.semisync_acking {
                Some(acking) if topology.writer != Some(i) => i64::from(acking),
                _ => -1,
            });
        }
        let semisync = topology.semisync.as_ref();
        self.semisync_active.set(semisync.map_or(-1, |s| i64::from(s.enabled && s.active)));
        self.semisync_clients.set(semisync.and_then(|s| s.clients).map_or(-1, |c| c.min(i64::MAX as u64) as i64));
    }

    /// Copies the VRRP instances' state into their metrics (called before each scrape; the
    /// label lookups happen here, never on the query path).
    pub fn refresh_vrrp(&self, instances: &[(String, std::sync::Arc<rwsplit_ha::runner::RunnerStats>)]) {
        use rwsplit_ha::fsm::State;
        for (name, stats) in instances {
            let l = vec![("vrrp_instance".to_string(), name.clone())];
            let state = match stats.state() {
                State::Initialize => 0,
                State::Backup => 1,
                State::Master => 2,
                State::Fault => 3,
            };
            self.vrrp_state.get_or_create(&l).set(state);
            self.vrrp_priority.get_or_create(&l).set(i64::from(stats.priority()));
            let c = self.vrrp_transitions.get_or_create(&l);
            c.inc_by(stats.transitions().saturating_sub(c.get()));
        }
    }

    /// The OpenMetrics text format (what Prometheus asks for).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format 0.0.4, for clients that do not ask for OpenMetrics
    /// (curl, promtool, older scrapers).
    pub fn encode_prometheus_text(&self) -> String {
        openmetrics_to_prometheus_text(&self.encode())
    }
}

/// Converts OpenMetrics text to Prometheus text 0.0.4: counter families are named after their
/// `_total` samples in HELP/TYPE, and the `# EOF` / `# UNIT` lines go.
pub fn openmetrics_to_prometheus_text(om: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        om.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].iter().find_map(|p| line.strip_prefix(p).map(|rest| (*p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}\n"));
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counters_by_their_samples() {
        let om = "# HELP x_statements Statements.\n# TYPE x_statements counter\nx_statements_total{a=\"b\"} 1\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus_text(om),
            "# HELP x_statements_total Statements.\n# TYPE x_statements_total counter\nx_statements_total{a=\"b\"} 1\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n"
        );
    }

    #[test]
    fn every_metric_family_is_registered_once() {
        let m = Metrics::new(&["master".to_string(), "replica1".to_string()]);
        let text = m.encode();
        let mut seen = std::collections::HashSet::new();
        for name in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap_or("")) {
            assert!(seen.insert(name.to_string()), "{name} registered twice");
        }
        assert!(text.contains("rwsplit_statements_total{server=\"replica1\",target=\"replica\"} 0"));
        assert!(text.contains("rwsplit_classified_total{reason=\"unparsed\"} 0"));
    }

    #[test]
    fn semisync_gauges_follow_the_topology() {
        let names = ["master", "replica1", "replica2"];
        let m = Metrics::new(&names.map(String::from));
        let mut t = rwsplit_replication::Topology::unknown(names.map(|n| (n.to_string(), format!("{n}:3306"), 1)));
        t.writer = Some(0);
        // The writer's own flag never counts; replica2 stopped acknowledging.
        t.servers[0].semisync_acking = Some(true);
        t.servers[1].semisync_acking = Some(true);
        t.servers[2].semisync_acking = Some(false);
        t.semisync = Some(rwsplit_replication::SemiSyncMaster {
            enabled: true,
            active: true,
            clients: Some(1),
            ..Default::default()
        });
        m.refresh(&t, |_| 0, |_| 0);
        let text = m.encode();
        for line in [
            "rwsplit_server_semisync_acking{server=\"master\"} -1",
            "rwsplit_server_semisync_acking{server=\"replica1\"} 1",
            "rwsplit_server_semisync_acking{server=\"replica2\"} 0",
            "rwsplit_semisync_active 1",
            "rwsplit_semisync_clients 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        // Fallen back to asynchronous: not active, whatever is configured.
        t.semisync = Some(rwsplit_replication::SemiSyncMaster { enabled: true, active: false, ..Default::default() });
        m.refresh(&t, |_| 0, |_| 0);
        let text = m.encode();
        assert!(text.contains("rwsplit_semisync_active 0"));
        assert!(text.contains("rwsplit_semisync_clients -1"));
    }
}

/// A histogram every session observes into without a lock: one atomic counter per bucket and
/// an atomic sum (prometheus-client's histogram takes a mutex on every observation, which all
/// sessions contend for on every statement). Clones share the counters.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Arc<HistogramCells>);

#[derive(Debug)]
struct HistogramCells {
    bounds: Vec<f64>,
    /// Per bucket (not cumulative), the last one for +Inf.
    counts: Vec<AtomicU64>,
    /// f64 bits of the sum of observations.
    sum: AtomicU64,
}

impl LatencyHistogram {
    pub fn new(bounds: impl Iterator<Item = f64>) -> Self {
        let mut bounds: Vec<f64> = bounds.collect();
        bounds.push(f64::INFINITY);
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        LatencyHistogram(Arc::new(HistogramCells { bounds, counts, sum: AtomicU64::new(0f64.to_bits()) }))
    }

    pub fn observe(&self, v: f64) {
        let cells = &self.0;
        let i = cells.bounds.partition_point(|&b| b < v).min(cells.counts.len().saturating_sub(1));
        if let Some(c) = cells.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        // A compare-and-swap loop on the sum's bits: contention is brief and lock-free.
        let mut cur = cells.sum.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match cells.sum.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(seen) => cur = seen,
            }
        }
    }

    /// (sum, count, per-bucket counts with their upper bounds).
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let cells = &self.0;
        let buckets: Vec<(f64, u64)> =
            cells.bounds.iter().zip(&cells.counts).map(|(b, c)| (*b, c.load(Ordering::Relaxed))).collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        (f64::from_bits(cells.sum.load(Ordering::Relaxed)), count, buckets)
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod latency_tests {
    use super::*;

    #[test]
    fn observations_land_in_their_buckets() {
        let h = LatencyHistogram::new([0.001, 0.01, 0.1].into_iter());
        for v in [0.0005, 0.001, 0.005, 0.05, 5.0] {
            h.observe(v);
        }
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 5);
        assert!((sum - 5.0565).abs() < 1e-9);
        let counts: Vec<u64> = buckets.iter().map(|(_, n)| *n).collect();
        // le=0.001 takes 0.0005 and 0.001 (bounds are inclusive), then one each, +Inf one.
        assert_eq!(counts, vec![2, 1, 1, 1]);
        let clone = h.clone();
        clone.observe(0.2);
        assert_eq!(h.snapshot().1, 6, "clones share the counters");
    }
}

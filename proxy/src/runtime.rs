//! What every session shares: the current config (swapped whole on reload), the user list,
//! the topology handle, the pools and the metrics. Built once at start; [`crate::reload`]
//! changes it in place.

use crate::backend::{Pool, PoolSettings};
use crate::metrics::Metrics;
use crate::protocol::handshake::Credential;
use crate::router::Policy;
use arc_swap::ArcSwap;
use rwsplit_config::Config;
use rwsplit_replication::{MonitorUpdate, ServerSlot, TopologyHandle, MAX_SERVER_SLOTS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The proxy's shared state.
#[derive(Debug)]
pub struct Shared {
    config: ArcSwap<Config>,
    users: ArcSwap<HashMap<String, Credential>>,
    pub topology: TopologyHandle,
    pub pool: Arc<Pool>,
    pub metrics: Metrics,
    /// Version string announced to clients.
    pub server_version: String,
    next_session: AtomicU32,
    /// Newest GTID written through this process (`causal_global`).
    pub latest_gtid: crate::consistency::LatestGtid,
    /// Sessions whose reads stay on each server (by slot, room for every slot a reload can
    /// add; `routing.read_balance = "session"`).
    pub read_sessions: Vec<AtomicU32>,
    /// The server slots in force ([`rwsplit_replication::slots`]); changed only by a reload.
    slots: std::sync::Mutex<Vec<ServerSlot>>,
    /// Which config is in force.
    config_version: ArcSwap<crate::reload::ConfigVersion>,
    /// Reloads for the monitor (the latest wins).
    monitor_updates: tokio::sync::watch::Sender<Option<Arc<MonitorUpdate>>>,
    /// Where `POST /reload` asks for a reload; set when the reloader starts.
    pub reload_requests: std::sync::OnceLock<crate::reload::ReloadRequests>,
    /// Schema names the backend account can use (logins naming one need no round trip).
    pub schemas: Arc<crate::schemas::Schemas>,
    /// The live client sessions by connection id (KILL, SHOW PROCESSLIST).
    pub sessions: Arc<crate::sessions::Sessions>,
    /// What each server is known to have applied (causal reads skip the wait there).
    pub applied_gtids: crate::consistency::AppliedGtids,
    /// Reads are currently falling back to the writer (for logging the change once).
    reads_on_writer: std::sync::atomic::AtomicBool,
    /// TLS towards clients, when `proxy.tls_cert` and `proxy.tls_key` are set.
    pub tls: Option<crate::tls::ClientTls>,
    /// The running VRRP instances' stats (name, stats); replaced when they start or a reload
    /// changes them.
    pub vrrp: ArcSwap<Vec<(String, Arc<rwsplit_ha::runner::RunnerStats>)>>,
    /// Statements for the writer pass here; a switchover holds them.
    pub writes: crate::promotion::WriteGate,
    /// Switchovers and failovers of this process.
    pub promotions: crate::promotion::Promotions,
}

/// Users and their credentials from the config.
pub fn credentials(config: &Config) -> HashMap<String, Credential> {
    config
        .users
        .iter()
        .filter_map(|u| {
            let cred = match (&u.password, &u.password_hash) {
                (Some(p), _) => Credential::from_password(p.expose()),
                (None, Some(h)) => Credential::from_hash(h.expose())?,
                (None, None) => return None,
            };
            Some((u.name.clone(), cred))
        })
        .collect()
}

/// The first session id. Far above the thread ids servers hand out (from 1 after each start),
/// so that an id a server reports (IS_USED_LOCK(), its logs) is never mistaken for a session's
/// `CONNECTION_ID()` through rwsplit; still within a signed 32-bit integer, which some drivers
/// store it in.
pub const FIRST_SESSION_ID: u32 = 1_000_000_001;

impl Shared {
    /// `file`: the config file's bytes (for [`crate::reload::ConfigVersion`]).
    pub fn new(
        config: Config,
        file: &[u8],
        topology: TopologyHandle,
        server_version: String,
        tls: Option<crate::tls::ClientTls>,
        backend_tls: Vec<Option<crate::backend::tls::ServerTls>>,
    ) -> Arc<Self> {
        let names: Vec<String> = config.servers.iter().map(|s| s.name.clone()).collect();
        let pool = Arc::new(Pool::new(&config.servers, PoolSettings::from(&config.backend), backend_tls));
        let read_sessions = (0..MAX_SERVER_SLOTS).map(|_| AtomicU32::new(0)).collect();
        Arc::new(Shared {
            slots: std::sync::Mutex::new(ServerSlot::initial(&config.servers)),
            config_version: ArcSwap::from_pointee(crate::reload::ConfigVersion::new(1, file)),
            monitor_updates: tokio::sync::watch::Sender::new(None),
            reload_requests: std::sync::OnceLock::new(),
            users: ArcSwap::from_pointee(credentials(&config)),
            config: ArcSwap::from_pointee(config),
            topology,
            pool,
            metrics: Metrics::new(&names),
            server_version,
            next_session: AtomicU32::new(FIRST_SESSION_ID),
            latest_gtid: Default::default(),
            applied_gtids: Default::default(),
            sessions: Default::default(),
            schemas: Default::default(),
            read_sessions,
            reads_on_writer: Default::default(),
            vrrp: Default::default(),
            tls,
            writes: Default::default(),
            promotions: Default::default(),
        })
    }

    /// The config in force, borrowed (no reference count touched: read on every statement).
    /// Keep it briefly; a reload swaps in a new one.
    pub fn config(&self) -> arc_swap::Guard<Arc<Config>> {
        self.config.load()
    }

    /// Swaps in a reloaded config with its server slots (see [`crate::reload::apply`], which
    /// has already handed the servers to the pool and the monitor). Users, routing policy and
    /// timeouts take effect for the next statement.
    pub(crate) fn reload(&self, config: Config, slots: Vec<ServerSlot>, version: crate::reload::ConfigVersion) {
        self.users.store(Arc::new(credentials(&config)));
        self.config.store(Arc::new(config));
        *self.slots.lock().unwrap_or_else(|p| p.into_inner()) = slots;
        self.config_version.store(Arc::new(version));
    }

    /// The server slots in force.
    pub fn slots(&self) -> Vec<ServerSlot> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Which config is in force.
    pub fn config_version(&self) -> Arc<crate::reload::ConfigVersion> {
        self.config_version.load_full()
    }

    /// Hands a reload to the monitor (applied between its rounds).
    pub(crate) fn send_monitor_update(&self, update: MonitorUpdate) {
        self.monitor_updates.send_replace(Some(Arc::new(update)));
    }

    /// What the monitor takes its reloads from ([`rwsplit_replication::Monitor::with_updates`]).
    pub fn monitor_updates(&self) -> tokio::sync::watch::Receiver<Option<Arc<MonitorUpdate>>> {
        self.monitor_updates.subscribe()
    }

    /// The read-your-writes policy for `user`'s sessions.
    pub fn consistency(&self, user: &str) -> rwsplit_config::Consistency {
        let c = self.config.load();
        c.users.iter().find(|u| u.name == user).and_then(|u| u.consistency).unwrap_or(c.routing.consistency)
    }

    pub fn credential(&self, user: &str) -> Option<Credential> {
        self.users.load().get(user).cloned()
    }

    pub fn next_session_id(&self) -> u32 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Logs, once per change, when reads start or stop falling back to the writer.
    pub fn note_read_target(&self, target: &crate::router::Target) {
        use crate::router::Target;
        let fallback = match target {
            Target::FallbackWriter(_) => true,
            Target::Replica(_) => false,
            Target::Writer(_) => return,
        };
        if self.reads_on_writer.load(Ordering::Relaxed) != fallback
            && self.reads_on_writer.swap(fallback, Ordering::Relaxed) != fallback
        {
            if fallback {
                tracing::warn!("no replica is usable: reads go to the writer (routing.fallback_to_master)");
            } else {
                tracing::info!("replicas usable again: reads go back to them");
            }
        }
    }

    pub fn policy(&self) -> Policy {
        let c = self.config.load();
        Policy {
            fallback_to_master: c.routing.fallback_to_master,
            master_accepts_reads: c.routing.master_accepts_reads,
            prefer_semisync: c.routing.prefer_semisync_replicas,
            read_affinity: c.routing.read_balance == rwsplit_config::ReadBalance::Session,
        }
    }

    /// Client sessions whose reads stay on server slot `i` (read affinity).
    pub fn reading_sessions(&self, i: usize) -> u32 {
        self.read_sessions.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Moves a session's read affinity from `from` to `to` (the per-server counts that spread
    /// new sessions).
    pub fn move_read_session(&self, from: Option<usize>, to: Option<usize>) {
        if from == to {
            return;
        }
        if let Some(c) = from.and_then(|i| self.read_sessions.get(i)) {
            c.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(c) = to.and_then(|i| self.read_sessions.get(i)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Timeouts a session uses, read from the config once per command.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub handshake: Duration,
    pub client_idle: Duration,
    pub backend_response: Duration,
    /// Writing to a client that stopped reading.
    pub client_write: Duration,
    /// How long an idle session keeps its previous statement's connection.
    pub keep_previous: Duration,
}

impl Timeouts {
    pub fn from_config(c: &Config) -> Self {
        Timeouts {
            handshake: Duration::from_millis(c.proxy.handshake_timeout_ms),
            client_idle: Duration::from_millis(c.proxy.client_idle_timeout_ms),
            backend_response: Duration::from_millis(c.backend.response_timeout_ms),
            client_write: Duration::from_millis(c.backend.response_timeout_ms.min(600_000)),
            keep_previous: Duration::from_millis(c.backend.keep_previous_ms),
        }
    }
}

/// The loop of a periodic task: [`Ticker::next`] waits for the next tick (a missed tick is
/// delayed, not bunched) and says false once `stop` turns true.
#[derive(Debug)]
pub struct Ticker {
    tick: tokio::time::Interval,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Ticker {
    pub fn new(every: Duration, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticker { tick, stop }
    }

    /// Waits for the next tick; false when the task must stop.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.tick.tick() => !*self.stop.borrow(),
            _ = self.stop.changed() => false,
        }
    }
}

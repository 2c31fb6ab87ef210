//! The topology snapshot: what the router, the status page and the metrics read. Built only by
//! the monitor, replaced whole on every change, never mutated in place.

use crate::status::{ReplicaStatus, SemiSyncMaster};
use arc_swap::ArcSwap;
use serde::Serialize;
use std::sync::Arc;

/// Is the server answering checks (after rise/fall smoothing)?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not checked yet since start.
    Unknown,
    Up,
    Down,
    /// Taken out of the config by a reload: never checked, never routed to. Its slot (index)
    /// stays, so nothing that still holds the index is confused; the same server added back
    /// takes it again.
    Removed,
}

/// The part a server plays, as learned from its own state (`read_only`, replica status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Unknown,
    /// `read_only=OFF`: takes writes.
    Writer,
    /// `read_only=ON`.
    Replica,
}

/// One server's state in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerState {
    /// Config name (`servers[].name`).
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// Read weight from the config.
    pub weight: u32,
    /// `servers.drain`: checked as usual but given no reads (no new sessions' reads, and
    /// sessions reading there move at their next read). Writes are not affected.
    pub drained: bool,
    pub health: Health,
    pub role: Role,
    /// True when this server may serve reads now (up, replicating, under the lag limit).
    pub readable: bool,
    /// Replication lag in milliseconds, when known.
    pub lag_ms: Option<u64>,
    /// Why the server is not readable or not healthy (empty when all is well).
    pub reason: String,
    /// Server version string, once seen.
    pub version: Option<String>,
    /// `@@server_id`, once seen.
    pub server_id: Option<u32>,
    /// `@@read_only` at the last good check.
    pub read_only: Option<bool>,
    /// Replica status at the last good check (`None` on a server that replicates from nobody).
    pub replication: Option<ReplicaStatus>,
    /// The server's GTID position at the last good check: MariaDB `gtid_current_pos`, MySQL
    /// `gtid_executed`. For display; causal reads need fresher data than a monitor interval.
    pub gtid_position: Option<String>,
    /// Is this replica acknowledging semi-sync transactions (`Rpl_semi_sync_slave_status`)?
    /// `None` on the writer and where the server has no semi-sync support.
    pub semisync_acking: Option<bool>,
    /// GTIDs this replica has and the writer does not (errant transactions), when found.
    pub errant: Option<String>,
    /// The last failed check's error, while it is the latest outcome (cleared by a good check).
    /// A server can be `Up` with an error here: `fall` has not been reached yet.
    pub last_error: Option<String>,
    /// Failed checks in a row (0 after a good one).
    pub failed_checks: u32,
    /// When the last check of this server ended (Unix time, ms).
    pub checked_at_ms: Option<u64>,
}

impl ServerState {
    /// A server before its first check.
    pub fn unknown(name: String, address: String, weight: u32) -> ServerState {
        ServerState {
            name,
            address,
            weight,
            drained: false,
            health: Health::Unknown,
            role: Role::Unknown,
            readable: false,
            lag_ms: None,
            reason: "not checked yet".into(),
            version: None,
            server_id: None,
            read_only: None,
            replication: None,
            gtid_position: None,
            semisync_acking: None,
            errant: None,
            last_error: None,
            failed_checks: 0,
            checked_at_ms: None,
        }
    }
}

/// An immutable snapshot of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topology {
    /// Increases by one whenever something the router or an operator acts on changes: a
    /// server's health, role, readability or its reason, `read_only`, server_id, version, semi-sync
    /// acknowledging, errant transactions; the writer, split brain, alerts, the writer's
    /// semi-sync on/off. Measurements (lag, GTID positions, semi-sync counters, check times) are
    /// refreshed in every round's snapshot without a new generation, so consumers can key
    /// their own work (logs, pool changes) on the generation.
    pub generation: u64,
    /// One entry per server slot (see [`crate::slots`]): in config order at start, servers a
    /// reload adds are appended and those it removes stay as [`Health::Removed`]. The index is
    /// the server's id everywhere in rwsplit.
    pub servers: Vec<ServerState>,
    /// Index into `servers` of the server taking writes, if one is known.
    pub writer: Option<usize>,
    /// More than one server is writable (`read_only=OFF`). The monitor keeps the last known
    /// writer (or none, if it was not one of them) and refuses to move until it is resolved.
    pub split_brain: bool,
    /// Conditions an operator must act on (split brain, errant transactions, semi-sync fallen
    /// back to asynchronous), one sentence each, stable while the condition lasts.
    pub alerts: Vec<String>,
    /// The writer's semi-sync (source side) state, when the writer has semi-sync support.
    pub semisync: Option<SemiSyncMaster>,
    /// When the round of checks that produced this snapshot ended (Unix time, ms).
    pub checked_at_ms: Option<u64>,
}

impl Topology {
    /// The snapshot before the first check: every server unknown, no writer.
    pub fn unknown(servers: impl IntoIterator<Item = (String, String, u32)>) -> Self {
        Topology {
            generation: 0,
            servers: servers
                .into_iter()
                .map(|(name, address, weight)| ServerState::unknown(name, address, weight))
                .collect(),
            writer: None,
            split_brain: false,
            alerts: Vec::new(),
            semisync: None,
            checked_at_ms: None,
        }
    }

    /// True when `self` and `other` agree on everything that bumps [`Topology::generation`]
    /// (they may differ in measurements and in the generation itself).
    pub fn same_state(&self, other: &Topology) -> bool {
        fn key(s: &ServerState) -> impl PartialEq + '_ {
            (
                (&s.name, &s.address, s.weight, s.drained, s.health, s.role, s.readable, &s.reason),
                (&s.version, s.server_id, s.read_only, s.semisync_acking, &s.errant),
            )
        }
        self.writer == other.writer
            && self.split_brain == other.split_brain
            && self.alerts == other.alerts
            && self.semisync.as_ref().map(|s| (s.enabled, s.active))
                == other.semisync.as_ref().map(|s| (s.enabled, s.active))
            && self.servers.len() == other.servers.len()
            && self.servers.iter().zip(&other.servers).all(|(a, b)| key(a) == key(b))
    }

    /// The writer's index and state.
    pub fn writer(&self) -> Option<(usize, &ServerState)> {
        let i = self.writer?;
        self.servers.get(i).map(|s| (i, s))
    }

    /// Indexes of the servers that may take reads now (the writer is never in this list; the
    /// router decides whether it also reads).
    pub fn readable_replicas(&self) -> impl Iterator<Item = (usize, &ServerState)> {
        self.servers.iter().enumerate().filter(move |(i, s)| s.readable && Some(*i) != self.writer)
    }
}

/// Shared, lock-free access to the current [`Topology`].
#[derive(Debug, Clone)]
pub struct TopologyHandle(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    current: ArcSwap<Topology>,
    /// The generation of every snapshot published, for those who wait for a change (a write
    /// waiting for a writer).
    published: tokio::sync::watch::Sender<u64>,
    /// Asks the monitor for a round of checks now (after a promotion) instead of at its next
    /// interval.
    recheck: tokio::sync::Notify,
}

impl TopologyHandle {
    pub fn new(initial: Topology) -> Self {
        let (published, _) = tokio::sync::watch::channel(initial.generation);
        TopologyHandle(Arc::new(Shared {
            current: ArcSwap::from_pointee(initial),
            published,
            recheck: tokio::sync::Notify::new(),
        }))
    }

    /// The current snapshot, borrowed: no reference count is touched (a hot path reads it for
    /// every statement). Keep it briefly; [`TopologyHandle::snapshot`] owns one.
    pub fn load(&self) -> arc_swap::Guard<Arc<Topology>> {
        self.0.current.load()
    }

    /// The current snapshot, owned (one atomic reference count).
    pub fn snapshot(&self) -> Arc<Topology> {
        self.0.current.load_full()
    }

    /// Publishes a new snapshot (monitor only).
    pub fn publish(&self, next: Topology) {
        let generation = next.generation;
        self.0.current.store(Arc::new(next));
        self.0.published.send_replace(generation);
    }

    /// A receiver that sees every snapshot published after this call (`changed().await`).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.published.subscribe()
    }

    /// Asks the monitor to check the servers now.
    pub fn request_check(&self) {
        self.0.recheck.notify_one();
    }

    /// Resolves when [`TopologyHandle::request_check`] was called (monitor only).
    pub async fn check_requested(&self) {
        self.0.recheck.notified().await
    }
}

//! The topology snapshot: what the router, the status page and the metrics read. Built only by
//! the monitor, replaced whole on every change, never mutated in place.

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
}

/// An immutable snapshot of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topology {
    /// Increases by one with every published change.
    pub generation: u64,
    /// In config order; the index is the server's id everywhere in rwsplit.
    pub servers: Vec<ServerState>,
    /// Index into `servers` of the server taking writes, if one is known.
    pub writer: Option<usize>,
}

impl Topology {
    /// The snapshot before the first check: every server unknown, no writer.
    pub fn unknown(servers: impl IntoIterator<Item = (String, String, u32)>) -> Self {
        Topology {
            generation: 0,
            servers: servers
                .into_iter()
                .map(|(name, address, weight)| ServerState {
                    name,
                    address,
                    weight,
                    health: Health::Unknown,
                    role: Role::Unknown,
                    readable: false,
                    lag_ms: None,
                    reason: "not checked yet".into(),
                    version: None,
                })
                .collect(),
            writer: None,
        }
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
pub struct TopologyHandle(Arc<ArcSwap<Topology>>);

impl TopologyHandle {
    pub fn new(initial: Topology) -> Self {
        TopologyHandle(Arc::new(ArcSwap::from_pointee(initial)))
    }

    /// The current snapshot (cheap: one atomic load and a reference count).
    pub fn load(&self) -> Arc<Topology> {
        self.0.load_full()
    }

    /// Publishes a new snapshot (monitor only).
    pub fn publish(&self, next: Topology) {
        self.0.store(Arc::new(next));
    }
}

//! rwsplit's view of the replicated cluster. The [`Monitor`] checks every server on an interval
//! and publishes an immutable [`Topology`] snapshot through [`TopologyHandle`] (an `ArcSwap`),
//! so the query path reads the current state without a lock and never waits for a check.
//!
//! Layers: [`status`] parses what servers answer (pure), [`tracker`] turns check results into
//! the next topology (pure, table-tested), `probe` and `monitor` do the IO. [`election`] picks
//! the server a switchover or failover promotes (pure), [`promotion`] runs the steps (IO).
//! [`slots`]: which index each server has across reloads (pure).
//! [`tls`]: which servers those connections reach over TLS, and with which files.

pub mod election;
mod error;
mod monitor;
mod probe;
pub mod promotion;
pub mod slots;
pub mod status;
pub mod tls;
mod topology;
pub mod tracker;

pub use error::Error;
pub use monitor::{Monitor, MonitorUpdate};
pub use slots::{ServerSlot, SlotChanges, SlotRefusal, MAX_SERVER_SLOTS};
pub use status::{ReplicaStatus, SemiSyncMaster};
pub use tls::ServerTls;
pub use topology::{Health, Role, ServerState, Topology, TopologyHandle};

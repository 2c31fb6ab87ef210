//! rwsplit's view of the replicated cluster. The monitor checks every server on an interval and
//! publishes an immutable [`Topology`] snapshot through [`TopologyHandle`] (an `ArcSwap`), so the
//! query path reads the current state without a lock and never waits for a check.

mod error;
pub mod status;
mod topology;

pub use error::Error;
pub use topology::{Health, Role, ServerState, Topology, TopologyHandle};

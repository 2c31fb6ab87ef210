//! `[routing]`: the read/write splitting policy.

use super::check_range;
use crate::Problem;
use serde::Deserialize;

/// What a read must have seen before it may run on a replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Reads go to any usable replica (replication lag may show older data).
    None,
    /// Read-your-writes (the default): after a write, this session's reads run on a replica
    /// only once it has applied the session's last GTID (waiting briefly), else on the writer.
    #[default]
    Causal,
    /// Also across connections: a read runs on a replica only once it has applied the newest
    /// GTID written through this rwsplit, so an application's pool of connections sees its
    /// own writes too. Replicas already known to have applied it need no wait.
    CausalGlobal,
}

/// How a session's reads are spread over the replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadBalance {
    /// A session's reads stay on one replica (chosen at its first read by weight and by how
    /// many sessions read there already) until it leaves the read pool or carries more than its
    /// share by weight (sessions then move, one read at a time, to where there are fewer): the
    /// server sees one hot connection per session, as behind a TCP balancer.
    #[default]
    Session,
    /// Each read takes the next replica in weighted round-robin (the session's reads alternate).
    Statement,
}

/// How statements are split between the writer and the replicas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// When no replica is usable, reads go to the writer (logged and counted). Off: reads get
    /// an error at once instead.
    pub fallback_to_master: bool,
    /// Whether the writer also takes a share of reads (with its `weight`) while replicas are up.
    pub master_accepts_reads: bool,
    /// Read-your-writes policy (default `causal`).
    pub consistency: Consistency,
    /// Longest wait for a replica to catch up to a GTID in causal modes before the read goes
    /// to the writer instead.
    pub causal_timeout_ms: u64,
    /// While the writer reports semi-sync replication off (it fell back to async after its
    /// timeout), statements that change data fail at once with an error instead of committing
    /// without any replica's acknowledgement: consistency over availability.
    pub require_semisync: bool,
    /// While semi-sync is on, reads go only to the replicas acknowledging it (they have received
    /// every committed transaction); the others take reads only when none of those is usable.
    pub prefer_semisync_replicas: bool,
    /// How a session's reads are spread (default `session`: they stay on one replica).
    pub read_balance: ReadBalance,
    /// While there is no writer (it is down, or a switchover or failover is under way), a
    /// statement for the writer waits up to this long for one instead of failing at once; it
    /// then runs on the new writer, or gets an error saying there is none. 0: fail at once.
    pub writer_wait_ms: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            fallback_to_master: true,
            master_accepts_reads: false,
            consistency: Consistency::Causal,
            causal_timeout_ms: 100,
            require_semisync: false,
            prefer_semisync_replicas: false,
            read_balance: ReadBalance::Session,
            writer_wait_ms: 5_000,
        }
    }
}

impl RoutingConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<Problem>) {
        check_range("routing.causal_timeout_ms", self.causal_timeout_ms, 1, 60_000, problems);
        check_range("routing.writer_wait_ms", self.writer_wait_ms, 0, 600_000, problems);
    }
}

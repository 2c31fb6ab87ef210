//! The rules that judge one replica from its observations: its lag (from the heartbeat), its
//! errant transactions (against the writer's GTIDs) and whether it may take reads. Pure
//! functions with no tracker state; the round in [`super::Tracker::apply`] gathers their
//! inputs and stores their verdicts in the snapshot.

use super::{HeartbeatRead, HeartbeatWrite, Observation, Policy};
use crate::status::{errant_mariadb, errant_mysql, Flavor, GtidSet, MariadbGtidList};
use std::collections::VecDeque;

/// Lag from a heartbeat read: how long the oldest write the replica has not applied has been
/// committed on the writer (0 when it has applied every write made before the read). This is
/// exact to the write interval's granularity from below: a replica that is current reads 0
/// instead of "time since the last write".
pub(super) fn heartbeat_lag_ms(writes: &VecDeque<HeartbeatWrite>, h: HeartbeatRead) -> u64 {
    let seen = h.seen_us.unwrap_or(i64::MIN);
    writes
        .iter()
        .find(|w| w.value_us > seen && w.committed_at_us <= h.read_at_us)
        .map_or(0, |w| u64::try_from(h.read_at_us.saturating_sub(w.committed_at_us)).unwrap_or(0) / 1000)
}

/// Errant GTIDs on replica `o` against writer `w`, when both report what is needed.
pub(super) fn errant(o: &Observation, w: &Observation) -> Option<String> {
    let flavor = |x: &Observation| x.version.as_ref().map(|v| v.flavor);
    match (flavor(o), flavor(w)) {
        (Some(Flavor::MariaDb), Some(Flavor::MariaDb)) => {
            let (r, ws, wid) = (o.gtid_binlog_state.as_ref()?, w.gtid_binlog_state.as_ref()?, w.server_id?);
            let wc = MariadbGtidList::parse(w.gtid_position.as_deref().unwrap_or(""));
            let e = errant_mariadb(&MariadbGtidList::parse(r), o.server_id, &MariadbGtidList::parse(ws), &wc, wid);
            (!e.is_empty()).then(|| e.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
        }
        (Some(Flavor::MySql), Some(Flavor::MySql)) => {
            let (r, ws, uuid) = (o.gtid_position.as_ref()?, w.gtid_position.as_ref()?, w.server_uuid.as_ref()?);
            let e = errant_mysql(&GtidSet::parse(r), &GtidSet::parse(ws), uuid);
            (!e.is_empty()).then(|| e.to_string())
        }
        _ => None,
    }
}

/// Whether a `read_only=ON` server may take reads, and why not.
pub(super) fn replica_readability(
    p: &Policy,
    o: &Observation,
    lag: Option<u64>,
    errant: Option<&str>,
    writer_server_id: Option<u32>,
    was_readable: bool,
    writer_unreachable: bool,
) -> (bool, String) {
    let Some(r) = &o.replica else {
        return (false, "not replicating (read_only=ON, no replica status)".into());
    };
    // Reasons carry the error number, not the text: MySQL's texts change on every retry
    // ("attempt 3/86400"), and a reason that changes is a new generation and a new log line.
    // The text is in `replication.last_*_error` and in the log line of the change.
    let with_errno = |what: String, errno: Option<u32>| match errno {
        Some(n) => format!("{what}, error {n}"),
        None => what,
    };
    if !r.io_running {
        let state = r.io_state.as_deref().unwrap_or("No");
        // Still trying to reach a writer that does not answer us either: the replica has all
        // it could get, and is the best copy left for reads.
        let reconnecting = state.eq_ignore_ascii_case("Connecting") || state.eq_ignore_ascii_case("Preparing");
        if p.serve_stale_reads && writer_unreachable && reconnecting && r.sql_running && errant.is_none() {
            return (true, "writer unreachable: serving reads that may be stale".into());
        }
        return (false, with_errno(format!("IO thread not running ({state})"), r.last_io_errno));
    }
    if !r.sql_running {
        return (false, with_errno("SQL thread not running".into(), r.last_sql_errno));
    }
    if r.seconds_behind.is_none() {
        return (false, "Seconds_Behind_Master is NULL".into());
    }
    if errant.is_some() {
        return (false, "errant transactions (GTIDs the writer does not have)".into());
    }
    if let (Some(m), Some(w)) = (r.master_server_id, writer_server_id) {
        if m != 0 && m != w {
            return (false, format!("replicates from server_id {m}, not from the writer (server_id {w})"));
        }
    }
    let Some(lag) = lag else {
        return (false, "lag unknown".into());
    };
    if lag > p.max_lag_ms {
        return (false, format!("replication lag over the limit ({} ms)", p.max_lag_ms));
    }
    if !was_readable && lag > p.reentry_lag_ms() {
        return (false, format!("replication lag above the re-entry threshold ({} ms)", p.reentry_lag_ms()));
    }
    (true, String::new())
}

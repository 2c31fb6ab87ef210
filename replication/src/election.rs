//! Which server to promote, and whether promoting it is safe: for a planned switchover and for
//! a failover after the writer was lost. Pure: it reads a [`Topology`] snapshot; the steps that
//! change the servers are in `promotion`.
//!
//! "Most advanced" compares GTID positions domain by domain: the received position
//! (`Gtid_IO_Pos`: in the relay log, applied or not) when known, else the applied one. With
//! semi-sync on, a transaction was acknowledged only once a replica had it in its relay log, so
//! the replica that received the most holds every acknowledged transaction.

use crate::status::{MariadbGtid, MariadbGtidList};
use crate::topology::{Health, Role, ServerState, Topology};
use std::fmt;

/// Why a promotion is refused. Nothing was changed on any server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A switchover needs a writer that answers.
    NoWriter,
    /// More than one server takes writes: a person must decide.
    SplitBrain,
    /// No server of that name in the config.
    UnknownServer(String),
    /// The requested target is the writer already.
    AlreadyWriter(String),
    /// Promotion steps are MariaDB's (GTID `slave_pos`, `MASTER_GTID_WAIT`).
    NotMariadb(String),
    /// The target cannot take over: not a healthy replica of the writer.
    NotUsable { server: String, reason: String },
    /// The target is too far behind.
    Lagging { server: String, lag_ms: Option<u64>, limit_ms: u64 },
    /// The target applies transactions `delay_s` seconds late on purpose (`MASTER_DELAY`): it
    /// could take that long to apply the writer's last transaction, whatever its lag reads now.
    Delayed { server: String, delay_s: u64, limit_ms: u64 },
    /// The target has transactions the writer never had.
    Errant { server: String, gtids: String },
    /// No replica can take over.
    NoCandidate(String),
    /// Failover only: the writer is not lost (it answers, or a replica still reaches it).
    WriterNotLost(String),
    /// Failover only: the replicas' positions diverge, none holds all the others have.
    Diverged,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoWriter => {
                write!(f, "no writer answers: a switchover needs one (failover handles a lost writer)")
            }
            Refusal::SplitBrain => write!(f, "more than one server has read_only=OFF (split brain): resolve it first"),
            Refusal::UnknownServer(s) => write!(f, "no server named {s:?} in the config"),
            Refusal::AlreadyWriter(s) => write!(f, "{s} is the writer already"),
            Refusal::NotMariadb(s) => write!(f, "{s} is not MariaDB: promotion uses MariaDB's GTID replication"),
            Refusal::NotUsable { server, reason } => write!(f, "{server} cannot take over: {reason}"),
            Refusal::Lagging { server, lag_ms: Some(lag), limit_ms } => {
                write!(f, "{server} lags {lag} ms, more than monitor.switchover_max_lag_ms ({limit_ms})")
            }
            Refusal::Lagging { server, lag_ms: None, .. } => write!(f, "{server}'s lag is unknown"),
            Refusal::Delayed { server, delay_s, limit_ms } => write!(
                f,
                "{server} is a delayed replica (MASTER_DELAY = {delay_s} s), more than monitor.switchover_max_lag_ms ({limit_ms})"
            ),
            Refusal::Errant { server, gtids } => {
                write!(f, "{server} has errant transactions ({gtids}) that the writer never had")
            }
            Refusal::NoCandidate(why) => write!(f, "no replica can take over: {why}"),
            Refusal::WriterNotLost(why) => write!(f, "the writer is not lost: {why}"),
            Refusal::Diverged => write!(f, "the replicas' GTID positions diverge: none holds what all the others have"),
        }
    }
}

impl std::error::Error for Refusal {}

/// The server a switchover promotes: `requested` by name, else the most advanced usable
/// replica. Refused unless the writer answers, there is no split brain and the target is a
/// healthy replica of the writer, without errant transactions, lagging at most `max_lag_ms`.
pub fn switchover_target(t: &Topology, requested: Option<&str>, max_lag_ms: u64) -> Result<usize, Refusal> {
    if t.split_brain {
        return Err(Refusal::SplitBrain);
    }
    let (w, writer) = t.writer().filter(|(_, s)| s.health == Health::Up).ok_or(Refusal::NoWriter)?;
    if !is_mariadb(writer) {
        return Err(Refusal::NotMariadb(writer.name.clone()));
    }
    let check = |i: usize| -> Result<usize, Refusal> {
        let s = t.servers.get(i).ok_or(Refusal::NoCandidate("no such server".into()))?;
        if i == w {
            return Err(Refusal::AlreadyWriter(s.name.clone()));
        }
        usable_replica(s, writer.server_id, true)?;
        if s.lag_ms.is_none_or(|lag| lag > max_lag_ms) {
            return Err(Refusal::Lagging { server: s.name.clone(), lag_ms: s.lag_ms, limit_ms: max_lag_ms });
        }
        // A delayed replica's lag can read low (Seconds_Behind_Master reads anything from the
        // delay to 0 while the SQL thread waits out MASTER_DELAY) and still be a replica that
        // needs the whole delay to apply what the writer last committed.
        match s.replication.as_ref().and_then(|r| r.sql_delay) {
            Some(delay_s) if delay_s.saturating_mul(1000) > max_lag_ms => {
                Err(Refusal::Delayed { server: s.name.clone(), delay_s, limit_ms: max_lag_ms })
            }
            _ => Ok(i),
        }
    };
    if let Some(name) = requested {
        let i = t.servers.iter().position(|s| s.name == name).ok_or_else(|| Refusal::UnknownServer(name.into()))?;
        return check(i);
    }
    best_usable(t, (0..t.servers.len()).filter(|&i| i != w), |i| check(i).map(|_| ()), "there is no replica")
}

/// Whether the writer is lost, and the replica to promote. Lost: no server takes writes, the
/// last writer is down (failed `fall` checks), and no replica that answers still replicates
/// from it (its IO thread lost it too, so it is not only rwsplit's network).
pub fn failover_candidate(t: &Topology) -> Result<usize, Refusal> {
    if t.split_brain {
        return Err(Refusal::SplitBrain);
    }
    if let Some((_, w)) = t.writer() {
        return Err(Refusal::WriterNotLost(format!("{} takes writes", w.name)));
    }
    if let Some(s) = t.servers.iter().find(|s| s.health == Health::Up && s.read_only == Some(false)) {
        return Err(Refusal::WriterNotLost(format!("{} has read_only=OFF", s.name)));
    }
    let (lost_i, lost) = t
        .servers
        .iter()
        .enumerate()
        .find(|(_, s)| s.role == Role::Writer && s.health == Health::Down)
        .ok_or_else(|| Refusal::WriterNotLost("no writer was seen going down".into()))?;
    if !is_mariadb(lost) {
        return Err(Refusal::NotMariadb(lost.name.clone()));
    }
    let up_replicas = || t.servers.iter().enumerate().filter(|&(i, s)| i != lost_i && s.health == Health::Up);
    if let Some((_, s)) = up_replicas().find(|(_, s)| s.replication.as_ref().is_some_and(|r| r.io_running)) {
        return Err(Refusal::WriterNotLost(format!("{}'s IO thread still reaches it", s.name)));
    }
    best_usable(
        t,
        up_replicas().map(|(i, _)| i),
        |i| t.servers.get(i).map_or(Ok(()), |s| usable_replica(s, lost.server_id, false)),
        "no replica answers",
    )
}

/// The most advanced of `candidates` that pass `check`; when none does, `NoCandidate` with
/// every candidate's reason (or `none` when there were no candidates at all).
fn best_usable(
    t: &Topology,
    candidates: impl Iterator<Item = usize>,
    check: impl Fn(usize) -> Result<(), Refusal>,
    none: &str,
) -> Result<usize, Refusal> {
    let mut refusals = Vec::new();
    let usable: Vec<usize> =
        candidates.filter_map(|i| check(i).map(|_| i).map_err(|r| refusals.push(r.to_string())).ok()).collect();
    if usable.is_empty() {
        return Err(Refusal::NoCandidate(if refusals.is_empty() { none.into() } else { refusals.join("; ") }));
    }
    most_advanced(t, &usable).ok_or(Refusal::Diverged)
}

/// Whether a former writer can replicate from the new one without losing or repeating
/// anything: every GTID at the end of its binary log (`old_binlog_pos`, one per domain) is in
/// the new writer's `gtid_binlog_state` (same domain and server id, sequence number at least
/// as high). Otherwise returns the GTIDs only the old writer has: transactions written on it
/// that no replica received (not acknowledged, with semi-sync), which a person must look at.
pub fn rejoin_blockers(old_binlog_pos: &str, new_binlog_state: &str) -> Vec<MariadbGtid> {
    let new = MariadbGtidList::parse(new_binlog_state);
    MariadbGtidList::parse(old_binlog_pos)
        .0
        .into_iter()
        .filter(|g| !new.0.iter().any(|n| n.domain == g.domain && n.server_id == g.server_id && n.seq >= g.seq))
        .collect()
}

fn is_mariadb(s: &ServerState) -> bool {
    s.version.as_deref().is_some_and(|v| v.contains("MariaDB"))
}

/// A replica that can take over from the writer `writer_id`: up, a replica, applying (SQL
/// thread running), replicating from that writer when both ids are known, no errant
/// transactions. `io_must_run`: a switchover also needs it receiving.
fn usable_replica(s: &ServerState, writer_id: Option<u32>, io_must_run: bool) -> Result<(), Refusal> {
    let not = |reason: &str| Err(Refusal::NotUsable { server: s.name.clone(), reason: reason.into() });
    if s.health != Health::Up {
        return not("it is down");
    }
    if !is_mariadb(s) {
        return Err(Refusal::NotMariadb(s.name.clone()));
    }
    if s.role != Role::Replica {
        return not("it is not a replica (read_only is OFF)");
    }
    let Some(r) = &s.replication else { return not("it replicates from nobody") };
    if !r.sql_running {
        return not("its SQL thread is stopped");
    }
    if io_must_run && !r.io_running {
        return not("its IO thread is not running");
    }
    if let (Some(from), Some(w)) = (r.master_server_id, writer_id) {
        if from != w && from != 0 {
            return not("it replicates from another server than the writer");
        }
    }
    if let Some(gtids) = &s.errant {
        return Err(Refusal::Errant { server: s.name.clone(), gtids: gtids.clone() });
    }
    Ok(())
}

/// The server's position: what it received when known, else what it applied.
fn position(s: &ServerState) -> MariadbGtidList {
    let received = s.replication.as_ref().and_then(|r| r.gtid_io_pos.as_deref()).filter(|p| !p.trim().is_empty());
    MariadbGtidList::parse(received.or(s.gtid_position.as_deref()).unwrap_or(""))
}

/// Whether `a` holds everything `b` does (per domain, a sequence number at least as high).
fn holds(a: &[MariadbGtid], b: &[MariadbGtid]) -> bool {
    b.iter().all(|g| a.iter().any(|h| h.domain == g.domain && h.seq >= g.seq))
}

/// Among `candidates`, one whose position holds every other's; ties go to a semi-sync
/// acknowledging replica, then the lower lag, then config order. `None` when positions diverge.
fn most_advanced(t: &Topology, candidates: &[usize]) -> Option<usize> {
    let positions: Vec<(usize, MariadbGtidList)> =
        candidates.iter().filter_map(|&i| t.servers.get(i).map(|s| (i, position(s)))).collect();
    let mut leaders: Vec<usize> =
        positions.iter().filter(|(_, p)| positions.iter().all(|(_, q)| holds(&p.0, &q.0))).map(|(i, _)| *i).collect();
    leaders.sort_by_key(|&i| {
        let s = &t.servers[i];
        (s.semisync_acking != Some(true), s.lag_ms.unwrap_or(u64::MAX), i)
    });
    leaders.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ReplicaStatus;

    fn server(name: &str, id: u32, role: Role) -> ServerState {
        let mut t = Topology::unknown([(name.to_string(), format!("127.0.0.1:{}", 3306 + id), 1)]);
        let mut s = t.servers.remove(0);
        s.health = Health::Up;
        s.role = role;
        s.server_id = Some(id);
        s.read_only = Some(role != Role::Writer);
        s.version = Some("10.11.19-MariaDB-log".into());
        s.reason.clear();
        if role == Role::Replica {
            s.replication = Some(ReplicaStatus {
                io_running: true,
                sql_running: true,
                master_server_id: Some(1),
                gtid_io_pos: Some("0-1-100".into()),
                ..ReplicaStatus::default()
            });
            s.gtid_position = Some("0-1-100".into());
            s.lag_ms = Some(0);
            s.readable = true;
        }
        s
    }

    fn lab() -> Topology {
        let mut t = Topology::unknown(std::iter::empty());
        t.servers = vec![
            server("master", 1, Role::Writer),
            server("replica1", 2, Role::Replica),
            server("replica2", 3, Role::Replica),
        ];
        t.writer = Some(0);
        t
    }

    fn set_pos(t: &mut Topology, i: usize, pos: &str) {
        let s = &mut t.servers[i];
        s.gtid_position = Some(pos.into());
        if let Some(r) = s.replication.as_mut() {
            r.gtid_io_pos = Some(pos.into());
        }
    }

    /// The lab after `kill -9` of the master: down, replicas' IO threads cut off.
    fn lost() -> Topology {
        let mut t = lab();
        t.writer = None;
        t.servers[0].health = Health::Down;
        for i in [1, 2] {
            if let Some(r) = t.servers[i].replication.as_mut() {
                r.io_running = false;
            }
        }
        t
    }

    #[test]
    fn switchover_picks_the_named_or_most_advanced_replica() {
        let mut t = lab();
        set_pos(&mut t, 1, "0-1-99");
        assert_eq!(switchover_target(&t, None, 5_000), Ok(2));
        assert_eq!(switchover_target(&t, Some("replica1"), 5_000), Ok(1));
        // Equal positions: the semi-sync acknowledging one, then the lower lag, then the first.
        let mut t = lab();
        assert_eq!(switchover_target(&t, None, 5_000), Ok(1));
        t.servers[1].lag_ms = Some(10);
        assert_eq!(switchover_target(&t, None, 5_000), Ok(2));
        t.servers[1].semisync_acking = Some(true);
        assert_eq!(switchover_target(&t, None, 5_000), Ok(1));
    }

    #[test]
    fn switchover_refusals() {
        let t = lab();
        assert_eq!(switchover_target(&t, Some("nope"), 5_000), Err(Refusal::UnknownServer("nope".into())));
        assert_eq!(switchover_target(&t, Some("master"), 5_000), Err(Refusal::AlreadyWriter("master".into())));

        let mut lagging = lab();
        lagging.servers[1].lag_ms = Some(9_000);
        assert_eq!(
            switchover_target(&lagging, Some("replica1"), 5_000),
            Err(Refusal::Lagging { server: "replica1".into(), lag_ms: Some(9_000), limit_ms: 5_000 })
        );
        assert_eq!(switchover_target(&lagging, None, 5_000), Ok(2), "the other one is fine");

        // A delayed replica is refused whatever its lag reads, unless its delay is within the bound.
        let mut delayed = lab();
        delayed.servers[2].replication.as_mut().unwrap().sql_delay = Some(60);
        assert_eq!(
            switchover_target(&delayed, Some("replica2"), 5_000),
            Err(Refusal::Delayed { server: "replica2".into(), delay_s: 60, limit_ms: 5_000 })
        );
        assert_eq!(switchover_target(&delayed, None, 5_000), Ok(1), "the undelayed one is chosen");
        assert_eq!(switchover_target(&delayed, Some("replica2"), 60_000), Ok(2), "a delay within the bound");
        delayed.servers[1].replication.as_mut().unwrap().sql_delay = Some(3_600);
        let e = switchover_target(&delayed, None, 5_000).unwrap_err();
        assert!(matches!(&e, Refusal::NoCandidate(why) if why.contains("MASTER_DELAY = 3600 s")), "{e}");

        let mut errant = lab();
        errant.servers[2].errant = Some("0-3-1".into());
        assert!(matches!(switchover_target(&errant, Some("replica2"), 5_000), Err(Refusal::Errant { .. })));

        let mut broken = lab();
        for i in [1, 2] {
            broken.servers[i].replication.as_mut().unwrap().sql_running = false;
        }
        let e = switchover_target(&broken, None, 5_000).unwrap_err();
        assert!(matches!(&e, Refusal::NoCandidate(why) if why.contains("SQL thread is stopped")), "{e}");

        let mut elsewhere = lab();
        elsewhere.servers[1].replication.as_mut().unwrap().master_server_id = Some(3);
        assert!(matches!(switchover_target(&elsewhere, Some("replica1"), 5_000), Err(Refusal::NotUsable { .. })));

        let mut down = lab();
        down.servers[0].health = Health::Down;
        assert_eq!(switchover_target(&down, None, 5_000), Err(Refusal::NoWriter));
        let mut split = lab();
        split.split_brain = true;
        assert_eq!(switchover_target(&split, None, 5_000), Err(Refusal::SplitBrain));
        let mut mysql = lab();
        mysql.servers[0].version = Some("8.0.36".into());
        assert!(matches!(switchover_target(&mysql, None, 5_000), Err(Refusal::NotMariadb(_))));
    }

    #[test]
    fn failover_only_when_the_writer_is_lost_for_everyone() {
        assert!(matches!(failover_candidate(&lab()), Err(Refusal::WriterNotLost(_))));
        // rwsplit lost the writer but a replica still replicates from it: a network problem
        // of rwsplit's, not a dead master.
        let mut partial = lost();
        partial.servers[2].replication.as_mut().unwrap().io_running = true;
        assert!(matches!(failover_candidate(&partial), Err(Refusal::WriterNotLost(w)) if w.contains("replica2")));
        // Down but not yet after `fall` checks: the writer is still the writer.
        let mut not_yet = lost();
        not_yet.writer = Some(0);
        assert!(matches!(failover_candidate(&not_yet), Err(Refusal::WriterNotLost(_))));
        // Someone already promoted a server.
        let mut promoted = lost();
        promoted.servers[1].read_only = Some(false);
        assert!(matches!(failover_candidate(&promoted), Err(Refusal::WriterNotLost(w)) if w.contains("replica1")));
        assert_eq!(failover_candidate(&lost()), Ok(1));
    }

    #[test]
    fn failover_promotes_the_replica_that_received_most() {
        let mut t = lost();
        // replica2 received more (its relay log) even though it applied less so far.
        t.servers[2].replication.as_mut().unwrap().gtid_io_pos = Some("0-1-105".into());
        t.servers[2].gtid_position = Some("0-1-90".into());
        assert_eq!(failover_candidate(&t), Ok(2));
        // A replica with errant transactions or a stopped SQL thread is never promoted.
        t.servers[2].errant = Some("0-3-7".into());
        assert_eq!(failover_candidate(&t), Ok(1));
        t.servers[1].replication.as_mut().unwrap().sql_running = false;
        assert!(matches!(failover_candidate(&t), Err(Refusal::NoCandidate(_))));
        // Nobody answers.
        let mut none = lost();
        none.servers[1].health = Health::Down;
        none.servers[2].health = Health::Down;
        assert!(matches!(failover_candidate(&none), Err(Refusal::NoCandidate(_))));
        // Positions that diverge (another domain each): refuse rather than lose either.
        let mut diverged = lost();
        set_pos(&mut diverged, 1, "0-1-100,1-2-5");
        set_pos(&mut diverged, 2, "0-1-100,1-3-5,2-3-1");
        diverged.servers[1].replication.as_mut().unwrap().gtid_io_pos = Some("0-1-101".into());
        assert_eq!(failover_candidate(&diverged), Err(Refusal::Diverged));
    }

    #[test]
    fn a_former_writer_rejoins_only_without_transactions_of_its_own() {
        // The new writer (server 2) received up to 0-1-100, then wrote 0-2-101...
        let new_state = "0-1-100,0-2-150";
        assert!(rejoin_blockers("0-1-100", new_state).is_empty());
        assert!(rejoin_blockers("0-1-90", new_state).is_empty());
        assert!(rejoin_blockers("", new_state).is_empty());
        // ...but the old writer had committed 0-1-101 that nobody received.
        let blockers = rejoin_blockers("0-1-101", new_state);
        assert_eq!(blockers.iter().map(|g| g.to_string()).collect::<Vec<_>>(), ["0-1-101"]);
        // Another domain the new writer never saw.
        assert_eq!(rejoin_blockers("0-1-100,1-1-3", new_state).len(), 1);
    }

    #[test]
    fn refusals_read_as_sentences() {
        let r = Refusal::Lagging { server: "replica1".into(), lag_ms: Some(9_000), limit_ms: 5_000 };
        assert_eq!(r.to_string(), "replica1 lags 9000 ms, more than monitor.switchover_max_lag_ms (5000)");
    }
}

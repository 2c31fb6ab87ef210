//! The monitor's decisions, as a pure state machine: raw check results in, the next
//! [`Topology`] plus the log events and actions it implies out. No IO, no clock, no tokio —
//! time comes in as arguments — so every rule below is table-tested in this file.
//!
//! Rules:
//! - Health (keepalived-like): a server `Up` goes `Down` after `fall` failed checks in a row,
//!   a `Down` server comes back after `rise` good checks in a row. The first check after start
//!   decides at once (`Unknown` → `Up` or `Down`), so the proxy's start-up round gives a usable
//!   topology. While an `Up` server fails fewer than `fall` checks, its last good observation
//!   stands: one timed-out check changes nothing.
//! - Role: `read_only=OFF` → writer, `ON` → replica, from the last good observation.
//! - Writer: the one `Up` server with `read_only=OFF`. None writable → no writer. Several →
//!   split brain: keep the previous writer if it is one of them (else none), never move, and
//!   raise an error every round until it is resolved.
//! - Readable replica: `Up`, `read_only=ON`, replica status present, IO and SQL threads running,
//!   `Seconds_Behind_Master` not NULL, no errant transactions, replicating from the writer
//!   (when both server ids are known), and lag within the limit. Lag hysteresis: a replica in
//!   the read pool stays while lag ≤ `max_lag`; one outside (for any reason, or at start) enters
//!   only when lag ≤ `max_lag × hysteresis%`, so a replica hovering at the limit does not flap.
//! - Lag: from the heartbeat when one is known, else `Seconds_Behind_Master` × 1000.
//! - Semi-sync: the writer's `enabled`/`active` pair; a change from active to inactive is a
//!   fallback to asynchronous replication (warning + notify action), back is a recovery (info +
//!   notify action).

use crate::status::{
    errant_mariadb, errant_mysql, Flavor, GtidSet, MariadbGtidList, ReplicaSemiSync, ReplicaStatus, SemiSyncMaster,
    Version,
};
use crate::topology::{Health, Role, Topology};
use crate::Error;
use std::collections::VecDeque;

/// What one good check of one server found: raw facts, interpreted only by [`Tracker`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    pub version: Option<Version>,
    pub read_only: bool,
    pub server_id: Option<u32>,
    /// MySQL `@@server_uuid` (the writer's own GTIDs are not errant).
    pub server_uuid: Option<String>,
    /// MariaDB `gtid_current_pos`, MySQL `gtid_executed`: shown as the server's position.
    pub gtid_position: Option<String>,
    /// MariaDB `gtid_binlog_state` (one GTID per domain and server id), for errant detection.
    pub gtid_binlog_state: Option<String>,
    /// Replica status, `None` when `SHOW SLAVE/REPLICA STATUS` returned no row.
    pub replica: Option<ReplicaStatus>,
    pub semisync_master: Option<SemiSyncMaster>,
    pub semisync_replica: Option<ReplicaSemiSync>,
    /// The heartbeat row as read on this server, when the heartbeat is on and it is a replica.
    pub heartbeat_read: Option<HeartbeatRead>,
    /// The heartbeat this check wrote, when this server was the writer.
    pub heartbeat_written: Option<HeartbeatWrite>,
    /// Why the heartbeat could not be read or written (the check itself still counts as good).
    pub heartbeat_error: Option<String>,
}

/// A heartbeat read on a replica. Times are the monitor's own wall clock in µs since the Unix
/// epoch: the monitor writes its clock's value and compares against its clock, so the servers'
/// clocks (and their skew) never enter the lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatRead {
    /// The `ts` the replica has (`None`: no row yet).
    pub seen_us: Option<i64>,
    /// Monitor time just before the read was sent.
    pub read_at_us: i64,
}

/// A heartbeat the monitor wrote on the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatWrite {
    /// The `ts` value written.
    pub value_us: i64,
    /// Monitor time when the write had committed (the statement returned).
    pub committed_at_us: i64,
}

/// The monitor settings the decisions depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub rise: u32,
    pub fall: u32,
    pub max_lag_ms: u64,
    /// Re-entry threshold in percent of `max_lag_ms` (100 = no hysteresis).
    pub hysteresis_percent: u32,
    pub errant_check: bool,
    /// Replicas cut off only because the writer is unreachable keep serving reads.
    pub serve_stale_reads: bool,
}

impl Policy {
    pub fn from_config(c: &rwsplit_config::MonitorConfig) -> Policy {
        Policy {
            rise: c.rise.max(1),
            fall: c.fall.max(1),
            max_lag_ms: c.max_replication_lag_ms,
            hysteresis_percent: c.lag_hysteresis_percent.clamp(1, 100),
            errant_check: c.errant_check,
            serve_stale_reads: c.serve_stale_reads,
        }
    }

    /// Lag at or under which a replica outside the read pool may enter it.
    pub fn reentry_lag_ms(&self) -> u64 {
        self.max_lag_ms.saturating_mul(u64::from(self.hysteresis_percent)) / 100
    }
}

/// How loud an [`Event`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// A change worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub level: Level,
    /// The server concerned, by index.
    pub server: Option<usize>,
    pub message: String,
}

/// Something the IO side must do because of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The writer's semi-sync went on (`active`) or fell back to asynchronous.
    SemisyncNotify { server: usize, active: bool },
}

/// The outcome of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The next snapshot (already stored as the tracker's current one).
    pub topology: Topology,
    /// True when the generation was bumped (see [`Topology::generation`]).
    pub changed: bool,
    pub events: Vec<Event>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Default)]
struct Tracked {
    ok_streak: u32,
    fail_streak: u32,
    /// The last good observation: what the server's role and readability are judged by.
    last: Option<Observation>,
    last_error: Option<String>,
    heartbeat_error_logged: bool,
}

/// Heartbeat writes kept to measure lag against (bounded both ways).
const HEARTBEAT_RING: usize = 4096;

/// The monitor's memory between rounds.
#[derive(Debug, Clone)]
pub struct Tracker {
    policy: Policy,
    servers: Vec<Tracked>,
    current: Topology,
    /// Our heartbeat writes, oldest first, values strictly increasing.
    heartbeats: VecDeque<HeartbeatWrite>,
    /// The writer's semi-sync `active` as last seen (`None`: not enabled / never seen).
    semisync_active: Option<bool>,
}

impl Tracker {
    /// Starts from `initial` (normally [`Topology::unknown`]; its generation is continued).
    pub fn new(policy: Policy, initial: Topology) -> Tracker {
        Tracker {
            policy,
            servers: vec![Tracked::default(); initial.servers.len()],
            current: initial,
            heartbeats: VecDeque::new(),
            semisync_active: None,
        }
    }

    /// The last snapshot built.
    pub fn current(&self) -> &Topology {
        &self.current
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the policy (config reload); takes effect at the next round.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The newest heartbeat value written, so the next write can stay strictly increasing.
    pub fn last_heartbeat_us(&self) -> Option<i64> {
        self.heartbeats.back().map(|h| h.value_us)
    }

    /// Applies one round: `results[i]` is server `i`'s check (missing entries count as failed
    /// checks), `now_ms` the Unix time the round ended.
    pub fn apply(&mut self, results: Vec<Result<Observation, Error>>, now_ms: u64) -> Step {
        let n = self.servers.len();
        let mut results: Vec<Option<Result<Observation, Error>>> = results.into_iter().map(Some).collect();
        results.resize_with(n, || None);
        let prev = self.current.clone();
        let mut events = Vec::new();
        let mut actions = Vec::new();
        let mut next = prev.clone();
        next.checked_at_ms = Some(now_ms);

        // 1. Health, from this round's outcome and the streaks.
        for (i, result) in results.into_iter().enumerate() {
            let t = &mut self.servers[i];
            let s = &mut next.servers[i];
            let name = s.name.clone();
            let before = s.health;
            s.checked_at_ms = Some(now_ms);
            match result.unwrap_or_else(|| Err(Error::Unexpected { what: "check", detail: "no result".into() })) {
                Ok(obs) => {
                    t.ok_streak = t.ok_streak.saturating_add(1);
                    t.fail_streak = 0;
                    t.last_error = None;
                    if let Some(w) = obs.heartbeat_written {
                        // Keep values strictly increasing, whatever the wall clock did.
                        if self.heartbeats.back().is_none_or(|b| w.value_us > b.value_us) {
                            self.heartbeats.push_back(w);
                        }
                        while self.heartbeats.len() > HEARTBEAT_RING {
                            self.heartbeats.pop_front();
                        }
                    }
                    match (&obs.heartbeat_error, t.heartbeat_error_logged) {
                        (Some(e), false) => {
                            events.push(ev(
                                Level::Warn,
                                i,
                                format!("{name}: heartbeat failed, using Seconds_Behind_Master for lag: {e}"),
                            ));
                            t.heartbeat_error_logged = true;
                        }
                        (None, true) if obs.heartbeat_read.is_some() || obs.heartbeat_written.is_some() => {
                            events.push(ev(Level::Info, i, format!("{name}: heartbeat works again")));
                            t.heartbeat_error_logged = false;
                        }
                        _ => {}
                    }
                    t.last = Some(obs);
                    s.health = match before {
                        Health::Unknown | Health::Up => Health::Up,
                        Health::Down if t.ok_streak >= self.policy.rise => Health::Up,
                        Health::Down => Health::Down,
                    };
                    if before != s.health {
                        let msg = match before {
                            Health::Down => format!("{name} is up after {} good checks", t.ok_streak),
                            _ => format!("{name} is up"),
                        };
                        events.push(ev(Level::Info, i, msg));
                    }
                }
                Err(e) => {
                    t.fail_streak = t.fail_streak.saturating_add(1);
                    t.ok_streak = 0;
                    let err = e.to_string();
                    s.health = match before {
                        Health::Unknown | Health::Down => Health::Down,
                        Health::Up if t.fail_streak >= self.policy.fall => Health::Down,
                        Health::Up => Health::Up,
                    };
                    if before != s.health {
                        let msg = match before {
                            Health::Up => format!("{name} is down after {} failed checks: {err}", t.fail_streak),
                            _ => format!("{name} is down: {err}"),
                        };
                        events.push(ev(Level::Warn, i, msg));
                    } else if s.health == Health::Up && t.fail_streak == 1 {
                        events.push(ev(
                            Level::Info,
                            i,
                            format!("{name}: check failed (1 of {} before it is taken out): {err}", self.policy.fall),
                        ));
                    } else if s.health == Health::Down
                        && t.last_error.as_deref() != Some(err.as_str())
                        && t.last_error.is_some()
                    {
                        events.push(ev(Level::Info, i, format!("{name} is still down, now: {err}")));
                    }
                    t.last_error = Some(err);
                }
            }
            s.last_error = t.last_error.clone();
            s.failed_checks = t.fail_streak;
        }

        // 2. Per-server facts from the last good observation; roles of down servers stay as
        //    last seen (for the status page) but nothing else counts them.
        for (i, s) in next.servers.iter_mut().enumerate() {
            if let Some(obs) = &self.servers[i].last {
                s.version = obs.version.as_ref().map(|v| v.text.clone()).or(s.version.take());
                s.server_id = obs.server_id.or(s.server_id);
                s.read_only = Some(obs.read_only);
                s.role = if obs.read_only { Role::Replica } else { Role::Writer };
                s.replication = obs.replica.clone();
                s.gtid_position = obs.gtid_position.clone();
            }
        }

        // 3. The writer.
        let up: Vec<Option<Observation>> = (0..n)
            .map(|i| if next.servers[i].health == Health::Up { self.servers[i].last.clone() } else { None })
            .collect();
        let writable: Vec<usize> = (0..n).filter(|&i| up[i].as_ref().is_some_and(|o| !o.read_only)).collect();
        let server_names: Vec<String> = next.servers.iter().map(|s| s.name.clone()).collect();
        let names = |ix: &[usize]| ix.iter().map(|&i| server_names[i].as_str()).collect::<Vec<_>>().join(", ");
        let mut alerts = Vec::new();
        next.split_brain = writable.len() > 1;
        next.writer = match writable.as_slice() {
            [] => None,
            [only] => Some(*only),
            _ => {
                let keep = prev.writer.filter(|w| writable.contains(w));
                let kept = match keep {
                    Some(w) => format!("keeping {} as the writer and refusing to move", server_names[w]),
                    None => "no writer is chosen until it is resolved".to_string(),
                };
                let msg = format!("split brain: {} are all writable (read_only=OFF); {kept}", names(&writable));
                events.push(Event { level: Level::Error, server: None, message: msg });
                alerts.push(format!("split brain: {} are all writable (read_only=OFF)", names(&writable)));
                keep
            }
        };
        let why_gone = |w: usize| -> String {
            let s = &next.servers[w];
            if s.health != Health::Up {
                format!("{} is down", s.name)
            } else if s.read_only == Some(true) {
                format!("{} is read_only=ON", s.name)
            } else {
                format!("{} is in a split brain", s.name)
            }
        };
        let writer_event = match (prev.writer, next.writer) {
            (Some(a), Some(b)) if a != b => Some(ev(
                Level::Warn,
                b,
                format!("writer moved from {} to {} ({})", server_names[a], server_names[b], why_gone(a)),
            )),
            (Some(a), None) => Some(ev(Level::Warn, a, format!("no writer: {}", why_gone(a)))),
            (None, Some(b)) => Some(ev(Level::Info, b, format!("writer is {}", server_names[b]))),
            _ => None,
        };
        events.extend(writer_event);
        let writer_obs: Option<(usize, Observation)> = next.writer.and_then(|w| up[w].clone().map(|o| (w, o)));

        // 4. Readability, lag, errant transactions, semi-sync acknowledgement per server.
        for (i, obs) in up.iter().enumerate() {
            let prev_s = &prev.servers[i];
            let obs = obs.clone();
            let s = &mut next.servers[i];
            s.lag_ms = None;
            s.semisync_acking = None;
            s.errant = None;
            let (readable, reason) = match (&obs, s.health) {
                (_, Health::Unknown) => (false, "not checked yet".to_string()),
                (None, _) => (false, format!("down: {}", self.servers[i].last_error.as_deref().unwrap_or("no answer"))),
                (Some(o), Health::Up) if !o.read_only => {
                    if Some(i) == next.writer {
                        (true, String::new())
                    } else {
                        (false, "writable (read_only=OFF) but not the writer: split brain".to_string())
                    }
                }
                (Some(o), _) => {
                    s.semisync_acking = o.semisync_replica.map(|r| r.acking);
                    let lag = o.replica.as_ref().and_then(|r| self.lag_ms(o, r));
                    s.lag_ms = lag;
                    if self.policy.errant_check {
                        if let Some((_, w)) = &writer_obs {
                            s.errant = errant(o, w);
                        }
                    }
                    let writer_sid = writer_obs.as_ref().and_then(|(_, w)| w.server_id);
                    // The writer did not answer this round (or none is known): a replica whose
                    // IO thread is only failing to reach it may serve stale reads.
                    let writer_unreachable = match next.writer {
                        Some(w) => self.servers.get(w).is_none_or(|t| t.fail_streak > 0),
                        None => true,
                    };
                    replica_readability(
                        &self.policy,
                        o,
                        lag,
                        s.errant.as_deref(),
                        writer_sid,
                        prev_s.readable,
                        writer_unreachable,
                    )
                }
            };
            s.readable = readable;
            s.reason = reason;
            // Errant transactions: an alert for as long as they are there, logged once.
            if let Some(errant) = &s.errant {
                alerts.push(format!("errant transactions on {}: {errant}", s.name));
                if prev_s.errant.as_ref() != Some(errant) {
                    events.push(ev(
                        Level::Error,
                        i,
                        format!("errant transactions on {} (not on the writer): {errant}", s.name),
                    ));
                }
            }
            // Read pool membership changes (the writer's readability is the router's call).
            let is_writer = Some(i) == next.writer;
            let was_writer = Some(i) == prev.writer;
            if !is_writer && !was_writer && s.health != Health::Unknown {
                let detail = match s.replication.as_ref().and_then(ReplicaStatus::last_error) {
                    Some(e) if !s.readable => format!(" ({e})"),
                    _ => String::new(),
                };
                match (prev_s.readable, s.readable) {
                    (false, true) => events.push(ev(Level::Info, i, format!("{} joins the read pool", s.name))),
                    (true, false) => events.push(ev(
                        Level::Warn,
                        i,
                        format!("{} leaves the read pool: {}{detail}", s.name, s.reason),
                    )),
                    (false, false)
                        if prev_s.reason != s.reason && s.health == Health::Up && prev_s.health == Health::Up =>
                    {
                        events.push(ev(
                            Level::Info,
                            i,
                            format!("{} stays out of the read pool: {}{detail}", s.name, s.reason),
                        ))
                    }
                    _ => {}
                }
            }
            if s.health == Health::Up && prev_s.role != s.role && prev_s.role != Role::Unknown {
                let what = if s.role == Role::Writer { "read_only=OFF (writable)" } else { "read_only=ON" };
                events.push(ev(Level::Info, i, format!("{} is now {what}", s.name)));
            }
        }

        // 5. The writer's semi-sync.
        next.semisync = writer_obs.as_ref().and_then(|(_, o)| o.semisync_master.clone());
        if let Some((w, o)) = &writer_obs {
            let name = next.servers[*w].name.clone();
            let now_active = o.semisync_master.as_ref().filter(|m| m.enabled).map(|m| m.active);
            match (self.semisync_active, now_active) {
                (Some(true), Some(false)) | (None, Some(false)) => {
                    let m = o.semisync_master.as_ref();
                    let detail = format!(
                        "clients={}, no_tx={}",
                        m.and_then(|m| m.clients).map_or("?".into(), |c| c.to_string()),
                        m.and_then(|m| m.no_tx).map_or("?".into(), |c| c.to_string())
                    );
                    events.push(ev(
                        Level::Warn,
                        *w,
                        format!("semi-sync replication on {name} fell back to asynchronous ({detail})"),
                    ));
                    actions.push(Action::SemisyncNotify { server: *w, active: false });
                }
                (Some(false), Some(true)) => {
                    events.push(ev(Level::Info, *w, format!("semi-sync replication on {name} is back on")));
                    actions.push(Action::SemisyncNotify { server: *w, active: true });
                }
                (Some(_), None) => events.push(ev(Level::Info, *w, format!("semi-sync is not enabled on {name}"))),
                _ => {}
            }
            self.semisync_active = now_active;
            if now_active == Some(false) {
                alerts.push(format!("semi-sync on {name} is off: replication is asynchronous"));
            }
        }
        // Without a known writer the last semi-sync state is kept: a writer that blinks does
        // not re-announce a fallback that was already reported.

        next.alerts = alerts;
        let changed = !next.same_state(&prev);
        if changed {
            next.generation = prev.generation.wrapping_add(1);
        }
        self.current = next.clone();
        Step { topology: next, changed, events, actions }
    }

    /// The replica's lag in ms: heartbeat when it can be measured, else Seconds_Behind_Master.
    fn lag_ms(&self, o: &Observation, r: &ReplicaStatus) -> Option<u64> {
        let from_sbm = r.seconds_behind.map(|s| s.saturating_mul(1000));
        match o.heartbeat_read {
            Some(h) if !self.heartbeats.is_empty() && h.seen_us.is_some() => {
                Some(heartbeat_lag_ms(&self.heartbeats, h))
            }
            _ => from_sbm,
        }
    }
}

/// Lag from a heartbeat read: how long the oldest write the replica has not applied has been
/// committed on the writer (0 when it has applied every write made before the read). This is
/// exact to the write interval's granularity from below: a replica that is current reads 0
/// instead of "time since the last write".
fn heartbeat_lag_ms(writes: &VecDeque<HeartbeatWrite>, h: HeartbeatRead) -> u64 {
    let seen = h.seen_us.unwrap_or(i64::MIN);
    writes
        .iter()
        .find(|w| w.value_us > seen && w.committed_at_us <= h.read_at_us)
        .map_or(0, |w| u64::try_from(h.read_at_us.saturating_sub(w.committed_at_us)).unwrap_or(0) / 1000)
}

/// Errant GTIDs on replica `o` against writer `w`, when both report what is needed.
fn errant(o: &Observation, w: &Observation) -> Option<String> {
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
fn replica_readability(
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

fn ev(level: Level, server: usize, message: String) -> Event {
    Event { level, server: Some(server), message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::SemiSyncMaster;
    use std::time::Duration;

    fn policy() -> Policy {
        Policy {
            rise: 2,
            fall: 3,
            max_lag_ms: 10_000,
            hysteresis_percent: 80,
            errant_check: true,
            serve_stale_reads: true,
        }
    }

    fn tracker(n: usize) -> Tracker {
        Tracker::new(
            policy(),
            Topology::unknown((0..n).map(|i| (format!("s{i}"), format!("127.0.0.1:{}", 3306 + i), 1))),
        )
    }

    fn maria() -> Option<Version> {
        Version::parse("10.11.19-MariaDB-0+deb12u1-log")
    }

    fn writer(sid: u32) -> Observation {
        Observation {
            version: maria(),
            read_only: false,
            server_id: Some(sid),
            gtid_position: Some("0-1-34".into()),
            gtid_binlog_state: Some("0-1-34".into()),
            semisync_master: Some(SemiSyncMaster {
                enabled: true,
                active: true,
                clients: Some(2),
                ..Default::default()
            }),
            semisync_replica: Some(ReplicaSemiSync { acking: false }),
            ..Default::default()
        }
    }

    fn replica(sid: u32, lag_s: Option<u64>) -> Observation {
        Observation {
            version: maria(),
            read_only: true,
            server_id: Some(sid),
            gtid_position: Some("0-1-34".into()),
            gtid_binlog_state: Some("0-1-34".into()),
            replica: Some(ReplicaStatus {
                io_running: true,
                sql_running: true,
                io_state: Some("Yes".into()),
                seconds_behind: lag_s,
                master_server_id: Some(1),
                ..Default::default()
            }),
            semisync_master: Some(SemiSyncMaster {
                enabled: true,
                active: false,
                clients: Some(0),
                ..Default::default()
            }),
            semisync_replica: Some(ReplicaSemiSync { acking: true }),
            ..Default::default()
        }
    }

    fn fail() -> Result<Observation, Error> {
        Err(Error::Timeout { what: "check", after: Duration::from_millis(1000) })
    }

    fn lab_round() -> Vec<Result<Observation, Error>> {
        vec![Ok(writer(1)), Ok(replica(2, Some(0))), Ok(replica(3, Some(0)))]
    }

    fn health_char(h: Health) -> char {
        match h {
            Health::Up => 'U',
            Health::Down => 'D',
            Health::Unknown => '?',
        }
    }

    #[test]
    fn rise_and_fall() {
        // rise = 2, fall = 3. 'o' good check, 'f' failed check → health after each round.
        let table = [
            ("o", "U"),
            ("f", "D"),
            ("off", "UUU"),
            ("offf", "UUUD"),
            ("offfo", "UUUDD"),
            ("offfoo", "UUUDDU"),
            ("ofofofofof", "UUUUUUUUUU"),
            ("offoffoff", "UUUUUUUUU"),
            ("fo", "DD"),
            ("foo", "DDU"),
            ("fofoo", "DDDDU"),
            ("offfofoo", "UUUDDDDU"),
        ];
        for (input, want) in table {
            let mut t = tracker(1);
            let got: String = input
                .chars()
                .map(|c| {
                    let r = if c == 'o' { Ok(replica(2, Some(0))) } else { fail() };
                    health_char(t.apply(vec![r], 0).topology.servers[0].health)
                })
                .collect();
            assert_eq!(got, want, "sequence {input}");
        }
    }

    #[test]
    fn health_changes_are_logged_once_with_the_reason() {
        let mut t = tracker(1);
        let mut lines = Vec::new();
        for r in
            [Ok(replica(2, Some(0))), fail(), fail(), fail(), fail(), Ok(replica(2, Some(0))), Ok(replica(2, Some(0)))]
        {
            lines.extend(t.apply(vec![r], 0).events.into_iter().map(|e| e.message));
        }
        let downs: Vec<_> = lines.iter().filter(|l| l.contains("is down")).collect();
        assert_eq!(downs.len(), 1, "{lines:#?}");
        assert!(downs[0].contains("after 3 failed checks") && downs[0].contains("timed out"), "{}", downs[0]);
        assert_eq!(lines.iter().filter(|l| l.contains("is up after 2 good checks")).count(), 1, "{lines:#?}");
        assert_eq!(lines.iter().filter(|l| l.contains("check failed (1 of 3")).count(), 1, "{lines:#?}");
    }

    #[test]
    fn one_timeout_changes_nothing_routing_relevant() {
        let mut t = tracker(3);
        let first = t.apply(lab_round(), 1).topology;
        assert_eq!(first.writer, Some(0));
        let g = first.generation;
        let step = t.apply(vec![fail(), fail(), Ok(replica(3, Some(0)))], 2);
        assert!(!step.changed, "a single failed check must not bump the generation");
        assert_eq!(step.topology.generation, g);
        assert_eq!(step.topology.writer, Some(0));
        assert!(step.topology.servers[1].readable);
        assert_eq!(step.topology.servers[0].failed_checks, 1);
        assert!(step.topology.servers[0].last_error.as_deref().unwrap().contains("timed out"));
        let back = t.apply(lab_round(), 3);
        assert!(!back.changed);
        assert_eq!(back.topology.servers[0].last_error, None);
    }

    /// One round from a fresh tracker: the writer, split brain, and each server's readability.
    #[test]
    fn roles_and_writer_table() {
        type Case = (&'static str, Vec<Result<Observation, Error>>, Option<usize>, bool, &'static str);
        let mut sbm_null = replica(2, None);
        sbm_null.read_only = true;
        let cases: Vec<Case> = vec![
            ("lab", lab_round(), Some(0), false, "WRR"),
            ("no writer", vec![Ok(replica(1, Some(0))), Ok(replica(2, Some(0)))], None, false, "RR"),
            ("writer last in config", vec![Ok(replica(2, Some(0))), Ok(writer(1))], Some(1), false, "RW"),
            ("writer down", vec![fail(), Ok(replica(2, Some(0)))], None, false, "-R"),
            ("replica down", vec![Ok(writer(1)), fail(), Ok(replica(3, Some(0)))], Some(0), false, "W-R"),
            (
                "NULL lag excludes the replica only",
                vec![Ok(writer(1)), Ok(sbm_null), Ok(replica(3, Some(0)))],
                Some(0),
                false,
                "W-R",
            ),
            ("split brain at start", vec![Ok(writer(1)), Ok(writer(2)), Ok(replica(3, Some(0)))], None, true, "--R"),
            ("all down", vec![fail(), fail()], None, false, "--"),
        ];
        for (name, round, want_writer, want_split, readable) in cases {
            let mut t = tracker(round.len());
            let topo = t.apply(round, 0).topology;
            assert_eq!(topo.writer, want_writer, "{name}");
            assert_eq!(topo.split_brain, want_split, "{name}");
            let got: String = topo
                .servers
                .iter()
                .enumerate()
                .map(|(i, s)| match (Some(i) == topo.writer, s.readable) {
                    (true, _) => 'W',
                    (false, true) => 'R',
                    (false, false) => '-',
                })
                .collect();
            assert_eq!(got, readable, "{name}: {topo:#?}");
            assert_eq!(topo.readable_replicas().count(), readable.matches('R').count(), "{name}");
        }
    }

    /// One writer and one replica whose state varies: is the replica readable, and why not.
    #[test]
    fn replica_readability_table() {
        let base = || replica(2, Some(0));
        let with = |f: &dyn Fn(&mut Observation)| {
            let mut o = base();
            f(&mut o);
            o
        };
        fn rs(o: &mut Observation) -> &mut ReplicaStatus {
            o.replica.as_mut().expect("test replica has a status")
        }
        let cases: Vec<(&str, Observation, bool, &str)> = vec![
            ("healthy", base(), true, ""),
            ("lag at the limit", replica(2, Some(10)), false, "replication lag above the re-entry threshold"),
            ("lag within re-entry", replica(2, Some(8)), true, ""),
            ("lag over", replica(2, Some(11)), false, "replication lag over the limit (10000 ms)"),
            ("SBM NULL", replica(2, None), false, "Seconds_Behind_Master is NULL"),
            (
                "SQL stopped",
                with(&|o| {
                    rs(o).sql_running = false;
                    rs(o).last_sql_errno = Some(1062);
                    rs(o).last_sql_error = Some("Duplicate entry '1' for key 'PRIMARY'".into());
                }),
                false,
                "SQL thread not running, error 1062",
            ),
            (
                "IO connecting",
                with(&|o| {
                    rs(o).io_running = false;
                    rs(o).io_state = Some("Connecting".into());
                }),
                false,
                "IO thread not running (Connecting)",
            ),
            ("no replica status", with(&|o| o.replica = None), false, "not replicating"),
            (
                "other source",
                with(&|o| rs(o).master_server_id = Some(7)),
                false,
                "replicates from server_id 7, not from the writer (server_id 1)",
            ),
            ("source id unknown yet", with(&|o| rs(o).master_server_id = Some(0)), true, ""),
            ("errant", with(&|o| o.gtid_binlog_state = Some("0-1-34,0-2-35".into())), false, "errant transactions"),
        ];
        for (name, obs, want_readable, want_reason) in cases {
            let mut t = tracker(2);
            let topo = t.apply(vec![Ok(writer(1)), Ok(obs)], 0).topology;
            let s = &topo.servers[1];
            assert_eq!(s.readable, want_readable, "{name}: {}", s.reason);
            assert!(s.reason.starts_with(want_reason), "{name}: reason {:?}", s.reason);
            assert_eq!(topo.writer, Some(0), "{name}: the writer is never affected by a replica");
        }
    }

    #[test]
    fn lag_hysteresis() {
        // max 10 s, re-entry at 80 % = 8 s.
        let lags = [0, 9, 10, 11, 9, 8, 9, 10, 11, 7];
        let want = [true, true, true, false, false, true, true, true, false, true];
        let mut t = tracker(2);
        let mut events = Vec::new();
        for (lag, want) in lags.iter().zip(want) {
            let step = t.apply(vec![Ok(writer(1)), Ok(replica(2, Some(*lag)))], 0);
            assert_eq!(step.topology.servers[1].readable, want, "lag {lag}");
            assert_eq!(step.topology.servers[1].lag_ms, Some(lag * 1000));
            events.extend(step.events.into_iter().filter(|e| e.server == Some(1)).map(|e| e.message));
        }
        assert_eq!(events.iter().filter(|e| e.contains("leaves the read pool")).count(), 2, "{events:#?}");
        // "joins" at start, then twice more.
        assert_eq!(events.iter().filter(|e| e.contains("joins the read pool")).count(), 3, "{events:#?}");
    }

    #[test]
    fn split_brain_keeps_the_writer_and_alerts_every_round() {
        let mut t = tracker(3);
        assert_eq!(t.apply(lab_round(), 0).topology.writer, Some(0));
        for _ in 0..3 {
            let step = t.apply(vec![Ok(writer(1)), Ok(writer(2)), Ok(replica(3, Some(0)))], 0);
            assert_eq!(step.topology.writer, Some(0), "never moves in a split brain");
            assert!(step.topology.split_brain);
            assert_eq!(step.topology.alerts, vec!["split brain: s0, s1 are all writable (read_only=OFF)".to_string()]);
            let errors: Vec<_> = step.events.iter().filter(|e| e.level == Level::Error).collect();
            assert_eq!(errors.len(), 1, "one loud error every round");
            assert!(errors[0].message.contains("keeping s0 as the writer"));
            assert!(!step.topology.servers[1].readable);
        }
        let step = t.apply(lab_round(), 0);
        assert!(!step.topology.split_brain && step.topology.alerts.is_empty());
        assert_eq!(step.topology.writer, Some(0));
        // Split brain where the old writer is not one of the writable servers: no writer.
        let step = t.apply(vec![Ok(replica(1, Some(0))), Ok(writer(2)), Ok(writer(3))], 0);
        assert_eq!(step.topology.writer, None);
        assert!(step.events.iter().any(|e| e.message.contains("no writer is chosen")));
    }

    #[test]
    fn switchover_moves_the_writer() {
        // Both changes seen in one round: the writer moves at once.
        let mut t = tracker(3);
        t.apply(lab_round(), 0);
        let mut old = replica(1, Some(0));
        old.replica = None;
        let step = t.apply(vec![Ok(old.clone()), Ok(writer(2)), Ok(replica(3, Some(0)))], 0);
        assert_eq!(step.topology.writer, Some(1));
        assert!(step.changed);
        assert!(step
            .events
            .iter()
            .any(|e| e.level == Level::Warn && e.message == "writer moved from s0 to s1 (s0 is read_only=ON)"));
        assert!(!step.topology.servers[0].readable, "{}", step.topology.servers[0].reason);
        // s2 still replicates from server 1, which is no longer the writer.
        assert!(step.topology.servers[2].reason.contains("not from the writer"));
        // Seen in two rounds: first no writer, then the new one.
        let mut t = tracker(3);
        t.apply(lab_round(), 0);
        let step = t.apply(vec![Ok(old.clone()), Ok(replica(2, Some(0))), Ok(replica(3, Some(0)))], 0);
        assert_eq!(step.topology.writer, None);
        assert!(step.events.iter().any(|e| e.message == "no writer: s0 is read_only=ON"));
        let step = t.apply(vec![Ok(old), Ok(writer(2)), Ok(replica(3, Some(0)))], 0);
        assert_eq!(step.topology.writer, Some(1));
        assert!(step.events.iter().any(|e| e.message == "writer is s1"));
    }

    #[test]
    fn writer_down_after_fall_only() {
        let mut t = tracker(2);
        t.apply(vec![Ok(writer(1)), Ok(replica(2, Some(0)))], 0);
        for _ in 0..2 {
            assert_eq!(t.apply(vec![fail(), Ok(replica(2, Some(0)))], 0).topology.writer, Some(0));
        }
        let step = t.apply(vec![fail(), Ok(replica(2, Some(0)))], 0);
        assert_eq!(step.topology.writer, None);
        assert_eq!(step.topology.servers[0].health, Health::Down);
        assert!(step.topology.servers[0].reason.starts_with("down: check timed out"));
        assert_eq!(step.topology.servers[0].role, Role::Writer, "role stays as last seen");
    }

    #[test]
    fn semisync_fallback_and_recovery() {
        let mut t = tracker(2);
        let with = |active: bool, clients: u64| {
            let mut w = writer(1);
            w.semisync_master = Some(SemiSyncMaster {
                enabled: true,
                active,
                clients: Some(clients),
                no_tx: Some(3),
                ..Default::default()
            });
            vec![Ok(w), Ok(replica(2, Some(0)))]
        };
        let step = t.apply(with(true, 2), 0);
        assert!(step.actions.is_empty());
        assert_eq!(step.topology.semisync.as_ref().map(|s| s.active), Some(true));
        assert_eq!(step.topology.servers[1].semisync_acking, Some(true));
        assert_eq!(step.topology.servers[0].semisync_acking, None, "not shown for the writer");
        let step = t.apply(with(false, 0), 0);
        assert_eq!(step.actions, vec![Action::SemisyncNotify { server: 0, active: false }]);
        assert!(step.changed);
        assert!(step
            .events
            .iter()
            .any(|e| e.level == Level::Warn && e.message.contains("fell back to asynchronous (clients=0, no_tx=3)")));
        assert_eq!(step.topology.alerts, vec!["semi-sync on s0 is off: replication is asynchronous".to_string()]);
        let step = t.apply(with(false, 0), 0);
        assert!(step.actions.is_empty() && step.events.is_empty(), "logged once");
        let step = t.apply(with(true, 1), 0);
        assert_eq!(step.actions, vec![Action::SemisyncNotify { server: 0, active: true }]);
        assert!(step.topology.alerts.is_empty());
        // Counters changing is a measurement, not a change.
        let step = t.apply(with(true, 2), 0);
        assert!(!step.changed);
        // Disabled by the operator: no fallback alarm.
        let mut w = writer(1);
        w.semisync_master = Some(SemiSyncMaster { enabled: false, active: false, ..Default::default() });
        let step = t.apply(vec![Ok(w), Ok(replica(2, Some(0)))], 0);
        assert!(step.actions.is_empty() && step.topology.alerts.is_empty());
        assert!(step.events.iter().any(|e| e.message.contains("not enabled")));
    }

    #[test]
    fn generation_counts_changes_not_measurements() {
        let mut t = tracker(3);
        let a = t.apply(lab_round(), 1).topology;
        assert_eq!(a.generation, 1);
        let b = t.apply(vec![Ok(writer(1)), Ok(replica(2, Some(3))), Ok(replica(3, Some(0)))], 2).topology;
        assert_eq!(b.generation, 1, "lag within the limit is a measurement");
        assert_eq!(b.servers[1].lag_ms, Some(3000));
        assert_ne!(a, b);
        let c = t.apply(vec![Ok(writer(1)), Ok(replica(2, None)), Ok(replica(3, Some(0)))], 3).topology;
        assert_eq!(c.generation, 2);
        assert_eq!(c.checked_at_ms, Some(3));
    }

    #[test]
    fn errant_transactions_are_flagged() {
        let mut t = tracker(3);
        let mut bad = replica(2, Some(0));
        bad.gtid_binlog_state = Some("0-1-34,99-2-1".into());
        let step = t.apply(vec![Ok(writer(1)), Ok(bad.clone()), Ok(replica(3, Some(0)))], 0);
        let s = &step.topology.servers[1];
        assert!(!s.readable);
        assert_eq!(s.errant.as_deref(), Some("99-2-1"));
        assert_eq!(step.topology.alerts, vec!["errant transactions on s1: 99-2-1".to_string()]);
        assert_eq!(step.events.iter().filter(|e| e.level == Level::Error).count(), 1);
        let step = t.apply(vec![Ok(writer(1)), Ok(bad), Ok(replica(3, Some(0)))], 0);
        assert_eq!(step.events.iter().filter(|e| e.level == Level::Error).count(), 0, "logged once");
        // Off by policy.
        let mut t = tracker(2);
        t.set_policy(Policy { errant_check: false, ..policy() });
        let mut bad = replica(2, Some(0));
        bad.gtid_binlog_state = Some("0-1-34,99-2-1".into());
        assert!(t.apply(vec![Ok(writer(1)), Ok(bad)], 0).topology.servers[1].readable);
        // MySQL: the replica's gtid_executed has another uuid's transactions.
        let mysql = Version::parse("8.0.36");
        let a = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let b = "5ab92a52-3d2d-11e9-9dd8-0242ac110002";
        let w = Observation {
            version: mysql.clone(),
            server_uuid: Some(a.into()),
            gtid_position: Some(format!("{a}:1-10")),
            ..writer(1)
        };
        let r = Observation { version: mysql, gtid_position: Some(format!("{a}:1-11,{b}:1-2")), ..replica(2, Some(0)) };
        let mut t = tracker(2);
        let topo = t.apply(vec![Ok(w), Ok(r)], 0).topology;
        assert_eq!(topo.servers[1].errant.as_deref(), Some(&*format!("{b}:1-2")));
    }

    #[test]
    fn heartbeat_lag() {
        let w = |v: i64, c: i64| HeartbeatWrite { value_us: v, committed_at_us: c };
        let ring: VecDeque<_> = [w(1_000_000, 1_002_000), w(2_000_000, 2_001_000), w(3_000_000, 3_001_500)].into();
        let table = [
            // (seen, read_at, lag ms)
            (Some(3_000_000), 3_500_000, 0),
            (Some(2_000_000), 3_500_000, 498),
            (Some(2_000_000), 3_001_000, 0), // the newest write had not committed yet at the read
            (Some(1_000_000), 3_500_000, 1499),
            (Some(500_000), 3_500_000, 2498),
            (None, 3_500_000, 2498),
            (Some(9_000_000), 3_500_000, 0),
        ];
        for (seen, read_at, want) in table {
            assert_eq!(
                heartbeat_lag_ms(&ring, HeartbeatRead { seen_us: seen, read_at_us: read_at }),
                want,
                "{seen:?} at {read_at}"
            );
        }
        // Through the tracker: the writer's write is remembered, the replica's read measured
        // against it; without any write yet, Seconds_Behind_Master is used.
        let mut t = tracker(2);
        let mut r = replica(2, Some(4));
        r.heartbeat_read = Some(HeartbeatRead { seen_us: Some(10), read_at_us: 100_000 });
        assert_eq!(t.apply(vec![Ok(writer(1)), Ok(r.clone())], 0).topology.servers[1].lag_ms, Some(4000));
        let mut wr = writer(1);
        wr.heartbeat_written = Some(w(50, 60_000));
        assert_eq!(t.apply(vec![Ok(wr), Ok(r)], 0).topology.servers[1].lag_ms, Some(40));
        assert_eq!(t.last_heartbeat_us(), Some(50));
    }

    #[test]
    fn heartbeat_errors_are_logged_once() {
        let mut t = tracker(2);
        let mut r = replica(2, Some(0));
        r.heartbeat_error = Some("heartbeat SELECT failed: ERROR 1146".into());
        let mut n = 0;
        for _ in 0..3 {
            n += t
                .apply(vec![Ok(writer(1)), Ok(r.clone())], 0)
                .events
                .iter()
                .filter(|e| e.message.contains("heartbeat failed"))
                .count();
        }
        assert_eq!(n, 1);
        assert!(t.current().servers[1].readable, "a heartbeat problem falls back to Seconds_Behind_Master");
    }

    /// The master dies: replicas keep their data and their SQL thread, their IO thread
    /// reconnects. They serve (possibly stale) reads while the writer does not answer, and only
    /// then; with `serve_stale_reads` off they take none.
    #[test]
    fn replicas_serve_stale_reads_while_the_writer_is_unreachable() {
        let cut_off = || {
            let mut r = replica(2, None);
            let st = r.replica.as_mut().expect("status");
            st.io_running = false;
            st.io_state = Some("Connecting".into());
            st.last_io_errno = Some(2003);
            r
        };
        let mut t = tracker(2);
        t.apply(vec![Ok(writer(1)), Ok(replica(2, Some(0)))], 0);
        let topo = t.apply(vec![fail(), Ok(cut_off())], 1_000).topology;
        assert!(topo.servers[1].readable, "{:?}", topo.servers[1]);
        assert_eq!(topo.servers[1].reason, "writer unreachable: serving reads that may be stale");
        // The writer answers again but the replica is still cut off: that is a broken replica.
        let topo = t.apply(vec![Ok(writer(1)), Ok(cut_off())], 2_000).topology;
        assert!(!topo.servers[1].readable);
        assert!(topo.servers[1].reason.starts_with("IO thread not running (Connecting)"));
        // A stopped SQL thread is never served, writer or not.
        let mut sql_stopped = cut_off();
        sql_stopped.replica.as_mut().expect("status").sql_running = false;
        assert!(!t.apply(vec![fail(), Ok(sql_stopped)], 3_000).topology.servers[1].readable);
        // Off: no stale reads.
        let mut t = tracker(2);
        t.set_policy(Policy { serve_stale_reads: false, ..policy() });
        t.apply(vec![Ok(writer(1)), Ok(replica(2, Some(0)))], 0);
        assert!(!t.apply(vec![fail(), Ok(cut_off())], 1_000).topology.servers[1].readable);
    }

    #[test]
    fn missing_results_count_as_failures() {
        let mut t = tracker(3);
        let topo = t.apply(vec![Ok(writer(1))], 0).topology;
        assert_eq!(topo.servers[1].health, Health::Down);
        assert_eq!(topo.servers[2].health, Health::Down);
    }

    /// A MySQL receiver retrying a dead source changes its error text every attempt: that is
    /// neither a new generation nor a new log line.
    #[test]
    fn changing_error_texts_do_not_churn() {
        let mut t = tracker(2);
        let round = |attempt: u32| {
            let mut r = replica(2, None);
            let st = r.replica.as_mut().expect("status");
            st.io_running = false;
            st.io_state = Some("Connecting".into());
            st.last_io_errno = Some(2005);
            st.last_io_error = Some(format!("Error connecting to source. This was attempt {attempt}/86400"));
            vec![Ok(writer(1)), Ok(r)]
        };
        let first = t.apply(round(1), 0);
        assert_eq!(first.topology.servers[1].reason, "IO thread not running (Connecting), error 2005");
        let g = first.topology.generation;
        for attempt in 2..5 {
            let step = t.apply(round(attempt), 0);
            assert_eq!(step.topology.generation, g);
            assert!(step.events.is_empty(), "{:?}", step.events);
            assert!(step.topology.servers[1]
                .replication
                .as_ref()
                .and_then(|r| r.last_io_error.clone())
                .is_some_and(|e| e.contains(&format!("attempt {attempt}/"))));
        }
    }
}

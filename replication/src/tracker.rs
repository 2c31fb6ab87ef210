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

use crate::status::{errant_mariadb, errant_mysql, Flavor, GtidSet, MariadbGtidList, ReplicaSemiSync, ReplicaStatus, SemiSyncMaster, Version};
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
}

impl Policy {
    pub fn from_config(c: &rwsplit_config::MonitorConfig) -> Policy {
        Policy {
            rise: c.rise.max(1),
            fall: c.fall.max(1),
            max_lag_ms: c.max_replication_lag_ms,
            hysteresis_percent: c.lag_hysteresis_percent.clamp(1, 100),
            errant_check: c.errant_check,
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
                            events.push(ev(Level::Warn, i, format!("{name}: heartbeat failed, using Seconds_Behind_Master for lag: {e}")));
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
                    } else if s.health == Health::Down && t.last_error.as_deref() != Some(err.as_str()) && t.last_error.is_some() {
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
            (Some(a), Some(b)) if a != b => {
                Some(ev(Level::Warn, b, format!("writer moved from {} to {} ({})", server_names[a], server_names[b], why_gone(a))))
            }
            (Some(a), None) => Some(ev(Level::Warn, a, format!("no writer: {}", why_gone(a)))),
            (None, Some(b)) => Some(ev(Level::Info, b, format!("writer is {}", server_names[b]))),
            _ => None,
        };
        events.extend(writer_event);
        let writer_obs: Option<(usize, Observation)> = next.writer.and_then(|w| up[w].clone().map(|o| (w, o)));

        // 4. Readability, lag, errant transactions, semi-sync acknowledgement per server.
        for i in 0..n {
            let prev_s = &prev.servers[i];
            let obs = up[i].clone();
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
                    replica_readability(&self.policy, o, lag, s.errant.as_deref(), writer_sid, prev_s.readable)
                }
            };
            s.readable = readable;
            s.reason = reason;
            // Errant transactions: an alert for as long as they are there, logged once.
            if let Some(errant) = &s.errant {
                alerts.push(format!("errant transactions on {}: {errant}", s.name));
                if prev_s.errant.as_ref() != Some(errant) {
                    events.push(ev(Level::Error, i, format!("errant transactions on {} (not on the writer): {errant}", s.name)));
                }
            }
            // Read pool membership changes (the writer's readability is the router's call).
            let is_writer = Some(i) == next.writer;
            let was_writer = Some(i) == prev.writer;
            if !is_writer && !was_writer && s.health != Health::Unknown {
                match (prev_s.readable, s.readable) {
                    (false, true) => events.push(ev(Level::Info, i, format!("{} joins the read pool", s.name))),
                    (true, false) => events.push(ev(Level::Warn, i, format!("{} leaves the read pool: {}", s.name, s.reason))),
                    (false, false) if prev_s.reason != s.reason && s.health == Health::Up && prev_s.health == Health::Up => {
                        events.push(ev(Level::Info, i, format!("{} stays out of the read pool: {}", s.name, s.reason)))
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
                    events.push(ev(Level::Warn, *w, format!("semi-sync replication on {name} fell back to asynchronous ({detail})")));
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
            Some(h) if !self.heartbeats.is_empty() && h.seen_us.is_some() => Some(heartbeat_lag_ms(&self.heartbeats, h)),
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
            let e = errant_mariadb(&MariadbGtidList::parse(r), &MariadbGtidList::parse(ws), wid);
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
) -> (bool, String) {
    let Some(r) = &o.replica else {
        return (false, "not replicating (read_only=ON, no replica status)".into());
    };
    let with_error = |what: String, e: Option<String>| match e {
        Some(e) => format!("{what}: {e}"),
        None => what,
    };
    if !r.io_running {
        let state = r.io_state.as_deref().unwrap_or("No");
        return (false, with_error(format!("IO thread not running ({state})"), r.last_io_error.clone()));
    }
    if !r.sql_running {
        return (false, with_error("SQL thread not running".into(), r.last_sql_error.clone()));
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


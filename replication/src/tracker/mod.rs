//! The monitor's decisions, as a pure state machine: raw check results in, the next
//! [`Topology`] plus the log events and actions it implies out. No IO, no clock, no tokio —
//! time comes in as arguments — so every rule below is table-tested in `tests.rs`.
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

mod replica;

use self::replica::{errant, heartbeat_lag_ms, replica_readability};
use crate::slots::ServerSlot;
use crate::status::{ReplicaSemiSync, ReplicaStatus, SemiSyncMaster, Version};
use crate::topology::{Health, Role, ServerState, Topology};
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

/// Why a drained replica takes no reads.
const DRAINED: &str = "drained (servers.drain): no new reads";

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

    /// Applies a reload's server slots ([`crate::slots::plan`]; same order, possibly longer):
    /// new slots start unknown (the next round decides them), removed ones become
    /// [`Health::Removed`] at once (never checked or readable again unless added back, which
    /// starts them afresh), and weights and drain take effect at once: a drained replica
    /// leaves the read pool now, not at the next round. Returns the snapshot to publish.
    pub fn reconfigure(&mut self, slots: &[ServerSlot]) -> Step {
        let mut round = Round::start(&self.current, self.current.checked_at_ms.unwrap_or(0));
        round.next.checked_at_ms = self.current.checked_at_ms;
        let next = &mut round.next;
        for (i, slot) in slots.iter().enumerate() {
            let c = &slot.config;
            if i >= next.servers.len() {
                next.servers.push(ServerState::unknown(c.name.clone(), c.address.clone(), c.weight));
                self.servers.push(Tracked::default());
                round.events.push(ev(Level::Info, i, format!("{} ({}) added by a reload", c.name, c.address)));
            }
            let (s, t) = (&mut next.servers[i], &mut self.servers[i]);
            match (slot.removed, s.health == Health::Removed) {
                (true, false) => {
                    *t = Tracked::default();
                    *s = ServerState::unknown(c.name.clone(), c.address.clone(), c.weight);
                    s.health = Health::Removed;
                    s.reason = "removed from the config".into();
                    round.events.push(ev(Level::Info, i, format!("{} removed by a reload", c.name)));
                }
                (false, true) => {
                    *t = Tracked::default();
                    *s = ServerState::unknown(c.name.clone(), c.address.clone(), c.weight);
                    round.events.push(ev(Level::Info, i, format!("{} ({}) added back by a reload", c.name, c.address)));
                }
                _ => {}
            }
            s.weight = c.weight;
            if s.drained != c.drain {
                let what = if c.drain { "drained: no new reads" } else { "no longer drained" };
                round.events.push(ev(Level::Info, i, format!("{} {what}", c.name)));
            }
            s.drained = c.drain && !slot.removed;
            if s.drained && s.readable && next.writer != Some(i) {
                s.readable = false;
                s.reason = DRAINED.into();
            }
        }
        if next.writer.is_some_and(|w| next.servers.get(w).is_none_or(|s| s.health == Health::Removed)) {
            next.writer = None;
        }
        round.alerts = self.current.alerts.clone();
        self.publish(round)
    }

    /// The newest heartbeat value written, so the next write can stay strictly increasing.
    pub fn last_heartbeat_us(&self) -> Option<i64> {
        self.heartbeats.back().map(|h| h.value_us)
    }

    /// Applies one round: `results[i]` is server `i`'s check (missing entries count as failed
    /// checks), `now_ms` the Unix time the round ended.
    ///
    /// The steps run in this order because each reads what the ones before decided: health
    /// before the writer (only `Up` servers count), the writer before readability (replicas are
    /// judged against it), everything before the generation is decided.
    pub fn apply(&mut self, results: Vec<Result<Observation, Error>>, now_ms: u64) -> Step {
        let mut round = Round::start(&self.current, now_ms);
        self.record_checks(results, now_ms, &mut round);
        self.refresh_facts(&mut round.next);
        self.choose_writer(&mut round);
        round.report_writer_change();
        self.judge_readability(&mut round);
        round.report_server_changes();
        self.track_semisync(&mut round);
        self.publish(round)
    }

    /// Step 1: health, from this round's outcome and the streaks. Each server's check updates
    /// its good/failed streaks, and health moves only when a streak reaches `rise` or `fall`
    /// (the first check after start decides at once), so one timed-out check changes nothing.
    /// A good check's observation becomes the one the server is judged by until the next good
    /// one, and the heartbeat it wrote is remembered to measure the replicas' lag against.
    fn record_checks(&mut self, results: Vec<Result<Observation, Error>>, now_ms: u64, round: &mut Round) {
        let mut results = results.into_iter();
        for i in 0..self.servers.len() {
            let result =
                results.next().unwrap_or_else(|| Err(Error::Unexpected { what: "check", detail: "no result".into() }));
            let s = &mut round.next.servers[i];
            if s.health == Health::Removed {
                continue;
            }
            s.checked_at_ms = Some(now_ms);
            match result {
                Ok(obs) => self.record_good_check(i, obs, s, &mut round.events),
                Err(e) => self.record_failed_check(i, &e, s, &mut round.events),
            }
            let t = &self.servers[i];
            s.last_error = t.last_error.clone();
            s.failed_checks = t.fail_streak;
        }
    }

    /// Step 1 for a good check of server `i`: streaks, heartbeat, the observation that now
    /// stands, and `Up` once `rise` good checks in a row follow a `Down`.
    fn record_good_check(&mut self, i: usize, obs: Observation, s: &mut ServerState, events: &mut Vec<Event>) {
        if let Some(w) = obs.heartbeat_written {
            self.remember_heartbeat(w);
        }
        let t = &mut self.servers[i];
        t.ok_streak = t.ok_streak.saturating_add(1);
        t.fail_streak = 0;
        t.last_error = None;
        // A heartbeat problem is logged when it starts and when it ends, not every round.
        match (&obs.heartbeat_error, t.heartbeat_error_logged) {
            (Some(e), false) => {
                events.push(ev(
                    Level::Warn,
                    i,
                    format!("{}: heartbeat failed, using Seconds_Behind_Master for lag: {e}", s.name),
                ));
                t.heartbeat_error_logged = true;
            }
            (None, true) if obs.heartbeat_read.is_some() || obs.heartbeat_written.is_some() => {
                events.push(ev(Level::Info, i, format!("{}: heartbeat works again", s.name)));
                t.heartbeat_error_logged = false;
            }
            _ => {}
        }
        t.last = Some(obs);
        let before = s.health;
        s.health = match before {
            Health::Unknown | Health::Up => Health::Up,
            Health::Down if t.ok_streak >= self.policy.rise => Health::Up,
            Health::Down => Health::Down,
            Health::Removed => Health::Removed,
        };
        if before != s.health {
            let msg = match before {
                Health::Down => format!("{} is up after {} good checks", s.name, t.ok_streak),
                _ => format!("{} is up", s.name),
            };
            events.push(ev(Level::Info, i, msg));
        }
    }

    /// Step 1 for a failed check of server `i`: streaks, the error, and `Down` once `fall`
    /// failed checks in a row follow an `Up`. The first failure of an `Up` server and a new
    /// error on a `Down` one are logged too, so an operator sees trouble before it counts.
    fn record_failed_check(&mut self, i: usize, e: &Error, s: &mut ServerState, events: &mut Vec<Event>) {
        let t = &mut self.servers[i];
        t.fail_streak = t.fail_streak.saturating_add(1);
        t.ok_streak = 0;
        let err = e.to_string();
        let before = s.health;
        s.health = match before {
            Health::Unknown | Health::Down => Health::Down,
            Health::Up if t.fail_streak >= self.policy.fall => Health::Down,
            Health::Up => Health::Up,
            Health::Removed => Health::Removed,
        };
        if before != s.health {
            let msg = match before {
                Health::Up => format!("{} is down after {} failed checks: {err}", s.name, t.fail_streak),
                _ => format!("{} is down: {err}", s.name),
            };
            events.push(ev(Level::Warn, i, msg));
        } else if s.health == Health::Up && t.fail_streak == 1 {
            events.push(ev(
                Level::Info,
                i,
                format!("{}: check failed (1 of {} before it is taken out): {err}", s.name, self.policy.fall),
            ));
        } else if s.health == Health::Down && t.last_error.as_deref() != Some(err.as_str()) && t.last_error.is_some() {
            events.push(ev(Level::Info, i, format!("{} is still down, now: {err}", s.name)));
        }
        t.last_error = Some(err);
    }

    /// Keeps a heartbeat the writer committed, to measure replicas' lag against. Values stay
    /// strictly increasing whatever the wall clock did, and the ring is bounded.
    fn remember_heartbeat(&mut self, w: HeartbeatWrite) {
        if self.heartbeats.back().is_none_or(|b| w.value_us > b.value_us) {
            self.heartbeats.push_back(w);
        }
        while self.heartbeats.len() > HEARTBEAT_RING {
            self.heartbeats.pop_front();
        }
    }

    /// Step 2: per-server facts (version, server id, `read_only` and so the role, replica
    /// status, GTID position) from the last good observation. A server that is down keeps
    /// them as last seen, for the status page; the steps after this one count only `Up`
    /// servers' observations (see [`Tracker::observation_if_up`]).
    fn refresh_facts(&self, next: &mut Topology) {
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
    }

    /// Step 3: the writer, the one `Up` server with `read_only=OFF`. Several writable servers
    /// are a split brain: the previous writer is kept if it is one of them (else there is
    /// none), because moving writes between two servers that both take them would make the
    /// divergence worse; the split brain is an error event and an alert every round until
    /// it is resolved.
    fn choose_writer(&self, round: &mut Round) {
        let writable: Vec<usize> = (0..self.servers.len())
            .filter(|&i| self.observation_if_up(&round.next, i).is_some_and(|o| !o.read_only))
            .collect();
        let next = &mut round.next;
        next.split_brain = writable.len() > 1;
        next.writer = match writable.as_slice() {
            [] => None,
            [only] => Some(*only),
            _ => {
                let keep = round.prev.writer.filter(|w| writable.contains(w));
                let names = writable.iter().map(|&i| next.servers[i].name.as_str()).collect::<Vec<_>>().join(", ");
                let split = format!("split brain: {names} are all writable (read_only=OFF)");
                let kept = match keep {
                    Some(w) => format!("keeping {} as the writer and refusing to move", next.servers[w].name),
                    None => "no writer is chosen until it is resolved".to_string(),
                };
                round.events.push(Event { level: Level::Error, server: None, message: format!("{split}; {kept}") });
                round.alerts.push(split);
                keep
            }
        };
    }

    /// Step 4: each server's readability and why not, with the lag, semi-sync acknowledgement
    /// and errant transactions shown for replicas. Only `Up` servers can be readable: the
    /// writer always is (whether it also takes reads is the router's call), another writable
    /// server never is, and a replica must pass [`replica_readability`] against this round's
    /// writer.
    fn judge_readability(&self, round: &mut Round) {
        let writer = self.writer_observation(&round.next).map(|(_, o)| o);
        // The writer did not answer this round (or none is known): a replica whose IO thread
        // is only failing to reach it may serve stale reads.
        let writer_unreachable = match round.next.writer {
            Some(w) => self.servers.get(w).is_none_or(|t| t.fail_streak > 0),
            None => true,
        };
        for i in 0..round.next.servers.len() {
            let obs = self.observation_if_up(&round.next, i);
            let was_readable = round.prev.servers[i].readable;
            let s = &mut round.next.servers[i];
            s.lag_ms = None;
            s.semisync_acking = None;
            s.errant = None;
            let (readable, reason) = match (obs, s.health) {
                (_, Health::Removed) => (false, "removed from the config".to_string()),
                (_, Health::Unknown) => (false, "not checked yet".to_string()),
                (None, _) => (false, format!("down: {}", self.servers[i].last_error.as_deref().unwrap_or("no answer"))),
                (Some(o), Health::Up) if !o.read_only => {
                    if Some(i) == round.next.writer {
                        (true, String::new())
                    } else {
                        (false, "writable (read_only=OFF) but not the writer: split brain".to_string())
                    }
                }
                (Some(o), _) => {
                    let judged = self.judge_replica(o, s, writer, was_readable, writer_unreachable);
                    if s.drained && judged.0 {
                        (false, DRAINED.to_string())
                    } else {
                        judged
                    }
                }
            };
            s.readable = readable;
            s.reason = reason;
        }
    }

    /// Step 4 for an `Up` server with `read_only=ON`: fills in its lag, semi-sync
    /// acknowledgement and errant transactions (against `writer`, when the policy checks
    /// them), then applies [`replica_readability`].
    fn judge_replica(
        &self,
        o: &Observation,
        s: &mut ServerState,
        writer: Option<&Observation>,
        was_readable: bool,
        writer_unreachable: bool,
    ) -> (bool, String) {
        s.semisync_acking = o.semisync_replica.map(|r| r.acking);
        let lag = o.replica.as_ref().and_then(|r| self.lag_ms(o, r));
        s.lag_ms = lag;
        if self.policy.errant_check {
            if let Some(w) = writer {
                s.errant = errant(o, w);
            }
        }
        let writer_sid = writer.and_then(|w| w.server_id);
        replica_readability(&self.policy, o, lag, s.errant.as_deref(), writer_sid, was_readable, writer_unreachable)
    }

    /// Step 5: the writer's semi-sync state. A change from active to inactive is a fallback to
    /// asynchronous replication (warning, notify action, and an alert while it lasts), back is
    /// a recovery (info, notify action). Without a known writer the last state is kept, so a
    /// writer that blinks does not re-announce a fallback that was already reported.
    fn track_semisync(&mut self, round: &mut Round) {
        let writer = self.writer_observation(&round.next);
        round.next.semisync = writer.and_then(|(_, o)| o.semisync_master.clone());
        let Some((w, o)) = writer else {
            return;
        };
        let name = &round.next.servers[w].name;
        let now_active = o.semisync_master.as_ref().filter(|m| m.enabled).map(|m| m.active);
        match (self.semisync_active, now_active) {
            (Some(true), Some(false)) | (None, Some(false)) => {
                let m = o.semisync_master.as_ref();
                let detail = format!(
                    "clients={}, no_tx={}",
                    m.and_then(|m| m.clients).map_or("?".into(), |c| c.to_string()),
                    m.and_then(|m| m.no_tx).map_or("?".into(), |c| c.to_string())
                );
                round.events.push(ev(
                    Level::Warn,
                    w,
                    format!("semi-sync replication on {name} fell back to asynchronous ({detail})"),
                ));
                round.actions.push(Action::SemisyncNotify { server: w, active: false });
            }
            (Some(false), Some(true)) => {
                round.events.push(ev(Level::Info, w, format!("semi-sync replication on {name} is back on")));
                round.actions.push(Action::SemisyncNotify { server: w, active: true });
            }
            (Some(_), None) => round.events.push(ev(Level::Info, w, format!("semi-sync is not enabled on {name}"))),
            _ => {}
        }
        self.semisync_active = now_active;
        if now_active == Some(false) {
            round.alerts.push(format!("semi-sync on {name} is off: replication is asynchronous"));
        }
    }

    /// Last step: the round's alerts replace the previous ones, and the generation is bumped
    /// only when something the router or an operator acts on changed (see
    /// [`Topology::same_state`]), so consumers can key their work on it. The snapshot becomes
    /// the tracker's current one.
    fn publish(&mut self, round: Round) -> Step {
        let Round { prev, mut next, events, actions, alerts } = round;
        next.alerts = alerts;
        let changed = !next.same_state(&prev);
        if changed {
            next.generation = prev.generation.wrapping_add(1);
        }
        self.current = next.clone();
        Step { topology: next, changed, events, actions }
    }

    /// Server `i`'s last good observation if it is `Up` in `next`: only these count for the
    /// writer and the read pool (a down server's observation is only shown).
    fn observation_if_up(&self, next: &Topology, i: usize) -> Option<&Observation> {
        self.servers[i].last.as_ref().filter(|_| next.servers[i].health == Health::Up)
    }

    /// The writer chosen in `next` and its observation.
    fn writer_observation(&self, next: &Topology) -> Option<(usize, &Observation)> {
        next.writer.and_then(|w| self.observation_if_up(next, w).map(|o| (w, o)))
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

/// One round in progress (see [`Tracker::apply`]): the snapshot being built from the previous
/// one, and what the steps have to say about it so far.
struct Round {
    /// The snapshot the round started from: changes are judged against it.
    prev: Topology,
    /// The snapshot being built; starts as a copy of `prev`.
    next: Topology,
    events: Vec<Event>,
    actions: Vec<Action>,
    /// Conditions that stand this round (they replace `next.alerts` at the end).
    alerts: Vec<String>,
}

impl Round {
    fn start(current: &Topology, now_ms: u64) -> Round {
        let prev = current.clone();
        let mut next = prev.clone();
        next.checked_at_ms = Some(now_ms);
        Round { prev, next, events: Vec::new(), actions: Vec::new(), alerts: Vec::new() }
    }

    /// After step 3: one log line when the writer changed, saying why the old one is gone.
    fn report_writer_change(&mut self) {
        let (prev, next) = (&self.prev, &self.next);
        let name = |i: usize| next.servers[i].name.as_str();
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
        let event = match (prev.writer, next.writer) {
            (Some(a), Some(b)) if a != b => {
                Some(ev(Level::Warn, b, format!("writer moved from {} to {} ({})", name(a), name(b), why_gone(a))))
            }
            (Some(a), None) => Some(ev(Level::Warn, a, format!("no writer: {}", why_gone(a)))),
            (None, Some(b)) => Some(ev(Level::Info, b, format!("writer is {}", name(b)))),
            _ => None,
        };
        self.events.extend(event);
    }

    /// After step 4: what changed per server, against the previous snapshot. Errant
    /// transactions are an alert for as long as they are there and an error logged once; a
    /// replica joining or leaving the read pool (or staying out for a new reason) and a
    /// `read_only` flip are logged. The writer's readability is the router's call, so the
    /// writer (old or new) gets no read pool lines.
    fn report_server_changes(&mut self) {
        for (i, (prev_s, s)) in self.prev.servers.iter().zip(&self.next.servers).enumerate() {
            if let Some(errant) = &s.errant {
                self.alerts.push(format!("errant transactions on {}: {errant}", s.name));
                if prev_s.errant.as_ref() != Some(errant) {
                    self.events.push(ev(
                        Level::Error,
                        i,
                        format!("errant transactions on {} (not on the writer): {errant}", s.name),
                    ));
                }
            }
            let is_writer = Some(i) == self.next.writer;
            let was_writer = Some(i) == self.prev.writer;
            if !is_writer && !was_writer && s.health != Health::Unknown {
                let detail = match s.replication.as_ref().and_then(ReplicaStatus::last_error) {
                    Some(e) if !s.readable => format!(" ({e})"),
                    _ => String::new(),
                };
                match (prev_s.readable, s.readable) {
                    (false, true) => self.events.push(ev(Level::Info, i, format!("{} joins the read pool", s.name))),
                    (true, false) => self.events.push(ev(
                        Level::Warn,
                        i,
                        format!("{} leaves the read pool: {}{detail}", s.name, s.reason),
                    )),
                    (false, false)
                        if prev_s.reason != s.reason && s.health == Health::Up && prev_s.health == Health::Up =>
                    {
                        self.events.push(ev(
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
                self.events.push(ev(Level::Info, i, format!("{} is now {what}", s.name)));
            }
        }
    }
}

fn ev(level: Level, server: usize, message: String) -> Event {
    Event { level, server: Some(server), message }
}

#[cfg(test)]
mod tests;

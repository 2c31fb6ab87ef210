//! The routing decision, pure: given where the classifier says a statement may run and the
//! current topology snapshot, which server takes it. A write never goes anywhere but the
//! writer. Reads go to the readable replicas; with none readable they fall back to the writer
//! when the policy allows. How a session's reads spread:
//! - with affinity ([`Policy::read_affinity`], `routing.read_balance = "session"`), a session keeps
//!   the replica it read from last while that replica is a candidate and not overloaded; a new
//!   choice takes the candidate with the fewest reading sessions per unit of weight, so sessions
//!   spread by weight and each server sees the same connections again (hot server threads).
//!   Overloaded: another candidate would still have fewer sessions per unit of weight with this
//!   one on it, which happens when a replica comes back after sessions left it (or its weight
//!   rose); sessions then move back one read at a time, and never to and fro;
//! - without, each read takes the next candidate in weighted round-robin.

use crate::classifier::Route;
use rwsplit_replication::Topology;
use smallvec::SmallVec;

/// Where a statement goes, and why (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The writer, because the statement must run there.
    Writer(usize),
    /// A replica chosen for a read.
    Replica(usize),
    /// The writer, for a read, because no replica is usable.
    FallbackWriter(usize),
}

impl Target {
    pub fn server(&self) -> usize {
        match *self {
            Target::Writer(i) | Target::Replica(i) | Target::FallbackWriter(i) => i,
        }
    }

    /// Metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Target::Writer(_) => "writer",
            Target::Replica(_) => "replica",
            Target::FallbackWriter(_) => "fallback_writer",
        }
    }
}

/// Why no server could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTarget {
    /// No writer is known (all down, or none has read_only=OFF).
    NoWriter,
    /// No replica is readable and fallback to the writer is off.
    NoReplica,
}

/// Routing policy knobs from `[routing]`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub fallback_to_master: bool,
    pub master_accepts_reads: bool,
    /// While semi-sync is on, read only from the replicas acknowledging it when any is readable.
    pub prefer_semisync: bool,
    /// A session's reads stay on one replica (`routing.read_balance = "session"`): keep the
    /// sticky server, else choose the least loaded; otherwise round-robin.
    pub read_affinity: bool,
}

/// What a session brings to the choice of a replica for a read.
#[derive(Clone, Copy, Default)]
pub struct ReadChoice<'a> {
    /// Advances the round-robin (and breaks ties): a counter that increases per read.
    pub tick: u64,
    /// Session affinity: the server the session's reads used last, kept while it is a
    /// candidate. `None` without affinity, or before the first read.
    pub sticky: Option<usize>,
    /// With affinity: how many sessions read from a server (by index), so that a new choice
    /// goes where there are fewest per unit of weight.
    pub load: Option<&'a dyn Fn(usize) -> u32>,
    /// Servers not to read from now (one that just failed, one the pool found unreachable),
    /// whatever the topology says.
    pub avoid: Option<&'a dyn Fn(usize) -> bool>,
}

/// Chooses the server for `route` (`Route::Previous` must be resolved by the caller).
pub fn choose(route: Route, topology: &Topology, policy: Policy, read: ReadChoice<'_>) -> Result<Target, NoTarget> {
    let writer = topology.writer().filter(|(_, s)| s.health != rwsplit_replication::Health::Down).map(|(i, _)| i);
    match route {
        Route::Master | Route::Previous => writer.map(Target::Writer).ok_or(NoTarget::NoWriter),
        Route::Replica => {
            let semisync_only = policy.prefer_semisync
                && topology.semisync.as_ref().is_some_and(|s| s.active)
                && topology.readable_replicas().any(|(_, s)| s.semisync_acking == Some(true));
            if let Some(i) = pick_read(
                topology,
                // A drained writer (servers.drain) keeps its writes but takes no reads.
                writer.filter(|&w| policy.master_accepts_reads && topology.servers.get(w).is_some_and(|s| !s.drained)),
                semisync_only,
                policy.read_affinity,
                read,
            ) {
                return Ok(if Some(i) == writer { Target::Writer(i) } else { Target::Replica(i) });
            }
            match writer {
                Some(w) if policy.fallback_to_master => Ok(Target::FallbackWriter(w)),
                _ => Err(NoTarget::NoReplica),
            }
        }
    }
}

/// A server for a read among the readable replicas (only those acknowledging semi-sync when
/// `semisync_only`), plus the writer when it takes reads. Servers with weight 0 are used only
/// when no weighted server is readable.
fn pick_read(
    topology: &Topology,
    reading_writer: Option<usize>,
    semisync_only: bool,
    affinity: bool,
    read: ReadChoice<'_>,
) -> Option<usize> {
    // The candidates, gathered once with their loads: `avoid` and `load` read shared state
    // (atomics behind the pool's and the runtime's snapshots), so each server is asked once
    // per read, not once per pass. Inline for up to 8 servers: no allocation on a read.
    let mut candidates: SmallVec<[Candidate; 8]> = topology
        .readable_replicas()
        .filter(|(_, s)| !semisync_only || s.semisync_acking == Some(true))
        .map(|(i, s)| (i, s.weight))
        .chain(reading_writer.and_then(|w| topology.servers.get(w).map(|s| (w, s.weight))))
        .filter(|&(i, _)| !read.avoid.is_some_and(|f| f(i)))
        .map(|(index, weight)| Candidate { index, weight, load: read.load_of(index) })
        .collect();
    // Zero-weight servers only when no weighted one can read.
    if candidates.iter().any(|c| c.weight > 0) {
        candidates.retain(|c| c.weight > 0);
    }
    if affinity {
        let best = least_loaded(&candidates, read.tick);
        let kept = read.sticky.and_then(|s| candidates.iter().find(|c| c.index == s));
        return match (kept, best) {
            (Some(kept), Some(better)) if overloaded(kept, better) => Some(better.index),
            (Some(kept), _) => Some(kept.index),
            (None, best) => best.map(|c| c.index),
        };
    }
    let tick = read.tick;
    let total: u64 = candidates.iter().map(|c| u64::from(c.weight)).sum();
    if total == 0 {
        // Only zero-weight servers: take turns among them.
        let n = candidates.len() as u64;
        if n == 0 {
            return None;
        }
        return candidates.get((tick % n) as usize).map(|c| c.index);
    }
    let mut slot = tick % total;
    for c in &candidates {
        let w = u64::from(c.weight);
        if slot < w {
            return Some(c.index);
        }
        slot -= w;
    }
    None
}

/// A server that may take a read: its index, weight and reading sessions.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    index: usize,
    weight: u32,
    load: u64,
}

impl ReadChoice<'_> {
    /// Sessions reading from server `i` (0 when no counts are given).
    fn load_of(&self, i: usize) -> u64 {
        u64::from(self.load.map_or(0, |f| f(i)))
    }
}

/// A server's weight when loads are compared per unit of it (a zero weight counts as 1).
fn load_weight(w: u32) -> u64 {
    u64::from(w.max(1))
}

/// The candidate with the fewest reading sessions per unit of weight (`load / weight`,
/// compared by cross-multiplying); among equals, the one the tick points at, so that sessions
/// starting together still spread.
fn least_loaded(candidates: &[Candidate], tick: u64) -> Option<&Candidate> {
    let best =
        candidates.iter().min_by(|a, b| (a.load * load_weight(b.weight)).cmp(&(b.load * load_weight(a.weight))))?;
    let equal = |c: &&Candidate| c.load * load_weight(best.weight) == best.load * load_weight(c.weight);
    // At least `best` itself is equal.
    let n = candidates.iter().filter(equal).count().max(1) as u64;
    candidates.iter().filter(equal).nth((tick % n) as usize).or(Some(best))
}

/// Whether a session reading from `kept` (counted in its load) should move to `other`: with it
/// moved, `other` would still carry fewer sessions per unit of weight than `kept` does now
/// (`load(kept) / w(kept) > (load(other) + 1) / w(other)`, cross-multiplied). After a move the
/// reverse never holds, so sessions do not oscillate.
fn overloaded(kept: &Candidate, other: &Candidate) -> bool {
    kept.index != other.index && kept.load * load_weight(other.weight) > (other.load + 1) * load_weight(kept.weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rwsplit_replication::{Health, Role};

    fn topo(servers: &[(Role, Health, bool, u32)]) -> Topology {
        let mut t = Topology::unknown(
            servers.iter().enumerate().map(|(i, s)| (format!("s{i}"), format!("127.0.0.1:{}", 3307 + i), s.3)),
        );
        for (i, (role, health, readable, _)) in servers.iter().enumerate() {
            t.servers[i].role = *role;
            t.servers[i].health = *health;
            t.servers[i].readable = *readable;
            if *role == Role::Writer {
                t.writer = Some(i);
            }
        }
        t
    }

    /// Round-robin, no affinity.
    fn rr(tick: u64) -> ReadChoice<'static> {
        ReadChoice { tick, ..ReadChoice::default() }
    }

    const ON: Policy =
        Policy { fallback_to_master: true, master_accepts_reads: false, prefer_semisync: false, read_affinity: false };
    const OFF: Policy = Policy { fallback_to_master: false, ..ON };
    /// `routing.read_balance = "session"`.
    const AFFINE: Policy = Policy { read_affinity: true, ..ON };
    const AFFINE_OFF: Policy = Policy { read_affinity: true, ..OFF };

    fn lab() -> Topology {
        topo(&[
            (Role::Writer, Health::Up, false, 1),
            (Role::Replica, Health::Up, true, 1),
            (Role::Replica, Health::Up, true, 1),
        ])
    }

    #[test]
    fn writes_go_to_the_writer_only() {
        let t = lab();
        for tick in 0..10 {
            assert_eq!(choose(Route::Master, &t, ON, rr(tick)), Ok(Target::Writer(0)));
        }
        let mut none = lab();
        none.writer = None;
        assert_eq!(choose(Route::Master, &none, ON, rr(0)), Err(NoTarget::NoWriter));
        // A writer marked down is not a target, even if it is still the last known writer.
        let mut down = lab();
        down.servers[0].health = Health::Down;
        assert_eq!(choose(Route::Master, &down, ON, rr(0)), Err(NoTarget::NoWriter));
    }

    #[test]
    fn reads_alternate_between_replicas() {
        let t = lab();
        let picks: Vec<_> = (0..6).map(|k| choose(Route::Replica, &t, ON, rr(k)).unwrap()).collect();
        assert_eq!(picks, [1, 2, 1, 2, 1, 2].map(Target::Replica));
    }

    #[test]
    fn weights_are_honoured() {
        let t = topo(&[
            (Role::Writer, Health::Up, false, 1),
            (Role::Replica, Health::Up, true, 3),
            (Role::Replica, Health::Up, true, 1),
        ]);
        let picks: Vec<usize> = (0..400).map(|k| choose(Route::Replica, &t, ON, rr(k)).unwrap().server()).collect();
        assert_eq!(picks.iter().filter(|&&s| s == 1).count(), 300);
        assert_eq!(picks.iter().filter(|&&s| s == 2).count(), 100);
    }

    #[test]
    fn unreadable_replica_is_skipped() {
        let mut t = lab();
        t.servers[2].readable = false;
        assert!((0..5).all(|k| choose(Route::Replica, &t, ON, rr(k)) == Ok(Target::Replica(1))));
    }

    #[test]
    fn fallback_to_writer_or_error() {
        let mut t = lab();
        t.servers[1].readable = false;
        t.servers[2].readable = false;
        assert_eq!(choose(Route::Replica, &t, ON, rr(0)), Ok(Target::FallbackWriter(0)));
        assert_eq!(choose(Route::Replica, &t, OFF, rr(0)), Err(NoTarget::NoReplica));
    }

    #[test]
    fn writer_takes_reads_when_asked() {
        let t = lab();
        let p = Policy { master_accepts_reads: true, ..ON };
        let picks: Vec<usize> = (0..3).map(|k| choose(Route::Replica, &t, p, rr(k)).unwrap().server()).collect();
        assert_eq!(picks, vec![1, 2, 0]);
        assert_eq!(choose(Route::Replica, &t, p, rr(2)), Ok(Target::Writer(0)));
    }

    fn semisync(t: &mut Topology, active: bool, acking: [Option<bool>; 2]) {
        t.semisync = Some(rwsplit_replication::SemiSyncMaster { enabled: true, active, ..Default::default() });
        t.servers[1].semisync_acking = acking[0];
        t.servers[2].semisync_acking = acking[1];
    }

    #[test]
    fn semisync_replicas_preferred_while_semisync_is_on() {
        let prefer = Policy { prefer_semisync: true, ..ON };
        let mut t = lab();
        semisync(&mut t, true, [Some(false), Some(true)]);
        assert!((0..6).all(|k| choose(Route::Replica, &t, prefer, rr(k)) == Ok(Target::Replica(2))));
        // Without the option both replicas read.
        let picks: Vec<_> = (0..2).map(|k| choose(Route::Replica, &t, ON, rr(k)).unwrap().server()).collect();
        assert_eq!(picks, vec![1, 2]);
        // Semi-sync off (async fallback): the pool is whole again.
        semisync(&mut t, false, [Some(false), Some(true)]);
        let picks: Vec<_> = (0..2).map(|k| choose(Route::Replica, &t, prefer, rr(k)).unwrap().server()).collect();
        assert_eq!(picks, vec![1, 2]);
        // The acknowledging replica unreadable: the other one rather than the writer.
        semisync(&mut t, true, [Some(false), Some(true)]);
        t.servers[2].readable = false;
        assert_eq!(choose(Route::Replica, &t, prefer, rr(0)), Ok(Target::Replica(1)));
    }

    #[test]
    fn zero_weight_only_when_alone() {
        let t = topo(&[
            (Role::Writer, Health::Up, false, 1),
            (Role::Replica, Health::Up, true, 0),
            (Role::Replica, Health::Up, true, 1),
        ]);
        assert!((0..5).all(|k| choose(Route::Replica, &t, ON, rr(k)) == Ok(Target::Replica(2))));
        let t = topo(&[
            (Role::Writer, Health::Up, false, 1),
            (Role::Replica, Health::Up, true, 0),
            (Role::Replica, Health::Up, false, 1),
        ]);
        assert_eq!(choose(Route::Replica, &t, ON, rr(7)), Ok(Target::Replica(1)));
    }

    #[test]
    fn affinity_keeps_a_session_on_its_replica_while_it_can_read() {
        let t = lab();
        let sticky = |s, tick| ReadChoice { tick, sticky: s, load: None, avoid: None };
        for tick in 0..10 {
            assert_eq!(choose(Route::Replica, &t, AFFINE, sticky(Some(2), tick)), Ok(Target::Replica(2)));
            assert_eq!(choose(Route::Replica, &t, AFFINE, sticky(Some(1), tick)), Ok(Target::Replica(1)));
        }
        // Its replica leaves the read pool: it moves (and comes back only when the other
        // replica is overloaded, below).
        let mut gone = lab();
        gone.servers[2].readable = false;
        assert_eq!(choose(Route::Replica, &gone, AFFINE, sticky(Some(2), 5)), Ok(Target::Replica(1)));
        // The writer was never a replica: a stale sticky index on it is not kept.
        assert_ne!(choose(Route::Replica, &t, AFFINE, sticky(Some(0), 0)).unwrap().server(), 0);
    }

    #[test]
    fn affinity_moves_a_session_back_when_its_replica_is_overloaded() {
        let t = lab();
        let from = |t: &Topology, sticky: usize, load: &[u32]| {
            let f = |i: usize| load[i];
            choose(Route::Replica, t, AFFINE, ReadChoice { tick: 0, sticky: Some(sticky), load: Some(&f), avoid: None })
                .unwrap()
                .server()
        };
        // replica 2 came back after all four sessions moved to replica 1: they move back one
        // read at a time until 2 and 2, then stay.
        assert_eq!(from(&t, 1, &[0, 4, 0]), 2);
        assert_eq!(from(&t, 1, &[0, 3, 1]), 2);
        assert_eq!(from(&t, 1, &[0, 2, 2]), 1);
        // One session more is not a reason to move (it would only swap the imbalance).
        assert_eq!(from(&t, 1, &[0, 2, 1]), 1);
        assert_eq!(from(&t, 2, &[0, 1, 2]), 2);
        // By weight: 3 against 1 keeps three sessions on the heavier replica for one on the
        // lighter.
        let mut w = lab();
        w.servers[1].weight = 3;
        assert_eq!(from(&w, 1, &[0, 3, 1]), 1);
        assert_eq!(from(&w, 1, &[0, 4, 0]), 2);
        assert_eq!(from(&w, 1, &[0, 6, 2]), 1);
        assert_eq!(from(&w, 2, &[0, 0, 2]), 1);
        assert_eq!(from(&w, 2, &[0, 2, 1]), 2);
        // Simulated: sessions starting all on one replica end balanced, and no further move
        // happens (every session reads again many times).
        let mut load = [0u32, 6, 0];
        let mut on: Vec<usize> = vec![1; 6];
        for _ in 0..10 {
            for s in on.iter_mut() {
                let to = from(&t, *s, &load);
                if to != *s {
                    load[*s] -= 1;
                    load[to] += 1;
                    *s = to;
                }
            }
        }
        assert_eq!(load, [0, 3, 3]);
    }

    #[test]
    fn affinity_chooses_the_least_loaded_per_weight() {
        let t = lab();
        let choice = |load: &[u32], tick| {
            let f = |i: usize| load[i];
            choose(Route::Replica, &t, AFFINE, ReadChoice { tick, sticky: None, load: Some(&f), avoid: None })
                .unwrap()
                .server()
        };
        assert_eq!(choice(&[0, 3, 1], 0), 2);
        assert_eq!(choice(&[0, 1, 3], 7), 1);
        // Equal load: the tick spreads new sessions.
        let picks: Vec<usize> = (0..4).map(|k| choice(&[0, 2, 2], k)).collect();
        assert!(picks.contains(&1) && picks.contains(&2), "{picks:?}");
        // Weight 3 against 1: three sessions on the first for one on the second.
        let mut w = lab();
        w.servers[1].weight = 3;
        let by_weight = |load: &[u32]| {
            let f = |i: usize| load[i];
            choose(Route::Replica, &w, AFFINE, ReadChoice { tick: 0, sticky: None, load: Some(&f), avoid: None })
                .unwrap()
                .server()
        };
        assert_eq!(by_weight(&[0, 2, 1]), 1);
        assert_eq!(by_weight(&[0, 3, 1]), 1, "3/3 = 1/1: a tie, the tick picks the first");
        assert_eq!(by_weight(&[0, 4, 1]), 2);
        // Simulated arrivals end up spread 3:1.
        let mut load = [0u32; 3];
        for k in 0..40 {
            let snapshot = load;
            let f = |i: usize| snapshot[i];
            let s =
                choose(Route::Replica, &w, AFFINE, ReadChoice { tick: k, sticky: None, load: Some(&f), avoid: None })
                    .unwrap()
                    .server();
            load[s] += 1;
        }
        assert_eq!(load, [0, 30, 10]);
    }

    #[test]
    fn avoided_servers_take_no_reads() {
        let t = lab();
        let not_2 = |i: usize| i == 2;
        let both = |i: usize| i == 1 || i == 2;
        for (on, off) in [(ON, OFF), (AFFINE, AFFINE_OFF)] {
            for tick in 0..6 {
                let read = ReadChoice { tick, sticky: Some(2), load: None, avoid: Some(&not_2) };
                assert_eq!(choose(Route::Replica, &t, on, read), Ok(Target::Replica(1)));
                let read = ReadChoice { tick, sticky: Some(2), load: None, avoid: Some(&both) };
                assert_eq!(choose(Route::Replica, &t, on, read), Ok(Target::FallbackWriter(0)));
                assert_eq!(choose(Route::Replica, &t, off, read), Err(NoTarget::NoReplica));
            }
        }
    }
}

//! The routing decision, pure: given where the classifier says a statement may run and the
//! current topology snapshot, which server takes it. Reads are spread by weighted round-robin
//! over the readable replicas; with none readable they fall back to the writer when the policy
//! allows. A write never goes anywhere but the writer.

use crate::classifier::Route;
use rwsplit_replication::Topology;

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
}

/// Chooses the server for `route` (`Route::Previous` must be resolved by the caller).
/// `tick` advances the round-robin: pass a counter that increases per read.
pub fn choose(route: Route, topology: &Topology, policy: Policy, tick: u64) -> Result<Target, NoTarget> {
    let writer = topology.writer().filter(|(_, s)| s.health != rwsplit_replication::Health::Down).map(|(i, _)| i);
    match route {
        Route::Master | Route::Previous => writer.map(Target::Writer).ok_or(NoTarget::NoWriter),
        Route::Replica => {
            let semisync_only = policy.prefer_semisync
                && topology.semisync.as_ref().is_some_and(|s| s.active)
                && topology.readable_replicas().any(|(_, s)| s.semisync_acking == Some(true));
            if let Some(i) =
                pick_weighted(topology, writer.filter(|_| policy.master_accepts_reads), semisync_only, tick)
            {
                return Ok(if Some(i) == writer { Target::Writer(i) } else { Target::Replica(i) });
            }
            match writer {
                Some(w) if policy.fallback_to_master => Ok(Target::FallbackWriter(w)),
                _ => Err(NoTarget::NoReplica),
            }
        }
    }
}

/// Weighted round-robin over the readable replicas (only those acknowledging semi-sync when
/// `semisync_only`), plus the writer when it takes reads. Servers with weight 0 are used only
/// when no weighted server is readable.
fn pick_weighted(topology: &Topology, reading_writer: Option<usize>, semisync_only: bool, tick: u64) -> Option<usize> {
    let candidates = || {
        topology
            .readable_replicas()
            .filter(move |(_, s)| !semisync_only || s.semisync_acking == Some(true))
            .map(|(i, s)| (i, s.weight))
            .chain(reading_writer.and_then(|w| topology.servers.get(w).map(|s| (w, s.weight))))
    };
    let total: u64 = candidates().map(|(_, w)| u64::from(w)).sum();
    if total == 0 {
        // Only zero-weight servers: take turns among them.
        let n = candidates().count() as u64;
        if n == 0 {
            return None;
        }
        return candidates().nth((tick % n) as usize).map(|(i, _)| i);
    }
    let mut slot = tick % total;
    for (i, w) in candidates() {
        let w = u64::from(w);
        if slot < w {
            return Some(i);
        }
        slot -= w;
    }
    None
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

    const ON: Policy = Policy { fallback_to_master: true, master_accepts_reads: false, prefer_semisync: false };
    const OFF: Policy = Policy { fallback_to_master: false, master_accepts_reads: false, prefer_semisync: false };

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
            assert_eq!(choose(Route::Master, &t, ON, tick), Ok(Target::Writer(0)));
        }
        let mut none = lab();
        none.writer = None;
        assert_eq!(choose(Route::Master, &none, ON, 0), Err(NoTarget::NoWriter));
        // A writer marked down is not a target, even if it is still the last known writer.
        let mut down = lab();
        down.servers[0].health = Health::Down;
        assert_eq!(choose(Route::Master, &down, ON, 0), Err(NoTarget::NoWriter));
    }

    #[test]
    fn reads_alternate_between_replicas() {
        let t = lab();
        let picks: Vec<_> = (0..6).map(|k| choose(Route::Replica, &t, ON, k).unwrap()).collect();
        assert_eq!(picks, [1, 2, 1, 2, 1, 2].map(Target::Replica));
    }

    #[test]
    fn weights_are_honoured() {
        let t = topo(&[
            (Role::Writer, Health::Up, false, 1),
            (Role::Replica, Health::Up, true, 3),
            (Role::Replica, Health::Up, true, 1),
        ]);
        let picks: Vec<usize> = (0..400).map(|k| choose(Route::Replica, &t, ON, k).unwrap().server()).collect();
        assert_eq!(picks.iter().filter(|&&s| s == 1).count(), 300);
        assert_eq!(picks.iter().filter(|&&s| s == 2).count(), 100);
    }

    #[test]
    fn unreadable_replica_is_skipped() {
        let mut t = lab();
        t.servers[2].readable = false;
        assert!((0..5).all(|k| choose(Route::Replica, &t, ON, k) == Ok(Target::Replica(1))));
    }

    #[test]
    fn fallback_to_writer_or_error() {
        let mut t = lab();
        t.servers[1].readable = false;
        t.servers[2].readable = false;
        assert_eq!(choose(Route::Replica, &t, ON, 0), Ok(Target::FallbackWriter(0)));
        assert_eq!(choose(Route::Replica, &t, OFF, 0), Err(NoTarget::NoReplica));
    }

    #[test]
    fn writer_takes_reads_when_asked() {
        let t = lab();
        let p = Policy { fallback_to_master: true, master_accepts_reads: true, prefer_semisync: false };
        let picks: Vec<usize> = (0..3).map(|k| choose(Route::Replica, &t, p, k).unwrap().server()).collect();
        assert_eq!(picks, vec![1, 2, 0]);
        assert_eq!(choose(Route::Replica, &t, p, 2), Ok(Target::Writer(0)));
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
        assert!((0..6).all(|k| choose(Route::Replica, &t, prefer, k) == Ok(Target::Replica(2))));
        // Without the option both replicas read.
        let picks: Vec<_> = (0..2).map(|k| choose(Route::Replica, &t, ON, k).unwrap().server()).collect();
        assert_eq!(picks, vec![1, 2]);
        // Semi-sync off (async fallback): the pool is whole again.
        semisync(&mut t, false, [Some(false), Some(true)]);
        let picks: Vec<_> = (0..2).map(|k| choose(Route::Replica, &t, prefer, k).unwrap().server()).collect();
        assert_eq!(picks, vec![1, 2]);
        // The acknowledging replica unreadable: the other one rather than the writer.
        semisync(&mut t, true, [Some(false), Some(true)]);
        t.servers[2].readable = false;
        assert_eq!(choose(Route::Replica, &t, prefer, 0), Ok(Target::Replica(1)));
    }

    #[test]
    fn zero_weight_only_when_alone() {
        let t = topo(&[
            (Role::Writer, Health::Up, false, 1),
            (Role::Replica, Health::Up, true, 0),
            (Role::Replica, Health::Up, true, 1),
        ]);
        assert!((0..5).all(|k| choose(Route::Replica, &t, ON, k) == Ok(Target::Replica(2))));
        let t = topo(&[
            (Role::Writer, Health::Up, false, 1),
            (Role::Replica, Health::Up, true, 0),
            (Role::Replica, Health::Up, false, 1),
        ]);
        assert_eq!(choose(Route::Replica, &t, ON, 7), Ok(Target::Replica(1)));
    }
}

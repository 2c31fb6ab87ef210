//! Property tests: the parsers never panic on anything a server could send, GTID set
//! arithmetic behaves like set arithmetic, and the tracker's invariants hold over random
//! sequences of check results (the writer is always up and writable, never moves during a
//! split brain, readable replicas are up and read_only, generations never go back).

use proptest::prelude::*;
use rwsplit_replication::status::{
    Fields, GtidSet, MariadbGtidList, ReplicaSemiSync, ReplicaStatus, SemiSyncMaster, Version,
};
use rwsplit_replication::tracker::{Observation, Policy, Tracker};
use rwsplit_replication::{Error, Health, Topology};
use std::time::Duration;

const COLUMNS: &[&str] = &[
    "Slave_IO_Running",
    "Replica_SQL_Running",
    "Seconds_Behind_Master",
    "Seconds_Behind_Source",
    "Master_Port",
    "Source_Server_Id",
    "Last_IO_Error",
    "Executed_Gtid_Set",
    "Gtid_IO_Pos",
    "Channel_Name",
    "Rpl_semi_sync_master_status",
    "Rpl_semi_sync_source_clients",
    "rpl_semi_sync_master_enabled",
    "Rpl_semi_sync_slave_status",
];

fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("Yes".to_string())),
        Just(Some("ON".to_string())),
        Just(Some("18446744073709551616".to_string())),
        Just(Some("-1".to_string())),
        ".{0,40}".prop_map(Some),
    ]
}

proptest! {
    #[test]
    fn parsers_never_panic(cols in prop::collection::vec((prop::sample::select(COLUMNS), value()), 0..14), text in ".{0,80}") {
        let f = Fields::from_pairs(cols.iter().map(|(c, v)| (*c, v.clone())));
        let _ = ReplicaStatus::from_fields(&f);
        let _ = ReplicaStatus::pick(&[f.clone(), f.clone()]);
        let _ = SemiSyncMaster::from_fields(&f, &f);
        let _ = ReplicaSemiSync::from_status(&f);
        let _ = Version::parse(&text);
        let _ = GtidSet::parse(&text).to_string();
        let _ = MariadbGtidList::parse(&text);
    }

    #[test]
    fn gtid_subtraction_is_set_difference(
        a in prop::collection::vec((0u8..3, 1u64..60, 0u64..8), 0..8),
        b in prop::collection::vec((0u8..3, 1u64..60, 0u64..8), 0..8),
    ) {
        let text = |v: &[(u8, u64, u64)]| v.iter().map(|(u, s, l)| format!("{u:08x}-0000-0000-0000-000000000000:{s}-{}", s + l)).collect::<Vec<_>>().join(",");
        let (sa, sb) = (GtidSet::parse(&text(&a)), GtidSet::parse(&text(&b)));
        let members = |s: &GtidSet| -> std::collections::BTreeSet<(String, u64)> {
            s.0.iter().flat_map(|(k, r)| r.iter().flat_map(move |&(x, y)| (x..=y).map(move |n| (k.clone(), n)))).collect()
        };
        let want: std::collections::BTreeSet<_> = members(&sa).difference(&members(&sb)).cloned().collect();
        let diff = sa.subtract(&sb);
        prop_assert_eq!(members(&diff), want);
        // Printing and parsing again gives the same set.
        prop_assert_eq!(GtidSet::parse(&diff.to_string()), diff);
    }

    #[test]
    fn tracker_invariants(rounds in prop::collection::vec(prop::collection::vec(0u8..8, 3), 1..40)) {
        let mut t = Tracker::new(
            Policy { rise: 2, fall: 2, max_lag_ms: 5_000, hysteresis_percent: 80, errant_check: true, serve_stale_reads: true },
            Topology::unknown((0..3).map(|i| (format!("s{i}"), format!("h:{i}"), 1))),
        );
        let mut last_generation = 0;
        for round in rounds {
            let prev = t.current().clone();
            let results = round.iter().enumerate().map(|(i, &k)| observation(i as u32 + 1, k)).collect();
            let step = t.apply(results, 0);
            let topo = &step.topology;
            prop_assert!(topo.generation >= last_generation);
            prop_assert_eq!(step.changed, topo.generation != prev.generation);
            last_generation = topo.generation;
            if let Some((_, w)) = topo.writer() {
                prop_assert_eq!(w.health, Health::Up);
                prop_assert_eq!(w.read_only, Some(false));
            }
            if topo.split_brain {
                prop_assert!(topo.writer.is_none() || topo.writer == prev.writer, "moved during a split brain");
                prop_assert!(!topo.alerts.is_empty());
            }
            for (_, s) in topo.readable_replicas() {
                prop_assert_eq!(s.health, Health::Up);
                prop_assert_eq!(s.read_only, Some(true));
                prop_assert!(s.lag_ms.is_some_and(|l| l <= 5_000));
                prop_assert!(s.reason.is_empty());
            }
        }
    }
}

/// Kinds of check result: 0 failed, 1 writer, 2..=7 replicas in various states.
fn observation(server_id: u32, kind: u8) -> Result<Observation, Error> {
    let replica = |io: bool, sql: bool, lag: Option<u64>| Observation {
        version: Version::parse("10.11.19-MariaDB"),
        read_only: true,
        server_id: Some(server_id),
        replica: Some(ReplicaStatus {
            io_running: io,
            sql_running: sql,
            seconds_behind: lag,
            master_server_id: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    match kind {
        0 => Err(Error::Timeout { what: "check", after: Duration::from_secs(1) }),
        1 => Ok(Observation {
            version: Version::parse("10.11.19-MariaDB"),
            read_only: false,
            server_id: Some(server_id),
            ..Default::default()
        }),
        2 => Ok(replica(true, true, Some(0))),
        3 => Ok(replica(true, true, Some(4))),
        4 => Ok(replica(true, true, Some(6))),
        5 => Ok(replica(true, true, None)),
        6 => Ok(replica(false, true, None)),
        _ => Ok(replica(true, false, Some(0))),
    }
}

//! The tracker's table tests: each feeds rounds of check results to a fresh [`Tracker`] (no IO,
//! no clock) and asserts on the topology, the log events and the actions the rounds produce.

use super::*;
use crate::status::SemiSyncMaster;
use std::time::Duration;

fn policy() -> Policy {
    Policy { rise: 2, fall: 3, max_lag_ms: 10_000, hysteresis_percent: 80, errant_check: true, serve_stale_reads: true }
}

fn tracker(n: usize) -> Tracker {
    Tracker::new(policy(), Topology::unknown((0..n).map(|i| (format!("s{i}"), format!("127.0.0.1:{}", 3306 + i), 1))))
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
        semisync_master: Some(SemiSyncMaster { enabled: true, active: true, clients: Some(2), ..Default::default() }),
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
        semisync_master: Some(SemiSyncMaster { enabled: true, active: false, clients: Some(0), ..Default::default() }),
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
        Health::Removed => 'x',
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
    for r in [Ok(replica(2, Some(0))), fail(), fail(), fail(), fail(), Ok(replica(2, Some(0))), Ok(replica(2, Some(0)))]
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

fn slots(servers: &[(&str, u16, u32, bool)]) -> Vec<ServerSlot> {
    servers
        .iter()
        .map(|&(name, port, weight, drain)| ServerSlot {
            config: rwsplit_config::ServerConfig {
                name: name.into(),
                address: format!("127.0.0.1:{port}"),
                weight,
                drain,
                ..Default::default()
            },
            removed: false,
        })
        .collect()
}

#[test]
fn a_reload_adds_removes_reweights_and_drains_servers() {
    let mut t = tracker(3);
    t.apply(lab_round(), 1000);
    let gen = t.current().generation;
    assert!(t.current().servers[1].readable && t.current().servers[2].readable);

    // s3 added, s1 re-weighted, s2 drained: the drain takes effect at once, s3 is unknown.
    let mut next =
        slots(&[("s0", 3306, 1, false), ("s1", 3307, 5, false), ("s2", 3308, 1, true), ("s3", 3309, 1, false)]);
    let step = t.reconfigure(&next);
    assert!(step.changed && step.topology.generation == gen + 1);
    let s = &step.topology.servers;
    assert_eq!((s.len(), s[1].weight, s[3].health), (4, 5, Health::Unknown));
    assert!(!s[2].readable && s[2].drained && s[2].reason.contains("drained"), "{:?}", s[2]);
    assert!(step.events.iter().any(|e| e.message.contains("s3 (127.0.0.1:3309) added")), "{:?}", step.events);
    assert_eq!(step.topology.writer, Some(0));

    // The next round judges s3; s2 stays out while drained.
    let step =
        t.apply(vec![Ok(writer(1)), Ok(replica(2, Some(0))), Ok(replica(3, Some(0))), Ok(replica(4, Some(0)))], 2000);
    let s = &step.topology.servers;
    assert!(s[1].readable && !s[2].readable && s[3].readable, "{s:?}");
    assert_eq!(s[2].health, Health::Up);

    // s1 removed: at once, and its later results (the monitor sends none) are ignored.
    next[1].removed = true;
    let step = t.reconfigure(&next);
    let s = &step.topology.servers;
    assert_eq!((s[1].health, s[1].readable, s[1].role), (Health::Removed, false, Role::Unknown));
    let step = t.apply(vec![Ok(writer(1)), fail(), Ok(replica(3, Some(0))), Ok(replica(4, Some(0)))], 3000);
    assert_eq!(step.topology.servers[1].health, Health::Removed);
    assert!(step.events.iter().all(|e| e.server != Some(1)), "{:?}", step.events);
    assert!(!step.changed);

    // Back (and s2 no longer drained): decided by the next round like a new server.
    next[1].removed = false;
    next[2].config.drain = false;
    let step = t.reconfigure(&next);
    assert_eq!(step.topology.servers[1].health, Health::Unknown);
    let step =
        t.apply(vec![Ok(writer(1)), Ok(replica(2, Some(0))), Ok(replica(3, Some(0))), Ok(replica(4, Some(0)))], 4000);
    assert!(step.topology.servers.iter().skip(1).all(|s| s.readable), "{:?}", step.topology.servers);
}

#[test]
fn a_reload_that_changes_nothing_keeps_the_generation() {
    let mut t = tracker(3);
    t.apply(lab_round(), 1000);
    let before = t.current().clone();
    let step = t.reconfigure(&slots(&[("s0", 3306, 1, false), ("s1", 3307, 1, false), ("s2", 3308, 1, false)]));
    assert!(!step.changed && step.events.is_empty());
    assert_eq!(step.topology, before);
}

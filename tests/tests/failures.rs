//! Servers dying under a running proxy, on a cluster of this test's own (servers are killed):
//! reads keep working when a replica is killed with -9 (a read that fails before reaching the
//! client is retried, and the monitor takes the replica out), and when the master dies (no
//! `auto_failover` here) writes wait `routing.writer_wait_ms` (1 s in this test) for a writer
//! and then fail with a clear error instead of hanging, while reads go on from the surviving
//! replica (`monitor.serve_stale_reads`).

use mysql_async::prelude::*;
use rwsplit_tests::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_killed_then_master_killed() {
    let cluster = tokio::task::block_in_place(Cluster::start).unwrap();
    let p = Proxy::start(&cluster, "[monitor]\nfall = 2\n[routing]\nwriter_wait_ms = 1000\n").unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    cluster.exec(MASTER, "CREATE TABLE db_test.f (id INT PRIMARY KEY AUTO_INCREMENT, v INT)").await.unwrap();
    cluster.wait_replicated().await.unwrap();
    let mut conn = p.conn().await.unwrap();
    // Warm the pool; the session's reads stay on one replica: that one is killed.
    for _ in 0..10 {
        server_id_of(&mut conn).await.unwrap();
    }
    let victim = server_id_of(&mut conn).await.unwrap();
    assert!(victim == 2 || victim == 3, "reads go to a replica, got server {victim}");
    let survivor = 5 - victim;
    cluster.kill9(if victim == 2 { "replica1" } else { "replica2" }).unwrap();
    let killed = Instant::now();
    let mut ids = Vec::new();
    for i in 0..100 {
        match server_id_of(&mut conn).await {
            Ok(id) => ids.push(id),
            Err(e) => panic!("read {i} after killing server {victim} failed: {e:#}"),
        }
    }
    eprintln!(
        "[failures] 100 reads in {:?} after kill -9 of server {victim}, none failed; servers: {:?}",
        killed.elapsed(),
        {
            let mut s = ids.clone();
            s.sort();
            s.dedup();
            s
        }
    );
    assert!(!ids.contains(&victim), "the killed replica answered?");
    // Writes are unaffected.
    conn.query_drop("INSERT INTO db_test.f (v) VALUES (1)").await.unwrap();

    cluster.kill9("master").unwrap();
    let started = Instant::now();
    let err =
        conn.query_drop("INSERT INTO db_test.f (v) VALUES (2)").await.expect_err("no master: the write must fail");
    let took = started.elapsed();
    eprintln!("[failures] write after kill -9 of the master failed in {took:?}: {err}");
    assert!(took < Duration::from_secs(10), "a clear error, not a hang ({took:?})");
    // Reads go on from the surviving replica (stale reads: its IO thread cannot reach the dead
    // master), on old and new connections alike.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut fresh = loop {
        match p.conn().await {
            Ok(mut c) => match server_id_of(&mut c).await {
                Ok(id) if id == survivor => break c,
                Ok(other) => panic!("server {other} answered a read with the master and server {victim} dead"),
                Err(e) => assert!(Instant::now() < deadline, "reads with the master dead: {e:#}"),
            },
            Err(e) => assert!(Instant::now() < deadline, "connecting with the master dead: {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for _ in 0..20 {
        assert_eq!(server_id_of(&mut fresh).await.unwrap(), survivor);
        assert_eq!(server_id_of(&mut conn).await.unwrap(), survivor);
    }
    let n: i64 = fresh.query_first("SELECT COUNT(*) FROM db_test.f").await.unwrap().unwrap();
    assert_eq!(n, 1, "the replica has the row written before the master died");
    // After the monitor's fall count, writes are refused at once for want of a writer.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let started = Instant::now();
        let err = fresh.query_drop("INSERT INTO db_test.f (v) VALUES (3)").await.expect_err("still no master");
        assert!(started.elapsed() < Duration::from_secs(10), "a clear error, not a hang");
        if err.to_string().contains("no writable server") {
            break;
        }
        assert!(Instant::now() < deadline, "writes should be refused for want of a writer, got: {err}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = admin_get(p.admin_port(), "/status").unwrap();
    assert!(body.contains("writer unreachable: serving reads that may be stale"), "{body}");
    p.stop();
    cluster.stop().unwrap();
}

//! A server's connection limit under load: idle clients hold no connection another client
//! needs, a statement at the limit waits (first come, first served) instead of failing, and
//! the servers never see more connections than the limit. Real servers, real rwsplit.

use mysql_async::prelude::*;
use rwsplit_tests::*;
use std::time::{Duration, Instant};

const LIMIT: u32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_inserting_clients_cost_other_writers_nothing_at_the_connection_limit() {
    let c = tokio::task::block_in_place(Cluster::shared);
    // keep_previous_ms high: only the reclaim on demand can free the idle clients' connections.
    let extra = format!(
        "[backend]\nmax_connections_per_server = {LIMIT}\nmax_idle_per_server = {LIMIT}\nkeep_previous_ms = 600000\n"
    );
    let p = tokio::task::block_in_place(|| Proxy::start(c, &extra)).unwrap();
    let _log = p.log_on_panic();
    c.fresh_db("pool_limits").await.unwrap();
    c.exec(MASTER, "CREATE TABLE pool_limits.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)").await.unwrap();
    c.wait_replicated().await.unwrap();
    let baseline: u64 = c.global_status(MASTER, "Threads_connected").await.unwrap();
    // Five times the limit: clients that insert (a last-insert id, a warning-free OK) and go
    // idle with their connection open.
    let mut idle = Vec::new();
    for i in 0..(LIMIT * 5) {
        let mut conn = p.conn().await.unwrap();
        conn.query_drop(format!("INSERT INTO pool_limits.t (v) VALUES ({i})")).await.unwrap();
        assert!(conn.last_insert_id().is_some());
        idle.push(conn);
    }
    // Other clients write while those stay idle: none may fail.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..20 {
        let mut conn = p.conn().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            for i in 0..20 {
                if let Err(e) =
                    conn.query_drop(format!("INSERT INTO pool_limits.t (v) VALUES ({})", 1000 + w * 100 + i)).await
                {
                    failed.push(e.to_string());
                }
            }
            failed
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    eprintln!("[pool_limits] 400 writes by 20 clients beside {} idle ones in {:?}", idle.len(), started.elapsed());
    assert!(failures.is_empty(), "{} of 400 writes failed, first: {}", failures.len(), failures[0]);
    let peak = c.global_status(MASTER, "Threads_connected").await.unwrap();
    assert!(
        peak <= baseline + u64::from(LIMIT) + 1,
        "the master saw {peak} connections (baseline {baseline}, limit {LIMIT})"
    );
    // The idle clients still work, and see their own last insert id.
    for conn in idle.iter_mut().take(3) {
        let v: Option<u64> = conn.query_first("SELECT 1").await.unwrap();
        assert_eq!(v, Some(1));
    }
    let n: u64 = c.query_value(MASTER, "SELECT COUNT(*) FROM pool_limits.t").await.unwrap();
    assert_eq!(n, u64::from(LIMIT * 5) + 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_a_statement_waits_then_fails_clearly() {
    let c = tokio::task::block_in_place(Cluster::shared);
    let extra = "[backend]\nmax_connections_per_server = 3\nmax_idle_per_server = 3\nqueue_timeout_ms = 500\n";
    let p = tokio::task::block_in_place(|| Proxy::start(c, extra)).unwrap();
    let _log = p.log_on_panic();
    // Two transactions hold the two connections leases may use (one is kept for KILL).
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut conn = p.conn().await.unwrap();
        conn.query_drop("BEGIN").await.unwrap();
        conn.query_drop("SELECT 1 FOR UPDATE").await.unwrap();
        holders.push(conn);
    }
    let mut third = p.conn().await.unwrap();
    let started = Instant::now();
    let err = third.query_drop("SELECT 1 FOR UPDATE").await.expect_err("no connection can come free");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(450), "it waited the queue timeout first ({waited:?})");
    assert!(err.to_string().contains("backend.queue_timeout_ms"), "a clear error: {err}");
    // When a holder ends its transaction, the waiting statement gets its connection.
    let waiter = tokio::spawn(async move {
        let r = third.query_drop("SELECT 1 FOR UPDATE").await;
        (third, r)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    holders[0].query_drop("COMMIT").await.unwrap();
    let (_, r) = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    r.expect("the waiting statement ran once a connection came back");
    // KILL still works at the limit (its own reserved connection).
    holders[0].query_drop("BEGIN").await.unwrap();
    holders[0].query_drop("SELECT 1 FOR UPDATE").await.unwrap();
    let id = holders[1].id();
    let mut killer = p.conn().await.unwrap();
    killer.query_drop(format!("KILL QUERY {id}")).await.expect("KILL at the connection limit");
}

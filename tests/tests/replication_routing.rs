//! Routing that follows replication state, against real servers: read-your-writes (`causal`,
//! `causal_global`), fallback of reads to the master when no replica is usable,
//! `require_semisync`, and `prefer_semisync_replicas`.
//!
//! The tests change replication on the shared cluster (delays, stopped threads, semi-sync off),
//! so they run one at a time (a lock) and each restores the cluster before it ends, also when
//! it fails (a guard). `@@server_id`: 1 = master, 2 and 3 = replicas.

use mysql_async::prelude::*;
use mysql_async::Conn;
use rwsplit_tests::*;
use std::time::{Duration, Instant};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cluster() -> &'static Cluster {
    tokio::task::block_in_place(Cluster::shared)
}

/// Polls `cond` on the proxy's topology until it holds (bounded).
async fn wait_status(p: &Proxy, what: &str, cond: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = p.status().expect("/status");
        if cond(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not reached within 30 s; status:\n{s:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn readable(s: &serde_json::Value, i: usize) -> bool {
    s["servers"][i]["readable"].as_bool().unwrap_or(false)
}

fn semisync_active(s: &serde_json::Value) -> Option<bool> {
    s["semisync"]["active"].as_bool()
}

/// Runs cleanup SQL on servers when dropped, so a failed assertion leaves the cluster usable.
struct Restore(Vec<(usize, &'static str)>);

impl Drop for Restore {
    fn drop(&mut self) {
        let steps = std::mem::take(&mut self.0);
        let c = cluster();
        let run = async move {
            for (i, sql) in steps {
                if let Err(e) = c.exec(i, sql).await {
                    eprintln!("restore on server {i}: {sql}: {e:#}");
                }
            }
        };
        // Drop may run inside the test's runtime: finish the cleanup on a thread of its own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(run);
        })
        .join()
        .ok();
    }
}

async fn conn_to(p: &Proxy, db: &str) -> Conn {
    Conn::new(p.opts_as(APP_USER, APP_PASSWORD, Some(db))).await.unwrap()
}

/// `n` pairs of INSERT then SELECT of the same row in one session; returns how many reads did
/// not see the row just written.
async fn stale_reads(conn: &mut Conn, table: &str, n: u32) -> u32 {
    let mut stale = 0;
    for i in 0..n {
        conn.exec_drop(format!("INSERT INTO {table} (id, v) VALUES (?, ?)"), (i, i)).await.unwrap();
        let v: Option<u32> = conn.exec_first(format!("SELECT v FROM {table} WHERE id = ?"), (i,)).await.unwrap();
        if v != Some(i) {
            stale += 1;
        }
    }
    stale
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn causal_reads_see_own_writes_and_without_it_they_do_not() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    c.fresh_db("causal").await.unwrap();
    c.exec(
        MASTER,
        "CREATE TABLE causal.t_on (id INT PRIMARY KEY, v INT); CREATE TABLE causal.t_off (id INT PRIMARY KEY, v INT)",
    )
    .await
    .unwrap();
    c.wait_replicated().await.unwrap();
    // replica1 applies every event one second late (its SQL thread is delayed).
    let _restore = Restore(vec![(1, "STOP SLAVE"), (1, "CHANGE MASTER TO MASTER_DELAY = 0"), (1, "START SLAVE")]);
    c.exec(1, "STOP SLAVE").await.unwrap();
    c.exec(1, "CHANGE MASTER TO MASTER_DELAY = 1").await.unwrap();
    c.exec(1, "START SLAVE").await.unwrap();

    let on = Proxy::start(c, "[routing]\nconsistency = \"causal\"\ncausal_timeout_ms = 20\n").unwrap();
    let _log = on.log_on_panic();
    on.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    let mut conn = conn_to(&on, "causal").await;
    let started = Instant::now();
    let stale_on = stale_reads(&mut conn, "t_on", 1000).await;
    let took_on = started.elapsed();
    let metrics = admin_get(on.admin_port(), "/metrics").expect("admin endpoint");
    let fallbacks =
        metrics.lines().find(|l| l.starts_with("rwsplit_causal_read_fallbacks_total")).unwrap_or("").to_string();

    let off = Proxy::start(c, "[routing]\nconsistency = \"none\"\n").unwrap();
    off.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    let mut conn = conn_to(&off, "causal").await;
    let started = Instant::now();
    let stale_off = stale_reads(&mut conn, "t_off", 1000).await;
    let took_off = started.elapsed();
    eprintln!(
        "[causal] 1000 write-then-read pairs, replica1 delayed 1 s: causal on: {stale_on} stale in {:.1} s ({fallbacks}); off: {stale_off} stale in {:.1} s",
        took_on.as_secs_f64(),
        took_off.as_secs_f64()
    );
    assert_eq!(stale_on, 0, "read-your-writes must never return a stale row");
    assert!(
        stale_off > 0,
        "without causal reads the delayed replica must show stale rows (else this test proves nothing)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn causal_global_sees_writes_of_other_connections() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    c.fresh_db("causal_global").await.unwrap();
    c.exec(MASTER, "CREATE TABLE causal_global.t (id INT PRIMARY KEY, v INT)").await.unwrap();
    c.wait_replicated().await.unwrap();
    let _restore = Restore(vec![(2, "STOP SLAVE"), (2, "CHANGE MASTER TO MASTER_DELAY = 0"), (2, "START SLAVE")]);
    c.exec(2, "STOP SLAVE").await.unwrap();
    c.exec(2, "CHANGE MASTER TO MASTER_DELAY = 1").await.unwrap();
    c.exec(2, "START SLAVE").await.unwrap();

    let p = Proxy::start(c, "[routing]\nconsistency = \"causal_global\"\ncausal_timeout_ms = 20\n").unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    let mut writer = conn_to(&p, "causal_global").await;
    let mut reader = conn_to(&p, "causal_global").await;
    let mut stale = 0;
    for i in 0..300u32 {
        writer.exec_drop("INSERT INTO t (id, v) VALUES (?, ?)", (i, i)).await.unwrap();
        let v: Option<u32> = reader.exec_first("SELECT v FROM t WHERE id = ?", (i,)).await.unwrap();
        if v != Some(i) {
            stale += 1;
        }
    }
    eprintln!("[causal_global] 300 writes on one connection, reads on another: {stale} stale");
    assert_eq!(stale, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fall_back_to_the_master_or_fail_clearly() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let fallback = Proxy::start(c, "").unwrap();
    let strict = Proxy::start(c, "[routing]\nfallback_to_master = false\n").unwrap();
    let _log = fallback.log_on_panic();
    fallback.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    // Connected while replicas are up: mysql_async reads server variables when it connects,
    // and with no replica and no fallback that read would (rightly) fail.
    let mut strict_conn = strict.conn().await.unwrap();
    let _restore = Restore(vec![(1, "START SLAVE"), (2, "START SLAVE")]);
    for i in REPLICAS {
        c.replica_sql_thread(i, false).await.unwrap();
    }
    c.exec(MASTER, "CREATE DATABASE IF NOT EXISTS fallback; CREATE TABLE IF NOT EXISTS fallback.t (id INT); INSERT INTO fallback.t VALUES (1)").await.unwrap();
    wait_status(&fallback, "both replicas out of the read pool", |s| !readable(s, 1) && !readable(s, 2)).await;
    wait_status(&strict, "both replicas out of the read pool", |s| !readable(s, 1) && !readable(s, 2)).await;

    let mut conn = fallback.conn().await.unwrap();
    for _ in 0..5 {
        assert_eq!(server_id_of(&mut conn).await.unwrap(), 1, "with no usable replica, reads go to the master");
    }
    let metrics = admin_get(fallback.admin_port(), "/metrics").expect("admin endpoint");
    assert!(
        metrics.lines().any(|l| l.starts_with("rwsplit_read_fallbacks_total") && !l.ends_with(" 0")),
        "fallbacks are counted:\n{metrics}"
    );

    let conn = &mut strict_conn;
    let started = Instant::now();
    let err = conn.query_drop("SELECT @@server_id").await.expect_err("no replica and no fallback: an error");
    assert!(started.elapsed() < Duration::from_secs(5), "the error must come at once, not after a hang");
    let msg = err.to_string();
    assert!(msg.contains("no replica is usable"), "clear error expected, got: {msg}");
    // Writes still work on the strict proxy.
    conn.query_drop("INSERT INTO fallback.t VALUES (2)").await.unwrap();

    for i in REPLICAS {
        c.replica_sql_thread(i, true).await.unwrap();
    }
    wait_status(&fallback, "replicas back in the read pool", |s| readable(s, 1) && readable(s, 2)).await;
    fallback.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_semisync_refuses_writes_while_semisync_is_off() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    c.exec(MASTER, "CREATE DATABASE IF NOT EXISTS semisync; CREATE TABLE IF NOT EXISTS semisync.t (id INT)")
        .await
        .unwrap();
    let p = Proxy::start(c, "[routing]\nrequire_semisync = true\n").unwrap();
    let _log = p.log_on_panic();
    wait_status(&p, "semi-sync on", |s| semisync_active(s) == Some(true)).await;
    let mut conn = conn_to(&p, "semisync").await;
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();

    let _restore = Restore(vec![(1, "START SLAVE IO_THREAD"), (2, "START SLAVE IO_THREAD")]);
    for i in REPLICAS {
        c.exec(i, "STOP SLAVE IO_THREAD").await.unwrap();
    }
    // This write waits out the master's semi-sync timeout and switches it to async.
    c.exec(MASTER, "INSERT INTO semisync.t VALUES (2)").await.unwrap();
    wait_status(&p, "semi-sync off", |s| semisync_active(s) == Some(false)).await;

    let started = Instant::now();
    let err = conn.query_drop("INSERT INTO t VALUES (3)").await.expect_err("writes are refused while semi-sync is off");
    let took = started.elapsed();
    let msg = err.to_string();
    assert!(msg.contains("require_semisync"), "clear error expected, got: {msg}");
    assert!(took < Duration::from_millis(900), "refused at once (the master's timeout is 1 s), took {took:?}");
    // Reads are not affected.
    let n: i64 = conn.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert!(n >= 1);

    for i in REPLICAS {
        c.exec(i, "START SLAVE IO_THREAD").await.unwrap();
    }
    wait_status(&p, "semi-sync back on", |s| semisync_active(s) == Some(true)).await;
    conn.query_drop("INSERT INTO t VALUES (4)").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_prefer_replicas_acknowledging_semisync() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let p = Proxy::start(c, "[routing]\nprefer_semisync_replicas = true\n").unwrap();
    let plain = Proxy::start(c, "").unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    // replica2 turns into an asynchronous replica: it stops acknowledging.
    let _restore = Restore(vec![
        (2, "SET GLOBAL rpl_semi_sync_slave_enabled = ON"),
        (2, "STOP SLAVE IO_THREAD"),
        (2, "START SLAVE IO_THREAD"),
    ]);
    c.exec(2, "SET GLOBAL rpl_semi_sync_slave_enabled = OFF").await.unwrap();
    c.exec(2, "STOP SLAVE IO_THREAD").await.unwrap();
    c.exec(2, "START SLAVE IO_THREAD").await.unwrap();
    wait_status(&p, "replica2 not acknowledging, replica1 acknowledging, semi-sync on", |s| {
        s["servers"][2]["semisync_acking"].as_bool() == Some(false)
            && s["servers"][1]["semisync_acking"].as_bool() == Some(true)
            && semisync_active(s) == Some(true)
            && readable(s, 2)
    })
    .await;
    let mut conn = p.conn().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(server_id_of(&mut conn).await.unwrap());
    }
    assert!(ids.iter().all(|&id| id == 2), "only the acknowledging replica reads: {ids:?}");
    // Without the option both replicas still read.
    plain.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
}

/// Stops replica 2's (server 3's) SQL thread and writes to database `db` on the master, so that
/// it falls behind; returns once the monitor had time to see it (two intervals of 250 ms in the
/// harness config, plus a check's duration), with the guard that starts the thread again.
async fn stop_sql_thread_of_server_3(c: &Cluster, db: &str) -> Restore {
    let restore = Restore(vec![(2, "START SLAVE SQL_THREAD")]);
    c.replica_sql_thread(2, false).await.unwrap();
    let sql = format!(
        "CREATE DATABASE IF NOT EXISTS {db}; CREATE TABLE IF NOT EXISTS {db}.t (id INT); INSERT INTO {db}.t VALUES (1)"
    );
    c.exec(MASTER, &sql).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    restore
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_sql_thread_stops_takes_no_reads_until_it_runs_again() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let p = Proxy::start(c, "").unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    let stopped = Instant::now();
    let _restore = stop_sql_thread_of_server_3(c, "sqlstop").await;
    let mut conn = p.conn().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(server_id_of(&mut conn).await.unwrap());
    }
    assert!(ids.iter().all(|&id| id == 2), "{:?} after the SQL thread of server 3 stopped: {ids:?}", stopped.elapsed());
    c.replica_sql_thread(2, true).await.unwrap();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
}

/// Sessions that left a replica while it was out of the read pool go back to it when it
/// returns (one read at a time, until the spread follows the weights), instead of staying
/// piled on the replica that took them in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_back_over_a_replica_that_returns() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let p = Proxy::start(c, "").unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(p.conn().await.unwrap());
    }
    async fn spread(conns: &mut [Conn]) -> Vec<u32> {
        let mut ids = Vec::new();
        for conn in conns.iter_mut() {
            ids.push(server_id_of(conn).await.unwrap());
        }
        ids.sort();
        ids
    }
    // Every session reads a few times (a session moves at most once per read).
    async fn rounds(conns: &mut [Conn]) -> Vec<Vec<u32>> {
        let mut rounds = Vec::new();
        for _ in 0..4 {
            rounds.push(spread(conns).await);
        }
        rounds
    }
    let start = rounds(&mut conns).await;
    assert_eq!(start.last().map(Vec::as_slice), Some(&[2, 2, 3, 3][..]), "four sessions: {start:?}");

    let _restore = stop_sql_thread_of_server_3(c, "spreadback").await;
    assert_eq!(spread(&mut conns).await, [2, 2, 2, 2], "with server 3's SQL thread stopped");

    c.replica_sql_thread(2, true).await.unwrap();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    // Two sessions move back, then nobody moves.
    let back = rounds(&mut conns).await;
    assert_eq!(back.last().map(Vec::as_slice), Some(&[2, 2, 3, 3][..]), "after server 3 returned: {back:?}");
    assert_eq!(back[back.len() - 2], back[back.len() - 1], "sessions still moving: {back:?}");
    // /status counts them where they read, and nowhere once they are gone.
    let reading = || -> Vec<u64> {
        let status = p.status().unwrap();
        status["servers"].as_array().unwrap().iter().map(|s| s["reading_sessions"].as_u64().unwrap()).collect()
    };
    // (Polled: the probes of wait_reads_on_replicas close asynchronously.)
    let settled = |want: [u64; 3]| async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        while reading() != want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        reading()
    };
    assert_eq!(settled([0, 2, 2]).await, [0, 2, 2]);
    for conn in conns {
        conn.disconnect().await.unwrap();
    }
    assert_eq!(settled([0, 0, 0]).await, [0, 0, 0], "reading sessions left after every session closed");
}

//! Switchover and failover on clusters of their own (the writer moves):
//!
//! - a switchover under sysbench `oltp_read_write` (8 threads) through rwsplit: no client
//!   error, the checksums of every server equal afterwards, the old master a working replica;
//! - the refusals (a lagging target, errant transactions, no safe target), each leaving
//!   everything as it was;
//! - `kill -9` of the master under an insert load with `monitor.auto_failover` on two rwsplit
//!   nodes: every acknowledged insert is on the promoted server, writes resume, exactly one
//!   server was promoted; the old master, restarted, rejoins as a replica (or, if it holds a
//!   transaction nobody received, is kept out with an alert).

use mysql_async::prelude::*;
use rwsplit_tests::*;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `POST /switchover[?to=]` on a proxy's admin endpoint: (HTTP status line, body).
fn post_switchover(p: &Proxy, to: Option<&str>) -> (String, String) {
    let q = to.map(|t| format!("?to={t}")).unwrap_or_default();
    let request = format!("POST /switchover{q} HTTP/1.0\r\nContent-Length: 0");
    let (head, body) = admin_request(p.admin_port(), &request, Duration::from_secs(120)).expect("admin endpoint");
    (head.lines().next().unwrap_or("").to_string(), body)
}

/// The value of a counter line of `/metrics` (0 when absent).
fn metric(p: &Proxy, name_and_labels: &str) -> f64 {
    admin_get(p.admin_port(), "/metrics")
        .expect("admin endpoint")
        .lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn read_only(c: &Cluster, i: usize) -> i64 {
    c.query_value(i, "SELECT @@read_only").await.unwrap()
}

/// (Slave_IO_Running, Slave_SQL_Running, Master_Port) of server `i`.
async fn replication_of(c: &Cluster, i: usize) -> Option<(String, String, u16)> {
    let mut conn = c.root_conn(i).await.unwrap();
    let row: Option<mysql_async::Row> = conn.query_first("SHOW SLAVE STATUS").await.unwrap();
    let row = row?;
    let get = |name: &str| -> String {
        let idx = row.columns_ref().iter().position(|col| col.name_str() == name).unwrap();
        row.get::<Option<String>, _>(idx).flatten().unwrap_or_default()
    };
    Some((get("Slave_IO_Running"), get("Slave_SQL_Running"), get("Master_Port").parse().unwrap_or(0)))
}

async fn checksums(c: &Cluster, i: usize, tables: &str) -> Vec<(String, Option<i64>)> {
    c.query(i, &format!("CHECKSUM TABLE {tables}")).await.unwrap()
}

fn sysbench(port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("sysbench")
        .arg("oltp_read_write")
        .args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
        .arg(format!("--mysql-port={port}"))
        .args([format!("--mysql-user={APP_USER}"), format!("--mysql-password={APP_PASSWORD}")])
        .args(["--mysql-db=sbtest", "--tables=4", "--table-size=2000"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sysbench ({e}): `scripts/lab.sh install` installs it"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && !text.contains("FATAL"), text)
}

fn number_after(text: &str, label: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
    line.split_once(label)?.1.split_whitespace().next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_under_oltp_read_write_costs_no_client_error() {
    let c = tokio::task::block_in_place(Cluster::start).unwrap();
    let hook_log = c.state_dir().join("on_promotion.log");
    let p = Proxy::start(
        &c,
        &format!(
            "[routing]\nwriter_wait_ms = 30000\n[monitor]\non_promotion = \"echo $RWSPLIT_PROMOTION >> {}\"\n",
            hook_log.display()
        ),
    )
    .unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    c.exec(MASTER, "CREATE DATABASE sbtest").await.unwrap();
    let master_port = c.port(MASTER);
    let (ok, text) = tokio::task::block_in_place(|| sysbench(master_port, &["prepare"]));
    assert!(ok, "{text}");
    c.wait_replicated().await.unwrap();

    // sysbench through rwsplit for 20 s; the switchover starts 6 s in.
    let port = p.port();
    let bench = std::thread::spawn(move || {
        sysbench(port, &["--threads=8", "--time=20", "--rand-type=uniform", "--report-interval=2", "run"])
    });
    tokio::time::sleep(Duration::from_secs(6)).await;
    let started = Instant::now();
    let (status, body) = tokio::task::block_in_place(|| post_switchover(&p, Some("replica1")));
    let took = started.elapsed();
    eprintln!("[switchover] {status} in {took:?}: {body}");
    assert!(status.contains("200"), "{status} {body}");
    let (ok, run) = tokio::task::block_in_place(|| bench.join().unwrap());
    eprintln!("[switchover] sysbench through rwsplit:\n{run}");
    assert!(ok, "sysbench failed during the switchover:\n{run}");
    assert_eq!(number_after(&run, "ignored errors:"), Some(0), "errors sysbench ignored:\n{run}");
    assert_eq!(number_after(&run, "reconnects:"), Some(0), "{run}");
    assert!(number_after(&run, "transactions:").unwrap_or(0) > 0, "{run}");

    // replica1 is the writer; the old master and replica2 replicate from it.
    assert_eq!(read_only(&c, 1).await, 0);
    assert_eq!(read_only(&c, MASTER).await, 1);
    assert_eq!(read_only(&c, 2).await, 1);
    let new_port = c.port(1);
    for i in [MASTER, 2] {
        let r = replication_of(&c, i).await.expect("replicates");
        assert_eq!(r, ("Yes".into(), "Yes".into(), new_port), "server {i}");
    }
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("CREATE TABLE db_test.after_switch (id INT PRIMARY KEY)").await.unwrap();
    conn.query_drop("INSERT INTO db_test.after_switch VALUES (1)").await.unwrap();
    let (writer_id,): (u32,) =
        conn.query_first("SELECT @@server_id FROM db_test.after_switch FOR UPDATE").await.unwrap().unwrap();
    assert_eq!(writer_id, 2, "writes go to replica1 (server_id 2)");
    // Every server has the same data.
    let gtid: String = c.query_value(1, "SELECT @@gtid_binlog_pos").await.unwrap();
    for i in [MASTER, 2] {
        let done: i64 = c.query_value(i, &format!("SELECT MASTER_GTID_WAIT('{gtid}', 30)")).await.unwrap();
        assert_eq!(done, 0, "server {i} did not catch up with the new writer");
    }
    let tables = "sbtest.sbtest1, sbtest.sbtest2, sbtest.sbtest3, sbtest.sbtest4, db_test.after_switch";
    let reference = checksums(&c, 1, tables).await;
    for i in [MASTER, 2] {
        assert_eq!(checksums(&c, i, tables).await, reference, "checksums of server {i}");
    }
    assert!(
        admin_get(p.admin_port(), "/status").expect("admin endpoint").contains("switchover: done"),
        "the steps are shown in /status"
    );
    // `rwsplit status` shows them too.
    let out = Command::new(rwsplit_bin().unwrap())
        .args(["status", "--admin", &format!("127.0.0.1:{}", p.admin_port())])
        .arg("--config")
        .arg(p.dir().join("rwsplit.toml"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("switchover: done: replica1 is the writer"), "{table}");
    // monitor.on_promotion ran for the new writer and each repointed server.
    wait_until(Duration::from_secs(10), "on_promotion to run three times", || async {
        Ok(std::fs::read_to_string(&hook_log).unwrap_or_default().lines().count() == 3)
    })
    .await
    .unwrap();
    let mut hook: Vec<String> = std::fs::read_to_string(&hook_log).unwrap().lines().map(str::to_string).collect();
    hook.sort();
    assert_eq!(hook, ["switchover master replica", "switchover replica1 master", "switchover replica2 replica"]);
    assert_eq!(metric(&p, "rwsplit_promotions_total{kind=\"switchover\",outcome=\"done\"}"), 1.0);
    p.stop();
    c.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_switchovers_are_refused_and_change_nothing() {
    let c = tokio::task::block_in_place(Cluster::start).unwrap();
    let p = Proxy::start(&c, "[monitor]\nswitchover_max_lag_ms = 1000\n").unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    let unchanged = |what: &'static str| {
        let c = &c;
        async move {
            assert_eq!(read_only(c, MASTER).await, 0, "{what}: the master still takes writes");
            for i in REPLICAS {
                assert_eq!(read_only(c, i).await, 1, "{what}: server {i} is still read_only");
                let (io, _, port) = replication_of(c, i).await.expect("still a replica");
                assert_eq!((io.as_str(), port), ("Yes", c.port(MASTER)), "{what}: server {i}");
            }
        }
    };

    // A lagging target: replica1 applies everything 60 s late.
    c.exec(1, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 60; START SLAVE").await.unwrap();
    c.exec(MASTER, "CREATE TABLE db_test.lag (id INT PRIMARY KEY); INSERT INTO db_test.lag VALUES (1)").await.unwrap();
    wait_until(Duration::from_secs(30), "replica1's lag to show", || async {
        let status: serde_json::Value = p.status()?;
        Ok(status["servers"][1]["lag_ms"].as_u64().is_some_and(|lag| lag > 2_000))
    })
    .await
    .unwrap();
    let (status, body) = tokio::task::block_in_place(|| post_switchover(&p, Some("replica1")));
    eprintln!("[refusal] lagging: {status} {body}");
    assert!(status.contains("409") && body.contains("replica1 lags"), "{status} {body}");
    unchanged("lagging").await;

    // Errant transactions: written on replica2 directly (root may write on a read_only server).
    // Its own GTID domain, so that the master's stream still applies (gtid_strict_mode).
    c.exec(2, "SET SESSION gtid_domain_id = 9; CREATE DATABASE errant_on_replica2").await.unwrap();
    wait_until(Duration::from_secs(30), "the errant transaction to be seen", || async {
        let status: serde_json::Value = p.status()?;
        Ok(status["servers"][2]["errant"].is_string())
    })
    .await
    .unwrap();
    let (status, body) = tokio::task::block_in_place(|| post_switchover(&p, Some("replica2")));
    eprintln!("[refusal] errant: {status} {body}");
    assert!(status.contains("409") && body.contains("errant"), "{status} {body}");
    unchanged("errant").await;

    // No safe target at all.
    let (status, body) = tokio::task::block_in_place(|| post_switchover(&p, None));
    eprintln!("[refusal] none: {status} {body}");
    assert!(status.contains("409") && body.contains("no replica can take over"), "{status} {body}");
    unchanged("no target").await;
    assert!(metric(&p, "rwsplit_promotions_total{kind=\"switchover\",outcome=\"refused\"}") >= 3.0);

    // The CLI says the same and fails.
    let out = Command::new(rwsplit_bin().unwrap())
        .args(["switchover", "--admin", &format!("127.0.0.1:{}", p.admin_port())])
        .arg("--config")
        .arg(p.dir().join("rwsplit.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("no replica can take over"), "{stderr}");
    p.stop();
    c.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_kill9_fails_over_once_and_loses_no_acknowledged_insert() {
    let c = tokio::task::block_in_place(Cluster::start).unwrap();
    let failover = "[monitor]\nauto_failover = true\nfall = 2\n[routing]\nwriter_wait_ms = 30000\n";
    let a = Proxy::start(&c, failover).unwrap();
    let b = Proxy::start(&c, failover).unwrap();
    let _log_a = a.log_on_panic();
    let _log_b = b.log_on_panic();
    a.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    c.exec(MASTER, "CREATE TABLE db_test.acked (id BIGINT PRIMARY KEY, writer INT)").await.unwrap();
    c.wait_replicated().await.unwrap();

    // Four writers through node a, each inserting its own ids; an id counts once its INSERT
    // returned OK.
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let first_after_kill = Arc::new(Mutex::new(None::<Instant>));
    let killed_at = Arc::new(Mutex::new(None::<Instant>));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let (acked, first, killed, stop) = (acked.clone(), first_after_kill.clone(), killed_at.clone(), stop.clone());
        let opts = a.opts();
        writers.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            let mut conn: Option<mysql_async::Conn> = None;
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) && n < 1_000_000 {
                n += 1;
                let id = w * 1_000_000 + n;
                if conn.is_none() {
                    match mysql_async::Conn::new(opts.clone()).await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            errors.push(e.to_string());
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let Some(cx) = conn.as_mut() else { continue };
                match cx.exec_drop("INSERT INTO db_test.acked VALUES (?, @@server_id)", (id,)).await {
                    Ok(()) => {
                        acked.lock().unwrap().push(id);
                        if killed.lock().unwrap().is_some() {
                            first.lock().unwrap().get_or_insert_with(Instant::now);
                        }
                    }
                    Err(e) => {
                        // The statement in flight when the master died: its outcome is unknown
                        // to the client (not acknowledged). The connection may be gone too.
                        errors.push(e.to_string());
                        conn = None;
                    }
                }
            }
            errors
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.kill9("master").unwrap();
    *killed_at.lock().unwrap() = Some(Instant::now());
    let kill_time = Instant::now();
    wait_until(Duration::from_secs(60), "writes to resume after the failover", || async {
        Ok(first_after_kill.lock().unwrap().is_some())
    })
    .await
    .unwrap();
    let resumed = first_after_kill.lock().unwrap().unwrap().duration_since(kill_time);
    eprintln!("[failover] kill -9 of the master -> first acknowledged insert after {resumed:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for w in writers {
        errors.extend(w.await.unwrap());
    }
    eprintln!("[failover] {} client errors (statements in flight at the kill): {errors:?}", errors.len());
    assert!(errors.len() <= 8, "at most the statements in flight at the kill fail: {errors:?}");

    // Exactly one server was promoted, by one node.
    let writable: Vec<usize> = {
        let mut v = Vec::new();
        for i in REPLICAS {
            if read_only(&c, i).await == 0 {
                v.push(i);
            }
        }
        v
    };
    assert_eq!(writable.len(), 1, "exactly one replica promoted: {writable:?}");
    let new = writable[0];
    let done = |p: &Proxy| metric(p, "rwsplit_promotions_total{kind=\"failover\",outcome=\"done\"}");
    assert_eq!(done(&a) + done(&b), 1.0, "one node promoted, the other did not");
    let other = 3 - new;
    let r = replication_of(&c, other).await.expect("the other replica replicates");
    assert_eq!(r, ("Yes".into(), "Yes".into(), c.port(new)), "server {other} follows the new writer");

    // Every acknowledged insert is on the new writer.
    let acked = acked.lock().unwrap().clone();
    let present: Vec<i64> = c.query(new, "SELECT id FROM db_test.acked").await.unwrap();
    let present: std::collections::HashSet<i64> = present.into_iter().collect();
    let lost: Vec<i64> = acked.iter().filter(|id| !present.contains(id)).copied().collect();
    eprintln!(
        "[failover] {} acknowledged inserts, {} on the new writer, lost: {}",
        acked.len(),
        present.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged inserts lost: {lost:?}");

    // The old master comes back: it rejoins as a replica of the new writer, or (if it holds a
    // transaction nobody received) stays out with an alert.
    tokio::task::block_in_place(|| c.lab(&["start-server", "master"])).unwrap();
    wait_until(Duration::from_secs(60), "the old master to rejoin or be kept out", || async {
        let status = admin_get(a.admin_port(), "/status").expect("admin endpoint")
            + &admin_get(b.admin_port(), "/status").expect("admin endpoint");
        Ok(status.contains("former writer") || status.contains("not rejoined"))
    })
    .await
    .unwrap();
    let status = admin_get(a.admin_port(), "/status").expect("admin endpoint")
        + &admin_get(b.admin_port(), "/status").expect("admin endpoint");
    if status.contains("not rejoined") {
        eprintln!("[failover] the old master holds a transaction no replica received: kept out");
        assert_eq!(read_only(&c, MASTER).await, 0, "left as it was for a person to look at");
    } else {
        wait_until(Duration::from_secs(30), "the old master to replicate", || async {
            Ok(replication_of(&c, MASTER).await.is_some_and(|r| r == ("Yes".into(), "Yes".into(), c.port(new))))
        })
        .await
        .unwrap();
        assert_eq!(read_only(&c, MASTER).await, 1);
        eprintln!("[failover] the old master, restarted, rejoined as a replica of server {new}");
    }
    for (name, p) in [("a", &a), ("b", &b)] {
        let status = p.status().unwrap();
        for step in status["promotion"]["recent_steps"].as_array().into_iter().flatten() {
            eprintln!("[failover] node {name}: {}", step.as_str().unwrap_or(""));
        }
    }
    a.stop();
    b.stop();
    c.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_failover_lock_stops_the_promotion_and_writes_wait() {
    let c = tokio::task::block_in_place(Cluster::start).unwrap();
    let p = Proxy::start(&c, "[monitor]\nauto_failover = true\nfall = 2\n[routing]\nwriter_wait_ms = 30000\n").unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    c.exec(MASTER, "CREATE TABLE db_test.w (id INT PRIMARY KEY)").await.unwrap();
    c.wait_replicated().await.unwrap();
    // Another node (played by this test) holds the failover lock on replica1.
    let mut other_node = c.root_conn(1).await.unwrap();
    let got: Option<i64> = other_node.query_first("SELECT GET_LOCK('rwsplit_failover', 0)").await.unwrap();
    assert_eq!(got, Some(1));
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("INSERT INTO db_test.w VALUES (1)").await.unwrap();

    c.kill9("master").unwrap();
    let killed = Instant::now();
    // Once the master is gone (its port refuses), a write waits for a writer instead of
    // failing. (One sent in the instant before, on a connection still open, is in flight: its
    // outcome is unknown and it fails, as in the test above.)
    let master_port = c.port(MASTER);
    wait_until(Duration::from_secs(10), "the master's port to refuse", || async move {
        Ok(std::net::TcpStream::connect(("127.0.0.1", master_port)).is_err())
    })
    .await
    .unwrap();
    let write = tokio::spawn(async move {
        let r = conn.query_drop("INSERT INTO db_test.w VALUES (2)").await;
        (r.map_err(|e| e.to_string()), Instant::now())
    });
    wait_until(Duration::from_secs(20), "the proxy to back off for the lock", || async {
        Ok(admin_get(p.admin_port(), "/status").expect("admin endpoint").contains("holds the failover lock"))
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in REPLICAS {
        assert_eq!(read_only(&c, i).await, 1, "nothing promoted while another node holds the lock");
    }
    if write.is_finished() {
        let (result, _) = write.await.unwrap();
        panic!("the write should wait for a writer, it ended: {result:?}");
    }
    let released = Instant::now();
    other_node.query_drop("DO RELEASE_LOCK('rwsplit_failover')").await.unwrap();
    let (result, done) = write.await.unwrap();
    assert!(result.is_ok(), "the held write runs on the new writer: {result:?}");
    eprintln!(
        "[failover] with the lock held elsewhere: write waited {:?} after the kill, ran {:?} after the lock was released",
        done.duration_since(killed),
        done.duration_since(released)
    );
    let writable = [read_only(&c, 1).await, read_only(&c, 2).await].iter().filter(|&&ro| ro == 0).count();
    assert_eq!(writable, 1);
    p.stop();
    c.stop().unwrap();
}

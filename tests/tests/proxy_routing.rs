//! rwsplit against real servers through a real client library (mysql_async): reads spread over
//! the replicas, writes and transactions on the master, session state carried to whichever
//! backend serves a statement, and the protocol corners real applications use (prepared
//! statements, multi-results, large packets, COM_CHANGE_USER, COM_RESET_CONNECTION, ...).
//!
//! All tests share one cluster and one proxy (per test binary); each uses its own database.
//! `@@server_id` tells which server answered: 1 = master, 2 and 3 = replicas.

use mysql_async::prelude::*;
use mysql_async::{ChangeUserOpts, Conn, Row, Value};
use rwsplit_tests::*;
use std::collections::BTreeSet;
use std::time::Duration;

const READY: Duration = Duration::from_secs(30);

/// The shared proxy, once reads reach both replicas.
async fn proxy() -> &'static Proxy {
    let p = tokio::task::block_in_place(Proxy::shared_alternating);
    p.wait_reads_on_replicas(READY).await.unwrap();
    p
}

/// Runs `sql` (which must select `@@server_id` as its last column) `n` times and returns the
/// server ids seen, in order.
async fn ids_of(conn: &mut Conn, sql: &str, n: usize) -> Vec<u32> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Row = one(conn, sql).await.unwrap();
        let last = row.len() - 1;
        ids.push(row_value(row, last).unwrap());
    }
    ids
}

fn assert_all(ids: &[u32], expect: u32, what: &str) {
    assert!(ids.iter().all(|&id| id == expect), "{what}: expected every @@server_id = {expect}, got {ids:?}");
}

/// Every id is a replica's, and both replicas served some.
fn assert_replicas(ids: &[u32], what: &str) {
    assert!(ids.iter().all(|&id| id == 2 || id == 3), "{what}: reads must go to replicas, got {ids:?}");
    let set: BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(set.len(), 2, "{what}: both replicas should serve reads, got {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocommit_reads_alternate_between_replicas() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let mut conn = p.conn().await.unwrap();
    let ids = ids_of(&mut conn, "SELECT @@server_id", 20).await;
    assert_replicas(&ids, "20 autocommit SELECTs on one connection");
    for id in [2, 3] {
        let n = ids.iter().filter(|&&x| x == id).count();
        assert!(n >= 4, "reads should be spread over both replicas, server {id} got {n} of 20: {ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_land_on_the_master() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_write").await.unwrap();
    c.exec(MASTER, "CREATE TABLE rt_write.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))").await.unwrap();
    c.wait_replicated().await.unwrap();

    let mut conn = p.conn().await.unwrap();
    conn.query_drop("INSERT INTO rt_write.t (v) VALUES ('autocommit')").await.unwrap();
    assert_eq!(conn.affected_rows(), 1);
    assert_eq!(conn.last_insert_id(), Some(1), "LAST_INSERT_ID from the OK packet");
    // Read on the master directly: the row is there at once (it was written there).
    let v: String = c.query_value(MASTER, "SELECT v FROM rt_write.t WHERE id = 1").await.unwrap();
    assert_eq!(v, "autocommit");

    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO rt_write.t (v) VALUES ('in trx')").await.unwrap();
    assert_eq!(server_id_of(&mut conn).await.unwrap(), 1, "SELECT @@server_id inside the write's transaction");
    let n: i64 = value(&mut conn, "SELECT COUNT(*) FROM rt_write.t").await.unwrap();
    assert_eq!(n, 2, "the transaction sees its own insert");
    conn.query_drop("COMMIT").await.unwrap();
    let n: i64 = c.query_value(MASTER, "SELECT COUNT(*) FROM rt_write.t").await.unwrap();
    assert_eq!(n, 2);

    // Other writes: UPDATE, DELETE, REPLACE, DDL through the proxy.
    conn.query_drop("UPDATE rt_write.t SET v = 'updated' WHERE id = 1").await.unwrap();
    conn.query_drop("REPLACE INTO rt_write.t (id, v) VALUES (3, 'replaced')").await.unwrap();
    conn.query_drop("DELETE FROM rt_write.t WHERE id = 2").await.unwrap();
    conn.query_drop("CREATE TABLE rt_write.t2 (id INT PRIMARY KEY)").await.unwrap();
    let rows: Vec<(i32, String)> = c.query(MASTER, "SELECT id, v FROM rt_write.t ORDER BY id").await.unwrap();
    assert_eq!(rows, vec![(1, "updated".into()), (3, "replaced".into())]);
    c.wait_replicated().await.unwrap();
    let n: i64 = c
        .query_value(1, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'rt_write'")
        .await
        .unwrap();
    assert_eq!(n, 2, "the DDL replicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_is_pinned_to_the_master_until_commit() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let mut conn = p.conn().await.unwrap();
    for (begin, end) in [("BEGIN", "COMMIT"), ("START TRANSACTION", "ROLLBACK")] {
        conn.query_drop(begin).await.unwrap();
        let ids = ids_of(&mut conn, "SELECT @@server_id", 6).await;
        assert_all(&ids, 1, &format!("reads after {begin}"));
        conn.query_drop(end).await.unwrap();
        let ids = ids_of(&mut conn, "SELECT @@server_id", 10).await;
        assert_replicas(&ids, &format!("reads after {end}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocommit_off_pins_to_the_master() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("SET autocommit = 0").await.unwrap();
    let ids = ids_of(&mut conn, "SELECT @@server_id", 6).await;
    assert_all(&ids, 1, "reads with autocommit=0");
    conn.query_drop("COMMIT").await.unwrap();
    let ids = ids_of(&mut conn, "SELECT @@server_id", 4).await;
    assert_all(&ids, 1, "reads with autocommit=0 after COMMIT (a new transaction begins implicitly)");
    conn.query_drop("SET autocommit = 1").await.unwrap();
    let ids = ids_of(&mut conn, "SELECT @@server_id", 10).await;
    assert_replicas(&ids, "reads after SET autocommit = 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_reads_and_hints_go_to_the_master() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_lock").await.unwrap();
    c.exec(MASTER, "CREATE TABLE rt_lock.t (id INT PRIMARY KEY); INSERT INTO rt_lock.t VALUES (1)").await.unwrap();
    c.wait_replicated().await.unwrap();
    let mut conn = p.conn().await.unwrap();
    for sql in [
        "SELECT @@server_id FROM DUAL FOR UPDATE",
        "SELECT id, @@server_id FROM rt_lock.t WHERE id = 1 FOR UPDATE",
        "SELECT id, @@server_id FROM rt_lock.t WHERE id = 1 LOCK IN SHARE MODE",
        "/* rwsplit:master */ SELECT @@server_id",
    ] {
        let ids = ids_of(&mut conn, sql, 4).await;
        assert_all(&ids, 1, sql);
    }
    // And plain reads on the same connection still go to the replicas.
    let ids = ids_of(&mut conn, "SELECT id, @@server_id FROM rt_lock.t WHERE id = 1", 10).await;
    assert_replicas(&ids, "plain reads after locking reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_with_1045() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let err = p.conn_as(APP_USER, "not-the-password", Some(APP_DB)).await.unwrap_err();
    assert_eq!(server_error_code(&err), Some(1045), "wrong password: {err}");
    let err = p.conn_as("nobody", "app", None).await.unwrap_err();
    assert_eq!(server_error_code(&err), Some(1045), "unknown user: {err}");
    // The right one still works afterwards.
    let mut conn = p.conn().await.unwrap();
    assert_eq!(value::<i64>(&mut conn, "SELECT 1").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_and_charset_follow_reads_to_the_replicas() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    // Connect without a database, then choose one and a character set with SQL.
    let mut conn = p.conn_as(APP_USER, APP_PASSWORD, None).await.unwrap();
    let db: Option<String> = value(&mut conn, "SELECT DATABASE()").await.unwrap();
    assert_eq!(db, None);
    conn.query_drop("USE db_test").await.unwrap();
    for charset in ["latin1", "utf8mb4"] {
        conn.query_drop(format!("SET NAMES {charset}")).await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..10 {
            let (db, cs, id): (String, String, u32) =
                one(&mut conn, "SELECT DATABASE(), @@character_set_client, @@server_id").await.unwrap();
            assert_eq!(db, "db_test", "DATABASE() on server {id}");
            assert_eq!(cs, charset, "@@character_set_client on server {id}");
            ids.push(id);
        }
        assert_replicas(&ids, &format!("reads after USE db_test; SET NAMES {charset}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_variables_follow_reads_to_the_replicas() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("SET @x = 5").await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let (x, id): (Option<i64>, u32) = one(&mut conn, "SELECT @x, @@server_id").await.unwrap();
        assert_eq!(x, Some(5), "@x on server {id}");
        ids.push(id);
    }
    assert_replicas(&ids, "SELECT @x");
    conn.query_drop("SET @x = @x + 1, @s = 'text'").await.unwrap();
    let (x, s, _id): (i64, String, u32) = one(&mut conn, "SELECT @x, @s, @@server_id").await.unwrap();
    assert_eq!((x, s.as_str()), (6, "text"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_zone_and_sql_mode_follow_reads_to_the_replicas() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("SET time_zone = '+03:00'").await.unwrap();
    conn.query_drop("SET sql_mode = 'ANSI_QUOTES,NO_ENGINE_SUBSTITUTION'").await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let (tz, diff, mode, id): (String, String, String, u32) =
            one(&mut conn, "SELECT @@time_zone, TIMEDIFF(NOW(), UTC_TIMESTAMP()), @@sql_mode, @@server_id")
                .await
                .unwrap();
        assert_eq!(tz, "+03:00", "time_zone on server {id}");
        assert_eq!(diff, "03:00:00", "NOW() follows the time zone on server {id}");
        assert_eq!(mode, "ANSI_QUOTES,NO_ENGINE_SUBSTITUTION", "sql_mode on server {id}");
        ids.push(id);
    }
    assert_replicas(&ids, "reads after SET time_zone, sql_mode");
    // ANSI_QUOTES in effect: "x" is an identifier, so this is an unknown column.
    let err = conn.query_drop("SELECT \"no_such_column\"").await.unwrap_err();
    assert_eq!(server_error_code(&err), Some(1054), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_byte_utf8_round_trip() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_emoji").await.unwrap();
    c.exec(MASTER, "CREATE TABLE rt_emoji.t (id INT PRIMARY KEY, v VARCHAR(50)) CHARACTER SET utf8mb4").await.unwrap();
    c.wait_replicated().await.unwrap();
    let text = "rwsplit 😀 🐬 ✓ 漢字";
    let mut conn = p.conn().await.unwrap();
    conn.query_drop(format!("INSERT INTO rt_emoji.t VALUES (1, '{text}')")).await.unwrap();
    conn.exec_drop("INSERT INTO rt_emoji.t VALUES (?, ?)", (2, text)).await.unwrap();
    // Stored correctly (checked on the master directly, as bytes).
    let hex: String = c.query_value(MASTER, "SELECT HEX(v) FROM rt_emoji.t WHERE id = 1").await.unwrap();
    let expect: String = text.bytes().map(|b| format!("{b:02X}")).collect();
    assert_eq!(hex, expect, "the 4-byte characters were stored as utf8mb4");
    let same: i64 = c.query_value(MASTER, "SELECT COUNT(DISTINCT v) FROM rt_emoji.t").await.unwrap();
    assert_eq!(same, 1, "text and prepared inserts stored the same string");
    c.wait_replicated().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..6 {
        let (v, id): (String, u32) =
            one(&mut conn, "SELECT v, @@server_id FROM rt_emoji.t WHERE id = 1").await.unwrap();
        assert_eq!(v, text, "read back from server {id}");
        ids.push(id);
        let (v, _id): (String, u32) =
            conn.exec_first("SELECT v, @@server_id FROM rt_emoji.t WHERE id = ?", (2,)).await.unwrap().unwrap();
        assert_eq!(v, text);
    }
    assert_replicas(&ids, "emoji reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_init_db() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_initdb").await.unwrap();
    let mut conn = p.conn().await.unwrap();
    conn.ping().await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.ping().await.unwrap();
    assert_eq!(server_id_of(&mut conn).await.unwrap(), 1, "a ping inside a transaction keeps it pinned");
    conn.query_drop("COMMIT").await.unwrap();
    conn.ping().await.unwrap();
    assert_eq!(value::<i64>(&mut conn, "SELECT 1").await.unwrap(), 1);

    // COM_INIT_DB: mysql_async has no call for it; the mariadb client's `use` command sends it.
    let out = std::process::Command::new("mariadb")
        .args(["--no-defaults", "--protocol=tcp", "-h127.0.0.1", "-uapp", "-papp", "-N", "-B"])
        .arg(format!("-P{}", p.port()))
        .args(["-e", "use rt_initdb\nSELECT DATABASE(), @@server_id; SELECT DATABASE(), @@server_id; SELECT DATABASE(), @@server_id; SELECT DATABASE(), @@server_id"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for line in lines {
        let (db, id) = line.split_once('\t').unwrap();
        assert_eq!(db, "rt_initdb", "DATABASE() after COM_INIT_DB, on server {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_resets_the_session() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_chuser").await.unwrap();
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("SET @x = 5").await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.change_user(
        ChangeUserOpts::default()
            .with_user(Some(APP_USER.into()))
            .with_pass(Some(APP_PASSWORD.into()))
            .with_db_name(Some("rt_chuser".into())),
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let (db, x, user, id): (String, Option<i64>, String, u32) =
            one(&mut conn, "SELECT DATABASE(), @x, CURRENT_USER(), @@server_id").await.unwrap();
        assert_eq!(db, "rt_chuser", "COM_CHANGE_USER's database, on server {id}");
        assert_eq!(x, None, "user variables are gone after COM_CHANGE_USER (server {id})");
        assert!(user.starts_with("app@"), "{user}");
        ids.push(id);
    }
    assert_replicas(&ids, "reads after COM_CHANGE_USER (its transaction ended)");
    // A wrong password in COM_CHANGE_USER is refused.
    let err = conn
        .change_user(ChangeUserOpts::default().with_user(Some(APP_USER.into())).with_pass(Some("wrong".into())))
        .await
        .unwrap_err();
    assert_eq!(server_error_code(&err), Some(1045), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_connection_clears_the_session() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("SET @x = 5").await.unwrap();
    conn.query_drop("CREATE TEMPORARY TABLE rt_reset_tmp (id INT)").await.unwrap();
    conn.query_drop("SET autocommit = 0").await.unwrap();
    assert!(conn.reset().await.unwrap(), "COM_RESET_CONNECTION is used against MariaDB 10.11");
    let mut ids = Vec::new();
    for _ in 0..10 {
        let (x, db, id): (Option<i64>, Option<String>, u32) =
            one(&mut conn, "SELECT @x, DATABASE(), @@server_id").await.unwrap();
        assert_eq!(x, None, "@x after COM_RESET_CONNECTION on server {id}");
        assert_eq!(db.as_deref(), Some(APP_DB), "the database survives COM_RESET_CONNECTION");
        ids.push(id);
    }
    assert_replicas(&ids, "reads after COM_RESET_CONNECTION (no temp table, autocommit back on)");
    let err = conn.query_drop("SELECT * FROM rt_reset_tmp").await.unwrap_err();
    assert_eq!(server_error_code(&err), Some(1146), "the temporary table is gone: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statements_and_procedures_return_every_result_set() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_multi").await.unwrap();
    c.exec(MASTER, "CREATE PROCEDURE rt_multi.two() BEGIN SELECT 1 AS a; SELECT 2 AS b, 'x' AS c; END").await.unwrap();
    c.wait_replicated().await.unwrap();
    let mut conn = p.conn().await.unwrap();

    let mut result = conn.query_iter("SELECT 1; SELECT 2, 'two'").await.unwrap();
    let first: Vec<i64> = result.collect().await.unwrap();
    let second: Vec<(i64, String)> = result.collect().await.unwrap();
    assert!(result.is_empty());
    drop(result);
    assert_eq!(first, vec![1]);
    assert_eq!(second, vec![(2, "two".to_string())]);

    let mut sets: Vec<Vec<Row>> = Vec::new();
    let mut result = conn.query_iter("CALL rt_multi.two()").await.unwrap();
    while !result.is_empty() {
        let rows: Vec<Row> = result.collect().await.unwrap();
        if !rows.is_empty() {
            sets.push(rows);
        }
    }
    drop(result);
    assert_eq!(sets.len(), 2, "CALL returns two result sets");
    assert_eq!(sets[0][0].get::<i64, _>("a"), Some(1));
    assert_eq!(sets[1][0].get::<i64, _>("b"), Some(2));
    assert_eq!(sets[1][0].get::<String, _>("c").as_deref(), Some("x"));

    // The connection is in a clean state afterwards.
    assert_eq!(value::<i64>(&mut conn, "SELECT 3").await.unwrap(), 3);
    let mut result = conn.query_iter("SELECT 4; SELECT 5").await.unwrap();
    let four: Vec<i64> = result.collect().await.unwrap();
    let five: Vec<i64> = result.collect().await.unwrap();
    drop(result);
    assert_eq!((four, five), (vec![4], vec![5]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_across_backends() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_ps").await.unwrap();
    c.exec(MASTER, "CREATE TABLE rt_ps.t (id INT PRIMARY KEY, v VARCHAR(40), n DOUBLE NULL)").await.unwrap();
    c.wait_replicated().await.unwrap();
    let mut conn = p.conn().await.unwrap();

    // A prepared read with parameters, reused many times: it runs on both replicas.
    let read = conn.prep("SELECT ? + 1, CONCAT(?, '!'), @@server_id").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..20i64 {
        let (n, s, id): (i64, String, u32) = conn.exec_first(&read, (i, format!("p{i}"))).await.unwrap().unwrap();
        assert_eq!((n, s), (i + 1, format!("p{i}!")), "server {id}");
        ids.push(id);
    }
    assert_replicas(&ids, "a prepared SELECT executed 20 times");

    // A prepared insert, reused: every row lands on the master.
    let insert = conn.prep("INSERT INTO rt_ps.t (id, v, n) VALUES (?, ?, ?)").await.unwrap();
    for i in 0..50i64 {
        let n = if i % 5 == 0 { Value::NULL } else { Value::Double(i as f64 / 2.0) };
        conn.exec_drop(&insert, (i, format!("row {i}"), n)).await.unwrap();
        assert_eq!(conn.affected_rows(), 1);
        // Interleave: the read statement keeps working between writes.
        if i % 10 == 0 {
            let (_, _, id): (i64, String, u32) = conn.exec_first(&read, (i, "x")).await.unwrap().unwrap();
            assert!(id == 2 || id == 3, "prepared read between prepared writes went to {id}");
        }
    }
    let n: i64 = c.query_value(MASTER, "SELECT COUNT(*) FROM rt_ps.t").await.unwrap();
    assert_eq!(n, 50);
    let nulls: i64 = c.query_value(MASTER, "SELECT COUNT(*) FROM rt_ps.t WHERE n IS NULL").await.unwrap();
    assert_eq!(nulls, 10);

    // Inside a transaction the same prepared read goes to the master.
    conn.query_drop("BEGIN").await.unwrap();
    for i in 0..4i64 {
        let (_, _, id): (i64, String, u32) = conn.exec_first(&read, (i, "t")).await.unwrap().unwrap();
        assert_eq!(id, 1, "prepared read inside a transaction");
    }
    conn.query_drop("COMMIT").await.unwrap();

    // Prepared reads of the inserted rows from the replicas, binary-protocol result rows.
    c.wait_replicated().await.unwrap();
    let by_id = conn.prep("SELECT v, n, @@server_id FROM rt_ps.t WHERE id = ?").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..20i64 {
        let (v, n, id): (String, Option<f64>, u32) = conn.exec_first(&by_id, (i,)).await.unwrap().unwrap();
        assert_eq!(v, format!("row {i}"));
        assert_eq!(n, if i % 5 == 0 { None } else { Some(i as f64 / 2.0) });
        ids.push(id);
    }
    assert_replicas(&ids, "prepared reads of inserted rows");
    conn.close(by_id).await.unwrap();
    conn.close(read).await.unwrap();
    conn.close(insert).await.unwrap();
    // Many statements prepared and closed: nothing leaks into errors.
    for i in 0..30 {
        let s = conn.prep(format!("SELECT {i} + ?")).await.unwrap();
        let v: Option<i64> = conn.exec_first(&s, (1,)).await.unwrap();
        assert_eq!(v, Some(i + 1));
        conn.close(s).await.unwrap();
    }
}

/// Deterministic incompressible-looking bytes.
fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_mib_blob_round_trip() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_blob").await.unwrap();
    c.exec(MASTER, "CREATE TABLE rt_blob.t (id INT PRIMARY KEY, b LONGBLOB)").await.unwrap();
    c.wait_replicated().await.unwrap();
    let blob = pseudo_random_bytes(20 << 20, 42);
    let mut conn = p.conn().await.unwrap();

    // Prepared insert (binary protocol; the parameter is larger than one 16 MiB packet).
    conn.exec_drop("INSERT INTO rt_blob.t VALUES (?, ?)", (1, blob.clone())).await.unwrap();
    // Text insert: a ~40 MiB COM_QUERY, split over three packets.
    let hex: String = blob.iter().map(|b| format!("{b:02x}")).collect();
    conn.query_drop(format!("INSERT INTO rt_blob.t VALUES (2, X'{hex}')")).await.unwrap();
    drop(hex);
    let (len, md5): (i64, String) =
        one(&mut conn, "SELECT LENGTH(b), MD5(b) FROM rt_blob.t WHERE id = 1 FOR UPDATE").await.unwrap();
    assert_eq!(len, 20 << 20);
    let (len2, md5_2): (i64, String) =
        c.query(MASTER, "SELECT LENGTH(b), MD5(b) FROM rt_blob.t WHERE id = 2").await.unwrap().remove(0);
    assert_eq!((len2, &md5_2), (len, &md5), "prepared and text inserts stored the same bytes");

    c.wait_replicated().await.unwrap();
    let mut ids = Vec::new();
    for id in [1, 2] {
        // Text-protocol result (one row over two packets), then a binary-protocol one.
        let (b, sid): (Vec<u8>, u32) =
            one(&mut conn, &format!("SELECT b, @@server_id FROM rt_blob.t WHERE id = {id}")).await.unwrap();
        assert!(b == blob, "row {id}: text result differs (len {} vs {})", b.len(), blob.len());
        ids.push(sid);
        let (b, sid): (Vec<u8>, u32) =
            conn.exec_first("SELECT b, @@server_id FROM rt_blob.t WHERE id = ?", (id,)).await.unwrap().unwrap();
        assert!(b == blob, "row {id}: binary result differs (len {} vs {})", b.len(), blob.len());
        ids.push(sid);
    }
    assert!(ids.iter().all(|&id| id == 2 || id == 3), "blob reads went to replicas: {ids:?}");
    // The connection is usable afterwards.
    assert_eq!(value::<i64>(&mut conn, "SELECT 7").await.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_packet_info_string_survives() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_info").await.unwrap();
    c.exec(MASTER, "CREATE TABLE rt_info.t (id INT PRIMARY KEY, v INT)").await.unwrap();
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("INSERT INTO rt_info.t VALUES (1, 0), (2, 0), (3, 0), (4, 0)").await.unwrap();
    assert_eq!(conn.affected_rows(), 4);
    assert_eq!(conn.info(), "Records: 4  Duplicates: 0  Warnings: 0");
    conn.query_drop("UPDATE rt_info.t SET v = 1 WHERE id <= 3").await.unwrap();
    assert_eq!(conn.affected_rows(), 3);
    assert_eq!(conn.info(), "Rows matched: 3  Changed: 3  Warnings: 0");
    conn.query_drop("UPDATE rt_info.t SET v = 1 WHERE id <= 2").await.unwrap();
    assert_eq!(conn.affected_rows(), 0);
    assert_eq!(conn.info(), "Rows matched: 2  Changed: 0  Warnings: 0");
    conn.query_drop("INSERT INTO rt_info.t VALUES (5, 'not a number')").await.unwrap_err();
    conn.query_drop("INSERT IGNORE INTO rt_info.t VALUES (1, 9), (6, 9)").await.unwrap();
    assert_eq!(conn.info(), "Records: 2  Duplicates: 1  Warnings: 1");
    assert_eq!(conn.get_warnings(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_of_one_client_does_not_leak_to_another() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let c = Cluster::shared();
    c.fresh_db("rt_leak_a").await.unwrap();
    let mut a = p.conn_as(APP_USER, APP_PASSWORD, Some("rt_leak_a")).await.unwrap();
    let mut b = p.conn().await.unwrap();
    let mut none = p.conn_as(APP_USER, APP_PASSWORD, None).await.unwrap();
    // Interleaved, so pooled backend connections pass between the three sessions.
    for round in 0..15 {
        let (da, ia): (Option<String>, u32) = one(&mut a, "SELECT DATABASE(), @@server_id").await.unwrap();
        let (db, ib): (Option<String>, u32) = one(&mut b, "SELECT DATABASE(), @@server_id").await.unwrap();
        let (dn, inn): (Option<String>, u32) = one(&mut none, "SELECT DATABASE(), @@server_id").await.unwrap();
        assert_eq!(da.as_deref(), Some("rt_leak_a"), "client A, round {round}, server {ia}");
        assert_eq!(db.as_deref(), Some(APP_DB), "client B, round {round}, server {ib}");
        assert_eq!(dn, None, "client without a database, round {round}, server {inn}");
        if round == 7 {
            a.query_drop("USE db_test").await.unwrap();
            b.query_drop("USE rt_leak_a").await.unwrap();
            std::mem::swap(&mut a, &mut b);
        }
    }
    a.disconnect().await.unwrap();
    // New clients after A is gone: never A's schema.
    for _ in 0..3 {
        let mut fresh = p.conn().await.unwrap();
        for _ in 0..4 {
            let d: Option<String> = value(&mut fresh, "SELECT DATABASE()").await.unwrap();
            assert_eq!(d.as_deref(), Some(APP_DB));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_table_reads_go_to_the_master() {
    let p = proxy().await;
    let _log = p.log_on_panic();
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("CREATE TEMPORARY TABLE rt_tmp (id INT PRIMARY KEY)").await.unwrap();
    conn.query_drop("INSERT INTO rt_tmp VALUES (1), (2)").await.unwrap();
    for _ in 0..6 {
        let (n, id): (i64, u32) = one(&mut conn, "SELECT COUNT(*), @@server_id FROM rt_tmp").await.unwrap();
        assert_eq!((n, id), (2, 1), "SELECT from the session's temporary table");
    }
    conn.query_drop("DROP TEMPORARY TABLE rt_tmp").await.unwrap();
    assert_eq!(value::<i64>(&mut conn, "SELECT 1").await.unwrap(), 1);
}

/// The default `routing.read_balance = "session"`: a session's reads stay on one replica (hot
/// server connections, as behind a TCP balancer), and sessions spread over the replicas by
/// how many read from each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_session_reads_from_one_replica_and_sessions_spread() {
    let c = tokio::task::block_in_place(Cluster::shared);
    let p = tokio::task::block_in_place(|| Proxy::start(c, "")).unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(READY).await.unwrap();
    let mut conn = p.conn().await.unwrap();
    let ids = ids_of(&mut conn, "SELECT @@server_id", 20).await;
    assert!(ids[0] == 2 || ids[0] == 3, "reads go to a replica: {ids:?}");
    assert_all(&ids, ids[0], "20 reads of one session");
    let mut sessions = Vec::new();
    let mut first = Vec::new();
    for _ in 0..10 {
        let mut s = p.conn().await.unwrap();
        let ids = ids_of(&mut s, "SELECT @@server_id", 3).await;
        assert_all(&ids, ids[0], "3 reads of one session");
        first.push(ids[0]);
        sessions.push(s);
    }
    // With the first session still open: 11 sessions, least loaded first.
    for id in [2, 3] {
        let n = first.iter().filter(|&&x| x == id).count();
        assert!(
            (4..=6).contains(&n),
            "10 new sessions should spread over the replicas, server {id} got {n}: {first:?}"
        );
    }
}

/// Logging in with a database: a known one costs no backend round trip (rwsplit keeps the
/// backend account's schema list), one created a moment ago still works (checked on a server),
/// and an unknown one gets the server's own error, as when connecting to the master directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_schema_known_new_and_unknown() {
    let p = proxy().await;
    let c = tokio::task::block_in_place(Cluster::shared);
    let _log = p.log_on_panic();
    let mut conn = p.conn_as(APP_USER, APP_PASSWORD, Some(APP_DB)).await.unwrap();
    let db: String = conn.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db, APP_DB);
    // Created just now on the master: not in the list yet.
    let fresh = format!("login_new_{}", std::process::id());
    c.exec(0, &format!("CREATE DATABASE IF NOT EXISTS {fresh}")).await.unwrap();
    c.wait_replicated().await.unwrap();
    let mut conn = p.conn_as(APP_USER, APP_PASSWORD, Some(&fresh)).await.unwrap();
    let db: String = conn.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db, fresh);
    c.exec(0, &format!("DROP DATABASE {fresh}")).await.unwrap();
    // Unknown: the server's 1049, as directly.
    let direct = mysql_async::Conn::new(c.opts(0, APP_USER, APP_PASSWORD, Some("no_such_db_here"))).await.unwrap_err();
    let proxied = p.conn_as(APP_USER, APP_PASSWORD, Some("no_such_db_here")).await.unwrap_err();
    let code = |e: &mysql_async::Error| match e {
        mysql_async::Error::Server(s) => Some((s.code, s.state.clone(), s.message.clone())),
        _ => None,
    };
    assert_eq!(code(&proxied), code(&direct), "direct: {direct} / rwsplit: {proxied}");
    assert_eq!(code(&direct).map(|c| c.0), Some(1049));
}

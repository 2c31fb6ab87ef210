//! The lab itself, without rwsplit: what every proxy test relies on (GTID replication,
//! semi-sync with two clients, read_only replicas, the accounts and their limits), and that a
//! second cluster runs beside the first and goes away cleanly.

use rwsplit_tests::*;
use std::time::Duration;

#[tokio::test]
async fn replication_semisync_and_read_only() {
    let c = Cluster::shared();
    for (i, id) in [(MASTER, 1u32), (1, 2), (2, 3)] {
        let got: u32 = c.query_value(i, "SELECT @@server_id").await.unwrap();
        assert_eq!(got, id, "server {i}");
        let ro: i64 = c.query_value(i, "SELECT @@read_only").await.unwrap();
        assert_eq!(ro, i64::from(i != MASTER), "read_only of server {i}");
        let strict: i64 = c.query_value(i, "SELECT @@gtid_strict_mode").await.unwrap();
        assert_eq!(strict, 1);
    }
    assert_eq!(c.query_value::<String>(MASTER, "SELECT @@binlog_format").await.unwrap(), "ROW");
    let status: Vec<(String, String)> =
        c.query(MASTER, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'").await.unwrap();
    let get = |k: &str| status.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("Rpl_semi_sync_master_status"), "ON", "{status:?}");
    assert_eq!(get("Rpl_semi_sync_master_clients"), "2", "{status:?}");

    c.fresh_db("lab_repl").await.unwrap();
    c.exec(
        MASTER,
        "CREATE TABLE lab_repl.t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO lab_repl.t VALUES (1, 'x')",
    )
    .await
    .unwrap();
    c.wait_replicated().await.unwrap();
    for i in REPLICAS {
        let v: String = c.query_value(i, "SELECT v FROM lab_repl.t WHERE id = 1").await.unwrap();
        assert_eq!(v, "x");
        let using: Vec<mysql_async::Row> = c.query(i, "SHOW SLAVE STATUS").await.unwrap();
        let using: String = using[0].get("Using_Gtid").unwrap();
        assert_eq!(using, "Slave_Pos");
    }
}

#[tokio::test]
async fn accounts_have_exactly_their_privileges() {
    let c = Cluster::shared();
    c.fresh_db("lab_grants").await.unwrap();
    c.exec(MASTER, "CREATE TABLE lab_grants.t (id INT PRIMARY KEY)").await.unwrap();
    c.wait_replicated().await.unwrap();

    // app writes on the master, but not on a read_only replica: no READ_ONLY ADMIN.
    let mut app = mysql_async::Conn::new(c.opts(MASTER, APP_USER, APP_PASSWORD, Some(APP_DB))).await.unwrap();
    value::<i64>(&mut app, "SELECT 1").await.unwrap();
    use mysql_async::prelude::Queryable;
    app.query_drop("INSERT INTO lab_grants.t VALUES (1)").await.unwrap();
    for i in REPLICAS {
        let mut conn = mysql_async::Conn::new(c.opts(i, APP_USER, APP_PASSWORD, Some(APP_DB))).await.unwrap();
        let err = conn.query_drop("INSERT INTO lab_grants.t VALUES (2)").await.unwrap_err();
        assert_eq!(server_error_code(&err), Some(1290), "write on read_only replica {i}: {err}");
    }
    let grants: Vec<String> = app.query("SHOW GRANTS").await.unwrap();
    let all = grants.join("\n");
    assert!(!all.contains("ALL PRIVILEGES") && !all.contains("READ_ONLY ADMIN") && !all.contains("SUPER"), "{all}");

    // monitor can read replication state everywhere.
    for i in [MASTER, 1, 2] {
        let mut mon = mysql_async::Conn::new(c.opts(i, "monitor", "monitor", None)).await.unwrap();
        mon.query_drop("SHOW SLAVE STATUS").await.unwrap();
        mon.query_drop("SHOW MASTER STATUS").await.unwrap();
        mon.query_drop("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'").await.unwrap();
    }
    // Wrong password is refused by the server itself.
    let err = mysql_async::Conn::new(c.opts(MASTER, APP_USER, "wrong", None)).await.unwrap_err();
    assert_eq!(server_error_code(&err), Some(1045), "{err}");
}

#[tokio::test]
async fn replica_sql_thread_stop_and_start() {
    let c = Cluster::shared();
    c.fresh_db("lab_sqlthread").await.unwrap();
    c.exec(MASTER, "CREATE TABLE lab_sqlthread.t (id INT PRIMARY KEY)").await.unwrap();
    c.wait_replicated().await.unwrap();
    c.replica_sql_thread(1, false).await.unwrap();
    c.exec(MASTER, "INSERT INTO lab_sqlthread.t VALUES (1)").await.unwrap();
    let err = c.wait_replicated_within(Duration::from_secs(1)).await.unwrap_err();
    assert!(err.to_string().contains("replica1"), "{err:#}");
    c.replica_sql_thread(1, true).await.unwrap();
    c.wait_replicated().await.unwrap();
    let n: i64 = c.query_value(1, "SELECT COUNT(*) FROM lab_sqlthread.t").await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn second_cluster_runs_beside_and_stops_cleanly() {
    let shared = Cluster::shared();
    let other = tokio::task::spawn_blocking(Cluster::start).await.unwrap().unwrap();
    for i in [MASTER, 1, 2] {
        assert_ne!(other.port(i), shared.port(i));
    }
    let id: u32 = other.query_value(2, "SELECT @@server_id").await.unwrap();
    assert_eq!(id, 3);
    let dir = other.state_dir().to_path_buf();
    let master_pid = std::fs::read_to_string(dir.join("master/mariadbd.pid")).unwrap();
    tokio::task::spawn_blocking(move || other.stop()).await.unwrap().unwrap();
    assert!(!dir.exists(), "{} should be removed", dir.display());
    assert!(!std::path::Path::new(&format!("/proc/{}", master_pid.trim())).exists(), "master still running");
    // The shared cluster is untouched.
    let id: u32 = shared.query_value(MASTER, "SELECT @@server_id").await.unwrap();
    assert_eq!(id, 1);
}

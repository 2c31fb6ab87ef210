//! TLS from rwsplit to the servers, on a cluster of this test's own whose servers all run with
//! `require_secure_transport = ON` (set at run time; the replicas' IO threads, connected
//! before, stay connected, and nothing here needs a new replication connection):
//!
//! - with `backend.tls = true` and the lab's CA, clients log in, write, read from both
//!   replicas, use a prepared statement, and `SHOW STATUS LIKE 'Ssl_cipher'` through rwsplit
//!   shows the cipher of rwsplit's own connection (on a replica and on the master); the
//!   monitor (also over TLS) sees every server up;
//! - without backend TLS, the servers refuse rwsplit (MariaDB 10.11 answers a login over plain
//!   TCP with "Access denied" when secure transport is required) and a client gets an error at
//!   once (no hang) naming the server and its answer (or, when the monitor was refused too,
//!   that no server is available, the servers' answer in rwsplit's log);
//! - with a CA that did not sign the servers' certificate, the connections fail the same way,
//!   with the certificate named as the reason.

use mysql_async::prelude::*;
use mysql_async::{Conn, SslOpts};
use rwsplit_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A root connection to server `i` over TLS (plain TCP is refused once secure transport is
/// required), verified against `ca`.
async fn root_tls(cluster: &Cluster, i: usize, ca: &Path) -> Conn {
    let ssl = SslOpts::default().with_root_certs(vec![ca.to_path_buf().into()]).with_disable_built_in_roots(true);
    let opts = cluster.opts(i, "root", "", None).ssl_opts(Some(ssl));
    tokio::time::timeout(Duration::from_secs(10), Conn::new(opts))
        .await
        .expect("root TLS connection timed out")
        .unwrap_or_else(|e| panic!("root over TLS to server {i}: {e}"))
}

/// A rwsplit process started by hand (the harness's `Proxy::start` waits for a working
/// `SELECT 1`, which these configurations must not give). Killed when dropped.
struct RawProxy {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl RawProxy {
    fn start(cluster: &Cluster, extra_toml: &str, dir: &Path) -> RawProxy {
        let ports = free_ports(2).unwrap();
        let config = proxy_config(cluster, ports[0], ports[1], extra_toml).unwrap();
        let config_path = dir.join(format!("rwsplit-{}.toml", ports[0]));
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join(format!("rwsplit-{}.log", ports[0]));
        let mut cmd = Command::new(rwsplit_bin().unwrap());
        cmd.arg("--config").arg(&config_path);
        log_to(&mut cmd, &log).unwrap();
        // The test reads info lines of the log.
        let child = cmd.env("RUST_LOG", "info").spawn().unwrap();
        let p = RawProxy { child, port: ports[0], log };
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", p.port)).is_err() {
            assert!(Instant::now() < deadline, "rwsplit did not listen:\n{}", tail_file(&p.log, 40));
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }
}

/// A client's login on db_test and `SELECT 1` through rwsplit on `port` (log at `log`): the
/// error it gets (panics on success or after 30 s), and how long that took.
async fn client_error(port: u16, log: &Path) -> (mysql_async::Error, Duration) {
    let started = Instant::now();
    let attempt = async {
        let mut conn = Conn::new(loopback_opts(port, APP_USER, APP_PASSWORD, Some(APP_DB))).await?;
        conn.query_drop("SELECT 1").await?;
        Ok::<_, mysql_async::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(30), attempt).await {
        Err(_) => panic!("the client hung for 30 s instead of getting an error\n{}", tail_file(log, 40)),
        Ok(Ok(())) => panic!("the client was served: expected an error\n{}", tail_file(log, 40)),
        Ok(Err(e)) => (e, started.elapsed()),
    }
}

/// Waits (bounded) until rwsplit's log at `log` contains `needle`.
async fn wait_log(log: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(log).unwrap_or_default().contains(needle) {
        assert!(Instant::now() < deadline, "rwsplit's log never said {needle:?}:\n{}", tail_file(log, 40));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for RawProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA of its own (not the lab's) in `dir`: its certificate's path.
fn other_ca(dir: &Path) -> PathBuf {
    let ca = dir.join("other-ca.pem");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=not the lab CA"])
        .arg("-keyout")
        .arg(dir.join("other-ca-key.pem"))
        .arg("-out")
        .arg(&ca)
        .stdin(Stdio::null())
        .output()
        .expect("running openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    ca
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_tls_with_require_secure_transport() {
    let cluster = tokio::task::block_in_place(Cluster::start).unwrap();
    let ca = cluster.state_dir().join("tls/ca.pem");
    assert!(ca.is_file(), "the lab made no CA at {}", ca.display());
    cluster.exec(MASTER, "CREATE TABLE db_test.tls_t (id INT PRIMARY KEY, v VARCHAR(20))").await.unwrap();
    cluster.wait_replicated().await.unwrap();
    // For (b): rwsplit without backend TLS, started while plain connections still work (its
    // monitor keeps the connections it has), pooling none, so every statement logs in anew.
    let plain_proxy =
        tokio::task::block_in_place(|| Proxy::start(&cluster, "[backend]\nmax_idle_per_server = 0\n")).unwrap();
    for i in 0..3 {
        cluster.exec(i, "SET GLOBAL require_secure_transport = ON").await.unwrap();
    }
    // Plain TCP is refused now (MariaDB 10.11 says "Access denied", 1045).
    let plain = Conn::new(cluster.opts(MASTER, APP_USER, APP_PASSWORD, None)).await;
    let e = plain.expect_err("a plain connection to a server must be refused now");
    assert_eq!(server_error_code(&e), Some(1045), "{e}");

    // (a) backend TLS with the lab's CA.
    // Reads spread statement by statement, so that one session reaches both replicas whatever
    // the timing of other sessions (the test is about TLS, not about read affinity).
    let extra =
        format!("[backend]\ntls = true\ntls_ca = \"{}\"\n[routing]\nread_balance = \"statement\"\n", ca.display());
    let p = tokio::task::block_in_place(|| Proxy::start(&cluster, &extra)).unwrap();
    {
        let _log = p.log_on_panic();
        p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
        let mut conn = p.conn().await.unwrap();
        conn.query_drop("INSERT INTO tls_t VALUES (1, 'over tls')").await.unwrap();
        // Through a transaction: rwsplit's connection to the master.
        conn.query_drop("START TRANSACTION").await.unwrap();
        conn.query_drop("INSERT INTO tls_t VALUES (2, 'in trx')").await.unwrap();
        let id: u32 = value(&mut conn, "SELECT @@server_id").await.unwrap();
        assert_eq!(id, 1, "a transaction with a write runs on the master");
        let (_, cipher): (String, String) = one(&mut conn, "SHOW STATUS LIKE 'Ssl_cipher'").await.unwrap();
        assert!(!cipher.is_empty(), "rwsplit's connection to the master is not on TLS");
        eprintln!("[backend_tls] master connection cipher: {cipher}");
        conn.query_drop("COMMIT").await.unwrap();
        // Reads on the replicas, over TLS too: each answer (server id, rows, the cipher of the
        // backend connection) comes from one statement, so from one server.
        let mut seen = std::collections::BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut c = p.conn().await.unwrap();
        while seen.len() < 2 {
            assert!(Instant::now() < deadline, "both rows on both replicas, over TLS: seen only {seen:?}");
            let (id, n, cipher): (u32, u64, Option<String>) = one(
                &mut c,
                "SELECT @@server_id, (SELECT COUNT(*) FROM tls_t), \
                 (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER')",
            )
            .await
            .unwrap();
            if n == 2 && id != 1 {
                let cipher = cipher.unwrap_or_default();
                assert!(!cipher.is_empty(), "rwsplit's connection to server {id} is not on TLS");
                seen.insert(id);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(c);
        // A prepared statement, executed twice.
        let stmt = conn.prep("SELECT v FROM tls_t WHERE id = ?").await.unwrap();
        for (id, want) in [(1, "over tls"), (2, "in trx")] {
            let got: Option<String> = conn.exec_first(&stmt, (id,)).await.unwrap();
            assert_eq!(got.as_deref(), Some(want));
        }
        conn.close(stmt).await.unwrap();
        drop(conn);
        // The monitor (over TLS too) sees every server up.
        let status = p.status().unwrap();
        let health: Vec<&str> = (0..3).map(|i| status["servers"][i]["health"].as_str().unwrap_or("?")).collect();
        assert_eq!(health, ["up", "up", "up"], "{status:#}");
    }
    drop(p);

    let dir = tempfile::tempdir().unwrap();
    // (b) no backend TLS: the servers refuse rwsplit's new connections; an error, not a hang.
    {
        let log = plain_proxy.dir().join("rwsplit.log");
        let (e, took) = client_error(plain_proxy.port(), &log).await;
        eprintln!("[backend_tls] without backend TLS, after {took:?}: {e}");
        assert!(took < Duration::from_secs(15), "the error took {took:?}");
        let e = e.to_string();
        assert!(e.contains("connect: server refused the login: Access denied for user 'app'"), "{e}");
        drop(plain_proxy);
        // Started now, its monitor is refused too: every server down, an error at once.
        let raw = RawProxy::start(&cluster, "", dir.path());
        let (e, took) = client_error(raw.port, &raw.log).await;
        eprintln!("[backend_tls] without backend TLS from the start, after {took:?}: {e}");
        assert!(took < Duration::from_secs(15), "the error took {took:?}");
        wait_log(&raw.log, "connect failed: ERROR 1045 (28000): Access denied for user 'monitor'").await;
    }
    // (c) a CA that did not sign the servers' certificate.
    {
        let extra = format!("[backend]\ntls = true\ntls_ca = \"{}\"\n", other_ca(dir.path()).display());
        let raw = RawProxy::start(&cluster, &extra, dir.path());
        let (e, took) = client_error(raw.port, &raw.log).await;
        eprintln!("[backend_tls] with the wrong CA, after {took:?}: {e}");
        assert!(took < Duration::from_secs(15), "the error took {took:?}");
        wait_log(&raw.log, "UnknownIssuer").await;
    }

    // Leave the servers as the lab made them (the cluster is stopped anyway).
    for i in 0..3 {
        let mut c = root_tls(&cluster, i, &ca).await;
        c.query_drop("SET GLOBAL require_secure_transport = OFF").await.unwrap();
        let _ = c.disconnect().await;
    }
}

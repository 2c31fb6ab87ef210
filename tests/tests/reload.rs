//! Live reconfiguration: servers added, drained and removed by SIGHUP and by `rwsplit reload`
//! while clients keep running statements (reads and writes on long-lived connections, and
//! short connections logging in), with zero client errors; a reload that would remove the
//! writer, and one with a syntax error, are refused and the running config stays; `rwsplit
//! status` shows the config version in force.

use anyhow::{Context, Result};
use mysql_async::prelude::*;
use rwsplit_tests::*;
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `[[servers]]` for the cluster's servers `which` (0 master, 1 replica1, 2 replica2), plus
/// `drain = true` on those in `drained`.
fn servers_toml(cluster: &Cluster, which: &[usize], drained: &[usize]) -> String {
    let names = ["master", "replica1", "replica2"];
    which
        .iter()
        .map(|&i| {
            let drain = if drained.contains(&i) { "drain = true\n" } else { "" };
            format!("[[servers]]\nname = \"{}\"\naddress = \"{}\"\n{drain}\n", names[i], cluster.address(i))
        })
        .collect()
}

/// Every read through rwsplit in a phase: which server ids answered.
#[derive(Default)]
struct Seen {
    by_phase: Mutex<HashMap<u32, HashSet<u32>>>,
    errors: Mutex<Vec<String>>,
    statements: AtomicU64,
}

impl Seen {
    fn ids(&self, phase: u32) -> HashSet<u32> {
        self.by_phase.lock().unwrap().get(&phase).cloned().unwrap_or_default()
    }
}

/// A client on one connection: insert, read back its own row (read-your-writes), read the
/// server id (a read), until `stop`; every error is kept.
async fn client_loop(p: &Proxy, id: u32, phase: Arc<AtomicU32>, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let mut conn = match p.conn().await {
        Ok(c) => c,
        Err(e) => {
            seen.errors.lock().unwrap().push(format!("client {id}: connect: {e}"));
            return;
        }
    };
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let ph = phase.load(Ordering::Relaxed);
        let step = async {
            conn.exec_drop("INSERT INTO reload_test.t (client, n) VALUES (?, ?)", (id, n)).await?;
            let got: Option<u64> =
                conn.exec_first("SELECT n FROM reload_test.t WHERE client = ? AND n = ?", (id, n)).await?;
            anyhow::ensure!(got == Some(n), "client {id}: own row {n} not read back: {got:?}");
            let sid: u32 = conn.query_first("SELECT @@server_id").await?.context("no server id")?;
            Ok::<_, anyhow::Error>(sid)
        };
        match tokio::time::timeout(Duration::from_secs(10), step).await {
            Ok(Ok(sid)) => {
                seen.by_phase.lock().unwrap().entry(ph).or_default().insert(sid);
                seen.statements.fetch_add(3, Ordering::Relaxed);
            }
            Ok(Err(e)) => seen.errors.lock().unwrap().push(format!("client {id} phase {ph}: {e:#}")),
            Err(_) => seen.errors.lock().unwrap().push(format!("client {id} phase {ph}: no answer in 10 s")),
        }
    }
    let _ = conn.disconnect().await;
}

/// Short connections: log in, one read, quit — the login path across reloads.
async fn connecting_loop(p: &Proxy, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let step = async {
            let mut c = p.conn().await?;
            server_id_of(&mut c).await?;
            c.disconnect().await?;
            Ok::<_, anyhow::Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(10), step).await {
            Ok(Ok(())) => {
                seen.statements.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => seen.errors.lock().unwrap().push(format!("connecting client: {e:#}")),
            Err(_) => seen.errors.lock().unwrap().push("connecting client: no answer in 10 s".into()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rwsplit(args: &[&str]) -> (bool, String) {
    let out = Command::new(rwsplit_bin().unwrap()).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// POST `path` to the admin endpoint; the whole answer.
fn post(admin: &str, path: &str) -> String {
    http(admin, "POST", path)
}

fn http(admin: &str, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(admin).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(tcp, "{method} {path} HTTP/1.0\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

/// The app user's connections open on server `i` (as its root sees them).
async fn app_connections(cluster: &Cluster, i: usize) -> Result<u64> {
    cluster.query_value(i, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'app'").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_added_drained_and_removed_live_under_a_client_loop() {
    let cluster = Cluster::shared();
    let routing = "[routing]\nread_balance = \"statement\"\n";
    // 'static: the client tasks borrow it.
    let p: &'static Proxy = Box::leak(Box::new(
        Proxy::start(cluster, &format!("{}{routing}", servers_toml(cluster, &[0, 1], &[]))).unwrap(),
    ));
    let _log = p.log_on_panic();
    let path = p.dir().join("rwsplit.toml");
    let base = std::fs::read_to_string(&path).unwrap();
    // The harness writes the servers as an array of tables; the test rewrites that part only.
    let without_servers: String = {
        let mut table: toml::Table = base.parse().unwrap();
        table.remove("servers");
        toml::to_string(&table).unwrap()
    };
    let write_config = |servers: String| std::fs::write(&path, format!("{without_servers}\n{servers}")).unwrap();
    let config_file: &'static str = Box::leak(path.display().to_string().into_boxed_str());
    let admin: &'static str = Box::leak(format!("127.0.0.1:{}", p.admin_port()).into_boxed_str());
    let mut ids = [0u32; 3];
    for (i, id) in ids.iter_mut().enumerate() {
        *id = cluster.query_value::<u32>(i, "SELECT @@server_id").await.unwrap();
    }

    cluster.exec(0, "DROP DATABASE IF EXISTS reload_test").await.unwrap();
    cluster.exec(0, "CREATE DATABASE reload_test").await.unwrap();
    cluster
        .exec(
            0,
            "CREATE TABLE reload_test.t (id INT AUTO_INCREMENT PRIMARY KEY, client INT, n BIGINT, KEY (client, n))",
        )
        .await
        .unwrap();
    cluster.wait_replicated().await.unwrap();
    let replica1 = ids[1];
    wait_until(Duration::from_secs(20), "reads through rwsplit on replica1", || async move {
        Ok(server_id_of(&mut p.conn().await?).await? == replica1)
    })
    .await
    .unwrap();
    let (ok, out) = rwsplit(&["--config", config_file, "status", "--admin", admin]);
    assert!(ok && out.contains("config: version 1 "), "{out}");

    let phase = Arc::new(AtomicU32::new(1));
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let proxy = p;
    let mut tasks = Vec::new();
    for id in 0..4 {
        let (ph, s, st) = (phase.clone(), seen.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { client_loop(proxy, id, ph, s, st).await }));
    }
    {
        let (s, st) = (seen.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { connecting_loop(proxy, s, st).await }));
    }
    let pause = || tokio::time::sleep(Duration::from_millis(1500));

    // Reads go to replicas; a causal read whose replica did not catch up within
    // routing.causal_timeout_ms goes to the master, so the master may show up in any phase.
    let wait_version = |n: u32| async move {
        wait_until(Duration::from_secs(15), &format!("config version {n} in force"), || async move {
            Ok(rwsplit(&["--config", config_file, "status", "--admin", admin])
                .1
                .contains(&format!("config: version {n} ")))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", p.log_tail(30)));
    };

    // Phase 1: master + replica1. Reads on replica1, none on replica2.
    pause().await;
    assert!(
        seen.ids(1).contains(&ids[1]) && !seen.ids(1).contains(&ids[2]),
        "reads before the reload: {:?}",
        seen.ids(1)
    );

    // Phase 2: replica2 added by SIGHUP: it joins the read pool.
    write_config(servers_toml(cluster, &[0, 1, 2], &[]));
    let pid = p.pid().unwrap().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    wait_version(2).await;
    phase.store(2, Ordering::Relaxed);
    wait_until(Duration::from_secs(15), "reads on the added replica2", || {
        let s = seen.clone();
        async move { Ok(s.ids(2).contains(&ids[2])) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", p.log_tail(30)));
    let (_, out) = rwsplit(&["--config", config_file, "status", "--admin", admin]);
    assert!(out.contains("config: version 2 ") && out.contains("replica2"), "{out}");

    // Phase 3: replica1 drained (rwsplit reload): no more reads there, still monitored.
    write_config(servers_toml(cluster, &[0, 1, 2], &[1]));
    let (ok, out) = rwsplit(&["--config", config_file, "reload", "--admin", admin]);
    assert!(ok && out.contains("version 3") && out.contains("changed: replica1"), "{out}");
    phase.store(3, Ordering::Relaxed);
    pause().await;
    assert!(
        seen.ids(3).contains(&ids[2]) && !seen.ids(3).contains(&ids[1]),
        "reads while replica1 is drained: {:?}",
        seen.ids(3)
    );
    let (_, out) = rwsplit(&["--config", config_file, "status", "--admin", admin]);
    assert!(out.contains("drained"), "{out}");

    // Phase 4: replica1 removed (SIGHUP): its connections close once their statements end.
    write_config(servers_toml(cluster, &[0, 2], &[]));
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    wait_version(4).await;
    phase.store(4, Ordering::Relaxed);
    wait_until(Duration::from_secs(15), "no app connection left on the removed replica1", || async {
        Ok(app_connections(cluster, 1).await? == 0)
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", p.log_tail(30)));
    pause().await;
    assert!(
        seen.ids(4).contains(&ids[2]) && !seen.ids(4).contains(&ids[1]),
        "reads after replica1 was removed: {:?}",
        seen.ids(4)
    );

    // Refused: the writer removed; a syntax error. The running config (version 4) stays.
    write_config(servers_toml(cluster, &[2], &[]));
    let (ok, out) = rwsplit(&["--config", config_file, "reload", "--admin", admin]);
    assert!(!ok && out.contains("master") && out.contains("switch over"), "{out}");
    std::fs::write(&path, format!("{without_servers}\n{}\n[routing\n", servers_toml(cluster, &[0, 1, 2], &[])))
        .unwrap();
    // (`rwsplit reload` would refuse it itself, reading the file for the admin address.)
    let answer = post(admin, "/reload");
    assert!(
        answer.starts_with("HTTP/1.1 409") && answer.contains("rwsplit.toml:"),
        "the refusal names the file and line: {answer}"
    );
    let status = http(admin, "GET", "/status");
    let body = status.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["config"]["number"], 4, "the running config stays: {body}");

    // Phase 5: replica1 added back: its old slot, reads on both replicas again.
    write_config(servers_toml(cluster, &[0, 1, 2], &[]));
    let (ok, out) = rwsplit(&["--config", config_file, "reload", "--admin", admin]);
    assert!(ok && out.contains("added back: replica1"), "{out}");
    phase.store(5, Ordering::Relaxed);
    wait_until(Duration::from_secs(15), "reads on replica1 again", || {
        let s = seen.clone();
        async move { Ok(s.ids(5).contains(&ids[1]) && s.ids(5).contains(&ids[2])) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", p.log_tail(30)));

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let errors = seen.errors.lock().unwrap().clone();
    let statements = seen.statements.load(Ordering::Relaxed);
    eprintln!("[reload] {statements} statements across 5 reloads (2 refused), {} client errors", errors.len());
    assert!(errors.is_empty(), "client errors across the reloads:\n{}", errors.join("\n"));
    assert!(statements > 100, "the clients barely ran: {statements}");
    p.stop();
}

//! Operating rwsplit: the admin endpoint (`/metrics` checked by Prometheus' own `promtool`,
//! `/status`, `/health`), `rwsplit status`, config errors that name file and line, and SIGHUP
//! reloads (a good config takes effect, a bad one is refused and the running one kept).

use rwsplit_tests::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `GET path` with an Accept header: (status line and headers, body).
fn http_get(port: u16, path: &str, accept: &str) -> (String, String) {
    admin_request(port, &format!("GET {path} HTTP/1.0\r\nAccept: {accept}"), Duration::from_secs(5))
        .expect("admin endpoint")
}

fn proxy() -> Proxy {
    let c = tokio::task::block_in_place(Cluster::shared);
    Proxy::start(c, "").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_count_routed_statements() {
    let p = proxy();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
    let mut conn = p.conn().await.unwrap();
    for _ in 0..4 {
        server_id_of(&mut conn).await.unwrap();
    }
    let (head, body) = http_get(p.admin_port(), "/metrics", "*/*");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed: make deps");
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let replica_reads: f64 = body
        .lines()
        .filter(|l| l.starts_with("rwsplit_statements_total{") && l.contains("target=\"replica\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(replica_reads >= 4.0, "routed reads are counted:\n{body}");
    assert!(body.contains("rwsplit_server_up{server=\"master\"} 1"), "{body}");
    // Prometheus itself asks for OpenMetrics.
    let (head, body) = http_get(p.admin_port(), "/metrics", "application/openmetrics-text;version=1.0.0");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(body.trim_end().ends_with("# EOF"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_health_and_the_status_command() {
    let p = proxy();
    let _log = p.log_on_panic();
    let (_, body) = http_get(p.admin_port(), "/status", "*/*");
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(status["writer"], 0, "{status:#}");
    assert_eq!(status["servers"].as_array().map(Vec::len), Some(3));
    assert_eq!(status["servers"][1]["role"], "replica");
    let (head, _) = http_get(p.admin_port(), "/health", "*/*");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, _) = http_get(p.admin_port(), "/nope", "*/*");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    let out = Command::new(rwsplit_bin().unwrap())
        .args(["--config", &p.dir().join("rwsplit.toml").display().to_string(), "status"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}{}", String::from_utf8_lossy(&out.stderr));
    let master = table.lines().find(|l| l.starts_with("master")).unwrap_or_else(|| panic!("{table}"));
    assert!(master.contains("writer") && master.contains(" up "), "{table}");
    assert_eq!(table.lines().filter(|l| l.contains("replica ") && l.contains("true")).count(), 2, "{table}");
}

#[test]
fn bad_config_fails_at_start_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let good = base_config([3307, 3308, 3309], 18066, 19066);
    let bad = good.replace("interval_ms = 250", "interval_ms = 250\nfall = 0\nwhatever = 1");
    std::fs::write(&path, &bad).unwrap();
    let out = Command::new(rwsplit_bin().unwrap()).args(["--config", &path.display().to_string()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = bad.lines().position(|l| l == "whatever = 1").unwrap() + 1;
    assert!(err.contains(&format!("{}:{line}:", path.display())), "names file and line {line}: {err}");
    assert!(err.contains("whatever"), "{err}");
    // A semantic error: line of the key and the reason.
    let bad = good.replace("interval_ms = 250", "interval_ms = 250\nfall = 0");
    std::fs::write(&path, &bad).unwrap();
    let out =
        Command::new(rwsplit_bin().unwrap()).args(["--config", &path.display().to_string(), "check"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let line = bad.lines().position(|l| l == "fall = 0").unwrap() + 1;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:{line}: monitor.fall: 0 is out of range", path.display())), "{err}");
    assert!(!err.contains("password = "), "no secrets in errors: {err}");
}

fn pid_of(p: &Proxy) -> String {
    let out = Command::new("pgrep").args(["-f", &p.dir().join("rwsplit.toml").display().to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().next().expect("proxy pid").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_good_config_and_keeps_the_old_one_on_a_bad_one() {
    let p = proxy();
    let _log = p.log_on_panic();
    let path = p.dir().join("rwsplit.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    let pid = pid_of(&p);
    assert!(p.conn_as("ops", "ops-pw", None).await.is_err(), "no such user yet");

    // Bad: a syntax error. The running config stays, clients keep working.
    std::fs::write(&path, format!("{original}\n[routing\n")).unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.log_tail(50).contains("reload rejected") {
        assert!(Instant::now() < deadline, "the bad reload must be logged:\n{}", p.log_tail(50));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut conn = p.conn().await.unwrap();
    server_id_of(&mut conn).await.unwrap();

    // Good: a new user can log in after the reload.
    std::fs::write(&path, format!("{original}\n[[users]]\nname = \"ops\"\npassword = \"ops-pw\"\n")).unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match p.conn_as("ops", "ops-pw", None).await {
            Ok(mut c) => {
                server_id_of(&mut c).await.unwrap();
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "new user after reload: {e}\n{}", p.log_tail(30)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old user is still there too.
    p.conn().await.unwrap();
}

/// Runs the mariadb CLI against the proxy; (success, stdout + stderr).
fn mariadb_cli(p: &Proxy, tls: bool, sql: &str) -> (bool, String) {
    let out = Command::new("mariadb")
        .args(["-h127.0.0.1", &format!("-P{}", p.port()), "-uapp", "-papp", "db_test", "-N", "-e", sql])
        .arg(if tls { "--ssl" } else { "--skip-ssl" })
        .output()
        .expect("mariadb client");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_for_clients_and_require_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rwsplit-test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let c = tokio::task::block_in_place(Cluster::shared);
    let tls = format!("[proxy]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n", cert.display(), key.display());
    let p = Proxy::start(c, &tls).unwrap();
    let _log = p.log_on_panic();
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();

    let (ok, out) = mariadb_cli(&p, true, "\\s");
    assert!(ok && out.contains("Cipher in use is TLS"), "the session runs over TLS:\n{out}");
    // A result of 2 MB through TLS, relayed packet by packet.
    let (ok, out) = mariadb_cli(
        &p,
        true,
        "SELECT LENGTH(REPEAT('x', 2097152)), MD5(REPEAT('x', 2097152)) = MD5(REPEAT('x', 2097152))",
    );
    assert!(ok && out.trim() == "2097152\t1", "{out}");
    let (ok, out) = mariadb_cli(&p, false, "SELECT 1");
    assert!(ok && out.trim() == "1", "plain clients still work while TLS is optional: {out}");

    // require_tls through a reload: plain clients are refused with MySQL's own error.
    let path = p.dir().join("rwsplit.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace("[proxy]\n", "[proxy]\nrequire_tls = true\n");
    std::fs::write(&path, text).unwrap();
    let pid = pid_of(&p);
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, out) = mariadb_cli(&p, false, "SELECT 1");
        if !ok {
            assert!(out.contains("3159") && out.contains("insecure transport"), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "require_tls never applied:\n{}", p.log_tail(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, out) = mariadb_cli(&p, true, "SELECT 1");
    assert!(ok && out.trim() == "1", "TLS clients are still served: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_local_infile_is_relayed() {
    let c = tokio::task::block_in_place(Cluster::shared);
    c.fresh_db("infile").await.unwrap();
    let p = proxy();
    let _log = p.log_on_panic();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    // About 200 KB: the upload spans many packets.
    std::fs::write(&csv, (1..=20_000).map(|i| format!("{i},value-{i}\n")).collect::<String>()).unwrap();
    let sql = format!(
        "CREATE TABLE infile.t (id INT PRIMARY KEY, v VARCHAR(20)); \
         LOAD DATA LOCAL INFILE '{}' INTO TABLE infile.t FIELDS TERMINATED BY ','",
        csv.display()
    );
    let out = Command::new("mariadb")
        .args(["--local-infile=1", "-h127.0.0.1", &format!("-P{}", p.port()), "-uapp", "-papp", "-e", &sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (n, sum): (u64, u64) = c.query(MASTER, "SELECT COUNT(*), SUM(id) FROM infile.t").await.unwrap().pop().unwrap();
    assert_eq!((n, sum), (20_000, 200_010_000), "every row reached the master");
}

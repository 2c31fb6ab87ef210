//! The shared integration harness: real MariaDB servers, a real rwsplit process, a real client
//! library (mysql_async).
//!
//! - [`Cluster`] starts its own master and two replicas through `scripts/lab.sh up` on free
//!   loopback ports in a temporary state directory, with `OWNER_PID` set to this test process,
//!   so the lab's watcher stops the servers when the test binary exits however it exits. It
//!   runs beside `make lab` (other ports, other state directory).
//! - [`Proxy`] writes a config for a cluster (the lab's format, free ports) and spawns the
//!   rwsplit binary (`RWSPLIT_BIN`, else `target/debug/rwsplit`; `make test` builds it first).
//! - [`Cluster::shared`] and [`Proxy::shared`] give one cluster and one proxy per test binary;
//!   tests isolate themselves by using their own database names ([`Cluster::fresh_db`]).
//!
//! Every wait is bounded ([`DEFAULT_TIMEOUT`]); a failure names what was awaited and shows the
//! relevant log tail. When MariaDB is missing, tests fail with a message saying how to install
//! it (`make test` does): they never skip silently.

use anyhow::{anyhow, bail, Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Row};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use mysql_async;

pub mod raw;

/// Bound of every wait in the harness (server start, proxy start, replication catch-up).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The application account the lab creates (and the proxy config uses on both sides).
pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "app";
/// The database the lab creates for applications.
pub const APP_DB: &str = "db_test";

/// Index of the master in a [`Cluster`]; replicas are 1 and 2. `@@server_id` is index + 1.
pub const MASTER: usize = 0;
pub const REPLICAS: [usize; 2] = [1, 2];
const NAMES: [&str; 3] = ["master", "replica1", "replica2"];

/// The workspace root (the directory holding `scripts/` and `target/`).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn lab_script() -> PathBuf {
    workspace_dir().join("scripts/lab.sh")
}

/// `n` distinct TCP ports free on 127.0.0.1 right now (all bound at once, then released).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to find a free port"))
        .collect::<Result<Vec<_>>>()?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// The last `lines` lines of a text file (or a note that it cannot be read).
pub fn tail_file(path: &Path, lines: usize) -> String {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("(cannot read {}: {e})", path.display()),
    };
    // Only the end of a long log matters; read at most the last 256 KiB.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn check_mariadb_installed() -> Result<()> {
    for tool in ["mariadbd", "mariadb-install-db", "mariadb"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        let found = found || Path::new("/usr/sbin").join(tool).is_file();
        if !found {
            bail!(
                "`{tool}` not found: the integration tests run real MariaDB servers. Install them with \
                 `scripts/lab.sh install` (or `make test`, which does it), then rerun."
            );
        }
    }
    Ok(())
}

/// mysql_async options for `user` on 127.0.0.1:`port` over TCP. `prefer_socket(false)`
/// matters: mysql_async would otherwise ask for `@@socket` and switch to that unix socket —
/// through a proxy, the *server's* socket, bypassing the proxy.
pub fn loopback_opts(port: u16, user: &str, password: &str, db: Option<&str>) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(db)
        .prefer_socket(false)
}

// ------------------------------------------------------------------------------------------
// Cluster

/// A master (server_id 1) and two replicas (server_id 2, 3) started by `scripts/lab.sh up`.
#[derive(Debug)]
pub struct Cluster {
    state_dir: PathBuf,
    ports: [u16; 3],
    stopped: AtomicBool,
}

impl Cluster {
    /// Starts a new cluster on free ports in a fresh temporary state directory. It is stopped
    /// (and its directory removed) by [`Cluster::stop`], on drop, or by the lab's watcher when
    /// this process exits.
    pub fn start() -> Result<Cluster> {
        check_mariadb_installed()?;
        let mut last_err = None;
        // A port found free can be taken by someone else before mariadbd binds it: retry.
        for _attempt in 0..3 {
            let ports = free_ports(3)?;
            let state_dir = tempfile::Builder::new()
                .prefix("rwsplit-lab-")
                .tempdir()
                .context("creating the cluster's state directory")?
                .keep();
            let cluster = Cluster { state_dir, ports: [ports[0], ports[1], ports[2]], stopped: AtomicBool::new(false) };
            let started = Instant::now();
            match cluster.lab(&["up"]) {
                Ok(_) => {
                    eprintln!(
                        "[harness] cluster up in {:.1}s: master 127.0.0.1:{}, replicas {} and {} (state {})",
                        started.elapsed().as_secs_f64(),
                        cluster.ports[0],
                        cluster.ports[1],
                        cluster.ports[2],
                        cluster.state_dir.display()
                    );
                    return Ok(cluster);
                }
                Err(e) => {
                    // Drop runs `lab.sh down`, stopping whatever did start.
                    let in_use = e.to_string().contains("already in use");
                    last_err = Some(e);
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("cluster did not start")))
    }

    /// The cluster of this test binary, started on first use. A start failure is reported to
    /// every test that asks (with the lab's output), not retried per test.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Cluster::start().map_err(|e| format!("{e:#}"))) {
            Ok(c) => c,
            Err(e) => panic!("the shared test cluster did not start:\n{e}"),
        }
    }

    /// `kill -9` of one server's mariadbd (`master`, `replica1`, `replica2`), by its pidfile.
    pub fn kill9(&self, server: &str) -> Result<()> {
        let pidfile = self.state_dir.join(server).join("mariadbd.pid");
        let pid = std::fs::read_to_string(&pidfile).with_context(|| format!("{}", pidfile.display()))?;
        let status = Command::new("kill").args(["-9", pid.trim()]).status()?;
        anyhow::ensure!(status.success(), "kill -9 {} failed", pid.trim());
        Ok(())
    }

    /// Runs `scripts/lab.sh <args>` for this cluster and returns its standard output.
    pub fn lab(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("bash")
            .arg(lab_script())
            .args(args)
            .env("STATE_DIR", &self.state_dir)
            .env("MASTER_PORT", self.ports[0].to_string())
            .env("REPLICA1_PORT", self.ports[1].to_string())
            .env("REPLICA2_PORT", self.ports[2].to_string())
            .env_remove("PROXY_PORT")
            .env_remove("ADMIN_PORT")
            .env("OWNER_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", lab_script().display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "scripts/lab.sh {} failed ({}):\n{}\n{}",
                args.join(" "),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// Port of server `i` ([`MASTER`] or one of [`REPLICAS`]).
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// `host:port` of server `i`.
    pub fn address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// The lab's state directory (one subdirectory per server, logs included).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The end of server `i`'s error log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        tail_file(&self.state_dir.join(NAMES[i]).join("mariadbd.err"), lines)
    }

    /// URL of server `i` as root (no password, loopback TCP).
    pub fn root_url(&self, i: usize) -> String {
        format!("mysql://root@127.0.0.1:{}/?prefer_socket=false", self.ports[i])
    }

    /// Connection options for server `i` as `user`.
    pub fn opts(&self, i: usize, user: &str, password: &str, db: Option<&str>) -> OptsBuilder {
        loopback_opts(self.ports[i], user, password, db)
    }

    /// A root connection to server `i`, straight to the server (not through any proxy).
    pub async fn root_conn(&self, i: usize) -> Result<Conn> {
        let opts = self.opts(i, "root", "", None);
        Conn::new(opts).await.with_context(|| format!("connecting to {} as root", self.address(i)))
    }

    /// A root connection pool for server `i` (call `disconnect().await` on it at the end of
    /// the test; a pool belongs to the runtime it was created in).
    pub fn root_pool(&self, i: usize) -> mysql_async::Pool {
        mysql_async::Pool::new(Opts::from(self.opts(i, "root", "", None)))
    }

    /// Runs `sql` as root on server `i` and returns the rows of its first result set.
    pub async fn query<T: FromRow + Send + 'static>(&self, i: usize, sql: &str) -> Result<Vec<T>> {
        let mut conn = self.root_conn(i).await?;
        let rows = conn.query(sql).await.with_context(|| format!("on {}: {sql}", NAMES[i]))?;
        conn.disconnect().await?;
        Ok(rows)
    }

    /// Runs `sql` (may hold several statements) as root on server `i`, discarding results.
    pub async fn exec(&self, i: usize, sql: &str) -> Result<()> {
        let mut conn = self.root_conn(i).await?;
        conn.query_drop(sql).await.with_context(|| format!("on {}: {sql}", NAMES[i]))?;
        conn.disconnect().await?;
        Ok(())
    }

    /// One value (first column of the first row) as root on server `i`.
    pub async fn query_value<T: FromValue + Send + 'static>(&self, i: usize, sql: &str) -> Result<T> {
        let mut rows: Vec<Row> = self.query(i, sql).await?;
        let row = rows.drain(..).next().ok_or_else(|| anyhow!("{sql}: no row on {}", NAMES[i]))?;
        row_value(row, 0).with_context(|| format!("{sql} on {}", NAMES[i]))
    }

    /// Stops (`running = false`) or starts the SQL thread of replica `i`, as root.
    pub async fn replica_sql_thread(&self, i: usize, running: bool) -> Result<()> {
        if !REPLICAS.contains(&i) {
            bail!("server {i} is not a replica");
        }
        let sql = if running { "START SLAVE SQL_THREAD" } else { "STOP SLAVE SQL_THREAD" };
        self.exec(i, sql).await
    }

    /// Waits until both replicas have applied everything the master has binlogged so far
    /// (`MASTER_GTID_WAIT` on the master's `@@gtid_binlog_pos`), bounded by [`DEFAULT_TIMEOUT`].
    pub async fn wait_replicated(&self) -> Result<()> {
        self.wait_replicated_within(DEFAULT_TIMEOUT).await
    }

    /// [`Cluster::wait_replicated`] with an explicit bound.
    pub async fn wait_replicated_within(&self, timeout: Duration) -> Result<()> {
        let pos: String = self.query_value(MASTER, "SELECT @@gtid_binlog_pos").await?;
        if pos.is_empty() {
            return Ok(());
        }
        for i in REPLICAS {
            let secs = timeout.as_secs_f64();
            let sql = format!("SELECT MASTER_GTID_WAIT('{pos}', {secs})");
            let r: i64 = self.query_value(i, &sql).await?;
            if r != 0 {
                let status: Vec<Row> = self.query(i, "SHOW SLAVE STATUS").await.unwrap_or_default();
                let status = status
                    .into_iter()
                    .next()
                    .map(|row| {
                        let cols = row.columns();
                        let vals = row.unwrap();
                        cols.iter()
                            .zip(vals)
                            .map(|(c, v)| format!("{}: {}", c.name_str(), v.as_sql(true)))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                bail!("{} did not reach the master's GTID {pos} within {timeout:?}\n{status}", NAMES[i]);
            }
        }
        Ok(())
    }

    /// Drops and creates database `name` on the master (utf8mb4) and waits until the replicas
    /// have it: the usual first step of a test that wants a database of its own.
    pub async fn fresh_db(&self, name: &str) -> Result<()> {
        self.exec(MASTER, &format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .await?;
        self.wait_replicated().await
    }

    /// `SHOW GLOBAL STATUS LIKE name` on server `i`, as a number.
    pub async fn global_status(&self, i: usize, name: &str) -> Result<u64> {
        let rows: Vec<(String, String)> = self.query(i, &format!("SHOW GLOBAL STATUS LIKE '{name}'")).await?;
        let (_, v) = rows.into_iter().next().ok_or_else(|| anyhow!("no status variable {name}"))?;
        v.parse().with_context(|| format!("status {name} = {v:?} is not a number"))
    }

    /// Stops the servers (and any proxy registered with this cluster) and removes the state
    /// directory. Idempotent.
    pub fn stop(&self) -> Result<()> {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.lab(&["down"]).map(|_| ())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("[harness] stopping the cluster failed: {e:#}");
        }
    }
}

// ------------------------------------------------------------------------------------------
// Proxy

/// The rwsplit binary the tests run: `RWSPLIT_BIN`, else `target/debug/rwsplit` (honouring
/// `CARGO_TARGET_DIR`).
/// Points a rwsplit command's output at the log file `log` (created anew), without input:
/// info level unless `RUST_LOG` says otherwise, and no ANSI colours (the log is read by people
/// and by tests).
pub fn log_to(cmd: &mut Command, log: &Path) -> Result<()> {
    let log_file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    cmd.env("NO_COLOR", "1");
    Ok(())
}

pub fn rwsplit_bin() -> Result<PathBuf> {
    let path = match std::env::var_os("RWSPLIT_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_dir().join("target"));
            let target = if target.is_absolute() { target } else { workspace_dir().join(target) };
            target.join("debug/rwsplit")
        }
    };
    if !path.is_file() {
        bail!(
            "rwsplit binary not found at {}: run `cargo build --bin rwsplit` first (`make test` does), \
             or point RWSPLIT_BIN at one",
            path.display()
        );
    }
    Ok(path)
}

/// A running rwsplit in front of a [`Cluster`].
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    admin_port: u16,
    dir: PathBuf,
    log: PathBuf,
    pidfile: PathBuf,
    config: String,
    child: Mutex<Option<Child>>,
}

/// The config every test proxy starts from: the lab's format with this cluster's servers and
/// a quicker monitor. `extra_toml` is merged over it (tables key by key, arrays replaced).
pub fn base_config(server_ports: [u16; 3], port: u16, admin_port: u16) -> String {
    format!(
        r#"# Written by the rwsplit-tests harness.
[proxy]
listen = "127.0.0.1:{port}"
# Two session threads whatever the machine (the default is half the CPUs: one on CI's two), so
# sessions and pooled connections cross threads in every test (connections move between them).
worker_threads = 2

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"

[backend]
user = "{APP_USER}"
password = "{APP_PASSWORD}"

[[servers]]
name = "master"
address = "{m}"

[[servers]]
name = "replica1"
address = "{r1}"

[[servers]]
name = "replica2"
address = "{r2}"

[monitor]
user = "monitor"
password = "monitor"
interval_ms = 250
replication_user = "repl"
replication_password = "repl"

[admin]
listen = "127.0.0.1:{admin_port}"
"#,
        m = format_args!("127.0.0.1:{}", server_ports[0]),
        r1 = format_args!("127.0.0.1:{}", server_ports[1]),
        r2 = format_args!("127.0.0.1:{}", server_ports[2]),
    )
}

fn merge_toml(base: &mut toml::Table, extra: toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge_toml(b, e),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// [`base_config`] for `cluster` with `extra_toml` merged in.
pub fn proxy_config(cluster: &Cluster, port: u16, admin_port: u16, extra_toml: &str) -> Result<String> {
    proxy_config_for_ports(cluster.ports, port, admin_port, extra_toml)
}

/// [`base_config`] for servers on these loopback ports with `extra_toml` merged in.
pub fn proxy_config_for_ports(server_ports: [u16; 3], port: u16, admin_port: u16, extra_toml: &str) -> Result<String> {
    let base = base_config(server_ports, port, admin_port);
    if extra_toml.trim().is_empty() {
        return Ok(base);
    }
    let mut table: toml::Table = base.parse().context("the harness's base config")?;
    let extra: toml::Table = extra_toml.parse().context("extra_toml given to Proxy::start")?;
    merge_toml(&mut table, extra);
    Ok(format!("# Written by the rwsplit-tests harness.\n{}", toml::to_string(&table)?))
}

impl Proxy {
    /// Writes a config for `cluster` (free ports for the listener and admin, `extra_toml`
    /// merged over [`base_config`]), spawns rwsplit and waits until `app` can log in and run
    /// `SELECT 1`. The proxy is registered with the cluster, so `lab.sh down` and the lab's
    /// watcher stop it too if this process dies without dropping it.
    pub fn start(cluster: &Cluster, extra_toml: &str) -> Result<Proxy> {
        let bin = rwsplit_bin()?;
        let mut last_err = None;
        for _attempt in 0..3 {
            let ports = free_ports(2)?;
            let (port, admin_port) = (ports[0], ports[1]);
            let dir = cluster.state_dir().join("proxies").join(port.to_string());
            fs::create_dir_all(&dir)?;
            let config = proxy_config(cluster, port, admin_port, extra_toml)?;
            let config_path = dir.join("rwsplit.toml");
            fs::write(&config_path, &config)?;
            let log = dir.join("rwsplit.log");
            let mut cmd = Command::new(&bin);
            cmd.arg("--config").arg(&config_path);
            log_to(&mut cmd, &log)?;
            let child = cmd.spawn().with_context(|| format!("spawning {}", bin.display()))?;
            let run_dir = cluster.state_dir().join("run");
            fs::create_dir_all(&run_dir)?;
            let pidfile = run_dir.join(format!("rwsplit-{port}.pid"));
            fs::write(&pidfile, child.id().to_string())?;
            let proxy = Proxy { port, admin_port, dir, log, pidfile, config, child: Mutex::new(Some(child)) };
            let started = Instant::now();
            match proxy.wait_ready(DEFAULT_TIMEOUT) {
                Ok(()) => {
                    eprintln!(
                        "[harness] rwsplit ready in {:.1}s on 127.0.0.1:{port} (admin {admin_port}, log {})",
                        started.elapsed().as_secs_f64(),
                        proxy.log.display()
                    );
                    return Ok(proxy);
                }
                Err(e) => {
                    let in_use = proxy.log_tail(50).to_lowercase().contains("address already in use");
                    last_err = Some(anyhow!(
                        "{e:#}\nrwsplit {} --config {}\nlast lines of its log {}:\n{}",
                        bin.display(),
                        proxy.dir.join("rwsplit.toml").display(),
                        proxy.log.display(),
                        proxy.log_tail(40)
                    ));
                    drop(proxy);
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("rwsplit did not start")))
    }

    /// One proxy with the default config per test binary, in front of [`Cluster::shared`].
    pub fn shared() -> &'static Proxy {
        static SHARED: OnceLock<Result<Proxy, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Proxy::start(Cluster::shared(), "").map_err(|e| format!("{e:#}"))) {
            Ok(p) => p,
            Err(e) => panic!("the shared rwsplit did not start:\n{e}"),
        }
    }

    /// A second shared proxy of this test binary whose reads alternate between the replicas
    /// statement by statement (`routing.read_balance = "statement"`), for tests that check that
    /// session state follows a session onto every backend connection it uses. (By default a
    /// session's reads stay on one replica.)
    pub fn shared_alternating() -> &'static Proxy {
        static SHARED: OnceLock<Result<Proxy, String>> = OnceLock::new();
        let extra = "[routing]\nread_balance = \"statement\"\n";
        match SHARED.get_or_init(|| Proxy::start(Cluster::shared(), extra).map_err(|e| format!("{e:#}"))) {
            Ok(p) => p,
            Err(e) => panic!("the shared rwsplit (alternating reads) did not start:\n{e}"),
        }
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("port not accepting yet");
        while Instant::now() < deadline {
            if let Some(status) =
                self.child.lock().expect("child lock").as_mut().and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("rwsplit exited during start-up ({status})");
            }
            if TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1)).is_ok() {
                // A login and a statement through a second client library (libmariadb).
                let out = Command::new("mariadb")
                    .args(["--no-defaults", "--protocol=tcp", "-h127.0.0.1", "--connect-timeout=5", "-N", "-B"])
                    .arg(format!("-P{}", self.port))
                    .arg(format!("-u{APP_USER}"))
                    .arg(format!("-p{APP_PASSWORD}"))
                    .args(["-e", "SELECT 1"])
                    .stdin(Stdio::null())
                    .output()
                    .context("running the mariadb client")?;
                if out.status.success() {
                    return Ok(());
                }
                last = String::from_utf8_lossy(&out.stderr).trim().to_string();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("rwsplit did not accept `{APP_USER}` and `SELECT 1` within {timeout:?} (last: {last})")
    }

    /// The client port (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin HTTP port (127.0.0.1).
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// `GET /status`, parsed.
    pub fn status(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&admin_get(self.admin_port, "/status")?).context("/status is not JSON")
    }

    /// The rwsplit process id (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().ok()?.as_ref().map(|c| c.id())
    }

    /// The rwsplit process's resident set size in bytes (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> Result<u64> {
        let pid = self.pid().context("rwsplit is not running")?;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/<pid>/status")?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("no VmRSS in /proc/<pid>/status")?;
        Ok(kib * 1024)
    }

    /// The directory holding this proxy's config and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The config it was started with.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// URL of the proxy as app/app on db_test.
    pub fn url(&self) -> String {
        format!("mysql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{}/{APP_DB}?prefer_socket=false", self.port)
    }

    /// Options for a connection through the proxy (see [`loopback_opts`]).
    pub fn opts_as(&self, user: &str, password: &str, db: Option<&str>) -> OptsBuilder {
        loopback_opts(self.port, user, password, db)
    }

    /// Options for app/app on db_test.
    pub fn opts(&self) -> OptsBuilder {
        self.opts_as(APP_USER, APP_PASSWORD, Some(APP_DB))
    }

    /// A new connection through the proxy as app/app on db_test.
    pub async fn conn(&self) -> Result<Conn> {
        Conn::new(self.opts()).await.with_context(|| format!("connecting to rwsplit on 127.0.0.1:{}", self.port))
    }

    /// A new connection through the proxy with other credentials or database.
    pub async fn conn_as(&self, user: &str, password: &str, db: Option<&str>) -> Result<Conn, mysql_async::Error> {
        Conn::new(self.opts_as(user, password, db)).await
    }

    /// The end of the proxy's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_file(&self.log, lines)
    }

    fn print_log_tail(&self) {
        eprintln!("[harness] rwsplit log ({}), last lines:\n{}", self.log.display(), self.log_tail(60));
    }

    /// A guard that prints the end of the proxy's log if the test panics while it is alive:
    /// `let _log = proxy.log_on_panic();` at the top of a test.
    pub fn log_on_panic(&self) -> LogOnPanic<'_> {
        LogOnPanic { proxy: self }
    }

    /// Polls with fresh connections until autocommit reads have been seen on both replicas
    /// (the monitor has brought them into the read pool), bounded by `timeout`.
    pub async fn wait_reads_on_replicas(&self, timeout: Duration) -> Result<()> {
        let mut seen = [false; 3];
        let deadline = Instant::now() + timeout;
        // A new session each time (a session's reads stay on one replica), kept open: a new
        // session reads where the fewest sessions do, so with other clients' sessions piled on
        // one replica, probes that closed at once would all land on the other. Held ones add
        // up until both are reached (at most 64 at a time).
        let mut held = Vec::new();
        while Instant::now() < deadline {
            let mut conn = self.conn().await?;
            match server_id_of(&mut conn).await {
                Ok(id) if (1..=3).contains(&id) => seen[(id - 1) as usize] = true,
                Ok(id) => bail!("unexpected @@server_id {id}"),
                Err(_) => {}
            }
            if seen[1] && seen[2] {
                return Ok(());
            }
            if held.len() >= 64 {
                held.clear();
            }
            held.push(conn);
            // A jittered pause: two probers of one proxy that alternated in lockstep would get
            // session ids of fixed parity, and a tie in reading sessions goes by that parity, so
            // each could keep landing on "its" replica for the whole timeout.
            tokio::time::sleep(Duration::from_millis(rand::random_range(25..75))).await;
        }
        bail!(
            "reads through rwsplit did not reach both replicas within {timeout:?} (seen server_ids: {:?})\n{}",
            seen.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i + 1).collect::<Vec<_>>(),
            self.log_tail(30)
        )
    }

    /// Stops the proxy: TERM, up to 10 s, then KILL. Idempotent.
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().map(|mut c| c.take()).unwrap_or(None) else { return };
        if child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if child.try_wait().ok().flatten().is_none() {
                eprintln!("[harness] rwsplit did not stop within 10s of SIGTERM: killing it");
                let _ = child.kill();
            }
        }
        let _ = child.wait();
        let _ = fs::remove_file(&self.pidfile);
    }

    /// Whether the process is still running (false once it exited or was stopped).
    pub fn is_running(&self) -> bool {
        self.child
            .lock()
            .ok()
            .and_then(|mut c| c.as_mut().map(|c| c.try_wait().ok().flatten().is_none()))
            .unwrap_or(false)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log_tail();
        }
        self.stop();
    }
}

/// See [`Proxy::log_on_panic`].
pub struct LogOnPanic<'a> {
    proxy: &'a Proxy,
}

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.proxy.print_log_tail();
        }
    }
}

// ------------------------------------------------------------------------------------------
// Query helpers

/// Column `idx` of `row`, converted.
pub fn row_value<T: FromValue>(row: Row, idx: usize) -> Result<T> {
    let mut row = row;
    let v = row.take_opt::<T, _>(idx).ok_or_else(|| anyhow!("row has no column {idx}"))?;
    v.map_err(|e| anyhow!("column {idx}: {e}"))
}

/// All rows of the first result set of `sql`.
pub async fn rows(conn: &mut Conn, sql: &str) -> Result<Vec<Row>> {
    conn.query(sql).await.with_context(|| format!("query: {sql}"))
}

/// The first column of the only row `sql` returns.
pub async fn value<T: FromValue + Send + 'static>(conn: &mut Conn, sql: &str) -> Result<T> {
    let rows = rows(conn, sql).await?;
    match rows.len() {
        1 => row_value(rows.into_iter().next().expect("one row"), 0),
        n => bail!("{sql}: expected one row, got {n}"),
    }
}

/// The first row of `sql`, converted (e.g. to a tuple).
pub async fn one<T: FromRow + Send + 'static>(conn: &mut Conn, sql: &str) -> Result<T> {
    let mut rows: Vec<T> = conn.query(sql).await.with_context(|| format!("query: {sql}"))?;
    if rows.is_empty() {
        bail!("{sql}: no row");
    }
    Ok(rows.swap_remove(0))
}

/// `SELECT @@server_id` on `conn`: which server answered (1 = master, 2/3 = replicas).
pub async fn server_id_of(conn: &mut Conn) -> Result<u32> {
    value(conn, "SELECT @@server_id").await
}

/// One HTTP/1.0 request to the admin endpoint on 127.0.0.1:`port`: `request` is the request
/// line and any header lines, without the blank line that ends them (`"GET /metrics
/// HTTP/1.0\r\nAccept: */*"`); `timeout` bounds the connect and every read and write.
/// Returns (status line and headers, body).
pub fn admin_request(port: u16, request: &str, timeout: Duration) -> Result<(String, String)> {
    use std::io::Write;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).context("admin endpoint")?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    write!(tcp, "{request}\r\n\r\n")?;
    let mut out = String::new();
    tcp.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    Ok((head.to_string(), body.to_string()))
}

/// `GET path` from the admin endpoint on 127.0.0.1:`port` (5 s bounds): the body.
pub fn admin_get(port: u16, path: &str) -> Result<String> {
    Ok(admin_request(port, &format!("GET {path} HTTP/1.0"), Duration::from_secs(5))?.1)
}

/// The server error code of a mysql_async error (e.g. 1045 for access denied).
pub fn server_error_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// Polls `check` every 50 ms until it returns `Ok(true)`, for at most `timeout`; the error
/// names `what` and the last error `check` returned.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last_err {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let p = free_ports(5).unwrap();
        let mut q = p.clone();
        q.sort_unstable();
        q.dedup();
        assert_eq!(q.len(), 5, "{p:?}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("log");
        fs::write(&f, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail_file(&f, 2), "c\nd");
        assert!(tail_file(&dir.path().join("none"), 2).starts_with("(cannot read"));
    }
}

//! rwsplit failover end to end, in network namespaces this test makes and removes (root only;
//! each test prints loudly why it skips elsewhere). Run with
//!
//! ```text
//! cargo build --bin rwsplit && cargo test -p rwsplit-ha --test failover -- --nocapture
//! ```
//!
//! (`RWSPLIT_BIN` picks another binary; the measured figures are printed to stderr even
//! without `--nocapture`). Layout, on one bridge in a namespace of its own (`sw`):
//!
//! ```text
//!   db  10.98.0.5    one MariaDB (its own datadir under the test's temp dir), port 3306
//!   n1  10.98.0.11   rwsplit node (the real binary: proxy + [[vrrp]]), listen 0.0.0.0:8066
//!   n2  10.98.0.12   rwsplit node
//!   n3  10.98.0.13   rwsplit node (three-VIP test only)
//!   ka  10.98.0.12   keepalived (interoperability test, instead of n2)
//!   cl  10.98.0.50   the client: a thread of this test that entered the namespace
//!   VIPs 10.98.0.100, .101, .102
//! ```
//!
//! The client asks `SELECT USER()` through VIP:8066; the host part is the address the
//! database saw, i.e. which rwsplit node served the query. Failover time = from the `kill -9`
//! (or SIGTERM) to the first successful query through the VIP served by the new master; the
//! time the VIP appeared on the new master is printed beside it. Every process is killed by
//! pid and every namespace deleted by a Drop guard, also when a test fails (and children get
//! SIGKILL from the kernel if the test process itself dies). Timings are printed, not asserted
//! tightly: only generous bounds where the behaviour itself is at stake (a clean stop must not
//! wait for Master_Down_Interval; a VIP on a killed node must expire by itself).

mod common;

use mysql_async::prelude::Queryable;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DB_IP: &str = "10.98.0.5";
const CLIENT_IP: &str = "10.98.0.50";
const VIPS: [&str; 3] = ["10.98.0.100", "10.98.0.101", "10.98.0.102"];

/// The tests measure time and share two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Figures for the issue note: written to stderr directly, so they show without --nocapture.
macro_rules! report {
    ($($t:tt)*) => {{
        let line = format!($($t)*);
        let _ = writeln!(std::io::stderr(), "[failover] {line}");
    }};
}

fn node_ip(role: &str) -> &'static str {
    match role {
        "n1" => "10.98.0.11",
        "n2" | "ka" => "10.98.0.12",
        "n3" => "10.98.0.13",
        "db" => DB_IP,
        "cl" => CLIENT_IP,
        other => panic!("no address for {other}"),
    }
}

/// Why a test cannot run here (printed loudly), if it cannot. A missing rwsplit binary is not
/// a reason to skip: it fails the test.
fn skip_reason(extra_tools: &[&str]) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root: creating network namespaces, bridges and VIPs needs CAP_SYS_ADMIN/CAP_NET_ADMIN (CI runs as root)".into());
    }
    ["ip", "mariadbd", "mariadb-install-db", "mariadb-admin", "mariadb"]
        .iter()
        .chain(extra_tools)
        .find(|t| !common::have(t))
        .map(|t| format!("{t} is not installed (make deps installs it)"))
}

macro_rules! skip_unless_ready {
    ($($tool:expr),*) => {
        if let Some(why) = skip_reason(&[$($tool),*]) {
            let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {}: {why} ***\n", module_path!());
            return;
        }
    };
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `cond` every 2 ms; the time it took, or `None` after `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    loop {
        if cond() {
            return Some(t.elapsed());
        }
        if t.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// "min–max ms (n runs)" of a set of durations.
fn range(ds: &[Duration]) -> String {
    let min = ds.iter().min().copied().unwrap_or_default();
    let max = ds.iter().max().copied().unwrap_or_default();
    let all: Vec<String> = ds.iter().map(|d| d.as_millis().to_string()).collect();
    format!("{}–{} ms ({} runs: {})", min.as_millis(), max.as_millis(), ds.len(), all.join(", "))
}

/// Starts `f` on a thread that entered network namespace `ns`.
fn spawn_in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let path = Path::new("/var/run/netns").join(ns);
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

/// Runs `f` on a thread that entered network namespace `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in_ns(ns, f).join().unwrap()
}

/// Whether `ip` is configured in namespace `ns` (getifaddrs there: no process spawned).
fn has_addr(ns: &str, ip: &str) -> bool {
    let ip: Ipv4Addr = ip.parse().unwrap();
    in_ns(ns, move || {
        nix::ifaddrs::getifaddrs().is_ok_and(|mut a| {
            a.any(|a| a.address.as_ref().and_then(|s| s.as_sockaddr_in()).is_some_and(|s| s.ip() == ip))
        })
    })
}

/// A process of the test, in a namespace.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

/// The namespaces, the bridge and every process of one test; all gone on drop.
struct Lab {
    prefix: String,
    dir: PathBuf,
    roles: Vec<String>,
    procs: Vec<Proc>,
    configs: Vec<(String, PathBuf)>,
}

/// Deletes namespaces of earlier runs of this test whose process is gone (a test killed
/// before its Drop ran), ending what still runs in them.
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("rwfo-") else { continue };
        let pid: String =
            rest.split('-').next().unwrap_or("").chars().skip_while(|c| c.is_ascii_alphabetic()).collect();
        if pid.is_empty() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(p) = Command::new("ip").args(["netns", "pids", name]).output() {
            for pid in String::from_utf8_lossy(&p.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
}

impl Lab {
    /// A bridge in namespace `sw` and one namespace per role, each with eth0 on the bridge.
    fn new(tag: &str, roles: &[&str]) -> Lab {
        sweep_stale();
        let prefix = format!("rwfo-{tag}{}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab { prefix, dir, roles: Vec::new(), procs: Vec::new(), configs: Vec::new() };
        let sw = lab.ns("sw");
        let mut script = format!("set -e\nip netns add {sw}\nip -n {sw} link set lo up\nip -n {sw} link add br0 type bridge\nip -n {sw} link set br0 up\n");
        for role in roles {
            let ns = lab.ns(role);
            let ip = node_ip(role);
            let _ = write!(
                script,
                "ip netns add {ns}\nip -n {sw} link add v-{role} type veth peer name eth0 netns {ns}\n\
                 ip -n {sw} link set v-{role} master br0 up\nip -n {ns} link set lo up\n\
                 ip -n {ns} addr add {ip}/24 dev eth0\nip -n {ns} link set eth0 up\n"
            );
        }
        let mut lab = lab;
        lab.roles = std::iter::once("sw").chain(roles.iter().copied()).map(String::from).collect();
        sh(&script);
        lab
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Starts `program args` in `role`'s namespace, output to `log` (appended). The child gets
    /// SIGKILL from the kernel if this thread dies first.
    fn spawn(
        &mut self,
        role: &str,
        name: &str,
        program: &Path,
        args: &[&str],
        log: &Path,
        env: &[(&str, &str)],
    ) -> u32 {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(role)])
            .arg(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let pid = child.id();
        self.procs.push(Proc { name: name.into(), child, log: log.to_path_buf() });
        pid
    }

    fn proc_mut(&mut self, name: &str) -> &mut Proc {
        self.procs.iter_mut().rev().find(|p| p.name == name).unwrap_or_else(|| panic!("no process {name}"))
    }

    fn pid(&mut self, name: &str) -> i32 {
        self.proc_mut(name).child.id() as i32
    }

    /// `kill -9`, then reap.
    fn kill9(&mut self, name: &str) {
        let p = self.proc_mut(name);
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.child.id() as i32), nix::sys::signal::Signal::SIGKILL);
        let _ = p.child.wait();
        let i = self.procs.iter().rposition(|p| p.name == name).unwrap();
        self.procs.remove(i);
    }

    /// SIGTERM (no waiting).
    fn term(&mut self, name: &str) {
        let pid = self.pid(name);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }

    /// Waits for `name` to exit (after [`term`](Self::term)); its exit status.
    fn reap(&mut self, name: &str, limit: Duration) -> std::process::ExitStatus {
        let i = self.procs.iter().rposition(|p| p.name == name).unwrap();
        let t = Instant::now();
        loop {
            if let Some(s) = self.procs[i].child.try_wait().unwrap() {
                self.procs.remove(i);
                return s;
            }
            assert!(t.elapsed() < limit, "{name} did not exit within {limit:?}:\n{}", tail(&self.procs[i].log, 30));
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn alive(&mut self, name: &str) -> bool {
        self.procs.iter_mut().any(|p| p.name == name && p.child.try_wait().ok().flatten().is_none())
    }

    /// Which of `roles` hold `vip` now.
    fn holders(&self, vip: &str, roles: &[&str]) -> Vec<String> {
        roles.iter().filter(|r| has_addr(&self.ns(r), vip)).map(|r| r.to_string()).collect()
    }

    /// Waits until `vip` is on `role` and on none of the other `roles`.
    fn wait_vip_on(&self, vip: &str, role: &str, roles: &[&str], limit: Duration) -> Duration {
        wait_until(limit, || self.holders(vip, roles) == [role.to_string()]).unwrap_or_else(|| {
            panic!("{vip} is on {:?}, not only on {role}, after {limit:?}\n{}", self.holders(vip, roles), self.logs())
        })
    }

    /// MariaDB in `db`: a fresh datadir, bound to the bridge address, with `app` and `monitor`
    /// accounts for the nodes' subnet.
    fn start_db(&mut self) {
        let dir = self.dir.join("db");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let d = dir.display();
        let cnf = dir.join("my.cnf");
        std::fs::write(
            &cnf,
            format!(
                "[mariadbd]\nuser=root\ndatadir={d}/data\nsocket={d}/sock\npid-file={d}/pid\nlog-error={d}/err\ntmpdir={d}/tmp\n\
                 port=3306\nbind-address={DB_IP}\nskip-name-resolve\nserver_id=1\nlog_bin=mariadb-bin\nbinlog_format=ROW\n\
                 innodb_buffer_pool_size=32M\ninnodb_log_file_size=16M\nperformance_schema=OFF\nmax_connections=500\n"
            ),
        )
        .unwrap();
        let ns = self.ns("db");
        sh(&format!(
            "ip netns exec {ns} mariadb-install-db --defaults-file={} --auth-root-authentication-method=normal --skip-test-db \
             --user=root >{d}/install.log 2>&1 </dev/null || (tail -20 {d}/install.log; exit 1)",
            cnf.display()
        ));
        let log = dir.join("mariadbd.out");
        self.spawn(
            "db",
            "mariadbd",
            Path::new("/usr/sbin/mariadbd"),
            &[&format!("--defaults-file={}", cnf.display())],
            &log,
            &[],
        );
        let sock = dir.join("sock");
        let ping = || {
            Command::new("mariadb-admin")
                .args(["--no-defaults", "--protocol=socket", "-uroot", "ping"])
                .arg(format!("-S{}", sock.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if wait_until(Duration::from_secs(60), || {
            std::thread::sleep(Duration::from_millis(50));
            ping()
        })
        .is_none()
        {
            panic!("MariaDB did not start:\n{}", tail(&dir.join("err"), 30));
        }
        let sql = "CREATE USER 'app'@'10.98.0.%' IDENTIFIED BY 'app'; \
                   GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON *.* TO 'app'@'10.98.0.%'; \
                   CREATE USER 'monitor'@'10.98.0.%' IDENTIFIED BY 'monitor'; \
                   GRANT SLAVE MONITOR, BINLOG MONITOR, PROCESS, REPLICATION CLIENT ON *.* TO 'monitor'@'10.98.0.%'; \
                   GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON rwsplit.* TO 'monitor'@'10.98.0.%';";
        sh(&format!("mariadb --no-defaults --protocol=socket -S{} -uroot -e \"{sql}\"", sock.display()));
    }

    /// Writes `role`'s rwsplit config (proxy on 0.0.0.0:8066 in front of `db`, `vrrp` appended)
    /// and starts it; returns when it logged that VRRP runs.
    fn start_node(&mut self, role: &str, vrrp: &str) {
        let config = self.dir.join(format!("{role}.toml"));
        std::fs::write(&config, format!("{}{vrrp}", proxy_toml())).unwrap();
        self.configs.retain(|(r, _)| r != role);
        self.configs.push((role.into(), config));
        self.restart_node(role);
    }

    /// Starts `role`'s rwsplit again with its config (after a kill or a stop).
    fn restart_node(&mut self, role: &str) {
        let bin = common::rwsplit_bin().unwrap_or_else(|e| panic!("{e}"));
        let config = self.configs.iter().find(|(r, _)| r == role).unwrap().1.clone();
        let log = self.dir.join(format!("{role}.log"));
        let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let name = format!("rwsplit-{role}");
        self.spawn(role, &name, &bin, &["--config", config.to_str().unwrap(), "run"], &log, &[("RUST_LOG", "info")]);
        let started = wait_until(Duration::from_secs(20), || {
            let text = std::fs::read(&log).unwrap_or_default();
            String::from_utf8_lossy(text.get(from as usize..).unwrap_or(&[])).contains("VRRP running")
        });
        if started.is_none() || !self.alive(&name) {
            panic!("{name} did not start:\n{}", tail(&log, 40));
        }
    }

    /// Count of `needle` in `role`'s log.
    fn log_count(&self, role: &str, needle: &str) -> usize {
        std::fs::read_to_string(self.dir.join(format!("{role}.log"))).unwrap_or_default().matches(needle).count()
    }

    /// Last lines of every log, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for role in &self.roles {
            let log = self.dir.join(format!("{role}.log"));
            if log.exists() {
                let _ = write!(out, "---- {role}.log ----\n{}\n", tail(&log, 25));
            }
        }
        out
    }

    /// Scheduling policy of `name`'s VRRP threads ("SCHED_FIFO", "SCHED_OTHER"…).
    fn vrrp_thread_policy(&mut self, name: &str) -> String {
        let pid = self.pid(name);
        let mut out = Vec::new();
        for t in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("vrrp-") || comm.starts_with("vrrp-track") {
                continue;
            }
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // Fields after the ")" closing comm: state is field 3; policy is field 41.
            let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let policy = after.split_whitespace().nth(41 - 3).unwrap_or("?");
            let word = match policy {
                "0" => "SCHED_OTHER",
                "1" => "SCHED_FIFO",
                "2" => "SCHED_RR",
                _ => "?",
            };
            out.push(format!("{}={word}", comm.trim()));
        }
        out.join(" ")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "{}", self.logs());
        }
        // Politely first (so a rwsplit master releases its VIP), then by force; all by pid.
        for p in &self.procs {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let t = Instant::now();
        for p in &mut self.procs {
            while t.elapsed() < Duration::from_secs(5) && p.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        for role in self.roles.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", &format!("{}-{role}", self.prefix)]).status();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            let _ = writeln!(std::io::stderr(), "logs kept in {}", self.dir.display());
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The proxy part of every node's config: one server (the db namespace's MariaDB), a quick
/// monitor, the listener on the wildcard so it is ready before the VIP arrives.
fn proxy_toml() -> String {
    format!(
        "[proxy]\nlisten = \"0.0.0.0:8066\"\n\n[[users]]\nname = \"app\"\npassword = \"app\"\n\n\
         [backend]\nuser = \"app\"\npassword = \"app\"\nconnect_timeout_ms = 1000\n\n\
         [[servers]]\nname = \"db\"\naddress = \"{DB_IP}:3306\"\n\n\
         [monitor]\nuser = \"monitor\"\npassword = \"monitor\"\ninterval_ms = 200\nconnect_timeout_ms = 300\n\
         check_timeout_ms = 400\nfall = 2\nrise = 1\n\n[admin]\nlisten = \"127.0.0.1:9066\"\n\n"
    )
}

/// One `[[vrrp]]` block on eth0.
fn vrrp_toml(name: &str, vrid: u32, vip: &str, priority: u32, version: u32, advert_int: f64, extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"{name}\"\ninterface = \"eth0\"\nvirtual_router_id = {vrid}\npriority = {priority}\n\
         version = {version}\nadvert_int = {advert_int}\nvirtual_ipaddress = [\"{vip}/24\"]\nvip_lifetime = 3\n{extra}\n"
    )
}

// ---- the client ----------------------------------------------------------------------------

struct Probe {
    vip: String,
    served_by: Option<String>,
    limit: Duration,
    reply: mpsc::Sender<Result<(Instant, String), String>>,
}

/// A thread in the client namespace that runs queries through a VIP.
struct Client {
    tx: Option<mpsc::Sender<Probe>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn new(lab: &Lab) -> Client {
        let (tx, rx) = mpsc::channel::<Probe>();
        let thread = spawn_in_ns(&lab.ns("cl"), move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            for p in rx {
                let r = rt.block_on(probe(&p.vip, p.served_by.as_deref(), p.limit));
                let _ = p.reply.send(r);
            }
        });
        Client { tx: Some(tx), thread: Some(thread) }
    }

    /// Starts trying `SELECT USER()` through `vip`:8066 until one succeeds (served by the node
    /// at `served_by`, if given) or `limit` passes; the answer comes on the receiver: when it
    /// succeeded and the node address that served it.
    fn start(
        &self,
        vip: &str,
        served_by: Option<&str>,
        limit: Duration,
    ) -> mpsc::Receiver<Result<(Instant, String), String>> {
        let (reply, rx) = mpsc::channel();
        let p = Probe { vip: vip.into(), served_by: served_by.map(String::from), limit, reply };
        self.tx.as_ref().unwrap().send(p).unwrap();
        rx
    }

    /// A query through `vip` served by `role`'s node, within `limit`; panics otherwise.
    fn expect(&self, vip: &str, role: &str, limit: Duration) {
        let want = node_ip(role);
        match self.start(vip, Some(want), limit).recv().unwrap() {
            Ok(_) => {}
            Err(e) => panic!("query through {vip} served by {role} ({want}): {e}"),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long one connection attempt may take: a reconnecting client with a short connect
/// timeout (a SYN sent to the old master's MAC just after it dropped the VIP is lost; without
/// this it would wait for the kernel's 1 s SYN retransmission).
const ATTEMPT: Duration = Duration::from_millis(100);

async fn probe(vip: &str, served_by: Option<&str>, limit: Duration) -> Result<(Instant, String), String> {
    let start = Instant::now();
    let mut last;
    loop {
        match tokio::time::timeout(ATTEMPT, query_user(vip)).await {
            Ok(Ok(host)) => {
                let at = Instant::now();
                if served_by.is_none_or(|w| w == host) {
                    return Ok((at, host));
                }
                last = format!("served by {host}");
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("attempt timed out ({ATTEMPT:?})"),
        }
        if start.elapsed() > limit {
            return Err(format!("no successful query through {vip}:8066 within {limit:?}; last: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The application login to a rwsplit listener at `host`:8066 (a VIP or a node's address).
fn app_opts(host: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(8066)
        .user(Some("app"))
        .pass(Some("app"))
        .prefer_socket(false)
}

/// `SELECT USER()` through `vip`:8066 on a new connection: the host part, i.e. the address of
/// the rwsplit node the database saw.
async fn query_user(vip: &str) -> Result<String, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(app_opts(vip)).await?;
    let user: Option<String> = conn.query_first("SELECT USER()").await?;
    let _ = tokio::time::timeout(Duration::from_millis(200), conn.disconnect()).await;
    Ok(user.unwrap_or_default().rsplit('@').next().unwrap_or("").to_string())
}

// ---- scenarios -----------------------------------------------------------------------------

/// Timings of one takeover, from the kill (or SIGTERM).
struct Takeover {
    /// The VIP appeared on the new master.
    vip_moved: Duration,
    /// The first query through the VIP served by the new master succeeded.
    first_query: Duration,
    /// The VIP was gone from the old node (removed on a clean stop; expired by its valid
    /// lifetime after a kill).
    old_gone: Duration,
}

/// Takes `from` down (`kill -9` or SIGTERM) and measures until `vip` is on `to`, gone from
/// `from`, and a query through it is served by `to`.
fn take_down(lab: &mut Lab, client: &Client, vip: &str, from: &str, to: &str, kill: bool, limit: Duration) -> Takeover {
    let name = format!("rwsplit-{from}");
    let t0 = Instant::now();
    if kill {
        lab.kill9(&name);
    } else {
        lab.term(&name);
    }
    let query = client.start(vip, Some(node_ip(to)), limit);
    let (ns_to, ns_from) = (lab.ns(to), lab.ns(from));
    let (mut vip_moved, mut old_gone) = (None, None);
    // Long enough for a 3 s valid lifetime to run out after the kill.
    let watch = limit.max(Duration::from_secs(8));
    while (vip_moved.is_none() || old_gone.is_none()) && t0.elapsed() < watch {
        if vip_moved.is_none() && has_addr(&ns_to, vip) {
            vip_moved = Some(t0.elapsed());
        }
        if old_gone.is_none() && !has_addr(&ns_from, vip) {
            old_gone = Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let vip_moved = vip_moved.unwrap_or_else(|| panic!("{vip} never reached {to}\n{}", lab.logs()));
    let old_gone =
        old_gone.unwrap_or_else(|| panic!("{vip} stayed on {from} for {watch:?} after it was stopped\n{}", lab.logs()));
    let (at, _) = query.recv().unwrap().unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    if !kill {
        let status = lab.reap(&name, Duration::from_secs(10));
        assert!(status.success(), "{name} exited with {status} on SIGTERM");
    }
    Takeover { vip_moved, first_query: at - t0, old_gone }
}

/// The two-node failover series for one VRRP version/interval: the VIP starts on the higher
/// priority node; `kills` × (kill -9 the master, measure, expiry of its VIP, restart it and
/// let it preempt back), then `stops` × (SIGTERM the master, measure, restart).
fn failover_series(tag: &str, version: u32, advert_int: f64, kills: usize, stops: usize, load: bool) {
    let label =
        if version == 2 { format!("v2/{advert_int} s") } else { format!("v3/{} ms", (advert_int * 1000.0).round()) };
    let label = if load { format!("{label} under CPU load") } else { label };
    let roles = ["n1", "n2"];
    let mut lab = Lab::new(tag, &["db", "n1", "n2", "cl"]);
    lab.start_db();
    let vip = VIPS[0];
    let notify = lab.dir.join("notify.sh");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$(cat /proc/sys/kernel/hostname) $*\" >> {}/notify.log\n", lab.dir.display()),
    )
    .unwrap();
    sh(&format!("chmod +x {}", notify.display()));
    let extra = format!("notify = \"{}\"\ngarp_master_delay = 0\n", notify.display());
    lab.start_node("n1", &vrrp_toml("VI_1", 51, vip, 150, version, advert_int, &extra));
    lab.start_node("n2", &vrrp_toml("VI_1", 51, vip, 100, version, advert_int, &extra));
    let down = Duration::from_secs_f64(advert_int * 4.0 + 2.0);
    lab.wait_vip_on(vip, "n1", &roles, down * 2);
    let client = Client::new(&lab);
    client.expect(vip, "n1", Duration::from_secs(10));
    report!("{label}: VIP on the higher priority node n1; VRRP threads: {}", lab.vrrp_thread_policy("rwsplit-n1"));

    let burn = Arc::new(AtomicBool::new(load));
    let burners: Vec<_> = (0..if load { 2 * std::thread::available_parallelism().map_or(2, |n| n.get()) } else { 0 })
        .map(|_| {
            let b = burn.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while b.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    if load {
        report!(
            "{label}: {} busy threads started on {} cores",
            burners.len(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
    }

    let limit = Duration::from_secs_f64(advert_int * 3.0 + 10.0);
    let (mut moved, mut queried, mut expired, mut overlap) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..kills {
        // Kill at different phases of the advert interval (the backup counts Master_Down_Interval
        // from the last advert it heard, so the phase shifts the takeover by up to one interval).
        std::thread::sleep(Duration::from_secs_f64(advert_int * (i as f64 + 0.5) / kills as f64));
        let t = take_down(&mut lab, &client, vip, "n1", "n2", true, limit);
        moved.push(t.vip_moved);
        queried.push(t.first_query);
        // The VIP left on the killed node (nobody renews it) expires by itself.
        expired.push(t.old_gone);
        overlap.push(t.old_gone.saturating_sub(t.vip_moved));
        lab.restart_node("n1");
        lab.wait_vip_on(vip, "n1", &roles, down * 2);
        client.expect(vip, "n1", Duration::from_secs(10));
    }
    let (mut s_moved, mut s_queried) = (Vec::new(), Vec::new());
    for _ in 0..stops {
        let t = take_down(&mut lab, &client, vip, "n1", "n2", false, limit);
        assert!(t.old_gone < Duration::from_millis(500), "the stopped master kept its VIP for {:?}", t.old_gone);
        s_moved.push(t.vip_moved);
        s_queried.push(t.first_query);
        lab.restart_node("n1");
        lab.wait_vip_on(vip, "n1", &roles, down * 2);
        client.expect(vip, "n1", Duration::from_secs(10));
    }
    burn.store(false, Ordering::Relaxed);
    for b in burners {
        b.join().unwrap();
    }
    if kills > 0 {
        report!("{label}: kill -9 of the master: VIP moved in {}", range(&moved));
        report!("{label}: kill -9 of the master: client's first query through the VIP in {}", range(&queried));
        report!(
            "{label}: VIP left on the killed node (valid_lft 3 s) expired by itself {} after the kill",
            range(&expired)
        );
        report!("{label}: so the stale copy answered beside the new master's for {}", range(&overlap));
    }
    if stops > 0 {
        report!("{label}: clean stop (SIGTERM): VIP moved in {}", range(&s_moved));
        report!("{label}: clean stop (SIGTERM): client's first query through the VIP in {}", range(&s_queried));
        // A clean stop sends priority 0: the backup waits Skew_Time, never Master_Down_Interval.
        let master_down = Duration::from_secs_f64(3.0 * advert_int + advert_int * 156.0 / 256.0);
        for d in &s_moved {
            assert!(
                *d < master_down.max(Duration::from_millis(500)) + Duration::from_millis(500),
                "clean stop took {d:?}: priority 0 not honoured"
            );
        }
    }
    for d in &expired {
        assert!(*d < Duration::from_secs(6), "VIP on the killed node lasted {d:?}");
    }
    // Notify ran with keepalived's arguments on the transitions.
    let notified = std::fs::read_to_string(lab.dir.join("notify.log")).unwrap_or_default();
    assert!(notified.contains("INSTANCE VI_1 MASTER 150"), "notify log:\n{notified}");
    assert!(notified.contains("INSTANCE VI_1 BACKUP 100"), "notify log:\n{notified}");
    assert!(notified.contains("INSTANCE VI_1 MASTER 100"), "notify log:\n{notified}");
    if stops > 0 {
        assert!(notified.contains("INSTANCE VI_1 STOP 150"), "notify log:\n{notified}");
    }
    let transitions = lab.log_count("n2", "VRRP state");
    report!("{label}: n2 logged {transitions} VRRP transitions");
}

#[test]
fn v3_100ms_kill_and_clean_stop() {
    let _s = serial();
    skip_unless_ready!();
    failover_series("a", 3, 0.1, 3, 3, false);
}

#[test]
fn v2_1s_kill_and_clean_stop() {
    let _s = serial();
    skip_unless_ready!();
    failover_series("b", 2, 1.0, 2, 1, false);
}

#[test]
fn v3_100ms_kill_with_all_cores_busy() {
    let _s = serial();
    skip_unless_ready!();
    failover_series("c", 3, 0.1, 3, 1, true);
}

/// Log text without the ANSI colours tracing adds.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `role`'s log lines (colours stripped) that contain every one of `needles`.
fn log_lines(lab: &Lab, role: &str, needles: &[&str]) -> usize {
    let text = strip_ansi(&std::fs::read_to_string(lab.dir.join(format!("{role}.log"))).unwrap_or_default());
    text.lines().filter(|l| needles.iter().all(|n| l.contains(n))).count()
}

/// Asserts for `span` that each (vip, role) stays exactly there.
fn assert_stays(lab: &Lab, expect: &[(&str, &str)], roles: &[&str], span: Duration) {
    let t = Instant::now();
    while t.elapsed() < span {
        for (vip, role) in expect {
            let h = lab.holders(vip, roles);
            assert_eq!(h, [role.to_string()], "{vip} moved after {:?}\n{}", t.elapsed(), lab.logs());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn nopreempt_keeps_the_vip_when_the_old_master_returns() {
    let _s = serial();
    skip_unless_ready!();
    let roles = ["n1", "n2"];
    let mut lab = Lab::new("p", &["db", "n1", "n2", "cl"]);
    lab.start_db();
    let vip = VIPS[0];
    lab.start_node("n1", &vrrp_toml("VI_1", 51, vip, 150, 3, 0.1, "nopreempt = true\n"));
    lab.start_node("n2", &vrrp_toml("VI_1", 51, vip, 100, 3, 0.1, "nopreempt = true\n"));
    lab.wait_vip_on(vip, "n1", &roles, Duration::from_secs(5));
    let client = Client::new(&lab);
    client.expect(vip, "n1", Duration::from_secs(10));

    let t = take_down(&mut lab, &client, vip, "n1", "n2", true, Duration::from_secs(10));
    report!(
        "nopreempt v3/100 ms: kill -9: VIP moved in {} ms, first query in {} ms",
        t.vip_moved.as_millis(),
        t.first_query.as_millis()
    );
    let masters = log_lines(&lab, "n1", &["VRRP state", "state=\"MASTER\""]);
    lab.restart_node("n1");
    // Many Master_Down_Intervals (0.341 s for n1): n1 stays backup, the VIP stays on n2.
    assert_stays(&lab, &[(vip, "n2")], &roles, Duration::from_secs(3));
    client.expect(vip, "n2", Duration::from_secs(5));
    assert_eq!(
        log_lines(&lab, "n1", &["VRRP state", "state=\"MASTER\""]),
        masters,
        "n1 took the master role back despite nopreempt"
    );
    assert!(log_lines(&lab, "n1", &["VRRP state", "state=\"BACKUP\""]) >= 2);
    report!("nopreempt: the returning higher-priority node stayed BACKUP for 3 s; the VIP stayed on n2");

    // n1 is a live backup: a clean stop of n2 hands the VIP to it.
    let t = take_down(&mut lab, &client, vip, "n2", "n1", false, Duration::from_secs(10));
    report!(
        "nopreempt: clean stop of n2: VIP back on n1 in {} ms, first query in {} ms",
        t.vip_moved.as_millis(),
        t.first_query.as_millis()
    );
}

#[test]
fn failing_track_script_and_proxy_health_move_the_vip() {
    let _s = serial();
    skip_unless_ready!();
    let roles = ["n1", "n2"];
    let mut lab = Lab::new("t", &["db", "n1", "n2", "cl"]);
    lab.start_db();
    let vip = VIPS[0];
    let flag = lab.dir.join("fail-n1");
    let script = format!(
        "[[vrrp.track_script]]\nname = \"chk_flag\"\nscript = \"test ! -e {}\"\ninterval = 0.2\nweight = -60\nfall = 1\nrise = 1\n\n",
        flag.display()
    );
    let n1 = vrrp_toml("VI_1", 51, vip, 150, 3, 0.1, "track_proxy = { weight = -60 }\n") + &script;
    lab.start_node("n1", &n1);
    lab.start_node("n2", &vrrp_toml("VI_1", 51, vip, 100, 3, 0.1, "track_proxy = { weight = -60 }\n"));
    lab.wait_vip_on(vip, "n1", &roles, Duration::from_secs(5));
    let client = Client::new(&lab);
    client.expect(vip, "n1", Duration::from_secs(10));

    // The script fails: 150 - 60 = 90 < 100, n2 preempts.
    std::fs::write(&flag, "").unwrap();
    let moved = lab.wait_vip_on(vip, "n2", &roles, Duration::from_secs(5));
    client.expect(vip, "n2", Duration::from_secs(5));
    report!(
        "track_script (weight -60, interval 0.2 s) failing on the master: VIP moved to the backup in {} ms",
        moved.as_millis()
    );
    assert!(log_lines(&lab, "n1", &["VRRP state", "state=\"BACKUP\"", "priority=90"]) >= 1, "{}", lab.logs());
    std::fs::remove_file(&flag).unwrap();
    let back = lab.wait_vip_on(vip, "n1", &roles, Duration::from_secs(5));
    client.expect(vip, "n1", Duration::from_secs(5));
    report!("track_script good again: VIP back on n1 (preempt) in {} ms", back.as_millis());

    // The proxy loses its writer (the database unreachable from n1 only): track_proxy -60.
    let n1ns = lab.ns("n1");
    sh(&format!("ip -n {n1ns} route add prohibit {DB_IP}/32"));
    let moved = lab.wait_vip_on(vip, "n2", &roles, Duration::from_secs(10));
    client.expect(vip, "n2", Duration::from_secs(5));
    report!(
        "proxy health (no writer: monitor fall 2 x 200 ms, health refresh 200 ms): VIP moved to n2 in {} ms",
        moved.as_millis()
    );
    assert!(log_lines(&lab, "n1", &["proxy unhealthy"]) >= 1, "{}", lab.logs());
    sh(&format!("ip -n {n1ns} route del prohibit {DB_IP}/32"));
    let back = lab.wait_vip_on(vip, "n1", &roles, Duration::from_secs(10));
    client.expect(vip, "n1", Duration::from_secs(5));
    report!("proxy healthy again: VIP back on n1 in {} ms", back.as_millis());
}

#[test]
fn three_nodes_three_vips_only_the_dead_nodes_vip_moves() {
    let _s = serial();
    skip_unless_ready!();
    let nodes = ["n1", "n2", "n3"];
    let mut lab = Lab::new("m", &["db", "n1", "n2", "cl", "n3"]);
    lab.start_db();
    // VIP k: node k prefers it (150), node k+1 is its backup (100), node k+2 the last (50).
    for (i, node) in nodes.iter().enumerate() {
        let mut vrrp = String::new();
        for (k, vip) in VIPS.iter().enumerate() {
            let priority = [150, 100, 50][(i + 3 - k) % 3];
            vrrp += &vrrp_toml(&format!("VI_{}", k + 1), 51 + k as u32, vip, priority, 3, 0.1, "");
        }
        lab.start_node(node, &vrrp);
    }
    for (vip, node) in VIPS.iter().zip(nodes) {
        lab.wait_vip_on(vip, node, &nodes, Duration::from_secs(5));
    }
    let client = Client::new(&lab);
    for (vip, node) in VIPS.iter().zip(nodes) {
        client.expect(vip, node, Duration::from_secs(10));
    }
    report!("3 nodes, 3 VIPs: each node is master of its own VIP and backup of the two others (all three serve)");

    let t = take_down(&mut lab, &client, VIPS[0], "n1", "n2", true, Duration::from_secs(10));
    report!(
        "3 nodes: kill -9 of n1: its VIP moved to n2 in {} ms, first query in {} ms",
        t.vip_moved.as_millis(),
        t.first_query.as_millis()
    );
    let survivors = ["n2", "n3"];
    assert_stays(&lab, &[(VIPS[0], "n2"), (VIPS[1], "n2"), (VIPS[2], "n3")], &survivors, Duration::from_secs(2));
    client.expect(VIPS[1], "n2", Duration::from_secs(5));
    client.expect(VIPS[2], "n3", Duration::from_secs(5));
    // The other two instances never changed state after their first MASTER.
    assert_eq!(log_lines(&lab, "n2", &["VRRP state", "instance=VI_2"]), 2, "{}", lab.logs());
    assert_eq!(log_lines(&lab, "n3", &["VRRP state", "instance=VI_3"]), 2, "{}", lab.logs());
    report!("3 nodes: VI_2 (n2) and VI_3 (n3) did not move");
}

/// Clients that each keep one connection to a node's own address (never a VIP) and query it
/// in a loop, from a thread in the client namespace: what a reload must not disturb.
struct HeldClients {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<HeldOutcome>>>,
}

/// One held connection's record: statements that worked, errors, and the session ids seen
/// (one id: the connection was never replaced).
#[derive(Debug)]
struct HeldOutcome {
    node: String,
    ok: u64,
    errors: Vec<String>,
    ids: std::collections::BTreeSet<u64>,
}

impl HeldClients {
    fn start(lab: &Lab, roles: &[&str]) -> HeldClients {
        let stop = Arc::new(AtomicBool::new(false));
        let nodes: Vec<String> = roles.iter().map(|r| node_ip(r).to_string()).collect();
        let flag = stop.clone();
        let thread = spawn_in_ns(&lab.ns("cl"), move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let loops = nodes.into_iter().map(|node| {
                    let flag = flag.clone();
                    async move {
                        let mut out =
                            HeldOutcome { node: node.clone(), ok: 0, errors: vec![], ids: Default::default() };
                        let mut conn = match mysql_async::Conn::new(app_opts(&node)).await {
                            Ok(c) => c,
                            Err(e) => {
                                out.errors.push(format!("connect: {e}"));
                                return out;
                            }
                        };
                        // Bounded: the test stops it within a minute; 100,000 rounds at most.
                        for _ in 0..100_000 {
                            if flag.load(Ordering::Relaxed) {
                                break;
                            }
                            let q = conn.query_first::<u64, _>("SELECT CONNECTION_ID()");
                            match tokio::time::timeout(Duration::from_secs(2), q).await {
                                Ok(Ok(Some(id))) => {
                                    out.ok += 1;
                                    out.ids.insert(id);
                                }
                                Ok(Ok(None)) => out.errors.push("no row".into()),
                                Ok(Err(e)) => out.errors.push(e.to_string()),
                                Err(_) => out.errors.push("timed out (2 s)".into()),
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        out
                    }
                });
                futures_util::future::join_all(loops).await
            })
        });
        HeldClients { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> Vec<HeldOutcome> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map(|t| t.join().unwrap()).unwrap_or_default()
    }
}

impl Drop for HeldClients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Rewrites `role`'s config with `vrrp` after the proxy part and sends it SIGHUP.
fn reload_node(lab: &mut Lab, role: &str, vrrp: &str) {
    let config = lab.configs.iter().find(|(r, _)| r == role).unwrap().1.clone();
    std::fs::write(&config, format!("{}{vrrp}", proxy_toml())).unwrap();
    let pid = lab.pid(&format!("rwsplit-{role}"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP).unwrap();
}

#[test]
fn reload_changes_and_adds_and_removes_vrrp_instances_without_dropping_clients() {
    let _s = serial();
    skip_unless_ready!();
    let roles = ["n1", "n2"];
    let mut lab = Lab::new("r", &["db", "n1", "n2", "cl"]);
    lab.start_db();
    let (vip, vip2) = (VIPS[0], VIPS[1]);
    let vi1 = |priority| vrrp_toml("VI_1", 51, vip, priority, 3, 0.1, "");
    let vi2 = vrrp_toml("VI_2", 52, vip2, 150, 3, 0.1, "");
    lab.start_node("n1", &vi1(150));
    lab.start_node("n2", &vi1(100));
    lab.wait_vip_on(vip, "n1", &roles, Duration::from_secs(5));
    let (pid1, pid2) = (lab.pid("rwsplit-n1"), lab.pid("rwsplit-n2"));
    let held = HeldClients::start(&lab, &roles);
    std::thread::sleep(Duration::from_millis(300));

    // A changed instance: n2 raised above n1 takes the VIP (preemption), without a restart.
    reload_node(&mut lab, "n2", &vi1(200));
    let moved = lab.wait_vip_on(vip, "n2", &roles, Duration::from_secs(10));
    report!("reload: n2's VI_1 priority 100 -> 200: VIP moved to n2 in {} ms", moved.as_millis());

    // An added instance: n1 (alone in VI_2) takes its VIP; VI_1, unchanged, stays backup.
    reload_node(&mut lab, "n1", &format!("{}{vi2}", vi1(150)));
    let added = lab.wait_vip_on(vip2, "n1", &roles, Duration::from_secs(10));
    assert_stays(&lab, &[(vip, "n2"), (vip2, "n1")], &roles, Duration::from_secs(1));
    report!("reload: VI_2 added on n1: its VIP up in {} ms; VI_1 stayed on n2", added.as_millis());

    // A removed instance: its VIP goes; VI_1 still untouched.
    reload_node(&mut lab, "n1", &vi1(150));
    wait_until(Duration::from_secs(10), || lab.holders(vip2, &roles).is_empty()).unwrap_or_else(|| {
        panic!("{vip2} still on {:?} after VI_2 was removed\n{}", lab.holders(vip2, &roles), lab.logs())
    });
    assert_stays(&lab, &[(vip, "n2")], &roles, Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(300));

    assert_eq!((lab.pid("rwsplit-n1"), lab.pid("rwsplit-n2")), (pid1, pid2));
    assert!(lab.alive("rwsplit-n1") && lab.alive("rwsplit-n2"), "a node exited:\n{}", lab.logs());
    for o in held.finish() {
        assert!(
            o.errors.is_empty(),
            "client on {}: {} errors, first: {:?}\n{}",
            o.node,
            o.errors.len(),
            o.errors.first(),
            lab.logs()
        );
        assert_eq!(o.ids.len(), 1, "client on {} saw session ids {:?}: its connection was replaced", o.node, o.ids);
        assert!(o.ok >= 50, "client on {} ran only {} statements", o.node, o.ok);
        report!("reload: client held on {} through three reloads: {} statements, 0 errors, one session", o.node, o.ok);
    }
    let reloads = (lab.log_count("n1", "config reloaded"), lab.log_count("n2", "config reloaded"));
    assert_eq!(reloads, (2, 1), "reloads applied (n1, n2)\n{}", lab.logs());
}

fn keepalived_conf(role: &str, priority: u32, version: u32, advert_int: &str, auth: bool) -> String {
    let auth =
        if auth { "    authentication {\n        auth_type PASS\n        auth_pass lab51pw\n    }\n" } else { "" };
    format!(
        "global_defs {{\n    router_id {role}\n}}\nvrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    \
         virtual_router_id 51\n    version {version}\n    priority {priority}\n    advert_int {advert_int}\n{auth}    \
         virtual_ipaddress {{\n        {}/24\n    }}\n}}\n",
        VIPS[0]
    )
}

#[test]
fn keepalived_interop_both_ways_and_tshark_decodes_our_adverts() {
    let _s = serial();
    skip_unless_ready!("keepalived", "dumpcap", "tshark");
    let roles = ["n1", "ka"];
    let mut lab = Lab::new("k", &["db", "n1", "ka", "cl"]);
    lab.start_db();
    let vip = VIPS[0];
    let pcap = lab.dir.join("n1.pcapng");
    let cap_log = lab.dir.join("dumpcap.log");
    lab.spawn(
        "n1",
        "dumpcap",
        Path::new("dumpcap"),
        &["-q", "-i", "eth0", "-f", "ip proto 112", "-w", pcap.to_str().unwrap()],
        &cap_log,
        &[],
    );
    assert!(
        wait_until(Duration::from_secs(10), || pcap.exists()).is_some(),
        "dumpcap did not start: {}",
        tail(&cap_log, 10)
    );
    std::thread::sleep(Duration::from_millis(300));
    let keepalived = |lab: &mut Lab, phase: &str, conf: String| {
        let path = lab.dir.join(format!("keepalived-{phase}.conf"));
        std::fs::write(&path, conf).unwrap();
        let d = lab.dir.clone();
        let args = [
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--vrrp",
            "-f",
            path.to_str().unwrap(),
            "-p",
            &format!("{}/k-{phase}.pid", d.display()),
            "-r",
            &format!("{}/v-{phase}.pid", d.display()),
        ];
        let log = d.join("ka.log");
        lab.spawn("ka", "keepalived", Path::new("/usr/sbin/keepalived"), &args, &log, &[]);
    };

    // v2 with PASS, 1 s: keepalived (100) is master alone, then rwsplit (150) preempts it.
    keepalived(&mut lab, "v2", keepalived_conf("ka", 100, 2, "1", true));
    lab.wait_vip_on(vip, "ka", &roles, Duration::from_secs(8));
    let auth = "authentication = { auth_type = \"PASS\", auth_pass = \"lab51pw\" }\n";
    let t0 = Instant::now();
    lab.start_node("n1", &vrrp_toml("VI_1", 51, vip, 150, 2, 1.0, auth));
    lab.wait_vip_on(vip, "n1", &roles, Duration::from_secs(8));
    report!(
        "interop v2/1 s PASS: rwsplit (150) took the master role from keepalived (100) in {} ms",
        t0.elapsed().as_millis()
    );
    let client = Client::new(&lab);
    client.expect(vip, "n1", Duration::from_secs(10));
    // keepalived accepts our adverts: it stays backup for several of them.
    assert_stays(&lab, &[(vip, "n1")], &roles, Duration::from_secs(3));
    let t0 = Instant::now();
    lab.term("rwsplit-n1");
    let moved = lab.wait_vip_on(vip, "ka", &roles, Duration::from_secs(5));
    assert!(lab.reap("rwsplit-n1", Duration::from_secs(10)).success());
    report!(
        "interop v2/1 s: rwsplit stopped cleanly, keepalived took over in {} ms (Skew_Time 0.609 s)",
        moved.as_millis()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "keepalived waited for Master_Down_Interval: priority 0 not honoured"
    );
    lab.term("keepalived");
    lab.reap("keepalived", Duration::from_secs(10));

    // v3, 100 ms: rwsplit (100) is master alone, then keepalived (200) preempts it.
    lab.start_node("n1", &vrrp_toml("VI_1", 51, vip, 100, 3, 0.1, ""));
    lab.wait_vip_on(vip, "n1", &roles, Duration::from_secs(5));
    client.expect(vip, "n1", Duration::from_secs(10));
    let t0 = Instant::now();
    keepalived(&mut lab, "v3", keepalived_conf("ka", 200, 3, "0.1", false));
    lab.wait_vip_on(vip, "ka", &roles, Duration::from_secs(8));
    report!(
        "interop v3/100 ms: keepalived (200) took the master role from rwsplit (100) in {} ms",
        t0.elapsed().as_millis()
    );
    assert_stays(&lab, &[(vip, "ka")], &roles, Duration::from_secs(1));
    assert!(log_lines(&lab, "n1", &["VRRP state", "from=\"MASTER\"", "state=\"BACKUP\""]) >= 1, "{}", lab.logs());
    lab.term("keepalived");
    let moved = lab.wait_vip_on(vip, "n1", &roles, Duration::from_secs(5));
    client.expect(vip, "n1", Duration::from_secs(10));
    report!(
        "interop v3/100 ms: keepalived stopped cleanly, rwsplit took over in {} ms (Skew_Time 61 ms)",
        moved.as_millis()
    );
    lab.reap("keepalived", Duration::from_secs(10));
    lab.term("rwsplit-n1");
    assert!(lab.reap("rwsplit-n1", Duration::from_secs(10)).success());
    std::thread::sleep(Duration::from_millis(500)); // let dumpcap write the last adverts
    lab.term("dumpcap");
    lab.reap("dumpcap", Duration::from_secs(10));

    let fields = sh(&format!(
        "tshark -r {} -Y 'vrrp && ip.src=={}' -T fields -e vrrp.version -e vrrp.prio -e vrrp.checksum.status 2>/dev/null",
        pcap.display(),
        node_ip("n1")
    ));
    let rows: Vec<Vec<&str>> = fields.lines().map(|l| l.split('\t').collect()).collect();
    let count = |v: &str, p: &str| rows.iter().filter(|r| r.first() == Some(&v) && r.get(1) == Some(&p)).count();
    report!(
        "tshark: {} adverts from rwsplit decoded as VRRP; v2 prio 150: {}, v2 prio 0: {}, v3 prio 100: {}, v3 prio 0: {}",
        rows.len(),
        count("2", "150"),
        count("2", "0"),
        count("3", "100"),
        count("3", "0")
    );
    assert!(
        count("2", "150") >= 3 && count("2", "0") >= 1 && count("3", "100") >= 3 && count("3", "0") >= 1,
        "{fields}"
    );
    assert!(rows.iter().all(|r| r.get(2) == Some(&"1")), "tshark found a bad checksum (status != 1 = good):\n{fields}");
}

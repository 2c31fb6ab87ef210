//! rwsplit under systemd's notify protocol, without systemd: the test owns the `NOTIFY_SOCKET`
//! (a Unix datagram socket in a temporary directory) and sets `WATCHDOG_USEC` and
//! `WATCHDOG_PID` as systemd does for `Type=notify` + `WatchdogSec=`, then runs the real
//! binary with the command lines of `packaging/rwsplit.service` (paths replaced by the built
//! binary and a config for the test cluster) and checks what arrives on the socket:
//!
//! - READY=1 comes first, and only once clients are served and the first topology is known: at
//!   the moment it arrives, the log already names the initial writer, `/status` on the admin
//!   port shows the master as writer and a login + `SELECT 1` through rwsplit succeeds (one
//!   attempt each, no retry);
//! - WATCHDOG=1 keeps coming at about half of `WATCHDOG_USEC` (never a gap of a whole period);
//! - SIGHUP (the unit's `ExecReload=`) gives RELOADING=1 with a MONOTONIC_USEC stamped after
//!   the signal (systemd's `Type=notify-reload` protocol), then READY=1 once the new config is
//!   in force (a user added by the reload logs in at that moment);
//! - SIGTERM gives STOPPING=1 and the process exits 0 within a few seconds.
//!
//! The unit's `ExecStartPre=` (`rwsplit --config FILE check`) is run with the real binary too.

use rwsplit_tests::*;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the unit's `ExecStart=`, `ExecStartPre=`, ... run, as argv: `/usr/bin/rwsplit` replaced
/// by the built binary and `/etc/rwsplit/rwsplit.toml` by `config`.
fn unit_command(key: &str, config: &Path) -> Vec<String> {
    let unit_path = workspace_dir().join("packaging/rwsplit.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for setting in ["Type=notify", "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM"] {
        assert!(
            unit.lines().any(|l| l == setting),
            "{} has no {setting}: the test below assumes it",
            unit_path.display()
        );
    }
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {}", unit_path.display()));
    let argv: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(argv.first(), Some(&"/usr/bin/rwsplit"), "{key}={line}");
    assert!(argv.contains(&"/etc/rwsplit/rwsplit.toml"), "{key}={line}");
    let bin = rwsplit_bin().unwrap();
    argv.iter()
        .map(|a| match *a {
            "/usr/bin/rwsplit" => bin.display().to_string(),
            "/etc/rwsplit/rwsplit.toml" => config.display().to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// CLOCK_MONOTONIC in µs, the clock of MONOTONIC_USEC.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) }, 0);
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The service manager's end: every datagram, as received, with the time it arrived (a thread
/// reads the socket, so arrival times do not depend on what the test is doing meanwhile).
struct NotifySocket {
    path: PathBuf,
    rx: mpsc::Receiver<(Instant, String)>,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::Builder::new().prefix("rwsplit-notify-").tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tx.send((Instant::now(), msg)).is_err() {
                    break;
                }
            }
        });
        NotifySocket { path, rx, _dir: dir }
    }

    /// The next datagram, waiting at most until `deadline`.
    fn next_until(&self, deadline: Instant) -> Option<(Instant, String)> {
        self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok()
    }

    /// The next datagram that is not a bare WATCHDOG=1, within `timeout`; the watchdog pings
    /// skipped on the way are counted into `pings`.
    fn next_event(&self, timeout: Duration, what: &str, pings: &mut usize, rwsplit: &mut Rwsplit) -> (Instant, String) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_until(deadline) {
                Some((_, m)) if m == "WATCHDOG=1\n" => *pings += 1,
                Some(event) => return event,
                None => panic!("no {what} within {timeout:?}; rwsplit {}\n{}", rwsplit.state(), rwsplit.log_tail()),
            }
        }
    }
}

/// The rwsplit process of this test (killed on drop if still running, log shown on panic).
struct Rwsplit {
    child: Child,
    log: PathBuf,
    pidfile: PathBuf,
}

impl Rwsplit {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill").args([&format!("-{sig}"), &self.pid()]).status().unwrap();
        assert!(st.success(), "kill -{sig} {}", self.pid());
    }

    fn state(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(st)) => format!("exited ({st})"),
            _ => "is running".into(),
        }
    }

    fn log_tail(&self) -> String {
        format!("{}:\n{}", self.log.display(), tail_file(&self.log, 40))
    }
}

impl Drop for Rwsplit {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[systemd test] rwsplit log {}", self.log_tail());
        }
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pidfile);
    }
}

/// A login as `user` and `SELECT 1` through rwsplit: one attempt, bounded.
async fn login_and_select_1(port: u16, user: &str, password: &str) -> Result<i64, String> {
    let attempt = async {
        let mut conn =
            mysql_async::Conn::new(loopback_opts(port, user, password, None)).await.map_err(|e| e.to_string())?;
        let one: i64 = value(&mut conn, "SELECT 1").await.map_err(|e| format!("{e:#}"))?;
        let _ = conn.disconnect().await;
        Ok(one)
    };
    tokio::time::timeout(Duration::from_secs(5), attempt).await.unwrap_or_else(|_| Err("no answer within 5 s".into()))
}

const WATCHDOG_USEC: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_protocol_ready_watchdog_reload_and_stop() {
    let cluster = tokio::task::block_in_place(Cluster::shared);
    let ports = free_ports(2).unwrap();
    let (port, admin_port) = (ports[0], ports[1]);
    let dir = cluster.state_dir().join("proxies").join(format!("systemd-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("rwsplit.toml");
    let config = proxy_config(cluster, port, admin_port, "").unwrap();
    std::fs::write(&config_path, &config).unwrap();
    let notify = NotifySocket::bind();

    // As systemd runs ExecStart=: WATCHDOG_PID is the service's own pid, known only once it
    // runs (sd-notify's watchdog_enabled() ignores WATCHDOG_USEC meant for another pid), hence
    // the shell that exports its $$ and execs rwsplit in its place.
    let argv = unit_command("ExecStart", &config_path);
    let log = dir.join("rwsplit.log");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "export WATCHDOG_PID=$$; exec \"$@\"", "sh"]).args(&argv);
    log_to(&mut cmd, &log).unwrap();
    let spawned = Instant::now();
    let child = cmd
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", WATCHDOG_USEC.to_string())
        .env_remove("WATCHDOG_PID")
        // The test reads info lines of the log.
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap();
    // The lab's watcher stops it too should this test process die without dropping it.
    let run_dir = cluster.state_dir().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let pidfile = run_dir.join(format!("rwsplit-{port}.pid"));
    std::fs::write(&pidfile, child.id().to_string()).unwrap();
    let mut rwsplit = Rwsplit { child, log, pidfile };
    let mut pings = 0;

    // READY=1: the first message, and the service is in order at that very moment.
    let (ready_at, first) = notify.next_event(DEFAULT_TIMEOUT, "READY=1", &mut pings, &mut rwsplit);
    assert_eq!(first, "READY=1\n", "the first notification");
    assert_eq!(pings, 0, "no WATCHDOG=1 before READY=1");
    let ready_ms = ready_at.duration_since(spawned).as_millis();
    let logged = tail_file(&rwsplit.log, 200);
    assert!(
        logged.contains("initial topology") && logged.contains("writer=master") && logged.contains("rwsplit ready"),
        "READY=1 before the first topology and the listeners:\n{logged}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&admin_get(admin_port, "/status").expect("admin endpoint")).expect("/status is JSON");
    assert_eq!(status["writer"], 0, "/status at READY=1 shows the master as writer: {status:#}");
    let one = login_and_select_1(port, APP_USER, APP_PASSWORD).await;
    assert_eq!(one, Ok(1), "login + SELECT 1 at READY=1\n{}", rwsplit.log_tail());
    let checked_ms = ready_at.elapsed().as_millis();

    // WATCHDOG=1 for 3 s from READY=1, at about WATCHDOG_USEC / 2.
    let window = Duration::from_secs(3);
    let mut stamps = vec![ready_at];
    while let Some((at, m)) = notify.next_until(ready_at + window) {
        assert_eq!(m, "WATCHDOG=1\n", "only watchdog pings while nothing happens");
        stamps.push(at);
    }
    let watchdogs = stamps.len() - 1;
    let max_gap = stamps.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    let max_gap = max_gap.max(ready_at + window - *stamps.last().unwrap());
    assert!(
        (3..=10).contains(&watchdogs),
        "WATCHDOG_USEC=1s: expected about 6 WATCHDOG=1 in 3 s (every 0.5 s), got {watchdogs}"
    );
    // sd_watchdog_enabled(3): ping at half the period; a gap near the whole period is a restart
    // waiting to happen on a busy machine.
    assert!(
        max_gap < Duration::from_micros(WATCHDOG_USEC * 3 / 4),
        "a gap of {max_gap:?} between watchdog pings (WATCHDOG_USEC=1s: every 0.5 s expected)"
    );

    // SIGHUP: RELOADING=1 stamped after the signal, then READY=1 with the new config in force.
    std::fs::write(&config_path, format!("{config}\n[[users]]\nname = \"reloaded\"\npassword = \"reloaded-pw\"\n"))
        .unwrap();
    let before_hup = monotonic_usec();
    let hup_at = Instant::now();
    rwsplit.signal("HUP");
    pings = 0;
    let (_, reloading) = notify.next_event(Duration::from_secs(10), "RELOADING=1", &mut pings, &mut rwsplit);
    let after_reloading = monotonic_usec();
    let fields: Vec<&str> = reloading.lines().collect();
    assert_eq!(fields.first(), Some(&"RELOADING=1"), "after SIGHUP: {reloading:?}");
    let stamp: u64 = fields
        .iter()
        .find_map(|f| f.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC (Type=notify-reload needs it): {reloading:?}"))
        .parse()
        .expect("MONOTONIC_USEC is a number");
    assert!(
        (before_hup..=after_reloading).contains(&stamp),
        "MONOTONIC_USEC={stamp} is not between the SIGHUP ({before_hup}) and its arrival ({after_reloading})"
    );
    let (reready_at, reready) =
        notify.next_event(Duration::from_secs(10), "READY=1 after the reload", &mut pings, &mut rwsplit);
    assert_eq!(reready, "READY=1\n", "after RELOADING=1");
    let reload_ms = reready_at.duration_since(hup_at).as_millis();
    let one = login_and_select_1(port, "reloaded", "reloaded-pw").await;
    assert_eq!(one, Ok(1), "a user added by the reload logs in at READY=1\n{}", rwsplit.log_tail());

    // SIGTERM: STOPPING=1, then exit 0 within a few seconds.
    let term_at = Instant::now();
    rwsplit.signal("TERM");
    let (stopping_at, stopping) = notify.next_event(Duration::from_secs(10), "STOPPING=1", &mut pings, &mut rwsplit);
    assert_eq!(stopping, "STOPPING=1\n", "after SIGTERM");
    let deadline = term_at + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = rwsplit.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "rwsplit still runs 10 s after SIGTERM\n{}", rwsplit.log_tail());
        std::thread::sleep(Duration::from_millis(20));
    };
    let exit_ms = term_at.elapsed().as_millis();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM\n{}", rwsplit.log_tail());
    while let Some((_, m)) = notify.next_until(Instant::now() + Duration::from_millis(100)) {
        assert_eq!(m, "WATCHDOG=1\n", "nothing but a late ping after STOPPING=1");
    }

    eprintln!(
        "[systemd test] READY=1 {ready_ms} ms after spawn (status + login + SELECT 1 checked {checked_ms} ms later); \
         {watchdogs} WATCHDOG=1 in 3 s, largest gap {:.0} ms; SIGHUP -> READY=1 in {reload_ms} ms; \
         SIGTERM -> STOPPING=1 in {} ms, exit 0 in {exit_ms} ms",
        max_gap.as_secs_f64() * 1000.0,
        stopping_at.duration_since(term_at).as_millis()
    );
}

/// The unit's `ExecStartPre=` validates the config it is given, with the real binary: a good one
/// passes (and is the file named, not the default path), a bad one fails the start (exit 2).
#[test]
fn exec_start_pre_checks_the_configured_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rwsplit.toml");
    std::fs::write(&path, base_config([3307, 3308, 3309], 18066, 19066)).unwrap();
    let argv = unit_command("ExecStartPre", &path);
    assert_eq!(argv.last().map(String::as_str), Some("check"), "ExecStartPre runs `rwsplit --config FILE check`");
    let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{argv:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with(&format!("{}: ok", path.display())), "{stdout}");

    std::fs::write(&path, "[proxy\n").unwrap();
    let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a bad config fails ExecStartPre: {stderr}");
    assert!(stderr.contains(&format!("{}:1:", path.display())), "{stderr}");
}

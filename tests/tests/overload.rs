//! Overload and slow-server behaviour: what a client that never reads, a session with a huge
//! replayable state, a session preparing without end, a replica that stops answering and many
//! clients on a small pool cost rwsplit and the other sessions.
//!
//! - A client that pipelines statements without reading the answers is held back by TCP: rwsplit
//!   stops reading it, so neither its memory nor the bytes the kernel accepts grow without end.
//! - 100,000 distinct `SET @vN = N` in one session take linear time, and the values are kept.
//! - Prepared statements per session are capped with the server's own error 1461.
//! - A replica stopped with SIGSTOP holds no read longer than the monitor needs to notice it.
//! - 200 clients on a pool of 8 connections per server get no errors, and the servers never see
//!   more than 8 of rwsplit's connections.
//!
//! Every test starts its own rwsplit in front of the shared cluster; the tests of this file run
//! one after another (RSS and timings are measured, a replica is stopped). Loopback only; every
//! loop and wait is bounded.

use rwsplit_tests::mysql_async::prelude::*;
use rwsplit_tests::mysql_async::{Conn, Statement};
use rwsplit_tests::raw::{RawConn, BASE_CAPS, COM_QUERY};
use rwsplit_tests::*;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

/// The tests of this file must not overlap: RSS, timings, a stopped replica, a global variable.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / MIB as f64)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// A normal client library session through the proxy: login, `SELECT 1`, disconnect, bounded.
async fn select_one(proxy: &Proxy, when: &str) -> Duration {
    let started = Instant::now();
    let r: anyhow::Result<Option<i64>> = async {
        let mut c = tokio::time::timeout(Duration::from_secs(20), proxy.conn()).await??;
        let v = tokio::time::timeout(Duration::from_secs(20), c.query_first::<i64, _>("SELECT 1")).await??;
        c.disconnect().await?;
        Ok(v)
    }
    .await;
    match r {
        Ok(Some(1)) => started.elapsed(),
        other => panic!("another client's SELECT 1 through rwsplit {when}: {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// 1. A pipelining client that never reads

/// A raw client sends `SELECT SLEEP(3)` and then, without reading anything, 64 KiB COM_QUERY
/// packets for 2 s. rwsplit must stop reading it (at most a bounded read-ahead): the bytes the
/// kernel accepts stay within the socket buffers and rwsplit's RSS does not grow with what the
/// client tries to send. Another client is served meanwhile and afterwards.
#[test]
fn pipelining_client_is_held_back_by_tcp() {
    const WRITE_FOR: Duration = Duration::from_secs(2);
    const RSS_BOUND: u64 = 16 * MIB;
    const ACCEPTED_BOUND: u64 = 32 * MIB;
    let _serial = serial();
    let rt = runtime();
    let proxy = Proxy::start(Cluster::shared(), "").expect("rwsplit");
    let _log = proxy.log_on_panic();
    rt.block_on(async {
        for _ in 0..3 {
            select_one(&proxy, "before the pipelining client").await;
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let before = proxy.rss_bytes().expect("VmRSS");

    let mut attacker = RawConn::connect(proxy.port(), APP_USER, APP_PASSWORD, APP_DB, BASE_CAPS)
        .expect("the pipelining client logs in through rwsplit");
    let mut sleep = vec![COM_QUERY];
    sleep.extend_from_slice(b"SELECT SLEEP(3)");
    attacker.send(&sleep).expect("sending SELECT SLEEP(3)");
    // One 64 KiB COM_QUERY packet (header included), written over and over, partial writes
    // continuing where the last one stopped so that the byte stream stays well formed.
    let payload_len = 64 * 1024 - 4;
    let mut packet = Vec::with_capacity(payload_len + 4);
    packet.extend_from_slice(&(payload_len as u32).to_le_bytes()[..3]);
    packet.push(0);
    packet.push(COM_QUERY);
    packet.extend_from_slice(b"SELECT '");
    packet.resize(4 + payload_len - 1, b'x');
    packet.push(b'\'');
    assert_eq!(packet.len(), 64 * 1024);
    let mut stream = attacker.stream.try_clone().expect("cloning the socket");
    stream.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let writer = {
        let accepted = accepted.clone();
        std::thread::spawn(move || -> Result<(), String> {
            let started = Instant::now();
            let mut at = 0;
            while started.elapsed() < WRITE_FOR {
                match stream.write(&packet[at..]) {
                    Ok(n) => {
                        accepted.fetch_add(n as u64, Ordering::Relaxed);
                        at = (at + n) % packet.len();
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => return Err(format!("writing after {:.1} s: {e}", started.elapsed().as_secs_f64())),
                }
            }
            Ok(())
        })
    };
    // Another client is served while the pipelining one writes.
    let other_latency = rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        select_one(&proxy, "while a client pipelines statements without reading").await
    });
    let written = writer.join().expect("the writer thread");
    let accepted = accepted.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let during = proxy.rss_bytes().expect("VmRSS");
    let growth = during.saturating_sub(before);
    eprintln!(
        "[overload] pipelining: the kernel accepted {} in {WRITE_FOR:?} ({written:?}); rwsplit RSS before {}, \
         after {} (growth {}); another client's SELECT 1 took {other_latency:?}",
        mib(accepted),
        mib(before),
        mib(during),
        mib(growth)
    );
    assert!(
        growth < RSS_BOUND,
        "rwsplit's RSS grew by {} (from {} to {}) while a client that never reads wrote {} of statements; \
         the bound is {}",
        mib(growth),
        mib(before),
        mib(during),
        mib(accepted),
        mib(RSS_BOUND)
    );
    assert!(
        accepted < ACCEPTED_BOUND,
        "the kernel accepted {} from a client that never reads in {WRITE_FOR:?}: rwsplit kept reading it \
         (socket buffers alone hold far less; the bound is {})",
        mib(accepted),
        mib(ACCEPTED_BOUND)
    );
    drop(attacker);
    rt.block_on(async {
        select_one(&proxy, "after the pipelining client left").await;
    });
    assert!(proxy.is_running(), "rwsplit is still running");
}

// ------------------------------------------------------------------------------------------
// 2. A huge replayable session state

/// One session runs 100,000 distinct `SET @vN = N`, one statement each, timed in batches of
/// 10,000: the last batch may not be more than 3 times slower than the first (linear, not
/// quadratic). Then a read is answered quickly and both the first and the last variables are
/// kept.
#[test]
fn hundred_thousand_sets_run_in_linear_time() {
    const SETS: u64 = 100_000;
    const BATCH: u64 = 10_000;
    let _serial = serial();
    let rt = runtime();
    let proxy = Proxy::start(Cluster::shared(), "").expect("rwsplit");
    let _log = proxy.log_on_panic();
    rt.block_on(async {
        let mut conn = proxy.conn().await.expect("connecting through rwsplit");
        let started = Instant::now();
        let mut batches = Vec::new();
        for b in 0..SETS / BATCH {
            let t = Instant::now();
            for n in b * BATCH..(b + 1) * BATCH {
                tokio::time::timeout(Duration::from_secs(30), conn.query_drop(format!("SET @v{n} = {n}")))
                    .await
                    .unwrap_or_else(|_| panic!("SET @v{n} took more than 30 s"))
                    .unwrap_or_else(|e| panic!("SET @v{n} = {n}: {e}"));
            }
            batches.push(t.elapsed());
        }
        let total = started.elapsed();
        let first = batches[0];
        let last = *batches.last().unwrap();
        let ratio = last.as_secs_f64() / first.as_secs_f64();
        let t = Instant::now();
        let one: Option<i64> = tokio::time::timeout(Duration::from_secs(60), conn.query_first("SELECT 1"))
            .await
            .expect("SELECT 1 after 100,000 SETs took more than 60 s")
            .expect("SELECT 1 after 100,000 SETs");
        let select_latency = t.elapsed();
        let (last_var, last_server): (Option<i64>, u32) =
            conn.query_first(format!("SELECT @v{}, @@server_id", SETS - 1)).await.unwrap().unwrap();
        let (first_var, first_server): (Option<i64>, u32) =
            conn.query_first("SELECT @v1, @@server_id").await.unwrap().unwrap();
        // For the report: whether a second read costs the same (not asserted).
        let t = Instant::now();
        let (_, again_server): (i64, u32) = conn.query_first("SELECT 1, @@server_id").await.unwrap().unwrap();
        let again_latency = t.elapsed();
        eprintln!(
            "[overload] {SETS} SETs in {:.1} s; batches of {BATCH}: {:?}; last/first = {ratio:.2}; SELECT 1 then \
             took {select_latency:?}; @v{} = {last_var:?} (server {last_server}), @v1 = {first_var:?} (server \
             {first_server}); another SELECT 1 took {again_latency:?} (server {again_server})",
            total.as_secs_f64(),
            batches.iter().map(|d| format!("{:.2}s", d.as_secs_f64())).collect::<Vec<_>>(),
            SETS - 1
        );
        assert!(
            ratio <= 3.0,
            "the last {BATCH} SETs took {last:?}, the first {BATCH} {first:?} ({ratio:.2} times as long; the \
             bound is 3): statement cost grows with the session's number of SETs"
        );
        assert_eq!(one, Some(1), "SELECT 1 after {SETS} SETs");
        assert!(
            select_latency < Duration::from_secs(1),
            "SELECT 1 after {SETS} SETs took {select_latency:?} (the bound is 1 s)"
        );
        assert_eq!(last_var, Some(SETS as i64 - 1), "@v{} after SELECT 1", SETS - 1);
        assert_eq!(first_var, Some(1), "@v1 after SELECT 1");
        conn.disconnect().await.unwrap();
    });
}

// ------------------------------------------------------------------------------------------
// 3. Prepared statements per session

/// Sets the master's `max_prepared_stmt_count` back to its value when dropped (also on panic).
struct RestorePreparedLimit {
    original: u64,
}

impl Drop for RestorePreparedLimit {
    fn drop(&mut self) {
        let sql = format!("SET GLOBAL max_prepared_stmt_count = {}", self.original);
        // A runtime of its own, on a thread of its own: this may run inside another runtime.
        let r = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(Cluster::shared().exec(MASTER, &sql))
        })
        .join();
        if !matches!(r, Ok(Ok(()))) {
            eprintln!("[overload] restoring max_prepared_stmt_count on the master failed: {r:?}");
        }
    }
}

/// (code, SQLSTATE, message) of a server error.
fn server_error(e: &mysql_async::Error) -> Option<(u16, String, String)> {
    match e {
        mysql_async::Error::Server(s) => Some((s.code, s.state.clone(), s.message.clone())),
        _ => None,
    }
}

/// `proxy.max_prepared_statements = 50`: the 51st prepare of a session fails with the server's
/// error 1461 (SQLSTATE 42000, the server's message with 50), and once one is closed a new one
/// can be prepared. The same error as the master gives at its own `max_prepared_stmt_count`.
#[test]
fn prepared_statements_per_session_are_capped_with_the_servers_error() {
    const CAP: u64 = 50;
    const MASTER_CAP: u64 = 5;
    let _serial = serial();
    let rt = runtime();
    let cluster = Cluster::shared();

    // What the master itself answers at its limit (straight to it, as root).
    let (original, master_err) = rt.block_on(async {
        let original: u64 = cluster.query_value(MASTER, "SELECT @@GLOBAL.max_prepared_stmt_count").await.unwrap();
        let _restore = RestorePreparedLimit { original };
        cluster.exec(MASTER, &format!("SET GLOBAL max_prepared_stmt_count = {MASTER_CAP}")).await.unwrap();
        let mut root = Conn::new(cluster.opts(MASTER, "root", "", None).stmt_cache_size(0)).await.unwrap();
        let mut held = Vec::new();
        let mut err = None;
        for i in 0..=MASTER_CAP {
            match root.prep(format!("SELECT ? + {i}")).await {
                Ok(s) => held.push(s),
                Err(e) => {
                    err = Some((i, e));
                    break;
                }
            }
        }
        for s in held {
            root.close(s).await.unwrap();
        }
        root.disconnect().await.unwrap();
        (original, err)
    });
    let restored: u64 = rt.block_on(cluster.query_value(MASTER, "SELECT @@GLOBAL.max_prepared_stmt_count")).unwrap();
    assert_eq!(restored, original, "the master's max_prepared_stmt_count was put back");
    let (master_at, master_err) = master_err.unwrap_or_else(|| {
        panic!("the master prepared {} statements at max_prepared_stmt_count = {MASTER_CAP}", MASTER_CAP + 1)
    });

    let proxy = Proxy::start(cluster, &format!("[proxy]\nmax_prepared_statements = {CAP}\n")).expect("rwsplit");
    let _log = proxy.log_on_panic();
    rt.block_on(async {
        // No client-side statement cache: every prep is a COM_STMT_PREPARE, closed only by us.
        let mut conn = Conn::new(proxy.opts().stmt_cache_size(0)).await.unwrap();
        let mut held: Vec<Statement> = Vec::new();
        for i in 0..CAP {
            let s = conn
                .prep(format!("SELECT ? + {i}"))
                .await
                .unwrap_or_else(|e| panic!("prepared statement {} of {CAP} through rwsplit: {e}", i + 1));
            held.push(s);
        }
        let proxy_err = conn
            .prep(format!("SELECT ? + {CAP}"))
            .await
            .expect_err("the 51st prepared statement of a session with proxy.max_prepared_statements = 50 must fail");
        eprintln!(
            "[overload] at the limit: the master ({MASTER_CAP}, statement {}) said {:?}; rwsplit ({CAP}, statement \
             {}) said {:?}",
            master_at + 1,
            server_error(&master_err),
            CAP + 1,
            server_error(&proxy_err)
        );
        let (m_code, m_state, m_msg) =
            server_error(&master_err).unwrap_or_else(|| panic!("the master's error is a server error: {master_err}"));
        let (code, state, msg) =
            server_error(&proxy_err).unwrap_or_else(|| panic!("rwsplit's error is a server error: {proxy_err}"));
        assert_eq!((code, state.as_str()), (1461, "42000"), "rwsplit's error for the 51st statement: {msg}");
        assert_eq!(
            msg,
            format!("Can't create more than max_prepared_stmt_count statements (current value: {CAP})"),
            "rwsplit's message for the 51st statement"
        );
        assert_eq!(
            (code, state.as_str()),
            (m_code, m_state.as_str()),
            "rwsplit's error ({msg}) and the master's own at its limit ({m_msg})"
        );
        assert_eq!(
            msg.replace(&CAP.to_string(), "N"),
            m_msg.replace(&MASTER_CAP.to_string(), "N"),
            "rwsplit's message has the master's format"
        );
        // The session still works, and a closed statement makes room for a new one.
        let v: Option<i64> = conn.exec_first(&held[7], (1,)).await.unwrap();
        assert_eq!(v, Some(8), "SELECT ? + 7 with 1, at the limit");
        let closed = held.remove(0);
        conn.close(closed).await.unwrap();
        let s = conn
            .prep(format!("SELECT ? + {}", CAP + 1))
            .await
            .unwrap_or_else(|e| panic!("a prepare after closing one of {CAP}: {e}"));
        let v: Option<i64> = conn.exec_first(&s, (1,)).await.unwrap();
        assert_eq!(v, Some(CAP as i64 + 2));
        let err = conn.prep("SELECT ? + 1000").await.expect_err("at the limit again");
        assert_eq!(server_error(&err).map(|e| e.0), Some(1461), "at the limit again: {err}");
        conn.disconnect().await.unwrap();
    });
}

// ------------------------------------------------------------------------------------------
// 4. A replica that stops answering

/// Sends SIGCONT to a stopped process when dropped (also on panic).
struct ContinueOnDrop {
    pid: String,
    stopped: bool,
}

impl ContinueOnDrop {
    fn stop(pid: &str) -> ContinueOnDrop {
        let ok = std::process::Command::new("kill").args(["-STOP", pid]).status().expect("kill -STOP");
        assert!(ok.success(), "kill -STOP {pid}");
        ContinueOnDrop { pid: pid.to_string(), stopped: true }
    }

    fn cont(&mut self) {
        if std::mem::take(&mut self.stopped) {
            let ok = std::process::Command::new("kill").args(["-CONT", &self.pid]).status();
            if !matches!(ok, Ok(s) if s.success()) {
                eprintln!("[overload] kill -CONT {} failed: {ok:?}", self.pid);
            }
        }
    }
}

impl Drop for ContinueOnDrop {
    fn drop(&mut self) {
        self.cont();
    }
}

fn server_pid(cluster: &Cluster, server_id: u32) -> String {
    let name = match server_id {
        2 => "replica1",
        3 => "replica2",
        other => panic!("server {other} is not a replica"),
    };
    let pidfile = cluster.state_dir().join(name).join("mariadbd.pid");
    std::fs::read_to_string(&pidfile).unwrap_or_else(|e| panic!("{}: {e}", pidfile.display())).trim().to_string()
}

/// One read of the looping sessions.
#[derive(Debug)]
struct Read {
    session: usize,
    started: Duration,
    took: Duration,
    result: Result<u32, String>,
}

/// A replica is stopped with SIGSTOP for 6 s while 4 sessions read in a loop. The monitor
/// (interval 250 ms, check timeout 500 ms, fall 2) notices within ~1.5 s; no read may take
/// longer than 3 s, errors are allowed only for statements in flight on the replica when it
/// stopped (at most one per session), a `SELECT SLEEP(5)` running there is aborted within
/// detection + 3 s (retried on another server, since nothing reached the client yet, or ended
/// with an error), and once continued the replica serves reads again within 30 s.
#[test]
fn a_stopped_replica_holds_no_read_beyond_the_monitors_detection() {
    const SESSIONS: usize = 4;
    const STOPPED_FOR: Duration = Duration::from_secs(6);
    const INTERVAL_MS: u64 = 250;
    const CHECK_TIMEOUT_MS: u64 = 500;
    const FALL: u64 = 2;
    let detection = Duration::from_millis(FALL * (INTERVAL_MS + CHECK_TIMEOUT_MS));
    let read_bound = Duration::from_secs(3);
    let sleep_bound = detection + Duration::from_secs(3);
    let _serial = serial();
    let rt = runtime();
    let cluster = Cluster::shared();
    let extra = format!(
        "[monitor]\ninterval_ms = {INTERVAL_MS}\nfall = {FALL}\nconnect_timeout_ms = {CHECK_TIMEOUT_MS}\n\
         check_timeout_ms = {CHECK_TIMEOUT_MS}\n"
    );
    let proxy = Proxy::start(cluster, &extra).expect("rwsplit");
    let _log = proxy.log_on_panic();
    rt.block_on(async {
        proxy.wait_reads_on_replicas(Duration::from_secs(30)).await.unwrap();
        let mut sessions = Vec::new();
        for _ in 0..SESSIONS {
            let mut c = proxy.conn().await.unwrap();
            server_id_of(&mut c).await.unwrap();
            sessions.push(c);
        }
        // The victim: the replica the first session reads from.
        let victim = server_id_of(&mut sessions[0]).await.unwrap();
        assert!(victim == 2 || victim == 3, "reads go to a replica, got server {victim}");
        // A session of its own reading from the victim, for the long SLEEP (bounded search).
        let mut sleeper = None;
        for _ in 0..40 {
            let mut c = proxy.conn().await.unwrap();
            if server_id_of(&mut c).await.unwrap() == victim {
                sleeper = Some(c);
                break;
            }
        }
        let mut sleeper = sleeper.unwrap_or_else(|| panic!("no new session read from server {victim} in 40 tries"));
        let pid = server_pid(cluster, victim);

        let t0 = Instant::now();
        let run = Arc::new(AtomicBool::new(true));
        let mut loops = Vec::new();
        for (i, mut conn) in sessions.into_iter().enumerate() {
            let run = run.clone();
            let proxy_opts = proxy.opts();
            loops.push(tokio::spawn(async move {
                let mut reads = Vec::new();
                let mut n = 0;
                while run.load(Ordering::Relaxed) && n < 2000 {
                    n += 1;
                    let started = t0.elapsed();
                    let r = tokio::time::timeout(
                        Duration::from_secs(15),
                        conn.query_first::<(u32, i64), _>("SELECT @@server_id, SLEEP(0.05)"),
                    )
                    .await;
                    let took = t0.elapsed() - started;
                    let result = match r {
                        Ok(Ok(Some((id, _)))) => Ok(id),
                        Ok(Ok(None)) => Err("no row".to_string()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("no answer within 15 s".to_string()),
                    };
                    let failed = result.is_err();
                    reads.push(Read { session: i, started, took, result });
                    if failed {
                        // A broken connection: log in again (bounded) and go on.
                        if let Ok(Ok(c)) =
                            tokio::time::timeout(Duration::from_secs(10), Conn::new(proxy_opts.clone())).await
                        {
                            conn = c;
                        }
                    }
                }
                reads
            }));
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        // The long read on the victim, started just before the stop.
        let long = tokio::spawn(async move {
            let started = Instant::now();
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                sleeper.query_first::<(u32, i64), _>("SELECT @@server_id, SLEEP(5)"),
            )
            .await;
            (started, started.elapsed(), r.map(|r| r.map_err(|e| e.to_string())))
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut stopped = ContinueOnDrop::stop(&pid);
        let stop_at = t0.elapsed();
        tokio::time::sleep(STOPPED_FOR).await;
        stopped.cont();
        let cont_at = t0.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        run.store(false, Ordering::Relaxed);
        let mut reads = Vec::new();
        for l in loops {
            reads.extend(tokio::time::timeout(Duration::from_secs(30), l).await.expect("session loops end").unwrap());
        }
        let (long_started, long_took, long_result) = long.await.unwrap();
        let long_after_stop = (long_started.duration_since(t0) + long_took).saturating_sub(stop_at);

        // Back: new sessions read from the continued replica within 30 s.
        let back_started = Instant::now();
        let mut back = None;
        while back_started.elapsed() < Duration::from_secs(30) {
            if let Ok(mut c) = proxy.conn().await {
                if let Ok(id) = server_id_of(&mut c).await {
                    if id == victim {
                        back = Some(back_started.elapsed());
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let slowest = reads.iter().max_by_key(|r| r.took).expect("reads");
        let over: Vec<(usize, String, String, &Result<u32, String>)> = reads
            .iter()
            .filter(|r| r.took > read_bound)
            .map(|r| {
                (
                    r.session,
                    format!("{:.2}s", r.started.as_secs_f64()),
                    format!("{:.2}s", r.took.as_secs_f64()),
                    &r.result,
                )
            })
            .collect();
        eprintln!("[overload] reads over {read_bound:?} (session, started, took, result): {over:?}");
        let errors: Vec<&Read> = reads.iter().filter(|r| r.result.is_err()).collect();
        let per_session: Vec<usize> = (0..SESSIONS).map(|s| errors.iter().filter(|r| r.session == s).count()).collect();
        let during: Vec<&Read> = reads
            .iter()
            .filter(|r| r.started >= stop_at + detection + Duration::from_secs(1) && r.started < cont_at)
            .collect();
        let on_victim_during = during.iter().filter(|r| r.result == Ok(victim)).count();
        eprintln!(
            "[overload] server {victim} stopped at {:.2}s, continued at {:.2}s (detection ~{detection:?}); {} reads, \
             slowest {:?} (session {}, started at {:.2}s, {:?}); {} errors (per session {per_session:?}): {:#?}; \
             SELECT SLEEP(5) on it ended {long_after_stop:?} after the stop with {long_result:?}; served reads \
             again after {back:?}",
            stop_at.as_secs_f64(),
            cont_at.as_secs_f64(),
            reads.len(),
            slowest.took,
            slowest.session,
            slowest.started.as_secs_f64(),
            slowest.result,
            errors.len(),
            errors
        );
        let _ = cluster.wait_replicated_within(Duration::from_secs(30)).await;
        assert!(
            slowest.took <= read_bound,
            "a read took {:?} (session {}, started {:.2}s after the start, the replica stopped at {:.2}s): the bound \
             is {read_bound:?} (monitor detection ~{detection:?} and a margin)",
            slowest.took,
            slowest.session,
            slowest.started.as_secs_f64(),
            stop_at.as_secs_f64()
        );
        assert!(
            per_session.iter().all(|&n| n <= 1),
            "errors per session {per_session:?} (at most one each, for a statement in flight when the replica \
             stopped): {errors:#?}"
        );
        for e in &errors {
            assert!(
                e.started <= stop_at + Duration::from_millis(100),
                "a read started {:.2}s after the start failed, the replica stopped at {:.2}s: only statements in \
                 flight then may fail: {e:?}",
                e.started.as_secs_f64(),
                stop_at.as_secs_f64()
            );
        }
        assert!(!during.is_empty(), "reads kept succeeding while server {victim} was stopped: none ran then");
        assert_eq!(on_victim_during, 0, "the stopped server {victim} answered reads?");
        // Aborted when the monitor marks the replica down: a read that sent nothing to the
        // client yet is retried on another server (and then sleeps its 5 s there); otherwise
        // it ends with an error. Either way it no longer waits for the stopped server.
        match &long_result {
            Ok(Ok(Some((server, _)))) => {
                assert_ne!(*server, victim, "the stopped server answered the long read?");
                assert!(
                    long_after_stop <= sleep_bound + Duration::from_secs(5),
                    "SELECT SLEEP(5), retried on server {server} after the abort, ended {long_after_stop:?} after \
                     the stop; the bound is {sleep_bound:?} (detection and 3 s) plus its 5 s"
                );
            }
            other => assert!(
                long_after_stop <= sleep_bound && matches!(other, Ok(Err(_))),
                "SELECT SLEEP(5) on the stopped replica ended {long_after_stop:?} after the stop ({other:?}); \
                 expected an abort with an error within {sleep_bound:?} (detection and 3 s) or a retry elsewhere"
            ),
        }
        assert!(back.is_some(), "server {victim} did not serve reads again within 30 s of SIGCONT");
    });
}

// ------------------------------------------------------------------------------------------
// 5. Many clients on a small pool

/// `max_connections_per_server = 8`: 200 concurrent clients each run 50 point selects and 5
/// writes without a single error, and no server sees more than 8 connections of rwsplit's
/// (sampled every 100 ms as root).
#[test]
fn many_clients_on_a_small_pool_get_no_errors() {
    const LIMIT: u64 = 8;
    const CLIENTS: usize = 200;
    const SELECTS: usize = 50;
    const WRITES: usize = 5;
    let _serial = serial();
    let rt = runtime();
    let cluster = Cluster::shared();
    rt.block_on(async {
        cluster.fresh_db("overload_pool").await.unwrap();
        let mut rows = String::from("INSERT INTO overload_pool.t (id, v) VALUES ");
        rows.push_str(&(1..=100).map(|i| format!("({i}, 0)")).collect::<Vec<_>>().join(", "));
        cluster
            .exec(MASTER, &format!("CREATE TABLE overload_pool.t (id INT PRIMARY KEY, v INT NOT NULL); {rows}"))
            .await
            .unwrap();
        cluster.wait_replicated().await.unwrap();
    });
    // Samplers: one root connection per server, open before the baseline (counted in it).
    // Connections of rwsplit's monitor are not the pool's: counted apart.
    let sample_sql = "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                      WHERE VARIABLE_NAME = 'THREADS_CONNECTED') + 0, \
                      (SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'monitor')";
    let (mut samplers, baseline) = rt.block_on(async {
        let mut samplers = Vec::new();
        for i in [MASTER, REPLICAS[0], REPLICAS[1]] {
            samplers.push(cluster.root_conn(i).await.unwrap());
        }
        let mut baseline = Vec::new();
        for s in samplers.iter_mut() {
            let (t, m): (u64, u64) = s.query_first(sample_sql).await.unwrap().unwrap();
            baseline.push(t - m);
        }
        (samplers, baseline)
    });
    let extra = format!("[backend]\nmax_connections_per_server = {LIMIT}\nmax_idle_per_server = {LIMIT}\n");
    let proxy = Proxy::start(cluster, &extra).expect("rwsplit");
    let _log = proxy.log_on_panic();
    rt.block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            tokio::spawn(async move {
                let mut peak = [0u64; 3];
                let mut samples = 0;
                // Bounded: 10 minutes of samples at most.
                while !done.load(Ordering::Relaxed) && samples < 6000 {
                    for (i, s) in samplers.iter_mut().enumerate() {
                        let (t, m): (u64, u64) = s.query_first(sample_sql).await.unwrap().unwrap();
                        peak[i] = peak[i].max(t - m);
                    }
                    samples += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                for s in samplers {
                    let _ = s.disconnect().await;
                }
                (peak, samples)
            })
        };
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let opts = proxy.opts();
            tasks.push(tokio::spawn(async move {
                let mut errors = Vec::new();
                let mut conn = match Conn::new(opts).await {
                    Ok(conn) => conn,
                    Err(e) => return vec![format!("client {c}: connecting: {e}")],
                };
                for k in 0..SELECTS {
                    let id = ((c * 7 + k) % 100 + 1) as i64;
                    match conn.exec_first::<i64, _, _>("SELECT id FROM overload_pool.t WHERE id = ?", (id,)).await {
                        Ok(Some(got)) if got == id => {}
                        other => errors.push(format!("client {c}: select {k} of id {id}: {other:?}")),
                    }
                    if k % (SELECTS / WRITES) == 0 {
                        let sql = format!("UPDATE overload_pool.t SET v = v + 1 WHERE id = {}", c % 100 + 1);
                        if let Err(e) = conn.query_drop(sql).await {
                            errors.push(format!("client {c}: write after select {k}: {e}"));
                        }
                    }
                }
                let _ = conn.disconnect().await;
                errors
            }));
        }
        let mut errors = Vec::new();
        for t in tasks {
            match tokio::time::timeout(Duration::from_secs(300), t).await {
                Ok(Ok(e)) => errors.extend(e),
                Ok(Err(e)) => errors.push(format!("a client task: {e}")),
                Err(_) => errors.push("a client did not finish within 300 s".to_string()),
            }
        }
        let took = started.elapsed();
        done.store(true, Ordering::Relaxed);
        let (peak, samples) = sampler.await.unwrap();
        let above: Vec<i64> = peak.iter().zip(&baseline).map(|(p, b)| *p as i64 - *b as i64).collect();
        let total: u64 = cluster.query_value(MASTER, "SELECT SUM(v) FROM overload_pool.t").await.unwrap();
        eprintln!(
            "[overload] {CLIENTS} clients x ({SELECTS} selects + {WRITES} writes) in {:.1} s; {} errors; \
             connections (monitor's excluded) baseline {baseline:?}, peak {peak:?}, above baseline {above:?} in \
             {samples} samples; SUM(v) = {total}",
            took.as_secs_f64(),
            errors.len()
        );
        assert!(
            errors.is_empty(),
            "{} of {} statements failed with {LIMIT} connections per server; first ones: {:#?}",
            errors.len(),
            CLIENTS * (SELECTS + WRITES),
            &errors[..errors.len().min(10)]
        );
        assert_eq!(total, (CLIENTS * WRITES) as u64, "every write was applied once");
        for (i, a) in above.iter().enumerate() {
            assert!(
                *a <= LIMIT as i64,
                "server {} saw {a} connections above its baseline of {} (peak {}, monitor's excluded); \
                 max_connections_per_server is {LIMIT}",
                i + 1,
                baseline[i],
                peak[i]
            );
        }
    });
}

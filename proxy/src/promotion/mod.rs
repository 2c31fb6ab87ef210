//! Switchover and failover, rwsplit's side: holding writes, waiting for transactions in
//! flight, running the promotion steps in order ([`rwsplit_replication::promotion`]) and
//! releasing the writes to the new writer once the monitor sees it.
//!
//! - [`switchover`]: planned, on request (`rwsplit switchover`, POST /switchover).
//! - [`failover`]: the background task that promotes a replica when the writer is lost
//!   (`monitor.auto_failover`), and rejoins a former writer as a replica when it comes back.
//! - [`gate`]: how statements for the writer wait while writes are held.
//!
//! One promotion runs at a time per process; across rwsplit nodes, failover takes a lock on
//! the candidate server. Every step is logged on one line, counted, and kept (the last
//! [`KEPT_STEPS`]) for `/status`.

pub mod failover;
pub mod gate;
pub mod switchover;

use rwsplit_replication::election::Refusal;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub use gate::{WriteGate, WritePass};

/// Steps kept for `/status`.
pub const KEPT_STEPS: usize = 64;

/// Why a switchover or failover did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    /// Unsafe or impossible; nothing was changed.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// Another switchover or failover runs in this process.
    #[error("refused: another switchover or failover is running")]
    Busy,
    /// A waiting step ran out of time; `rolled_back` says whether every change was undone.
    #[error("{what} within {} ms{}", .after.as_millis(), if *.rolled_back { "; nothing was changed" } else { "" })]
    Timeout { what: String, after: Duration, rolled_back: bool },
    /// A statement on a server failed.
    #[error("{step} on {server} failed: {cause}{}", if *.rolled_back { "; the old writer was restored" } else { "" })]
    Step { step: &'static str, server: String, cause: rwsplit_replication::Error, rolled_back: bool },
}

impl PromotionError {
    /// The outcome label of the `promotions` metric.
    pub fn outcome(&self) -> &'static str {
        match self {
            PromotionError::Refused(_) | PromotionError::Busy => "refused",
            PromotionError::Timeout { .. } | PromotionError::Step { .. } => "failed",
        }
    }
}

/// What one process knows of its promotions.
#[derive(Debug, Default)]
pub struct Promotions {
    busy: AtomicBool,
    steps: Mutex<VecDeque<String>>,
    /// Servers this process demoted in a failover while they were unreachable: rejoined as
    /// replicas of the new writer when they come back (if their GTIDs allow it).
    demoted: Mutex<Vec<usize>>,
}

/// Held while a promotion runs.
#[derive(Debug)]
pub struct Running<'a>(&'a Promotions);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::SeqCst);
    }
}

impl Promotions {
    /// Claims the right to run a promotion; `Busy` while another runs.
    pub fn start(&self) -> Result<Running<'_>, PromotionError> {
        match self.busy.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => Ok(Running(self)),
            Err(_) => Err(PromotionError::Busy),
        }
    }

    pub fn is_running(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// Records one step (already logged by the caller).
    pub fn record(&self, line: String) {
        let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        if steps.len() >= KEPT_STEPS {
            steps.pop_front();
        }
        steps.push_back(line);
    }

    /// The last steps, oldest first.
    pub fn recent_steps(&self) -> Vec<String> {
        self.steps.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    fn note_demoted(&self, server: usize) {
        let mut d = self.demoted.lock().unwrap_or_else(|p| p.into_inner());
        if !d.contains(&server) {
            d.push(server);
        }
    }

    fn demoted(&self) -> Vec<usize> {
        self.demoted.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn forget_demoted(&self, server: usize) {
        self.demoted.lock().unwrap_or_else(|p| p.into_inner()).retain(|&s| s != server);
    }
}

/// Logs, counts and keeps one step line.
fn step(shared: &crate::runtime::Shared, kind: &str, line: String) {
    tracing::info!(promotion = kind, "{line}");
    shared.metrics.promotion_steps.inc();
    let stamp = unix_timestamp();
    shared.promotions.record(format!("{stamp} {kind}: {line}"));
}

/// Counts a finished promotion.
fn count(shared: &crate::runtime::Shared, kind: &str, outcome: &str) {
    shared
        .metrics
        .promotions
        .get_or_create(&vec![("kind".into(), kind.into()), ("outcome".into(), outcome.into())])
        .inc();
}

/// Seconds since the Unix epoch, with milliseconds.
fn unix_timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

/// Runs `monitor.on_promotion` as `<command> SERVER ROLE` with `RWSPLIT_PROMOTION=kind`,
/// bounded by `monitor.notify_timeout_ms`, in the background.
fn run_hook(shared: &crate::runtime::Shared, kind: &'static str, server: &str, role: &'static str) {
    let config = shared.config();
    let command = config.monitor.on_promotion.trim().to_string();
    if command.is_empty() {
        return;
    }
    let limit = Duration::from_millis(config.monitor.notify_timeout_ms);
    let server = server.to_string();
    tokio::spawn(async move {
        let child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{command} \"$0\" \"$1\""))
            .arg(&server)
            .arg(role)
            .env("RWSPLIT_PROMOTION", kind)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match child {
            Ok(mut c) => match tokio::time::timeout(limit, c.wait()).await {
                Ok(Ok(s)) if s.success() => tracing::info!(server, role, "on_promotion ran"),
                Ok(Ok(s)) => tracing::warn!(server, role, "on_promotion exited with {s}"),
                Ok(Err(e)) => tracing::warn!(server, role, "on_promotion: {e}"),
                Err(_) => {
                    let _ = c.start_kill();
                    tracing::warn!(server, role, "on_promotion killed after {} ms", limit.as_millis());
                }
            },
            Err(e) => tracing::error!(server, "on_promotion could not start: {e}"),
        }
    });
}

/// Waits until the monitor publishes `writer` as the writer (asking it to check at once), at
/// most `limit`. Returns whether it did.
async fn wait_for_writer(shared: &crate::runtime::Shared, writer: usize, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut changes = shared.topology.subscribe();
    shared.topology.request_check();
    loop {
        let t = shared.topology.load();
        if t.writer == Some(writer)
            && t.servers.get(writer).is_some_and(|s| s.health == rwsplit_replication::Health::Up)
        {
            return true;
        }
        drop(t);
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return false;
        }
    }
}

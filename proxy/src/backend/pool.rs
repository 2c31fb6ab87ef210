//! Per-server pools of logged-in connections. A connection is leased for one statement (or
//! for as long as a session is pinned to it) and comes back only in a known state; anything
//! else is dropped. Idle connections are keyed by the client behaviour capabilities they
//! were opened with, so response formats always match the client being served.
//!
//! When a server's connection limit is reached, a lease waits (FIFO, up to
//! `backend.queue_timeout_ms`) for a connection to come back, and sessions holding an idle
//! one give it back at once ([`Pool::wanted`], [`Pool::reclaim_signal`]). One connection per
//! server is kept out of reach of leases, for KILL ([`Pool::kill`]).
//!
//! The idle lists sit behind a `std::sync::Mutex` held only for a push or a pop, never across
//! an await.
//!
//! A reload ([`Pool::reconfigure`]) appends pools for new servers and marks removed ones: a
//! removed server's idle connections close at once, its leased ones when they come back, and
//! no new lease is made there. Settings (`[backend]`) apply to connections opened afterwards.

use super::auth::AuthError;
use super::conn::{BackendConn, OpenGuard, Slots};
use crate::error::{BackendCause, ProxyError};
use crate::protocol::ResponseFormat;
use arc_swap::ArcSwap;
use rwsplit_config::{BackendConfig, ServerConfig};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How many of the most recently used idle connections are searched for one already in the
/// session's state before any connection of the right format is taken.
const MATCH_WINDOW: usize = 8;

/// An idle connection older than this is probed before use.
const PROBE_AFTER: Duration = Duration::from_secs(1);

/// After a connection to a server failed at the socket (refused, reset, timed out), no new
/// one is tried for this long: statements go elsewhere at once instead of each waiting for
/// the connect timeout, until the monitor has had a look.
const UNREACHABLE_FOR: Duration = Duration::from_secs(1);

/// Pool settings from `[backend]`.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub user: String,
    pub password: rwsplit_config::Secret,
    pub connect_timeout: Duration,
    pub max_idle: usize,
    pub max_open: u32,
    pub idle_timeout: Duration,
    /// Longest wait for a connection while the server's limit is reached.
    pub queue_timeout: Duration,
}

impl From<&BackendConfig> for PoolSettings {
    fn from(c: &BackendConfig) -> Self {
        PoolSettings {
            user: c.user.clone(),
            password: c.password.clone(),
            connect_timeout: Duration::from_millis(c.connect_timeout_ms),
            max_idle: c.max_idle_per_server as usize,
            max_open: c.max_connections_per_server,
            idle_timeout: Duration::from_millis(c.idle_timeout_ms),
            queue_timeout: Duration::from_millis(c.queue_timeout_ms),
        }
    }
}

#[derive(Debug)]
struct ServerPool {
    name: String,
    address: String,
    /// TLS towards this server, when on (a reload may change it; read at connect only).
    tls: Mutex<Option<super::tls::ServerTls>>,
    /// Taken out of the config by a reload: no new leases, returned connections close.
    removed: AtomicBool,
    /// Idle connections, least recently used first.
    idle: Mutex<VecDeque<Box<BackendConn>>>,
    /// Open connections (idle and leased), and the signal that one was returned or closed.
    slots: Arc<Slots>,
    /// Leases waiting for a connection.
    waiters: AtomicU32,
    /// Tells sessions holding an idle connection to this server that someone waits for one.
    reclaim: Arc<Notify>,
    /// Until when (ms since the pool's start) the server counts as unreachable; 0: it does not
    /// (a mark that has passed is reset to 0 by the next look at it).
    unreachable_until: AtomicU64,
}

impl ServerPool {
    fn new(server: &ServerConfig, tls: Option<super::tls::ServerTls>) -> Self {
        ServerPool {
            name: server.name.clone(),
            address: server.address.clone(),
            tls: Mutex::new(tls),
            removed: AtomicBool::new(false),
            idle: Mutex::new(VecDeque::new()),
            slots: Arc::new(Slots::default()),
            waiters: AtomicU32::new(0),
            reclaim: Arc::new(Notify::new()),
            unreachable_until: AtomicU64::new(0),
        }
    }

    fn clear_idle(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// All servers' pools, one per server slot ([`rwsplit_replication::slots`]).
#[derive(Debug)]
pub struct Pool {
    /// Swapped whole when a reload adds servers; a pool once in the list stays at its index.
    servers: ArcSwap<Vec<Arc<ServerPool>>>,
    settings: ArcSwap<PoolSettings>,
    started: Instant,
    /// The latest `unreachable_until` of any server (ms since `started`), 0 when every mark
    /// has expired: every read asks [`Pool::is_unreachable`] of its candidates, and while no
    /// server is marked that costs one atomic load instead of a look at the server list.
    marked_until: AtomicU64,
}

impl Pool {
    /// `tls`: TLS towards each server, in config order (see [`super::tls::for_servers`]); a
    /// server without an entry is reached over plain TCP.
    pub fn new(servers: &[ServerConfig], settings: PoolSettings, tls: Vec<Option<super::tls::ServerTls>>) -> Self {
        let pools =
            servers.iter().enumerate().map(|(i, s)| Arc::new(ServerPool::new(s, tls.get(i).cloned().flatten())));
        Pool {
            servers: ArcSwap::from_pointee(pools.collect()),
            settings: ArcSwap::from_pointee(settings),
            started: Instant::now(),
            marked_until: AtomicU64::new(0),
        }
    }

    /// Applies a reload: `slots` (the same order, possibly longer) with `tls` per slot and the
    /// new settings. New servers get a pool; removed ones drop their idle connections and take
    /// no new leases (leased connections close when they come back); the servers in
    /// `tls_changed` drop their idle connections (they were opened the old way).
    pub fn reconfigure(
        &self,
        slots: &[rwsplit_replication::ServerSlot],
        settings: PoolSettings,
        tls: Vec<Option<super::tls::ServerTls>>,
        tls_changed: &[usize],
    ) {
        let current = self.servers.load_full();
        let mut next = current.as_ref().clone();
        for (i, slot) in slots.iter().enumerate() {
            let t = tls.get(i).cloned().flatten();
            match next.get(i) {
                Some(sp) => {
                    sp.removed.store(slot.removed, Ordering::Relaxed);
                    *sp.tls.lock().unwrap_or_else(|p| p.into_inner()) = t;
                    if slot.removed || tls_changed.contains(&i) {
                        sp.clear_idle();
                        sp.slots.freed.notify_waiters();
                    }
                }
                None => next.push(Arc::new(ServerPool::new(&slot.config, t))),
            }
        }
        self.settings.store(Arc::new(settings));
        if next.len() != current.len() {
            self.servers.store(Arc::new(next));
        }
    }

    /// Whether `server` was taken out of the config by a reload.
    pub fn is_removed(&self, server: usize) -> bool {
        self.servers.load().get(server).is_some_and(|s| s.removed.load(Ordering::Relaxed))
    }

    /// Whether a connection to `server` failed at the socket within the last second: routing
    /// avoids it, and no new connection is tried until then.
    /// Routing asks this for every candidate of every read, so a server that is not marked
    /// costs no clock read; a mark is cleared once it has passed, so a later failure starts a
    /// new episode (and logs again).
    pub fn is_unreachable(&self, server: usize) -> bool {
        let latest = self.marked_until.load(Ordering::Relaxed);
        if latest == 0 {
            return false;
        }
        let servers = self.servers.load();
        let Some(s) = servers.get(server) else { return false };
        let until = s.unreachable_until.load(Ordering::Relaxed);
        if until == 0 {
            return false;
        }
        let now = self.started.elapsed().as_millis() as u64;
        if until > now {
            return true;
        }
        if latest <= now {
            // Every mark has expired (a newer one would have raised `latest`).
            let _ = self.marked_until.compare_exchange(latest, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
        // Lost to a newer mark: that one stands.
        let _ = s.unreachable_until.compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed);
        false
    }

    /// Records that a connection to `server` failed at the socket (connect refused or timed
    /// out, an open connection reset or closed by the server).
    pub fn mark_unreachable(&self, server: usize) {
        if let Some(s) = self.servers.load().get(server) {
            let until = (self.started.elapsed() + UNREACHABLE_FOR).as_millis() as u64;
            self.marked_until.fetch_max(until, Ordering::Relaxed);
            if s.unreachable_until.swap(until, Ordering::Relaxed) == 0 {
                tracing::warn!(server = %s.name, "server unreachable: no new connections to it for a second");
            }
        }
    }

    /// Server name for logs and errors.
    pub fn name(&self, server: usize) -> String {
        self.servers.load().get(server).map_or_else(|| "?".to_string(), |s| s.name.clone())
    }

    /// Open connections to a server (idle and leased).
    pub fn open_count(&self, server: usize) -> u32 {
        self.servers.load().get(server).map(|s| s.slots.open.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// A connection to `server` for clients with response format `key`, preferring an idle one
    /// whose applied state is `state` (so nothing needs resetting). At the connection limit it
    /// waits, first come first served, up to `backend.queue_timeout_ms`.
    /// `probe`: check that an idle connection is still open even if it was used a moment ago
    /// (one non-blocking read). Writes ask for it: a write sent on a connection the server
    /// had already closed fails without a way to tell whether it ran, where a connection found
    /// closed beforehand is simply replaced.
    pub async fn lease(
        &self,
        server: usize,
        key: ResponseFormat,
        state: u64,
        probe: bool,
    ) -> Result<Box<BackendConn>, ProxyError> {
        self.get(server, key, Some((state, probe))).await
    }

    /// A new connection to `server`, never an idle one (waiting at the limit like `lease`).
    pub async fn open(&self, server: usize, key: ResponseFormat) -> Result<Box<BackendConn>, ProxyError> {
        self.get(server, key, None).await
    }

    /// Someone waits for a connection to `server`: a session should give back the one it holds
    /// between statements rather than keep it.
    pub fn wanted(&self, server: usize) -> bool {
        self.servers.load().get(server).is_some_and(|s| s.waiters.load(Ordering::Relaxed) > 0)
    }

    /// Notified when a lease starts waiting for a connection to `server`.
    pub fn reclaim_signal(&self, server: usize) -> Option<Arc<Notify>> {
        self.servers.load().get(server).map(|s| s.reclaim.clone())
    }

    async fn get(
        &self,
        server: usize,
        key: ResponseFormat,
        idle_state: Option<(u64, bool)>,
    ) -> Result<Box<BackendConn>, ProxyError> {
        let sp = self.servers.load().get(server).cloned();
        let sp = sp.ok_or_else(|| ProxyError::Internal(format!("no server #{server}")))?;
        let sp = sp.as_ref();
        let settings = self.settings.load_full();
        if sp.removed.load(Ordering::Relaxed) {
            return Err(ProxyError::Backend {
                server: sp.name.clone(),
                cause: BackendCause::Closed,
                detail: "removed from the config by a reload".into(),
                retryable: true,
            });
        }
        // One slot stays free for KILL.
        let limit = settings.max_open.saturating_sub(1).max(1);
        let deadline = tokio::time::Instant::now() + settings.queue_timeout;
        if self.is_unreachable(server) {
            return Err(ProxyError::Backend {
                server: sp.name.clone(),
                cause: BackendCause::Closed,
                detail: "unreachable (a connection to it just failed)".into(),
                retryable: true,
            });
        }
        // Bounded by the deadline: every round either returns or waits for a signal.
        loop {
            if let Some((state, probe)) = idle_state {
                if let Some(mut conn) = take_idle(sp, settings.idle_timeout, key, state, probe) {
                    match conn.move_to_current_thread() {
                        Ok(()) => return Ok(conn),
                        // Dropped (its slot is free again); try the next one.
                        Err(e) => tracing::warn!(server = %sp.name, error = %e, "pooled connection lost"),
                    }
                    continue;
                }
            }
            if let Some(guard) = sp.slots.claim(limit) {
                // Boxed: connecting (TCP, TLS, authentication) is the rare way out of a
                // lease and its future is large; inline it would be room in, and a copy of,
                // every statement's future.
                return Box::pin(self.connect(server, sp, &settings, key, guard)).await;
            }
            // At the limit: an idle connection of another format (or, for `open`, any idle
            // one) gives its slot up.
            if self.close_one_idle(sp) {
                continue;
            }
            let returned = sp.slots.freed.notified();
            sp.waiters.fetch_add(1, Ordering::Relaxed);
            sp.reclaim.notify_waiters();
            let waited = tokio::time::timeout_at(deadline, returned).await;
            sp.waiters.fetch_sub(1, Ordering::Relaxed);
            if waited.is_err() {
                return Err(ProxyError::Backend {
                    server: sp.name.clone(),
                    cause: BackendCause::Refused,
                    detail: format!(
                        "connection limit ({}) reached; no connection came free within {} ms (backend.queue_timeout_ms)",
                        settings.max_open,
                        settings.queue_timeout.as_millis()
                    ),
                    retryable: true,
                });
            }
        }
    }

    /// Closes the least recently used idle connection, if any, freeing its slot.
    fn close_one_idle(&self, sp: &ServerPool) -> bool {
        let conn = sp.idle.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        conn.is_some()
    }

    async fn connect(
        &self,
        server: usize,
        sp: &ServerPool,
        settings: &PoolSettings,
        key: ResponseFormat,
        guard: OpenGuard,
    ) -> Result<Box<BackendConn>, ProxyError> {
        let tls = sp.tls.lock().unwrap_or_else(|p| p.into_inner()).clone();
        BackendConn::connect(
            server,
            &sp.address,
            (&settings.user, settings.password.expose()),
            key,
            tls.as_ref(),
            settings.connect_timeout,
            guard,
        )
        .await
        .map_err(|e| {
            let cause = match &e {
                AuthError::Conn(c) => BackendCause::of(c),
                AuthError::Refused(_) | AuthError::Plugin(_) | AuthError::Tls(_) => BackendCause::Refused,
                AuthError::Protocol(_) => BackendCause::Protocol,
            };
            if matches!(cause, BackendCause::Closed | BackendCause::Timeout) {
                self.mark_unreachable(server);
            }
            ProxyError::Backend { server: sp.name.clone(), cause, detail: format!("connect: {e}"), retryable: true }
        })
    }
}

/// An idle connection of `sp` for `key`, preferring one in `state` (see [`Pool::lease`]);
/// connections idle longer than `idle_timeout` are dropped on the way.
fn take_idle(
    sp: &ServerPool,
    idle_timeout: Duration,
    key: ResponseFormat,
    state: u64,
    probe: bool,
) -> Option<Box<BackendConn>> {
    {
        let now = Instant::now();
        let here = crate::workers::current();
        let mut idle = sp.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Oldest first: expired connections leave from the front, without a scan.
        while idle.front().is_some_and(|c| now.duration_since(c.last_used) >= idle_timeout) {
            idle.pop_front();
        }
        // Bounded: each round removes one connection.
        while !idle.is_empty() {
            // The most recently used connection in the same state, looking at the newest few
            // only (a hot connection is near the back); else the newest with the same format.
            // Among those, one on the caller's session thread first (no move needed).
            let recent = idle.len().saturating_sub(MATCH_WINDOW);
            let matches = |i: usize, same_state: bool, same_thread: bool| {
                idle.get(i).is_some_and(|c| {
                    c.key == key && (!same_state || c.state == Some(state)) && (!same_thread || c.thread == here)
                })
            };
            let pos = (recent..idle.len())
                .rev()
                .find(|&i| matches(i, true, true))
                .or_else(|| (recent..idle.len()).rev().find(|&i| matches(i, true, false)))
                .or_else(|| (0..idle.len()).rev().find(|&i| matches(i, false, true)))
                .or_else(|| (0..idle.len()).rev().find(|&i| matches(i, false, false)))?;
            let mut conn = idle.remove(pos)?;
            // A connection idle for a while is probed (one non-blocking read) before use: the
            // server may have closed it (wait_timeout, restart). One used a moment ago is not,
            // unless the caller asks (a write).
            if (!probe && now.duration_since(conn.last_used) < PROBE_AFTER) || conn.stream.is_idle_and_open() {
                return Some(conn);
            }
        }
        None
    }
}

impl Pool {
    /// Returns a connection. Only call this when it is in a known, clean state (no open
    /// transaction, no locks, nothing unread); otherwise just drop it.
    pub fn release(&self, mut conn: Box<BackendConn>) {
        let servers = self.servers.load();
        let Some(sp) = servers.get(conn.server) else { return };
        if conn.discard || sp.removed.load(Ordering::Relaxed) {
            return;
        }
        conn.last_used = Instant::now();
        let max_idle = self.settings.load().max_idle;
        let mut idle = sp.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < max_idle {
            idle.push_back(conn);
            drop(idle);
            // A waiting lease can take it.
            sp.slots.freed.notify_one();
        }
    }

    /// Stops the statement still running on a connection rwsplit abandoned mid-response (the
    /// client went away, or the response timed out): dropping the socket alone lets a long
    /// query run on until it tries to send. Runs [`Pool::kill`] in the background.
    pub fn kill_query(self: &std::sync::Arc<Self>, server: usize, connection_id: u32) {
        let pool = self.clone();
        tokio::spawn(async move { pool.kill(server, connection_id, true).await });
    }

    /// `KILL QUERY id` (or `KILL CONNECTION id`) of a backend connection, run from a fresh
    /// connection to that server, bounded by the connect timeout twice over. Returns whether
    /// the server accepted it.
    pub async fn kill(&self, server: usize, connection_id: u32, query_only: bool) -> bool {
        let settings = self.settings.load_full();
        let timeout = settings.connect_timeout * 2;
        let work = async {
            let plain = ResponseFormat::plain();
            let sp = self.servers.load().get(server).cloned()?;
            // The slot leases leave free; if it is taken, wait like anyone else.
            let mut conn = match sp.slots.claim(settings.max_open) {
                Some(guard) => self.connect(server, &sp, &settings, plain, guard).await.ok()?,
                None => self.open(server, plain).await.ok()?,
            };
            let sql = if query_only { format!("KILL QUERY {connection_id}") } else { format!("KILL {connection_id}") };
            super::internal::internal_query(&mut conn, &sql, timeout).await.ok().map(|(o, _)| o.error.is_none())
        };
        match tokio::time::timeout(timeout, work).await.ok().flatten() {
            Some(ok) => ok,
            None => {
                tracing::warn!(server = %self.name(server), connection_id, "could not KILL on the server");
                false
            }
        }
    }

    /// Closes every idle connection (shutdown, or a server left the topology).
    pub fn clear(&self, server: usize) {
        if let Some(sp) = self.servers.load().get(server) {
            sp.clear_idle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Pool {
        let servers: Vec<ServerConfig> = (0..n)
            .map(|i| ServerConfig {
                name: format!("s{i}"),
                address: format!("127.0.0.1:{}", 3307 + i),
                ..Default::default()
            })
            .collect();
        Pool::new(&servers, PoolSettings::from(&rwsplit_config::BackendConfig::default()), Vec::new())
    }

    #[test]
    fn a_mark_holds_for_its_server_only_and_expires() {
        let p = pool(3);
        assert!((0..3).all(|i| !p.is_unreachable(i)), "nothing marked");
        p.mark_unreachable(1);
        assert!(p.is_unreachable(1));
        assert!(!p.is_unreachable(0) && !p.is_unreachable(2));
        assert!(!p.is_unreachable(7), "no such server");
        p.mark_unreachable(2);
        assert!(p.is_unreachable(2));
        std::thread::sleep(UNREACHABLE_FOR + Duration::from_millis(100));
        assert!((0..3).all(|i| !p.is_unreachable(i)), "marks expired");
        assert_eq!(p.marked_until.load(Ordering::Relaxed), 0, "the fast path is back");
        p.mark_unreachable(0);
        assert!(p.is_unreachable(0), "a new mark after the expiry counts");
    }
}

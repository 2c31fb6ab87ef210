//! Per-server pools of logged-in connections. A connection is leased for one statement (or
//! for as long as a session is pinned to it) and comes back only in a known state; anything
//! else is dropped. Idle connections are keyed by the client behaviour capabilities they
//! were opened with, so response formats always match the client being served.
//!
//! The idle lists sit behind a `std::sync::Mutex` held only for a push or a pop, never across
//! an await.

use super::auth::AuthError;
use super::conn::{BackendConn, OpenGuard};
use crate::error::{BackendCause, ProxyError};
use crate::protocol::{CapabilityFlags, ResponseFormat};
use rwsplit_config::{BackendConfig, ServerConfig};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many of the most recently used idle connections are searched for one already in the
/// session's state before any connection of the right format is taken.
const MATCH_WINDOW: usize = 8;

/// An idle connection older than this is probed before use.
const PROBE_AFTER: Duration = Duration::from_secs(1);

/// Pool settings from `[backend]`.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub user: String,
    pub password: rwsplit_config::Secret,
    pub connect_timeout: Duration,
    pub max_idle: usize,
    pub max_open: u32,
    pub idle_timeout: Duration,
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
        }
    }
}

#[derive(Debug)]
struct ServerPool {
    name: String,
    address: String,
    /// Idle connections, least recently used first.
    idle: Mutex<VecDeque<BackendConn>>,
    open: Arc<AtomicU32>,
}

/// All servers' pools, in config order.
#[derive(Debug)]
pub struct Pool {
    servers: Vec<ServerPool>,
    settings: PoolSettings,
}

impl Pool {
    pub fn new(servers: &[ServerConfig], settings: PoolSettings) -> Self {
        Pool {
            servers: servers
                .iter()
                .map(|s| ServerPool {
                    name: s.name.clone(),
                    address: s.address.clone(),
                    idle: Mutex::new(VecDeque::new()),
                    open: Arc::new(AtomicU32::new(0)),
                })
                .collect(),
            settings,
        }
    }

    /// Server name for logs and errors.
    pub fn name(&self, server: usize) -> &str {
        self.servers.get(server).map(|s| s.name.as_str()).unwrap_or("?")
    }

    /// Open connections to a server (idle and leased).
    pub fn open_count(&self, server: usize) -> u32 {
        self.servers.get(server).map(|s| s.open.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// A connection to `server` for clients with behaviour capabilities `key`, preferring an
    /// idle one whose applied state is `state` (so nothing needs resetting).
    pub async fn lease(&self, server: usize, key: ResponseFormat, state: u64) -> Result<BackendConn, ProxyError> {
        let sp = self.servers.get(server).ok_or_else(|| ProxyError::Internal(format!("no server #{server}")))?;
        if let Some(conn) = self.take_idle(sp, key, state) {
            return Ok(conn);
        }
        self.open(server, key).await
    }

    /// A new connection to `server`, never an idle one.
    pub async fn open(&self, server: usize, key: ResponseFormat) -> Result<BackendConn, ProxyError> {
        let sp = self.servers.get(server).ok_or_else(|| ProxyError::Internal(format!("no server #{server}")))?;
        let n = sp.open.fetch_add(1, Ordering::Relaxed);
        let guard = OpenGuard(sp.open.clone());
        if n >= self.settings.max_open {
            return Err(ProxyError::Backend {
                server: sp.name.clone(),
                cause: BackendCause::Refused,
                detail: format!("connection limit ({}) reached", self.settings.max_open),
                retryable: true,
            });
        }
        BackendConn::connect(
            server,
            &sp.address,
            &self.settings.user,
            self.settings.password.expose(),
            key,
            self.settings.connect_timeout,
            guard,
        )
        .await
        .map_err(|e| ProxyError::Backend {
            server: sp.name.clone(),
            cause: match &e {
                AuthError::Conn(c) => BackendCause::of(c),
                AuthError::Refused(_) | AuthError::Plugin(_) => BackendCause::Refused,
                AuthError::Protocol(_) => BackendCause::Protocol,
            },
            detail: format!("connect: {e}"),
            retryable: true,
        })
    }

    fn take_idle(&self, sp: &ServerPool, key: ResponseFormat, state: u64) -> Option<BackendConn> {
        let now = Instant::now();
        let mut idle = sp.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Oldest first: expired connections leave from the front, without a scan.
        while idle.front().is_some_and(|c| now.duration_since(c.last_used) >= self.settings.idle_timeout) {
            idle.pop_front();
        }
        // Bounded: each round removes one connection.
        while !idle.is_empty() {
            // The most recently used connection in the same state, looking at the newest few
            // only (a hot connection is near the back); else the newest with the same format.
            let recent = idle.len().saturating_sub(MATCH_WINDOW);
            let pos = (recent..idle.len())
                .rev()
                .find(|&i| idle.get(i).is_some_and(|c| c.key == key && c.state == Some(state)))
                .or_else(|| (0..idle.len()).rev().find(|&i| idle.get(i).is_some_and(|c| c.key == key)))?;
            let mut conn = idle.remove(pos)?;
            // A connection idle for a while is probed (one non-blocking read) before use: the
            // server may have closed it (wait_timeout, restart). One used a moment ago is not.
            if now.duration_since(conn.last_used) < PROBE_AFTER || conn.stream.is_idle_and_open() {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection. Only call this when it is in a known, clean state (no open
    /// transaction, no locks, nothing unread); otherwise just drop it.
    pub fn release(&self, mut conn: BackendConn) {
        let Some(sp) = self.servers.get(conn.server) else { return };
        if conn.discard {
            return;
        }
        conn.last_used = Instant::now();
        let mut idle = sp.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.settings.max_idle {
            idle.push_back(conn);
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
        let timeout = self.settings.connect_timeout * 2;
        let work = async {
            let plain = ResponseFormat { caps: CapabilityFlags::empty(), extended_metadata: false };
            let mut conn = self.open(server, plain).await.ok()?;
            let sql = if query_only { format!("KILL QUERY {connection_id}") } else { format!("KILL {connection_id}") };
            let mut p = vec![mysql_common::constants::Command::COM_QUERY as u8];
            p.extend_from_slice(sql.as_bytes());
            super::internal::internal(&mut conn, &p, crate::protocol::response::Expect::Query, timeout)
                .await
                .ok()
                .map(|(o, _)| o.error.is_none())
        };
        match tokio::time::timeout(timeout, work).await.ok().flatten() {
            Some(ok) => ok,
            None => {
                tracing::warn!(server = self.name(server), connection_id, "could not KILL on the server");
                false
            }
        }
    }

    /// Closes every idle connection (shutdown, or a server left the topology).
    pub fn clear(&self, server: usize) {
        if let Some(sp) = self.servers.get(server) {
            sp.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }
}

//! One connection to a server, with what rwsplit knows about its state: which session state
//! was last applied to it (a fingerprint), and which statements are prepared on it.

use super::auth::{login, AuthError, ServerHello};
use crate::protocol::connection::PacketStream;
use crate::protocol::response::{Expect, ResponseTracker};
use crate::protocol::{CapabilityFlags, ResponseFormat};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Most statements kept prepared on one connection. The server's `max_prepared_stmt_count`
/// is global (16382 by default), so a pool of connections must not hoard them.
pub const MAX_STMTS_PER_CONN: usize = 256;

/// A statement prepared on this connection.
#[derive(Debug, Clone)]
pub struct BackendStmt {
    /// The server's statement id on this connection.
    pub id: u32,
    /// Parameter types last sent with an EXECUTE (the server remembers them per statement).
    pub types: Option<Vec<u8>>,
    /// For eviction: higher is more recent.
    pub used: u64,
    /// With MariaDB's cached metadata: fingerprint of the column definitions the server last
    /// sent for this statement on this connection (what it compares with before skipping
    /// them), `None` before it sent any (it then sends them).
    pub metadata: Option<u64>,
}

/// The open connections to one server (idle and leased), and the signal that one came free.
#[derive(Debug, Default)]
pub struct Slots {
    pub open: AtomicU32,
    /// Notified when a connection goes back to the idle list or is closed.
    pub freed: Notify,
}

impl Slots {
    /// Takes a slot while fewer than `limit` are open; the guard gives it back when dropped.
    pub fn claim(self: &Arc<Self>, limit: u32) -> Option<OpenGuard> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| OpenGuard(self.clone()))
    }
}

/// One open connection's slot; given back (and a waiting lease told) when the connection is
/// dropped.
#[derive(Debug)]
pub struct OpenGuard(Arc<Slots>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

impl Drop for BackendConn {
    fn drop(&mut self) {
        self.stream.quit_now();
    }
}

/// A logged-in server connection.
#[derive(Debug)]
pub struct BackendConn {
    pub stream: PacketStream,
    /// Index of the server in the config (and topology).
    pub server: usize,
    pub hello: ServerHello,
    /// The client behaviour capabilities this connection was opened for (its pool key).
    pub key: ResponseFormat,
    /// Fingerprint of the session state last applied, `None` when unknown (must be reset
    /// before another session uses it).
    pub state: Option<u64>,
    /// The schema in use on the server side. COM_RESET_CONNECTION keeps it and there is no
    /// command to leave a schema, so a session without one needs a connection that never had
    /// one.
    pub schema: Option<String>,
    /// GTID session tracking is switched on (read-your-writes learns GTIDs from OK packets).
    pub gtid_tracking: bool,
    /// The server accepts multi-statements on this connection: the capability it was opened
    /// with, until a COM_SET_OPTION changes it (COM_RESET_CONNECTION keeps it).
    pub multi_statements: bool,
    /// Must not be reused (a KILL for it may still be on its way): dropped instead of pooled.
    pub discard: bool,
    /// Prepared statements by SQL text. Hashed with foldhash (seeded per map): looked up on
    /// every execution, where SipHash over the text cost several times more.
    pub stmts: HashMap<Arc<str>, BackendStmt, foldhash::fast::RandomState>,
    stmt_clock: u64,
    pub last_used: Instant,
    /// The session thread whose reactor the socket is registered with
    /// ([`crate::workers::current`] when it was opened or last moved).
    pub thread: Option<usize>,
    _open: OpenGuard,
}

impl BackendConn {
    /// Connects and logs in as (user, password), over TLS with `tls`. `open` is the
    /// per-server counter, already incremented. Boxed: a connection moves between the pool,
    /// the session and its statement several times per statement, and a pointer moves where
    /// the struct (some 350 bytes) was copied.
    pub async fn connect(
        server: usize,
        address: &str,
        (user, password): (&str, &str),
        key: ResponseFormat,
        tls: Option<&super::tls::ServerTls>,
        timeout: Duration,
        open: OpenGuard,
    ) -> Result<Box<BackendConn>, AuthError> {
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Err(_) => return Err(AuthError::Conn(crate::protocol::connection::ConnError::Timeout(timeout))),
            Ok(r) => r.map_err(|e| AuthError::Conn(e.into()))?,
        };
        let mut stream = PacketStream::new(tcp);
        let tls = tls.map(|t| (&t.connector.0, t.name.clone()));
        let hello = login(&mut stream, user, password, key, tls, timeout).await?;
        Ok(Box::new(BackendConn {
            stream,
            server,
            hello,
            key,
            state: None,
            schema: None,
            gtid_tracking: false,
            multi_statements: key.contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS),
            discard: false,
            stmts: HashMap::default(),
            stmt_clock: 0,
            last_used: Instant::now(),
            thread: crate::workers::current(),
            _open: open,
        }))
    }

    /// Whether the connection speaks CLIENT_DEPRECATE_EOF.
    pub fn deprecate_eof(&self) -> bool {
        self.hello.capabilities.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// A tracker for the response to a command sent on this connection.
    pub fn response_tracker(&self, expect: Expect) -> ResponseTracker {
        ResponseTracker::new(expect, self.deprecate_eof()).with_cached_metadata(self.key.cache_metadata)
    }

    /// Looks a prepared statement up and marks it used.
    pub fn stmt(&mut self, sql: &str) -> Option<&mut BackendStmt> {
        self.stmt_clock += 1;
        let now = self.stmt_clock;
        let s = self.stmts.get_mut(sql)?;
        s.used = now;
        Some(s)
    }

    /// Records a statement prepared on this connection. Returns the id of a statement evicted
    /// to stay under the limit: the caller closes it on the server.
    pub fn remember_stmt(&mut self, sql: Arc<str>, id: u32) -> Option<u32> {
        self.stmt_clock += 1;
        let mut evicted = None;
        if self.stmts.len() >= MAX_STMTS_PER_CONN {
            if let Some(oldest) = self.stmts.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| k.clone()) {
                evicted = self.stmts.remove(&oldest).map(|s| s.id);
            }
        }
        self.stmts.insert(sql, BackendStmt { id, types: None, used: self.stmt_clock, metadata: None });
        evicted
    }

    /// Moves the socket onto the calling session thread, if it is registered elsewhere.
    pub fn move_to_current_thread(&mut self) -> std::io::Result<()> {
        let here = crate::workers::current();
        if here.is_some() && here != self.thread {
            self.stream.rehome()?;
            self.thread = here;
        }
        Ok(())
    }

    /// The server forgot everything session-bound (after COM_RESET_CONNECTION).
    pub fn forget_session(&mut self) {
        self.stmts.clear();
        self.state = None;
        self.gtid_tracking = false;
    }
}

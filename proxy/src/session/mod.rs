//! One client session: the handshake, then a loop reading commands, routing each one, running
//! it on a backend connection brought to the session's state, and relaying the response.
//!
//! Each job has its own module:
//! - [`login`]: the handshake, authentication, the login schema, COM_CHANGE_USER;
//! - [`dispatch`]: what each command byte means, and the replies rwsplit gives itself;
//! - [`execute`]: one statement — target, connection, send, relay, retry, keep or release;
//! - [`sync`]: bringing a backend connection to the session's state;
//! - [`causal`]: read-your-writes (learning GTIDs, waiting for them on replicas);
//! - [`prepared`]: prepared statements and cursors;
//! - [`process`]: the session's connection id: KILL, SHOW PROCESSLIST, CONNECTION_ID();
//! - [`relay`]: moving one response from a backend to the client;
//! - [`state`]: the session state itself (pure).
//!
//! A session holds no backend connection between statements unless something ties it to one
//! (a transaction, autocommit off, locks, temporary tables, a cursor, user variables set by a
//! query); see [`state`]. Reads that fail before any byte reached the client are retried once
//! on the writer; writes are never retried.

mod causal;
mod dispatch;
mod execute;
mod login;
pub mod prepared;
mod process;
pub mod relay;
pub mod state;
mod sync;

use crate::backend::internal::{internal, internal_batch, internal_prepare, internal_query, internal_value};
use crate::backend::BackendConn;
use crate::classifier::{self, Effect, Reason, Route, Statement, StatementKind};
use crate::consistency::Flavor;
use crate::error::{BackendCause, ProxyError};
use crate::promotion::WritePass;
use crate::protocol::connection::{ConnError, KeptTimer, PacketStream};
use crate::protocol::handshake::{self, parse_handshake_response, ClientLogin, Credential, LoginError};
use crate::protocol::packets::{command_payload, command_text, ok_payload};
use crate::protocol::response::{Expect, Outcome};
use crate::protocol::session_track::StateChanges;
use crate::protocol::stmt::{parse_execute, rewrite_execute, rewrite_id, stmt_id, ExecuteHead};
use crate::protocol::{
    offered_capabilities, offered_mariadb_capabilities, CapabilityFlags, Command, MariadbCapabilities, ResponseFormat,
    StatusFlags,
};
use crate::router::{self, NoTarget, Target};
use crate::runtime::{Shared, Timeouts};
use bytes::Bytes;
use execute::Job;
use prepared::{close_backend_stmt, ClientStmt};
use relay::{metadata_fingerprint, relay, Metadata, RelayError};
use rwsplit_config::Consistency;
use state::{SessionState, Tie};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// A connected, authenticated client.
pub struct Session {
    id: u32,
    shared: Arc<Shared>,
    client: PacketStream,
    peer: String,
    /// The session's entry in the registry of live sessions (removed when the session ends).
    registration: crate::sessions::Registration,
    user: String,
    nonce: [u8; 20],
    /// Pool key: the capabilities that shape the server's responses.
    key: ResponseFormat,
    login_collation: u8,
    state: SessionState,
    /// The connection the session is tied to, if any.
    pinned: Option<Box<BackendConn>>,
    /// The previous statement's connection (when nothing ties the session to one), kept until
    /// the next statement: ROW_COUNT(), FOUND_ROWS(), SHOW WARNINGS and the like must run on it,
    /// and a next statement for the same server reuses it. Given back to the pool as soon as
    /// the next statement goes to another server.
    held: Option<Box<BackendConn>>,
    /// The session's LAST_INSERT_ID(), from the last OK that reported one, and the connection
    /// (server, connection id) on which the server holds that value.
    last_insert_id: u64,
    last_insert_id_on: Option<(usize, u32)>,
    /// The client's prepared statements by the id rwsplit gave them (foldhash: looked up on
    /// every execution; the ids are rwsplit's own).
    stmts: HashMap<u32, ClientStmt, foldhash::fast::RandomState>,
    next_stmt: u32,
    /// The statement whose cursor is open on the pinned connection.
    cursor: Option<u32>,
    last_target: Option<Target>,
    /// Round-robin position of this session's reads. Per session, so that one connection's
    /// reads alternate over the replicas whatever other sessions do; sessions start at
    /// different positions (their ids), so together they spread evenly too.
    read_tick: u64,
    /// The replica this session's reads stay on (`routing.read_balance = "session"`), counted
    /// in `Shared::read_sessions` while set.
    read_server: Option<usize>,
    /// The server the current read failed on (its retry goes elsewhere).
    failed_read_server: Option<usize>,
    /// The replica whose causal wait last timed out, and when: the session's reads leave it
    /// (read affinity moves on when the replica lags) and avoid it for [`execute::AVOID_BEHIND`].
    behind_server: Option<(usize, Instant)>,
    /// Read-your-writes policy of this session's user.
    consistency: Consistency,
    /// GTID of this session's last write (`causal`).
    causal_gtid: Option<String>,
    /// Servers (bit per index) known to have applied `caught_up_gtid`.
    caught_up: u64,
    caught_up_gtid: String,
    /// A transaction in progress has written: its GTID is learned at COMMIT.
    txn_wrote: bool,
    timeouts: Timeouts,
    max_packet: usize,
}

/// Serves one client connection to its end.
pub async fn serve(shared: Arc<Shared>, tcp: TcpStream) {
    let client = PacketStream::new(tcp);
    let peer = client.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    shared.metrics.client_connections.inc();
    shared.metrics.client_connections_total.inc();
    // The task's future is what every connected client costs while it is idle, so nothing
    // that lives only during the login may take room in it for the session's whole life:
    // the handshake's future (TLS, authentication: 5.6 KB) is boxed and dropped once it is
    // done, and the session (1.5 KB) comes out of it boxed, since a session moved out of a
    // result by value keeps room for both in the task (7.2 KB per idle task before, 1.4 KB
    // and the boxed session now).
    let handshake =
        Box::pin(async { Session::handshake(shared.clone(), client, peer.clone()).await.map(|s| s.map(Box::new)) });
    let session = match handshake.await {
        Ok(session) => session,
        Err(e) => {
            tracing::debug!(peer = %peer, error = %e, "handshake failed");
            shared.metrics.client_errors.inc();
            None
        }
    };
    if let Some(mut session) = session {
        session.run().await;
    }
    shared.metrics.client_connections.dec();
}

fn client_gone(e: ConnError) -> ProxyError {
    ProxyError::ClientGone(e)
}

impl Session {
    /// The command loop.
    pub(super) async fn run(&mut self) {
        let entry = self.registration.entry.clone();
        // One keep-previous timer, kept from wait to wait (see `KeptTimer`) rather than made anew.
        let mut keep_timer = KeptTimer::default();
        // KILL CONNECTION from another session (see `SessionEntry::killed`).
        let killed = entry.killed();
        tokio::pin!(killed);
        // Another session waiting for a connection to the held one's server: registered once
        // while the held connection stays on one server (the signal is the server's, shared
        // by every session using it), made anew after it fired or the server changed.
        let mut reclaim: Option<(usize, std::pin::Pin<Box<tokio::sync::futures::OwnedNotified>>)> = None;
        loop {
            // What the last command left queued (the end of its response), now that its
            // bookkeeping is done: the last thing before waiting.
            if let Err(e) = self.client.flush(self.timeouts.client_write).await {
                tracing::debug!(session = self.id, error = %e, "client gone");
                break;
            }
            // The timer exists while the session holds a connection: an idle one has none.
            let keep = if self.held.is_some() {
                Some(tokio::time::Instant::now() + self.timeouts.keep_previous)
            } else {
                keep_timer = KeptTimer::default();
                None
            };
            let keep_expired = async {
                match keep {
                    Some(deadline) => std::future::poll_fn(|cx| keep_timer.poll_until(deadline, cx)).await,
                    None => std::future::pending().await,
                }
            };
            match (&self.held, &reclaim) {
                (Some(h), Some((server, _))) if *server == h.server => {}
                (Some(h), _) => {
                    reclaim =
                        self.shared.pool.reclaim_signal(h.server).map(|n| (h.server, Box::pin(n.notified_owned())));
                }
                (None, _) => reclaim = None,
            }
            let wanted = async {
                match reclaim.as_mut() {
                    Some((_, signal)) => signal.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            // Waiting for the first chunk only peeks (cancel-safe): the packet is read after.
            let ready = tokio::select! {
                // In this order (no random start): the client's command is what wakes a busy
                // session; the others are checked when it is not there yet, and a kill that
                // comes while commands keep arriving is seen after the command.
                biased;
                r = self.client.next_chunk(self.timeouts.client_idle) => r,
                // KILL CONNECTION from another session while this one waits for its client.
                () = &mut killed => break,
                // An idle client does not keep a backend connection from other sessions: not
                // beyond backend.keep_previous_ms, and not at all when someone waits for one.
                () = keep_expired, if self.held.is_some() => {
                    self.give_back_held();
                    continue;
                }
                () = wanted, if self.held.is_some() => {
                    reclaim = None;
                    self.give_back_held();
                    continue;
                }
            };
            let read = match ready {
                Ok(_) => self.client.read_packet(self.max_packet, self.timeouts.client_idle).await,
                Err(e) => Err(e),
            };
            let (seq, payload) = match read {
                Ok(p) => p,
                Err(ConnError::TooLarge(n)) => {
                    let e = ProxyError::ClientProtocol(format!("packet of {n} bytes exceeds proxy.max_packet_bytes"));
                    let _ = self.client.send(1, &e.err_packet(), self.timeouts.client_write).await;
                    break;
                }
                Err(ConnError::Timeout(_)) => {
                    tracing::info!(session = self.id, peer = %self.peer, "client idle timeout");
                    break;
                }
                Err(_) => break,
            };
            if seq != 0 || payload.is_empty() {
                let e = ProxyError::ClientProtocol("command packet out of sequence or empty".into());
                self.shared.metrics.client_errors.inc();
                let _ = self.client.send(seq.wrapping_add(1), &e.err_packet(), self.timeouts.client_write).await;
                break;
            }
            if payload[0] == Command::COM_QUIT as u8 {
                break;
            }
            // Boxed: the command future is large and lives only while a command runs, so an
            // idle session keeps only its small loop state. Made in its box rather than moved
            // there: the move was a 3 KB copy per command.
            let result = Box::into_pin(Box::write(Box::new_uninit(), self.command(payload))).await;
            self.show_idle();
            if entry.is_killed() {
                // Killed while it ran a statement: the connection ends, as on the server.
                break;
            }
            if let Err(e) = result {
                if let ProxyError::ClientGone(_) = e {
                    break;
                }
                if e.side() == crate::error::Side::Client {
                    self.shared.metrics.client_errors.inc();
                }
                tracing::debug!(session = self.id, error = %e, "command failed");
                if self.client.send(1, &e.err_packet(), self.timeouts.client_write).await.is_err() || e.closes_client()
                {
                    break;
                }
            }
        }
        // A response still queued (a session killed after its statement) is delivered first.
        let _ = self.client.flush(self.timeouts.client_write).await;
        self.client.shutdown().await;
        self.shared.move_read_session(self.read_server.take(), None);
        // A tied connection holds state nobody else may inherit: it is dropped, not pooled.
        self.pinned = None;
        if let Some(h) = self.held.take() {
            self.shared.pool.release(h);
        }
    }

    /// Gives the previous statement's connection back to the pool.
    fn give_back_held(&mut self) {
        if let Some(held) = self.held.take() {
            self.shared.pool.release(held);
        }
    }

    /// Shows the session as idle in SHOW PROCESSLIST (after login and after each command).
    fn show_idle(&self) {
        let schema = &self.state.schema;
        let pinned_on = self.pinned.as_ref().map(|p| p.server);
        self.registration.entry.update(|a| {
            a.command = "Sleep";
            a.since = Instant::now();
            a.statement = None;
            a.running_on = None;
            a.pinned_on = pinned_on;
            // Copied only when it changed (a USE): this runs after every command.
            if a.schema != *schema {
                a.schema.clone_from(schema);
            }
        });
    }

    /// Shows the command the session runs now in SHOW PROCESSLIST.
    fn show_command(&self, payload: &Bytes, since: Instant) {
        let command = match payload.first().copied() {
            Some(c) if c == Command::COM_QUERY as u8 => "Query",
            Some(c) if c == Command::COM_STMT_EXECUTE as u8 => "Execute",
            Some(c) if c == Command::COM_STMT_PREPARE as u8 => "Prepare",
            Some(c) if c == Command::COM_STMT_FETCH as u8 => "Fetch",
            Some(c) if c == Command::COM_INIT_DB as u8 => "Init DB",
            Some(c) if c == Command::COM_FIELD_LIST as u8 => "Field List",
            _ => "Query",
        };
        let statement = (command == "Query").then(|| payload.clone());
        self.registration.entry.update(|a| {
            a.command = command;
            a.since = since;
            a.statement = statement;
        });
    }
}

//! One client session: the handshake, then a loop reading commands, routing each one, running
//! it on a backend connection brought to the session's state, and relaying the response.
//!
//! A session holds no backend connection between statements unless something ties it to one
//! (a transaction, autocommit off, locks, temporary tables, a cursor, user variables set by a
//! query); see [`state`]. Reads that fail before any byte reached the client are retried once
//! on the writer; writes are never retried.

pub mod prepared;
pub mod relay;
pub mod state;

use crate::backend::BackendConn;
use crate::classifier::{self, Effect, Reason, Route, Statement, StatementKind};
use crate::consistency::Flavor;
use crate::error::ProxyError;
use crate::protocol::connection::{ConnError, PacketStream};
use crate::protocol::handshake::{self, parse_handshake_response, ClientLogin, Credential, LoginError};
use crate::protocol::packets::ok_payload;
use crate::protocol::response::{Expect, Outcome};
use crate::protocol::session_track::{ok_state_changes, StateChanges};
use crate::protocol::{behaviour_capabilities, offered_capabilities, CapabilityFlags, Command, StatusFlags};
use crate::router::{self, NoTarget, Target};
use crate::runtime::{Shared, Timeouts};
use bytes::Bytes;
use prepared::{parse_execute, rewrite_execute, rewrite_id, stmt_id, ClientStmt};
use relay::{internal, internal_value, relay, RelayError};
use rwsplit_config::Consistency;
use state::{SessionState, Tie};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpStream;

/// What to send for one statement; the retry loop may send it more than once (reads only).
enum Job<'a> {
    /// A command forwarded as the client sent it.
    Forward { payload: &'a [u8], expect: Expect },
    /// COM_STMT_PREPARE: forward, then map the backend's id to `client_id`.
    Prepare { payload: &'a [u8], sql: Arc<str>, client_id: u32 },
    /// COM_STMT_EXECUTE of a client statement.
    Execute { payload: &'a [u8], client_id: u32 },
}

/// A connected, authenticated client.
pub struct Session {
    id: u32,
    shared: Arc<Shared>,
    client: PacketStream,
    peer: String,
    user: String,
    nonce: [u8; 20],
    /// Pool key: the capabilities that shape the server's responses.
    key: CapabilityFlags,
    login_collation: u8,
    state: SessionState,
    /// The connection the session is tied to, if any.
    pinned: Option<BackendConn>,
    /// The previous statement's connection, kept until the next command when that command may
    /// need it: after an auto-increment insert (LAST_INSERT_ID()), warnings (SHOW WARNINGS) or
    /// SQL_CALC_FOUND_ROWS (FOUND_ROWS()). Given back to the pool as soon as it is not needed.
    held: Option<BackendConn>,
    stmts: HashMap<u32, ClientStmt>,
    next_stmt: u32,
    /// The statement whose cursor is open on the pinned connection.
    cursor: Option<u32>,
    last_target: Option<Target>,
    /// Round-robin position of this session's reads. Per session, so that one connection's
    /// reads alternate over the replicas whatever other sessions do; sessions start at
    /// different positions (their ids), so together they spread evenly too.
    read_tick: u64,
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
    match Session::handshake(shared.clone(), client, peer.clone()).await {
        Ok(Some(mut session)) => session.run().await,
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(peer = %peer, error = %e, "handshake failed");
            shared.metrics.client_errors.inc();
        }
    }
    shared.metrics.client_connections.dec();
}

fn client_gone(e: ConnError) -> ProxyError {
    ProxyError::ClientGone(e)
}

impl Session {
    /// The connection phase. Returns the session, or `None` when the client was refused
    /// (after an ERR).
    async fn handshake(
        shared: Arc<Shared>,
        mut client: PacketStream,
        peer: String,
    ) -> Result<Option<Session>, ConnError> {
        let config = shared.config();
        let timeouts = Timeouts::from_config(&config);
        let id = shared.next_session_id();
        let nonce = handshake::new_nonce();
        let mut offered = offered_capabilities();
        if shared.tls.is_some() {
            offered |= CapabilityFlags::CLIENT_SSL;
        }
        client
            .send(0, &handshake::greeting_payload(&shared.server_version, id, &nonce, offered), timeouts.handshake)
            .await?;
        let (mut seq, mut payload) = client.read_packet(1 << 16, timeouts.handshake).await?;
        let mut parsed = parse_handshake_response(&payload, offered);
        if let (Err(LoginError::TlsRequested), Some(acceptor)) = (&parsed, &shared.tls) {
            // SSLRequest: TLS first, then the real handshake response over it.
            client = client.into_tls(&acceptor.0, timeouts.handshake).await?;
            (seq, payload) = client.read_packet(1 << 16, timeouts.handshake).await?;
            parsed = parse_handshake_response(&payload, offered);
        }
        let mut next = seq.wrapping_add(1);
        let login = match parsed {
            Ok(l) => l,
            Err(e) => {
                let err = match e {
                    LoginError::TlsRequested => ProxyError::Unsupported("TLS is not enabled on this listener".into()),
                    other => ProxyError::ClientProtocol(other.to_string()),
                };
                client.send(next, &err.err_packet(), timeouts.handshake).await?;
                return Ok(None);
            }
        };
        if config.proxy.require_tls && !client.is_tls() {
            tracing::warn!(peer = %peer, user = %login.user, "login refused: TLS required");
            client.send(next, &ProxyError::InsecureTransport.err_packet(), timeouts.handshake).await?;
            return Ok(None);
        }
        let Some(cred) = shared.credential(&login.user) else {
            shared.metrics.auth_failures.inc();
            tracing::warn!(peer = %peer, user = %login.user, "login refused: unknown user");
            client.send(next, &ProxyError::AccessDenied { user: login.user }.err_packet(), timeouts.handshake).await?;
            return Ok(None);
        };
        let (ok, n) = verify(&mut client, &login, &cred, &nonce, next, timeouts).await?;
        next = n;
        if !ok {
            shared.metrics.auth_failures.inc();
            tracing::warn!(peer = %peer, user = %login.user, "login refused: wrong password");
            client.send(next, &ProxyError::AccessDenied { user: login.user }.err_packet(), timeouts.handshake).await?;
            return Ok(None);
        }
        let mut session = Session {
            id,
            shared: shared.clone(),
            client,
            peer,
            user: login.user.clone(),
            nonce,
            key: behaviour_capabilities(login.capabilities),
            login_collation: login.collation,
            state: SessionState::new(login.collation, None),
            pinned: None,
            held: None,
            stmts: HashMap::new(),
            next_stmt: 1,
            cursor: None,
            last_target: None,
            read_tick: u64::from(id),
            consistency: shared.consistency(&login.user),
            causal_gtid: None,
            caught_up: 0,
            caught_up_gtid: String::new(),
            txn_wrote: false,
            timeouts,
            max_packet: config.proxy.max_packet_bytes as usize,
        };
        if !session.enter_schema(login.schema.clone(), next).await? {
            return Ok(None);
        }
        tracing::debug!(session = id, user = %session.user, "client logged in");
        Ok(Some(session))
    }

    /// Sets the schema asked for at login (checked on a backend so an unknown database gets
    /// the server's own error), then sends the final OK. False when the client was refused.
    async fn enter_schema(&mut self, schema: Option<String>, seq: u8) -> Result<bool, ConnError> {
        if let Some(db) = schema {
            match self.use_schema(db).await {
                Ok(None) => {}
                Ok(Some(err)) => {
                    self.client.send(seq, &err, self.timeouts.handshake).await?;
                    return Ok(false);
                }
                Err(e) => {
                    self.client.send(seq, &e.err_packet(), self.timeouts.handshake).await?;
                    return Ok(false);
                }
            }
        }
        self.client.send(seq, &ok_payload(StatusFlags::SERVER_STATUS_AUTOCOMMIT, ""), self.timeouts.handshake).await?;
        Ok(true)
    }

    /// COM_INIT_DB on a connection synced to the session (a replica when one is usable:
    /// checking a schema needs no writer). On success the session and that connection are in
    /// `db`; otherwise the server's ERR payload is returned.
    async fn use_schema(&mut self, db: String) -> Result<Option<Vec<u8>>, ProxyError> {
        // Any server will do; without a usable replica, the writer (whatever the read policy).
        let target = self.target(Route::Replica).or_else(|_| self.target(Route::Master))?;
        let mut conn = self.acquire(target).await?;
        let mut payload = vec![Command::COM_INIT_DB as u8];
        payload.extend_from_slice(db.as_bytes());
        let timeout = self.timeouts.backend_response;
        let (o, err) = internal(&mut conn, &payload, Expect::Single, timeout)
            .await
            .map_err(|e| self.backend_error(&conn, e.to_string(), false))?;
        if o.error.is_none() {
            self.state.set_schema(Some(db.clone()));
            conn.schema = Some(db);
            conn.state = Some(self.state.fingerprint());
        }
        self.keep_or_release(conn);
        Ok(err)
    }

    /// The command loop.
    async fn run(&mut self) {
        loop {
            let (seq, payload) = match self.client.read_packet(self.max_packet, self.timeouts.client_idle).await {
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
            let result = self.command(payload).await;
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
        self.client.shutdown().await;
        // A tied connection holds state nobody else may inherit: it is dropped, not pooled.
        self.pinned = None;
        if let Some(h) = self.held.take() {
            self.shared.pool.release(h);
        }
    }

    async fn command(&mut self, payload: Bytes) -> Result<(), ProxyError> {
        let cmd = payload[0];
        let started = Instant::now();
        let target = match cmd {
            c if c == Command::COM_QUERY as u8 => self.query(&payload).await?,
            c if c == Command::COM_PING as u8 => {
                self.reply_ok().await?;
                return Ok(());
            }
            c if c == Command::COM_INIT_DB as u8 => {
                let db = String::from_utf8_lossy(&payload[1..]).into_owned();
                let effects = [Effect::UseSchema(db.clone())];
                self.statement(
                    Route::Master,
                    Reason::SessionCommand,
                    None,
                    Job::Forward { payload: &payload, expect: Expect::Single },
                    &effects,
                    &db,
                )
                .await?
            }
            c if c == Command::COM_FIELD_LIST as u8 => {
                self.statement(
                    Route::Replica,
                    Reason::Read,
                    None,
                    Job::Forward { payload: &payload, expect: Expect::FieldList },
                    &[],
                    "",
                )
                .await?
            }
            c if c == Command::COM_STATISTICS as u8 => {
                self.statement(
                    Route::Master,
                    Reason::SessionCommand,
                    None,
                    Job::Forward { payload: &payload, expect: Expect::Single },
                    &[],
                    "",
                )
                .await?
            }
            c if c == Command::COM_RESET_CONNECTION as u8 => {
                self.reset(self.state.schema.clone(), self.login_collation);
                self.reply_ok().await?;
                return Ok(());
            }
            c if c == Command::COM_CHANGE_USER as u8 => {
                self.change_user(&payload).await?;
                return Ok(());
            }
            c if c == Command::COM_STMT_PREPARE as u8 => self.prepare(&payload).await?,
            c if c == Command::COM_STMT_EXECUTE as u8 => self.execute(&payload).await?,
            c if c == Command::COM_STMT_SEND_LONG_DATA as u8 => {
                self.send_long_data(payload)?;
                return Ok(());
            }
            c if c == Command::COM_STMT_CLOSE as u8 => {
                self.close_stmt(&payload).await;
                return Ok(());
            }
            c if c == Command::COM_STMT_RESET as u8 => {
                self.reset_stmt(&payload).await?;
                return Ok(());
            }
            c if c == Command::COM_STMT_FETCH as u8 => self.fetch(&payload).await?,
            c if c == Command::COM_SET_OPTION as u8 => {
                return Err(ProxyError::Unsupported("COM_SET_OPTION is not supported by rwsplit; multi-statements follow the capability negotiated at login".into()));
            }
            c if c == Command::COM_PROCESS_KILL as u8 => {
                return Err(ProxyError::Unsupported(
                    "COM_PROCESS_KILL: connection ids are rwsplit's own; use KILL on the server".into(),
                ));
            }
            other => return Err(ProxyError::Unsupported(format!("command 0x{other:02x} is not supported by rwsplit"))),
        };
        self.shared.metrics.observe_latency(&target, started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn reply_ok(&mut self) -> Result<(), ProxyError> {
        let status = self.status_flags();
        self.client.send(1, &ok_payload(status, ""), self.timeouts.client_write).await.map_err(client_gone)?;
        Ok(())
    }

    fn status_flags(&self) -> StatusFlags {
        let mut s = StatusFlags::empty();
        if self.state.autocommit {
            s |= StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        }
        if self.state.in_transaction {
            s |= StatusFlags::SERVER_STATUS_IN_TRANS;
        }
        s
    }

    async fn query(&mut self, payload: &[u8]) -> Result<Target, ProxyError> {
        let sql = String::from_utf8_lossy(&payload[1..]);
        if starts_with_keyword(&sql, "kill") {
            // Clients know rwsplit's connection ids, not the servers': passing KILL on could
            // end an unrelated connection.
            return Err(ProxyError::Unsupported(
                "KILL through rwsplit is refused: connection ids differ per server; run KILL on the server itself"
                    .into(),
            ));
        }
        let statement = classifier::scan(&sql);
        let mut decision = classifier::decide_with_text(&statement, &sql, &self.state.view());
        // A transaction must not leave the connection holding the session's temporary tables.
        if self.state.holds_temp_tables() && decision.effects.iter().any(|e| matches!(e, Effect::Begin { .. })) {
            decision.route = Route::Master;
        }
        if statement.assigns_user_variables() {
            // The variables' values will live on that connection only.
            self.state.tie(Tie::UserVariables);
        }
        let effects = std::mem::take(&mut decision.effects);
        self.statement(
            decision.route,
            decision.reason,
            Some(&statement),
            Job::Forward { payload, expect: Expect::Query },
            &effects,
            &sql,
        )
        .await
    }

    /// Routes, runs and relays one statement, with one transparent retry for reads that fail
    /// before any byte reached the client.
    async fn statement(
        &mut self,
        route: Route,
        reason: Reason,
        statement: Option<&Statement>,
        job: Job<'_>,
        effects: &[Effect],
        sql: &str,
    ) -> Result<Target, ProxyError> {
        let writes = statement.is_some_and(|s| changes_data(s, reason));
        // `SELECT SQL_CALC_FOUND_ROWS …`: keep the connection for the FOUND_ROWS() that follows.
        let found_rows = statement.is_some_and(Statement::calc_found_rows);
        if writes {
            self.check_semisync()?;
        }
        let needs_previous = route == Route::Previous || reason == Reason::LastInsertId;
        if !needs_previous {
            if let Some(h) = self.held.take() {
                self.shared.pool.release(h);
            }
        }
        let mut route = if reason == Reason::LastInsertId && self.held.is_some() { Route::Previous } else { route };
        let read = route == Route::Replica && !self.state.is_tied();
        let mut retried = false;
        loop {
            let target = self.target(route)?;
            if route == Route::Replica {
                self.shared.note_read_target(&target);
            }
            let mut conn = match self.acquire(target).await {
                Ok(c) => c,
                Err(e)
                    if read
                        && !retried
                        && e.retryable()
                        && !matches!(target, Target::Writer(_) | Target::FallbackWriter(_)) =>
                {
                    self.shared.metrics.backend_error(target.server());
                    self.shared.metrics.read_retries.inc();
                    tracing::warn!(session = self.id, error = %e, "read failed before reaching the client; retrying on the writer");
                    retried = true;
                    route = Route::Master;
                    continue;
                }
                Err(e) => {
                    if matches!(e, ProxyError::Backend { .. }) {
                        self.shared.metrics.backend_error(target.server());
                    }
                    return Err(e);
                }
            };
            if let Target::Replica(i) = target {
                if !self.causally_ready(&mut conn, i).await {
                    // The replica has not applied what this session must see: the writer has.
                    self.shared.metrics.causal_fallbacks.inc();
                    self.keep_or_release(conn);
                    route = Route::Master;
                    continue;
                }
            }
            if self.consistency != Consistency::None && !matches!(target, Target::Replica(_)) {
                self.track_gtids(&mut conn).await;
            }
            match self.run_job(&mut conn, &job).await {
                Ok((outcome, last_ok)) => {
                    self.shared.metrics.routed(&target, reason);
                    let changes = last_ok.and_then(|ok| ok_state_changes(&ok, conn.hello.capabilities));
                    if !matches!(target, Target::Replica(_)) && outcome.error.is_none() {
                        // Before the client sees the end of the response: a read it sends
                        // next, on any connection, must already find the new GTID.
                        self.learn_gtid(&mut conn, writes, effects, &outcome, changes.as_ref()).await;
                    }
                    let flushed = self.client.flush(self.timeouts.client_write).await;
                    self.note_untracked_changes(effects, &outcome, changes.as_ref());
                    self.finish(conn, target, &outcome, effects, sql, found_rows);
                    flushed.map_err(client_gone)?;
                    return Ok(target);
                }
                Err(RelayError::Client(e)) => {
                    // The statement may still be running for nobody.
                    self.shared.pool.kill_query(conn.server, conn.hello.connection_id);
                    return Err(client_gone(e));
                }
                Err(RelayError::Backend { reason: why, before_client }) => {
                    self.shared.metrics.backend_error(target.server());
                    if why.starts_with("timed out") {
                        self.shared.pool.kill_query(conn.server, conn.hello.connection_id);
                    }
                    let was_tied = self.state.is_tied();
                    if was_tied {
                        // The server rolls back and drops everything session-bound with the
                        // connection; the client is told by the error below.
                        self.lost_tied_connection();
                    }
                    if !before_client {
                        // Part of the response is already with the client: its stream cannot
                        // be continued. Close it, as a server that died mid-result would.
                        return Err(ProxyError::ClientGone(ConnError::Closed));
                    }
                    if read && !retried && !was_tied {
                        self.shared.metrics.read_retries.inc();
                        tracing::warn!(session = self.id, server = self.shared.pool.name(target.server()), error = %why, "read failed before reaching the client; retrying on the writer");
                        retried = true;
                        route = Route::Master;
                        continue;
                    }
                    return Err(self.backend_error(&conn, why, false));
                }
            }
        }
    }

    /// `routing.require_semisync`: refuse a write while the writer runs without semi-sync.
    fn check_semisync(&self) -> Result<(), ProxyError> {
        if !self.shared.config().routing.require_semisync {
            return Ok(());
        }
        let topology = self.shared.topology.load();
        if topology.semisync.as_ref().is_some_and(|s| s.active) {
            return Ok(());
        }
        self.shared.metrics.semisync_refusals.inc();
        Err(ProxyError::Refused(
            "semi-sync replication is off on the writer and routing.require_semisync is set: writes are refused until a replica acknowledges again".into(),
        ))
    }

    /// The GTID a read must see under the session's consistency policy.
    fn required_gtid(&self) -> Option<String> {
        match self.consistency {
            Consistency::None => None,
            Consistency::Causal => self.causal_gtid.clone(),
            Consistency::CausalGlobal => Some(self.shared.latest_gtid.get()).filter(|g| !g.is_empty()),
        }
    }

    /// Whether replica `server` (on `conn`) has applied what the session must see, waiting
    /// up to `routing.causal_timeout_ms` for it.
    async fn causally_ready(&mut self, conn: &mut BackendConn, server: usize) -> bool {
        let Some(gtid) = self.required_gtid() else { return true };
        if gtid != self.caught_up_gtid {
            self.caught_up_gtid = gtid.clone();
            self.caught_up = 0;
        }
        let bit = 1u64.checked_shl(server as u32).unwrap_or(0);
        if self.caught_up & bit != 0 {
            return true;
        }
        let timeout = std::time::Duration::from_millis(self.shared.config().routing.causal_timeout_ms);
        let Some(query) = Flavor::of(&conn.hello.version).wait_query(&gtid, timeout) else { return false };
        match internal_value(conn, &query, self.timeouts.backend_response.max(timeout * 2)).await {
            Ok(Some(v)) if v.trim() == "0" => {
                self.caught_up |= bit;
                true
            }
            _ => false,
        }
    }

    /// After a statement on the writer: when it committed a write (autocommit, COMMIT of a
    /// transaction that wrote, or DDL), learn the GTID position that covers it.
    async fn learn_gtid(
        &mut self,
        conn: &mut BackendConn,
        writes: bool,
        effects: &[Effect],
        outcome: &Outcome,
        changes: Option<&StateChanges>,
    ) {
        if self.consistency == Consistency::None {
            return;
        }
        let in_trans = outcome.status.is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_IN_TRANS));
        let ends = effects.iter().any(|e| matches!(e, Effect::EndTransaction));
        let committed = if in_trans {
            self.txn_wrote |= writes;
            false
        } else {
            let c = writes || (ends && self.txn_wrote);
            self.txn_wrote = false;
            c
        };
        if !committed {
            return;
        }
        let flavor = Flavor::of(&conn.hello.version);
        // Session tracking put the GTID in the OK packet: no round trip needed.
        if let Some(gtid) = changes.and_then(|c| c.gtid.clone()) {
            tracing::trace!(session = self.id, gtid = %gtid, "GTID from session tracking");
            if self.consistency == Consistency::CausalGlobal {
                self.shared.latest_gtid.observe(flavor, &gtid);
            }
            self.causal_gtid = Some(gtid);
            return;
        }
        match internal_value(conn, flavor.last_gtid_query(), self.timeouts.backend_response).await {
            Ok(Some(gtid)) if !gtid.is_empty() => {
                tracing::trace!(session = self.id, gtid = %gtid, "GTID asked for");
                if self.consistency == Consistency::CausalGlobal {
                    self.shared.latest_gtid.observe(flavor, &gtid);
                }
                self.causal_gtid = Some(gtid);
            }
            // Without a position the session's next reads go to the writer, which has it.
            _ => self.causal_gtid = Some("unknown".into()),
        }
    }

    /// Switches on GTID session tracking on a writer connection (once per connection, again
    /// after a reset), so that commits report their GTID in the OK packet. Needs
    /// CLIENT_SESSION_TRACK on the connection; without it `learn_gtid` asks with a query.
    async fn track_gtids(&mut self, conn: &mut BackendConn) {
        if conn.gtid_tracking || !conn.hello.capabilities.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
            return;
        }
        let sql = match Flavor::of(&conn.hello.version) {
            // Adds last_gtid to whatever the server already tracks.
            Flavor::MariaDb => {
                "SET SESSION session_track_system_variables = IF(FIND_IN_SET('last_gtid', @@session_track_system_variables), @@session_track_system_variables, CONCAT_WS(',', NULLIF(@@session_track_system_variables, ''), 'last_gtid'))"
            }
            Flavor::MySql => "SET SESSION session_track_gtids = OWN_GTID",
        };
        let mut p = vec![Command::COM_QUERY as u8];
        p.extend_from_slice(sql.as_bytes());
        if let Ok((o, _)) = internal(conn, &p, Expect::Query, self.timeouts.backend_response).await {
            conn.gtid_tracking = o.error.is_none();
        }
    }

    fn backend_error(&self, conn: &BackendConn, reason: String, retryable: bool) -> ProxyError {
        ProxyError::Backend { server: self.shared.pool.name(conn.server).to_string(), reason, retryable }
    }

    /// The session's tied connection died: everything bound to it is gone.
    fn lost_tied_connection(&mut self) {
        self.pinned = None;
        self.cursor = None;
        self.state.in_transaction = false;
        self.state.read_only_transaction = false;
        self.state.autocommit = true;
        self.state.temp_tables.clear();
        self.state.ties.clear();
    }

    /// Which server runs a statement with this route.
    fn target(&mut self, route: Route) -> Result<Target, ProxyError> {
        if self.state.is_tied() {
            if let Some(p) = &self.pinned {
                return Ok(self.last_target.filter(|t| t.server() == p.server).unwrap_or(Target::Writer(p.server)));
            }
        }
        let route = match route {
            Route::Previous => match self.last_target {
                Some(t) => return Ok(t),
                None => Route::Master,
            },
            r => r,
        };
        let topology = self.shared.topology.load();
        let tick = if route == Route::Replica {
            self.read_tick = self.read_tick.wrapping_add(1);
            self.read_tick
        } else {
            0
        };
        router::choose(route, &topology, self.shared.policy(), tick).map_err(|e| {
            self.shared.metrics.no_server_errors.inc();
            ProxyError::NoServer(
                match e {
                    NoTarget::NoWriter => "no writable server is known (all down, or none has read_only=OFF)",
                    NoTarget::NoReplica => "no replica is usable and routing.fallback_to_master is off",
                }
                .into(),
            )
        })
    }

    /// The connection for `target`: the pinned one if it is on that server, else one from the
    /// pool brought to the session's state.
    async fn acquire(&mut self, target: Target) -> Result<BackendConn, ProxyError> {
        if self.held.as_ref().is_some_and(|h| h.server == target.server()) {
            if let Some(h) = self.held.take() {
                return Ok(h);
            }
        }
        if self.pinned.as_ref().is_some_and(|p| p.server == target.server()) {
            if let Some(p) = self.pinned.take() {
                return Ok(p);
            }
        }
        let fp = self.state.fingerprint();
        let mut conn = self.shared.pool.lease(target.server(), self.key, fp).await?;
        if self.state.schema.is_none() && conn.schema.is_some() {
            // No command leaves a schema: take a connection that never entered one.
            drop(conn);
            conn = self.shared.pool.open(target.server(), self.key).await?;
        }
        self.sync(&mut conn).await?;
        Ok(conn)
    }

    /// Brings a pooled connection to this session's state: reset it unless it is pristine,
    /// then replay schema, character set and session variables.
    async fn sync(&mut self, conn: &mut BackendConn) -> Result<(), ProxyError> {
        let fp = self.state.fingerprint();
        if conn.state == Some(fp) {
            return Ok(());
        }
        let timeout = self.timeouts.backend_response;
        let name = self.shared.pool.name(conn.server).to_string();
        let fail = |why: String| ProxyError::Backend { server: name.clone(), reason: why, retryable: true };
        let pristine = SessionState::pristine_fingerprint();
        if conn.state != Some(pristine) && conn.state.is_some() {
            let (o, err) = internal(conn, &[Command::COM_RESET_CONNECTION as u8], Expect::Single, timeout)
                .await
                .map_err(|e| fail(e.to_string()))?;
            if o.error.is_some() {
                return Err(fail(format!(
                    "COM_RESET_CONNECTION failed: {}",
                    err.map(|e| crate::protocol::packets::err_message(&e)).unwrap_or_default()
                )));
            }
            conn.forget_session();
            self.shared.metrics.pool_resets.inc();
        }
        if conn.state.is_none() {
            // A freshly opened connection is pristine.
            conn.state = Some(pristine);
        }
        if let Some(db) = &self.state.schema {
            let mut p = vec![Command::COM_INIT_DB as u8];
            p.extend_from_slice(db.as_bytes());
            let (o, err) = internal(conn, &p, Expect::Single, timeout).await.map_err(|e| fail(e.to_string()))?;
            if o.error.is_some() {
                return Err(fail(format!(
                    "USE {db}: {}",
                    err.map(|e| crate::protocol::packets::err_message(&e)).unwrap_or_default()
                )));
            }
            conn.schema = Some(db.clone());
        }
        for sql in self.state.replay() {
            let mut p = vec![Command::COM_QUERY as u8];
            p.extend_from_slice(sql.as_bytes());
            let (o, err) = internal(conn, &p, Expect::Query, timeout).await.map_err(|e| fail(e.to_string()))?;
            if o.error.is_some() {
                conn.state = None;
                return Err(fail(format!(
                    "replaying session state: {}",
                    err.map(|e| crate::protocol::packets::err_message(&e)).unwrap_or_default()
                )));
            }
        }
        conn.state = Some(fp);
        Ok(())
    }

    /// Sends the job's command(s) and relays the response; returns the outcome and the final
    /// OK's payload when it reports session state changes.
    async fn run_job(
        &mut self,
        conn: &mut BackendConn,
        job: &Job<'_>,
    ) -> Result<(Outcome, Option<Vec<u8>>), RelayError> {
        let bt = self.timeouts.backend_response;
        let ct = self.timeouts.client_write;
        let backend_err = |e: ConnError| RelayError::Backend { reason: e.to_string(), before_client: true };
        match job {
            Job::Forward { payload, expect } => {
                conn.stream.send(0, payload, bt).await.map_err(backend_err)?;
                relay(&mut self.client, conn, *expect, bt, ct, None, false).await
            }
            Job::Prepare { payload, sql, client_id } => {
                conn.stream.send(0, payload, bt).await.map_err(backend_err)?;
                let (outcome, last_ok) =
                    relay(&mut self.client, conn, Expect::Prepare, bt, ct, Some(*client_id), false).await?;
                if let Some((backend_id, columns, params)) = outcome.prepared {
                    if let Some(old) = conn.stmt(sql).map(|s| s.id) {
                        close_backend_stmt(conn, old);
                    }
                    if let Some(evicted) = conn.remember_stmt(sql.clone(), backend_id) {
                        close_backend_stmt(conn, evicted);
                    }
                    let statement = classifier::scan(sql);
                    self.stmts.insert(
                        *client_id,
                        ClientStmt {
                            sql: sql.clone(),
                            statement,
                            params,
                            columns,
                            types: None,
                            long_data: Vec::new(),
                            long_data_bytes: 0,
                        },
                    );
                }
                Ok((outcome, last_ok))
            }
            Job::Execute { payload, client_id } => {
                let Some(stmt) = self.stmts.get(client_id).cloned() else {
                    return Err(RelayError::Backend { reason: "statement vanished".into(), before_client: true });
                };
                let backend_id = match conn.stmt(&stmt.sql).map(|s| s.id) {
                    Some(id) => id,
                    None => match self.prepare_on(conn, &stmt.sql).await? {
                        Ok(id) => id,
                        Err(err) => {
                            // The server refused the statement here (a table missing on this
                            // replica, say): its error is the answer to EXECUTE.
                            self.client.send(1, &err, ct).await.map_err(RelayError::Client)?;
                            let code = crate::protocol::packets::err_code(&err);
                            return Ok((
                                Outcome {
                                    status: None,
                                    error: code.or(Some(0)),
                                    prepared: None,
                                    warnings: 0,
                                    last_insert_id: 0,
                                },
                                None,
                            ));
                        }
                    },
                };
                for long in &stmt.long_data {
                    // No response to COM_STMT_SEND_LONG_DATA; queued ahead of the EXECUTE.
                    conn.stream.queue(0, &rewrite_id(long, backend_id));
                }
                let head = parse_execute(payload, stmt.params)
                    .ok_or(RelayError::Backend { reason: "malformed COM_STMT_EXECUTE".into(), before_client: true })?;
                let known = conn.stmt(&stmt.sql).and_then(|s| s.types.clone());
                let insert = match (&head.types, &stmt.types) {
                    (None, Some(t)) if known.as_ref() != Some(t) => Some(t.clone()),
                    _ => None,
                };
                let out = rewrite_execute(payload, &head, backend_id, insert.as_deref());
                if let Some(s) = conn.stmt(&stmt.sql) {
                    if let Some(t) = head.types.map(<[u8]>::to_vec).or(insert) {
                        s.types = Some(t);
                    }
                }
                conn.stream.send(0, &out, bt).await.map_err(backend_err)?;
                if let Some(s) = self.stmts.get_mut(client_id) {
                    s.long_data.clear();
                    s.long_data_bytes = 0;
                }
                let (outcome, last_ok) = relay(&mut self.client, conn, Expect::Query, bt, ct, None, false).await?;
                if head.flags & 0x07 != 0
                    && outcome.status.is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS))
                {
                    self.cursor = Some(*client_id);
                    self.state.tie(Tie::Cursor);
                }
                Ok((outcome, last_ok))
            }
        }
    }

    /// Prepares `sql` on `conn` without telling the client (the statement was prepared on
    /// another connection); returns the backend id.
    async fn prepare_on(&mut self, conn: &mut BackendConn, sql: &Arc<str>) -> Result<Result<u32, Vec<u8>>, RelayError> {
        let mut p = vec![Command::COM_STMT_PREPARE as u8];
        p.extend_from_slice(sql.as_bytes());
        let (o, err) = internal(conn, &p, Expect::Prepare, self.timeouts.backend_response)
            .await
            .map_err(|e| RelayError::Backend { reason: e.to_string(), before_client: true })?;
        match (o.prepared, err) {
            (Some((id, _, _)), _) => {
                if let Some(evicted) = conn.remember_stmt(sql.clone(), id) {
                    close_backend_stmt(conn, evicted);
                }
                Ok(Ok(id))
            }
            (None, Some(e)) => Ok(Err(e)),
            (None, None) => {
                Err(RelayError::Backend { reason: "re-prepare returned no statement".into(), before_client: true })
            }
        }
    }

    /// The server says session state changed in a way the classifier did not see (a stored
    /// procedure running USE or SET, say): only that connection has it now, so the session
    /// stays there. A change that is only the commit's GTID is not session state.
    fn note_untracked_changes(&mut self, effects: &[Effect], outcome: &Outcome, changes: Option<&StateChanges>) {
        let untracked = outcome.error.is_none()
            && effects.is_empty()
            && outcome.status.is_some_and(|s| s.contains(StatusFlags::SERVER_SESSION_STATE_CHANGED))
            && changes.is_none_or(|c| c.other);
        if untracked {
            tracing::debug!(session = self.id, "untracked session state change; staying on this connection");
            self.state.tie(Tie::UntrackedState);
        }
    }

    /// After a statement: learn the state, then keep the connection tied or give it back.
    fn finish(
        &mut self,
        mut conn: BackendConn,
        target: Target,
        outcome: &Outcome,
        effects: &[Effect],
        sql: &str,
        found_rows: bool,
    ) {
        if let Some(status) = outcome.status {
            self.state.observe_status(status);
        }
        if outcome.error.is_none() {
            self.state.apply(effects, sql);
        } else if effects.iter().any(|e| matches!(e, Effect::Begin { .. })) {
            self.state.read_only_transaction = false;
        }
        self.last_target = Some(target);
        conn.state = Some(self.state.fingerprint());
        if self.state.schema.is_some() {
            conn.schema = self.state.schema.clone();
        }
        let follow_up = outcome.last_insert_id != 0 || outcome.warnings > 0 || found_rows;
        if follow_up && !self.state.is_tied() && !self.state.holds_temp_tables() {
            self.held = Some(conn);
            return;
        }
        self.keep_or_release(conn);
    }

    fn keep_or_release(&mut self, conn: BackendConn) {
        let writer = self.shared.topology.load().writer;
        let keep = self.state.is_tied()
            || (self.state.holds_temp_tables() && (Some(conn.server) == writer || self.pinned.is_none()));
        if keep {
            // One tied connection per session; a second would mean state split over two.
            self.pinned = Some(conn);
        } else {
            self.shared.pool.release(conn);
        }
    }

    /// COM_RESET_CONNECTION / COM_CHANGE_USER: a fresh session state on the same client.
    fn reset(&mut self, schema: Option<String>, collation: u8) {
        self.pinned = None;
        self.held = None;
        self.cursor = None;
        self.stmts.clear();
        self.last_target = None;
        self.state = SessionState::new(collation, schema);
    }

    async fn change_user(&mut self, payload: &[u8]) -> Result<(), ProxyError> {
        let req = handshake::parse_change_user(payload)
            .ok_or_else(|| ProxyError::ClientProtocol("malformed COM_CHANGE_USER".into()))?;
        let user = req.user;
        let schema = req.schema;
        let collation = req.collation.unwrap_or(self.login_collation);
        let auth = req.auth_response;
        let Some(cred) = self.shared.credential(&user) else {
            self.shared.metrics.auth_failures.inc();
            return Err(ProxyError::AccessDenied { user });
        };
        let mut seq = 1;
        let native = req.plugin.as_deref().is_none_or(|p| p == handshake::NATIVE_PASSWORD);
        let mut ok = native && cred.verify_native(&self.nonce, &auth);
        if !ok {
            // Clients that used another plugin or nonce get a switch with a fresh nonce.
            let nonce = handshake::new_nonce();
            self.client
                .send(seq, &handshake::auth_switch_payload(&nonce), self.timeouts.handshake)
                .await
                .map_err(client_gone)?;
            let (s, resp) = self.client.read_packet(1 << 16, self.timeouts.handshake).await.map_err(client_gone)?;
            seq = s.wrapping_add(1);
            ok = cred.verify_native(&nonce, &resp);
            self.nonce = nonce;
        }
        if !ok {
            self.shared.metrics.auth_failures.inc();
            tracing::warn!(session = self.id, user = %user, "COM_CHANGE_USER refused");
            let e = ProxyError::AccessDenied { user };
            let _ = self.client.send(seq, &e.err_packet(), self.timeouts.client_write).await;
            return Err(ProxyError::ClientGone(ConnError::Closed));
        }
        self.consistency = self.shared.consistency(&user);
        self.causal_gtid = None;
        self.user = user;
        self.login_collation = collation;
        self.reset(None, collation);
        match self.enter_schema(schema, seq).await {
            Ok(true) => Ok(()),
            _ => Err(ProxyError::ClientGone(ConnError::Closed)),
        }
    }

    async fn prepare(&mut self, payload: &[u8]) -> Result<Target, ProxyError> {
        let sql: Arc<str> = Arc::from(String::from_utf8_lossy(&payload[1..]).as_ref());
        let decision = classifier::classify(&sql, &self.state.view());
        let client_id = self.next_stmt;
        self.next_stmt = self.next_stmt.wrapping_add(1).max(1);
        self.statement(
            decision.route,
            decision.reason,
            None,
            Job::Prepare { payload, sql: sql.clone(), client_id },
            &[],
            &sql,
        )
        .await
    }

    async fn execute(&mut self, payload: &[u8]) -> Result<Target, ProxyError> {
        let id = stmt_id(payload).ok_or_else(|| ProxyError::ClientProtocol("short COM_STMT_EXECUTE".into()))?;
        let stmt = self.stmts.get_mut(&id).ok_or(ProxyError::UnknownStatement(id, "mysqld_stmt_execute"))?;
        let head = parse_execute(payload, stmt.params)
            .ok_or_else(|| ProxyError::ClientProtocol("malformed COM_STMT_EXECUTE".into()))?;
        if let Some(t) = head.types {
            stmt.types = Some(t.to_vec());
        }
        let statement: Statement = stmt.statement.clone();
        let sql = stmt.sql.clone();
        // With the text, temporary-table reads are told apart from other reads.
        let decision = classifier::decide_with_text(&statement, &sql, &self.state.view());
        if statement.assigns_user_variables() {
            self.state.tie(Tie::UserVariables);
        }
        self.statement(
            decision.route,
            decision.reason,
            Some(&statement),
            Job::Execute { payload, client_id: id },
            &decision.effects,
            &sql,
        )
        .await
    }

    fn send_long_data(&mut self, payload: Bytes) -> Result<(), ProxyError> {
        let id = stmt_id(&payload).ok_or_else(|| ProxyError::ClientProtocol("short COM_STMT_SEND_LONG_DATA".into()))?;
        let max = self.max_packet;
        // No response is sent for this command, errors included (the EXECUTE reports them).
        if let Some(stmt) = self.stmts.get_mut(&id) {
            stmt.long_data_bytes += payload.len();
            if stmt.long_data_bytes > max {
                return Err(ProxyError::ClientProtocol(format!(
                    "long data for statement {id} exceeds proxy.max_packet_bytes"
                )));
            }
            stmt.long_data.push(payload);
        }
        Ok(())
    }

    async fn close_stmt(&mut self, payload: &[u8]) {
        let Some(id) = stmt_id(payload) else { return };
        let Some(stmt) = self.stmts.remove(&id) else { return };
        if self.cursor == Some(id) {
            self.close_cursor(&stmt.sql).await;
        }
    }

    /// Closes the open cursor on the tied connection (COM_STMT_RESET ends it server-side).
    async fn close_cursor(&mut self, sql: &str) {
        self.cursor = None;
        self.state.untie(Tie::Cursor);
        let Some(mut conn) = self.pinned.take() else { return };
        if let Some(backend_id) = conn.stmt(sql).map(|s| s.id) {
            let p = rewrite_id(&[Command::COM_STMT_RESET as u8, 0, 0, 0, 0], backend_id);
            if internal(&mut conn, &p, Expect::Single, self.timeouts.backend_response).await.is_err() {
                return;
            }
        }
        self.keep_or_release(conn);
    }

    async fn reset_stmt(&mut self, payload: &[u8]) -> Result<(), ProxyError> {
        let id = stmt_id(payload).ok_or_else(|| ProxyError::ClientProtocol("short COM_STMT_RESET".into()))?;
        let stmt = self.stmts.get_mut(&id).ok_or(ProxyError::UnknownStatement(id, "mysqld_stmt_reset"))?;
        stmt.long_data.clear();
        stmt.long_data_bytes = 0;
        let sql = stmt.sql.clone();
        if self.cursor == Some(id) {
            self.close_cursor(&sql).await;
        }
        // Long data lives in rwsplit until EXECUTE, so clearing it here is the whole reset.
        self.reply_ok().await
    }

    async fn fetch(&mut self, payload: &[u8]) -> Result<Target, ProxyError> {
        let id = stmt_id(payload).ok_or_else(|| ProxyError::ClientProtocol("short COM_STMT_FETCH".into()))?;
        let sql =
            self.stmts.get(&id).map(|s| s.sql.clone()).ok_or(ProxyError::UnknownStatement(id, "mysqld_stmt_fetch"))?;
        if self.cursor != Some(id) {
            return Err(ProxyError::Unsupported(format!("statement {id} has no open cursor")));
        }
        let mut conn =
            self.pinned.take().ok_or_else(|| ProxyError::Internal("cursor without a tied connection".into()))?;
        let target = self.last_target.unwrap_or(Target::Writer(conn.server));
        let backend_id = conn
            .stmt(&sql)
            .map(|s| s.id)
            .ok_or_else(|| ProxyError::Internal("cursor statement not on its connection".into()))?;
        let out = rewrite_id(payload, backend_id);
        let bt = self.timeouts.backend_response;
        let sent = conn.stream.send(0, &out, bt).await;
        let result = match sent {
            Ok(_) => relay(&mut self.client, &mut conn, Expect::Fetch, bt, self.timeouts.client_write, None, true)
                .await
                .map(|(o, _)| o),
            Err(e) => Err(RelayError::Backend { reason: e.to_string(), before_client: true }),
        };
        match result {
            Ok(outcome) => {
                if outcome.error.is_some()
                    || outcome.status.is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_LAST_ROW_SENT))
                {
                    self.cursor = None;
                    self.state.untie(Tie::Cursor);
                }
                self.finish(conn, target, &outcome, &[], "", false);
                Ok(target)
            }
            Err(RelayError::Client(e)) => Err(client_gone(e)),
            Err(RelayError::Backend { reason, before_client }) => {
                self.lost_tied_connection();
                if before_client {
                    Err(ProxyError::Backend {
                        server: self.shared.pool.name(conn.server).into(),
                        reason,
                        retryable: false,
                    })
                } else {
                    Err(ProxyError::ClientGone(ConnError::Closed))
                }
            }
        }
    }
}

/// Whether a statement changes data (what `require_semisync` refuses and what read-your-writes
/// must wait for): writes, DDL, procedure calls, and reads with side effects.
fn changes_data(stmt: &Statement, reason: Reason) -> bool {
    match stmt.kind() {
        StatementKind::Insert
        | StatementKind::Update
        | StatementKind::Delete
        | StatementKind::Replace
        | StatementKind::Load
        | StatementKind::Ddl
        | StatementKind::Call
        | StatementKind::Compound
        | StatementKind::Execute
        | StatementKind::Unknown => true,
        // A read kind writes only through a sequence, a file or a user function; a locking read
        // or a user variable changes no data.
        _ => {
            matches!(reason, Reason::Sequence | Reason::SelectInto | Reason::UserFunction)
                && !stmt.assigns_user_variables()
        }
    }
}

/// True when `sql` begins with `keyword` (after white space), as a whole word.
fn starts_with_keyword(sql: &str, keyword: &str) -> bool {
    let t = sql.trim_start().as_bytes();
    t.len() >= keyword.len()
        && t[..keyword.len()].eq_ignore_ascii_case(keyword.as_bytes())
        && t.get(keyword.len()).is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_')
}

/// Queues COM_STMT_CLOSE (no response) for a backend statement; it goes out with the next
/// command on that connection.
fn close_backend_stmt(conn: &mut BackendConn, id: u32) {
    conn.stream.queue(0, &rewrite_id(&[Command::COM_STMT_CLOSE as u8, 0, 0, 0, 0], id));
}

/// Checks the client's credentials; switches it to mysql_native_password first if it used
/// another plugin. Returns whether it passed and the next sequence id.
async fn verify(
    client: &mut PacketStream,
    login: &ClientLogin,
    cred: &Credential,
    nonce: &[u8; 20],
    seq: u8,
    t: Timeouts,
) -> Result<(bool, u8), ConnError> {
    let native = login.plugin.as_deref().is_none_or(|p| p == handshake::NATIVE_PASSWORD);
    if native {
        return Ok((cred.verify_native(nonce, &login.auth_response), seq));
    }
    client.send(seq, &handshake::auth_switch_payload(nonce), t.handshake).await?;
    let (s, resp) = client.read_packet(1 << 16, t.handshake).await?;
    Ok((cred.verify_native(nonce, &resp), s.wrapping_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_prefix() {
        assert!(starts_with_keyword("  KILL 5", "kill"));
        assert!(starts_with_keyword("kill query 5", "kill"));
        assert!(!starts_with_keyword("killer()", "kill"));
        assert!(!starts_with_keyword("SELECT 1", "kill"));
        assert!(starts_with_keyword("kill", "kill"));
    }
}

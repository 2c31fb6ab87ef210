//! Running one statement: choosing the target server, taking a connection (the tied one, the
//! previous one, or a pooled one brought to the session's state), sending the command,
//! relaying the response, and then learning what it changed and keeping or returning the
//! connection. Reads that fail before any byte reached the client are retried once, on another
//! replica or else the writer; writes never are.

use super::*;

/// How long a session's reads avoid a replica whose causal wait timed out (it lagged behind
/// the session's last write); then it may be chosen again.
pub(super) const AVOID_BEHIND: Duration = Duration::from_secs(1);

/// What to send for one statement; the retry loop may send it more than once (reads only).
pub(super) enum Job<'a> {
    /// A command forwarded as the client sent it.
    Forward { payload: &'a [u8], expect: Expect },
    /// COM_STMT_PREPARE: forward, then map the backend's id to `client_id`.
    Prepare { payload: &'a [u8], sql: Arc<str>, client_id: u32 },
    /// COM_STMT_EXECUTE of a client statement, with its parsed head.
    Execute { payload: &'a [u8], head: ExecuteHead<'a>, client_id: u32 },
}

impl Session {
    /// Routes, runs and relays one statement, with one transparent retry for reads that fail
    /// before any byte reached the client.
    pub(super) async fn statement(
        &mut self,
        route: Route,
        reason: Reason,
        statement: Option<&Statement>,
        job: Job<'_>,
        effects: &[Effect],
        sql: &str,
    ) -> Result<Target, ProxyError> {
        let writes = statement.is_some_and(|s| changes_data(s, reason));
        if writes {
            self.check_semisync()?;
        }
        let signal;
        let job = if self.state.read_only_transaction && statement.is_some_and(|s| s.kind().is_dml_write()) {
            // The master refuses it (1792) before it looks at the tables; the replica running
            // the transaction would refuse it for another reason (read_only, 1290). The
            // replica raises the master's error instead, so that SHOW WARNINGS and the
            // transaction state are what they would be on the master.
            signal = read_only_transaction_signal();
            Job::Forward { payload: &signal, expect: Expect::Query }
        } else {
            job
        };
        let mut route = route;
        self.failed_read_server = None;
        let read = route == Route::Replica && !self.state.is_tied();
        let mut retried = false;
        let mut writer_deadline = None;
        loop {
            let (target, _pass) = self.target_for_statement(route, &mut writer_deadline).await?;
            if route == Route::Replica {
                self.shared.note_read_target(&target);
            }
            let from_previous = self.held.as_ref().is_some_and(|h| h.server == target.server())
                || self.pinned.as_ref().is_some_and(|p| p.server == target.server());
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
                    tracing::warn!(session = self.id, error = %e, "read failed before reaching the client; retrying elsewhere");
                    retried = true;
                    // Another replica if there is one, else the writer (the routing policy's
                    // fallback).
                    self.failed_read_server = Some(target.server());
                    continue;
                }
                Err(e) => {
                    if matches!(e, ProxyError::Backend { .. }) {
                        self.shared.metrics.backend_error(target.server());
                    }
                    if e.retryable() && matches!(target, Target::Writer(_)) && !self.state.is_tied() {
                        // Nothing was sent: the writer is unreachable (dying, or being
                        // replaced). Wait for the monitor to name one, within writer_wait_ms.
                        let mut topology_changes = self.shared.topology.subscribe();
                        let mut hold_changes = self.shared.writes.subscribe();
                        drop(_pass);
                        if self.wait_for_writer(&mut writer_deadline, &mut topology_changes, &mut hold_changes).await {
                            continue;
                        }
                    }
                    return Err(e);
                }
            };
            if let Target::Replica(i) = target {
                if !self.causally_ready(&mut conn, i).await {
                    // The replica has not applied what this session must see: the writer has.
                    // It lags: the session's reads move to another replica from the next one.
                    self.shared.metrics.causal_fallbacks.inc();
                    self.behind_server = Some((i, Instant::now()));
                    if self.read_server == Some(i) {
                        self.shared.move_read_session(self.read_server.take(), None);
                    }
                    self.keep_or_release(conn);
                    route = Route::Master;
                    continue;
                }
            }
            if self.consistency != Consistency::None && !matches!(target, Target::Replica(_)) {
                self.track_gtids(&mut conn).await;
            }
            if reason == Reason::LastInsertId {
                self.bring_last_insert_id(&mut conn).await?;
            }
            if route == Route::Previous && !from_previous {
                // The previous statement's connection is gone: whatever this one's last
                // statement left (another session's, maybe) must not be shown. A statement that
                // changes nothing clears it, as the session's previous statement would have.
                self.clear_diagnostics(&mut conn).await?;
            }
            let running_on = (conn.server, conn.hello.connection_id);
            self.registration.entry.update(|a| a.running_on = Some(running_on));
            let result = self.run_job(&mut conn, &job).await;
            self.registration.entry.update(|a| a.running_on = None);
            if self.registration.entry.take_kill_in_flight() && !self.state.is_tied() {
                // Another session's KILL for this connection may land after the statement: the
                // connection must serve nobody else. (A tied connection stays with this session.)
                conn.state = None;
                conn.discard = true;
            }
            match result {
                Ok((outcome, changes)) => {
                    self.shared.metrics.routed(&target, reason);
                    if !matches!(target, Target::Replica(_)) {
                        // Before the client sees the end of the response: a read it sends
                        // next, on any connection, must already find the new GTID. Also after
                        // an error: the statements of a multi-statement before the failing one
                        // have committed.
                        self.learn_gtid(&mut conn, writes, effects, &outcome, changes.as_ref()).await;
                    }
                    if outcome.error.is_none() && outcome.last_insert_id != 0 {
                        self.last_insert_id = outcome.last_insert_id;
                        self.last_insert_id_on = Some((conn.server, conn.hello.connection_id));
                    }
                    self.note_untracked_changes(effects, &outcome, changes.as_ref());
                    self.finish(conn, target, &outcome, effects, sql);
                    // The end of the response is still queued: it goes out when the session
                    // next waits for its client (`Session::run`), after all bookkeeping, so
                    // the client woken by it does not interrupt this thread half way.
                    return Ok(target);
                }
                Err(RelayError::Client(e)) => {
                    // The statement may still be running for nobody.
                    self.shared.pool.kill_query(conn.server, conn.hello.connection_id);
                    return Err(client_gone(e));
                }
                Err(RelayError::Backend { cause, detail: why, before_client }) => {
                    self.shared.metrics.backend_error(target.server());
                    if cause == BackendCause::Timeout {
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
                    if matches!(cause, BackendCause::Closed) {
                        // The server closed or reset an open connection: it may be dying.
                        self.shared.pool.mark_unreachable(target.server());
                    }
                    if read && !retried && !was_tied {
                        self.shared.metrics.read_retries.inc();
                        tracing::warn!(session = self.id, server = self.shared.pool.name(target.server()), error = %why, "read failed before reaching the client; retrying elsewhere");
                        retried = true;
                        self.failed_read_server = Some(target.server());
                        if !matches!(target, Target::Replica(_)) {
                            route = Route::Master;
                        }
                        continue;
                    }
                    return Err(self.backend_error(&conn, cause, why, false));
                }
            }
        }
    }

    /// `routing.require_semisync`: refuse a write while the writer runs without semi-sync.
    pub(super) fn check_semisync(&self) -> Result<(), ProxyError> {
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

    pub(super) fn backend_error(
        &self,
        conn: &BackendConn,
        cause: BackendCause,
        detail: String,
        retryable: bool,
    ) -> ProxyError {
        ProxyError::Backend { server: self.shared.pool.name(conn.server).to_string(), cause, detail, retryable }
    }

    /// The session's tied connection died: everything bound to it is gone.
    pub(super) fn lost_tied_connection(&mut self) {
        self.pinned = None;
        self.cursor = None;
        self.state.in_transaction = false;
        self.state.read_only_transaction = false;
        self.state.autocommit = true;
        self.state.temp_tables.clear();
        self.state.ties.clear();
    }

    /// Runs a statement that leaves no warnings, errors or row count behind on `conn`. (This
    /// and the next are rare; their queries are boxed, out of every statement's future.)
    async fn clear_diagnostics(&mut self, conn: &mut BackendConn) -> Result<(), ProxyError> {
        match Box::pin(internal_query(conn, "DO 0", self.timeouts.backend_response)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.backend_error(conn, BackendCause::of(&e), e.to_string(), true)),
        }
    }

    /// LAST_INSERT_ID() answers from the connection that runs it: unless that is the
    /// connection whose insert set the session's value, the value is set there first.
    async fn bring_last_insert_id(&mut self, conn: &mut BackendConn) -> Result<(), ProxyError> {
        if self.last_insert_id_on == Some((conn.server, conn.hello.connection_id)) {
            return Ok(());
        }
        let sql = format!("SELECT LAST_INSERT_ID({})", self.last_insert_id);
        match Box::pin(internal_query(conn, &sql, self.timeouts.backend_response)).await {
            Ok((o, _)) if o.error.is_none() => {
                self.last_insert_id_on = Some((conn.server, conn.hello.connection_id));
                Ok(())
            }
            Ok(_) => Err(self.backend_error(conn, BackendCause::Refused, "setting LAST_INSERT_ID failed".into(), true)),
            Err(e) => Err(self.backend_error(conn, BackendCause::of(&e), e.to_string(), true)),
        }
    }

    /// Which server runs a statement with this route, and the statement's pass when that is
    /// the writer. While there is no writer, or while a switchover holds new writes, a
    /// statement for the writer waits for one, up to `routing.writer_wait_ms`; work already
    /// open on the writer (a transaction) is never held.
    pub(super) async fn target_for_statement(
        &mut self,
        route: Route,
        deadline: &mut Option<tokio::time::Instant>,
    ) -> Result<(Target, Option<WritePass>), ProxyError> {
        let mut changes: Option<(tokio::sync::watch::Receiver<u64>, tokio::sync::watch::Receiver<bool>)> = None;
        loop {
            let why = match self.choose_target(route) {
                Ok(t) if !matches!(t, Target::Writer(_) | Target::FallbackWriter(_)) => return Ok((t, None)),
                Ok(t) => {
                    let continuing = self.pinned.as_ref().is_some_and(|p| p.server == t.server());
                    match self.shared.writes.try_pass(continuing) {
                        Some(pass) => return Ok((t, Some(pass))),
                        None => "writes are held while the writer changes (switchover)",
                    }
                }
                Err(NoTarget::NoWriter) => "no writable server is known (all down, or none has read_only=OFF)",
                Err(e) => return Err(self.no_target(e)),
            };
            // Subscribed, then looked at once more before the first wait, so that a change
            // between the look above and the subscription is not missed; a statement that
            // has its target at once (nearly all) subscribes to nothing.
            let Some((topology_changes, hold_changes)) = changes.as_mut() else {
                changes = Some((self.shared.topology.subscribe(), self.shared.writes.subscribe()));
                continue;
            };
            if !self.wait_for_writer(deadline, topology_changes, hold_changes).await {
                self.shared.metrics.no_server_errors.inc();
                let waited = self.shared.config().routing.writer_wait_ms;
                return Err(ProxyError::NoServer(format!("{why}; waited {waited} ms (routing.writer_wait_ms)")));
            }
        }
    }

    /// Waits for the topology or the write hold to change, until the statement's deadline
    /// (set at its first wait). False when the deadline has passed.
    async fn wait_for_writer(
        &self,
        deadline: &mut Option<tokio::time::Instant>,
        topology_changes: &mut tokio::sync::watch::Receiver<u64>,
        hold_changes: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let wait = Duration::from_millis(self.shared.config().routing.writer_wait_ms);
        let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + wait);
        if tokio::time::Instant::now() >= until {
            return false;
        }
        // Also a short tick: a writer that refuses connections for a moment is tried again.
        let tick = tokio::time::Instant::now() + Duration::from_millis(250);
        tokio::select! {
            _ = topology_changes.changed() => {}
            _ = hold_changes.changed() => {}
            _ = tokio::time::sleep_until(until.min(tick)) => {}
        }
        true
    }

    pub(super) fn no_target(&self, e: NoTarget) -> ProxyError {
        self.shared.metrics.no_server_errors.inc();
        ProxyError::NoServer(
            match e {
                NoTarget::NoWriter => "no writable server is known (all down, or none has read_only=OFF)",
                NoTarget::NoReplica => "no replica is usable and routing.fallback_to_master is off",
            }
            .into(),
        )
    }

    /// Which server runs a statement with this route, now.
    pub(super) fn choose_target(&mut self, route: Route) -> Result<Target, NoTarget> {
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
        let policy = self.shared.policy();
        let load = |i: usize| self.shared.reading_sessions(i);
        let pool = &self.shared.pool;
        let failed = self.failed_read_server;
        let behind = self.behind_server.filter(|(_, at)| at.elapsed() < AVOID_BEHIND).map(|(i, _)| i);
        let avoid = |i: usize| Some(i) == failed || Some(i) == behind || pool.is_unreachable(i);
        let read = router::ReadChoice { tick, sticky: self.read_server, load: Some(&load), avoid: Some(&avoid) };
        let chosen = router::choose(route, &topology, policy, read);
        if let Ok(Target::Replica(i)) = chosen {
            if policy.read_affinity && self.read_server != Some(i) {
                self.shared.move_read_session(self.read_server, Some(i));
                self.read_server = Some(i);
            }
        }
        chosen
    }

    /// The connection for `target`: the pinned one if it is on that server, else one from the
    /// pool brought to the session's state.
    pub(super) async fn acquire(&mut self, target: Target) -> Result<Box<BackendConn>, ProxyError> {
        // A write must not go out on a connection the server already closed (it would fail
        // with no way to tell whether it ran); a read that fails so is retried anyway.
        let probe = matches!(target, Target::Writer(_));
        if let Some(mut held) = self.held.take() {
            if held.server == target.server() {
                if !probe || held.stream.is_idle_and_open() {
                    self.sync(&mut held).await?;
                    return Ok(held);
                }
                // Closed by the server (it died, or restarted): dropped, not pooled.
                drop(held);
            } else {
                self.shared.pool.release(held);
            }
        }
        if self.pinned.as_ref().is_some_and(|p| p.server == target.server()) {
            if let Some(p) = self.pinned.take() {
                return Ok(p);
            }
        }
        let fp = self.state.fingerprint();
        let mut conn = self.shared.pool.lease(target.server(), self.key, fp, probe).await?;
        if self.state.schema.is_none() && conn.schema.is_some() {
            // No command leaves a schema: take a connection that never entered one.
            drop(conn);
            // Boxed: rare, and connecting is a large future (see `Pool::get`).
            conn = Box::pin(self.shared.pool.open(target.server(), self.key)).await?;
        }
        self.sync(&mut conn).await?;
        Ok(conn)
    }

    /// Sends the job's command(s) and relays the response; returns the outcome and what the
    /// response's OK packets said changed in the session (see `relay`).
    pub(super) async fn run_job(
        &mut self,
        conn: &mut BackendConn,
        job: &Job<'_>,
    ) -> Result<(Outcome, Option<StateChanges>), RelayError> {
        let bt = self.timeouts.backend_response;
        let backend_err = |e: ConnError| RelayError::from_conn(&e, true);
        match job {
            Job::Forward { payload, expect } => {
                conn.stream.send(0, payload, bt).await.map_err(backend_err)?;
                let (outcome, changes) =
                    relay(&mut self.client, conn, *expect, &self.timeouts, &self.registration.entry, None, false, None)
                        .await?;
                if payload.first() == Some(&(Command::COM_SET_OPTION as u8)) && outcome.error.is_none() {
                    // MYSQL_OPTION_MULTI_STATEMENTS_ON = 0, _OFF = 1 (the server refused others).
                    let on = payload.get(1..3) == Some(&[0, 0][..]);
                    conn.multi_statements = on;
                    self.state.multi_statements = on;
                }
                Ok((outcome, changes))
            }
            Job::Prepare { payload, sql, client_id } => {
                conn.stream.send(0, payload, bt).await.map_err(backend_err)?;
                // Cached metadata: the column definitions the client now holds.
                let mut metadata = self.key.cache_metadata.then(Metadata::default);
                let (outcome, changes) = relay(
                    &mut self.client,
                    conn,
                    Expect::Prepare,
                    &self.timeouts,
                    &self.registration.entry,
                    Some(*client_id),
                    false,
                    metadata.as_mut(),
                )
                .await?;
                let metadata = metadata.and_then(|m| m.sent);
                if let Some((backend_id, columns, params)) = outcome.prepared {
                    if let Some(old) = conn.stmt(sql).map(|s| s.id) {
                        close_backend_stmt(conn, old);
                    }
                    if let Some(evicted) = conn.remember_stmt(sql.clone(), backend_id) {
                        close_backend_stmt(conn, evicted);
                    }
                    if let Some(s) = conn.stmt(sql) {
                        s.metadata = metadata;
                    }
                    let statement = Arc::new(classifier::scan(sql));
                    self.stmts.insert(
                        *client_id,
                        ClientStmt {
                            sql: sql.clone(),
                            statement,
                            params,
                            columns,
                            types: None,
                            metadata,
                            long_data: Vec::new(),
                            long_data_bytes: 0,
                        },
                    );
                }
                Ok((outcome, changes))
            }
            Job::Execute { payload, head, client_id } => self.run_execute(conn, payload, head, *client_id).await,
        }
    }

    /// The server says session state changed in a way the classifier did not see (a stored
    /// procedure running USE or SET, say): only that connection has it now, so the session
    /// stays there. A change that is only the commit's GTID is not session state.
    pub(super) fn note_untracked_changes(
        &mut self,
        effects: &[Effect],
        outcome: &Outcome,
        changes: Option<&StateChanges>,
    ) {
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
    pub(super) fn finish(
        &mut self,
        mut conn: Box<BackendConn>,
        target: Target,
        outcome: &Outcome,
        effects: &[Effect],
        sql: &str,
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
        if self.state.schema.is_some() && conn.schema != self.state.schema {
            // Copied only when it changed: this runs after every statement.
            conn.schema.clone_from(&self.state.schema);
        }
        if conn.discard {
            return;
        }
        if !self.state.is_tied() && !self.state.holds_temp_tables() && !self.shared.pool.wanted(conn.server) {
            // What the statement left behind (ROW_COUNT(), FOUND_ROWS(), warnings, the
            // last insert id) is asked of this very connection: keep it until the next
            // statement shows whether it is needed.
            self.held = Some(conn);
            return;
        }
        self.keep_or_release(conn);
    }

    pub(super) fn keep_or_release(&mut self, conn: Box<BackendConn>) {
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
}

/// Whether a statement changes data (what `require_semisync` refuses and what read-your-writes
/// must wait for): writes, DDL, procedure calls, and reads with side effects.
/// COM_QUERY that makes a server raise the master's error for a write inside a read-only
/// transaction (ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, SQLSTATE 25006).
fn read_only_transaction_signal() -> Vec<u8> {
    let sql = "SIGNAL SQLSTATE '25006' SET MYSQL_ERRNO = 1792, \
               MESSAGE_TEXT = 'Cannot execute statement in a READ ONLY transaction'";
    command_payload(Command::COM_QUERY, sql.as_bytes())
}

pub(super) fn changes_data(stmt: &Statement, reason: Reason) -> bool {
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

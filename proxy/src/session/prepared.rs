//! Prepared statements and cursors as the client sees them. Clients get rwsplit's own statement
//! ids; each maps to the SQL text (and its classification), so the statement can be prepared
//! on whichever backend connection runs it. Backend ids live on the connections
//! (`BackendConn::stmts`); the packet rewriting is pure (`crate::protocol::stmt`).
//!
//! With MariaDB's cached metadata a server skips an execution's column definitions when they
//! equal those it last sent for the statement on its connection. The client holds what it last
//! received, from whichever connection: `ClientStmt::metadata` and `BackendStmt::metadata`
//! fingerprint both sides, and `run_execute` keeps them in step (prepares anew where they
//! differ; sends what a server skips that the client lacks, through `relay::Metadata`).

use super::*;

/// A statement the client prepared.
#[derive(Debug, Clone)]
pub struct ClientStmt {
    pub sql: Arc<str>,
    /// Scanned once at PREPARE; shared, not copied, by each EXECUTE.
    pub statement: Arc<Statement>,
    pub params: u16,
    pub columns: u16,
    /// Parameter types of the last EXECUTE that bound them (2 bytes per parameter).
    pub types: Option<Vec<u8>>,
    /// With MariaDB's cached metadata: fingerprint of the column definitions the client holds
    /// for the statement (the last it received, from PREPARE or an EXECUTE), `None` before
    /// any. A backend connection whose server holds other ones as sent would skip them when
    /// the client needs them: `run_execute` keeps the two in step.
    pub metadata: Option<u64>,
    /// COM_STMT_SEND_LONG_DATA payloads waiting for the next EXECUTE, in order.
    pub long_data: Vec<Bytes>,
    pub long_data_bytes: usize,
}

impl Session {
    pub(super) async fn prepare(&mut self, payload: &[u8]) -> Result<Target, ProxyError> {
        let cap = self.shared.config().proxy.max_prepared_statements;
        if self.stmts.len() >= cap as usize {
            return Err(ProxyError::TooManyPreparedStatements(cap));
        }
        let text = command_text(&payload[1..]);
        // CONNECTION_ID() answers the session's id wherever the statement is prepared.
        let rewritten = process::rewrite_connection_id(&text, self.id);
        let sql: Arc<str> = Arc::from(rewritten.as_deref().unwrap_or(&text));
        let rewritten_payload = rewritten.map(|t| command_payload(Command::COM_STMT_PREPARE, t.as_bytes()));
        let payload = rewritten_payload.as_deref().unwrap_or(payload);
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

    pub(super) async fn execute(&mut self, payload: &[u8]) -> Result<Target, ProxyError> {
        let id = stmt_id(payload).ok_or_else(|| ProxyError::ClientProtocol("short COM_STMT_EXECUTE".into()))?;
        let stmt = self.stmts.get_mut(&id).ok_or(ProxyError::UnknownStatement(id, "mysqld_stmt_execute"))?;
        // Parsed once; the head travels with the job.
        let head = parse_execute(payload, stmt.params)
            .ok_or_else(|| ProxyError::ClientProtocol("malformed COM_STMT_EXECUTE".into()))?;
        if let Some(t) = head.types {
            if stmt.types.as_deref() != Some(t) {
                stmt.types = Some(t.to_vec());
            }
        }
        let statement = stmt.statement.clone();
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
            Job::Execute { payload, head, client_id: id },
            &decision.effects,
            &sql,
        )
        .await
    }

    /// Prepares `sql` on `conn` without telling the client (the statement was prepared on
    /// another connection); returns the backend id and the payloads of the statement's column
    /// definitions (which the server now holds as sent).
    pub(super) async fn prepare_on(
        &mut self,
        conn: &mut BackendConn,
        sql: &Arc<str>,
    ) -> Result<Result<(u32, Vec<Vec<u8>>), Vec<u8>>, RelayError> {
        let p = command_payload(Command::COM_STMT_PREPARE, sql.as_bytes());
        let (o, err, definitions) = internal_prepare(conn, &p, self.timeouts.backend_response)
            .await
            .map_err(|e| RelayError::from_conn(&e, true))?;
        match (o.prepared, err) {
            (Some((id, _, _)), _) => {
                if let Some(evicted) = conn.remember_stmt(sql.clone(), id) {
                    close_backend_stmt(conn, evicted);
                }
                if let Some(s) = conn.stmt(sql) {
                    s.metadata =
                        (!definitions.is_empty()).then(|| metadata_fingerprint(definitions.iter().map(Vec::as_slice)));
                }
                Ok(Ok((id, definitions)))
            }
            (None, Some(e)) => Ok(Err(e)),
            (None, None) => Err(RelayError::Backend {
                cause: BackendCause::Protocol,
                detail: "re-prepare returned no statement".into(),
                before_client: true,
            }),
        }
    }

    /// COM_STMT_EXECUTE on `conn`: prepares the statement there first if that connection has
    /// not seen it, sends long data and the remembered parameter types, then relays.
    pub(super) async fn run_execute(
        &mut self,
        conn: &mut BackendConn,
        payload: &[u8],
        head: &ExecuteHead<'_>,
        client_id: u32,
    ) -> Result<(Outcome, Option<StateChanges>), RelayError> {
        let bt = self.timeouts.backend_response;
        let ct = self.timeouts.client_write;
        let backend_err = |e: ConnError| RelayError::from_conn(&e, true);
        let Some(stmt) = self.stmts.get(&client_id) else {
            return Err(RelayError::Backend {
                cause: BackendCause::Protocol,
                detail: "statement vanished".into(),
                before_client: true,
            });
        };
        let sql = stmt.sql.clone();
        let client_metadata = stmt.metadata;
        let call = stmt.statement.kind() == StatementKind::Call;
        // The parameter types the server must hold after this EXECUTE: those it carries, else
        // those the client bound earlier (it relies on the server remembering them).
        let wanted_types = head.types.or(stmt.types.as_deref());
        let no_types = wanted_types.is_none();
        // One lookup on the connection: its id for the statement, whether its server holds
        // those types, and the column definitions it holds as sent.
        let found = conn.stmt(&sql).map(|s| (s.id, no_types || s.types.as_deref() == wanted_types, s.metadata));
        let known = found.is_some();
        let (mut backend_id, mut types_held, backend_metadata) = found.unwrap_or((0, no_types, None));
        let mut fresh = None;
        // Cached metadata: the server skips the definitions when they equal those it last
        // sent on this connection, which must then be those the client holds (it may have
        // received others through another connection). If not, the statement is prepared
        // here anew; if even that leaves them apart, rwsplit sends the definitions the server
        // skips (`relay::Metadata::insert`).
        let stale =
            self.key.cache_metadata && known && backend_metadata.is_some() && backend_metadata != client_metadata;
        if !known || stale {
            if stale {
                close_backend_stmt(conn, backend_id);
                conn.stmts.remove(&sql);
            }
            // Boxed: the rare path (the statement is new to this connection), kept out of
            // every execute's future.
            match Box::pin(self.prepare_on(conn, &sql)).await? {
                Ok((id, definitions)) => {
                    (backend_id, types_held) = (id, no_types);
                    fresh = Some(definitions);
                }
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
            }
        }
        let mut metadata = self.key.cache_metadata.then(|| {
            let insert = fresh.filter(|d| {
                !d.is_empty() && Some(metadata_fingerprint(d.iter().map(Vec::as_slice))) != client_metadata
            });
            Metadata { call, insert, sent: None }
        });
        let Some(stmt) = self.stmts.get_mut(&client_id) else {
            return Err(RelayError::Backend {
                cause: BackendCause::Protocol,
                detail: "statement vanished".into(),
                before_client: true,
            });
        };
        for long in std::mem::take(&mut stmt.long_data) {
            // No response to COM_STMT_SEND_LONG_DATA; queued ahead of the EXECUTE.
            conn.stream.queue_patched(0, &long, 1, &backend_id.to_le_bytes());
        }
        stmt.long_data_bytes = 0;
        // The client relies on types sent with an earlier EXECUTE that this connection has
        // not seen: they are inserted. Nothing is copied when the server holds them already.
        let insert = match (&head.types, &stmt.types) {
            (None, Some(t)) if !types_held => Some(t.clone()),
            _ => None,
        };
        if !types_held {
            if let Some(s) = conn.stmt(&sql) {
                s.types = head.types.map(<[u8]>::to_vec).or_else(|| insert.clone());
            }
        }
        match insert {
            // The usual case: the packet as the client sent it, with the backend's statement
            // id patched in as it is copied into the write buffer.
            None => {
                conn.stream.queue_patched(0, payload, 1, &backend_id.to_le_bytes());
            }
            Some(types) => {
                conn.stream.queue(0, &rewrite_execute(payload, head, backend_id, Some(&types)));
            }
        }
        conn.stream.flush(bt).await.map_err(backend_err)?;
        let (outcome, changes) = relay(
            &mut self.client,
            conn,
            Expect::Query,
            &self.timeouts,
            &self.registration.entry,
            None,
            false,
            metadata.as_mut(),
        )
        .await?;
        if let Some(sent) = metadata.and_then(|m| m.sent) {
            // Both sides now hold these definitions.
            if let Some(s) = conn.stmt(&sql) {
                s.metadata = Some(sent);
            }
            if let Some(s) = self.stmts.get_mut(&client_id) {
                s.metadata = Some(sent);
            }
        }
        if head.flags & 0x07 != 0
            && outcome.status.is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS))
        {
            self.cursor = Some(client_id);
            self.state.tie(Tie::Cursor);
        }
        Ok((outcome, changes))
    }

    pub(super) fn send_long_data(&mut self, payload: Bytes) -> Result<(), ProxyError> {
        let id = stmt_id(&payload).ok_or_else(|| ProxyError::ClientProtocol("short COM_STMT_SEND_LONG_DATA".into()))?;
        let max = self.max_packet;
        // No response is sent for this command, errors included (the EXECUTE reports them).
        // Bounded per session: every statement's pending long data together.
        let pending: usize = self.stmts.values().map(|s| s.long_data_bytes).sum();
        if pending + payload.len() > max {
            return Err(ProxyError::ClientProtocol(format!(
                "long data pending for this session's statements exceeds proxy.max_packet_bytes ({max})"
            )));
        }
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

    pub(super) async fn close_stmt(&mut self, payload: &[u8]) {
        let Some(id) = stmt_id(payload) else { return };
        let Some(stmt) = self.stmts.remove(&id) else { return };
        if self.cursor == Some(id) {
            self.close_cursor(&stmt.sql).await;
        }
    }

    /// Closes the open cursor on the tied connection (COM_STMT_RESET ends it server-side).
    pub(super) async fn close_cursor(&mut self, sql: &str) {
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

    pub(super) async fn reset_stmt(&mut self, payload: &[u8]) -> Result<(), ProxyError> {
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

    pub(super) async fn fetch(&mut self, payload: &[u8]) -> Result<Target, ProxyError> {
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
            Ok(_) => relay(
                &mut self.client,
                &mut conn,
                Expect::Fetch,
                &self.timeouts,
                &self.registration.entry,
                None,
                true,
                None,
            )
            .await
            .map(|(o, _)| o),
            Err(e) => Err(RelayError::from_conn(&e, true)),
        };
        match result {
            Ok(outcome) => {
                if outcome.error.is_some()
                    || outcome.status.is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_LAST_ROW_SENT))
                {
                    self.cursor = None;
                    self.state.untie(Tie::Cursor);
                }
                self.finish(conn, target, &outcome, &[], "");
                Ok(target)
            }
            Err(RelayError::Client(e)) => Err(client_gone(e)),
            Err(RelayError::Backend { cause, detail, before_client }) => {
                self.lost_tied_connection();
                if before_client {
                    Err(ProxyError::Backend {
                        server: self.shared.pool.name(conn.server),
                        cause,
                        detail,
                        retryable: false,
                    })
                } else {
                    Err(ProxyError::ClientGone(ConnError::Closed))
                }
            }
        }
    }
}

/// Queues COM_STMT_CLOSE (no response) for a backend statement; it goes out with the next
/// command on that connection.
pub(super) fn close_backend_stmt(conn: &mut BackendConn, id: u32) {
    conn.stream.queue(0, &rewrite_id(&[Command::COM_STMT_CLOSE as u8, 0, 0, 0, 0], id));
}

//! One client command: what each command byte means, and the replies rwsplit gives itself
//! (OK to COM_PING and COM_RESET_CONNECTION, the status flags it reports).

use super::*;

impl Session {
    pub(super) async fn command(&mut self, payload: Bytes) -> Result<(), ProxyError> {
        let cmd = payload[0];
        let started = Instant::now();
        self.show_command(&payload, started);
        let target = match cmd {
            c if c == Command::COM_QUERY as u8 => {
                // Decoded once for the local answers, the rewrite and the classifier.
                let sql = command_text(payload.get(1..).unwrap_or_default());
                if self.answer_locally(&sql).await? {
                    return Ok(());
                }
                self.query(&payload, sql).await?
            }
            c if c == Command::COM_PING as u8 => {
                self.reply_ok().await?;
                return Ok(());
            }
            c if c == Command::COM_INIT_DB as u8 => {
                let db = command_text(&payload[1..]).into_owned();
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
                self.forward(&payload, Route::Replica, Reason::Read, Expect::FieldList).await?
            }
            c if c == Command::COM_STATISTICS as u8 => {
                self.forward(&payload, Route::Master, Reason::SessionCommand, Expect::Single).await?
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
                // Session state: run where the session is (the server answers as it does), then
                // applied to each connection that serves the session later (`sync`).
                self.forward(&payload, Route::Previous, Reason::SessionCommand, Expect::Single).await?
            }
            c if c == Command::COM_PROCESS_KILL as u8 => {
                self.process_kill(&payload).await?;
                return Ok(());
            }
            other => return Err(ProxyError::Unsupported(format!("command 0x{other:02x} is not supported by rwsplit"))),
        };
        self.shared.metrics.observe_latency(&target, started.elapsed().as_secs_f64());
        Ok(())
    }

    /// A command forwarded as the client sent it, with no effect on the session's state.
    async fn forward(
        &mut self,
        payload: &[u8],
        route: Route,
        reason: Reason,
        expect: Expect,
    ) -> Result<Target, ProxyError> {
        self.statement(route, reason, None, Job::Forward { payload, expect }, &[], "").await
    }

    pub(super) async fn reply_ok(&mut self) -> Result<(), ProxyError> {
        let status = self.status_flags();
        self.client.send(1, &ok_payload(status, ""), self.timeouts.client_write).await.map_err(client_gone)?;
        Ok(())
    }

    pub(super) fn status_flags(&self) -> StatusFlags {
        let mut s = StatusFlags::empty();
        if self.state.autocommit {
            s |= StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        }
        if self.state.in_transaction {
            s |= StatusFlags::SERVER_STATUS_IN_TRANS;
        }
        s
    }

    /// The statements about connection ids, which rwsplit answers itself (see `process`):
    /// KILL (passed on, it could end an unrelated server connection) and SHOW PROCESSLIST.
    /// True when the statement was one of them and has been answered.
    async fn answer_locally(&mut self, sql: &str) -> Result<bool, ProxyError> {
        if classifier::is_kill(sql) {
            match classifier::parse_kill(sql) {
                Some(kill) => self.kill(kill).await?,
                None => {
                    return Err(ProxyError::Unsupported(
                        "only KILL [QUERY | CONNECTION] <connection id> is supported through rwsplit".into(),
                    ))
                }
            }
            return Ok(true);
        }
        if let Some(full) = classifier::show_processlist(sql) {
            self.show_processlist(full).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// COM_QUERY; `sql`: its text ([`command_text`]).
    pub(super) async fn query(&mut self, payload: &[u8], sql: std::borrow::Cow<'_, str>) -> Result<Target, ProxyError> {
        let rewritten = process::rewrite_connection_id(&sql, self.id);
        let rewritten_payload = rewritten.as_ref().map(|t| command_payload(Command::COM_QUERY, t.as_bytes()));
        let (sql, payload): (std::borrow::Cow<'_, str>, &[u8]) = match (&rewritten, &rewritten_payload) {
            (Some(text), Some(p)) => (std::borrow::Cow::Borrowed(text.as_str()), p.as_slice()),
            _ => (sql, payload),
        };
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

    /// COM_RESET_CONNECTION / COM_CHANGE_USER: a fresh session state on the same client.
    pub(super) fn reset(&mut self, schema: Option<String>, collation: u8) {
        self.pinned = None;
        if let Some(held) = self.held.take() {
            // Nothing ties it to the session: the pool resets it before anyone else uses it.
            self.shared.pool.release(held);
        }
        self.last_insert_id = 0;
        self.last_insert_id_on = None;
        self.cursor = None;
        self.stmts.clear();
        self.last_target = None;
        let multi_statements = self.state.multi_statements;
        self.state = SessionState::new(collation, schema);
        // The server keeps the COM_SET_OPTION setting across a reset or change of user.
        self.state.multi_statements = multi_statements;
    }
}

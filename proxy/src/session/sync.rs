//! Bringing a backend connection to the session's state before it runs the session's
//! statement: COM_RESET_CONNECTION when another session left it in another state, then the
//! schema (COM_INIT_DB), the character set and the replayable SETs. A fingerprint comparison
//! skips all of it when the connection already matches.

use super::*;

impl Session {
    /// COM_INIT_DB on a connection synced to the session (a replica when one is usable:
    /// checking a schema needs no writer). On success the session and that connection are in
    /// `db`; otherwise the server's ERR payload is returned.
    pub(super) async fn use_schema(&mut self, db: String) -> Result<Option<Vec<u8>>, ProxyError> {
        // Any server will do; without a usable replica, the writer (whatever the read policy).
        let target = match self.choose_target(Route::Replica).or_else(|_| self.choose_target(Route::Master)) {
            Ok(t) => t,
            Err(e) => return Err(self.no_target(e)),
        };
        let mut conn = self.acquire(target).await?;
        let payload = command_payload(Command::COM_INIT_DB, db.as_bytes());
        let timeout = self.timeouts.backend_response;
        let (o, err) = internal(&mut conn, &payload, Expect::Single, timeout)
            .await
            .map_err(|e| self.backend_error(&conn, BackendCause::of(&e), e.to_string(), false))?;
        if o.error.is_none() {
            self.state.set_schema(Some(db.clone()));
            conn.schema = Some(db);
            conn.state = Some(self.state.fingerprint());
        }
        self.keep_or_release(conn);
        Ok(err)
    }

    /// Brings a connection to this session's state in one round trip: COM_RESET_CONNECTION
    /// when another state was left on it, the multi-statements option, the schema, then the
    /// character set and session variables — all sent at once, the answers read after.
    pub(super) async fn sync(&mut self, conn: &mut BackendConn) -> Result<(), ProxyError> {
        if conn.state == Some(self.state.fingerprint()) && conn.multi_statements == self.state.multi_statements {
            return Ok(());
        }
        // Boxed: the rare path, whose future (a batch of commands and their answers) would
        // otherwise be room in, and a copy of, every statement's future.
        Box::pin(self.replay_state(conn)).await
    }

    /// [`sync`](Self::sync) when the connection does not match.
    async fn replay_state(&mut self, conn: &mut BackendConn) -> Result<(), ProxyError> {
        let fp = self.state.fingerprint();
        let state_matches = conn.state == Some(fp);
        /// What each command of the batch is, for the error message and what it changes.
        enum Step {
            Reset,
            MultiStatements(bool),
            Schema,
            Replay,
        }
        let pristine = SessionState::pristine_fingerprint();
        let reset = !state_matches && conn.state.is_some() && conn.state != Some(pristine);
        let mut batch: Vec<(Vec<u8>, Expect)> = Vec::new();
        let mut steps = Vec::new();
        if reset {
            batch.push((vec![Command::COM_RESET_CONNECTION as u8], Expect::Single));
            steps.push(Step::Reset);
        }
        if conn.multi_statements != self.state.multi_statements {
            let on = self.state.multi_statements;
            // MYSQL_OPTION_MULTI_STATEMENTS_ON = 0, _OFF = 1 (COM_RESET_CONNECTION keeps it).
            let option: u16 = if on { 0 } else { 1 };
            batch.push((command_payload(Command::COM_SET_OPTION, &option.to_le_bytes()), Expect::Single));
            steps.push(Step::MultiStatements(on));
        }
        if !state_matches {
            if let Some(db) = &self.state.schema {
                batch.push((command_payload(Command::COM_INIT_DB, db.as_bytes()), Expect::Single));
                steps.push(Step::Schema);
            }
            for sql in self.state.replay() {
                batch.push((command_payload(Command::COM_QUERY, sql.as_bytes()), Expect::Query));
                steps.push(Step::Replay);
            }
        }
        let timeout = self.timeouts.backend_response;
        let answers = match internal_batch(conn, &batch, timeout).await {
            Ok(a) => a,
            Err(e) => {
                conn.state = None;
                return Err(self.backend_error(conn, BackendCause::of(&e), e.to_string(), true));
            }
        };
        let mut failed = None;
        for (step, (outcome, err)) in steps.iter().zip(&answers) {
            if outcome.error.is_some() {
                let why = err.as_deref().map(crate::protocol::packets::err_message).unwrap_or_default();
                let what = match step {
                    Step::Reset => "COM_RESET_CONNECTION",
                    Step::MultiStatements(_) => "COM_SET_OPTION",
                    Step::Schema => "USE",
                    Step::Replay => "replaying session state",
                };
                failed.get_or_insert(format!("{what}: {why}"));
                continue;
            }
            match step {
                Step::Reset => {
                    conn.forget_session();
                    self.shared.metrics.pool_resets.inc();
                }
                Step::MultiStatements(on) => conn.multi_statements = *on,
                Step::Schema => conn.schema = self.state.schema.clone(),
                Step::Replay => {}
            }
        }
        if let Some(why) = failed {
            // Part of the state may be applied: the connection's state is unknown.
            conn.state = None;
            return Err(self.backend_error(conn, BackendCause::Refused, why, true));
        }
        conn.state = Some(fp);
        Ok(())
    }
}

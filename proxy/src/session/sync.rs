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
        let target = self.target(Route::Replica).or_else(|_| self.target(Route::Master))?;
        let mut conn = self.acquire(target).await?;
        let mut payload = vec![Command::COM_INIT_DB as u8];
        payload.extend_from_slice(db.as_bytes());
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

    /// Brings a pooled connection to this session's state: reset it unless it is pristine,
    /// then replay schema, character set and session variables.
    pub(super) async fn sync(&mut self, conn: &mut BackendConn) -> Result<(), ProxyError> {
        if conn.multi_statements != self.state.multi_statements {
            self.set_multi_statements(conn).await?;
        }
        let fp = self.state.fingerprint();
        if conn.state == Some(fp) {
            return Ok(());
        }
        let timeout = self.timeouts.backend_response;
        let name = self.shared.pool.name(conn.server).to_string();
        let fail = |cause: BackendCause, detail: String| ProxyError::Backend {
            server: name.clone(),
            cause,
            detail,
            retryable: true,
        };
        let io = |e: ConnError| fail(BackendCause::of(&e), e.to_string());
        let pristine = SessionState::pristine_fingerprint();
        if conn.state != Some(pristine) && conn.state.is_some() {
            let (o, err) =
                internal(conn, &[Command::COM_RESET_CONNECTION as u8], Expect::Single, timeout).await.map_err(io)?;
            if o.error.is_some() {
                return Err(fail(
                    BackendCause::Refused,
                    format!(
                        "COM_RESET_CONNECTION failed: {}",
                        err.map(|e| crate::protocol::packets::err_message(&e)).unwrap_or_default()
                    ),
                ));
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
            let (o, err) = internal(conn, &p, Expect::Single, timeout).await.map_err(io)?;
            if o.error.is_some() {
                return Err(fail(
                    BackendCause::Refused,
                    format!("USE {db}: {}", err.map(|e| crate::protocol::packets::err_message(&e)).unwrap_or_default()),
                ));
            }
            conn.schema = Some(db.clone());
        }
        for sql in self.state.replay() {
            let mut p = vec![Command::COM_QUERY as u8];
            p.extend_from_slice(sql.as_bytes());
            let (o, err) = internal(conn, &p, Expect::Query, timeout).await.map_err(io)?;
            if o.error.is_some() {
                conn.state = None;
                return Err(fail(
                    BackendCause::Refused,
                    format!(
                        "replaying session state: {}",
                        err.map(|e| crate::protocol::packets::err_message(&e)).unwrap_or_default()
                    ),
                ));
            }
        }
        conn.state = Some(fp);
        Ok(())
    }

    /// COM_SET_OPTION on `conn` so that it takes multi-statements as the session does.
    async fn set_multi_statements(&mut self, conn: &mut BackendConn) -> Result<(), ProxyError> {
        let on = self.state.multi_statements;
        let option: u16 = if on { 0 } else { 1 }; // MYSQL_OPTION_MULTI_STATEMENTS_ON / _OFF
        let mut p = vec![Command::COM_SET_OPTION as u8];
        p.extend_from_slice(&option.to_le_bytes());
        match internal(conn, &p, Expect::Single, self.timeouts.backend_response).await {
            Ok((o, _)) if o.error.is_none() => {
                conn.multi_statements = on;
                Ok(())
            }
            Ok(_) => Err(self.backend_error(conn, BackendCause::Refused, "COM_SET_OPTION refused".into(), true)),
            Err(e) => Err(self.backend_error(conn, BackendCause::of(&e), e.to_string(), true)),
        }
    }
}

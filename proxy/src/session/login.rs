//! Logging a client in: the greeting, authentication against rwsplit's own users (with an
//! auth switch to mysql_native_password when the client used another plugin), the schema
//! named at login, and COM_CHANGE_USER, which is a login on an open connection.

use super::*;

impl Session {
    /// The connection phase. Returns the session, or `None` when the client was refused
    /// (after an ERR).
    pub(super) async fn handshake(
        shared: Arc<Shared>,
        mut client: PacketStream,
        peer: String,
    ) -> Result<Option<Session>, ConnError> {
        let config = shared.config();
        let timeouts = Timeouts::from_config(&config);
        let id = shared.next_session_id();
        let nonce = handshake::new_nonce();
        let mut offered = offered_capabilities();
        // MariaDB's extended metadata, when the servers are MariaDB: the greeting then leaves
        // CLIENT_MYSQL (CLIENT_LONG_PASSWORD) out, as a MariaDB server's does.
        let offered_mariadb = if shared.server_version.contains("MariaDB") {
            offered.remove(CapabilityFlags::CLIENT_LONG_PASSWORD);
            // Only what the servers have (a backend connection without a capability its
            // client has fails rather than answer in another format): extended metadata
            // came with MariaDB 10.5, cached metadata with 10.6.
            let mut m = offered_mariadb_capabilities();
            let version = mariadb_version(&shared.server_version);
            if version.is_some_and(|v| v < (10, 6)) {
                m.remove(MariadbCapabilities::MARIADB_CLIENT_CACHE_METADATA);
            }
            if version.is_some_and(|v| v < (10, 5)) {
                m.remove(MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA);
            }
            m
        } else {
            MariadbCapabilities::empty()
        };
        if shared.tls.is_some() {
            offered |= CapabilityFlags::CLIENT_SSL;
        }
        client
            .send(
                0,
                &handshake::greeting_payload(&shared.server_version, id, &nonce, offered, offered_mariadb),
                timeouts.handshake,
            )
            .await?;
        let (mut seq, mut payload) = client.read_packet(1 << 16, timeouts.handshake).await?;
        let mut parsed = parse_handshake_response(&payload, offered, offered_mariadb);
        if let (Err(LoginError::TlsRequested), Some(acceptor)) = (&parsed, &shared.tls) {
            // SSLRequest: TLS first, then the real handshake response over it.
            client = client.into_tls(&acceptor.0, timeouts.handshake).await?;
            (seq, payload) = client.read_packet(1 << 16, timeouts.handshake).await?;
            parsed = parse_handshake_response(&payload, offered, offered_mariadb);
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
        let registration = shared.sessions.register(id, peer.clone(), login.user.clone(), None);
        let mut session = Session {
            id,
            shared: shared.clone(),
            client,
            peer,
            registration,
            user: login.user.clone(),
            nonce,
            key: ResponseFormat::of_client(login.capabilities, login.mariadb_capabilities),
            login_collation: login.collation,
            state: SessionState::new(login.collation, None),
            pinned: None,
            held: None,
            last_insert_id: 0,
            last_insert_id_on: None,
            stmts: HashMap::default(),
            next_stmt: 1,
            cursor: None,
            last_target: None,
            read_tick: u64::from(id),
            read_server: None,
            failed_read_server: None,
            behind_server: None,
            consistency: shared.consistency(&login.user),
            causal_gtid: None,
            caught_up: 0,
            caught_up_gtid: String::new(),
            txn_wrote: false,
            timeouts,
            max_packet: config.proxy.max_packet_bytes as usize,
        };
        session.state.multi_statements = session.key.contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS);
        if !session.enter_schema(login.schema.clone(), next).await? {
            return Ok(None);
        }
        session.show_idle();
        tracing::debug!(session = id, user = %session.user, "client logged in");
        Ok(Some(session))
    }

    /// Sets the schema asked for at login, then sends the final OK. A schema the backend
    /// account is known to have (`crate::schemas`) costs no round trip; any other is checked
    /// on a backend so that an unknown database gets the server's own error. False when the
    /// client was refused.
    pub(super) async fn enter_schema(&mut self, schema: Option<String>, seq: u8) -> Result<bool, ConnError> {
        if let Some(db) = schema.as_ref().filter(|db| self.shared.schemas.contains(db)) {
            // The first statement's connection enters it.
            self.state.set_schema(Some(db.clone()));
        } else if let Some(db) = schema {
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

    pub(super) async fn change_user(&mut self, payload: &[u8]) -> Result<(), ProxyError> {
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
        self.user = user.clone();
        self.registration.entry.update(|a| a.user = user);
        self.login_collation = collation;
        self.reset(None, collation);
        match self.enter_schema(schema, seq).await {
            Ok(true) => Ok(()),
            _ => Err(ProxyError::ClientGone(ConnError::Closed)),
        }
    }
}

/// Checks the client's credentials; switches it to mysql_native_password first if it used
/// another plugin. Returns whether it passed and the next sequence id.
pub(super) async fn verify(
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

/// MariaDB's (major, minor) version from a version string as servers announce it
/// ("5.5.5-10.11.6-MariaDB-log", "10.11.6-MariaDB").
fn mariadb_version(announced: &str) -> Option<(u32, u32)> {
    let v = announced.strip_prefix("5.5.5-").unwrap_or(announced);
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::mariadb_version;

    #[test]
    fn mariadb_versions_are_read_past_the_old_client_prefix() {
        assert_eq!(mariadb_version("5.5.5-10.11.19-MariaDB-0+deb12u1-rwsplit"), Some((10, 11)));
        assert_eq!(mariadb_version("10.5.2-MariaDB"), Some((10, 5)));
        assert_eq!(mariadb_version("11.4.2-MariaDB-log"), Some((11, 4)));
        assert_eq!(mariadb_version("MariaDB"), None);
    }
}

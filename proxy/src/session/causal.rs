//! Read-your-writes (`routing.consistency`): learning the GTID of the session's writes on the
//! writer (from the OK packet's session tracking, or one query), and before a read on a
//! replica, making sure that replica has applied it (waiting briefly), else sending the read
//! to the writer. The pure parts (GTID text, wait queries) are in `crate::consistency`.
//!
//! The queries are boxed: they run on few statements, and every statement's future would
//! otherwise carry (and copy) room for them.

use super::*;

impl Session {
    /// The GTID a read must see under the session's consistency policy.
    pub(super) fn required_gtid(&self) -> Option<String> {
        match self.consistency {
            Consistency::None => None,
            Consistency::Causal => self.causal_gtid.clone(),
            Consistency::CausalGlobal => Some(self.shared.latest_gtid.get()).filter(|g| !g.is_empty()),
        }
    }

    /// Whether replica `server` (on `conn`) has applied what the session must see, waiting
    /// up to `routing.causal_timeout_ms` for it.
    pub(super) async fn causally_ready(&mut self, conn: &mut BackendConn, server: usize) -> bool {
        let Some(gtid) = self.required_gtid() else { return true };
        if gtid != self.caught_up_gtid {
            self.caught_up_gtid = gtid.clone();
            self.caught_up = 0;
        }
        let bit = 1u64.checked_shl(server as u32).unwrap_or(0);
        if self.caught_up & bit != 0 || self.shared.applied_gtids.covers(server, &gtid) {
            return true;
        }
        // The monitor's last look at the server is a lower bound of what it has applied.
        let seen = self.shared.topology.load().servers.get(server).and_then(|s| s.gtid_position.clone());
        if let Some(seen) = seen {
            self.shared.applied_gtids.record(server, &seen);
            if self.shared.applied_gtids.covers(server, &gtid) {
                return true;
            }
        }
        let timeout = std::time::Duration::from_millis(self.shared.config().routing.causal_timeout_ms);
        let Some(query) = Flavor::of(&conn.hello.version).wait_query(&gtid, timeout) else { return false };
        match Box::pin(internal_value(conn, &query, self.timeouts.backend_response.max(timeout * 2))).await {
            Ok(Some(v)) if v.trim() == "0" => {
                self.caught_up |= bit;
                self.shared.applied_gtids.record(server, &gtid);
                true
            }
            _ => false,
        }
    }

    /// After a statement on the writer: when it committed a write (autocommit, COMMIT of a
    /// transaction that wrote, or DDL), learn the GTID position that covers it.
    pub(super) async fn learn_gtid(
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
        // An ERR carries no status flags: the transaction state is then as it was.
        let in_trans = outcome
            .status
            .map(|s| s.contains(StatusFlags::SERVER_STATUS_IN_TRANS))
            .unwrap_or(self.state.in_transaction);
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
        if conn.gtid_tracking {
            // Tracking reports every commit (in a multi-statement, those before an error too):
            // none came, so nothing was committed — an UPDATE that changed no row, a failed
            // statement. No query either: it would clear the ROW_COUNT() and warnings the
            // client may ask for next.
            return;
        }
        match Box::pin(internal_value(conn, flavor.last_gtid_query(), self.timeouts.backend_response)).await {
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
    pub(super) async fn track_gtids(&mut self, conn: &mut BackendConn) {
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
        if let Ok((o, _)) = Box::pin(internal_query(conn, sql, self.timeouts.backend_response)).await {
            conn.gtid_tracking = o.error.is_none();
        }
    }
}

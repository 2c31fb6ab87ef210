//! One connection id per session, everywhere. The id in rwsplit's handshake is the session's
//! identity: `CONNECTION_ID()` returns it (the call is replaced by that number, typed as the
//! server types the function), `KILL [QUERY | CONNECTION] id` and COM_PROCESS_KILL act on the
//! session with that id (stopping its statement on whichever backend connection runs it), and
//! `SHOW [FULL] PROCESSLIST` lists rwsplit's sessions under those ids. The servers' own ids
//! never reach clients through these paths, so a client can never end an unrelated connection.

use super::*;
use crate::classifier::Kill;
use crate::protocol::resultset::{
    result_set, ColumnDef, BINARY, BINARY_COLLATION, NOT_NULL, NUM, TYPE_DOUBLE, TYPE_LONG, TYPE_LONGLONG,
    TYPE_VAR_STRING, UTF8MB3_GENERAL_CI,
};
use crate::sessions::SessionEntry;

/// Longest statement text SHOW PROCESSLIST shows without FULL (the server's limit).
const INFO_CHARS: usize = 100;

impl Session {
    /// `KILL [QUERY | CONNECTION] id`, with the server's errors for an unknown id (1094) and
    /// another user's session (1095). Killing one's own session answers as the server does:
    /// 1317 for KILL QUERY, 1927 and the end of the connection for KILL CONNECTION.
    pub(super) async fn kill(&mut self, kill: Kill) -> Result<(), ProxyError> {
        if kill.id == u64::from(self.id) {
            return Err(if kill.query_only { ProxyError::QueryInterrupted } else { ProxyError::ConnectionKilled });
        }
        let entry = u32::try_from(kill.id)
            .ok()
            .and_then(|id| self.shared.sessions.get(id))
            .ok_or(ProxyError::UnknownThread(kill.id))?;
        if entry.activity().user != self.user {
            return Err(ProxyError::NotThreadOwner(kill.id));
        }
        self.stop(&entry, kill.query_only).await;
        self.reply_ok().await
    }

    /// COM_PROCESS_KILL: KILL CONNECTION of the 4-byte id it carries.
    pub(super) async fn process_kill(&mut self, payload: &[u8]) -> Result<(), ProxyError> {
        let id = payload
            .get(1..5)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| ProxyError::ClientProtocol("short COM_PROCESS_KILL".into()))?;
        self.kill(Kill { query_only: false, id: u64::from(id) }).await
    }

    /// Stops what `entry`'s session runs on a server (bounded by the connect timeout twice over)
    /// and, for KILL CONNECTION, tells the session to end.
    async fn stop(&self, entry: &SessionEntry, query_only: bool) {
        if !query_only {
            entry.kill();
        }
        if let Some((server, connection_id)) = entry.activity().running_on {
            // The backend connection must not serve anyone else before the KILL lands there.
            entry.mark_kill_in_flight();
            self.shared.pool.kill(server, connection_id, query_only).await;
        }
    }

    /// `SHOW [FULL] PROCESSLIST`: rwsplit's sessions, in the server's columns and types.
    pub(super) async fn show_processlist(&mut self, full: bool) -> Result<(), ProxyError> {
        let now = Instant::now();
        let rows: Vec<Vec<Option<String>>> = self
            .shared
            .sessions
            .list()
            .iter()
            .map(|e| {
                let a = e.activity();
                let own = e.id == self.id;
                let info = if own {
                    Some(if full { "SHOW FULL PROCESSLIST" } else { "SHOW PROCESSLIST" }.to_string())
                } else {
                    a.statement.as_ref().map(|s| {
                        let text = command_text(s.get(1..).unwrap_or_default());
                        if full {
                            text.into_owned()
                        } else {
                            text.chars().take(INFO_CHARS).collect()
                        }
                    })
                };
                let command = if own { "Query" } else { a.command };
                vec![
                    Some(e.id.to_string()),
                    Some(a.user),
                    Some(e.host.clone()),
                    a.schema,
                    Some(command.to_string()),
                    Some(now.duration_since(a.since).as_secs().to_string()),
                    Some(if own || a.statement.is_some() { "executing" } else { "" }.to_string()),
                    info,
                    Some("0.000".to_string()),
                ]
            })
            .collect();
        let columns = processlist_columns(full);
        for (i, p) in result_set(&columns, &rows, self.key, self.status_flags()).iter().enumerate() {
            self.client.queue((i + 1) as u8, p);
        }
        self.client.flush(self.timeouts.client_write).await.map_err(client_gone)
    }
}

/// The columns MariaDB sends for SHOW [FULL] PROCESSLIST (types, lengths, flags, collations).
fn processlist_columns(full: bool) -> [ColumnDef; 9] {
    let text = |name, length, flags| ColumnDef {
        name,
        column_type: TYPE_VAR_STRING,
        collation: UTF8MB3_GENERAL_CI,
        length,
        flags,
        decimals: 39,
    };
    let number = |name, column_type, length, decimals| ColumnDef {
        name,
        column_type,
        collation: BINARY_COLLATION,
        length,
        flags: NOT_NULL | BINARY | NUM,
        decimals,
    };
    [
        number("Id", TYPE_LONGLONG, 11, 0),
        text("User", 384, NOT_NULL),
        text("Host", 192, NOT_NULL),
        text("db", 192, 0),
        text("Command", 48, NOT_NULL),
        number("Time", TYPE_LONG, 7, 0),
        text("State", 90, 0),
        text("Info", if full { 603_979_776 } else { 300 }, 0),
        number("Progress", TYPE_DOUBLE, 7, 3),
    ]
}

/// `sql` with every `CONNECTION_ID()` call replaced by the session's id, as an expression the
/// server types exactly like the function (INT UNSIGNED NOT NULL, display length 10: a
/// ten-digit literal cast to UNSIGNED). A call that is a whole select item keeps its column
/// name through an alias. `None` when the text has no such call.
pub(super) fn rewrite_connection_id(sql: &str, id: u32) -> Option<String> {
    let calls = classifier::connection_id_calls(sql);
    if calls.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + calls.len() * 48);
    let mut at = 0;
    for call in calls {
        let (Some(before), Some(text)) = (sql.get(at..call.start), sql.get(call.clone())) else { return None };
        out.push_str(before);
        out.push_str(&format!("CAST({id:010} AS UNSIGNED)"));
        if is_bare_select_item(sql, call.start, call.end) && !text.contains('`') {
            out.push_str(&format!(" AS `{text}`"));
        }
        at = call.end;
    }
    out.push_str(sql.get(at..)?);
    Some(out)
}

/// Whether the expression at `start..end` is a whole item of the top-level select list without
/// an alias: preceded by SELECT (or a comma outside parentheses) and followed by a comma, FROM,
/// the end of the text or another clause. Only then does the server name the column after the
/// expression's text.
fn is_bare_select_item(sql: &str, start: usize, end: usize) -> bool {
    let before = sql.get(..start).unwrap_or_default().trim_end();
    let after = sql.get(end..).unwrap_or_default().trim_start();
    let depth = before.bytes().fold(0i32, |d, b| match b {
        b'(' => d + 1,
        b')' => d - 1,
        _ => d,
    });
    let prev_word = before.rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '_').next().unwrap_or_default();
    let starts_item =
        prev_word.eq_ignore_ascii_case("select") || (before.ends_with(',') && depth == 0 && before_is_select(before));
    let next_word: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let ends_item = after.is_empty()
        || after.starts_with(',') && depth == 0
        || after.starts_with(';')
        || ["from", "into", "where", "group", "having", "order", "limit", "union", "for", "lock", "window"]
            .iter()
            .any(|k| next_word.eq_ignore_ascii_case(k));
    starts_item && ends_item && (depth == 0 || prev_word.eq_ignore_ascii_case("select"))
}

fn before_is_select(before: &str) -> bool {
    before.trim_start().get(..6).is_some_and(|w| w.eq_ignore_ascii_case("select"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_id_is_replaced_and_keeps_its_column_name() {
        assert_eq!(
            rewrite_connection_id("SELECT CONNECTION_ID()", 42).unwrap(),
            "SELECT CAST(0000000042 AS UNSIGNED) AS `CONNECTION_ID()`"
        );
        assert_eq!(
            rewrite_connection_id("select connection_id(), 1", 7).unwrap(),
            "select CAST(0000000007 AS UNSIGNED) AS `connection_id()`, 1"
        );
        assert_eq!(
            rewrite_connection_id("SELECT 1, CONNECTION_ID() FROM t", 7).unwrap(),
            "SELECT 1, CAST(0000000007 AS UNSIGNED) AS `CONNECTION_ID()` FROM t"
        );
        // Not a bare item: no alias (it would be a syntax error or rename nothing).
        assert_eq!(
            rewrite_connection_id("SELECT CONNECTION_ID() AS me", 7).unwrap(),
            "SELECT CAST(0000000007 AS UNSIGNED) AS me"
        );
        assert_eq!(
            rewrite_connection_id("SELECT * FROM t WHERE id IN (1, CONNECTION_ID(), 3)", 7).unwrap(),
            "SELECT * FROM t WHERE id IN (1, CAST(0000000007 AS UNSIGNED), 3)"
        );
        assert_eq!(
            rewrite_connection_id("SELECT CONNECTION_ID() + 1", 7).unwrap(),
            "SELECT CAST(0000000007 AS UNSIGNED) + 1"
        );
        assert_eq!(
            rewrite_connection_id("SELECT IS_USED_LOCK('l') = CONNECTION_ID()", 4_000_000_000).unwrap(),
            "SELECT IS_USED_LOCK('l') = CAST(4000000000 AS UNSIGNED)"
        );
        assert_eq!(rewrite_connection_id("SELECT 'CONNECTION_ID()'", 7), None);
        assert_eq!(rewrite_connection_id("SELECT 1", 7), None);
    }

    #[test]
    fn processlist_columns_follow_the_server() {
        let c = processlist_columns(false);
        assert_eq!(
            c.iter().map(|c| c.name).collect::<Vec<_>>(),
            ["Id", "User", "Host", "db", "Command", "Time", "State", "Info", "Progress"]
        );
        assert_eq!(c[7].length, 300);
        assert_eq!(processlist_columns(true)[7].length, 603_979_776);
    }
}

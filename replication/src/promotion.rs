//! The IO of a promotion: the statements that demote a writer, wait for a replica to catch
//! up, promote it and repoint the others (MariaDB GTID replication). Each step is one short
//! connection as the monitor user, bounded by the connect timeout and the step's own limit.
//! The order of the steps, and when to run them, is the caller's (`rwsplit`'s switchover and
//! failover); which server to promote is [`crate::election`]'s.

use crate::probe::{connect, exec, query, split_address};
use crate::Error;
use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::Conn;
use rwsplit_config::{MonitorConfig, Secret};
use std::time::Duration;

/// The name of the server-side lock every rwsplit node takes on a failover candidate.
pub const FAILOVER_LOCK: &str = "rwsplit_failover";

/// Runs promotion steps as the monitor user.
#[derive(Debug, Clone)]
pub struct Promoter {
    user: String,
    password: Secret,
    replication_user: String,
    replication_password: Secret,
    connect_timeout: Duration,
    /// Bound of one step's statements (not of the waits, which take their own).
    step_timeout: Duration,
    /// TLS towards the servers that use it, by address.
    tls: Vec<(String, crate::ServerTls)>,
}

impl Promoter {
    pub fn new(c: &MonitorConfig) -> Promoter {
        Promoter {
            user: c.user.clone(),
            password: c.password.clone(),
            replication_user: c.replication_user.clone(),
            replication_password: c.replication_password.clone(),
            connect_timeout: Duration::from_millis(c.connect_timeout_ms),
            step_timeout: Duration::from_millis(c.check_timeout_ms.max(1_000) * 5),
            tls: Vec::new(),
        }
    }

    /// Reaches these servers (by address) over TLS with their files; others over plain TCP.
    pub fn with_tls(mut self, tls: Vec<(String, crate::ServerTls)>) -> Promoter {
        self.tls = tls;
        self
    }

    async fn conn(&self, address: &str) -> Result<Conn, Error> {
        let (host, port) = split_address(address);
        let tls = self.tls.iter().find(|(a, _)| a == address).map(|(_, t)| t);
        connect(&host, port, &self.user, &self.password, tls, self.connect_timeout).await
    }

    /// Runs `statements` in order on one connection, within the step timeout.
    async fn run(&self, address: &str, what: &'static str, statements: &[String]) -> Result<(), Error> {
        let work = async {
            let mut conn = self.conn(address).await?;
            for sql in statements {
                exec(&mut conn, sql, what).await?;
            }
            let _ = conn.disconnect().await;
            Ok(())
        };
        tokio::time::timeout(self.step_timeout, work)
            .await
            .map_err(|_| Error::Timeout { what, after: self.step_timeout })?
    }

    /// `SET GLOBAL read_only`: ON stops new writes (and waits for commits in progress).
    pub async fn set_read_only(&self, address: &str, on: bool) -> Result<(), Error> {
        let sql = format!("SET GLOBAL read_only = {}", if on { "ON" } else { "OFF" });
        self.run(address, "SET GLOBAL read_only", &[sql]).await
    }

    /// The first column of the first row of `sql` on the server at `address` (`None`: no row or
    /// NULL), within the step timeout.
    async fn value<T: FromValue + Send + 'static>(
        &self,
        address: &str,
        what: &'static str,
        sql: &str,
    ) -> Result<Option<T>, Error> {
        let work = async {
            let mut conn = self.conn(address).await?;
            let v: Option<Option<T>> = conn.query_first(sql).await.map_err(|e| Error::query(what, e))?;
            let _ = conn.disconnect().await;
            Ok(v.flatten())
        };
        tokio::time::timeout(self.step_timeout, work)
            .await
            .map_err(|_| Error::Timeout { what, after: self.step_timeout })?
    }

    /// The server's `@@gtid_binlog_pos`: the last transaction it wrote to its binary log, per
    /// domain.
    pub async fn binlog_position(&self, address: &str) -> Result<String, Error> {
        let pos = self.value(address, "SELECT @@gtid_binlog_pos", "SELECT @@gtid_binlog_pos").await?;
        Ok(pos.unwrap_or_default())
    }

    /// Waits until the replica at `address` has applied `position` (`MASTER_GTID_WAIT`), at most
    /// `limit`.
    pub async fn wait_applied(&self, address: &str, position: &str, limit: Duration) -> Result<(), Error> {
        const WHAT: &str = "MASTER_GTID_WAIT";
        if position.trim().is_empty() {
            return Ok(());
        }
        let work = async {
            let mut conn = self.conn(address).await?;
            let sql = format!("SELECT MASTER_GTID_WAIT('{}', {:.3})", escape(position), limit.as_secs_f64());
            let r: Option<i64> = conn.query_first(sql).await.map_err(|e| Error::query(WHAT, e))?;
            let _ = conn.disconnect().await;
            match r {
                Some(0) => Ok(()),
                _ => Err(Error::Timeout { what: WHAT, after: limit }),
            }
        };
        tokio::time::timeout(limit + self.step_timeout, work)
            .await
            .map_err(|_| Error::Timeout { what: WHAT, after: limit })?
    }

    /// Failover: waits until the replica at `address` has applied everything it received
    /// (its relay log, up to `Gtid_IO_Pos`), at most `limit`.
    pub async fn apply_relay_log(&self, address: &str, limit: Duration) -> Result<(), Error> {
        const WHAT: &str = "SHOW SLAVE STATUS";
        let received = async {
            let mut conn = self.conn(address).await?;
            let rows = query(&mut conn, "SHOW SLAVE STATUS", WHAT).await?;
            let _ = conn.disconnect().await;
            Ok::<_, Error>(rows.first().and_then(|f| f.text(&["gtid_io_pos"])).unwrap_or_default())
        };
        let received = tokio::time::timeout(self.step_timeout, received)
            .await
            .map_err(|_| Error::Timeout { what: WHAT, after: self.step_timeout })??;
        self.wait_applied(address, &received, limit).await
    }

    /// Makes the server at `address` the writer: replication stopped and forgotten,
    /// `read_only=OFF`, semi-sync source side on when `semisync`.
    ///
    /// If a statement fails before replication was forgotten (a missing privilege, say), the
    /// replica is started again so that it is left as it was.
    pub async fn promote(&self, address: &str, semisync: bool) -> Result<(), Error> {
        self.run(address, "STOP SLAVE", &["STOP SLAVE".to_string()]).await?;
        if let Err(e) = self.run(address, "RESET SLAVE ALL", &["RESET SLAVE ALL".to_string()]).await {
            let _ = self.run(address, "START SLAVE", &["START SLAVE".to_string()]).await;
            return Err(e);
        }
        let mut sql = Vec::new();
        if semisync {
            sql.push("SET GLOBAL rpl_semi_sync_master_enabled = ON".to_string());
        }
        sql.push("SET GLOBAL read_only = OFF".into());
        self.run(address, "SET GLOBAL read_only = OFF", &sql).await
    }

    /// Makes the server at `address` (`read_only=ON` first) replicate from `writer` with GTID
    /// (`MASTER_USE_GTID=slave_pos`), semi-sync replica side on when `semisync`. A former
    /// writer (`was_writer`) starts from its own binary log position: what it wrote itself is
    /// not in its `gtid_slave_pos`.
    pub async fn replicate_from(
        &self,
        address: &str,
        writer: &str,
        was_writer: bool,
        semisync: bool,
    ) -> Result<(), Error> {
        let (host, port) = split_address(writer);
        let mut sql = vec!["SET GLOBAL read_only = ON".to_string(), "STOP SLAVE".to_string()];
        if was_writer {
            sql.push("SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos".into());
        }
        if semisync {
            sql.push("SET GLOBAL rpl_semi_sync_master_enabled = OFF".into());
            sql.push("SET GLOBAL rpl_semi_sync_slave_enabled = ON".into());
        }
        sql.push(format!(
            "CHANGE MASTER TO MASTER_HOST = '{}', MASTER_PORT = {port}, MASTER_USER = '{}', MASTER_PASSWORD = '{}', \
             MASTER_USE_GTID = slave_pos",
            escape(&host),
            escape(&self.replication_user),
            escape(self.replication_password.expose()),
        ));
        sql.push("START SLAVE".into());
        self.run(address, "repoint", &sql).await
    }

    /// Takes [`FAILOVER_LOCK`] on the server at `address` without waiting; the returned
    /// connection holds it until dropped. `None`: another node holds it.
    pub async fn lock(&self, address: &str) -> Result<Option<Conn>, Error> {
        const WHAT: &str = "GET_LOCK";
        let work = async {
            let mut conn = self.conn(address).await?;
            let got: Option<i64> = conn
                .query_first(format!("SELECT GET_LOCK('{FAILOVER_LOCK}', 0)"))
                .await
                .map_err(|e| Error::query(WHAT, e))?;
            Ok(if got == Some(1) { Some(conn) } else { None })
        };
        tokio::time::timeout(self.step_timeout, work)
            .await
            .map_err(|_| Error::Timeout { what: WHAT, after: self.step_timeout })?
    }

    /// Whether the server at `address` has `read_only=OFF` now (read fresh, not from a
    /// snapshot): under the lock, the last check before promoting it.
    pub async fn is_writable(&self, address: &str) -> Result<bool, Error> {
        let ro: Option<i64> = self.value(address, "SELECT @@read_only", "SELECT @@read_only").await?;
        Ok(ro == Some(0))
    }

    /// The server's `@@gtid_binlog_state` (one GTID per domain and server id).
    pub async fn binlog_state(&self, address: &str) -> Result<String, Error> {
        let state = self.value(address, "SELECT @@gtid_binlog_state", "SELECT @@gtid_binlog_state").await?;
        Ok(state.unwrap_or_default())
    }
}

/// Escapes a value for a single-quoted SQL string literal.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped() {
        assert_eq!(escape(r"a'b\c"), r"a\'b\\c");
    }
}

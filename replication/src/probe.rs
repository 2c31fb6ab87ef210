//! The IO edge: one persistent mysql_async connection per server, logged in as the monitor
//! user, and the statements of one check. Everything here turns into an [`Observation`] or an
//! [`Error`]; the decisions are the tracker's.
//!
//! Every await is bounded: connecting by `connect_timeout_ms`, the statements of a check
//! together by `check_timeout_ms`. A connection that timed out or broke is dropped (mysql_async
//! closes it in the background) and a new one is opened at the next check: reusing a connection
//! whose last statement's answer was never read would desynchronise it.

use crate::status::{Fields, ReplicaSemiSync, ReplicaStatus, SemiSyncMaster, Version};
use crate::tracker::{HeartbeatRead, HeartbeatWrite, Observation};
use crate::Error;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the monitor asks of one check besides the usual statements.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckPlan {
    /// Heartbeat row id, when the heartbeat is on.
    pub heartbeat_id: Option<u32>,
    /// This server is the current writer: write the heartbeat (if it is still `read_only=OFF`).
    pub is_writer: bool,
    /// The last heartbeat value written, so the next is strictly greater.
    pub last_heartbeat_us: Option<i64>,
}

/// One server's connection and what is cached about it per connection.
pub(crate) struct Probe {
    host: String,
    port: u16,
    user: String,
    password: rwsplit_config::Secret,
    connect_timeout: Duration,
    check_timeout: Duration,
    /// TLS towards this server, when on.
    tls: Option<crate::ServerTls>,
    conn: Option<Conn>,
    /// `@@version` of the server behind `conn` (a new connection may reach an upgraded server).
    version: Option<Version>,
    /// The heartbeat table was created over this connection.
    heartbeat_ready: bool,
}

impl std::fmt::Debug for Probe {
    // By hand, so no future field can leak the password (Secret redacts anyway).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Probe {
    pub(crate) fn new(address: &str, config: &rwsplit_config::MonitorConfig) -> Probe {
        let (host, port) = split_address(address);
        Probe {
            host,
            port,
            user: config.user.clone(),
            password: config.password.clone(),
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            check_timeout: Duration::from_millis(config.check_timeout_ms),
            tls: None,
            conn: None,
            version: None,
            heartbeat_ready: false,
        }
    }

    /// Connects over TLS from now on (`None`: plain TCP).
    pub(crate) fn set_tls(&mut self, tls: Option<crate::ServerTls>) {
        self.tls = tls;
        self.conn = None;
    }

    /// One check. On any error that may have left the connection in an unknown state, the
    /// connection is dropped.
    pub(crate) async fn check(&mut self, plan: CheckPlan) -> Result<Observation, Error> {
        if self.conn.is_none() {
            let conn =
                connect(&self.host, self.port, &self.user, &self.password, self.tls.as_ref(), self.connect_timeout)
                    .await?;
            self.conn = Some(conn);
            self.version = None;
            self.heartbeat_ready = false;
        }
        let timeout = self.check_timeout;
        let mut result = match tokio::time::timeout(timeout, self.run(plan)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout { what: "check", after: timeout }),
        };
        if let Err(e) = &result {
            if e.breaks_connection() {
                self.conn = None;
            }
        }
        // The heartbeat write comes after the check, under its own timeout, and cannot fail
        // it: with semi-sync on and no replica acknowledging, a commit waits up to
        // rpl_semi_sync_master_timeout (10 s by default on MySQL), and that wait must not make
        // a healthy writer look down.
        if let (Ok(obs), Some(id)) = (&mut result, plan.heartbeat_id) {
            if plan.is_writer && !obs.read_only {
                match tokio::time::timeout(timeout, self.write_heartbeat(id, plan.last_heartbeat_us)).await {
                    Ok(Ok(w)) => obs.heartbeat_written = Some(w),
                    Ok(Err(e)) => {
                        if e.breaks_connection() {
                            self.conn = None;
                        }
                        obs.heartbeat_error = Some(e.to_string());
                    }
                    Err(_) => {
                        // The statement's answer never came: the connection is out of step.
                        self.conn = None;
                        obs.heartbeat_error = Some(format!(
                            "heartbeat write timed out after {} ms (waiting for a semi-sync acknowledgement?)",
                            timeout.as_millis()
                        ));
                    }
                }
            }
        }
        result
    }

    /// Closes the connection politely (bounded), for shutdown.
    pub(crate) async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_millis(500), conn.disconnect()).await;
        }
    }

    async fn run(&mut self, plan: CheckPlan) -> Result<Observation, Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::Unexpected { what: "check", detail: "no connection".into() });
        };
        let version = match &self.version {
            Some(v) => v.clone(),
            None => {
                let rows = query(conn, "SELECT @@version", "SELECT @@version").await?;
                let text = rows.first().and_then(|r| r.text(&["@@version"])).unwrap_or_default();
                let v = Version::parse(&text).ok_or_else(|| Error::Unexpected {
                    what: "SELECT @@version",
                    detail: format!("unreadable version {text:?}"),
                })?;
                self.version = Some(v.clone());
                v
            }
        };
        let vars_sql = match version.flavor {
            crate::status::Flavor::MariaDb => {
                "SELECT @@global.read_only AS read_only, @@server_id AS server_id, @@version AS version, \
                 @@global.gtid_current_pos AS gtid_position, @@global.gtid_binlog_state AS gtid_binlog_state"
            }
            // gtid_executed exists from 5.6; server_uuid too.
            crate::status::Flavor::MySql => {
                "SELECT @@global.read_only AS read_only, @@server_id AS server_id, @@version AS version, \
                 @@global.gtid_executed AS gtid_position, @@server_uuid AS server_uuid"
            }
        };
        let vars = query(conn, vars_sql, "SELECT @@read_only").await?;
        let vars = vars.into_iter().next().unwrap_or_default();
        let read_only = vars
            .flag(&["read_only"])
            .ok_or_else(|| Error::Unexpected { what: "SELECT @@read_only", detail: "no read_only value".into() })?;
        let stmt = version.replica_status_statement();
        let replica_rows = query(conn, stmt, stmt).await?;
        let replica = ReplicaStatus::pick(&replica_rows);
        let status = variables(conn, "SHOW GLOBAL STATUS LIKE 'Rpl\\_semi\\_sync\\_%'", "SHOW STATUS").await?;
        let semisync_vars =
            variables(conn, "SHOW GLOBAL VARIABLES LIKE 'rpl\\_semi\\_sync\\_%'", "SHOW VARIABLES").await?;
        let mut obs = Observation {
            version: Version::parse(&vars.text(&["version"]).unwrap_or_default()).or(Some(version)),
            read_only,
            server_id: vars.u64(&["server_id"]).and_then(|v| u32::try_from(v).ok()),
            server_uuid: vars.text(&["server_uuid"]),
            gtid_position: vars.text(&["gtid_position"]).map(|s| s.split_whitespace().collect()),
            gtid_binlog_state: vars.text(&["gtid_binlog_state"]).map(|s| s.split_whitespace().collect()),
            replica,
            semisync_master: SemiSyncMaster::from_fields(&status, &semisync_vars),
            semisync_replica: ReplicaSemiSync::from_status(&status),
            heartbeat_read: None,
            heartbeat_written: None,
            heartbeat_error: None,
        };
        if let Some(id) = plan.heartbeat_id {
            // (The writer's heartbeat write happens in `check`, after this.)
            if read_only {
                match self.read_heartbeat(id).await {
                    Ok(r) => obs.heartbeat_read = Some(r),
                    Err(e) if e.breaks_connection() => return Err(e),
                    Err(e) => obs.heartbeat_error = Some(e.to_string()),
                }
            }
        }
        Ok(obs)
    }

    async fn write_heartbeat(&mut self, id: u32, last: Option<i64>) -> Result<HeartbeatWrite, Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::Unexpected { what: "heartbeat", detail: "no connection".into() });
        };
        if !self.heartbeat_ready {
            exec(conn, "CREATE DATABASE IF NOT EXISTS rwsplit", "heartbeat CREATE DATABASE").await?;
            exec(
                conn,
                "CREATE TABLE IF NOT EXISTS rwsplit.heartbeat (id INT UNSIGNED NOT NULL PRIMARY KEY, \
                 ts BIGINT NOT NULL COMMENT 'rwsplit monitor clock, microseconds since the Unix epoch') ENGINE=InnoDB",
                "heartbeat CREATE TABLE",
            )
            .await?;
            self.heartbeat_ready = true;
        }
        let value_us = now_us().max(last.map_or(i64::MIN, |l| l.saturating_add(1)));
        // Values are numbers we produced: formatting them into the statement is safe.
        exec(conn, &format!("REPLACE INTO rwsplit.heartbeat (id, ts) VALUES ({id}, {value_us})"), "heartbeat REPLACE")
            .await?;
        Ok(HeartbeatWrite { value_us, committed_at_us: now_us() })
    }

    async fn read_heartbeat(&mut self, id: u32) -> Result<HeartbeatRead, Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::Unexpected { what: "heartbeat", detail: "no connection".into() });
        };
        let read_at_us = now_us();
        let rows =
            query(conn, &format!("SELECT ts FROM rwsplit.heartbeat WHERE id = {id}"), "heartbeat SELECT").await?;
        let seen_us = rows.first().and_then(|r| r.get(&["ts"])).and_then(|v| v.trim().parse::<i64>().ok());
        Ok(HeartbeatRead { seen_us, read_at_us })
    }
}

/// Monitor wall clock, µs since the Unix epoch.
pub(crate) fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// `host:port`, `[v6]:port` or a bare host (port 3306).
/// Logs in to `host:port` over TCP (TLS on it with `tls`: required, the server's certificate
/// verified for `host`), within `timeout`.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    user: &str,
    password: &rwsplit_config::Secret,
    tls: Option<&crate::ServerTls>,
    timeout: Duration,
) -> Result<Conn, Error> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some(user.to_string()))
        .pass(Some(password.expose().to_string()))
        // The monitor checks the address it was given, not a Unix socket it might find.
        .prefer_socket(false)
        .stmt_cache_size(0)
        .tcp_nodelay(true)
        .ssl_opts(tls.map(crate::ServerTls::ssl_opts));
    tokio::time::timeout(timeout, Conn::new(opts))
        .await
        .map_err(|_| Error::Timeout { what: "connect", after: timeout })?
        .map_err(Error::connect)
}

pub(crate) fn split_address(address: &str) -> (String, u16) {
    match address.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => {
            let host = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(h);
            (host.to_string(), p.parse().unwrap_or(3306))
        }
        _ => (address.to_string(), 3306),
    }
}

/// Runs a statement and returns its rows as [`Fields`].
pub(crate) async fn query(conn: &mut Conn, sql: &str, what: &'static str) -> Result<Vec<Fields>, Error> {
    let rows: Vec<Row> = conn.query(sql).await.map_err(|e| Error::query(what, e))?;
    Ok(rows.iter().map(row_fields).collect())
}

/// Runs a statement whose result does not matter.
pub(crate) async fn exec(conn: &mut Conn, sql: &str, what: &'static str) -> Result<(), Error> {
    conn.query_drop(sql).await.map_err(|e| Error::query(what, e))
}

/// A `Variable_name`/`Value` listing as one [`Fields`].
async fn variables(conn: &mut Conn, sql: &str, what: &'static str) -> Result<Fields, Error> {
    let rows = query(conn, sql, what).await?;
    Ok(Fields::from_variables(
        rows.iter()
            .filter_map(|r| Some((r.get(&["Variable_name"])?.to_string(), r.get(&["Value"]).map(str::to_string)))),
    ))
}

/// A row as column name → text value. The text protocol sends every value as bytes; other
/// variants are formatted anyway so an unusual driver path cannot make a check fail.
fn row_fields(row: &Row) -> Fields {
    let columns = row.columns_ref();
    Fields::from_pairs(columns.iter().enumerate().map(|(i, c)| {
        let v = match row.as_ref(i) {
            None | Some(Value::NULL) => None,
            Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Some(Value::Int(n)) => Some(n.to_string()),
            Some(Value::UInt(n)) => Some(n.to_string()),
            Some(Value::Float(f)) => Some(f.to_string()),
            Some(Value::Double(f)) => Some(f.to_string()),
            Some(other) => Some(other.as_sql(true)),
        };
        (c.name_str().into_owned(), v)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(split_address("127.0.0.1:3307"), ("127.0.0.1".into(), 3307));
        assert_eq!(split_address("[::1]:3308"), ("::1".into(), 3308));
        assert_eq!(split_address("db.example.com"), ("db.example.com".into(), 3306));
        assert_eq!(split_address("db:notaport"), ("db".into(), 3306));
    }

    #[test]
    fn debug_hides_the_password() {
        let cfg = rwsplit_config::MonitorConfig {
            user: "mon".into(),
            password: rwsplit_config::Secret::new("s3cr3t"),
            ..Default::default()
        };
        let p = Probe::new("127.0.0.1:1", &cfg);
        assert!(!format!("{p:?}").contains("s3cr3t"));
    }
}

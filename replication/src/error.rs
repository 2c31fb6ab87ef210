//! The crate's one error type. Every failure a check can meet is one of these, and each says
//! whether trying again on the next interval can help (`retryable`): a refused connection or a
//! timeout can heal by itself, a denied login or a missing privilege needs an operator.
//!
//! Messages never contain the monitor password: they are built from server error texts
//! (which name the user, never the password) and our own wording.

use std::time::Duration;

/// What went wrong while checking a server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The TCP connection or the login failed.
    #[error("connect failed: {message}")]
    Connect {
        message: String,
        /// Server error code when the server answered (e.g. 1045 access denied).
        code: Option<u16>,
        retryable: bool,
    },
    /// A statement of the check failed.
    #[error("{what} failed: {message}")]
    Query {
        /// Which step of the check (e.g. `SHOW SLAVE STATUS`), never values.
        what: &'static str,
        message: String,
        code: Option<u16>,
        retryable: bool,
    },
    /// Connecting or the whole check took longer than allowed.
    #[error("{what} timed out after {} ms", .after.as_millis())]
    Timeout { what: &'static str, after: Duration },
    /// The server answered something a check cannot use (missing column, odd value).
    #[error("unexpected answer to {what}: {detail}")]
    Unexpected { what: &'static str, detail: String },
    /// The notify command could not run or did not finish in time.
    #[error("notify command: {0}")]
    Notify(String),
}

impl Error {
    /// True when the same check may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { retryable, .. } | Error::Query { retryable, .. } => *retryable,
            Error::Timeout { .. } => true,
            Error::Unexpected { .. } => true,
            Error::Notify(_) => true,
        }
    }

    /// True when a connection that met this error must not be used again.
    pub(crate) fn breaks_connection(&self) -> bool {
        match self {
            // The server answered with an error packet: the connection is still in step.
            Error::Query { code: Some(_), .. } | Error::Unexpected { .. } | Error::Notify(_) => false,
            Error::Query { code: None, .. } | Error::Connect { .. } | Error::Timeout { .. } => true,
        }
    }

    /// Maps a connect-time mysql_async error.
    pub(crate) fn connect(e: mysql_async::Error) -> Error {
        let (message, code) = describe(&e);
        Error::Connect { retryable: code.is_none_or(|c| !is_config_error(c)), message, code }
    }

    /// Maps a mysql_async error met by the statement `what`.
    pub(crate) fn query(what: &'static str, e: mysql_async::Error) -> Error {
        let (message, code) = describe(&e);
        // A server error (privilege, syntax) repeats until someone acts; a broken connection is
        // retried over a new one.
        let retryable = match code {
            Some(c) => !is_config_error(c) && !matches!(c, 1064 | 1142 | 1227 | 1193 | 1146 | 1049),
            None => true,
        };
        Error::Query { what, message, code, retryable }
    }
}

/// Server error codes that mean the monitor's own configuration or grants are wrong.
fn is_config_error(code: u16) -> bool {
    // 1044 db access denied, 1045 access denied, 1227 missing privilege, 1251 auth plugin,
    // 1129 host blocked, 1130 host not allowed, 1698 access denied (socket auth).
    matches!(code, 1044 | 1045 | 1227 | 1251 | 1129 | 1130 | 1698)
}

/// A short description of a mysql_async error and its server code, if any. mysql_async's own
/// Display adds prefixes and backquotes that only make log lines longer.
fn describe(e: &mysql_async::Error) -> (String, Option<u16>) {
    match e {
        mysql_async::Error::Server(s) => (format!("ERROR {} ({}): {}", s.code, s.state, s.message), Some(s.code)),
        mysql_async::Error::Io(io) => (io.to_string(), None),
        mysql_async::Error::Driver(d) => (d.to_string(), None),
        // URL errors cannot happen (options are built, not parsed) but would echo the URL, which
        // can carry the password: say nothing about it.
        mysql_async::Error::Url(_) => ("invalid connection options".to_string(), None),
        mysql_async::Error::Other(o) => (o.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let denied = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1045,
            message: "Access denied for user 'mon'@'localhost' (using password: YES)".into(),
            state: "28000".into(),
        });
        let e = Error::connect(denied);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("1045"));
        let t = Error::Timeout { what: "check", after: Duration::from_millis(1500) };
        assert!(t.is_retryable());
        assert_eq!(t.to_string(), "check timed out after 1500 ms");
        let gone = mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed);
        let q = Error::query("SHOW SLAVE STATUS", gone);
        assert!(q.is_retryable() && q.breaks_connection());
        let priv_err = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1227,
            message: "Access denied; you need (at least one of) the SLAVE MONITOR privilege(s)".into(),
            state: "42000".into(),
        });
        let q = Error::query("SHOW SLAVE STATUS", priv_err);
        assert!(!q.is_retryable() && !q.breaks_connection());
    }
}

//! The proxy's one error type. Each variant says whose fault it is ([`Side`]) and whether the
//! statement could be retried elsewhere; [`ProxyError::err_packet`] is the single place where
//! an rwsplit error becomes a MySQL ERR packet. Errors the servers send are relayed as they
//! are and never pass through here. Messages never contain passwords.

use crate::protocol::connection::ConnError;
use crate::protocol::packets::err_payload;

/// Why a backend failed, typed so that callers decide on it without reading messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendCause {
    /// No answer within the timeout (connecting, or waiting for a response).
    Timeout,
    /// The server would not take the connection or command: the connection limit, a failed
    /// login, an ERR to one of rwsplit's own commands (state replay, reset).
    Refused,
    /// The connection closed or its socket failed.
    Closed,
    /// The server sent something that is not valid protocol where it was.
    Protocol,
}

impl BackendCause {
    /// The cause of a socket-level failure.
    pub fn of(e: &ConnError) -> Self {
        match e {
            ConnError::Timeout(_) => BackendCause::Timeout,
            ConnError::Closed | ConnError::Io(_) => BackendCause::Closed,
            ConnError::TooLarge(_) => BackendCause::Protocol,
        }
    }
}

/// Who caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Backend,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The client went away or its socket failed; nothing can be sent to it.
    #[error("client connection: {0}")]
    ClientGone(ConnError),
    /// The client sent something that is not valid protocol.
    #[error("malformed packet from client: {0}")]
    ClientProtocol(String),
    #[error("Access denied for user '{user}'")]
    AccessDenied { user: String },
    #[error("{0}")]
    Unsupported(String),
    /// The client named a prepared statement it does not have.
    #[error("Unknown prepared statement handler ({0}) given to {1}")]
    UnknownStatement(u32, &'static str),
    #[error("Too many connections")]
    TooManyConnections,
    /// `proxy.require_tls` and the client did not switch to TLS.
    #[error("Connections using insecure transport are prohibited (proxy.require_tls)")]
    InsecureTransport,
    /// A backend could not be reached, failed or timed out. `retryable` is true when no byte
    /// of the response has reached the client and the statement is safe to run elsewhere.
    #[error("server {server}: {detail}")]
    Backend { server: String, cause: BackendCause, detail: String, retryable: bool },
    /// No server can take this statement now (no writer known, no replica and no fallback).
    #[error("no server available: {0}")]
    NoServer(String),
    /// A policy refused the statement (e.g. require_semisync while semi-sync is off).
    #[error("{0}")]
    Refused(String),
    /// COM_STMT_PREPARE beyond `proxy.max_prepared_statements` (the server's 1461).
    #[error("Can't create more than max_prepared_stmt_count statements (current value: {0})")]
    TooManyPreparedStatements(u32),
    /// KILL of a connection id that no session has (the server's 1094).
    #[error("Unknown thread id: {0}")]
    UnknownThread(u64),
    /// KILL of another user's session (the server's 1095).
    #[error("You are not owner of thread {0}")]
    NotThreadOwner(u64),
    /// The session's own statement was killed (KILL QUERY of itself; the server's 1317).
    #[error("Query execution was interrupted")]
    QueryInterrupted,
    /// The session was killed (KILL of itself; the server's 1927): the connection ends.
    #[error("Connection was killed")]
    ConnectionKilled,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProxyError {
    pub fn side(&self) -> Side {
        match self {
            ProxyError::ClientGone(_)
            | ProxyError::ClientProtocol(_)
            | ProxyError::AccessDenied { .. }
            | ProxyError::Unsupported(_)
            | ProxyError::UnknownStatement(..)
            | ProxyError::TooManyConnections
            | ProxyError::InsecureTransport
            | ProxyError::UnknownThread(_)
            | ProxyError::NotThreadOwner(_)
            | ProxyError::QueryInterrupted
            | ProxyError::ConnectionKilled
            | ProxyError::TooManyPreparedStatements(_) => Side::Client,
            ProxyError::Backend { .. } | ProxyError::NoServer(_) | ProxyError::Refused(_) => Side::Backend,
            ProxyError::Internal(_) => Side::Internal,
        }
    }

    pub fn retryable(&self) -> bool {
        match self {
            ProxyError::Backend { retryable, .. } => *retryable,
            ProxyError::NoServer(_) | ProxyError::TooManyConnections => true,
            _ => false,
        }
    }

    /// Whether the client connection must be closed after the ERR (its stream is no longer
    /// in a known state).
    pub fn closes_client(&self) -> bool {
        matches!(
            self,
            ProxyError::ClientGone(_)
                | ProxyError::ClientProtocol(_)
                | ProxyError::AccessDenied { .. }
                | ProxyError::TooManyConnections
                | ProxyError::ConnectionKilled
        )
    }

    /// The ERR packet payload the client gets for this error.
    pub fn err_packet(&self) -> Vec<u8> {
        let (code, state): (u16, &[u8; 5]) = match self {
            ProxyError::AccessDenied { .. } => (1045, b"28000"),
            ProxyError::TooManyConnections => (1040, b"08004"),
            ProxyError::InsecureTransport => (3159, b"HY000"), // ER_SECURE_TRANSPORT_REQUIRED
            ProxyError::ClientProtocol(_) => (1156, b"08S01"), // ER_NET_PACKETS_OUT_OF_ORDER family
            ProxyError::ClientGone(_) => (2013, b"HY000"),
            ProxyError::Unsupported(_) => (1235, b"42000"), // ER_NOT_SUPPORTED_YET
            ProxyError::UnknownStatement(..) => (1243, b"HY000"), // ER_UNKNOWN_STMT_HANDLER
            ProxyError::Backend { .. } | ProxyError::NoServer(_) => (2003, b"HY000"),
            ProxyError::Refused(_) => (1290, b"HY000"), // ER_OPTION_PREVENTS_STATEMENT
            ProxyError::TooManyPreparedStatements(_) => (1461, b"42000"), // ER_MAX_PREPARED_STMT_COUNT_REACHED
            ProxyError::UnknownThread(_) => (1094, b"HY000"), // ER_NO_SUCH_THREAD
            ProxyError::NotThreadOwner(_) => (1095, b"HY000"), // ER_KILL_DENIED_ERROR
            ProxyError::QueryInterrupted => (1317, b"70100"), // ER_QUERY_INTERRUPTED
            ProxyError::ConnectionKilled => (1927, b"70100"), // ER_CONNECTION_KILLED
            ProxyError::Internal(_) => (1105, b"HY000"),
        };
        let message = match self {
            // MySQL's own wording, so tools that match on it keep working.
            ProxyError::AccessDenied { user } => format!("Access denied for user '{user}' (using password: YES)"),
            // The server's own wording for what the server would have said.
            ProxyError::UnknownStatement(..)
            | ProxyError::UnknownThread(_)
            | ProxyError::NotThreadOwner(_)
            | ProxyError::QueryInterrupted
            | ProxyError::ConnectionKilled
            | ProxyError::TooManyPreparedStatements(_) => self.to_string(),
            other => format!("rwsplit: {other}"),
        };
        err_payload(code, state, &message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packets::{err_code, err_message};

    #[test]
    fn access_denied_is_1045_with_mysql_wording() {
        let p = ProxyError::AccessDenied { user: "app".into() }.err_packet();
        assert_eq!(err_code(&p), Some(1045));
        assert_eq!(err_message(&p), "Access denied for user 'app' (using password: YES)");
    }

    #[test]
    fn sides_and_retry() {
        let b = ProxyError::Backend {
            server: "replica1".into(),
            cause: BackendCause::Timeout,
            detail: "timeout".into(),
            retryable: true,
        };
        assert_eq!(b.side(), Side::Backend);
        assert!(b.retryable());
        assert!(!b.closes_client());
        assert_eq!(err_code(&b.err_packet()), Some(2003));
        assert!(err_message(&b.err_packet()).starts_with("rwsplit: server replica1"));
        assert!(ProxyError::ClientProtocol("x".into()).closes_client());
        assert!(!ProxyError::Refused("semi-sync off".into()).retryable());
    }
}

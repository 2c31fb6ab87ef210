//! The MySQL client/server protocol as rwsplit speaks it on both sides.
//!
//! - [`frame`]: packet framing (check, then parse; chunking of 16 MiB packets). Pure.
//! - [`connection`]: a socket with its read buffer; reads whole packets or raw chunks, with
//!   timeouts. The only IO here.
//! - [`response`]: the pure state machine that follows a server's response packet by packet, so
//!   result sets are relayed as they arrive without decoding rows.
//! - [`handshake`]: the server side of the handshake (greeting, authentication of clients).
//! - [`packets`]: the few packets rwsplit writes itself (OK, EOF) and reads (status flags).
//! - [`resultset`]: result sets rwsplit answers itself (SHOW PROCESSLIST). Pure.
//! - [`session_track`]: what an OK packet's session-state information says changed.
//! - [`stmt`]: reading and rewriting COM_STMT_* packets (statement ids, EXECUTE's head).
//!
//! Structures with a stable layout (handshake, handshake response, OK/ERR, statement OK) come
//! from `mysql_common`; framing is our own because a relay must pass a 16 MiB packet's chunks
//! through untouched, while `mysql_common`'s codec reassembles them.

pub mod connection;
pub mod frame;
pub mod handshake;
pub mod packets;
pub mod response;
pub mod resultset;
pub mod session_track;
pub mod stmt;

pub use mysql_common::constants::{CapabilityFlags, Command, MariadbCapabilities, StatusFlags};

/// Everything that shapes what a server sends on a connection: the client's behaviour
/// capabilities ([`behaviour_capabilities`]), MariaDB's extended metadata (column definitions
/// that carry type names such as json, uuid, inet6) and MariaDB's cached metadata (a prepared
/// statement's execution skips its column definitions while they are unchanged). A client and
/// every backend connection serving it agree on it, so responses pass through untranslated;
/// backend connections are pooled per distinct value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseFormat {
    pub caps: CapabilityFlags,
    pub extended_metadata: bool,
    /// MARIADB_CLIENT_CACHE_METADATA: a column count is followed by a "metadata follows"
    /// byte. Which column definitions the client holds for each statement is tracked
    /// (`session::prepared`), since its statements run on several backend connections.
    pub cache_metadata: bool,
}

impl ResponseFormat {
    /// No optional format: what rwsplit's own connections (KILL, the schema list) use.
    pub fn plain() -> Self {
        ResponseFormat { caps: CapabilityFlags::empty(), extended_metadata: false, cache_metadata: false }
    }

    /// The format of a client that logged in with these capabilities.
    pub fn of_client(caps: CapabilityFlags, mariadb: MariadbCapabilities) -> Self {
        ResponseFormat {
            caps: behaviour_capabilities(caps),
            extended_metadata: mariadb.contains(MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA),
            cache_metadata: mariadb.contains(MariadbCapabilities::MARIADB_CLIENT_CACHE_METADATA),
        }
    }

    pub fn contains(&self, flag: CapabilityFlags) -> bool {
        self.caps.contains(flag)
    }

    /// The MariaDB extended capabilities to ask for with this format.
    pub fn mariadb_capabilities(&self) -> MariadbCapabilities {
        let mut m = MariadbCapabilities::empty();
        if self.extended_metadata {
            m |= MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA;
        }
        if self.cache_metadata {
            m |= MariadbCapabilities::MARIADB_CLIENT_CACHE_METADATA;
        }
        m
    }
}

/// MariaDB extended capabilities rwsplit offers clients when its servers are MariaDB:
/// extended metadata (one more field in column definitions, passed through untouched) and
/// cached metadata (MariaDB 10.6 and later: an execution of a prepared statement skips the
/// column definitions the client already has; directly, MariaDB's own connectors always ask
/// for it). Bulk operations are not offered: COM_STMT_BULK_EXECUTE is a command rwsplit does
/// not route.
pub fn offered_mariadb_capabilities() -> MariadbCapabilities {
    MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA | MariadbCapabilities::MARIADB_CLIENT_CACHE_METADATA
}

/// Capabilities rwsplit offers clients. A client gets the intersection with what it asks for;
/// the same set is then asked of the backend connections serving it (pools are keyed by it),
/// so the response formats of both sides always agree and nothing needs translating.
///
/// Left out on purpose: CLIENT_COMPRESS (we relay raw packets), CLIENT_SSL (until TLS is
/// configured), CLIENT_QUERY_ATTRIBUTES (would put attributes before the SQL text),
/// CLIENT_CONNECT_ATTRS towards backends. MariaDB's extended capabilities are offered apart
/// ([`offered_mariadb_capabilities`]); a greeting that offers them leaves CLIENT_LONG_PASSWORD
/// (CLIENT_MYSQL) out, as MariaDB servers do.
pub fn offered_capabilities() -> CapabilityFlags {
    CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_FOUND_ROWS
        | CapabilityFlags::CLIENT_LONG_FLAG
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_NO_SCHEMA
        | CapabilityFlags::CLIENT_ODBC
        | CapabilityFlags::CLIENT_LOCAL_FILES
        | CapabilityFlags::CLIENT_IGNORE_SPACE
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_INTERACTIVE
        | CapabilityFlags::CLIENT_IGNORE_SIGPIPE
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_RESERVED
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_SESSION_TRACK
        | CapabilityFlags::CLIENT_DEPRECATE_EOF
}

/// The capabilities that change what a server sends or accepts on a connection. Backend
/// connections are pooled per distinct value of this set.
pub fn behaviour_capabilities(client: CapabilityFlags) -> CapabilityFlags {
    client
        & (CapabilityFlags::CLIENT_FOUND_ROWS
            | CapabilityFlags::CLIENT_LONG_FLAG
            | CapabilityFlags::CLIENT_NO_SCHEMA
            | CapabilityFlags::CLIENT_ODBC
            | CapabilityFlags::CLIENT_LOCAL_FILES
            | CapabilityFlags::CLIENT_IGNORE_SPACE
            | CapabilityFlags::CLIENT_INTERACTIVE
            | CapabilityFlags::CLIENT_MULTI_STATEMENTS
            | CapabilityFlags::CLIENT_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
            | CapabilityFlags::CLIENT_SESSION_TRACK
            | CapabilityFlags::CLIENT_DEPRECATE_EOF)
}

//! `[[users]]`, `[backend]` and `[[servers]]`: who logs into rwsplit, how rwsplit logs into the
//! servers, and which servers there are.

use super::{check_address, check_range};
use crate::{Problem, Secret};
use serde::Deserialize;

/// An application user of rwsplit (the frontend side, like Amoeba's `amoeba.xml` user).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserConfig {
    /// Login name the application uses.
    pub name: String,
    /// Its password in clear text. Prefer `password_hash` in production.
    pub password: Option<Secret>,
    /// The `mysql_native_password` hash as `SELECT PASSWORD('…')` prints it (`*` and 40 hex
    /// digits), so the clear password need not be stored in the file.
    pub password_hash: Option<Secret>,
    /// Read-your-writes policy for this user's sessions, overriding `routing.consistency`.
    pub consistency: Option<super::Consistency>,
}

impl UserConfig {
    pub(crate) fn validate(&self, at: &str, problems: &mut Vec<Problem>) {
        if self.name.is_empty() {
            problems.push(Problem::new(format!("{at}.name"), "a user needs a name"));
        }
        match (&self.password, &self.password_hash) {
            (Some(_), Some(_)) => problems
                .push(Problem::new(format!("{at}.password_hash"), "give either password or password_hash, not both")),
            (None, None) => problems.push(Problem::new(
                format!("{at}.password"),
                "a user needs password or password_hash (use password = \"\" for none)",
            )),
            (None, Some(h)) => {
                let v = h.expose();
                let ok = v.len() == 41 && v.starts_with('*') && v[1..].bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    problems.push(Problem::new(
                        format!("{at}.password_hash"),
                        "must be '*' followed by 40 hex digits, as SELECT PASSWORD('…') prints it",
                    ));
                }
            }
            (Some(_), None) => {}
        }
    }
}

/// How rwsplit connects to the servers on behalf of clients (like Amoeba's `dbServers.xml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// User rwsplit logs into every server as. It must not hold `READ_ONLY ADMIN` (MariaDB) or
    /// `SUPER`, or a write misrouted to a `read_only` replica would succeed.
    pub user: String,
    /// That user's password (mysql_native_password or caching_sha2_password).
    pub password: Secret,
    /// Time allowed to open and authenticate one server connection.
    pub connect_timeout_ms: u64,
    /// Longest wait for a server's response to one statement (for its next packet) before the
    /// client gets an error and the statement is killed on the server. Statements on a server
    /// the monitor marks down are aborted at once regardless.
    pub response_timeout_ms: u64,
    /// Idle connections kept per server for reuse.
    pub max_idle_per_server: u32,
    /// Most connections per server, idle and leased together.
    pub max_connections_per_server: u32,
    /// An idle pooled connection older than this is closed.
    pub idle_timeout_ms: u64,
    /// How long a session whose client is idle keeps the connection of its previous statement
    /// (ROW_COUNT(), SHOW WARNINGS and the like are answered there, and the next statement for
    /// the same server reuses it) before it goes back to the pool. 0 gives it back at once.
    pub keep_previous_ms: u64,
    /// While a server's connection limit is reached, a statement waits this long (first come,
    /// first served) for a connection to come free before it fails with an error. Sessions
    /// holding an idle connection to that server give it back at once.
    pub queue_timeout_ms: u64,
    /// Connect to the servers over TLS (each `[[servers]]` entry may override it with its own
    /// `tls`). The server must offer TLS (`have_ssl = YES`); its certificate is verified
    /// against `tls_ca` and the host of its address (an IP address must be in the
    /// certificate's IP subject alternative names). The monitor uses TLS towards the same
    /// servers.
    pub tls: bool,
    /// PEM file of the CA certificate(s) the servers' certificates are verified against.
    /// Required when TLS is on for any server (the system's roots are not used).
    pub tls_ca: String,
    /// PEM certificate chain rwsplit presents to the servers (optional: for accounts created
    /// `REQUIRE X509` or similar). Needs `tls_key`.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            user: String::new(),
            password: Secret::default(),
            connect_timeout_ms: 3_000,
            response_timeout_ms: 600_000,
            max_idle_per_server: 32,
            max_connections_per_server: 2048,
            idle_timeout_ms: 300_000,
            keep_previous_ms: 1_000,
            queue_timeout_ms: 5_000,
            tls: false,
            tls_ca: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

impl BackendConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<Problem>) {
        if self.user.is_empty() {
            problems.push(Problem::new("backend.user", "the user rwsplit logs into the servers as is required"));
        }
        check_range("backend.connect_timeout_ms", self.connect_timeout_ms, 10, 600_000, problems);
        check_range("backend.response_timeout_ms", self.response_timeout_ms, 100, 31_536_000_000, problems);
        check_range("backend.max_idle_per_server", self.max_idle_per_server.into(), 0, 100_000, problems);
        check_range("backend.max_connections_per_server", self.max_connections_per_server.into(), 1, 100_000, problems);
        check_range("backend.idle_timeout_ms", self.idle_timeout_ms, 1_000, 86_400_000, problems);
        check_range("backend.keep_previous_ms", self.keep_previous_ms, 0, 3_600_000, problems);
        check_range("backend.queue_timeout_ms", self.queue_timeout_ms, 0, 3_600_000, problems);
        if self.max_idle_per_server > self.max_connections_per_server {
            problems
                .push(Problem::new("backend.max_idle_per_server", "cannot exceed backend.max_connections_per_server"));
        }
        match (self.tls_cert.is_empty(), self.tls_key.is_empty()) {
            (false, true) => {
                problems.push(Problem::new("backend.tls_key", "backend.tls_cert is set: the key is required too"))
            }
            (true, false) => problems
                .push(Problem::new("backend.tls_cert", "backend.tls_key is set: the certificate is required too")),
            _ => {}
        }
        for (path, file) in
            [("backend.tls_ca", &self.tls_ca), ("backend.tls_cert", &self.tls_cert), ("backend.tls_key", &self.tls_key)]
        {
            if !file.is_empty() {
                if let Err(e) = std::fs::metadata(file) {
                    problems.push(Problem::new(path, format!("cannot read {file:?}: {e}")));
                }
            }
        }
    }

    /// Whether rwsplit (and its monitor) connect to `server` over TLS: its own `tls`, else
    /// `backend.tls`.
    pub fn tls_for(&self, server: &ServerConfig) -> bool {
        server.tls.unwrap_or(self.tls)
    }

    /// Checks that TLS towards the servers that use it can be set up (a CA is given).
    pub(crate) fn validate_tls(&self, servers: &[ServerConfig], problems: &mut Vec<Problem>) {
        if !self.tls_ca.is_empty() {
            return;
        }
        if self.tls {
            problems.push(Problem::new(
                "backend.tls_ca",
                "backend.tls is on: the CA to verify the servers with is required",
            ));
        } else if let Some(i) = servers.iter().position(|s| s.tls == Some(true)) {
            problems.push(Problem::new(
                format!("servers[{i}].tls"),
                "TLS towards this server needs backend.tls_ca (the CA to verify it with)",
            ));
        }
    }
}

/// One MySQL or MariaDB server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Name used in logs, metrics and status (e.g. `master`, `replica1`).
    pub name: String,
    /// `host:port` of the server.
    pub address: String,
    /// Share of reads this server gets relative to the other readable replicas (0 = no
    /// reads unless it is the only choice).
    pub weight: u32,
    /// Connect to this server over TLS (`true`) or not (`false`), whatever `backend.tls` says.
    /// Unset: `backend.tls`.
    pub tls: Option<bool>,
    /// Drain the server: it is still checked and still takes writes if it is the writer, but
    /// gets no reads; sessions reading there move at their next read. Set it, reload, wait
    /// for the server's connections to go, then remove it.
    pub drain: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { name: String::new(), address: String::new(), weight: 1, tls: None, drain: false }
    }
}

impl ServerConfig {
    pub(crate) fn validate(&self, at: &str, problems: &mut Vec<Problem>) {
        if self.name.is_empty() {
            problems.push(Problem::new(format!("{at}.name"), "a server needs a name"));
        } else if !self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            problems.push(Problem::new(format!("{at}.name"), "use letters, digits, '-' and '_' only"));
        }
        check_address(&format!("{at}.address"), &self.address, problems);
        check_range(&format!("{at}.weight"), self.weight.into(), 0, 1000, problems);
    }
}

//! `[proxy]`: the client-facing side.

use super::{check_address, check_range};
use crate::Problem;
use serde::Deserialize;

/// The listener applications connect to and the limits of a client session.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Address clients connect to. On a VRRP pair keep `0.0.0.0:8066` so the listener is
    /// ready before the virtual IP arrives.
    pub listen: String,
    /// Most client sessions at once; more get ERR 1040 (too many connections).
    pub max_connections: u32,
    /// Version string announced to clients. Empty: the writer's own version with
    /// `-rwsplit` appended, learned at start.
    pub server_version: String,
    /// How long a client has to finish the handshake and authentication.
    pub handshake_timeout_ms: u64,
    /// A client silent for this long between statements is disconnected (MySQL's
    /// `wait_timeout` default is 8 hours).
    pub client_idle_timeout_ms: u64,
    /// Longest statement text rwsplit will classify and forward, in bytes (`max_allowed_packet`
    /// of the servers bounds it anyway); larger packets are still forwarded to the writer.
    pub max_packet_bytes: u64,
    /// Most prepared statements one session may keep open (as MariaDB's
    /// `max_prepared_stmt_count`, per session here): one more gets the server's ERR 1461.
    pub max_prepared_statements: u32,
    /// PEM certificate chain offered to clients that ask for TLS. Empty (with `tls_key`): no
    /// TLS; clients asking for it get a clear error. Read at start.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
    /// Refuse clients that do not switch to TLS (needs `tls_cert` and `tls_key`).
    pub require_tls: bool,
    /// Threads that run client sessions, each session on one thread for its whole life
    /// (thread per core). 0: half the CPUs rwsplit may run on, at least one. On a host shared
    /// with servers or clients, more threads cost rwsplit more CPU per statement and a lone
    /// client more latency, but send the servers smaller bursts of statements (README
    /// "Performance" has lab figures); a host running rwsplit alone at high load sets its CPU
    /// count. Read at start.
    pub worker_threads: u32,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: "0.0.0.0:8066".into(),
            max_connections: 4096,
            server_version: String::new(),
            handshake_timeout_ms: 10_000,
            client_idle_timeout_ms: 28_800_000,
            max_packet_bytes: 1 << 30,
            max_prepared_statements: 16_382,
            tls_cert: String::new(),
            tls_key: String::new(),
            require_tls: false,
            worker_threads: 0,
        }
    }
}

impl ProxyConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<Problem>) {
        check_address("proxy.listen", &self.listen, problems);
        check_range("proxy.max_connections", self.max_connections.into(), 1, 1_000_000, problems);
        check_range("proxy.handshake_timeout_ms", self.handshake_timeout_ms, 100, 600_000, problems);
        check_range("proxy.client_idle_timeout_ms", self.client_idle_timeout_ms, 1_000, 31_536_000_000, problems);
        check_range("proxy.max_packet_bytes", self.max_packet_bytes, 1024, 1 << 30, problems);
        check_range("proxy.max_prepared_statements", self.max_prepared_statements.into(), 0, 1_048_576, problems);
        check_range("proxy.worker_threads", self.worker_threads.into(), 0, 1024, problems);
        match (self.tls_cert.is_empty(), self.tls_key.is_empty()) {
            (true, true) if self.require_tls => {
                problems.push(Problem::new("proxy.require_tls", "needs proxy.tls_cert and proxy.tls_key"))
            }
            (true, true) => {}
            (false, true) => {
                problems.push(Problem::new("proxy.tls_key", "proxy.tls_cert is set: the key is required too"))
            }
            (true, false) => {
                problems.push(Problem::new("proxy.tls_cert", "proxy.tls_key is set: the certificate is required too"))
            }
            (false, false) => {
                for (path, file) in [("proxy.tls_cert", &self.tls_cert), ("proxy.tls_key", &self.tls_key)] {
                    if let Err(e) = std::fs::metadata(file) {
                        problems.push(Problem::new(path, format!("cannot read {file:?}: {e}")));
                    }
                }
            }
        }
    }
}

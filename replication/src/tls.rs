//! TLS for the monitor's and the promotion steps' connections: which servers are reached over
//! TLS and with which files ([`ServerTls`], built by the caller from `[backend]`: the same
//! servers, CA and client certificate as the proxy's own connections), turned into
//! mysql_async's [`SslOpts`]. Certificates are verified against the given CA only (the
//! built-in roots are off) and against the host of the server's address.

use mysql_async::{ClientIdentity, SslOpts};
use std::path::PathBuf;

/// TLS files for one server's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// PEM CA bundle the server's certificate is verified against.
    pub ca: PathBuf,
    /// Client certificate chain and key (PEM), when the server wants one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ServerTls {
    /// The TLS files for `server` from `[backend]`, or `None` when it is reached over plain
    /// TCP (see [`rwsplit_config::BackendConfig::tls_for`]).
    pub fn for_server(
        backend: &rwsplit_config::BackendConfig,
        server: &rwsplit_config::ServerConfig,
    ) -> Option<ServerTls> {
        if !backend.tls_for(server) {
            return None;
        }
        let identity = (!backend.tls_cert.is_empty() && !backend.tls_key.is_empty())
            .then(|| (PathBuf::from(&backend.tls_cert), PathBuf::from(&backend.tls_key)));
        Some(ServerTls { ca: PathBuf::from(&backend.tls_ca), identity })
    }

    /// mysql_async's options for these files: TLS required, verified against `ca` only.
    pub(crate) fn ssl_opts(&self) -> SslOpts {
        SslOpts::default()
            .with_root_certs(vec![self.ca.clone().into()])
            .with_disable_built_in_roots(true)
            .with_client_identity(
                self.identity.as_ref().map(|(cert, key)| ClientIdentity::new(cert.clone().into(), key.clone().into())),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_backend_settings() {
        let mut backend = rwsplit_config::BackendConfig { tls_ca: "/ca.pem".into(), ..Default::default() };
        let plain = rwsplit_config::ServerConfig::default();
        let on = rwsplit_config::ServerConfig { tls: Some(true), ..Default::default() };
        assert_eq!(ServerTls::for_server(&backend, &plain), None);
        let t = ServerTls::for_server(&backend, &on).unwrap();
        assert_eq!((t.ca.to_str(), t.identity), (Some("/ca.pem"), None));
        backend.tls = true;
        backend.tls_cert = "/c.pem".into();
        backend.tls_key = "/k.pem".into();
        let t = ServerTls::for_server(&backend, &plain).unwrap();
        assert_eq!(t.identity, Some(("/c.pem".into(), "/k.pem".into())));
        let off = rwsplit_config::ServerConfig { tls: Some(false), ..Default::default() };
        assert_eq!(ServerTls::for_server(&backend, &off), None);
        assert!(t.ssl_opts().disable_built_in_roots());
    }
}

//! TLS towards the servers: one rustls client configuration (ring provider) built at start from
//! `backend.tls_ca` and, when given, `backend.tls_cert` + `backend.tls_key`. Server
//! certificates are verified against that CA only (never the system's roots) and against the
//! host of the server's address: an IP address must be one of the certificate's IP subject
//! alternative names, a host name one of its DNS names.

use rustls_pki_types::ServerName;
use rwsplit_config::ServerConfig;
use std::sync::Arc;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The TLS connector for server connections.
#[derive(Clone)]
pub struct BackendTls(pub TlsConnector);

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackendTls")
    }
}

/// TLS towards one server: the connector and the name its certificate must carry.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub connector: BackendTls,
    pub name: ServerName<'static>,
}

/// TLS for each of `servers` in order (`None`: plain TCP), or why it cannot be set up
/// (unreadable CA or client identity, an address whose host cannot be a TLS name).
pub fn for_servers(
    b: &rwsplit_config::BackendConfig,
    servers: &[ServerConfig],
) -> Result<Vec<Option<ServerTls>>, String> {
    if !servers.iter().any(|s| b.tls_for(s)) {
        return Ok(servers.iter().map(|_| None).collect());
    }
    let identity = (!b.tls_cert.is_empty()).then_some((b.tls_cert.as_str(), b.tls_key.as_str()));
    let c = connector(&b.tls_ca, identity).map_err(|e| format!("backend.tls_ca / tls_cert / tls_key: {e}"))?;
    servers
        .iter()
        .map(|s| {
            if !b.tls_for(s) {
                return Ok(None);
            }
            let name = server_name(&s.address).map_err(|e| format!("server {}: {e}", s.name))?;
            Ok(Some(ServerTls { connector: c.clone(), name }))
        })
        .collect()
}

/// TLS for the monitor's connection to each of `servers`, in order: the same servers and
/// files as the proxy's own connections.
pub fn for_monitor(
    b: &rwsplit_config::BackendConfig,
    servers: &[ServerConfig],
) -> Vec<Option<rwsplit_replication::ServerTls>> {
    servers.iter().map(|s| rwsplit_replication::ServerTls::for_server(b, s)).collect()
}

/// A promotion runner as the monitor user, with TLS towards the servers that use it.
pub fn promoter(config: &rwsplit_config::Config) -> rwsplit_replication::promotion::Promoter {
    let tls = config
        .servers
        .iter()
        .filter_map(|s| Some((s.address.clone(), rwsplit_replication::ServerTls::for_server(&config.backend, s)?)))
        .collect();
    rwsplit_replication::promotion::Promoter::new(&config.monitor).with_tls(tls)
}

/// The connector for a CA bundle and an optional client certificate chain and key (PEM
/// files), or why not (file and reason).
pub fn connector(ca_path: &str, identity: Option<(&str, &str)>) -> Result<BackendTls, String> {
    let mut roots = RootCertStore::empty();
    for ca in crate::tls::certificates(ca_path)? {
        roots.add(ca).map_err(|e| format!("{ca_path}: {e}"))?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert_path, key_path)) => {
            let (certs, key) = crate::tls::identity(cert_path, key_path)?;
            builder.with_client_auth_cert(certs, key).map_err(|e| format!("{cert_path} / {key_path}: {e}"))?
        }
    };
    Ok(BackendTls(TlsConnector::from(Arc::new(config))))
}

/// The name a server's certificate is checked against: the host of `address` (`host:port`,
/// `[v6]:port`), as an IP address when it is one.
pub fn server_name(address: &str) -> Result<ServerName<'static>, String> {
    let host = match address.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => h,
        _ => address,
    };
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_string()).map_err(|_| format!("{host:?} is not a valid host name for TLS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_addresses() {
        assert!(matches!(server_name("127.0.0.1:3306"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("[::1]:3306"), Ok(ServerName::IpAddress(_))));
        match server_name("db.example.com:3306") {
            Ok(ServerName::DnsName(d)) => assert_eq!(d.as_ref(), "db.example.com"),
            other => panic!("{other:?}"),
        }
        assert!(server_name("bad host:3306").is_err());
    }

    #[test]
    fn missing_or_bad_files_are_clear_errors() {
        let e = connector("/nonexistent/ca.pem", None).err().unwrap();
        assert!(e.starts_with("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = connector(ca.to_str().unwrap(), None).err().unwrap();
        assert!(e.contains("no certificate"), "{e}");
    }
}

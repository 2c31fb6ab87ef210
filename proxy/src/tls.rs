//! TLS towards clients: one acceptor built at start from `proxy.tls_cert` and `proxy.tls_key`
//! (rustls with the ring provider). A client that sends an SSLRequest is switched to TLS before
//! it authenticates, so passwords and data never cross the network in clear.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The TLS acceptor for clients.
#[derive(Clone)]
pub struct ClientTls(pub TlsAcceptor);

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

/// The certificates of a PEM file (at least one), or why not (file and reason). Used for
/// certificate chains and CA bundles, towards clients and towards servers.
pub(crate) fn certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{path}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path}: no certificate in the file"));
    }
    Ok(certs)
}

/// A certificate chain and its private key from PEM files, or why not (file and reason).
pub(crate) fn identity(
    cert_path: &str,
    key_path: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = certificates(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| format!("{key_path}: {e}"))?;
    Ok((certs, key))
}

/// The acceptor for a PEM certificate chain and key, or why not (file and reason).
pub fn acceptor(cert_path: &str, key_path: &str) -> Result<ClientTls, String> {
    let (certs, key) = identity(cert_path, key_path)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{cert_path} / {key_path}: {e}"))?;
    Ok(ClientTls(TlsAcceptor::from(Arc::new(config))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_bad_files_are_clear_errors() {
        let e = acceptor("/nonexistent/cert.pem", "/nonexistent/key.pem").err().unwrap();
        assert!(e.starts_with("/nonexistent/cert.pem"), "{e}");
        let dir = std::env::temp_dir().join(format!("rwsplit-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        let e = acceptor(cert.to_str().unwrap(), "/nonexistent/key.pem").err().unwrap();
        assert!(e.contains("no certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

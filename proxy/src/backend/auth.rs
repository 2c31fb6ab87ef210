//! The client side of the connection phase, towards a server: read its greeting, answer with
//! the backend credentials, follow auth switches. Supports `mysql_native_password` and
//! `caching_sha2_password` including its full authentication through the server's RSA public
//! key when the connection is not encrypted (MySQL 8's default), or with the password in clear
//! inside TLS when it is. With TLS on for the server, the SSLRequest (the 32-byte start of the
//! handshake response, with CLIENT_SSL) goes out right after the greeting, the TLS handshake
//! follows, and the login continues encrypted.

use crate::protocol::connection::{ConnError, PacketStream};
use crate::protocol::packets::{err_message, ERR, OK};
use crate::protocol::{CapabilityFlags, ResponseFormat};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, AuthSwitchRequest, HandshakeResponse};
use mysql_common::proto::MySerialize;
use mysql_common::scramble::{scramble_native, scramble_sha256};
use rustls_pki_types::ServerName;
use std::time::Duration;
use tokio_rustls::TlsConnector;

/// Why logging into a server failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Conn(#[from] ConnError),
    #[error("server refused the login: {0}")]
    Refused(String),
    #[error("malformed packet during login: {0}")]
    Protocol(&'static str),
    #[error("server asks for unsupported auth plugin {0}")]
    Plugin(String),
    /// TLS is on for the server and could not be set up (not offered, certificate refused).
    #[error("TLS: {0}")]
    Tls(String),
}

/// What the login learned about the server.
#[derive(Debug, Clone)]
pub struct ServerHello {
    pub version: String,
    pub connection_id: u32,
    /// Capabilities in force on this connection.
    pub capabilities: CapabilityFlags,
}

/// Capabilities rwsplit always asks of a server, on top of the client's behaviour set.
fn base_capabilities() -> CapabilityFlags {
    CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        // Always: rwsplit learns GTIDs and state changes from OK packets without running a
        // query that would clear the session's ROW_COUNT() and warnings. For clients that did
        // not ask for it, the relay gives OK packets back their plain form
        // (`protocol::packets::ok_without_session_state`).
        | CapabilityFlags::CLIENT_SESSION_TRACK
}

fn scramble(plugin: &[u8], nonce: &[u8], password: &str) -> Result<Vec<u8>, AuthError> {
    let pw = password.as_bytes();
    match plugin {
        b"mysql_native_password" => Ok(scramble_native(nonce, pw).map(|s| s.to_vec()).unwrap_or_default()),
        b"caching_sha2_password" => Ok(scramble_sha256(nonce, pw).map(|s| s.to_vec()).unwrap_or_default()),
        other => Err(AuthError::Plugin(String::from_utf8_lossy(other).into_owned())),
    }
}

/// The password, NUL-terminated and XOR-ed with the nonce, encrypted with the server's key,
/// as caching_sha2_password's full authentication expects.
fn rsa_encrypt_password(password: &str, nonce: &[u8], pem: &[u8]) -> Result<Vec<u8>, AuthError> {
    if nonce.is_empty() {
        return Err(AuthError::Protocol("empty nonce"));
    }
    let mut clear: Vec<u8> = password.as_bytes().to_vec();
    clear.push(0);
    for (i, b) in clear.iter_mut().enumerate() {
        *b ^= nonce[i % nonce.len()];
    }
    let pem = pem.to_vec();
    // mysql_common's PEM/DER parser panics on malformed keys; a key comes from the server,
    // so a bad one must become an error, not a crash.
    std::panic::catch_unwind(move || mysql_common::crypto::encrypt(&clear, &pem))
        .map_err(|_| AuthError::Protocol("server sent an unusable RSA public key"))
}

/// Length of an SSLRequest: the handshake response up to (not including) the user name.
const SSL_REQUEST_LEN: usize = 32;

/// Logs into the server on `stream` as `user`. `wanted` is the response format of the
/// clients this connection will serve; the result says what is in force. With `tls`, the
/// connection is switched to TLS (verifying the server's certificate for the name given)
/// before the credentials are sent; a server that does not offer TLS is an error.
pub async fn login(
    stream: &mut PacketStream,
    user: &str,
    password: &str,
    wanted: ResponseFormat,
    tls: Option<(&TlsConnector, ServerName<'static>)>,
    timeout: Duration,
) -> Result<ServerHello, AuthError> {
    let (seq, greeting) = stream.read_packet(1 << 16, timeout).await?;
    if greeting.first() == Some(&ERR) {
        return Err(AuthError::Refused(err_message(&greeting)));
    }
    let hello = crate::protocol::handshake::parse_greeting(&greeting).ok_or(AuthError::Protocol("greeting"))?;
    let server_caps = hello.capabilities();
    if !server_caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        return Err(AuthError::Protocol("server does not speak protocol 4.1"));
    }
    let mut caps = (base_capabilities() | wanted.caps) & server_caps;
    // MariaDB reads the extended capabilities only from clients that leave CLIENT_MYSQL
    // (CLIENT_LONG_PASSWORD) out.
    let mariadb_caps = wanted.mariadb_capabilities() & hello.mariadb_ext_capabilities();
    if mariadb_caps != wanted.mariadb_capabilities() {
        // The client was offered a format this server cannot give (a MariaDB older than the
        // one whose version the greeting announced): its responses would be misread.
        return Err(AuthError::Protocol("server lacks a MariaDB capability the client negotiated"));
    }
    if !mariadb_caps.is_empty() && !server_caps.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
        caps.remove(CapabilityFlags::CLIENT_LONG_PASSWORD);
    }
    if tls.is_some() {
        if !server_caps.contains(CapabilityFlags::CLIENT_SSL) {
            return Err(AuthError::Tls(
                "backend TLS is on but the server does not offer TLS (have_ssl is not YES: set ssl_cert, ssl_key \
                 and ssl_ca on the server)"
                    .into(),
            ));
        }
        caps.insert(CapabilityFlags::CLIENT_SSL);
    }
    let mut nonce = hello.nonce();
    let plugin = hello.auth_plugin_name_ref().unwrap_or(b"mysql_native_password").to_vec();
    let version = hello.server_version_str().into_owned();
    let connection_id = hello.connection_id();

    let first = scramble(&plugin, &nonce, password)?;
    let response = HandshakeResponse::new(
        Some(first),
        hello.server_version_parsed().unwrap_or((5, 7, 0)),
        Some(user.as_bytes()),
        None::<&[u8]>,
        Some(AuthPlugin::from_bytes(&plugin)),
        caps,
        None,
        1 << 30,
    )
    .with_mariadb_ext_capabilities(mariadb_caps);
    let mut out = Vec::with_capacity(128);
    response.serialize(&mut out);
    let mut next = seq.wrapping_add(1);
    if let Some((connector, name)) = tls {
        // The same capabilities, packet size, collation and MariaDB capabilities as the
        // response that follows over TLS.
        let request = out.get(..SSL_REQUEST_LEN).ok_or(AuthError::Protocol("handshake response"))?;
        next = stream.send(next, request, timeout).await?;
        stream.connect_tls(connector, name, timeout).await.map_err(|e| match e {
            ConnError::Timeout(t) => AuthError::Conn(ConnError::Timeout(t)),
            e => AuthError::Tls(format!("handshake with the server failed: {e}")),
        })?;
    }
    stream.send(next, &out, timeout).await?;
    let encrypted = stream.is_tls();
    let mut plugin = plugin;

    // Bounded: a server gets a few rounds (switch, fast/full auth, key) and no more.
    for _ in 0..6 {
        let (seq, p) = stream.read_packet(1 << 16, timeout).await?;
        let next = seq.wrapping_add(1);
        match p.first() {
            Some(&OK) => return Ok(ServerHello { version, connection_id, capabilities: caps }),
            Some(&ERR) => return Err(AuthError::Refused(err_message(&p))),
            Some(0xFE) => {
                let switch =
                    ParseBuf(&p).parse::<AuthSwitchRequest<'_>>(()).map_err(|_| AuthError::Protocol("auth switch"))?;
                plugin = switch.auth_plugin().as_bytes().to_vec();
                nonce = switch.plugin_data().to_vec();
                if nonce.last() == Some(&0) {
                    nonce.pop();
                }
                let s = scramble(&plugin, &nonce, password)?;
                stream.send(next, &s, timeout).await?;
            }
            Some(0x01) if plugin == b"caching_sha2_password" => match p.get(1) {
                // Fast authentication succeeded; the OK follows.
                Some(3) => {}
                // Full authentication over TLS: the password in clear (NUL-terminated); the
                // connection is encrypted.
                Some(4) if encrypted => {
                    let mut clear = Vec::with_capacity(password.len() + 1);
                    clear.extend_from_slice(password.as_bytes());
                    clear.push(0);
                    stream.send(next, &clear, timeout).await?;
                }
                // Full authentication: ask for the server's public key, then send the
                // encrypted password.
                Some(4) => {
                    stream.send(next, &[2], timeout).await?;
                    let (seq, key) = stream.read_packet(1 << 16, timeout).await?;
                    let pem =
                        key.get(1..).filter(|_| key.first() == Some(&0x01)).ok_or(AuthError::Protocol("public key"))?;
                    let enc = rsa_encrypt_password(password, &nonce, pem)?;
                    stream.send(seq.wrapping_add(1), &enc, timeout).await?;
                }
                _ => return Err(AuthError::Protocol("caching_sha2_password state")),
            },
            _ => return Err(AuthError::Protocol("unexpected packet during login")),
        }
    }
    Err(AuthError::Protocol("too many authentication rounds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_plugin_is_an_error() {
        assert!(matches!(scramble(b"auth_gssapi_client", b"x", "p"), Err(AuthError::Plugin(_))));
        assert_eq!(scramble(b"mysql_native_password", b"12345678901234567890", "").unwrap(), Vec::<u8>::new());
        assert_eq!(scramble(b"caching_sha2_password", b"12345678901234567890", "pw").unwrap().len(), 32);
    }

    #[test]
    fn bad_rsa_key_is_an_error_not_a_panic() {
        let r = rsa_encrypt_password("pw", b"nonce", b"-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----");
        assert!(r.is_err());
        assert!(rsa_encrypt_password("pw", b"", b"").is_err());
    }
}

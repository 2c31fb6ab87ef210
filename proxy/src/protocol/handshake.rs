//! The server side of the connection phase: the greeting rwsplit sends, the client's handshake
//! response, and `mysql_native_password` verification against rwsplit's own user list.
//!
//! rwsplit stores only SHA1(SHA1(password)) per user (what `PASSWORD()` prints, without the
//! star), exactly what the server needs to check a native-password scramble:
//! the client sends `SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))`; XOR-ing with
//! `SHA1(nonce + stored)` gives back SHA1(pw), whose SHA1 must equal `stored`.

use super::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use sha1::{Digest, Sha1};

/// The plugin rwsplit authenticates clients with.
pub const NATIVE_PASSWORD: &str = "mysql_native_password";

/// Default collation announced in the greeting: utf8mb4_general_ci.
pub const DEFAULT_COLLATION: u8 = 45;

/// A 20-byte nonce as servers make it: random bytes, none of them NUL (it is sent
/// NUL-terminated in an auth switch).
pub fn new_nonce() -> [u8; 20] {
    let mut n = [0u8; 20];
    for b in &mut n {
        *b = rand::random_range(1u8..=127);
    }
    n
}

/// The initial handshake packet (protocol version 10).
pub fn greeting_payload(
    server_version: &str,
    connection_id: u32,
    nonce: &[u8; 20],
    caps: CapabilityFlags,
    mariadb_caps: MariadbCapabilities,
) -> Vec<u8> {
    let mut first = [0u8; 8];
    first.copy_from_slice(&nonce[..8]);
    // The second part is sent with its NUL terminator, as servers do.
    let mut second = nonce[8..].to_vec();
    second.push(0);
    let packet = HandshakePacket::new(
        10,
        server_version.as_bytes(),
        connection_id,
        first,
        Some(second),
        caps,
        DEFAULT_COLLATION,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(NATIVE_PASSWORD.as_bytes()),
    )
    .with_mariadb_ext_capabilities(mariadb_caps);
    let mut out = Vec::with_capacity(96);
    packet.serialize(&mut out);
    out
}

/// Parses a server's greeting (protocol 10). mysql_common reads the auth-data length byte as
/// a signed number and subtracts from it, which overflows for lengths of 0x80 and more: such a
/// greeting is refused here before it gets there.
pub fn parse_greeting(payload: &[u8]) -> Option<HandshakePacket<'_>> {
    let version_end = payload.get(1..)?.iter().position(|&b| b == 0)? + 1;
    // protocol, version NUL, connection id 4, scramble 8, filler 1, caps 2, collation 1,
    // status 2, caps 2, then the auth-data length.
    let len_at = version_end + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2;
    if *payload.get(len_at)? >= 0x80 {
        return None;
    }
    ParseBuf(payload).parse::<HandshakePacket<'_>>(()).ok()
}

/// What a client asked for in its handshake response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLogin {
    /// Client capabilities intersected with what rwsplit offered.
    pub capabilities: CapabilityFlags,
    /// Collation id: the session's character set from the first packet on.
    pub collation: u8,
    pub user: String,
    /// The scramble (auth response) the client computed.
    pub auth_response: Vec<u8>,
    /// Schema to start in (CLIENT_CONNECT_WITH_DB).
    pub schema: Option<String>,
    /// The auth plugin the client used.
    pub plugin: Option<String>,
    /// MariaDB extended capabilities, intersected with what rwsplit offered.
    pub mariadb_capabilities: MariadbCapabilities,
}

/// Why a handshake response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("malformed handshake response")]
    Malformed,
    #[error("client requires protocol 4.1")]
    OldProtocol,
    /// An SSLRequest: switch to TLS, then read the real handshake response.
    #[error("client requested TLS")]
    TlsRequested,
}

/// Parses the client's handshake response.
pub fn parse_handshake_response(
    payload: &[u8],
    offered: CapabilityFlags,
    offered_mariadb: MariadbCapabilities,
) -> Result<ClientLogin, LoginError> {
    // An SSLRequest is the 32-byte prefix of a handshake response, with CLIENT_SSL set; the
    // full response follows over TLS.
    if payload.len() >= 4 {
        let caps =
            CapabilityFlags::from_bits_truncate(u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]));
        if caps.contains(CapabilityFlags::CLIENT_SSL) && payload.len() == 32 {
            return Err(LoginError::TlsRequested);
        }
        if !caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
            return Err(LoginError::OldProtocol);
        }
    }
    let resp = ParseBuf(payload).parse::<HandshakeResponse<'_>>(()).map_err(|_| LoginError::Malformed)?;
    Ok(ClientLogin {
        capabilities: resp.capabilities() & offered,
        collation: resp.collation(),
        user: String::from_utf8_lossy(resp.user()).into_owned(),
        auth_response: resp.scramble_buf().to_vec(),
        schema: resp.db_name().filter(|d| !d.is_empty()).map(|d| String::from_utf8_lossy(d).into_owned()),
        plugin: resp.auth_plugin().map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned()),
        // Only clients that leave CLIENT_MYSQL out speak MariaDB's extensions.
        mariadb_capabilities: if resp.capabilities().contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
            MariadbCapabilities::empty()
        } else {
            resp.mariadb_ext_capabilities() & offered_mariadb
        },
    })
}

/// An AuthSwitchRequest to `mysql_native_password` with `nonce`, for clients that started
/// with another plugin (e.g. MySQL 8 clients default to caching_sha2_password).
pub fn auth_switch_payload(nonce: &[u8; 20]) -> Vec<u8> {
    let mut data = nonce.to_vec();
    data.push(0);
    let req = AuthSwitchRequest::new(AuthPlugin::MysqlNativePassword.as_bytes().to_vec(), data);
    let mut out = Vec::with_capacity(48);
    req.serialize(&mut out);
    out
}

/// A COM_CHANGE_USER request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeUser {
    pub user: String,
    pub auth_response: Vec<u8>,
    pub schema: Option<String>,
    /// Collation id, when the client sent one.
    pub collation: Option<u8>,
    pub plugin: Option<String>,
}

/// Splits off a NUL-terminated string (or the rest, when the NUL is missing at the end).
fn take_cstr(buf: &[u8]) -> (&[u8], &[u8]) {
    match buf.iter().position(|&b| b == 0) {
        Some(i) => (&buf[..i], &buf[i + 1..]),
        None => (buf, &[]),
    }
}

/// Parses COM_CHANGE_USER: `0x11, user NUL, auth (1-byte length + data), schema NUL,
/// [collation u16], [plugin NUL], [attributes]` (protocol 4.1 with secure connection).
/// mysql_common reads this packet too but exposes none of its fields.
pub fn parse_change_user(payload: &[u8]) -> Option<ChangeUser> {
    let rest = payload.get(1..)?;
    let (user, rest) = take_cstr(rest);
    let len = usize::from(*rest.first()?);
    let auth = rest.get(1..1 + len)?;
    let rest = &rest[1 + len..];
    let (schema, rest) = take_cstr(rest);
    let (collation, rest) = match rest.get(..2) {
        Some(c) => (Some(c[0]), &rest[2..]),
        None => (None, rest),
    };
    let plugin = (!rest.is_empty()).then(|| String::from_utf8_lossy(take_cstr(rest).0).into_owned());
    Some(ChangeUser {
        user: String::from_utf8_lossy(user).into_owned(),
        auth_response: auth.to_vec(),
        schema: (!schema.is_empty()).then(|| String::from_utf8_lossy(schema).into_owned()),
        collation,
        plugin,
    })
}

/// The credential rwsplit checks a user's login against.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The user has no password: the client must send an empty response.
    Empty,
    /// SHA1(SHA1(password)).
    Native([u8; 20]),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Empty => "Credential::Empty",
            Credential::Native(_) => "Credential::Native(<redacted>)",
        })
    }
}

impl Credential {
    /// From a clear-text password.
    pub fn from_password(password: &str) -> Self {
        if password.is_empty() {
            return Credential::Empty;
        }
        let once = Sha1::digest(password.as_bytes());
        Credential::Native(Sha1::digest(once).into())
    }

    /// From `*` + 40 hex digits (validated by the config); `None` if malformed.
    pub fn from_hash(hash: &str) -> Option<Self> {
        let hex = hash.strip_prefix('*')?;
        if hex.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Credential::Native(out))
    }

    /// Checks a native-password scramble computed over `nonce`.
    pub fn verify_native(&self, nonce: &[u8], response: &[u8]) -> bool {
        match self {
            Credential::Empty => response.is_empty(),
            Credential::Native(stored) => {
                if response.len() != 20 {
                    return false;
                }
                let mut h = Sha1::new();
                h.update(nonce);
                h.update(stored);
                let mask: [u8; 20] = h.finalize().into();
                let mut candidate = [0u8; 20];
                for i in 0..20 {
                    candidate[i] = response[i] ^ mask[i];
                }
                let check: [u8; 20] = Sha1::digest(candidate).into();
                // Constant time: no early exit on the first differing byte.
                check.iter().zip(stored.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::scramble::scramble_native;

    #[test]
    fn native_scramble_verifies_and_wrong_password_fails() {
        let nonce = new_nonce();
        assert!(nonce.iter().all(|&b| b != 0));
        let cred = Credential::from_password("app");
        let good = scramble_native(&nonce, b"app").unwrap();
        assert!(cred.verify_native(&nonce, &good));
        let bad = scramble_native(&nonce, b"apq").unwrap();
        assert!(!cred.verify_native(&nonce, &bad));
        assert!(!cred.verify_native(&nonce, &good[..19]));
        assert!(!cred.verify_native(&new_nonce(), &good));
    }

    #[test]
    fn hash_form_matches_password_form() {
        // SELECT PASSWORD('app') on MariaDB 10.11.
        let from_hash = Credential::from_hash("*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3").unwrap();
        assert_eq!(from_hash, Credential::from_password("app"));
        assert_eq!(Credential::from_hash("*XYZ"), None);
        assert_eq!(Credential::from_hash("5BCB3E6AC345B435C7C2E6B7949A803F4A0F5C2BAA"), None);
    }

    #[test]
    fn empty_password_needs_empty_response() {
        let c = Credential::from_password("");
        assert!(c.verify_native(&new_nonce(), b""));
        assert!(!c.verify_native(&new_nonce(), &[1; 20]));
        assert!(!format!("{:?}", Credential::from_password("x")).contains('['));
    }

    #[test]
    fn change_user_golden_and_truncations() {
        // As libmariadb sends it: user, 20-byte scramble, schema, utf8mb4 (45), plugin.
        let mut p = vec![0x11];
        p.extend_from_slice(b"app\0");
        p.push(20);
        p.extend_from_slice(&[7u8; 20]);
        p.extend_from_slice(b"db_test\0");
        p.extend_from_slice(&[45, 0]);
        p.extend_from_slice(b"mysql_native_password\0");
        let c = parse_change_user(&p).unwrap();
        assert_eq!(c.user, "app");
        assert_eq!(c.auth_response, vec![7u8; 20]);
        assert_eq!(c.schema.as_deref(), Some("db_test"));
        assert_eq!(c.collation, Some(45));
        assert_eq!(c.plugin.as_deref(), Some(NATIVE_PASSWORD));
        for n in 0..p.len() {
            let _ = parse_change_user(&p[..n]);
        }
        assert_eq!(parse_change_user(&[0x11]), None);
        let minimal = [0x11, b'u', 0, 0, 0];
        let c = parse_change_user(&minimal).unwrap();
        assert_eq!((c.user.as_str(), c.schema, c.collation), ("u", None, None));
    }

    #[test]
    fn hostile_greetings_are_refused_not_panics() {
        let nonce = new_nonce();
        let good = greeting_payload(
            "10.11.6-MariaDB",
            1,
            &nonce,
            crate::protocol::offered_capabilities(),
            MariadbCapabilities::empty(),
        );
        assert!(parse_greeting(&good).is_some());
        // The auth-data length byte set to 0xC2 (found by fuzzing: overflow in mysql_common).
        let len_at = good.iter().position(|&b| b == 0).unwrap() + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2;
        let mut bad = good.clone();
        bad[len_at] = 0xC2;
        assert!(parse_greeting(&bad).is_none());
        for n in 0..good.len() {
            let _ = parse_greeting(&good[..n]);
        }
        let fuzzed = [0xff, 0x04, 0x0a, 0x00, 0xc2, 0x00, 0x28, 0xff, 0x04, 0x0a, 0xfd];
        let mut f = fuzzed.to_vec();
        f.extend_from_slice(&[0x81; 26]);
        f.extend_from_slice(&[0x24, 0x42, 0x2b]);
        let _ = parse_greeting(&f);
    }

    #[test]
    fn greeting_parses_back() {
        let nonce = new_nonce();
        let offered = crate::protocol::offered_capabilities() - CapabilityFlags::CLIENT_LONG_PASSWORD;
        let ext = crate::protocol::offered_mariadb_capabilities();
        let p = greeting_payload("10.11.6-MariaDB-rwsplit", 42, &nonce, offered, ext);
        let g = ParseBuf(&p).parse::<HandshakePacket<'_>>(()).unwrap();
        assert_eq!(
            g.mariadb_ext_capabilities(),
            MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA | MariadbCapabilities::MARIADB_CLIENT_CACHE_METADATA
        );
        assert_eq!(g.connection_id(), 42);
        assert_eq!(g.nonce(), nonce.to_vec());
        assert_eq!(g.auth_plugin_name_ref(), Some(NATIVE_PASSWORD.as_bytes()));
        assert!(g.capabilities().contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
        assert!(!g.capabilities().contains(CapabilityFlags::CLIENT_SSL));
        assert!(!g.capabilities().contains(CapabilityFlags::CLIENT_COMPRESS));
    }

    #[test]
    fn handshake_response_round_trip_and_rejections() {
        let caps = crate::protocol::offered_capabilities() | CapabilityFlags::CLIENT_COMPRESS;
        let resp = HandshakeResponse::new(
            Some(vec![1u8; 20]),
            (10, 11, 6),
            Some(b"app".to_vec()),
            Some(b"db_test".to_vec()),
            Some(AuthPlugin::MysqlNativePassword),
            caps,
            None,
            1 << 24,
        );
        let mut p = Vec::new();
        resp.serialize(&mut p);
        let none = MariadbCapabilities::empty();
        let login = parse_handshake_response(&p, crate::protocol::offered_capabilities(), none).unwrap();
        assert_eq!(login.user, "app");
        assert_eq!(login.schema.as_deref(), Some("db_test"));
        assert_eq!(login.auth_response, vec![1u8; 20]);
        assert_eq!(login.plugin.as_deref(), Some(NATIVE_PASSWORD));
        assert!(!login.capabilities.contains(CapabilityFlags::CLIENT_COMPRESS), "never more than offered");
        // SSLRequest
        let ssl = (CapabilityFlags::CLIENT_SSL | CapabilityFlags::CLIENT_PROTOCOL_41).bits().to_le_bytes();
        let mut req = ssl.to_vec();
        req.resize(32, 0);
        assert_eq!(parse_handshake_response(&req, caps, none), Err(LoginError::TlsRequested));
        // Truncations never panic.
        for n in 0..p.len() {
            let _ = parse_handshake_response(&p[..n], caps, none);
        }
    }

    #[test]
    fn mariadb_extensions_only_from_clients_without_client_mysql() {
        let all = MariadbCapabilities::all();
        let offered = crate::protocol::offered_mariadb_capabilities();
        let response = |caps: CapabilityFlags| {
            let mut p = Vec::new();
            HandshakeResponse::new(
                Some(vec![1u8; 20]),
                (10, 11, 6),
                Some(b"app".to_vec()),
                None::<Vec<u8>>,
                None,
                caps,
                None,
                1 << 24,
            )
            .with_mariadb_ext_capabilities(all)
            .serialize(&mut p);
            p
        };
        let mariadb_client = crate::protocol::offered_capabilities() - CapabilityFlags::CLIENT_LONG_PASSWORD;
        let login = parse_handshake_response(&response(mariadb_client), mariadb_client, offered).unwrap();
        assert_eq!(login.mariadb_capabilities, offered, "never more than offered");
        let mysql_client = crate::protocol::offered_capabilities();
        let login = parse_handshake_response(&response(mysql_client), mysql_client, offered).unwrap();
        assert!(login.mariadb_capabilities.is_empty());
    }
}

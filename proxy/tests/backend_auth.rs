//! Logging into a server as MySQL 8 asks by default: `caching_sha2_password`, including its
//! full authentication, where the password goes RSA-encrypted with the server's public key
//! because the connection is not on TLS. No MySQL 8 package is in Debian, so a scripted server
//! plays MySQL's side of the exchange byte for byte; the RSA key pair and the decryption come
//! from `openssl`, independent of the code under test. The same over TLS (the SSLRequest, the
//! handshake, the password in clear inside it), and TLS refusals: a server without CLIENT_SSL,
//! a certificate from another CA.

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::packets::HandshakePacket;
use mysql_common::proto::MySerialize;
use mysql_common::scramble::scramble_sha256;
use rwsplit_proxy::backend::auth::{login, AuthError};
use rwsplit_proxy::protocol::connection::PacketStream;
use std::process::Command;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

const NONCE: [u8; 20] = *b"abcdefghij0123456789";
const T: Duration = Duration::from_secs(5);

fn caps() -> CapabilityFlags {
    CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_DEPRECATE_EOF
}

fn greeting(plugin: &str) -> Vec<u8> {
    let mut first = [0u8; 8];
    first.copy_from_slice(&NONCE[..8]);
    let mut second = NONCE[8..].to_vec();
    second.push(0);
    let g = HandshakePacket::new(
        10,
        &b"8.0.36"[..],
        7,
        first,
        Some(second),
        caps(),
        255,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(plugin.as_bytes()),
    );
    let mut out = Vec::new();
    g.serialize(&mut out);
    out
}

const OK: &[u8] = &[0, 0, 0, 2, 0, 0, 0];

/// An RSA key pair made by openssl: (private key path, public key PEM).
fn keypair(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let key = dir.join("key.pem");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let public = Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key).output().unwrap();
    assert!(public.status.success());
    (key, public.stdout)
}

/// Decrypts with openssl (OAEP, as MySQL 8.0.5+ uses).
fn decrypt(key: &std::path::Path, data: &[u8]) -> Vec<u8> {
    let input = key.with_extension("enc");
    std::fs::write(&input, data).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-decrypt", "-pkeyopt", "rsa_padding_mode:oaep", "-inkey"])
        .arg(key)
        .arg("-in")
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

async fn pair() -> (PacketStream, PacketStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    (PacketStream::new(c.unwrap()), PacketStream::new(s.unwrap().0))
}

/// Reads the handshake response and returns the scramble it carries (after user NUL, lenenc).
fn scramble_of(resp: &[u8]) -> Vec<u8> {
    let rest = &resp[32..];
    let user_end = rest.iter().position(|&b| b == 0).unwrap();
    assert_eq!(&rest[..user_end], b"rw");
    let len = rest[user_end + 1] as usize;
    rest[user_end + 2..user_end + 2 + len].to_vec()
}

#[tokio::test]
async fn caching_sha2_full_authentication_over_rsa() {
    let dir = tempfile::tempdir().unwrap();
    let (key, pem) = keypair(dir.path());
    let (mut client, mut server) = pair().await;
    let srv = tokio::spawn(async move {
        server.send(0, &greeting("caching_sha2_password"), T).await.unwrap();
        let (seq, resp) = server.read_packet(1 << 16, T).await.unwrap();
        assert_eq!(seq, 1);
        assert_eq!(scramble_of(&resp), scramble_sha256(&NONCE, b"s3cret").unwrap().to_vec());
        // The password is not in the server's cache: full authentication.
        server.send(2, &[0x01, 0x04], T).await.unwrap();
        let (seq, req) = server.read_packet(1 << 16, T).await.unwrap();
        assert_eq!((seq, req.as_ref()), (3, &[0x02][..]), "client asks for the public key");
        let mut key_packet = vec![0x01];
        key_packet.extend_from_slice(&pem);
        server.send(4, &key_packet, T).await.unwrap();
        let (seq, enc) = server.read_packet(1 << 16, T).await.unwrap();
        assert_eq!(seq, 5);
        server.send(6, OK, T).await.unwrap();
        enc.to_vec()
    });
    let hello = login(&mut client, "rw", "s3cret", format(CapabilityFlags::CLIENT_DEPRECATE_EOF), None, T)
        .await
        .expect("login");
    assert_eq!(hello.connection_id, 7);
    assert!(hello.capabilities.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
    let enc = srv.await.unwrap();
    let clear: Vec<u8> = decrypt(&key, &enc).iter().enumerate().map(|(i, b)| b ^ NONCE[i % NONCE.len()]).collect();
    assert_eq!(clear, b"s3cret\0", "the server recovers the password, NUL-terminated");
}

#[tokio::test]
async fn caching_sha2_fast_path_and_refusal() {
    let (mut client, mut server) = pair().await;
    let srv = tokio::spawn(async move {
        server.send(0, &greeting("caching_sha2_password"), T).await.unwrap();
        server.read_packet(1 << 16, T).await.unwrap();
        server.send(2, &[0x01, 0x03], T).await.unwrap(); // fast auth success
        server.send(3, OK, T).await.unwrap();
    });
    login(&mut client, "rw", "s3cret", rwsplit_proxy::protocol::ResponseFormat::plain(), None, T)
        .await
        .expect("fast path");
    srv.await.unwrap();

    let (mut client, mut server) = pair().await;
    let srv = tokio::spawn(async move {
        server.send(0, &greeting("caching_sha2_password"), T).await.unwrap();
        server.read_packet(1 << 16, T).await.unwrap();
        let mut err = vec![0xFF, 0x15, 0x04, b'#'];
        err.extend_from_slice(b"28000Access denied for user 'rw'");
        server.send(2, &err, T).await.unwrap();
    });
    match login(&mut client, "rw", "wrong", rwsplit_proxy::protocol::ResponseFormat::plain(), None, T).await {
        Err(AuthError::Refused(msg)) => {
            assert!(msg.contains("Access denied"));
            assert!(!msg.contains("wrong"), "no password in errors");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    srv.await.unwrap();
}

#[tokio::test]
async fn auth_switch_from_native_to_caching_sha2() {
    let (mut client, mut server) = pair().await;
    let srv = tokio::spawn(async move {
        server.send(0, &greeting("mysql_native_password"), T).await.unwrap();
        server.read_packet(1 << 16, T).await.unwrap();
        let fresh = *b"ZYXWVUTSRQ9876543210";
        let mut switch = vec![0xFE];
        switch.extend_from_slice(b"caching_sha2_password\0");
        switch.extend_from_slice(&fresh);
        switch.push(0);
        server.send(2, &switch, T).await.unwrap();
        let (seq, s) = server.read_packet(1 << 16, T).await.unwrap();
        assert_eq!(seq, 3);
        assert_eq!(s.to_vec(), scramble_sha256(&fresh, b"s3cret").unwrap().to_vec(), "scrambled with the new nonce");
        server.send(4, &[0x01, 0x03], T).await.unwrap();
        server.send(5, OK, T).await.unwrap();
    });
    login(&mut client, "rw", "s3cret", rwsplit_proxy::protocol::ResponseFormat::plain(), None, T)
        .await
        .expect("switch");
    srv.await.unwrap();
}

/// A response format without MariaDB extensions (the scripted server is MySQL 8).
fn format(caps: CapabilityFlags) -> rwsplit_proxy::protocol::ResponseFormat {
    rwsplit_proxy::protocol::ResponseFormat { caps, ..rwsplit_proxy::protocol::ResponseFormat::plain() }
}

/// A client with MariaDB's cached metadata must not be served by a server without it: its
/// responses would lack the byte the client reads after each column count.
#[tokio::test]
async fn a_server_without_a_mariadb_capability_the_client_has_is_refused() {
    let (mut client, mut server) = pair().await;
    let srv = tokio::spawn(async move {
        server.send(0, &greeting("mysql_native_password"), T).await.unwrap();
    });
    let wanted = rwsplit_proxy::protocol::ResponseFormat { cache_metadata: true, ..format(CapabilityFlags::empty()) };
    let err = login(&mut client, "rw", "s3cret", wanted, None, T).await.expect_err("refused");
    assert!(err.to_string().contains("MariaDB capability"), "{err}");
    srv.await.unwrap();
}

/// A CA and a certificate it signed for IP:127.0.0.1, made by openssl in `dir`:
/// (CA path, certificate path, key path).
fn tls_files(dir: &std::path::Path, prefix: &str) -> (String, String, String) {
    let p = |n: &str| dir.join(format!("{prefix}-{n}")).to_str().unwrap().to_string();
    let cnf = p("openssl.cnf");
    std::fs::write(
        &cnf,
        "[req]\ndistinguished_name=dn\n[dn]\n[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n\
         [server]\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let (ca, ca_key, cert, key, csr) = (p("ca.pem"), p("ca-key.pem"), p("cert.pem"), p("key.pem"), p("csr"));
    run(&["req", "-x509", "-config", &cnf, "-extensions", "ca", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        .iter()
        .copied()
        .chain(["-subj", &format!("/CN=test CA {prefix}"), "-keyout", &ca_key, "-out", &ca])
        .collect::<Vec<_>>());
    run(&["req", "-new", "-config", &cnf, "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=server", "-keyout", &key]
        .iter()
        .copied()
        .chain(["-out", &csr])
        .collect::<Vec<_>>());
    run(&["x509", "-req", "-in", &csr, "-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial", "-days", "1"]
        .iter()
        .copied()
        .chain(["-extfile", &cnf, "-extensions", "server", "-out", &cert])
        .collect::<Vec<_>>());
    (ca, cert, key)
}

fn greeting_with_ssl(plugin: &str) -> Vec<u8> {
    let mut g = greeting(plugin);
    // The lower capability bytes follow protocol, version NUL, id 4, nonce 8, filler 1.
    let at = 1 + b"8.0.36".len() + 1 + 4 + 8 + 1;
    let lower = u16::from_le_bytes([g[at], g[at + 1]]) | CapabilityFlags::CLIENT_SSL.bits() as u16;
    g[at..at + 2].copy_from_slice(&lower.to_le_bytes());
    g
}

#[tokio::test]
async fn tls_login_with_caching_sha2_full_authentication_in_clear_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path(), "good");
    let acceptor = rwsplit_proxy::tls::acceptor(&cert, &key).unwrap();
    let (mut client, mut server) = pair().await;
    let srv = tokio::spawn(async move {
        server.send(0, &greeting_with_ssl("caching_sha2_password"), T).await.unwrap();
        let (seq, req) = server.read_packet(1 << 16, T).await.unwrap();
        assert_eq!((seq, req.len()), (1, 32), "an SSLRequest");
        let caps = CapabilityFlags::from_bits_truncate(u32::from_le_bytes(req[..4].try_into().unwrap()));
        assert!(caps.contains(CapabilityFlags::CLIENT_SSL));
        let mut server = server.into_tls(&acceptor.0, T).await.expect("TLS handshake");
        let (seq, resp) = server.read_packet(1 << 16, T).await.unwrap();
        assert_eq!(seq, 2);
        assert_eq!(&resp[..32], &req[..], "the response starts as the SSLRequest did");
        assert_eq!(scramble_of(&resp), scramble_sha256(&NONCE, b"s3cret").unwrap().to_vec());
        server.send(3, &[0x01, 0x04], T).await.unwrap(); // full authentication
        let (seq, pw) = server.read_packet(1 << 16, T).await.unwrap();
        assert_eq!((seq, pw.as_ref()), (4, &b"s3cret\0"[..]), "the password in clear, inside TLS");
        server.send(5, OK, T).await.unwrap();
    });
    let connector = rwsplit_proxy::backend::tls::connector(&ca, None).unwrap();
    let name = rwsplit_proxy::backend::tls::server_name("127.0.0.1:3306").unwrap();
    login(&mut client, "rw", "s3cret", rwsplit_proxy::protocol::ResponseFormat::plain(), Some((&connector.0, name)), T)
        .await
        .expect("login over TLS");
    assert!(client.is_tls());
    srv.await.unwrap();
}

#[tokio::test]
async fn tls_refused_without_the_capability_or_with_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = tls_files(dir.path(), "good");
    let (other_ca, _, _) = tls_files(dir.path(), "other");
    let connector = rwsplit_proxy::backend::tls::connector(&other_ca, None).unwrap();
    let name = || rwsplit_proxy::backend::tls::server_name("127.0.0.1:3306").unwrap();
    let plain = rwsplit_proxy::protocol::ResponseFormat::plain();

    // No CLIENT_SSL in the greeting: refused before anything is sent.
    let (mut client, mut server) = pair().await;
    server.send(0, &greeting("mysql_native_password"), T).await.unwrap();
    match login(&mut client, "rw", "s3cret", plain, Some((&connector.0, name())), T).await {
        Err(AuthError::Tls(m)) => assert!(m.contains("does not offer TLS"), "{m}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }

    // A certificate the CA did not sign.
    let acceptor = rwsplit_proxy::tls::acceptor(&cert, &key).unwrap();
    let (mut client, mut server) = pair().await;
    let srv = tokio::spawn(async move {
        server.send(0, &greeting_with_ssl("mysql_native_password"), T).await.unwrap();
        server.read_packet(1 << 16, T).await.unwrap();
        assert!(server.into_tls(&acceptor.0, T).await.is_err(), "the client rejects the certificate");
    });
    match login(&mut client, "rw", "s3cret", plain, Some((&connector.0, name())), T).await {
        Err(AuthError::Tls(m)) => assert!(m.contains("invalid peer certificate: UnknownIssuer"), "{m}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    srv.await.unwrap();
}

//! Protocol corners no client library in the tests exercises, spoken byte by byte: long data
//! (COM_STMT_SEND_LONG_DATA), EXECUTE with new-params-bound = 0 on a connection that never saw
//! the types, COM_STMT_RESET / CLOSE, COM_FIELD_LIST, COM_STATISTICS, an unsupported command,
//! and a malformed packet (ERR, then only that client is closed).

use rwsplit_tests::*;
use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Raw {
    s: TcpStream,
}

const CAPS: u32 = 0x0000_0001 // LONG_PASSWORD
    | 0x0000_0008 // CONNECT_WITH_DB
    | 0x0000_0200 // PROTOCOL_41
    | 0x0000_2000 // TRANSACTIONS
    | 0x0000_8000 // SECURE_CONNECTION
    | 0x0002_0000 // MULTI_RESULTS
    | 0x0008_0000; // PLUGIN_AUTH

impl Raw {
    fn read(&mut self) -> (u8, Vec<u8>) {
        let mut h = [0u8; 4];
        self.s.read_exact(&mut h).expect("packet header");
        let len = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
        let mut p = vec![0; len];
        self.s.read_exact(&mut p).expect("packet payload");
        (h[3], p)
    }

    fn write(&mut self, seq: u8, payload: &[u8]) {
        let len = payload.len() as u32;
        let mut b = len.to_le_bytes()[..3].to_vec();
        b.push(seq);
        b.extend_from_slice(payload);
        self.s.write_all(&b).unwrap();
    }

    fn command(&mut self, payload: &[u8]) -> Vec<u8> {
        self.write(0, payload);
        self.read().1
    }

    fn connect(port: u16, db: &str) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = Raw { s };
        let (_, g) = r.read();
        assert_eq!(g[0], 10, "protocol 10 greeting");
        let ver_end = g.iter().position(|&b| b == 0).unwrap();
        let mut at = ver_end + 1 + 4;
        let mut nonce = g[at..at + 8].to_vec();
        at += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
        nonce.extend_from_slice(&g[at..at + 12]);
        let h1 = Sha1::digest(APP_PASSWORD.as_bytes());
        let h2 = Sha1::digest(h1);
        let mut m = Sha1::new();
        m.update(&nonce);
        m.update(h2);
        let mask = m.finalize();
        let scramble: Vec<u8> = h1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        let mut p = CAPS.to_le_bytes().to_vec();
        p.extend_from_slice(&(1u32 << 24).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(APP_USER.as_bytes());
        p.push(0);
        p.push(20);
        p.extend_from_slice(&scramble);
        p.extend_from_slice(db.as_bytes());
        p.push(0);
        p.extend_from_slice(b"mysql_native_password\0");
        r.write(1, &p);
        let (_, ok) = r.read();
        assert_eq!(ok[0], 0, "login OK, got {ok:?}");
        r
    }

    /// COM_QUERY; the whole response as packets.
    fn query(&mut self, sql: &str) -> Vec<Vec<u8>> {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.write(0, &p);
        self.result()
    }

    /// Packets of one response (classic EOF): OK/ERR, or column count, definitions, EOF, rows, EOF.
    fn result(&mut self) -> Vec<Vec<u8>> {
        let first = self.read().1;
        if first[0] == 0x00 || first[0] == 0xFF {
            return vec![first];
        }
        let n = first[0] as usize;
        let mut out = vec![first];
        for _ in 0..n + 1 {
            out.push(self.read().1);
        }
        loop {
            let p = self.read().1;
            let end = (p[0] == 0xFE && p.len() < 9) || p[0] == 0xFF;
            out.push(p);
            if end {
                return out;
            }
        }
    }

    /// COM_STMT_PREPARE: (statement id, params, columns), with the definitions read.
    fn prepare(&mut self, sql: &str) -> (u32, u16, u16) {
        let mut p = vec![0x16];
        p.extend_from_slice(sql.as_bytes());
        self.write(0, &p);
        let ok = self.read().1;
        assert_eq!(ok[0], 0, "prepare {sql}: {}", String::from_utf8_lossy(&ok));
        let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
        let cols = u16::from_le_bytes([ok[5], ok[6]]);
        let params = u16::from_le_bytes([ok[7], ok[8]]);
        for n in [params, cols] {
            if n > 0 {
                for _ in 0..=n {
                    self.read();
                }
            }
        }
        (id, params, cols)
    }
}

fn err_code(p: &[u8]) -> Option<u16> {
    (p.first() == Some(&0xFF)).then(|| u16::from_le_bytes([p[1], p[2]]))
}

fn proxy() -> &'static Proxy {
    tokio::task::block_in_place(Proxy::shared_alternating)
}

#[test]
fn long_data_then_execute_writes_the_whole_value() {
    let c = Cluster::shared();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(c.fresh_db("rawproto")).unwrap();
    rt.block_on(c.exec(MASTER, "CREATE TABLE rawproto.t (id INT PRIMARY KEY, b LONGBLOB)")).unwrap();
    rt.block_on(c.wait_replicated()).unwrap();
    let p = proxy();
    let _log = p.log_on_panic();
    let mut r = Raw::connect(p.port(), "rawproto");
    let (id, params, _) = r.prepare("INSERT INTO t (id, b) VALUES (?, ?)");
    assert_eq!(params, 2);
    // Three pieces of long data for parameter 1 (no response to these).
    for piece in [b'a', b'b', b'c'] {
        let mut ld = vec![0x18];
        ld.extend_from_slice(&id.to_le_bytes());
        ld.extend_from_slice(&1u16.to_le_bytes());
        ld.extend_from_slice(&vec![piece; 10_000]);
        r.write(0, &ld);
    }
    // EXECUTE: types LONG and LONG_BLOB; parameter 1's value is the long data.
    let mut ex = vec![0x17];
    ex.extend_from_slice(&id.to_le_bytes());
    ex.push(0);
    ex.extend_from_slice(&1u32.to_le_bytes());
    ex.push(0); // null bitmap
    ex.push(1); // new params bound
    ex.extend_from_slice(&[0x03, 0, 0xFB, 0]);
    ex.extend_from_slice(&7i32.to_le_bytes());
    let ok = r.command(&ex);
    assert_eq!(ok[0], 0, "execute: {}", String::from_utf8_lossy(&ok));
    let (len, md5): (u64, String) =
        rt.block_on(c.query(MASTER, "SELECT LENGTH(b), MD5(b) FROM rawproto.t WHERE id = 7")).unwrap().pop().unwrap();
    assert_eq!(len, 30_000);
    let expect: (String,) = rt
        .block_on(c.query(MASTER, "SELECT MD5(CONCAT(REPEAT('a', 10000), REPEAT('b', 10000), REPEAT('c', 10000)))"))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(md5, expect.0, "the pieces arrive in order");

    // COM_STMT_RESET drops pending long data: the next EXECUTE sends no value for it.
    let mut ld = vec![0x18];
    ld.extend_from_slice(&id.to_le_bytes());
    ld.extend_from_slice(&1u16.to_le_bytes());
    ld.extend_from_slice(b"stale");
    r.write(0, &ld);
    let mut reset = vec![0x1A];
    reset.extend_from_slice(&id.to_le_bytes());
    assert_eq!(r.command(&reset)[0], 0, "COM_STMT_RESET answers OK");

    // COM_STMT_CLOSE (no response), then EXECUTE of the closed statement: ERR 1243.
    let mut close = vec![0x19];
    close.extend_from_slice(&id.to_le_bytes());
    r.write(0, &close);
    assert_eq!(err_code(&r.command(&ex)), Some(1243));
    assert_eq!(r.command(&[0x0E])[0], 0, "still usable: COM_PING");
}

#[test]
fn execute_without_types_on_a_backend_that_never_saw_them() {
    let p = proxy();
    let _log = p.log_on_panic();
    let mut r = Raw::connect(p.port(), APP_DB);
    let (id, params, cols) = r.prepare("SELECT CAST(? AS SIGNED) + 1, @@server_id");
    assert_eq!((params, cols), (1, 2));
    let mut servers = std::collections::BTreeSet::new();
    for (i, v) in (0..10i64).map(|i| (i, 1000 + i)) {
        // Types only with the first EXECUTE, as libmysqlclient does; reads alternate between
        // replicas, so the other replica first sees this statement with new-params-bound = 0.
        let mut ex = vec![0x17];
        ex.extend_from_slice(&id.to_le_bytes());
        ex.push(0);
        ex.extend_from_slice(&1u32.to_le_bytes());
        ex.push(0);
        if i == 0 {
            ex.push(1);
            ex.extend_from_slice(&[0x08, 0]); // LONGLONG
        } else {
            ex.push(0);
        }
        ex.extend_from_slice(&v.to_le_bytes());
        r.write(0, &ex);
        let packets = r.result();
        assert!(err_code(&packets[0]).is_none(), "execute {i}: {}", String::from_utf8_lossy(&packets[0]));
        // Binary row: 0x00, null bitmap (1 byte for 2 columns), LONGLONG, then @@server_id.
        let row = &packets[packets.len() - 2];
        assert_eq!(row[0], 0x00);
        let got = i64::from_le_bytes(row[2..10].try_into().unwrap());
        assert_eq!(got, v + 1, "execute {i} on a backend without the types");
        servers.insert(row[10..].to_vec());
    }
    assert_eq!(servers.len(), 2, "the statement ran on both replicas");
}

#[test]
fn field_list_statistics_and_unsupported_commands() {
    let c = Cluster::shared();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(c.exec(MASTER, "CREATE TABLE IF NOT EXISTS db_test.fl (a INT, b VARCHAR(10))")).unwrap();
    rt.block_on(c.wait_replicated()).unwrap();
    let p = proxy();
    let _log = p.log_on_panic();
    let mut r = Raw::connect(p.port(), APP_DB);
    // COM_FIELD_LIST: two column definitions, then EOF.
    r.write(0, b"\x04fl\0");
    let mut defs = 0;
    loop {
        let (_, pkt) = r.read();
        if pkt[0] == 0xFE && pkt.len() < 9 {
            break;
        }
        assert_ne!(pkt[0], 0xFF, "{}", String::from_utf8_lossy(&pkt));
        defs += 1;
    }
    assert_eq!(defs, 2);
    // COM_STATISTICS: one plain-text packet.
    let stats = r.command(&[0x09]);
    assert!(String::from_utf8_lossy(&stats).contains("Uptime"), "{}", String::from_utf8_lossy(&stats));
    // An unsupported command gets a clear ERR, and the session goes on.
    let e = r.command(&[0x0D]); // COM_DEBUG
    assert!(err_code(&e).is_some(), "{e:?}");
    assert!(String::from_utf8_lossy(&e).contains("rwsplit"));
    let rows = r.query("SELECT 1");
    assert_eq!(rows.len(), 5, "column count, definition, EOF, row, EOF");
}

#[test]
fn a_malformed_packet_closes_only_that_client_after_an_err() {
    let p = proxy();
    let _log = p.log_on_panic();
    let mut bad = Raw::connect(p.port(), APP_DB);
    let mut good = Raw::connect(p.port(), APP_DB);
    // A command must start a sequence at 0.
    bad.write(5, b"\x03SELECT 1");
    let (_, e) = bad.read();
    assert!(err_code(&e).is_some(), "an ERR first: {e:?}");
    let mut buf = [0u8; 1];
    assert_eq!(bad.s.read(&mut buf).unwrap_or(0), 0, "then the connection is closed");
    // The other client is untouched.
    assert_eq!(good.query("SELECT 1").len(), 5);
}

#[test]
fn a_client_that_hangs_up_mid_statement_gets_its_statement_killed() {
    let c = Cluster::shared();
    let p = proxy();
    let _log = p.log_on_panic();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = |c: &Cluster| -> usize {
        [0, 1, 2]
            .into_iter()
            .map(|i| {
                let rows: Vec<(u64,)> = rt
                    .block_on(c.query(
                        i,
                        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(20.5)%'",
                    ))
                    .unwrap();
                rows.len()
            })
            .sum()
    };
    let mut r = Raw::connect(p.port(), APP_DB);
    r.write(0, b"\x03SELECT SLEEP(20.5), @@server_id");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running(c) == 0 {
        assert!(std::time::Instant::now() < deadline, "the statement never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(r);
    let hung_up = std::time::Instant::now();
    while running(c) > 0 {
        assert!(hung_up.elapsed() < Duration::from_secs(10), "the abandoned statement is still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("[raw] abandoned statement killed {:?} after the client hung up", hung_up.elapsed());
}

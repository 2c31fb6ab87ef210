//! Protocol corners no client library in the tests exercises, spoken byte by byte: long data
//! (COM_STMT_SEND_LONG_DATA), EXECUTE with new-params-bound = 0 on a connection that never saw
//! the types, COM_STMT_RESET / CLOSE, COM_FIELD_LIST, COM_STATISTICS, an unsupported command,
//! and a malformed packet (ERR, then only that client is closed).

use rwsplit_tests::raw::{RawConn, BASE_CAPS, COM_PING};
use rwsplit_tests::*;
use std::io::Read;
use std::time::Duration;

/// A raw client logged in as the lab's application user on `db`.
fn connect(port: u16, db: &str) -> RawConn {
    RawConn::connect(port, APP_USER, APP_PASSWORD, db, BASE_CAPS).expect("raw login")
}

/// COM_STMT_PREPARE: (statement id, parameters, columns).
fn prepare(r: &mut RawConn, sql: &str) -> (u32, u16, u16) {
    let (id, packets) = r.prepare(sql).expect("prepare");
    let ok = &packets[0].1;
    (id, u16::from_le_bytes([ok[7], ok[8]]), u16::from_le_bytes([ok[5], ok[6]]))
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
    let mut r = connect(p.port(), "rawproto");
    let (id, params, _) = prepare(&mut r, "INSERT INTO t (id, b) VALUES (?, ?)");
    assert_eq!(params, 2);
    // Three pieces of long data for parameter 1 (no response to these).
    for piece in [b'a', b'b', b'c'] {
        let mut ld = vec![0x18];
        ld.extend_from_slice(&id.to_le_bytes());
        ld.extend_from_slice(&1u16.to_le_bytes());
        ld.extend_from_slice(&vec![piece; 10_000]);
        r.send(&ld).unwrap();
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
    let ok = r.command(&ex).unwrap();
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
    r.send(&ld).unwrap();
    let mut reset = vec![0x1A];
    reset.extend_from_slice(&id.to_le_bytes());
    assert_eq!(r.command(&reset).unwrap()[0], 0, "COM_STMT_RESET answers OK");

    // COM_STMT_CLOSE (no response), then EXECUTE of the closed statement: ERR 1243.
    let mut close = vec![0x19];
    close.extend_from_slice(&id.to_le_bytes());
    r.send(&close).unwrap();
    assert_eq!(err_code(&r.command(&ex).unwrap()), Some(1243));
    assert_eq!(r.command(&[COM_PING]).unwrap()[0], 0, "still usable: COM_PING");
}

#[test]
fn execute_without_types_on_a_backend_that_never_saw_them() {
    let p = proxy();
    let _log = p.log_on_panic();
    let mut r = connect(p.port(), APP_DB);
    let (id, params, cols) = prepare(&mut r, "SELECT CAST(? AS SIGNED) + 1, @@server_id");
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
        r.send(&ex).unwrap();
        let packets: Vec<Vec<u8>> = r.binary_response().unwrap().into_iter().map(|(_, p)| p).collect();
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
    let mut r = connect(p.port(), APP_DB);
    // COM_FIELD_LIST: two column definitions, then EOF.
    r.send(b"\x04fl\0").unwrap();
    let mut defs = 0;
    loop {
        let (_, pkt) = r.read().unwrap();
        if pkt[0] == 0xFE && pkt.len() < 9 {
            break;
        }
        assert_ne!(pkt[0], 0xFF, "{}", String::from_utf8_lossy(&pkt));
        defs += 1;
    }
    assert_eq!(defs, 2);
    // COM_STATISTICS: one plain-text packet.
    let stats = r.command(&[0x09]).unwrap();
    assert!(String::from_utf8_lossy(&stats).contains("Uptime"), "{}", String::from_utf8_lossy(&stats));
    // An unsupported command gets a clear ERR, and the session goes on.
    let e = r.command(&[0x0D]).unwrap(); // COM_DEBUG
    assert!(err_code(&e).is_some(), "{e:?}");
    assert!(String::from_utf8_lossy(&e).contains("rwsplit"));
    let rows = r.query("SELECT 1").unwrap();
    assert_eq!(rows.len(), 5, "column count, definition, EOF, row, EOF");
}

#[test]
fn a_malformed_packet_closes_only_that_client_after_an_err() {
    let p = proxy();
    let _log = p.log_on_panic();
    let mut bad = connect(p.port(), APP_DB);
    let mut good = connect(p.port(), APP_DB);
    // A command must start a sequence at 0.
    bad.write(5, b"\x03SELECT 1").unwrap();
    let (_, e) = bad.read().unwrap();
    assert!(err_code(&e).is_some(), "an ERR first: {e:?}");
    let mut buf = [0u8; 1];
    assert_eq!(bad.stream.read(&mut buf).unwrap_or(0), 0, "then the connection is closed");
    // The other client is untouched.
    assert_eq!(good.query("SELECT 1").unwrap().len(), 5);
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
    let mut r = connect(p.port(), APP_DB);
    r.send(b"\x03SELECT SLEEP(20.5), @@server_id").unwrap();
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

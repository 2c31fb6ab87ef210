//! The few packets rwsplit composes itself and the fields it reads from servers' packets.
//! Composing follows the protocol-41 layouts; reading is limited to what routing needs
//! (status flags, counts) so rows are never decoded.

use super::{Command, StatusFlags};

/// First byte of an OK packet.
pub const OK: u8 = 0x00;
/// First byte of an EOF packet (and of an OK packet that ends a result set with DEPRECATE_EOF).
pub const EOF: u8 = 0xFE;
/// First byte of an ERR packet.
pub const ERR: u8 = 0xFF;
/// First byte of a LOCAL INFILE request.
pub const LOCAL_INFILE: u8 = 0xFB;

/// Reads a length-encoded integer at the start of `buf`: (value, bytes used).
pub fn read_lenenc(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let width = match first {
        0..=0xFA => return Some((u64::from(first), 1)),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return None, // 0xFB (NULL) and 0xFF are not integers
    };
    let bytes = buf.get(1..1 + width)?;
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        v |= u64::from(*b) << (8 * i);
    }
    Some((v, 1 + width))
}

/// Appends a length-encoded integer.
pub fn put_lenenc(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0xFA => out.push(v as u8),
        0xFB..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// The fixed part of an OK packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkHead {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: StatusFlags,
    pub warnings: u16,
}

/// Reads an OK packet's fixed part (header 0x00 or 0xFE), or `None` if it is malformed.
pub fn ok_head(payload: &[u8]) -> Option<OkHead> {
    let mut at = 1;
    let (affected_rows, n) = read_lenenc(payload.get(at..)?)?;
    at += n;
    let (last_insert_id, n) = read_lenenc(payload.get(at..)?)?;
    at += n;
    let s = payload.get(at..at + 4)?;
    Some(OkHead {
        affected_rows,
        last_insert_id,
        status: StatusFlags::from_bits_truncate(u16::from_le_bytes([s[0], s[1]])),
        warnings: u16::from_le_bytes([s[2], s[3]]),
    })
}

/// An OK packet (header 0x00 or 0xFE) from a connection with CLIENT_SESSION_TRACK, in the
/// form a server sends to a client without it: the same fields and info string, no session
/// state after them, and SERVER_SESSION_STATE_CHANGED off.
/// `None` when the packet is malformed (it is then passed on as it is).
pub fn ok_without_session_state(payload: &[u8]) -> Option<Vec<u8>> {
    let mut at = 1;
    at += read_lenenc(payload.get(at..)?)?.1;
    at += read_lenenc(payload.get(at..)?)?.1;
    let status_at = at;
    let s = payload.get(at..at + 2)?;
    let status =
        StatusFlags::from_bits_truncate(u16::from_le_bytes([s[0], s[1]])) - StatusFlags::SERVER_SESSION_STATE_CHANGED;
    at += 4;
    let rest = payload.get(at..)?;
    // The info string keeps its length prefix: servers send it length-encoded to every client
    // (MariaDB does even without session tracking, and clients read it so).
    let info = if rest.is_empty() {
        rest
    } else {
        let (len, n) = read_lenenc(rest)?;
        rest.get(..n.checked_add(usize::try_from(len).ok()?)?)?
    };
    let mut out = Vec::with_capacity(at + info.len());
    out.extend_from_slice(payload.get(..status_at)?);
    out.extend_from_slice(&status.bits().to_le_bytes());
    out.extend_from_slice(payload.get(status_at + 2..at)?);
    out.extend_from_slice(info);
    Some(out)
}

/// Status flags of an OK packet (header 0x00 or 0xFE), or `None` if it is malformed.
pub fn ok_status(payload: &[u8]) -> Option<StatusFlags> {
    ok_head(payload).map(|h| h.status)
}

/// Warning count of a classic EOF packet.
pub fn eof_warnings(payload: &[u8]) -> Option<u16> {
    let w = payload.get(1..3)?;
    Some(u16::from_le_bytes([w[0], w[1]]))
}

/// Status flags of a classic EOF packet (5 bytes: 0xFE, warnings, status).
pub fn eof_status(payload: &[u8]) -> Option<StatusFlags> {
    let s = payload.get(3..5)?;
    Some(StatusFlags::from_bits_truncate(u16::from_le_bytes([s[0], s[1]])))
}

/// A command's text (a statement, a schema name) as a string: borrowed when it is valid UTF-8,
/// as it nearly always is (one validation, word-at-a-time over ASCII), else with invalid bytes
/// replaced. `String::from_utf8_lossy` alone walks the text in chunks and cost about as much
/// as routing the statement.
pub fn command_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// A command packet's payload: the command byte, then its argument (SQL text, schema name).
pub fn command_payload(command: Command, argument: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(argument.len() + 1);
    p.push(command as u8);
    p.extend_from_slice(argument);
    p
}

/// An OK packet with no rows affected and the given status.
pub fn ok_payload(status: StatusFlags, info: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + info.len());
    p.push(OK);
    p.push(0); // affected rows
    p.push(0); // last insert id
    p.extend_from_slice(&status.bits().to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes()); // warnings
    if !info.is_empty() {
        put_lenenc(&mut p, info.len() as u64);
        p.extend_from_slice(info.as_bytes());
    }
    p
}

/// A classic EOF packet.
pub fn eof_payload(status: StatusFlags) -> Vec<u8> {
    let mut p = vec![EOF, 0, 0];
    p.extend_from_slice(&status.bits().to_le_bytes());
    p
}

/// An ERR packet (protocol 41 layout). Callers go through `ProxyError`, the one place that
/// turns rwsplit's errors into ERR packets; server ERR packets are relayed untouched.
pub fn err_payload(code: u16, sql_state: &[u8; 5], message: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(9 + message.len());
    p.push(ERR);
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(sql_state);
    p.extend_from_slice(message.as_bytes());
    p
}

/// Error code of an ERR packet.
pub fn err_code(payload: &[u8]) -> Option<u16> {
    let c = payload.get(1..3)?;
    Some(u16::from_le_bytes([c[0], c[1]]))
}

/// Message of an ERR packet, for logs.
pub fn err_message(payload: &[u8]) -> String {
    let msg = match payload.get(3) {
        Some(b'#') => payload.get(9..).unwrap_or_default(),
        _ => payload.get(3..).unwrap_or_default(),
    };
    String::from_utf8_lossy(msg).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_text_borrows_valid_text_and_replaces_invalid_bytes() {
        use super::command_text;
        assert!(matches!(command_text("SELECT 'é'".as_bytes()), std::borrow::Cow::Borrowed("SELECT 'é'")));
        assert_eq!(command_text(b"SELECT '\xff'"), "SELECT '\u{FFFD}'");
        assert_eq!(command_text(b""), "");
    }

    #[test]
    fn session_state_is_removed_for_clients_without_tracking() {
        use super::*;
        // What MariaDB 10.11 sent: affected 2, insert id 953301, status 0x4002, info, then
        // session state (last_gtid = 0-1-9).
        let mut ok = vec![0x00, 0x02, 0xfd, 0xd5, 0x8b, 0x0e, 0x02, 0x40, 0x00, 0x00, 0x05];
        ok.extend_from_slice(b"Rec 2");
        let state =
            [0x00, 0x0f, 0x09, b'l', b'a', b's', b't', b'_', b'g', b't', b'i', b'd', 0x05, b'0', b'-', b'1', b'-'];
        ok.push(state.len() as u8);
        ok.extend_from_slice(&state);
        let plain = ok_without_session_state(&ok).unwrap();
        let mut want = vec![0x00, 0x02, 0xfd, 0xd5, 0x8b, 0x0e, 0x02, 0x00, 0x00, 0x00, 0x05];
        want.extend_from_slice(b"Rec 2");
        assert_eq!(plain, want);
        // No info: the packet ends after the warnings.
        let bare = [0x00, 0x01, 0x00, 0x02, 0x40, 0x00, 0x00];
        assert_eq!(ok_without_session_state(&bare).unwrap(), vec![0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00]);
        // Truncated or garbage: no rewrite, never a panic.
        assert_eq!(ok_without_session_state(&[0x00, 0xfd, 0x01]), None);
        assert_eq!(ok_without_session_state(&[0x00, 0x01, 0x00, 0x02, 0x40, 0x00, 0x00, 0x09, b'x']), None);
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_ok_and_eof() {
        assert_eq!(ok_payload(StatusFlags::SERVER_STATUS_AUTOCOMMIT, ""), vec![0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(eof_payload(StatusFlags::SERVER_STATUS_AUTOCOMMIT), vec![0xFE, 0, 0, 2, 0]);
        // An OK from MariaDB after an INSERT: 1 row, insert id 300, autocommit+in_trans? no: autocommit only.
        let ok = [0x00, 0x01, 0xFC, 0x2C, 0x01, 0x02, 0x00, 0x00, 0x00];
        assert_eq!(ok_status(&ok), Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT));
        assert_eq!(
            ok_head(&ok),
            Some(OkHead {
                affected_rows: 1,
                last_insert_id: 300,
                status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
                warnings: 0
            })
        );
        assert_eq!(eof_warnings(&[0xFE, 3, 0, 2, 0]), Some(3));
        let eof = [0xFE, 0x00, 0x00, 0x0B, 0x00];
        let s = eof_status(&eof).unwrap();
        assert!(s.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS));
        assert!(s.contains(StatusFlags::SERVER_STATUS_IN_TRANS));
    }

    #[test]
    fn golden_err() {
        let p = err_payload(1045, b"28000", "Access denied");
        assert_eq!(&p[..9], &[0xFF, 0x15, 0x04, b'#', b'2', b'8', b'0', b'0', b'0']);
        assert_eq!(err_code(&p), Some(1045));
        assert_eq!(err_message(&p), "Access denied");
    }

    #[test]
    fn truncated_packets_give_none() {
        assert_eq!(ok_status(&[0x00]), None);
        assert_eq!(ok_status(&[0x00, 0xFE, 1, 2]), None);
        assert_eq!(ok_status(&[0x00, 0, 0, 2, 0]), None, "warnings are part of the fixed head");
        assert_eq!(eof_status(&[0xFE, 0]), None);
        assert_eq!(err_code(&[0xFF]), None);
    }

    proptest! {
        #[test]
        fn lenenc_round_trip(v in any::<u64>()) {
            let mut b = Vec::new();
            put_lenenc(&mut b, v);
            prop_assert_eq!(read_lenenc(&b), Some((v, b.len())));
        }

        #[test]
        fn readers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = read_lenenc(&b);
            let _ = ok_status(&b);
            let _ = eof_status(&b);
            let _ = err_code(&b);
            let _ = err_message(&b);
        }
    }
}

//! Session state tracking in OK packets (CLIENT_SESSION_TRACK, `SERVER_SESSION_STATE_CHANGED`):
//! what a statement changed, read without parsing the SQL. rwsplit uses it to learn the GTID of
//! a write without another round trip (MariaDB tracks `last_gtid` as a system variable, MySQL
//! sends `session_track_gtids`), and to notice state changes the classifier could not see (a
//! stored procedure running `USE` or `SET`), which tie the session to its connection.
//! The decoding is mysql_common's; this module only sorts the changes.

use super::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::session_state_change::SessionStateChange;
use mysql_common::packets::{CommonOkPacket, OkPacketDeserializer};

/// What an OK packet says changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// The GTID of the transaction the statement committed (MariaDB `last_gtid`, MySQL own GTID).
    pub gtid: Option<String>,
    /// Something else changed (schema, other variables, state-change flag).
    pub other: bool,
}

/// Reads the session state changes of an OK packet (header 0x00) on a connection with `caps`.
/// `None` when the packet cannot be read.
pub fn ok_state_changes(payload: &[u8], caps: CapabilityFlags) -> Option<StateChanges> {
    let ok = ParseBuf(payload).parse::<OkPacketDeserializer<'_, CommonOkPacket>>(caps).ok()?.into_inner();
    let mut out = StateChanges::default();
    for info in ok.session_state_info().ok()? {
        match info.decode().ok()? {
            SessionStateChange::SystemVariables(vars) => {
                for v in vars {
                    if v.name_bytes().eq_ignore_ascii_case(b"last_gtid") {
                        let g = v.value_str().trim().to_string();
                        if !g.is_empty() {
                            out.gtid = Some(g);
                        }
                    } else {
                        out.other = true;
                    }
                }
            }
            SessionStateChange::Gtids(g) => {
                let g = g.as_str().trim().to_string();
                if !g.is_empty() {
                    out.gtid = Some(g);
                }
            }
            // Transaction state and characteristics follow from the status flags rwsplit
            // already reads; they tie nothing by themselves.
            SessionStateChange::TransactionState(_) | SessionStateChange::TransactionCharacteristics(_) => {}
            _ => out.other = true,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packets::put_lenenc;

    fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
        put_lenenc(out, s.len() as u64);
        out.extend_from_slice(s);
    }

    /// An OK after an INSERT with the given session-state entries (type, data).
    fn ok_with(entries: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut state = Vec::new();
        for (t, data) in entries {
            state.push(*t);
            lenenc_str(&mut state, data);
        }
        let mut p = vec![0x00, 0x01, 0x00, 0x02, 0x40, 0x00, 0x00]; // 1 row, AUTOCOMMIT|STATE_CHANGED
        lenenc_str(&mut p, b""); // info
        lenenc_str(&mut p, &state);
        p
    }

    fn var(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        lenenc_str(&mut d, name);
        lenenc_str(&mut d, value);
        d
    }

    fn caps() -> CapabilityFlags {
        CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SESSION_TRACK
    }

    #[test]
    fn mariadb_last_gtid_alone_is_not_another_change() {
        let p = ok_with(&[(0, var(b"last_gtid", b"0-1-42"))]);
        assert_eq!(ok_state_changes(&p, caps()), Some(StateChanges { gtid: Some("0-1-42".into()), other: false }));
    }

    #[test]
    fn other_variables_and_schema_are_other_changes() {
        let p = ok_with(&[(0, var(b"time_zone", b"+03:00")), (0, var(b"last_gtid", b"0-1-43"))]);
        assert_eq!(ok_state_changes(&p, caps()), Some(StateChanges { gtid: Some("0-1-43".into()), other: true }));
        let mut schema = Vec::new();
        lenenc_str(&mut schema, b"db2");
        let p = ok_with(&[(1, schema)]);
        assert_eq!(ok_state_changes(&p, caps()), Some(StateChanges { gtid: None, other: true }));
    }

    #[test]
    fn truncated_packets_are_none_not_panics() {
        let p = ok_with(&[(0, var(b"last_gtid", b"0-1-42"))]);
        for n in 0..p.len() {
            let _ = ok_state_changes(&p[..n], caps());
        }
    }
}

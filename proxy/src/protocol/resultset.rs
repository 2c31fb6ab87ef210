//! Text-protocol result sets that rwsplit answers itself (`SHOW PROCESSLIST` lists rwsplit's
//! own sessions): column definitions, rows and the terminators, in the format the client
//! negotiated (classic EOF or CLIENT_DEPRECATE_EOF's OK, MariaDB extended and cached metadata). Column
//! definitions copy what the server sends for the same statement, so clients see the same
//! types. Pure: returns packet payloads.

use super::packets::{eof_payload, put_lenenc};
use super::{CapabilityFlags, ResponseFormat, StatusFlags};

/// Column type codes used here (`enum_field_types`).
pub const TYPE_LONG: u8 = 3;
pub const TYPE_DOUBLE: u8 = 5;
pub const TYPE_LONGLONG: u8 = 8;
pub const TYPE_VAR_STRING: u8 = 253;

/// Column flags used here.
pub const NOT_NULL: u16 = 1;
pub const BINARY: u16 = 128;
pub const NUM: u16 = 32768;

/// Collation ids used here.
pub const BINARY_COLLATION: u16 = 63;
pub const UTF8MB3_GENERAL_CI: u16 = 33;

/// One column's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: &'static str,
    pub column_type: u8,
    pub collation: u16,
    pub length: u32,
    pub flags: u16,
    pub decimals: u8,
}

/// A column definition packet (Protocol::ColumnDefinition41).
pub fn column_payload(c: &ColumnDef, format: ResponseFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + c.name.len());
    for s in ["def", "", "", ""] {
        put_lenenc_str(&mut out, s.as_bytes());
    }
    put_lenenc_str(&mut out, c.name.as_bytes());
    put_lenenc_str(&mut out, b"");
    if format.extended_metadata {
        // No extended type information for these columns.
        put_lenenc(&mut out, 0);
    }
    out.push(0x0c);
    out.extend_from_slice(&c.collation.to_le_bytes());
    out.extend_from_slice(&c.length.to_le_bytes());
    out.push(c.column_type);
    out.extend_from_slice(&c.flags.to_le_bytes());
    out.push(c.decimals);
    out.extend_from_slice(&[0, 0]);
    out
}

/// A text-protocol row: each value as a length-encoded string, NULL as 0xFB.
pub fn row_payload(values: &[Option<String>]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        match v {
            Some(s) => put_lenenc_str(&mut out, s.as_bytes()),
            None => out.push(0xFB),
        }
    }
    out
}

/// Every packet payload of a complete result set, in order (the caller numbers them from 1).
pub fn result_set(
    columns: &[ColumnDef],
    rows: &[Vec<Option<String>>],
    format: ResponseFormat,
    status: StatusFlags,
) -> Vec<Vec<u8>> {
    let deprecate_eof = format.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    let mut out = Vec::with_capacity(columns.len() + rows.len() + 3);
    let mut count = Vec::new();
    put_lenenc(&mut count, columns.len() as u64);
    if format.cache_metadata {
        // MariaDB's "metadata follows": always, outside prepared statements.
        count.push(1);
    }
    out.push(count);
    out.extend(columns.iter().map(|c| column_payload(c, format)));
    if !deprecate_eof {
        out.push(eof_payload(status));
    }
    out.extend(rows.iter().map(|r| row_payload(r)));
    if deprecate_eof {
        // An OK packet with the EOF header: affected rows 0, last insert id 0, status, warnings 0.
        let mut end = vec![0xFE, 0, 0];
        end.extend_from_slice(&status.bits().to_le_bytes());
        end.extend_from_slice(&[0, 0]);
        out.push(end);
    } else {
        out.push(eof_payload(status));
    }
    out
}

fn put_lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    put_lenenc(out, s.len() as u64);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{check_chunk, HEADER};
    use crate::protocol::response::{Expect, ResponseTracker, Step};

    const ID: ColumnDef = ColumnDef {
        name: "Id",
        column_type: TYPE_LONGLONG,
        collation: BINARY_COLLATION,
        length: 11,
        flags: NOT_NULL | BINARY | NUM,
        decimals: 0,
    };
    const INFO: ColumnDef = ColumnDef {
        name: "Info",
        column_type: TYPE_VAR_STRING,
        collation: UTF8MB3_GENERAL_CI,
        length: 300,
        flags: 0,
        decimals: 39,
    };

    /// The result set is what the response tracker (which follows real servers) accepts.
    #[test]
    fn tracker_reads_it_to_the_end_in_both_formats() {
        for deprecate_eof in [false, true] {
            for (extended_metadata, cache_metadata) in [(false, false), (true, false), (true, true), (false, true)] {
                let rows = vec![vec![Some("1".into()), None], vec![Some("22".into()), Some("SELECT 1".into())]];
                let caps = if deprecate_eof { CapabilityFlags::CLIENT_DEPRECATE_EOF } else { CapabilityFlags::empty() };
                let packets = result_set(
                    &[ID, INFO],
                    &rows,
                    ResponseFormat { caps, extended_metadata, cache_metadata },
                    StatusFlags::SERVER_STATUS_AUTOCOMMIT,
                );
                assert_eq!(packets.len(), 1 + 2 + usize::from(!deprecate_eof) + 2 + 1);
                let mut t = ResponseTracker::new(Expect::Query, deprecate_eof).with_cached_metadata(cache_metadata);
                let mut steps = Vec::new();
                for (i, p) in packets.iter().enumerate() {
                    let mut framed = bytes::BytesMut::new();
                    crate::protocol::frame::write_packet(&mut framed, (i + 1) as u8, p);
                    let c = check_chunk(&framed).unwrap();
                    steps.push(t.feed(c, &framed[HEADER..]).unwrap());
                }
                assert!(matches!(steps.last(), Some(Step::Done(o)) if o.error.is_none()));
                assert!(steps[..steps.len() - 1].iter().all(|s| *s == Step::More));
            }
        }
    }

    #[test]
    fn column_definition_layout() {
        let plain = ResponseFormat::plain();
        let p = column_payload(&ID, plain);
        // def, 3 empty strings, "Id", empty org name, 0x0c, collation 63, length 11, type 8.
        assert_eq!(&p[..12], &[3, b'd', b'e', b'f', 0, 0, 0, 2, b'I', b'd', 0, 0x0c]);
        assert_eq!(&p[12..14], &63u16.to_le_bytes());
        assert_eq!(&p[14..18], &11u32.to_le_bytes());
        assert_eq!(p[18], TYPE_LONGLONG);
        let ext = column_payload(&ID, ResponseFormat { extended_metadata: true, ..plain });
        assert_eq!(ext.len(), p.len() + 1);
        assert_eq!(row_payload(&[None, Some("ab".into())]), vec![0xFB, 2, b'a', b'b']);
    }
}

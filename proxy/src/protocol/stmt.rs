//! The COM_STMT_* packets rwsplit reads and rewrites: the statement id of any of them, and the
//! head of COM_STMT_EXECUTE.
//!
//! COM_STMT_EXECUTE with new-params-bound = 0 relies on the types of the previous EXECUTE of
//! that statement on that connection; when the connection has not seen them, the packet is
//! rewritten with the remembered types and the flag set. Pure functions, tested on bytes.

/// The parts of a COM_STMT_EXECUTE packet rwsplit needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteHead<'a> {
    pub stmt_id: u32,
    /// Cursor type flags (CURSOR_TYPE_READ_ONLY = 1, …).
    pub flags: u8,
    /// Types sent with this execute, when new-params-bound = 1.
    pub types: Option<&'a [u8]>,
    /// Offset of the new-params-bound byte (None when the statement has no parameters).
    bound_at: Option<usize>,
}

/// Reads the statement id of any COM_STMT_* packet ([0] = command, [1..5] = id).
pub fn stmt_id(payload: &[u8]) -> Option<u32> {
    let b = payload.get(1..5)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses a COM_STMT_EXECUTE for a statement with `params` parameters.
pub fn parse_execute(payload: &[u8], params: u16) -> Option<ExecuteHead<'_>> {
    let stmt_id = stmt_id(payload)?;
    let flags = *payload.get(5)?;
    payload.get(6..10)?; // iteration count
    if params == 0 {
        return Some(ExecuteHead { stmt_id, flags, types: None, bound_at: None });
    }
    let n = usize::from(params);
    let bound_at = 10 + n.div_ceil(8);
    let bound = *payload.get(bound_at)?;
    let types = if bound == 1 { Some(payload.get(bound_at + 1..bound_at + 1 + 2 * n)?) } else { None };
    Some(ExecuteHead { stmt_id, flags, types, bound_at: Some(bound_at) })
}

/// The EXECUTE to send to a backend: the backend's statement id, and the remembered `types`
/// inserted when the client relied on earlier ones the backend has not seen.
pub fn rewrite_execute(
    payload: &[u8],
    head: &ExecuteHead<'_>,
    backend_id: u32,
    insert_types: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + insert_types.map_or(0, <[u8]>::len));
    out.extend_from_slice(&payload[..1]);
    out.extend_from_slice(&backend_id.to_le_bytes());
    match (head.bound_at, insert_types) {
        (Some(at), Some(types)) if head.types.is_none() => {
            out.extend_from_slice(&payload[5..at]);
            out.push(1);
            out.extend_from_slice(types);
            out.extend_from_slice(&payload[at + 1..]);
        }
        _ => out.extend_from_slice(&payload[5..]),
    }
    out
}

/// Any other COM_STMT_* packet with the statement id replaced.
pub fn rewrite_id(payload: &[u8], backend_id: u32) -> Vec<u8> {
    let mut out = payload.to_vec();
    if out.len() >= 5 {
        out[1..5].copy_from_slice(&backend_id.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EXECUTE of stmt 7 with 2 params, no cursor, bound types (LONG, VAR_STRING).
    fn bound() -> Vec<u8> {
        let mut p = vec![0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0];
        p.push(0b00); // null bitmap for 2 params: 1 byte
        p.push(1); // new params bound
        p.extend_from_slice(&[0x03, 0, 0xFD, 0]);
        p.extend_from_slice(&[42, 0, 0, 0, 2, b'h', b'i']);
        p
    }

    fn unbound() -> Vec<u8> {
        let mut p = vec![0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0b00, 0];
        p.extend_from_slice(&[43, 0, 0, 0, 2, b'y', b'o']);
        p
    }

    #[test]
    fn parses_bound_types() {
        let p = bound();
        let h = parse_execute(&p, 2).unwrap();
        assert_eq!(h.stmt_id, 7);
        assert_eq!(h.types, Some(&[0x03, 0, 0xFD, 0][..]));
        let p = unbound();
        assert_eq!(parse_execute(&p, 2).unwrap().types, None);
    }

    #[test]
    fn rewrite_keeps_bound_packets_but_id() {
        let p = bound();
        let h = parse_execute(&p, 2).unwrap();
        let out = rewrite_execute(&p, &h, 99, Some(&[1, 2, 3, 4]));
        assert_eq!(stmt_id(&out), Some(99));
        assert_eq!(&out[5..], &p[5..], "bound packets keep their own types");
    }

    #[test]
    fn rewrite_inserts_remembered_types() {
        let p = unbound();
        let h = parse_execute(&p, 2).unwrap();
        let out = rewrite_execute(&p, &h, 5, Some(&[0x03, 0, 0xFD, 0]));
        let mut expect = bound();
        expect[1] = 5;
        expect[10 + 1 + 1 + 4..].copy_from_slice(&[43, 0, 0, 0, 2, b'y', b'o']);
        assert_eq!(out, expect);
        let again = parse_execute(&out, 2).unwrap();
        assert_eq!(again.types, Some(&[0x03, 0, 0xFD, 0][..]));
        // Without remembered types it is passed through.
        assert_eq!(&rewrite_execute(&p, &h, 5, None)[5..], &p[5..]);
    }

    #[test]
    fn no_params_and_truncations() {
        let p = [0x17, 1, 0, 0, 0, 1, 1, 0, 0, 0];
        let h = parse_execute(&p, 0).unwrap();
        assert_eq!(h.flags, 1);
        assert_eq!(rewrite_execute(&p, &h, 2, None), vec![0x17, 2, 0, 0, 0, 1, 1, 0, 0, 0]);
        let b = bound();
        for n in 0..12 {
            assert!(parse_execute(&b[..n], 2).is_none(), "{n}");
        }
        assert_eq!(rewrite_id(&[0x19, 1, 0, 0, 0], 9), vec![0x19, 9, 0, 0, 0]);
        assert_eq!(rewrite_id(&[0x19], 9), vec![0x19]);
    }
}

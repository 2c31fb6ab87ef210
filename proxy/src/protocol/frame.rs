//! Packet framing, pure: a packet is a 3-byte little-endian payload length, a 1-byte sequence
//! id and the payload. A payload of 0xFFFFFF bytes or more is split into chunks of exactly
//! 0xFFFFFF bytes followed by a shorter one (possibly empty); each chunk has its own header.
//!
//! Following mini-redis, reading is two steps: [`check_chunk`] says whether a whole chunk is in
//! the buffer (and how long it is) without consuming anything, then the caller takes it.

use bytes::{BufMut, BytesMut};

/// Largest payload of one chunk; a chunk this long means "more follows".
pub const MAX_CHUNK: usize = 0xFF_FFFF;
/// Header length.
pub const HEADER: usize = 4;

/// A complete chunk at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Payload length (0..=MAX_CHUNK).
    pub len: usize,
    /// Sequence id.
    pub seq: u8,
}

impl Chunk {
    /// Header plus payload.
    pub fn total(&self) -> usize {
        HEADER + self.len
    }

    /// True when the logical packet continues in the next chunk.
    pub fn continues(&self) -> bool {
        self.len == MAX_CHUNK
    }
}

/// Returns the chunk at the start of `buf` when all of it is there.
pub fn check_chunk(buf: &[u8]) -> Option<Chunk> {
    let header = buf.get(..HEADER)?;
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let chunk = Chunk { len, seq: header[3] };
    (buf.len() >= chunk.total()).then_some(chunk)
}

/// Appends `payload` as one logical packet starting at sequence id `seq`, split into chunks as
/// the protocol requires. Returns the next sequence id.
pub fn write_packet(dst: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_CHUNK);
        dst.reserve(HEADER + n);
        // n <= 0xFFFFFF, so three bytes hold it.
        dst.put_uint_le(n as u64, 3);
        dst.put_u8(seq);
        dst.put_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_CHUNK {
            return seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reassembles logical packets from a buffer (test oracle for the splitting).
    fn read_all(mut buf: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut cur: Option<(u8, Vec<u8>)> = None;
        while let Some(c) = check_chunk(buf) {
            let payload = &buf[HEADER..c.total()];
            match cur.as_mut() {
                Some((_, p)) => p.extend_from_slice(payload),
                None => cur = Some((c.seq, payload.to_vec())),
            }
            if !c.continues() {
                out.extend(cur.take());
            }
            buf = &buf[c.total()..];
        }
        assert!(buf.is_empty(), "trailing bytes");
        out
    }

    #[test]
    fn golden_small_packet() {
        let mut b = BytesMut::new();
        let next = write_packet(&mut b, 0, b"\x03select 1");
        assert_eq!(&b[..], b"\x09\x00\x00\x00\x03select 1");
        assert_eq!(next, 1);
        assert_eq!(check_chunk(&b), Some(Chunk { len: 9, seq: 0 }));
    }

    #[test]
    fn incomplete_chunks_are_not_taken() {
        assert_eq!(check_chunk(b""), None);
        assert_eq!(check_chunk(b"\x05\x00\x00"), None);
        assert_eq!(check_chunk(b"\x05\x00\x00\x01abcd"), None);
        assert_eq!(check_chunk(b"\x00\x00\x00\x07"), Some(Chunk { len: 0, seq: 7 }));
    }

    #[test]
    fn exact_multiple_of_max_chunk_ends_with_empty_chunk() {
        let payload = vec![7u8; MAX_CHUNK];
        let mut b = BytesMut::new();
        let next = write_packet(&mut b, 250, &payload);
        assert_eq!(b.len(), 2 * HEADER + MAX_CHUNK);
        assert_eq!(next, 252);
        assert_eq!(&b[HEADER + MAX_CHUNK..], b"\x00\x00\x00\xfb");
        assert_eq!(read_all(&b), vec![(250, payload)]);
    }

    #[test]
    fn twenty_mib_round_trips() {
        let payload: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let mut b = BytesMut::new();
        let next = write_packet(&mut b, 0, &payload);
        assert_eq!(next, 2);
        assert_eq!(read_all(&b), vec![(0, payload)]);
    }

    proptest! {
        #[test]
        fn round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8), seq in any::<u8>()) {
            let mut b = BytesMut::new();
            let mut s = seq;
            let mut expect = Vec::new();
            for p in &payloads {
                expect.push((s, p.clone()));
                s = write_packet(&mut b, s, p);
            }
            prop_assert_eq!(read_all(&b), expect);
        }

        #[test]
        fn check_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(c) = check_chunk(&bytes) {
                prop_assert!(c.total() <= bytes.len());
            }
        }
    }
}

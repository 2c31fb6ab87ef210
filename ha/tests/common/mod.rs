//! Test helpers: a tiny pcapng reader (section header, interface description with its
//! timestamp resolution, enhanced packet blocks) and Ethernet + IPv4 framing, enough to replay
//! the keepalived captures in `tests/fixtures/` (dumpcap's pcapng, little-endian).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rwsplit_ha::packet::IpInfo;
use std::net::{IpAddr, Ipv4Addr};

/// One captured frame: time since the first frame of the file, and the bytes from the
/// Ethernet header on.
pub struct Frame {
    pub t_us: u64,
    pub data: Vec<u8>,
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads every Ethernet frame of a little-endian pcapng file.
pub fn read_pcapng(bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut ticks_per_s: u64 = 1_000_000;
    let mut first: Option<u64> = None;
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let kind = u32le(bytes, at);
        let len = u32le(bytes, at + 4) as usize;
        assert!(len >= 12 && at + len <= bytes.len(), "bad block at {at}");
        let body = &bytes[at + 8..at + len - 4];
        match kind {
            0x0a0d_0d0a => assert_eq!(u32le(body, 0), 0x1a2b_3c4d, "only little-endian pcapng"),
            1 => {
                assert_eq!(u16le(body, 0), 1, "only Ethernet link type");
                let mut o = 8;
                while o + 4 <= body.len() {
                    let (code, olen) = (u16le(body, o), u16le(body, o + 2) as usize);
                    if code == 0 {
                        break;
                    }
                    if code == 9 {
                        let r = body[o + 4];
                        ticks_per_s = if r & 0x80 == 0 { 10u64.pow(u32::from(r)) } else { 1 << (r & 0x7f) };
                    }
                    o += 4 + olen.div_ceil(4) * 4;
                }
            }
            6 => {
                let ts = (u64::from(u32le(body, 4)) << 32) | u64::from(u32le(body, 8));
                let caplen = u32le(body, 12) as usize;
                let t_us = (u128::from(ts) * 1_000_000 / u128::from(ticks_per_s)) as u64;
                let t0 = *first.get_or_insert(t_us);
                frames.push(Frame { t_us: t_us - t0, data: body[20..20 + caplen].to_vec() });
            }
            _ => {}
        }
        at += len;
    }
    frames
}

/// An IPv4 packet inside an Ethernet frame.
pub struct Ipv4<'a> {
    pub info: IpInfo,
    pub tos: u8,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub payload: &'a [u8],
}

/// The IPv4 packet of an Ethernet II frame, if it holds one.
pub fn ipv4(frame: &[u8]) -> Option<Ipv4<'_>> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    Some(Ipv4 {
        info: IpInfo { src, dst, ttl: ip[8], protocol: ip[9] },
        tos: ip[1],
        src_mac: frame[6..12].try_into().ok()?,
        dst_mac: frame[0..6].try_into().ok()?,
        payload: &ip[ihl..total],
    })
}

/// Whether an Ethernet frame is ARP.
pub fn is_arp(frame: &[u8]) -> bool {
    frame.len() >= 14 && frame[12..14] == [0x08, 0x06]
}

/// Loads a capture from `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<Frame> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    read_pcapng(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// The rwsplit binary: `RWSPLIT_BIN`, else `target/debug/rwsplit` (honouring CARGO_TARGET_DIR).
pub fn rwsplit_bin() -> Result<PathBuf, String> {
    let path = match std::env::var_os("RWSPLIT_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
            let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| ws.join("target"));
            let target = if target.is_absolute() { target } else { ws.join(target) };
            target.join("debug/rwsplit")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no rwsplit binary at {}: run `cargo build --bin rwsplit` first (make test does) or set RWSPLIT_BIN",
            path.display()
        ))
    }
}

/// Whether `tool` is on the PATH (a namespace test skips loudly without it).
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

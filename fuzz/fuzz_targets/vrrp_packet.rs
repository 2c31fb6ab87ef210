//! Fuzzes the VRRP advert decoder with arbitrary bytes and IP header fields: it must never
//! panic, and whatever it accepts must encode back to the same bytes.
//! Run: `cargo fuzz run vrrp_packet` in `fuzz/` (nightly).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rwsplit_ha::packet::{self, Auth, Expect, IpInfo, Version, IPPROTO_VRRP};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let (src, dst) = if flags & 1 == 0 {
        (IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11)), IpAddr::V4(packet::MCAST_V4))
    } else {
        (IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)), IpAddr::V6(packet::MCAST_V6))
    };
    let ttl = if flags & 2 == 0 { 255 } else { flags };
    let ip = IpInfo { src, dst, ttl, protocol: IPPROTO_VRRP };
    if let Ok(p) = packet::parse(&ip, rest) {
        let again = p.encode(src, dst).expect("a parsed advert encodes");
        // v3 reserved bits are ignored on receipt, so compare past them; so is a v2 advert's
        // authentication data when its type is 0 (no authentication), which encodes as zeros.
        assert_eq!(again.len(), rest.len());
        assert_eq!(again[..4], rest[..4]);
        let end = if rest[0] >> 4 == 2 && rest[4] == 0 { rest.len() - 8 } else { rest.len() };
        assert_eq!(again[8..end], rest[8..end]);
    }
    let vips = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100))];
    let auth = Auth::pass("lab51pw");
    let expect = Expect { version: Version::V2, vrid: 51, auth: &auth, adver_int_s: 1, addresses: &vips };
    let _ = packet::decode(&ip, rest, &expect);
});

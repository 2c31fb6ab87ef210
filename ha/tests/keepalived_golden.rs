//! Golden tests against adverts captured from keepalived 2.2.7: every VRRP frame of the three
//! captures decodes with the receiver checks of the instance it was meant for, and our encoder
//! reproduces its bytes exactly (checksums included) from the decoded fields.

mod common;

use common::{fixture, ipv4};
use rwsplit_ha::packet::{self, Auth, Expect, Version, IPPROTO_VRRP, MCAST_V4, TOS, TTL};
use std::net::{IpAddr, Ipv4Addr};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100));

/// (source's last octet, priority, checksum) of each advert in the file, in order, collapsed
/// to runs.
fn adverts(file: &str, version: Version, auth: &Auth) -> Vec<(u8, u8, u16)> {
    let vips = [VIP];
    let expect = Expect { version, vrid: 51, auth, adver_int_s: 1, addresses: &vips };
    let mut runs: Vec<(u8, u8, u16)> = Vec::new();
    let mut n = 0;
    for f in fixture(file) {
        let Some(ip) = ipv4(&f.data) else { continue };
        if ip.info.protocol != IPPROTO_VRRP {
            continue;
        }
        n += 1;
        assert_eq!(ip.info.ttl, TTL);
        assert_eq!(ip.tos, TOS, "keepalived sends with TOS 0xc0");
        assert_eq!(ip.info.dst, IpAddr::V4(MCAST_V4));
        let p =
            packet::decode(&ip.info, ip.payload, &expect).unwrap_or_else(|e| panic!("{file} at {} us: {e}", f.t_us));
        assert_eq!(p.version, version);
        assert_eq!(p.addresses, vec![VIP]);
        let again = p.encode(ip.info.src, ip.info.dst).unwrap();
        assert_eq!(again, ip.payload, "{file} at {} us: our bytes differ from keepalived's", f.t_us);
        let IpAddr::V4(src) = ip.info.src else { unreachable!() };
        let key = (src.octets()[3], p.priority, u16::from_be_bytes([ip.payload[6], ip.payload[7]]));
        if runs.last() != Some(&key) {
            runs.push(key);
        }
    }
    assert!(n > 0, "{file} has no VRRP");
    runs
}

#[test]
fn v2_shutdown_capture_round_trips() {
    let runs = adverts("keepalived-v2-pass-vrid51-shutdown.pcap", Version::V2, &Auth::pass("lab51pw"));
    assert_eq!(runs, [(11, 150, 0xc5fb), (11, 0, 0x5bfc), (12, 100, 0xf7fb)]);
}

#[test]
fn v2_takeover_capture_round_trips() {
    let runs = adverts("keepalived-v2-pass-vrid51-takeover-garp.pcap", Version::V2, &Auth::pass("lab51pw"));
    // The master is cut off, the backup takes over, the master comes back and preempts.
    assert_eq!(runs, [(11, 150, 0xc5fb), (12, 100, 0xf7fb), (11, 150, 0xc5fb)]);
}

#[test]
fn v3_capture_round_trips_with_pseudo_header() {
    let runs = adverts("keepalived-v3-vrid51-100ms-shutdown.pcap", Version::V3, &Auth::None);
    assert_eq!(runs, [(11, 150, 0x42fd), (11, 0, 0xd8fd), (12, 100, 0x74fc)]);
}

#[test]
fn a_wrong_password_rejects_every_captured_v2_advert() {
    let auth = Auth::pass("lab51px");
    let vips = [VIP];
    let expect = Expect { version: Version::V2, vrid: 51, auth: &auth, adver_int_s: 1, addresses: &vips };
    for f in fixture("keepalived-v2-pass-vrid51-shutdown.pcap") {
        let Some(ip) = ipv4(&f.data) else { continue };
        if ip.info.protocol == IPPROTO_VRRP {
            assert_eq!(packet::decode(&ip.info, ip.payload, &expect), Err(rwsplit_ha::Error::AuthMismatch));
        }
    }
}

#[test]
fn our_gratuitous_arp_is_keepalived_s() {
    let mut n = 0;
    for file in ["keepalived-v2-pass-vrid51-shutdown.pcap", "keepalived-v2-pass-vrid51-takeover-garp.pcap"] {
        for f in fixture(file) {
            // keepalived's GARPs: broadcast requests from the VIP for the VIP (other ARP in the
            // files is ordinary resolution, e.g. the new master asking for the lab host).
            let vip = [10, 99, 0, 100];
            if !common::is_arp(&f.data) || f.data[..6] != [0xff; 6] || f.data[28..32] != vip || f.data[38..42] != vip {
                continue;
            }
            let mac: [u8; 6] = f.data[6..12].try_into().unwrap();
            assert_eq!(rwsplit_ha::arp::garp_frame(mac, Ipv4Addr::new(10, 99, 0, 100))[..], f.data[..42], "{file}");
            n += 1;
        }
    }
    assert!(n >= 10, "only {n} GARPs found");
}

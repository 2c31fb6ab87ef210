//! Conformance against keepalived: the captured master's adverts are fed, at their captured
//! times, into our state machine configured as the backup node (10.99.0.12, priority 100), and
//! our takeover must fall where keepalived's backup took over in the same capture.

mod common;

use common::{fixture, ipv4};
use rwsplit_ha::fsm::{Action, Event, Fsm, FsmConfig, State};
use rwsplit_ha::packet::{self, Auth, Expect, Version, IPPROTO_VRRP};
use std::net::{IpAddr, Ipv4Addr};

const BACKUP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 12));
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100));

/// Replays `file`; returns (our takeover time, keepalived's backup's first advert time), µs.
fn replay(file: &str, version: Version, auth: Auth, interval_cs: u16) -> (u64, u64) {
    let frames = fixture(file);
    let vips = [VIP];
    let expect = Expect { version, vrid: 51, auth: &auth, adver_int_s: 1, addresses: &vips };
    let mut fsm = Fsm::new(FsmConfig {
        version,
        priority: 100,
        advert_interval_cs: interval_cs,
        preempt: true,
        preempt_delay_us: 0,
        local_addr: BACKUP,
    });
    // keepalived's backup had been running long before the capture started.
    let start = 0;
    fsm.handle(start, Event::Startup);
    let mut ours = None;
    let mut theirs = None;
    for f in &frames {
        let Some(ip) = ipv4(&f.data) else { continue };
        if ip.info.protocol != IPPROTO_VRRP {
            continue;
        }
        // Fire our timer if it came due before this frame.
        if let Some(d) = fsm.deadline() {
            if d <= f.t_us && ours.is_none() {
                let out = fsm.handle(d, Event::Timer);
                if out.actions.contains(&Action::Notify(State::Master)) {
                    ours = Some(d);
                }
            }
        }
        let p = packet::decode(&ip.info, ip.payload, &expect).unwrap();
        if ip.info.src == BACKUP {
            theirs.get_or_insert(f.t_us);
            continue;
        }
        if ours.is_none() {
            fsm.handle(
                f.t_us,
                Event::AdvertReceived { src: ip.info.src, priority: p.priority, interval_cs: p.interval_cs() },
            );
        }
    }
    (ours.expect("our backup never took over"), theirs.expect("keepalived's backup never advertised"))
}

fn assert_close(file: &str, ours: u64, theirs: u64, tolerance_us: u64) {
    let diff = ours.abs_diff(theirs);
    eprintln!("{file}: ours {ours} us, keepalived {theirs} us, {diff} us apart");
    assert!(diff <= tolerance_us, "{file}: we take over at {ours} us, keepalived at {theirs} us ({diff} us apart)");
}

#[test]
fn v2_silent_master_takeover_after_master_down_interval() {
    let f = "keepalived-v2-pass-vrid51-takeover-garp.pcap";
    let (ours, theirs) = replay(f, Version::V2, Auth::pass("lab51pw"), 100);
    assert_close(f, ours, theirs, 5_000);
}

#[test]
fn v2_priority_zero_takeover_after_skew_time() {
    let f = "keepalived-v2-pass-vrid51-shutdown.pcap";
    let (ours, theirs) = replay(f, Version::V2, Auth::pass("lab51pw"), 100);
    assert_close(f, ours, theirs, 10_000);
}

#[test]
fn v3_priority_zero_takeover_after_skew_time_at_100ms() {
    let f = "keepalived-v3-vrid51-100ms-shutdown.pcap";
    // Configured with 1 s: the 100 ms interval must be learned from the master's adverts.
    let (ours, theirs) = replay(f, Version::V3, Auth::None, 100);
    assert_close(f, ours, theirs, 5_000);
}

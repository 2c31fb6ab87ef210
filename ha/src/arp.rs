//! Gratuitous ARP: after taking the master role (and on keepalived's repeat and refresh
//! timers) the new master tells the link that the virtual IPv4 addresses now live at its MAC.
//! The frame is keepalived's: a broadcast ARP request whose sender and target IP are both the
//! virtual address and whose target MAC is broadcast. [`garp_frame`] is pure and compared with
//! keepalived's captured bytes; [`ArpSender`] writes it to an `AF_PACKET` socket.

use crate::error::{Error, Result};
use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use std::net::Ipv4Addr;

const ETH_P_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];

/// The 42-byte Ethernet frame announcing `ip` at `mac`.
///
/// ```text
/// Ethernet: dst ff:ff:ff:ff:ff:ff | src MAC | type 0x0806
/// ARP:      htype 1 | ptype 0x0800 | hlen 6 | plen 4 | op 1 (request)
///           sender MAC | sender IP = VIP | target MAC ff:ff:ff:ff:ff:ff | target IP = VIP
/// ```
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    let ip = ip.octets();
    let parts: [&[u8]; 9] =
        [&BROADCAST, &mac, &ETH_P_ARP.to_be_bytes(), &[0, 1, 0x08, 0x00, 6, 4], &[0, 1], &mac, &ip, &BROADCAST, &ip];
    let mut at = 0;
    for p in parts {
        f[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    f
}

/// The MAC address of `ifname` (through getifaddrs, which follows the calling thread's network
/// namespace, unlike sysfs).
pub fn interface_mac(ifname: &str) -> Result<[u8; 6]> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| Error::io("getifaddrs", e.into()))?;
    addrs
        .filter(|a| a.interface_name == ifname)
        .find_map(|a| a.address.as_ref().and_then(|s| s.as_link_addr()).and_then(|l| l.addr()))
        .ok_or_else(|| Error::Io { op: "interface MAC", msg: format!("{ifname} has no link-layer address") })
}

/// Sends gratuitous ARP on one interface.
pub struct ArpSender {
    socket: Socket,
    dest: SockAddr,
    mac: [u8; 6],
}

impl ArpSender {
    /// Opens an `AF_PACKET` socket for `ifname` (needs CAP_NET_RAW).
    pub fn new(ifname: &str) -> Result<Self> {
        let ifindex = nix::net::if_::if_nametoindex(ifname).map_err(|e| Error::io("if_nametoindex", e.into()))?;
        let mac = interface_mac(ifname)?;
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))))
            .map_err(|e| Error::io("AF_PACKET socket", e))?;
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: SockAddrStorage is large and aligned enough for any sockaddr, sockaddr_ll included.
        let ll = unsafe { storage.view_as::<nix::libc::sockaddr_ll>() };
        ll.sll_family = nix::libc::AF_PACKET as u16;
        ll.sll_protocol = ETH_P_ARP.to_be();
        ll.sll_ifindex = i32::try_from(ifindex).map_err(|_| Error::Encode("interface index out of range"))?;
        ll.sll_halen = 6;
        ll.sll_addr[..6].copy_from_slice(&BROADCAST);
        let len = std::mem::size_of::<nix::libc::sockaddr_ll>() as nix::libc::socklen_t;
        // SAFETY: the storage was initialised above as a sockaddr_ll of family AF_PACKET, and
        // `len` is that struct's size.
        let dest = unsafe { SockAddr::new(storage, len) };
        Ok(ArpSender { socket, dest, mac })
    }

    /// This interface's MAC.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Announces `ip` once.
    pub fn announce(&self, ip: Ipv4Addr) -> Result<()> {
        self.socket.send_to(&garp_frame(self.mac, ip), &self.dest).map_err(|e| Error::io("send gratuitous ARP", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_keepalived_bytes() {
        // Frame 6 of keepalived-v2-pass-vrid51-shutdown.pcap (tshark -x).
        let want = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x99, 0x00, 0x00, 0x00, 0x12, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00,
            0x06, 0x04, 0x00, 0x01, 0x02, 0x99, 0x00, 0x00, 0x00, 0x12, 0x0a, 0x63, 0x00, 0x64, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0x0a, 0x63, 0x00, 0x64,
        ];
        assert_eq!(garp_frame([0x02, 0x99, 0, 0, 0, 0x12], Ipv4Addr::new(10, 99, 0, 100)), want);
    }
}

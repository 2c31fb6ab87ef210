//! The VRRP socket (IPv4): a raw socket for IP protocol 112 bound to one interface, joined to
//! 224.0.0.18 there, sending with TTL 255 and TOS 0xc0 as keepalived does, either to the group
//! or to each unicast peer. Received datagrams come with their IP header, whose TTL, protocol,
//! addresses and length are checked here before the payload goes to [`crate::packet::decode`].
//! IPv6 (VRRPv3 over ff02::12) is supported by the codec but not by this socket yet.

use crate::error::{Error, Result};
use crate::packet::{IpInfo, IPPROTO_VRRP, MCAST_V4, TOS, TTL};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

/// The fields of a received IPv4 header, and where its payload starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub info: IpInfo,
    pub payload: (usize, usize),
}

/// Parses the IPv4 header at the start of `buf` (as a raw socket returns it). Never panics.
pub fn parse_ipv4_header(buf: &[u8]) -> Option<Ipv4Header> {
    let first = *buf.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]));
    if ihl < 20 || total < ihl || total > buf.len() {
        return None;
    }
    let addr = |at: usize| -> Option<Ipv4Addr> {
        let b: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    };
    let info =
        IpInfo { src: IpAddr::V4(addr(12)?), dst: IpAddr::V4(addr(16)?), ttl: *buf.get(8)?, protocol: *buf.get(9)? };
    Some(Ipv4Header { info, payload: (ihl, total) })
}

/// The first IPv4 address configured on `ifname` that is not in `exclude` (the virtual
/// addresses): the router's primary address, the advert source and tie-breaker.
pub fn primary_ipv4(ifname: &str, exclude: &[IpAddr]) -> Result<Ipv4Addr> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| Error::io("getifaddrs", e.into()))?;
    for a in addrs {
        if a.interface_name != ifname {
            continue;
        }
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            let ip = sin.ip();
            if !exclude.contains(&IpAddr::V4(ip)) {
                return Ok(ip);
            }
        }
    }
    Err(Error::Io { op: "primary address", msg: format!("{ifname} has no IPv4 address of its own") })
}

/// An IPv4 VRRP socket on one interface.
pub struct VrrpSocket {
    socket: Socket,
    /// Where adverts go: the group, or the unicast peers.
    dests: Vec<SockAddr>,
    buf: Vec<u8>,
}

impl VrrpSocket {
    /// Opens the socket on `ifname`, sending from `src`, to `peers` if any or else to the
    /// multicast group (which it then also joins). Needs CAP_NET_RAW.
    pub fn open(ifname: &str, src: Ipv4Addr, peers: &[Ipv4Addr]) -> Result<Self> {
        let ifindex = nix::net::if_::if_nametoindex(ifname).map_err(|e| Error::io("if_nametoindex", e.into()))?;
        let io = |op| move |e| Error::io(op, e);
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(i32::from(IPPROTO_VRRP))))
            .map_err(io("raw socket"))?;
        socket.bind_device(Some(ifname.as_bytes())).map_err(io("SO_BINDTODEVICE"))?;
        // A raw socket bound to an address only receives datagrams sent *to* that address: bound
        // to `src`, adverts to 224.0.0.18 never arrive. So bind only for unicast (adverts come to
        // our own address); for multicast the source comes from IP_MULTICAST_IF below.
        if !peers.is_empty() {
            socket.bind(&SockAddr::from(SocketAddrV4::new(src, 0))).map_err(io("bind source address"))?;
        }
        socket.set_ttl_v4(u32::from(TTL)).map_err(io("IP_TTL"))?;
        socket.set_multicast_ttl_v4(u32::from(TTL)).map_err(io("IP_MULTICAST_TTL"))?;
        socket.set_tos_v4(u32::from(TOS)).map_err(io("IP_TOS"))?;
        socket.set_multicast_loop_v4(false).map_err(io("IP_MULTICAST_LOOP"))?;
        socket.set_multicast_if_v4(&src).map_err(io("IP_MULTICAST_IF"))?;
        let dests: Vec<SockAddr> = if peers.is_empty() {
            socket
                .join_multicast_v4_n(&MCAST_V4, &InterfaceIndexOrAddress::Index(ifindex))
                .map_err(io("IP_ADD_MEMBERSHIP"))?;
            vec![SockAddr::from(SocketAddr::from((MCAST_V4, 0)))]
        } else {
            peers.iter().map(|p| SockAddr::from(SocketAddr::from((*p, 0)))).collect()
        };
        Ok(VrrpSocket { socket, dests, buf: vec![0; 65_536] })
    }

    /// Sends an advert to every destination; `payload_for` encodes it for that destination
    /// address (v3's checksum covers it).
    pub fn send_to_each(&self, mut payload_for: impl FnMut(IpAddr) -> Result<Vec<u8>>) -> Result<()> {
        for d in &self.dests {
            let ip = d.as_socket().map_or(IpAddr::V4(MCAST_V4), |s| s.ip());
            let bytes = payload_for(ip)?;
            self.socket.send_to(&bytes, d).map_err(|e| Error::io("send advert", e))?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for a datagram; returns its IP header fields and payload, `None`
    /// on timeout or a datagram that is not a whole IPv4 packet.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<(IpInfo, &[u8])>> {
        self.read_one(timeout)
    }

    /// [`recv`](Self::recv) that also returns (`None`) as soon as `wake` becomes readable, so
    /// a stop request does not wait for the timeout. The caller drains `wake`.
    pub fn recv_or_wake(&mut self, timeout: Duration, wake: BorrowedFd<'_>) -> Result<Option<(IpInfo, &[u8])>> {
        use nix::poll::{ppoll, PollFd, PollFlags};
        let timeout = timeout.max(Duration::from_micros(100));
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN), PollFd::new(wake, PollFlags::POLLIN)];
        match ppoll(&mut fds, Some(nix::sys::time::TimeSpec::from_duration(timeout)), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::io("ppoll", e.into())),
        }
        let readable =
            |f: &PollFd<'_>| f.revents().is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR));
        if !readable(&fds[0]) {
            return Ok(None);
        }
        // Readable: the read does not wait (the short timeout only guards a spurious wake-up).
        self.read_one(Duration::from_millis(1))
    }

    fn read_one(&mut self, timeout: Duration) -> Result<Option<(IpInfo, &[u8])>> {
        let timeout = timeout.max(Duration::from_micros(100));
        self.socket.set_read_timeout(Some(timeout)).map_err(|e| Error::io("SO_RCVTIMEO", e))?;
        let n = match (&self.socket).read(&mut self.buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(Error::io("receive advert", e)),
        };
        let buf = self.buf.get(..n).unwrap_or(&[]);
        Ok(parse_ipv4_header(buf).and_then(|h| Some((h.info, buf.get(h.payload.0..h.payload.1)?))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_keepalived_header() {
        // The IPv4 header of keepalived's v2 advert (frame 1 of the shutdown capture) + payload.
        let pkt = [
            0x45, 0xc0, 0x00, 0x28, 0x00, 0x08, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x1d, 0x0a, 0x63, 0x00, 0x0b, 0xe0, 0x00,
            0x00, 0x12, 0x21, 0x33, 0x96, 0x01, 0x01, 0x01, 0xc5, 0xfb, 0x0a, 0x63, 0x00, 0x64, 0x6c, 0x61, 0x62, 0x35,
            0x31, 0x70, 0x77, 0x00,
        ];
        let h = parse_ipv4_header(&pkt).unwrap();
        assert_eq!(h.info.src, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11)));
        assert_eq!(h.info.dst, IpAddr::V4(MCAST_V4));
        assert_eq!((h.info.ttl, h.info.protocol), (255, 112));
        assert_eq!(h.payload, (20, 40));
        assert!(parse_ipv4_header(&pkt[..39]).is_none(), "total length beyond the datagram");
        let mut bad = pkt;
        bad[0] = 0x44;
        assert!(parse_ipv4_header(&bad).is_none(), "IHL below 5");
        bad[0] = 0x65;
        assert!(parse_ipv4_header(&bad).is_none(), "not IPv4");
    }

    proptest! {
        #[test]
        fn header_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Some(h) = parse_ipv4_header(&bytes) {
                prop_assert!(h.payload.0 <= h.payload.1 && h.payload.1 <= bytes.len());
            }
        }
    }
}

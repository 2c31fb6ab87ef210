//! VRRP advertisements on the wire: pure encode and decode of VRRPv2 (RFC 3768, IPv4) and
//! VRRPv3 (RFC 5798, IPv4 and IPv6), byte-compatible with keepalived. No socket here: the
//! receive path hands [`decode`] the few IP header fields that matter (addresses, TTL,
//! protocol) and the IP payload; the send path puts [`VrrpPacket::encode`]'s bytes in a raw
//! socket. Every check RFC 5798 §7.1 asks of a receiver that can be done on one packet is done
//! here, and the decoder never panics on any input (fuzzed in `fuzz/`, property-tested below).

use crate::error::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// The IPv4 multicast group adverts are sent to.
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group adverts are sent to.
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL / hop limit of every advert, checked on receipt.
pub const TTL: u8 = 255;
/// IP TOS / traffic class keepalived sends adverts with (DSCP CS6, network control).
pub const TOS: u8 = 0xc0;
/// Length of v2's authentication data.
pub const AUTH_LEN: usize = 8;
/// Fixed header length, both versions.
const HEADER_LEN: usize = 8;
/// Type ADVERTISEMENT, the only one defined.
const TYPE_ADVERT: u8 = 1;

/// Protocol version of an advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in whole seconds, optional simple password.
    V2,
    /// RFC 5798: IPv4 and IPv6, interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The version nibble.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// v2 authentication (RFC 3768 §5.3.6). Type 2 (IP AH) is not supported and rejected.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// Type 0: no authentication; the 8 data bytes are zero on send, ignored on receipt.
    #[default]
    None,
    /// Type 1: a clear-text password of up to 8 bytes, zero-padded.
    Pass([u8; AUTH_LEN]),
}

impl Auth {
    /// A PASS authentication; keepalived keeps only the first 8 bytes of `auth_pass`, so do we.
    pub fn pass(password: &str) -> Self {
        let mut data = [0u8; AUTH_LEN];
        for (d, s) in data.iter_mut().zip(password.bytes()) {
            *d = s;
        }
        Auth::Pass(data)
    }

    fn type_code(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Pass(_) => f.write_str("Pass(<redacted>)"),
        }
    }
}

/// One VRRP advertisement.
///
/// VRRPv2 (RFC 3768 §5.1), IPv4 only:
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Adver Int   |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (1)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                            .                                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (n)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (1)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (2)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// The checksum covers the whole VRRP message (no pseudo-header).
///
/// VRRPv3 (RFC 5798 §5.1), IPv4 or IPv6:
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |(rsvd) |     Max Adver Int     |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                       IPvX Address(es)                        |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// The checksum covers the VRRP message and the IP pseudo-header (RFC 5798 §5.2.8: for IPv4
/// the one of RFC 768 — source, destination, zero, protocol 112, VRRP length; for IPv6 the one
/// of RFC 2460 §8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpPacket {
    pub version: Version,
    /// Virtual Router ID, 1–255.
    pub vrid: u8,
    /// Sender's priority: 255 address owner, 0 "master is leaving", 1–254 otherwise.
    pub priority: u8,
    /// The interval field as on the wire: whole seconds in v2 (8 bits), centiseconds in v3
    /// (12 bits). See [`VrrpPacket::interval_cs`].
    pub adver_int: u16,
    /// v2 only; always [`Auth::None`] in v3.
    pub auth: Auth,
    /// The virtual addresses, all of the IP header's family.
    pub addresses: Vec<IpAddr>,
}

/// The IP header fields the decoder needs (from `IP_PKTINFO`/the received header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// IPv4 protocol / IPv6 next header.
    pub protocol: u8,
}

/// What the receiving instance is configured with, checked by [`decode`].
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    pub version: Version,
    pub vrid: u8,
    /// v2: the configured authentication (type and password must match).
    pub auth: &'a Auth,
    /// v2: the configured interval in seconds (RFC 3768 §7.1 drops a different one).
    pub adver_int_s: u16,
    /// The configured virtual addresses; the advert must list the same number, and (unless it
    /// comes from the address owner, priority 255) the same addresses.
    pub addresses: &'a [IpAddr],
}

impl VrrpPacket {
    /// The advert interval in centiseconds, whatever the version.
    pub fn interval_cs(&self) -> u32 {
        match self.version {
            Version::V2 => u32::from(self.adver_int) * 100,
            Version::V3 => u32::from(self.adver_int),
        }
    }

    /// Length of the encoded message.
    pub fn len(&self) -> usize {
        let addrs: usize = self.addresses.iter().map(|a| addr_len(*a)).sum();
        HEADER_LEN + addrs + if self.version == Version::V2 { AUTH_LEN } else { 0 }
    }

    /// Never true: an advert has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Encodes the advert. `src`/`dst` are the IP header's addresses, used by v3's checksum
    /// pseudo-header (and to check the address family); v2 ignores them.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>> {
        let v6 = src.is_ipv6();
        if v6 != dst.is_ipv6() {
            return Err(Error::Encode("source and destination are of different families"));
        }
        if self.addresses.iter().any(|a| a.is_ipv6() != v6) {
            return Err(Error::Encode("virtual addresses must be of the IP header's family"));
        }
        let count = u8::try_from(self.addresses.len()).map_err(|_| Error::Encode("more than 255 addresses"))?;
        let mut out = Vec::with_capacity(self.len());
        out.push((self.version.number() << 4) | TYPE_ADVERT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(count);
        match self.version {
            Version::V2 => {
                if v6 {
                    return Err(Error::Encode("VRRPv2 is IPv4 only"));
                }
                let int = u8::try_from(self.adver_int).map_err(|_| Error::Encode("v2 interval over 255 s"))?;
                out.push(self.auth.type_code());
                out.push(int);
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(Error::Encode("VRRPv3 has no authentication"));
                }
                if self.adver_int > 0x0fff {
                    return Err(Error::Encode("v3 interval over 4095 cs"));
                }
                out.extend_from_slice(&self.adver_int.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
        for a in &self.addresses {
            match a {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            match &self.auth {
                Auth::None => out.extend_from_slice(&[0; AUTH_LEN]),
                Auth::Pass(data) => out.extend_from_slice(data),
            }
        }
        let sum = checksum(self.version, src, dst, &out);
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(out)
    }
}

fn addr_len(a: IpAddr) -> usize {
    if a.is_ipv6() {
        16
    } else {
        4
    }
}

/// Parses an advert and checks what can be checked without configuration: protocol, TTL,
/// version, type, length against the address count, checksum, v2 authentication type.
pub fn parse(ip: &IpInfo, payload: &[u8]) -> Result<VrrpPacket> {
    if ip.protocol != IPPROTO_VRRP {
        return Err(Error::WrongProtocol(ip.protocol));
    }
    if ip.ttl != TTL {
        return Err(Error::BadTtl(ip.ttl));
    }
    let Some(&[vt, vrid, priority, count, b4, b5, c0, c1]) = payload.get(..HEADER_LEN) else {
        return Err(Error::Truncated(payload.len()));
    };
    let v6 = ip.src.is_ipv6();
    let version = match vt >> 4 {
        2 if !v6 => Version::V2,
        3 => Version::V3,
        v => return Err(Error::BadVersion(v)),
    };
    if vt & 0x0f != TYPE_ADVERT {
        return Err(Error::BadType(vt & 0x0f));
    }
    let alen = if v6 { 16 } else { 4 };
    let auth_len = if version == Version::V2 { AUTH_LEN } else { 0 };
    let expected = HEADER_LEN + usize::from(count) * alen + auth_len;
    if payload.len() != expected {
        return Err(Error::LengthMismatch { count, len: payload.len(), expected });
    }
    let got = u16::from_be_bytes([c0, c1]);
    let computed = checksum(version, ip.src, ip.dst, payload);
    // Computed with the field taken as zero, the sum equals the field of a sound message.
    if computed != got {
        return Err(Error::BadChecksum { got, computed });
    }
    let body = payload.get(HEADER_LEN..expected - auth_len).unwrap_or(&[]);
    let addresses = body
        .chunks_exact(alen)
        .map(|c| match <[u8; 16]>::try_from(c) {
            Ok(b) => IpAddr::V6(Ipv6Addr::from(b)),
            Err(_) => {
                let mut b = [0u8; 4];
                b.copy_from_slice(c);
                IpAddr::V4(Ipv4Addr::from(b))
            }
        })
        .collect();
    let (adver_int, auth) = match version {
        Version::V2 => {
            let auth = match b4 {
                0 => Auth::None,
                1 => {
                    let mut data = [0u8; AUTH_LEN];
                    data.copy_from_slice(payload.get(expected - AUTH_LEN..).unwrap_or(&[0; AUTH_LEN]));
                    Auth::Pass(data)
                }
                t => return Err(Error::UnsupportedAuth(t)),
            };
            (u16::from(b5), auth)
        }
        // The 4 reserved bits are ignored on receipt (RFC 5798 §5.2.6).
        Version::V3 => (u16::from_be_bytes([b4 & 0x0f, b5]), Auth::None),
    };
    Ok(VrrpPacket { version, vrid, priority, adver_int, auth, addresses })
}

/// [`parse`], then the receiver checks against the instance's configuration (RFC 3768 §7.1,
/// RFC 5798 §7.1): version, VRID, v2 authentication and interval, virtual addresses.
pub fn decode(ip: &IpInfo, payload: &[u8], expect: &Expect<'_>) -> Result<VrrpPacket> {
    let p = parse(ip, payload)?;
    if p.version != expect.version {
        return Err(Error::VersionMismatch { got: p.version.number(), want: expect.version.number() });
    }
    if p.vrid != expect.vrid {
        return Err(Error::VridMismatch { got: p.vrid, want: expect.vrid });
    }
    if p.version == Version::V2 {
        if p.auth != *expect.auth {
            return Err(Error::AuthMismatch);
        }
        if p.adver_int != expect.adver_int_s {
            return Err(Error::IntervalMismatch { got: p.adver_int, want: expect.adver_int_s });
        }
    }
    if p.addresses.len() != expect.addresses.len() {
        return Err(Error::AddressCountMismatch { got: p.addresses.len(), want: expect.addresses.len() });
    }
    if p.priority != 255 {
        if let Some(a) = p.addresses.iter().find(|a| !expect.addresses.contains(a)) {
            return Err(Error::AddressMismatch(*a));
        }
    }
    Ok(p)
}

/// The Internet checksum (RFC 1071) of `msg` with its checksum field (bytes 6–7) taken as
/// zero, plus v3's pseudo-header.
pub fn checksum(version: Version, src: IpAddr, dst: IpAddr, msg: &[u8]) -> u16 {
    let mut sum = Sum::default();
    if version == Version::V3 {
        let len = msg.len();
        match (src, dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                sum.add(&s.octets());
                sum.add(&d.octets());
                sum.add(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
                sum.add(&[0, 0, 0, IPPROTO_VRRP]);
            }
            _ => {
                sum.add(&ip_octets(src));
                sum.add(&ip_octets(dst));
                sum.add(&[0, IPPROTO_VRRP]);
                sum.add(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
            }
        }
    }
    sum.add(msg.get(..6).unwrap_or(msg));
    sum.add(msg.get(8..).unwrap_or(&[]));
    sum.finish()
}

/// The 4 bytes of an IPv4 address, or the last 4 of an IPv6 one (mixed families never verify).
fn ip_octets(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
    }
}

/// One's-complement accumulator; every chunk added starts on an even offset of the message
/// (all our chunks have even length except the last).
#[derive(Default)]
struct Sum(u32);

impl Sum {
    fn add(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(2);
        for w in &mut words {
            self.0 += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            self.0 += u32::from(*last) << 8;
        }
        self.0 = (self.0 & 0xffff) + (self.0 >> 16);
    }

    fn finish(self) -> u16 {
        let mut s = self.0;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11));
    const DST: IpAddr = IpAddr::V4(MCAST_V4);
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100));

    fn ip(src: IpAddr, dst: IpAddr) -> IpInfo {
        IpInfo { src, dst, ttl: 255, protocol: IPPROTO_VRRP }
    }

    fn v2_lab() -> VrrpPacket {
        VrrpPacket {
            version: Version::V2,
            vrid: 51,
            priority: 150,
            adver_int: 1,
            auth: Auth::pass("lab51pw"),
            addresses: vec![VIP],
        }
    }

    fn v3_lab() -> VrrpPacket {
        VrrpPacket {
            version: Version::V3,
            vrid: 51,
            priority: 150,
            adver_int: 10,
            auth: Auth::None,
            addresses: vec![VIP],
        }
    }

    #[test]
    fn v2_vector_from_keepalived() {
        let bytes = v2_lab().encode(SRC, DST).unwrap();
        assert_eq!(
            bytes,
            [
                0x21, 0x33, 0x96, 0x01, 0x01, 0x01, 0xc5, 0xfb, 10, 99, 0, 100, b'l', b'a', b'b', b'5', b'1', b'p',
                b'w', 0
            ]
        );
        assert_eq!(parse(&ip(SRC, DST), &bytes).unwrap(), v2_lab());
    }

    #[test]
    fn v3_vector_from_keepalived_uses_the_pseudo_header() {
        let bytes = v3_lab().encode(SRC, DST).unwrap();
        assert_eq!(bytes, [0x31, 0x33, 0x96, 0x01, 0x00, 0x0a, 0x42, 0xfd, 0x0a, 0x63, 0x00, 0x64]);
        assert_eq!(parse(&ip(SRC, DST), &bytes).unwrap(), v3_lab());
        // Another source address changes the sum: the pseudo-header is in it.
        let other = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 12));
        assert!(matches!(parse(&ip(other, DST), &bytes), Err(Error::BadChecksum { got: 0x42fd, .. })));
    }

    #[test]
    fn v3_ipv6_round_trip_and_pseudo_header() {
        let src: IpAddr = "fe80::1".parse().unwrap();
        let dst = IpAddr::V6(MCAST_V6);
        let p = VrrpPacket {
            version: Version::V3,
            vrid: 7,
            priority: 100,
            adver_int: 100,
            auth: Auth::None,
            addresses: vec!["fe80::7".parse().unwrap(), "2001:db8::7".parse().unwrap()],
        };
        let b = p.encode(src, dst).unwrap();
        assert_eq!(b.len(), 8 + 32);
        assert_eq!(parse(&ip(src, dst), &b).unwrap(), p);
        let other: IpAddr = "fe80::2".parse().unwrap();
        assert!(matches!(parse(&ip(other, dst), &b), Err(Error::BadChecksum { .. })));
    }

    #[test]
    fn receiver_checks_each_reject() {
        let b = v2_lab().encode(SRC, DST).unwrap();
        let auth = Auth::pass("lab51pw");
        let vips = [VIP];
        let good = Expect { version: Version::V2, vrid: 51, auth: &auth, adver_int_s: 1, addresses: &vips };
        assert!(decode(&ip(SRC, DST), &b, &good).is_ok());

        let mut i = ip(SRC, DST);
        i.ttl = 254;
        assert_eq!(decode(&i, &b, &good), Err(Error::BadTtl(254)));
        let mut i = ip(SRC, DST);
        i.protocol = 17;
        assert_eq!(decode(&i, &b, &good), Err(Error::WrongProtocol(17)));

        let mut bad = b.clone();
        bad[0] = 0x41;
        assert_eq!(parse(&ip(SRC, DST), &bad), Err(Error::BadVersion(4)));
        bad[0] = 0x22;
        assert_eq!(parse(&ip(SRC, DST), &bad), Err(Error::BadType(2)));
        let mut bad = b.clone();
        bad[12] ^= 1;
        assert!(matches!(parse(&ip(SRC, DST), &bad), Err(Error::BadChecksum { got: 0xc5fb, .. })));
        assert!(matches!(
            parse(&ip(SRC, DST), &b[..19]),
            Err(Error::LengthMismatch { count: 1, len: 19, expected: 20 })
        ));
        assert_eq!(parse(&ip(SRC, DST), &b[..5]), Err(Error::Truncated(5)));
        // v2 over IPv6 is not a thing.
        let v6: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(parse(&ip(v6, IpAddr::V6(MCAST_V6)), &b), Err(Error::BadVersion(2)));

        let wrong_pw = Auth::pass("lab51px");
        let e = Expect { auth: &wrong_pw, ..good.clone() };
        assert_eq!(decode(&ip(SRC, DST), &b, &e), Err(Error::AuthMismatch));
        let e = Expect { auth: &Auth::None, ..good.clone() };
        assert_eq!(decode(&ip(SRC, DST), &b, &e), Err(Error::AuthMismatch));
        let e = Expect { vrid: 52, ..good.clone() };
        assert_eq!(decode(&ip(SRC, DST), &b, &e), Err(Error::VridMismatch { got: 51, want: 52 }));
        let e = Expect { version: Version::V3, ..good.clone() };
        assert_eq!(decode(&ip(SRC, DST), &b, &e), Err(Error::VersionMismatch { got: 2, want: 3 }));
        let e = Expect { adver_int_s: 2, ..good.clone() };
        assert_eq!(decode(&ip(SRC, DST), &b, &e), Err(Error::IntervalMismatch { got: 1, want: 2 }));
        let two = [VIP, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 101))];
        let e = Expect { addresses: &two, ..good.clone() };
        assert_eq!(decode(&ip(SRC, DST), &b, &e), Err(Error::AddressCountMismatch { got: 1, want: 2 }));
        let other = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 101))];
        let e = Expect { addresses: &other, ..good.clone() };
        assert_eq!(decode(&ip(SRC, DST), &b, &e), Err(Error::AddressMismatch(VIP)));
    }

    #[test]
    fn v2_auth_type_2_is_rejected_and_v3_reserved_bits_ignored() {
        let mut p = v2_lab();
        p.auth = Auth::None;
        let mut b = p.encode(SRC, DST).unwrap();
        b[4] = 2;
        let sum = checksum(Version::V2, SRC, DST, &b);
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse(&ip(SRC, DST), &b), Err(Error::UnsupportedAuth(2)));

        let mut b = v3_lab().encode(SRC, DST).unwrap();
        b[4] |= 0xf0;
        let sum = checksum(Version::V3, SRC, DST, &b);
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse(&ip(SRC, DST), &b).unwrap().adver_int, 10);
    }

    #[test]
    fn encode_refuses_what_the_wire_cannot_hold() {
        let mut p = v2_lab();
        p.adver_int = 256;
        assert!(p.encode(SRC, DST).is_err());
        let mut p = v3_lab();
        p.adver_int = 4096;
        assert!(p.encode(SRC, DST).is_err());
        let mut p = v3_lab();
        p.auth = Auth::pass("x");
        assert!(p.encode(SRC, DST).is_err());
        let v6: IpAddr = "fe80::1".parse().unwrap();
        assert!(v3_lab().encode(v6, IpAddr::V6(MCAST_V6)).is_err());
        assert!(v2_lab().encode(SRC, v6).is_err());
    }

    #[test]
    fn pass_is_truncated_to_8_bytes_and_redacted() {
        assert_eq!(Auth::pass("123456789"), Auth::pass("12345678"));
        assert_eq!(format!("{:?}", Auth::pass("secret")), "Pass(<redacted>)");
    }

    fn arb_packet() -> impl Strategy<Value = (VrrpPacket, IpAddr, IpAddr)> {
        let v4 = (
            any::<bool>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            proptest::option::of(any::<[u8; 8]>()),
            proptest::collection::vec(any::<u32>(), 0..20),
            any::<u32>(),
        )
            .prop_map(|(v3, vrid, priority, int, pw, addrs, src)| {
                let version = if v3 { Version::V3 } else { Version::V2 };
                let adver_int = if v3 { int & 0x0fff } else { int & 0xff };
                let auth = match (v3, pw) {
                    (false, Some(p)) => Auth::Pass(p),
                    _ => Auth::None,
                };
                let addresses = addrs.into_iter().map(|a| IpAddr::V4(Ipv4Addr::from(a))).collect();
                let p = VrrpPacket { version, vrid, priority, adver_int, auth, addresses };
                (p, IpAddr::V4(Ipv4Addr::from(src)), DST)
            });
        let v6 =
            (any::<u8>(), any::<u8>(), 0u16..0x1000, proptest::collection::vec(any::<u128>(), 0..8), any::<u128>())
                .prop_map(|(vrid, priority, adver_int, addrs, src)| {
                    let addresses = addrs.into_iter().map(|a| IpAddr::V6(Ipv6Addr::from(a))).collect();
                    let p = VrrpPacket { version: Version::V3, vrid, priority, adver_int, auth: Auth::None, addresses };
                    (p, IpAddr::V6(Ipv6Addr::from(src)), IpAddr::V6(MCAST_V6))
                });
        prop_oneof![3 => v4, 1 => v6]
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips((p, src, dst) in arb_packet()) {
            let b = p.encode(src, dst).unwrap();
            prop_assert_eq!(b.len(), p.len());
            prop_assert_eq!(parse(&ip(src, dst), &b).unwrap(), p);
        }

        #[test]
        fn any_single_bit_flip_is_caught((p, src, dst) in arb_packet(), bit in 0usize..64) {
            let mut b = p.encode(src, dst).unwrap();
            let i = bit / 8;
            b[i] ^= 1 << (bit % 8);
            // Flipping a reserved v3 bit is ignored by design but still fails the checksum.
            prop_assert!(parse(&ip(src, dst), &b).is_err());
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), v6 in any::<bool>(), ttl in any::<u8>()) {
            let (src, dst) = if v6 {
                ("fe80::1".parse().unwrap(), IpAddr::V6(MCAST_V6))
            } else {
                (SRC, DST)
            };
            let info = IpInfo { src, dst, ttl, protocol: IPPROTO_VRRP };
            let _ = parse(&info, &bytes);
            let vips = [VIP];
            let e = Expect { version: Version::V2, vrid: 51, auth: &Auth::None, adver_int_s: 1, addresses: &vips };
            let _ = decode(&info, &bytes, &e);
        }

        #[test]
        fn parse_of_valid_header_with_random_body_never_panics(
            head in any::<[u8; 4]>(), int in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..80)
        ) {
            // Build a message whose checksum verifies so that the code after it is reached.
            let mut b = head.to_vec();
            b[0] = (b[0] & 0x10) | 0x21;
            b.extend_from_slice(&int.to_be_bytes());
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&body);
            let v = if b[0] >> 4 == 3 { Version::V3 } else { Version::V2 };
            let sum = checksum(v, SRC, DST, &b);
            b[6..8].copy_from_slice(&sum.to_be_bytes());
            let _ = parse(&ip(SRC, DST), &b);
        }
    }
}

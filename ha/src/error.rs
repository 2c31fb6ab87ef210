//! The crate's one error type. Packet variants say exactly why an advert was dropped (the
//! receive path logs and counts them per reason); the IO variants carry the syscall that failed.

use std::net::IpAddr;

/// Everything that can go wrong in `rwsplit-ha`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The IP header says the payload is not VRRP (protocol 112).
    #[error("IP protocol {0} is not VRRP (112)")]
    WrongProtocol(u8),
    /// RFC 5798 §7.1: the TTL / hop limit must be 255, so adverts cannot come from off-link.
    #[error("TTL {0} is not 255")]
    BadTtl(u8),
    /// Shorter than the fixed header.
    #[error("packet of {0} bytes is shorter than a VRRP header")]
    Truncated(usize),
    /// The version nibble is not 2 or 3, or v2 over IPv6.
    #[error("VRRP version {0} is not supported here")]
    BadVersion(u8),
    /// The type nibble is not 1 (ADVERTISEMENT).
    #[error("VRRP type {0} is not ADVERTISEMENT (1)")]
    BadType(u8),
    /// The payload length does not match the address count (and v2's authentication data).
    #[error("{len} bytes do not hold {count} addresses (expected {expected} bytes)")]
    LengthMismatch { count: u8, len: usize, expected: usize },
    /// The checksum does not verify.
    #[error("bad checksum (got {got:#06x}, computed {computed:#06x})")]
    BadChecksum { got: u16, computed: u16 },
    /// v2 authentication type other than 0 (none) or 1 (simple text password).
    #[error("v2 authentication type {0} is not supported")]
    UnsupportedAuth(u8),
    /// The advert is for another virtual router.
    #[error("VRID {got} is not ours ({want})")]
    VridMismatch { got: u8, want: u8 },
    /// The advert's version differs from the instance's.
    #[error("VRRP version {got} is not the configured {want}")]
    VersionMismatch { got: u8, want: u8 },
    /// The advert lists a different number of virtual addresses than configured.
    #[error("advert lists {got} addresses, {want} configured")]
    AddressCountMismatch { got: usize, want: usize },
    /// The advert lists an address that is not configured.
    #[error("advert lists {0}, which is not configured")]
    AddressMismatch(IpAddr),
    /// v2 authentication type or password differs from ours.
    #[error("v2 authentication does not match")]
    AuthMismatch,
    /// v2 advert interval differs from ours (RFC 3768 §7.1 says drop it).
    #[error("v2 advert interval {got} s is not the configured {want} s")]
    IntervalMismatch { got: u16, want: u16 },
    /// A field cannot be encoded (out of range for the version or address family).
    #[error("cannot encode: {0}")]
    Encode(&'static str),
    /// A system call failed.
    #[error("{op}: {msg}")]
    Io { op: &'static str, msg: String },
}

impl Error {
    /// Wraps an `io::Error` with the operation that failed.
    pub fn io(op: &'static str, e: std::io::Error) -> Self {
        Error::Io { op, msg: e.to_string() }
    }
}

/// `Result` with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

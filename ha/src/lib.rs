//! rwsplit's embedded VRRP: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), keepalived-compatible on
//! the wire, so an rwsplit node can pair with a keepalived node during a migration.
//!
//! Layout: [`packet`] is the pure advert codec, [`fsm`] the pure state machine with injected
//! time; neither touches a socket. The IO around them (raw socket, netlink, gratuitous ARP,
//! track scripts) runs on its own OS thread so query load never delays an advert.

pub mod arp;
pub mod error;
pub mod fsm;
pub mod net;
pub mod packet;
pub mod runner;
pub mod track;
pub mod vip;

pub use error::{Error, Result};

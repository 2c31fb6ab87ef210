//! rwsplit's embedded VRRP: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), keepalived-compatible on
//! the wire, so an rwsplit node can pair with a keepalived node during a migration.
//!
//! Layout: [`packet`] is the pure advert codec, [`fsm`] the pure state machine with injected
//! time; neither touches a socket. The IO around them (raw socket, netlink, gratuitous ARP,
//! track scripts) runs on its own OS thread so query load never delays an advert.
//!
//! `rwsplit run` starts one [`runner`] per `[[vrrp]]` instance (see `rwsplit_proxy::vrrp` for
//! the proxy health it tracks). Tests in network namespaces (root only; they say why they skip
//! otherwise): `tests/netns.rs` drives runners directly against keepalived and each other;
//! `tests/failover.rs` runs the real `rwsplit` binary on a bridge with MariaDB and a client and
//! prints the measured failover times (`cargo build --bin rwsplit && cargo test -p rwsplit-ha
//! --test failover -- --nocapture`).

pub mod arp;
pub mod error;
pub mod fsm;
pub mod net;
pub mod packet;
pub mod runner;
pub mod track;
pub mod vip;

pub use error::{Error, Result};

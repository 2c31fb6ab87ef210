//! rwsplit's proxy: the MySQL wire protocol on both sides, client sessions, the SQL classifier,
//! the routing decision and the backend connection pools.
//!
//! Data flow: [`listener`] accepts a client and runs a [`session`] on one of the session threads
//! ([`workers`]); each command is classified
//! ([`classifier`], pure), routed against the current topology snapshot ([`router`], pure),
//! sent on a backend connection leased from the [`backend`] pool after that connection was
//! brought to the session's state, and its response is relayed packet by packet
//! ([`protocol::response`] follows it without decoding rows). [`reload`] applies a new config
//! to all of this while it runs.

pub mod admin;
pub mod backend;
pub mod classifier;
pub mod consistency;
pub mod error;
pub mod listener;
pub mod metrics;
pub mod promotion;
pub mod protocol;
pub mod reload;
pub mod router;
pub mod runtime;
pub mod schemas;
pub mod session;
pub mod sessions;
pub mod tls;
pub mod vrrp;
pub mod workers;

pub use error::ProxyError;

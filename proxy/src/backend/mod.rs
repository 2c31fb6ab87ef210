//! Connections to the MySQL servers: logging in as a client ([`auth`]), one connection with the
//! state rwsplit tracks on it ([`conn`]), the per-server pools ([`pool`]), rwsplit's own commands on a connection
//! ([`internal`]), and TLS towards the servers ([`tls`]).

pub mod auth;
pub mod conn;
pub mod internal;
pub mod pool;
pub mod tls;

pub use conn::BackendConn;
pub use pool::{Pool, PoolSettings};

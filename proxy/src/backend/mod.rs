//! Connections to the MySQL servers: logging in as a client ([`auth`]), one connection with the
//! state rwsplit tracks on it ([`conn`]), the per-server pools ([`pool`]), and rwsplit's own commands on a connection
//! ([`internal`]).

pub mod auth;
pub mod conn;
pub mod internal;
pub mod pool;

pub use conn::BackendConn;
pub use pool::{Pool, PoolSettings};

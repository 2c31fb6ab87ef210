//! Connections to the MySQL servers: logging in as a client ([`auth`]), one connection with the
//! state rwsplit tracks on it ([`conn`]), and the per-server pools ([`pool`]).

pub mod auth;
pub mod conn;
pub mod pool;

pub use conn::BackendConn;
pub use pool::{Pool, PoolSettings};

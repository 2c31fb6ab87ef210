//! Importers for the configurations operators already have: each reads another tool's file and
//! produces the matching rwsplit TOML, listing what has no rwsplit meaning instead of dropping
//! it silently.

pub mod keepalived;

pub use keepalived::{import_keepalived, ImportOutput};

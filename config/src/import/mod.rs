//! Importers for the configurations operators already have: each reads another tool's files and
//! produces the matching rwsplit TOML, listing what has no rwsplit meaning instead of dropping
//! it silently. Reading each format is the importer's own job; writing the TOML is shared
//! (`toml_out`).

pub mod amoeba;
pub mod keepalived;
mod toml_out;

pub use amoeba::{import_amoeba, AmoebaOutput, Notice};
pub use keepalived::{import_keepalived, ImportOutput};

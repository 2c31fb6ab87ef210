//! rwsplit's configuration: one TOML file, deserialized into [`Config`] with
//! `deny_unknown_fields`, then checked by one [`Config::validate`] that reports every problem
//! at once. [`load`] turns both kinds of failure into errors that name the file, the line and
//! the reason, so a bad config stops rwsplit at start and a bad reload keeps the old one.
//!
//! Each section lives in its own module next to its validation; importers for the
//! configurations operators already have (Amoeba, keepalived) sit under [`import`].

mod error;
pub mod import;
mod load;
mod locate;
mod schema;
mod secret;

pub use error::{ConfigError, ConfigErrors, Problem};
pub use load::{load, parse};
pub use schema::*;
pub use secret::Secret;

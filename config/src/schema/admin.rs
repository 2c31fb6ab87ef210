//! `[admin]`: the local HTTP endpoint.

use super::check_address;
use crate::Problem;
use serde::Deserialize;

/// Where `/status` and `/metrics` are served. Loopback by default: it shows topology and
/// traffic, so exposing it is an explicit choice.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Listen address of the HTTP endpoint.
    pub listen: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: "127.0.0.1:9066".into() }
    }
}

impl AdminConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<Problem>) {
        check_address("admin.listen", &self.listen, problems);
    }
}

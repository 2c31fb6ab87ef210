//! `[monitor]`: how servers are checked.

use super::check_range;
use crate::{Problem, Secret};
use serde::Deserialize;

/// Health and replication checks, run by a dedicated monitor user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// User the monitor logs in as; needs `REPLICATION CLIENT` (or `SLAVE MONITOR`) and
    /// `PROCESS`, nothing more.
    pub user: String,
    /// That user's password.
    pub password: Secret,
    /// Time between two checks of a server.
    pub interval_ms: u64,
    /// Time allowed to connect to a server for a check.
    pub connect_timeout_ms: u64,
    /// Time allowed for one whole check (all its queries).
    pub check_timeout_ms: u64,
    /// Failed checks in a row before a server is taken out (like keepalived's `fall`).
    pub fall: u32,
    /// Good checks in a row before a server is put back (like keepalived's `rise`).
    pub rise: u32,
    /// A replica lagging more than this (Seconds_Behind_Master, in ms) takes no reads.
    pub max_replication_lag_ms: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            user: String::new(),
            password: Secret::default(),
            interval_ms: 1_000,
            connect_timeout_ms: 1_000,
            check_timeout_ms: 1_000,
            fall: 3,
            rise: 2,
            max_replication_lag_ms: 10_000,
        }
    }
}

impl MonitorConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<Problem>) {
        if self.user.is_empty() {
            problems.push(Problem::new("monitor.user", "the monitor user is required"));
        }
        check_range("monitor.interval_ms", self.interval_ms, 50, 3_600_000, problems);
        check_range("monitor.connect_timeout_ms", self.connect_timeout_ms, 10, 600_000, problems);
        check_range("monitor.check_timeout_ms", self.check_timeout_ms, 10, 600_000, problems);
        check_range("monitor.fall", self.fall.into(), 1, 1_000, problems);
        check_range("monitor.rise", self.rise.into(), 1, 1_000, problems);
        check_range("monitor.max_replication_lag_ms", self.max_replication_lag_ms, 1, 86_400_000, problems);
    }
}

//! `[monitor]`: how servers are checked.

use super::check_range;
use crate::{Problem, Secret};
use serde::Deserialize;

/// Health and replication checks, run by a dedicated monitor user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// User the monitor logs in as; needs `REPLICATION CLIENT` (MySQL, MariaDB < 10.5) or
    /// `SLAVE MONITOR` (MariaDB 10.5+) and `PROCESS`, nothing more — unless `heartbeat` is on,
    /// which also needs `CREATE`, `INSERT` and `DELETE` on the `rwsplit` schema. Switchover and
    /// failover (MariaDB 10.11) also need `RELOAD`, `READ_ONLY ADMIN`, `REPLICATION SLAVE ADMIN`,
    /// `REPLICATION MASTER ADMIN` and `BINLOG ADMIN`.
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
    /// A replica lagging more than this (Seconds_Behind_Master, or the heartbeat when it is
    /// on, in ms) takes no reads.
    pub max_replication_lag_ms: u64,
    /// Hysteresis for the lag limit, in percent of `max_replication_lag_ms`: a replica that left
    /// the read pool for lag comes back only once its lag is at or under this share of the
    /// limit, so a replica hovering around the limit does not flap in and out. 100 = none.
    pub lag_hysteresis_percent: u32,
    /// Measure lag in milliseconds with a heartbeat row: every interval the monitor writes
    /// `REPLACE INTO rwsplit.heartbeat (id, ts)` on the writer (creating the schema and table
    /// when missing) and reads the row back on each replica. Without it, lag comes from
    /// `Seconds_Behind_Master` (whole seconds, and 0 while the IO thread itself is behind).
    ///
    /// `ts` is the monitor's own clock (µs since the epoch) and is compared with the monitor's
    /// own clock: lag = how long ago the oldest write the replica has not applied committed
    /// on the writer (0 when it has them all). No server clock is read, so skew between the
    /// servers — or between them and rwsplit — does not enter the lag.
    pub heartbeat: bool,
    /// The heartbeat row's `id`. Give each rwsplit instance that shares the servers (an HA
    /// pair) its own id, so each measures against its own writes.
    pub heartbeat_id: u32,
    /// Detect errant transactions: a replica holding GTIDs the writer does not have (written
    /// on the replica directly) is taken out of the read pool and raises an alert.
    pub errant_check: bool,
    /// While the writer does not answer, replicas whose IO thread lost it (and only for that
    /// reason) keep serving reads, which may be stale, instead of leaving the whole read pool
    /// empty (MaxScale's `detect_stale_slave`). Off: such replicas take no reads.
    pub serve_stale_reads: bool,
    /// Shell command (`/bin/sh -c`) run when the writer's semi-sync replication falls back to
    /// asynchronous, and again when it is back. It gets `RWSPLIT_SEMISYNC=off|on` and
    /// `RWSPLIT_SERVER=<name>` in its environment. Empty = none.
    pub semisync_notify: String,
    /// Longest run of `semisync_notify` before it is killed.
    pub notify_timeout_ms: u64,
    /// Promote a replica when the writer is lost: it failed `fall` checks in a row and no
    /// replica's IO thread still reaches it (so it is not only rwsplit's network). The replica
    /// that received the most of the writer's transactions is promoted (with semi-sync on, it
    /// holds every acknowledged one) and the others are repointed to it. Needs the monitor
    /// user's promotion privileges (see `user`) and `replication_user`.
    pub auto_failover: bool,
    /// With `[[vrrp]]`, only the node that is VRRP master of this instance fails over (empty:
    /// the first instance). Every node also takes a lock on the candidate server
    /// (`GET_LOCK`), so two nodes never promote two servers.
    pub failover_vrrp_instance: String,
    /// The account servers replicate with (`CHANGE MASTER TO MASTER_USER=…`) when a
    /// switchover or failover repoints them. Required for either.
    pub replication_user: String,
    /// That account's password.
    pub replication_password: Secret,
    /// A switchover target lagging more than this is refused, and so is a delayed replica
    /// (`MASTER_DELAY`) whose delay is longer, whatever its lag reads at the moment.
    pub switchover_max_lag_ms: u64,
    /// Bound of each waiting step of a switchover or failover: transactions in flight to finish,
    /// the target to apply the old writer's last transaction, the new writer to be seen.
    pub promotion_timeout_ms: u64,
    /// Shell command (`/bin/sh -c`) run after a promotion, with keepalived-like arguments:
    /// `<command> SERVER master|replica` for the new writer and each repointed server, with
    /// `RWSPLIT_PROMOTION=switchover|failover|rejoin` in its environment. Empty = none.
    pub on_promotion: String,
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
            lag_hysteresis_percent: 80,
            heartbeat: false,
            heartbeat_id: 1,
            errant_check: true,
            serve_stale_reads: true,
            semisync_notify: String::new(),
            notify_timeout_ms: 5_000,
            auto_failover: false,
            failover_vrrp_instance: String::new(),
            replication_user: String::new(),
            replication_password: Secret::default(),
            switchover_max_lag_ms: 5_000,
            promotion_timeout_ms: 10_000,
            on_promotion: String::new(),
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
        check_range("monitor.lag_hysteresis_percent", self.lag_hysteresis_percent.into(), 1, 100, problems);
        check_range("monitor.notify_timeout_ms", self.notify_timeout_ms, 100, 600_000, problems);
        if self.semisync_notify.contains('\0') {
            problems.push(Problem::new("monitor.semisync_notify", "the command cannot contain a NUL byte"));
        }
        if self.on_promotion.contains('\0') {
            problems.push(Problem::new("monitor.on_promotion", "the command cannot contain a NUL byte"));
        }
        if self.auto_failover && self.replication_user.is_empty() {
            problems.push(Problem::new(
                "monitor.replication_user",
                "auto_failover repoints replicas and needs the replication account",
            ));
        }
        check_range("monitor.switchover_max_lag_ms", self.switchover_max_lag_ms, 0, 86_400_000, problems);
        check_range("monitor.promotion_timeout_ms", self.promotion_timeout_ms, 100, 3_600_000, problems);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_once_a_user_is_given() {
        let c = MonitorConfig { user: "monitor".into(), ..MonitorConfig::default() };
        let mut problems = Vec::new();
        c.validate(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((c.lag_hysteresis_percent, c.heartbeat, c.errant_check), (80, false, true));
    }

    #[test]
    fn new_fields_are_checked() {
        let c = MonitorConfig {
            user: "monitor".into(),
            lag_hysteresis_percent: 0,
            notify_timeout_ms: 1,
            semisync_notify: "a\0b".into(),
            ..MonitorConfig::default()
        };
        let mut problems = Vec::new();
        c.validate(&mut problems);
        let text = format!("{problems:?}");
        for field in ["monitor.lag_hysteresis_percent", "monitor.notify_timeout_ms", "monitor.semisync_notify"] {
            assert!(text.contains(field), "{field} not reported: {text}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<MonitorConfig>("user = \"m\"\nheartbeat = true\nheart_beat = 1\n");
        assert!(e.is_err());
        let ok: MonitorConfig =
            toml::from_str("user = \"m\"\nheartbeat = true\nsemisync_notify = \"logger off\"\n").unwrap();
        assert!(ok.heartbeat);
        assert_eq!(ok.semisync_notify, "logger off");
    }
}

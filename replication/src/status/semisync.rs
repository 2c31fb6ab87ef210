//! Semi-synchronous replication state from `SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'` and
//! `SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync%'`. MariaDB (built in since 10.3) and MySQL before
//! 8.0.26 say `master`/`slave`; MySQL's 8.0.26+ plugins say `source`/`replica`. Both are read.

use super::Fields;
use serde::Serialize;

/// The source side: is the writer waiting for replica acknowledgements?
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SemiSyncMaster {
    /// `rpl_semi_sync_master_enabled` / `_source_enabled`: semi-sync is configured on.
    pub enabled: bool,
    /// `Rpl_semi_sync_master_status` / `_source_status`: ON while commits wait for an
    /// acknowledgement; OFF after a timeout fell back to asynchronous replication.
    pub active: bool,
    /// Semi-sync replicas connected.
    pub clients: Option<u64>,
    /// Commits acknowledged by a replica.
    pub yes_tx: Option<u64>,
    /// Commits not acknowledged (committed asynchronously).
    pub no_tx: Option<u64>,
    /// Times the source switched semi-sync off.
    pub no_times: Option<u64>,
    /// Average time a commit waited for an acknowledgement, µs.
    pub tx_avg_wait_us: Option<u64>,
    /// Average network wait for an acknowledgement, µs (0 on servers that no longer measure it).
    pub net_avg_wait_us: Option<u64>,
    /// `rpl_semi_sync_master_timeout`, ms: how long a commit waits before falling back.
    pub timeout_ms: Option<u64>,
    /// `rpl_semi_sync_master_wait_point` (`AFTER_COMMIT`, `AFTER_SYNC`).
    pub wait_point: Option<String>,
    /// MySQL `rpl_semi_sync_source_wait_for_replica_count`.
    pub wait_for_count: Option<u64>,
}

/// A name under both the old (`master`/`slave`) and new (`source`/`replica`) words.
fn both(old: String, new: String) -> [String; 2] {
    [old, new]
}

fn get_u64(f: &Fields, names: &[String; 2]) -> Option<u64> {
    f.u64(&[names[0].as_str(), names[1].as_str()])
}

fn get_flag(f: &Fields, names: &[String; 2]) -> Option<bool> {
    f.flag(&[names[0].as_str(), names[1].as_str()])
}

impl SemiSyncMaster {
    /// From the status and variables listings; `None` when the server has no semi-sync source
    /// support at all (MySQL without the plugin: neither the status nor the variable exists).
    pub fn from_fields(status: &Fields, variables: &Fields) -> Option<SemiSyncMaster> {
        let m = |s: &str| both(format!("Rpl_semi_sync_master_{s}"), format!("Rpl_semi_sync_source_{s}"));
        let v = |s: &str| both(format!("rpl_semi_sync_master_{s}"), format!("rpl_semi_sync_source_{s}"));
        let status_names = m("status");
        let enabled_names = v("enabled");
        let has_status = status.has(&[status_names[0].as_str(), status_names[1].as_str()]);
        let has_enabled = variables.has(&[enabled_names[0].as_str(), enabled_names[1].as_str()]);
        if !has_status && !has_enabled {
            return None;
        }
        let wait_point = v("wait_point");
        Some(SemiSyncMaster {
            enabled: get_flag(variables, &enabled_names).unwrap_or(false),
            active: get_flag(status, &status_names).unwrap_or(false),
            clients: get_u64(status, &m("clients")),
            yes_tx: get_u64(status, &m("yes_tx")),
            no_tx: get_u64(status, &m("no_tx")),
            no_times: get_u64(status, &m("no_times")),
            tx_avg_wait_us: get_u64(status, &m("tx_avg_wait_time")),
            net_avg_wait_us: get_u64(status, &m("net_avg_wait_time")),
            timeout_ms: get_u64(variables, &v("timeout")),
            wait_point: variables.text(&[wait_point[0].as_str(), wait_point[1].as_str()]),
            wait_for_count: variables
                .u64(&["rpl_semi_sync_source_wait_for_replica_count", "rpl_semi_sync_master_wait_for_slave_count"]),
        })
    }
}

/// The replica side: is this replica acknowledging semi-sync transactions?
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReplicaSemiSync {
    /// `Rpl_semi_sync_slave_status` / `Rpl_semi_sync_replica_status`.
    pub acking: bool,
}

impl ReplicaSemiSync {
    /// `None` when the status variable does not exist (no semi-sync support on this server).
    pub fn from_status(status: &Fields) -> Option<ReplicaSemiSync> {
        status
            .flag(&["Rpl_semi_sync_slave_status", "Rpl_semi_sync_replica_status"])
            .map(|acking| ReplicaSemiSync { acking })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::*;

    #[test]
    fn mariadb_master_on() {
        let s = SemiSyncMaster::from_fields(
            &parse_variables(MARIADB_MASTER_SEMISYNC_ON),
            &parse_variables(MARIADB_MASTER_SEMISYNC_VARS),
        )
        .unwrap();
        assert!(s.enabled && s.active);
        assert_eq!(s.clients, Some(2));
        assert_eq!(s.yes_tx, Some(27));
        assert_eq!(s.no_tx, Some(7));
        assert_eq!(s.no_times, Some(1));
        assert_eq!(s.tx_avg_wait_us, Some(2681));
        assert_eq!(s.net_avg_wait_us, Some(0));
        assert_eq!(s.timeout_ms, Some(1000));
        assert_eq!(s.wait_point.as_deref(), Some("AFTER_COMMIT"));
        assert_eq!(s.wait_for_count, None);
    }

    #[test]
    fn mariadb_master_fell_back() {
        let s = SemiSyncMaster::from_fields(
            &parse_variables(MARIADB_MASTER_SEMISYNC_OFF),
            &parse_variables(MARIADB_MASTER_SEMISYNC_VARS),
        )
        .unwrap();
        assert!(s.enabled);
        assert!(!s.active);
        assert_eq!(s.clients, Some(0));
        assert_eq!(s.no_times, Some(2));
        assert_eq!(s.no_tx, Some(10));
        assert_eq!(s.yes_tx, Some(15755));
    }

    #[test]
    fn mariadb_replica_side() {
        let st = parse_variables(MARIADB_REPLICA_SEMISYNC);
        assert_eq!(ReplicaSemiSync::from_status(&st), Some(ReplicaSemiSync { acking: true }));
        // The master's listing also carries the slave variable, OFF.
        assert_eq!(
            ReplicaSemiSync::from_status(&parse_variables(MARIADB_MASTER_SEMISYNC_ON)),
            Some(ReplicaSemiSync { acking: false })
        );
        // On a replica the master side is present (MariaDB has it built in) but inactive.
        let m = SemiSyncMaster::from_fields(&st, &Fields::default()).unwrap();
        assert!(!m.active && !m.enabled);
    }

    #[test]
    fn mysql_80_source_names() {
        let s = SemiSyncMaster::from_fields(
            &parse_variables(MYSQL_80_SOURCE_SEMISYNC),
            &parse_variables(MYSQL_80_SOURCE_SEMISYNC_VARS),
        )
        .unwrap();
        assert!(s.enabled && s.active);
        assert_eq!(s.clients, Some(1));
        assert_eq!(s.yes_tx, Some(100));
        assert_eq!(s.tx_avg_wait_us, Some(412));
        assert_eq!(s.timeout_ms, Some(10000));
        assert_eq!(s.wait_point.as_deref(), Some("AFTER_SYNC"));
        assert_eq!(s.wait_for_count, Some(1));
        assert_eq!(
            ReplicaSemiSync::from_status(&parse_variables(MYSQL_80_REPLICA_SEMISYNC)),
            Some(ReplicaSemiSync { acking: true })
        );
    }

    #[test]
    fn mysql_57_off_without_variables() {
        let s =
            SemiSyncMaster::from_fields(&parse_variables(MYSQL_57_MASTER_SEMISYNC_OFF), &Fields::default()).unwrap();
        assert!(!s.active);
        assert!(!s.enabled, "unknown enabled reads as off");
        assert_eq!(s.no_tx, Some(3));
    }

    #[test]
    fn no_plugin_means_none() {
        assert_eq!(SemiSyncMaster::from_fields(&Fields::default(), &Fields::default()), None);
        assert_eq!(ReplicaSemiSync::from_status(&Fields::default()), None);
        let odd = Fields::from_pairs([
            ("Rpl_semi_sync_master_status", Some("maybe".to_string())),
            ("Rpl_semi_sync_master_clients", None),
        ]);
        let s = SemiSyncMaster::from_fields(&odd, &Fields::default()).unwrap();
        assert!(!s.active);
        assert_eq!(s.clients, None);
    }
}

//! `SHOW SLAVE STATUS` (MariaDB, MySQL before 8.0.22) and `SHOW REPLICA STATUS` (MySQL
//! 8.0.22+, where `Master`→`Source` and `Slave`→`Replica` in column names) into one struct.

use super::Fields;
use serde::Serialize;

/// One replication channel's state as the replica reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicaStatus {
    /// `Slave_IO_Running` / `Replica_IO_Running` is `Yes`. (`Connecting` counts as not
    /// running: the replica is not receiving anything.)
    pub io_running: bool,
    /// `Slave_SQL_Running` / `Replica_SQL_Running` is `Yes`.
    pub sql_running: bool,
    /// The raw IO thread state word (`Yes`, `No`, `Connecting`, or missing).
    pub io_state: Option<String>,
    /// `Seconds_Behind_Master` / `_Source`; `None` when NULL (a thread stopped, or broken).
    pub seconds_behind: Option<u64>,
    pub master_host: Option<String>,
    pub master_port: Option<u16>,
    /// `Master_Server_Id` / `Source_Server_Id`.
    pub master_server_id: Option<u32>,
    pub last_io_errno: Option<u32>,
    pub last_io_error: Option<String>,
    pub last_sql_errno: Option<u32>,
    pub last_sql_error: Option<String>,
    /// MariaDB `Using_Gtid` (`No`, `Slave_Pos`, `Current_Pos`).
    pub using_gtid: Option<String>,
    /// MariaDB `Gtid_IO_Pos`: the last GTID received per domain.
    pub gtid_io_pos: Option<String>,
    /// MySQL `Retrieved_Gtid_Set`: GTIDs received by the IO thread.
    pub retrieved_gtid_set: Option<String>,
    /// MySQL `Executed_Gtid_Set`: GTIDs applied (the replica's `gtid_executed`).
    pub executed_gtid_set: Option<String>,
    /// MySQL `Auto_Position` = 1.
    pub auto_position: Option<bool>,
    /// `SQL_Delay` (seconds of intentional delay), when configured.
    pub sql_delay: Option<u64>,
    /// MySQL `Channel_Name` / MariaDB `Connection_name` (multi-source); empty for the default.
    pub channel: Option<String>,
}

const IO_RUNNING: &[&str] = &["Replica_IO_Running", "Slave_IO_Running"];
const SQL_RUNNING: &[&str] = &["Replica_SQL_Running", "Slave_SQL_Running"];

impl ReplicaStatus {
    /// Reads one row. `None` when the row is not a replica status row at all (neither thread
    /// column present), so a caller cannot mistake an unrelated result for "stopped".
    pub fn from_fields(f: &Fields) -> Option<ReplicaStatus> {
        if !f.has(IO_RUNNING) && !f.has(SQL_RUNNING) {
            return None;
        }
        // GTID sets are printed with newlines after commas when long: keep them one line.
        let gtid = |names: &[&str]| f.text(names).map(|s| s.split_whitespace().collect::<String>());
        Some(ReplicaStatus {
            io_running: f.get(IO_RUNNING).is_some_and(|v| v.trim().eq_ignore_ascii_case("yes")),
            sql_running: f.get(SQL_RUNNING).is_some_and(|v| v.trim().eq_ignore_ascii_case("yes")),
            io_state: f.text(IO_RUNNING),
            seconds_behind: f.u64(&["Seconds_Behind_Source", "Seconds_Behind_Master"]),
            master_host: f.text(&["Source_Host", "Master_Host"]),
            master_port: f.u64(&["Source_Port", "Master_Port"]).and_then(|p| u16::try_from(p).ok()),
            master_server_id: f.u64(&["Source_Server_Id", "Master_Server_Id"]).and_then(|p| u32::try_from(p).ok()),
            last_io_errno: f.u64(&["Last_IO_Errno"]).and_then(|p| u32::try_from(p).ok()).filter(|&e| e != 0),
            last_io_error: f.text(&["Last_IO_Error"]),
            last_sql_errno: f.u64(&["Last_SQL_Errno"]).and_then(|p| u32::try_from(p).ok()).filter(|&e| e != 0),
            last_sql_error: f.text(&["Last_SQL_Error"]),
            using_gtid: f.text(&["Using_Gtid"]),
            gtid_io_pos: gtid(&["Gtid_IO_Pos"]),
            retrieved_gtid_set: gtid(&["Retrieved_Gtid_Set"]),
            executed_gtid_set: gtid(&["Executed_Gtid_Set"]),
            auto_position: f.flag(&["Auto_Position"]),
            sql_delay: f.u64(&["SQL_Delay"]).filter(|&d| d != 0),
            channel: f.text(&["Channel_Name", "Connection_name"]),
        })
    }

    /// Picks the channel the monitor judges a replica by from all the rows `SHOW … STATUS`
    /// returned: the default channel (unnamed) when there is one, else the first row.
    pub fn pick(rows: &[Fields]) -> Option<ReplicaStatus> {
        let all: Vec<ReplicaStatus> = rows.iter().filter_map(ReplicaStatus::from_fields).collect();
        let default = all.iter().position(|r| r.channel.is_none()).unwrap_or(0);
        all.into_iter().nth(default)
    }

    /// The first error text either thread reports, for reasons shown to operators.
    pub fn last_error(&self) -> Option<String> {
        match (&self.last_io_error, &self.last_sql_error) {
            (Some(e), _) => Some(format!("IO thread: {}", truncate(e, 200))),
            (None, Some(e)) => Some(format!("SQL thread: {}", truncate(e, 200))),
            _ => None,
        }
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::*;

    #[test]
    fn mariadb_running_tsv_and_vertical_agree() {
        let tsv = parse_tsv(MARIADB_SLAVE_RUNNING_TSV);
        let txt = parse_vertical(MARIADB_SLAVE_RUNNING_TXT);
        assert_eq!(tsv.len(), 1);
        assert_eq!(txt.len(), 1);
        let a = ReplicaStatus::pick(&tsv).unwrap();
        let b = ReplicaStatus::pick(&txt).unwrap();
        assert_eq!(a, b);
        assert!(a.io_running && a.sql_running);
        assert_eq!(a.seconds_behind, Some(0));
        assert_eq!(a.master_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(a.master_port, Some(23306));
        assert_eq!(a.master_server_id, Some(1));
        assert_eq!(a.using_gtid.as_deref(), Some("Slave_Pos"));
        assert_eq!(a.gtid_io_pos.as_deref(), Some("0-1-34"));
        assert_eq!(a.last_error(), None);
        assert_eq!(a.last_io_errno, None);
        assert_eq!(a.sql_delay, None);
        assert_eq!(a.channel, None);
    }

    #[test]
    fn mariadb_sql_stopped() {
        for rows in [parse_tsv(MARIADB_SLAVE_SQL_STOPPED_TSV), parse_vertical(MARIADB_SLAVE_SQL_STOPPED_TXT)] {
            let r = ReplicaStatus::pick(&rows).unwrap();
            assert!(r.io_running);
            assert!(!r.sql_running);
            assert_eq!(r.seconds_behind, None, "NULL Seconds_Behind_Master");
            assert_eq!(r.gtid_io_pos.as_deref(), Some("0-1-38"));
        }
    }

    #[test]
    fn mariadb_io_stopped() {
        let r = ReplicaStatus::pick(&parse_vertical(MARIADB_SLAVE_IO_STOPPED_TXT)).unwrap();
        assert!(!r.io_running);
        assert!(r.sql_running);
        assert_eq!(r.io_state.as_deref(), Some("No"));
        assert_eq!(r.seconds_behind, None);
        assert_eq!(r.gtid_io_pos.as_deref(), Some("0-1-15762"));
    }

    #[test]
    fn mysql_57_slave_status() {
        let r = ReplicaStatus::pick(&parse_vertical(MYSQL_57_SLAVE_STATUS_TXT)).unwrap();
        assert!(r.io_running && r.sql_running);
        assert_eq!(r.seconds_behind, Some(0));
        assert_eq!(r.master_host.as_deref(), Some("source1.example.com"));
        assert_eq!(r.master_port, Some(3306));
        assert_eq!(r.master_server_id, Some(1));
        assert_eq!(
            r.executed_gtid_set.as_deref(),
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,5ab92a52-3d2d-11e9-9dd8-0242ac110002:1-2")
        );
        assert_eq!(r.retrieved_gtid_set.as_deref(), Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"));
        assert_eq!(r.auto_position, Some(true));
        assert_eq!(r.channel, None);
    }

    #[test]
    fn mysql_80_replica_status_renamed_columns() {
        let r = ReplicaStatus::pick(&parse_vertical(MYSQL_80_REPLICA_STATUS_TXT)).unwrap();
        assert!(r.io_running && r.sql_running);
        assert_eq!(r.seconds_behind, Some(2));
        assert_eq!(r.master_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(r.master_port, Some(13000));
        assert_eq!(r.master_server_id, Some(1));
        assert_eq!(r.retrieved_gtid_set.as_deref(), Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"));
        assert_eq!(r.executed_gtid_set.as_deref(), Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"));
    }

    #[test]
    fn mysql_84_replica_status_broken_io() {
        let r = ReplicaStatus::pick(&parse_vertical(MYSQL_84_REPLICA_STATUS_ERROR_TXT)).unwrap();
        assert!(!r.io_running);
        assert_eq!(r.io_state.as_deref(), Some("Connecting"));
        assert!(r.sql_running);
        assert_eq!(r.seconds_behind, None);
        assert_eq!(r.last_io_errno, Some(2005));
        assert!(r.last_error().unwrap().starts_with("IO thread: Error connecting to source"));
    }

    #[test]
    fn multi_channel_picks_default() {
        let rows = parse_vertical(MYSQL_80_TWO_CHANNELS_TXT);
        assert_eq!(rows.len(), 2);
        let r = ReplicaStatus::pick(&rows).unwrap();
        assert_eq!(r.channel, None);
        assert_eq!(r.master_port, Some(13000));
    }

    #[test]
    fn odd_rows_do_not_panic() {
        assert_eq!(ReplicaStatus::pick(&[]), None);
        assert_eq!(ReplicaStatus::from_fields(&Fields::from_pairs([("File", Some("x".to_string()))])), None);
        let odd = Fields::from_pairs([
            ("Slave_IO_Running", None),
            ("Slave_SQL_Running", Some("Yes".to_string())),
            ("Seconds_Behind_Master", Some("-1".to_string())),
            ("Master_Port", Some("99999".to_string())),
            ("Last_IO_Error", Some("é".repeat(300))),
        ]);
        let r = ReplicaStatus::from_fields(&odd).unwrap();
        assert!(!r.io_running && r.sql_running);
        assert_eq!(r.seconds_behind, None);
        assert_eq!(r.master_port, None);
        assert!(r.last_error().unwrap().len() <= 212);
    }
}

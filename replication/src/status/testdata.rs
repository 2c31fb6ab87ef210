//! Test-only: the fixture files under `replication/tests/fixtures/` (see its README: MariaDB
//! ones recorded from real servers, MySQL ones written from the reference manual) and readers
//! for the mysql client's two output formats, producing the same [`Fields`] rows the monitor
//! builds from a live result set.

use super::Fields;

macro_rules! fixture {
    ($name:ident, $file:literal) => {
        pub(crate) const $name: &str = include_str!(concat!("../../tests/fixtures/", $file));
    };
}

fixture!(MARIADB_SLAVE_RUNNING_TSV, "mariadb-10.11-show-slave-status-running.tsv");
fixture!(MARIADB_SLAVE_RUNNING_TXT, "mariadb-10.11-show-slave-status-running.txt");
fixture!(MARIADB_SLAVE_SQL_STOPPED_TSV, "mariadb-10.11-show-slave-status-sql-stopped.tsv");
fixture!(MARIADB_SLAVE_SQL_STOPPED_TXT, "mariadb-10.11-show-slave-status-sql-stopped.txt");
fixture!(MARIADB_SLAVE_IO_STOPPED_TXT, "mariadb-10.11-show-slave-status-io-stopped.txt");
fixture!(MARIADB_MASTER_SEMISYNC_ON, "mariadb-10.11-master-semisync-status-on.tsv");
fixture!(MARIADB_MASTER_SEMISYNC_OFF, "mariadb-10.11-master-semisync-status-off.tsv");
fixture!(MARIADB_MASTER_SEMISYNC_VARS, "mariadb-10.11-master-semisync-variables.tsv");
fixture!(MARIADB_REPLICA_SEMISYNC, "mariadb-10.11-replica-semisync-status.tsv");
fixture!(MARIADB_MASTER_VARS, "mariadb-10.11-master-vars.tsv");
fixture!(MARIADB_REPLICA_VARS, "mariadb-10.11-replica-vars.tsv");
fixture!(MYSQL_57_SLAVE_STATUS_TXT, "mysql-5.7-show-slave-status.txt");
fixture!(MYSQL_57_MASTER_SEMISYNC_OFF, "mysql-5.7-master-semisync-status-off.tsv");
fixture!(MYSQL_80_REPLICA_STATUS_TXT, "mysql-8.0-show-replica-status.txt");
fixture!(MYSQL_80_TWO_CHANNELS_TXT, "mysql-8.0-show-replica-status-two-channels.txt");
fixture!(MYSQL_84_REPLICA_STATUS_ERROR_TXT, "mysql-8.4-show-replica-status-io-error.txt");
fixture!(MYSQL_80_SOURCE_SEMISYNC, "mysql-8.0-source-semisync-status.tsv");
fixture!(MYSQL_80_SOURCE_SEMISYNC_VARS, "mysql-8.0-source-semisync-variables.tsv");
fixture!(MYSQL_80_REPLICA_SEMISYNC, "mysql-8.0-replica-semisync-status.tsv");

/// Batch output (`mariadb -B`): a header row, then one row per line, tab-separated, `NULL` for
/// SQL NULL, `\t` `\n` `\\` escaped. Lines starting with `#` are our own headers.
pub(crate) fn parse_tsv(text: &str) -> Vec<Fields> {
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let Some(header) = lines.next() else { return Vec::new() };
    let names: Vec<&str> = header.split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            Fields::from_pairs(names.iter().zip(l.split('\t')).map(|(n, v)| (*n, (v != "NULL").then(|| unescape(v)))))
        })
        .collect()
}

/// Rows of a two-column `Variable_name`/`Value` listing, as one [`Fields`].
pub(crate) fn parse_variables(text: &str) -> Fields {
    let rows = parse_tsv(text);
    Fields::from_variables(
        rows.iter()
            .filter_map(|r| Some((r.get(&["Variable_name"])?.to_string(), r.get(&["Value"]).map(str::to_string)))),
    )
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('0') => out.push('\0'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Vertical output (`\G`): `*** N. row ***` separators and `Name: value` lines; a line that
/// does not start with a column name continues the previous value (long GTID sets).
pub(crate) fn parse_vertical(text: &str) -> Vec<Fields> {
    let mut rows: Vec<Vec<(String, Option<String>)>> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with("***") {
            rows.push(Vec::new());
            continue;
        }
        let Some(row) = rows.last_mut() else { continue };
        let named = line.split_once(':').filter(|(k, _)| {
            let k = k.trim();
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        match named {
            Some((k, v)) => {
                let v = v.strip_prefix(' ').unwrap_or(v);
                row.push((k.trim().to_string(), (v != "NULL").then(|| v.to_string())));
            }
            None => {
                if let Some((_, Some(prev))) = row.last_mut() {
                    prev.push('\n');
                    prev.push_str(line);
                }
            }
        }
    }
    rows.into_iter().map(Fields::from_pairs).collect()
}

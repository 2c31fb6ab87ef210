//! Server version strings (`@@version`): which product, and which statements it understands.

use serde::Serialize;

/// The server product family; decides statement and variable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    MariaDb,
    /// MySQL and its builds (Percona Server, …).
    MySql,
}

/// A parsed `@@version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    pub flavor: Flavor,
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
    /// The whole string as the server gave it.
    pub text: String,
}

impl Version {
    /// Parses `10.11.19-MariaDB-0+deb12u1-log`, `8.0.36`, `8.4.0-commercial`,
    /// `5.5.5-10.6.12-MariaDB` (the replication-compatibility prefix some MariaDB builds still
    /// show). Missing parts are 0; `None` only when no major version can be read.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        let flavor = if t.to_ascii_lowercase().contains("mariadb") { Flavor::MariaDb } else { Flavor::MySql };
        let mut s = t;
        if flavor == Flavor::MariaDb {
            s = s.strip_prefix("5.5.5-").unwrap_or(s);
        }
        let numeric = s.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap_or("");
        let mut parts = numeric.split('.').map(|p| p.parse::<u16>().ok());
        let major = parts.next().flatten()?;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Version { flavor, major, minor, patch, text: t.to_owned() })
    }

    /// True when the version is at least `major.minor.patch`.
    pub fn at_least(&self, major: u16, minor: u16, patch: u16) -> bool {
        (self.major, self.minor, self.patch) >= (major, minor, patch)
    }

    /// The statement that lists replica status: MySQL 8.0.22 renamed it (and its columns) and
    /// 8.4 dropped the old name; MariaDB keeps `SHOW SLAVE STATUS` (10.5.1+ also accepts the new
    /// name but with the old columns).
    pub fn replica_status_statement(&self) -> &'static str {
        match self.flavor {
            Flavor::MySql if self.at_least(8, 0, 22) => "SHOW REPLICA STATUS",
            _ => "SHOW SLAVE STATUS",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        type Parsed = Option<(Flavor, u16, u16, u16)>;
        let table: &[(&str, Parsed, &str)] = &[
            ("10.11.19-MariaDB-0+deb12u1-log", Some((Flavor::MariaDb, 10, 11, 19)), "SHOW SLAVE STATUS"),
            ("5.5.5-10.6.12-MariaDB", Some((Flavor::MariaDb, 10, 6, 12)), "SHOW SLAVE STATUS"),
            ("5.7.44-log", Some((Flavor::MySql, 5, 7, 44)), "SHOW SLAVE STATUS"),
            ("8.0.21", Some((Flavor::MySql, 8, 0, 21)), "SHOW SLAVE STATUS"),
            ("8.0.22", Some((Flavor::MySql, 8, 0, 22)), "SHOW REPLICA STATUS"),
            ("8.0.36-28", Some((Flavor::MySql, 8, 0, 36)), "SHOW REPLICA STATUS"),
            ("8.4.0-commercial", Some((Flavor::MySql, 8, 4, 0)), "SHOW REPLICA STATUS"),
            ("9", Some((Flavor::MySql, 9, 0, 0)), "SHOW REPLICA STATUS"),
            ("", None, ""),
            ("garbage", None, ""),
            ("99999999.1", None, ""),
        ];
        for (text, want, stmt) in table {
            let got = Version::parse(text);
            assert_eq!(got.as_ref().map(|v| (v.flavor, v.major, v.minor, v.patch)), *want, "{text}");
            if let Some(v) = got {
                assert_eq!(v.replica_status_statement(), *stmt, "{text}");
            }
        }
    }
}

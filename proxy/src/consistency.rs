//! Read-your-writes, pure: GTID positions, and the SQL that learns a position on the writer
//! and waits for it on a replica, for each server flavor.
//!
//! - `causal`: a session remembers the GTID of its own last write; its next read runs on a
//!   replica only once that replica has applied it (MariaDB `MASTER_GTID_WAIT`, MySQL
//!   `WAIT_FOR_EXECUTED_GTID_SET`, bounded by `routing.causal_timeout_ms`), else on the writer.
//! - `causal_global`: the same, with the newest GTID any session wrote through this rwsplit, so
//!   a write on one connection is visible to a read on another. What each replica is known to
//!   have applied ([`AppliedGtids`], from waits that succeeded and the monitor's positions) is
//!   shared by all sessions, so a replica is waited for once per new position, not once per
//!   session.
//!
//! GTID text ends up inside SQL, so it is checked to contain only GTID characters first.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Which GTID dialect a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `domain-server-seq[,…]`.
    MariaDb,
    /// `uuid:1-5[:7][,…]`.
    MySql,
}

impl Flavor {
    /// From the server's version string (`10.11.6-MariaDB-log`, `8.0.36`).
    pub fn of(version: &str) -> Flavor {
        if version.contains("MariaDB") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }

    /// The query that returns, on the writer connection that just committed, a GTID position
    /// covering that commit.
    pub fn last_gtid_query(self) -> &'static str {
        match self {
            Flavor::MariaDb => "SELECT @@last_gtid",
            // Without session tracking MySQL has no per-session "last GTID": the executed set
            // covers the commit (and more, which only makes the wait a little longer).
            Flavor::MySql => "SELECT @@GLOBAL.gtid_executed",
        }
    }

    /// The query that waits up to `timeout` for `gtid` on a replica; it returns 0 when the
    /// replica has it (MariaDB: 0 / -1; MySQL: 0 / 1). `None` if `gtid` is not GTID text.
    pub fn wait_query(self, gtid: &str, timeout: Duration) -> Option<String> {
        if gtid.is_empty()
            || !gtid.bytes().all(|b| b.is_ascii_hexdigit() || matches!(b, b'-' | b',' | b':' | b' ' | b'\n'))
        {
            return None;
        }
        let secs = timeout.as_secs_f64();
        Some(match self {
            Flavor::MariaDb => format!("SELECT MASTER_GTID_WAIT('{gtid}', {secs:.3})"),
            Flavor::MySql => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{gtid}', {secs:.3})"),
        })
    }
}

/// A MariaDB GTID position: the newest (server id, sequence number) per replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(BTreeMap<u32, (u32, u64)>);

impl GtidPos {
    /// Parses `0-1-42` or `0-1-42,1-3-7`; `None` when it is not MariaDB GTID text.
    pub fn parse(text: &str) -> Option<GtidPos> {
        let mut pos = GtidPos::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            let domain = it.next()?.parse().ok()?;
            let server = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            if it.next().is_some() {
                return None;
            }
            pos.merge_one(domain, server, seq);
        }
        Some(pos)
    }

    fn merge_one(&mut self, domain: u32, server: u32, seq: u64) {
        let e = self.0.entry(domain).or_insert((server, seq));
        if seq > e.1 {
            *e = (server, seq);
        }
    }

    /// Keeps, per domain, the newer of the two.
    pub fn merge(&mut self, other: &GtidPos) {
        for (&d, &(s, q)) in &other.0 {
            self.merge_one(d, s, q);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this position includes `other`: in every domain of `other`, a sequence number at
    /// least as high (MariaDB sequence numbers grow per domain).
    pub fn covers(&self, other: &GtidPos) -> bool {
        other.0.iter().all(|(d, &(_, seq))| self.0.get(d).is_some_and(|&(_, have)| have >= seq))
    }
}

/// What each server is known to have applied (MariaDB positions, by server index), learned
/// from waits that succeeded and from the monitor's checks. Positions only grow, so a read
/// that needs a position a server is known to hold needs no wait there: under
/// `causal_global`, one session's wait spares every other session the same wait.
#[derive(Debug, Default)]
pub struct AppliedGtids(std::sync::Mutex<Vec<GtidPos>>);

impl AppliedGtids {
    /// Whether `server` is known to have applied `gtid` (false for text that is not a MariaDB
    /// position: MySQL sets are not compared here).
    pub fn covers(&self, server: usize, gtid: &str) -> bool {
        let Some(need) = GtidPos::parse(gtid) else { return false };
        let known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known.get(server).is_some_and(|have| !need.is_empty() && have.covers(&need))
    }

    /// Records that `server` has applied `gtid`.
    pub fn record(&self, server: usize, gtid: &str) {
        let Some(pos) = GtidPos::parse(gtid) else { return };
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() <= server {
            // Bounded by the number of configured servers (callers pass topology indexes).
            known.resize(server + 1, GtidPos::default());
        }
        if let Some(have) = known.get_mut(server) {
            have.merge(&pos);
        }
    }
}

impl fmt::Display for GtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (d, (s, q))) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}-{s}-{q}")?;
        }
        Ok(())
    }
}

/// The newest position written through this process (for `causal_global`), merged by domain
/// for MariaDB; for MySQL the last executed set seen (sets only grow).
#[derive(Debug, Default)]
pub struct LatestGtid(std::sync::Mutex<String>);

impl LatestGtid {
    /// Records a position learned after a write.
    pub fn observe(&self, flavor: Flavor, gtid: &str) {
        let mut cur = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *cur = match (flavor, GtidPos::parse(&cur), GtidPos::parse(gtid)) {
            (Flavor::MariaDb, Some(mut a), Some(b)) => {
                a.merge(&b);
                a.to_string()
            }
            _ => gtid.to_string(),
        };
    }

    pub fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_from_versions() {
        assert_eq!(Flavor::of("10.11.19-MariaDB-0+deb12u1-log"), Flavor::MariaDb);
        assert_eq!(Flavor::of("5.5.5-10.11.6-MariaDB"), Flavor::MariaDb);
        assert_eq!(Flavor::of("8.0.36"), Flavor::MySql);
    }

    #[test]
    fn wait_queries_and_injection() {
        let d = Duration::from_millis(100);
        assert_eq!(Flavor::MariaDb.wait_query("0-1-42", d).unwrap(), "SELECT MASTER_GTID_WAIT('0-1-42', 0.100)");
        assert_eq!(
            Flavor::MySql.wait_query("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", d).unwrap(),
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5', 0.100)"
        );
        assert_eq!(Flavor::MariaDb.wait_query("0-1-1'); DROP TABLE t; --", d), None);
        assert_eq!(Flavor::MariaDb.wait_query("", d), None);
    }

    #[test]
    fn positions_merge_per_domain() {
        let mut a = GtidPos::parse("0-1-42,1-2-7").unwrap();
        a.merge(&GtidPos::parse("0-1-40,2-3-1").unwrap());
        assert_eq!(a.to_string(), "0-1-42,1-2-7,2-3-1");
        a.merge(&GtidPos::parse("0-2-50").unwrap());
        assert_eq!(a.to_string(), "0-2-50,1-2-7,2-3-1");
        assert_eq!(GtidPos::parse("0-1"), None);
        assert_eq!(GtidPos::parse("x-1-2"), None);
        assert!(GtidPos::parse("").unwrap().is_empty());
    }

    #[test]
    fn positions_cover_per_domain() {
        let have = GtidPos::parse("0-1-42,1-2-7").unwrap();
        assert!(have.covers(&GtidPos::parse("0-1-42").unwrap()));
        assert!(have.covers(&GtidPos::parse("0-3-40,1-2-7").unwrap()));
        assert!(!have.covers(&GtidPos::parse("0-1-43").unwrap()));
        assert!(!have.covers(&GtidPos::parse("2-1-1").unwrap()));
        let applied = AppliedGtids::default();
        assert!(!applied.covers(1, "0-1-5"));
        applied.record(1, "0-1-5");
        assert!(applied.covers(1, "0-1-5"));
        assert!(applied.covers(1, "0-1-4"));
        assert!(!applied.covers(1, "0-1-6"));
        assert!(!applied.covers(0, "0-1-1"));
        assert!(!applied.covers(1, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"));
        assert!(!applied.covers(1, ""));
    }

    #[test]
    fn latest_keeps_the_newest() {
        let l = LatestGtid::default();
        l.observe(Flavor::MariaDb, "0-1-5");
        l.observe(Flavor::MariaDb, "0-1-3");
        assert_eq!(l.get(), "0-1-5");
        l.observe(Flavor::MariaDb, "0-1-9");
        assert_eq!(l.get(), "0-1-9");
    }
}

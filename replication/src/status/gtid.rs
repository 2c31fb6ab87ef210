//! GTID positions and sets, for display and for errant-transaction detection.
//!
//! - MariaDB GTIDs are `domain-server_id-seq`; a position lists one per domain
//!   (`gtid_current_pos`), `gtid_binlog_state` one per (domain, server_id) pair.
//! - MySQL GTIDs are `source_uuid:interval[:interval…]` (8.3+ may add a tag:
//!   `uuid:tag:interval`), a set is a comma-separated list of those.
//!
//! An errant transaction is one a replica has but the writer never had: written on the replica
//! directly. It breaks the next failover (the replica cannot be promoted cleanly, or the others
//! fetch transactions the writer never saw) and means the replica's data differs.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// One MariaDB GTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MariadbGtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
}

impl fmt::Display for MariadbGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

/// A MariaDB GTID list (`0-1-34,1-2-7`); unparsable elements are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MariadbGtidList(pub Vec<MariadbGtid>);

impl MariadbGtidList {
    pub fn parse(text: &str) -> MariadbGtidList {
        let one = |e: &str| {
            let mut p = e.trim().splitn(3, '-');
            Some(MariadbGtid {
                domain: p.next()?.parse().ok()?,
                server_id: p.next()?.parse().ok()?,
                seq: p.next()?.parse().ok()?,
            })
        };
        MariadbGtidList(text.split(',').filter(|e| !e.trim().is_empty()).filter_map(one).collect())
    }
}

/// MariaDB errant transactions: entries of the replica's `gtid_binlog_state` written on the
/// replica itself (its own server_id) that the writer does not have — neither the same
/// (domain, server_id) at that sequence number in its `gtid_binlog_state`, nor that domain at
/// that sequence number or later in its `gtid_current_pos` (a writer without
/// `log_slave_updates` only knows the last applied GTID per domain; with `gtid_strict_mode`
/// sequence numbers only grow along the stream).
///
/// Entries of other server ids are history replicated from an earlier writer, not local
/// writes; entries of the writer's own server_id can only have come from the writer (and the
/// two are read a few milliseconds apart, so the replica's reading may be newer).
pub fn errant_mariadb(
    replica: &MariadbGtidList,
    replica_server_id: Option<u32>,
    writer_state: &MariadbGtidList,
    writer_current: &MariadbGtidList,
    writer_server_id: u32,
) -> Vec<MariadbGtid> {
    replica
        .0
        .iter()
        .filter(|g| g.server_id != writer_server_id)
        .filter(|g| replica_server_id.is_none_or(|own| g.server_id == own))
        .filter(|g| {
            !writer_state.0.iter().any(|w| w.domain == g.domain && w.server_id == g.server_id && w.seq >= g.seq)
        })
        .filter(|g| !writer_current.0.iter().any(|w| w.domain == g.domain && w.seq >= g.seq))
        .copied()
        .collect()
}

/// A MySQL GTID set: source (uuid, or `uuid:tag`) → sorted, merged inclusive intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GtidSet(pub BTreeMap<String, Vec<(u64, u64)>>);

impl GtidSet {
    /// Parses `uuid:1-5:7,uuid2:1-3` (whitespace and newlines ignored; bad parts skipped).
    pub fn parse(text: &str) -> GtidSet {
        let mut set = GtidSet::default();
        let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for element in cleaned.split(',').filter(|e| !e.is_empty()) {
            let mut parts = element.split(':');
            let Some(uuid) = parts.next().map(str::to_ascii_lowercase) else { continue };
            let mut source = uuid;
            for p in parts {
                let range = match p.split_once('-') {
                    Some((a, b)) => a.parse::<u64>().ok().zip(b.parse::<u64>().ok()),
                    None => p.parse::<u64>().ok().map(|n| (n, n)),
                };
                match range {
                    Some((a, b)) if a <= b => set.add(&source, a, b),
                    Some(_) => {}
                    // Not a number: a tag (MySQL 8.3+) naming the following intervals.
                    None => source = format!("{}:{}", source.split(':').next().unwrap_or(""), p.to_ascii_lowercase()),
                }
            }
        }
        set
    }

    fn add(&mut self, source: &str, a: u64, b: u64) {
        let v = self.0.entry(source.to_string()).or_default();
        v.push((a, b));
        v.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for &(s, e) in v.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *v = merged;
    }

    /// `self − other`.
    pub fn subtract(&self, other: &GtidSet) -> GtidSet {
        let mut out = GtidSet::default();
        for (source, ranges) in &self.0 {
            let theirs = other.0.get(source).map(Vec::as_slice).unwrap_or(&[]);
            for &(a, b) in ranges {
                let mut pieces = vec![(a, b)];
                for &(x, y) in theirs {
                    pieces = pieces
                        .into_iter()
                        .flat_map(|(s, e)| {
                            let mut keep = Vec::new();
                            if y < s || x > e {
                                keep.push((s, e));
                            } else {
                                if x > s {
                                    keep.push((s, x - 1));
                                }
                                if y < e {
                                    keep.push((y + 1, e));
                                }
                            }
                            keep
                        })
                        .collect();
                }
                for (s, e) in pieces {
                    out.add(source, s, e);
                }
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (source, ranges) in self.0.iter().filter(|(_, r)| !r.is_empty()) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(source)?;
            for (a, b) in ranges {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

/// MySQL errant transactions: the replica's `gtid_executed` minus the writer's, ignoring the
/// writer's own uuid (read a few milliseconds apart, the replica may be ahead of our reading).
pub fn errant_mysql(replica: &GtidSet, writer: &GtidSet, writer_uuid: &str) -> GtidSet {
    let mut diff = replica.subtract(writer);
    let own = writer_uuid.trim().to_ascii_lowercase();
    diff.0.retain(|source, _| source.split(':').next() != Some(own.as_str()));
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_lists() {
        let l = MariadbGtidList::parse("0-1-34, 1-2-7,,bad,3-x-1");
        assert_eq!(
            l.0,
            vec![MariadbGtid { domain: 0, server_id: 1, seq: 34 }, MariadbGtid { domain: 1, server_id: 2, seq: 7 }]
        );
        assert_eq!(MariadbGtidList::parse("").0, vec![]);
        assert_eq!(l.0[1].to_string(), "1-2-7");
    }

    #[test]
    fn mariadb_errant_table() {
        // (replica gtid_binlog_state, replica server_id, writer gtid_binlog_state,
        //  writer gtid_current_pos, writer server_id, errant)
        let table: &[(&str, u32, &str, &str, u32, &str)] = &[
            ("0-1-34", 2, "0-1-34", "0-1-34", 1, ""),
            // Replica ahead on the writer's own server_id: a race between readings, not errant.
            ("0-1-40", 2, "0-1-34", "0-1-34", 1, ""),
            // A local write on replica 2.
            ("0-1-34,0-2-35", 2, "0-1-34", "0-1-34", 1, "0-2-35"),
            // ... in a domain of its own.
            ("0-1-34,99-2-1", 2, "0-1-34", "0-1-34", 1, "99-2-1"),
            // Replica 3 carries replica 2's errant write (replicated somehow): not 3's own.
            ("0-1-34,0-2-35", 3, "0-1-34", "0-1-34", 1, ""),
            // After a switchover from 1 to 2: 1's history is everywhere.
            ("0-1-34,0-2-50", 3, "0-1-34,0-2-50", "0-2-50", 2, ""),
            ("0-1-34", 3, "0-1-34,0-2-50", "0-2-50", 2, ""),
            // The old writer 1, now a replica: its own history is covered by the new writer.
            ("0-1-34", 1, "0-1-34,0-2-50", "0-2-50", 2, ""),
            // ... even when the new writer has no log_slave_updates (only its current pos).
            ("0-1-34", 1, "0-2-50", "0-2-50", 2, ""),
            // The old writer wrote more after the new one took over, in a domain the new one
            // never reached that far in.
            ("0-1-34,7-1-9", 1, "0-1-34,0-2-50,7-1-3", "0-2-50,7-1-3", 2, "7-1-9"),
            ("", 2, "0-1-34", "0-1-34", 1, ""),
        ];
        for (replica, rsid, wstate, wcur, wsid, want) in table {
            let got = errant_mariadb(
                &MariadbGtidList::parse(replica),
                Some(*rsid),
                &MariadbGtidList::parse(wstate),
                &MariadbGtidList::parse(wcur),
                *wsid,
            );
            let got: Vec<String> = got.iter().map(ToString::to_string).collect();
            assert_eq!(got.join(","), *want, "{replica} on {rsid} vs {wstate} / {wcur} on {wsid}");
        }
    }

    #[test]
    fn mysql_sets() {
        let s =
            GtidSet::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-9:6,\n5ab92a52-3d2d-11e9-9dd8-0242ac110002:1-2");
        assert_eq!(s.to_string(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9,5ab92a52-3d2d-11e9-9dd8-0242ac110002:1-2");
        let t = GtidSet::parse("aaaaaaaa-0000-0000-0000-000000000000:tag1:1-3:tag2:5");
        assert_eq!(
            t.to_string(),
            "aaaaaaaa-0000-0000-0000-000000000000:tag1:1-3,aaaaaaaa-0000-0000-0000-000000000000:tag2:5"
        );
        assert!(GtidSet::parse("").is_empty());
        assert!(GtidSet::parse("u:5-1:x-y").is_empty());
    }

    #[test]
    fn mysql_subtract_and_errant() {
        let a = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let b = "5ab92a52-3d2d-11e9-9dd8-0242ac110002";
        let table: &[(String, String, &str, String)] = &[
            (format!("{a}:1-10"), format!("{a}:1-10"), a, String::new()),
            (format!("{a}:1-12"), format!("{a}:1-10"), a, String::new()),
            (format!("{a}:1-10,{b}:1-2"), format!("{a}:1-10"), a, format!("{b}:1-2")),
            (format!("{a}:1-10,{b}:1-5"), format!("{a}:1-10,{b}:2-3"), a, format!("{b}:1:4-5")),
            (format!("{b}:1-5"), format!("{a}:1-10,{b}:1-5"), a, String::new()),
        ];
        for (replica, writer, uuid, want) in table {
            let got = errant_mysql(&GtidSet::parse(replica), &GtidSet::parse(writer), uuid);
            assert_eq!(got.to_string(), *want, "{replica} - {writer}");
        }
        let x = GtidSet::parse(&format!("{a}:1-100")).subtract(&GtidSet::parse(&format!("{a}:3-4:10-20:99")));
        assert_eq!(x.to_string(), format!("{a}:1-2:5-9:21-98:100"));
    }
}

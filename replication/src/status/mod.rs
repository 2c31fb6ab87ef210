//! Parsers for what the servers answer to the monitor's checks. Pure functions over
//! name→value maps ([`Fields`]), so one parser serves MariaDB's and MySQL's column namings
//! (`Slave_IO_Running` / `Replica_IO_Running`, `Rpl_semi_sync_master_*` / `_source_*`), and
//! the unit tests feed them recorded outputs without a server.
//!
//! Nothing here panics on what a server sends: a missing column or a NULL becomes `None`, an
//! unparsable number becomes `None`, and the caller decides what an unknown means.

mod fields;
mod gtid;
mod replica;
mod semisync;
mod version;

pub use fields::Fields;
pub use gtid::{errant_mariadb, errant_mysql, GtidSet, MariadbGtid, MariadbGtidList};
pub use replica::ReplicaStatus;
pub use semisync::{ReplicaSemiSync, SemiSyncMaster};
pub use version::{Flavor, Version};

#[cfg(test)]
pub(crate) mod testdata;

#[cfg(test)]
mod tests {
    use super::testdata::*;
    use super::*;

    /// The variables the monitor selects, as recorded on the lab's master and a replica.
    #[test]
    fn recorded_server_variables() {
        let m = &parse_tsv(MARIADB_MASTER_VARS)[0];
        assert_eq!(m.flag(&["@@read_only"]), Some(false));
        assert_eq!(m.u64(&["@@server_id"]), Some(1));
        let v = Version::parse(m.get(&["@@version"]).unwrap()).unwrap();
        assert_eq!((v.flavor, v.major, v.minor), (Flavor::MariaDb, 10, 11));
        assert_eq!(MariadbGtidList::parse(m.get(&["@@gtid_binlog_pos"]).unwrap()).0.len(), 1);
        let r = &parse_tsv(MARIADB_REPLICA_VARS)[0];
        assert_eq!(r.flag(&["@@read_only"]), Some(true));
        assert_eq!(r.u64(&["@@server_id"]), Some(2));
        assert_eq!(r.get(&["@@gtid_slave_pos"]), m.get(&["@@gtid_current_pos"]));
    }
}

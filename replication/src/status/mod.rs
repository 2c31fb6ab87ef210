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

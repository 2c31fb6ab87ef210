//! The session-state changes a statement makes once it succeeds ([`Effect`]) and what ties a
//! session to one backend connection ([`PinReason`]). Plain data, no dependencies: the
//! scanner produces them, the session applies them.

/// A session-state change, applied by the session after the statement SUCCEEDS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Effect {
    /// BEGIN, `START TRANSACTION [READ ONLY | READ WRITE | WITH CONSISTENT SNAPSHOT]`, XA START,
    /// COMMIT/ROLLBACK AND CHAIN (after its EndTransaction). `read_only` is true only for a
    /// read-only transaction that was routed to a replica.
    Begin { read_only: bool },
    /// COMMIT, ROLLBACK (not ROLLBACK TO SAVEPOINT), XA COMMIT/ROLLBACK, and statements that
    /// commit implicitly (DDL, LOCK TABLES, FLUSH, …; not CREATE/DROP TEMPORARY TABLE).
    EndTransaction,
    /// SET autocommit = literal (any spelling: @@autocommit, SESSION autocommit, ON/OFF, …).
    SetAutocommit(bool),
    /// `SET [SESSION] TRANSACTION ISOLATION LEVEL …`, `SET tx_isolation / transaction_isolation =
    /// literal`. The one-shot `SET TRANSACTION ISOLATION LEVEL …` (no SESSION) applies to the
    /// next transaction only and has no effect.
    SetIsolation { serializable: bool },
    /// USE db (backquotes removed, case kept).
    UseSchema(String),
    /// `SET NAMES x [COLLATE y]`, `SET CHARACTER SET x`, `SET CHARSET x` (lower-cased).
    SetNames { charset: String, collation: Option<String> },
    /// Any other SET of session state (session or user variables, sql_mode, time_zone, role):
    /// the session replays the statement text on its other backend connections. `key` is the
    /// sorted, lower-cased, comma-joined list of the variables it assigns (`@x` for user
    /// variables), so that a later SET of the same variables replaces the earlier one.
    SessionVariables { key: String },
    /// `CREATE [OR REPLACE] TEMPORARY TABLE|SEQUENCE [IF NOT EXISTS] name` (lower-cased, as
    /// written, `db.` prefix included, quotes removed).
    CreateTempTable(String),
    /// `DROP [TEMPORARY] TABLE|SEQUENCE [IF EXISTS] a, b` (same form as above).
    DropTables(Vec<String>),
    /// The statement ties the session to the connection that ran it.
    Pin(PinReason),
    /// The statement may release such a tie. For [`PinReason::NamedLock`] this is a
    /// RELEASE_LOCK( call: it names one lock among possibly many (or one not held), so it does
    /// not prove that none is left and the session keeps its tie.
    Unpin(PinReason),
    /// A call of the built-in RELEASE_ALL_LOCKS( (a function token, not a literal, comment or
    /// identifier, and not `db.release_all_locks(`): every named lock of the connection is
    /// released, so the [`PinReason::NamedLock`] tie ends.
    ReleaseAllNamedLocks,
}

/// What ties a session to one backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinReason {
    /// GET_LOCK; released by RELEASE_ALL_LOCKS ([`Effect::ReleaseAllNamedLocks`]); RELEASE_LOCK
    /// releases one lock ([`Effect::Unpin`]).
    NamedLock,
    /// LOCK TABLES, FLUSH TABLES … WITH READ LOCK / FOR EXPORT, LOCK INSTANCE FOR BACKUP,
    /// MariaDB BACKUP STAGE / BACKUP LOCK; released by UNLOCK TABLES / INSTANCE, BACKUP
    /// STAGE END, BACKUP UNLOCK.
    TableLock,
    /// SQL-level PREPARE name FROM …; released by DEALLOCATE / DROP PREPARE.
    SqlPrepare,
    /// HANDLER t OPEN; released by HANDLER t CLOSE.
    Handler,
}

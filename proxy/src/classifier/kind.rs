//! What a statement is: its [`StatementKind`] (from the leading keywords) and the [`Flags`]
//! for facts found anywhere in its text. Plain data, no dependencies.

/// What a statement is, from its leading keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// Nothing but whitespace, comments or `;`.
    Empty,
    /// A leading keyword the classifier does not know, or garbage.
    Unknown,
    /// SELECT, `(SELECT …)`, `WITH … SELECT`.
    Select,
    Show,
    /// DESCRIBE / DESC / EXPLAIN of a table.
    Describe,
    /// EXPLAIN of a statement (it is not executed), EXPLAIN ANALYZE of a read, MariaDB's
    /// ANALYZE of a SELECT.
    Explain,
    /// `TABLE t` (MySQL 8).
    Table,
    /// `VALUES ROW(…)` (MySQL 8).
    Values,
    Help,
    /// `DO expr`: evaluated like a SELECT list, so the same function rules apply.
    Do,
    Insert,
    Update,
    Delete,
    Replace,
    /// LOAD DATA / LOAD XML.
    Load,
    /// CREATE, ALTER, DROP, RENAME, TRUNCATE, GRANT, REVOKE, IMPORT, account management.
    Ddl,
    Call,
    /// BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT, RELEASE SAVEPOINT, XA.
    Transaction,
    /// SET of session state (variables, names, autocommit, isolation, role).
    Set,
    Use,
    LockTables,
    UnlockTables,
    /// SQL-level PREPARE.
    Prepare,
    /// SQL-level EXECUTE, MariaDB's EXECUTE IMMEDIATE.
    Execute,
    /// DEALLOCATE PREPARE / DROP PREPARE.
    Deallocate,
    /// HANDLER … OPEN / READ / CLOSE.
    Handler,
    /// Server administration: FLUSH, KILL, OPTIMIZE/ANALYZE/REPAIR/CHECK TABLE, replication
    /// control, plugins, SET GLOBAL, …
    Admin,
    /// MariaDB compound statements at top level (BEGIN NOT ATOMIC, IF, CASE, LOOP, WHILE,
    /// REPEAT, labels), DECLARE.
    Compound,
    /// `GET [CURRENT | STACKED] DIAGNOSTICS`.
    Diagnostics,
}

impl StatementKind {
    /// Kinds that only read data (before the function and clause rules are applied).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            StatementKind::Select
                | StatementKind::Show
                | StatementKind::Describe
                | StatementKind::Explain
                | StatementKind::Table
                | StatementKind::Values
                | StatementKind::Help
                | StatementKind::Do
        )
    }

    /// DML that changes rows.
    pub fn is_dml_write(self) -> bool {
        matches!(
            self,
            StatementKind::Insert
                | StatementKind::Update
                | StatementKind::Delete
                | StatementKind::Replace
                | StatementKind::Load
        )
    }

    /// A stable snake_case name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Empty => "empty",
            StatementKind::Unknown => "unknown",
            StatementKind::Select => "select",
            StatementKind::Show => "show",
            StatementKind::Describe => "describe",
            StatementKind::Explain => "explain",
            StatementKind::Table => "table",
            StatementKind::Values => "values",
            StatementKind::Help => "help",
            StatementKind::Do => "do",
            StatementKind::Insert => "insert",
            StatementKind::Update => "update",
            StatementKind::Delete => "delete",
            StatementKind::Replace => "replace",
            StatementKind::Load => "load",
            StatementKind::Ddl => "ddl",
            StatementKind::Call => "call",
            StatementKind::Transaction => "transaction",
            StatementKind::Set => "set",
            StatementKind::Use => "use",
            StatementKind::LockTables => "lock_tables",
            StatementKind::UnlockTables => "unlock_tables",
            StatementKind::Prepare => "prepare",
            StatementKind::Execute => "execute",
            StatementKind::Deallocate => "deallocate",
            StatementKind::Handler => "handler",
            StatementKind::Admin => "admin",
            StatementKind::Compound => "compound",
            StatementKind::Diagnostics => "diagnostics",
        }
    }
}

/// Facts found anywhere in the text, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub(crate) struct Flags(u32);

impl Flags {
    /// FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE.
    pub const LOCKING_READ: u32 = 1;
    /// GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS, IS_USED_LOCK, IS_FREE_LOCK.
    pub const LOCK_FUNCTION: u32 = 1 << 1;
    /// LAST_INSERT_ID(), @@last_insert_id, @@identity.
    pub const LAST_INSERT_ID: u32 = 1 << 2;
    /// `@var := …`.
    pub const USER_VAR_ASSIGN: u32 = 1 << 3;
    /// `INTO @var` (or INTO a stored-program variable).
    pub const INTO_VAR: u32 = 1 << 4;
    /// `INTO OUTFILE` / `INTO DUMPFILE`: writes a file on the server.
    pub const INTO_FILE: u32 = 1 << 5;
    /// NEXT VALUE FOR, NEXTVAL(), SETVAL(), `seq.nextval`: changes a sequence.
    pub const SEQUENCE_ADVANCE: u32 = 1 << 6;
    /// PREVIOUS VALUE FOR, LASTVAL(), `seq.currval`: the session's last sequence value.
    pub const SEQUENCE_STATE: u32 = 1 << 7;
    /// A call of a function that is not a known built-in.
    pub const USER_FUNCTION: u32 = 1 << 8;
    /// SHOW MASTER/BINLOG/SLAVE/REPLICA STATUS, BINARY LOGS, PROCESSLIST, EXPLAIN FOR CONNECTION.
    pub const MASTER_STATUS: u32 = 1 << 9;
    /// FOUND_ROWS(), ROW_COUNT(), SHOW WARNINGS/ERRORS/PROFILES, @@warning_count, @@error_count.
    pub const FOLLOWS_PREVIOUS: u32 = 1 << 10;
    /// More than one statement.
    pub const MULTI_STATEMENT: u32 = 1 << 11;
    /// SQL_CALC_FOUND_ROWS: the next FOUND_ROWS() must run on the same connection.
    pub const CALC_FOUND_ROWS: u32 = 1 << 12;
    /// `SET @var = …` with a value that is not a constant literal: not replayable.
    pub const USER_VAR_SET_EXPR: u32 = 1 << 13;
    /// A user variable is assigned as a CALL argument (OUT / INOUT parameter) or by GET
    /// DIAGNOSTICS.
    pub const USER_VAR_OUT: u32 = 1 << 14;

    pub fn has(self, bits: u32) -> bool {
        self.0 & bits != 0
    }

    pub fn set(&mut self, bits: u32) {
        self.0 |= bits;
    }

    pub fn union(&mut self, other: Flags) {
        self.0 |= other.0;
    }
}

//! Where a statement may run ([`Route`]) and why it goes there ([`Reason`]): the two words of
//! a routing decision, also used for metric labels and logs. Plain data, no dependencies.

/// Where a statement may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Master,
    Replica,
    /// Wherever the session's previous statement ran (the same connection, when it still has
    /// it).
    Previous,
}

impl Route {
    /// A stable snake_case name, for metric labels and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Route::Master => "master",
            Route::Replica => "replica",
            Route::Previous => "previous",
        }
    }
}

/// Why a statement was routed where it was: one variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Read,
    Write,
    Ddl,
    InTransaction,
    ReadOnlyTransaction,
    AutocommitOff,
    Serializable,
    LockingRead,
    LockFunction,
    LastInsertId,
    UserVariableAssign,
    SelectInto,
    Sequence,
    UserFunction,
    MasterStatus,
    TempTable,
    FollowsPrevious,
    HintMaster,
    HintReplica,
    MultiStatement,
    Call,
    TransactionControl,
    SessionCommand,
    TableLock,
    SqlPrepare,
    Handler,
    Admin,
    Unparsed,
}

impl Reason {
    /// Every reason, in declaration order (`Reason::ALL[r as usize] == r`).
    pub const ALL: &'static [Reason] = &[
        Reason::Read,
        Reason::Write,
        Reason::Ddl,
        Reason::InTransaction,
        Reason::ReadOnlyTransaction,
        Reason::AutocommitOff,
        Reason::Serializable,
        Reason::LockingRead,
        Reason::LockFunction,
        Reason::LastInsertId,
        Reason::UserVariableAssign,
        Reason::SelectInto,
        Reason::Sequence,
        Reason::UserFunction,
        Reason::MasterStatus,
        Reason::TempTable,
        Reason::FollowsPrevious,
        Reason::HintMaster,
        Reason::HintReplica,
        Reason::MultiStatement,
        Reason::Call,
        Reason::TransactionControl,
        Reason::SessionCommand,
        Reason::TableLock,
        Reason::SqlPrepare,
        Reason::Handler,
        Reason::Admin,
        Reason::Unparsed,
    ];

    /// A stable snake_case name: a Prometheus label value and a log word.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Read => "read",
            Reason::Write => "write",
            Reason::Ddl => "ddl",
            Reason::InTransaction => "in_transaction",
            Reason::ReadOnlyTransaction => "read_only_transaction",
            Reason::AutocommitOff => "autocommit_off",
            Reason::Serializable => "serializable",
            Reason::LockingRead => "locking_read",
            Reason::LockFunction => "lock_function",
            Reason::LastInsertId => "last_insert_id",
            Reason::UserVariableAssign => "user_variable_assign",
            Reason::SelectInto => "select_into",
            Reason::Sequence => "sequence",
            Reason::UserFunction => "user_function",
            Reason::MasterStatus => "master_status",
            Reason::TempTable => "temp_table",
            Reason::FollowsPrevious => "follows_previous",
            Reason::HintMaster => "hint_master",
            Reason::HintReplica => "hint_replica",
            Reason::MultiStatement => "multi_statement",
            Reason::Call => "call",
            Reason::TransactionControl => "transaction_control",
            Reason::SessionCommand => "session_command",
            Reason::TableLock => "table_lock",
            Reason::SqlPrepare => "sql_prepare",
            Reason::Handler => "handler",
            Reason::Admin => "admin",
            Reason::Unparsed => "unparsed",
        }
    }
}

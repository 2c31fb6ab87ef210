//! [`decide`]: the routing rules (listed in the module doc of [`classifier`](super)) applied to
//! a scanned [`Statement`] and the session's state. Pure.

use super::effect::Effect;
use super::kind::{Flags, StatementKind};
use super::route::{Reason, Route};
use super::statement::Statement;
use super::tables;
use std::collections::HashSet;

/// The session state the rules depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView<'a> {
    /// An explicit transaction is open (BEGIN / START TRANSACTION, or the server's flag).
    pub in_transaction: bool,
    /// The open transaction was START TRANSACTION READ ONLY (and runs on a replica).
    pub read_only_transaction: bool,
    /// False after SET autocommit=0: counts as an open transaction.
    pub autocommit: bool,
    /// Session isolation is SERIALIZABLE: pins to the master.
    pub serializable: bool,
    /// Lower-cased names of TEMPORARY tables this session created (`db.t` or `t`).
    pub temp_tables: &'a HashSet<String>,
}

/// Where a statement goes, why, and what it changes in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub route: Route,
    pub reason: Reason,
    pub effects: Vec<Effect>,
}

/// Decides from the scanned facts alone. For the temporary-table rule it can only tell that
/// the statement *may* name one of the session's temporary tables, and then answers master;
/// [`decide_with_text`] settles that case exactly.
pub fn decide(stmt: &Statement, session: &SessionView<'_>) -> Decision {
    decision(stmt, None, session)
}

/// [`decide`], with the statement's text (the one given to [`scan`](super::scan)) to look up
/// table references when the session has temporary tables. Sessions keep the text of their
/// prepared statements anyway, so they can call this at every execution.
pub fn decide_with_text(stmt: &Statement, sql: &str, session: &SessionView<'_>) -> Decision {
    decision(stmt, Some(sql), session)
}

fn decision(stmt: &Statement, sql: Option<&str>, session: &SessionView<'_>) -> Decision {
    let (route, reason) = route(stmt, sql, session);
    let mut effects = stmt.effects.clone();
    if route != Route::Replica {
        // A read-only transaction that starts on the master stays there: the session must
        // not send its statements to a replica that has no transaction open.
        for effect in &mut effects {
            if let Effect::Begin { read_only } = effect {
                *read_only = false;
            }
        }
    }
    Decision { route, reason, effects }
}

fn starts_read_write_transaction(stmt: &Statement) -> bool {
    stmt.effects.contains(&Effect::Begin { read_only: false })
}

fn route(stmt: &Statement, sql: Option<&str>, session: &SessionView<'_>) -> (Route, Reason) {
    use StatementKind as K;
    if session.serializable {
        return (Route::Master, Reason::Serializable);
    }
    if !session.autocommit {
        return (Route::Master, Reason::AutocommitOff);
    }
    if session.in_transaction {
        if !session.read_only_transaction {
            return (Route::Master, Reason::InTransaction);
        }
        return in_read_only_transaction(stmt);
    }
    if matches!(stmt.kind, K::Empty | K::Unknown) {
        return (Route::Master, Reason::Unparsed);
    }
    if stmt.is_multi_statement() {
        return (Route::Master, Reason::MultiStatement);
    }
    if stmt.kind.is_read() {
        read(stmt, sql, session)
    } else {
        by_kind(stmt)
    }
}

/// Inside START TRANSACTION READ ONLY: the replica that holds the transaction, except for
/// statements that end it implicitly and then write, or that the replica must not run.
fn in_read_only_transaction(stmt: &Statement) -> (Route, Reason) {
    use StatementKind as K;
    if matches!(stmt.kind, K::Empty | K::Unknown) {
        return (Route::Master, Reason::Unparsed);
    }
    if stmt.is_multi_statement() {
        return (Route::Master, Reason::MultiStatement);
    }
    if starts_read_write_transaction(stmt) {
        return (Route::Master, Reason::TransactionControl);
    }
    let stays = stmt.kind.is_read()
        || stmt.kind.is_dml_write()
        || matches!(stmt.kind, K::Transaction | K::Set | K::Use | K::UnlockTables | K::Diagnostics);
    if stays {
        (Route::Replica, Reason::ReadOnlyTransaction)
    } else {
        by_kind(stmt)
    }
}

/// Statements that are not reads: the reason of their kind.
fn by_kind(stmt: &Statement) -> (Route, Reason) {
    use StatementKind as K;
    let reason = match stmt.kind {
        K::Insert | K::Update | K::Delete | K::Replace | K::Load | K::Compound => Reason::Write,
        K::Ddl => Reason::Ddl,
        K::Call => Reason::Call,
        K::Transaction => {
            if stmt.effects.contains(&Effect::Begin { read_only: true }) {
                return (Route::Replica, Reason::ReadOnlyTransaction);
            }
            Reason::TransactionControl
        }
        K::Set => {
            if stmt.effects.iter().any(|e| matches!(e, Effect::SetAutocommit(_))) {
                Reason::TransactionControl
            } else {
                Reason::SessionCommand
            }
        }
        K::Use => Reason::SessionCommand,
        K::LockTables | K::UnlockTables => Reason::TableLock,
        K::Prepare | K::Execute | K::Deallocate => Reason::SqlPrepare,
        K::Handler => Reason::Handler,
        K::Admin => Reason::Admin,
        K::Diagnostics => return (Route::Previous, Reason::FollowsPrevious),
        K::Empty | K::Unknown => Reason::Unparsed,
        // Reads are decided by `read`; should one arrive here, the master is always safe.
        K::Select | K::Show | K::Describe | K::Explain | K::Table | K::Values | K::Help | K::Do => Reason::Write,
    };
    (Route::Master, reason)
}

/// Read kinds: hints, then the rules that keep some reads on the master or on the previous
/// connection, then the temporary tables.
fn read(stmt: &Statement, sql: Option<&str>, session: &SessionView<'_>) -> (Route, Reason) {
    let flags = stmt.flags;
    let writes = flags.has(Flags::SEQUENCE_ADVANCE | Flags::INTO_FILE);
    match stmt.hint {
        Some(Route::Master) => return (Route::Master, Reason::HintMaster),
        Some(Route::Replica) if !writes => return (Route::Replica, Reason::HintReplica),
        _ => {}
    }
    let master_rules = [
        (Flags::MASTER_STATUS, Reason::MasterStatus),
        (Flags::SEQUENCE_ADVANCE | Flags::SEQUENCE_STATE, Reason::Sequence),
        (Flags::INTO_VAR | Flags::INTO_FILE, Reason::SelectInto),
        (Flags::LOCKING_READ, Reason::LockingRead),
        (Flags::LOCK_FUNCTION, Reason::LockFunction),
        (Flags::LAST_INSERT_ID, Reason::LastInsertId),
        (Flags::USER_VAR_ASSIGN, Reason::UserVariableAssign),
        (Flags::USER_FUNCTION, Reason::UserFunction),
    ];
    if let Some(&(_, reason)) = master_rules.iter().find(|(bits, _)| flags.has(*bits)) {
        return (Route::Master, reason);
    }
    if flags.has(Flags::FOLLOWS_PREVIOUS) {
        return (Route::Previous, Reason::FollowsPrevious);
    }
    let temp = session.temp_tables;
    if !temp.is_empty() && temp.iter().any(|t| stmt.idents.may_name(t)) {
        let names_one = sql.is_none_or(|sql| tables::reads_temp_table(sql, temp));
        if names_one {
            return (Route::Master, Reason::TempTable);
        }
    }
    (Route::Replica, Reason::Read)
}

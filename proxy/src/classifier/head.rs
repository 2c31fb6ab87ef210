//! What a statement's leading keywords say: its [`StatementKind`], and the session-state
//! [`Effect`]s of transaction control, SET, USE, temporary tables, locks and SQL-level
//! prepared statements. Reads tokens from a [`Cursor`] (a copy of the lexer), so the scanner's
//! own pass over the whole text is not disturbed.

use super::effect::{Effect, PinReason};
use super::kind::{Flags, StatementKind};
use super::lexer::{Lexer, Token, TokenKind};
use super::words::{identifier, upper};

/// Tokens of one statement: ends at `;` or the end of the text.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    lx: Lexer<'a>,
}

impl<'a> Cursor<'a> {
    pub fn new(lx: Lexer<'a>) -> Self {
        Cursor { lx }
    }

    pub fn next(&mut self) -> Option<Token<'a>> {
        self.lx.next_token().filter(|t| !t.is_punct(b';'))
    }

    pub fn peek(&self) -> Option<Token<'a>> {
        self.clone().next()
    }

    /// Consumes the next token when it is the word `keyword`.
    pub fn eat(&mut self, keyword: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_word(keyword)) {
            self.next();
            true
        } else {
            false
        }
    }

    pub fn eat_punct(&mut self, b: u8) -> bool {
        if self.peek().is_some_and(|t| t.is_punct(b)) {
            self.next();
            true
        } else {
            false
        }
    }
}

/// The result of reading a statement's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub kind: StatementKind,
    /// The statement has a body of statements (CREATE PROCEDURE …, BEGIN NOT ATOMIC …): its
    /// `;` do not end it, so the rest of the text belongs to it.
    pub swallow_rest: bool,
}

impl From<StatementKind> for Head {
    fn from(kind: StatementKind) -> Self {
        Head { kind, swallow_rest: false }
    }
}

fn compound() -> Head {
    Head { kind: StatementKind::Compound, swallow_rest: true }
}

/// Reads the statement that starts with `first`; pushes its effects and head flags.
pub(crate) fn read<'a>(first: Token<'a>, cur: &mut Cursor<'a>, effects: &mut Vec<Effect>, flags: &mut Flags) -> Head {
    use StatementKind as K;
    if first.is_punct(b'(') {
        return parenthesized_query(cur).into();
    }
    if first.kind != TokenKind::Word {
        return K::Unknown.into();
    }
    let mut buf = [0u8; 48];
    let Some(keyword) = upper(first.text, &mut buf) else {
        return K::Unknown.into();
    };
    let end = |effects: &mut Vec<Effect>, kind: StatementKind| -> Head {
        effects.push(Effect::EndTransaction);
        kind.into()
    };
    match keyword {
        "SELECT" => K::Select.into(),
        "WITH" => with_main(cur).into(),
        "SHOW" => show(cur, flags).into(),
        "DESCRIBE" | "DESC" | "EXPLAIN" => explain(cur, flags).into(),
        "ANALYZE" => analyze(cur, effects).into(),
        "TABLE" => K::Table.into(),
        "VALUES" => K::Values.into(),
        "HELP" => K::Help.into(),
        "DO" => K::Do.into(),
        "INSERT" => K::Insert.into(),
        "UPDATE" => K::Update.into(),
        "DELETE" => K::Delete.into(),
        "REPLACE" => K::Replace.into(),
        "LOAD" => {
            if cur.eat("DATA") || cur.eat("XML") {
                K::Load.into()
            } else if cur.eat("INDEX") {
                end(effects, K::Admin)
            } else {
                K::Unknown.into()
            }
        }
        "CREATE" => create(cur, effects),
        "DROP" => drop(cur, effects).into(),
        "ALTER" => {
            effects.push(Effect::EndTransaction);
            // ALTER [DEFINER = …] EVENT … DO BEGIN …; END has a body, as CREATE EVENT does.
            let mut ahead = cur.clone();
            let event = (0..8).map_while(|_| ahead.next()).any(|t| t.is_word("EVENT"));
            Head { kind: K::Ddl, swallow_rest: event }
        }
        "RENAME" | "TRUNCATE" | "GRANT" | "REVOKE" | "IMPORT" => end(effects, K::Ddl),
        "CALL" => {
            if passes_user_variable(cur) {
                flags.set(Flags::USER_VAR_OUT);
            }
            K::Call.into()
        }
        "BEGIN" => {
            if cur.eat("NOT") {
                compound()
            } else {
                cur.eat("WORK");
                effects.push(Effect::Begin { read_only: false });
                K::Transaction.into()
            }
        }
        "START" => {
            if cur.eat("TRANSACTION") {
                start_transaction(cur, effects);
                K::Transaction.into()
            } else {
                end(effects, K::Admin)
            }
        }
        "COMMIT" => {
            cur.eat("WORK");
            end_transaction(cur, effects);
            K::Transaction.into()
        }
        "ROLLBACK" => {
            cur.eat("WORK");
            if !cur.eat("TO") {
                end_transaction(cur, effects);
            }
            K::Transaction.into()
        }
        "SAVEPOINT" => K::Transaction.into(),
        "RELEASE" => {
            if cur.eat("SAVEPOINT") {
                K::Transaction.into()
            } else {
                K::Unknown.into()
            }
        }
        "XA" => {
            if cur.eat("START") || cur.eat("BEGIN") {
                effects.push(Effect::Begin { read_only: false });
            } else if cur.eat("COMMIT") || cur.eat("ROLLBACK") {
                effects.push(Effect::EndTransaction);
            }
            K::Transaction.into()
        }
        // SET is read by `set_statement` (above this module; `statement` calls it). A SET
        // arriving here is one inside SET STATEMENT … FOR, which is not valid.
        "SET" => K::Unknown.into(),
        "USE" => match cur.next().and_then(|t| identifier(&t)) {
            Some(db) => {
                effects.push(Effect::UseSchema(db));
                K::Use.into()
            }
            None => K::Unknown.into(),
        },
        "LOCK" => {
            if cur.eat("TABLES") || cur.eat("TABLE") {
                effects.push(Effect::EndTransaction);
                effects.push(Effect::Pin(PinReason::TableLock));
                K::LockTables.into()
            } else if cur.eat("INSTANCE") {
                effects.push(Effect::Pin(PinReason::TableLock));
                K::Admin.into()
            } else {
                K::Unknown.into()
            }
        }
        "UNLOCK" => {
            if cur.eat("TABLES") || cur.eat("TABLE") {
                effects.push(Effect::Unpin(PinReason::TableLock));
                K::UnlockTables.into()
            } else if cur.eat("INSTANCE") {
                effects.push(Effect::Unpin(PinReason::TableLock));
                K::Admin.into()
            } else {
                K::Unknown.into()
            }
        }
        "FLUSH" => {
            effects.push(Effect::EndTransaction);
            // FLUSH TABLES … WITH READ LOCK and FLUSH TABLES … FOR EXPORT hold locks until
            // UNLOCK TABLES on this connection.
            let mut prev: Option<Token<'_>> = None;
            while let Some(t) = cur.next() {
                if (t.is_word("LOCK") && prev.is_some_and(|p| p.is_word("READ")))
                    || (t.is_word("EXPORT") && prev.is_some_and(|p| p.is_word("FOR")))
                {
                    effects.push(Effect::Pin(PinReason::TableLock));
                    break;
                }
                prev = Some(t);
            }
            K::Admin.into()
        }
        "BACKUP" => {
            // MariaDB backup locks live on the connection that took them.
            if cur.eat("STAGE") {
                if cur.eat("START") {
                    effects.push(Effect::Pin(PinReason::TableLock));
                } else if cur.eat("END") {
                    effects.push(Effect::Unpin(PinReason::TableLock));
                }
            } else if cur.eat("LOCK") {
                effects.push(Effect::Pin(PinReason::TableLock));
            } else if cur.eat("UNLOCK") {
                effects.push(Effect::Unpin(PinReason::TableLock));
            }
            K::Admin.into()
        }
        "PREPARE" => {
            effects.push(Effect::Pin(PinReason::SqlPrepare));
            K::Prepare.into()
        }
        "EXECUTE" => K::Execute.into(),
        "DEALLOCATE" => {
            effects.push(Effect::Unpin(PinReason::SqlPrepare));
            K::Deallocate.into()
        }
        "HANDLER" => {
            if object_name(cur).is_some() {
                if cur.eat("OPEN") {
                    effects.push(Effect::Pin(PinReason::Handler));
                } else if cur.eat("CLOSE") {
                    effects.push(Effect::Unpin(PinReason::Handler));
                }
            }
            K::Handler.into()
        }
        "GET" => {
            let _ = cur.eat("CURRENT") || cur.eat("STACKED");
            if cur.eat("DIAGNOSTICS") {
                // GET DIAGNOSTICS @n = NUMBER, CONDITION 1 @m = MESSAGE_TEXT: assigns @n, @m.
                let mut prev: Option<Token<'_>> = None;
                while let Some(t) = cur.next() {
                    if t.is_punct(b'=') && prev.is_some_and(|p| p.kind == TokenKind::UserVar) {
                        flags.set(Flags::USER_VAR_OUT);
                    }
                    prev = Some(t);
                }
                K::Diagnostics.into()
            } else {
                K::Unknown.into()
            }
        }
        "IF" | "CASE" | "LOOP" | "WHILE" | "REPEAT" | "DECLARE" => compound(),
        // Administrative statements that commit an open transaction first.
        "OPTIMIZE" | "REPAIR" | "CHECK" | "CACHE" | "RESET" | "CHANGE" | "STOP" | "INSTALL" | "UNINSTALL" => {
            end(effects, K::Admin)
        }
        "KILL" | "SHUTDOWN" | "RESTART" | "CHECKSUM" | "PURGE" | "BINLOG" | "CLONE" | "SIGNAL" | "RESIGNAL" => {
            K::Admin.into()
        }
        // `label: BEGIN NOT ATOMIC …`, `label: LOOP …`
        _ if cur.peek().is_some_and(|t| t.is_punct(b':')) => compound(),
        _ => K::Unknown.into(),
    }
}

/// `CALL p(…, @v, …)`: a user variable passed as a whole argument may be an OUT or INOUT
/// parameter, which the procedure assigns (only its definition tells).
fn passes_user_variable(cur: &mut Cursor<'_>) -> bool {
    let mut depth = 0u32;
    let mut prev: Option<Token<'_>> = None;
    while let Some(t) = cur.next() {
        match t.kind {
            TokenKind::Punct(b'(') => depth = depth.saturating_add(1),
            TokenKind::Punct(b')') => depth = depth.saturating_sub(1),
            TokenKind::UserVar
                if depth == 1
                    && prev.is_some_and(|p| p.is_punct(b'(') || p.is_punct(b','))
                    && cur.peek().is_some_and(|n| n.is_punct(b',') || n.is_punct(b')')) =>
            {
                return true;
            }
            _ => {}
        }
        prev = Some(t);
    }
    false
}

/// `(` … : a parenthesized query; anything else in parentheses is not a statement.
fn parenthesized_query(cur: &mut Cursor<'_>) -> StatementKind {
    while let Some(t) = cur.next() {
        if t.is_punct(b'(') {
            continue;
        }
        if t.is_word("SELECT") || t.is_word("VALUES") || t.is_word("TABLE") {
            return StatementKind::Select;
        }
        if t.is_word("WITH") {
            return with_main(cur);
        }
        break;
    }
    StatementKind::Unknown
}

/// After WITH: the statement the common table expressions belong to, the first statement
/// keyword outside parentheses (MySQL 8 allows WITH before UPDATE and DELETE too).
fn with_main(cur: &mut Cursor<'_>) -> StatementKind {
    use StatementKind as K;
    let mut depth = 0u32;
    let mut after_close = false;
    while let Some(t) = cur.next() {
        match t.kind {
            TokenKind::Punct(b'(') => {
                if depth == 0 && after_close {
                    return K::Select;
                }
                depth += 1;
            }
            TokenKind::Punct(b')') => depth = depth.saturating_sub(1),
            TokenKind::Word if depth == 0 => {
                let mut buf = [0u8; 48];
                match upper(t.text, &mut buf) {
                    Some("SELECT" | "TABLE" | "VALUES") => return K::Select,
                    Some("UPDATE") => return K::Update,
                    Some("DELETE") => return K::Delete,
                    Some("INSERT") => return K::Insert,
                    Some("REPLACE") => return K::Replace,
                    _ => {}
                }
            }
            _ => {}
        }
        after_close = depth == 0 && t.is_punct(b')');
    }
    K::Unknown
}

fn show(cur: &mut Cursor<'_>, flags: &mut Flags) -> StatementKind {
    let _ = cur.eat("FULL") || cur.eat("ALL");
    if let Some(t) = cur.next() {
        let mut buf = [0u8; 48];
        match upper(t.text, &mut buf) {
            Some(
                "MASTER" | "BINLOG" | "BINARY" | "SLAVE" | "SLAVES" | "REPLICA" | "REPLICAS" | "RELAYLOG"
                | "PROCESSLIST",
            ) if t.kind == TokenKind::Word => flags.set(Flags::MASTER_STATUS),
            Some("WARNINGS" | "ERRORS" | "PROFILE" | "PROFILES" | "COUNT") if t.kind == TokenKind::Word => {
                flags.set(Flags::FOLLOWS_PREVIOUS)
            }
            _ => {}
        }
    }
    StatementKind::Show
}

/// The statement kind that follows EXPLAIN's options, or None.
fn explained(t: &Token<'_>, cur: &mut Cursor<'_>) -> Option<StatementKind> {
    use StatementKind as K;
    if t.is_punct(b'(') {
        return Some(K::Select);
    }
    if t.kind != TokenKind::Word {
        return None;
    }
    let mut buf = [0u8; 48];
    match upper(t.text, &mut buf)? {
        "SELECT" | "TABLE" | "VALUES" => Some(K::Select),
        "WITH" => Some(with_main(cur)),
        "INSERT" => Some(K::Insert),
        "UPDATE" => Some(K::Update),
        "DELETE" => Some(K::Delete),
        "REPLACE" => Some(K::Replace),
        _ => None,
    }
}

/// Skips `FORMAT = name` / `FORMAT=name` after FORMAT was read.
fn skip_format(cur: &mut Cursor<'_>) {
    cur.eat_punct(b'=');
    cur.next();
}

/// EXPLAIN / DESCRIBE / DESC: of a table (a read), of a statement (not executed: a read), or
/// EXPLAIN ANALYZE (executed: a write when the statement writes).
fn explain(cur: &mut Cursor<'_>, flags: &mut Flags) -> StatementKind {
    use StatementKind as K;
    let mut analyze = false;
    for _ in 0..8 {
        let Some(t) = cur.next() else {
            return K::Unknown;
        };
        if t.is_word("ANALYZE") {
            analyze = true;
        } else if t.is_word("EXTENDED") || t.is_word("PARTITIONS") {
        } else if t.is_word("FORMAT") {
            skip_format(cur);
        } else if t.is_word("INTO") {
            // EXPLAIN FORMAT=JSON INTO @var …: assigns the user variable.
            flags.set(Flags::INTO_VAR);
            cur.next();
        } else if t.is_word("FOR") {
            // EXPLAIN FOR CONNECTION id: connection ids belong to one server.
            flags.set(Flags::MASTER_STATUS);
            return K::Explain;
        } else if let Some(kind) = explained(&t, cur) {
            return if analyze && !kind.is_read() && kind != K::Unknown { kind } else { K::Explain };
        } else if matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent) {
            return K::Describe;
        } else {
            return K::Unknown;
        }
    }
    K::Unknown
}

/// MariaDB's ANALYZE statement (runs the statement and shows the plan) or ANALYZE TABLE.
fn analyze(cur: &mut Cursor<'_>, effects: &mut Vec<Effect>) -> StatementKind {
    use StatementKind as K;
    if cur.eat("FORMAT") {
        skip_format(cur);
    }
    let Some(t) = cur.next() else {
        return K::Unknown;
    };
    if t.is_word("TABLE") || t.is_word("NO_WRITE_TO_BINLOG") || t.is_word("LOCAL") {
        effects.push(Effect::EndTransaction);
        return K::Admin;
    }
    match explained(&t, cur) {
        Some(K::Select) => K::Explain,
        Some(kind) => kind,
        None => K::Unknown,
    }
}

/// `START TRANSACTION [WITH CONSISTENT SNAPSHOT | READ ONLY | READ WRITE] [, …]`
fn start_transaction(cur: &mut Cursor<'_>, effects: &mut Vec<Effect>) {
    let mut read_only = false;
    while let Some(t) = cur.next() {
        if t.is_word("READ") && cur.eat("ONLY") {
            read_only = true;
        }
    }
    effects.push(Effect::Begin { read_only });
}

/// The rest of COMMIT / ROLLBACK: `[AND [NO] CHAIN] [[NO] RELEASE]`. AND CHAIN starts the next
/// transaction at once; its access mode is not known here (the server's status flags tell),
/// so it is taken as read-write, which keeps the session on the master.
fn end_transaction(cur: &mut Cursor<'_>, effects: &mut Vec<Effect>) {
    effects.push(Effect::EndTransaction);
    if cur.eat("AND") && !cur.eat("NO") && cur.eat("CHAIN") {
        effects.push(Effect::Begin { read_only: false });
    }
}

/// CREATE …: temporary tables are recorded (and do not commit); routines have bodies whose
/// `;` are part of them; everything else is DDL that commits the open transaction.
fn create(cur: &mut Cursor<'_>, effects: &mut Vec<Effect>) -> Head {
    let mut temporary = false;
    // Skip OR REPLACE, DEFINER = …, ALGORITHM = …, SQL SECURITY …, AGGREGATE, UNIQUE, … up to
    // the object keyword.
    for _ in 0..24 {
        let Some(t) = cur.next() else { break };
        if t.kind != TokenKind::Word {
            continue;
        }
        let mut buf = [0u8; 48];
        match upper(t.text, &mut buf) {
            Some("TEMPORARY") => temporary = true,
            Some("TABLE" | "SEQUENCE") if temporary => {
                if cur.eat("IF") {
                    cur.eat("NOT");
                    cur.eat("EXISTS");
                }
                if let Some(name) = object_name(cur) {
                    effects.push(Effect::CreateTempTable(name));
                }
                return StatementKind::Ddl.into();
            }
            Some("PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT" | "PACKAGE") => {
                effects.push(Effect::EndTransaction);
                return Head { kind: StatementKind::Ddl, swallow_rest: true };
            }
            Some(
                "TABLE"
                | "SEQUENCE"
                | "VIEW"
                | "INDEX"
                | "DATABASE"
                | "SCHEMA"
                | "USER"
                | "ROLE"
                | "SERVER"
                | "TABLESPACE"
                | "LOGFILE"
                | "RESOURCE"
                | "SPATIAL"
                | "FULLTEXT"
                | "SPATIAL_REFERENCE_SYSTEM",
            ) => break,
            _ => {}
        }
    }
    effects.push(Effect::EndTransaction);
    StatementKind::Ddl.into()
}

/// DROP …: tables are recorded (a temporary table of that name goes first, so the session
/// forgets it); DROP PREPARE is DEALLOCATE PREPARE; DROP TEMPORARY does not commit.
fn drop(cur: &mut Cursor<'_>, effects: &mut Vec<Effect>) -> StatementKind {
    if cur.eat("PREPARE") {
        effects.push(Effect::Unpin(PinReason::SqlPrepare));
        return StatementKind::Deallocate;
    }
    let temporary = cur.eat("TEMPORARY");
    if cur.eat("TABLE") || cur.eat("TABLES") || cur.eat("SEQUENCE") {
        if cur.eat("IF") {
            cur.eat("EXISTS");
        }
        let mut names = Vec::new();
        while let Some(name) = object_name(cur) {
            names.push(name);
            if !cur.eat_punct(b',') {
                break;
            }
        }
        if !temporary {
            effects.push(Effect::EndTransaction);
        }
        effects.push(Effect::DropTables(names));
    } else if !temporary {
        effects.push(Effect::EndTransaction);
    }
    StatementKind::Ddl
}

/// `name` or `db.name`, lower-cased, as the session keys its temporary tables.
pub(crate) fn object_name(cur: &mut Cursor<'_>) -> Option<String> {
    let first =
        cur.peek().filter(|t| matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent | TokenKind::DoubleQuoted))?;
    cur.next();
    let mut name = identifier(&first)?.to_lowercase();
    if cur.peek().is_some_and(|t| t.is_punct(b'.')) {
        cur.next();
        if let Some(second) = cur.next().and_then(|t| identifier(&t)) {
            name.push('.');
            name.push_str(&second.to_lowercase());
        }
    }
    Some(name)
}

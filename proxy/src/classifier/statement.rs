//! [`scan`]: the facts about a statement that its text alone tells, gathered in one pass of
//! the lexer. The leading keywords are read by [`head`] (kind and session-state effects; SET
//! by [`set_statement`]); the rest of the text is walked here for what may appear anywhere: locking
//! clauses, `INTO`, function calls, `@var :=`, system variables, `;`, and the identifiers a
//! temporary table could be named by.

use super::builtin;
use super::effect::{Effect, PinReason};
use super::head::{self, Cursor};
use super::kind::{Flags, StatementKind};
use super::lexer::{LexMode, LexNotes, Lexer, Token, TokenKind};
use super::route::Route;
use super::set_statement;
use super::tables::IdentFilter;
use super::words::upper;

/// What [`scan`] learned about a statement: no session state in it, so it can be kept with a
/// prepared statement and decided again at every execution.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Statement {
    pub(crate) kind: StatementKind,
    pub(crate) flags: Flags,
    pub(crate) hint: Option<Route>,
    /// Session-state changes, in the order of the text (empty, so not allocated, for plain
    /// reads and DML).
    pub(crate) effects: Vec<Effect>,
    /// Every identifier (and double-quoted string) in the text, for the temporary-table rule.
    pub(crate) idents: IdentFilter,
}

impl Statement {
    /// What the leading keywords say (the first statement's, for a multi-statement).
    pub fn kind(&self) -> StatementKind {
        self.kind
    }

    /// True when the statement only reads and may run on any server: a read kind, one
    /// statement, no locking clause, no `INTO`, no `@var :=`, no sequence, lock or
    /// user-defined function. Reads whose answer depends on the server (LAST_INSERT_ID(),
    /// FOUND_ROWS(), SHOW MASTER STATUS) are still reads here; [`decide`](super::decide)
    /// routes them.
    pub fn is_read(&self) -> bool {
        self.kind.is_read()
            && !self.flags.has(
                Flags::MULTI_STATEMENT
                    | Flags::LOCKING_READ
                    | Flags::INTO_VAR
                    | Flags::INTO_FILE
                    | Flags::USER_VAR_ASSIGN
                    | Flags::SEQUENCE_ADVANCE
                    | Flags::LOCK_FUNCTION
                    | Flags::USER_FUNCTION,
            )
    }

    /// The routing hint in the statement's comments, if any (master wins over replica).
    pub fn hint(&self) -> Option<Route> {
        self.hint
    }

    /// The session-state changes the statement makes when it succeeds.
    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    pub fn is_multi_statement(&self) -> bool {
        self.flags.has(Flags::MULTI_STATEMENT)
    }

    /// `SELECT SQL_CALC_FOUND_ROWS …`: the session should keep this connection for the
    /// `FOUND_ROWS()` that usually follows (it is routed [`Route::Previous`]).
    pub fn calc_found_rows(&self) -> bool {
        self.flags.has(Flags::CALC_FOUND_ROWS)
    }

    /// The statement assigns user variables in a way SET-replay cannot carry, so their values
    /// exist only on the connection that ran it: `@x := …` anywhere (also inside a SET value),
    /// `SELECT … INTO @x`, `CALL p(@x)` (an OUT or INOUT parameter), `GET DIAGNOSTICS @x = …`,
    /// and `SET @x = <expr>` when the expression is not a constant literal (`SET @x = NOW()`;
    /// such a SET has no `SessionVariables` effect). `SET @x = 5` is replayable: false.
    pub fn assigns_user_variables(&self) -> bool {
        self.flags.has(Flags::USER_VAR_ASSIGN | Flags::INTO_VAR | Flags::USER_VAR_SET_EXPR | Flags::USER_VAR_OUT)
    }

    /// Keeps the more cautious of two readings of the same text: a reading that is not a
    /// read wins over one that is, and facts found by either are kept.
    fn merge_cautious(&mut self, other: Statement) {
        // Releasing every named lock ends a tie: only when every reading calls it.
        let both_release_all = self.effects.contains(&Effect::ReleaseAllNamedLocks)
            && other.effects.contains(&Effect::ReleaseAllNamedLocks);
        if self.kind.is_read() && !other.kind.is_read() {
            self.kind = other.kind;
            self.effects = other.effects;
        }
        if !both_release_all {
            for effect in &mut self.effects {
                if *effect == Effect::ReleaseAllNamedLocks {
                    *effect = Effect::Unpin(PinReason::NamedLock);
                }
            }
        }
        self.flags.union(other.flags);
        self.idents.union(&other.idents);
        if other.hint == Some(Route::Master) {
            self.hint = Some(Route::Master);
        }
    }
}

/// Reads a statement's text once and returns what it says. Stateless, never panics, and
/// allocates nothing for plain SELECT/INSERT/UPDATE/DELETE. Any text is valid input, which
/// makes it a direct fuzz target: `scan(&String::from_utf8_lossy(data))`.
///
/// Where the server's reading depends on what the proxy cannot see — backslashes in literals
/// (`NO_BACKSLASH_ESCAPES`, multi-byte client charsets) and executable comments that only some
/// servers run — the text is read each possible way and the more cautious facts are kept, so
/// that no reading can hide a write or a second statement.
pub fn scan(sql: &str) -> Statement {
    let (mut stmt, notes) = scan_with(sql, LexMode::default());
    let default = LexMode::default();
    let no_escapes = LexMode { backslash_escapes: false, ..default };
    let readings = [
        notes.backslash_in_literal.then_some(no_escapes),
        notes.backslash_after_replacement.then_some(LexMode { multibyte_backslash: true, ..default }),
        notes.conditional_comment.then_some(LexMode { conditional_comments_as_sql: false, ..default }),
        (notes.conditional_comment && notes.backslash_in_literal)
            .then_some(LexMode { conditional_comments_as_sql: false, ..no_escapes }),
    ];
    for mode in readings.into_iter().flatten() {
        let (other, _) = scan_with(sql, mode);
        stmt.merge_cautious(other);
    }
    stmt
}

fn scan_with(sql: &str, mode: LexMode) -> (Statement, LexNotes) {
    let mut lx = Lexer::new(sql, mode);
    let mut stmt = Statement {
        kind: StatementKind::Empty,
        flags: Flags::default(),
        hint: None,
        effects: Vec::new(),
        idents: IdentFilter::default(),
    };
    let mut count = 0usize;
    loop {
        let first = loop {
            match lx.next_token() {
                Some(t) if t.is_punct(b';') => continue,
                other => break other,
            }
        };
        let Some(first) = first else { break };
        count += 1;
        let kind = scan_one(&mut lx, first, &mut stmt);
        if count == 1 {
            stmt.kind = kind;
        } else {
            stmt.flags.set(Flags::MULTI_STATEMENT);
        }
    }
    stmt.hint = lx.notes.hint;
    (stmt, lx.notes)
}

/// Scans one statement starting at `first`, up to and including its `;`.
fn scan_one<'a>(lx: &mut Lexer<'a>, first: Token<'a>, stmt: &mut Statement) -> StatementKind {
    let mut cursor = Cursor::new(lx.clone());
    let head = if first.is_word("SET") {
        set_statement::read(&mut cursor, &mut stmt.effects, &mut stmt.flags)
    } else {
        head::read(first, &mut cursor, &mut stmt.effects, &mut stmt.flags)
    };
    let mut body = Body {
        stmt,
        read_kind: head.kind.is_read(),
        runs_calls: runs_calls(head.kind),
        in_set: head.kind == StatementKind::Set,
        prev: None,
        prev2: None,
        depth: 0,
        cte_prologue: None,
        insert_into_pending: false,
        insert_columns_pending: false,
    };
    body.token(first, lx);
    while let Some(t) = lx.next_token() {
        if t.is_punct(b';') && !head.swallow_rest {
            break;
        }
        body.token(t, lx);
    }
    head.kind
}

/// Kinds whose function calls run when the statement runs. Not: DDL (a routine's, view's,
/// trigger's or event's body is stored, not run), EXPLAIN / DESCRIBE (the statement is not
/// executed), compound statements, PREPARE / EXECUTE, and whatever is unknown.
fn runs_calls(kind: StatementKind) -> bool {
    use StatementKind as K;
    matches!(kind, K::Select | K::Do | K::Values | K::Set | K::Insert | K::Update | K::Delete | K::Replace | K::Call)
}

/// The words the walk over a statement reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKeyword {
    In,
    For,
    Into,
    With,
    Share,
    Table,
    Update,
    Select,
    Delete,
    Insert,
    Values,
    Outfile,
    Nextval,
    Currval,
    Replace,
    SqlCalcFoundRows,
}

impl BodyKeyword {
    /// Most words are identifiers or other keywords: the length and first letter rule them out
    /// before any comparison.
    fn of(word: &str) -> Option<BodyKeyword> {
        use BodyKeyword as K;
        let first = word.as_bytes().first()?.to_ascii_uppercase();
        let candidates: &[(&str, BodyKeyword)] = match (word.len(), first) {
            (2, b'I') => &[("IN", K::In)],
            (3, b'F') => &[("FOR", K::For)],
            (4, b'I') => &[("INTO", K::Into)],
            (4, b'W') => &[("WITH", K::With)],
            (5, b'S') => &[("SHARE", K::Share)],
            (5, b'T') => &[("TABLE", K::Table)],
            (6, b'U') => &[("UPDATE", K::Update)],
            (6, b'S') => &[("SELECT", K::Select)],
            (6, b'D') => &[("DELETE", K::Delete)],
            (6, b'I') => &[("INSERT", K::Insert)],
            (6, b'V') => &[("VALUES", K::Values)],
            (7, b'O') => &[("OUTFILE", K::Outfile)],
            (7, b'N') => &[("NEXTVAL", K::Nextval)],
            (7, b'C') => &[("CURRVAL", K::Currval)],
            (7, b'R') => &[("REPLACE", K::Replace)],
            (8, b'D') => &[("DUMPFILE", K::Outfile)],
            (19, b'S') => &[("SQL_CALC_FOUND_ROWS", K::SqlCalcFoundRows)],
            _ => return None,
        };
        candidates.iter().find(|(name, _)| word.eq_ignore_ascii_case(name)).map(|&(_, k)| k)
    }
}

/// The walk over every token of one statement.
struct Body<'s, 'a> {
    stmt: &'s mut Statement,
    prev: Option<Token<'a>>,
    prev2: Option<Token<'a>>,
    depth: u32,
    /// Paren depth of a `WITH name [(columns)] AS (…)` list being read: there `name (` is a
    /// column list, not a call.
    cte_prologue: Option<u32>,
    /// An INSERT or REPLACE statement keyword was read (under EXPLAIN too): its INTO names the
    /// target table, not a variable,
    insert_into_pending: bool,
    /// … and its first `(` opens the column list (or the rows), not a call.
    insert_columns_pending: bool,
    /// The statement is a read kind: only then are user-defined functions looked for.
    read_kind: bool,
    /// The statement evaluates its function calls when it runs (see [`runs_calls`]).
    runs_calls: bool,
    /// The statement is a SET.
    in_set: bool,
}

fn is_word(t: Option<Token<'_>>, keyword: &str) -> bool {
    t.is_some_and(|t| t.is_word(keyword))
}

impl<'a> Body<'_, 'a> {
    fn flag(&mut self, bits: u32) {
        self.stmt.flags.set(bits);
    }

    fn token(&mut self, t: Token<'a>, lx: &Lexer<'a>) {
        if !self.read_kind && matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent | TokenKind::DoubleQuoted) {
            // Statements that are not reads go to the master whatever their clauses say and
            // the temporary-table rule is for reads: only calls (lock functions have effects)
            // and `@x :=` matter in them.
            self.prev2 = self.prev;
            self.prev = Some(t);
            return;
        }
        match t.kind {
            TokenKind::Word => {
                self.stmt.idents.insert(t.text, None);
                self.word(t, lx);
            }
            TokenKind::QuotedIdent => self.stmt.idents.insert(t.text, Some(b'`')),
            TokenKind::DoubleQuoted => self.stmt.idents.insert(t.text, Some(b'"')),
            TokenKind::SystemVar => {
                let name = t.text.rsplit('.').next().unwrap_or(t.text);
                if name.eq_ignore_ascii_case("last_insert_id") || name.eq_ignore_ascii_case("identity") {
                    self.flag(Flags::LAST_INSERT_ID);
                } else if name.eq_ignore_ascii_case("warning_count") || name.eq_ignore_ascii_case("error_count") {
                    self.flag(Flags::FOLLOWS_PREVIOUS);
                }
            }
            // In SET, `@x := v` is the SET's own assignment, replayable like `@x = v`.
            TokenKind::Assign if !self.in_set && self.prev.is_some_and(|p| p.kind == TokenKind::UserVar) => {
                self.flag(Flags::USER_VAR_ASSIGN);
            }
            TokenKind::Punct(b'(') => {
                if self.cte_prologue == Some(self.depth) && self.prev.is_some_and(|p| p.is_punct(b')')) {
                    // `WITH c AS (…) (SELECT …)`: the main query has started.
                    self.cte_prologue = None;
                }
                if is_word(self.prev, "INSERT") || is_word(self.prev, "REPLACE") {
                    // INSERT( and REPLACE( are string functions.
                    self.insert_into_pending = false;
                    self.insert_columns_pending = false;
                } else if self.insert_columns_pending {
                    self.insert_columns_pending = false;
                    let special =
                        self.prev.is_some_and(|p| p.kind == TokenKind::Word && SpecialFunction::of(p.text).is_some());
                    if !special {
                        self.depth = self.depth.saturating_add(1);
                        self.prev2 = self.prev;
                        self.prev = Some(t);
                        return;
                    }
                }
                self.call(self.prev, self.prev2);
                self.depth = self.depth.saturating_add(1);
            }
            TokenKind::Punct(b')') => {
                self.depth = self.depth.saturating_sub(1);
                if self.cte_prologue.is_some_and(|d| d > self.depth) {
                    self.cte_prologue = None;
                }
            }
            _ => {}
        }
        self.prev2 = self.prev;
        self.prev = Some(t);
    }

    fn word(&mut self, t: Token<'a>, lx: &Lexer<'a>) {
        let Some(keyword) = BodyKeyword::of(t.text) else {
            return;
        };
        match keyword {
            BodyKeyword::Update | BodyKeyword::Share if is_word(self.prev, "FOR") => self.flag(Flags::LOCKING_READ),
            BodyKeyword::In if is_word(self.prev, "LOCK") => self.flag(Flags::LOCKING_READ),
            BodyKeyword::Insert | BodyKeyword::Replace => {
                self.insert_into_pending = true;
                self.insert_columns_pending = true;
                self.main_statement_keyword();
            }
            BodyKeyword::Into if self.insert_into_pending => self.insert_into_pending = false,
            BodyKeyword::Into => self.flag(Flags::INTO_VAR),
            BodyKeyword::Outfile if is_word(self.prev, "INTO") => self.flag(Flags::INTO_FILE),
            BodyKeyword::For if is_word(self.prev, "VALUE") => {
                if is_word(self.prev2, "NEXT") {
                    self.flag(Flags::SEQUENCE_ADVANCE);
                } else if is_word(self.prev2, "PREVIOUS") {
                    self.flag(Flags::SEQUENCE_STATE);
                }
            }
            BodyKeyword::Nextval if self.prev.is_some_and(|p| p.is_punct(b'.')) => self.flag(Flags::SEQUENCE_ADVANCE),
            BodyKeyword::Currval if self.prev.is_some_and(|p| p.is_punct(b'.')) => self.flag(Flags::SEQUENCE_STATE),
            BodyKeyword::SqlCalcFoundRows => self.flag(Flags::CALC_FOUND_ROWS),
            BodyKeyword::With => {
                // A CTE list follows when the next tokens are RECURSIVE, or a name then AS or
                // `(`; not for WITH ROLLUP, WITH CONSISTENT SNAPSHOT, WITH READ LOCK, ….
                let mut ahead = lx.clone();
                let a = ahead.next_token();
                let b = ahead.next_token();
                let named = a.is_some_and(|a| matches!(a.kind, TokenKind::Word | TokenKind::QuotedIdent))
                    && (is_word(b, "AS") || b.is_some_and(|b| b.is_punct(b'(')));
                if is_word(a, "RECURSIVE") || named {
                    self.cte_prologue = Some(self.depth);
                }
            }
            BodyKeyword::Select
            | BodyKeyword::Update
            | BodyKeyword::Delete
            | BodyKeyword::Table
            | BodyKeyword::Values => self.main_statement_keyword(),
            _ => {}
        }
    }

    /// A statement keyword at the depth of a WITH list ends the list.
    fn main_statement_keyword(&mut self) {
        if self.cte_prologue == Some(self.depth) {
            self.cte_prologue = None;
        }
    }

    /// `name (`: a function call, unless `name` is a built-in or a keyword, or the context says
    /// it is a column list (`AS alias (a, b)`, `WITH cte (a, b) AS`).
    fn call(&mut self, name: Option<Token<'a>>, before: Option<Token<'a>>) {
        let Some(name) = name else { return };
        let column_list = is_word(before, "AS") || self.cte_prologue == Some(self.depth);
        match name.kind {
            TokenKind::QuotedIdent if self.read_kind && !column_list => self.flag(Flags::USER_FUNCTION),
            TokenKind::Word => {
                if name.text.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                    return;
                }
                if before.is_some_and(|b| b.is_punct(b'.')) {
                    // `db.func(`: a stored function, even when named like a built-in.
                    if self.read_kind {
                        self.flag(Flags::USER_FUNCTION);
                    }
                    return;
                }
                if let Some(special) = SpecialFunction::of(name.text) {
                    self.special(special);
                    return;
                }
                // Whether a call is user-defined only matters for reads; writes go to the
                // master anyway.
                if !self.read_kind || column_list {
                    return;
                }
                let mut buf = [0u8; 48];
                let builtin = upper(name.text, &mut buf).is_some_and(builtin::is_builtin_or_keyword);
                if !builtin {
                    self.flag(Flags::USER_FUNCTION);
                }
            }
            _ => {}
        }
    }

    fn special(&mut self, function: SpecialFunction) {
        use SpecialFunction as F;
        match function {
            F::GetLock => {
                self.flag(Flags::LOCK_FUNCTION);
                self.stmt.effects.push(Effect::Pin(PinReason::NamedLock));
            }
            F::ReleaseLock => {
                self.flag(Flags::LOCK_FUNCTION);
                self.stmt.effects.push(Effect::Unpin(PinReason::NamedLock));
            }
            F::ReleaseAllLocks => {
                self.flag(Flags::LOCK_FUNCTION);
                // In a routine body, a view or an EXPLAIN the call is not run now: it may not
                // release anything, like RELEASE_LOCK.
                let effect =
                    if self.runs_calls { Effect::ReleaseAllNamedLocks } else { Effect::Unpin(PinReason::NamedLock) };
                self.stmt.effects.push(effect);
            }
            F::LockState => self.flag(Flags::LOCK_FUNCTION),
            F::LastInsertId => self.flag(Flags::LAST_INSERT_ID),
            F::FollowsPrevious => self.flag(Flags::FOLLOWS_PREVIOUS),
            F::SequenceAdvance => self.flag(Flags::SEQUENCE_ADVANCE),
            F::SequenceState => self.flag(Flags::SEQUENCE_STATE),
        }
    }
}

/// Built-in functions with their own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpecialFunction {
    /// GET_LOCK
    GetLock,
    /// RELEASE_LOCK
    ReleaseLock,
    /// RELEASE_ALL_LOCKS
    ReleaseAllLocks,
    /// IS_USED_LOCK, IS_FREE_LOCK
    LockState,
    /// LAST_INSERT_ID
    LastInsertId,
    /// FOUND_ROWS, ROW_COUNT
    FollowsPrevious,
    /// NEXTVAL, SETVAL
    SequenceAdvance,
    /// LASTVAL
    SequenceState,
}

impl SpecialFunction {
    fn of(name: &str) -> Option<SpecialFunction> {
        use SpecialFunction as F;
        let first = name.as_bytes().first()?.to_ascii_uppercase();
        let candidates: &[(&str, SpecialFunction)] = match (name.len(), first) {
            (6, b'S') => &[("SETVAL", F::SequenceAdvance)],
            (7, b'N') => &[("NEXTVAL", F::SequenceAdvance)],
            (7, b'L') => &[("LASTVAL", F::SequenceState)],
            (8, b'G') => &[("GET_LOCK", F::GetLock)],
            (9, b'R') => &[("ROW_COUNT", F::FollowsPrevious)],
            (10, b'F') => &[("FOUND_ROWS", F::FollowsPrevious)],
            (12, b'R') => &[("RELEASE_LOCK", F::ReleaseLock)],
            (12, b'I') => &[("IS_USED_LOCK", F::LockState), ("IS_FREE_LOCK", F::LockState)],
            (14, b'L') => &[("LAST_INSERT_ID", F::LastInsertId)],
            (17, b'R') => &[("RELEASE_ALL_LOCKS", F::ReleaseAllLocks)],
            _ => return None,
        };
        candidates.iter().find(|(n, _)| name.eq_ignore_ascii_case(n)).map(|&(_, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(sql: &str) -> Flags {
        scan(sql).flags
    }

    #[test]
    fn plain_reads_allocate_nothing_and_are_reads() {
        for sql in ["SELECT 1", "select a from t where id = ?", "(SELECT 1) UNION (SELECT 2)", "SHOW TABLES", "TABLE t"]
        {
            let s = scan(sql);
            assert!(s.is_read(), "{sql}");
            assert_eq!(s.effects.capacity(), 0, "{sql}");
        }
    }

    #[test]
    fn function_calls() {
        assert!(flags("SELECT myfunc(1)").has(Flags::USER_FUNCTION));
        assert!(flags("SELECT myfunc (1)").has(Flags::USER_FUNCTION));
        assert!(flags("SELECT db.concat(1)").has(Flags::USER_FUNCTION));
        assert!(flags("SELECT `f`(1)").has(Flags::USER_FUNCTION));
        assert!(!flags("SELECT COUNT(*), concat(a, b) FROM t WHERE a IN (1) AND EXISTS (SELECT 1)")
            .has(Flags::USER_FUNCTION));
        assert!(!flags("SELECT CAST(a AS DECIMAL(10,2)), CAST(b AS DATETIME(6)) FROM t").has(Flags::USER_FUNCTION));
        assert!(
            !flags("WITH c (x, y) AS (SELECT 1, 2), d (z) AS (SELECT 3) SELECT * FROM c, d").has(Flags::USER_FUNCTION)
        );
        assert!(!flags("SELECT * FROM (SELECT 1, 2) AS dt (a, b)").has(Flags::USER_FUNCTION));
        assert!(flags("WITH c AS (SELECT 1) SELECT f(x) FROM c").has(Flags::USER_FUNCTION));
        assert!(flags("SELECT a FROM t GROUP BY a WITH ROLLUP HAVING f(a)").has(Flags::USER_FUNCTION));
    }

    #[test]
    fn clauses_anywhere() {
        assert!(flags("SELECT * FROM (SELECT * FROM t FOR UPDATE) x").has(Flags::LOCKING_READ));
        assert!(flags("SELECT * FROM t LOCK IN SHARE MODE").has(Flags::LOCKING_READ));
        assert!(!flags("SELECT 'FOR UPDATE' FROM t").has(Flags::LOCKING_READ));
        assert!(flags("SELECT NEXT VALUE FOR s").has(Flags::SEQUENCE_ADVANCE));
        assert!(flags("SELECT PREVIOUS VALUE FOR s").has(Flags::SEQUENCE_STATE));
        assert!(flags("SELECT s.nextval FROM dual").has(Flags::SEQUENCE_ADVANCE));
        assert!(flags("SELECT a INTO OUTFILE '/tmp/x' FROM t").has(Flags::INTO_FILE));
        assert!(flags("SELECT @a := 1").has(Flags::USER_VAR_ASSIGN));
        assert!(!flags("SELECT @a = 1").has(Flags::USER_VAR_ASSIGN));
        assert!(flags("SELECT @@session.identity").has(Flags::LAST_INSERT_ID));
    }

    #[test]
    fn multi_statements() {
        assert!(!scan("SELECT 1;").is_multi_statement());
        assert!(!scan("SELECT 1 ; ; -- done\n").is_multi_statement());
        assert!(scan("SELECT 1; SELECT 2").is_multi_statement());
        assert!(!scan("SELECT ';'").is_multi_statement());
        assert!(!scan("CREATE PROCEDURE p() BEGIN SELECT 1; SET autocommit = 0; END").is_multi_statement());
        assert_eq!(scan("CREATE PROCEDURE p() BEGIN SET autocommit = 0; END").effects, [Effect::EndTransaction]);
    }

    #[test]
    fn ambiguous_texts_are_read_the_cautious_way() {
        let s = scan(r"SELECT 'a\'; DELETE FROM t; -- '");
        assert!(s.is_multi_statement());
        let s = scan("/*!99999 SELECT */ DELETE FROM t");
        assert_eq!(s.kind, StatementKind::Delete);
        let s = scan("SELECT 1 /*M!100000 , myfunc() */");
        assert!(s.flags.has(Flags::USER_FUNCTION));
        let s = scan("/*!40101 SELECT 1 */");
        assert_eq!(s.kind, StatementKind::Select);
    }
}

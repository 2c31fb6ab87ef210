//! SET: which session state a SET statement changes, as [`Effect`]s the session applies once
//! it succeeded.
//!
//! - `autocommit`, the isolation level and the character set have their own effects, because
//!   routing depends on them (`SetAutocommit`, `SetIsolation`, `SetNames`). They are only
//!   emitted for literal values (`0`, `OFF`, `'SERIALIZABLE'`, …); for an expression such as
//!   `SET autocommit = @saved` nothing is emitted and the server's status flags tell.
//! - Every other session or user variable goes into one `SessionVariables` effect whose key
//!   is the sorted, de-duplicated, lower-cased list of the variables assigned (scope prefixes
//!   removed, `tx_isolation`/`tx_read_only` under their new names), so a later SET of the same
//!   variables replaces the earlier one when the session replays SETs on other connections.
//!   Replay evaluates the expressions again on that connection.
//! - GLOBAL / PERSIST assignments are server administration (`StatementKind::Admin`), not
//!   session state: replaying them on other servers would change those servers. A SET that
//!   mixes them with session variables gets no `SessionVariables` effect for the same reason
//!   (its session part is then known only on the connection that ran it).
//! - `SET TRANSACTION …` without SESSION applies to the next transaction only: no effect; it
//!   runs on the master, where the next read-write transaction runs too.
//! - `SET STATEMENT … FOR stmt` (MariaDB) is classified as `stmt`.
//! - `SET PASSWORD` and `SET DEFAULT ROLE` are account management (DDL).

use super::effect::Effect;
use super::head::{self, Cursor, Head};
use super::kind::{Flags, StatementKind};
use super::lexer::{Token, TokenKind};

pub(crate) fn read<'a>(cur: &mut Cursor<'a>, effects: &mut Vec<Effect>, flags: &mut Flags) -> Head {
    use StatementKind as K;
    let Some(first) = cur.peek() else {
        return K::Unknown.into();
    };
    if first.is_word("PASSWORD") || (first.is_word("DEFAULT") && second_is(cur, "ROLE")) {
        effects.push(Effect::EndTransaction);
        return K::Ddl.into();
    }
    if first.is_word("ROLE") {
        effects.push(Effect::SessionVariables { key: "role".into() });
        return K::Set.into();
    }
    if first.is_word("RESOURCE") {
        effects.push(Effect::SessionVariables { key: "resource_group".into() });
        return K::Set.into();
    }
    if first.is_word("STATEMENT") {
        return statement_for(cur, effects, flags);
    }
    if first.is_word("TRANSACTION") {
        return K::Set.into();
    }
    let scope_then_transaction = second_is(cur, "TRANSACTION");
    if scope_then_transaction && is_global_scope(&first) {
        return K::Admin.into();
    }
    if scope_then_transaction && (first.is_word("SESSION") || first.is_word("LOCAL")) {
        cur.next();
        cur.next();
        transaction_characteristics(cur, effects);
        return K::Set.into();
    }
    assignments(cur, effects)
}

/// True when the token after the next one is the word `keyword`.
fn second_is(cur: &Cursor<'_>, keyword: &str) -> bool {
    let mut ahead = cur.clone();
    ahead.next();
    ahead.peek().is_some_and(|t| t.is_word(keyword))
}

fn is_global_scope(t: &Token<'_>) -> bool {
    t.is_word("GLOBAL") || t.is_word("PERSIST") || t.is_word("PERSIST_ONLY")
}

/// `SET STATEMENT var = value [, …] FOR statement`: the inner statement decides.
fn statement_for<'a>(cur: &mut Cursor<'a>, effects: &mut Vec<Effect>, flags: &mut Flags) -> Head {
    cur.next();
    let mut depth = 0u32;
    while let Some(t) = cur.next() {
        match t.kind {
            TokenKind::Punct(b'(') => depth += 1,
            TokenKind::Punct(b')') => depth = depth.saturating_sub(1),
            TokenKind::Word if depth == 0 && t.is_word("FOR") => {
                return match cur.next() {
                    // Another SET (STATEMENT …) inside is not valid, and reading it would
                    // recurse once per repetition of a crafted text.
                    Some(inner) if !inner.is_word("SET") => head::read(inner, cur, effects, flags),
                    _ => StatementKind::Unknown.into(),
                };
            }
            _ => {}
        }
    }
    StatementKind::Unknown.into()
}

/// `ISOLATION LEVEL …`, `READ ONLY`, `READ WRITE`, comma-separated, after SESSION TRANSACTION.
fn transaction_characteristics(cur: &mut Cursor<'_>, effects: &mut Vec<Effect>) {
    let mut access_mode = false;
    while let Some(t) = cur.next() {
        if t.is_word("ISOLATION") {
            cur.eat("LEVEL");
            if cur.eat("SERIALIZABLE") {
                effects.push(Effect::SetIsolation { serializable: true });
            } else if cur.eat("REPEATABLE") || cur.eat("READ") {
                cur.next();
                effects.push(Effect::SetIsolation { serializable: false });
            }
        } else if t.is_word("READ") && (cur.eat("ONLY") || cur.eat("WRITE")) {
            access_mode = true;
        }
    }
    if access_mode {
        effects.push(Effect::SessionVariables { key: "transaction_read_only".into() });
    }
}

/// A literal's text: a word (`ON`, `0`) or a quoted string's body.
fn literal<'a>(t: &Token<'a>) -> Option<&'a str> {
    match t.kind {
        TokenKind::Word | TokenKind::SingleQuoted | TokenKind::DoubleQuoted => Some(t.text),
        _ => None,
    }
}

fn bool_literal(t: &Token<'_>) -> Option<bool> {
    let text = literal(t)?;
    if ["1", "ON", "TRUE"].iter().any(|v| text.eq_ignore_ascii_case(v)) {
        Some(true)
    } else if ["0", "OFF", "FALSE"].iter().any(|v| text.eq_ignore_ascii_case(v)) {
        Some(false)
    } else {
        None
    }
}

/// `'SERIALIZABLE'` → true, `'READ-COMMITTED'` and the other levels → false.
fn isolation_literal(t: &Token<'_>) -> Option<bool> {
    let text = literal(t)?;
    let normal: String =
        text.chars().map(|c| if c == '-' || c == '_' { ' ' } else { c.to_ascii_uppercase() }).collect();
    match normal.trim() {
        "SERIALIZABLE" => Some(true),
        "REPEATABLE READ" | "READ COMMITTED" | "READ UNCOMMITTED" => Some(false),
        _ => None,
    }
}

/// A charset or collation name: a word, a quoted string or DEFAULT, lower-cased.
fn charset_name(cur: &mut Cursor<'_>) -> Option<String> {
    let t = cur.next()?;
    let name = literal(&t).or(if t.kind == TokenKind::QuotedIdent { Some(t.text) } else { None })?;
    Some(name.to_ascii_lowercase())
}

/// Reads a value up to the next `,` outside parentheses. Returns the value's only token (when
/// it is a single token) and whether a `,` (another assignment) follows.
fn value<'a>(cur: &mut Cursor<'a>) -> (Option<Token<'a>>, bool) {
    let mut depth = 0u32;
    let mut first = None;
    let mut count = 0usize;
    while let Some(t) = cur.next() {
        match t.kind {
            TokenKind::Punct(b',') if depth == 0 => return (first.filter(|_| count == 1), true),
            TokenKind::Punct(b'(') => depth += 1,
            TokenKind::Punct(b')') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if count == 0 {
            first = Some(t);
        }
        count += 1;
    }
    (first.filter(|_| count == 1), false)
}

/// The comma-separated assignment list of a SET.
fn assignments(cur: &mut Cursor<'_>, effects: &mut Vec<Effect>) -> Head {
    let mut global_scope = false;
    let mut any_global = false;
    let mut keys: Vec<String> = Vec::new();
    while let Some(mut t) = cur.next() {
        // GLOBAL / SESSION stay in force for the following assignments that name no scope.
        loop {
            if is_global_scope(&t) {
                global_scope = true;
            } else if t.is_word("SESSION") || t.is_word("LOCAL") {
                global_scope = false;
            } else {
                break;
            }
            match cur.next() {
                Some(next) => t = next,
                None => return StatementKind::Unknown.into(),
            }
        }
        if t.is_word("NAMES") {
            if let Some(charset) = charset_name(cur) {
                let collation = if cur.eat("COLLATE") { charset_name(cur) } else { None };
                effects.push(Effect::SetNames { charset, collation });
            }
            if value(cur).1 {
                continue;
            }
            break;
        }
        if t.is_word("CHARSET") || (t.is_word("CHARACTER") && cur.eat("SET")) {
            if let Some(charset) = charset_name(cur) {
                effects.push(Effect::SetNames { charset, collation: None });
            }
            if value(cur).1 {
                continue;
            }
            break;
        }
        let (name, global) = match t.kind {
            TokenKind::UserVar => (format!("@{}", t.text.to_lowercase()), false),
            TokenKind::SystemVar => {
                let lower = t.text.to_ascii_lowercase();
                match lower.split_once('.') {
                    Some(("global" | "persist" | "persist_only", name)) => (name.to_string(), true),
                    Some(("session" | "local", name)) => (name.to_string(), false),
                    _ => (lower, false),
                }
            }
            TokenKind::Word | TokenKind::QuotedIdent => (t.text.to_ascii_lowercase(), global_scope),
            _ => return StatementKind::Unknown.into(),
        };
        if !(cur.eat_punct(b'=') || cur.peek().is_some_and(|t| t.kind == TokenKind::Assign) && cur.next().is_some()) {
            return StatementKind::Unknown.into();
        }
        let (single, more) = value(cur);
        if name.starts_with('@') {
            keys.push(name);
        } else if global {
            any_global = true;
        } else {
            match name.as_str() {
                "autocommit" => {
                    if let Some(on) = single.as_ref().and_then(bool_literal) {
                        effects.push(Effect::SetAutocommit(on));
                    }
                }
                "tx_isolation" | "transaction_isolation" => match single.as_ref().and_then(isolation_literal) {
                    Some(serializable) => effects.push(Effect::SetIsolation { serializable }),
                    None => keys.push("transaction_isolation".into()),
                },
                "tx_read_only" => keys.push("transaction_read_only".into()),
                _ => keys.push(name),
            }
        }
        if !more {
            break;
        }
    }
    if any_global {
        return StatementKind::Admin.into();
    }
    if !keys.is_empty() {
        keys.sort();
        keys.dedup();
        effects.push(Effect::SessionVariables { key: keys.join(",") });
    }
    StatementKind::Set.into()
}

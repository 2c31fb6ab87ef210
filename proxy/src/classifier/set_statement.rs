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
//! - A user variable set to anything but a constant literal (`SET @v = NOW()`,
//!   `SET @v = (SELECT …)`, `SET @a = @b + 1`) would get another value on replay: such a SET
//!   has no `SessionVariables` effect at all (replay runs the whole text), and the statement
//!   reports [`assigns_user_variables`](super::Statement::assigns_user_variables), so that the
//!   session keeps the connection. So does a `@x := …` inside a value. See [`is_constant`].
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
    assignments(cur, effects, flags)
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

/// An assigned value: its tokens, and whether a `,` (another assignment) follows.
struct Value<'a> {
    tokens: Vec<Token<'a>>,
    more: bool,
}

impl<'a> Value<'a> {
    /// The value's only token, when it is a single token.
    fn single(&self) -> Option<Token<'a>> {
        match self.tokens.as_slice() {
            [t] => Some(*t),
            _ => None,
        }
    }

    /// The value assigns a user variable itself (`SET @a = @b := 1`, `SET x = (@b := 1)`).
    fn assigns(&self) -> bool {
        self.tokens.iter().any(|t| t.kind == TokenKind::Assign)
    }
}

/// Reads a value up to the next `,` outside parentheses.
fn value<'a>(cur: &mut Cursor<'a>) -> Value<'a> {
    let mut depth = 0u32;
    let mut tokens = Vec::new();
    while let Some(t) = cur.next() {
        match t.kind {
            TokenKind::Punct(b',') if depth == 0 => return Value { tokens, more: true },
            TokenKind::Punct(b'(') => depth += 1,
            TokenKind::Punct(b')') => depth = depth.saturating_sub(1),
            _ => {}
        }
        tokens.push(t);
    }
    Value { tokens, more: false }
}

/// Whether a value is a constant literal, which gives the same value wherever the SET is
/// replayed: a number, NULL, TRUE or FALSE, or a string (`'x'`, `"x"`, adjacent strings
/// concatenated, with an optional introducer `_charset`, `N`, `X` or `B` and an optional
/// `COLLATE name`), after any number of unary signs. Anything else (a variable, a function
/// call, a subquery, an operator, a `?` placeholder, parentheses) is not.
pub(crate) fn is_constant(tokens: &[Token<'_>]) -> bool {
    let mut rest = tokens;
    while let [t, tail @ ..] = rest {
        if t.is_punct(b'-') || t.is_punct(b'+') {
            rest = tail;
        } else {
            break;
        }
    }
    match rest {
        [] => false,
        [t] if t.is_word("NULL") || t.is_word("TRUE") || t.is_word("FALSE") => true,
        [first, ..] if first.kind == TokenKind::Word && first.text.starts_with(|c: char| c.is_ascii_digit()) => {
            is_number_tokens(rest)
        }
        [first, ..] if first.is_punct(b'.') => is_number_tokens(rest),
        _ => is_string_literal(rest),
    }
}

/// The tokens are one numeric literal: written without spaces (`1.5e-3` is lexed as `1`, `.`,
/// `5e`, `-`, `3`), and the text they make is a decimal, hexadecimal (`0x1F`) or binary
/// (`0b101`) number.
fn is_number_tokens(tokens: &[Token<'_>]) -> bool {
    let adjacent = tokens.windows(2).all(|w| match w {
        [a, b] => a.text.as_ptr() as usize + a.text.len() == b.text.as_ptr() as usize,
        _ => true,
    });
    let pieces_ok =
        tokens.iter().all(|t| t.kind == TokenKind::Word || t.is_punct(b'.') || t.is_punct(b'-') || t.is_punct(b'+'));
    if !adjacent || !pieces_ok {
        return false;
    }
    let text: String = tokens.iter().map(|t| t.text).collect();
    is_number(&text)
}

fn is_number(s: &str) -> bool {
    let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
    if let Some(hex) = s.strip_prefix("0x") {
        return !hex.is_empty() && hex.bytes().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(bin) = s.strip_prefix("0b") {
        return !bin.is_empty() && bin.bytes().all(|c| c == b'0' || c == b'1');
    }
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (s.get(..i).unwrap_or(""), Some(s.get(i + 1..).unwrap_or(""))),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(digits(int) && digits(frac)) || (int.is_empty() && frac.is_empty()) {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
    }
}

/// `[introducer] 'text' ['more' …] [COLLATE name]`
fn is_string_literal(tokens: &[Token<'_>]) -> bool {
    let is_string = |t: &Token<'_>| matches!(t.kind, TokenKind::SingleQuoted | TokenKind::DoubleQuoted);
    let mut rest = tokens;
    if let [intro, next, ..] = rest {
        let introducer = intro.kind == TokenKind::Word
            && (intro.text.starts_with('_') || ["N", "X", "B"].iter().any(|p| intro.text.eq_ignore_ascii_case(p)));
        if introducer && is_string(next) {
            rest = rest.get(1..).unwrap_or_default();
        }
    }
    let strings = rest.iter().take_while(|t| is_string(t)).count();
    if strings == 0 {
        return false;
    }
    match rest.get(strings..).unwrap_or_default() {
        [] => true,
        [collate, name] => {
            collate.is_word("COLLATE")
                && matches!(
                    name.kind,
                    TokenKind::Word | TokenKind::QuotedIdent | TokenKind::SingleQuoted | TokenKind::DoubleQuoted
                )
        }
        _ => false,
    }
}

/// The comma-separated assignment list of a SET.
fn assignments(cur: &mut Cursor<'_>, effects: &mut Vec<Effect>, flags: &mut Flags) -> Head {
    let mut global_scope = false;
    let mut any_global = false;
    // A user variable set to something other than a constant: the statement's text cannot be
    // replayed elsewhere with the same result.
    let mut unreplayable = false;
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
            if value(cur).more {
                continue;
            }
            break;
        }
        if t.is_word("CHARSET") || (t.is_word("CHARACTER") && cur.eat("SET")) {
            if let Some(charset) = charset_name(cur) {
                effects.push(Effect::SetNames { charset, collation: None });
            }
            if value(cur).more {
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
        let value = value(cur);
        let (single, more) = (value.single(), value.more);
        if value.assigns() {
            flags.set(Flags::USER_VAR_ASSIGN);
        }
        if name.starts_with('@') {
            if is_constant(&value.tokens) {
                keys.push(name);
            } else {
                unreplayable = true;
            }
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
    if unreplayable {
        flags.set(Flags::USER_VAR_SET_EXPR);
    }
    if any_global {
        return StatementKind::Admin.into();
    }
    if !keys.is_empty() && !unreplayable {
        keys.sort();
        keys.dedup();
        effects.push(Effect::SessionVariables { key: keys.join(",") });
    }
    StatementKind::Set.into()
}

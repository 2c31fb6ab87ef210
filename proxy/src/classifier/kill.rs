//! `KILL …`: which connection (or query) a KILL statement names, so that the session layer can
//! translate the client's connection id (the proxy's own) into a backend's, or refuse the
//! statement. Pure; reads the text with the lexer, so comments are allowed anywhere.

use super::lexer::{LexMode, Lexer, Token, TokenKind};
use super::words::mentions;

/// A `KILL [HARD | SOFT] [CONNECTION | QUERY] <id>` statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kill {
    /// KILL QUERY: only the running statement is killed, the connection stays.
    pub query_only: bool,
    /// The connection id, as the client wrote it.
    pub id: u64,
}

/// Reads `KILL [HARD | SOFT] [CONNECTION | QUERY] <id>` (MariaDB and MySQL; case-insensitive;
/// comments and whitespace anywhere, an optional trailing `;`). The id is a decimal integer
/// that fits in a `u64`.
///
/// None for anything else, including the forms the caller should refuse: `KILL QUERY ID
/// <query id>`, `KILL [..] USER name`, an id that is an expression (`KILL CONNECTION_ID()`),
/// a second statement after the `;`, and texts whose meaning depends on a versioned comment
/// that only some servers run (`KILL /*!80000 QUERY */ 5`) when the readings disagree.
pub fn parse_kill(sql: &str) -> Option<Kill> {
    let (kill, conditional) = read(sql, LexMode::default());
    if conditional {
        let (other, _) = read(sql, LexMode { conditional_comments_as_sql: false, ..LexMode::default() });
        if other != kill {
            return None;
        }
    }
    kill
}

/// Whether the statement is a KILL of any form, in any reading of the text (comments before
/// it included): a KILL must never reach a server as the client wrote it, since the ids it
/// names are the proxy's, so the caller answers every one of them itself.
pub fn is_kill(sql: &str) -> bool {
    // Lexed (twice) only when the word is there at all: this runs on every statement.
    if !mentions(sql, "kill") {
        return false;
    }
    [true, false].into_iter().any(|conditional_comments_as_sql| {
        let mut lx = Lexer::new(sql, LexMode { conditional_comments_as_sql, ..LexMode::default() });
        lx.next_token().is_some_and(|t| t.is_word("KILL"))
    })
}

/// The KILL read in one mode, and whether the text has a versioned executable comment.
fn read(sql: &str, mode: LexMode) -> (Option<Kill>, bool) {
    let mut lx = Lexer::new(sql, mode);
    let kill = kill(&mut lx);
    lx.by_ref().for_each(drop);
    (kill, lx.notes.conditional_comment)
}

fn kill(lx: &mut Lexer<'_>) -> Option<Kill> {
    if !lx.next_token()?.is_word("KILL") {
        return None;
    }
    let mut t = lx.next_token()?;
    if t.is_word("HARD") || t.is_word("SOFT") {
        t = lx.next_token()?;
    }
    let mut query_only = false;
    if t.is_word("CONNECTION") {
        t = lx.next_token()?;
    } else if t.is_word("QUERY") {
        query_only = true;
        t = lx.next_token()?;
    }
    let id = decimal(&t)?;
    only_semicolons(lx).then_some(Kill { query_only, id })
}

/// A decimal integer literal that fits in a u64.
pub(crate) fn decimal(t: &Token<'_>) -> Option<u64> {
    if t.kind != TokenKind::Word || t.text.is_empty() || !t.text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.text.parse().ok()
}

/// Nothing but `;` remains.
pub(crate) fn only_semicolons(lx: &mut Lexer<'_>) -> bool {
    lx.all(|t| t.is_punct(b';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kill_is_recognised_whatever_precedes_it() {
        for sql in
            ["KILL 5", " kill query 5", "/* c */ KILL 5", "-- c\nKILL USER app", "/*!KILL 5 */", "KILL QUERY ID 9"]
        {
            assert!(is_kill(sql), "{sql}");
        }
        for sql in ["SELECT 'KILL 5'", "/* KILL 5 */ SELECT 1", "killer()", "SELECT kill", ""] {
            assert!(!is_kill(sql), "{sql}");
        }
    }

    #[test]
    fn kill_forms() {
        let conn = |id| Some(Kill { query_only: false, id });
        let query = |id| Some(Kill { query_only: true, id });
        let cases: &[(&str, Option<Kill>)] = &[
            ("KILL 42", conn(42)),
            ("kill 42;", conn(42)),
            ("KILL CONNECTION 42", conn(42)),
            ("Kill Connection 7 ;", conn(7)),
            ("KILL QUERY 42", query(42)),
            ("KILL HARD 1", conn(1)),
            ("KILL SOFT 1", conn(1)),
            ("KILL HARD CONNECTION 1", conn(1)),
            ("KILL SOFT QUERY 9", query(9)),
            ("  /* c */ KILL /* c */ QUERY -- c\n 9 # c\n ; ", query(9)),
            ("/*!40000 KILL 5 */", conn(5)),
            ("KILL 18446744073709551615", conn(u64::MAX)),
            ("KILL 007", conn(7)),
            // Refused by the caller: not a connection id.
            ("KILL QUERY ID 42", None),
            ("KILL USER bob", None),
            ("KILL HARD USER 'bob'@'%'", None),
            ("KILL CONNECTION USER bob", None),
            ("KILL CONNECTION_ID()", None),
            ("KILL 1 + 1", None),
            ("KILL -1", None),
            ("KILL 0x10", None),
            ("KILL 1.5", None),
            ("KILL '5'", None),
            ("KILL @id", None),
            ("KILL 18446744073709551616", None),
            ("KILL 5; SELECT 1", None),
            ("KILL 5 6", None),
            ("KILL", None),
            ("KILL QUERY", None),
            ("KILL HARD", None),
            ("KILL SOFT HARD 5", None),
            ("KILL QUERY CONNECTION 5", None),
            // Versioned comments some servers skip: only when every reading agrees.
            ("KILL /*!80000 QUERY */ 5", None),
            ("KILL 5 /*!80000 ; */", conn(5)),
            ("KILL 5 /*M!100000 , 6 */", None),
            // Not KILL.
            ("SELECT 'KILL 5'", None),
            ("/* KILL 5 */", None),
            ("-- KILL 5", None),
            ("", None),
            ("KILLS 5", None),
            ("`KILL` 5", None),
        ];
        for (sql, expected) in cases {
            assert_eq!(parse_kill(sql), *expected, "{sql:?}");
        }
    }
}

//! Where a statement shows backend connection ids to the client: `SHOW [FULL] PROCESSLIST`
//! and calls of `CONNECTION_ID()`. The proxy gives each client its own connection id, so the
//! session layer answers these itself or rewrites them. Pure; reads the text with the lexer.

use super::kill::only_semicolons;
use super::lexer::{LexMode, Lexer, Token};
use super::words::mentions;
use std::ops::Range;

/// `SHOW PROCESSLIST` → `Some(false)`, `SHOW FULL PROCESSLIST` → `Some(true)`
/// (case-insensitive, comments and whitespace anywhere, an optional trailing `;`); None for
/// anything else, also when the reading depends on a versioned comment only some servers run
/// and the readings disagree.
pub fn show_processlist(sql: &str) -> Option<bool> {
    if !mentions(sql, "processlist") {
        return None;
    }
    let (full, conditional) = read_show_processlist(sql, LexMode::default());
    if conditional {
        let (other, _) =
            read_show_processlist(sql, LexMode { conditional_comments_as_sql: false, ..LexMode::default() });
        if other != full {
            return None;
        }
    }
    full
}

fn read_show_processlist(sql: &str, mode: LexMode) -> (Option<bool>, bool) {
    let mut lx = Lexer::new(sql, mode);
    let full = (|| {
        if !lx.next_token()?.is_word("SHOW") {
            return None;
        }
        let mut t = lx.next_token()?;
        let full = t.is_word("FULL");
        if full {
            t = lx.next_token()?;
        }
        (t.is_word("PROCESSLIST") && only_semicolons(&mut lx)).then_some(full)
    })();
    lx.by_ref().for_each(drop);
    (full, lx.notes.conditional_comment)
}

/// Byte ranges in `sql` of every call of the built-in `CONNECTION_ID()`, from the first byte
/// of the name to the closing parenthesis inclusive, in order and without overlap.
///
/// Case-insensitive; whitespace and comments may stand between the name and `(` and between
/// `(` and `)`. Calls in string literals, quoted identifiers and comments are not calls, nor
/// are `` `connection_id`() `` and `db.connection_id()` (stored functions); executable
/// comments (`/*! … */`, `/*M! … */`) are SQL. The text is read the server's default way
/// (backslash escapes in strings, versioned comments run). Never panics.
pub fn connection_id_calls(sql: &str) -> Vec<Range<usize>> {
    if !mentions(sql, "connection_id") {
        return Vec::new();
    }
    let mut lx = Lexer::new(sql, LexMode::default());
    let mut calls = Vec::new();
    let mut prev: Option<Token<'_>> = None;
    while let Some(t) = lx.next_token() {
        if t.is_word("CONNECTION_ID") && !prev.is_some_and(|p| p.is_punct(b'.')) {
            let mut ahead = lx.clone();
            let open = ahead.next_token().is_some_and(|o| o.is_punct(b'('));
            if let Some(close) = ahead.next_token().filter(|c| open && c.is_punct(b')')) {
                let start = lx.offset_of(t.text);
                let end = (lx.offset_of(close.text) + 1).min(sql.len());
                calls.push(start..end);
                lx = ahead;
                prev = Some(close);
                continue;
            }
        }
        prev = Some(t);
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn processlist() {
        let cases: &[(&str, Option<bool>)] = &[
            ("SHOW PROCESSLIST", Some(false)),
            ("show processlist;", Some(false)),
            ("SHOW FULL PROCESSLIST", Some(true)),
            (" /* c */ Show /* c */ Full -- c\n ProcessList ; # done", Some(true)),
            ("/*!40000 SHOW FULL PROCESSLIST */", Some(true)),
            ("SHOW /*!80000 FULL */ PROCESSLIST", None),
            ("SHOW PROCESSLIST; SELECT 1", None),
            ("SHOW PROCESSLIST LIKE 'x'", None),
            ("SHOW FULL", None),
            ("SHOW FULL TABLES", None),
            ("SHOW TABLES", None),
            ("SELECT 'SHOW PROCESSLIST'", None),
            ("/* SHOW PROCESSLIST */", None),
            ("SHOW `PROCESSLIST`", None),
            ("", None),
        ];
        for (sql, expected) in cases {
            assert_eq!(show_processlist(sql), *expected, "{sql:?}");
        }
    }

    fn calls(sql: &str) -> Vec<&str> {
        connection_id_calls(sql).into_iter().map(|r| &sql[r]).collect()
    }

    #[test]
    fn connection_id_call_ranges() {
        let name_to_paren: Range<usize> = 7..22;
        assert_eq!(connection_id_calls("SELECT CONNECTION_ID()"), [name_to_paren]);
        assert_eq!(calls("SELECT CONNECTION_ID()"), ["CONNECTION_ID()"]);
        assert_eq!(calls("select connection_id ( ) , Connection_Id()"), ["connection_id ( )", "Connection_Id()"]);
        assert_eq!(calls("SELECT CONNECTION_ID/* c */(/* d */)"), ["CONNECTION_ID/* c */(/* d */)"]);
        assert_eq!(calls("SELECT CONNECTION_ID(\n)"), ["CONNECTION_ID(\n)"]);
        assert_eq!(calls("SELECT /*! CONNECTION_ID() */"), ["CONNECTION_ID()"]);
        assert_eq!(calls("SELECT /*M!100000 CONNECTION_ID() */"), ["CONNECTION_ID()"]);
        assert_eq!(calls("KILL CONNECTION_ID()"), ["CONNECTION_ID()"]);
        assert_eq!(calls("SELECT * FROM t WHERE c = CONNECTION_ID() AND d = 'CONNECTION_ID()'"), ["CONNECTION_ID()"]);
        assert_eq!(calls("SELECT 'é', CONNECTION_ID()"), ["CONNECTION_ID()"]);
        // Not calls of the built-in.
        for sql in [
            "SELECT 'CONNECTION_ID()'",
            "SELECT \"CONNECTION_ID()\"",
            "SELECT `CONNECTION_ID()`",
            "SELECT `connection_id`()",
            "SELECT db.connection_id()",
            "SELECT /* CONNECTION_ID() */ 1",
            "SELECT 1 -- CONNECTION_ID()",
            "SELECT 1 # CONNECTION_ID()",
            "SELECT connection_id FROM t",
            "SELECT connection_id(1)",
            "SELECT connection_id(",
            "SELECT @connection_id, @@connection_id",
            "SELECT my_connection_id()",
            "SELECT 'a\\', CONNECTION_ID(), '",
        ] {
            assert!(calls(sql).is_empty(), "{sql:?}: {:?}", calls(sql));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn connection_id_calls_take_anything(
            parts in prop::collection::vec(
                prop::sample::select(&[
                    "CONNECTION_ID", "connection_id", "(", ")", " ", "'", "\"", "`", "\\", "/*", "*/", "/*!",
                    "/*!80000", "/*M!", "-- ", "#", "\n", ".", "@", "é", "\u{fffd}", ";", "SELECT", "x",
                ][..]),
                0..40,
            ),
            noise in any::<String>(),
        ) {
            for sql in [parts.concat(), noise.clone(), format!("{noise}{}", parts.concat())] {
                let ranges = connection_id_calls(&sql);
                let mut last_end = 0;
                for r in ranges {
                    prop_assert!(r.start >= last_end && r.start < r.end && r.end <= sql.len());
                    let text = sql.get(r.clone());
                    prop_assert!(text.is_some(), "not on char boundaries: {:?} in {:?}", r, sql);
                    let text = text.unwrap_or_default();
                    prop_assert!(text.get(..13).is_some_and(|n| n.eq_ignore_ascii_case("CONNECTION_ID")), "{:?}", text);
                    prop_assert!(text.ends_with(')'));
                    last_end = r.end;
                }
                let _ = show_processlist(&sql);
                let _ = super::super::kill::parse_kill(&sql);
            }
        }

        #[test]
        fn connection_id_calls_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let sql = String::from_utf8_lossy(&bytes);
            for r in connection_id_calls(&sql) {
                prop_assert!(sql.get(r).is_some());
            }
        }
    }
}

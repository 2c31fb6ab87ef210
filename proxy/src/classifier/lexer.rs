//! The tokenizer under [`scan`](super::scan): a single forward pass over the statement text
//! that skips whitespace and comments (collecting routing hints from them), keeps string and
//! quoted-identifier literals whole, and hands out words, variables and punctuation.
//!
//! It never fails and never panics: the text comes from clients and may be anything.
//! Unterminated literals and comments simply run to the end of the text (the server rejects
//! such a statement, so nothing it contains ever executes). Every byte access goes through
//! `get`, and slices are only cut at ASCII bytes or at the end, which are always UTF-8
//! boundaries.
//!
//! Where the server's reading of the text depends on settings the proxy does not know, the
//! lexer notes it ([`LexNotes`]) so that `scan` can read the text again the other way and keep
//! the more cautious result: backslashes in literals (`NO_BACKSLASH_ESCAPES`) and versioned
//! executable comments (`/*!80013 … */`, `/*M! … */`), which run on some servers only.

use super::route::Route;

/// What a token is. Literal bodies and variable names are in [`Token::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// Unquoted identifier, keyword or number (`SELECT`, `t1`, `42`, `0x1F`).
    Word,
    /// `` `identifier` ``; text is the body with doubled backticks still doubled.
    QuotedIdent,
    /// `'string'`; text is the raw body.
    SingleQuoted,
    /// `"string"` (an identifier under ANSI_QUOTES); text is the raw body.
    DoubleQuoted,
    /// `@name`, `@'name'`; text is the name.
    UserVar,
    /// `@@name`, `@@session.name`; text is what follows `@@`.
    SystemVar,
    /// Any other single byte: `(`, `)`, `,`, `;`, `.`, `=`, `*`, …
    Punct(u8),
    /// `:=`
    Assign,
}

/// One token: small, as the scanner copies it around for look-behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    pub text: &'a str,
}

impl Token<'_> {
    /// True for a word equal to `keyword` (ASCII, case-insensitive).
    pub fn is_word(&self, keyword: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    pub fn is_punct(&self, b: u8) -> bool {
        self.kind == TokenKind::Punct(b)
    }
}

/// How to read the parts of the text whose meaning depends on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LexMode {
    /// Backslash escapes the next character inside string literals (the default; off under
    /// `NO_BACKSLASH_ESCAPES`).
    pub backslash_escapes: bool,
    /// Versioned executable comments whose version may be above the server's (and MariaDB's
    /// `/*M!`) are read as SQL; when false they are skipped like ordinary comments.
    pub conditional_comments_as_sql: bool,
    /// A backslash right after U+FFFD is the second byte of a multi-byte character, not an
    /// escape. Clients on GBK, SJIS, BIG5 or CP932 connections send characters whose second
    /// byte is 0x5C; once the text is converted to UTF-8 lossily, their first byte is U+FFFD,
    /// and the server (which knows the charset) does not read that 0x5C as an escape.
    pub multibyte_backslash: bool,
}

impl Default for LexMode {
    fn default() -> Self {
        LexMode { backslash_escapes: true, conditional_comments_as_sql: true, multibyte_backslash: false }
    }
}

/// Things the lexer saw on the way that are not tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LexNotes {
    /// The routing hint found in comments; a master hint wins over a replica hint.
    pub hint: Option<Route>,
    /// A string literal contained a backslash: its end depends on `NO_BACKSLASH_ESCAPES`.
    pub backslash_in_literal: bool,
    /// A versioned executable comment that some supported servers skip.
    pub conditional_comment: bool,
    /// A backslash in a literal came right after U+FFFD (see [`LexMode::multibyte_backslash`]).
    pub backslash_after_replacement: bool,
}

/// Executable comments with a version up to this one run on every server rwsplit supports
/// (MySQL 5.7 and later, MariaDB 10 and later, which reports 10xxxx), so they are plain SQL;
/// mysqldump's `/*!40101 SET … */` lines are of this kind.
const ALWAYS_EXECUTED_VERSION: u32 = 50700;

/// The tokenizer. Cheap to clone, which is how callers look ahead.
#[derive(Debug, Clone)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    mode: LexMode,
    /// Inside `/*! … */`: the next `*/` closes it.
    in_executable_comment: bool,
    pub notes: LexNotes,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, mode: LexMode) -> Self {
        Lexer { src, pos: 0, mode, in_executable_comment: false, notes: LexNotes::default() }
    }

    /// Where a token's text starts in the source, in bytes (a quoted literal's body starts after
    /// its opening quote). Tokens are slices of the source, so this is exact for them; for any
    /// other text the result is clamped to the source's length.
    pub fn offset_of(&self, text: &str) -> usize {
        (text.as_ptr() as usize).saturating_sub(self.src.as_ptr() as usize).min(self.src.len())
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.src.get(from..to).unwrap_or("")
    }

    fn token(&self, kind: TokenKind, text: &'a str) -> Token<'a> {
        Token { kind, text }
    }

    fn note_hint(&mut self, found: Option<Route>) {
        self.notes.hint = match (self.notes.hint, found) {
            (Some(Route::Master), _) | (_, Some(Route::Master)) => Some(Route::Master),
            (old, new) => new.or(old),
        };
    }

    /// Skips to the end of the line; `from` is where the comment's text starts.
    fn line_comment(&mut self, from: usize) {
        let end = self.src.as_bytes().get(from..).and_then(|rest| rest.iter().position(|&b| b == b'\n'));
        let end = end.map_or(self.src.len(), |n| from + n);
        let body = self.slice(from, end);
        let hint = hint_in_comment(body);
        self.note_hint(hint);
        self.pos = end;
    }

    /// Handles `/*` at `self.pos`: an ordinary comment (skipped, hint noted) or an executable
    /// one (its opening skipped; its content is then lexed as SQL).
    fn block_comment(&mut self) {
        let open = self.pos;
        let mut p = open + 2;
        let mariadb_only = self.byte(p) == Some(b'M') && self.byte(p + 1) == Some(b'!');
        if mariadb_only {
            p += 1;
        }
        if self.byte(p) == Some(b'!') && !self.in_executable_comment {
            p += 1;
            let digits_start = p;
            let mut version: u32 = 0;
            while p - digits_start < 6 {
                match self.byte(p) {
                    Some(d) if d.is_ascii_digit() => {
                        version = version * 10 + u32::from(d - b'0');
                        p += 1;
                    }
                    _ => break,
                }
            }
            let versioned = p > digits_start;
            let conditional = mariadb_only || (versioned && version > ALWAYS_EXECUTED_VERSION);
            if conditional {
                self.notes.conditional_comment = true;
            }
            if !conditional || self.mode.conditional_comments_as_sql {
                self.in_executable_comment = true;
                self.pos = p;
                return;
            }
        }
        // An ordinary comment (or a conditional one read as a comment): up to the first `*/`.
        let body_start = open + 2;
        let close = self.src.as_bytes().get(body_start..).and_then(|rest| rest.windows(2).position(|w| w == b"*/"));
        match close {
            Some(n) => {
                let body = self.slice(body_start, body_start + n);
                let hint = hint_in_comment(body);
                self.note_hint(hint);
                self.pos = body_start + n + 2;
            }
            None => {
                let body = self.slice(body_start, self.src.len());
                let hint = hint_in_comment(body);
                self.note_hint(hint);
                self.pos = self.src.len();
            }
        }
    }

    /// Reads a literal quoted by `quote` starting at `self.pos`; returns its raw body.
    fn quoted(&mut self, quote: u8) -> &'a str {
        let body_start = self.pos + 1;
        let mut p = body_start;
        let escapes = quote != b'`';
        loop {
            match self.byte(p) {
                None => {
                    self.pos = self.src.len();
                    return self.slice(body_start, self.src.len());
                }
                Some(b'\\') if escapes => {
                    self.notes.backslash_in_literal = true;
                    let after_replacement = p
                        .checked_sub(3)
                        .and_then(|from| self.src.as_bytes().get(from..p))
                        .is_some_and(|before| before == "\u{fffd}".as_bytes());
                    self.notes.backslash_after_replacement |= after_replacement;
                    let escaping = self.mode.backslash_escapes && !(after_replacement && self.mode.multibyte_backslash);
                    p += if escaping { 2 } else { 1 };
                }
                Some(b) if b == quote => {
                    if self.byte(p + 1) == Some(quote) {
                        p += 2;
                    } else {
                        self.pos = p + 1;
                        return self.slice(body_start, p);
                    }
                }
                Some(_) => p += 1,
            }
        }
    }

    fn word_end(&self, from: usize, allow_dot: bool) -> usize {
        let mut p = from;
        while let Some(b) = self.byte(p) {
            if is_word_byte(b) || (allow_dot && b == b'.') {
                p += 1;
            } else {
                break;
            }
        }
        p
    }

    fn variable(&mut self) -> Token<'a> {
        let start = self.pos;
        if self.byte(start + 1) == Some(b'@') {
            let end = self.word_end(start + 2, true);
            self.pos = end;
            return self.token(TokenKind::SystemVar, self.slice(start + 2, end));
        }
        match self.byte(start + 1) {
            Some(q @ (b'\'' | b'"' | b'`')) => {
                self.pos = start + 1;
                let name = self.quoted(q);
                self.token(TokenKind::UserVar, name)
            }
            _ => {
                let end = self.word_end(start + 1, true);
                self.pos = end;
                if end == start + 1 {
                    self.token(TokenKind::Punct(b'@'), "@")
                } else {
                    self.token(TokenKind::UserVar, self.slice(start + 1, end))
                }
            }
        }
    }

    /// The next token, or None at the end of the text. Inlined: returning the token through
    /// memory on every call cost more than lexing it.
    #[inline]
    pub fn next_token(&mut self) -> Option<Token<'a>> {
        loop {
            let b = self.byte(self.pos)?;
            let start = self.pos;
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'#' => self.line_comment(start + 1),
                // `--` starts a comment only when followed by whitespace, a control
                // character or the end; `1--1` is arithmetic.
                b'-' if self.byte(start + 1) == Some(b'-') && self.byte(start + 2).is_none_or(|c| c <= b' ') => {
                    self.line_comment(start + 2)
                }
                b'/' if self.byte(start + 1) == Some(b'*') => self.block_comment(),
                b'*' if self.in_executable_comment && self.byte(start + 1) == Some(b'/') => {
                    self.in_executable_comment = false;
                    self.pos += 2;
                }
                b'\'' => {
                    let body = self.quoted(b'\'');
                    return Some(self.token(TokenKind::SingleQuoted, body));
                }
                b'"' => {
                    let body = self.quoted(b'"');
                    return Some(self.token(TokenKind::DoubleQuoted, body));
                }
                b'`' => {
                    let body = self.quoted(b'`');
                    return Some(self.token(TokenKind::QuotedIdent, body));
                }
                b'@' => return Some(self.variable()),
                b':' if self.byte(start + 1) == Some(b'=') => {
                    self.pos += 2;
                    return Some(self.token(TokenKind::Assign, ":="));
                }
                _ if is_word_byte(b) => {
                    let end = self.word_end(start, false);
                    self.pos = end;
                    return Some(self.token(TokenKind::Word, self.slice(start, end)));
                }
                _ => {
                    self.pos += 1;
                    return Some(self.token(TokenKind::Punct(b), self.slice(start, start + 1)));
                }
            }
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;
    fn next(&mut self) -> Option<Token<'a>> {
        self.next_token()
    }
}

/// Reads a routing hint from a comment's text. Accepted, case-insensitive, after optional
/// whitespace: `rwsplit:master`, `rwsplit:replica`, and MaxScale's `maxscale route to master`
/// / `maxscale route to slave`. Anything may follow after whitespace.
pub(crate) fn hint_in_comment(body: &str) -> Option<Route> {
    let body = body.trim_start();
    let words = |prefix: &str| -> Option<&str> {
        let head = body.get(..prefix.len())?;
        if !head.eq_ignore_ascii_case(prefix) {
            return None;
        }
        let rest = body.get(prefix.len()..)?;
        if rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace()) {
            Some(rest)
        } else {
            None
        }
    };
    if words("rwsplit:master").is_some() {
        return Some(Route::Master);
    }
    if words("rwsplit:replica").is_some() {
        return Some(Route::Replica);
    }
    let lower = body.get(..body.len().min(64)).unwrap_or("").to_ascii_lowercase();
    let mut it = lower.split_whitespace();
    if (it.next(), it.next(), it.next()) == (Some("maxscale"), Some("route"), Some("to")) {
        return match it.next() {
            Some("master") => Some(Route::Master),
            Some("slave") | Some("replica") => Some(Route::Replica),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(TokenKind, String)> {
        Lexer::new(sql, LexMode::default()).map(|t| (t.kind, t.text.to_string())).collect()
    }

    fn words(sql: &str) -> Vec<String> {
        Lexer::new(sql, LexMode::default()).map(|t| t.text.to_string()).collect()
    }

    #[test]
    fn skips_comments_and_keeps_literals_whole() {
        assert_eq!(words("SELECT /* x */ a -- y\n, b # z\n FROM t"), ["SELECT", "a", ",", "b", "FROM", "t"]);
        assert_eq!(
            kinds("'it''s' \"a\\\"b\" `c``d`"),
            [
                (TokenKind::SingleQuoted, "it''s".into()),
                (TokenKind::DoubleQuoted, "a\\\"b".into()),
                (TokenKind::QuotedIdent, "c``d".into())
            ]
        );
    }

    #[test]
    fn double_dash_needs_a_space() {
        assert_eq!(words("SELECT 1--1"), ["SELECT", "1", "-", "-", "1"]);
        assert_eq!(words("SELECT 1 --"), ["SELECT", "1"]);
        assert_eq!(words("SELECT 1 --\tx"), ["SELECT", "1"]);
    }

    #[test]
    fn executable_comments_are_sql() {
        assert_eq!(words("/*!40101 SET NAMES utf8 */;"), ["SET", "NAMES", "utf8", ";"]);
        assert_eq!(words("/*! STRAIGHT_JOIN */ x"), ["STRAIGHT_JOIN", "x"]);
        let mut lx = Lexer::new("/*!80013 SELECT */ 1", LexMode::default());
        assert_eq!(lx.by_ref().count(), 2);
        assert!(lx.notes.conditional_comment);
        let skip = LexMode { conditional_comments_as_sql: false, ..LexMode::default() };
        let got: Vec<_> = Lexer::new("/*!80013 SELECT */ 1 /*M!100100 x */", skip).map(|t| t.text).collect();
        assert_eq!(got, ["1"]);
    }

    #[test]
    fn variables_and_assignment() {
        assert_eq!(
            kinds("@a := @@session.autocommit, @'q x'"),
            [
                (TokenKind::UserVar, "a".into()),
                (TokenKind::Assign, ":=".into()),
                (TokenKind::SystemVar, "session.autocommit".into()),
                (TokenKind::Punct(b','), ",".into()),
                (TokenKind::UserVar, "q x".into())
            ]
        );
    }

    #[test]
    fn backslash_mode_changes_where_a_string_ends() {
        let sql = r"SELECT 'a\'; DELETE FROM t; -- '";
        let on: Vec<_> = Lexer::new(sql, LexMode::default()).map(|t| t.text).collect();
        assert_eq!(on.len(), 2);
        let off = LexMode { backslash_escapes: false, ..LexMode::default() };
        let off: Vec<_> = Lexer::new(sql, off).map(|t| t.text).collect();
        assert!(off.contains(&"DELETE"));
    }

    #[test]
    fn hints() {
        let hint = |sql| {
            let mut lx = Lexer::new(sql, LexMode::default());
            lx.by_ref().for_each(drop);
            lx.notes.hint
        };
        assert_eq!(hint("/* rwsplit:master */ SELECT 1"), Some(Route::Master));
        assert_eq!(hint("SELECT 1 -- RWSPLIT:REPLICA"), Some(Route::Replica));
        assert_eq!(hint("SELECT 1 # rwsplit:replica please"), Some(Route::Replica));
        assert_eq!(hint("SELECT 1 -- maxscale route to slave"), Some(Route::Replica));
        assert_eq!(hint("SELECT 1 /* rwsplit:replicas */"), None);
        assert_eq!(hint("SELECT '/* rwsplit:master */'"), None);
        assert_eq!(hint("/* rwsplit:replica */ SELECT 1 /* rwsplit:master */"), Some(Route::Master));
    }

    #[test]
    fn unterminated_input_ends_quietly() {
        for sql in ["'abc", "\"abc\\", "`abc", "/* abc", "/*! abc", "@'x", "SELECT 'a\\", "\\", "@", "@@"] {
            let _ = Lexer::new(sql, LexMode::default()).count();
        }
    }
}

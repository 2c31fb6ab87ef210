//! Helpers on the lexer's words: upper-casing a word for keyword matching without
//! allocating, and the name an identifier token denotes.

use super::lexer::{Token, TokenKind};

/// Upper-cases an ASCII word into `buf`; None when it is too long to be a keyword.
pub(crate) fn upper<'b>(word: &str, buf: &'b mut [u8; 48]) -> Option<&'b str> {
    let src = word.as_bytes();
    let dst = buf.get_mut(..src.len())?;
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_ascii_uppercase();
    }
    std::str::from_utf8(dst).ok()
}

/// An identifier token's name: words as written, quoted ones without their quotes and with
/// doubled quotes undone.
pub(crate) fn identifier(t: &Token<'_>) -> Option<String> {
    match t.kind {
        TokenKind::Word => Some(t.text.to_string()),
        TokenKind::QuotedIdent => Some(t.text.replace("``", "`")),
        TokenKind::DoubleQuoted => Some(t.text.replace("\"\"", "\"")),
        _ => None,
    }
}

/// Whether `text` contains `word` (ASCII, any case) anywhere: a cheap test before a statement
/// is lexed for a rare word (a statement without the letters cannot contain the call).
/// It runs on every statement, three times: the word's first letter is looked for with
/// `memchr2` (both cases, many bytes at a time) and the rest compared only there.
pub(crate) fn mentions(text: &str, word: &str) -> bool {
    let (t, w) = (text.as_bytes(), word.as_bytes());
    let Some((&first, rest)) = w.split_first() else { return false };
    memchr::memchr2_iter(first.to_ascii_lowercase(), first.to_ascii_uppercase(), t)
        .any(|i| t.get(i + 1..i + w.len()).is_some_and(|s| s.eq_ignore_ascii_case(rest)))
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn mentions_ignores_case_and_needs_the_whole_word_text() {
        assert!(mentions("select Connection_Id()", "connection_id"));
        assert!(mentions("SHOW FULL PROCESSLIST", "processlist"));
        assert!(!mentions("select connection_i()", "connection_id"));
        assert!(!mentions("", "processlist"));
        assert!(!mentions("processlist", ""));
        assert!(mentions("é processlist é", "processlist"));
        assert!(mentions("x KILL", "kill"), "at the very end");
        assert!(!mentions("x KIL", "kill"), "cut short by the end");
        assert!(mentions("kkill", "kill"), "after a false start");
        assert!(mentions("/*!KILL*/ 5", "kill"));
    }
}

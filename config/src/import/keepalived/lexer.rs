//! keepalived's configuration syntax: the text is split into tokens (words, braces, line ends;
//! comments `#` and `!`, quoted strings, braces attached to words or not), then the tokens into
//! a tree of statements, each with the words it is made of, the line it starts on and its
//! block when it has one. What the statements mean is the importer's business (`super`).

/// Reads `text` into its top-level statements; a syntax error comes with its line.
pub(super) fn statements(text: &str) -> Result<Vec<Node>, (usize, String)> {
    parse(&lex(text)?)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Newline,
}

/// Splits `text` into tokens with their lines. `#` and `!` start a comment where a token could
/// start; a quoted string is one word (no escapes, as in keepalived).
fn lex(text: &str) -> Result<Vec<(Tok, usize)>, (usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let mut chars = line.char_indices().peekable();
        while let Some(&(i, c)) = chars.peek() {
            match c {
                c if c.is_whitespace() => {
                    chars.next();
                }
                '#' | '!' => break,
                '{' => {
                    chars.next();
                    out.push((Tok::Open, line_no));
                }
                '}' => {
                    chars.next();
                    out.push((Tok::Close, line_no));
                }
                '"' => {
                    chars.next();
                    let rest = line.get(i + 1..).unwrap_or("");
                    let Some(end) = rest.find('"') else {
                        return Err((line_no, "unterminated quoted string".into()));
                    };
                    out.push((Tok::Word(rest[..end].to_string()), line_no));
                    while chars.peek().is_some_and(|&(j, _)| j <= i + 1 + end) {
                        chars.next();
                    }
                }
                _ => {
                    let mut word = String::new();
                    while let Some(&(_, c)) = chars.peek() {
                        if c.is_whitespace() || c == '{' || c == '}' {
                            break;
                        }
                        word.push(c);
                        chars.next();
                    }
                    out.push((Tok::Word(word), line_no));
                }
            }
        }
        out.push((Tok::Newline, line_no));
    }
    Ok(out)
}

/// One statement: its words, the line it starts on, and its block if it has one.
#[derive(Debug, Clone, Default)]
pub(super) struct Node {
    pub(super) line: usize,
    pub(super) words: Vec<String>,
    pub(super) block: Option<Vec<Node>>,
}

impl Node {
    pub(super) fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    /// The statement's words without the keyword.
    pub(super) fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }

    pub(super) fn arg(&self) -> Option<&str> {
        self.words.get(1).map(String::as_str)
    }

    /// The words, for messages.
    pub(super) fn head(&self) -> String {
        self.words.join(" ")
    }

    pub(super) fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// Builds the statement tree; a `{` opens the block of the statement before it (on the same
/// line or the previous one).
fn parse(tokens: &[(Tok, usize)]) -> Result<Vec<Node>, (usize, String)> {
    let mut at = 0;
    let nodes = parse_block(tokens, &mut at, None)?;
    Ok(nodes)
}

fn parse_block(tokens: &[(Tok, usize)], at: &mut usize, opened: Option<usize>) -> Result<Vec<Node>, (usize, String)> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut cur = Node::default();
    let flush = |cur: &mut Node, nodes: &mut Vec<Node>| {
        if !cur.words.is_empty() {
            nodes.push(std::mem::take(cur));
        }
    };
    while let Some((tok, line)) = tokens.get(*at) {
        *at += 1;
        match tok {
            Tok::Word(w) => {
                if cur.words.is_empty() {
                    cur.line = *line;
                }
                cur.words.push(w.clone());
            }
            Tok::Newline => flush(&mut cur, &mut nodes),
            Tok::Open => {
                let children = parse_block(tokens, at, Some(*line))?;
                if cur.words.is_empty() {
                    match nodes.last_mut() {
                        Some(prev) if prev.block.is_none() => prev.block = Some(children),
                        _ => return Err((*line, "'{' without a keyword before it".into())),
                    }
                } else {
                    cur.block = Some(children);
                    flush(&mut cur, &mut nodes);
                }
            }
            Tok::Close => {
                flush(&mut cur, &mut nodes);
                return match opened {
                    Some(_) => Ok(nodes),
                    None => Err((*line, "'}' without a matching '{'".into())),
                };
            }
        }
    }
    flush(&mut cur, &mut nodes);
    match opened {
        Some(line) => Err((line, "'{' is never closed".into())),
        None => Ok(nodes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(nodes: &[Node]) -> Vec<(usize, String)> {
        nodes.iter().map(|n| (n.line, n.head())).collect()
    }

    #[test]
    fn comments_quotes_and_braces() {
        let text = "# c\na \"x # y\" ! z\nb{ c 1 }\nd\n{\n e\n}\n";
        let nodes = statements(text).unwrap();
        assert_eq!(words(&nodes), [(2, "a x # y".to_string()), (3, "b".into()), (4, "d".into())]);
        assert_eq!(words(nodes[1].children()), [(3, "c 1".to_string())]);
        assert_eq!(words(nodes[2].children()), [(6, "e".to_string())]);
        assert_eq!(nodes[0].args(), ["x # y"]);
    }

    #[test]
    fn unbalanced_braces_name_their_line() {
        assert_eq!(statements("a {\n b\n").unwrap_err(), (1, "'{' is never closed".to_string()));
        assert_eq!(statements("a\n}\n").unwrap_err().0, 2);
        assert_eq!(statements("\"x\n").unwrap_err(), (1, "unterminated quoted string".to_string()));
    }
}

//! Maps a dotted config path (`servers[1].address`) back to the line it stands on, so that
//! errors found after deserialization (in `validate()`) still name a line. Uses toml's spanned
//! document; when the key itself is absent (a required key left out) the line of the nearest
//! enclosing table is given instead.

use toml::de::{DeTable, DeValue};

/// One step of a dotted path.
#[derive(Debug, PartialEq, Eq)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(i) = rest[1..close].parse() {
                out.push(Step::Index(i));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

/// 1-based line of byte `offset` in `src`.
pub(crate) fn line_at(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The line of `path` in `src`, or of its nearest ancestor that exists.
pub(crate) fn line_of(src: &str, path: &str) -> Option<usize> {
    let doc = DeTable::parse(src).ok()?;
    let mut best: Option<usize> = None;
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for step in steps(path) {
        match step {
            Step::Key(k) => {
                let t = match (table, value) {
                    (Some(t), None) => t,
                    (_, Some(DeValue::Table(t))) => t,
                    _ => break,
                };
                let Some((key, v)) = t.get_key_value(k) else { break };
                best = Some(key.span().start);
                value = Some(v.get_ref());
                table = None;
            }
            Step::Index(i) => {
                let Some(DeValue::Array(a)) = value else { break };
                let Some(item) = a.get(i) else { break };
                best = Some(item.span().start);
                value = Some(item.get_ref());
            }
        }
    }
    best.map(|off| line_at(src, off))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str =
        "[proxy]\nlisten = \"x\"\n\n[[servers]]\nname = \"a\"\n\n[[servers]]\nname = \"b\"\naddress = \"bad\"\n";

    #[test]
    fn finds_nested_keys_and_array_items() {
        assert_eq!(line_of(SRC, "proxy.listen"), Some(2));
        assert_eq!(line_of(SRC, "servers[1].address"), Some(9));
        assert_eq!(line_of(SRC, "servers[0].name"), Some(5));
    }

    #[test]
    fn missing_key_falls_back_to_its_table() {
        // servers[0] has no address: point at the table that should hold it.
        let line = line_of(SRC, "servers[0].address").unwrap();
        assert!((4..=5).contains(&line), "got {line}");
        assert_eq!(line_of(SRC, "nothing.here"), None);
    }

    #[test]
    fn path_steps() {
        assert_eq!(steps("a[2].b"), vec![Step::Key("a"), Step::Index(2), Step::Key("b")]);
    }
}

//! The TOML writer every importer shares, built on `toml_edit`: sections are assembled as
//! [`Section`]s (a table with the comment lines that go above its header and above any of its
//! keys) and added to a [`TomlOut`] in the order they should appear. `toml_edit` does the
//! quoting and escaping of keys and values, so an importer only decides what to write and
//! which comments explain where each value came from.
//!
//! Comment text comes from the imported files (names, values): every control character in it
//! (a newline above all) is written as a space, so a comment can never end early and turn the
//! rest of its text into TOML.

use toml_edit::{Array, ArrayOfTables, Decor, DocumentMut, InlineTable, Item, Key, Table, Value};

/// A TOML document being written: a header comment, then sections in the order added.
#[derive(Debug, Default)]
pub(crate) struct TomlOut {
    doc: DocumentMut,
}

impl TomlOut {
    /// A document that starts with `header` as comment lines.
    pub(crate) fn new<S: AsRef<str>>(header: &[S]) -> Self {
        let mut doc = DocumentMut::new();
        doc.decor_mut().set_prefix(comment_block(header));
        TomlOut { doc }
    }

    /// Adds `section` as `[name]`; a second call with the same name replaces the first.
    pub(crate) fn table(&mut self, name: &str, section: Section) {
        self.doc.insert(name, Item::Table(section.table));
    }

    /// Adds `section` as the next `[[name]]` entry.
    pub(crate) fn array_entry(&mut self, name: &str, section: Section) {
        push_entry(self.doc.as_table_mut(), name, section.table);
    }

    /// The document as text.
    pub(crate) fn finish(self) -> String {
        self.doc.to_string()
    }
}

/// One table (`[name]` or a `[[name]]` entry) being filled: keys in the order set.
#[derive(Debug)]
pub(crate) struct Section {
    table: Table,
}

impl Section {
    /// An empty table with `comment` on the lines above its header, after one blank line.
    pub(crate) fn new<S: AsRef<str>>(comment: &[S]) -> Self {
        let mut table = Table::new();
        table.decor_mut().set_prefix(format!("\n{}", comment_block(comment)));
        Section { table }
    }

    /// Sets `key = value`.
    pub(crate) fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.table.insert(key, Item::Value(value.into()));
        self
    }

    /// Sets `key = value` with `comment` on the lines above it (none when `comment` is empty).
    pub(crate) fn set_noted<S: AsRef<str>>(&mut self, key: &str, value: impl Into<Value>, comment: &[S]) -> &mut Self {
        // The suffix is the space before `=`, which an explicit decor must give itself.
        let key = Key::new(key).with_leaf_decor(Decor::new(comment_block(comment), " "));
        self.table.insert_formatted(&key, Item::Value(value.into()));
        self
    }

    /// Adds `child` as the next `[[parent.key]]` entry under this table.
    pub(crate) fn array_entry(&mut self, key: &str, child: Section) -> &mut Self {
        push_entry(&mut self.table, key, child.table);
        self
    }
}

/// `[a, b, …]` of strings.
pub(crate) fn strings<I, S>(items: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    Value::Array(items.into_iter().map(|s| s.as_ref().to_string()).collect::<Array>())
}

/// `{ k = v, … }` with the pairs in the order given.
pub(crate) fn inline<I, V>(pairs: I) -> Value
where
    I: IntoIterator<Item = (&'static str, V)>,
    V: Into<Value>,
{
    let mut table = InlineTable::new();
    for (k, v) in pairs {
        table.insert(k, v.into());
    }
    table.fmt();
    Value::InlineTable(table)
}

/// An unsigned number as a TOML integer (TOML integers are i64: larger values are written as
/// i64::MAX, which every range check in the schema refuses anyway).
pub(crate) fn int(n: impl Into<u64>) -> Value {
    Value::from(i64::try_from(n.into()).unwrap_or(i64::MAX))
}

/// Appends `entry` to the array of tables `key` of `table`, creating it when missing (or
/// replacing whatever else was there under that key).
fn push_entry(table: &mut Table, key: &str, entry: Table) {
    match table.get_mut(key) {
        Some(Item::ArrayOfTables(array)) => array.push(entry),
        _ => {
            let mut array = ArrayOfTables::new();
            array.push(entry);
            table.insert(key, Item::ArrayOfTables(array));
        }
    }
}

/// `# line` for each line, each ending with a newline; control characters become spaces.
fn comment_block<S: AsRef<str>>(lines: &[S]) -> String {
    let mut out = String::new();
    for line in lines {
        let text: String = line.as_ref().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let text = text.trim_end();
        if text.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let mut out = TomlOut::new(&["Imported by a test."]);
        let mut proxy = Section::new(&["the listener"]);
        proxy.set_noted("listen", "0.0.0.0:8066", &["from a.xml:11"]);
        out.table("proxy", proxy);
        for name in ["a", "b"] {
            let mut s = Section::new(&[format!("server {name}")]);
            s.set("name", name).set("weight", int(2u32)).set("ratio", 0.1).set("on", true);
            let mut child = Section::new::<&str>(&[]);
            child.set("tags", strings(["x", "y"])).set("auth", inline([("type", "PASS"), ("pass", "p")]));
            s.array_entry("child", child);
            out.array_entry("servers", s);
        }
        out.finish()
    }

    #[test]
    fn sections_keep_their_order_and_comments() {
        let expected = "# Imported by a test.\n\
                        \n# the listener\n[proxy]\n# from a.xml:11\nlisten = \"0.0.0.0:8066\"\n\
                        \n# server a\n[[servers]]\nname = \"a\"\nweight = 2\nratio = 0.1\non = true\n\
                        \n[[servers.child]]\ntags = [\"x\", \"y\"]\nauth = { type = \"PASS\", pass = \"p\" }\n\
                        \n# server b\n[[servers]]\nname = \"b\"\nweight = 2\nratio = 0.1\non = true\n\
                        \n[[servers.child]]\ntags = [\"x\", \"y\"]\nauth = { type = \"PASS\", pass = \"p\" }\n";
        assert_eq!(sample(), expected);
        let back: toml::Table = toml::from_str(&sample()).unwrap();
        assert_eq!(back["servers"][1]["child"][0]["auth"]["pass"].as_str(), Some("p"));
    }

    #[test]
    fn hostile_strings_round_trip_and_comments_stay_comments() {
        let nasty = "a\"b\\c\u{1}'''\n[x]\ny = 1";
        let mut out = TomlOut::new(&[format!("header {nasty}")]);
        let mut s = Section::new(&[format!("section {nasty}")]);
        s.set_noted("v", nasty, &[nasty]);
        s.set("list", strings([nasty]));
        out.table("t", s);
        let text = out.finish();
        let back: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back["t"]["v"].as_str(), Some(nasty));
        assert_eq!(back["t"]["list"][0].as_str(), Some(nasty));
        // Only the table `t` exists: no comment text became TOML.
        assert_eq!(back.keys().collect::<Vec<_>>(), ["t"], "{text}");
        assert_eq!(back["t"].as_table().map(|t| t.len()), Some(2), "{text}");
    }

    #[test]
    fn large_numbers_saturate() {
        assert_eq!(int(u64::MAX).as_integer(), Some(i64::MAX));
        assert_eq!(int(5u32).as_integer(), Some(5));
    }
}

//! The temporary-table rule: a read that names a TEMPORARY table the session created must run
//! on the master connection that holds the table (replicas do not have it).
//!
//! Two steps, so that sessions without temporary tables (nearly all) pay nothing and the
//! others pay little:
//! 1. [`IdentFilter`]: while scanning, every identifier of the text (words, backquoted names,
//!    double-quoted strings, which are identifiers under ANSI_QUOTES) is hashed, lower-cased,
//!    into a 256-bit Bloom filter kept in the [`Statement`](super::Statement). Any table
//!    reference is such an identifier, so when none of the session's temporary table names is
//!    in the filter, the statement cannot read one. No false negatives; false positives go to
//!    step 2.
//! 2. [`reads_temp_table`]: the text is parsed with sqlparser (MySQL dialect) and the table
//!    references of the query are collected (FROM lists, joins, derived tables, subqueries in
//!    the select list, WHERE and HAVING, CTEs, `TABLE t`, DESCRIBE t). A check makes this
//!    safe where the walk below does not go: the number of query blocks visited must equal
//!    the number of SELECT/TABLE keywords in the text, otherwise some subquery was missed and
//!    the answer is "yes". When sqlparser cannot parse the text, the lexer reads the names
//!    after FROM, JOIN, TABLE, …; if that is not conclusive either, the answer is "yes".
//!
//! Names compare as the session stores them (lower-cased, `t` or `db.t`): `db.t` in the text
//! matches `t` (the session's schema is not known here) and `t` matches `db.t`; only two
//! different explicit schemas do not match.

use super::lexer::{LexMode, Lexer, Token, TokenKind};
use super::words::{identifier, upper};
use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, InTarget, ObjectName, ObjectNamePart, Query, Select,
    SelectItem, SetExpr, Statement as Ast, TableFactor, TableWithJoins,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use std::collections::HashSet;

/// A 256-bit Bloom filter of lower-cased identifiers (two bits per name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub(crate) struct IdentFilter([u64; 4]);

/// Hash of the lower-cased name; the second of a doubled `quote` is skipped, so a quoted
/// body hashes like the name it denotes. ASCII names (nearly all) are folded with `| 0x20`,
/// eight bytes at a time: that maps both cases of a letter to one value, and since the
/// session's names go through the same function, mapping a few other bytes together only adds
/// false positives, which step 2 removes.
fn ident_hash(name: &str, quote: Option<u8>) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let plain = name.is_ascii() && quote.is_none_or(|q| !name.as_bytes().contains(&q));
    let mut h: u64 = name.len() as u64;
    let mut mix = |chunk: &[u8]| {
        let mut word = [0u8; 8];
        for (w, b) in word.iter_mut().zip(chunk) {
            *w = b | 0x20;
        }
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K).rotate_left(29);
    };
    if plain {
        name.as_bytes().chunks(8).for_each(&mut mix);
        return h;
    }
    // Quoted names with doubled quotes, non-ASCII names: undo the doubling and lower-case
    // with Unicode rules, then hash the result the same way.
    let quote = quote.map(char::from);
    let mut folded = String::with_capacity(name.len());
    let mut after_quote = false;
    for c in name.chars() {
        if Some(c) == quote {
            after_quote = !after_quote;
            if !after_quote {
                continue;
            }
        } else {
            after_quote = false;
        }
        folded.extend(c.to_lowercase());
    }
    if folded.is_ascii() && quote.is_none_or(|q| !folded.contains(q)) {
        return ident_hash(&folded, None);
    }
    let mut h: u64 = folded.len() as u64;
    for chunk in folded.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word.iter_mut().zip(chunk).for_each(|(w, b)| *w = *b);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K).rotate_left(29);
    }
    h
}

impl IdentFilter {
    fn bits(h: u64) -> [(usize, u64); 2] {
        let a = (h >> 56) as usize;
        let b = ((h >> 40) & 0xff) as usize;
        [(a / 64, 1u64 << (a % 64)), (b / 64, 1u64 << (b % 64))]
    }

    pub fn insert(&mut self, name: &str, quote: Option<u8>) {
        for (word, bit) in Self::bits(ident_hash(name, quote)) {
            if let Some(w) = self.0.get_mut(word) {
                *w |= bit;
            }
        }
    }

    fn contains(&self, name: &str) -> bool {
        Self::bits(ident_hash(name, None)).iter().all(|&(word, bit)| self.0.get(word).is_some_and(|w| w & bit != 0))
    }

    /// Whether the text may name the temporary table stored as `entry` (`t` or `db.t`).
    pub fn may_name(&self, entry: &str) -> bool {
        let table = entry.rsplit('.').next().unwrap_or(entry);
        self.contains(table) || self.contains(entry)
    }

    pub fn union(&mut self, other: &IdentFilter) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }
}

/// A table reference: optional schema and table, lower-cased.
type TableRef = (Option<String>, String);

fn names_match((schema, table): &TableRef, entry: &str) -> bool {
    if entry == table {
        return true;
    }
    match entry.rsplit_once('.') {
        Some((entry_schema, entry_table)) => {
            entry_table == table && schema.as_deref().is_none_or(|s| s == entry_schema)
        }
        None => entry == table,
    }
}

/// Does this read name one of `temp_tables`? Conservative: "true" when unsure.
pub(crate) fn reads_temp_table(sql: &str, temp_tables: &HashSet<String>) -> bool {
    // sqlparser is a dependency reading client text: a panic in it must not take the
    // session down, and counts as "unsure".
    let parsed = std::panic::catch_unwind(|| Parser::parse_sql(&MySqlDialect {}, sql));
    let refs = match parsed {
        Ok(Ok(statements)) => match ast_table_refs(&statements, sql) {
            Some(refs) => refs,
            None => return true,
        },
        Ok(Err(_)) => match lexer_table_refs(sql) {
            Some(refs) => refs,
            None => return true,
        },
        Err(_) => return true,
    };
    refs.iter().any(|r| temp_tables.iter().any(|entry| names_match(r, entry)))
}

/// Table references of a parsed read, or None when the walk cannot vouch for completeness.
fn ast_table_refs(statements: &[Ast], sql: &str) -> Option<Vec<TableRef>> {
    let [statement] = statements else { return None };
    let mut walk = Walk::default();
    match statement {
        Ast::Query(q) => walk.query(q),
        Ast::Explain { statement, .. } => match statement.as_ref() {
            Ast::Query(q) => walk.query(q),
            _ => return None,
        },
        Ast::ExplainTable { table_name, .. } => walk.name(table_name),
        _ => return None,
    }
    if walk.incomplete || walk.blocks < query_blocks_in_text(sql) {
        return None;
    }
    Some(walk.refs)
}

/// SELECT and TABLE keywords in the text: each starts a query block that can name tables.
fn query_blocks_in_text(sql: &str) -> usize {
    Lexer::new(sql, LexMode::default()).filter(|t| t.is_word("SELECT") || t.is_word("TABLE")).count()
}

#[derive(Default)]
struct Walk {
    refs: Vec<TableRef>,
    /// Query blocks (SELECT, TABLE) visited.
    blocks: usize,
    /// Something was met whose table references this walk does not know how to find.
    incomplete: bool,
}

fn ident_part(part: &ObjectNamePart) -> Option<String> {
    match part {
        ObjectNamePart::Identifier(ident) => Some(ident.value.to_lowercase()),
        _ => None,
    }
}

impl Walk {
    fn name(&mut self, name: &ObjectName) {
        let mut parts = name.0.iter().rev();
        match parts.next().and_then(ident_part) {
            Some(table) => {
                let schema = parts.next().and_then(ident_part);
                self.refs.push((schema, table));
            }
            None => self.incomplete = true,
        }
    }

    fn query(&mut self, q: &Query) {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.query(&cte.query);
            }
        }
        self.set_expr(&q.body);
    }

    fn set_expr(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Select(select) => {
                self.blocks += 1;
                self.select(select);
            }
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left);
                self.set_expr(right);
            }
            SetExpr::Values(values) => {
                for row in &values.rows {
                    row.content.iter().for_each(|e| self.expr(e));
                }
            }
            SetExpr::Table(table) => {
                self.blocks += 1;
                match &table.table_name {
                    Some(name) => self
                        .refs
                        .push((table.schema_name.as_ref().map(|s| s.value.to_lowercase()), name.value.to_lowercase())),
                    None => self.incomplete = true,
                }
            }
            _ => self.incomplete = true,
        }
    }

    fn select(&mut self, select: &Select) {
        for from in &select.from {
            self.table_with_joins(from);
        }
        for item in &select.projection {
            match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => self.expr(e),
                _ => {}
            }
        }
        if let Some(e) = &select.selection {
            self.expr(e);
        }
        if let Some(e) = &select.having {
            self.expr(e);
        }
    }

    fn table_with_joins(&mut self, twj: &TableWithJoins) {
        self.table_factor(&twj.relation);
        for join in &twj.joins {
            self.table_factor(&join.relation);
        }
    }

    fn table_factor(&mut self, factor: &TableFactor) {
        match factor {
            TableFactor::Table { name, .. } => self.name(name),
            TableFactor::Derived { subquery, .. } => self.query(subquery),
            TableFactor::NestedJoin { table_with_joins, .. } => self.table_with_joins(table_with_joins),
            TableFactor::JsonTable { json_expr, .. } => self.expr(json_expr),
            _ => self.incomplete = true,
        }
    }

    /// Subqueries inside expressions; any missed here are caught by the block count.
    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Subquery(q) | Expr::Exists { subquery: q, .. } => self.query(q),
            Expr::In { expr, target, .. } => {
                self.expr(expr);
                match target {
                    InTarget::List(list) => list.iter().for_each(|e| self.expr(e)),
                    InTarget::Subquery(q) => self.query(q),
                    _ => self.incomplete = true,
                }
            }
            Expr::BinaryOp { left, right, .. } => {
                self.expr(left);
                self.expr(right);
            }
            Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::IsNull(expr) | Expr::IsNotNull(expr) => {
                self.expr(expr)
            }
            Expr::Between { expr, low, high, .. } => {
                self.expr(expr);
                self.expr(low);
                self.expr(high);
            }
            Expr::Case { operand, conditions, else_result, .. } => {
                operand.iter().for_each(|e| self.expr(e));
                for when in conditions {
                    self.expr(&when.condition);
                    self.expr(&when.result);
                }
                else_result.iter().for_each(|e| self.expr(e));
            }
            Expr::Function(f) => match &f.args {
                FunctionArguments::List(list) => {
                    for arg in &list.args {
                        let arg = match arg {
                            FunctionArg::Named { arg, .. } | FunctionArg::ExprNamed { arg, .. } => arg,
                            FunctionArg::Unnamed(arg) => arg,
                        };
                        if let FunctionArgExpr::Expr(e) = arg {
                            self.expr(e);
                        }
                    }
                }
                FunctionArguments::Subquery(q) => self.query(q),
                FunctionArguments::None => {}
            },
            _ => {}
        }
    }
}

/// The lexer's reading of table references, for text sqlparser cannot parse: the names after
/// FROM (and the commas of its list), JOIN, STRAIGHT_JOIN, TABLE, DESCRIBE/DESC/EXPLAIN, and
/// SHOW … FROM/IN. None when the text is not clear enough (unbalanced parentheses, literals
/// read differently under other server settings).
fn lexer_table_refs(sql: &str) -> Option<Vec<TableRef>> {
    let mut lx = Lexer::new(sql, LexMode::default());
    let tokens: Vec<Token<'_>> = lx.by_ref().collect();
    if lx.notes.backslash_in_literal || lx.notes.conditional_comment {
        return None;
    }
    let mut refs = Vec::new();
    let mut depth = 0u32;
    // Paren depths at which a FROM list is being read.
    let mut from_lists: Vec<u32> = Vec::new();
    let mut expecting = false;
    let mut i = 0usize;
    while let Some(t) = tokens.get(i) {
        i += 1;
        match t.kind {
            TokenKind::Punct(b'(') => {
                depth += 1;
                if expecting {
                    // `FROM (t1, t2)` or `FROM (SELECT …)`: a list inside, names keep coming.
                    from_lists.push(depth);
                }
                continue;
            }
            TokenKind::Punct(b')') => {
                depth = depth.checked_sub(1)?;
                from_lists.retain(|&d| d <= depth);
                expecting = false;
                continue;
            }
            TokenKind::Punct(b',') if from_lists.last() == Some(&depth) => {
                expecting = true;
                continue;
            }
            _ => {}
        }
        if expecting
            && matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent | TokenKind::DoubleQuoted)
            && !t.is_word("SELECT")
            && !t.is_word("WITH")
        {
            let first = unquoted_lower(t);
            if tokens.get(i).is_some_and(|d| d.is_punct(b'.')) {
                let second = tokens.get(i + 1).map(unquoted_lower);
                i += 2;
                refs.push((Some(first), second.unwrap_or_default()));
            } else {
                refs.push((None, first));
            }
            expecting = false;
            continue;
        }
        expecting = false;
        if t.kind == TokenKind::Word {
            let mut buf = [0u8; 48];
            match upper(t.text, &mut buf) {
                Some("FROM") => {
                    expecting = true;
                    from_lists.push(depth);
                }
                Some("JOIN" | "STRAIGHT_JOIN" | "TABLE" | "DESCRIBE" | "DESC" | "EXPLAIN" | "IN") => expecting = true,
                Some(
                    "WHERE" | "GROUP" | "HAVING" | "ORDER" | "LIMIT" | "UNION" | "WINDOW" | "FOR" | "LOCK" | "INTO",
                ) if from_lists.last() == Some(&depth) => {
                    from_lists.pop();
                }
                _ => {}
            }
        }
    }
    if depth != 0 {
        return None;
    }
    Some(refs)
}

fn unquoted_lower(t: &Token<'_>) -> String {
    identifier(t).unwrap_or_default().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filter_has_no_false_negatives() {
        let mut f = IdentFilter::default();
        f.insert("Orders", None);
        f.insert("my``tmp", Some(b'`'));
        f.insert("ÄBC", None);
        assert!(f.may_name("orders"));
        assert!(f.may_name("db.orders"));
        assert!(f.may_name("my`tmp"));
        assert!(f.may_name("äbc"));
    }

    #[test]
    fn parsed_references() {
        let t = temp(&["tmp", "db2.t2"]);
        assert!(reads_temp_table("SELECT * FROM tmp", &t));
        assert!(reads_temp_table("SELECT * FROM db.tmp", &t));
        assert!(reads_temp_table("SELECT * FROM users u JOIN t2 ON u.id = t2.id", &t));
        assert!(!reads_temp_table("SELECT * FROM db1.t2", &t));
        assert!(reads_temp_table("SELECT * FROM users WHERE id IN (SELECT id FROM tmp)", &t));
        assert!(reads_temp_table("SELECT (SELECT COUNT(*) FROM tmp) AS n", &t));
        assert!(reads_temp_table("WITH c AS (SELECT * FROM tmp) SELECT * FROM c", &t));
        assert!(reads_temp_table("SELECT * FROM (SELECT * FROM `TMP`) x", &t));
        assert!(!reads_temp_table("SELECT tmp.a FROM users tmp", &t));
        assert!(!reads_temp_table("SELECT a AS tmp FROM users", &t));
        assert!(reads_temp_table("DESCRIBE tmp", &t));
    }

    #[test]
    fn unparsed_text_falls_back_to_the_lexer() {
        let t = temp(&["tmp"]);
        // LOCK IN SHARE MODE and the MariaDB-only syntax below are not in sqlparser's grammar.
        assert!(reads_temp_table("SELECT * FROM a, tmp LOCK IN SHARE MODE", &t));
        assert!(!reads_temp_table("SELECT tmp FROM a LOCK IN SHARE MODE", &t));
        assert!(reads_temp_table("SHOW COLUMNS FROM tmp", &t));
        assert!(reads_temp_table("SELECT * FROM (a JOIN (b, tmp)) WHERE ((", &t));
    }
}

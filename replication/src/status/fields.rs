//! [`Fields`]: one result row (or a `Variable_name`/`Value` listing) as a map from column name to
//! value, looked up case-insensitively under any of several names.

use std::collections::HashMap;

/// Column name → value (`None` for SQL NULL). Keys are stored lower-cased: servers and
/// versions disagree on the case of some names (`Rpl_semi_sync_master_status` vs. the
/// `rpl_semi_sync_…` variables), and nothing in the monitor depends on case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(HashMap<String, Option<String>>);

impl Fields {
    /// From (name, value) pairs; a later duplicate name replaces an earlier one.
    pub fn from_pairs<N: AsRef<str>, V: Into<Option<String>>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        Fields(pairs.into_iter().map(|(n, v)| (n.as_ref().to_ascii_lowercase(), v.into())).collect())
    }

    /// From a `SHOW STATUS` / `SHOW VARIABLES` listing: rows of (`Variable_name`, `Value`).
    pub fn from_variables(rows: impl IntoIterator<Item = (String, Option<String>)>) -> Self {
        Self::from_pairs(rows)
    }

    /// The value under the first of `names` that is present and not NULL.
    pub fn get(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.0.get(&n.to_ascii_lowercase()).and_then(|v| v.as_deref()))
    }

    /// True when any of `names` is a column (even a NULL one).
    pub fn has(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.0.contains_key(&n.to_ascii_lowercase()))
    }

    /// True when one of `names` is present but NULL, and none of them has a value.
    pub fn is_null(&self, names: &[&str]) -> bool {
        self.has(names) && self.get(names).is_none()
    }

    /// A trimmed, non-empty string value.
    pub fn text(&self, names: &[&str]) -> Option<String> {
        self.get(names).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    /// An unsigned number; `None` when missing, NULL or not a number.
    pub fn u64(&self, names: &[&str]) -> Option<u64> {
        self.get(names).and_then(|v| v.trim().parse().ok())
    }

    /// A boolean as servers print them: `ON`/`OFF`, `Yes`/`No`, `1`/`0`, `TRUE`/`FALSE`.
    /// `None` for anything else (e.g. `Connecting`, which callers treat separately).
    pub fn flag(&self, names: &[&str]) -> Option<bool> {
        self.get(names).and_then(parse_flag)
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no columns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `ON`/`YES`/`1`/`TRUE` → true, `OFF`/`NO`/`0`/`FALSE` → false, case-insensitively.
pub(crate) fn parse_flag(v: &str) -> Option<bool> {
    let v = v.trim();
    ["on", "yes", "1", "true"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
        .then_some(true)
        .or_else(|| ["off", "no", "0", "false"].iter().any(|f| v.eq_ignore_ascii_case(f)).then_some(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let f = Fields::from_pairs([
            ("Seconds_Behind_Master", None),
            ("Slave_IO_Running", Some("Yes".to_string())),
            ("Master_Port", Some(" 3306 ".to_string())),
            ("Odd", Some("x".to_string())),
        ]);
        assert_eq!(f.get(&["seconds_behind_source", "Seconds_Behind_Master"]), None);
        assert!(f.is_null(&["Seconds_Behind_Source", "Seconds_Behind_Master"]));
        assert!(!f.is_null(&["Nope"]));
        assert_eq!(f.flag(&["Replica_IO_Running", "Slave_IO_Running"]), Some(true));
        assert_eq!(f.u64(&["master_port"]), Some(3306));
        assert_eq!(f.u64(&["Odd"]), None);
        assert_eq!(f.flag(&["Odd"]), None);
        assert_eq!(parse_flag("Connecting"), None);
        assert_eq!(parse_flag("off"), Some(false));
    }
}

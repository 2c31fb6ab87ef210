//! A client session's state as rwsplit tracks it: what must be true on whichever backend
//! connection runs the session's next statement (schema, character set, session variables),
//! and what ties the session to one connection (transaction, locks, temporary tables).
//!
//! The replayable part is summarised by a fingerprint. A pooled connection remembers the
//! fingerprint it was left in, so a session whose state matches takes it as it is; any other
//! gets it reset and the state replayed. Pure: the session module does the IO.

use crate::classifier::{Effect, PinReason, SessionView};
use crate::protocol::handshake::DEFAULT_COLLATION;
use crate::protocol::StatusFlags;
use mysql_common::collations::{Collation, CollationId};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Why a session must keep its current backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tie {
    /// A transaction is open (server status), or autocommit is off.
    Transaction,
    /// State the proxy cannot replay lives on that connection.
    Pin(PinReason),
    /// A query assigned user variables (`SELECT @x := …`): their values live only there.
    UserVariables,
    /// A server-side cursor is open (COM_STMT_FETCH follows).
    Cursor,
    /// The server reported a session state change rwsplit did not see coming.
    UntrackedState,
    /// More session variables than rwsplit replays on another connection
    /// ([`MAX_REPLAYED_SETS`], [`MAX_REPLAYED_BYTES`]): the rest live on that connection only.
    TooMuchState,
}

/// Most SET statements a session's state replays onto another connection. Beyond, the session
/// keeps its connection instead (bounded memory and replay work, whatever the client sets).
pub const MAX_REPLAYED_SETS: usize = 1_000;

/// Most bytes of SET text a session's state replays.
pub const MAX_REPLAYED_BYTES: usize = 256 * 1024;

/// The session's state.
#[derive(Debug, Clone)]
pub struct SessionState {
    /// Current schema (USE, COM_INIT_DB, the handshake's database).
    pub schema: Option<String>,
    /// Collation id from the handshake response.
    pub collation: u8,
    /// The last SET NAMES / SET CHARACTER SET statement, replayed after the handshake collation.
    pub names: Option<String>,
    /// Replayable SET statements keyed by the variables they assign, with the order they came
    /// in (a later SET of the same variables replaces the earlier one and moves to the end).
    vars: HashMap<String, (u64, String)>,
    /// The next order number for `vars`.
    next_var: u64,
    /// XOR of one hash per `vars` entry: kept up to date by each SET in O(1), so the
    /// fingerprint never rehashes every variable.
    vars_hash: u64,
    /// Bytes of SET text in `vars`.
    vars_bytes: usize,
    /// From the last status flags.
    pub autocommit: bool,
    pub in_transaction: bool,
    pub read_only_transaction: bool,
    pub serializable: bool,
    /// Lower-cased names of TEMPORARY tables created in this session (they live on the writer
    /// connection the session is pinned to).
    pub temp_tables: HashSet<String>,
    /// Why the session is tied to its pinned connection; empty when it is not.
    pub ties: HashSet<Tie>,
    /// Named locks taken with GET_LOCK and not known to be released.
    pub named_locks: u32,
    /// Whether the server accepts several statements in one COM_QUERY: the capability the
    /// client logged in with, then whatever its COM_SET_OPTION said. Applied to each backend
    /// connection before it serves the session (not part of the fingerprint: a connection
    /// remembers its own setting).
    pub multi_statements: bool,
    fingerprint: u64,
}

impl Default for SessionState {
    fn default() -> Self {
        Self::new(DEFAULT_COLLATION, None)
    }
}

impl SessionState {
    pub fn new(collation: u8, schema: Option<String>) -> Self {
        let mut s = SessionState {
            schema,
            collation,
            names: None,
            vars: HashMap::new(),
            next_var: 0,
            vars_hash: 0,
            vars_bytes: 0,
            autocommit: true,
            in_transaction: false,
            read_only_transaction: false,
            serializable: false,
            temp_tables: HashSet::new(),
            ties: HashSet::new(),
            named_locks: 0,
            multi_statements: true,
            fingerprint: 0,
        };
        s.refresh_fingerprint();
        s
    }

    /// The fingerprint of a connection as it is right after login or COM_RESET_CONNECTION.
    pub fn pristine_fingerprint() -> u64 {
        SessionState::new(DEFAULT_COLLATION, None).fingerprint
    }

    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn refresh_fingerprint(&mut self) {
        let mut h = DefaultHasher::new();
        self.schema.hash(&mut h);
        self.collation.hash(&mut h);
        self.names.hash(&mut h);
        self.vars_hash.hash(&mut h);
        self.fingerprint = h.finish();
    }

    /// The classifier's view of this session.
    pub fn view(&self) -> SessionView<'_> {
        SessionView {
            in_transaction: self.in_transaction,
            read_only_transaction: self.read_only_transaction,
            autocommit: self.autocommit,
            serializable: self.serializable,
            temp_tables: &self.temp_tables,
        }
    }

    /// Statements that bring a pristine connection to this state, in order. The schema is
    /// not among them: it is set with COM_INIT_DB (see [`SessionState::schema`]).
    pub fn replay(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.collation != DEFAULT_COLLATION {
            let c = Collation::from(CollationId::from(u16::from(self.collation)));
            if !c.charset().is_empty() && !c.collation().is_empty() {
                out.push(format!("SET NAMES {} COLLATE {}", c.charset(), c.collation()));
            }
        }
        out.extend(self.names.iter().cloned());
        let mut vars: Vec<&(u64, String)> = self.vars.values().collect();
        vars.sort_unstable_by_key(|(order, _)| *order);
        out.extend(vars.into_iter().map(|(_, sql)| sql.clone()));
        out
    }

    /// True when the session must keep its pinned connection.
    pub fn is_tied(&self) -> bool {
        !self.ties.is_empty()
    }

    /// Learns the truth from a response's final status flags.
    pub fn observe_status(&mut self, status: StatusFlags) {
        self.in_transaction = status.contains(StatusFlags::SERVER_STATUS_IN_TRANS);
        self.autocommit = status.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT);
        if !self.in_transaction {
            self.read_only_transaction = false;
        }
        if self.in_transaction || !self.autocommit {
            self.ties.insert(Tie::Transaction);
        } else if !self.ties.is_empty() {
            // Checked first: this runs after every statement, and most sessions hold no tie
            // (a removal hashes the key even from an empty set).
            self.ties.remove(&Tie::Transaction);
        }
    }

    /// Applies a successful statement's effects. `sql` is its text (replayed for SETs).
    pub fn apply(&mut self, effects: &[Effect], sql: &str) {
        // Only what the fingerprint covers needs it recomputed (most statements change none).
        let replayable = effects.iter().any(|e| {
            matches!(
                e,
                Effect::SetIsolation { .. }
                    | Effect::UseSchema(_)
                    | Effect::SetNames { .. }
                    | Effect::SessionVariables { .. }
            )
        });
        for e in effects {
            match e {
                Effect::Begin { read_only } => {
                    self.in_transaction = true;
                    self.read_only_transaction = *read_only;
                    self.ties.insert(Tie::Transaction);
                }
                Effect::EndTransaction => {
                    self.read_only_transaction = false;
                }
                Effect::SetAutocommit(on) => {
                    self.autocommit = *on;
                }
                Effect::SetIsolation { serializable } => {
                    self.serializable = *serializable;
                    self.set_var("transaction_isolation".into(), sql);
                }
                Effect::UseSchema(db) => self.schema = Some(db.clone()),
                Effect::SetNames { .. } => self.names = Some(sql.to_string()),
                Effect::SessionVariables { key } => self.set_var(key.clone(), sql),
                Effect::CreateTempTable(t) => {
                    self.temp_tables.insert(t.clone());
                }
                Effect::DropTables(ts) => {
                    for t in ts {
                        self.temp_tables.remove(t);
                    }
                }
                Effect::Pin(PinReason::NamedLock) => {
                    self.named_locks = self.named_locks.saturating_add(1);
                    self.ties.insert(Tie::Pin(PinReason::NamedLock));
                }
                Effect::Unpin(PinReason::NamedLock) => {
                    // RELEASE_LOCK may name a lock that is not held, so only releasing all
                    // locks proves none is left; until then the session stays pinned.
                }
                Effect::ReleaseAllNamedLocks => {
                    self.named_locks = 0;
                    self.ties.remove(&Tie::Pin(PinReason::NamedLock));
                }
                Effect::Pin(r) => {
                    self.ties.insert(Tie::Pin(*r));
                }
                Effect::Unpin(r) => {
                    self.ties.remove(&Tie::Pin(*r));
                }
            }
        }
        if replayable {
            self.refresh_fingerprint();
        }
    }

    /// Ties the session after a statement whose state cannot be replayed elsewhere.
    pub fn tie(&mut self, tie: Tie) {
        self.ties.insert(tie);
    }

    pub fn untie(&mut self, tie: Tie) {
        self.ties.remove(&tie);
    }

    /// Whether the session needs a writer connection held for its temporary tables.
    pub fn holds_temp_tables(&self) -> bool {
        !self.temp_tables.is_empty()
    }

    /// Replaces the entry for `key` (a later SET of the same variables wins) and puts it last.
    /// O(1): one map update and two hashes.
    fn set_var(&mut self, key: String, sql: &str) {
        let entry_hash = |k: &str, v: &str| {
            let mut h = DefaultHasher::new();
            (k, v).hash(&mut h);
            h.finish()
        };
        let replaced = self.vars.get(&key).map_or(0, |(_, old)| old.len());
        if self.ties.contains(&Tie::TooMuchState)
            || (replaced == 0 && self.vars.len() >= MAX_REPLAYED_SETS)
            || self.vars_bytes - replaced + sql.len() > MAX_REPLAYED_BYTES
        {
            // Past the bound the value lives on the session's connection only.
            self.ties.insert(Tie::TooMuchState);
            return;
        }
        self.vars_hash ^= entry_hash(&key, sql);
        let order = self.next_var;
        self.next_var += 1;
        self.vars_bytes += sql.len();
        if let Some((_, old)) = self.vars.insert(key.clone(), (order, sql.to_string())) {
            self.vars_hash ^= entry_hash(&key, &old);
            self.vars_bytes -= old.len();
        }
    }

    /// How many replayable SET statements the session has.
    pub fn replayable_sets(&self) -> usize {
        self.vars.len()
    }

    /// Sets the schema (COM_INIT_DB succeeded).
    pub fn set_schema(&mut self, schema: Option<String>) {
        self.schema = schema;
        self.refresh_fingerprint();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pristine_state_needs_no_replay() {
        let s = SessionState::default();
        assert!(s.replay().is_empty());
        assert_eq!(s.fingerprint(), SessionState::pristine_fingerprint());
    }

    #[test]
    fn handshake_collation_is_replayed() {
        let s = SessionState::new(8, None); // latin1_swedish_ci
        assert_eq!(s.replay(), vec!["SET NAMES latin1 COLLATE latin1_swedish_ci".to_string()]);
        assert_ne!(s.fingerprint(), SessionState::pristine_fingerprint());
    }

    #[test]
    fn later_set_of_same_variable_replaces_earlier() {
        let mut s = SessionState::default();
        s.apply(&[Effect::SessionVariables { key: "@x".into() }], "SET @x = 1");
        s.apply(&[Effect::SessionVariables { key: "sql_mode".into() }], "SET sql_mode = ''");
        s.apply(&[Effect::SessionVariables { key: "@x".into() }], "SET @x = 2");
        assert_eq!(s.replay(), vec!["SET sql_mode = ''".to_string(), "SET @x = 2".to_string()]);
    }

    #[test]
    fn fingerprint_follows_schema_and_names() {
        let mut a = SessionState::default();
        let b = SessionState::default();
        a.apply(&[Effect::UseSchema("db_test".into())], "USE db_test");
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut c = SessionState::default();
        c.set_schema(Some("db_test".into()));
        assert_eq!(a.fingerprint(), c.fingerprint());
        a.apply(&[Effect::SetNames { charset: "utf8mb4".into(), collation: None }], "SET NAMES utf8mb4");
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.replay(), vec!["SET NAMES utf8mb4".to_string()]);
    }

    #[test]
    fn status_flags_tie_and_untie_transactions() {
        let mut s = SessionState::default();
        s.observe_status(StatusFlags::SERVER_STATUS_IN_TRANS | StatusFlags::SERVER_STATUS_AUTOCOMMIT);
        assert!(s.in_transaction && s.is_tied());
        s.observe_status(StatusFlags::SERVER_STATUS_AUTOCOMMIT);
        assert!(!s.is_tied());
        // autocommit=0 counts as an open transaction even before any statement runs in it.
        s.observe_status(StatusFlags::empty());
        assert!(!s.autocommit && s.is_tied());
    }

    #[test]
    fn named_locks_stay_pinned_until_all_released() {
        let mut s = SessionState::default();
        s.apply(&[Effect::Pin(PinReason::NamedLock)], "SELECT GET_LOCK('a', 1)");
        s.apply(&[Effect::Unpin(PinReason::NamedLock)], "SELECT RELEASE_LOCK('b')");
        assert!(s.is_tied());
        s.apply(&[Effect::ReleaseAllNamedLocks], "SELECT RELEASE_ALL_LOCKS()");
        assert!(!s.is_tied());
        assert_eq!(s.named_locks, 0);
    }

    #[test]
    fn release_lock_never_unties_whatever_the_text_says() {
        let mut s = SessionState::default();
        s.apply(&[Effect::Pin(PinReason::NamedLock)], "SELECT GET_LOCK('a', 1)");
        // The text only names release_all_locks in a literal: the effect is what counts.
        s.apply(&[Effect::Unpin(PinReason::NamedLock)], "SELECT RELEASE_LOCK('x'), 'release_all_locks'");
        s.apply(&[], "SELECT 'release_all_locks'");
        assert!(s.is_tied());
        assert_eq!(s.named_locks, 1);
    }

    #[test]
    fn temp_tables_are_tracked() {
        let mut s = SessionState::default();
        s.apply(&[Effect::CreateTempTable("t1".into())], "CREATE TEMPORARY TABLE t1 (a int)");
        assert!(s.holds_temp_tables());
        assert!(s.view().temp_tables.contains("t1"));
        s.apply(&[Effect::DropTables(vec!["t1".into()])], "DROP TABLE t1");
        assert!(!s.holds_temp_tables());
    }

    #[test]
    fn sets_keep_their_last_order_and_the_fingerprint_follows_the_values() {
        let set = |s: &mut SessionState, key: &str, sql: &str| {
            s.apply(&[Effect::SessionVariables { key: key.into() }], sql);
        };
        let mut a = SessionState::default();
        set(&mut a, "@a", "SET @a = 1");
        set(&mut a, "@b", "SET @b = 2");
        set(&mut a, "@a", "SET @a = 3");
        assert_eq!(a.replay(), vec!["SET @b = 2".to_string(), "SET @a = 3".to_string()]);
        assert_eq!(a.replayable_sets(), 2);
        let mut b = SessionState::default();
        set(&mut b, "@b", "SET @b = 2");
        set(&mut b, "@a", "SET @a = 3");
        assert_eq!(a.fingerprint(), b.fingerprint(), "same variables, same values");
        set(&mut b, "@a", "SET @a = 4");
        assert_ne!(a.fingerprint(), b.fingerprint());
        set(&mut b, "@a", "SET @a = 3");
        assert_eq!(a.fingerprint(), b.fingerprint(), "back to the same value");
        // Many SETs: each is one map update (the whole list is never rescanned); past the
        // bound the session is tied to its connection instead of growing the replay.
        let mut many = SessionState::default();
        for i in 0..MAX_REPLAYED_SETS {
            set(&mut many, &format!("@v{i}"), &format!("SET @v{i} = {i}"));
        }
        assert!(!many.is_tied());
        assert_eq!(many.replayable_sets(), MAX_REPLAYED_SETS);
        set(&mut many, "@v0", "SET @v0 = 7");
        assert!(!many.is_tied(), "replacing a variable does not grow the state");
        for i in 0..20_000 {
            set(&mut many, &format!("@w{i}"), &format!("SET @w{i} = {i}"));
        }
        assert!(many.ties.contains(&Tie::TooMuchState));
        assert_eq!(many.replayable_sets(), MAX_REPLAYED_SETS);
    }
}

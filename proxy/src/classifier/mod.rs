//! The SQL classifier: decides where a statement may run. Pure code, no IO.
//!
//! Two steps, so that a prepared statement is scanned once and decided at every execution:
//! - [`scan`] reads the statement text once with a hand-written lexer (comments skipped while
//!   hints are collected, string/identifier literals skipped, the leading keyword, the clauses
//!   and function names that matter) and returns a [`Statement`]: facts that do not depend on
//!   the session. It costs nanoseconds; `sqlparser` is used only where structure matters.
//! - [`decide`] combines those facts with the session's state ([`SessionView`]) into a
//!   [`Decision`]: the [`Route`], the [`Reason`] (a metric label and a log word) and the
//!   [`Effect`]s the statement has on session state once it succeeds.
//!
//! [`classify`] does both. Anything the lexer cannot place goes to the master with
//! [`Reason::Unparsed`], which is counted.
//!
//! Besides routing, the module tells the session layer facts it acts on itself (each pure,
//! never panicking, and reading the text with the same lexer, so literals and comments never
//! count):
//! - [`parse_kill`]: `KILL [HARD | SOFT] [CONNECTION | QUERY] <id>` → [`Kill`] (the id the
//!   client wrote, to translate); None for `KILL QUERY ID`, `KILL USER`, expressions, and
//!   anything else, which the caller refuses.
//! - [`show_processlist`]: `SHOW [FULL] PROCESSLIST` → `Some(full)`.
//! - [`connection_id_calls`]: the byte ranges of the calls `CONNECTION_ID()` in the text.
//! - [`Statement::assigns_user_variables`]: user variables that only the connection that ran
//!   the statement will have (see Limits).
//!
//! # Rules, in the order they apply
//! 1. Session state wins over everything, hints included: SERIALIZABLE isolation → master
//!    (`serializable`); autocommit off → master (`autocommit_off`); an open read-write
//!    transaction → master (`in_transaction`).
//! 2. An open `START TRANSACTION READ ONLY` transaction runs on one replica as a unit: its
//!    statements go to the replica (`read_only_transaction`). A write in it reaches the
//!    replica and fails there, as it would on the master. Exceptions, which go to the master
//!    with their own reason: statements that commit the read-only transaction implicitly and
//!    then write (DDL, LOCK TABLES, FLUSH, …), statements that start a new transaction, and
//!    multi-statements (a COMMIT inside one would let the rest run outside the transaction).
//!    The session must then end the replica's transaction itself.
//!    A read-only transaction that starts while the session is pinned to the master (rule 1)
//!    starts there, and its `Effect::Begin` says `read_only: false`, so that the session keeps
//!    routing it to the master.
//! 3. Text the lexer cannot place (empty, garbage, unknown leading keyword) → master
//!    (`unparsed`). More than one statement → master (`multi_statement`); a trailing `;` is
//!    not a second statement, nor are the `;` inside CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT
//!    or a MariaDB compound statement.
//! 4. Statements that are not reads go to the master with the reason of their kind: `write`
//!    (INSERT, UPDATE, DELETE, REPLACE, LOAD, EXPLAIN ANALYZE or MariaDB ANALYZE of a write,
//!    compound statements), `ddl` (CREATE, ALTER, DROP, RENAME, TRUNCATE, GRANT, REVOKE,
//!    account management), `call`, `transaction_control` (BEGIN, START TRANSACTION, COMMIT,
//!    ROLLBACK, SAVEPOINT, XA, and SET autocommit), `session_command` (other SET, USE),
//!    `table_lock` (LOCK/UNLOCK TABLES), `sql_prepare` (PREPARE, EXECUTE, DEALLOCATE),
//!    `handler` (HANDLER), `admin` (FLUSH, KILL, OPTIMIZE/ANALYZE/REPAIR/CHECK TABLE,
//!    replication control, SET GLOBAL, …). `START TRANSACTION READ ONLY` outside a transaction
//!    goes to a replica (`read_only_transaction`); `GET DIAGNOSTICS` follows the previous
//!    statement (`follows_previous`).
//!    Session commands (SET, USE) change state the session must have on every backend
//!    connection it uses. Their route is the master for safety; the session layer runs them
//!    where its current connection is and replays them elsewhere ([`Effect`]).
//! 5. Hints, outside the session-state rules above, and on reads only (SELECT, SHOW,
//!    DESCRIBE, EXPLAIN, TABLE, VALUES, HELP, DO): a comment `/* rwsplit:master */` or
//!    `/* rwsplit:replica */` anywhere in the statement (also as `-- rwsplit:…` or
//!    `# rwsplit:…`, and MaxScale's `-- maxscale route to master` / `-- maxscale route to
//!    slave`; case-insensitive, anything may follow after a space; a master hint wins over a
//!    replica hint). A master hint sends the read to the master (`hint_master`). A replica
//!    hint overrides every read rule below (`hint_replica`) — the user vouches for the
//!    function, the lock, the temporary table — except that it never sends a write to a
//!    replica: statements that are not reads, and reads that write (NEXT VALUE FOR /
//!    NEXTVAL / SETVAL advance a sequence, INTO OUTFILE / DUMPFILE write a file), stay on
//!    the master whatever the hint says. Hints do not move transaction control or session
//!    commands either.
//! 6. Reads that must see the master, with these reasons: `master_status` (SHOW MASTER /
//!    BINLOG / BINARY / SLAVE / REPLICA … STATUS or LOGS, SHOW PROCESSLIST, EXPLAIN FOR
//!    CONNECTION: the client believes it talks to one server, the master, and connection ids
//!    belong to it), `sequence` (NEXT VALUE FOR, PREVIOUS VALUE FOR, NEXTVAL(, LASTVAL(,
//!    SETVAL(, `seq.nextval`), `select_into` (INTO @var, OUTFILE, DUMPFILE), `locking_read`
//!    (FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE, also in subqueries), `lock_function`
//!    (GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS, IS_USED_LOCK, IS_FREE_LOCK),
//!    `last_insert_id` (LAST_INSERT_ID(), @@last_insert_id, @@identity; LAST_INSERT_ID
//!    wins over FOUND_ROWS and the other rule-7 functions in the same statement),
//!    `user_variable_assign` (`@x := …`), `user_function` (a call of a name that is not a
//!    built-in function or keyword, `db.func(` and `` `func`( `` included: a stored function
//!    may write; see `builtin.rs`).
//! 7. Reads whose answer belongs to the connection that ran the previous statement:
//!    FOUND_ROWS(), ROW_COUNT(), SHOW WARNINGS / ERRORS / COUNT(*) WARNINGS / COUNT(*) ERRORS
//!    / PROFILES, @@warning_count, @@error_count (and GET DIAGNOSTICS, rule 4) →
//!    [`Route::Previous`] (`follows_previous`).
//! 8. Reads of a TEMPORARY table the session created → master (`temp_table`); see
//!    `tables.rs` for how table references are found. [`decide`] has only the scanned facts
//!    and answers "master" whenever the statement may name such a table;
//!    [`decide_with_text`] (used by [`classify`]) parses the text to be exact.
//! 9. Other reads → replica (`read`). SLEEP() and BENCHMARK() are plain reads: they change
//!    nothing. EXPLAIN of a write is a read (it does not execute it).
//!
//! # Reading the text
//! The lexer skips `/* */`, `-- ` and `#` comments, `'…'`, `"…"` (backslash and doubled-quote
//! escapes) and `` `…` `` literals, and reads executable comments (`/*! … */`, `/*M! … */`)
//! as SQL. Where the server's reading depends on what the proxy cannot see, the text is read
//! each possible way and the more cautious reading is kept (a reading that is not a read wins,
//! and facts found by any reading count): `NO_BACKSLASH_ESCAPES` and ANSI_QUOTES (a backslash
//! may not escape), multi-byte client charsets (GBK, SJIS, BIG5: after lossy conversion a
//! backslash right after U+FFFD may be a character's second byte), and versioned comments
//! (`/*!80013 … */` above 5.7.0, `/*M! … */`) that only some servers run. The lexer never
//! panics, whatever the bytes (property tests check it).
//!
//! # Limits
//! - A view or trigger that calls a writing function is invisible in the text: a SELECT from
//!   such a view goes to a replica (use a master hint).
//! - SET replay evaluates the expressions again on the other connection, so it is offered
//!   (`Effect::SessionVariables`) for user variables only when their values are constant
//!   literals (`SET @x = 5`, `SET @s = _utf8mb4'x' COLLATE utf8mb4_bin`). `SET @x = UUID()`,
//!   `SET @x = (SELECT …)`, `SET @a = @b + 1` and a SET mixing those with other variables get
//!   no replay at all; like variables assigned outside SET (`SELECT @x := …`, `SELECT … INTO
//!   @x`, `CALL p(@out)`, `GET DIAGNOSTICS @x = …`) they make
//!   [`Statement::assigns_user_variables`] true, which tells the session to keep the
//!   connection. System variables set to expressions (`SET time_zone = @tz`) are still
//!   replayed, and evaluated again.
//! - Named locks: GET_LOCK pins ([`Effect::Pin`]); RELEASE_LOCK cannot prove that no lock is
//!   left ([`Effect::Unpin`], the tie stays); only a call of RELEASE_ALL_LOCKS() in a
//!   statement that runs its calls (not in a routine body, a view or an EXPLAIN) gives
//!   [`Effect::ReleaseAllNamedLocks`]. A call the server skips (a branch of IF or CASE not
//!   taken, a SELECT that returns no row) still counts as run.
//! - [`connection_id_calls`] reads the text the server's default way: under
//!   `NO_BACKSLASH_ESCAPES`, a string containing a backslash may end elsewhere.
//! - `SET TRANSACTION …` without SESSION applies to the next transaction only and has no
//!   effect here: the session should keep its connection until that transaction starts.
//! - Server status flags are the truth about transactions and autocommit; the effects are what
//!   the text says and may be corrected by them (e.g. COMMIT AND CHAIN of a read-only
//!   transaction, `SET autocommit = @saved`).

// The modules form layers; each uses only modules of the layers before it:
// 1. `route`, `effect`, `kind`, `builtin` (plain data and tables), then `lexer` and `words`;
// 2. `head` (leading keywords); `kill`, then `connection_ids` (on the lexer alone);
// 3. `set_statement`, `tables`;
// 4. `statement` (`scan`);
// 5. `rules` (`decide`);
// 6. this module, which only declares, re-exports and composes (`classify`).
mod builtin;
mod connection_ids;
mod effect;
mod head;
mod kill;
mod kind;
mod lexer;
mod route;
mod rules;
mod set_statement;
mod statement;
mod tables;
mod words;

#[cfg(test)]
mod tests;

pub use connection_ids::{connection_id_calls, show_processlist};
pub use effect::{Effect, PinReason};
pub use kill::{is_kill, parse_kill, Kill};
pub use kind::StatementKind;
pub use route::{Reason, Route};
pub use rules::{decide, decide_with_text, Decision, SessionView};
pub use statement::{scan, Statement};

/// Scans and decides in one call, using the text to settle the temporary-table rule exactly.
pub fn classify(sql: &str, session: &SessionView<'_>) -> Decision {
    decide_with_text(&scan(sql), sql, session)
}

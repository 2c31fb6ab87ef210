//! The differential suite: every scenario runs once straight against the master (as `app`,
//! no proxy) and once through rwsplit with its DEFAULT routing settings (the harness's base
//! config, nothing added: `routing.consistency` is left at its default), and the two runs are
//! compared step by step. A client must not be able to tell rwsplit from the server it fronts:
//! result values, column metadata (name, org name, table, org table, schema, type, flags,
//! decimals, charset, column length), affected rows, last insert id, the OK info string,
//! warning counts and SHOW WARNINGS content, and errors (code, SQLSTATE, message) must match.
//!
//! Three client paths: mysql_async's text protocol (`query_iter`) and binary protocol
//! (`exec_iter` of prepared statements), the `mariadb` command-line client (libmariadb, a
//! different library) with `--column-type-info`, and a byte-level client
//! ([`rwsplit_tests::raw`]) for COM_SET_OPTION.
//!
//! Each scenario uses a database of its own, created and filled on the master directly and
//! replicated before a side runs; for writing scenarios the database is re-created before each
//! side, so both sides start from the same state. A failure names the first differing step and
//! shows both sides' answers. Some scenarios do not compare with the master step by step but
//! check an invariant the master trivially has (a session's reads see its own writes; the
//! answers of ROW_COUNT(), FOUND_ROWS(), ... are the session's own under concurrency).
//!
//! Several of these tests fail against rwsplit as it is: they document what it gets wrong.

use mysql_async::prelude::*;
use mysql_async::{Column, Conn, QueryResult, Row, Value};
use rwsplit_tests::raw::{self, Packet, RawConn};
use rwsplit_tests::*;
use std::fmt::Write as _;
use std::future::Future;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;
use tokio::time::timeout;

/// Bound of one scenario.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// Scenarios take this shared; the one that delays a replica's replication takes it
/// exclusively, so no other scenario runs while a replica lags on purpose.
static CLUSTER_STATE: RwLock<()> = RwLock::const_new(());

/// The shared proxy (default config), once reads reach both replicas.
async fn proxy() -> &'static Proxy {
    let p = tokio::task::block_in_place(Proxy::shared);
    p.wait_reads_on_replicas(Duration::from_secs(30)).await.expect("reads reach both replicas");
    p
}

/// Runs `body` within `limit`; a timeout is a failure naming the scenario.
async fn bounded<T>(what: &str, limit: Duration, body: impl Future<Output = T>) -> T {
    match timeout(limit, body).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {limit:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// The two sides

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The master, directly.
    Master,
    /// rwsplit (default settings) in front of the cluster.
    Rwsplit,
}

impl Side {
    const BOTH: [Side; 2] = [Side::Master, Side::Rwsplit];

    fn port(self) -> u16 {
        match self {
            Side::Master => Cluster::shared().port(MASTER),
            Side::Rwsplit => tokio::task::block_in_place(Proxy::shared).port(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Master => "master",
            Side::Rwsplit => "rwsplit",
        }
    }

    /// A new connection as `app` on `db`.
    async fn conn(self, db: &str) -> Result<Conn, String> {
        Conn::new(loopback_opts(self.port(), APP_USER, APP_PASSWORD, Some(db)))
            .await
            .map_err(|e| format!("connecting to {} as {APP_USER}: {e}", self.name()))
    }
}

// ------------------------------------------------------------------------------------------
// What one step answered

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    /// COM_QUERY (`query_iter`).
    Text,
    /// COM_STMT_PREPARE + COM_STMT_EXECUTE (`prep` + `exec_iter`).
    Binary,
}

/// Column metadata as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Col {
    name: String,
    org_name: String,
    table: String,
    org_table: String,
    schema: String,
    ty: String,
    flags: String,
    decimals: u8,
    charset: u16,
    length: u32,
}

impl Col {
    fn of(c: &Column) -> Col {
        Col {
            name: c.name_str().into_owned(),
            org_name: c.org_name_str().into_owned(),
            table: c.table_str().into_owned(),
            org_table: c.org_table_str().into_owned(),
            schema: c.schema_str().into_owned(),
            ty: format!("{:?}", c.column_type()),
            flags: format!("{:?}", c.flags()),
            decimals: c.decimals(),
            charset: c.character_set(),
            length: c.column_length(),
        }
    }

    fn render(&self) -> String {
        format!(
            "`{}` (org `{}`, table `{}`/`{}`, schema `{}`) {} flags={} decimals={} charset={} length={}",
            self.name,
            self.org_name,
            self.table,
            self.org_table,
            self.schema,
            self.ty,
            self.flags,
            self.decimals,
            self.charset,
            self.length
        )
    }
}

/// One result of a statement: a result set (columns and rows), or just an OK.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct ResultSet {
    columns: Vec<Col>,
    rows: Vec<Vec<String>>,
    /// From the OK packet (for a result set: its terminator, as mysql_async reports it).
    affected_rows: u64,
    last_insert_id: Option<u64>,
    info: String,
    warnings: u16,
}

/// Everything a step answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Outcome {
    /// Binary protocol: parameter and column definitions from COM_STMT_PREPARE.
    prepared: Option<(Vec<Col>, Vec<Col>)>,
    sets: Vec<ResultSet>,
    error: Option<String>,
    /// `SHOW WARNINGS` right after the step, when it warned or failed (and the runner asks).
    show_warnings: Option<Vec<Vec<String>>>,
}

fn fmt_value(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("0x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        },
        other => format!("{other:?}"),
    }
}

/// Rows as `[a, b]; [c, d]` (values as [`fmt_value`] renders them).
fn fmt_rows(rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "(none)".into();
    }
    rows.iter().map(|r| format!("[{}]", r.join(", "))).collect::<Vec<_>>().join("; ")
}

fn fmt_row(row: Row) -> Vec<String> {
    row.unwrap().iter().map(fmt_value).collect()
}

/// A client error as compared between the sides: server errors in full, client-side ones by
/// kind only (their text depends on timing and the OS).
fn describe_error(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("ERROR {} ({}): {}", s.code, s.state, s.message),
        mysql_async::Error::Io(_) => "client: I/O error (connection lost)".into(),
        mysql_async::Error::Driver(d) => format!("client: driver error: {d}"),
        other => format!("client: {other}"),
    }
}

impl Outcome {
    fn render(&self) -> String {
        let mut s = String::new();
        if let Some((params, cols)) = &self.prepared {
            let _ = writeln!(s, "  prepared: {} params, {} columns", params.len(), cols.len());
            for c in cols {
                let _ = writeln!(s, "    prepared column {}", c.render());
            }
        }
        for (i, set) in self.sets.iter().enumerate() {
            let _ = writeln!(s, "  result {i}:");
            for c in &set.columns {
                let _ = writeln!(s, "    column {}", c.render());
            }
            if !set.columns.is_empty() {
                for r in &set.rows {
                    let _ = writeln!(s, "    row [{}]", r.join(", "));
                }
                if set.rows.is_empty() {
                    let _ = writeln!(s, "    (no rows)");
                }
            }
            let _ = writeln!(
                s,
                "    ok: affected_rows={} last_insert_id={:?} warnings={} info={:?}",
                set.affected_rows, set.last_insert_id, set.warnings, set.info
            );
        }
        if let Some(e) = &self.error {
            let _ = writeln!(s, "  {e}");
        }
        if let Some(w) = &self.show_warnings {
            let _ = writeln!(s, "  SHOW WARNINGS:");
            for r in w {
                let _ = writeln!(s, "    [{}]", r.join(", "));
            }
        }
        s
    }

    /// The value of the first column of the first row of the first result set.
    fn first_value(&self) -> Option<&str> {
        self.sets.first()?.rows.first()?.first().map(|s| s.as_str())
    }

    fn total_warnings(&self) -> u16 {
        self.sets.iter().map(|s| s.warnings).sum()
    }
}

/// Reads every result of a query: columns, rows and the OK values of each.
async fn collect_sets<P: Protocol>(
    mut r: QueryResult<'_, '_, P>,
    sets: &mut Vec<ResultSet>,
) -> Result<(), mysql_async::Error> {
    for _ in 0..1000 {
        let mut set = ResultSet { columns: r.columns_ref().iter().map(Col::of).collect(), ..ResultSet::default() };
        let fill = |set: &mut ResultSet, r: &QueryResult<'_, '_, P>| {
            set.affected_rows = r.affected_rows();
            set.last_insert_id = r.last_insert_id();
            set.info = r.info().into_owned();
            set.warnings = r.warnings();
        };
        let collected: Result<Vec<Row>, _> = if set.columns.is_empty() {
            // An OK: already read (collecting moves on to the next result).
            fill(&mut set, &r);
            r.collect().await
        } else {
            let rows = r.collect().await;
            fill(&mut set, &r);
            rows
        };
        match collected {
            Ok(rows) => {
                set.rows = rows.into_iter().map(fmt_row).collect();
                sets.push(set);
            }
            Err(e) => {
                sets.push(set);
                return Err(e);
            }
        }
        if r.is_empty() {
            return Ok(());
        }
    }
    Ok(())
}

/// How steps run on a connection.
#[derive(Debug, Clone, Copy)]
struct Runner {
    proto: Proto,
    /// Run `SHOW WARNINGS` after a step that warned or failed, and compare it too.
    show_warnings: bool,
}

const TEXT: Runner = Runner { proto: Proto::Text, show_warnings: true };
const BINARY: Runner = Runner { proto: Proto::Binary, show_warnings: true };
/// Text protocol, no implicit SHOW WARNINGS (for scenarios where it would change what the next
/// step sees, e.g. ROW_COUNT()).
const TEXT_PLAIN: Runner = Runner { proto: Proto::Text, show_warnings: false };

/// Runs one step on `conn`.
async fn run_step(conn: &mut Conn, runner: Runner, sql: &str) -> Outcome {
    let mut out = Outcome::default();
    let res = match runner.proto {
        Proto::Text => match conn.query_iter(sql).await {
            Ok(r) => collect_sets(r, &mut out.sets).await,
            Err(e) => Err(e),
        },
        Proto::Binary => match conn.prep(sql).await {
            Ok(stmt) => {
                out.prepared =
                    Some((stmt.params().iter().map(Col::of).collect(), stmt.columns().iter().map(Col::of).collect()));
                match conn.exec_iter(&stmt, ()).await {
                    Ok(r) => collect_sets(r, &mut out.sets).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => {
                out.error = Some(format!("prepare: {}", describe_error(&e)));
                Ok(())
            }
        },
    };
    if let Err(e) = res {
        out.error = Some(describe_error(&e));
    }
    let warned = out.total_warnings() > 0 || out.error.is_some();
    if runner.show_warnings && warned && !conn.is_disconnected() {
        out.show_warnings = Some(match conn.query::<Row, _>("SHOW WARNINGS").await {
            Ok(rows) => rows.into_iter().map(fmt_row).collect(),
            Err(e) => vec![vec![format!("SHOW WARNINGS failed: {}", describe_error(&e))]],
        });
    }
    out
}

/// `Ok` when both sides answered `sql` the same; otherwise which parts differ, then both
/// answers in full.
fn diff_outcomes(sql: &str, master: &Outcome, rwsplit: &Outcome) -> Result<(), String> {
    if master == rwsplit {
        return Ok(());
    }
    let mut parts = Vec::new();
    if master.error != rwsplit.error {
        parts.push(format!("error: master {:?} / rwsplit {:?}", master.error, rwsplit.error));
    }
    if master.prepared != rwsplit.prepared {
        parts.push("prepared statement metadata".to_string());
    }
    if master.sets.len() != rwsplit.sets.len() {
        parts.push(format!("number of results: master {} / rwsplit {}", master.sets.len(), rwsplit.sets.len()));
    }
    for (i, (m, p)) in master.sets.iter().zip(&rwsplit.sets).enumerate() {
        if m.columns != p.columns {
            for (j, (mc, pc)) in m.columns.iter().zip(&p.columns).enumerate() {
                if mc != pc {
                    parts.push(format!(
                        "result {i} column {j} metadata:\n      master  {}\n      rwsplit {}",
                        mc.render(),
                        pc.render()
                    ));
                }
            }
            if m.columns.len() != p.columns.len() {
                parts.push(format!("result {i}: column count {} / {}", m.columns.len(), p.columns.len()));
            }
        }
        if m.rows != p.rows {
            parts.push(format!("result {i} rows: master {} / rwsplit {}", fmt_rows(&m.rows), fmt_rows(&p.rows)));
        }
        if m.affected_rows != p.affected_rows {
            parts.push(format!("result {i} affected rows: master {} / rwsplit {}", m.affected_rows, p.affected_rows));
        }
        if m.last_insert_id != p.last_insert_id {
            parts.push(format!(
                "result {i} last insert id: master {:?} / rwsplit {:?}",
                m.last_insert_id, p.last_insert_id
            ));
        }
        if m.info != p.info {
            parts.push(format!("result {i} info: master {:?} / rwsplit {:?}", m.info, p.info));
        }
        if m.warnings != p.warnings {
            parts.push(format!("result {i} warnings: master {} / rwsplit {}", m.warnings, p.warnings));
        }
    }
    if master.show_warnings != rwsplit.show_warnings {
        let w = |o: &Outcome| o.show_warnings.as_deref().map_or("(not run)".to_string(), fmt_rows);
        parts.push(format!("SHOW WARNINGS: master {} / rwsplit {}", w(master), w(rwsplit)));
    }
    Err(format!(
        "`{sql}` differs:\n  - {}\nmaster answered:\n{}rwsplit answered:\n{}",
        parts.join("\n  - "),
        master.render(),
        rwsplit.render()
    ))
}

/// Runs `sql` on a master connection and on an rwsplit connection and compares the answers.
async fn compare_step(master: &mut Conn, rwsplit: &mut Conn, runner: Runner, sql: &str) -> Result<(), String> {
    let m = run_step(master, runner, sql).await;
    let p = run_step(rwsplit, runner, sql).await;
    diff_outcomes(sql, &m, &p)
}

/// Drops and re-creates `db` on the master, runs `setup` in it (as root), and waits until the
/// replicas have it all.
async fn reset_db(db: &str, setup: &[&str]) -> Result<(), String> {
    let c = Cluster::shared();
    c.fresh_db(db).await.map_err(|e| format!("fresh_db {db}: {e:#}"))?;
    for s in setup {
        c.exec(MASTER, &format!("USE `{db}`; {s}")).await.map_err(|e| format!("setup of {db}: {e:#}"))?;
    }
    c.wait_replicated().await.map_err(|e| format!("replicating the setup of {db}: {e:#}"))
}

/// Runs the scenario `steps` on one connection per side, each side on a freshly set-up `db`,
/// and compares them step by step: `Err` names the first differing step (with both answers) and
/// how many steps differ in all.
async fn run_scenario(db: &str, setup: &[&str], steps: &[String], runner: Runner) -> Result<(), String> {
    let mut answers = Vec::new();
    for side in Side::BOTH {
        reset_db(db, setup).await?;
        let mut conn = side.conn(db).await?;
        let mut outs = Vec::with_capacity(steps.len());
        for s in steps {
            outs.push(run_step(&mut conn, runner, s).await);
        }
        let _ = conn.disconnect().await;
        answers.push(outs);
    }
    let (m, p) = (&answers[0], &answers[1]);
    let mut first = None;
    let mut differing = 0;
    for (i, s) in steps.iter().enumerate() {
        if let Err(d) = diff_outcomes(s, &m[i], &p[i]) {
            differing += 1;
            first.get_or_insert_with(|| format!("step {}/{}: {d}", i + 1, steps.len()));
        }
    }
    match first {
        None => Ok(()),
        Some(first) => Err(format!(
            "{:?} protocol, database {db}: {differing} of {} steps differ between master and rwsplit; first: {first}",
            runner.proto,
            steps.len()
        )),
    }
}

fn strings(steps: &[&str]) -> Vec<String> {
    steps.iter().map(|s| s.to_string()).collect()
}

/// Asserts that every entry is `Ok`, showing all failures.
fn assert_all_ok(what: &str, results: Vec<Result<(), String>>) {
    let errs: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(errs.is_empty(), "{what}: rwsplit differs from the master:\n\n{}", errs.join("\n\n"));
}

/// A labelled sequence of observations per side (for scenarios that are not a plain list of
/// statements on one connection); compares the observations in order, not their labels
/// (which may show values that legitimately differ, e.g. connection ids or timings).
fn diff_records(master: &[(String, String)], rwsplit: &[(String, String)]) -> Result<(), String> {
    let differing: Vec<usize> = (0..master.len().min(rwsplit.len())).filter(|&i| master[i].1 != rwsplit[i].1).collect();
    let mut msg = String::new();
    if let Some(&i) = differing.first() {
        let (m, p) = (&master[i], &rwsplit[i]);
        let _ = write!(
            msg,
            "observation {}/{} differs: {}\nmaster:\n  {}\nrwsplit ({}):\n  {}",
            i + 1,
            master.len(),
            m.0,
            m.1.trim_end().replace('\n', "\n  "),
            p.0,
            p.1.trim_end().replace('\n', "\n  ")
        );
        for &j in &differing[1..] {
            let _ = write!(
                msg,
                "\nobservation {}/{} differs too: {}\n  master:  {}\n  rwsplit: {}",
                j + 1,
                master.len(),
                master[j].0,
                master[j].1.trim_end().replace('\n', "\n           "),
                rwsplit[j].1.trim_end().replace('\n', "\n           ")
            );
        }
    }
    if master.len() != rwsplit.len() {
        let _ = write!(msg, "\nmaster made {} observations, rwsplit {}", master.len(), rwsplit.len());
    }
    if msg.is_empty() {
        Ok(())
    } else {
        Err(msg)
    }
}

// ------------------------------------------------------------------------------------------
// 1. Read your own writes

/// `n` pairs of INSERT (id from `first_id`) then SELECT of that row on `conn`: the number of
/// SELECTs that did not see their row, and the first such step.
async fn stale_pairs(conn: &mut Conn, first_id: u64, n: u64) -> Result<(u64, Option<String>), String> {
    let mut stale = 0;
    let mut first = None;
    for id in first_id..first_id + n {
        conn.query_drop(format!("INSERT INTO t (id, v) VALUES ({id}, {id})"))
            .await
            .map_err(|e| format!("INSERT id {id}: {e}"))?;
        let sql = format!("SELECT v FROM t WHERE id = {id}");
        let rows: Vec<u64> = conn.query(&sql).await.map_err(|e| format!("{sql}: {e}"))?;
        if rows != [id] {
            stale += 1;
            first.get_or_insert_with(|| {
                format!(
                    "pair {}: `{sql}` right after inserting it returned {rows:?}, the master [{id}]",
                    id - first_id + 1
                )
            });
        }
    }
    Ok((stale, first))
}

async fn set_master_delay(replica: usize, secs: u32) -> Result<(), String> {
    Cluster::shared()
        .exec(replica, &format!("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY={secs}; START SLAVE"))
        .await
        .map_err(|e| format!("setting MASTER_DELAY={secs} on replica {replica}: {e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_then_read_is_never_stale() {
    let _exclusive = CLUSTER_STATE.write().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let db = "diff_stale";
    const N: u64 = 1000;
    let mut report = Vec::new();

    let plain = bounded("write_then_read_is_never_stale (no delay)", SCENARIO_TIMEOUT, async {
        reset_db(db, &["CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY, v BIGINT UNSIGNED)"]).await?;
        let mut m = Side::Master.conn(db).await?;
        let direct = stale_pairs(&mut m, 1, N).await?;
        let mut r = Side::Rwsplit.conn(db).await?;
        let proxied = stale_pairs(&mut r, 1_000_001, N).await?;
        Ok::<_, String>((direct, proxied))
    })
    .await
    .expect("no-delay phase");
    report.push(("no replica delayed", plain));

    // Replica 1 applies events one second late; restored whatever happens.
    set_master_delay(1, 1).await.expect("delaying replica 1");
    let delayed = timeout(SCENARIO_TIMEOUT, async {
        let mut m = Side::Master.conn(db).await?;
        let direct = stale_pairs(&mut m, 2_000_001, N).await?;
        let mut r = Side::Rwsplit.conn(db).await?;
        let proxied = stale_pairs(&mut r, 3_000_001, N).await?;
        Ok::<_, String>((direct, proxied))
    })
    .await;
    let restored = set_master_delay(1, 0).await;
    let caught_up = Cluster::shared().wait_replicated().await;
    restored.expect("restoring MASTER_DELAY=0 on replica 1");
    caught_up.expect("replica 1 catching up after the delay");
    let delayed = delayed.expect("delayed phase within the bound").expect("delayed phase");
    report.push(("replica 1 with MASTER_DELAY=1", delayed));

    let mut failures = Vec::new();
    for (what, ((d_stale, d_first), (p_stale, p_first))) in &report {
        eprintln!("[differential] {what}: stale reads master-direct {d_stale}/{N}, through rwsplit {p_stale}/{N}");
        if *d_stale != 0 || *p_stale != 0 {
            failures.push(format!(
                "{what}: {p_stale} of {N} INSERT-then-SELECT pairs through rwsplit did not see their own row \
                 (master directly: {d_stale}); first through rwsplit: {}; first directly: {}",
                p_first.as_deref().unwrap_or("-"),
                d_first.as_deref().unwrap_or("-")
            ));
        }
    }
    assert!(failures.is_empty(), "reads after writes were stale:\n{}", failures.join("\n"));
}

// ------------------------------------------------------------------------------------------
// 2. A multi-statement query whose last statement fails

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statement_with_failing_last_statement() {
    let _shared = CLUSTER_STATE.read().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let mut steps = Vec::new();
    for i in 0..100u32 {
        let (a, b) = (1000 + 2 * i, 1001 + 2 * i);
        steps.push(format!(
            "INSERT INTO t (id, v) VALUES ({a}, 'a{i}'); INSERT INTO t (id, v) VALUES ({b}, 'b{i}'); \
             INSERT INTO t (id, v) VALUES (1, 'duplicate')"
        ));
        steps.push(format!("SELECT id, v FROM t WHERE id IN ({a}, {b}) ORDER BY id"));
    }
    let r = bounded(
        "multi_statement_with_failing_last_statement",
        SCENARIO_TIMEOUT,
        run_scenario(
            "diff_multi_fail",
            &["CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO t VALUES (1, 'one')"],
            &steps,
            TEXT_PLAIN,
        ),
    )
    .await;
    assert_all_ok("multi-statement INSERTs ending in a duplicate key, then a read", vec![r]);
}

// ------------------------------------------------------------------------------------------
// 3. KILL from a second connection

async fn kill_observations(side: Side, db: &str) -> Result<Vec<(String, String)>, String> {
    let mut rec: Vec<(String, String)> = Vec::new();
    let mut a = side.conn(db).await?;
    let mut b = side.conn(db).await?;
    let a_id = a.id();
    let cid = run_step(&mut a, TEXT, "SELECT CONNECTION_ID()").await;
    let equal = cid.first_value() == Some(format!("{:?}", a_id.to_string()).as_str());
    rec.push((
        format!("A: SELECT CONNECTION_ID() = A's handshake id ({a_id} / {:?})", cid.first_value()),
        format!("equal: {equal}"),
    ));
    // The binary protocol (prepared) and an expression give the same id.
    let bin = run_step(&mut a, BINARY, "SELECT CONNECTION_ID()").await;
    rec.push((
        "A: prepared SELECT CONNECTION_ID() = A's handshake id".into(),
        format!(
            "equal: {}",
            bin.first_value() == Some(format!("Int({a_id})").as_str())
                || bin.first_value() == Some(format!("UInt({a_id})").as_str())
        ),
    ));
    let expr = run_step(&mut a, TEXT, &format!("SELECT CONNECTION_ID() = {a_id} AS same")).await;
    rec.push(("A: SELECT CONNECTION_ID() = <A's id>".into(), expr.render()));

    let sleeper = tokio::spawn(async move {
        let o = run_step(&mut a, TEXT_PLAIN, "SELECT SLEEP(5)").await;
        (a, o)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    let k = run_step(&mut b, TEXT_PLAIN, &format!("KILL QUERY {a_id}")).await;
    rec.push(("B: KILL QUERY <A's id>".into(), k.render()));
    let (mut a, slept) = timeout(Duration::from_secs(15), sleeper)
        .await
        .map_err(|_| "A's SELECT SLEEP(5) did not return within 15 s".to_string())?
        .map_err(|e| format!("A's task: {e}"))?;
    let took = killed_at.elapsed();
    rec.push(("A: SELECT SLEEP(5) answered".into(), slept.render()));
    rec.push((
        format!("A returned within 1 s of KILL QUERY (took {took:?})"),
        format!("within 1 s: {}", took < Duration::from_secs(1)),
    ));
    rec.push(("A after KILL QUERY: SELECT 1".into(), run_step(&mut a, TEXT_PLAIN, "SELECT 1").await.render()));
    rec.push(("B: KILL 999999999 (unknown id)".into(), run_step(&mut b, TEXT_PLAIN, "KILL 999999999").await.render()));
    rec.push(("B: KILL <A's id>".into(), run_step(&mut b, TEXT_PLAIN, &format!("KILL {a_id}")).await.render()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = timeout(Duration::from_secs(10), run_step(&mut a, TEXT_PLAIN, "SELECT 1"))
        .await
        .map(|o| o.render())
        .unwrap_or_else(|_| "no answer within 10 s".into());
    rec.push(("A after KILL <A's id>: SELECT 1".into(), after));
    let second = timeout(Duration::from_secs(10), run_step(&mut a, TEXT_PLAIN, "SELECT 1"))
        .await
        .map(|o| o.render())
        .unwrap_or_else(|_| "no answer within 10 s".into());
    rec.push(("A after KILL <A's id>: a second SELECT 1".into(), second));
    rec.push(("B still works: SELECT 1".into(), run_step(&mut b, TEXT_PLAIN, "SELECT 1").await.render()));
    Ok(rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_from_second_connection() {
    let _shared = CLUSTER_STATE.read().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let db = "diff_kill";
    reset_db(db, &[]).await.unwrap();
    let (m, r) = bounded("kill_query_from_second_connection", SCENARIO_TIMEOUT, async {
        let m = kill_observations(Side::Master, db).await.expect("master directly");
        let r = kill_observations(Side::Rwsplit, db).await.expect("through rwsplit");
        (m, r)
    })
    .await;
    for (label, v) in &m {
        eprintln!("[differential] master: {label}: {}", v.trim_end());
    }
    assert_all_ok("KILL QUERY / KILL from a second connection", vec![diff_records(&m, &r)]);
}

// ------------------------------------------------------------------------------------------
// 4. COM_SET_OPTION (multi statements on and off) on a client that logged in without them

fn set_option_observations(port: u16, db: &str) -> Result<Vec<(String, String)>, String> {
    let mut c = RawConn::connect(port, APP_USER, APP_PASSWORD, db, raw::BASE_CAPS).map_err(|e| format!("{e:#}"))?;
    let mut rec = Vec::new();
    let mut step = |label: &str, packets: anyhow::Result<Vec<Packet>>| {
        let text = match packets {
            Ok(ps) => ps.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join("\n"),
            Err(e) => format!("client error: {e:#}"),
        };
        rec.push((label.to_string(), text));
    };
    step("logged in without CLIENT_MULTI_STATEMENTS: `SELECT 1; SELECT 2`", c.query("SELECT 1; SELECT 2"));
    step("COM_SET_OPTION MULTI_STATEMENTS_ON", c.set_option(raw::MYSQL_OPTION_MULTI_STATEMENTS_ON));
    step("after ON: `SELECT 1; SELECT 2`", c.query("SELECT 1; SELECT 2"));
    step("after ON: `SELECT 3`", c.query("SELECT 3"));
    step("COM_SET_OPTION MULTI_STATEMENTS_OFF", c.set_option(raw::MYSQL_OPTION_MULTI_STATEMENTS_OFF));
    step("after OFF: `SELECT 1; SELECT 2`", c.query("SELECT 1; SELECT 2"));
    step("after OFF: `SELECT 4`", c.query("SELECT 4"));
    Ok(rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_set_option_then_multi_statement() {
    let _shared = CLUSTER_STATE.read().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let db = "diff_set_option";
    reset_db(db, &[]).await.unwrap();
    let (mport, pport) = (Side::Master.port(), p.port());
    let (m, r) = bounded(
        "com_set_option_then_multi_statement",
        SCENARIO_TIMEOUT,
        tokio::task::spawn_blocking(move || {
            (set_option_observations(mport, "diff_set_option"), set_option_observations(pport, "diff_set_option"))
        }),
    )
    .await
    .unwrap();
    let m = m.expect("master directly");
    for (label, v) in &m {
        eprintln!("[differential] master: {label}:\n  {}", v.replace('\n', "\n  "));
    }
    let r = r.unwrap_or_else(|e| vec![("log in through rwsplit".into(), e)]);
    assert_all_ok("COM_SET_OPTION, packet by packet", vec![diff_records(&m, &r)]);
}

// ------------------------------------------------------------------------------------------
// 5. OUT parameters and user variables

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_out_parameter_keeps_value_and_type() {
    let _shared = CLUSTER_STATE.read().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let setup = [
        "CREATE TABLE t (id INT PRIMARY KEY, x VARCHAR(10))",
        "INSERT INTO t VALUES (1, 'one'), (2, 'two')",
        "CREATE PROCEDURE p(IN a INT, OUT o BIGINT) SET o = a * 2",
    ];
    let steps = strings(&[
        "CALL p(21, @o)",
        "SELECT @o",
        "SELECT /* rwsplit:master */ @o",
        "SELECT @o + 0, @o IS NULL",
        "SELECT x INTO @v FROM t ORDER BY id LIMIT 1",
        "SELECT @v",
        "SET @w := (SELECT max(id) FROM t)",
        "SELECT @w",
        "SELECT @z := 7",
        "SELECT @z",
        "SELECT /* rwsplit:master */ @o, @v, @w, @z",
    ]);
    let mut results = Vec::new();
    for runner in [TEXT, BINARY] {
        results.push(
            bounded(
                "call_out_parameter_keeps_value_and_type",
                SCENARIO_TIMEOUT,
                run_scenario("diff_outparam", &setup, &steps, runner),
            )
            .await,
        );
    }
    assert_all_ok("CALL with an OUT parameter, SELECT ... INTO, SET @x := (subquery), SELECT @x := v", results);
}

// ------------------------------------------------------------------------------------------
// 6. ROW_COUNT(), FOUND_ROWS(), LAST_INSERT_ID() and warnings are the session's own

const CHECK_SETUP: [&str; 6] = [
    "CREATE TABLE c (id INT PRIMARY KEY, v INT)",
    "INSERT INTO c SELECT seq, 0 FROM seq_1_to_20",
    "CREATE TABLE u (id INT PRIMARY KEY, v INT)",
    "INSERT INTO u SELECT seq, 0 FROM seq_1_to_50",
    "CREATE TABLE ins (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
    "CREATE TABLE bg_ins (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
];

/// The checker's statements for iteration `i` (each a separate query).
fn check_steps(i: u32) -> Vec<String> {
    let k = i % 20 + 1;
    let w = i % 3 + 1;
    let casts = (1..=w).map(|j| format!("CAST('chk{i}_{j}' AS SIGNED)")).collect::<Vec<_>>().join(", ");
    vec![
        format!("UPDATE c SET v = v + 1 WHERE id <= {k}"),
        "SELECT ROW_COUNT()".into(),
        format!("SELECT SQL_CALC_FOUND_ROWS id FROM c WHERE id <= {k} ORDER BY id LIMIT 1"),
        "SELECT FOUND_ROWS()".into(),
        format!("INSERT INTO ins (v) VALUES ({i})"),
        "SELECT LAST_INSERT_ID()".into(),
        format!("SELECT {casts}"),
        "SHOW WARNINGS".into(),
        "SHOW COUNT(*) WARNINGS".into(),
        "SELECT @@warning_count".into(),
    ]
}

/// One checker iteration on `conn`: `Err` when an answer is not what this session's own
/// previous statement said.
async fn check_iteration(conn: &mut Conn, i: u32) -> Result<(), String> {
    let steps = check_steps(i);
    let k = (i % 20 + 1) as u64;
    let w = (i % 3 + 1) as u16;
    let mut outs = Vec::new();
    for s in &steps {
        outs.push(run_step(conn, TEXT_PLAIN, s).await);
    }
    let v = |n: usize| outs[n].first_value().map(str::to_string);
    let ok = |n: usize| outs[n].sets.first().cloned().unwrap_or_default();
    let mut errs = Vec::new();
    let updated = ok(0).affected_rows;
    if updated != k || v(1) != Some(format!("\"{updated}\"")) {
        errs.push(format!("UPDATE said {updated} rows (expected {k}); SELECT ROW_COUNT() said {:?}", v(1)));
    }
    if v(3) != Some(format!("\"{k}\"")) {
        errs.push(format!("SELECT FOUND_ROWS() after a query matching {k} rows said {:?}", v(3)));
    }
    let id = ok(4).last_insert_id;
    if id.is_none() || v(5) != id.map(|id| format!("\"{id}\"")) {
        errs.push(format!("INSERT's OK said last insert id {id:?}; SELECT LAST_INSERT_ID() said {:?}", v(5)));
    }
    let warned = outs[6].total_warnings();
    let expect: Vec<Vec<String>> = (1..=w)
        .map(|j| {
            vec![
                "\"Warning\"".to_string(),
                "\"1292\"".to_string(),
                format!("\"Truncated incorrect INTEGER value: 'chk{i}_{j}'\""),
            ]
        })
        .collect();
    let shown: Vec<Vec<String>> = outs[7].sets.first().map(|s| s.rows.clone()).unwrap_or_default();
    if warned != w || shown != expect {
        errs.push(format!("`{}` warned {warned} (expected {w}); SHOW WARNINGS gave {shown:?}", steps[6]));
    }
    if v(8) != Some(format!("\"{w}\"")) || v(9) != Some(format!("\"{w}\"")) {
        errs.push(format!("SHOW COUNT(*) WARNINGS said {:?}, SELECT @@warning_count {:?} (expected {w})", v(8), v(9)));
    }
    for (s, o) in steps.iter().zip(&outs) {
        if let Some(e) = &o.error {
            errs.push(format!("`{s}` failed: {e}"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("iteration {i}: {}", errs.join("; ")))
    }
}

/// A background session's statements, changing every session-scoped counter the checker asks.
async fn background_session(
    side: Side,
    db: String,
    n: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<u64, String> {
    let mut conn = side.conn(&db).await?;
    let mut rounds = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let r = (n + rounds as u32) % 50 + 1;
        for s in [
            format!("UPDATE u SET v = v + 1 WHERE id <= {r}"),
            format!("INSERT INTO bg_ins (v) VALUES ({n})"),
            format!("SELECT SQL_CALC_FOUND_ROWS id FROM u WHERE id <= {r} LIMIT 1"),
            format!("SELECT CAST('bg{n}' AS SIGNED), CAST('bg{n}' AS SIGNED), CAST('bg{n}' AS SIGNED), CAST('bg{n}' AS SIGNED)"),
        ] {
            conn.query_drop(&s).await.map_err(|e| format!("background {n}: {s}: {e}"))?;
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = conn.disconnect().await;
    Ok(rounds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_count_found_rows_warnings_see_own_statement() {
    let _shared = CLUSTER_STATE.read().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let db = "diff_own_counts";

    // The sequence without concurrency, step by step against the master.
    let steps: Vec<String> = (0..20).flat_map(check_steps).collect();
    let sequential = bounded(
        "row_count_found_rows (sequential)",
        SCENARIO_TIMEOUT,
        run_scenario(db, &CHECK_SETUP, &steps, TEXT_PLAIN),
    )
    .await;

    // The checks hold on the master directly (they are what the server does).
    reset_db(db, &CHECK_SETUP).await.unwrap();
    let mut m = Side::Master.conn(db).await.unwrap();
    for i in 0..20 {
        check_iteration(&mut m, i).await.expect("the checks hold on the master directly");
    }

    // 500 iterations through rwsplit while 20 other sessions change the same counters.
    const ITERATIONS: u32 = 500;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bg: Vec<_> =
        (0..20).map(|n| tokio::spawn(background_session(Side::Rwsplit, db.to_string(), n, stop.clone()))).collect();
    let concurrent = timeout(Duration::from_secs(180), async {
        let mut conn = Side::Rwsplit.conn(db).await?;
        let mut failed = Vec::new();
        for i in 0..ITERATIONS {
            if let Err(e) = check_iteration(&mut conn, i).await {
                failed.push(e);
            }
        }
        Ok::<_, String>(failed)
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut bg_rounds = 0;
    for h in bg {
        match timeout(Duration::from_secs(30), h).await {
            Ok(Ok(Ok(n))) => bg_rounds += n,
            other => eprintln!("[differential] background session: {other:?}"),
        }
    }
    eprintln!("[differential] background sessions ran {bg_rounds} rounds");
    let concurrent = match concurrent {
        Err(_) => Err("the 500 concurrent iterations did not finish within 180 s".to_string()),
        Ok(Err(e)) => Err(e),
        Ok(Ok(failed)) if failed.is_empty() => Ok(()),
        Ok(Ok(failed)) => Err(format!(
            "through rwsplit with 20 concurrent sessions, {} of {ITERATIONS} iterations saw answers that were not \
             their own statement's; first: {}",
            failed.len(),
            failed[0]
        )),
    };
    assert_all_ok("ROW_COUNT(), FOUND_ROWS(), LAST_INSERT_ID(), warnings", vec![sequential, concurrent]);
}

// ------------------------------------------------------------------------------------------
// 7. Extended metadata (JSON, INET6, UUID) through the mariadb client

const EXT_SETUP: [&str; 2] = [
    "CREATE TABLE t (id INT PRIMARY KEY, j JSON, ip INET6, u UUID, p POINT NULL)",
    "INSERT INTO t VALUES (1, '{\"a\": [1, 2]}', '::1', '123e4567-e89b-12d3-a456-426655440000', NULL), \
     (2, NULL, '::ffff:192.0.2.1', NULL, POINT(1, 2))",
];

/// `mariadb --column-type-info -e sql` on `port` as app; stdout and stderr, with the connection
/// id (which legitimately differs) masked.
fn mariadb_cli(port: u16, db: &str, sql: &str) -> String {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--protocol=tcp",
            "-h127.0.0.1",
            "--connect-timeout=10",
            "--table",
            "--column-type-info",
        ])
        .arg(format!("-P{port}"))
        .arg(format!("-u{APP_USER}"))
        .arg(format!("-p{APP_PASSWORD}"))
        .arg(format!("-D{db}"))
        .args(["-e", sql])
        .stdin(Stdio::null())
        .output()
        .expect("running the mariadb client");
    let text = format!(
        "{}{}exit: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code().map_or("signal".into(), |c| c.to_string())
    );
    // "Connection id: N" lines (only from `status`), masked to be safe.
    text.lines()
        .map(|l| if l.trim_start().starts_with("Connection id") { "Connection id: <masked>" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

fn diff_text(what: &str, master: &str, rwsplit: &str) -> Result<(), String> {
    if master == rwsplit {
        return Ok(());
    }
    let (ml, pl): (Vec<&str>, Vec<&str>) = (master.lines().collect(), rwsplit.lines().collect());
    let n = ml.iter().zip(&pl).take_while(|(a, b)| a == b).count();
    Err(format!(
        "{what}: the output differs first at line {}:\n  master:  {:?}\n  rwsplit: {:?}\nmaster output:\n{master}\n\nrwsplit output:\n{rwsplit}",
        n + 1,
        ml.get(n),
        pl.get(n)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_metadata_json_column() {
    let _shared = CLUSTER_STATE.read().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let db = "diff_ext_meta";
    let mut results = Vec::new();
    reset_db(db, &EXT_SETUP).await.unwrap();
    let (mport, pport) = (Side::Master.port(), p.port());
    for sql in ["SELECT * FROM t ORDER BY id", "SELECT j, JSON_TYPE(j), ip, u FROM t ORDER BY id"] {
        let (m, r) = tokio::task::spawn_blocking(move || (mariadb_cli(mport, db, sql), mariadb_cli(pport, db, sql)))
            .await
            .unwrap();
        if sql.starts_with("SELECT *") {
            eprintln!("[differential] mariadb --column-type-info on the master:\n{m}");
        }
        results.push(diff_text(&format!("mariadb --column-type-info -e '{sql}'"), &m, &r));
    }
    // Read-only: both sides on the same data, step by step on two connections.
    let mut m = Side::Master.conn(db).await.unwrap();
    let mut r = Side::Rwsplit.conn(db).await.unwrap();
    for runner in [TEXT, BINARY] {
        for sql in ["SELECT * FROM t ORDER BY id", "SELECT j, JSON_TYPE(j), ip, u FROM t ORDER BY id"] {
            let d =
                bounded("extended_metadata_json_column", SCENARIO_TIMEOUT, compare_step(&mut m, &mut r, runner, sql))
                    .await;
            results.push(d.map_err(|e| format!("{:?} protocol: {e}", runner.proto)));
        }
    }
    assert_all_ok("JSON / INET6 / UUID column metadata", results);
}

// ------------------------------------------------------------------------------------------
// 8. A write in a READ ONLY transaction

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_in_read_only_transaction_gets_master_error() {
    let _shared = CLUSTER_STATE.read().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let setup = ["CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)"];
    let steps = strings(&[
        "START TRANSACTION READ ONLY",
        "SELECT id FROM t ORDER BY id",
        "INSERT INTO t VALUES (2)",
        "ROLLBACK",
        "INSERT INTO t VALUES (3)",
        "SELECT id FROM t ORDER BY id",
        "SET TRANSACTION READ ONLY",
        "START TRANSACTION",
        "UPDATE t SET id = 4 WHERE id = 1",
        "COMMIT",
        "SELECT id FROM t ORDER BY id",
    ]);
    let mut results = Vec::new();
    for runner in [TEXT, BINARY] {
        results.push(
            bounded(
                "write_in_read_only_transaction",
                SCENARIO_TIMEOUT,
                run_scenario("diff_ro_trx", &setup, &steps, runner),
            )
            .await,
        );
    }
    assert_all_ok("a write inside START TRANSACTION READ ONLY", results);
}

// ------------------------------------------------------------------------------------------
// 9. Named locks: a string that looks like a lock function must not release anything

async fn named_lock_observations(side: Side, db: &str) -> Result<Vec<(String, String)>, String> {
    let mut rec = Vec::new();
    let mut a = side.conn(db).await?;
    for s in ["SELECT GET_LOCK('l1', 0)", "SELECT 'release_all_locks'", "SELECT IS_FREE_LOCK('l1')"] {
        rec.push((format!("A: {s}"), run_step(&mut a, TEXT_PLAIN, s).await.render()));
    }
    for n in 0..10 {
        let mut o = side.conn(db).await?;
        for s in [
            "SELECT IS_USED_LOCK('l1') = CONNECTION_ID()",
            "SELECT /* rwsplit:master */ IS_USED_LOCK('l1') = CONNECTION_ID()",
            "SELECT GET_LOCK('l1', 0)",
        ] {
            let out = run_step(&mut o, TEXT_PLAIN, s).await;
            // NULL (no such lock where the read ran) and 0 are both "not mine".
            let v = out.first_value().unwrap_or("(none)");
            let verdict = match v {
                "\"0\"" | "NULL" => "0 or NULL".to_string(),
                other => format!("{other} (error: {:?})", out.error),
            };
            rec.push((format!("session {n}: {s}"), verdict));
        }
        let _ = o.disconnect().await;
    }
    rec.push((
        "A: SELECT RELEASE_LOCK('l1')".into(),
        run_step(&mut a, TEXT_PLAIN, "SELECT RELEASE_LOCK('l1')").await.render(),
    ));
    let _ = a.disconnect().await;
    Ok(rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_lock_release_substring_does_not_leak() {
    let _shared = CLUSTER_STATE.read().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let db = "diff_named_lock";
    reset_db(db, &[]).await.unwrap();
    let (m, r) = bounded("named_lock_release_substring_does_not_leak", SCENARIO_TIMEOUT, async {
        (named_lock_observations(Side::Master, db).await, named_lock_observations(Side::Rwsplit, db).await)
    })
    .await;
    let m = m.expect("master directly");
    let r = r.unwrap_or_else(|e| vec![("through rwsplit".into(), e)]);
    assert_all_ok("GET_LOCK, a 'release_all_locks' string, other sessions", vec![diff_records(&m, &r)]);
}

// ------------------------------------------------------------------------------------------
// 10. A sweep of types, errors, affected rows and OK info

const SWEEP_SETUP: [&str; 4] = [
    "CREATE TABLE ty (
        id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        b BIGINT, d DECIMAL(10,3), f FLOAT, g DOUBLE, dt DATE, dtm DATETIME(6), ts TIMESTAMP NULL,
        tm TIME, y YEAR, c CHAR(10), vc VARCHAR(50), bn BINARY(4), vb VARBINARY(10), bl BLOB,
        e ENUM('a','b','c'), s SET('x','y','z'), bt BIT(5), j JSON, n INT NULL
     ) CHARACTER SET utf8mb4",
    "INSERT INTO ty VALUES
        (1, -9223372036854775808, 1234567.891, 1.5, 2.25, '2024-02-29', '2024-02-29 12:34:56.123456',
         '2024-01-01 00:00:01', '-838:59:59', 2155, 'ab', 'héllo 😀', 0x01020304, 0xff00, 0xdeadbeef,
         'b', 'x,z', b'10101', '{\"a\": [1, 2]}', NULL),
        (2, 9223372036854775807, -0.001, -3.25e10, 1e-300, '1000-01-01', '9999-12-31 23:59:59.999999',
         NULL, '838:59:59', 1901, '', '', 0x00000000, '', '', 'c', '', b'0', 'null', 7),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL)",
    "CREATE TABLE k (id INT PRIMARY KEY, v INT, u INT UNIQUE)",
    "INSERT INTO k VALUES (1, 10, 1), (2, 20, 2), (3, 30, 3), (4, 40, 4)",
];

const SWEEP: [&str; 44] = [
    "SELECT * FROM ty ORDER BY id",
    "SELECT id, b, d, f, g FROM ty ORDER BY id",
    "SELECT id, dt, dtm, ts, tm, y FROM ty ORDER BY id",
    "SELECT id, c, vc, bn, vb, bl FROM ty ORDER BY id",
    "SELECT id, e, s, bt, j, n FROM ty ORDER BY id",
    "SELECT b + 0, bt + 0, HEX(bn), LENGTH(vc), CHAR_LENGTH(vc), e + 0, s + 0 FROM ty ORDER BY id",
    "SELECT SUM(d), AVG(f), MIN(dtm), MAX(tm), COUNT(*), COUNT(n), GROUP_CONCAT(e ORDER BY id) FROM ty",
    "SELECT JSON_EXTRACT(j, '$.a[1]'), JSON_TYPE(j), JSON_VALID(j) FROM ty ORDER BY id",
    "SELECT 1, -1, 1.5, 'x', NULL, 18446744073709551615, 1e10, X'00ff', _utf8mb4'😀', _latin1'é'",
    "SELECT CAST(1 AS UNSIGNED), CAST('2020-01-01' AS DATE), CAST('10:00' AS TIME), CAST(1.5 AS DECIMAL(5,2))",
    "SELECT CAST('2020-01-01 10:00:00.5' AS DATETIME(3)), CAST(2.5 AS DOUBLE), CAST('x' AS BINARY)",
    "SELECT 'a' AS x UNION SELECT 'b' ORDER BY x",
    "SELECT * FROM ty WHERE id = 0",
    "SELECT 1 FROM DUAL WHERE 0",
    "DO 1",
    "SELEC 1",
    "SELECT * FROM no_such_table",
    "SELECT no_such_column FROM ty",
    "INSERT INTO k VALUES (1, 1, 1)",
    "INSERT INTO k VALUES (9, 9, 1)",
    "SELECT 1/0",
    "SELECT 1 DIV 0, MOD(1, 0)",
    "SELECT CAST('12abc' AS SIGNED)",
    "INSERT INTO k VALUES (10, 'abc', 10)",
    "INSERT INTO ty (id, c) VALUES (100, 'far too long for ten')",
    "INSERT IGNORE INTO ty (id, c) VALUES (101, 'far too long for ten')",
    "UPDATE k SET v = v + 1 WHERE id = 999",
    "UPDATE k SET v = v + 1 WHERE id = 1",
    "UPDATE k SET v = v + 1",
    "UPDATE k SET v = v WHERE id = 1",
    "UPDATE k SET v = 20 WHERE id IN (1, 2)",
    "DELETE FROM k WHERE id = 4",
    "DELETE FROM k WHERE id = 4",
    "INSERT INTO k VALUES (1, 0, 1) ON DUPLICATE KEY UPDATE v = v + 100",
    "INSERT INTO k VALUES (1, 0, 1) ON DUPLICATE KEY UPDATE v = v",
    "INSERT INTO k VALUES (5, 50, 5) ON DUPLICATE KEY UPDATE v = v + 100",
    "REPLACE INTO k VALUES (2, 7, 2)",
    "INSERT INTO k VALUES (6, 60, 6), (7, 70, 7), (8, 80, 8)",
    "INSERT INTO ty (c) VALUES ('auto')",
    "SELECT LAST_INSERT_ID()",
    "INSERT INTO ty (id, c) VALUES (500, 'explicit')",
    "INSERT INTO ty (c) VALUES ('auto2'), ('auto3')",
    "SELECT LAST_INSERT_ID(), ROW_COUNT()",
    "SELECT * FROM k ORDER BY id",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_types_errors_match() {
    let _shared = CLUSTER_STATE.read().await;
    let p = proxy().await;
    let _log = p.log_on_panic();
    let steps = strings(&SWEEP);
    let mut results = Vec::new();
    for runner in [TEXT, BINARY] {
        results.push(
            bounded(
                "values_types_errors_match",
                SCENARIO_TIMEOUT,
                run_scenario("diff_sweep", &SWEEP_SETUP, &steps, runner),
            )
            .await,
        );
    }
    assert_all_ok("values, types, errors, affected rows", results);
}

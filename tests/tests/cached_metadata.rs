//! MariaDB's cached metadata (MARIADB_CLIENT_CACHE_METADATA, which MariaDB's own connectors
//! ask for): an execution of a prepared statement skips the column definitions while the
//! server knows the client holds them. Through rwsplit a client's statement runs on several
//! backend connections (here reads alternate between the replicas statement by statement), each
//! server remembering only what it sent itself; the client must still get what the master gives
//! it directly: at every execution the same column definitions in effect (sent, or the ones it
//! holds when skipped), the same rows and terminators, sequence ids in order. (Byte for byte
//! the two may differ in one way: a definition the client already holds may be sent again, as
//! a server does after re-preparing a statement.) Scenarios: a table's columns, `SELECT ?`
//! whose type follows the parameter, a column whose type depends on both, an ALTER TABLE
//! between executions, and a CALL with an OUT parameter (the procedure's own result set always
//! carries its definitions).

use rwsplit_tests::raw::{
    describe_packet, Ctx, Packets, Param, RawConn, BASE_CAPS, CLIENT_LONG_PASSWORD, MARIADB_CLIENT_CACHE_METADATA,
};
use rwsplit_tests::*;

/// One side's answer: every packet (sequence id, payload), the prepare's statement id zeroed.
type Answer = Packets;

fn normalize_prepare(mut packets: Answer) -> Answer {
    if let Some((_, ok)) = packets.first_mut() {
        if let Some(id) = ok.get_mut(1..5) {
            id.fill(0);
        }
    }
    packets
}

fn show(packets: &Answer) -> String {
    packets
        .iter()
        .map(|(seq, p)| format!("  #{seq} {} {}", hex(p), describe_packet(p, Ctx::Header)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn hex(p: &[u8]) -> String {
    p.iter().take(48).map(|b| format!("{b:02x}")).collect()
}

/// What a response means to a client that caches definitions: each packet's payload in
/// order, a result set's column count without its "metadata follows" byte and followed by the
/// definitions in effect (those sent, or those held from before when skipped). `held`: the
/// definitions the client holds for this statement, by result set of the response (updated).
/// Fails when the sequence ids do not count up from 1.
fn effective(packets: &Answer, cache_metadata: bool, held: &mut Held) -> Result<Vec<Vec<u8>>, String> {
    for (i, (seq, _)) in packets.iter().enumerate() {
        if usize::from(*seq) != (i + 1) % 256 {
            return Err(format!("packet {i} has sequence id {seq}"));
        }
    }
    let ps: Vec<&Vec<u8>> = packets.iter().map(|(_, p)| p).collect();
    let short = || "response ends early".to_string();
    let mut out = Vec::new();
    let mut i = 0;
    let mut result = 0;
    while let Some(&first) = ps.get(i) {
        i += 1;
        // OK (more results may follow) or ERR.
        if matches!(first.first(), Some(0x00) | Some(0xFF)) {
            out.push(first.clone());
            continue;
        }
        // A column count (one byte here), then the flag.
        let n = usize::from(*first.first().ok_or_else(short)?);
        let follows = !cache_metadata || first.get(1) == Some(&1);
        out.push(vec![first[0]]);
        if held.len() <= result {
            held.resize(result + 1, Vec::new());
        }
        if follows {
            held[result] = ps.get(i..i + n).ok_or_else(short)?.iter().map(|p| p.to_vec()).collect();
            i += n;
        } else if held[result].len() != n {
            return Err(format!("result {result}: {n} definitions skipped, {} held", held[result].len()));
        }
        out.extend(held[result].iter().cloned());
        result += 1;
        // The EOF after the definitions, then rows up to the terminator (EOF or ERR).
        out.push(ps.get(i).ok_or_else(short)?.to_vec());
        i += 1;
        loop {
            let p = ps.get(i).ok_or_else(short)?;
            i += 1;
            out.push(p.to_vec());
            if p.first() == Some(&0xFF) || p.first() == Some(&0xFE) && p.len() < 9 {
                break;
            }
        }
    }
    Ok(out)
}

/// The column definitions of a PREPARE response (OK, parameters and EOF, columns and EOF).
fn prepared_columns(packets: &Answer) -> Vec<Vec<u8>> {
    let ok = &packets[0].1;
    let (columns, params) =
        (usize::from(u16::from_le_bytes([ok[5], ok[6]])), usize::from(u16::from_le_bytes([ok[7], ok[8]])));
    let skip = 1 + if params > 0 { params + 1 } else { 0 };
    packets.iter().skip(skip).take(columns).map(|(_, p)| p.clone()).collect()
}

/// Column definitions a client holds for a statement, by result set of a response.
type Held = Vec<Vec<Vec<u8>>>;

/// The same client on both sides.
struct Pair {
    direct: RawConn,
    proxied: RawConn,
    cache_metadata: bool,
    /// Statement ids (direct, proxied) by name, and the definitions each side's client holds.
    stmts: Vec<(&'static str, u32, u32, Held, Held)>,
    steps: usize,
}

impl Pair {
    fn prepare(&mut self, name: &'static str, sql: &str) {
        let (d_id, d) = self.direct.prepare(sql).expect("prepare on the master");
        let (p_id, p) = self.proxied.prepare(sql).expect("prepare through rwsplit");
        let (d, p) = (normalize_prepare(d), normalize_prepare(p));
        assert_eq!(d, p, "PREPARE {sql}:\nmaster:\n{}\nrwsplit:\n{}", show(&d), show(&p));
        // The client holds the statement's column definitions from PREPARE.
        let held = vec![prepared_columns(&d)];
        self.stmts.push((name, d_id, p_id, held.clone(), held));
    }

    /// Runs the execution on both sides and compares; returns whether the master sent the
    /// definitions.
    fn execute(&mut self, name: &str, params: &[Param]) -> bool {
        let cache = self.cache_metadata;
        let (_, d_id, p_id, d_held, p_held) = self.stmts.iter_mut().find(|s| s.0 == name).expect("prepared");
        let d = self.direct.execute(*d_id, params).expect("execute on the master");
        let p = self.proxied.execute(*p_id, params).expect("execute through rwsplit");
        self.steps += 1;
        let what = format!("step {}: EXECUTE {name} {params:?}", self.steps);
        let de = effective(&d, cache, d_held).unwrap_or_else(|e| panic!("{what}: master: {e}\n{}", show(&d)));
        let pe = effective(&p, cache, p_held).unwrap_or_else(|e| panic!("{what}: rwsplit: {e}\n{}", show(&p)));
        assert_eq!(de, pe, "{what}:\nmaster:\n{}\nrwsplit:\n{}", show(&d), show(&p));
        if !cache {
            assert_eq!(d, p, "{what}: byte for byte without cached metadata");
        }
        // Whether the server sent the definitions (first packet: count, then the flag).
        d.first().is_some_and(|(_, c)| c.get(1) == Some(&1))
    }
}

fn scenario(cache_metadata: bool) {
    let cluster = Cluster::shared();
    let proxy = tokio::task::block_in_place(Proxy::shared_alternating);
    let _log = proxy.log_on_panic();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = if cache_metadata { "cachedmeta_on" } else { "cachedmeta_off" };
    rt.block_on(async {
        cluster.fresh_db(db).await?;
        cluster.exec(MASTER, &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, c VARCHAR(20))")).await?;
        cluster.exec(MASTER, &format!("INSERT INTO {db}.t VALUES (1, 'a'), (2, 'bb')")).await?;
        cluster
            .exec(
                MASTER,
                &format!("CREATE PROCEDURE {db}.p(IN a INT, OUT b INT) BEGIN SELECT a AS x; SET b = a * 2; END"),
            )
            .await?;
        cluster.wait_replicated().await
    })
    .expect("schema");
    rt.block_on(proxy.wait_reads_on_replicas(std::time::Duration::from_secs(30))).expect("replicas in use");

    // Without CLIENT_LONG_PASSWORD (CLIENT_MYSQL) a MariaDB server reads the extended bits.
    let caps = BASE_CAPS & !CLIENT_LONG_PASSWORD;
    let ext = if cache_metadata { MARIADB_CLIENT_CACHE_METADATA } else { 0 };
    let connect = |port| RawConn::connect_mariadb(port, APP_USER, APP_PASSWORD, db, caps, ext).expect("login");
    let mut pair = Pair {
        direct: connect(cluster.port(MASTER)),
        proxied: connect(proxy.port()),
        cache_metadata,
        stmts: Vec::new(),
        steps: 0,
    };

    pair.prepare("columns", "SELECT id, c FROM t WHERE id = ?");
    pair.prepare("param", "SELECT ?");
    pair.prepare("mixed", "SELECT CONCAT(?, c) FROM t WHERE id = 1");
    pair.prepare("call", "CALL p(?, ?)");
    let mut sent = 0;
    let mut skipped = 0;
    let mut count = |s: bool| if s { sent += 1 } else { skipped += 1 };
    for id in [1, 2, 1, 2] {
        count(pair.execute("columns", &[Param::Int(id)]));
    }
    let values = [
        Param::Int(5),
        Param::Null,
        Param::Int(6),
        Param::Null,
        Param::Str("x".into()),
        Param::Int(6),
        Param::Str("yy".into()),
        Param::Int(7),
        Param::Null,
    ];
    for v in &values {
        count(pair.execute("param", std::slice::from_ref(v)));
    }
    for v in [Param::Int(1), Param::Str("q".into()), Param::Str("r".into()), Param::Int(2)] {
        count(pair.execute("mixed", &[v]));
    }
    for a in [3, 4, 3] {
        pair.execute("call", &[Param::Int(a), Param::Int(0)]);
    }
    // The table changes under the prepared statements: the servers send new definitions.
    rt.block_on(async {
        cluster.exec(MASTER, &format!("ALTER TABLE {db}.t MODIFY c VARCHAR(40)")).await?;
        cluster.wait_replicated().await
    })
    .expect("alter");
    for id in [1, 2, 1, 2] {
        count(pair.execute("columns", &[Param::Int(id)]));
    }
    for v in values.iter().rev() {
        count(pair.execute("param", std::slice::from_ref(v)));
    }
    if cache_metadata {
        // The scenario covers both answers (else it could not catch a wrong one).
        assert!(sent > 0 && skipped > 0, "definitions sent {sent} times, skipped {skipped} times");
    }
}

#[test]
fn prepared_statements_with_cached_metadata_match_the_master() {
    scenario(true);
}

#[test]
fn prepared_statements_without_cached_metadata_match_the_master() {
    scenario(false);
}

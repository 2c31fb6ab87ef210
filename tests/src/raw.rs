//! A byte-level MySQL client for protocol corners no client library exposes (COM_SET_OPTION,
//! logging in without CLIENT_MULTI_STATEMENTS, ...): blocking, classic EOF packets (no
//! CLIENT_DEPRECATE_EOF), `mysql_native_password` (with auth switch). Responses can be decoded
//! into readable [`Packet`]s so that two servers' answers compare packet by packet.

use anyhow::{bail, Context, Result};
use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
pub const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
pub const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
pub const CLIENT_MULTI_STATEMENTS: u32 = 0x0001_0000;
pub const CLIENT_MULTI_RESULTS: u32 = 0x0002_0000;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;

/// The capabilities [`RawConn::connect`] announces by default: no CLIENT_MULTI_STATEMENTS, no
/// CLIENT_DEPRECATE_EOF, no session tracking.
pub const BASE_CAPS: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH;

pub const COM_QUERY: u8 = 0x03;
pub const COM_PING: u8 = 0x0E;
pub const COM_SET_OPTION: u8 = 0x1B;
/// COM_SET_OPTION arguments.
pub const MYSQL_OPTION_MULTI_STATEMENTS_ON: u16 = 0;
pub const MYSQL_OPTION_MULTI_STATEMENTS_OFF: u16 = 1;

const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

/// MariaDB extended capabilities (the handshake response's last 4 reserved bytes, read only
/// from clients that leave CLIENT_LONG_PASSWORD out).
pub const MARIADB_CLIENT_CACHE_METADATA: u32 = 1 << 4;

pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;

/// A raw client connection.
pub struct RawConn {
    pub stream: TcpStream,
    /// The connection id from the server's handshake.
    pub connection_id: u32,
    /// MARIADB_CLIENT_CACHE_METADATA was asked for: a column count carries a "metadata
    /// follows" byte.
    pub cache_metadata: bool,
}

/// A parameter value of [`RawConn::execute`].
#[derive(Debug, Clone)]
pub enum Param {
    Int(i64),
    Str(String),
    Null,
}

/// `mysql_native_password` scramble of `password` for `nonce`.
pub fn native_scramble(password: &str, nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha1::digest(password.as_bytes());
    let h2 = Sha1::digest(h1);
    let mut m = Sha1::new();
    m.update(nonce);
    m.update(h2);
    let mask = m.finalize();
    h1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

impl RawConn {
    /// Reads one packet: (sequence id, payload).
    pub fn read(&mut self) -> Result<(u8, Vec<u8>)> {
        let mut h = [0u8; 4];
        self.stream.read_exact(&mut h).context("reading a packet header")?;
        let len = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
        let mut p = vec![0; len];
        self.stream.read_exact(&mut p).context("reading a packet payload")?;
        Ok((h[3], p))
    }

    /// Writes one packet with sequence id `seq`.
    pub fn write(&mut self, seq: u8, payload: &[u8]) -> Result<()> {
        let len = payload.len() as u32;
        let mut b = len.to_le_bytes()[..3].to_vec();
        b.push(seq);
        b.extend_from_slice(payload);
        self.stream.write_all(&b).context("writing a packet")?;
        Ok(())
    }

    /// Connects and logs in as `user` with `caps` (e.g. [`BASE_CAPS`]) on database `db`.
    pub fn connect(port: u16, user: &str, password: &str, db: &str, caps: u32) -> Result<RawConn> {
        RawConn::connect_mariadb(port, user, password, db, caps, 0)
    }

    /// [`RawConn::connect`] asking also for MariaDB extended capabilities `mariadb_caps` (give
    /// `caps` without CLIENT_LONG_PASSWORD for the server to read them).
    pub fn connect_mariadb(
        port: u16,
        user: &str,
        password: &str,
        db: &str,
        caps: u32,
        mariadb_caps: u32,
    ) -> Result<RawConn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).with_context(|| format!("connecting to port {port}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let cache_metadata = mariadb_caps & MARIADB_CLIENT_CACHE_METADATA != 0;
        let mut r = RawConn { stream, connection_id: 0, cache_metadata };
        let (_, g) = r.read()?;
        if g.first() != Some(&10) {
            bail!("not a protocol 10 greeting: {g:?}");
        }
        let ver_end = g.iter().position(|&b| b == 0).context("greeting: server version")?;
        let mut at = ver_end + 1;
        r.connection_id = u32::from_le_bytes(g[at..at + 4].try_into()?);
        at += 4;
        let mut nonce = g[at..at + 8].to_vec();
        at += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
        nonce.extend_from_slice(&g[at..at + 12]);
        let scramble = native_scramble(password, &nonce);
        let mut p = (caps | CLIENT_CONNECT_WITH_DB).to_le_bytes().to_vec();
        p.extend_from_slice(&(1u32 << 24).to_le_bytes());
        p.push(45); // utf8mb4_general_ci
        p.extend_from_slice(&[0; 19]);
        p.extend_from_slice(&mariadb_caps.to_le_bytes());
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(scramble.len() as u8);
        p.extend_from_slice(&scramble);
        p.extend_from_slice(db.as_bytes());
        p.push(0);
        p.extend_from_slice(b"mysql_native_password\0");
        r.write(1, &p)?;
        let (seq, mut resp) = r.read()?;
        if resp.first() == Some(&0xFE) {
            // Auth switch request: plugin name, then the new nonce.
            let name_end = resp[1..].iter().position(|&b| b == 0).map(|i| i + 1).unwrap_or(resp.len());
            let plugin = String::from_utf8_lossy(&resp[1..name_end]).into_owned();
            if plugin != "mysql_native_password" {
                bail!("auth switch to unsupported plugin {plugin}");
            }
            let mut nonce = resp[name_end + 1..].to_vec();
            if nonce.last() == Some(&0) {
                nonce.pop();
            }
            r.write(seq.wrapping_add(1), &native_scramble(password, &nonce))?;
            resp = r.read()?.1;
        }
        if resp.first() != Some(&0) {
            bail!("login failed: {}", describe_packet(&resp, Ctx::Header));
        }
        Ok(r)
    }

    /// Sends a command (sequence 0) without reading anything.
    pub fn send(&mut self, payload: &[u8]) -> Result<()> {
        self.write(0, payload)
    }

    /// Sends a command and reads the one packet that answers it (its payload).
    pub fn command(&mut self, payload: &[u8]) -> Result<Vec<u8>> {
        self.send(payload)?;
        Ok(self.read()?.1)
    }

    /// COM_QUERY, then the whole response (every result set while more results exist).
    pub fn query(&mut self, sql: &str) -> Result<Vec<Packet>> {
        let mut p = vec![COM_QUERY];
        p.extend_from_slice(sql.as_bytes());
        self.send(&p)?;
        self.response()
    }

    /// COM_SET_OPTION, then its response (EOF or ERR).
    pub fn set_option(&mut self, option: u16) -> Result<Vec<Packet>> {
        let mut p = vec![COM_SET_OPTION];
        p.extend_from_slice(&option.to_le_bytes());
        self.send(&p)?;
        let (_, pkt) = self.read()?;
        Ok(vec![decode(&pkt, Ctx::Header)])
    }

    /// All packets of a text-protocol response, decoded; follows SERVER_MORE_RESULTS_EXISTS.
    pub fn response(&mut self) -> Result<Vec<Packet>> {
        let mut out = Vec::new();
        loop {
            let (_, first) = self.read()?;
            let head = decode(&first, Ctx::Header);
            out.push(head.clone());
            let more = match head {
                Packet::Ok { status, .. } => status & SERVER_MORE_RESULTS_EXISTS != 0,
                Packet::ColumnCount(n) => {
                    for _ in 0..n {
                        let (_, p) = self.read()?;
                        out.push(decode(&p, Ctx::ColumnDef));
                    }
                    let (_, eof) = self.read()?;
                    out.push(decode(&eof, Ctx::Row));
                    loop {
                        let (_, p) = self.read()?;
                        let pk = decode(&p, Ctx::Row);
                        out.push(pk.clone());
                        match pk {
                            Packet::Eof { status, .. } => break status & SERVER_MORE_RESULTS_EXISTS != 0,
                            Packet::Err { .. } => break false,
                            _ => {}
                        }
                    }
                }
                _ => false,
            };
            if !more {
                return Ok(out);
            }
        }
    }
}

/// Every packet of a response: (sequence id, payload).
pub type Packets = Vec<(u8, Vec<u8>)>;

impl RawConn {
    /// COM_STMT_PREPARE: the statement id and every packet of the response, classic EOF
    /// packets.
    pub fn prepare(&mut self, sql: &str) -> Result<(u32, Packets)> {
        let mut p = vec![COM_STMT_PREPARE];
        p.extend_from_slice(sql.as_bytes());
        self.send(&p)?;
        let (seq, ok) = self.read()?;
        if ok.first() != Some(&0) || ok.len() < 9 {
            bail!("prepare of {sql:?} failed: {}", describe_packet(&ok, Ctx::Header));
        }
        let id = u32::from_le_bytes(ok[1..5].try_into()?);
        let columns = u16_at(&ok, 5);
        let params = u16_at(&ok, 7);
        let mut out = vec![(seq, ok)];
        for n in [params, columns] {
            if n > 0 {
                for _ in 0..=n {
                    out.push(self.read()?);
                }
            }
        }
        Ok((id, out))
    }

    /// COM_STMT_EXECUTE of statement `id` with `params` (types sent), no cursor: every packet
    /// of the response (sequence id, payload), every result set while more exist.
    pub fn execute(&mut self, id: u32, params: &[Param]) -> Result<Packets> {
        let mut p = vec![COM_STMT_EXECUTE];
        p.extend_from_slice(&id.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&1u32.to_le_bytes());
        if !params.is_empty() {
            let mut nulls = vec![0u8; params.len().div_ceil(8)];
            for (i, v) in params.iter().enumerate() {
                if matches!(v, Param::Null) {
                    nulls[i / 8] |= 1 << (i % 8);
                }
            }
            p.extend_from_slice(&nulls);
            p.push(1);
            for v in params {
                p.extend_from_slice(match v {
                    Param::Int(_) => &[8, 0],
                    Param::Str(_) => &[253, 0],
                    Param::Null => &[6, 0],
                });
            }
            for v in params {
                match v {
                    Param::Int(i) => p.extend_from_slice(&i.to_le_bytes()),
                    Param::Str(s) => {
                        p.push(u8::try_from(s.len()).context("short strings only")?);
                        p.extend_from_slice(s.as_bytes());
                    }
                    Param::Null => {}
                }
            }
        }
        self.send(&p)?;
        self.binary_response()
    }

    /// Every packet of the response to a COM_STMT_EXECUTE already sent (sequence id,
    /// payload), every result set while more exist.
    pub fn binary_response(&mut self) -> Result<Packets> {
        let mut out = Vec::new();
        loop {
            let (seq, first) = self.read()?;
            let head = decode(&first, Ctx::Header);
            // With cached metadata the column count is followed by "metadata follows".
            let follows = !self.cache_metadata || {
                let mut at = 0;
                lenenc_int(&first, &mut at);
                first.get(at) == Some(&1)
            };
            out.push((seq, first));
            let more = match head {
                Packet::Ok { status, .. } => status & SERVER_MORE_RESULTS_EXISTS != 0,
                Packet::ColumnCount(n) => {
                    if follows {
                        for _ in 0..n {
                            out.push(self.read()?);
                        }
                    }
                    out.push(self.read()?); // EOF after the (maybe skipped) definitions
                    loop {
                        let (seq, p) = self.read()?;
                        let end = match p.first() {
                            Some(0xFE) if p.len() < 9 => Some(u16_at(&p, 3) & SERVER_MORE_RESULTS_EXISTS != 0),
                            Some(0xFF) => Some(false),
                            _ => None,
                        };
                        out.push((seq, p));
                        if let Some(more) = end {
                            break more;
                        }
                    }
                }
                _ => false,
            };
            if !more {
                return Ok(out);
            }
        }
    }
}

/// Where a packet is in a response, which decides how it is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    /// The first packet of a response: OK, ERR, EOF, LOCAL INFILE or a column count.
    Header,
    ColumnDef,
    /// A text row, or the EOF/ERR that ends rows.
    Row,
}

/// A decoded packet (the fields that matter to a client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Ok {
        affected: u64,
        insert_id: u64,
        status: u16,
        warnings: u16,
        info: String,
    },
    Err {
        code: u16,
        state: String,
        message: String,
    },
    Eof {
        warnings: u16,
        status: u16,
    },
    ColumnCount(u64),
    ColumnDef {
        schema: String,
        table: String,
        org_table: String,
        name: String,
        org_name: String,
        charset: u16,
        length: u32,
        ty: u8,
        flags: u16,
        decimals: u8,
    },
    Row(Vec<Option<String>>),
    Other(Vec<u8>),
}

fn lenenc_int(p: &[u8], at: &mut usize) -> u64 {
    let b = p.get(*at).copied().unwrap_or(0);
    *at += 1;
    let n = match b {
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return b as u64,
    };
    let mut v = 0u64;
    for i in 0..n {
        v |= (p.get(*at + i).copied().unwrap_or(0) as u64) << (8 * i);
    }
    *at += n;
    v
}

fn lenenc_str(p: &[u8], at: &mut usize) -> Option<String> {
    if p.get(*at) == Some(&0xFB) {
        *at += 1;
        return None;
    }
    let n = lenenc_int(p, at) as usize;
    let end = (*at + n).min(p.len());
    let s = String::from_utf8_lossy(&p[*at..end]).into_owned();
    *at = end;
    Some(s)
}

fn u16_at(p: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([p.get(at).copied().unwrap_or(0), p.get(at + 1).copied().unwrap_or(0)])
}

/// Decodes `p` found at position `ctx` of a response.
pub fn decode(p: &[u8], ctx: Ctx) -> Packet {
    match (p.first().copied(), ctx) {
        (Some(0xFF), _) => {
            let code = u16_at(p, 1);
            let (state, msg_at) = if p.get(3) == Some(&b'#') {
                (String::from_utf8_lossy(&p[4..9.min(p.len())]).into_owned(), 9)
            } else {
                (String::new(), 3)
            };
            Packet::Err { code, state, message: String::from_utf8_lossy(&p[msg_at.min(p.len())..]).into_owned() }
        }
        (Some(0xFE), Ctx::Header | Ctx::Row) if p.len() < 9 => {
            Packet::Eof { warnings: u16_at(p, 1), status: u16_at(p, 3) }
        }
        (Some(0x00), Ctx::Header) => {
            let mut at = 1;
            let affected = lenenc_int(p, &mut at);
            let insert_id = lenenc_int(p, &mut at);
            let status = u16_at(p, at);
            let warnings = u16_at(p, at + 2);
            let info = String::from_utf8_lossy(&p[(at + 4).min(p.len())..]).into_owned();
            Packet::Ok { affected, insert_id, status, warnings, info }
        }
        (Some(_), Ctx::Header) => {
            let mut at = 0;
            Packet::ColumnCount(lenenc_int(p, &mut at))
        }
        (Some(_), Ctx::ColumnDef) => {
            let mut at = 0;
            let mut s = || lenenc_str(p, &mut at).unwrap_or_default();
            let _catalog = s();
            let (schema, table, org_table, name, org_name) = (s(), s(), s(), s(), s());
            let _fixed = lenenc_int(p, &mut at);
            let charset = u16_at(p, at);
            let length = u32::from_le_bytes(p.get(at + 2..at + 6).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
            Packet::ColumnDef {
                schema,
                table,
                org_table,
                name,
                org_name,
                charset,
                length,
                ty: p.get(at + 6).copied().unwrap_or(0),
                flags: u16_at(p, at + 7),
                decimals: p.get(at + 9).copied().unwrap_or(0),
            }
        }
        (Some(_), Ctx::Row) => {
            let mut at = 0;
            let mut cols = Vec::new();
            while at < p.len() {
                cols.push(lenenc_str(p, &mut at));
            }
            Packet::Row(cols)
        }
        (None, _) => Packet::Other(Vec::new()),
    }
}

/// One line describing a packet (for messages).
pub fn describe_packet(p: &[u8], ctx: Ctx) -> String {
    format!("{:?}", decode(p, ctx))
}

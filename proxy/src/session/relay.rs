//! Relaying one response from a backend connection to the client. Whole chunks are moved from
//! the backend's read buffer to the client's write buffer as they arrive; the pure response
//! tracker ([`crate::protocol::response::ResponseTracker`]) decides where the response ends,
//! looking at each chunk except runs of plain rows, which it passes over in one scan.
//! Rows are never decoded or re-encoded. With MariaDB's cached metadata the statement's column
//! definitions are fingerprinted as they pass, and definitions a server skipped but the client
//! lacks are put in ([`Metadata`]).

use crate::backend::BackendConn;
use crate::error::BackendCause;
use crate::protocol::connection::{ConnError, PacketStream};
use crate::protocol::frame::{check_chunk, HEADER};
use crate::protocol::packets::ok_without_session_state;
use crate::protocol::packets::read_lenenc;
use crate::protocol::response::{Expect, Fed, Outcome, Step};
use crate::protocol::session_track::{ok_state_changes, StateChanges};
use crate::protocol::{CapabilityFlags, StatusFlags};
use crate::runtime::Timeouts;
use crate::sessions::SessionEntry;
use std::time::Duration;

/// Flush to the client once this much is queued, even if more is buffered.
const FLUSH_AT: usize = 256 * 1024;

/// Most bytes read ahead from a client while its statement runs (enough to notice a hang-up).
const READ_AHEAD: usize = 16 * 1024;

/// How a relay failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The backend failed; `before_client` is true when no byte reached the client yet (the
    /// statement may be retried elsewhere if it is a read).
    #[error("{detail}")]
    Backend { cause: BackendCause, detail: String, before_client: bool },
    /// Writing to or reading from the client failed.
    #[error("client: {0}")]
    Client(ConnError),
}

impl RelayError {
    /// A socket-level failure on the backend side.
    pub fn from_conn(e: &ConnError, before_client: bool) -> Self {
        RelayError::Backend { cause: BackendCause::of(e), detail: e.to_string(), before_client }
    }
}

/// MariaDB's cached metadata (MARIADB_CLIENT_CACHE_METADATA), for the response to
/// COM_STMT_PREPARE or COM_STMT_EXECUTE on a connection that has it: which column definitions
/// of the statement reached the client, and those to put in when the server skips definitions
/// the client does not hold (it holds what another connection sent; see `session::prepared`).
#[derive(Debug, Default)]
pub struct Metadata {
    /// The statement is a CALL: only its OUT-parameter result set is the statement's own (a
    /// procedure's result sets always carry their definitions and leave the server's memory
    /// of the statement alone).
    pub call: bool,
    /// What the server holds as sent when that differs from what the client holds: if the
    /// server skips the definitions, these go to the client in their place (the flag says
    /// "follows", later packets are renumbered).
    pub insert: Option<Vec<Vec<u8>>>,
    /// Out: fingerprint of the statement's own column definitions that reached the client in
    /// this response (sent by the server or put in by rwsplit); `None` when none did.
    pub sent: Option<u64>,
}

/// Fingerprint of a statement's column definitions (their payloads, in order).
pub fn metadata_fingerprint<'a>(definitions: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h = MetadataHash::default();
    for d in definitions {
        h.add(d);
    }
    h.finish()
}

#[derive(Default)]
struct MetadataHash(std::hash::DefaultHasher, usize);

impl MetadataHash {
    fn add(&mut self, definition: &[u8]) {
        use std::hash::Hasher;
        self.0.write_usize(definition.len());
        self.0.write(definition);
        self.1 += 1;
    }

    fn finish(&self) -> u64 {
        std::hash::Hasher::finish(&self.0)
    }
}

/// Sends nothing; relays the backend's response to the command already sent on `conn`.
/// `patch_stmt_id`: for COM_STMT_PREPARE, the client-facing id written over the backend's.
/// `flush_end`: false leaves the response's last bytes queued on `client`, so the caller can
/// finish work that must precede the client seeing the end (learning a write's GTID) and
/// flush then. Returns the outcome and, when OK packets of the response reported session
/// state changes, what they said together (see `protocol::session_track`). `metadata`: see
/// [`Metadata`] (`None`: not followed). `session`: the session's entry, which says when the
/// monitor marked the statement's server down ([`SessionEntry::abort`]).
#[allow(clippy::too_many_arguments)]
pub async fn relay(
    client: &mut PacketStream,
    conn: &mut BackendConn,
    expect: Expect,
    timeouts: &Timeouts,
    session: &SessionEntry,
    patch_stmt_id: Option<u32>,
    flush_end: bool,
    mut metadata: Option<&mut Metadata>,
) -> Result<(Outcome, Option<StateChanges>), RelayError> {
    let (backend_timeout, client_timeout) = (timeouts.backend_response, timeouts.client_write);
    // Only a signal sent while this statement runs counts.
    let mut aborts = session.aborts_seen();
    let mut tracker = conn.response_tracker(expect);
    let mut sent_any = false;
    let mut first = true;
    let mut changes: Option<StateChanges> = None;
    let plain_ok = !conn.key.contains(CapabilityFlags::CLIENT_SESSION_TRACK)
        && conn.hello.capabilities.contains(CapabilityFlags::CLIENT_SESSION_TRACK);
    // Cached metadata: the definitions of the result set (or prepared statement) being
    // relayed, and how far later packets' sequence ids move after definitions put in.
    let mut definitions = (expect == Expect::Prepare).then(MetadataHash::default);
    let mut shift = 0u8;
    loop {
        // Walk the complete chunks already buffered.
        let mut n = 0;
        let mut done = None;
        let mut infile = false;
        loop {
            if shift == 0 {
                // Rows pass as they are, in bulk: only what follows them is fed one by one.
                let rows = tracker.rows_ahead(&conn.stream.buffered()[n..], FLUSH_AT.saturating_sub(n));
                if rows > 0 {
                    n += rows;
                    first = false;
                }
            }
            let Some(mut c) = check_chunk(&conn.stream.buffered()[n..]) else { break };
            if shift != 0 {
                c.seq = c.seq.wrapping_add(shift);
                if let Some(b) = conn.stream.buffered_mut().get_mut(n + 3) {
                    *b = c.seq;
                }
            }
            let buf = conn.stream.buffered();
            let head = &buf[n + HEADER..n + HEADER + c.len.min(64)];
            let step = tracker.feed(c, head).map_err(|v| RelayError::Backend {
                cause: BackendCause::Protocol,
                detail: v.to_string(),
                before_client: !sent_any,
            })?;
            let mut insert = None;
            if let Some(m) = metadata.as_deref_mut() {
                match tracker.fed() {
                    Fed::ColumnCount { follows: true, .. } => definitions = Some(MetadataHash::default()),
                    Fed::ColumnCount { follows: false, flag_at } => {
                        definitions = None;
                        if let (Some(defs), Some(at)) = (m.insert.take(), flag_at) {
                            // The server skips what the client does not hold: rwsplit sends it.
                            let columns = read_lenenc(head).map(|(k, _)| k);
                            if columns != Some(defs.len() as u64) {
                                return Err(RelayError::Backend {
                                    cause: BackendCause::Protocol,
                                    detail: "column count differs from the statement's definitions".into(),
                                    before_client: !sent_any,
                                });
                            }
                            if let Some(flag) = conn.stream.buffered_mut().get_mut(n + HEADER + at) {
                                *flag = 1;
                            }
                            insert = Some(defs);
                        }
                    }
                    Fed::ColumnDef => {
                        if let Some(h) = definitions.as_mut() {
                            h.add(&buf[n + HEADER..n + c.total()]);
                        }
                    }
                    Fed::ResultEnd => {
                        // A procedure's own result sets leave the statement's memory alone.
                        let own =
                            !m.call || tracker.status().is_some_and(|s| s.contains(StatusFlags::SERVER_PS_OUT_PARAMS));
                        if let Some(h) = definitions.take() {
                            if own {
                                m.sent = Some(h.finish());
                            }
                        }
                    }
                    Fed::Other => {}
                }
                if expect == Expect::Prepare && matches!(step, Step::Done(_)) {
                    m.sent = definitions.take().filter(|h| h.1 > 0).map(|h| h.finish());
                }
            }
            let buf = conn.stream.buffered();
            if tracker.fed_state_change() {
                // Every OK counts, not only the last: in a multi-statement that fails part way,
                // the statements before the error committed (and their GTIDs matter).
                if let Some(c) = ok_state_changes(&buf[n + HEADER..n + c.total()], conn.hello.capabilities) {
                    let merged = changes.get_or_insert_with(StateChanges::default);
                    merged.other |= c.other;
                    if c.gtid.is_some() {
                        merged.gtid = c.gtid;
                    }
                }
            }
            // The client did not negotiate session tracking: it gets OK packets in their plain
            // form. What came before it goes out first, in order.
            let plain = if plain_ok && tracker.fed_ok() {
                ok_without_session_state(&buf[n + HEADER..n + c.total()])
            } else {
                None
            };
            if let Some(plain) = plain {
                if n > 0 {
                    conn.stream.move_raw_to(n, client);
                }
                conn.stream.discard(c.total());
                client.queue(c.seq, &plain);
                sent_any = true;
                first = false;
                n = 0;
            } else {
                if first {
                    first = false;
                    // The tracker has read the backend's statement id; the client gets its own.
                    if let Some(id) = patch_stmt_id {
                        let buf = conn.stream.buffered_mut();
                        if buf.get(n + HEADER) == Some(&0x00) && c.len >= 5 {
                            buf[n + HEADER + 1..n + HEADER + 5].copy_from_slice(&id.to_le_bytes());
                        }
                    }
                }
                n += c.total();
            }
            if let Some(defs) = insert {
                conn.stream.move_raw_to(n, client);
                n = 0;
                let mut h = MetadataHash::default();
                for (i, d) in defs.iter().enumerate() {
                    client.queue(c.seq.wrapping_add(1).wrapping_add(i as u8), d);
                    h.add(d);
                }
                definitions = Some(h);
                shift = shift.wrapping_add(defs.len() as u8);
                sent_any = true;
            }
            match step {
                Step::More => {}
                Step::LocalInfile => {
                    infile = true;
                    break;
                }
                Step::Done(o) => {
                    done = Some(o);
                    break;
                }
            }
            if n >= FLUSH_AT {
                break;
            }
        }
        if n > 0 {
            conn.stream.move_raw_to(n, client);
            sent_any = true;
        }
        if let Some(outcome) = done {
            if !conn.stream.buffered().is_empty() {
                return Err(RelayError::Backend {
                    cause: BackendCause::Protocol,
                    detail: "server sent data after the end of a response".into(),
                    before_client: false,
                });
            }
            if flush_end {
                client.flush(client_timeout).await.map_err(RelayError::Client)?;
            }
            return Ok((outcome, changes));
        }
        if infile {
            client.flush(client_timeout).await.map_err(RelayError::Client)?;
            // Boxed: rare, and kept out of every statement's future.
            Box::pin(upload(client, conn, backend_timeout, client_timeout)).await?;
            continue;
        }
        if client.queued() > 0 && (conn.stream.buffered().len() < HEADER || client.queued() >= FLUSH_AT) {
            client.flush(client_timeout).await.map_err(RelayError::Client)?;
        }
        if check_chunk(conn.stream.buffered()).is_none() {
            // While the server works, watch the client too: one that hangs up is noticed now,
            // not when the result is ready (the caller then stops the statement). Bytes a
            // pipelining client sends meanwhile stay buffered for its next command.
            tokio::select! {
                // The server's response first: it is what wakes a relay nearly always.
                biased;
                r = conn.stream.fill(backend_timeout) => {
                    r.map_err(|e| RelayError::from_conn(&e, !sent_any))?;
                }
                // The monitor marked this connection's server down: the statement will not
                // be answered in useful time.
                server = std::future::poll_fn(|cx| session.poll_abort(cx, &mut aborts)) => {
                    if server == conn.server {
                        return Err(RelayError::Backend {
                            cause: BackendCause::Closed,
                            detail: "the monitor marked the server down while it ran the statement".into(),
                            before_client: !sent_any,
                        });
                    }
                }
                // Backpressure: beyond a small read-ahead the client is not read until its
                // next command, so TCP holds back a client that pipelines without limit.
                r = client.read_ahead(), if client.buffered().len() < READ_AHEAD => {
                    r.map_err(RelayError::Client)?;
                }
            }
        }
    }
}

/// LOAD DATA LOCAL INFILE: the client's file content, up to and including the empty packet
/// that ends it, goes to the server as it comes.
async fn upload(
    client: &mut PacketStream,
    conn: &mut BackendConn,
    backend_timeout: Duration,
    client_timeout: Duration,
) -> Result<(), RelayError> {
    let mut continued = false;
    loop {
        let c = client.next_chunk(client_timeout).await.map_err(RelayError::Client)?;
        client.move_raw_to(c.total(), &mut conn.stream);
        let last = c.len == 0 && !continued;
        continued = c.continues();
        if last || conn.stream.queued() >= FLUSH_AT {
            conn.stream.flush(backend_timeout).await.map_err(|e| RelayError::from_conn(&e, false))?;
        }
        if last {
            return Ok(());
        }
    }
}

//! Following a server's response without decoding it. The relay feeds every chunk's header and
//! first bytes to a [`ResponseTracker`]; the tracker says whether more packets belong to this
//! response, whether the server asked for a LOCAL INFILE upload, and, at the end, the final
//! status flags and whether it ended in an error. Rows are never parsed: a row packet only
//! moves the tracker when it is a terminator (0xFE, short) or an ERR (0xFF), and the chunks
//! that are certainly rows can be passed over in bulk ([`ResponseTracker::rows_ahead`]).
//!
//! Pure: no IO, tested packet by packet.

use super::frame::{check_chunk, Chunk, HEADER};
use super::packets::{eof_status, eof_warnings, ok_head, read_lenenc, EOF, ERR, LOCAL_INFILE, OK};
use super::StatusFlags;

/// The shape of the response a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// COM_QUERY and COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE request or result set(s).
    Query,
    /// COM_STMT_PREPARE: statement OK with parameter and column definitions, or ERR.
    Prepare,
    /// COM_FIELD_LIST: column definitions up to EOF, or ERR.
    FieldList,
    /// COM_STMT_FETCH: binary rows up to a terminator, or ERR.
    Fetch,
    /// Exactly one packet (COM_PING, COM_INIT_DB, COM_STATISTICS, COM_RESET_CONNECTION, …).
    Single,
}

/// What the relay should do after a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More packets belong to this response.
    More,
    /// The server asked for a LOCAL INFILE upload: relay the client's packets up to and
    /// including the empty one, then keep feeding the server's packets.
    LocalInfile,
    /// The response is complete.
    Done(Outcome),
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Status flags of the last OK/EOF, if any was seen.
    pub status: Option<StatusFlags>,
    /// Error code if the response ended with ERR.
    pub error: Option<u16>,
    /// For COM_STMT_PREPARE: (statement id, columns, params) from the statement OK.
    pub prepared: Option<(u32, u16, u16)>,
    /// Warnings reported by the last OK/EOF (SHOW WARNINGS must then run on that connection).
    pub warnings: u16,
    /// LAST_INSERT_ID reported by the last OK (LAST_INSERT_ID() must then run on that connection).
    pub last_insert_id: u64,
}

/// What the chunk just fed was, for a relay that follows column definitions (MariaDB's cached
/// metadata: `session::prepared` tracks which definitions a client holds per statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Anything else (rows, OK, parameter definitions, continuation chunks).
    Other,
    /// A result set's column count. `follows`: its column definitions come next (always,
    /// unless the format has cached metadata and the server skipped them); `flag_at`: where
    /// in the payload the "metadata follows" byte is, when the format has one.
    ColumnCount { follows: bool, flag_at: Option<usize> },
    /// A column definition of a result set, or of the columns of a prepared statement.
    ColumnDef,
    /// The end of a result set: its terminator (status known), or the EOF that says a cursor
    /// was opened.
    ResultEnd,
}

/// The server sent something that cannot be part of this response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected packet in server response: {0}")]
pub struct Violation(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// First packet of a (next) result.
    Start,
    /// Column definitions left to read, then EOF (unless DEPRECATE_EOF), then rows.
    Columns {
        left: u64,
    },
    ColumnsEof,
    Rows,
    /// Prepare: parameter definitions left, then columns.
    PrepareParams {
        left: u64,
        columns: u64,
    },
    PrepareParamsEof {
        columns: u64,
    },
    PrepareColumns {
        left: u64,
    },
    PrepareColumnsEof,
    /// After a LOCAL INFILE upload the server answers OK or ERR.
    AfterInfile,
    /// Field list: definitions until a terminator.
    FieldList,
    Finished,
}

/// Tracks one response. Create one per command.
#[derive(Debug, Clone)]
pub struct ResponseTracker {
    expect: Expect,
    deprecate_eof: bool,
    /// MARIADB_CLIENT_CACHE_METADATA: a column count is followed by a "metadata follows" byte.
    cache_metadata: bool,
    fed: Fed,
    state: State,
    /// The previous chunk was exactly MAX_CHUNK long: this one continues its packet.
    continuation: bool,
    status: Option<StatusFlags>,
    prepared: Option<(u32, u16, u16)>,
    warnings: u16,
    last_insert_id: u64,
    /// The chunk just fed was an OK packet (or an OK-form terminator).
    fed_ok: bool,
}

impl ResponseTracker {
    pub fn new(expect: Expect, deprecate_eof: bool) -> Self {
        let state = match expect {
            Expect::FieldList => State::FieldList,
            Expect::Fetch => State::Rows,
            _ => State::Start,
        };
        ResponseTracker {
            expect,
            deprecate_eof,
            cache_metadata: false,
            fed: Fed::Other,
            state,
            continuation: false,
            status: None,
            prepared: None,
            warnings: 0,
            last_insert_id: 0,
            fed_ok: false,
        }
    }

    /// For a connection with MARIADB_CLIENT_CACHE_METADATA (a column count carries a
    /// "metadata follows" byte).
    pub fn with_cached_metadata(mut self, on: bool) -> Self {
        self.cache_metadata = on;
        self
    }

    /// What the chunk just fed was, as far as column definitions go.
    pub fn fed(&self) -> Fed {
        self.fed
    }

    /// Status flags of the last OK/EOF seen so far.
    pub fn status(&self) -> Option<StatusFlags> {
        self.status
    }

    /// Whether the chunk just fed was an OK packet (final, or one ending a result of a
    /// multi-statement) whose status says session state changed: its payload then carries
    /// what changed (`protocol::session_track`).
    pub fn fed_state_change(&self) -> bool {
        self.fed_ok && self.status.is_some_and(|s| s.contains(StatusFlags::SERVER_SESSION_STATE_CHANGED))
    }

    /// Whether the chunk just fed was an OK packet (also an OK-form terminator with
    /// CLIENT_DEPRECATE_EOF), whatever it reported.
    pub fn fed_ok(&self) -> bool {
        self.fed_ok
    }

    fn done(&mut self, error: Option<u16>) -> Step {
        self.state = State::Finished;
        Step::Done(Outcome {
            status: self.status,
            error,
            prepared: self.prepared,
            warnings: self.warnings,
            last_insert_id: self.last_insert_id,
        })
    }

    /// A terminator: a 0xFE packet short enough not to be a row. With DEPRECATE_EOF it is an
    /// OK packet (any length below a chunk), otherwise a classic 5-byte EOF.
    fn is_terminator(&self, chunk: Chunk, head: &[u8]) -> bool {
        head.first() == Some(&EOF) && !chunk.continues() && (self.deprecate_eof || chunk.len < 9)
    }

    /// Records what a terminator (EOF, or OK with DEPRECATE_EOF) says.
    fn terminator(&mut self, head: &[u8]) {
        if self.deprecate_eof && head.len() >= 7 {
            self.ok(head);
        } else {
            self.status = eof_status(head);
            self.warnings = eof_warnings(head).unwrap_or(0);
        }
    }

    /// Records what an OK packet says; false when it is malformed.
    fn ok(&mut self, head: &[u8]) -> bool {
        match ok_head(head) {
            Some(h) => {
                self.fed_ok = true;
                self.status = Some(h.status);
                self.warnings = h.warnings;
                self.last_insert_id = h.last_insert_id;
                true
            }
            None => false,
        }
    }

    /// After the end of one result: another follows when the server says so.
    fn end_of_result(&mut self) -> Step {
        match self.status {
            Some(s) if s.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS) => {
                self.state = State::Start;
                Step::More
            }
            _ => self.done(None),
        }
    }

    /// In the rows of a result set: how many bytes at the start of `buf` are whole chunks that
    /// are certainly rows (stopping before `limit` is passed). Feeding each of them would
    /// change nothing but return `Step::More`, so a relay may pass them on as they are and
    /// feed only what follows: with rows of many, this is most of a response. Certainly a row:
    /// not empty, not part of a packet longer than a chunk, and not starting with 0xFE or 0xFF
    /// (a terminator or an ERR, or a row that only [`feed`](Self::feed) can tell from one).
    /// 0 outside rows.
    pub fn rows_ahead(&self, buf: &[u8], limit: usize) -> usize {
        if self.state != State::Rows || self.continuation {
            return 0;
        }
        let mut n = 0;
        while let Some(c) = buf.get(n..).and_then(check_chunk) {
            // An empty chunk has no first byte (the next chunk's header follows).
            let first = if c.len == 0 { None } else { buf.get(n + HEADER).copied() };
            if c.continues() || matches!(first, None | Some(EOF) | Some(ERR)) || n + c.total() > limit {
                break;
            }
            n += c.total();
        }
        n
    }

    /// Feeds one chunk: its header and its payload (or at least the payload's first bytes;
    /// a terminator or OK must be given whole, which holds as they are far below a chunk).
    pub fn feed(&mut self, chunk: Chunk, head: &[u8]) -> Result<Step, Violation> {
        self.fed_ok = false;
        self.fed = Fed::Other;
        if self.continuation {
            self.continuation = chunk.continues();
            return Ok(Step::More);
        }
        self.continuation = chunk.continues();
        let first = *head.first().ok_or(Violation("empty packet"))?;
        match self.state {
            State::Finished => Err(Violation("packet after the end of the response")),
            State::Start if self.expect == Expect::Single => {
                match first {
                    OK => {
                        self.ok(head);
                    }
                    EOF => self.status = eof_status(head),
                    _ => {}
                }
                let err = (first == ERR).then(|| error_code(head));
                Ok(self.done(err))
            }
            State::Start | State::AfterInfile if first == ERR => Ok(self.done(Some(error_code(head)))),
            State::Start | State::AfterInfile if first == OK => {
                if self.expect == Expect::Prepare {
                    return self.prepare_ok(head);
                }
                if !self.ok(head) {
                    return Err(Violation("malformed OK"));
                }
                Ok(self.end_of_result())
            }
            State::AfterInfile => Err(Violation("expected OK or ERR after LOCAL INFILE")),
            State::Start if first == LOCAL_INFILE && self.expect == Expect::Query => {
                self.state = State::AfterInfile;
                Ok(Step::LocalInfile)
            }
            State::Start => {
                if self.expect != Expect::Query {
                    return Err(Violation("result set where none is possible"));
                }
                let (n, at) = read_lenenc(head).ok_or(Violation("malformed column count"))?;
                if n == 0 {
                    return Err(Violation("zero column count"));
                }
                let (follows, flag_at) = if self.cache_metadata {
                    match head.get(at) {
                        Some(0) => (false, Some(at)),
                        Some(1) => (true, Some(at)),
                        _ => return Err(Violation("malformed metadata flag after the column count")),
                    }
                } else {
                    (true, None)
                };
                self.fed = Fed::ColumnCount { follows, flag_at };
                // Skipped definitions: the client uses those it cached; the EOF after them
                // (without CLIENT_DEPRECATE_EOF) still comes.
                self.state = match (follows, self.deprecate_eof) {
                    (true, _) => State::Columns { left: n },
                    (false, true) => State::Rows,
                    (false, false) => State::ColumnsEof,
                };
                Ok(Step::More)
            }
            State::Columns { left } => {
                if first == ERR {
                    return Ok(self.done(Some(error_code(head))));
                }
                self.fed = Fed::ColumnDef;
                self.state = match (left - 1, self.deprecate_eof) {
                    (0, true) => State::Rows,
                    (0, false) => State::ColumnsEof,
                    (l, _) => State::Columns { left: l },
                };
                Ok(Step::More)
            }
            State::ColumnsEof => {
                if !self.is_terminator(chunk, head) {
                    return Err(Violation("expected EOF after column definitions"));
                }
                self.status = eof_status(head);
                self.warnings = eof_warnings(head).unwrap_or(0);
                // A cursor was opened: rows come later through COM_STMT_FETCH.
                if self.status.is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS)) {
                    self.fed = Fed::ResultEnd;
                    return Ok(self.done(None));
                }
                self.state = State::Rows;
                Ok(Step::More)
            }
            State::Rows => {
                if first == ERR {
                    return Ok(self.done(Some(error_code(head))));
                }
                if self.is_terminator(chunk, head) {
                    self.terminator(head);
                    self.fed = Fed::ResultEnd;
                    return Ok(self.end_of_result());
                }
                Ok(Step::More)
            }
            State::FieldList => {
                if first == ERR {
                    return Ok(self.done(Some(error_code(head))));
                }
                if self.is_terminator(chunk, head) {
                    self.terminator(head);
                    return Ok(self.done(None));
                }
                Ok(Step::More)
            }
            State::PrepareParams { left, columns } => {
                self.state = match (left - 1, self.deprecate_eof) {
                    (0, false) => State::PrepareParamsEof { columns },
                    (0, true) => return Ok(self.prepare_columns(columns)),
                    (l, _) => State::PrepareParams { left: l, columns },
                };
                Ok(Step::More)
            }
            State::PrepareParamsEof { columns } => {
                if !self.is_terminator(chunk, head) {
                    return Err(Violation("expected EOF after parameter definitions"));
                }
                Ok(self.prepare_columns(columns))
            }
            State::PrepareColumns { left } => {
                self.fed = Fed::ColumnDef;
                self.state = match (left - 1, self.deprecate_eof) {
                    (0, false) => State::PrepareColumnsEof,
                    (0, true) => return Ok(self.done(None)),
                    (l, _) => State::PrepareColumns { left: l },
                };
                Ok(Step::More)
            }
            State::PrepareColumnsEof => {
                if !self.is_terminator(chunk, head) {
                    return Err(Violation("expected EOF after column definitions"));
                }
                Ok(self.done(None))
            }
        }
    }

    fn prepare_ok(&mut self, head: &[u8]) -> Result<Step, Violation> {
        let b = head.get(..9).ok_or(Violation("short statement OK"))?;
        let id = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
        let columns = u16::from_le_bytes([b[5], b[6]]);
        let params = u16::from_le_bytes([b[7], b[8]]);
        self.prepared = Some((id, columns, params));
        if params > 0 {
            self.state = State::PrepareParams { left: params.into(), columns: columns.into() };
            return Ok(Step::More);
        }
        Ok(self.prepare_columns(columns.into()))
    }

    fn prepare_columns(&mut self, columns: u64) -> Step {
        if columns == 0 {
            return self.done(None);
        }
        self.state = State::PrepareColumns { left: columns };
        Step::More
    }
}

fn error_code(head: &[u8]) -> u16 {
    super::packets::err_code(head).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::MAX_CHUNK;

    fn chunk(p: &[u8]) -> Chunk {
        Chunk { len: p.len(), seq: 0 }
    }

    /// Feeds whole packets; returns the steps.
    fn run(t: &mut ResponseTracker, packets: &[&[u8]]) -> Vec<Step> {
        packets.iter().map(|p| t.feed(chunk(p), p).unwrap()).collect()
    }

    const COLDEF: &[u8] = b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00";
    const EOF_AC: &[u8] = &[0xFE, 0, 0, 0x02, 0];
    const EOF_MORE: &[u8] = &[0xFE, 0, 0, 0x0A, 0];
    const OK_AC: &[u8] = &[0x00, 0, 0, 0x02, 0, 0, 0];
    const OK_TERM_AC: &[u8] = &[0xFE, 0, 0, 0x02, 0, 0, 0];

    #[test]
    fn single_result_set_classic_eof() {
        let mut t = ResponseTracker::new(Expect::Query, false);
        let steps = run(&mut t, &[b"\x01", COLDEF, EOF_AC, b"\x011", b"\x012"]);
        assert!(steps.iter().all(|s| *s == Step::More));
        let end = t.feed(chunk(EOF_AC), EOF_AC).unwrap();
        assert_eq!(
            end,
            Step::Done(Outcome {
                status: Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT),
                error: None,
                prepared: None,
                warnings: 0,
                last_insert_id: 0
            })
        );
    }

    #[test]
    fn deprecate_eof_has_no_eof_after_columns() {
        let mut t = ResponseTracker::new(Expect::Query, true);
        assert_eq!(run(&mut t, &[b"\x01", COLDEF, b"\x011"]), vec![Step::More; 3]);
        assert!(matches!(t.feed(chunk(OK_TERM_AC), OK_TERM_AC).unwrap(), Step::Done(o) if o.error.is_none()));
    }

    #[test]
    fn multi_results_continue_until_last() {
        let mut t = ResponseTracker::new(Expect::Query, false);
        // SELECT 1; SELECT 2 → two result sets, the first terminator says more follows.
        let s = run(&mut t, &[b"\x01", COLDEF, EOF_AC, b"\x011", EOF_MORE, b"\x01", COLDEF, EOF_AC, b"\x012"]);
        assert!(s.iter().all(|x| *x == Step::More));
        assert!(matches!(t.feed(chunk(EOF_AC), EOF_AC).unwrap(), Step::Done(_)));
        // CALL: result set then the final OK.
        let mut t = ResponseTracker::new(Expect::Query, false);
        run(&mut t, &[b"\x01", COLDEF, EOF_AC, b"\x011", EOF_MORE]);
        assert!(matches!(t.feed(chunk(OK_AC), OK_AC).unwrap(), Step::Done(_)));
    }

    #[test]
    fn error_replaces_a_row_and_ends() {
        let mut t = ResponseTracker::new(Expect::Query, false);
        run(&mut t, &[b"\x01", COLDEF, EOF_AC, b"\x011"]);
        let err = [0xFF, 0x15, 0x04, b'#', b'H', b'Y', b'0', b'0', b'0', b'x'];
        assert_eq!(
            t.feed(chunk(&err), &err).unwrap(),
            Step::Done(Outcome {
                status: Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT),
                error: Some(1045),
                prepared: None,
                warnings: 0,
                last_insert_id: 0
            })
        );
        assert!(t.feed(chunk(OK_AC), OK_AC).is_err(), "nothing may follow the end");
    }

    #[test]
    fn a_row_starting_with_fe_is_not_a_terminator() {
        // A row whose first column is NULL-free and starts with 0xFE must be long: 0xFE is the
        // 8-byte length prefix, so the packet is a continued chunk.
        let mut t = ResponseTracker::new(Expect::Query, true);
        run(&mut t, &[b"\x01", COLDEF]);
        let big = Chunk { len: MAX_CHUNK, seq: 3 };
        assert_eq!(t.feed(big, &[0xFE, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap(), Step::More);
        // The continuation chunk starts with anything, even 0xFE or 0xFF.
        assert_eq!(t.feed(Chunk { len: 5, seq: 4 }, &[0xFF, 1, 2, 3, 4]).unwrap(), Step::More);
        assert!(matches!(t.feed(chunk(OK_TERM_AC), OK_TERM_AC).unwrap(), Step::Done(_)));
    }

    #[test]
    fn insert_id_and_warnings_are_reported() {
        let mut t = ResponseTracker::new(Expect::Query, false);
        let ok = [0x00, 0x01, 0x2A, 0x02, 0x00, 0x01, 0x00];
        assert!(matches!(t.feed(chunk(&ok), &ok).unwrap(), Step::Done(o) if o.last_insert_id == 42 && o.warnings == 1));
        let mut t = ResponseTracker::new(Expect::Query, false);
        run(&mut t, &[b"\x01", COLDEF, EOF_AC, b"\x011"]);
        let eof = [0xFE, 2, 0, 2, 0];
        assert!(matches!(t.feed(chunk(&eof), &eof).unwrap(), Step::Done(o) if o.warnings == 2));
    }

    #[test]
    fn local_infile_then_ok() {
        let mut t = ResponseTracker::new(Expect::Query, false);
        assert_eq!(t.feed(chunk(b"\xfb/tmp/x"), b"\xfb/tmp/x").unwrap(), Step::LocalInfile);
        assert!(matches!(t.feed(chunk(OK_AC), OK_AC).unwrap(), Step::Done(o) if o.error.is_none()));
    }

    #[test]
    fn prepare_with_params_and_columns() {
        // stmt id 7, 1 column, 2 params
        let ok = [0x00, 7, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0];
        // Classic EOF: params, EOF, columns, EOF.
        let mut t = ResponseTracker::new(Expect::Prepare, false);
        let steps = run(&mut t, &[&ok, COLDEF, COLDEF, EOF_AC, COLDEF]);
        assert!(steps.iter().all(|s| *s == Step::More), "{steps:?}");
        assert_eq!(
            t.feed(chunk(EOF_AC), EOF_AC).unwrap(),
            Step::Done(Outcome {
                status: None,
                error: None,
                prepared: Some((7, 1, 2)),
                warnings: 0,
                last_insert_id: 0
            })
        );
        // deprecate_eof: the last column definition ends it.
        let mut t = ResponseTracker::new(Expect::Prepare, true);
        run(&mut t, &[&ok, COLDEF, COLDEF]);
        assert!(matches!(t.feed(chunk(COLDEF), COLDEF).unwrap(), Step::Done(o) if o.prepared == Some((7, 1, 2))));
        // No params, no columns: the OK alone.
        let ok0 = [0x00, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut t = ResponseTracker::new(Expect::Prepare, false);
        assert!(matches!(t.feed(chunk(&ok0), &ok0).unwrap(), Step::Done(o) if o.prepared == Some((9, 0, 0))));
    }

    #[test]
    fn cached_metadata_flag_says_whether_definitions_follow() {
        // Sent: count, flag 1, the definitions, then rows.
        for deprecate in [false, true] {
            let mut t = ResponseTracker::new(Expect::Query, deprecate).with_cached_metadata(true);
            t.feed(chunk(b"\x02\x01"), b"\x02\x01").unwrap();
            assert_eq!(t.fed(), Fed::ColumnCount { follows: true, flag_at: Some(1) });
            run(&mut t, &[COLDEF]);
            assert_eq!(t.fed(), Fed::ColumnDef);
            run(&mut t, &[COLDEF]);
            if !deprecate {
                run(&mut t, &[EOF_AC]);
                assert_eq!(t.fed(), Fed::Other);
            }
            run(&mut t, &[b"\x011"]);
            let end = if deprecate { OK_TERM_AC } else { EOF_AC };
            assert!(matches!(t.feed(chunk(end), end).unwrap(), Step::Done(_)));
            assert_eq!(t.fed(), Fed::ResultEnd);
        }
        // Skipped: rows follow the count (after the EOF without DEPRECATE_EOF).
        let mut t = ResponseTracker::new(Expect::Query, false).with_cached_metadata(true);
        run(&mut t, &[b"\x02\x00"]);
        assert_eq!(t.fed(), Fed::ColumnCount { follows: false, flag_at: Some(1) });
        run(&mut t, &[EOF_AC, b"\x00\x00\x01\x00\x00\x00"]);
        assert!(matches!(t.feed(chunk(EOF_AC), EOF_AC).unwrap(), Step::Done(o) if o.error.is_none()));
        let mut t = ResponseTracker::new(Expect::Query, true).with_cached_metadata(true);
        run(&mut t, &[b"\x02\x00", b"\x00\x00\x01\x00\x00\x00"]);
        assert!(matches!(t.feed(chunk(OK_TERM_AC), OK_TERM_AC).unwrap(), Step::Done(_)));
        // A count without the flag, or with another value, is malformed on such a connection.
        for bad in [&b"\x02"[..], b"\x02\x07"] {
            let mut t = ResponseTracker::new(Expect::Query, true).with_cached_metadata(true);
            assert!(t.feed(chunk(bad), bad).is_err());
        }
        // Without the capability the byte is not read (a column count alone).
        let mut t = ResponseTracker::new(Expect::Query, true);
        run(&mut t, &[b"\x01"]);
        assert_eq!(t.fed(), Fed::ColumnCount { follows: true, flag_at: None });
        // A prepared statement's column definitions are reported; its parameters' are not.
        let ok = [0x00, 7, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        let mut t = ResponseTracker::new(Expect::Prepare, true).with_cached_metadata(true);
        run(&mut t, &[&ok, COLDEF]);
        assert_eq!(t.fed(), Fed::Other);
        assert!(matches!(t.feed(chunk(COLDEF), COLDEF).unwrap(), Step::Done(_)));
        assert_eq!(t.fed(), Fed::ColumnDef);
    }

    #[test]
    fn cursor_ends_after_column_eof() {
        let mut t = ResponseTracker::new(Expect::Query, false);
        run(&mut t, &[b"\x01", COLDEF]);
        let eof_cursor = [0xFE, 0, 0, 0x42, 0];
        assert!(matches!(t.feed(chunk(&eof_cursor), &eof_cursor).unwrap(), Step::Done(_)));
    }

    #[test]
    fn fetch_is_rows_until_terminator() {
        let mut t = ResponseTracker::new(Expect::Fetch, false);
        // Binary rows start with 0x00; they must not be taken for OK packets.
        assert_eq!(run(&mut t, &[b"\x00\x00\x01\x00\x00\x00", b"\x00\x00\x02\x00\x00\x00"]), vec![Step::More; 2]);
        let last = [0xFE, 0, 0, 0x82, 0]; // LAST_ROW_SENT | AUTOCOMMIT
        assert!(
            matches!(t.feed(chunk(&last), &last).unwrap(), Step::Done(o) if o.status.is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_LAST_ROW_SENT)))
        );
    }

    #[test]
    fn field_list_and_single() {
        let mut t = ResponseTracker::new(Expect::FieldList, false);
        assert_eq!(run(&mut t, &[COLDEF, COLDEF]), vec![Step::More; 2]);
        assert!(matches!(t.feed(chunk(EOF_AC), EOF_AC).unwrap(), Step::Done(_)));
        let mut t = ResponseTracker::new(Expect::Single, false);
        let stats = b"Uptime: 5  Threads: 1";
        assert!(matches!(t.feed(chunk(stats), stats).unwrap(), Step::Done(o) if o.error.is_none()));
    }

    /// Packets framed as on the wire (sequence ids from 1).
    fn framed(packets: &[&[u8]]) -> Vec<u8> {
        let mut buf = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            buf.extend_from_slice(&(p.len() as u32).to_le_bytes()[..3]);
            buf.push(i as u8 + 1);
            buf.extend_from_slice(p);
        }
        buf
    }

    /// A tracker in the rows of a one-column result set.
    fn in_rows(deprecate: bool) -> ResponseTracker {
        let mut t = ResponseTracker::new(Expect::Query, deprecate);
        run(&mut t, &[&[1], COLDEF]);
        if !deprecate {
            run(&mut t, &[EOF_AC]);
        }
        t
    }

    #[test]
    fn rows_ahead_are_whole_rows_up_to_what_only_feed_can_tell() {
        let t = in_rows(false);
        let rows = framed(&[b"\x01a", b"\xfb", b"\x00\x01\x02"]);
        assert_eq!(t.rows_ahead(&rows, usize::MAX), rows.len());
        // A terminator, an ERR, a row starting with 0xFE, an empty packet stop it.
        for stop in [EOF_AC, &[0xFF, 0x10, 0x04][..], &[0xFE; 12][..], &[][..]] {
            let buf = framed(&[b"\x01a", stop, b"\x01b"]);
            assert_eq!(t.rows_ahead(&buf, usize::MAX), HEADER + 2, "{stop:?}");
        }
        // So do an incomplete chunk and the limit.
        assert_eq!(t.rows_ahead(&rows[..rows.len() - 1], usize::MAX), 2 * HEADER + 3);
        assert_eq!(t.rows_ahead(&rows, 2 * HEADER + 3), 2 * HEADER + 3);
        assert_eq!(t.rows_ahead(&rows, 2 * HEADER + 2), HEADER + 2);
        // A chunk of a packet longer than a chunk.
        let mut long = vec![0xFF, 0xFF, 0xFF, 1];
        long.resize(HEADER + MAX_CHUNK, b'x');
        assert_eq!(t.rows_ahead(&long, usize::MAX), 0);
        // Outside rows: nothing.
        assert_eq!(ResponseTracker::new(Expect::Query, false).rows_ahead(&rows, usize::MAX), 0);
        let mut columns = ResponseTracker::new(Expect::Query, false);
        run(&mut columns, &[&[1]]);
        assert_eq!(columns.rows_ahead(&rows, usize::MAX), 0);
    }

    #[test]
    fn garbage_is_a_violation_not_a_panic() {
        let mut t = ResponseTracker::new(Expect::Query, false);
        assert!(t.feed(Chunk { len: 0, seq: 1 }, &[]).is_err());
        let mut t = ResponseTracker::new(Expect::Prepare, false);
        assert!(t.feed(chunk(&[0x00, 1]), &[0x00, 1]).is_err());
        let mut t = ResponseTracker::new(Expect::Query, false);
        assert!(t.feed(chunk(&[0x00]), &[0x00]).is_err());
    }

    /// Feeds the chunks of `buf` one by one (`bulk`: passing over what `rows_ahead` says are
    /// rows); returns each step that was not `More` with the offset of its chunk, and where
    /// the feeding stopped (a violation or the end of the buffer).
    fn feed_buffer(t: &mut ResponseTracker, buf: &[u8], bulk: bool) -> (Vec<(usize, String)>, usize) {
        let mut n = 0;
        let mut steps = Vec::new();
        loop {
            if bulk {
                n += t.rows_ahead(&buf[n..], usize::MAX);
            }
            let Some(c) = check_chunk(&buf[n..]) else { return (steps, n) };
            let head = &buf[n + HEADER..n + c.total()];
            match t.feed(c, head) {
                Ok(Step::More) => {}
                Ok(step) => steps.push((n, format!("{step:?}"))),
                Err(v) => {
                    steps.push((n, format!("{v:?}")));
                    return (steps, n);
                }
            }
            n += c.total();
        }
    }

    proptest::proptest! {
        /// Passing over rows in bulk ends every response where feeding them one by one does,
        /// with the same outcome.
        #[test]
        fn rows_in_bulk_end_where_rows_fed_one_by_one_do(
            packets in proptest::collection::vec(
                (proptest::sample::select(vec![0x00u8, 0x01, 0x05, 0xFB, 0xFC, 0xFE, 0xFF]), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12)),
                0..16),
            deprecate in proptest::prelude::any::<bool>(),
        ) {
            let payloads: Vec<Vec<u8>> = packets.iter().map(|(first, rest)| {
                let mut p = vec![*first];
                p.extend_from_slice(rest);
                p
            }).collect();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let buf = framed(&refs);
            let (mut one, mut bulk) = (in_rows(deprecate), in_rows(deprecate));
            let by_one = feed_buffer(&mut one, &buf, false);
            let in_bulk = feed_buffer(&mut bulk, &buf, true);
            proptest::prop_assert_eq!(by_one, in_bulk);
            proptest::prop_assert_eq!(one.status(), bulk.status());
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(packets in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16), 0..12), deprecate in proptest::prelude::any::<bool>()) {
            for expect in [Expect::Query, Expect::Prepare, Expect::FieldList, Expect::Fetch, Expect::Single] {
                let mut t = ResponseTracker::new(expect, deprecate).with_cached_metadata(packets.len() % 2 == 0);
                for p in &packets {
                    if t.feed(chunk(p), p).is_err() { break; }
                }
            }
        }
    }
}

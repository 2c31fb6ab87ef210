//! Running rwsplit's own commands on a backend connection (state replay, re-prepare, reset,
//! GTID queries, KILL QUERY): the whole response is read here and never reaches a client.

use super::BackendConn;
use crate::protocol::connection::ConnError;
use crate::protocol::frame::HEADER;
use crate::protocol::packets::command_payload;
use crate::protocol::response::{Expect, Fed, Outcome, Step};
use crate::protocol::Command;
use std::time::Duration;

/// Runs an internal command on a backend connection and reads its whole response without
/// relaying it (state replay, re-prepare, reset). Returns the outcome and, for errors, the
/// server's ERR payload.
pub async fn internal(
    conn: &mut BackendConn,
    payload: &[u8],
    expect: Expect,
    timeout: Duration,
) -> Result<(Outcome, Option<Vec<u8>>), ConnError> {
    conn.stream.send(0, payload, timeout).await?;
    read_response(conn, expect, timeout).await
}

/// [`internal`] of a COM_STMT_PREPARE, also returning the payloads of the statement's column
/// definitions (what the server now holds as sent, for MariaDB's cached metadata).
pub async fn internal_prepare(
    conn: &mut BackendConn,
    payload: &[u8],
    timeout: Duration,
) -> Result<(Outcome, Option<Vec<u8>>, Vec<Vec<u8>>), ConnError> {
    conn.stream.send(0, payload, timeout).await?;
    let mut columns = Vec::new();
    let (outcome, err) = read_response_keeping(conn, Expect::Prepare, timeout, Some(&mut columns)).await?;
    Ok((outcome, err, columns))
}

/// [`internal`] of a COM_QUERY with `sql`.
pub async fn internal_query(
    conn: &mut BackendConn,
    sql: &str,
    timeout: Duration,
) -> Result<(Outcome, Option<Vec<u8>>), ConnError> {
    internal(conn, &command_payload(Command::COM_QUERY, sql.as_bytes()), Expect::Query, timeout).await
}

/// Runs several internal commands in one round trip: all are sent, then every response is
/// read, in order (a server answers pipelined commands one after another). Returns, for each
/// command, its outcome and ERR payload.
pub async fn internal_batch(
    conn: &mut BackendConn,
    commands: &[(Vec<u8>, Expect)],
    timeout: Duration,
) -> Result<Vec<(Outcome, Option<Vec<u8>>)>, ConnError> {
    for (payload, _) in commands {
        conn.stream.queue(0, payload);
    }
    conn.stream.flush(timeout).await?;
    let mut out = Vec::with_capacity(commands.len());
    for (_, expect) in commands {
        out.push(read_response(conn, *expect, timeout).await?);
    }
    Ok(out)
}

/// Reads one whole response to a command rwsplit sent itself.
async fn read_response(
    conn: &mut BackendConn,
    expect: Expect,
    timeout: Duration,
) -> Result<(Outcome, Option<Vec<u8>>), ConnError> {
    read_response_keeping(conn, expect, timeout, None).await
}

/// [`read_response`], keeping the column definitions' payloads in `columns` when given.
async fn read_response_keeping(
    conn: &mut BackendConn,
    expect: Expect,
    timeout: Duration,
    mut columns: Option<&mut Vec<Vec<u8>>>,
) -> Result<(Outcome, Option<Vec<u8>>), ConnError> {
    let mut tracker = conn.response_tracker(expect);
    loop {
        let c = conn.stream.next_chunk(timeout).await?;
        let raw = conn.stream.take_raw(c.total());
        let body = &raw[HEADER..];
        let step = tracker.feed(c, &body[..body.len().min(64)]);
        if let (Some(kept), Fed::ColumnDef) = (columns.as_deref_mut(), tracker.fed()) {
            kept.push(body.to_vec());
        }
        match step {
            Ok(Step::More) => {}
            Ok(Step::Done(o)) => {
                let err = o.error.map(|_| body.to_vec());
                return Ok((o, err));
            }
            // rwsplit never sends LOAD DATA LOCAL itself; a server asking for it is broken.
            Ok(Step::LocalInfile) | Err(_) => {
                return Err(ConnError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "unexpected packet in internal response",
                )));
            }
        }
    }
}

/// Runs an internal query and returns the first column of its first row as text (`None` for
/// NULL or no row). For the one-value queries of read-your-writes.
pub async fn internal_value(conn: &mut BackendConn, sql: &str, timeout: Duration) -> Result<Option<String>, ConnError> {
    Ok(internal_column(conn, sql, 1, timeout).await?.into_iter().next().flatten())
}

/// Runs an internal query and returns the first column of its first `max_rows` rows as text
/// (`None` for NULL); the rest of the response is read and dropped.
pub async fn internal_column(
    conn: &mut BackendConn,
    sql: &str,
    max_rows: usize,
    timeout: Duration,
) -> Result<Vec<Option<String>>, ConnError> {
    conn.stream.send(0, &command_payload(Command::COM_QUERY, sql.as_bytes()), timeout).await?;
    let mut tracker = conn.response_tracker(Expect::Query);
    // Packets of the first result: column count, definitions, [EOF], then rows.
    let mut columns: Option<u64> = None;
    let mut seen = 0u64;
    let mut values = Vec::new();
    loop {
        let c = conn.stream.next_chunk(timeout).await?;
        let raw = conn.stream.take_raw(c.total());
        let body = &raw[HEADER..];
        let step = tracker.feed(c, &body[..body.len().min(64)]);
        match columns {
            None => columns = crate::protocol::packets::read_lenenc(body).map(|(n, _)| n),
            Some(n) => {
                seen += 1;
                let first_row = n + if conn.deprecate_eof() { 1 } else { 2 };
                // The terminator after the rows ends the response (a single result).
                if seen >= first_row && matches!(step, Ok(Step::More)) && values.len() < max_rows {
                    values.push(match body.first() {
                        Some(0xFB) => None,
                        _ => crate::protocol::packets::read_lenenc(body).and_then(|(len, at)| {
                            body.get(at..at + usize::try_from(len).ok()?)
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                        }),
                    });
                }
            }
        }
        match step {
            Ok(Step::More) => {}
            Ok(Step::Done(o)) if o.error.is_none() => return Ok(values),
            _ => {
                return Err(ConnError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "internal query failed",
                )))
            }
        }
    }
}

//! A packet-level connection: a TCP stream (or TLS over it, towards a client or a server), its
//! read buffer and its write buffer. Every read
//! takes a deadline, so no await on the network can hang forever; writes are buffered and
//! flushed explicitly so one response is one or a few syscalls.

use super::frame::{self, check_chunk, Chunk, HEADER};
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Why a read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connection closed by peer")]
    Closed,
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("packet of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A TCP stream whose first bytes were already read into a buffer (a client's TLS hello that
/// arrived with its SSLRequest): they are read again before the socket.
#[derive(Debug)]
pub struct Prefixed {
    prefix: BytesMut,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The socket under a packet stream: plain TCP, TLS towards a client, or TLS towards a server.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<Prefixed>>),
    /// rwsplit is the TLS client (a server connection).
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Only while [`PacketStream::rehome`] moves the socket (and after it failed): no IO.
    Moving,
}

fn moving() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "socket lost while moving it to another thread")
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Moving => Poll::Ready(Err(moving())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Moving => Poll::Ready(Err(moving())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Moving => Poll::Ready(Err(moving())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Moving => Poll::Ready(Err(moving())),
        }
    }
}

/// Read-buffer room offered to the socket when nothing is pending (and the first allocation of
/// a new connection): enough for a handshake response or a typical command.
const READ_SMALL: usize = 1024;
/// Room offered to the socket while a message is arriving in pieces.
const READ_STEP: usize = 64 * 1024;
/// A chunk announced up to this long gets room for all of it at once (one allocation, no
/// copying as it arrives); a longer one gets room as it arrives (doubling), so a peer that
/// announces 16 MiB and stalls pins no more than about twice what it really sent.
const RESERVE_AHEAD: usize = 1024 * 1024;
/// A wait this long with nothing pending lets the buffers go.
const SHRINK_AFTER: Duration = Duration::from_millis(250);

/// The 3-byte payload length of the chunk header at the start of `buf` (at least `HEADER`
/// bytes).
fn announced_len(buf: &[u8]) -> usize {
    usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16
}

/// A MySQL packet stream.
///
/// Memory: the read buffer starts small and grows only as bytes arrive or for a chunk whose
/// header is within the caller's limit; after an idle wait of [`SHRINK_AFTER`] with nothing
/// pending, both buffers are let go, so an idle connection holds no buffer whatever it did
/// before.
#[derive(Debug)]
pub struct PacketStream {
    stream: Stream,
    peer: Option<std::net::SocketAddr>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Longest chunk payload [`next_chunk`](Self::next_chunk) accepts; longer headers fail
    /// with `TooLarge` before anything is reserved. The protocol's maximum unless set.
    read_limit: usize,
    /// The read deadline's timer, kept from read to read on a session thread while the stream
    /// is busy (see [`within`]; let go by [`shrink_idle`](Self::shrink_idle)); it belongs to
    /// that thread's runtime, so a read on another thread (or off the session threads, whose
    /// runtimes may end) starts a new one.
    timer: KeptTimer,
    /// The session thread ([`crate::workers::current`]) whose runtime made `timer`.
    timer_thread: Option<usize>,
}

/// A timer kept from wait to wait, for waits whose deadlines mostly move later (a busy
/// stream's reads, an idle session's grace period): it is moved only when a wait needs it
/// earlier, or when it fires before the deadline of the wait in progress (then once, to that
/// deadline). A wait costs a comparison of two instants, not a move of the pending timer at
/// every wait; waits are far shorter than the deadlines, so an early firing is rare.
///
/// Nor is the pending timer polled again while it can only answer what it answered last: not
/// moved, not fired, and the waker it holds is the caller's (a session's waits are all its one
/// task's). Polling it would only register the same waker once more: some 300 instructions
/// per statement, 3 % of the session thread's (callgrind).
#[derive(Debug, Default)]
pub(crate) struct KeptTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The waker `sleep` was last polled with while it stayed pending (`None` after a move).
    registered: Option<std::task::Waker>,
}

impl KeptTimer {
    /// Ready once `deadline` has passed; else registers the task to be woken (perhaps
    /// earlier, see above: then this is polled again and waits on).
    pub(crate) fn poll_until(&mut self, deadline: tokio::time::Instant, cx: &mut Context<'_>) -> Poll<()> {
        let t = match &mut self.sleep {
            Some(t) => {
                if t.deadline() > deadline {
                    t.as_mut().reset(deadline);
                    self.registered = None;
                }
                t
            }
            None => {
                self.registered = None;
                self.sleep.insert(Box::pin(tokio::time::sleep_until(deadline)))
            }
        };
        if !t.is_elapsed() && self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        // At most twice: after the move the timer's deadline is the wait's.
        loop {
            match t.as_mut().poll(cx) {
                Poll::Pending => {
                    if !self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        self.registered = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                Poll::Ready(()) if t.deadline() >= deadline => return Poll::Ready(()),
                Poll::Ready(()) => {
                    t.as_mut().reset(deadline);
                    self.registered = None;
                }
            }
        }
    }
}

/// Runs `io` until it completes (`Some`) or `deadline` passes (`None`). With `kept` (a busy
/// stream), the stream's own timer, used only when `io` has to wait (see [`KeptTimer`]): no
/// insertion into and removal from the runtime's timer wheel per read; two reads per
/// statement wait. Without (an idle wait), a timer for this wait only, so that idle
/// connections hold none between reads.
async fn within<F: Future>(kept: Option<&mut KeptTimer>, deadline: tokio::time::Instant, io: F) -> Option<F::Output> {
    let Some(timer) = kept else {
        return tokio::time::timeout_at(deadline, io).await.ok();
    };
    let mut io = std::pin::pin!(io);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = io.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        timer.poll_until(deadline, cx).map(|()| None)
    })
    .await
}

impl PacketStream {
    pub fn new(stream: TcpStream) -> Self {
        // Small statements dominate; latency matters more than batching here.
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        PacketStream {
            stream: Stream::Tcp(stream),
            peer,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            read_limit: frame::MAX_CHUNK,
            timer: KeptTimer::default(),
            timer_thread: None,
        }
    }

    /// Sets the longest chunk payload [`next_chunk`](Self::next_chunk) accepts (a client's
    /// `proxy.max_packet_bytes` once it is logged in); [`read_packet`](Self::read_packet)
    /// applies the smaller of this and its own limit.
    pub fn set_read_limit(&mut self, limit: usize) {
        self.read_limit = limit;
    }

    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.peer
    }

    /// Switches a client connection to TLS (after its SSLRequest), within `timeout`. Bytes of
    /// the client's TLS hello already read are handed to the TLS layer first.
    pub async fn into_tls(self, acceptor: &TlsAcceptor, timeout: Duration) -> Result<PacketStream, ConnError> {
        let Stream::Tcp(tcp) = self.stream else {
            return Err(ConnError::Io(io::Error::other("TLS is already on")));
        };
        let prefixed = Prefixed { prefix: self.rbuf, inner: tcp };
        let tls = match tokio::time::timeout(timeout, acceptor.accept(prefixed)).await {
            Err(_) => return Err(ConnError::Timeout(timeout)),
            Ok(r) => r?,
        };
        Ok(PacketStream {
            stream: Stream::Tls(Box::new(tls)),
            peer: self.peer,
            rbuf: BytesMut::new(),
            wbuf: self.wbuf,
            read_limit: self.read_limit,
            timer: KeptTimer::default(),
            timer_thread: None,
        })
    }

    /// Switches a server connection to TLS (after its SSLRequest was sent): the TLS handshake
    /// as the client, verifying the server's certificate for `name`, within `timeout`.
    /// On failure the stream is unusable (drop it).
    pub async fn connect_tls(
        &mut self,
        connector: &TlsConnector,
        name: rustls_pki_types::ServerName<'static>,
        timeout: Duration,
    ) -> Result<(), ConnError> {
        if !self.rbuf.is_empty() || !self.wbuf.is_empty() {
            // Bytes from the server before the TLS handshake: out of step.
            return Err(ConnError::Io(io::Error::other("unexpected data before the TLS handshake")));
        }
        let Stream::Tcp(tcp) = std::mem::replace(&mut self.stream, Stream::Moving) else {
            return Err(ConnError::Io(io::Error::other("TLS is already on")));
        };
        let tls = match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
            Err(_) => return Err(ConnError::Timeout(timeout)),
            Ok(r) => r?,
        };
        self.stream = Stream::TlsClient(Box::new(tls));
        Ok(())
    }

    /// Whether the connection is on TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_) | Stream::TlsClient(_))
    }

    /// Reads more bytes into the read buffer. Returns `Closed` on EOF.
    ///
    /// A wait with nothing pending that lasts longer than [`SHRINK_AFTER`] (an idle client
    /// between commands, a server working on a long statement) lets both buffers go
    /// ([`shrink_idle`](Self::shrink_idle)) and, on plain TCP, waits for the socket to be
    /// readable before allocating again: an idle connection holds no buffer. A busy stream's
    /// waits are shorter and keep theirs.
    pub async fn fill(&mut self, timeout: Duration) -> Result<(), ConnError> {
        // One clock read for both deadlines: this runs twice per statement.
        let start = tokio::time::Instant::now();
        let deadline = start + timeout;
        let mut lazy = false;
        if self.rbuf.is_empty() && timeout > SHRINK_AFTER {
            match self.read_until(start + SHRINK_AFTER, false).await {
                // Nothing was read (reads are cancel-safe): idle.
                Err(ConnError::Timeout(_)) => {
                    self.shrink_idle();
                    lazy = true;
                }
                r => return r,
            }
        }
        self.read_until(deadline, lazy).await.map_err(|e| match e {
            ConnError::Timeout(_) => ConnError::Timeout(timeout),
            e => e,
        })
    }

    /// One read into the read buffer with no deadline of its own: for a caller that waits
    /// for something else under a deadline (a statement's response) and reads this stream
    /// meanwhile, to notice a hang-up. On plain TCP no room is made before the socket is
    /// readable. Returns `Closed` on EOF.
    pub async fn read_ahead(&mut self) -> Result<(), ConnError> {
        if let Stream::Tcp(s) = &self.stream {
            // The socket's own reader slot, not `readable()`: that queues a waiter under the
            // socket's lock and takes it out again at every statement. Nothing else reads this
            // stream while the caller waits.
            std::future::poll_fn(|cx| s.poll_read_ready(cx)).await?;
        }
        self.make_room();
        match self.stream.read_buf(&mut self.rbuf).await {
            Ok(0) => Err(ConnError::Closed),
            Ok(_) => Ok(()),
            Err(e) => Err(ConnError::Io(e)),
        }
    }

    /// Room for at least [`READ_SMALL`] more bytes in the read buffer (more while a message is
    /// arriving).
    fn make_room(&mut self) {
        let spare = self.rbuf.capacity() - self.rbuf.len();
        if spare < READ_SMALL {
            // With nothing pending, this reclaims the whole allocation when nothing else
            // holds it; while a message arrives, it grows the buffer.
            self.rbuf.reserve(if self.rbuf.is_empty() { READ_SMALL } else { READ_STEP });
        }
    }

    /// One read into the read buffer, with room for at least [`READ_SMALL`] bytes (more while
    /// a message is arriving). `lazy`: on plain TCP, no room is made before the socket is
    /// readable.
    async fn read_until(&mut self, deadline: tokio::time::Instant, lazy: bool) -> Result<(), ConnError> {
        let timeout = || ConnError::Timeout(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let here = crate::workers::current();
        if here != self.timer_thread {
            self.timer = KeptTimer::default();
            self.timer_thread = here;
        }
        // An idle wait (lazy) keeps no timer between reads: see `shrink_idle`.
        if let (true, Stream::Tcp(s)) = (lazy, &self.stream) {
            match within(None, deadline, s.readable()).await {
                None => return Err(timeout()),
                Some(Err(e)) => return Err(ConnError::Io(e)),
                Some(Ok(())) => {}
            }
        }
        self.make_room();
        // Off the session threads (whose runtimes may end) nothing is kept either.
        let kept = if lazy || here.is_none() { None } else { Some(&mut self.timer) };
        match within(kept, deadline, self.stream.read_buf(&mut self.rbuf)).await {
            None => Err(timeout()),
            Some(Ok(0)) => Err(ConnError::Closed),
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(ConnError::Io(e)),
        }
    }

    /// Lets the buffers go when they hold nothing (an idle connection: between commands, or
    /// pooled), and the read timer; the next read or write allocates small ones again.
    pub fn shrink_idle(&mut self) {
        self.timer = KeptTimer::default();
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() {
            self.wbuf = BytesMut::new();
        }
    }

    /// The complete chunk at the head of the read buffer, reading until there is one. A
    /// header announcing more than the read limit (see [`set_read_limit`](Self::set_read_limit))
    /// fails with `TooLarge` at once.
    pub async fn next_chunk(&mut self, timeout: Duration) -> Result<Chunk, ConnError> {
        self.next_chunk_within(self.read_limit, timeout).await
    }

    /// [`next_chunk`](Self::next_chunk) with a limit of `limit` payload bytes (and never more
    /// than the read limit): a longer chunk fails with `TooLarge` as soon as its header is
    /// there, before any room is made for it.
    pub async fn next_chunk_within(&mut self, limit: usize, timeout: Duration) -> Result<Chunk, ConnError> {
        let limit = limit.min(self.read_limit);
        loop {
            if self.rbuf.len() >= HEADER {
                let len = announced_len(&self.rbuf);
                if len > limit {
                    return Err(ConnError::TooLarge(len));
                }
                if let Some(c) = check_chunk(&self.rbuf) {
                    return Ok(c);
                }
                // Room for the rest in one go when the chunk is moderate; a larger one gets
                // room as it arrives (doubling), so a header alone never reserves much.
                let missing = HEADER + len - self.rbuf.len();
                let spare = self.rbuf.capacity() - self.rbuf.len();
                if spare < missing {
                    if HEADER + len <= RESERVE_AHEAD {
                        self.rbuf.reserve(missing);
                    } else if spare < READ_STEP {
                        self.rbuf.reserve(self.rbuf.len().max(READ_STEP));
                    }
                }
            }
            self.fill(timeout).await?;
        }
    }

    /// Removes and returns the first `n` buffered bytes (whole chunks, as `check_chunk` found).
    pub fn take_raw(&mut self, n: usize) -> BytesMut {
        self.rbuf.split_to(n)
    }

    /// Moves the first `n` buffered bytes (whole chunks, as `check_chunk` found) to the end of
    /// `to`'s write queue: one copy, and the read buffer only advances (no split, so no shared
    /// header is allocated for bytes that are relayed and forgotten).
    pub fn move_raw_to(&mut self, n: usize, to: &mut PacketStream) {
        let n = n.min(self.rbuf.len());
        to.wbuf.extend_from_slice(&self.rbuf[..n]);
        bytes::Buf::advance(&mut self.rbuf, n);
    }

    /// Drops the first `n` buffered bytes.
    pub fn discard(&mut self, n: usize) {
        let n = n.min(self.rbuf.len());
        bytes::Buf::advance(&mut self.rbuf, n);
    }

    /// The buffered bytes, writable (to patch a statement id before relaying).
    pub fn buffered_mut(&mut self) -> &mut [u8] {
        &mut self.rbuf
    }

    /// The buffered, not yet consumed bytes.
    pub fn buffered(&self) -> &[u8] {
        &self.rbuf
    }

    /// Reads one logical packet (chunks joined), at most `limit` payload bytes (and the read
    /// limit): every chunk header is checked before room is made for its payload.
    /// Returns its first sequence id and payload.
    pub async fn read_packet(&mut self, limit: usize, timeout: Duration) -> Result<(u8, Bytes), ConnError> {
        let first = self.next_chunk_within(limit, timeout).await?;
        let mut raw = self.take_raw(first.total());
        let mut payload = raw.split_off(HEADER);
        let mut last = first;
        while last.continues() {
            let so_far = payload.len();
            last = self.next_chunk_within(limit.saturating_sub(so_far), timeout).await.map_err(|e| match e {
                ConnError::TooLarge(n) => ConnError::TooLarge(so_far + n),
                e => e,
            })?;
            let chunk = self.take_raw(last.total());
            payload.extend_from_slice(&chunk[HEADER..]);
        }
        Ok((first.seq, payload.freeze()))
    }

    /// Queues one logical packet; returns the next sequence id.
    pub fn queue(&mut self, seq: u8, payload: &[u8]) -> u8 {
        frame::write_packet(&mut self.wbuf, seq, payload)
    }

    /// Queues one packet with `patch` written over its payload at offset `at` (the statement
    /// id of a COM_STMT_* packet): the payload is copied once, into the write buffer, and
    /// patched there. A patch that does not fit is left out.
    pub fn queue_patched(&mut self, seq: u8, payload: &[u8], at: usize, patch: &[u8]) -> u8 {
        let end = at.saturating_add(patch.len());
        let start = self.wbuf.len() + frame::HEADER;
        let next = self.queue(seq, payload);
        // Within the first chunk, where the header does not interrupt the payload.
        if end <= payload.len().min(frame::MAX_CHUNK) {
            if let Some(dst) = self.wbuf.get_mut(start + at..start + end) {
                dst.copy_from_slice(patch);
            }
        }
        next
    }

    /// Bytes queued and not yet flushed.
    pub fn queued(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self, timeout: Duration) -> Result<(), ConnError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        // The socket nearly always takes everything at once: that costs one send and no
        // timer (a timer is a clock read plus an entry in the runtime's wheel). Whatever it
        // does not take goes out below, under the timeout.
        if let Stream::Tcp(s) = &self.stream {
            match s.try_write(&self.wbuf) {
                Ok(n) if n == self.wbuf.len() => {
                    self.wbuf.clear();
                    return Ok(());
                }
                Ok(n) => bytes::Buf::advance(&mut self.wbuf, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.wbuf.clear();
                    return Err(ConnError::Io(e));
                }
            }
        }
        let res = tokio::time::timeout(timeout, self.stream.write_all(&self.wbuf)).await;
        self.wbuf.clear();
        match res {
            Err(_) => Err(ConnError::Timeout(timeout)),
            Ok(Err(e)) => Err(ConnError::Io(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Queues one packet and flushes.
    pub async fn send(&mut self, seq: u8, payload: &[u8], timeout: Duration) -> Result<u8, ConnError> {
        let next = self.queue(seq, payload);
        self.flush(timeout).await?;
        Ok(next)
    }

    /// False when the peer has closed the connection or sent something unasked (an idle
    /// pooled connection must have nothing to read). Never blocks.
    pub fn is_idle_and_open(&mut self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        // A peek on the socket itself (MSG_PEEK on a non-blocking socket): tokio's try_read
        // would answer from the reactor's cached readiness, which may not have seen a close
        // that arrived since the runtime last polled.
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        match &self.stream {
            Stream::Tcp(s) => {
                matches!(socket2::SockRef::from(s).peek(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            // A server connection over TLS: the same peek on the socket under it. Any bytes
            // there (a record the server sent unasked, its close_notify) mean not idle.
            Stream::TlsClient(s) => {
                let tcp = s.get_ref().0;
                matches!(socket2::SockRef::from(tcp).peek(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            // Client-side TLS streams are never pooled.
            Stream::Tls(_) | Stream::Moving => false,
        }
    }

    /// Registers the socket with the reactor of the runtime this is called from (the calling
    /// session's thread, see [`crate::workers`]), so that its readiness wakes that thread
    /// directly instead of another thread that then wakes it. Two `epoll_ctl` calls. A TLS
    /// stream is left where it is (still correct, only woken through its first thread).
    pub fn rehome(&mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.stream, Stream::Moving) {
            Stream::Tcp(tcp) => self.stream = Stream::Tcp(TcpStream::from_std(tcp.into_std()?)?),
            other => self.stream = other,
        }
        Ok(())
    }

    /// Sends COM_QUIT without waiting, so the server closes the session cleanly instead of
    /// logging an aborted connection. Best effort: used when a connection is dropped. Over TLS
    /// nothing is sent (the server logs an aborted connection).
    pub fn quit_now(&mut self) {
        if let Stream::Tcp(s) = &self.stream {
            let _ = s.try_write(&[1, 0, 0, 0, 0x01]);
        }
    }

    /// Ends the stream before it is dropped: TLS sends its close_notify. Plain TCP needs
    /// nothing (closing the socket on drop sends the FIN; a separate shutdown(2) was one more
    /// system call per connection). Errors are irrelevant at this point.
    pub async fn shutdown(&mut self) {
        if let Stream::Tls(_) | Stream::TlsClient(_) = self.stream {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::net::TcpListener;

    /// A packet stream and the raw socket of its peer.
    async fn pair() -> (PacketStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (peer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (PacketStream::new(accepted.unwrap().0), peer.unwrap())
    }

    const SHORT: Duration = Duration::from_secs(5);

    /// Waits on `timer` until `deadline` (failing the test after `SHORT`).
    async fn wait_kept(timer: &mut KeptTimer, deadline: tokio::time::Instant) {
        tokio::time::timeout(SHORT, std::future::poll_fn(|cx| timer.poll_until(deadline, cx)))
            .await
            .expect("the kept timer never fired");
    }

    #[tokio::test]
    async fn a_kept_timer_ends_each_wait_at_that_waits_deadline() {
        let ms = Duration::from_millis;
        let mut timer = KeptTimer::default();
        let start = tokio::time::Instant::now();
        // Armed for 30 ms by a wait that ends sooner (its timer stays pending).
        let cut = tokio::time::timeout(ms(5), std::future::poll_fn(|cx| timer.poll_until(start + ms(30), cx))).await;
        assert!(cut.is_err(), "a 30 ms wait ended within 5 ms");
        // The next wait's deadline is later: the timer fires at 30 ms, and the wait goes on.
        wait_kept(&mut timer, start + ms(120)).await;
        assert!(start.elapsed() >= ms(120), "ended after {:?}, before its deadline", start.elapsed());
        // One armed far out does not hold up a wait with an earlier deadline.
        let cut = tokio::time::timeout(ms(5), std::future::poll_fn(|cx| timer.poll_until(start + SHORT * 4, cx))).await;
        assert!(cut.is_err());
        let again = tokio::time::Instant::now();
        wait_kept(&mut timer, again + ms(40)).await;
        assert!(again.elapsed() >= ms(40));
        assert!(again.elapsed() < SHORT, "waited for the earlier, later deadline");
    }

    /// A waker that counts its wake-ups.
    fn counting_waker() -> (std::task::Waker, Arc<std::sync::atomic::AtomicUsize>) {
        struct Count(Arc<std::sync::atomic::AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        (std::task::Waker::from(Arc::new(Count(n.clone()))), n)
    }

    #[tokio::test]
    async fn a_kept_timer_wakes_the_waker_of_its_latest_wait() {
        use std::sync::atomic::Ordering::SeqCst;
        let (a, woken_a) = counting_waker();
        let (b, woken_b) = counting_waker();
        let mut timer = KeptTimer::default();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(10);
        // Polled twice by one waker (the second poll does not reach the timer), then by another.
        assert!(timer.poll_until(deadline, &mut Context::from_waker(&a)).is_pending());
        assert!(timer.poll_until(deadline, &mut Context::from_waker(&a)).is_pending());
        assert!(timer.poll_until(deadline, &mut Context::from_waker(&b)).is_pending());
        // A later deadline on the same runtime: the timer wheel fires the 10 ms one first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(woken_b.load(SeqCst), 1, "the latest waker was not woken");
        assert_eq!(woken_a.load(SeqCst), 0);
        assert!(timer.poll_until(deadline, &mut Context::from_waker(&b)).is_ready());
    }

    #[tokio::test]
    async fn a_header_over_the_limit_fails_before_its_payload_arrives() {
        let (mut s, mut peer) = pair().await;
        // 16 MiB announced, 1 KiB sent, the rest never comes.
        peer.write_all(&[0xFF, 0xFF, 0xFF, 1]).await.unwrap();
        peer.write_all(&[b'x'; 1024]).await.unwrap();
        match s.read_packet(1 << 16, SHORT).await {
            Err(ConnError::TooLarge(n)) => assert_eq!(n, frame::MAX_CHUNK),
            other => panic!("expected TooLarge at the header, got {other:?}"),
        }
        assert!(s.rbuf.capacity() < 64 * 1024, "reserved {} bytes", s.rbuf.capacity());
    }

    #[tokio::test]
    async fn the_read_limit_applies_to_next_chunk() {
        let (mut s, mut peer) = pair().await;
        s.set_read_limit(4096);
        peer.write_all(&[0x01, 0x10, 0x00, 0]).await.unwrap(); // 4097 bytes announced
        assert!(matches!(s.next_chunk(SHORT).await, Err(ConnError::TooLarge(4097))));
    }

    #[tokio::test]
    async fn a_large_announced_chunk_gets_room_as_it_arrives() {
        let (mut s, mut peer) = pair().await;
        peer.write_all(&[0xFF, 0xFF, 0xFF, 0]).await.unwrap();
        peer.write_all(&vec![b'x'; 100 * 1024]).await.unwrap();
        // The peer stalls: the wait times out with what arrived buffered.
        assert!(matches!(s.next_chunk(Duration::from_millis(200)).await, Err(ConnError::Timeout(_))));
        assert_eq!(s.buffered().len(), HEADER + 100 * 1024);
        assert!(s.rbuf.capacity() <= 512 * 1024, "reserved {} bytes for 100 KiB", s.rbuf.capacity());
    }

    #[tokio::test]
    async fn packets_over_16_mib_still_round_trip() {
        let (mut s, peer) = pair().await;
        let payload: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let mut framed = BytesMut::new();
        frame::write_packet(&mut framed, 0, &payload);
        let writer = tokio::spawn(async move {
            let mut peer = peer;
            peer.write_all(&framed).await.unwrap();
            peer
        });
        let (seq, got) = s.read_packet(32 * 1024 * 1024, Duration::from_secs(30)).await.unwrap();
        assert_eq!(seq, 0);
        assert!(got[..] == payload[..], "payload differs");
        let _peer = writer.await.unwrap();
        // Over the limit by the second chunk: refused at that chunk's header.
        let (mut s, mut peer) = pair().await;
        let mut framed = BytesMut::new();
        frame::write_packet(&mut framed, 0, &payload);
        let writer = tokio::spawn(async move {
            let _ = peer.write_all(&framed).await;
        });
        match s.read_packet(frame::MAX_CHUNK + 10, Duration::from_secs(30)).await {
            Err(ConnError::TooLarge(n)) => assert!(n > frame::MAX_CHUNK + 10, "{n}"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        drop(s);
        let _ = writer.await;
    }

    #[tokio::test]
    async fn an_idle_connection_lets_its_buffers_go() {
        let (mut s, mut peer) = pair().await;
        let big = vec![b'y'; 300 * 1024];
        let mut framed = BytesMut::new();
        frame::write_packet(&mut framed, 0, &big);
        peer.write_all(&framed).await.unwrap();
        let (_, got) = s.read_packet(1 << 20, SHORT).await.unwrap();
        assert_eq!(got.len(), big.len());
        s.queue(1, &big);
        let reader = tokio::spawn(async move {
            let mut sink = vec![0u8; HEADER + 300 * 1024];
            peer.read_exact(&mut sink).await.unwrap();
            peer
        });
        s.flush(SHORT).await.unwrap();
        let mut peer = reader.await.unwrap();
        drop(got);
        // Nothing comes for longer than SHRINK_AFTER.
        assert!(matches!(s.fill(SHRINK_AFTER * 2).await, Err(ConnError::Timeout(_))));
        assert_eq!((s.rbuf.capacity(), s.wbuf.capacity()), (0, 0));
        // And it still reads what comes next.
        peer.write_all(b"\x01\x00\x00\x00\x0e").await.unwrap();
        assert_eq!(s.read_packet(1 << 16, SHORT).await.unwrap(), (0, Bytes::from_static(b"\x0e")));
    }

    #[tokio::test]
    async fn a_patched_packet_goes_out_patched_and_the_rest_untouched() {
        use tokio::io::AsyncReadExt;
        let (mut stream, mut peer) = pair().await;
        let payload = [0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0];
        stream.queue_patched(0, &payload, 1, &0x0102_0304u32.to_le_bytes());
        // Out of range: the packet goes out as it is.
        stream.queue_patched(1, &payload[..3], 1, &[9, 9, 9, 9]);
        stream.flush(Duration::from_secs(5)).await.unwrap();
        let mut got = vec![0u8; 4 + 10 + 4 + 3];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..4], &[10, 0, 0, 0]);
        assert_eq!(&got[4..14], &[0x17, 4, 3, 2, 1, 0, 1, 0, 0, 0]);
        assert_eq!(&got[14..], &[3, 0, 0, 1, 0x17, 7, 0]);
    }
}

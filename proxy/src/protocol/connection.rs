//! A packet-level connection: a TCP stream, its read buffer and its write buffer. Every read
//! takes a deadline, so no await on the network can hang forever; writes are buffered and
//! flushed explicitly so one response is one or a few syscalls.

use super::frame::{self, check_chunk, Chunk, HEADER};
use bytes::{Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

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

/// The socket under a packet stream: plain TCP, or TLS towards a client.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<Prefixed>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A MySQL packet stream.
#[derive(Debug)]
pub struct PacketStream {
    stream: Stream,
    peer: Option<std::net::SocketAddr>,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl PacketStream {
    pub fn new(stream: TcpStream) -> Self {
        // Small statements dominate; latency matters more than batching here.
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        PacketStream {
            stream: Stream::Tcp(stream),
            peer,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(16 * 1024),
        }
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
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: self.wbuf,
        })
    }

    /// Whether the connection is on TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Reads more bytes into the read buffer. Returns `Closed` on EOF.
    pub async fn fill(&mut self, timeout: Duration) -> Result<(), ConnError> {
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(64 * 1024);
        }
        match tokio::time::timeout(timeout, self.stream.read_buf(&mut self.rbuf)).await {
            Err(_) => Err(ConnError::Timeout(timeout)),
            Ok(Ok(0)) => Err(ConnError::Closed),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ConnError::Io(e)),
        }
    }

    /// The complete chunk at the head of the read buffer, reading until there is one.
    pub async fn next_chunk(&mut self, timeout: Duration) -> Result<Chunk, ConnError> {
        loop {
            if let Some(c) = check_chunk(&self.rbuf) {
                return Ok(c);
            }
            // Make room for a large chunk in one go instead of growing step by step.
            if self.rbuf.len() >= HEADER {
                let want = usize::from(self.rbuf[0]) | usize::from(self.rbuf[1]) << 8 | usize::from(self.rbuf[2]) << 16;
                self.rbuf.reserve(HEADER + want - self.rbuf.len().min(HEADER + want));
            }
            self.fill(timeout).await?;
        }
    }

    /// Removes and returns the first `n` buffered bytes (whole chunks, as `check_chunk` found).
    pub fn take_raw(&mut self, n: usize) -> BytesMut {
        self.rbuf.split_to(n)
    }

    /// The buffered bytes, writable (to patch a statement id before relaying).
    pub fn buffered_mut(&mut self) -> &mut [u8] {
        &mut self.rbuf
    }

    /// The buffered, not yet consumed bytes.
    pub fn buffered(&self) -> &[u8] {
        &self.rbuf
    }

    /// Reads one logical packet (chunks joined), at most `limit` payload bytes.
    /// Returns its first sequence id and payload.
    pub async fn read_packet(&mut self, limit: usize, timeout: Duration) -> Result<(u8, Bytes), ConnError> {
        let first = self.next_chunk(timeout).await?;
        let mut raw = self.take_raw(first.total());
        let mut payload = raw.split_off(HEADER);
        let mut last = first;
        while last.continues() {
            last = self.next_chunk(timeout).await?;
            if payload.len() + last.len > limit {
                return Err(ConnError::TooLarge(payload.len() + last.len));
            }
            let chunk = self.take_raw(last.total());
            payload.extend_from_slice(&chunk[HEADER..]);
        }
        if payload.len() > limit {
            return Err(ConnError::TooLarge(payload.len()));
        }
        Ok((first.seq, payload.freeze()))
    }

    /// Queues one logical packet; returns the next sequence id.
    pub fn queue(&mut self, seq: u8, payload: &[u8]) -> u8 {
        frame::write_packet(&mut self.wbuf, seq, payload)
    }

    /// Queues bytes that already are whole framed chunks (relayed from the other side).
    pub fn queue_raw(&mut self, raw: &[u8]) {
        self.wbuf.extend_from_slice(raw);
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
        let mut probe = [0u8; 1];
        match &self.stream {
            Stream::Tcp(s) => matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            // Pooled connections are plain TCP; anything else is not reused.
            Stream::Tls(_) => false,
        }
    }

    /// Sends COM_QUIT without waiting, so the server closes the session cleanly instead of
    /// logging an aborted connection. Best effort: used when a connection is dropped.
    pub fn quit_now(&mut self) {
        if let Stream::Tcp(s) = &self.stream {
            let _ = s.try_write(&[1, 0, 0, 0, 0x01]);
        }
    }

    /// Shuts the write side down; errors are irrelevant at this point.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}

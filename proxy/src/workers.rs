//! Session threads: every client session runs its whole life on one thread, in that thread's
//! own single-threaded tokio runtime (thread per core, as HAProxy and nginx do).
//!
//! Why: a statement is four wake-ups (client request, backend write, backend response, client
//! write). On a work-stealing runtime they land on whichever worker holds the reactor or steals
//! the task, so a session moved between threads (and CPUs) at nearly every statement — measured
//! with `perf stat` on one sysbench thread: 1.5 CPU migrations per statement and 25 % more CPU
//! per statement than HAProxy; on one thread per session, 0.003 migrations per statement.
//!
//! Sockets belong to the reactor of the runtime that registered them. A client socket is
//! accepted by the listener and registered again on the session's thread; a backend connection
//! remembers its thread ([`current`] when it was opened or last moved) and the pool hands a
//! session its own thread's connections first, moving any other one onto the session's thread
//! ([`crate::protocol::connection::PacketStream::rehome`]).
//!
//! A new session goes to the thread with the fewest live sessions.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::Handle;

thread_local! {
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The session thread the caller runs on (its index), `None` elsewhere (the main runtime:
/// listener, monitor, admin).
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// The session threads.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    /// Live sessions per thread.
    load: Arc<[AtomicUsize]>,
}

impl Workers {
    /// Starts `threads` session threads (0: one per CPU this process may run on).
    pub fn start(threads: usize) -> std::io::Result<Workers> {
        let n = match threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        };
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            std::thread::Builder::new().name(format!("rwsplit-w{i}")).spawn(move || {
                CURRENT.with(|c| c.set(Some(i)));
                // Runs the thread's tasks (and its reactor and timers) until the process ends.
                runtime.block_on(std::future::pending::<()>());
            })?;
        }
        let load = (0..n).map(|_| AtomicUsize::new(0)).collect();
        Ok(Workers { handles, load })
    }

    /// How many session threads run.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether there are none (never: `start` makes at least one).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs `session(tcp)` on the least loaded thread, `tcp` registered with that thread's
    /// reactor. A socket that cannot be moved (the process is out of file descriptors, say)
    /// is closed.
    pub fn spawn_session<F, Fut>(&self, tcp: tokio::net::TcpStream, session: F)
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some((i, handle)) = self.handles.iter().enumerate().min_by_key(|(i, _)| self.load_of(*i)) else {
            return;
        };
        let std = match tcp.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "client socket could not be handed to a session thread");
                return;
            }
        };
        let load = self.load.clone();
        if let Some(l) = load.get(i) {
            l.fetch_add(1, Ordering::Relaxed);
        }
        handle.spawn(async move {
            match tokio::net::TcpStream::from_std(std) {
                Ok(tcp) => session(tcp).await,
                Err(e) => tracing::warn!(error = %e, "client socket could not join its session thread"),
            }
            if let Some(l) = load.get(i) {
                l.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }

    fn load_of(&self, i: usize) -> usize {
        self.load.get(i).map(|l| l.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sessions_run_on_session_threads_and_spread_by_load() {
        let workers = Workers::start(2).unwrap();
        assert_eq!(workers.len(), 2);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let mut clients = Vec::new();
            for _ in 0..4 {
                clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
                let (tcp, _) = listener.accept().await.unwrap();
                let tx = tx.clone();
                workers.spawn_session(tcp, move |tcp| async move {
                    let _ = tx.send((current(), tcp.peer_addr().is_ok()));
                    // Stays alive (counted as load) until its client hangs up.
                    let mut b = [0u8; 1];
                    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.readable()).await;
                    let _ = tcp.try_read(&mut b);
                });
            }
            let mut seen = [0; 2];
            for _ in 0..4 {
                let (thread, registered) =
                    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
                assert!(registered, "the socket works on its session thread");
                seen[thread.expect("a session thread")] += 1;
            }
            assert_eq!(seen, [2, 2], "the least loaded thread takes each new session");
            assert_eq!(current(), None, "not a session thread");
        });
    }
}

//! Session threads: every client session runs its whole life on one thread, in that thread's
//! own single-threaded tokio runtime (thread per core, as HAProxy and nginx do).
//!
//! Why: a statement is four wake-ups (client request, backend write, backend response, client
//! write). On a work-stealing runtime they land on whichever worker holds the reactor or steals
//! the task, so a session moved between threads (and CPUs) at nearly every statement — measured
//! with `perf stat` on one sysbench thread: 1.5 CPU migrations per statement and 25 % more CPU
//! per statement than HAProxy; on one thread per session, 0.003 migrations per statement.
//!
//! Sockets belong to the reactor of the runtime that registered them. Every thread accepts
//! clients on the shared listening socket ([`crate::listener`]), so a client socket is
//! registered once, by the thread that runs its session (an idle thread wakes first and takes
//! the client); a backend connection remembers its thread ([`current`] when it was opened or
//! last moved) and the pool hands a session its own thread's connections first, moving any
//! other one onto the session's thread
//! ([`crate::protocol::connection::PacketStream::rehome`]).

use std::cell::Cell;
use std::future::Future;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

thread_local! {
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The session thread the caller runs on (its index), `None` elsewhere (the main runtime:
/// listener, monitor, admin).
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// How many session threads `proxy.worker_threads = 0` means on `cpus` CPUs: half of them,
/// at least one.
///
/// Why not one per CPU: a statement costs rwsplit about 25 µs of CPU, four fifths of it in the
/// kernel on its sockets, so one thread carries some 35,000 statements a second. A proxy
/// usually shares its host with the servers or the application (the lab; a VRRP pair on the
/// database hosts), and there every thread beyond what the load needs adds wake-ups and
/// cache traffic for everyone. Measured on 2 CPUs shared with sysbench and three servers
/// (16-thread point selects, interleaved rounds): one thread instead of two took rwsplit's
/// context switches from 1.0–1.4 to 0.6–0.7 per statement and its user time from 5.9–6.4 to
/// 4.4–4.6 µs, the servers' time from 50–52 to 46–48 µs, and gave 3–5 % more throughput; a
/// whole `make bench` with two threads later (git e5c98af, 5 rounds) was still not better
/// (prepared point selects 0.91 of HAProxy against 0.92, read/write 1.00 against 1.04). A
/// host that runs rwsplit alone at high load sets `worker_threads` to its CPU count.
pub fn automatic_threads(cpus: usize) -> usize {
    (cpus / 2).max(1)
}

/// The session threads.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
}

impl Workers {
    /// Starts `threads` session threads (0: [`automatic_threads`] of the CPUs this process
    /// may run on).
    pub fn start(threads: usize) -> std::io::Result<Workers> {
        let n = match threads {
            0 => automatic_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
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
        Ok(Workers { handles })
    }

    /// How many session threads run.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether there are none (never: `start` makes at least one).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs `task(i)` on every session thread `i`.
    pub fn spawn_on_each<F, Fut>(&self, mut task: F) -> Vec<JoinHandle<()>>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handles.iter().enumerate().map(|(i, h)| h.spawn(task(i))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn automatic_threads_are_half_the_cpus_and_at_least_one() {
        let got: Vec<usize> = [1, 2, 3, 4, 8, 64].into_iter().map(automatic_threads).collect();
        assert_eq!(got, [1, 1, 1, 2, 4, 32]);
    }

    #[test]
    fn tasks_run_on_their_session_thread() {
        let workers = Workers::start(2).unwrap();
        assert_eq!(workers.len(), 2);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let tasks = workers.spawn_on_each(|i| async move {
                assert_eq!(current(), Some(i), "task {i} runs on thread {i}");
                // The thread's reactor works: a socket registered there accepts.
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = l.local_addr().unwrap();
                let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
                assert!(a.is_ok() && b.is_ok());
            });
            for t in tasks {
                tokio::time::timeout(Duration::from_secs(5), t).await.unwrap().unwrap();
            }
            assert_eq!(current(), None, "not a session thread");
        });
    }
}

//! The client listener: accepts connections, enforces `proxy.max_connections` (a client over
//! the limit gets ERR 1040 instead of a greeting, as MySQL does) and runs one session task per
//! client, on a session thread ([`crate::workers`]), until shutdown. When many sessions have ended, the memory they freed is handed back
//! to the system (glibc's malloc keeps it otherwise: 2,000 idle clients that left kept their
//! 15 MiB of RSS).

use crate::error::ProxyError;
use crate::protocol::frame::write_packet;
use crate::runtime::Shared;
use crate::workers::Workers;
use bytes::BytesMut;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Accepts clients until `shutdown` turns true: every session thread accepts on the same
/// listening socket (each has its own registration of it), so a client is registered once, on
/// the thread that runs its session, and an idle thread, woken first, takes it.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, workers: Arc<Workers>, shutdown: watch::Receiver<bool>) {
    let max = shared.config().proxy.max_connections as usize;
    let admission = Admission { limit: Arc::new(Semaphore::new(max)), max, peak: Arc::new(AtomicUsize::new(0)) };
    let trimmer = tokio::spawn(trim_when_sessions_ended(admission.limit.clone(), max, admission.peak.clone()));
    let listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "the listener could not be handed to the session threads");
            return;
        }
    };
    let loops = workers.spawn_on_each(|_| {
        let listener = listener.try_clone();
        let (shared, admission, shutdown) = (shared.clone(), admission.clone(), shutdown.clone());
        async move {
            match listener.and_then(TcpListener::from_std) {
                Ok(l) => accept_loop(l, shared, admission, shutdown).await,
                Err(e) => tracing::error!(error = %e, "a session thread cannot accept clients"),
            }
        }
    });
    for l in loops {
        let _ = l.await;
    }
    trimmer.abort();
}

/// `proxy.max_connections`, shared by the accept loops.
#[derive(Debug, Clone)]
struct Admission {
    limit: Arc<Semaphore>,
    max: usize,
    /// Most sessions at once since the last trim.
    peak: Arc<AtomicUsize>,
}

/// One session thread's accept loop: each client's session runs on this thread.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    admission: Admission,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (mut tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match admission.limit.clone().try_acquire_owned() {
            Ok(permit) => {
                admission.peak.fetch_max(admission.max - admission.limit.available_permits(), Ordering::Relaxed);
                let shared = shared.clone();
                tokio::spawn(async move {
                    crate::session::serve(shared, tcp).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(peer = %peer, "client refused: proxy.max_connections reached");
                tokio::spawn(async move {
                    let mut b = BytesMut::new();
                    write_packet(&mut b, 0, &ProxyError::TooManyConnections.err_packet());
                    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&b)).await;
                });
            }
        }
    }
}

/// How often [`trim_when_sessions_ended`] looks at the session count.
const TRIM_CHECK: Duration = Duration::from_secs(2);
/// Fewest ended sessions (below the peak since the last trim) worth a trim.
const TRIM_AFTER_ENDED: usize = 64;

/// Hands freed memory back to the system once the number of sessions has fallen well below its
/// peak (by a quarter and by at least [`TRIM_AFTER_ENDED`]): a steady churn of short sessions
/// does not trim, a crowd of clients leaving does.
async fn trim_when_sessions_ended(limit: Arc<Semaphore>, max: usize, peak: Arc<AtomicUsize>) {
    let mut tick = tokio::time::interval(TRIM_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let live = max - limit.available_permits();
        let high = peak.load(Ordering::Relaxed);
        if high >= live + TRIM_AFTER_ENDED.max(high / 4) {
            peak.store(live, Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }
}

/// Returns the allocator's free pages to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: glibc's malloc_trim takes no pointers; it walks the allocator's own arenas under
    // their locks and releases free pages (madvise), which any thread may do at any time.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

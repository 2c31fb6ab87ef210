//! The live client sessions by connection id — the id in rwsplit's handshake, which is also what
//! `CONNECTION_ID()` returns through rwsplit — for what one session may ask about another:
//! `KILL [QUERY | CONNECTION] id`, COM_PROCESS_KILL and `SHOW PROCESSLIST`.
//!
//! A session registers after login and is removed when it ends (its [`Registration`] is
//! dropped), so the map holds at most `proxy.max_connections` entries. Each entry says what the
//! session is doing now and on which backend connection, so that `KILL QUERY` can stop the
//! statement on the server that runs it. Locks are `std::sync::Mutex`es held for a copy or an
//! assignment, never across an await.

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use rwsplit_replication::{Health, TopologyHandle};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::watch;

/// What a session is doing, as `SHOW PROCESSLIST` shows it.
#[derive(Debug, Clone)]
pub struct Activity {
    pub user: String,
    pub schema: Option<String>,
    /// The command word (`Sleep`, `Query`, `Execute`, …).
    pub command: &'static str,
    /// When the current command (or the idle time) began.
    pub since: Instant,
    /// The statement text of a running COM_QUERY (the client's packet, shared, not copied).
    pub statement: Option<Bytes>,
    /// The backend connection running the current statement: (server index, connection id).
    pub running_on: Option<(usize, u32)>,
    /// The server of the connection tied to the session between statements (a transaction,
    /// a lock, …): a switchover waits for it to be let go.
    pub pinned_on: Option<usize>,
}

/// One live session.
#[derive(Debug)]
pub struct SessionEntry {
    pub id: u32,
    pub host: String,
    activity: Mutex<Activity>,
    killed: AtomicBool,
    /// Another session is killing the statement this session runs: the backend connection
    /// must not be given to anyone else, since the KILL may land after the statement ended.
    kill_in_flight: AtomicBool,
    /// How many times the statement the session runs was told to give up because its server
    /// went down ([`SessionEntry::abort`]), and the last such server.
    aborts: AtomicU64,
    abort_server: AtomicUsize,
    /// The session's task, woken by a kill or an abort. It registers while it waits for its
    /// client or a server (one atomic exchange, where a wait-list entry of a `Notify` or a
    /// `watch` costs a lock to add and one to remove, twice per statement).
    waker: AtomicWaker,
}

impl SessionEntry {
    /// A copy of what the session is doing.
    pub fn activity(&self) -> Activity {
        self.activity.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The server the session's connection is tied to between statements, if any (without
    /// copying the rest of the activity).
    pub fn pinned_on(&self) -> Option<usize> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner()).pinned_on
    }

    /// Changes what the session is doing.
    pub fn update(&self, f: impl FnOnce(&mut Activity)) {
        f(&mut self.activity.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Asks the session to end (KILL CONNECTION): it closes its client connection as soon as
    /// it notices — at once when idle, after the current statement was stopped otherwise.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub fn mark_kill_in_flight(&self) {
        self.kill_in_flight.store(true, Ordering::Relaxed);
    }

    /// Whether a KILL was sent for the current statement's connection (and forgets it).
    pub fn take_kill_in_flight(&self) -> bool {
        self.kill_in_flight.swap(false, Ordering::Relaxed)
    }

    /// Tells the session's running statement that `server` went down.
    pub fn abort(&self, server: usize) {
        self.abort_server.store(server, Ordering::Relaxed);
        self.aborts.fetch_add(1, Ordering::Release);
        self.waker.wake();
    }

    /// How many aborts were sent so far: what [`poll_abort`](Self::poll_abort) compares with.
    pub fn aborts_seen(&self) -> u64 {
        self.aborts.load(Ordering::Acquire)
    }

    /// Ready with the server of the last abort once one was sent after `seen` (which then
    /// counts it); else registers the session's task to be woken by the next. Only the
    /// session's own task may poll this (or [`killed`](Self::killed)): there is one waker.
    pub fn poll_abort(&self, cx: &mut Context<'_>, seen: &mut u64) -> Poll<usize> {
        self.waker.register(cx.waker());
        let now = self.aborts.load(Ordering::Acquire);
        if now == *seen {
            return Poll::Pending;
        }
        *seen = now;
        Poll::Ready(self.abort_server.load(Ordering::Relaxed))
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Resolves when [`SessionEntry::kill`] was called (also if it was called before). For the
    /// session's own task only (see [`poll_abort`](Self::poll_abort)).
    pub async fn killed(&self) {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if self.is_killed() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// The registry of live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<u32, Arc<SessionEntry>>>,
}

impl Sessions {
    /// Registers a session that just logged in; it stays listed while the returned
    /// [`Registration`] lives.
    pub fn register(self: &Arc<Self>, id: u32, host: String, user: String, schema: Option<String>) -> Registration {
        let entry = Arc::new(SessionEntry {
            id,
            host,
            activity: Mutex::new(Activity {
                user,
                schema,
                command: "Sleep",
                since: Instant::now(),
                statement: None,
                running_on: None,
                pinned_on: None,
            }),
            killed: AtomicBool::new(false),
            kill_in_flight: AtomicBool::new(false),
            aborts: AtomicU64::new(0),
            abort_server: AtomicUsize::new(0),
            waker: AtomicWaker::new(),
        });
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(id, entry.clone());
        Registration { sessions: self.clone(), entry }
    }

    pub fn get(&self, id: u32) -> Option<Arc<SessionEntry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Every live session, ordered by id.
    /// How many sessions `f` holds for, without copying the list (the map is locked for the
    /// count; `f` must not reach the registry).
    pub fn count(&self, f: impl Fn(&SessionEntry) -> bool) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).values().filter(|e| f(e)).count()
    }

    pub fn list(&self) -> Vec<Arc<SessionEntry>> {
        let mut all: Vec<_> = self.map.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        all.sort_by_key(|e| e.id);
        all
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Aborts the statements running on a server as soon as the monitor marks it down (a stopped
/// or unreachable server would otherwise hold them until the response timeout): reads that
/// sent nothing to the client yet are retried elsewhere, the others get an error. Looks at the
/// topology every `every` until `stop` turns true.
pub async fn abort_on_down(
    sessions: Arc<Sessions>,
    topology: TopologyHandle,
    every: std::time::Duration,
    stop: watch::Receiver<bool>,
) {
    let mut seen = 0;
    let mut ticker = crate::runtime::Ticker::new(every, stop);
    while ticker.next().await {
        let t = topology.load();
        if t.generation == seen {
            continue;
        }
        seen = t.generation;
        let down: Vec<usize> =
            t.servers.iter().enumerate().filter(|(_, s)| s.health == Health::Down).map(|(i, _)| i).collect();
        drop(t);
        if down.is_empty() {
            continue;
        }
        for entry in sessions.list() {
            if let Some((server, _)) = entry.activity().running_on.filter(|(s, _)| down.contains(s)) {
                tracing::info!(session = entry.id, server, "aborting a statement on a server marked down");
                entry.abort(server);
            }
        }
    }
}

/// A session's place in the registry; removes it when dropped.
#[derive(Debug)]
pub struct Registration {
    sessions: Arc<Sessions>,
    pub entry: Arc<SessionEntry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sessions.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.entry.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_are_listed_while_registered_and_kill_is_seen() {
        let sessions = Arc::new(Sessions::default());
        let a = sessions.register(7, "127.0.0.1:1".into(), "app".into(), None);
        let b = sessions.register(3, "127.0.0.1:2".into(), "other".into(), Some("db".into()));
        assert_eq!(sessions.list().iter().map(|e| e.id).collect::<Vec<_>>(), vec![3, 7]);
        assert_eq!(sessions.get(3).unwrap().activity().user, "other");
        a.entry.update(|a| a.command = "Query");
        assert_eq!(sessions.get(7).unwrap().activity().command, "Query");
        assert!(!b.entry.is_killed());
        sessions.get(3).unwrap().kill();
        // A kill that came before the wait is not lost.
        tokio::time::timeout(std::time::Duration::from_secs(1), b.entry.killed()).await.unwrap();
        drop(b);
        assert!(sessions.get(3).is_none());
        assert_eq!(sessions.len(), 1);
        drop(a);
        assert!(sessions.is_empty());
    }

    #[tokio::test]
    async fn an_abort_wakes_the_waiting_session_and_one_sent_before_the_wait_does_not_count() {
        let sessions = Arc::new(Sessions::default());
        let r = sessions.register(5, "127.0.0.1:1".into(), "app".into(), None);
        let entry = r.entry.clone();
        entry.abort(1);
        // A statement starting now does not see the abort sent before it.
        let mut seen = entry.aborts_seen();
        let waiting = tokio::spawn({
            let entry = entry.clone();
            async move { std::future::poll_fn(|cx| entry.poll_abort(cx, &mut seen)).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "an abort sent before the wait was seen");
        entry.abort(2);
        let server = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert_eq!(server, 2);
    }
}

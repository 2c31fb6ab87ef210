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
use rwsplit_replication::{Health, TopologyHandle};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{watch, Notify};

/// What a session's running statement is told to give up: the server (by index) the monitor
/// marked down. A new value (even the same server again) is a new signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AbortSignal(pub Option<usize>);

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
    kill_signal: Notify,
    /// Another session is killing the statement this session runs: the backend connection
    /// must not be given to anyone else, since the KILL may land after the statement ended.
    kill_in_flight: AtomicBool,
    /// Aborts the statement the session runs on a server that went down.
    abort: watch::Sender<AbortSignal>,
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
        self.killed.store(true, Ordering::Relaxed);
        self.kill_signal.notify_one();
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
        self.abort.send_replace(AbortSignal(Some(server)));
    }

    /// A receiver for [`SessionEntry::abort`] signals (the session's relay listens).
    pub fn abort_signal(&self) -> watch::Receiver<AbortSignal> {
        self.abort.subscribe()
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Resolves when [`SessionEntry::kill`] was called (also if it was called before).
    pub async fn killed(&self) {
        if !self.is_killed() {
            self.kill_signal.notified().await;
        }
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
            kill_signal: Notify::new(),
            kill_in_flight: AtomicBool::new(false),
            abort: watch::channel(AbortSignal::default()).0,
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
}

//! The schema names the backend account can use, so that a client naming a database at login
//! is answered without a backend round trip. Refreshed every monitor interval with `SHOW
//! DATABASES` on the writer, as the backend account: its privileges, not the monitor
//! account's, decide what a session can use. A name that is not in the list (created a moment
//! ago, or the list is not known yet) is checked on a server as before, so the list only ever
//! saves work: it never refuses a login by itself.

use crate::backend::internal::internal_column;
use crate::backend::Pool;
use crate::protocol::ResponseFormat;
use arc_swap::ArcSwap;
use rwsplit_replication::TopologyHandle;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Most schema names kept: beyond it the list is not used (logins check on a server).
const MAX_SCHEMAS: usize = 100_000;

/// The last known list; empty until the first refresh.
#[derive(Debug, Default)]
pub struct Schemas(ArcSwap<HashSet<String>>);

impl Schemas {
    /// Whether `name` is known to exist and be usable by the backend account.
    pub fn contains(&self, name: &str) -> bool {
        self.0.load().contains(name)
    }

    pub fn set(&self, names: HashSet<String>) {
        self.0.store(Arc::new(names));
    }
}

/// Refreshes `schemas` every `interval` (each query bounded by `timeout`) until `stop` turns
/// true.
pub async fn watch(
    pool: Arc<Pool>,
    topology: TopologyHandle,
    schemas: Arc<Schemas>,
    interval: Duration,
    timeout: Duration,
    stop: watch::Receiver<bool>,
) {
    let mut ticker = crate::runtime::Ticker::new(interval, stop);
    while ticker.next().await {
        // Unknown (no writer, an error) is safe: logins then check on a server.
        let names = tokio::time::timeout(timeout * 2, refresh(&pool, &topology, timeout)).await.ok().flatten();
        schemas.set(names.unwrap_or_default());
    }
}

async fn refresh(pool: &Pool, topology: &TopologyHandle, timeout: Duration) -> Option<HashSet<String>> {
    let writer = topology.load().writer?;
    let plain = ResponseFormat::plain();
    // Any idle connection will do: SHOW DATABASES does not depend on session state, nor
    // change it.
    let mut conn = pool.lease(writer, plain, 0, false).await.ok()?;
    let names = internal_column(&mut conn, "SHOW DATABASES", MAX_SCHEMAS + 1, timeout).await.ok()?;
    pool.release(conn);
    if names.len() > MAX_SCHEMAS {
        return None;
    }
    Some(names.into_iter().flatten().collect())
}

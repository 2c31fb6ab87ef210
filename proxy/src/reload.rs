//! Applying a new config to the running process (SIGHUP, `POST /reload`, `rwsplit reload`)
//! without dropping a client connection.
//!
//! What a reload changes, and when:
//! - users, `[routing]`, timeouts and `[backend]` pool settings: from the next statement or
//!   connection;
//! - servers ([`rwsplit_replication::slots`]): added ones are checked at once and join the read
//!   pool when the monitor finds them fit; removed ones leave routing at once, their statements
//!   in flight finish and their connections then close; weights and `drain` apply at once. The
//!   writer cannot be removed (switch over first);
//! - `[monitor]`: its next round (which starts at once);
//! - `[[vrrp]]`: instances that did not change keep running untouched; a changed, added or
//!   removed instance is stopped and/or started (a changed instance holding its VIP hands it
//!   over while it restarts);
//! - `proxy.listen`, `admin.listen`, `proxy.tls_*`, `proxy.worker_threads`: at the next start
//!   (a warning says so).
//!
//! Everything that can refuse is checked before anything changes: the config itself, the
//! server slots and the TLS files ([`prepare`]), then the VRRP instances, which are rolled back
//! if one cannot start; only then is the rest committed ([`Prepared::commit`]). A refused
//! reload leaves the running config in force.

use crate::backend::PoolSettings;
use crate::runtime::Shared;
use rwsplit_config::{Config, ServerConfig};
use rwsplit_replication::{slots, MonitorUpdate, ServerSlot, SlotChanges, SlotRefusal};
use serde::Serialize;
use std::sync::Arc;

/// Which config is in force: shown by `/status` and `rwsplit status`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConfigVersion {
    /// 1 at start, one more for each reload applied.
    pub number: u64,
    /// SHA-256 of the file as loaded (hex, first 16 digits): which edit is running.
    pub sha256: String,
    /// When it was loaded (Unix time, ms).
    pub loaded_at_ms: u64,
}

impl ConfigVersion {
    pub fn new(number: u64, file: &[u8]) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(file);
        let sha256 = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let loaded_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        ConfigVersion { number, sha256, loaded_at_ms }
    }
}

/// Why a reload was refused (the running config stays in force).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not load or validate (each error with file, line and reason).
    #[error("{0}")]
    Invalid(rwsplit_config::ConfigErrors),
    #[error("{0}")]
    Servers(SlotRefusal),
    #[error("backend TLS: {0}")]
    BackendTls(String),
    #[error("[[vrrp]]: {0}")]
    Vrrp(String),
    /// Another reload is being applied, or the process is stopping.
    #[error("the reload could not run: {0}")]
    Unavailable(&'static str),
}

/// What an applied reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub version: ConfigVersion,
    /// Server names added, removed, added back, and changed (weight, drain, TLS).
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub revived: Vec<String>,
    pub changed: Vec<String>,
    /// Settings that changed but apply only at the next start.
    pub restart_needed: Vec<&'static str>,
}

/// A reload that passed every check, ready to be committed.
#[derive(Debug)]
pub struct Prepared {
    new: Config,
    version: ConfigVersion,
    slots: Vec<ServerSlot>,
    changes: SlotChanges,
    tls: Vec<Option<crate::backend::tls::ServerTls>>,
    tls_changed: Vec<usize>,
}

/// Checks `new` (already loaded and validated; `file` its bytes) against the running process:
/// the server list must be applicable and the backend TLS files readable. Changes nothing.
pub fn prepare(shared: &Shared, new: Config, file: &[u8]) -> Result<Prepared, ReloadError> {
    let old = shared.config();
    let writer = shared.topology.load().writer;
    let current = shared.slots();
    let (slots, changes) = slots::plan(&current, writer, &new.servers).map_err(ReloadError::Servers)?;
    let configs: Vec<ServerConfig> = slots.iter().map(|s| s.config.clone()).collect();
    let tls = crate::backend::tls::for_servers(&new.backend, &configs).map_err(ReloadError::BackendTls)?;
    let tls_files = |c: &Config| {
        let b = &c.backend;
        (b.tls_ca.clone(), b.tls_cert.clone(), b.tls_key.clone())
    };
    let files_changed = tls_files(&new) != tls_files(&old);
    let tls_changed = slots
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            let now = new.backend.tls_for(&s.config);
            let before = current.get(*i).is_some_and(|c| old.backend.tls_for(&c.config));
            now != before || (now && files_changed)
        })
        .map(|(i, _)| i)
        .collect();
    let version = ConfigVersion::new(shared.config_version().number + 1, file);
    Ok(Prepared { new, version, slots, changes, tls, tls_changed })
}

impl Prepared {
    /// The `[[vrrp]]` instances of the new config (the caller applies them before
    /// [`Prepared::commit`], as they may still fail to start).
    pub fn vrrp(&self) -> &[rwsplit_config::VrrpInstanceConfig] {
        &self.new.vrrp
    }

    /// Applies the reload to the pools, the metrics, the monitor and the shared config.
    pub fn commit(self, shared: &Shared) -> ReloadReport {
        let Prepared { new, version, slots, changes, tls, tls_changed } = self;
        let configs: Vec<ServerConfig> = slots.iter().map(|s| s.config.clone()).collect();
        shared.pool.reconfigure(&slots, PoolSettings::from(&new.backend), tls, &tls_changed);
        shared.metrics.set_servers(&configs.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
        shared.send_monitor_update(MonitorUpdate {
            config: new.monitor.clone(),
            slots: slots.clone(),
            tls: crate::backend::tls::for_monitor(&new.backend, &configs),
        });
        let restart_needed = restart_needed(&shared.config(), &new);
        let names = |ids: &[usize]| ids.iter().filter_map(|&i| slots.get(i)).map(|s| s.config.name.clone()).collect();
        let report = ReloadReport {
            version: version.clone(),
            added: names(&changes.added),
            removed: names(&changes.removed),
            revived: names(&changes.revived),
            changed: names(&changes.changed),
            restart_needed,
        };
        shared.reload(new, slots, version);
        report
    }
}

/// Waits (up to `timeout`) until the published topology has the server slots in force:
/// the monitor applies a reload between its rounds, so routing follows a moment after
/// [`Prepared::commit`]. Returns whether it did in time.
pub async fn wait_routing_follows(shared: &Shared, timeout: std::time::Duration) -> bool {
    use rwsplit_replication::Health;
    let slots = shared.slots();
    let follows = |t: &rwsplit_replication::Topology| {
        t.servers.len() == slots.len()
            && t.servers.iter().zip(&slots).all(|(s, slot)| {
                (s.health == Health::Removed) == slot.removed
                    && s.drained == (slot.config.drain && !slot.removed)
                    && s.weight == slot.config.weight
            })
    };
    let mut changes = shared.topology.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if follows(&shared.topology.load()) {
            return true;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            _ => return follows(&shared.topology.load()),
        }
    }
}

/// The settings that differ between `old` and `new` but are only read at start.
fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.proxy.listen != new.proxy.listen {
        out.push("proxy.listen");
    }
    if old.admin.listen != new.admin.listen {
        out.push("admin.listen");
    }
    if (&old.proxy.tls_cert, &old.proxy.tls_key) != (&new.proxy.tls_cert, &new.proxy.tls_key) {
        out.push("proxy.tls_cert / proxy.tls_key");
    }
    if old.proxy.worker_threads != new.proxy.worker_threads {
        out.push("proxy.worker_threads");
    }
    out
}

/// A reload asked for over the admin endpoint, and where its outcome goes.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<ReloadReport, String>>;

/// The channel the process's reloader listens on (see `main.rs`): `POST /reload` sends here.
pub type ReloadRequests = tokio::sync::mpsc::Sender<ReloadRequest>;

/// Asks the reloader to reload from the config file and waits for the outcome.
pub async fn request(shared: &Arc<Shared>) -> Result<ReloadReport, String> {
    let Some(tx) = shared.reload_requests.get() else {
        return Err(ReloadError::Unavailable("not started yet").to_string());
    };
    let (reply, outcome) = tokio::sync::oneshot::channel();
    tx.try_send(reply).map_err(|_| ReloadError::Unavailable("another reload is queued").to_string())?;
    outcome.await.unwrap_or_else(|_| Err(ReloadError::Unavailable("stopping").to_string()))
}

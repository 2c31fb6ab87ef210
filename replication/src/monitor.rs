//! The monitor task: every interval, check all servers concurrently ([`Probe`]), hand the
//! results to the pure [`Tracker`], log its events, publish its topology and run its actions
//! (the semi-sync notify command, bounded in time, one at a time in order). A reload reaches it
//! as a [`MonitorUpdate`] between rounds: new settings, new server slots, and a round at once.

use crate::probe::{now_us, CheckPlan, Probe};
use crate::slots::ServerSlot;
use crate::topology::{Topology, TopologyHandle};
use crate::tracker::{Action, Event, Level, Policy, Step, Tracker};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Checks the servers and publishes the [`Topology`]. Build with [`Monitor::new`], call
/// [`Monitor::check_once`] for a first known topology, then spawn [`Monitor::run`].
#[derive(Debug)]
pub struct Monitor {
    tracker: Tracker,
    config: rwsplit_config::MonitorConfig,
    /// One per server slot; `None` for a removed server (not checked).
    probes: Vec<Option<Probe>>,
    /// The slots and TLS settings the probes were made for (to tell what a reload changed).
    slots: Vec<ServerSlot>,
    tls: Vec<Option<crate::ServerTls>>,
    updates: Option<watch::Receiver<Option<Arc<MonitorUpdate>>>>,
    handle: TopologyHandle,
    interval: Duration,
    heartbeat_id: Option<u32>,
    notify: Option<(String, Duration)>,
    /// The last notify command still running, so the next one waits for it (order is kept).
    notify_task: Option<JoinHandle<()>>,
    last_round: Option<Instant>,
}

impl Monitor {
    /// `servers`: (name, address "host:port", weight) in config order; indexes are server ids.
    /// The tracker starts from an unknown topology over `servers` and continues the
    /// generation of whatever `handle` holds. Does not touch the network (no runtime needed).
    pub fn new(
        config: &rwsplit_config::MonitorConfig,
        servers: &[rwsplit_config::ServerConfig],
        handle: TopologyHandle,
    ) -> Self {
        let mut initial = Topology::unknown(servers.iter().map(|s| (s.name.clone(), s.address.clone(), s.weight)));
        initial.generation = handle.load().generation;
        let notify = (!config.semisync_notify.trim().is_empty())
            .then(|| (config.semisync_notify.clone(), Duration::from_millis(config.notify_timeout_ms)));
        Monitor {
            tracker: Tracker::new(Policy::from_config(config), initial),
            config: config.clone(),
            probes: servers.iter().map(|s| Some(Probe::new(&s.address, config))).collect(),
            slots: ServerSlot::initial(servers),
            tls: Vec::new(),
            updates: None,
            handle,
            interval: Duration::from_millis(config.interval_ms.max(1)),
            heartbeat_id: config.heartbeat.then_some(config.heartbeat_id),
            notify,
            notify_task: None,
            last_round: None,
        }
    }

    /// Reaches the servers over TLS where `tls` (one entry per server, in config order) says
    /// so ([`crate::ServerTls::for_server`]); servers without an entry use plain TCP.
    pub fn with_tls(mut self, tls: Vec<Option<crate::ServerTls>>) -> Self {
        self.tls = tls.clone();
        for (probe, t) in self.probes.iter_mut().zip(tls) {
            if let Some(p) = probe {
                p.set_tls(t);
            }
        }
        self
    }

    /// Takes reloads from `updates` (the latest one wins), applied between rounds.
    pub fn with_updates(mut self, updates: watch::Receiver<Option<Arc<MonitorUpdate>>>) -> Self {
        self.updates = Some(updates);
        self
    }

    /// The last topology this monitor built.
    pub fn topology(&self) -> &Topology {
        self.tracker.current()
    }

    /// Runs checks every interval until `shutdown` resolves, then closes its connections.
    /// A round lasts at most connect timeout + check timeout (+ one more check timeout for the
    /// writer's heartbeat write when the heartbeat is on); if that is longer than the interval,
    /// the next round starts right after (rounds never overlap). So while one server swallows
    /// packets, changes on the others still show within about two intervals at the defaults.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.last_round.is_some() {
            // check_once already ran: the first tick is one interval from now, not immediate.
            ticker.reset();
        }
        let mut updates = self.updates.take();
        loop {
            let handle = self.handle.clone();
            let next_update = async {
                let Some(rx) = updates.as_mut() else { return std::future::pending().await };
                match rx.changed().await {
                    Ok(()) => rx.borrow_and_update().clone(),
                    // The sender is gone (shutting down): no more updates.
                    Err(_) => std::future::pending().await,
                }
            };
            // Only the wait is raced against an update; a round of checks, once started, ends.
            tokio::select! {
                _ = &mut shutdown => break,
                _ = async {
                    let update = tokio::select! {
                        _ = ticker.tick() => None,
                        // A promotion just happened: its result is wanted now, not in an interval.
                        _ = handle.check_requested() => { ticker.reset(); None }
                        // A reload: applied, then a round at once.
                        update = next_update => update,
                    };
                    if let Some(u) = update {
                        self.reconfigure(&u).await;
                        if ticker.period() != self.interval {
                            ticker = tokio::time::interval(self.interval);
                            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        }
                        ticker.reset();
                    }
                    self.check_once().await
                } => {}
            }
        }
        for p in self.probes.iter_mut().flatten() {
            p.close().await;
        }
        tracing::info!("monitor stopped");
    }

    /// One round of checks, publishing the result.
    pub async fn check_once(&mut self) {
        let writer = self.tracker.current().writer;
        let last_heartbeat_us = self.tracker.last_heartbeat_us();
        let heartbeat_id = self.heartbeat_id;
        let checks = self.probes.iter_mut().enumerate().map(|(i, p)| async move {
            let plan = CheckPlan { heartbeat_id, is_writer: Some(i) == writer, last_heartbeat_us };
            match p {
                Some(p) => p.check(plan).await,
                // A removed server: the tracker skips its result.
                None => Err(crate::Error::Unexpected { what: "check", detail: "removed from the config".into() }),
            }
        });
        let results = futures_util::future::join_all(checks).await;
        let now_ms = u64::try_from(now_us() / 1000).unwrap_or(0);
        let step = self.tracker.apply(results, now_ms);
        self.last_round = Some(Instant::now());
        self.finish(step);
    }

    /// Applies a reload: the settings (policy, interval, heartbeat, notify command), then the
    /// server slots. A probe is made anew for a new or revived server and, when the
    /// connection settings changed, for every server; a removed server's probe is closed.
    async fn reconfigure(&mut self, update: &MonitorUpdate) {
        let config = &update.config;
        let connection_changed = (&config.user, &config.password, config.connect_timeout_ms, config.check_timeout_ms)
            != (&self.config.user, &self.config.password, self.config.connect_timeout_ms, self.config.check_timeout_ms);
        self.tracker.set_policy(Policy::from_config(config));
        self.interval = Duration::from_millis(config.interval_ms.max(1));
        self.heartbeat_id = config.heartbeat.then_some(config.heartbeat_id);
        self.notify = (!config.semisync_notify.trim().is_empty())
            .then(|| (config.semisync_notify.clone(), Duration::from_millis(config.notify_timeout_ms)));
        for (i, slot) in update.slots.iter().enumerate() {
            if i >= self.probes.len() {
                self.probes.push(None);
            }
            let tls = update.tls.get(i).cloned().flatten();
            let same = self.slots.get(i).is_some_and(|old| old.config == slot.config && !old.removed)
                && self.tls.get(i).cloned().flatten() == tls;
            let keep = !slot.removed && same && !connection_changed && self.probes[i].is_some();
            if !keep {
                if let Some(mut old) = self.probes[i].take() {
                    old.close().await;
                }
                if !slot.removed {
                    let mut probe = Probe::new(&slot.config.address, config);
                    probe.set_tls(tls);
                    self.probes[i] = Some(probe);
                }
            }
        }
        self.config = config.clone();
        self.slots = update.slots.clone();
        self.tls = update.tls.clone();
        let step = self.tracker.reconfigure(&update.slots);
        self.finish(step);
    }

    fn finish(&mut self, step: Step) {
        for e in &step.events {
            log_event(&step.topology, e);
        }
        let current = self.handle.load();
        if **current != step.topology {
            self.handle.publish(step.topology.clone());
        }
        if step.changed {
            tracing::debug!(generation = step.topology.generation, "topology changed");
        }
        for a in step.actions {
            self.act(&step.topology, a);
        }
    }

    fn act(&mut self, topology: &Topology, action: Action) {
        match action {
            Action::SemisyncNotify { server, active } => {
                let Some((command, limit)) = self.notify.clone() else { return };
                let name = topology.servers.get(server).map(|s| s.name.clone()).unwrap_or_default();
                let previous = self.notify_task.take();
                self.notify_task = Some(tokio::spawn(async move {
                    if let Some(p) = previous {
                        let _ = p.await;
                    }
                    run_notify(&command, limit, &name, active).await;
                }));
            }
        }
    }
}

/// A reload for the monitor.
#[derive(Debug, Clone)]
pub struct MonitorUpdate {
    pub config: rwsplit_config::MonitorConfig,
    /// The server slots after the reload ([`crate::slots::plan`]).
    pub slots: Vec<ServerSlot>,
    /// TLS towards each slot's server ([`crate::ServerTls::for_server`]); `None`: plain TCP.
    pub tls: Vec<Option<crate::ServerTls>>,
}

fn log_event(t: &Topology, e: &Event) {
    let server = e.server.and_then(|i| t.servers.get(i)).map_or("", |s| s.name.as_str());
    match e.level {
        Level::Info => tracing::info!(server, generation = t.generation, "{}", e.message),
        Level::Warn => tracing::warn!(server, generation = t.generation, "{}", e.message),
        Level::Error => tracing::error!(server, generation = t.generation, "{}", e.message),
    }
}

/// Runs the notify command through `/bin/sh -c`, killing it after `limit`.
async fn run_notify(command: &str, limit: Duration, server: &str, active: bool) {
    let state = if active { "on" } else { "off" };
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("RWSPLIT_SEMISYNC", state)
        .env("RWSPLIT_SERVER", server)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(server, "semisync_notify could not start: {e}");
            return;
        }
    };
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) if status.success() => tracing::info!(server, semisync = state, "semisync_notify ran"),
        Ok(Ok(status)) => tracing::warn!(server, semisync = state, "semisync_notify exited with {status}"),
        Ok(Err(e)) => tracing::warn!(server, "semisync_notify: {e}"),
        Err(_) => {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            tracing::warn!(server, "semisync_notify killed after {} ms", limit.as_millis());
        }
    }
}

//! The embedded VRRP instances of `rwsplit run` and the proxy health they track.
//!
//! One [`rwsplit_ha::runner`] thread per `[[vrrp]]` instance (one per virtual IP, so N nodes
//! can each be the preferred master of their own VIP and the backup of the others). They start
//! after the client listener is bound and the first topology is known, and stop first at
//! shutdown: a master sends its priority-0 advert and drops its addresses before the listener
//! closes, so the backup takes over at once (Skew_Time) instead of after Master_Down_Interval.
//!
//! **Proxy health** — what `track_proxy = { weight = W }` tracks — is one flag shared by every
//! instance: healthy while
//! - the client listener is up (its accept task is running), and
//! - the topology knows a writer (`topology.writer().is_some()`), i.e. writes can be routed.
//!
//! A task refreshes it every [`HEALTH_REFRESH`] (200 ms); the VRRP thread reads it at each of
//! its ticks (at most 100 ms apart), so a lost writer moves the priority by W within about
//! 300 ms of the monitor publishing it (the monitor's own rise/fall come first). An unhealthy
//! proxy with W < 0 lowers its priority so that a healthy peer preempts; W = 0 puts the
//! instance in FAULT.
//!
//! **Listening address.** On the backup the VIP is absent, so a listener bound to the VIP
//! itself would fail to bind (EADDRNOTAVAIL) and the node could never take over. Bind the
//! wildcard, `[proxy] listen = "0.0.0.0:8066"` (the default in `rwsplit.example.toml`): the
//! listener is ready before the VIP arrives and accepts on it the moment it is added.

use crate::runtime::Shared;
use anyhow::{Context, Result};
use rwsplit_config::VrrpInstanceConfig;
use rwsplit_ha::runner::{self, RunnerHandle, RunnerStats};
use rwsplit_replication::Topology;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the proxy health flag is recomputed.
pub const HEALTH_REFRESH: Duration = Duration::from_millis(200);

/// The proxy's health as VRRP tracks it: listener up and a writer known.
pub fn proxy_healthy(listener_up: bool, topology: &Topology) -> bool {
    listener_up && topology.writer().is_some()
}

/// Runs `fut` with `flag` true while it runs; false once it ends, panics or is dropped.
/// Wraps the listener's accept loop so "listener up" means that loop is alive.
pub async fn alive_while<F: Future>(flag: Arc<AtomicBool>, fut: F) -> F::Output {
    struct Clear(Arc<AtomicBool>);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Relaxed);
        }
    }
    flag.store(true, Ordering::Relaxed);
    let _clear = Clear(flag);
    fut.await
}

/// When `listen` (`proxy.listen`) is one of the instances' virtual addresses, the reason that is
/// a mistake: wherever the VIP is absent (every backup) the bind fails and rwsplit does not
/// start, so the node could never take the VIP over.
pub fn listen_on_vip(listen: &str, instances: &[VrrpInstanceConfig]) -> Option<String> {
    let addr: std::net::SocketAddr = listen.parse().ok()?;
    let inst = instances.iter().find(|i| i.virtual_addresses().iter().any(|v| v.addr == addr.ip()))?;
    Some(format!(
        "proxy.listen {listen} is a virtual address of [[vrrp]] {}: where the VIP is absent (the backup) the bind fails; \
         listen on 0.0.0.0:{} instead (the listener then accepts on the VIP as soon as it arrives)",
        inst.name,
        addr.port()
    ))
}

/// The running instances (each with the config it runs) and the health task.
pub struct Vrrp {
    runners: Vec<(VrrpInstanceConfig, RunnerHandle)>,
    healthy: Arc<AtomicBool>,
}

impl Vrrp {
    /// Starts one runner per instance. `listening` is the flag [`alive_while`] keeps for the
    /// listener; the health task stops when `stop` turns true. Fails (stopping what started)
    /// when an instance cannot start: no CAP_NET_RAW/CAP_NET_ADMIN, no such interface.
    pub fn start(
        instances: &[VrrpInstanceConfig],
        shared: Arc<Shared>,
        listening: Arc<AtomicBool>,
        stop: watch::Receiver<bool>,
    ) -> Result<Vrrp> {
        let healthy =
            Arc::new(AtomicBool::new(proxy_healthy(listening.load(Ordering::Relaxed), &shared.topology.load())));
        let (flag, listen) = (healthy.clone(), listening);
        tokio::spawn(async move {
            let mut ticker = crate::runtime::Ticker::new(HEALTH_REFRESH, stop);
            while ticker.next().await {
                let now = proxy_healthy(listen.load(Ordering::Relaxed), &shared.topology.load());
                if flag.swap(now, Ordering::Relaxed) != now {
                    if now {
                        tracing::info!("proxy healthy again (listener up, writer known): VRRP priority restored");
                    } else {
                        tracing::warn!(
                            listener_up = listen.load(Ordering::Relaxed),
                            "proxy unhealthy (no writer or listener down): VRRP track_proxy applies"
                        );
                    }
                }
            }
        });
        let mut runners = Vec::with_capacity(instances.len());
        for inst in instances {
            runners.push((inst.clone(), start_instance(inst, &healthy)?));
        }
        Ok(Vrrp { runners, healthy })
    }

    /// A reload: instances whose config is unchanged keep running untouched; the others are
    /// stopped (a master hands its VIP over with a priority-0 advert) and the new or changed
    /// ones started. If one cannot start, everything goes back as it was and the error is
    /// returned. Blocking (stopping waits for the threads), but quick.
    pub fn reconfigure(&mut self, instances: &[VrrpInstanceConfig]) -> Result<()> {
        let (keep, stop): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.runners).into_iter().partition(|(cfg, _)| instances.contains(cfg));
        let stopped: Vec<VrrpInstanceConfig> = stop.iter().map(|(cfg, _)| cfg.clone()).collect();
        stop_all(stop);
        self.runners = keep;
        let mut started = Vec::new();
        for inst in instances.iter().filter(|i| !self.runners.iter().any(|(cfg, _)| cfg == *i)) {
            match start_instance(inst, &self.healthy) {
                Ok(handle) => started.push((inst.clone(), handle)),
                Err(e) => {
                    stop_all(started);
                    for cfg in &stopped {
                        match start_instance(cfg, &self.healthy) {
                            Ok(handle) => self.runners.push((cfg.clone(), handle)),
                            Err(e) => {
                                tracing::error!(instance = %cfg.name, "VRRP instance could not be restarted: {e:#}")
                            }
                        }
                    }
                    return Err(e);
                }
            }
        }
        self.runners.extend(started);
        Ok(())
    }

    /// The health flag the instances track.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// (instance name, shared stats) for each instance: state, priority, transition count.
    pub fn stats(&self) -> Vec<(String, Arc<RunnerStats>)> {
        self.runners.iter().map(|(_, r)| (r.name().to_string(), r.stats())).collect()
    }

    /// Stops every instance together (priority-0 adverts, addresses removed) and waits for
    /// their threads. Blocking, but quick: each thread wakes at once.
    pub fn stop(self) {
        stop_all(self.runners);
    }
}

fn start_instance(inst: &VrrpInstanceConfig, healthy: &Arc<AtomicBool>) -> Result<RunnerHandle> {
    let handle = runner::spawn(inst.clone(), healthy.clone())
        .with_context(|| format!("cannot start VRRP instance {} on {}", inst.name, inst.interface))?;
    tracing::info!(instance = %inst.name, interface = %inst.interface, vrid = inst.virtual_router_id,
        priority = inst.priority, version = inst.version, "VRRP instance started");
    Ok(handle)
}

/// Stops instances together: all are asked first, so they hand over at the same time.
fn stop_all(runners: Vec<(VrrpInstanceConfig, RunnerHandle)>) {
    for (_, r) in &runners {
        r.request_stop();
    }
    for (_, r) in runners {
        let (name, stats) = (r.name().to_string(), r.stats());
        match r.stop() {
            Ok(()) => tracing::info!(instance = %name, transitions = stats.transitions(), "VRRP instance stopped"),
            Err(e) => tracing::warn!(instance = %name, error = %e, "VRRP instance did not stop cleanly"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_needs_the_listener_and_a_writer() {
        let mut t = Topology::unknown([("m".to_string(), "127.0.0.1:3306".to_string(), 1)]);
        assert!(!proxy_healthy(true, &t), "no writer known");
        t.writer = Some(0);
        assert!(proxy_healthy(true, &t));
        assert!(!proxy_healthy(false, &t), "listener down");
    }

    #[test]
    fn listening_on_a_vip_is_flagged() {
        let inst = VrrpInstanceConfig {
            name: "VI_1".into(),
            virtual_ipaddress: vec![rwsplit_config::VirtualIpEntry::Text("10.0.0.100/24 dev eth0".into())],
            ..VrrpInstanceConfig::default()
        };
        let hint = listen_on_vip("10.0.0.100:8066", std::slice::from_ref(&inst)).unwrap();
        assert!(hint.contains("VI_1") && hint.contains("0.0.0.0:8066"), "{hint}");
        assert!(listen_on_vip("0.0.0.0:8066", std::slice::from_ref(&inst)).is_none());
        assert!(listen_on_vip("10.0.0.5:8066", std::slice::from_ref(&inst)).is_none());
    }

    #[tokio::test]
    async fn alive_while_clears_the_flag_when_the_future_ends_or_is_dropped() {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        alive_while(flag.clone(), async move { assert!(f.load(Ordering::Relaxed)) }).await;
        assert!(!flag.load(Ordering::Relaxed));
        let task = tokio::spawn(alive_while(flag.clone(), std::future::pending::<()>()));
        tokio::task::yield_now().await;
        while !flag.load(Ordering::Relaxed) {
            tokio::task::yield_now().await;
        }
        task.abort();
        let _ = task.await;
        assert!(!flag.load(Ordering::Relaxed), "an aborted listener is not up");
    }
}

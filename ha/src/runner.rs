//! One VRRP instance at work: an OS thread (not a tokio task, so query load never delays an
//! advert) that asks for SCHED_FIFO where permitted, keeps a monotonic clock, and drives the
//! pure [`Fsm`] with what the socket, the trackers and the timers report, carrying out its
//! actions: adverts, virtual addresses (renewed while master), gratuitous ARP bursts with
//! keepalived's repeat/delay/refresh, and notify commands. IPv4 only for now.
//!
//! The thread waits on the VRRP socket and on a wake-up socket together, so
//! [`RunnerHandle::request_stop`] is acted on at once (the priority-0 advert of a clean
//! shutdown goes out within a millisecond or so, not at the next tick). [`RunnerStats`] are
//! shared atomics for the proxy's metrics and status: state, current priority, and the number
//! of transitions (each one also logged at INFO).

use crate::arp::ArpSender;
use crate::error::{Error, Result};
use crate::fsm::{Action, Event, Fsm, FsmConfig, Micros, State};
use crate::net::{primary_ipv4, VrrpSocket};
use crate::packet::{self, Auth, Expect, Version, VrrpPacket};
use crate::track::{self, Tracker};
use crate::vip::{Vip, VipManager};
use rwsplit_config::VrrpInstanceConfig;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often trackers, interface state and the stop flag are looked at, at most.
const TICK: Duration = Duration::from_millis(100);

/// What a running instance reports, readable from any thread (metrics, status pages).
#[derive(Debug, Default)]
pub struct RunnerStats {
    state: AtomicU8,
    priority: AtomicU8,
    transitions: AtomicU64,
    masters: AtomicU64,
}

impl RunnerStats {
    /// The instance's current state.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            1 => State::Backup,
            2 => State::Master,
            3 => State::Fault,
            _ => State::Initialize,
        }
    }

    /// The priority it advertises now (configured priority moved by the trackers).
    pub fn priority(&self) -> u8 {
        self.priority.load(Ordering::Relaxed)
    }

    /// State changes since start (INIT→BACKUP counts; so does the final →STOP).
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    /// How many times it became master.
    pub fn became_master(&self) -> u64 {
        self.masters.load(Ordering::Relaxed)
    }
}

/// A running instance.
pub struct RunnerHandle {
    name: String,
    stop: Arc<AtomicBool>,
    wake: UnixDatagram,
    stats: Arc<RunnerStats>,
    thread: Option<JoinHandle<Result<()>>>,
}

fn state_code(s: State) -> u8 {
    match s {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

impl RunnerHandle {
    /// The instance's current state.
    pub fn state(&self) -> State {
        self.stats.state()
    }

    /// The instance's name (`[[vrrp]] name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shared counters, to keep after the handle is gone (e.g. in a metrics collector).
    pub fn stats(&self) -> Arc<RunnerStats> {
        self.stats.clone()
    }

    /// Asks the thread to shut down (a master sends priority 0 and removes its addresses)
    /// without waiting; [`stop`](Self::stop) waits. Stopping several instances at once: request
    /// each, then stop each, so they hand over together.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.wake.send(&[1]);
    }

    /// Whether the thread has ended (it only ends by itself on a setup error).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Shuts the instance down (a master sends priority 0 and removes its addresses) and
    /// waits for the thread.
    pub fn stop(mut self) -> Result<()> {
        self.request_stop();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Io { op: "VRRP thread", msg: "panicked".into() }),
            None => Ok(()),
        }
    }
}

impl Drop for RunnerHandle {
    fn drop(&mut self) {
        self.request_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts `cfg` (already validated) on its own thread. `proxy_healthy` is rwsplit's own health,
/// tracked when `track_proxy` is set. Setup errors (no permission, no such interface) are
/// returned here, before the thread reports any state.
pub fn spawn(cfg: VrrpInstanceConfig, proxy_healthy: Arc<AtomicBool>) -> Result<RunnerHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(RunnerStats::default());
    let (wake, woken) = UnixDatagram::pair().map_err(|e| Error::io("wake-up socket pair", e))?;
    woken.set_nonblocking(true).map_err(|e| Error::io("wake-up socket", e))?;
    let (ready_tx, ready_rx) = channel();
    let (s, st) = (stop.clone(), stats.clone());
    let name = cfg.name.clone();
    let thread = std::thread::Builder::new()
        .name(format!("vrrp-{}", cfg.name))
        .spawn(move || {
            let mut inst = match Instance::setup(cfg, proxy_healthy, s, st, woken) {
                Ok(i) => {
                    let _ = ready_tx.send(Ok(()));
                    i
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            inst.run();
            Ok(())
        })
        .map_err(|e| Error::io("spawn VRRP thread", e))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(RunnerHandle { name, stop, wake, stats, thread: Some(thread) }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(Error::Io { op: "VRRP thread", msg: "ended during setup".into() }),
    }
}

/// Asks for real-time scheduling for this thread; refused without CAP_SYS_NICE, which is fine.
fn request_sched_fifo() {
    let param = nix::libc::sched_param { sched_priority: 10 };
    // SAFETY: sched_setscheduler reads `param` only during the call; pid 0 is this thread.
    let rc = unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_FIFO, &param) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "SCHED_FIFO not granted; staying on the normal scheduler");
    }
}

/// Whether `ifname` is up and has carrier (IFF_UP and IFF_RUNNING, as keepalived checks),
/// through getifaddrs so the thread's network namespace is the one looked at.
fn interface_up(ifname: &str) -> bool {
    use nix::net::if_::InterfaceFlags;
    nix::ifaddrs::getifaddrs().is_ok_and(|mut addrs| {
        addrs.any(|a| {
            a.interface_name == ifname && a.flags.contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING)
        })
    })
}

struct Instance {
    cfg: VrrpInstanceConfig,
    fsm: Fsm,
    origin: Instant,
    socket: VrrpSocket,
    src: Ipv4Addr,
    vips: Vec<Vip>,
    vip_addrs: Vec<IpAddr>,
    auth: Auth,
    version: Version,
    netlink: VipManager,
    arp: ArpSender,
    stop: Arc<AtomicBool>,
    woken: UnixDatagram,
    stats: Arc<RunnerStats>,
    proxy_healthy: Arc<AtomicBool>,
    /// Trackers: scripts first (in config order), then the proxy, then interfaces.
    trackers: Vec<Tracker>,
    proxy_tracker: Option<usize>,
    interfaces: Vec<(usize, String)>,
    script_results: Receiver<(usize, bool)>,
    script_stop: Arc<AtomicBool>,
    faulty: bool,
    next_renew: Option<Micros>,
    next_garp_delayed: Option<Micros>,
    next_garp_refresh: Option<Micros>,
}

impl Instance {
    fn setup(
        cfg: VrrpInstanceConfig,
        proxy_healthy: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
        stats: Arc<RunnerStats>,
        woken: UnixDatagram,
    ) -> Result<Self> {
        request_sched_fifo();
        let mut vips = Vec::new();
        for v in cfg.virtual_addresses() {
            if v.addr.is_ipv6() {
                return Err(Error::Io {
                    op: "setup",
                    msg: "IPv6 virtual addresses are not supported by the socket yet".into(),
                });
            }
            let dev = v.dev.as_deref().unwrap_or(&cfg.interface);
            let ifindex = nix::net::if_::if_nametoindex(dev).map_err(|e| Error::io("if_nametoindex", e.into()))?;
            vips.push(Vip { addr: v.addr, prefix: v.prefix, ifindex, label: v.label });
        }
        let vip_addrs: Vec<IpAddr> = vips.iter().map(|v| v.addr).collect();
        let src = match cfg.unicast_src_ip {
            Some(IpAddr::V4(a)) => a,
            Some(IpAddr::V6(_)) => {
                return Err(Error::Io { op: "setup", msg: "IPv6 unicast_src_ip is not supported yet".into() })
            }
            None => primary_ipv4(&cfg.interface, &vip_addrs)?,
        };
        let peers: Vec<Ipv4Addr> = cfg
            .unicast_peer
            .iter()
            .filter_map(|p| match p {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        let socket = VrrpSocket::open(&cfg.interface, src, &peers)?;
        let netlink = VipManager::new()?;
        let arp = ArpSender::new(&cfg.interface)?;
        // An address left by an earlier run (killed with -9) goes before we start.
        for v in &vips {
            netlink.remove(v)?;
        }
        let version = if cfg.version == 3 { Version::V3 } else { Version::V2 };
        let auth = match &cfg.authentication {
            Some(a) if version == Version::V2 => Auth::pass(a.auth_pass.expose()),
            _ => Auth::None,
        };
        let priority = u8::try_from(cfg.priority).unwrap_or(254);
        let fsm = Fsm::new(FsmConfig {
            version,
            priority,
            advert_interval_cs: cfg.advert_interval_cs(),
            preempt: !cfg.nopreempt,
            preempt_delay_us: (cfg.preempt_delay * 1e6) as u64,
            local_addr: IpAddr::V4(src),
        });
        stats.priority.store(priority, Ordering::Relaxed);
        let (tx, script_results) = channel();
        let script_stop = Arc::new(AtomicBool::new(false));
        let mut trackers = Vec::new();
        for (i, s) in cfg.track_script.iter().enumerate() {
            trackers.push(Tracker::new(s.weight, s.rise, s.fall));
            let interval = Duration::from_secs_f64(s.interval);
            let timeout = Duration::from_secs_f64(s.timeout.unwrap_or(s.interval));
            track::spawn_script(i, s.script.clone(), interval, timeout, tx.clone(), script_stop.clone())
                .map_err(|e| Error::io("spawn track script thread", e))?;
        }
        let proxy_tracker = cfg.track_proxy.as_ref().map(|p| {
            trackers.push(Tracker::new(p.weight, 1, 1));
            trackers.len() - 1
        });
        let mut interfaces = Vec::new();
        for name in std::iter::once(&cfg.interface).chain(&cfg.track_interface) {
            trackers.push(Tracker::new(0, 1, 1));
            interfaces.push((trackers.len() - 1, name.clone()));
        }
        Ok(Instance {
            cfg,
            fsm,
            origin: Instant::now(),
            socket,
            src,
            vips,
            vip_addrs,
            auth,
            version,
            netlink,
            arp,
            stop,
            woken,
            stats,
            proxy_healthy,
            trackers,
            proxy_tracker,
            interfaces,
            script_results,
            script_stop,
            faulty: false,
            next_renew: None,
            next_garp_delayed: None,
            next_garp_refresh: None,
        })
    }

    fn now(&self) -> Micros {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn run(&mut self) {
        self.poll_trackers();
        let now = self.now();
        self.feed(now, Event::Startup);
        while !self.stop.load(Ordering::Relaxed) {
            self.poll_trackers();
            let now = self.now();
            let wake = [self.fsm.deadline(), self.next_renew, self.next_garp_delayed, self.next_garp_refresh]
                .into_iter()
                .flatten()
                .min()
                .map_or(TICK, |d| Duration::from_micros(d.saturating_sub(now)).min(TICK));
            match self.socket.recv_or_wake(wake, self.woken.as_fd()) {
                Ok(Some((info, payload))) => {
                    let expect = Expect {
                        version: self.version,
                        vrid: u8::try_from(self.cfg.virtual_router_id).unwrap_or(0),
                        auth: &self.auth,
                        adver_int_s: u16::try_from(self.cfg.advert_int as u32).unwrap_or(0),
                        addresses: &self.vip_addrs,
                    };
                    match packet::decode(&info, payload, &expect) {
                        Ok(p) => {
                            let ev = Event::AdvertReceived {
                                src: info.src,
                                priority: p.priority,
                                interval_cs: p.interval_cs(),
                            };
                            let now = self.now();
                            self.feed(now, ev);
                        }
                        Err(e) => {
                            tracing::debug!(instance = %self.cfg.name, from = %info.src, reason = %e, "advert dropped")
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(instance = %self.cfg.name, error = %e, "VRRP receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let now = self.now();
            if self.fsm.deadline().is_some_and(|d| d <= now) {
                self.feed(now, Event::Timer);
            }
            self.master_timers(now);
        }
        let now = self.now();
        self.feed(now, Event::Shutdown);
        self.script_stop.store(true, Ordering::Relaxed);
        let mut drain = [0u8; 16];
        while self.woken.recv(&mut drain).is_ok() {}
    }

    /// Folds script results, proxy health and interface state into the FSM's priority/fault.
    fn poll_trackers(&mut self) {
        while let Ok((i, ok)) = self.script_results.try_recv() {
            if let Some(t) = self.trackers.get_mut(i) {
                if t.record(ok) {
                    tracing::info!(instance = %self.cfg.name, script = i, good = ok, "track script changed");
                }
            }
        }
        if let Some(t) = self.proxy_tracker.and_then(|i| self.trackers.get_mut(i)) {
            t.record(self.proxy_healthy.load(Ordering::Relaxed));
        }
        for (i, name) in &self.interfaces {
            let up = interface_up(name);
            if let Some(t) = self.trackers.get_mut(*i) {
                t.record(up);
            }
        }
        let base = u8::try_from(self.cfg.priority).unwrap_or(254);
        let now = self.now();
        match track::effective_priority(base, &self.trackers) {
            None if !self.faulty => {
                self.faulty = true;
                self.feed(now, Event::Fault(true));
            }
            None => {}
            Some(p) => {
                if self.faulty {
                    self.faulty = false;
                    self.feed(now, Event::PriorityChanged(p));
                    self.feed(now, Event::Fault(false));
                } else if p != self.fsm.priority() {
                    self.feed(now, Event::PriorityChanged(p));
                }
            }
        }
    }

    /// VIP lifetime renewal and the delayed / periodic gratuitous ARP, while master.
    fn master_timers(&mut self, now: Micros) {
        if self.fsm.state() != State::Master {
            return;
        }
        if self.next_renew.is_some_and(|t| t <= now) {
            self.add_vips(now);
        }
        if self.next_garp_delayed.is_some_and(|t| t <= now) {
            self.next_garp_delayed = None;
            self.garp_burst(self.cfg.garp_master_repeat);
        }
        if self.next_garp_refresh.is_some_and(|t| t <= now) {
            self.garp_burst(self.cfg.garp_master_refresh_repeat);
            self.next_garp_refresh = Some(now + u64::from(self.cfg.garp_master_refresh) * 1_000_000);
        }
    }

    fn feed(&mut self, now: Micros, ev: Event) {
        let out = self.fsm.handle(now, ev);
        self.stats.priority.store(self.fsm.priority(), Ordering::Relaxed);
        for a in out.actions {
            self.perform(now, a);
        }
    }

    fn perform(&mut self, now: Micros, action: Action) {
        let name = self.cfg.name.clone();
        let result = match action {
            Action::SendAdvert { priority } => self.send_advert(priority),
            Action::AddVip => {
                self.add_vips(now);
                Ok(())
            }
            Action::RemoveVip => {
                self.next_renew = None;
                self.next_garp_delayed = None;
                self.next_garp_refresh = None;
                self.vips.iter().try_for_each(|v| self.netlink.remove(v))
            }
            Action::SendGratuitousArp => {
                self.garp_burst(self.cfg.garp_master_repeat);
                if self.cfg.garp_master_delay > 0 {
                    self.next_garp_delayed = Some(now + u64::from(self.cfg.garp_master_delay) * 1_000_000);
                }
                if self.cfg.garp_master_refresh > 0 {
                    self.next_garp_refresh = Some(now + u64::from(self.cfg.garp_master_refresh) * 1_000_000);
                }
                Ok(())
            }
            Action::Notify(state) => {
                let from = self.stats.state();
                self.stats.state.store(state_code(state), Ordering::Relaxed);
                let n = self.stats.transitions.fetch_add(1, Ordering::Relaxed) + 1;
                if state == State::Master {
                    self.stats.masters.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(
                    instance = %name,
                    from = if from == State::Initialize { "INIT" } else { track::state_word(from) },
                    state = track::state_word(state),
                    priority = self.fsm.priority(),
                    transitions = n,
                    "VRRP state"
                );
                let specific = match state {
                    State::Master => self.cfg.notify_master.as_deref(),
                    State::Backup => self.cfg.notify_backup.as_deref(),
                    State::Fault => self.cfg.notify_fault.as_deref(),
                    State::Initialize => self.cfg.notify_stop.as_deref(),
                };
                for cmd in
                    track::notify_commands(specific, self.cfg.notify.as_deref(), &name, state, self.fsm.priority())
                {
                    track::spawn_detached(cmd);
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(instance = %name, ?action, error = %e, "VRRP action failed");
        }
    }

    fn send_advert(&self, priority: u8) -> Result<()> {
        let adver_int = match self.version {
            Version::V2 => self.cfg.advert_interval_cs() / 100,
            Version::V3 => self.cfg.advert_interval_cs(),
        };
        let p = VrrpPacket {
            version: self.version,
            vrid: u8::try_from(self.cfg.virtual_router_id).unwrap_or(0),
            priority,
            adver_int,
            auth: self.auth.clone(),
            addresses: self.vip_addrs.clone(),
        };
        let src = IpAddr::V4(self.src);
        self.socket.send_to_each(|dst| p.encode(src, dst))
    }

    fn add_vips(&mut self, now: Micros) {
        for v in &self.vips {
            if let Err(e) = self.netlink.add_or_renew(v, self.cfg.vip_lifetime) {
                tracing::warn!(instance = %self.cfg.name, vip = %v.addr, error = %e, "adding virtual address failed");
            }
        }
        // Renew at a third of the lifetime, so two renewals may fail before it lapses.
        self.next_renew = Some(now + u64::from(self.cfg.vip_lifetime) * 1_000_000 / 3);
    }

    fn garp_burst(&self, repeat: u32) {
        for _ in 0..repeat {
            for v in &self.vips {
                if let IpAddr::V4(ip) = v.addr {
                    if let Err(e) = self.arp.announce(ip) {
                        tracing::warn!(instance = %self.cfg.name, vip = %ip, error = %e, "gratuitous ARP failed");
                    }
                }
            }
        }
    }
}

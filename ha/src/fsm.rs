//! The VRRP state machine of RFC 5798 §6.4 (and RFC 3768 §6.4 for v2) as pure code: events in,
//! actions and the next deadline out. Time is injected as monotonic microseconds ([`Micros`]),
//! so every transition is tested by replaying event sequences with timestamps, and the runner
//! owns the clock, the sockets and the addresses.
//!
//! Beyond the RFC it carries keepalived's behaviour where keepalived differs or adds:
//! `nopreempt`, `preempt_delay` (started by the first lower-priority advert a preempting backup
//! hears, cancelled by a higher one), a FAULT state (interface down or a failing weight-0
//! track: a master leaving for FAULT sends priority 0 first), and a master that hears a
//! lower-priority advert (the end of a split brain) answers at once with its own advert and
//! gratuitous ARP. Timers use keepalived's arithmetic in microseconds: Skew_Time is
//! `(256 − priority) × Master_Adver_Interval / 256` for v3 and `(256 − priority) / 256` s for
//! v2, Master_Down_Interval is `3 × Master_Adver_Interval + Skew_Time`.
//!
//! keepalived's initial `state MASTER` only matters for the address owner (priority 255), which
//! goes to Master at once as the RFC says; any other router starts as Backup and waits
//! Master_Down_Interval, so the hint is not an input here.

use crate::packet::Version;
use std::net::IpAddr;

/// Monotonic time in microseconds from an arbitrary origin (the runner's start).
pub type Micros = u64;

/// Microseconds in a centisecond.
const CS: u64 = 10_000;

/// Protocol state (keepalived's names in notify scripts: MASTER, BACKUP, FAULT, STOP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running (before start-up and after shutdown); notified as STOP.
    Initialize,
    Backup,
    Master,
    /// Interface down or a weight-0 track failed: no adverts, no addresses.
    Fault,
}

/// The instance settings the state machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    pub version: Version,
    /// Configured priority; 255 makes this router the address owner.
    pub priority: u8,
    /// Advertisement_Interval in centiseconds (a multiple of 100 for v2).
    pub advert_interval_cs: u16,
    /// Preempt_Mode; keepalived's `nopreempt` sets it false. The owner preempts regardless.
    pub preempt: bool,
    /// keepalived's `preempt_delay`: how long a preempting backup keeps accepting a
    /// lower-priority master before it takes over.
    pub preempt_delay_us: u64,
    /// This router's primary address on the interface (or `unicast_src_ip`): the tie-break
    /// between equal priorities, and how our own looped-back adverts are recognised.
    pub local_addr: IpAddr,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The instance starts (RFC "Startup event").
    Startup,
    /// The instance stops (RFC "Shutdown event").
    Shutdown,
    /// A valid advert (already through [`crate::packet::decode`]) for this virtual router.
    AdvertReceived {
        /// The IP source of the advert (the sender's primary address).
        src: IpAddr,
        priority: u8,
        /// The advert's interval in centiseconds ([`crate::packet::VrrpPacket::interval_cs`]).
        interval_cs: u32,
    },
    /// The runner's clock reached (or passed) the deadline it was given; early calls are
    /// harmless.
    Timer,
    /// The effective priority changed (tracking weights); 0 is taken as 1.
    PriorityChanged(u8),
    /// A fault appeared (`true`) or cleared (`false`).
    Fault(bool),
}

/// What the runner must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority (0 when leaving the master role).
    SendAdvert { priority: u8 },
    /// Add the virtual addresses to the interface.
    AddVip,
    /// Remove the virtual addresses.
    RemoveVip,
    /// Announce the virtual addresses (gratuitous ARP / unsolicited NA), with the configured
    /// repeat.
    SendGratuitousArp,
    /// Run the notify scripts for entering this state.
    Notify(State),
}

/// The result of one event: actions to perform, in order, and when to call [`Event::Timer`]
/// next (`None`: no timer runs in this state).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    pub actions: Vec<Action>,
    pub deadline: Option<Micros>,
}

/// One virtual router's state machine.
#[derive(Debug, Clone)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    /// Effective priority (configured one adjusted by tracking).
    priority: u8,
    /// Master_Adver_Interval in centiseconds: learned from the master's adverts in v3.
    master_adver_int_cs: u32,
    /// Adver_Timer in Master, Master_Down_Timer in Backup, none otherwise.
    deadline: Option<Micros>,
    /// keepalived's preempt_time: when a preempting backup may stop accepting a lower master.
    preempt_at: Option<Micros>,
    /// A fault is present (kept across Initialize so Startup goes straight to Fault).
    fault: bool,
}

impl Fsm {
    /// A state machine in Initialize.
    pub fn new(cfg: FsmConfig) -> Self {
        let priority = cfg.priority.max(1);
        let master_adver_int_cs = u32::from(cfg.advert_interval_cs.max(1));
        Fsm {
            cfg,
            state: State::Initialize,
            priority,
            master_adver_int_cs,
            deadline: None,
            preempt_at: None,
            fault: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The effective priority adverts carry.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Master_Adver_Interval in centiseconds.
    pub fn master_adver_int_cs(&self) -> u32 {
        self.master_adver_int_cs
    }

    /// The pending deadline.
    pub fn deadline(&self) -> Option<Micros> {
        self.deadline
    }

    fn is_owner(&self) -> bool {
        self.priority == 255
    }

    /// Advertisement_Interval in µs.
    fn advert_interval(&self) -> u64 {
        u64::from(self.cfg.advert_interval_cs.max(1)) * CS
    }

    /// Skew_Time in µs.
    pub fn skew_time(&self) -> u64 {
        let weight = 256 - u64::from(self.priority);
        match self.cfg.version {
            Version::V2 => weight * 1_000_000 / 256,
            Version::V3 => weight * u64::from(self.master_adver_int_cs) * CS / 256,
        }
    }

    /// Master_Down_Interval in µs.
    pub fn master_down_interval(&self) -> u64 {
        3 * u64::from(self.master_adver_int_cs) * CS + self.skew_time()
    }

    /// Feeds one event at time `now`.
    pub fn handle(&mut self, now: Micros, event: Event) -> Output {
        let mut actions = Vec::new();
        match event {
            Event::Startup => {
                if self.state == State::Initialize {
                    self.start(now, &mut actions);
                }
            }
            Event::Shutdown => self.shutdown(&mut actions),
            Event::Timer => self.timer(now, &mut actions),
            Event::AdvertReceived { src, priority, interval_cs } => {
                self.advert(now, src, priority, interval_cs, &mut actions)
            }
            Event::PriorityChanged(p) => self.priority = p.max(1),
            Event::Fault(true) => {
                self.fault = true;
                if matches!(self.state, State::Backup | State::Master) {
                    self.leave_master(0, &mut actions);
                    self.enter(State::Fault, None, &mut actions);
                }
            }
            Event::Fault(false) => {
                self.fault = false;
                if self.state == State::Fault {
                    self.state = State::Initialize;
                    self.start(now, &mut actions);
                }
            }
        }
        Output { actions, deadline: self.deadline }
    }

    /// Initialize → Master (owner), Backup, or Fault (fault present).
    fn start(&mut self, now: Micros, actions: &mut Vec<Action>) {
        self.preempt_at = None;
        self.master_adver_int_cs = u32::from(self.cfg.advert_interval_cs.max(1));
        if self.fault {
            self.enter(State::Fault, None, actions);
        } else if self.is_owner() {
            self.become_master(now, actions);
        } else {
            let down = now + self.master_down_interval();
            self.enter(State::Backup, Some(down), actions);
        }
    }

    fn shutdown(&mut self, actions: &mut Vec<Action>) {
        if self.state == State::Initialize {
            return;
        }
        self.leave_master(0, actions);
        self.enter(State::Initialize, None, actions);
    }

    /// In Master: announce that we leave (priority 0) and drop the addresses.
    fn leave_master(&mut self, priority: u8, actions: &mut Vec<Action>) {
        if self.state == State::Master {
            actions.push(Action::SendAdvert { priority });
            actions.push(Action::RemoveVip);
        }
    }

    fn enter(&mut self, state: State, deadline: Option<Micros>, actions: &mut Vec<Action>) {
        self.state = state;
        self.deadline = deadline;
        actions.push(Action::Notify(state));
    }

    fn become_master(&mut self, now: Micros, actions: &mut Vec<Action>) {
        actions.push(Action::SendAdvert { priority: self.priority });
        actions.push(Action::AddVip);
        actions.push(Action::SendGratuitousArp);
        self.preempt_at = None;
        let next = now + self.advert_interval();
        self.enter(State::Master, Some(next), actions);
    }

    fn timer(&mut self, now: Micros, actions: &mut Vec<Action>) {
        let Some(deadline) = self.deadline else { return };
        if now < deadline {
            return;
        }
        match self.state {
            State::Backup => self.become_master(now, actions),
            State::Master => {
                actions.push(Action::SendAdvert { priority: self.priority });
                // Keep the cadence unless the runner was late by a whole interval.
                let next = deadline + self.advert_interval();
                self.deadline = Some(if next > now { next } else { now + self.advert_interval() });
            }
            State::Initialize | State::Fault => self.deadline = None,
        }
    }

    fn advert(&mut self, now: Micros, src: IpAddr, priority: u8, interval_cs: u32, actions: &mut Vec<Action>) {
        if src == self.cfg.local_addr {
            return; // our own advert, looped back
        }
        match self.state {
            State::Backup => {
                if priority == 0 {
                    // The master is leaving: take over after Skew_Time only.
                    self.deadline = Some(now + self.skew_time());
                    return;
                }
                let preempts = self.cfg.preempt || self.is_owner();
                let lower = priority < self.priority;
                let delaying = self.cfg.preempt_delay_us > 0 && self.preempt_at.is_none_or(|at| now < at);
                if !preempts || !lower || delaying {
                    if self.cfg.version == Version::V3 {
                        self.master_adver_int_cs = interval_cs.max(1);
                    }
                    if self.cfg.preempt_delay_us > 0 {
                        if !lower {
                            self.preempt_at = None;
                        } else if self.preempt_at.is_none() {
                            self.preempt_at = Some(now + self.cfg.preempt_delay_us);
                        }
                    }
                    self.deadline = Some(now + self.master_down_interval());
                }
                // Otherwise a preempting backup ignores the lower master: its down timer runs
                // out and it takes over.
            }
            State::Master => {
                if priority == 0 {
                    actions.push(Action::SendAdvert { priority: self.priority });
                    self.deadline = Some(now + self.advert_interval());
                } else if priority > self.priority || (priority == self.priority && src > self.cfg.local_addr) {
                    actions.push(Action::RemoveVip);
                    if self.cfg.version == Version::V3 {
                        self.master_adver_int_cs = interval_cs.max(1);
                    }
                    self.preempt_at = None;
                    let down = now + self.master_down_interval();
                    self.enter(State::Backup, Some(down), actions);
                } else {
                    // Another master with less right to the role (a split brain ending):
                    // assert ourselves at once and refresh the neighbours' ARP caches.
                    actions.push(Action::SendAdvert { priority: self.priority });
                    actions.push(Action::SendGratuitousArp);
                    self.deadline = Some(now + self.advert_interval());
                }
            }
            State::Initialize | State::Fault => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use Action::*;

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 12));
    const LOW_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 5));
    const HIGH_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 20));
    const S: u64 = 1_000_000;
    const MS: u64 = 1_000;

    fn cfg(version: Version, priority: u8, interval_cs: u16) -> FsmConfig {
        FsmConfig {
            version,
            priority,
            advert_interval_cs: interval_cs,
            preempt: true,
            preempt_delay_us: 0,
            local_addr: ME,
        }
    }

    fn adv(src: IpAddr, priority: u8, interval_cs: u32) -> Event {
        Event::AdvertReceived { src, priority, interval_cs }
    }

    /// A backup at `t`, started at 0.
    fn backup(c: FsmConfig) -> Fsm {
        let mut f = Fsm::new(c);
        f.handle(0, Event::Startup);
        assert_eq!(f.state(), State::Backup);
        f
    }

    /// A master (its down timer ran out) and the time it became master.
    fn master(c: FsmConfig) -> (Fsm, Micros) {
        let mut f = backup(c);
        let t = f.deadline().unwrap();
        let out = f.handle(t, Event::Timer);
        assert_eq!(f.state(), State::Master, "{out:?}");
        (f, t)
    }

    #[test]
    fn timers_follow_the_rfc_formulas() {
        // v2, priority 100, 1 s: the capture shows the takeover 3.609 s after the last advert.
        let f = Fsm::new(cfg(Version::V2, 100, 100));
        assert_eq!(f.skew_time(), 156 * S / 256);
        assert_eq!(f.master_down_interval(), 3 * S + 609_375);
        // v3, priority 100, 10 cs: Skew = 156 × 100 ms / 256 = 60.9 ms.
        let f = Fsm::new(cfg(Version::V3, 100, 10));
        assert_eq!(f.skew_time(), 60_937);
        assert_eq!(f.master_down_interval(), 300 * MS + 60_937);
        // Priority 255 has the smallest skew; v3 skew scales with the interval, v2's does not.
        let f = Fsm::new(cfg(Version::V3, 255, 100));
        assert_eq!(f.skew_time(), 3_906);
        let f = Fsm::new(cfg(Version::V2, 255, 300));
        assert_eq!(f.skew_time(), 3_906);
        assert_eq!(f.master_down_interval(), 9 * S + 3_906);
    }

    #[test]
    fn startup_non_owner_goes_backup_with_master_down_timer() {
        let mut f = Fsm::new(cfg(Version::V2, 100, 100));
        assert_eq!(f.state(), State::Initialize);
        let out = f.handle(5 * S, Event::Startup);
        assert_eq!(out.actions, [Notify(State::Backup)]);
        assert_eq!(out.deadline, Some(5 * S + 3_609_375));
        // A second Startup changes nothing.
        assert_eq!(f.handle(6 * S, Event::Startup).actions, []);
    }

    #[test]
    fn startup_owner_goes_master_at_once() {
        let mut f = Fsm::new(cfg(Version::V3, 255, 100));
        let out = f.handle(0, Event::Startup);
        assert_eq!(out.actions, [SendAdvert { priority: 255 }, AddVip, SendGratuitousArp, Notify(State::Master)]);
        assert_eq!(out.deadline, Some(S));
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn backup_takes_over_when_the_down_timer_expires() {
        let mut f = backup(cfg(Version::V2, 100, 100));
        // Early timer calls do nothing.
        assert_eq!(f.handle(3 * S, Event::Timer), Output { actions: vec![], deadline: Some(3_609_375) });
        let out = f.handle(3_609_375, Event::Timer);
        assert_eq!(out.actions, [SendAdvert { priority: 100 }, AddVip, SendGratuitousArp, Notify(State::Master)]);
        assert_eq!(out.deadline, Some(4_609_375));
    }

    #[test]
    fn backup_resets_the_down_timer_on_each_higher_advert() {
        let mut f = backup(cfg(Version::V2, 100, 100));
        for i in 1..10 {
            let out = f.handle(i * S, adv(HIGH_IP, 150, 100));
            assert_eq!(out.actions, []);
            assert_eq!(out.deadline, Some(i * S + 3_609_375));
            assert_eq!(f.handle(i * S + 500 * MS, Event::Timer).actions, []);
        }
        assert_eq!(f.state(), State::Backup);
    }

    #[test]
    fn backup_equal_priority_advert_resets_the_timer() {
        let mut f = backup(cfg(Version::V2, 100, 100));
        let out = f.handle(S, adv(LOW_IP, 100, 100));
        assert_eq!(out.deadline, Some(S + 3_609_375));
    }

    #[test]
    fn backup_hearing_priority_zero_takes_over_after_skew_time() {
        let mut f = backup(cfg(Version::V2, 100, 100));
        f.handle(S, adv(HIGH_IP, 150, 100));
        let out = f.handle(2 * S, adv(HIGH_IP, 0, 100));
        assert_eq!(out.actions, []);
        assert_eq!(out.deadline, Some(2 * S + 609_375));
        let out = f.handle(2 * S + 609_375, Event::Timer);
        assert_eq!(f.state(), State::Master);
        assert_eq!(out.actions[0], SendAdvert { priority: 100 });
    }

    #[test]
    fn preempting_backup_ignores_a_lower_master_and_takes_over() {
        let mut f = backup(cfg(Version::V2, 150, 100));
        let before = f.deadline();
        let out = f.handle(S, adv(HIGH_IP, 100, 100));
        assert_eq!(out.actions, []);
        assert_eq!(out.deadline, before, "a lower advert must not reset the timer");
        f.handle(before.unwrap(), Event::Timer);
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn nopreempt_backup_keeps_a_lower_master() {
        let mut c = cfg(Version::V2, 150, 100);
        c.preempt = false;
        let mut f = backup(c);
        for i in 1..20 {
            let out = f.handle(i * S, adv(HIGH_IP, 100, 100));
            assert_eq!(out.deadline, Some(i * S + 3_000_000 + 106 * S / 256));
            f.handle(i * S + 1, Event::Timer);
        }
        assert_eq!(f.state(), State::Backup);
        // … but takes over when that master leaves.
        f.handle(20 * S, adv(HIGH_IP, 0, 100));
        f.handle(20 * S + 106 * S / 256, Event::Timer);
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn owner_preempts_even_with_nopreempt() {
        let mut c = cfg(Version::V3, 255, 100);
        c.preempt = false;
        let mut f = Fsm::new(c);
        f.handle(0, Event::Startup);
        // Some other router, configured wrongly with 255 and a higher address, beats us…
        f.handle(10 * MS, adv(HIGH_IP, 255, 100));
        assert_eq!(f.state(), State::Backup);
        // … and then advertises less: the owner ignores it and takes over.
        let d = f.deadline();
        assert_eq!(f.handle(S, adv(HIGH_IP, 200, 100)).deadline, d);
    }

    #[test]
    fn preempt_delay_keeps_a_lower_master_for_the_delay_then_takes_over() {
        let mut c = cfg(Version::V2, 150, 100);
        c.preempt_delay_us = 5 * S;
        let mut f = backup(c);
        // First lower advert at 1 s starts the delay (until 6 s) and resets the timer.
        assert_eq!(f.handle(S, adv(HIGH_IP, 100, 100)).deadline, Some(S + 3_414_062));
        for i in 2..6 {
            assert_eq!(f.handle(i * S, adv(HIGH_IP, 100, 100)).deadline, Some(i * S + 3_414_062));
        }
        // From 6 s on the lower adverts are ignored: the timer set at 5 s runs out.
        assert_eq!(f.handle(6 * S, adv(HIGH_IP, 100, 100)).deadline, Some(5 * S + 3_414_062));
        f.handle(7 * S, adv(HIGH_IP, 100, 100));
        f.handle(5 * S + 3_414_062, Event::Timer);
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn preempt_delay_is_cancelled_by_a_higher_advert() {
        let mut c = cfg(Version::V2, 150, 100);
        c.preempt_delay_us = 5 * S;
        let mut f = backup(c);
        f.handle(S, adv(HIGH_IP, 100, 100)); // delay until 6 s
        f.handle(2 * S, adv(HIGH_IP, 200, 100)); // a higher master: delay cancelled
        f.handle(3 * S, adv(HIGH_IP, 100, 100)); // a new delay: until 8 s
        assert_eq!(f.handle(7 * S, adv(HIGH_IP, 100, 100)).deadline, Some(7 * S + 3_414_062));
        assert_eq!(f.handle(8 * S, adv(HIGH_IP, 100, 100)).deadline, Some(7 * S + 3_414_062));
    }

    #[test]
    fn master_sends_adverts_on_cadence() {
        let (mut f, t0) = master(cfg(Version::V3, 100, 10));
        let mut t = t0;
        for _ in 0..5 {
            t += 100 * MS;
            let out = f.handle(t + 2 * MS, Event::Timer); // 2 ms late: cadence kept
            assert_eq!(out.actions, [SendAdvert { priority: 100 }]);
            assert_eq!(out.deadline, Some(t + 100 * MS));
        }
        // Late by more than an interval: restart from now.
        let out = f.handle(t + 350 * MS, Event::Timer);
        assert_eq!(out.deadline, Some(t + 450 * MS));
    }

    #[test]
    fn master_yields_to_a_higher_priority_and_learns_its_interval() {
        let (mut f, t0) = master(cfg(Version::V3, 100, 10));
        let out = f.handle(t0 + 50 * MS, adv(LOW_IP, 200, 25));
        assert_eq!(out.actions, [RemoveVip, Notify(State::Backup)]);
        assert_eq!(f.master_adver_int_cs(), 25);
        // Down interval from the learned 250 ms and our priority 100.
        assert_eq!(out.deadline, Some(t0 + 50 * MS + 750 * MS + 156 * 25 * CS / 256));
    }

    #[test]
    fn master_equal_priority_tie_break_on_the_address() {
        let (mut f, t0) = master(cfg(Version::V2, 100, 100));
        // Lower address: we stay master and assert ourselves.
        let out = f.handle(t0 + 10 * MS, adv(LOW_IP, 100, 100));
        assert_eq!(out.actions, [SendAdvert { priority: 100 }, SendGratuitousArp]);
        assert_eq!(f.state(), State::Master);
        // Higher address: it wins.
        let out = f.handle(t0 + 20 * MS, adv(HIGH_IP, 100, 100));
        assert_eq!(out.actions, [RemoveVip, Notify(State::Backup)]);
    }

    #[test]
    fn master_answers_a_lower_master_at_once_with_advert_and_garp() {
        let (mut f, t0) = master(cfg(Version::V2, 150, 100));
        let out = f.handle(t0 + 300 * MS, adv(HIGH_IP, 100, 100));
        assert_eq!(out.actions, [SendAdvert { priority: 150 }, SendGratuitousArp]);
        assert_eq!(out.deadline, Some(t0 + 1_300 * MS));
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn master_hearing_priority_zero_sends_an_advert_at_once() {
        let (mut f, t0) = master(cfg(Version::V2, 150, 100));
        let out = f.handle(t0 + 200 * MS, adv(HIGH_IP, 0, 100));
        assert_eq!(out.actions, [SendAdvert { priority: 150 }]);
        assert_eq!(out.deadline, Some(t0 + 1_200 * MS));
    }

    #[test]
    fn own_looped_adverts_are_ignored() {
        let (mut f, t0) = master(cfg(Version::V2, 100, 100));
        let out = f.handle(t0 + 1, adv(ME, 100, 100));
        assert_eq!(out.actions, []);
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn master_shutdown_sends_priority_zero_and_removes_the_vip() {
        let (mut f, t0) = master(cfg(Version::V2, 150, 100));
        let out = f.handle(t0 + 10, Event::Shutdown);
        assert_eq!(out.actions, [SendAdvert { priority: 0 }, RemoveVip, Notify(State::Initialize)]);
        assert_eq!(out.deadline, None);
        assert_eq!(f.state(), State::Initialize);
        // Nothing happens after that.
        assert_eq!(f.handle(t0 + 5 * S, Event::Timer).actions, []);
        assert_eq!(f.handle(t0 + 5 * S, adv(HIGH_IP, 100, 100)).actions, []);
        assert_eq!(f.handle(t0 + 5 * S, Event::Shutdown).actions, []);
        // A restart goes through Backup again.
        assert_eq!(f.handle(t0 + 6 * S, Event::Startup).actions, [Notify(State::Backup)]);
    }

    #[test]
    fn backup_shutdown_is_silent() {
        let mut f = backup(cfg(Version::V2, 100, 100));
        let out = f.handle(S, Event::Shutdown);
        assert_eq!(out.actions, [Notify(State::Initialize)]);
        assert_eq!(out.deadline, None);
    }

    #[test]
    fn fault_from_master_releases_then_recovery_restarts_as_backup() {
        let (mut f, t0) = master(cfg(Version::V2, 150, 100));
        let out = f.handle(t0 + 1, Event::Fault(true));
        assert_eq!(out.actions, [SendAdvert { priority: 0 }, RemoveVip, Notify(State::Fault)]);
        assert_eq!(out.deadline, None);
        // In Fault: adverts, timers and repeated faults do nothing.
        assert_eq!(f.handle(t0 + 2, adv(HIGH_IP, 100, 100)).actions, []);
        assert_eq!(f.handle(t0 + 5 * S, Event::Timer).actions, []);
        assert_eq!(f.handle(t0 + 5 * S, Event::Fault(true)).actions, []);
        let out = f.handle(t0 + 6 * S, Event::Fault(false));
        assert_eq!(out.actions, [Notify(State::Backup)]);
        assert_eq!(out.deadline, Some(t0 + 6 * S + 3 * S + 106 * S / 256));
    }

    #[test]
    fn fault_from_backup_and_fault_before_startup() {
        let mut f = backup(cfg(Version::V2, 100, 100));
        assert_eq!(f.handle(S, Event::Fault(true)).actions, [Notify(State::Fault)]);
        let mut f = Fsm::new(cfg(Version::V3, 255, 100));
        assert_eq!(f.handle(0, Event::Fault(true)).actions, []);
        assert_eq!(f.handle(1, Event::Startup).actions, [Notify(State::Fault)]);
        // The owner goes straight to Master when the fault clears.
        let out = f.handle(2, Event::Fault(false));
        assert_eq!(out.actions, [SendAdvert { priority: 255 }, AddVip, SendGratuitousArp, Notify(State::Master)]);
        // Clearing a fault that is not there does nothing.
        assert_eq!(f.handle(3, Event::Fault(false)).actions, []);
    }

    #[test]
    fn priority_changes_shape_adverts_and_skew() {
        let (mut f, t0) = master(cfg(Version::V2, 150, 100));
        assert_eq!(f.handle(t0 + 1, Event::PriorityChanged(130)).actions, []);
        assert_eq!(f.handle(t0 + S, Event::Timer).actions, [SendAdvert { priority: 130 }]);
        // A backup now at 140 preempts us: we yield to its higher advert.
        assert_eq!(f.handle(t0 + S + 1, adv(HIGH_IP, 140, 100)).actions, [RemoveVip, Notify(State::Backup)]);
        f.handle(t0 + S + 2, Event::PriorityChanged(0));
        assert_eq!(f.priority(), 1);
        assert_eq!(f.skew_time(), 255 * S / 256);
    }

    #[test]
    fn a_backup_whose_priority_rises_preempts_the_lower_master() {
        let mut f = backup(cfg(Version::V2, 100, 100));
        f.handle(S, adv(HIGH_IP, 120, 100));
        f.handle(S + 1, Event::PriorityChanged(130));
        let d = f.deadline();
        // The master's next advert (120) is now lower: ignored, and we take over.
        assert_eq!(f.handle(2 * S, adv(HIGH_IP, 120, 100)).deadline, d);
        f.handle(d.unwrap(), Event::Timer);
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn v2_does_not_learn_the_interval_v3_does() {
        let mut f = backup(cfg(Version::V2, 100, 100));
        f.handle(S, adv(HIGH_IP, 150, 300));
        assert_eq!(f.master_adver_int_cs(), 100);
        let mut f = backup(cfg(Version::V3, 100, 100));
        let out = f.handle(S, adv(HIGH_IP, 150, 10));
        assert_eq!(f.master_adver_int_cs(), 10);
        assert_eq!(out.deadline, Some(S + 300 * MS + 60_937));
        // A zero interval from a broken peer is taken as 1 cs, never a zero timer.
        let out = f.handle(2 * S, adv(HIGH_IP, 150, 0));
        assert_eq!(out.deadline, Some(2 * S + 30 * MS + 156 * CS / 256));
        // Leaving Fault forgets the learned interval.
        f.handle(3 * S, Event::Fault(true));
        f.handle(4 * S, Event::Fault(false));
        assert_eq!(f.master_adver_int_cs(), 100);
    }

    #[test]
    fn lower_priority_adverts_in_initialize_are_ignored() {
        let mut f = Fsm::new(cfg(Version::V2, 100, 100));
        assert_eq!(f.handle(0, adv(HIGH_IP, 150, 100)), Output::default());
        assert_eq!(f.handle(0, Event::Timer), Output::default());
    }
}

//! Tracking and notification with keepalived's semantics.
//!
//! A tracked check (script, or rwsplit's own health) is good or failing; it changes only after
//! `fall` failures or `rise` successes in a row. The effective priority is the configured one
//! plus each positive weight whose check is good plus each negative weight whose check fails,
//! kept within 1–254; a failing check of weight 0 puts the instance in FAULT. The address owner
//! (priority 255) is not moved by weights. Scripts run on their own threads (one per script,
//! killed at their timeout) so a slow check never delays an advert; notify commands run
//! detached, with keepalived's arguments for `notify` (`INSTANCE NAME STATE PRIORITY`).

use crate::fsm::State;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A check's rise/fall state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    pub weight: i32,
    rise: u32,
    fall: u32,
    good: bool,
    /// Results in a row that disagree with `good`.
    streak: u32,
}

impl Tracker {
    /// A check that starts good (keepalived's default without `init_fail`).
    pub fn new(weight: i32, rise: u32, fall: u32) -> Self {
        Tracker { weight, rise: rise.max(1), fall: fall.max(1), good: true, streak: 0 }
    }

    pub fn is_good(&self) -> bool {
        self.good
    }

    /// Records one result; returns true when the check changed state.
    pub fn record(&mut self, success: bool) -> bool {
        if success == self.good {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if self.good { self.fall } else { self.rise };
        if self.streak >= needed {
            self.good = success;
            self.streak = 0;
            return true;
        }
        false
    }
}

/// The effective priority from the configured one and the trackers, or `None` for FAULT.
pub fn effective_priority(base: u8, trackers: &[Tracker]) -> Option<u8> {
    if trackers.iter().any(|t| t.weight == 0 && !t.good) {
        return None;
    }
    if base == 255 {
        return Some(255);
    }
    let sum: i32 = trackers
        .iter()
        .map(|t| match (t.weight > 0, t.good) {
            (true, true) => t.weight,
            (false, false) => t.weight,
            _ => 0,
        })
        .sum();
    Some((i32::from(base) + sum).clamp(1, 254) as u8)
}

/// keepalived's state word for notify scripts.
pub fn state_word(s: State) -> &'static str {
    match s {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Initialize => "STOP",
    }
}

/// The commands to run on entering `state`: the state's own `notify_*` as written, then
/// `notify` with `INSTANCE NAME STATE PRIORITY` appended. Returned as `sh -c` argument lists.
pub fn notify_commands(
    specific: Option<&str>,
    generic: Option<&str>,
    instance: &str,
    state: State,
    priority: u8,
) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if let Some(cmd) = specific {
        out.push(vec!["-c".into(), cmd.into()]);
    }
    if let Some(cmd) = generic {
        out.push(vec![
            "-c".into(),
            format!("{cmd} \"$@\""),
            "sh".into(),
            "INSTANCE".into(),
            instance.into(),
            state_word(state).into(),
            priority.to_string(),
        ]);
    }
    out
}

/// Starts `sh` with `args`, detached; a thread reaps it so no zombie is left.
pub fn spawn_detached(args: Vec<String>) {
    match Command::new("/bin/sh").args(&args).stdin(Stdio::null()).spawn() {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => tracing::warn!(error = %e, command = ?args, "notify command did not start"),
    }
}

/// Runs `script` through `sh -c`; success is exit status 0 within `timeout` (a script still
/// running then is killed and counts as failed).
pub fn run_check(script: &str, timeout: Duration) -> bool {
    let mut child = match Command::new("/bin/sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// Runs a track script every `interval` on its own thread, sending `(index, success)` after
/// each run, until `stop` is set or the receiver is gone.
pub fn spawn_script(
    index: usize,
    script: String,
    interval: Duration,
    timeout: Duration,
    results: Sender<(usize, bool)>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("vrrp-track-{index}")).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let began = Instant::now();
            let ok = run_check(&script, timeout);
            if results.send((index, ok)).is_err() {
                return;
            }
            let rest = interval.saturating_sub(began.elapsed());
            // Sleep in slices so a stop is noticed quickly.
            let until = Instant::now() + rest;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_and_rise_need_results_in_a_row() {
        let mut t = Tracker::new(-20, 2, 3);
        assert!(t.is_good());
        assert!(!t.record(false));
        assert!(!t.record(false));
        assert!(!t.record(true), "a success breaks the run of failures");
        assert!(!t.record(false));
        assert!(!t.record(false));
        assert!(t.record(false), "third failure in a row");
        assert!(!t.is_good());
        assert!(!t.record(true));
        assert!(t.record(true), "second success in a row");
        assert!(t.is_good());
        assert!(!t.record(true));
    }

    #[test]
    fn weights_follow_keepalived() {
        let mut down = Tracker::new(-20, 1, 1);
        down.record(false);
        let up_pos = Tracker::new(10, 1, 1);
        let mut down_pos = Tracker::new(10, 1, 1);
        down_pos.record(false);
        let up_neg = Tracker::new(-30, 1, 1);
        // Negative weights count when failing, positive ones when good.
        assert_eq!(effective_priority(100, &[down.clone(), up_pos.clone(), down_pos, up_neg]), Some(90));
        // Clamped to 1–254.
        assert_eq!(effective_priority(10, &[down.clone(), down.clone()]), Some(1));
        assert_eq!(effective_priority(250, std::slice::from_ref(&up_pos)), Some(254));
        // The owner is not moved.
        assert_eq!(effective_priority(255, &[down.clone()]), Some(255));
        // A failing weight-0 check means FAULT, even for the owner.
        let mut zero = Tracker::new(0, 1, 1);
        assert_eq!(effective_priority(100, &[zero.clone()]), Some(100));
        zero.record(false);
        assert_eq!(effective_priority(255, &[zero]), None);
    }

    #[test]
    fn notify_arguments_are_keepalived_s() {
        let cmds = notify_commands(Some("/n.sh master 1.2.3.4"), Some("/all.sh"), "VI_1", State::Master, 150);
        assert_eq!(cmds[0], ["-c", "/n.sh master 1.2.3.4"]);
        assert_eq!(cmds[1], ["-c", "/all.sh \"$@\"", "sh", "INSTANCE", "VI_1", "MASTER", "150"]);
        assert_eq!(state_word(State::Initialize), "STOP");
        assert!(notify_commands(None, None, "x", State::Fault, 1).is_empty());
    }

    #[test]
    fn generic_notify_receives_its_arguments() {
        let dir = std::env::temp_dir().join(format!("rwsplit-ha-notify-{}", std::process::id()));
        let out = dir.with_extension("out");
        let cmds = notify_commands(None, Some(&format!("printf '%s,' >{}", out.display())), "VI_1", State::Fault, 90);
        let status = Command::new("/bin/sh").args(&cmds[0]).status().unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "INSTANCE,VI_1,FAULT,90,");
        let _ = std::fs::remove_file(out);
    }

    #[test]
    fn checks_succeed_fail_and_time_out() {
        assert!(run_check("exit 0", Duration::from_secs(5)));
        assert!(!run_check("exit 3", Duration::from_secs(5)));
        let t = Instant::now();
        assert!(!run_check("sleep 5", Duration::from_millis(200)));
        assert!(t.elapsed() < Duration::from_secs(2), "the check was not killed at its timeout");
    }

    #[test]
    fn script_thread_reports_and_stops() {
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let h = spawn_script(3, "true".into(), Duration::from_millis(20), Duration::from_secs(1), tx, stop.clone())
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), (3, true));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), (3, true));
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }
}

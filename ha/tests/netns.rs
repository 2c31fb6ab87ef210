//! End-to-end tests in network namespaces made and removed by the test (root only; skipped
//! with a message otherwise): two namespaces joined by a veth pair, our runner in one (started
//! on a thread that entered the namespace, so the VRRP thread inherits it) and Debian's
//! keepalived or a second runner in the other. Traffic stays inside the namespaces.
//! Checks: elections and takeovers both ways with keepalived (so keepalived accepts our adverts,
//! PASS included), takeover times, tshark decoding our adverts with a good checksum, stale VIP
//! removal at start, and a VIP's valid lifetime expiring by itself.

mod common;

use rwsplit_config::{AuthConfig, Secret, VirtualIpEntry, VrrpInstanceConfig};
use rwsplit_ha::fsm::State;
use rwsplit_ha::runner::{self, RunnerHandle};
use rwsplit_ha::vip::{Vip, VipManager};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

const VIP: &str = "10.99.0.100";

/// Why these tests cannot run here, if they cannot.
fn skip_reason(tools: &[&str]) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    tools.iter().find(|t| !common::have(t)).map(|t| format!("{t} is not installed"))
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces `a` and `b` joined by veth a0 (10.99.0.11) – b0 (10.99.0.12).
struct Lab {
    a: String,
    b: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let id = format!("{}{}", tag, std::process::id() % 100_000);
        let (a, b) = (format!("rwha-{id}-a"), format!("rwha-{id}-b"));
        let dir = std::env::temp_dir().join(format!("rwha-{id}"));
        let _ = std::fs::create_dir_all(&dir);
        let lab = Lab { a, b, dir, children: Vec::new() };
        sh(&format!(
            "ip netns add {a} && ip netns add {b} && \
             ip -n {a} link add a0 address 02:99:00:00:00:11 type veth peer name b0 netns {b} address 02:99:00:00:00:12 && \
             ip -n {a} addr add 10.99.0.11/24 dev a0 && ip -n {b} addr add 10.99.0.12/24 dev b0 && \
             ip -n {a} link set lo up && ip -n {b} link set lo up && ip -n {a} link set a0 up && ip -n {b} link set b0 up",
            a = lab.a,
            b = lab.b
        ));
        lab
    }

    fn has_vip(&self, ns: &str) -> bool {
        sh(&format!("ip -n {ns} -4 -o addr show")).contains(&format!("{VIP}/"))
    }

    /// Starts a runner for `cfg` inside `ns`.
    fn runner(&self, ns: &str, cfg: VrrpInstanceConfig) -> RunnerHandle {
        in_ns(ns, move || runner::spawn(cfg, Arc::new(AtomicBool::new(true)))).unwrap()
    }

    /// Starts a capture of VRRP on `dev` in `ns`; returns the file.
    fn capture(&mut self, ns: &str, dev: &str) -> PathBuf {
        let file = self.dir.join(format!("{ns}.pcapng"));
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "dumpcap", "-q", "-i", dev, "-f", "ip proto 112", "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
        assert!(wait_until(Duration::from_secs(10), || file.exists()).is_some(), "dumpcap did not start");
        std::thread::sleep(Duration::from_millis(300));
        file
    }

    fn keepalived(&mut self, ns: &str, conf: &str) {
        let path = self.dir.join(format!("keepalived-{ns}.conf"));
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "keepalived", "--dont-fork", "--log-console", "--vrrp", "-f"])
            .arg(&path)
            .arg("-p")
            .arg(self.dir.join("k.pid"))
            .arg("-r")
            .arg(self.dir.join("v.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// Ends the children started last first, politely (SIGTERM), then waits for them.
    fn stop_children(&mut self) {
        for mut c in self.children.drain(..).rev() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if c.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_children();
        let _ = Command::new("ip").args(["netns", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` on a thread that entered network namespace `ns`; threads it starts stay there.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = Path::new("/var/run/netns").join(ns);
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// Polls `cond` every 5 ms; the time it took, or `None` after `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn instance(iface: &str, priority: u32, version: u32, advert_int: f64) -> VrrpInstanceConfig {
    VrrpInstanceConfig {
        name: "VI_T".into(),
        interface: iface.into(),
        virtual_router_id: 51,
        priority,
        version,
        advert_int,
        virtual_ipaddress: vec![VirtualIpEntry::Text(format!("{VIP}/24"))],
        garp_master_delay: 0,
        ..VrrpInstanceConfig::default()
    }
}

/// Our adverts in a capture: (checksum status, priority) per advert from 10.99.0.11.
fn our_adverts(file: &Path) -> Vec<(String, String)> {
    let out = sh(&format!(
        "tshark -r {} -Y 'vrrp && ip.src==10.99.0.11' -T fields -e vrrp.checksum.status -e vrrp.prio 2>/dev/null",
        file.display()
    ));
    out.lines().filter_map(|l| l.split_once('\t')).map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn pair_with_keepalived_v2_pass() {
    if let Some(why) = skip_reason(&["ip", "keepalived", "dumpcap", "tshark"]) {
        eprintln!("skipped: {why}");
        return;
    }
    let mut lab = Lab::new("k");
    let (a, b) = (lab.a.clone(), lab.b.clone());
    let cap = lab.capture(&a, "a0");
    lab.keepalived(
        &b,
        &format!(
            "global_defs {{\n router_id {b}\n vrrp_garp_master_delay 0\n}}\nvrrp_instance VI_T {{\n state BACKUP\n interface b0\n \
             virtual_router_id 51\n priority 100\n advert_int 1\n authentication {{\n  auth_type PASS\n  auth_pass lab51pw\n }}\n \
             virtual_ipaddress {{\n  {VIP}/24\n }}\n}}\n"
        ),
    );
    let t = wait_until(Duration::from_secs(10), || lab.has_vip(&b)).expect("keepalived never became master");
    eprintln!("keepalived alone became master after {t:?}");

    let mut cfg = instance("a0", 150, 2, 1.0);
    cfg.authentication = Some(AuthConfig { auth_type: "PASS".into(), auth_pass: Secret::new("lab51pw") });
    let ours = lab.runner(&a, cfg);
    assert_eq!(ours.state(), State::Backup);
    let up =
        wait_until(Duration::from_secs(6), || ours.state() == State::Master).expect("we never preempted keepalived");
    let moved =
        wait_until(Duration::from_secs(3), || lab.has_vip(&a) && !lab.has_vip(&b)).expect("VIP did not move to us");
    eprintln!("we preempted after {up:?} (Master_Down_Interval 3.414 s); VIP moved {moved:?} later");
    assert!(up >= Duration::from_secs(3) && up < Duration::from_millis(4_500), "{up:?}");
    // Stay master for a few adverts: keepalived accepts them (it stays backup).
    std::thread::sleep(Duration::from_secs(2));
    assert!(lab.has_vip(&a) && !lab.has_vip(&b));

    ours.stop().unwrap();
    assert!(!lab.has_vip(&a), "our VIP must go on shutdown");
    let back = wait_until(Duration::from_secs(3), || lab.has_vip(&b)).expect("keepalived did not take over");
    eprintln!("keepalived took over {back:?} after our priority-0 advert (Skew_Time 0.609 s)");
    assert!(back < Duration::from_millis(1_500), "{back:?}: the priority-0 advert was not honoured");

    lab.stop_children();
    let adverts = our_adverts(&cap);
    assert!(adverts.len() >= 3, "{adverts:?}");
    assert!(adverts.iter().all(|(ck, _)| ck == "1"), "tshark found a bad checksum: {adverts:?}");
    assert_eq!(adverts.last().map(|(_, p)| p.as_str()), Some("0"), "{adverts:?}");
    assert!(adverts.iter().any(|(_, p)| p == "150"), "{adverts:?}");
}

#[test]
fn two_runners_v3_unicast_100ms() {
    if let Some(why) = skip_reason(&["ip"]) {
        eprintln!("skipped: {why}");
        return;
    }
    let lab = Lab::new("u");
    let (a, b) = (lab.a.clone(), lab.b.clone());
    // A stale VIP from an earlier run on b (as after kill -9) is removed when b starts.
    sh(&format!("ip -n {b} addr add {VIP}/24 dev b0"));
    let unicast = |mut c: VrrpInstanceConfig, src: &str, peer: &str| {
        c.unicast_src_ip = Some(src.parse().unwrap());
        c.unicast_peer = vec![peer.parse().unwrap()];
        c
    };
    let rb = lab.runner(&b, unicast(instance("b0", 100, 3, 0.1), "10.99.0.12", "10.99.0.11"));
    assert!(!lab.has_vip(&b), "the stale VIP was not removed at start");
    let t = wait_until(Duration::from_secs(2), || rb.state() == State::Master).expect("b never became master");
    eprintln!("b alone became master after {t:?} (Master_Down_Interval 0.361 s)");
    assert!(lab.has_vip(&b));

    let ra = lab.runner(&a, unicast(instance("a0", 150, 3, 0.1), "10.99.0.11", "10.99.0.12"));
    let up = wait_until(Duration::from_secs(2), || ra.state() == State::Master).expect("a never preempted b");
    wait_until(Duration::from_secs(1), || rb.state() == State::Backup).expect("b did not yield");
    eprintln!("a preempted after {up:?} (Master_Down_Interval 0.341 s)");
    assert!(wait_until(Duration::from_secs(1), || lab.has_vip(&a) && !lab.has_vip(&b)).is_some());

    let stopped = Instant::now();
    ra.stop().unwrap();
    let back = wait_until(Duration::from_secs(1), || rb.state() == State::Master).expect("b did not take over");
    eprintln!(
        "b took over {back:?} after a's priority-0 advert (Skew_Time 61 ms), {:?} after stop began",
        stopped.elapsed()
    );
    assert!(back < Duration::from_millis(300), "{back:?}");
    rb.stop().unwrap();
    assert!(!lab.has_vip(&b));
}

#[test]
fn vip_lifetime_expires_by_itself() {
    if let Some(why) = skip_reason(&["ip"]) {
        eprintln!("skipped: {why}");
        return;
    }
    let lab = Lab::new("l");
    let a = lab.a.clone();
    let ifindex =
        sh(&format!("cat /sys/class/net/lo/ifindex 2>/dev/null; ip netns exec {a} cat /sys/class/net/a0/ifindex"));
    let ifindex: u32 = ifindex.lines().last().unwrap().trim().parse().unwrap();
    let vip = Vip { addr: VIP.parse().unwrap(), prefix: 24, ifindex, label: Some("a0:vip".into()) };
    let v = vip.clone();
    in_ns(&a, move || {
        let m = VipManager::new().unwrap();
        m.add_or_renew(&v, 2).unwrap();
        // Renewing is idempotent.
        m.add_or_renew(&v, 2).unwrap();
    });
    let shown = sh(&format!("ip -n {a} -4 addr show dev a0"));
    assert!(
        shown.contains(&format!("{VIP}/24")) && shown.contains("a0:vip") && shown.contains("valid_lft 2sec"),
        "{shown}"
    );
    // Like a node killed with -9: nobody renews it, and the kernel drops it.
    let gone = wait_until(Duration::from_secs(5), || !lab.has_vip(&a)).expect("the VIP outlived its valid lifetime");
    eprintln!("an unrenewed VIP with a 2 s lifetime disappeared after {gone:?}");
    in_ns(&a, move || VipManager::new().unwrap().remove(&vip).unwrap());
}

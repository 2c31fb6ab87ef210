//! `[[vrrp]]`: the embedded VRRP instances, one per virtual router, with keepalived's field names
//! and defaults so a `vrrp_instance` block reads across almost word for word (and
//! `rwsplit import-keepalived` writes them). Validation enforces what the protocol needs: VRID
//! 1–255 and unique per interface and family, priority 1–254 (255 only for the address owner),
//! whole-second intervals for v2 and centiseconds for v3, a PASS of at most 8 characters and
//! no authentication for v3, parseable virtual addresses of one family.

use super::check_range;
use crate::{Problem, Secret};
use serde::Deserialize;
use std::net::IpAddr;

/// keepalived's initial `state`: only a hint, the election decides (the address owner, priority
/// 255, becomes master at once whatever it says).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum InitialState {
    #[serde(rename = "MASTER", alias = "master")]
    Master,
    #[default]
    #[serde(rename = "BACKUP", alias = "backup")]
    Backup,
}

/// One VRRP instance (keepalived's `vrrp_instance`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VrrpInstanceConfig {
    /// Instance name, used in logs, metrics and as the notify scripts' second argument
    /// (keepalived's `vrrp_instance NAME`).
    pub name: String,
    /// Initial state hint, `"MASTER"` or `"BACKUP"`.
    pub state: InitialState,
    /// Interface the adverts go out on and the virtual addresses are added to.
    pub interface: String,
    /// Virtual Router ID, 1–255; both nodes of a pair use the same one, and it must be unique
    /// on the link (it also picks the virtual MAC 00:00:5e:00:01:VRID other vendors use).
    pub virtual_router_id: u32,
    /// Election priority, 1–254; the highest becomes master. 255 is for the address owner only.
    pub priority: u32,
    /// Seconds between adverts: whole seconds 1–255 for version 2, 0.01–40.95 for version 3.
    pub advert_int: f64,
    /// VRRP version, 2 (RFC 3768, keepalived's default) or 3 (RFC 5798).
    pub version: u32,
    /// Version 2 only: simple password authentication (`auth_type = "PASS"`). It only guards
    /// against mistakes on the link; it is sent in clear.
    pub authentication: Option<AuthConfig>,
    /// The virtual addresses, as keepalived writes them (`"10.0.0.100/24 dev eth0 label
    /// eth0:vip"`) or as tables (`{ address = "10.0.0.100/24", dev = "eth0", label = "eth0:vip" }`).
    pub virtual_ipaddress: Vec<VirtualIpEntry>,
    /// Source address of the adverts; with `unicast_peer` they go to each peer instead of the
    /// multicast group (for links without multicast, e.g. most clouds).
    pub unicast_src_ip: Option<IpAddr>,
    /// The other nodes, sent to by unicast.
    pub unicast_peer: Vec<IpAddr>,
    /// Never take the master role from a live master of lower priority (only when it leaves).
    pub nopreempt: bool,
    /// Seconds a preempting backup keeps a lower-priority master before it takes over (0–1000).
    pub preempt_delay: f64,
    /// Interfaces whose loss puts this instance in FAULT (keepalived's `track_interface`).
    pub track_interface: Vec<String>,
    /// rwsplit's own health as a track: while the proxy reports itself unhealthy the priority
    /// moves by `weight`, or the instance goes to FAULT when `weight` is 0.
    pub track_proxy: Option<TrackProxyConfig>,
    /// Health-check scripts (keepalived's `vrrp_script` + `track_script`).
    pub track_script: Vec<TrackScriptConfig>,
    /// Run on becoming master, as `CMD` (keepalived's `notify_master`).
    pub notify_master: Option<String>,
    /// Run on becoming backup.
    pub notify_backup: Option<String>,
    /// Run on entering FAULT.
    pub notify_fault: Option<String>,
    /// Run when the instance stops.
    pub notify_stop: Option<String>,
    /// Run on every transition with `INSTANCE NAME STATE PRIORITY` appended (keepalived's
    /// `notify`).
    pub notify: Option<String>,
    /// Seconds after becoming master before the gratuitous ARPs are sent a second time (0 off).
    pub garp_master_delay: u32,
    /// Gratuitous ARPs sent per announcement.
    pub garp_master_repeat: u32,
    /// Seconds between periodic gratuitous ARPs while master (0 off).
    pub garp_master_refresh: u32,
    /// Gratuitous ARPs sent per periodic refresh.
    pub garp_master_refresh_repeat: u32,
    /// Seconds of valid lifetime given to the virtual addresses; the master renews it with every
    /// advert, so an address left behind by a node killed with -9 expires by itself.
    pub vip_lifetime: u32,
}

impl Default for VrrpInstanceConfig {
    fn default() -> Self {
        VrrpInstanceConfig {
            name: String::new(),
            state: InitialState::Backup,
            interface: String::new(),
            virtual_router_id: 0,
            priority: 100,
            advert_int: 1.0,
            version: 2,
            authentication: None,
            virtual_ipaddress: Vec::new(),
            unicast_src_ip: None,
            unicast_peer: Vec::new(),
            nopreempt: false,
            preempt_delay: 0.0,
            track_interface: Vec::new(),
            track_proxy: None,
            track_script: Vec::new(),
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            garp_master_delay: 5,
            garp_master_repeat: 5,
            garp_master_refresh: 0,
            garp_master_refresh_repeat: 1,
            vip_lifetime: 10,
        }
    }
}

/// keepalived's `authentication` block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `"PASS"`, the only type supported (keepalived's `AH` is deprecated by RFC 3768).
    pub auth_type: String,
    /// The password, at most 8 characters.
    pub auth_pass: Secret,
}

/// A virtual address as written in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum VirtualIpEntry {
    /// keepalived's syntax: `ADDRESS[/PREFIX] [dev IFNAME] [label LABEL]`.
    Text(String),
    /// The same as a table.
    Table(VirtualIpTable),
}

/// A virtual address as a table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualIpTable {
    /// `ADDRESS[/PREFIX]`; without a prefix /32 (IPv4) or /128 (IPv6), as keepalived.
    pub address: String,
    /// Interface to add it to (default: the instance's `interface`).
    pub dev: Option<String>,
    /// Address label (`ip addr … label`), IPv4 only, must start with the interface name.
    pub label: Option<String>,
}

/// A parsed virtual address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualAddress {
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: Option<String>,
    pub label: Option<String>,
}

impl VirtualIpEntry {
    /// Parses the entry.
    pub fn parse(&self) -> Result<VirtualAddress, String> {
        match self {
            VirtualIpEntry::Text(t) => parse_vip(t),
            VirtualIpEntry::Table(t) => {
                let mut v = parse_address(&t.address)?;
                v.dev = t.dev.clone();
                v.label = t.label.clone();
                Ok(v)
            }
        }
    }
}

/// Parses `ADDRESS[/PREFIX]`.
fn parse_address(s: &str) -> Result<VirtualAddress, String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| format!("{a:?} is not an IP address"))?;
    let max = if addr.is_ipv6() { 128 } else { 32 };
    let prefix = match p {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("prefix {p:?} is not 0–{max}")),
        },
    };
    Ok(VirtualAddress { addr, prefix, dev: None, label: None })
}

/// Parses keepalived's `ADDRESS[/PREFIX] [dev IFNAME] [label LABEL]`.
pub fn parse_vip(text: &str) -> Result<VirtualAddress, String> {
    let mut words = text.split_whitespace();
    let first = words.next().ok_or("empty virtual address")?;
    let mut v = parse_address(first)?;
    while let Some(w) = words.next() {
        let slot = match w {
            "dev" => &mut v.dev,
            "label" => &mut v.label,
            other => return Err(format!("{other:?} is not supported here (only dev and label)")),
        };
        let value = words.next().ok_or_else(|| format!("{w} needs a value"))?;
        if slot.replace(value.to_string()).is_some() {
            return Err(format!("{w} given twice"));
        }
    }
    Ok(v)
}

/// rwsplit's own health as a track.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackProxyConfig {
    /// Added to the priority while the proxy is unhealthy (-253–253, usually negative); 0 puts
    /// the instance in FAULT instead.
    pub weight: i32,
}

/// A health-check script (keepalived's `vrrp_script`, inlined where it is tracked).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackScriptConfig {
    /// Name, for logs.
    pub name: String,
    /// Command line; exit status 0 is success.
    pub script: String,
    /// Seconds between runs.
    pub interval: f64,
    /// Seconds a run may take before it counts as failed (default: `interval`).
    pub timeout: Option<f64>,
    /// Added to the priority while the script fails (negative) or succeeds (positive),
    /// -253–253; 0 puts the instance in FAULT while it fails.
    pub weight: i32,
    /// Successes in a row before a failing script counts as good again.
    pub rise: u32,
    /// Failures in a row before a good script counts as failing.
    pub fall: u32,
}

impl Default for TrackScriptConfig {
    fn default() -> Self {
        TrackScriptConfig {
            name: String::new(),
            script: String::new(),
            interval: 1.0,
            timeout: None,
            weight: 0,
            rise: 1,
            fall: 1,
        }
    }
}

impl VrrpInstanceConfig {
    /// `advert_int` in centiseconds (rounded; validation ensures it is exact).
    pub fn advert_interval_cs(&self) -> u16 {
        let cs = (self.advert_int * 100.0).round();
        if cs.is_finite() && (0.0..=f64::from(u16::MAX)).contains(&cs) {
            cs as u16
        } else {
            0
        }
    }

    /// The parsed virtual addresses (those that parse).
    pub fn virtual_addresses(&self) -> Vec<VirtualAddress> {
        self.virtual_ipaddress.iter().filter_map(|v| v.parse().ok()).collect()
    }

    pub(crate) fn validate(&self, at: &str, problems: &mut Vec<Problem>) {
        let mut bad = |field: &str, reason: String| problems.push(Problem::new(format!("{at}.{field}"), reason));
        if self.name.is_empty() {
            bad("name", "an instance needs a name".into());
        }
        if self.interface.is_empty() {
            bad("interface", "the interface the adverts go out on is required".into());
        } else if self.interface.len() > 15 {
            bad("interface", format!("{:?} is longer than an interface name can be (15)", self.interface));
        }
        if self.version != 2 && self.version != 3 {
            bad("version", format!("{} is not a VRRP version (2 or 3)", self.version));
        }
        let v3 = self.version == 3;
        if !(0.0..1_000.0).contains(&self.preempt_delay) {
            bad("preempt_delay", format!("{} is out of range 0–1000 s", self.preempt_delay));
        }
        let cs = self.advert_int * 100.0;
        if v3 {
            if !(1.0..=4095.0).contains(&cs) || (cs - cs.round()).abs() > 1e-6 {
                bad("advert_int", format!("{} is not 0.01–40.95 s in steps of 0.01 s (VRRPv3)", self.advert_int));
            }
        } else if !(1.0..=255.0).contains(&self.advert_int) || self.advert_int.fract() != 0.0 {
            bad(
                "advert_int",
                format!(
                    "{} is not a whole number of seconds 1–255 (VRRPv2; use version = 3 for less)",
                    self.advert_int
                ),
            );
        }
        match &self.authentication {
            Some(_) if v3 => {
                bad("authentication", "VRRPv3 has no authentication (RFC 5798 §9); remove it or use version = 2".into())
            }
            Some(a) => {
                if !a.auth_type.eq_ignore_ascii_case("PASS") {
                    bad("authentication.auth_type", format!("{:?} is not supported; only \"PASS\"", a.auth_type));
                }
                let n = a.auth_pass.expose().chars().count();
                if n == 0 || n > 8 {
                    bad(
                        "authentication.auth_pass",
                        format!("must be 1–8 characters (has {n}); keepalived would cut it to 8"),
                    );
                }
            }
            None => {}
        }
        let vips: Vec<_> = self.virtual_ipaddress.iter().map(VirtualIpEntry::parse).collect();
        if vips.is_empty() {
            bad("virtual_ipaddress", "at least one virtual address is required".into());
        }
        let family_v6 = vips.iter().flatten().next().map(|v| v.addr.is_ipv6());
        let mut seen = Vec::new();
        for (j, v) in vips.iter().enumerate() {
            let field = format!("virtual_ipaddress[{j}]");
            match v {
                Err(e) => bad(&field, e.clone()),
                Ok(v) => {
                    if Some(v.addr.is_ipv6()) != family_v6 {
                        bad(&field, "all virtual addresses of an instance must be of one family (IPv4 or IPv6)".into());
                    } else if v.addr.is_ipv6() && !v3 {
                        bad(&field, "IPv6 needs version = 3".into());
                    }
                    if v.addr.is_unspecified() || v.addr.is_multicast() || v.addr.is_loopback() {
                        bad(&field, format!("{} cannot be a virtual address", v.addr));
                    }
                    if seen.contains(&v.addr) {
                        bad(&field, format!("{} is listed twice", v.addr));
                    }
                    seen.push(v.addr);
                    if let Some(label) = &v.label {
                        let dev = v.dev.as_deref().unwrap_or(&self.interface);
                        if v.addr.is_ipv6() {
                            bad(&field, "labels are IPv4 only".into());
                        } else if !label.starts_with(dev) || label.len() > 15 {
                            bad(&field, format!("label {label:?} must start with the interface name {dev:?} and fit in 15 characters"));
                        }
                    }
                }
            }
        }
        let priority_255_ok = self.unicast_src_ip.is_some_and(|src| seen.contains(&src));
        if self.priority == 255 && !priority_255_ok {
            bad(
                "priority",
                "255 is for the address owner (a node whose own address is the virtual one); use 1–254, or set \
                 unicast_src_ip to the owned address"
                    .into(),
            );
        } else if !(1..=255).contains(&self.priority) {
            bad("priority", format!("{} is out of range 1–254", self.priority));
        }
        if let Some(src) = self.unicast_src_ip {
            if family_v6.is_some_and(|v6| v6 != src.is_ipv6()) {
                bad("unicast_src_ip", "must be of the virtual addresses' family".into());
            }
        }
        for (j, p) in self.unicast_peer.iter().enumerate() {
            let field = format!("unicast_peer[{j}]");
            if family_v6.is_some_and(|v6| v6 != p.is_ipv6()) {
                bad(&field, "must be of the virtual addresses' family".into());
            }
            if Some(*p) == self.unicast_src_ip {
                bad(&field, "is unicast_src_ip itself".into());
            }
            if self.unicast_peer[..j].contains(p) {
                bad(&field, format!("{p} is listed twice"));
            }
        }
        for (j, t) in self.track_interface.iter().enumerate() {
            if t.is_empty() || t.len() > 15 {
                bad(&format!("track_interface[{j}]"), format!("{t:?} is not an interface name"));
            }
        }
        if let Some(tp) = &self.track_proxy {
            if !(-253..=253).contains(&tp.weight) {
                bad("track_proxy.weight", format!("{} is out of range -253–253", tp.weight));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (j, s) in self.track_script.iter().enumerate() {
            let mut bad_s = |field: &str, reason: String| bad(&format!("track_script[{j}].{field}"), reason);
            if s.name.is_empty() {
                bad_s("name", "a track script needs a name".into());
            } else if !names.insert(s.name.as_str()) {
                bad_s("name", format!("{:?} is tracked twice", s.name));
            }
            if s.script.trim().is_empty() {
                bad_s("script", "the command to run is required".into());
            }
            if !(s.interval > 0.0 && s.interval <= 86_400.0) {
                bad_s("interval", format!("{} is out of range (0–86400 s]", s.interval));
            }
            if let Some(t) = s.timeout {
                if !(t > 0.0 && t <= 86_400.0) {
                    bad_s("timeout", format!("{t} is out of range (0–86400 s]"));
                }
            }
            if !(-253..=253).contains(&s.weight) {
                bad_s("weight", format!("{} is out of range -253–253", s.weight));
            }
            if !(1..=1000).contains(&s.rise) {
                bad_s("rise", format!("{} is out of range 1–1000", s.rise));
            }
            if !(1..=1000).contains(&s.fall) {
                bad_s("fall", format!("{} is out of range 1–1000", s.fall));
            }
        }
        for (field, cmd) in [
            ("notify_master", &self.notify_master),
            ("notify_backup", &self.notify_backup),
            ("notify_fault", &self.notify_fault),
            ("notify_stop", &self.notify_stop),
            ("notify", &self.notify),
        ] {
            if cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
                bad(field, "is empty; leave it out instead".into());
            }
        }
        check_range(&format!("{at}.virtual_router_id"), self.virtual_router_id.into(), 1, 255, problems);
        check_range(&format!("{at}.garp_master_delay"), self.garp_master_delay.into(), 0, 3600, problems);
        check_range(&format!("{at}.garp_master_repeat"), self.garp_master_repeat.into(), 1, 100, problems);
        check_range(&format!("{at}.garp_master_refresh"), self.garp_master_refresh.into(), 0, 86_400, problems);
        check_range(
            &format!("{at}.garp_master_refresh_repeat"),
            self.garp_master_refresh_repeat.into(),
            1,
            100,
            problems,
        );
        check_range(&format!("{at}.vip_lifetime"), self.vip_lifetime.into(), 2, 86_400, problems);
        if f64::from(self.vip_lifetime) < 2.0 * self.advert_int {
            problems.push(Problem::new(
                format!("{at}.vip_lifetime"),
                "must be at least two advert intervals, or the address would lapse between renewals",
            ));
        }
    }

    /// Checks every instance and what must be unique across them: names, and the VRID on an
    /// interface for one address family.
    pub(crate) fn validate_all(instances: &[VrrpInstanceConfig], problems: &mut Vec<Problem>) {
        let mut names = std::collections::HashSet::new();
        let mut vrids = std::collections::HashMap::new();
        for (i, v) in instances.iter().enumerate() {
            let at = format!("vrrp[{i}]");
            v.validate(&at, problems);
            if !v.name.is_empty() && !names.insert(v.name.as_str()) {
                problems.push(Problem::new(format!("{at}.name"), format!("instance {:?} is defined twice", v.name)));
            }
            let v6 = v.virtual_addresses().first().is_some_and(|a| a.addr.is_ipv6());
            if let Some(first) = vrids.insert((v.interface.as_str(), v.virtual_router_id, v6), i) {
                problems.push(Problem::new(
                    format!("{at}.virtual_router_id"),
                    format!("VRID {} is already used on {} by vrrp[{first}]", v.virtual_router_id, v.interface),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = r#"
[[users]]
name = "app"
password = "app"

[backend]
user = "app"
password = "app"

[[servers]]
name = "master"
address = "127.0.0.1:3307"

[monitor]
user = "monitor"
password = "monitor"
"#;

    const PAIR: &str = r#"
[[vrrp]]
name = "VI_1"
state = "MASTER"
interface = "eth0"
virtual_router_id = 51
priority = 150
authentication = { auth_type = "PASS", auth_pass = "lab51pw" }
virtual_ipaddress = ["10.99.0.100/24 dev eth0 label eth0:vip"]
track_proxy = { weight = -60 }
notify_master = "/usr/local/bin/notify master"

[[vrrp.track_script]]
name = "chk"
script = "/bin/true"
weight = -20
fall = 2
rise = 2
"#;

    fn parse(vrrp: &str) -> Result<crate::Config, crate::ConfigErrors> {
        crate::parse(Path::new("t.toml"), &format!("{BASE}{vrrp}"))
    }

    /// Every problem, as (path, line).
    fn problems(vrrp: &str) -> Vec<(String, Option<usize>)> {
        parse(vrrp).unwrap_err().0.into_iter().map(|e| (e.path, e.line)).collect()
    }

    fn paths(vrrp: &str) -> Vec<String> {
        problems(vrrp).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn a_full_instance_parses_with_keepalived_defaults() {
        let c = parse(PAIR).unwrap();
        let v = &c.vrrp[0];
        assert_eq!(v.state, InitialState::Master);
        assert_eq!((v.version, v.advert_interval_cs(), v.garp_master_repeat, v.garp_master_delay), (2, 100, 5, 5));
        assert_eq!(
            v.virtual_addresses(),
            [VirtualAddress {
                addr: "10.99.0.100".parse().unwrap(),
                prefix: 24,
                dev: Some("eth0".into()),
                label: Some("eth0:vip".into())
            }]
        );
        assert_eq!(v.track_script[0].interval, 1.0);
        assert_eq!(v.track_script[0].weight, -20);
        assert!(!format!("{v:?}").contains("lab51pw"), "the password must not show in Debug");
        // No [[vrrp]] at all is fine: VRRP is optional.
        assert!(parse("").unwrap().vrrp.is_empty());
    }

    #[test]
    fn v3_with_unicast_and_fast_interval() {
        let c = parse(
            r#"
[[vrrp]]
name = "VI_51"
interface = "eth0"
virtual_router_id = 51
version = 3
advert_int = 0.01
unicast_src_ip = "10.99.0.11"
unicast_peer = ["10.99.0.12"]
virtual_ipaddress = [{ address = "10.99.0.100/24", label = "eth0:vip" }]
"#,
        )
        .unwrap();
        assert_eq!(c.vrrp[0].advert_interval_cs(), 1);
        assert_eq!(c.vrrp[0].virtual_addresses()[0].label.as_deref(), Some("eth0:vip"));
    }

    #[test]
    fn vip_text_forms() {
        let v = parse_vip("fd00::1").unwrap();
        assert_eq!((v.prefix, v.dev, v.label), (128, None, None));
        assert_eq!(parse_vip("10.0.0.1").unwrap().prefix, 32);
        assert!(parse_vip("10.0.0.1/33").unwrap_err().contains("prefix"));
        assert!(parse_vip("10.0.0.300").unwrap_err().contains("not an IP"));
        assert!(parse_vip("10.0.0.1 brd 10.0.0.255").unwrap_err().contains("brd"));
        assert!(parse_vip("10.0.0.1 dev").unwrap_err().contains("needs a value"));
        assert!(parse_vip("10.0.0.1 dev a dev b").unwrap_err().contains("twice"));
        assert!(parse_vip("").is_err());
    }

    #[test]
    fn every_problem_is_reported_with_path_and_line() {
        let bad = r#"
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 0
priority = 0
advert_int = 1.5
authentication = { auth_type = "AH", auth_pass = "123456789" }
virtual_ipaddress = ["10.0.0.1/24", "nonsense", "10.0.0.1", "fd00::1"]
unicast_peer = ["fd00::2"]
preempt_delay = 5000.0
"#;
        let got = problems(bad);
        let want = [
            ("vrrp[0].virtual_router_id", 5),
            ("vrrp[0].priority", 6),
            ("vrrp[0].advert_int", 7),
            ("vrrp[0].authentication.auth_type", 8),
            ("vrrp[0].authentication.auth_pass", 8),
            ("vrrp[0].virtual_ipaddress[1]", 9),
            ("vrrp[0].virtual_ipaddress[2]", 9),
            ("vrrp[0].virtual_ipaddress[3]", 9),
            ("vrrp[0].unicast_peer[0]", 10),
            ("vrrp[0].preempt_delay", 11),
        ];
        for (path, line) in want {
            let found = got.iter().find(|(p, _)| p == path).unwrap_or_else(|| panic!("{path} missing from {got:?}"));
            // Lines are relative to the vrrp text; BASE has 16 lines before it.
            assert_eq!(found.1, Some(line + 16), "{path}");
        }
        assert_eq!(got.len(), want.len(), "{got:?}");
    }

    #[test]
    fn v3_rules() {
        let v3 = |extra: &str| {
            format!("[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nversion = 3\nvirtual_ipaddress = [\"fd00::1\"]\n{extra}")
        };
        assert!(parse(&v3("advert_int = 0.05")).is_ok());
        assert_eq!(paths(&v3("advert_int = 0.005")), ["vrrp[0].advert_int"]);
        assert_eq!(paths(&v3("advert_int = 41.0\nvip_lifetime = 100")), ["vrrp[0].advert_int"]);
        assert_eq!(paths(&v3("advert_int = 0.125")), ["vrrp[0].advert_int"]);
        assert_eq!(
            paths(&v3("authentication = { auth_type = \"PASS\", auth_pass = \"x\" }")),
            ["vrrp[0].authentication"]
        );
        let label = v3("").replace("fd00::1\"", "fd00::1 label eth0:x\"");
        assert_eq!(paths(&label), ["vrrp[0].virtual_ipaddress[0]"]);
        // v3 again in the same table is a TOML error, reported with its line before validation.
        let e = parse(&v3("version = 4")).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].line, Some(16 + 7), "{e}");
    }

    #[test]
    fn wrong_version_priority_255_and_duplicates() {
        let one = |name: &str, iface: &str, vrid: u32, extra: &str| {
            format!("[[vrrp]]\nname = \"{name}\"\ninterface = \"{iface}\"\nvirtual_router_id = {vrid}\nvirtual_ipaddress = [\"10.0.0.{vrid}\"]\n{extra}\n")
        };
        assert_eq!(paths(&one("a", "eth0", 1, "version = 4")), ["vrrp[0].version"]);
        assert_eq!(paths(&one("a", "eth0", 1, "priority = 255")), ["vrrp[0].priority"]);
        assert!(parse(&one("a", "eth0", 1, "priority = 255\nunicast_src_ip = \"10.0.0.1\"")).is_ok());
        assert_eq!(paths(&one("a", "eth0", 1, "priority = 256")), ["vrrp[0].priority"]);
        let twice = format!("{}{}", one("a", "eth0", 7, ""), one("a", "eth0", 7, ""));
        assert_eq!(paths(&twice), ["vrrp[1].name", "vrrp[1].virtual_router_id"]);
        // The same VRID on another interface is fine.
        assert!(parse(&format!("{}{}", one("a", "eth0", 7, ""), one("b", "eth1", 7, ""))).is_ok());
        assert_eq!(paths(&one("a", "", 1, "")), ["vrrp[0].interface"]);
        assert_eq!(paths(&one("", "eth0", 1, "")), ["vrrp[0].name"]);
        let no_vip = one("a", "eth0", 1, "").replace("[\"10.0.0.1\"]", "[]");
        assert_eq!(paths(&no_vip), ["vrrp[0].virtual_ipaddress"]);
        assert_eq!(
            paths(&one(
                "a",
                "eth0",
                1,
                "unicast_src_ip = \"10.0.0.9\"\nunicast_peer = [\"10.0.0.9\", \"10.0.0.8\", \"10.0.0.8\"]"
            )),
            ["vrrp[0].unicast_peer[0]", "vrrp[0].unicast_peer[2]"]
        );
        assert_eq!(paths(&one("a", "eth0", 1, "vip_lifetime = 3\nadvert_int = 2.0")), ["vrrp[0].vip_lifetime"]);
        assert_eq!(paths(&one("a", "eth0", 1, "notify = \" \"")), ["vrrp[0].notify"]);
        assert_eq!(paths(&one("a", "eth0", 1, "track_proxy = { weight = 300 }")), ["vrrp[0].track_proxy.weight"]);
        let label = one("a", "eth0", 1, "").replace("10.0.0.1\"", "10.0.0.1 label eth1:x\"");
        assert_eq!(paths(&label), ["vrrp[0].virtual_ipaddress[0]"]);
    }

    #[test]
    fn track_script_rules() {
        let s = |body: &str| {
            format!("[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nvirtual_ipaddress = [\"10.0.0.1\"]\n[[vrrp.track_script]]\nname = \"c\"\nscript = \"/bin/true\"\n{body}\n")
        };
        assert!(parse(&s("interval = 0.5\ntimeout = 2.0\nweight = 10")).is_ok());
        assert_eq!(paths(&s("interval = 0.0")), ["vrrp[0].track_script[0].interval"]);
        assert_eq!(paths(&s("timeout = -1.0")), ["vrrp[0].track_script[0].timeout"]);
        assert_eq!(paths(&s("weight = -254")), ["vrrp[0].track_script[0].weight"]);
        assert_eq!(paths(&s("rise = 0\nfall = 0")), ["vrrp[0].track_script[0].rise", "vrrp[0].track_script[0].fall"]);
        let twice = format!("{}[[vrrp.track_script]]\nname = \"c\"\nscript = \"\"\n", s(""));
        assert_eq!(paths(&twice), ["vrrp[0].track_script[1].name", "vrrp[0].track_script[1].script"]);
        // Unknown keys are refused with their line.
        let e = parse(&s("intervall = 1")).unwrap_err();
        assert!(e.to_string().contains("intervall"), "{e}");
    }
}

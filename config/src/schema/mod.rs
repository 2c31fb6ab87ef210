//! The config schema: one struct per TOML section, each field documented, each section with a
//! `validate` that pushes every problem it finds. Defaults are the values a production
//! deployment should start from; the lab's config only overrides addresses and credentials.

mod admin;
mod monitor;
mod proxy;
mod routing;
mod servers;
mod vrrp;

pub use admin::AdminConfig;
pub use monitor::MonitorConfig;
pub use proxy::ProxyConfig;
pub use routing::{Consistency, ReadBalance, RoutingConfig};
pub use servers::{BackendConfig, ServerConfig, UserConfig};

/// The most `[[servers]]` entries a config may have (the proxy keeps per-session bitmaps
/// indexed by server; removed servers also count against its limit of 64 slots).
pub const MAX_SERVERS: usize = 32;
pub use vrrp::{
    parse_vip, AuthConfig, InitialState, TrackProxyConfig, TrackScriptConfig, VirtualAddress, VirtualIpEntry,
    VirtualIpTable, VrrpInstanceConfig,
};

use crate::Problem;
use serde::Deserialize;

/// The whole rwsplit configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The client-facing listener and session limits (`[proxy]`).
    pub proxy: ProxyConfig,
    /// The users applications log in as (`[[users]]`): rwsplit's own list, separate from the
    /// credentials rwsplit uses towards the servers.
    pub users: Vec<UserConfig>,
    /// How rwsplit logs into the servers and pools its connections (`[backend]`).
    pub backend: BackendConfig,
    /// The MySQL/MariaDB servers: one writer and its replicas (`[[servers]]`). Which one is the
    /// writer is learned from `read_only`, not configured.
    pub servers: Vec<ServerConfig>,
    /// Health and replication checks (`[monitor]`).
    pub monitor: MonitorConfig,
    /// Read/write splitting policy (`[routing]`).
    pub routing: RoutingConfig,
    /// The local HTTP endpoint for `/status` and `/metrics` (`[admin]`).
    pub admin: AdminConfig,
    /// Embedded VRRP instances (`[[vrrp]]`, keepalived's `vrrp_instance`): none by default.
    pub vrrp: Vec<VrrpInstanceConfig>,
}

impl Config {
    /// Checks the whole config and returns every problem found (empty when it is usable).
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        self.proxy.validate(&mut problems);
        if self.users.is_empty() {
            problems.push(Problem::new("users", "at least one [[users]] entry is required"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            u.validate(&format!("users[{i}]"), &mut problems);
            if !seen.insert(u.name.as_str()) {
                problems.push(Problem::new(format!("users[{i}].name"), format!("user {:?} is defined twice", u.name)));
            }
        }
        self.backend.validate(&mut problems);
        if self.servers.is_empty() {
            problems.push(Problem::new("servers", "at least one [[servers]] entry is required"));
        }
        if self.servers.len() > MAX_SERVERS {
            problems.push(Problem::new("servers", format!("at most {MAX_SERVERS} [[servers]] entries")));
        }
        let mut names = std::collections::HashSet::new();
        let mut addrs = std::collections::HashSet::new();
        for (i, s) in self.servers.iter().enumerate() {
            s.validate(&format!("servers[{i}]"), &mut problems);
            if !names.insert(s.name.as_str()) {
                problems.push(Problem::new(
                    format!("servers[{i}].name"),
                    format!("server name {:?} is used twice", s.name),
                ));
            }
            if !addrs.insert(s.address.as_str()) {
                problems.push(Problem::new(
                    format!("servers[{i}].address"),
                    format!("address {:?} is listed twice", s.address),
                ));
            }
        }
        self.backend.validate_tls(&self.servers, &mut problems);
        self.monitor.validate(&mut problems);
        self.routing.validate(&mut problems);
        self.admin.validate(&mut problems);
        VrrpInstanceConfig::validate_all(&self.vrrp, &mut problems);
        problems
    }
}

/// Pushes a problem unless `addr` is `host:port` with a numeric port.
pub(crate) fn check_address(path: &str, addr: &str, problems: &mut Vec<Problem>) {
    let ok = match addr.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    };
    if !ok {
        problems.push(Problem::new(path, format!("{addr:?} is not host:port (e.g. 127.0.0.1:3306)")));
    }
}

/// Pushes a problem unless `lo <= value <= hi`.
pub(crate) fn check_range(path: &str, value: u64, lo: u64, hi: u64, problems: &mut Vec<Problem>) {
    if value < lo || value > hi {
        problems.push(Problem::new(path, format!("{value} is out of range {lo}..={hi}")));
    }
}

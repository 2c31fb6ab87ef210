//! `rwsplit import-keepalived keepalived.conf`: turns the VRRP part of a keepalived
//! configuration into rwsplit's `[[vrrp]]` TOML. This module is the importer: `lexer` reads
//! keepalived's brace syntax into statements, every `vrrp_instance` becomes a
//! [`VrrpInstanceConfig`] with the `vrrp_script`s it tracks inlined, the result is validated by
//! the same code as rwsplit's own config, with each problem mapped back to the keepalived line
//! it came from, and the shared writer (`super::toml_out`) prints it. What is not VRRP (LVS
//! `virtual_server`, SMTP alerts, `vrrp_strict`, sync groups, `include`) is listed as ignored
//! with its line, never dropped silently.

mod lexer;

use super::toml_out::{inline, int, strings, Section, TomlOut};
use crate::schema::{AuthConfig, InitialState, TrackScriptConfig, VirtualIpEntry, VrrpInstanceConfig};
use crate::{ConfigError, Secret};
use lexer::Node;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What an import produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOutput {
    /// The `[[vrrp]]` sections, ready to paste into rwsplit.toml.
    pub toml: String,
    /// Parts of the file that have no rwsplit meaning: (line, what and why).
    pub ignored: Vec<(usize, String)>,
    /// Things imported with a change the operator should know about: (line, message).
    pub warnings: Vec<(usize, String)>,
}

/// Imports keepalived.conf `text`; `file` only labels errors. Fails with every error found
/// (syntax, undefined track scripts, values rwsplit's validation refuses), each with its line.
pub fn import_keepalived(text: &str, file: &Path) -> Result<ImportOutput, Vec<ConfigError>> {
    let err = |line: usize, path: String, reason: String| ConfigError {
        file: file.to_path_buf(),
        line: Some(line),
        path,
        reason,
    };
    let nodes = lexer::statements(text).map_err(|(line, reason)| vec![err(line, String::new(), reason)])?;

    let mut imp = Importer::default();
    // Scripts are global and may be defined after the instance that tracks them.
    for n in &nodes {
        if n.keyword() == "vrrp_script" {
            imp.script(n);
        }
    }
    for n in &nodes {
        match n.keyword() {
            "vrrp_script" => {}
            "global_defs" => imp.global_defs(n),
            "vrrp_instance" => imp.instance(n),
            "virtual_server" | "virtual_server_group" => {
                imp.ignore(n.line, format!("{} (LVS load balancing is not VRRP)", n.head()))
            }
            "vrrp_sync_group" => imp.ignore(
                n.line,
                format!("{} (sync groups are not supported: each instance fails over alone)", n.head()),
            ),
            "include" => {
                imp.ignore(n.line, format!("{} (included files are not read: import each one separately)", n.head()))
            }
            _ => imp.ignore(n.line, format!("{} (not VRRP)", n.head())),
        }
    }
    for (name, s) in &imp.scripts {
        if !imp.used_scripts.contains(name.as_str()) {
            imp.warnings.push((s.line, format!("vrrp_script {name} is not tracked by any instance")));
        }
    }
    // Global garp defaults apply to every instance that did not set its own.
    for (inst, lines) in imp.instances.iter_mut().zip(&imp.lines) {
        for (key, value) in &imp.garp_defaults {
            if !lines.fields.contains_key(key) {
                set_garp(inst, key, *value);
            }
        }
    }

    let mut problems = Vec::new();
    VrrpInstanceConfig::validate_all(&imp.instances, &mut problems);
    for p in problems {
        let (i, field) = split_path(&p.path);
        let Some(lines) = imp.lines.get(i) else { continue };
        let name = imp.instances.get(i).map_or("", |v| v.name.as_str());
        let line = lines.fields.get(field).copied().unwrap_or(lines.instance);
        imp.errors.push(err(line, format!("vrrp_instance {name}.{field}"), p.reason));
    }
    if !imp.errors.is_empty() {
        for e in &mut imp.errors {
            e.file = file.to_path_buf();
        }
        imp.errors.sort_by_key(|e| e.line);
        return Err(imp.errors);
    }
    imp.warnings.sort();
    imp.ignored.sort();
    let mut out = TomlOut::new(&[format!("Imported from {} by rwsplit import-keepalived.", file.display())]);
    for (inst, lines) in imp.instances.iter().zip(&imp.lines) {
        out.array_entry("vrrp", render(inst, lines.instance));
    }
    Ok(ImportOutput { toml: out.finish(), ignored: imp.ignored, warnings: imp.warnings })
}

/// (instance index, first field name) of a validation path like `vrrp[2].track_script[0].weight`.
fn split_path(path: &str) -> (usize, &str) {
    let rest = path.strip_prefix("vrrp[").unwrap_or(path);
    let (index, rest) = rest.split_once(']').unwrap_or(("0", rest));
    let rest = rest.trim_start_matches('.');
    let end = rest.find(['.', '[']).unwrap_or(rest.len());
    (index.parse().unwrap_or(usize::MAX), &rest[..end])
}

// ---- semantics -------------------------------------------------------------------------------

/// A `vrrp_script` definition.
#[derive(Debug, Clone)]
struct Script {
    line: usize,
    config: TrackScriptConfig,
}

/// Where each field of one imported instance came from.
#[derive(Debug, Default)]
struct Lines {
    instance: usize,
    fields: HashMap<String, usize>,
}

#[derive(Default)]
struct Importer {
    scripts: std::collections::BTreeMap<String, Script>,
    used_scripts: HashSet<String>,
    instances: Vec<VrrpInstanceConfig>,
    lines: Vec<Lines>,
    garp_defaults: Vec<(String, u32)>,
    ignored: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
    errors: Vec<ConfigError>,
}

fn set_garp(inst: &mut VrrpInstanceConfig, key: &str, value: u32) {
    match key {
        "garp_master_delay" => inst.garp_master_delay = value,
        "garp_master_repeat" => inst.garp_master_repeat = value,
        "garp_master_refresh" => inst.garp_master_refresh = value,
        "garp_master_refresh_repeat" => inst.garp_master_refresh_repeat = value,
        _ => {}
    }
}

impl Importer {
    fn ignore(&mut self, line: usize, what: String) {
        self.ignored.push((line, what));
    }

    fn error(&mut self, n: &Node, path: String, reason: String) {
        self.errors.push(ConfigError { file: Default::default(), line: Some(n.line), path, reason });
    }

    /// Parses the single argument of `n` as `T`, or records an error.
    fn number<T: std::str::FromStr>(&mut self, n: &Node, at: &str) -> Option<T> {
        match n.arg().map(str::parse::<T>) {
            Some(Ok(v)) => Some(v),
            _ => {
                self.error(
                    n,
                    format!("{at}.{}", n.keyword()),
                    format!("{:?} is not a valid number", n.args().join(" ")),
                );
                None
            }
        }
    }

    fn global_defs(&mut self, g: &Node) {
        for n in g.children() {
            let k = n.keyword();
            match k {
                "vrrp_garp_master_delay" | "vrrp_garp_master_repeat" | "vrrp_garp_master_refresh"
                | "vrrp_garp_master_refresh_repeat" => {
                    if let Some(v) = self.number::<u32>(n, "global_defs") {
                        self.garp_defaults.push((k.trim_start_matches("vrrp_").to_string(), v));
                    }
                }
                "router_id" => self.ignore(n.line, format!("global_defs {} (rwsplit names nodes by host)", n.head())),
                "vrrp_strict" => self.ignore(
                    n.line,
                    "global_defs vrrp_strict (rwsplit always applies RFC checks to received adverts; it adds no firewall \
                     rules)"
                        .into(),
                ),
                _ if k.starts_with("notification_email") || k.starts_with("smtp_") => {
                    self.ignore(n.line, format!("global_defs {} (e-mail alerts: use notify scripts)", n.head()))
                }
                _ => self.ignore(n.line, format!("global_defs {} (no rwsplit equivalent)", n.head())),
            }
        }
    }

    fn script(&mut self, s: &Node) {
        let Some(name) = s.arg().map(str::to_string) else {
            self.error(s, "vrrp_script".into(), "vrrp_script needs a name".into());
            return;
        };
        let at = format!("vrrp_script {name}");
        let mut config = TrackScriptConfig { name: name.clone(), ..TrackScriptConfig::default() };
        for n in s.children() {
            match n.keyword() {
                "script" => config.script = n.args().join(" "),
                "interval" => config.interval = self.number(n, &at).unwrap_or(config.interval),
                "timeout" => config.timeout = self.number(n, &at),
                "weight" => {
                    config.weight = self.number(n, &at).unwrap_or(0);
                    if n.words.get(2).is_some_and(|w| w == "reverse") {
                        self.warnings.push((
                            n.line,
                            format!("{at}: weight 'reverse' is not supported; imported as plain weight"),
                        ));
                    }
                }
                "rise" => config.rise = self.number(n, &at).unwrap_or(config.rise),
                "fall" => config.fall = self.number(n, &at).unwrap_or(config.fall),
                _ => self.ignore(n.line, format!("{at}: {} (not supported)", n.head())),
            }
        }
        if let Some(prev) = self.scripts.insert(name.clone(), Script { line: s.line, config }) {
            self.warnings.push((s.line, format!("{at} redefines the one at line {}", prev.line)));
        }
    }

    fn instance(&mut self, node: &Node) {
        let name = node.arg().unwrap_or("").to_string();
        let at = format!("vrrp_instance {name}");
        let mut v = VrrpInstanceConfig { name: name.clone(), ..VrrpInstanceConfig::default() };
        let mut lines = Lines { instance: node.line, fields: HashMap::new() };
        lines.fields.insert("name".into(), node.line);
        for n in node.children() {
            let k = n.keyword();
            let known = match k {
                "state" => {
                    v.state = match n.arg() {
                        Some("MASTER") => InitialState::Master,
                        Some("BACKUP") => InitialState::Backup,
                        other => {
                            self.warnings.push((
                                n.line,
                                format!("{at}: unknown state {other:?}, taken as BACKUP (as keepalived does)"),
                            ));
                            InitialState::Backup
                        }
                    };
                    true
                }
                "interface" => {
                    v.interface = n.arg().unwrap_or("").to_string();
                    true
                }
                "virtual_router_id" => {
                    v.virtual_router_id = self.number(n, &at).unwrap_or(0);
                    true
                }
                "priority" => {
                    v.priority = self.number(n, &at).unwrap_or(v.priority);
                    true
                }
                "advert_int" => {
                    v.advert_int = self.number(n, &at).unwrap_or(v.advert_int);
                    true
                }
                "version" => {
                    v.version = self.number(n, &at).unwrap_or(v.version);
                    true
                }
                "native_ipv6" => {
                    v.version = 3;
                    true
                }
                "nopreempt" => {
                    v.nopreempt = true;
                    true
                }
                "preempt" => {
                    v.nopreempt = false;
                    true
                }
                "preempt_delay" => {
                    v.preempt_delay = self.number(n, &at).unwrap_or(0.0);
                    true
                }
                "unicast_src_ip" => {
                    match n.arg().map(str::parse) {
                        Some(Ok(ip)) => v.unicast_src_ip = Some(ip),
                        _ => self.error(
                            n,
                            format!("{at}.unicast_src_ip"),
                            format!("{:?} is not an IP address", n.args().join(" ")),
                        ),
                    }
                    true
                }
                "unicast_peer" => {
                    for p in n.children() {
                        match p.keyword().parse() {
                            Ok(ip) => v.unicast_peer.push(ip),
                            Err(_) => self.error(
                                p,
                                format!("{at}.unicast_peer"),
                                format!("{:?} is not an IP address", p.keyword()),
                            ),
                        }
                        if p.words.len() > 1 {
                            self.warnings
                                .push((p.line, format!("{at}: unicast_peer options {:?} ignored", p.args().join(" "))));
                        }
                    }
                    true
                }
                "authentication" => {
                    v.authentication = self.authentication(n, &at);
                    true
                }
                "virtual_ipaddress" => {
                    for a in n.children() {
                        if let Some(text) = self.vip(a, &at) {
                            v.virtual_ipaddress.push(VirtualIpEntry::Text(text));
                        }
                    }
                    true
                }
                "track_interface" => {
                    for t in n.children() {
                        v.track_interface.push(t.keyword().to_string());
                        if t.words.len() > 1 {
                            self.warnings.push((t.line, format!("{at}: track_interface weight ignored: a tracked interface that goes down means FAULT")));
                        }
                    }
                    true
                }
                "track_script" => {
                    for t in n.children() {
                        if let Some(s) = self.track_script(t, &at) {
                            v.track_script.push(s);
                        }
                    }
                    true
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    let slot = match k {
                        "notify_master" => &mut v.notify_master,
                        "notify_backup" => &mut v.notify_backup,
                        "notify_fault" => &mut v.notify_fault,
                        "notify_stop" => &mut v.notify_stop,
                        _ => &mut v.notify,
                    };
                    *slot = Some(n.args().join(" "));
                    true
                }
                "garp_master_delay" | "garp_master_repeat" | "garp_master_refresh" | "garp_master_refresh_repeat" => {
                    if let Some(value) = self.number::<u32>(n, &at) {
                        set_garp(&mut v, k, value);
                    }
                    true
                }
                "smtp_alert" => {
                    self.ignore(n.line, format!("{at}: smtp_alert (e-mail alerts: use notify scripts)"));
                    false
                }
                _ => {
                    self.ignore(n.line, format!("{at}: {} (not supported)", n.head()));
                    false
                }
            };
            if known {
                // The rwsplit field each keyword sets, for mapping validation problems back.
                let field = match k {
                    "native_ipv6" => "version",
                    "preempt" => "nopreempt",
                    k => k,
                };
                lines.fields.insert(field.to_string(), n.line);
            }
        }
        self.instances.push(v);
        self.lines.push(lines);
    }

    fn authentication(&mut self, n: &Node, at: &str) -> Option<AuthConfig> {
        let mut auth_type = None;
        let mut pass = None;
        for c in n.children() {
            match c.keyword() {
                "auth_type" => auth_type = c.arg().map(str::to_string),
                "auth_pass" => pass = Some((c.args().join(" "), c.line)),
                _ => self.ignore(c.line, format!("{at}: authentication {} (not supported)", c.head())),
            }
        }
        let (mut pass, line) = pass.unwrap_or_default();
        if pass.chars().count() > 8 {
            pass = pass.chars().take(8).collect();
            self.warnings
                .push((line, format!("{at}: auth_pass cut to its first 8 characters, as keepalived sends it")));
        }
        Some(AuthConfig { auth_type: auth_type.unwrap_or_default(), auth_pass: Secret::new(pass) })
    }

    /// keepalived's `ADDRESS[/PREFIX] [brd X] [dev X] [scope X] [label X]`: keeps dev and
    /// label, drops brd and scope with a warning.
    fn vip(&mut self, a: &Node, at: &str) -> Option<String> {
        let mut kept = vec![a.keyword().to_string()];
        let mut words = a.args().iter();
        while let Some(w) = words.next() {
            let value = words.next();
            match (w.as_str(), value) {
                ("dev" | "label", Some(v)) => kept.extend([w.clone(), v.clone()]),
                ("brd" | "broadcast" | "scope", Some(v)) => self
                    .warnings
                    .push((a.line, format!("{at}: virtual_ipaddress option '{w} {v}' dropped (kernel default used)"))),
                _ => {
                    self.error(
                        a,
                        format!("{at}.virtual_ipaddress"),
                        format!("option {w:?} in {:?} is not supported", a.head()),
                    );
                    return None;
                }
            }
        }
        Some(kept.join(" "))
    }

    /// A `track_script` entry: `NAME [weight N]`, resolved against the `vrrp_script`s.
    fn track_script(&mut self, t: &Node, at: &str) -> Option<TrackScriptConfig> {
        let name = t.keyword();
        let Some(script) = self.scripts.get(name) else {
            self.error(t, format!("{at}.track_script"), format!("vrrp_script {name:?} is not defined"));
            return None;
        };
        let mut config = script.config.clone();
        self.used_scripts.insert(name.to_string());
        match t.args() {
            [] => {}
            [w, n, ..] if w == "weight" => match n.parse() {
                Ok(weight) => config.weight = weight,
                Err(_) => self.error(t, format!("{at}.track_script"), format!("weight {n:?} is not a number")),
            },
            other => self.warnings.push((t.line, format!("{at}: track_script options {:?} ignored", other.join(" ")))),
        }
        Some(config)
    }
}

// ---- output ----------------------------------------------------------------------------------

/// One instance as a `[[vrrp]]` entry (its track scripts as `[[vrrp.track_script]]`): the
/// fields keepalived always has, then the others only where they differ from the default.
fn render(v: &VrrpInstanceConfig, line: usize) -> Section {
    let d = VrrpInstanceConfig::default();
    let mut s = Section::new(&[format!("vrrp_instance {} (line {line})", v.name)]);
    s.set("name", v.name.as_str())
        .set("state", if v.state == InitialState::Master { "MASTER" } else { "BACKUP" })
        .set("interface", v.interface.as_str())
        .set("virtual_router_id", int(v.virtual_router_id))
        .set("priority", int(v.priority))
        .set("advert_int", v.advert_int)
        .set("version", int(v.version));
    if let Some(a) = &v.authentication {
        s.set("authentication", inline([("auth_type", a.auth_type.as_str()), ("auth_pass", a.auth_pass.expose())]));
    }
    let vips = v.virtual_ipaddress.iter().map(|e| match e {
        VirtualIpEntry::Text(t) => t.as_str(),
        VirtualIpEntry::Table(t) => t.address.as_str(),
    });
    s.set("virtual_ipaddress", strings(vips));
    if let Some(src) = v.unicast_src_ip {
        s.set("unicast_src_ip", src.to_string());
    }
    if !v.unicast_peer.is_empty() {
        s.set("unicast_peer", strings(v.unicast_peer.iter().map(|p| p.to_string())));
    }
    if v.nopreempt {
        s.set("nopreempt", true);
    }
    if v.preempt_delay != 0.0 {
        s.set("preempt_delay", v.preempt_delay);
    }
    if !v.track_interface.is_empty() {
        s.set("track_interface", strings(&v.track_interface));
    }
    for (k, cmd) in [
        ("notify_master", &v.notify_master),
        ("notify_backup", &v.notify_backup),
        ("notify_fault", &v.notify_fault),
        ("notify_stop", &v.notify_stop),
        ("notify", &v.notify),
    ] {
        if let Some(c) = cmd {
            s.set(k, c.as_str());
        }
    }
    for (k, val, def) in [
        ("garp_master_delay", v.garp_master_delay, d.garp_master_delay),
        ("garp_master_repeat", v.garp_master_repeat, d.garp_master_repeat),
        ("garp_master_refresh", v.garp_master_refresh, d.garp_master_refresh),
        ("garp_master_refresh_repeat", v.garp_master_refresh_repeat, d.garp_master_refresh_repeat),
    ] {
        if val != def {
            s.set(k, int(val));
        }
    }
    for t in &v.track_script {
        let mut ts = Section::new::<&str>(&[]);
        ts.set("name", t.name.as_str()).set("script", t.script.as_str()).set("interval", t.interval);
        if let Some(timeout) = t.timeout {
            ts.set("timeout", timeout);
        }
        ts.set("weight", i64::from(t.weight)).set("rise", int(t.rise)).set("fall", int(t.fall));
        s.array_entry("track_script", ts);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A minimal valid rwsplit config the imported sections are appended to.
    const BASE: &str = "[[users]]\nname = \"app\"\npassword = \"app\"\n\n[backend]\nuser = \"app\"\npassword = \"app\"\n\n\
                        [[servers]]\nname = \"master\"\naddress = \"127.0.0.1:3307\"\n\n[monitor]\nuser = \"m\"\npassword = \"m\"\n";

    fn fixture(name: &str) -> (PathBuf, String) {
        let path = PathBuf::from(format!("{}/tests/fixtures/keepalived/{name}", env!("CARGO_MANIFEST_DIR")));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (path, text)
    }

    /// Imports a fixture, then loads the result with rwsplit's own loader.
    fn import(name: &str) -> (ImportOutput, crate::Config) {
        let (path, text) = fixture(name);
        let out = import_keepalived(&text, &path).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let config = crate::parse(Path::new("imported.toml"), &format!("{BASE}{}", out.toml))
            .unwrap_or_else(|e| panic!("{name}: the imported TOML does not load:\n{e}\n{}", out.toml));
        (out, config)
    }

    fn ignored_at(out: &ImportOutput, line: usize) -> &str {
        out.ignored
            .iter()
            .find(|(l, _)| *l == line)
            .map(|(_, w)| w.as_str())
            .unwrap_or_else(|| panic!("nothing ignored at {line}: {:?}", out.ignored))
    }

    #[test]
    fn classic_pair() {
        let (out, c) = import("pair-master.conf");
        let v = &c.vrrp[0];
        assert_eq!((v.name.as_str(), v.state, v.interface.as_str()), ("VI_1", InitialState::Master, "ens33"));
        assert_eq!((v.virtual_router_id, v.priority, v.advert_int, v.version), (51, 100, 1.0, 2));
        let auth = v.authentication.as_ref().unwrap();
        assert_eq!((auth.auth_type.as_str(), auth.auth_pass.expose()), ("PASS", "123.123"));
        assert_eq!(v.virtual_addresses()[0].addr.to_string(), "192.168.161.250");
        assert!(ignored_at(&out, 3).contains("router_id HA_TEST_R1"));
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);

        let (_, b) = import("pair-backup.conf");
        let w = &b.vrrp[0];
        assert_eq!((w.state, w.priority, w.virtual_router_id), (InitialState::Backup, 99, 51));
        assert_eq!(w.authentication.as_ref().unwrap().auth_pass, auth.auth_pass);
    }

    #[test]
    fn nopreempt_backup_with_lvs_reported_as_ignored() {
        let (out, c) = import("nopreempt-backup.conf");
        let v = &c.vrrp[0];
        assert!(v.nopreempt);
        assert_eq!((v.priority, v.state), (150, InitialState::Backup));
        assert_eq!(v.virtual_addresses()[0].dev.as_deref(), Some("ens33"));
        assert!(ignored_at(&out, 19).starts_with("virtual_server 172.16.12.250 80"), "{:?}", out.ignored);
        // The LVS block's contents are not reported one by one: the block is.
        assert_eq!(out.ignored.len(), 2, "{:?}", out.ignored);
    }

    #[test]
    fn script_tracking_and_notify() {
        let (out, c) = import("track-script-notify.conf");
        let v = &c.vrrp[0];
        assert_eq!(v.track_script.len(), 1);
        let s = &v.track_script[0];
        assert_eq!((s.name.as_str(), s.script.as_str()), ("check_proxy", "/scripts/check_p.sh"));
        assert_eq!((s.interval, s.weight, s.fall, s.rise, s.timeout), (1.0, -20, 2, 2, None));
        assert_eq!(v.notify_master.as_deref(), Some("/scripts/notify.sh master 192.168.200.250"));
        assert_eq!(v.notify_backup.as_deref(), Some("/scripts/notify.sh backup 192.168.200.250"));
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn package_sample_imports_vrrp_and_lists_the_rest() {
        let (out, c) = import("full-sample.conf");
        let v = &c.vrrp[0];
        assert_eq!(v.virtual_addresses().len(), 3);
        assert_eq!(v.authentication.as_ref().unwrap().auth_pass.expose(), "1111");
        for (line, what) in [
            (4, "notification_email"),
            (9, "notification_email_from"),
            (10, "smtp_server"),
            (11, "smtp_connect_timeout"),
            (12, "router_id"),
            (13, "vrrp_skip_check_adv_addr"),
            (14, "vrrp_strict"),
            (15, "vrrp_garp_interval"),
            (16, "vrrp_gna_interval"),
            (36, "virtual_server 192.168.200.16 1358"),
        ] {
            assert!(ignored_at(&out, line).contains(what), "line {line}: {:?}", out.ignored);
        }
        assert_eq!(out.ignored.len(), 10, "{:?}", out.ignored);
    }

    #[test]
    fn v3_with_unicast_peers_and_labelled_vip() {
        let (_, c) = import("v3-fast.conf");
        let v = &c.vrrp[0];
        assert_eq!((v.version, v.advert_interval_cs(), v.priority), (3, 10, 150));
        assert_eq!(v.unicast_src_ip.unwrap().to_string(), "10.99.0.11");
        assert_eq!(v.unicast_peer.len(), 1);
        let vip = &v.virtual_addresses()[0];
        assert_eq!((vip.prefix, vip.dev.as_deref(), vip.label.as_deref()), (24, Some("eth0"), Some("eth0:vip")));
    }

    #[test]
    fn undefined_track_script_names_its_line() {
        let (path, text) = fixture("broken-undefined-track-script.conf");
        let errs = import_keepalived(&text, &path).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        let e = &errs[0];
        assert_eq!(e.line, Some(30));
        assert!(e.reason.contains("httpd_check"), "{e}");
        assert!(e.to_string().starts_with(&format!("{}:30: vrrp_instance VI_1.track_script", path.display())), "{e}");
    }

    #[test]
    fn validation_problems_point_at_keepalived_lines() {
        let text = "vrrp_instance A {\n  interface eth0\n  virtual_router_id 300\n  advert_int 0.5\n  virtual_ipaddress {\n    10.0.0.1/40\n  }\n}\n";
        let errs = import_keepalived(text, Path::new("k.conf")).unwrap_err();
        let got: Vec<(Option<usize>, &str)> = errs.iter().map(|e| (e.line, e.path.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some(3), "vrrp_instance A.virtual_router_id"),
                (Some(4), "vrrp_instance A.advert_int"),
                (Some(5), "vrrp_instance A.virtual_ipaddress")
            ]
        );
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let e = import_keepalived("vrrp_instance A {\n  state MASTER\n", Path::new("k.conf")).unwrap_err();
        assert_eq!((e[0].line, e[0].reason.as_str()), (Some(1), "'{' is never closed"));
        let e = import_keepalived("a\n}\n", Path::new("k.conf")).unwrap_err();
        assert_eq!(e[0].line, Some(2));
        let e = import_keepalived("x {\n  notify \"/bin/a\n}\n", Path::new("k.conf")).unwrap_err();
        assert_eq!((e[0].line, e[0].reason.as_str()), (Some(2), "unterminated quoted string"));
        let e = import_keepalived("{\n}\n", Path::new("k.conf")).unwrap_err();
        assert_eq!(e[0].line, Some(1));
    }

    #[test]
    fn lexer_handles_comments_quotes_and_attached_braces() {
        let text = "# c\nvrrp_script s{\n script \"/bin/check a#b\" ! comment\n}\nvrrp_instance I\n{\n interface eth0 # c\n \
                    virtual_router_id 7\n virtual_ipaddress { 10.0.0.7/24 brd 10.0.0.255 dev eth0 }\n track_script {\n  s weight 5\n }\n \
                    auth_x 1\n authentication {\n  auth_type PASS\n  auth_pass 123456789\n }\n}\ninclude /etc/keepalived/*.conf\n";
        let out = import_keepalived(text, Path::new("k.conf")).unwrap();
        let c = crate::parse(Path::new("i.toml"), &format!("{BASE}{}", out.toml))
            .unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
        let v = &c.vrrp[0];
        assert_eq!(v.track_script[0].script, "/bin/check a#b");
        assert_eq!(v.track_script[0].weight, 5);
        assert_eq!(v.virtual_addresses()[0].dev.as_deref(), Some("eth0"));
        assert_eq!(v.authentication.as_ref().unwrap().auth_pass.expose(), "12345678");
        let warned: Vec<usize> = out.warnings.iter().map(|(l, _)| *l).collect();
        assert_eq!(warned, [9, 16], "{:?}", out.warnings);
        let ignored: Vec<usize> = out.ignored.iter().map(|(l, _)| *l).collect();
        assert_eq!(ignored, [13, 19], "{:?}", out.ignored);
    }

    #[test]
    fn global_garp_defaults_apply_unless_the_instance_sets_its_own() {
        let text = "global_defs {\n vrrp_garp_master_repeat 3\n vrrp_garp_master_refresh 60\n}\n\
                    vrrp_instance A {\n interface eth0\n virtual_router_id 1\n garp_master_refresh 30\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";
        let out = import_keepalived(text, Path::new("k.conf")).unwrap();
        let c = crate::parse(Path::new("i.toml"), &format!("{BASE}{}", out.toml)).unwrap();
        assert_eq!((c.vrrp[0].garp_master_repeat, c.vrrp[0].garp_master_refresh), (3, 30));
    }

    #[test]
    fn toml_strings_are_escaped() {
        // Quoting is toml_out's (toml_edit's) job now; this checks it on keepalived's words.
        let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n notify \"/bin/n \\\\x\"\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";
        let out = import_keepalived(text, Path::new("k.conf")).unwrap();
        let c = crate::parse(Path::new("i.toml"), &format!("{BASE}{}", out.toml)).unwrap();
        assert_eq!(c.vrrp[0].notify.as_deref(), Some("/bin/n \\\\x"));
    }

    #[test]
    fn split_path_finds_instance_and_field() {
        assert_eq!(split_path("vrrp[2].track_script[0].weight"), (2, "track_script"));
        assert_eq!(split_path("vrrp[0].authentication.auth_pass"), (0, "authentication"));
        assert_eq!(split_path("vrrp[1].priority"), (1, "priority"));
    }
}

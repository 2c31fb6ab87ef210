//! `config/rwsplit.example.toml` parses and validates as it is, its commented-out `[[vrrp]]`
//! example does too once uncommented, and it mentions every field of the config schema (so a
//! field added to `config/src/schema/*.rs` without a word in the sample fails here).

use std::path::{Path, PathBuf};

fn example_path() -> PathBuf {
    rwsplit_tests::workspace_dir().join("config/rwsplit.example.toml")
}

fn example() -> String {
    std::fs::read_to_string(example_path()).expect("config/rwsplit.example.toml")
}

#[test]
fn example_config_loads_without_errors() {
    let config = match rwsplit_config::load(&example_path()) {
        Ok(c) => c,
        Err(e) => panic!("config/rwsplit.example.toml does not load:\n{e}"),
    };
    assert_eq!(config.servers.len(), 3);
    assert_eq!(config.users.len(), 2);
    assert!(config.vrrp.is_empty(), "the sample must not start VRRP when copied as it is");
    // The sample states the defaults: a config with only the required keys is the same.
    let minimal = r#"
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
    let defaults = rwsplit_config::parse(Path::new("minimal.toml"), minimal).unwrap();
    let shown = |c: &rwsplit_config::Config| format!("{:?}\n{:?}\n{:?}\n{:?}", c.proxy, c.routing, c.admin, c.monitor);
    let mut sample = config.clone();
    sample.proxy.listen = defaults.proxy.listen.clone();
    assert_eq!(shown(&sample), shown(&defaults), "the sample's values differ from the schema's defaults");
    let (b, d) = (&config.backend, &defaults.backend);
    assert_eq!(
        (
            b.connect_timeout_ms,
            b.response_timeout_ms,
            b.max_idle_per_server,
            b.max_connections_per_server,
            b.idle_timeout_ms
        ),
        (
            d.connect_timeout_ms,
            d.response_timeout_ms,
            d.max_idle_per_server,
            d.max_connections_per_server,
            d.idle_timeout_ms
        ),
        "[backend] defaults"
    );
    assert_eq!(config.servers[0].weight, defaults.servers[0].weight);
}

/// The lines between the vrrp markers, with their leading "# " removed.
fn uncommented_vrrp(text: &str) -> String {
    let begin = text.find("# --- vrrp example begin ---").expect("vrrp begin marker");
    let end = text.find("# --- vrrp example end ---").expect("vrrp end marker");
    text[begin..end]
        .lines()
        .skip(1)
        .map(|l| l.strip_prefix("# ").unwrap_or(l.strip_prefix('#').unwrap_or(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn vrrp_example_is_valid_once_uncommented() {
    let text = example();
    let with_vrrp = format!("{text}\n{}\n", uncommented_vrrp(&text));
    let config = match rwsplit_config::parse(Path::new("rwsplit.example.toml+vrrp"), &with_vrrp) {
        Ok(c) => c,
        Err(e) => panic!("the [[vrrp]] example does not validate once uncommented:\n{e}"),
    };
    assert_eq!(config.vrrp.len(), 1);
    assert_eq!(config.vrrp[0].virtual_addresses().len(), 2);
    assert_eq!(config.vrrp[0].track_script.len(), 1);
}

/// `(struct, field, file)` for every field of every deserialized struct in the schema sources.
fn schema_fields() -> Vec<(String, String, String)> {
    let dir = rwsplit_tests::workspace_dir().join("config/src/schema");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files {
        let src = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let mut deserialized = false;
        let mut current: Option<String> = None;
        for line in src.lines() {
            let t = line.trim();
            if t.starts_with("#[derive(") {
                deserialized = t.contains("Deserialize");
            } else if let Some(rest) = t.strip_prefix("pub struct ") {
                current = deserialized.then(|| rest.split([' ', '{', '(']).next().unwrap_or("").to_string());
            } else if t == "}" || t.starts_with("impl") || t.starts_with("pub enum") {
                current = None;
            } else if let (Some(s), Some(rest)) = (&current, t.strip_prefix("pub ")) {
                if let Some((field, _)) = rest.split_once(':') {
                    if field.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()) {
                        out.push((s.clone(), field.to_string(), name.clone()));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn example_mentions_every_schema_field() {
    let text = example();
    let fields = schema_fields();
    assert!(fields.len() > 40, "the schema scan found too few fields: {fields:?}");
    let mentioned = |field: &str| {
        text.contains(&format!("{field} ="))
            || text.contains(&format!("[{field}]"))
            || text.contains(&format!("[[{field}]]"))
            || text.contains(&format!(".{field}]]"))
    };
    let missing: Vec<String> = fields
        .iter()
        .filter(|(_, f, _)| !mentioned(f))
        .map(|(s, f, file)| format!("{s}.{f} (config/src/schema/{file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "config/rwsplit.example.toml does not describe these fields; add each with its default and meaning:\n{}",
        missing.join("\n")
    );
}

#[test]
fn docker_lab_configs_load() {
    for n in [1, 2] {
        let path = rwsplit_tests::workspace_dir().join(format!("docker/rwsplit/rwsplit{n}.toml"));
        match rwsplit_config::load(&path) {
            Ok(c) => {
                assert_eq!((c.servers.len(), c.monitor.heartbeat_id), (3, n));
                // One VRRP router shared by both proxies, rwsplit1 preferred
                // (scripts/docker-lab.sh checks that it takes the address back).
                let vrrp: Vec<_> = c.vrrp.iter().map(|v| (v.virtual_router_id, v.priority)).collect();
                assert_eq!(vrrp, [(66, if n == 1 { 150 } else { 100 })]);
            }
            Err(e) => panic!("{} does not load:\n{e}", path.display()),
        }
    }
}

#[test]
fn harness_base_config_loads() {
    let text = rwsplit_tests::proxy_config_for_ports(
        [3307, 3308, 3309],
        8066,
        9066,
        "[routing]\nconsistency = \"causal\"\n[monitor]\nfall = 5",
    )
    .unwrap();
    let c = match rwsplit_config::parse(Path::new("harness.toml"), &text) {
        Ok(c) => c,
        Err(e) => panic!("the harness's proxy config does not load:\n{e}\n{text}"),
    };
    assert_eq!(c.routing.consistency, rwsplit_config::Consistency::Causal);
    assert_eq!((c.monitor.fall, c.monitor.interval_ms, c.monitor.user.as_str()), (5, 250, "monitor"));
    assert_eq!(c.servers[2].address, "127.0.0.1:3309");
}

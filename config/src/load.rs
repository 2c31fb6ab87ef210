//! Reading a config file: TOML syntax and type errors come from serde with their span, semantic
//! errors from `Config::validate` with their dotted path; both end up as [`ConfigError`]s with
//! file and line.

use crate::locate::{line_at, line_of};
use crate::{Config, ConfigError, ConfigErrors};
use std::path::Path;

/// Reads, parses and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            path: String::new(),
            reason: format!("cannot read: {e}"),
        }])
    })?;
    parse(path, &text)
}

/// Parses and validates config `text`; `file` is only used to label errors.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_at(text, s.start));
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line,
            path: String::new(),
            reason: e.message().trim().to_string(),
        }])
    })?;
    let problems = config.validate();
    if problems.is_empty() {
        return Ok(config);
    }
    Err(ConfigErrors(
        problems
            .into_iter()
            .map(|p| ConfigError {
                file: file.to_path_buf(),
                line: line_of(text, &p.path),
                path: p.path,
                reason: p.reason,
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[proxy]
listen = "127.0.0.1:8066"

[[users]]
name = "app"
password = "app"

[backend]
user = "app"
password = "app"

[[servers]]
name = "master"
address = "127.0.0.1:3307"

[[servers]]
name = "replica1"
address = "127.0.0.1:3308"

[monitor]
user = "monitor"
password = "monitor"
"#;

    #[test]
    fn good_config_parses_with_defaults() {
        let c = parse(Path::new("rwsplit.toml"), GOOD).unwrap();
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[1].weight, 1);
        assert_eq!(c.monitor.interval_ms, 1000);
        assert_eq!(c.admin.listen, "127.0.0.1:9066");
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let text = GOOD.replace("listen = \"127.0.0.1:8066\"", "listen = \"127.0.0.1:8066\"\nlisten_port = 1");
        let err = parse(Path::new("/etc/rwsplit.toml"), &text).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("/etc/rwsplit.toml:4: "), "{shown}");
        assert!(shown.contains("listen_port"), "{shown}");
    }

    #[test]
    fn syntax_error_names_line() {
        let err = parse(Path::new("x.toml"), "[proxy]\nlisten = \n").unwrap_err();
        assert_eq!(err.0[0].line, Some(2), "{err}");
    }

    #[test]
    fn every_semantic_problem_is_reported_with_its_line() {
        let text = GOOD.replace("\"127.0.0.1:3308\"", "\"nowhere\"").replace("interval_ms", "x");
        let text = text.replace("[monitor]\n", "[monitor]\ninterval_ms = 1\n");
        let err = parse(Path::new("c.toml"), &text).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        let addr = err.0.iter().find(|e| e.path == "servers[1].address").unwrap();
        assert_eq!(addr.line, Some(19));
        let iv = err.0.iter().find(|e| e.path == "monitor.interval_ms").unwrap();
        assert_eq!(iv.line, Some(22));
        assert!(iv.reason.contains("out of range"));
    }

    #[test]
    fn passwords_never_show_in_errors_or_debug() {
        let text = GOOD.replace(
            "password = \"app\"\n\n[backend]",
            "password = \"s3cret-pw\"\npassword_hash = \"*00\"\n\n[backend]",
        );
        let err = parse(Path::new("c.toml"), &text).unwrap_err();
        assert!(!err.to_string().contains("s3cret-pw"));
        let c = parse(Path::new("c.toml"), GOOD).unwrap();
        assert!(!format!("{c:?}").contains("\"app\"") || !format!("{c:?}").contains("password: Some(\"app\")"));
        assert!(format!("{:?}", c.users[0]).contains("<redacted>"));
    }

    #[test]
    fn backend_tls_needs_a_ca_and_whole_client_identity() {
        let c = parse(Path::new("c.toml"), GOOD).unwrap();
        assert!(!c.backend.tls && c.servers.iter().all(|s| !c.backend.tls_for(s)));
        let text = GOOD.replace("[backend]\n", "[backend]\ntls = true\ntls_cert = \"/etc/passwd\"\n");
        let err = parse(Path::new("c.toml"), &text).unwrap_err();
        let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["backend.tls_key", "backend.tls_ca"], "{err}");
        // A server's own tls needs the CA too; a missing file is named.
        let text = GOOD.replace("address = \"127.0.0.1:3308\"", "address = \"127.0.0.1:3308\"\ntls = true");
        let err = parse(Path::new("c.toml"), &text).unwrap_err();
        assert_eq!(err.0[0].path, "servers[1].tls", "{err}");
        let text = text.replace("[backend]\n", "[backend]\ntls_ca = \"/nonexistent/ca.pem\"\n");
        let err = parse(Path::new("c.toml"), &text).unwrap_err();
        assert!(err.0[0].path == "backend.tls_ca" && err.0[0].reason.contains("cannot read"), "{err}");
        // The override both ways.
        let text = GOOD
            .replace("[backend]\n", "[backend]\ntls = true\ntls_ca = \"/etc/passwd\"\n")
            .replace("address = \"127.0.0.1:3308\"", "address = \"127.0.0.1:3308\"\ntls = false");
        let c = parse(Path::new("c.toml"), &text).unwrap();
        assert_eq!(c.servers.iter().map(|s| c.backend.tls_for(s)).collect::<Vec<_>>(), [true, false]);
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = load(Path::new("/nonexistent/rwsplit.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/rwsplit.toml: cannot read"), "{err}");
    }
}

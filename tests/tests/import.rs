//! The importers through the real binary, no servers needed: `rwsplit import-amoeba` on the
//! Amoeba tutorial's files writes a whole rwsplit.toml that `rwsplit --config … check` accepts,
//! with every ignored part and warning on stderr as `FILE:LINE: ignored|warning: …`; a broken
//! file gives `FILE:LINE:` errors and exit code 2; `rwsplit import-keepalived`'s `[[vrrp]]`
//! sections, appended to a config, pass `check` too.

use rwsplit_tests::{rwsplit_bin, workspace_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures(kind: &str) -> PathBuf {
    workspace_dir().join("config/tests/fixtures").join(kind)
}

/// Runs rwsplit with `args` in `dir`.
fn rwsplit(dir: &Path, args: &[&str]) -> Output {
    let bin = rwsplit_bin().unwrap_or_else(|e| panic!("{e:#}"));
    Command::new(&bin).args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `rwsplit --config FILE check` on `toml`; panics with its output unless it passes.
fn check(toml: &str) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("rwsplit.toml");
    std::fs::write(&file, toml).expect("write the config");
    let out = rwsplit(dir.path(), &["--config", &file.display().to_string(), "check"]);
    assert!(
        out.status.success(),
        "rwsplit check refused the import:\n{}{}\n{toml}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn import_amoeba_writes_a_config_that_passes_check() {
    let dir = fixtures("amoeba");
    let out = rwsplit(&dir, &["import-amoeba", "amoeba.xml", "dbServers.xml"]);
    let (toml, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "import-amoeba failed:\n{stderr}");
    assert!(toml.starts_with("# Imported from amoeba.xml and dbServers.xml by rwsplit import-amoeba."), "{toml}");

    let shown = check(&toml);
    assert!(shown.contains("ok (3 servers, 1 users)"), "{shown}");
    let config = rwsplit_config::parse(Path::new("imported.toml"), &toml).expect("the library agrees");
    assert_eq!(config.proxy.listen, "0.0.0.0:8066");
    assert_eq!(config.users[0].name, "amoeba");
    let servers: Vec<(&str, &str, u32)> =
        config.servers.iter().map(|s| (s.name.as_str(), s.address.as_str(), s.weight)).collect();
    assert_eq!(
        servers,
        [("master", "192.168.80.10:3306", 1), ("slave1", "192.168.80.11:3306", 1), ("slave2", "192.168.80.12:3307", 1)]
    );
    assert_eq!((config.backend.user.as_str(), config.backend.password.expose()), ("test", "123.com"));

    // stderr: one `FILE:LINE: ignored|warning: …` per line, as import-keepalived prints them.
    let mut ignored = 0;
    let mut warnings = Vec::new();
    for line in stderr.lines() {
        let (place, rest) = line.split_once(": ").unwrap_or_else(|| panic!("not FILE:LINE: …: {line}"));
        let (file, number) = place.rsplit_once(':').unwrap_or_else(|| panic!("no line number: {line}"));
        assert!(file == "amoeba.xml" || file == "dbServers.xml", "{line}");
        assert!(number.parse::<usize>().is_ok_and(|n| n > 0), "{line}");
        if rest.starts_with("ignored: ") {
            ignored += 1;
        } else if rest.starts_with("warning: ") {
            warnings.push(line);
        } else {
            panic!("neither ignored nor warning: {line}");
        }
    }
    assert_eq!(ignored, 20, "{stderr}");
    assert!(stderr.contains("amoeba.xml:79: ignored: queryRouter ruleLoader"), "{stderr}");
    assert!(stderr.contains("amoeba.xml:34: ignored: service \"Amoeba for Mysql\": authenticator filter"), "{stderr}");
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].starts_with("dbServers.xml:4: warning: [monitor] user and password are \"CHANGE_ME\""),
        "{stderr}"
    );
}

#[test]
fn import_amoeba_errors_name_file_and_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let amoeba = std::fs::read_to_string(fixtures("amoeba").join("amoeba.xml")).expect("amoeba.xml");
    let servers = std::fs::read_to_string(fixtures("amoeba").join("dbServers.xml")).expect("dbServers.xml");
    // slave2 in the read pool becomes a server that does not exist (poolNames is on line 65).
    let servers = servers.replace("slave1,slave2", "slave1,slave3");
    std::fs::write(dir.path().join("amoeba.xml"), amoeba).expect("write");
    std::fs::write(dir.path().join("db.xml"), servers).expect("write");
    let out = rwsplit(dir.path(), &["import-amoeba", "amoeba.xml", "db.xml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "no TOML on failure");
    assert!(stderr.contains("db.xml:65: dbServer slaves poolNames slave3: no dbServer named \"slave3\""), "{stderr}");
    assert!(stderr.contains("rwsplit: 1 error(s) in amoeba.xml and db.xml"), "{stderr}");
}

#[test]
fn import_keepalived_sections_pass_check_in_a_config() {
    let out = rwsplit(&fixtures("keepalived"), &["import-keepalived", "pair-master.conf"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let base = "[[users]]\nname = \"app\"\npassword = \"app\"\n\n[backend]\nuser = \"app\"\npassword = \"app\"\n\n\
                [[servers]]\nname = \"master\"\naddress = \"127.0.0.1:3307\"\n\n[monitor]\nuser = \"m\"\npassword = \"m\"\n\n";
    check(&format!("{base}{}", text(&out.stdout)));
    assert!(text(&out.stderr).contains("pair-master.conf:3: ignored: global_defs router_id"), "{}", text(&out.stderr));
}

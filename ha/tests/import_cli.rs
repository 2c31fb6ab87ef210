//! `rwsplit import-keepalived FILE` as an operator runs it (the real binary: `RWSPLIT_BIN`,
//! else `target/debug/rwsplit`; `make test` builds it): the `[[vrrp]]` TOML on stdout, which
//! `rwsplit check` accepts once pasted under a proxy config; ignored parts and warnings on
//! stderr as `FILE:LINE: …`; a broken file gives `FILE:LINE: …` errors and exit status 2.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test (see `common::rwsplit_bin`); a missing one fails the test.
fn rwsplit_bin() -> PathBuf {
    common::rwsplit_bin().unwrap_or_else(|e| panic!("{e}"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tests/fixtures/keepalived").join(name)
}

fn import(file: &Path) -> Output {
    Command::new(rwsplit_bin()).arg("import-keepalived").arg(file).output().unwrap()
}

const PROXY: &str = "[proxy]\nlisten = \"0.0.0.0:8066\"\n[[users]]\nname = \"app\"\npassword = \"app\"\n\
                     [backend]\nuser = \"app\"\npassword = \"app\"\n[[servers]]\nname = \"db\"\naddress = \"127.0.0.1:3306\"\n\
                     [monitor]\nuser = \"monitor\"\npassword = \"monitor\"\n\n";

#[test]
fn imported_instances_pass_rwsplit_check() {
    let dir = std::env::temp_dir().join(format!("rwsplit-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "pair-master.conf",
        "pair-backup.conf",
        "v3-fast.conf",
        "nopreempt-backup.conf",
        "track-script-notify.conf",
        "full-sample.conf",
    ] {
        let out = import(&fixture(name));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("[[vrrp]]"), "{name}: {stdout}");
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, format!("{PROXY}{stdout}")).unwrap();
        let check = Command::new(rwsplit_bin()).arg("--config").arg(&config).arg("check").output().unwrap();
        assert!(
            check.status.success(),
            "{name}: rwsplit check refused the import:\n{stdout}\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_is_not_vrrp_is_reported_with_its_line() {
    let file = fixture("full-sample.conf");
    let out = import(&file);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("{}:", file.display());
    assert!(stderr.lines().any(|l| l.starts_with(&prefix) && l.contains("ignored: virtual_server")), "{stderr}");
    assert!(stderr.lines().any(|l| l.contains("ignored: global_defs smtp_server")), "{stderr}");
    assert!(
        !stdout.contains("virtual_server") && !stdout.contains("smtp"),
        "ignored parts must not reach the TOML: {stdout}"
    );
}

#[test]
fn a_broken_file_fails_with_file_and_line() {
    let file = fixture("broken-undefined-track-script.conf");
    let out = import(&file);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "no TOML for a broken file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or("");
    let rest = first.strip_prefix(&format!("{}:", file.display())).unwrap_or_else(|| panic!("{stderr}"));
    assert!(rest.split(':').next().is_some_and(|l| l.parse::<usize>().is_ok()), "no line number: {stderr}");
    assert!(stderr.contains("not defined"), "{stderr}");

    let missing = import(Path::new("/nonexistent/keepalived.conf"));
    assert!(!missing.status.success());
}

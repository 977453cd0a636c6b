//! The command line: `check-config`, and config errors with file, line and key.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn floe(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_floe"));
    cmd.args(args);
    let out = run_bounded(&mut cmd, Duration::from_secs(20));
    (out.code, out.stdout, out.stderr)
}

/// The shipped example configuration is valid.
#[test]
fn example_config_checks_clean() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/mounts.example.toml");
    let (code, stdout, stderr) = floe(&["check-config", example]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("OK"));
}

/// Every problem is reported at once with file, line and key, exit code 64,
/// for `check-config` and for `--config`.
#[test]
fn config_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[limits]\nqueue_sise = 1\nclients = \"many\"\n\n[[mount]]\nname = \"/a/../b\"\nmetaint = 0\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let (code, _, stderr) = floe(&["check-config", file]);
    assert_eq!(code, Some(64), "{stderr}");
    for (line, key) in [(5, "limits.queue_sise"), (6, "limits.clients"), (9, "mount[1].name"), (10, "mount[1].metaint")]
    {
        let needle = format!("{file}:{line}: {key}:");
        assert!(stderr.contains(&needle), "missing {needle:?} in:\n{stderr}");
    }
    let (code, _, stderr) = floe(&["--config", file]);
    assert_eq!(code, Some(64), "{stderr}");
    let (code, _, stderr) = floe(&["--config", "/nonexistent/floe.toml"]);
    assert_eq!(code, Some(64));
    assert!(stderr.contains("/nonexistent/floe.toml"), "{stderr}");
}

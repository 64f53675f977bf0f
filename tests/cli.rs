//! The `relay` binary's help and version, run as a process.

use std::process::Command;

fn relay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relay"))
}

#[test]
fn version_prints_the_package_version() {
    let output = relay().arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("relay {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_describes_relay() {
    let output = relay().arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Usage: relay"), "{text}");
    assert!(text.contains("no loss and no duplicates"), "{text}");
}

#[test]
fn unknown_flag_is_a_usage_error_with_exit_code_2() {
    let output = relay().arg("--no-such-flag").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("--no-such-flag"));
}

#[test]
fn the_example_config_starts_a_broker() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml.example");
    let mut child = relay()
        .args(["broker", "--config", example, "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.starts_with("relay broker listening on 127.0.0.1:"), "{line:?}");
}

#[test]
fn broker_help_shows_an_example() {
    let output = relay().args(["broker", "--help"]).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Example: relay broker"), "{text}");
}

//! One address: every client command given `--config` finds the broker at
//! the file's `[client] brokers`, else at its `[broker] listen` (0.0.0.0
//! meaning this host), and `--broker` still wins. A listen address another
//! process holds is a usage error (exit 2) that names the address.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use support::{relay_binary, run_with_timeout, BrokerProcess};

/// `relay args...` in `dir`, with no `RELAY_BROKER` to fall back on.
fn relay(dir: &Path, args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(relay_binary())
            .args(args)
            .current_dir(dir)
            .env_remove("RELAY_BROKER"),
        Duration::from_secs(60),
    )
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_client_command_finds_the_broker_at_the_configs_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let port = broker.address.rsplit(':').next().unwrap().to_owned();
    std::fs::write(
        dir.path().join("relay.toml"),
        format!("[broker]\nlisten = \"0.0.0.0:{port}\"\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("lines"), "one\ntwo\n").unwrap();
    let commands: [&[&str]; 6] = [
        &["produce", "--config", "relay.toml", "--topic", "t", "lines"],
        &[
            "consume",
            "--config",
            "relay.toml",
            "--topic",
            "t",
            "--group",
            "g",
            "--max",
            "2",
        ],
        &["topics", "list", "--config", "relay.toml"],
        &["groups", "list", "--config", "relay.toml"],
        &["lag", "--config", "relay.toml", "--group", "g"],
        &["topics", "--config", "relay.toml", "describe", "t"],
    ];
    for args in commands {
        let output = relay(dir.path(), args);
        assert!(output.status.success(), "relay {args:?}:\n{}", said(&output));
    }
    let consumed = relay(dir.path(), &["consume", "--config", "relay.toml", "--topic", "t"]);
    assert_eq!(String::from_utf8_lossy(&consumed.stdout), "one\ntwo\n");
    let status = relay(dir.path(), &["status", "--config", "relay.toml"]);
    assert_ne!(status.status.code(), Some(3), "{}", said(&status));
    assert!(
        said(&status).contains(&format!("127.0.0.1:{port}")),
        "{}",
        said(&status)
    );
    // [client] brokers comes first; --broker before both.
    std::fs::write(
        dir.path().join("relay.toml"),
        format!("[client]\nbrokers = \"127.0.0.1:1\"\n\n[broker]\nlisten = \"0.0.0.0:{port}\"\n"),
    )
    .unwrap();
    let client_section = relay(dir.path(), &["topics", "list", "--config", "relay.toml"]);
    assert_eq!(client_section.status.code(), Some(3), "{}", said(&client_section));
    assert!(
        said(&client_section).contains("127.0.0.1:1"),
        "{}",
        said(&client_section)
    );
    let flag = relay(
        dir.path(),
        &["topics", "list", "--config", "relay.toml", "--broker", &broker.address],
    );
    assert!(flag.status.success(), "{}", said(&flag));
    let unreadable = relay(dir.path(), &["lag", "--config", "no-such.toml"]);
    assert_eq!(unreadable.status.code(), Some(2), "{}", said(&unreadable));
    assert!(said(&unreadable).contains("no-such.toml"), "{}", said(&unreadable));
}

#[test]
fn a_listen_address_in_use_is_a_usage_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    for args in [
        vec!["broker", "--listen", &address, "--data-dir", "data"],
        vec!["up", "--listen", &address],
    ] {
        let output = relay(dir.path(), &args);
        let said = said(&output);
        assert_eq!(output.status.code(), Some(2), "relay {args:?}:\n{said}");
        assert!(said.contains(&format!("cannot listen on {address}")), "{said}");
        assert!(said.contains("another process"), "{said}");
    }
}

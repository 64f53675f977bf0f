//! The mistakes operators make get a clear stop: an unknown group is not a
//! healthy "0 lag" or a "Dead" group that a monitoring check would pass.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{relay_binary, run_with_timeout, BrokerProcess};

fn relay(broker: &BrokerProcess, args: &[&str]) -> (Option<i32>, String) {
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(args)
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(60),
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout),
    )
}

#[test]
fn an_unknown_group_is_exit_1_with_no_such_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let (code, printed) = relay(&broker, &["lag", "--group", "typo", "--max", "10"]);
    assert_eq!(code, Some(1), "{printed}");
    assert!(printed.contains("no such group \"typo\""), "{printed}");
    let (code, printed) = relay(&broker, &["groups", "describe", "nosuch"]);
    assert_eq!(code, Some(1), "{printed}");
    assert!(printed.contains("no such group \"nosuch\""), "{printed}");
}

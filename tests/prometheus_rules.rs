//! The alert rules as a file (`deploy/prometheus/relay-rules.yml`) checked by
//! Debian's `promtool check rules`, and their unit tests
//! (`deploy/prometheus/relay-rules.test.yml`: every alert fires when it
//! should and stays quiet when it should) run by `promtool test rules`.
//! `scripts/test.sh` installs promtool (Debian's prometheus) when root.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{external, run_with_timeout};

fn promtool(args: &[&str]) -> Option<String> {
    let promtool = external("RELAY_TEST_PROMTOOL", "promtool (Debian's prometheus package)")?;
    let output = run_with_timeout(
        Command::new(promtool)
            .args(args)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus")),
        Duration::from_secs(120),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    Some(text)
}

#[test]
fn the_alert_rules_are_valid() {
    let Some(text) = promtool(&["check", "rules", "relay-rules.yml"]) else {
        return;
    };
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn every_alert_fires_when_it_should_and_only_then() {
    let Some(text) = promtool(&["test", "rules", "relay-rules.test.yml"]) else {
        return;
    };
    assert!(text.contains("SUCCESS"), "{text}");
    // Every alert of the file has a test that expects it to fire.
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/relay-rules.yml"
    ))
    .unwrap();
    let tests = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/relay-rules.test.yml"
    ))
    .unwrap();
    for line in rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        assert!(tests.contains(&format!("alertname: {line}")), "no unit test for {line}");
    }
}

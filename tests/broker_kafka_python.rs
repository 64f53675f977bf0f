//! kafka-python against `relay broker`: produce (lz4), consume with a group,
//! commit, and offsets_for_times.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{python, python_script, run_with_timeout, BrokerProcess};

#[test]
fn kafka_python_produces_consumes_and_finds_offsets_by_time() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let output = run_with_timeout(
        Command::new(&python)
            .arg(python_script("kafka_python_clients.py"))
            .args([&broker.address, "kp", "kp-group"]),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kafka-python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected_values = format!("[{}]", (0..300).map(|n| n.to_string()).collect::<Vec<_>>().join(", "));
    assert!(stdout.contains(&format!("\"values\": {expected_values}")), "{stdout}");
    assert!(stdout.contains("\"committed\": [150, 150]"), "{stdout}");
    // Message n: partition n % 2, offset n / 2, timestamp T0 + n s.
    let t0 = 1_767_225_600_000i64;
    let lookups = [
        ("t0", format!("[[0, {t0}], [0, {}]]", t0 + 1000)),
        ("t101", format!("[[51, {}], [50, {}]]", t0 + 102_000, t0 + 101_000)),
        ("t150_5", format!("[[76, {}], [75, {}]]", t0 + 152_000, t0 + 151_000)),
        ("after", "[null, null]".to_owned()),
    ];
    for (label, expected) in lookups {
        assert!(
            stdout.contains(&format!("\"{label}\": {expected}")),
            "{label}: expected {expected} in {stdout}"
        );
    }
}

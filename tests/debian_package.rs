//! The Debian package built by cargo-deb (`[package.metadata.deb]`;
//! `scripts/test.sh` builds it from the test binary and names it in
//! RELAY_TEST_DEB): its control fields, every file with its mode, the
//! conffile, the maintainer scripts (shell syntax, the relay system user and
//! /var/lib/relay, nothing deleted on purge), the systemd units' commands,
//! user and hardening, and that the packaged binary runs. It is unpacked
//! into a temporary directory, never installed on this machine.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{external, run_with_timeout};

fn run(command: &mut Command) -> String {
    let output = run_with_timeout(command, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_package_holds_the_binary_units_config_and_scripts() {
    let Some(deb) = external("RELAY_TEST_DEB", "the .deb built by scripts/test.sh with cargo-deb") else {
        return;
    };
    let field = |name: &str| {
        run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name))
            .trim()
            .to_owned()
    };
    assert_eq!(field("Package"), "relay");
    assert!(field("Depends").contains("adduser"), "{}", field("Depends"));
    assert!(field("Description").contains("no loss"), "{}", field("Description"));

    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for (path, mode) in [
        ("./usr/bin/relay", "-rwxr-xr-x"),
        ("./etc/relay/config.toml", "-rw-r-----"),
        ("./lib/systemd/system/relay-broker.service", "-rw-r--r--"),
        ("./lib/systemd/system/relay-send.service", "-rw-r--r--"),
        ("./lib/systemd/system/relay-load.service", "-rw-r--r--"),
        ("./lib/systemd/system/relay.service", "-rw-r--r--"),
        ("./usr/share/doc/relay/config.toml.example", "-rw-r--r--"),
        ("./usr/share/doc/relay/operations.md", "-rw-r--r--"),
        ("./usr/share/relay/prometheus/relay-rules.yml", "-rw-r--r--"),
        ("./usr/share/relay/grafana/relay.json", "-rw-r--r--"),
    ] {
        let line = listing
            .lines()
            .find(|l| l.ends_with(path))
            .unwrap_or_else(|| panic!("{path} missing:\n{listing}"));
        assert!(line.starts_with(mode), "{path}: {line}");
    }

    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let read = |name: &str| std::fs::read_to_string(control.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(read("conffiles").trim(), "/etc/relay/config.toml");
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(control.join(script)));
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(control.join(script)).unwrap().permissions());
        assert_eq!(mode & 0o111, 0o111, "{script} is executable");
    }
    let postinst = read("postinst");
    assert!(
        postinst.contains("adduser --system --group") && postinst.contains("/var/lib/relay"),
        "{postinst}"
    );
    assert!(!read("postrm").contains("rm -"), "purge must not delete /var/lib/relay");

    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    for unit in ["relay-broker", "relay-send", "relay-load", "relay"] {
        let text = std::fs::read_to_string(root.join(format!("lib/systemd/system/{unit}.service"))).unwrap();
        let role = if unit == "relay" {
            "up"
        } else {
            unit.trim_start_matches("relay-")
        };
        for needed in [
            format!("ExecStart=/usr/bin/relay {role} --config /etc/relay/config.toml"),
            "User=relay".to_owned(),
            "Restart=always".to_owned(),
            "NoNewPrivileges=yes".to_owned(),
            "ProtectSystem=strict".to_owned(),
            "ReadWritePaths=/var/lib/relay".to_owned(),
            "EnvironmentFile=-/etc/relay/relay.env".to_owned(),
        ] {
            assert!(text.contains(&needed), "{unit}.service lacks {needed}:\n{text}");
        }
    }
    let version = run(Command::new(root.join("usr/bin/relay")).arg("--version"));
    assert!(version.starts_with("relay "), "{version}");
    let config = std::fs::read_to_string(root.join("etc/relay/config.toml")).unwrap();
    assert!(
        config.contains("/var/lib/relay/data") && !config.contains("\"./"),
        "absolute paths only:\n{config}"
    );
    assert!(Path::new(&deb).exists());
}

//! docs/operations.md's "A loader host" walkthrough, run as written: its
//! configuration (host names, paths and credentials replaced) starts a
//! broker on TLS + SASL with grants; `ops` creates the topic, `sender`
//! produces, and `relay load` logs in as `loader` and writes into
//! PostgreSQL as a role that has exactly the walkthrough's GRANTs. Without
//! the schema grant the loader stops with PostgreSQL's reason; with it, every
//! record loads and Relay's tables belong to the loader's role.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::pki::{hash_password, pki};
use support::postgres::Postgres;
use support::{relay_binary, run_with_timeout, RelayProcess};

const RECORDS: usize = 500;

/// The fenced block of docs/operations.md whose first line is `first_line`.
fn block_starting(first_line: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md")).unwrap();
    doc.split("```")
        .skip(1)
        .step_by(2)
        .map(|block| block.split_once('\n').map_or("", |(_, body)| body))
        .find(|body| body.starts_with(first_line))
        .unwrap_or_else(|| panic!("docs/operations.md has no block starting {first_line:?}"))
        .to_owned()
}

/// `text` with `from` replaced, which must be there.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the walkthrough no longer says {from:?}");
    text.replace(from, to)
}

/// psql as the cluster's superuser on database `database`.
fn psql(postgres: &Postgres, database: &str, sql: &str) -> String {
    let bin = PathBuf::from(std::env::var_os("RELAY_PG_BIN").unwrap());
    let output = Command::new(bin.join("psql"))
        .args(["-h", "127.0.0.1", "-p", &postgres.port.to_string(), "-U", "postgres"])
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The walkthrough's configuration for this test's broker, PKI and warehouse.
fn loader_host_config(dir: &Path, broker_port: u16, postgres_port: u16, tls: &support::pki::Pki) -> String {
    let mut config = block_starting("# /etc/relay/config.toml on the loader host");
    for (from, to) in [
        ("relay.example.net:9093".to_owned(), format!("localhost:{broker_port}")),
        ("0.0.0.0:9093".to_owned(), format!("127.0.0.1:{broker_port}")),
        ("/var/lib/relay".to_owned(), dir.display().to_string()),
        ("/etc/relay/server.pem".to_owned(), tls.cert.display().to_string()),
        ("/etc/relay/server.key".to_owned(), tls.key.display().to_string()),
        ("/etc/relay/ca.pem".to_owned(), tls.ca.display().to_string()),
        (
            "postgres://relay_loader:<password>@db.example.net:5432/analytics".to_owned(),
            format!("postgres://relay_loader@127.0.0.1:{postgres_port}/analytics"),
        ),
    ] {
        config = replaced(&config, &from, &to);
    }
    for (user, placeholder) in [
        ("sender", "<sender's credential>"),
        ("loader", "<loader's credential>"),
        ("ops", "<ops' credential>"),
    ] {
        let credential = hash_password(&format!("{user}-password"));
        config = replaced(&config, &format!("SCRAM-SHA-256$8192:{placeholder}"), &credential);
    }
    config
}

/// A `relay` command logged in as `user` over SASL_SSL.
fn as_user(user: &str, broker: &str, ca: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(relay_binary());
    command
        .args(args)
        .args([
            "--broker",
            broker,
            "--security-protocol",
            "SASL_SSL",
            "--sasl-username",
            user,
        ])
        .arg("--tls-ca")
        .arg(ca)
        .env("RELAY_SASL_PASSWORD", format!("{user}-password"));
    command
}

fn load_until_end(config: &Path) -> Output {
    run_with_timeout(
        Command::new(relay_binary())
            .args(["load", "--config"])
            .arg(config)
            .arg("--until-end")
            .env("RELAY_SASL_PASSWORD", "loader-password"),
        Duration::from_secs(120),
    )
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The walkthrough's broker, started from its configuration.
fn start_broker(dir: &Path, config: &Path) -> RelayProcess {
    let broker = RelayProcess::start(
        vec!["broker".into(), "--config".into(), config.display().to_string()],
        &dir.join("broker.log"),
    );
    let listening = support::wait_until(Duration::from_secs(30), || broker.log().contains("listening on"));
    assert!(listening, "the broker did not start:\n{}", broker.log());
    broker
}

/// Step 5: `ops` creates the topic; then `sender` produces [`RECORDS`] events.
fn topic_with_records(address: &str, ca: &Path) {
    let create = ["topics", "create", "events", "--partitions", "4"];
    let created = run_with_timeout(&mut as_user("ops", address, ca, &create), Duration::from_secs(30));
    assert!(created.status.success(), "ops creates the topic: {}", text(&created));
    let mut produce = as_user("sender", address, ca, &["produce", "--topic", "events", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = produce.stdin.take().unwrap();
    for n in 0..RECORDS {
        writeln!(stdin, "{{\"n\":{n}}}").unwrap();
    }
    drop(stdin);
    let produced = produce.wait_with_output().unwrap();
    assert!(produced.status.success(), "sender produces: {}", text(&produced));
}

/// The walkthrough's grants, split: (the schema's, the others).
fn walkthrough_grants() -> (String, String) {
    let grants = block_starting("-- as the database's owner, once");
    let (schema, others): (Vec<&str>, Vec<&str>) = grants
        .lines()
        .filter(|line| !line.starts_with("--") && !line.trim().is_empty())
        .partition(|line| line.contains("ON SCHEMA"));
    assert_eq!(schema.len(), 1, "{grants}");
    (schema[0].to_owned(), others.join("\n"))
}

/// A table another role made, given only the walkthrough's grant for such
/// tables and `create_table = false`, takes the same records.
fn premade_table_loads(postgres: &Postgres, dir: &Path, config: &str) {
    psql(
        postgres,
        "analytics",
        "CREATE TABLE premade (LIKE events INCLUDING ALL)",
    );
    let grant = block_starting("-- for each table made beforehand");
    psql(postgres, "analytics", &replaced(&grant, "ON events ", "ON premade "));
    // The group starts again from the beginning, into the other table.
    psql(postgres, "analytics", "DELETE FROM relay_offsets");
    let config = replaced(
        config,
        "table = \"events\"",
        "table = \"premade\"\ncreate_table = false",
    );
    let path = dir.join("premade.toml");
    std::fs::write(&path, config).unwrap();
    let loaded = load_until_end(&path);
    assert!(
        loaded.status.success(),
        "a premade table with SELECT, INSERT: {}",
        text(&loaded)
    );
    assert_eq!(
        psql(postgres, "analytics", "SELECT count(*) FROM premade"),
        RECORDS.to_string()
    );
    assert_eq!(
        psql(
            postgres,
            "analytics",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'premade'"
        ),
        "postgres"
    );
}

#[test]
fn the_loader_host_walkthrough_loads_over_sasl_ssl_as_a_role_with_only_its_grants() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tls) = pki(dir.path()) else { return };
    let Some(postgres) = Postgres::start_with(&[("fsync", "off")]) else {
        return;
    };
    let broker_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config_text = loader_host_config(dir.path(), broker_port, postgres.port, &tls);
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &config_text).unwrap();
    let _broker = start_broker(dir.path(), &config);
    topic_with_records(&format!("localhost:{broker_port}"), &tls.ca);

    psql(&postgres, "postgres", "CREATE DATABASE analytics");
    let (schema_grant, other_grants) = walkthrough_grants();
    psql(&postgres, "analytics", &other_grants);
    let refused = load_until_end(&config);
    assert!(
        !refused.status.success() && text(&refused).contains("permission denied for schema public"),
        "without CREATE on the schema the loader stops, saying why: {}",
        text(&refused)
    );

    psql(&postgres, "analytics", &schema_grant);
    let loaded = load_until_end(&config);
    assert!(
        loaded.status.success(),
        "the loader with the walkthrough's grants: {}",
        text(&loaded)
    );
    assert_eq!(
        psql(&postgres, "analytics", "SELECT count(*) FROM events"),
        RECORDS.to_string()
    );
    let owners = "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables \
                  WHERE tablename IN ('events', 'relay_offsets', 'relay_rejects', 'relay_gaps')";
    assert_eq!(psql(&postgres, "analytics", owners), "relay_loader");
    let superuser = "SELECT rolsuper FROM pg_roles WHERE rolname = 'relay_loader'";
    assert_eq!(psql(&postgres, "analytics", superuser), "f");

    premade_table_loads(&postgres, dir.path(), &config_text);
}

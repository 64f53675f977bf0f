//! Authorization end to end, over SASL_SSL with real clients: a broker whose
//! `[[broker.grants]]` give `app` the sender role on `events`, `warehouse` the
//! loader role (`events`, groups `loader-*`), `ops` the admin role, and
//! `nobody` nothing. kcat as `app` produces to `events` and is refused
//! everything else; confluent-kafka as `warehouse` consumes and commits in its
//! group and is refused producing, other groups and other topics;
//! kafka-python as `nobody` sees no topic; the relay commands stop with exit
//! code 2 naming the user and what it may not do, skipping nothing; `relay
//! status` shows each user's access; `relay up` runs each role as its own
//! user. Every refusal is counted in `relay_broker_authorization_denied_total`.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::pki::{hash_password, pki, Pki};
use support::{http_get, kcat, metric_sum, python, python_script, relay_binary, run_with_timeout, BrokerProcess};

const PASSWORD: &str = "a grant for each role";

/// `[broker.tls]`, `[broker.sasl]` with the four users, and their grants.
fn secure_broker_config(pki: &Pki) -> String {
    let credential = hash_password(PASSWORD);
    format!(
        r#"[broker.tls]
cert_path = "{cert}"
key_path = "{key}"

[broker.sasl]
[broker.sasl.users]
app = "{credential}"
warehouse = "{credential}"
ops = "{credential}"
nobody = "{credential}"

[[broker.grants]]
users = ["app"]
role = "sender"
topics = ["events"]

[[broker.grants]]
users = ["warehouse"]
role = "loader"
topics = ["events"]
groups = ["loader-*"]

[[broker.grants]]
users = ["ops"]
role = "admin"
"#,
        cert = pki.cert.display(),
        key = pki.key.display(),
    )
}

struct Secured {
    dir: tempfile::TempDir,
    pki: Pki,
    broker: BrokerProcess,
}

/// The broker (with `--metrics`) and topics `events` and `payments` made by `ops`.
fn secured() -> Option<Secured> {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path())?;
    let broker = BrokerProcess::start_with_args(dir.path(), &secure_broker_config(&pki), &["--metrics", "127.0.0.1:0"]);
    let secured = Secured { dir, pki, broker };
    for topic in ["events", "payments"] {
        ok(secured.relay("ops", &["topics", "create", topic, "--partitions", "1"], None));
    }
    Some(secured)
}

impl Secured {
    fn flags(&self, user: &str) -> Vec<String> {
        [
            "--broker",
            &self.broker.address,
            "--security-protocol",
            "SASL_SSL",
            "--sasl-username",
            user,
            "--tls-ca",
            self.pki.ca.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// A `relay` command as `user`.
    fn relay(&self, user: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut command = Command::new(relay_binary());
        command
            .args(args)
            .args(self.flags(user))
            .env("RELAY_SASL_PASSWORD", PASSWORD)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(bytes) = stdin {
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        let (done, output) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(child.wait_with_output()));
        output
            .recv_timeout(Duration::from_secs(90))
            .expect("relay command finished")
            .unwrap()
    }

    fn kcat(&self, kcat: &Path, user: &str) -> Command {
        let mut command = Command::new(kcat);
        command.args(["-b", &self.broker.address]).args([
            "-X",
            "security.protocol=SASL_SSL",
            "-X",
            &format!("ssl.ca.location={}", self.pki.ca.display()),
            "-X",
            "sasl.mechanisms=SCRAM-SHA-256",
            "-X",
            &format!("sasl.username={user}"),
            "-X",
            &format!("sasl.password={PASSWORD}"),
        ]);
        command
    }

    /// Records in `topic` (as `ops`).
    fn records(&self, topic: &str) -> i64 {
        let described = ok(self.relay("ops", &["topics", "describe", topic], None));
        String::from_utf8_lossy(&described.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(3).unwrap().parse::<i64>().unwrap())
            .sum()
    }

    /// `relay_broker_authorization_denied_total{operation}`, and the exposition's lines about it.
    fn denied(&self, operation: &str) -> (f64, String) {
        let metrics = self.broker.metrics_address.as_deref().expect("--metrics");
        let (_, body) = http_get(metrics, "/metrics").expect("metrics answer");
        let about = body
            .lines()
            .filter(|l| l.contains("authoriz"))
            .collect::<Vec<_>>()
            .join("\n");
        let count = metric_sum(
            &body,
            "relay_broker_authorization_denied_total",
            &[("operation", operation)],
        )
        .unwrap_or(0.0);
        (count, about)
    }
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn kcat_as_the_sender_produces_to_its_topic_and_is_refused_everything_else() {
    let Some(kcat) = kcat() else { return };
    let Some(s) = secured() else { return };
    let lines: String = (0..100).map(|n| format!("line-{n}\n")).collect();
    let mut producer = s
        .kcat(&kcat, "app")
        .args(["-P", "-t", "events", "-X", "enable.idempotence=true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    producer.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let produced = producer.wait_with_output().unwrap();
    assert!(produced.status.success(), "{}", stderr(&produced));
    assert_eq!(s.records("events"), 100);

    // Another topic: refused, and nothing lands there.
    let mut refused = s
        .kcat(&kcat, "app")
        .args(["-P", "-t", "payments"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    refused.stdin.take().unwrap().write_all(b"stolen\n").unwrap();
    let refused = refused.wait_with_output().unwrap();
    assert!(
        stderr(&refused).contains("authorization failed"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(s.records("payments"), 0);

    // Reading its own topic: refused (a sender only produces).
    let read = run_with_timeout(
        s.kcat(&kcat, "app").args(["-C", "-t", "events", "-e", "-q"]),
        Duration::from_secs(60),
    );
    assert!(!read.status.success(), "kcat read events as app");
    assert!(
        stderr(&read).to_lowercase().contains("authorization"),
        "{}",
        stderr(&read)
    );

    // Metadata lists only what it may describe.
    let listed = ok(run_with_timeout(
        s.kcat(&kcat, "app").args(["-L"]),
        Duration::from_secs(60),
    ));
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains("topic \"events\""), "{listing}");
    assert!(!listing.contains("payments"), "{listing}");

    // Deleting and creating topics with its credentials: refused, exit 2, named.
    let delete = s.relay("app", &["topics", "delete", "events"], None);
    assert_eq!(delete.status.code(), Some(2), "{}", stderr(&delete));
    assert!(
        stderr(&delete).contains("deleting topic \"events\": TopicAuthorizationFailed"),
        "{}",
        stderr(&delete)
    );
    assert_eq!(s.records("events"), 100, "events survived");
    let create = s.relay("app", &["topics", "create", "mine", "--partitions", "1"], None);
    assert_eq!(create.status.code(), Some(2), "{}", stderr(&create));

    // Producing to payments stops at its metadata (describe), as in Kafka.
    for operation in ["describe", "consume", "delete", "create"] {
        let (count, about) = s.denied(operation);
        assert!(count >= 1.0, "no denial of {operation} counted:\n{about}");
    }
    let log = s.broker.log();
    assert!(
        log.contains("not authorized") && log.contains("user=\"app\"") && log.contains("payments"),
        "{log}"
    );
}

#[test]
fn confluent_kafka_as_the_loader_consumes_and_commits_in_its_group_only() {
    let Some(python) = python() else { return };
    let Some(s) = secured() else { return };
    let lines: String = (0..50).map(|n| format!("event-{n}\n")).collect();
    ok(s.relay("app", &["produce", "--topic", "events"], Some(lines.as_bytes())));
    let script = python_script("authorization_clients.py");
    let output = ok(run_with_timeout(
        Command::new(&python).arg(&script).args([
            "loader",
            &s.broker.address,
            s.pki.ca.to_str().unwrap(),
            "warehouse",
            PASSWORD,
            "events",
            "loader-events",
            "payments",
            "other-group",
            "50",
        ]),
        Duration::from_secs(150),
    ));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["consumed"], 50, "{result}");
    assert_eq!(result["committed"][0], 50, "{result}");
    assert_eq!(result["produce_error"], "TOPIC_AUTHORIZATION_FAILED", "{result}");
    assert_eq!(result["other_group_error"], "GROUP_AUTHORIZATION_FAILED", "{result}");
    assert_eq!(result["other_topic_error"], "TOPIC_AUTHORIZATION_FAILED", "{result}");
    // Another group stops at FindCoordinator (describe of the group).
    let (count, about) = s.denied("describe");
    assert!(count >= 2.0, "denials of describe not counted:\n{about}");
}

#[test]
fn kafka_python_as_a_user_without_grants_sees_no_topic_and_admin_sees_all() {
    let Some(python) = python() else { return };
    let Some(s) = secured() else { return };
    let script = python_script("authorization_clients.py");
    let topics = |user: &str| -> serde_json::Value {
        let output = ok(run_with_timeout(
            Command::new(&python).arg(&script).args([
                "topics",
                &s.broker.address,
                s.pki.ca.to_str().unwrap(),
                user,
                PASSWORD,
            ]),
            Duration::from_secs(60),
        ));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    assert_eq!(topics("nobody")["topics"], serde_json::json!([]));
    let all = topics("ops");
    assert_eq!(all["topics"], serde_json::json!(["events", "payments"]), "{all}");
    assert_eq!(topics("app")["topics"], serde_json::json!(["events"]));
}

#[test]
fn relay_send_refused_on_its_topic_stops_naming_the_user_and_skips_nothing() {
    let Some(s) = secured() else { return };
    let logs = s.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let lines: String = (0..20).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    std::fs::write(logs.join("app.log"), &lines).unwrap();
    let state = s.dir.path().join("state");
    let send = |user: &str| {
        let mut args: Vec<String> = ["send", "--topic", "payments", "--path"].map(str::to_owned).to_vec();
        args.push(logs.join("*.log").display().to_string());
        args.extend(["--state-dir".to_owned(), state.display().to_string()]);
        args.extend(s.flags(user));
        let log = s.dir.path().join(format!("send-{user}.log"));
        let child = Command::new(relay_binary())
            .args(&args)
            .env("RELAY_SASL_PASSWORD", PASSWORD)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (child, log)
    };
    let (mut child, log) = send("app");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "relay send kept running though refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2), "{said}");
    assert!(
        said.contains("user \"app\" is not authorized") && said.contains("payments"),
        "{said}"
    );
    assert_eq!(s.records("payments"), 0);

    // The same state, now as a user that may: every line arrives, none was skipped.
    let (mut child, log) = send("ops");
    let started = Instant::now();
    while s.records("payments") < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "lines did not arrive as ops:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(s.records("payments"), 20);
}

#[test]
fn relay_load_refused_exits_2_and_relay_status_shows_each_users_access() {
    let Some(s) = secured() else { return };
    let warehouse = format!("sqlite://{}", s.dir.path().join("w.db").display());
    let load = s.relay(
        "app",
        &[
            "load",
            "--topic",
            "events",
            "--group",
            "loader-app",
            "--warehouse",
            &warehouse,
            "--table",
            "t",
            "--until-end",
        ],
        None,
    );
    assert_eq!(load.status.code(), Some(2), "{}", stderr(&load));
    assert!(
        stderr(&load).contains("user \"app\" is not authorized"),
        "{}",
        stderr(&load)
    );

    let status = ok(s.relay("app", &["status"], None));
    let screen = String::from_utf8_lossy(&status.stdout);
    assert!(screen.contains("ACCESS (user \"app\")"), "{screen}");
    assert!(screen.contains("topic events: produce, describe"), "{screen}");
    assert!(!screen.contains("payments"), "{screen}");
    assert!(screen.contains("cluster: nothing"), "{screen}");

    let status = ok(s.relay("ops", &["status"], None));
    let screen = String::from_utf8_lossy(&status.stdout);
    assert!(
        screen.contains("topic payments: consume, produce, create, delete, describe"),
        "{screen}"
    );
}

#[test]
fn relay_up_runs_each_role_as_its_own_user() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = pki(dir.path()) else { return };
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let warehouse = dir.path().join("warehouse.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let write_config = |group: &str| {
        let config = format!(
            r#"[client]
security_protocol = "SASL_SSL"
# The fallback user may do nothing: the roles must use their own logins.
sasl_username = "nobody"
tls_ca_path = "{ca}"

[broker]
listen = "127.0.0.1:{port}"
data_dir = "{data}"
{security}
# Grants add up: the sender may also create its topic (auto-created at its first line).
[[broker.grants]]
users = ["app"]
operations = ["create"]
topics = ["events"]

[[send]]
topic = "events"
paths = ["{logs}/*.jsonl*"]
state_dir = "{state}"
[send.login]
sasl_username = "app"
sasl_password_env = "APP_PASSWORD"

[[load]]
topic = "events"
group = "{group}"
warehouse = "sqlite://{warehouse}"
table = "events"
batch_wait_ms = 200
[load.login]
sasl_username = "warehouse"
sasl_password_env = "WAREHOUSE_PASSWORD"

[[load.columns]]
name = "uuid"
pointer = "/uuid"
type = "text"
"#,
            ca = pki.ca.display(),
            data = dir.path().join("data").display(),
            security = secure_broker_config(&pki),
            logs = logs.display(),
            state = dir.path().join("state").display(),
            warehouse = warehouse.display(),
        );
        std::fs::write(dir.path().join("up.toml"), config).unwrap();
    };
    let up = |extra: &[&str]| {
        Command::new(relay_binary())
            .args(["up", "--config", "up.toml"])
            .args(extra)
            .env("RELAY_SASL_PASSWORD", PASSWORD)
            .env("APP_PASSWORD", PASSWORD)
            .env("WAREHOUSE_PASSWORD", PASSWORD)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("up.log")).unwrap())
            .spawn()
            .unwrap()
    };

    // A loader group outside the grants: relay up stops, exit 2, naming both.
    write_config("forbidden");
    let mut refused = up(&[]);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "relay up kept running with a refused loader"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(dir.path().join("up.log")).unwrap();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("user \"warehouse\" is not authorized") && log.contains("forbidden"),
        "{log}"
    );

    // Within the grants: every line written is loaded once.
    write_config("loader-up");
    let mut running = up(&["--gen-events", "500"]);
    let count_rows = || -> i64 {
        rusqlite::Connection::open(&warehouse)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let started = Instant::now();
    while count_rows() < 500 {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = running.kill();
            panic!(
                "rows did not arrive:\n{}",
                std::fs::read_to_string(dir.path().join("up.log")).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Command::new("kill")
        .args(["-TERM", &running.id().to_string()])
        .status()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("up.log")).unwrap();
    assert_eq!(running.wait().unwrap().code(), Some(0), "{}", log());
    let mut written = 0;
    for entry in std::fs::read_dir(&logs).unwrap() {
        written += std::fs::read_to_string(entry.unwrap().path()).unwrap().lines().count() as i64;
    }
    let distinct: i64 = rusqlite::Connection::open(&warehouse)
        .unwrap()
        .query_row("SELECT COUNT(DISTINCT uuid) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (count_rows(), distinct),
        (written, written),
        "every line written loaded once"
    );
}

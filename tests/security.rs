//! TLS and SASL end to end: a broker with `[broker.tls]` and `[broker.sasl]`
//! (a throwaway CA and server certificate made with openssl, users hashed by
//! `relay hash-password`), and kcat, confluent-kafka, kafka-python and `relay` itself
//! producing and consuming over SASL_SSL with SCRAM-SHA-256 and PLAIN. Wrong
//! passwords are refused; an unauthenticated connection gets nothing but the
//! authentication error; `relay up` runs its pipeline over SASL_SSL.

mod support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::pki::{hash_password, pki, Pki};
use support::raw_client::RawConnection;
use support::{kcat, python, python_script, relay_binary, run_with_timeout, BrokerProcess};

const PASSWORD: &str = "correct horse battery staple";

/// The `[broker.tls]` / `[broker.sasl]` tables for a broker with user alice (an admin).
fn security_config(pki: Option<&Pki>, extra_sasl: &str) -> String {
    let mut config = String::new();
    if let Some(pki) = pki {
        config += &format!(
            "[broker.tls]\ncert_path = \"{}\"\nkey_path = \"{}\"\n",
            pki.cert.display(),
            pki.key.display()
        );
    }
    config += &format!(
        "[broker.sasl]\nmechanisms = [\"SCRAM-SHA-256\", \"PLAIN\"]\n{extra_sasl}\n[broker.sasl.users]\nalice = \"{}\"\n\
         [[broker.grants]]\nusers = [\"alice\"]\nrole = \"admin\"\n",
        hash_password(PASSWORD)
    );
    config
}

fn kcat_sasl(kcat: &Path, broker: &BrokerProcess, pki: &Pki, mechanism: &str, password: &str) -> Command {
    let mut command = Command::new(kcat);
    command.args(["-b", &broker.address]).args([
        "-X",
        "security.protocol=SASL_SSL",
        "-X",
        &format!("ssl.ca.location={}", pki.ca.display()),
        "-X",
        &format!("sasl.mechanisms={mechanism}"),
        "-X",
        "sasl.username=alice",
        "-X",
        &format!("sasl.password={password}"),
    ]);
    command
}

#[test]
fn kcat_produces_and_consumes_over_sasl_ssl_and_wrong_passwords_are_refused() {
    let Some(kcat) = kcat() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = pki(dir.path()) else { return };
    let broker = BrokerProcess::start(dir.path(), &security_config(Some(&pki), ""));
    assert!(broker.log().contains("security=\"SASL_SSL\""), "{}", broker.log());
    let lines: Vec<String> = (0..500).map(|n| format!("secret-line-{n}")).collect();

    let mut producer = kcat_sasl(&kcat, &broker, &pki, "SCRAM-SHA-256", PASSWORD)
        .args(["-P", "-t", "secure", "-X", "enable.idempotence=true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    producer
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let produced = producer.wait_with_output().unwrap();
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );

    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let consumed = run_with_timeout(
            kcat_sasl(&kcat, &broker, &pki, mechanism, PASSWORD).args(["-C", "-t", "secure", "-e", "-q"]),
            Duration::from_secs(60),
        );
        assert!(
            consumed.status.success(),
            "{mechanism}: {}",
            String::from_utf8_lossy(&consumed.stderr)
        );
        let got: Vec<String> = String::from_utf8(consumed.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(got, lines, "{mechanism}");
    }

    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let refused = run_with_timeout(
            kcat_sasl(&kcat, &broker, &pki, mechanism, "not the password").args(["-L", "-m", "5"]),
            Duration::from_secs(60),
        );
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success(),
            "{mechanism}: a wrong password listed metadata"
        );
        assert!(
            stderr.contains(&format!("invalid credentials with SASL mechanism {mechanism}")),
            "{mechanism}: {stderr}"
        );
    }
    assert!(broker.log().contains("authentication failed"), "{}", broker.log());
}

#[test]
fn confluent_kafka_and_kafka_python_round_trip_over_sasl_ssl_with_scram() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = pki(dir.path()) else { return };
    let broker = BrokerProcess::start(dir.path(), &security_config(Some(&pki), ""));
    let script = python_script("secure_clients.py");
    let ca = pki.ca.to_str().unwrap();
    let output = run_with_timeout(
        Command::new(&python).arg(&script).args([
            "roundtrip",
            &broker.address,
            ca,
            "alice",
            PASSWORD,
            "SCRAM-SHA-256",
            "secure-orders",
            "2000",
        ]),
        Duration::from_secs(180),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["delivered"], 2000, "{result}");
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
    let mut expected: Vec<String> = (0..2000).map(|n| format!("s{n}")).collect();
    expected.sort();
    assert_eq!(result["consumed"], serde_json::json!(expected), "every message once");

    // kafka-python speaks the protocol with its own code, not librdkafka's.
    let kafka_python = |password: &str| -> serde_json::Value {
        let output = run_with_timeout(
            Command::new(&python).arg(&script).args([
                "kafka-python",
                &broker.address,
                ca,
                "alice",
                password,
                "SCRAM-SHA-256",
                "secure-kafka-python",
                "300",
            ]),
            Duration::from_secs(180),
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)))
    };
    let result = kafka_python(PASSWORD);
    let mut expected: Vec<String> = (0..300).map(|n| format!("k{n}")).collect();
    expected.sort();
    assert_eq!(result["delivered"], 300, "{result}");
    assert_eq!(result["consumed"], serde_json::json!(expected), "{result}");
    let refused = kafka_python("wrong");
    assert!(refused["error"].is_string(), "a wrong password got in: {refused}");

    for (user, password) in [("alice", "wrong"), ("mallory", PASSWORD)] {
        let output = run_with_timeout(
            Command::new(&python)
                .arg(&script)
                .args(["login", &broker.address, ca, user, password, "SCRAM-SHA-256"]),
            Duration::from_secs(60),
        );
        let result: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
        assert_eq!(result["ok"], false, "{user}/{password}: {result}");
        assert!(
            result["error"].as_str().unwrap().contains("invalid credentials"),
            "{user}: {result}"
        );
    }
}

/// Whether the broker closes `connection` without sending anything more.
fn closed_without_answer(connection: &mut RawConnection) -> bool {
    connection.read_frame().is_none()
}

#[test]
fn unauthenticated_connections_get_nothing_but_the_auth_error() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_with_args(
        dir.path(),
        &security_config(None, "authentication_timeout_ms = 1000"),
        &["--metrics", "127.0.0.1:0"],
    );
    assert!(broker.log().contains("security=\"SASL_PLAINTEXT\""));

    // ApiVersions is answered and lists the SASL APIs; Metadata is not.
    let mut connection = RawConnection::connect(&broker.address);
    let versions: ApiVersionsResponse = connection.request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(versions
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::SaslHandshake as i16 && k.max_version == 1));
    connection.send(ApiKey::Metadata, 9, &MetadataRequest::default());
    assert!(
        closed_without_answer(&mut connection),
        "Metadata before login was answered"
    );

    // A mechanism not offered: the offered ones, then the door closes.
    let mut connection = RawConnection::connect(&broker.address);
    let handshake: SaslHandshakeResponse = connection.request(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI")),
    );
    assert_eq!(handshake.error_code, 33, "UNSUPPORTED_SASL_MECHANISM");
    let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["SCRAM-SHA-256", "PLAIN"]);
    assert!(closed_without_answer(&mut connection));

    // A wrong PLAIN password: SASL_AUTHENTICATION_FAILED, then closed, and
    // Produce after it never reaches the log.
    let mut connection = RawConnection::connect(&broker.address);
    let handshake: SaslHandshakeResponse = connection.request(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    );
    assert_eq!(handshake.error_code, 0);
    let login: SaslAuthenticateResponse = connection.request(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from_static(b"\0alice\0guess")),
    );
    assert_eq!(login.error_code, 58, "SASL_AUTHENTICATION_FAILED");
    assert!(login.error_message.unwrap().contains("invalid credentials"));
    assert!(closed_without_answer(&mut connection));

    // The right PLAIN password opens the broker to this connection.
    let mut connection = RawConnection::connect(&broker.address);
    let _: SaslHandshakeResponse = connection.request(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    );
    let login: SaslAuthenticateResponse = connection.request(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(format!("\0alice\0{PASSWORD}"))),
    );
    assert_eq!(login.error_code, 0, "{:?}", login.error_message);
    let metadata: MetadataResponse = connection.request(ApiKey::Metadata, 9, &MetadataRequest::default());
    assert_eq!(metadata.brokers.len(), 1);

    // Before login, a frame larger than SASL needs closes the connection
    // before its body is read, and silence ends at authentication_timeout_ms.
    let mut connection = RawConnection::connect(&broker.address);
    connection.stream.write_all(&(4_i32 << 20).to_be_bytes()).unwrap();
    assert!(closed_without_answer(&mut connection));
    let started = Instant::now();
    let mut silent = RawConnection::connect(&broker.address);
    assert!(closed_without_answer(&mut silent));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(15),
        "closed after {waited:?}"
    );
    let metrics = broker.metrics_address.clone().expect("metrics endpoint");
    let (_, exposition) = support::http_get(&metrics, "/metrics").expect("GET /metrics");
    let logins = |mechanism: &str, result: &str| {
        support::metric_sum(
            &exposition,
            "relay_broker_authentications_total",
            &[("mechanism", mechanism), ("result", result)],
        )
    };
    assert_eq!(logins("PLAIN", "failed"), Some(1.0), "{exposition}");
    assert_eq!(logins("PLAIN", "ok"), Some(1.0), "{exposition}");
    assert_eq!(
        logins("other", "failed"),
        Some(1.0),
        "GSSAPI is counted as other: {exposition}"
    );
    let unauthenticated = support::metric_sum(
        &exposition,
        "relay_broker_requests_rejected_total",
        &[("reason", "unauthenticated")],
    );
    assert!(unauthenticated >= Some(2.0), "{exposition}");
    let log = broker.log();
    assert!(log.contains("before SASL authentication"), "{log}");
    assert!(
        log.contains("not authenticated within authentication_timeout_ms"),
        "{log}"
    );
}

fn relay(args: &[&str], password: &str, stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new(relay_binary());
    command.args(args).env("RELAY_SASL_PASSWORD", password);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// `output`, after checking that its command succeeded.
fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// `relay` flags for SASL_SSL as alice against `broker`.
fn secure_flags(broker: &BrokerProcess, pki: &Pki) -> Vec<String> {
    let ca = pki.ca.display().to_string();
    [
        "--broker",
        &broker.address,
        "--security-protocol",
        "SASL_SSL",
        "--tls-ca",
        &ca,
        "--sasl-username",
        "alice",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn relay_commands_speak_sasl_ssl() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = pki(dir.path()) else { return };
    let broker = BrokerProcess::start(dir.path(), &security_config(Some(&pki), ""));
    let flags = secure_flags(&broker, &pki);
    let secure: Vec<&str> = flags.iter().map(String::as_str).collect();
    let lines: String = (0..1000).map(|n| format!("{{\"uuid\":\"{n:06}\"}}\n")).collect();
    ok(relay(
        &[&["produce", "--topic", "secure-cli"][..], &secure].concat(),
        PASSWORD,
        Some(lines.as_bytes()),
    ));
    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let consumed = relay(
            &[
                &[
                    "consume",
                    "--topic",
                    "secure-cli",
                    "--group",
                    "g",
                    "--max",
                    "1000",
                    "--sasl-mechanism",
                    mechanism,
                ][..],
                &secure,
            ]
            .concat(),
            PASSWORD,
            None,
        );
        assert!(
            consumed.status.success(),
            "{}",
            String::from_utf8_lossy(&consumed.stderr)
        );
        if mechanism == "SCRAM-SHA-256" {
            assert_eq!(String::from_utf8(consumed.stdout).unwrap(), lines);
        }
    }
    ok(relay(
        &[&["lag", "--group", "g", "--max", "0"][..], &secure].concat(),
        PASSWORD,
        None,
    ));

    let refused = relay(&[&["topics", "list"][..], &secure].concat(), "wrong", None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SASL authentication with"), "{stderr}");
    assert!(stderr.contains("invalid credentials"), "{stderr}");

    let plaintext = relay(&["topics", "list", "--broker", &broker.address], "", None);
    let stderr = String::from_utf8_lossy(&plaintext.stderr);
    assert!(!plaintext.status.success());
    assert!(stderr.contains("answered with TLS"), "{stderr}");

    let untrusted = relay(
        &[&["topics", "list"][..], &secure[..4], &["--sasl-username", "alice"]].concat(),
        PASSWORD,
        None,
    );
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
}

#[test]
fn relay_up_runs_its_pipeline_over_sasl_ssl() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = pki(dir.path()) else { return };
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml.example")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let broker_security = security_config(Some(&pki), "");
    let config = example
        .replace(
            "# listen = \"127.0.0.1:9092\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace("\n[broker.log]\n", &format!("\n{broker_security}\n[broker.log]\n"));
    let client = format!(
        "[client]\nsecurity_protocol = \"SASL_SSL\"\nsasl_username = \"alice\"\ntls_ca_path = \"{}\"\n",
        pki.ca.display()
    );
    std::fs::write(dir.path().join("mismatch.toml"), &config).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        config.replacen("[client]\n", &client, 1),
    )
    .unwrap();

    // [client] left at PLAINTEXT against a SASL_SSL broker: a clear refusal.
    let mismatch = Command::new(relay_binary())
        .args(["up", "--config", "mismatch.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&mismatch.stderr);
    assert_eq!(mismatch.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("security_protocol = \"SASL_SSL\""), "{stderr}");

    let log = std::fs::File::create(dir.path().join("up.log")).unwrap();
    let mut up = Command::new(relay_binary())
        .args(["up", "--config", "config.toml", "--gen-events", "200"])
        .env("RELAY_SASL_PASSWORD", PASSWORD)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let warehouse = dir.path().join("warehouse.db");
    let started = Instant::now();
    loop {
        let rows: i64 = rusqlite::Connection::open(&warehouse)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)))
            .unwrap_or(0);
        if rows > 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = up.kill();
            panic!(
                "no rows over SASL_SSL after 60 s:\n{}",
                std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Command::new("kill")
        .args(["-TERM", &up.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(up.wait().unwrap().code(), Some(0));
}

#[test]
fn bad_security_settings_stop_the_broker_with_the_key_and_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let start = |extra: &str| {
        let config = dir.path().join("bad.toml");
        std::fs::write(
            &config,
            format!(
                "[broker]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{extra}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let output = run_with_timeout(
            Command::new(relay_binary()).args(["broker", "--config"]).arg(&config),
            Duration::from_secs(30),
        );
        assert!(!output.status.success(), "{extra}: the broker started");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let missing = dir.path().join("missing.pem");
    let stderr = start(&format!(
        "[broker.tls]\ncert_path = \"{}\"\nkey_path = \"{}\"\n",
        missing.display(),
        missing.display()
    ));
    assert!(
        stderr.contains("broker.tls") && stderr.contains("missing.pem"),
        "{stderr}"
    );
    let stderr = start("[broker.sasl]\n[broker.sasl.users]\nalice = \"hunter2\"\n");
    assert!(stderr.contains("broker.sasl.users.alice"), "{stderr}");
    let stderr = start("[broker.sasl]\nmechanisms = [\"GSSAPI\"]\n[broker.sasl.users]\n");
    assert!(stderr.contains("GSSAPI"), "{stderr}");
    // SASL with no grants would refuse everyone everything; grants without
    // SASL would protect nothing. Both stop the broker, saying so.
    let credential = hash_password(PASSWORD);
    let stderr = start(&format!(
        "[broker.sasl]\n[broker.sasl.users]\nalice = \"{credential}\"\n"
    ));
    assert!(stderr.contains("no [[broker.grants]]"), "{stderr}");
    let stderr = start("[[broker.grants]]\nusers = [\"alice\"]\nrole = \"admin\"\n");
    assert!(stderr.contains("without [broker.sasl]"), "{stderr}");
    let stderr = start(&format!(
        "[broker.sasl]\n[broker.sasl.users]\nalice = \"{credential}\"\n[[broker.grants]]\nusers = [\"bob\"]\nrole = \"admin\"\n"
    ));
    assert!(
        stderr.contains("broker.grants[0]") && stderr.contains("\"bob\""),
        "{stderr}"
    );
}

#[test]
fn large_requests_and_responses_cross_tls_whole() {
    // 16,000 records of 4 KiB over 4 partitions: produce requests and fetch
    // responses of megabytes, larger than a socket buffer, so TLS writes
    // meet a full socket and must flush what they buffered.
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = pki(dir.path()) else { return };
    let broker = BrokerProcess::start(dir.path(), &security_config(Some(&pki), ""));
    let flags = secure_flags(&broker, &pki);
    let secure: Vec<&str> = flags.iter().map(String::as_str).collect();
    ok(relay(
        &[&["topics", "create", "big", "--partitions", "4"][..], &secure].concat(),
        PASSWORD,
        None,
    ));
    let padding = "x".repeat(4000);
    let lines: String = (0..16000).map(|n| format!("{n:06} {padding}\n")).collect();
    ok(relay(
        &[&["produce", "--topic", "big"][..], &secure].concat(),
        PASSWORD,
        Some(lines.as_bytes()),
    ));
    let started = Instant::now();
    let consumed = ok(relay(
        &[&["consume", "--topic", "big", "--max", "16000"][..], &secure].concat(),
        PASSWORD,
        None,
    ));
    let mut got: Vec<String> = String::from_utf8(consumed.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    got.sort();
    assert!(
        got == lines.lines().map(str::to_owned).collect::<Vec<_>>(),
        "records differ"
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "a response waited for a timeout"
    );
}

#[test]
fn a_slowly_read_fetch_response_arrives_whole_over_tls() {
    // The broker writes a 16 MB fetch response while a raw TLS client reads
    // it 64 KiB at a time, so the broker's TLS writes keep meeting a full
    // socket; the whole response must still arrive (its writer flushes the
    // TLS stream after each response) before the 10 s read timeout.
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = pki(dir.path()) else { return };
    let tls = format!(
        "[broker.tls]\ncert_path = \"{}\"\nkey_path = \"{}\"\n",
        pki.cert.display(),
        pki.key.display()
    );
    let broker = BrokerProcess::start(dir.path(), &tls);
    let ca = pki.ca.display().to_string();
    let flags = [
        "--broker",
        &broker.address,
        "--security-protocol",
        "SSL",
        "--tls-ca",
        &ca,
    ];
    let padding = "y".repeat(4000);
    let lines: String = (0..4000).map(|n| format!("{n:06} {padding}\n")).collect();
    ok(relay(
        &[&["produce", "--topic", "slow"][..], &flags].concat(),
        "",
        Some(lines.as_bytes()),
    ));

    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(&pki.ca).unwrap();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let client = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(&broker.address).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = rustls::StreamOwned::new(client, socket);

    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::protocol::Encodable;
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(64 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("slow")))
            .with_partitions(vec![
                FetchPartition::default().with_partition_max_bytes(64 << 20)
            ])]);
    let mut body = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(12)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("slow-reader")))
        .encode(&mut body, ApiKey::Fetch.request_header_version(12))
        .unwrap();
    request.encode(&mut body, 12).unwrap();
    stream.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    stream.flush().unwrap();

    use std::io::Read;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).unwrap();
    let length = i32::from_be_bytes(prefix) as usize;
    assert!(
        length > 16_000_000,
        "the response holds the whole topic: {length} bytes"
    );
    let mut received = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    while received < length {
        let want = chunk.len().min(length - received);
        match stream.read(&mut chunk[..want]) {
            Ok(0) => panic!("connection closed after {received} of {length} bytes"),
            Ok(n) => received += n,
            Err(error) => panic!("after {received} of {length} bytes: {error} (the tail was never sent)"),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

//! Shared by the end-to-end tests: `relay` processes on 127.0.0.1 ports,
//! and the external clients (kcat, the Python Kafka clients) that
//! `scripts/test.sh` installs. A missing client skips its test loudly, and
//! fails it when `CI=true`.

#![allow(dead_code)]

pub mod pki;
pub mod postgres;
pub mod power;
pub mod raw_client;
pub mod warehouse;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `relay` binary under test: cargo's, or `RELAY_TEST_BINARY` (a
/// release build, or a copy that later builds do not replace mid-run).
pub fn relay_binary() -> PathBuf {
    match std::env::var_os("RELAY_TEST_BINARY") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_relay")),
    }
}

/// The external tool named by `variable`, or `None` after a loud SKIPPED line
/// (a panic in CI, where every part must be present).
pub use relay_testkit::external;

pub fn python() -> Option<PathBuf> {
    external("RELAY_TEST_PYTHON", "Python with confluent-kafka and kafka-python")
}

pub fn kcat() -> Option<PathBuf> {
    external("RELAY_TEST_KCAT", "kcat")
}

pub fn python_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Runs a command with a time limit, draining its output as it goes;
/// panics with that output on timeout.
/// Runs `relay ARGS` as a client of `broker` (through `RELAY_BROKER`),
/// killed after `limit`.
pub fn relay_client(broker: &BrokerProcess, args: &[&str], limit: Duration) -> Output {
    run_with_timeout(
        Command::new(relay_binary())
            .args(args)
            .env("RELAY_BROKER", &broker.address),
        limit,
    )
}

/// The standard output of a command that must have succeeded (its status
/// and standard error otherwise).
pub fn succeeded(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed ({:?}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

pub fn run_with_timeout(command: &mut Command, limit: Duration) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let output = receiver.recv().expect("output after kill").expect("output");
            panic!(
                "{command:?} ran over {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// A `relay broker` process on a free port of 127.0.0.1.
pub struct BrokerProcess {
    child: Option<Child>,
    pub address: String,
    pub data_dir: PathBuf,
    config: PathBuf,
    log_path: PathBuf,
    extra_args: Vec<String>,
    /// The `--metrics` endpoint's address when one was asked for.
    pub metrics_address: Option<String>,
}

impl BrokerProcess {
    /// Starts a broker whose `[broker]` section is `extra_config` plus a data dir in `dir`.
    pub fn start(dir: &Path, extra_config: &str) -> Self {
        Self::start_with_args(dir, extra_config, &[])
    }

    /// As [`BrokerProcess::start`], with more command-line arguments (e.g. `--metrics`).
    pub fn start_with_args(dir: &Path, extra_config: &str, extra_args: &[&str]) -> Self {
        Self::start_with_data_dir(dir, &dir.join("data"), extra_config, extra_args)
    }

    /// As [`BrokerProcess::start_with_args`], with the data directory somewhere
    /// else than `dir` (which keeps the config and the log).
    pub fn start_with_data_dir(dir: &Path, data_dir: &Path, extra_config: &str, extra_args: &[&str]) -> Self {
        let data_dir = data_dir.to_owned();
        let config = dir.join("relay.toml");
        // A group's first rebalance starts at once unless the test sets the
        // wait: Kafka's 3 s would add 3 s to every loader's start.
        let delay = match extra_config.contains("group_initial_rebalance_delay_ms") {
            true => "",
            false => "group_initial_rebalance_delay_ms = 0\n",
        };
        std::fs::write(
            &config,
            format!(
                "[broker]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{delay}{extra_config}\n",
                data_dir.display()
            ),
        )
        .unwrap();
        let mut broker = Self {
            child: None,
            address: String::new(),
            data_dir,
            config,
            log_path: dir.join("broker.log"),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            metrics_address: None,
        };
        broker.launch("127.0.0.1:0");
        broker
    }

    fn launch(&mut self, listen: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut child = Command::new(relay_binary())
            .args(["broker", "--config"])
            .arg(&self.config)
            .args(["--listen", listen])
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start relay broker");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let address = line
            .strip_prefix("relay broker listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("broker did not start: {line:?}\n{}", self.log()))
            .to_owned();
        self.address = address;
        self.metrics_address = metrics_address(&line);
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9`: no clean shutdown, no flush beyond what was acknowledged.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, and waits for the clean shutdown; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "broker did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        let address = self.address.clone();
        let started = Instant::now();
        loop {
            // The old socket may linger briefly; retry the same port.
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.launch(&address)));
            if attempt.is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "broker did not restart on {address}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A `relay` process started with fixed arguments, logging to a file; it can
/// be killed with SIGKILL, stopped with SIGTERM and started again.
pub struct RelayProcess {
    pub child: Option<Child>,
    args: Vec<String>,
    pub log_path: PathBuf,
}

impl RelayProcess {
    pub fn start(args: Vec<String>, log_path: &Path) -> Self {
        let mut process = Self {
            child: None,
            args,
            log_path: log_path.to_path_buf(),
        };
        process.launch();
        process
    }

    /// [`RelayProcess::start`] with the arguments as written in a test.
    pub fn start_args(args: &[&str], log_path: &Path) -> Self {
        Self::start(args.iter().map(|s| s.to_string()).collect(), log_path)
    }

    pub fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let child = Command::new(relay_binary())
            .args(&self.args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap().code()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The `--metrics` address announced by the `launch`-th start (1 = first),
    /// waiting up to 30 s for it.
    pub fn metrics_address(&self, launch: usize) -> String {
        let mut found = None;
        let announced = wait_until(Duration::from_secs(30), || {
            found = self.log().lines().filter_map(metrics_address).nth(launch - 1);
            found.is_some()
        });
        assert!(announced, "no metrics address announced\n{}", self.log());
        found.unwrap()
    }
}

/// The address in a start line's ", metrics on http://ADDR/metrics".
pub fn metrics_address(line: &str) -> Option<String> {
    let rest = line.split("metrics on http://").nth(1)?;
    Some(rest.split('/').next()?.to_owned())
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// GET `path` from a `--metrics` endpoint (or any HTTP server, Prometheus
/// included): (status code, body); `None` while nothing listens there yet.
/// HTTP/1.0, so the server closes after one whole, unchunked answer.
pub fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Sum of every sample of `name` whose labels include all of `labels`
/// (`None` when there is no such sample).
pub fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| series_labels.split(',').any(|pair| pair == format!("{k}=\"{v}\"")))
        {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(f64::NAN);
        }
    }
    found
}

/// Polls `check` every 100 ms until it returns true (then true), or for at most `limit` (then false).
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !check() {
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

//! A throwaway PostgreSQL cluster for one test: `initdb` in a temporary
//! directory (as the `postgres` user when the tests run as root, since the
//! server refuses root), started with `pg_ctl` on a free 127.0.0.1 port
//! with trust authentication on loopback only, stopped on drop. The server
//! binaries come from `RELAY_PG_BIN`; without them the test is skipped
//! loudly, or fails in CI ([`crate::external`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long `pg_ctl` waits for the server to start.
const START_WAIT_S_MAX: &str = "60";
/// How long the server may take to listen once `pg_ctl` says it started.
const LISTEN_WAIT_MAX: Duration = Duration::from_secs(30);

pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
    pub port: u16,
    /// Server settings (`-c name=value` each) given at every start.
    settings: String,
    running: bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0"))
}

/// Runs a server program as the cluster's owner (`postgres` under root).
fn run_as_owner(program: &Path, args: &[&str]) -> Output {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.args(args).output().expect("run a PostgreSQL program")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    /// A running cluster with durable commits (`fsync=on`, the server's
    /// default, as a warehouse under test must be), or `None` (SKIPPED
    /// outside CI) when the server binaries are missing.
    pub fn start() -> Option<Self> {
        Self::start_with(&[("fsync", "on")])
    }

    /// A running cluster with these server settings (`fsync=off` for speed
    /// where durability is not under test, a server default a test must
    /// see overridden), or `None` as [`Postgres::start`].
    pub fn start_with(settings: &[(&str, &str)]) -> Option<Self> {
        let bin = crate::external("RELAY_PG_BIN", "PostgreSQL 15 server binaries")?;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success(), "chown of the cluster directory");
        }
        let initdb = run_as_owner(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let settings = settings
            .iter()
            .map(|(name, value)| format!(" -c {name}={value}"))
            .collect();
        let mut postgres = Self {
            bin,
            data,
            _dir: dir,
            port: free_port(),
            settings,
            running: false,
        };
        postgres.start_server();
        Some(postgres)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again, after [`Postgres::stop_server`]) and waits
    /// until it listens.
    pub fn start_server(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1{}",
            self.port,
            self.data.display(),
            self.settings
        );
        let log = self.data.join("server.log");
        let started = run_as_owner(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                START_WAIT_S_MAX,
                "start",
            ],
        );
        assert!(
            started.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let deadline = Instant::now() + LISTEN_WAIT_MAX;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.running = true;
    }

    /// Stops the server as an operator would (`-m fast`: sessions end,
    /// what was committed stays): an outage a test can end with
    /// [`Postgres::start_server`].
    pub fn stop_server(&mut self) {
        self.stop("fast");
    }

    fn stop(&mut self, mode: &str) {
        if self.running {
            run_as_owner(
                &self.bin.join("pg_ctl"),
                &["-D", self.data.to_str().unwrap(), "-m", mode, "-w", "stop"],
            );
            self.running = false;
        }
    }

    /// A client session (its connection driven on the current tokio runtime).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    /// Runs SQL with psql; `None` when it fails (say, the table is not there yet).
    pub fn try_query(&self, sql: &str) -> Option<String> {
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-At",
                "-c",
                sql,
                "postgres",
            ])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Runs SQL with psql and returns its unaligned output.
    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql).unwrap_or_else(|| panic!("psql failed: {sql}"))
    }
}

impl Drop for Postgres {
    /// `-m immediate`: the cluster is thrown away with its directory.
    fn drop(&mut self) {
        self.stop("immediate");
    }
}

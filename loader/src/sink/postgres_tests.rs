//! Against a throwaway PostgreSQL 15 cluster (`RELAY_PG_BIN`, as the
//! workspace's tests use; skipped without it outside CI).

use super::*;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A cluster whose server default is `synchronous_commit = off`, stopped on drop.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0"))
}

/// Runs a server program as the cluster's owner (`postgres` under root:
/// the server refuses to run as root).
fn run_as_owner(program: PathBuf, args: &[&str]) -> Output {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.args(args).output().expect("run a PostgreSQL program")
}

impl Cluster {
    fn start(server_settings: &str) -> Option<Self> {
        let Some(bin) = std::env::var_os("RELAY_PG_BIN")
            .map(PathBuf::from)
            .filter(|p| p.exists())
        else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "PostgreSQL server binaries are required in CI (RELAY_PG_BIN)"
            );
            eprintln!("SKIPPED: PostgreSQL server binaries not available (RELAY_PG_BIN unset)");
            return None;
        };
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
        let data_arg = data.to_str().unwrap();
        let initdb = run_as_owner(
            bin.join("initdb"),
            &[
                "-D",
                data_arg,
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = format!("-p {port} -k {data_arg} -c listen_addresses=127.0.0.1 {server_settings}");
        let log = data.join("server.log");
        let started = run_as_owner(
            bin.join("pg_ctl"),
            &[
                "-D",
                data_arg,
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            started.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(Self {
            bin,
            data,
            port,
            _dir: dir,
        })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        run_as_owner(
            self.bin.join("pg_ctl"),
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "-w", "stop"],
        );
    }
}

async fn synchronous_commit(sink: &mut PostgresSink) -> String {
    let client = sink.client().await.unwrap();
    client.query_one("SHOW synchronous_commit", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn every_session_commits_synchronously_whatever_the_server_default() {
    let Some(cluster) = Cluster::start("-c synchronous_commit=off") else {
        return;
    };
    let config = LoaderConfig::new(vec!["t".into()], "g", &cluster.url(), "events");
    let mut sink = PostgresSink::open(&cluster.url(), &config).await.unwrap();
    assert_eq!(
        synchronous_commit(&mut sink).await,
        "on",
        "the session kept the server's off"
    );
    // A reconnected session is pinned too.
    sink.client = None;
    assert_eq!(
        synchronous_commit(&mut sink).await,
        "on",
        "a reconnected session kept the server's off"
    );
}

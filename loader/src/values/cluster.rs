//! A throwaway PostgreSQL 15 cluster for the value round trips
//! (`RELAY_PG_BIN`, as the workspace's tests use; skipped without it
//! outside CI): `initdb` as the `postgres` user under root (the server
//! refuses root), UTF-8, trust on loopback, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn run_as_owner(program: &Path, args: &[&str]) -> Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0"));
    let mut command = if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.args(args).output().expect("run a PostgreSQL program")
}

impl Cluster {
    pub fn start() -> Option<Self> {
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
        // chown fails when not root, where it is not needed.
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let data_arg = data.to_str().unwrap();
        let initdb = run_as_owner(
            &bin.join("initdb"),
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
        let options = format!("-p {port} -k {data_arg} -c listen_addresses=127.0.0.1 -c fsync=off");
        let log = data.join("server.log");
        let log_arg = log.to_str().unwrap();
        let started = run_as_owner(
            &bin.join("pg_ctl"),
            &["-D", data_arg, "-l", log_arg, "-o", &options, "-w", "-t", "60", "start"],
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

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        run_as_owner(
            &self.bin.join("pg_ctl"),
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "-w", "stop"],
        );
    }
}

//! The power-loss harness: a `relay-plugfs` mount that the tests power on,
//! run real processes on, and pull the plug under at seeded random moments.
//! `RELAY_POWER_LOSS_CYCLES` sets how many plug pulls each test makes (CI
//! uses the small default; the long run sets hundreds), and
//! `RELAY_POWER_LOSS_SEED` replays a printed seed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay_plugfs::{fuse_available, Image, Loss, PlugFs, Rng};
use std::sync::Mutex;

/// Plug pulls per test unless `RELAY_POWER_LOSS_CYCLES` says otherwise.
pub fn cycles(default: usize) -> usize {
    std::env::var("RELAY_POWER_LOSS_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub struct PowerCut {
    pub mountpoint: PathBuf,
    fs: Option<PlugFs>,
    image: Image,
    pub rng: Rng,
    pub seed: u64,
    pub pulls: usize,
    pub torn_pulls: usize,
}

impl PowerCut {
    /// A powered-off empty disk to be mounted on `mountpoint` (created here),
    /// or `None` after a loud SKIPPED (a panic with `CI=true`).
    pub fn new(mountpoint: &Path, test: &str) -> Option<PowerCut> {
        if let Err(why) = fuse_available() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: CI=true and FUSE is not usable: {why}");
            }
            eprintln!("SKIPPED {test}: {why}");
            return None;
        }
        let seed = std::env::var("RELAY_POWER_LOSS_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| relay_proto::clock::now_micros() as u64);
        eprintln!("{test}: RELAY_POWER_LOSS_SEED={seed}");
        std::fs::create_dir_all(mountpoint).unwrap();
        Some(PowerCut {
            mountpoint: mountpoint.to_owned(),
            fs: None,
            image: Image::empty_dir(),
            rng: Rng::new(seed),
            seed,
            pulls: 0,
            torn_pulls: 0,
        })
    }

    /// Mounts the surviving image.
    pub fn power_on(&mut self) {
        assert!(self.fs.is_none(), "already on");
        self.fs = Some(PlugFs::mount(&self.image, &self.mountpoint).expect("mount plugfs"));
    }

    /// Pulls the plug: from now on the disk fails every request. Half of the
    /// pulls leave torn pages. Kill the processes, then call `power_off`.
    pub fn pull(&mut self) -> Loss {
        let loss = if self.rng.chance(1, 2) {
            self.torn_pulls += 1;
            Loss::Torn {
                seed: self.rng.next_u64(),
            }
        } else {
            Loss::Clean
        };
        self.image = self.fs.as_ref().expect("powered on").pull_plug(loss);
        self.pulls += 1;
        loss
    }

    /// Unmounts after a pull (the processes on it must be gone).
    pub fn power_off(&mut self) {
        if let Some(fs) = self.fs.take() {
            fs.unmount().expect("unmount plugfs");
        }
    }

    /// Replaces the disk with an empty one and powers it on (a long run
    /// starts over now and then, so that checking stays quick). Stop the
    /// processes on it first.
    pub fn wipe(&mut self) {
        if let Some(fs) = self.fs.take() {
            let _ = fs.pull_plug(Loss::Clean);
            fs.unmount().expect("unmount plugfs");
        }
        self.image = Image::empty_dir();
        self.power_on();
    }

    /// Waits between `min_ms` and `max_ms`, seeded.
    pub fn random_wait(&mut self, min_ms: u64, max_ms: u64) {
        std::thread::sleep(Duration::from_millis(min_ms + self.rng.below(max_ms - min_ms + 1)));
    }

    pub fn report(&self, test: &str) {
        eprintln!(
            "{test}: {} plug pulls ({} torn), seed {}",
            self.pulls, self.torn_pulls, self.seed
        );
    }
}

impl Drop for PowerCut {
    fn drop(&mut self) {
        if let Some(fs) = self.fs.take() {
            let _ = fs.pull_plug(Loss::Clean);
            let _ = fs.unmount();
        }
    }
}

/// A client process whose stdout lines are collected, with the time each
/// arrived, as it prints them.
pub struct LineProcess {
    child: Child,
    pub lines: Arc<Mutex<Vec<(Instant, String)>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl LineProcess {
    pub fn spawn(program: &Path, args: &[&str], stderr_path: &Path) -> LineProcess {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stderr_path)
            .unwrap();
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        LineProcess {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Kills the process and returns every line it printed.
    pub fn kill(mut self) -> Vec<(Instant, String)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.lines.lock().unwrap())
    }

    /// Waits for the process to exit (up to `limit`) and returns its lines.
    pub fn wait(mut self, limit: Duration) -> Vec<(Instant, String)> {
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < limit, "client still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()
    }
}

impl Drop for LineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! One model case carried out for real: `relay broker`, `relay send` and
//! `relay load` as three processes on 127.0.0.1 around a temporary
//! directory (logs/, targets/, state/, the SQLite warehouse), the
//! application's writes done by this process, operator actions done as an
//! operator would do them, faults as `kill -9` and a held warehouse. Every
//! action tells the reference what it did. An action whose precondition
//! does not hold (a rotation of a file that is not there, a `Start` of a
//! running role) is skipped, so any drawn or shrunk schedule can run.

use crate::reference::{banner, Reference, Table, LINE_BYTES_MAX, LONG_LINE_FILLER_BYTES};
use crate::schedule::{Action, Case, Columns, Role, TableSetup, Warehouse, FILES, SYMLINKED_FILE};
use crate::store::Store;
use crate::support::{metric_sum, relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long loading may make no progress before the case fails as stalled.
pub const STALL_MAX: Duration = Duration::from_secs(25);
/// How long the lag gauge may take to show lines written during an outage
/// (the loader refreshes it while it retries).
const LAG_VISIBLE_MAX: Duration = Duration::from_secs(15);
/// How long the sender may take to set aside the half line of a file
/// deleted under it (it looks every `poll_interval_ms`).
const SET_ASIDE_MAX: Duration = Duration::from_secs(10);
/// Segments of 16 KiB: a case rolls several, so sealed segments exist.
const SEGMENT_BYTES: u64 = 16 * 1024;
/// The loader's consumer group.
pub const GROUP: &str = "model";

pub struct World {
    pub dir: PathBuf,
    pub store: Store,
    pub case_columns: Columns,
    pub reference: Reference,
    broker: BrokerProcess,
    sender: RelayProcess,
    loader: RelayProcess,
    up: HashSet<Role>,
    /// Bytes of the loader's log before its latest launch: that launch's
    /// `--metrics` address is announced after them.
    loader_log_mark: u64,
    config: PathBuf,
    /// Rotated copies of each file, oldest first.
    rotated: BTreeMap<u8, Vec<PathBuf>>,
    /// Files written to since the last settle (their lines may be unsent).
    dirty: HashSet<u8>,
    copies: u32,
    backfills: u32,
    /// Actions skipped because their preconditions did not hold.
    pub skipped: usize,
}

impl World {
    pub fn start(case: &Case, dir: &Path) -> Self {
        for sub in ["logs", "targets", "state"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let broker = BrokerProcess::start(dir, &format!("[broker.log]\nsegment_bytes = {SEGMENT_BYTES}\n"));
        let created = run_with_timeout(
            Command::new(relay_binary())
                .args(["topics", "create", "events", "--partitions", "2", "--broker"])
                .arg(&broker.address),
            Duration::from_secs(30),
        );
        assert!(created.status.success(), "topics create: {created:?}");
        let store = match case.warehouse {
            Warehouse::Postgres => Store::new_postgres(next_case_number()),
            Warehouse::Sqlite => None,
        }
        .unwrap_or_else(|| Store::Sqlite(dir.join("warehouse.db")));
        if case.table != TableSetup::Created {
            premake_tables(&store, case.table, case.columns);
        }
        let config = dir.join("pipeline.toml");
        std::fs::write(&config, pipeline_config(dir, &broker.address, &store, case)).unwrap();
        let role_args = |role: &str| -> Vec<String> {
            let mut args = vec![role.to_owned(), "--config".into(), config.display().to_string()];
            if role == "load" {
                args.extend(["--metrics".into(), "127.0.0.1:0".into()]);
            }
            args
        };
        let sender = RelayProcess::start(role_args("send"), &dir.join("send.log"));
        let loader = RelayProcess::start(role_args("load"), &dir.join("load.log"));
        Self {
            dir: dir.to_owned(),
            store,
            case_columns: case.columns,
            reference: Reference::new(case.values_seed),
            broker,
            sender,
            loader,
            up: [Role::Broker, Role::Sender, Role::Loader].into_iter().collect(),
            loader_log_mark: 0,
            config,
            rotated: BTreeMap::new(),
            dirty: HashSet::new(),
            copies: 0,
            backfills: 0,
            skipped: 0,
        }
    }

    fn live_path(&self, file: u8) -> PathBuf {
        self.dir.join("logs").join(format!("{}.log", FILES[file as usize]))
    }

    /// Where `file`'s bytes are: the link's target for the symlinked file.
    fn data_path(&self, file: u8) -> PathBuf {
        if file == SYMLINKED_FILE {
            self.dir.join("targets").join(format!("{}.log", FILES[file as usize]))
        } else {
            self.live_path(file)
        }
    }

    /// Appends `bytes` to `file` as the application does (O_APPEND), making
    /// the file (and for the symlinked one, its link) when it is not there.
    fn write(&mut self, file: u8, bytes: &[u8]) {
        let data = self.data_path(file);
        let mut handle = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&data)
            .unwrap();
        handle.write_all(bytes).unwrap();
        let live = self.live_path(file);
        if file == SYMLINKED_FILE && std::fs::symlink_metadata(&live).is_err() {
            std::os::unix::fs::symlink(&data, &live).unwrap();
        }
        self.dirty.insert(file);
    }

    /// Completes `file`'s pending half line first, as an application does
    /// before its next line.
    fn write_lines(&mut self, file: u8, lines: &[String]) {
        let mut bytes = Vec::new();
        if let Some(rest) = self.reference.finish_partial(file) {
            bytes.extend_from_slice(rest.as_bytes());
            bytes.push(b'\n');
        }
        for line in lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        self.write(file, &bytes);
    }

    fn append(&mut self, file: u8, count: u16, ids: bool, filler_bytes: usize) {
        let lines: Vec<String> = (0..count)
            .map(|_| self.reference.line(file, ids, filler_bytes))
            .collect();
        self.write_lines(file, &lines);
    }

    /// Carries out one action; `Err` is a broken promise.
    pub fn apply(&mut self, action: &Action) -> Result<(), String> {
        match *action {
            Action::Append { file, lines, ids } => self.append(file, lines, ids, 0),
            Action::AppendLong { file } => self.append(file, 1, true, LONG_LINE_FILLER_BYTES),
            Action::AppendOverlong { file } => {
                let line = self.reference.overlong_line(file);
                self.write_lines(file, &[line]);
            }
            Action::Compress { file } => self.compress(file)?,
            Action::Banner { file } => {
                self.reference.banners += 1;
                self.write_lines(file, &[banner()]);
            }
            Action::StartPartial { file } => {
                if self.reference.pending.contains_key(&file) {
                    self.skip();
                } else {
                    let first = self.reference.start_partial(file);
                    self.write(file, first.as_bytes());
                }
            }
            Action::FinishPartial { file } => {
                if self.reference.pending.contains_key(&file) {
                    self.write_lines(file, &[]);
                } else {
                    self.skip();
                }
            }
            Action::RotateRename { file } => self.rotate_rename(file),
            Action::CopyTruncate { file } => self.copy_truncate(file),
            Action::Rewrite { file } => self.rewrite(file)?,
            Action::DeleteRotated { file } => self.delete_rotated(file)?,
            Action::Delete { file } => self.delete(file)?,
            Action::Kill { role } => {
                self.stop(role);
                self.start_role(role);
            }
            Action::Restart { role } => self.restart_cleanly(role)?,
            Action::ChangeGlob => self.change_glob()?,
            Action::Stop { role } => self.stop(role),
            Action::Start { role } => self.start_role(role),
            Action::WarehouseOutage { lines } => self.warehouse_outage(lines)?,
            Action::Backfill { own_group } => self.backfill(own_group)?,
            Action::CorruptSealed { pick } => self.corrupt_sealed(pick),
            Action::Settle => {
                if self.all_up() {
                    self.settle()?;
                } else {
                    self.skip();
                }
            }
            Action::Pause { ms } => std::thread::sleep(Duration::from_millis(ms.into())),
        }
        self.check_alive()
    }

    fn skip(&mut self) {
        self.skipped += 1;
    }

    fn rotate_rename(&mut self, file: u8) {
        let live = self.live_path(file);
        if file == SYMLINKED_FILE || !live.exists() {
            return self.skip();
        }
        self.copies += 1;
        let rotated = live.with_extension(format!("log.{}", self.copies));
        std::fs::rename(&live, &rotated).unwrap();
        self.reference.strand_partial(file, Some(rotated.clone()));
        self.rotated.entry(file).or_default().push(rotated);
    }

    fn copy_truncate(&mut self, file: u8) {
        let data = self.data_path(file);
        if !data.exists() || self.reference.pending.contains_key(&file) {
            return self.skip();
        }
        self.copies += 1;
        let copy = self.live_path(file).with_extension(format!("log.{}", self.copies));
        std::fs::copy(&data, &copy).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&data)
            .unwrap();
        self.rotated.entry(file).or_default().push(copy);
    }

    /// True when `file`'s complete lines are all loaded, waiting for that
    /// when every role is up; false when that cannot be known now.
    fn loaded(&mut self, file: u8) -> Result<bool, String> {
        if !self.dirty.contains(&file) {
            return Ok(true);
        }
        if !self.all_up() {
            return Ok(false);
        }
        self.settle()?;
        Ok(true)
    }

    fn rewrite(&mut self, file: u8) -> Result<(), String> {
        let data = self.data_path(file);
        if !data.exists() || self.reference.pending.contains_key(&file) || !self.loaded(file)? {
            self.skip();
            return Ok(());
        }
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&data)
            .unwrap();
        Ok(())
    }

    /// Deleting bytes the sender may not have read yet is the operator's
    /// loss, not Relay's: a path holding a half line is deleted only while
    /// the sender runs, after it had time to read it.
    fn may_delete(&mut self, file: u8, holds_half_line: bool) -> Result<bool, String> {
        if !self.loaded(file)? {
            return Ok(false);
        }
        if holds_half_line {
            if !self.up.contains(&Role::Sender) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(true)
    }

    /// `file`'s oldest rotated copy, taken off the list as `gone` (deleted
    /// or compressed) once it may go (see [`World::may_delete`]).
    fn retire_oldest_rotated(&mut self, file: u8, gone: impl FnOnce(&Path)) -> Result<(), String> {
        let Some(oldest) = self.rotated.get(&file).and_then(|r| r.first()).cloned() else {
            self.skip();
            return Ok(());
        };
        let holds = self
            .reference
            .stranded
            .iter()
            .any(|s| s.path.as_deref() == Some(oldest.as_path()));
        if !self.may_delete(file, holds)? {
            self.skip();
            return Ok(());
        }
        gone(&oldest);
        self.rotated.get_mut(&file).unwrap().remove(0);
        self.reference.deleted(&oldest);
        self.half_line_set_aside(holds)
    }

    /// The compressed copy stays at the paths, and is never a source of lines.
    fn compress(&mut self, file: u8) -> Result<(), String> {
        self.retire_oldest_rotated(file, |oldest| {
            let gzip = Command::new("gzip").arg(oldest).status().expect("gzip");
            assert!(gzip.success(), "gzip {}", oldest.display());
        })
    }

    fn delete_rotated(&mut self, file: u8) -> Result<(), String> {
        self.retire_oldest_rotated(file, |oldest| std::fs::remove_file(oldest).unwrap())
    }

    fn delete(&mut self, file: u8) -> Result<(), String> {
        let live = self.live_path(file);
        if std::fs::symlink_metadata(&live).is_err() {
            self.skip();
            return Ok(());
        }
        let holds = self.reference.pending.contains_key(&file);
        if !self.may_delete(file, holds)? {
            self.skip();
            return Ok(());
        }
        std::fs::remove_file(&live).unwrap();
        if file == SYMLINKED_FILE {
            std::fs::remove_file(self.data_path(file)).unwrap();
        }
        self.reference.strand_partial(file, None);
        self.half_line_set_aside(holds)
    }

    /// After a file holding a half line is deleted, the sender (up, see
    /// [`World::may_delete`]) sets the half line aside before the next
    /// action: one that kills it first would leave nothing that could tell
    /// (the bytes are gone from disk, and were never complete), so the
    /// reference could not know the outcome.
    fn half_line_set_aside(&mut self, held: bool) -> Result<(), String> {
        let state = self.dir.join("state");
        if held && !wait_until(SET_ASIDE_MAX, || crate::check::set_aside_done(&state, &self.reference)) {
            return Err(format!(
                "the half line of a deleted file was not set aside within {SET_ASIDE_MAX:?}; the sender's log:\n{}",
                tail(&self.sender.log())
            ));
        }
        Ok(())
    }

    /// Segments of the topic that are no longer written to (every one but
    /// the last of each partition).
    fn sealed_segments(&self) -> Vec<PathBuf> {
        let mut sealed = Vec::new();
        for partition in 0..2 {
            let dir = self.broker.data_dir.join(format!("events-{partition}"));
            let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|entries| entries.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            logs.retain(|p| p.extension().is_some_and(|e| e == "log"));
            logs.sort();
            logs.pop();
            // A segment rewritten without a batch set aside may hold nothing.
            sealed.extend(
                logs.into_iter()
                    .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0)),
            );
        }
        sealed
    }

    fn corrupt_sealed(&mut self, pick: u16) {
        if !self.up.contains(&Role::Broker) {
            return self.skip();
        }
        let sealed = self.sealed_segments();
        if sealed.is_empty() {
            return self.skip();
        }
        let segment = &sealed[pick as usize % sealed.len()];
        self.stop(Role::Broker);
        let mut bytes = std::fs::read(segment).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xFF;
        std::fs::write(segment, bytes).unwrap();
        self.reference.corruptions += 1;
        self.start_role(Role::Broker);
    }

    /// SIGTERM and a start; a clean stop must exit 0.
    fn restart_cleanly(&mut self, role: Role) -> Result<(), String> {
        if !self.up.contains(&role) {
            self.skip();
            return Ok(());
        }
        let code = match role {
            Role::Broker => self.broker.terminate(),
            Role::Sender => self.sender.terminate(),
            Role::Loader => self.loader.terminate(),
        };
        self.up.remove(&role);
        // A stop while another role is down may fail to drain: exit 3 (cannot
        // reach) is the one answer besides 0 that keeps the promise; `None`
        // is a SIGTERM that came before the handlers were in place (as a kill).
        if !matches!(code, Some(0) | Some(3) | None) {
            return Err(format!("{role:?} stopped with SIGTERM exited {code:?}"));
        }
        self.start_role(role);
        Ok(())
    }

    fn change_glob(&mut self) -> Result<(), String> {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let logs = self.dir.join("logs");
        let together = format!("paths = [\"{}/*.log*\"]", logs.display());
        let apart = format!(
            "paths = [{}]",
            FILES.map(|f| format!("\"{}/{f}.log*\"", logs.display())).join(", ")
        );
        let changed = if text.contains(&together) {
            text.replace(&together, &apart)
        } else {
            text.replace(&apart, &together)
        };
        // Atomically: a role restarting now must read one whole config or the other.
        let next = self.config.with_extension("toml.next");
        std::fs::write(&next, changed).unwrap();
        std::fs::rename(&next, &self.config).unwrap();
        if self.up.contains(&Role::Sender) {
            self.restart_cleanly(Role::Sender)?;
        }
        Ok(())
    }

    /// Records the broker set aside at the very end of a partition (a
    /// quarantine file with no record after it): a loader cannot tell them
    /// lost until the partition's next record arrives; the broker's ERROR,
    /// its corrupt-batch counter and `relay lag` say so meanwhile.
    pub fn tail_quarantined(&self) -> i64 {
        let mut tail = 0;
        for partition in 0..2 {
            let dir = self.broker.data_dir.join(format!("events-{partition}"));
            let files: Vec<(String, u64)> = std::fs::read_dir(&dir)
                .map(|entries| {
                    entries
                        .map(|e| e.unwrap())
                        .map(|e| {
                            (
                                e.file_name().to_string_lossy().into_owned(),
                                e.metadata().map_or(0, |m| m.len()),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let number = |text: &str| text.parse::<i64>().unwrap_or(0);
            for (name, _) in &files {
                let Some((first, end)) = name.strip_suffix(".quarantine").and_then(|r| r.split_once('-')) else {
                    continue;
                };
                let (first, end) = (number(first), number(end));
                let later = files.iter().any(|(other, bytes)| {
                    *bytes > 0 && other.strip_suffix(".log").is_some_and(|base| number(base) >= end)
                });
                if !later {
                    tail += end - first;
                }
            }
        }
        tail
    }

    fn all_up(&self) -> bool {
        self.up.len() == 3
    }

    fn stop(&mut self, role: Role) {
        match role {
            Role::Broker => self.broker.kill9(),
            Role::Sender => self.sender.kill9(),
            Role::Loader => self.loader.kill9(),
        }
        self.up.remove(&role);
    }

    fn start_role(&mut self, role: Role) {
        if !self.up.insert(role) {
            return;
        }
        match role {
            Role::Broker => self.broker.restart(),
            Role::Sender => self.sender.launch(),
            Role::Loader => self.launch_loader(),
        }
    }

    fn launch_loader(&mut self) {
        self.loader_log_mark = std::fs::metadata(&self.loader.log_path).map_or(0, |m| m.len());
        self.loader.launch();
    }

    /// The running loader's `--metrics` address, as its latest launch
    /// announced it (a loader that exits 3 meanwhile is started again).
    fn loader_metrics(&mut self) -> Result<String, String> {
        let started = Instant::now();
        while started.elapsed() < STALL_MAX {
            let log = std::fs::read(&self.loader.log_path).unwrap_or_default();
            let since = String::from_utf8_lossy(&log[(self.loader_log_mark as usize).min(log.len())..]).into_owned();
            if let Some(address) = since.lines().find_map(crate::support::metrics_address) {
                return Ok(address);
            }
            self.check_alive()?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the loader announced no metrics address:\n{}",
            tail(&self.loader.log())
        ))
    }

    pub fn start_all(&mut self) {
        for role in [Role::Broker, Role::Sender, Role::Loader] {
            self.start_role(role);
        }
    }

    /// A role that exited by itself broke the promise, except for exit 3
    /// (cannot reach the broker or warehouse, say while the broker restarts):
    /// the units restart it after 1 s (`Restart=always`), and so does this.
    fn check_alive(&mut self) -> Result<(), String> {
        for role in [Role::Sender, Role::Loader] {
            let process = if role == Role::Sender {
                &mut self.sender
            } else {
                &mut self.loader
            };
            let Some(Ok(Some(status))) = process.child.as_mut().map(|child| child.try_wait()) else {
                continue;
            };
            process.child = None;
            if status.code() != Some(3) {
                return Err(format!(
                    "{role:?} exited by itself ({status}); its log:\n{}",
                    tail(&process.log())
                ));
            }
            std::thread::sleep(Duration::from_secs(1));
            if role == Role::Loader {
                self.launch_loader();
            } else {
                process.launch();
            }
        }
        Ok(())
    }

    /// Holds the warehouse while `lines` are written: the loader's lag gauge
    /// must follow them (an outage nobody sees is the seeds' failure).
    fn warehouse_outage(&mut self, lines: u16) -> Result<(), String> {
        if !self.all_up() {
            self.skip();
            return Ok(());
        }
        self.settle()?;
        let metrics = self.loader_metrics()?;
        let store = std::mem::replace(&mut self.store, Store::Sqlite(PathBuf::new()));
        let (seen, lag) = store.outage(|| {
            let mut lag = None;
            let mut lag_reaches = |at_least: u16| {
                wait_until(LAG_VISIBLE_MAX, || {
                    lag = crate::support::http_get(&metrics, "/metrics")
                        .and_then(|(_, body)| metric_sum(&body, "relay_loader_lag", &[("table", "events")]));
                    lag.is_some_and(|lag| lag >= f64::from(at_least))
                })
            };
            // The first lines are fetched before the write fails; the rest
            // arrive while the loader only waits on the warehouse.
            self.append(0, lines, true, 0);
            let fetched = lag_reaches(lines);
            std::thread::sleep(Duration::from_secs(2));
            self.append(0, lines, true, 0);
            (fetched && lag_reaches(2 * lines), lag)
        });
        self.store = store;
        if !seen {
            return Err(format!(
                "warehouse down while 2 x {lines} lines were written: relay_loader_lag showed {lag:?} after {LAG_VISIBLE_MAX:?}"
            ));
        }
        Ok(())
    }

    fn backfill(&mut self, own_group: bool) -> Result<(), String> {
        if !self.up.contains(&Role::Broker) {
            self.skip();
            return Ok(());
        }
        self.backfills += 1;
        let mut command = Command::new(relay_binary());
        command.args(["load", "--config"]).arg(&self.config);
        command.args(["--only-table", "kinds", "--until-end", "--from", "earliest"]);
        if own_group {
            command.args(["--group", &format!("backfill-{}", self.backfills)]);
        }
        let output = run_with_timeout(&mut command, Duration::from_secs(120));
        let expected = if own_group { 0 } else { 2 };
        if output.status.code() != Some(expected) {
            return Err(format!(
                "backfill of kinds ({}) exited {:?}, expected {expected}\nstderr:\n{}",
                if own_group { "its own group" } else { "no --group" },
                output.status.code(),
                tail(&String::from_utf8_lossy(&output.stderr))
            ));
        }
        Ok(())
    }

    /// Waits until every complete line is loaded and every banner rejected
    /// (after a corruption: or counted lost); fails when nothing moves for
    /// `STALL_MAX`.
    pub fn settle(&mut self) -> Result<(), String> {
        let (lines, banners) = (self.reference.complete.len() as i64, self.reference.banners as i64);
        let mut last = (-1, -1, -1);
        let mut moved = Instant::now();
        loop {
            let now = crate::check::progress(&self.store, self.case_columns);
            let done = if self.reference.corruptions == 0 {
                now.0 >= lines && now.1 >= banners
            } else {
                now.0 + now.1 + now.2 >= lines + banners
            };
            // Lines the sender must set aside count too: an operator's action
            // that waits for a settle may then destroy nothing unread.
            if done && crate::check::set_aside_done(&self.dir.join("state"), &self.reference) {
                self.dirty.clear();
                return Ok(());
            }
            if now != last {
                (last, moved) = (now, Instant::now());
            }
            self.check_alive()?;
            if moved.elapsed() > STALL_MAX {
                return Err(format!(
                    "stalled for {STALL_MAX:?}: {} of {lines} lines loaded, {} of {banners} banners rejected, \
                     {} records lost",
                    now.0, now.1, now.2
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// After the schedule: every role up, everything loaded, and `relay lag`
    /// telling the truth: exit 0, or 1 while a recorded gap is not acknowledged.
    pub fn finish(&mut self) -> Result<(), String> {
        self.start_all();
        self.settle()?;
        if self.reference.stranded.iter().any(|s| s.path.is_some()) {
            // Rotated files idle past rotate_wait_ms are closed, their half lines set aside.
            std::thread::sleep(Duration::from_millis(2_000));
        }
        let state = self.dir.join("state");
        wait_until(STALL_MAX, || crate::check::set_aside_done(&state, &self.reference));
        // Everything is loaded and the warehouse is up: the loader is healthy.
        let metrics = self.loader_metrics()?;
        let mut health = None;
        if !wait_until(LAG_VISIBLE_MAX, || {
            health = crate::support::http_get(&metrics, "/health");
            health.as_ref().is_some_and(|(status, _)| *status == 200)
        }) {
            return Err(format!("the loader's /health with everything loaded: {health:?}"));
        }
        // The broker's copy of the offsets follows each warehouse commit.
        let gaps = crate::check::progress(&self.store, self.case_columns).2;
        let tail = self.tail_quarantined();
        // Unacknowledged gaps, and records set aside at a partition's very
        // end (no later record shows the jump yet), keep `relay lag` at 1.
        let expected = if gaps > 0 || tail > 0 { 1 } else { 0 };
        let mut lag = None;
        let truthful = wait_until(LAG_VISIBLE_MAX, || {
            let output = run_with_timeout(
                Command::new(relay_binary())
                    .args(["lag", "--group", GROUP, "--max", "0", "--broker"])
                    .arg(&self.broker.address),
                Duration::from_secs(30),
            );
            let done = output.status.code() == Some(expected);
            lag = Some(output);
            done
        });
        if !truthful {
            let lag = lag.unwrap();
            return Err(format!(
                "relay lag --max 0 exited {:?} with everything loaded and {gaps} records lost, expected {expected}:\n{}{}",
                lag.status.code(),
                String::from_utf8_lossy(&lag.stdout),
                String::from_utf8_lossy(&lag.stderr)
            ));
        }
        self.check_alive()
    }

    pub fn logs(&self) -> String {
        format!(
            "--- broker log (tail)\n{}\n--- sender log (tail)\n{}\n--- loader log (tail)\n{}",
            tail(&self.broker.log()),
            tail(&self.sender.log()),
            tail(&self.loader.log())
        )
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The columns of a table: (name, JSON pointer, type) of the typed case.
pub const TYPED_COLUMNS: [(&str, &str, &str, &str); 7] = [
    ("seq", "/seq", "bigint", "INTEGER"),
    ("id", "/id", "text", "TEXT"),
    ("kind", "/kind", "text", "TEXT"),
    ("ts", "/ts", "timestamptz", "TEXT"),
    ("n", "/n", "bigint", "INTEGER"),
    ("s", "/s", "text", "TEXT"),
    ("x", "/x", "double", "REAL"),
];

fn columns_config(case: &Case, section: &str) -> String {
    match case.columns {
        Columns::None => String::new(),
        Columns::Typed => TYPED_COLUMNS
            .iter()
            .map(|(name, pointer, ty, _)| {
                format!("\n[[{section}.columns]]\nname = \"{name}\"\npointer = \"{pointer}\"\ntype = \"{ty}\"\n")
            })
            .collect(),
    }
}

fn pipeline_config(dir: &Path, broker: &str, store: &Store, case: &Case) -> String {
    let create = case.table == TableSetup::Created;
    format!(
        "[client]\nbrokers = \"{broker}\"\n\n\
         [[send]]\ntopic = \"events\"\npaths = [\"{logs}/*.log*\"]\nstate_dir = \"{state}\"\n\
         discover_interval_ms = 100\npoll_interval_ms = 50\nrotate_wait_ms = 1000\nline_bytes_max = {LINE_BYTES_MAX}\n\n\
         [[load]]\ntopic = \"events\"\ngroup = \"{GROUP}\"\nwarehouse = \"{warehouse}\"\n\
         table = \"events\"\ncreate_table = {create}\ndedup_key = \"/id\"\nbatch_wait_ms = 100\n\
         retry_backoff_max_ms = 500\n{columns}\n\
         [[load.route]]\ntable = \"kinds\"\nwhen = {{ pointer = \"/kind\", equals = \"k\" }}\n\
         create_table = {create}\ndedup_key = \"/id\"\n{route_columns}",
        logs = dir.join("logs").display(),
        state = dir.join("state").display(),
        warehouse = store.url(),
        columns = columns_config(case, "load"),
        route_columns = columns_config(case, "load.route"),
    )
}

/// The operator's own tables, made before the loader starts.
fn premake_tables(store: &Store, setup: TableSetup, columns: Columns) {
    let postgres = store.is_postgres();
    for table in [Table::Events, Table::Kinds].map(Table::name) {
        let body: Vec<String> = match columns {
            Columns::Typed => TYPED_COLUMNS
                .iter()
                .map(|(name, _, ty, sqlite)| match (postgres, *ty) {
                    (false, _) => format!("{name} {sqlite}"),
                    (true, "double") => format!("{name} double precision"),
                    (true, ty) => format!("{name} {ty}"),
                })
                .collect(),
            // What a table without columns holds: the event and where it came from.
            Columns::None if postgres => [
                "event jsonb",
                "relay_topic text",
                "relay_partition bigint",
                "relay_offset bigint",
            ]
            .map(str::to_owned)
            .into_iter()
            .chain(["relay_timestamp timestamptz".to_owned()])
            .collect(),
            Columns::None => [
                "event TEXT",
                "relay_topic TEXT",
                "relay_partition INTEGER",
                "relay_offset INTEGER",
            ]
            .map(str::to_owned)
            .into_iter()
            .chain(["relay_timestamp TEXT".to_owned()])
            .collect(),
        };
        let key = match setup {
            TableSetup::PrimaryKey => "dedup_key TEXT PRIMARY KEY".to_owned(),
            _ => format!("dedup_key TEXT NOT NULL, CONSTRAINT {table}_operator_unique UNIQUE (dedup_key)"),
        };
        // A column of the operator's own that the loader never writes.
        let note = if postgres { "note text" } else { "note TEXT" };
        store.execute(&format!("CREATE TABLE {table} ({}, {note}, {key});", body.join(", ")));
    }
}

/// Numbers the cases of a run (each PostgreSQL case gets a database of its own).
fn next_case_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

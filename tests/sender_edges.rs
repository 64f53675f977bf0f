//! The sender's edges that every earlier test missed (issue 28), through the
//! `relay` binary: `relay send` then `relay load` into SQLite (flags only, the
//! whole event in a JSON column). A file rewritten in place with the same
//! first bytes, an unterminated last line of a file that goes away, symlinked
//! log files, a copytruncate of a small file or during a broker outage, a
//! rewrite whose new identity
//! could not be saved, and a rotated file that cannot be opened for a while:
//! every line is loaded exactly once or set aside with its reason.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;
use support::{relay_binary, wait_until, BrokerProcess, RelayProcess};

/// A directory with logs/, state/ and the warehouse.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log_file(&self, name: &str) -> PathBuf {
        self.path("logs").join(name)
    }

    /// The arguments of a sender of `logs/<pattern>` from a `[[send]]`
    /// section with `extra` settings (short waits, so tests are quick).
    fn sender_args(&self, broker: &BrokerProcess, topic: &str, pattern: &str, extra: &str) -> Vec<String> {
        let config = self.path(&format!("send-{topic}.toml"));
        std::fs::write(
            &config,
            format!(
                "[[send]]\ntopic = \"{topic}\"\npaths = [\"{}\"]\nstate_dir = \"{}\"\nrotate_wait_ms = 1000\n{extra}\n",
                self.log_file(pattern).display(),
                self.path("state").display()
            ),
        )
        .unwrap();
        let args = [
            "send",
            "--broker",
            &broker.address,
            "--config",
            &config.display().to_string(),
        ];
        args.iter().map(|s| s.to_string()).collect()
    }

    fn sender(&self, broker: &BrokerProcess, topic: &str, pattern: &str, extra: &str) -> RelayProcess {
        RelayProcess::start(self.sender_args(broker, topic, pattern, extra), &self.path("send.log"))
    }

    fn loader(&self, broker: &BrokerProcess, topic: &str) -> RelayProcess {
        let warehouse = format!("sqlite://{}", self.path("warehouse.db").display());
        let args = [
            "load",
            "--broker",
            &broker.address,
            "--topic",
            topic,
            "--group",
            "loaders",
            "--warehouse",
            &warehouse,
            "--table",
            "events",
        ];
        RelayProcess::start(args.iter().map(|s| s.to_string()).collect(), &self.path("load.log"))
    }

    /// Appends [`lines`] for `numbers` to `logs/<name>`.
    fn append(&self, name: &str, numbers: std::ops::Range<u64>) {
        self.append_text(name, &lines(numbers));
    }

    fn append_text(&self, name: &str, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(name))
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// logrotate's `copytruncate`: `cp <name> <copy> && : > <name>`.
    fn copytruncate(&self, name: &str, copy: &str) {
        std::fs::copy(self.log_file(name), self.log_file(copy)).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.log_file(name))
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    /// `app > app.log`: emptied in place (same inode), then written again.
    fn rewrite_in_place(&self, name: &str, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.log_file(name))
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// How many rows hold each `n` (an `n` loaded twice counts 2).
    fn loaded(&self) -> BTreeMap<u64, u64> {
        let path = self.path("warehouse.db");
        if !path.exists() {
            return BTreeMap::new();
        }
        let connection = rusqlite::Connection::open(path).unwrap();
        let statement = connection.prepare(
            "select json_extract(event, '$.n'), count(*) from events \
             where json_extract(event, '$.n') is not null group by 1",
        );
        let Ok(mut statement) = statement else {
            return BTreeMap::new();
        };
        statement
            .query_map([], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn wait_for_rows(&self, rows: u64, loader: &RelayProcess) {
        let loaded = wait_until(Duration::from_secs(60), || self.loaded().values().sum::<u64>() >= rows);
        assert!(
            loaded,
            "{} of {rows} rows loaded\nsender log:\n{}\nloader log:\n{}",
            self.loaded().values().sum::<u64>(),
            std::fs::read_to_string(self.path("send.log")).unwrap_or_default(),
            loader.log()
        );
    }

    /// Asserts every `n` in `expected` is loaded exactly once, nothing else.
    fn assert_exactly_once(&self, expected: &[u64]) {
        // Give a duplicate the time to arrive before declaring there is none.
        std::thread::sleep(Duration::from_secs(2));
        let loaded = self.loaded();
        let missing: Vec<u64> = expected.iter().copied().filter(|n| !loaded.contains_key(n)).collect();
        let twice: Vec<(&u64, &u64)> = loaded.iter().filter(|(_, count)| **count > 1).take(10).collect();
        let log = std::fs::read_to_string(self.path("send.log")).unwrap_or_default();
        assert!(
            missing.is_empty(),
            "{} lines never loaded, first ten: {:?}\nsender log:\n{log}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        assert!(
            twice.is_empty(),
            "lines loaded more than once, first ten (n, rows): {twice:?}\nsender log:\n{log}"
        );
        let unexpected: Vec<&u64> = loaded.keys().filter(|n| !expected.contains(n)).take(10).collect();
        assert!(
            unexpected.is_empty(),
            "lines loaded that were never written: {unexpected:?}"
        );
    }

    fn rejects(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.path("state").join("rejects")).unwrap_or_default()).into_owned()
    }
}

/// `{"n":N,"p":"xx"}` lines, padded to one length whatever N (below
/// 10,000,000): rewrites put other lines at the same positions.
fn lines(numbers: std::ops::Range<u64>) -> String {
    numbers
        .map(|n| format!("{{\"n\":{n},\"p\":\"{}\"}}\n", "x".repeat(7 - n.to_string().len())))
        .collect()
}

/// A banner longer than the identity's 256-byte fingerprint of first bytes.
fn banner() -> String {
    format!("{{\"banner\":\"{}\"}}\n", "app v1.2.3 starting; ".repeat(16))
}

#[test]
fn rewritten_file_with_same_head_is_sent_whole() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append_text("app.log", &banner());
    scene.append("app.log", 0..1000);
    let mut sender = scene.sender(&broker, "rewrite", "app.log", "");
    let loader = scene.loader(&broker, "rewrite");
    scene.wait_for_rows(1000, &loader);
    sender.terminate();
    // `app > app.log` on restart: the same banner, then 3,000 new lines.
    scene.rewrite_in_place("app.log", &format!("{}{}", banner(), lines(1000..4000)));
    sender.launch();
    scene.wait_for_rows(4000, &loader);
    scene.assert_exactly_once(&(0..4000).collect::<Vec<_>>());
}

#[test]
fn unterminated_line_of_deleted_file_is_set_aside() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.log", 0..100);
    scene.append_text("app.log", "{\"n\":100,\"cut\":\"sh");
    let sender = scene.sender(&broker, "deleted", "app.log", "");
    let loader = scene.loader(&broker, "deleted");
    scene.wait_for_rows(100, &loader);
    std::fs::remove_file(scene.log_file("app.log")).unwrap();
    let set_aside = wait_until(Duration::from_secs(30), || {
        scene.rejects().contains("{\"n\":100,\"cut\":\"sh")
    });
    assert!(
        set_aside,
        "the unterminated line is not in the rejects file\n{}",
        sender.log()
    );
    let rejects = scene.rejects();
    assert!(
        rejects.contains("reason=unterminated last line of a deleted file"),
        "{rejects}"
    );
    // The WARN follows the entry's fsync: wait for it too.
    let warned = wait_until(Duration::from_secs(10), || sender.log().contains("never ended"));
    assert!(warned, "no WARN\n{}", sender.log());
    scene.assert_exactly_once(&(0..100).collect::<Vec<_>>());
}

#[test]
fn unterminated_line_of_rotated_file_is_set_aside_after_rotate_wait_or_sent_once_completed() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.log", 0..100);
    scene.append_text("app.log", "{\"n\":100");
    let sender = scene.sender(&broker, "rotated", "app.log", "");
    let loader = scene.loader(&broker, "rotated");
    scene.wait_for_rows(100, &loader);
    // Rotated, then completed within rotate_wait: sent once completed.
    std::fs::rename(scene.log_file("app.log"), scene.log_file("app.log.1")).unwrap();
    scene.append_text("app.log.1", "}\n");
    scene.append("app.log", 200..300);
    scene.append_text("app.log", "{\"n\":300,\"never\":\"ends");
    scene.wait_for_rows(201, &loader);
    // Rotated again and never completed: set aside after rotate_wait.
    std::fs::rename(scene.log_file("app.log"), scene.log_file("app.log.2")).unwrap();
    let set_aside = wait_until(Duration::from_secs(30), || {
        scene.rejects().contains("{\"n\":300,\"never\":\"ends")
    });
    assert!(
        set_aside,
        "the unterminated line is not in the rejects file\n{}",
        sender.log()
    );
    assert!(
        scene
            .rejects()
            .contains("reason=unterminated last line of a file rotated away"),
        "{}",
        scene.rejects()
    );
    assert!(
        !scene.rejects().contains("{\"n\":100"),
        "a completed line was set aside: {}",
        scene.rejects()
    );
    let mut expected: Vec<u64> = (0..101).collect();
    expected.extend(200..300);
    scene.assert_exactly_once(&expected);
}

#[test]
fn symlinked_file_is_followed() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    // Kubernetes' layout: /var/log/containers/*.log link to the pods' files.
    let pods = scene.path("pods");
    std::fs::create_dir_all(&pods).unwrap();
    std::fs::write(pods.join("0.log"), lines(0..50)).unwrap();
    std::os::unix::fs::symlink(pods.join("0.log"), scene.log_file("app_ns_c.log")).unwrap();
    let sender = scene.sender(&broker, "links", "*.log", "");
    let loader = scene.loader(&broker, "links");
    scene.wait_for_rows(50, &loader);
    let mut appended = std::fs::OpenOptions::new()
        .append(true)
        .open(pods.join("0.log"))
        .unwrap();
    appended.write_all(lines(50..60).as_bytes()).unwrap();
    scene.wait_for_rows(60, &loader);
    // The link changes target to a new file: like a rotation.
    std::fs::write(pods.join("1.log"), lines(60..110)).unwrap();
    let temporary = scene.log_file("app_ns_c.log.tmp");
    std::os::unix::fs::symlink(pods.join("1.log"), &temporary).unwrap();
    std::fs::rename(&temporary, scene.log_file("app_ns_c.log")).unwrap();
    appended.write_all(lines(110..120).as_bytes()).unwrap();
    scene.wait_for_rows(120, &loader);
    scene.assert_exactly_once(&(0..120).collect::<Vec<_>>());
    let link = scene.log_file("app_ns_c.log").display().to_string();
    let shown = sender
        .log()
        .lines()
        .any(|line| line.contains("reading file") && line.contains(&link));
    assert!(shown, "files are shown under the link's path\n{}", sender.log());
}

#[test]
fn symlinks_are_skipped_with_no_follow_symlinks() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    let pods = scene.path("pods");
    std::fs::create_dir_all(&pods).unwrap();
    std::fs::write(pods.join("0.log"), lines(0..50)).unwrap();
    std::os::unix::fs::symlink(pods.join("0.log"), scene.log_file("linked.log")).unwrap();
    scene.append("plain.log", 100..110);
    let mut args = scene.sender_args(&broker, "nolinks", "*.log", "");
    args.push("--no-follow-symlinks".into());
    let _sender = RelayProcess::start(args, &scene.path("send.log"));
    let loader = scene.loader(&broker, "nolinks");
    scene.wait_for_rows(10, &loader);
    scene.assert_exactly_once(&(100..110).collect::<Vec<_>>());
}

#[test]
fn copytruncate_of_a_small_file_while_the_sender_is_down_loads_once() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.log", 0..3);
    let mut sender = scene.sender(&broker, "small", "app.log*", "");
    let loader = scene.loader(&broker, "small");
    scene.wait_for_rows(3, &loader);
    sender.kill9();
    // Under 256 bytes: two more lines, then copied and truncated.
    scene.append("app.log", 3..5);
    scene.copytruncate("app.log", "app.log.1");
    scene.append("app.log", 5..7);
    sender.launch();
    scene.wait_for_rows(7, &loader);
    scene.assert_exactly_once(&(0..7).collect::<Vec<_>>());
}

/// A copytruncate while the broker is down: the original's tailer waits in
/// its send (it cannot reach the end of the file and see the truncation) for
/// longer than `rotate_wait`. The copy must still inherit the original's
/// identity and acknowledged position, not be read again from 0 as a new
/// file (every line it holds would be loaded twice).
#[test]
fn copytruncate_while_the_broker_is_down_loads_once() {
    let scene = Scene::new();
    let mut broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.log", 0..50);
    let _sender = scene.sender(&broker, "outage", "app.log*", "poll_interval_ms = 5");
    let loader = scene.loader(&broker, "outage");
    scene.wait_for_rows(50, &loader);
    broker.kill9();
    // Lines the tailer reads one by one and cannot send: more batches than
    // it may have in flight, so it waits in its send.
    for n in 50..150 {
        scene.append("app.log", n..n + 1);
        std::thread::sleep(Duration::from_millis(20));
    }
    scene.copytruncate("app.log", "app.log.1");
    // Well past rotate_wait (1 s) with the broker still down.
    std::thread::sleep(Duration::from_secs(3));
    scene.append("app.log", 150..155);
    broker.restart();
    scene.wait_for_rows(155, &loader);
    scene.assert_exactly_once(&(0..155).collect::<Vec<_>>());
}

/// A copytruncate's copy seen while `cp` is still writing it (empty, or
/// shorter than the first bytes compared): still a copy, which waits for
/// the original's truncation and inherits its position, not new content
/// read from 0 (every line in it would be loaded twice).
#[test]
fn copytruncate_copy_seen_half_written_loads_once() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.log", 0..40);
    let _sender = scene.sender(&broker, "halfcopy", "app.log*", "discover_interval_ms = 50");
    let loader = scene.loader(&broker, "halfcopy");
    scene.wait_for_rows(40, &loader);
    scene.append("app.log", 40..50);
    let whole = std::fs::read(scene.log_file("app.log")).unwrap();
    // cp has made the copy and written little of it yet: the sender sees it so.
    let mut copy = std::fs::File::create(scene.log_file("app.log.1")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    copy.write_all(&whole[..100]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    copy.write_all(&whole[100..]).unwrap();
    drop(copy);
    std::fs::OpenOptions::new()
        .write(true)
        .open(scene.log_file("app.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    scene.append("app.log", 50..55);
    scene.wait_for_rows(55, &loader);
    scene.assert_exactly_once(&(0..55).collect::<Vec<_>>());
}

/// A file emptied in place, written again and copied and truncated before
/// the tailer came back to its end: the new content's first bytes were
/// known only as "empty" (the fingerprint taken at the reset), so its copy
/// matched no handover and was read again from 0 as new content, loading
/// every line without an id twice. The tailer learns the first bytes from
/// the chunk that reads them.
#[test]
fn copytruncate_right_after_a_rewrite_in_place_loads_once() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.log", 0..10);
    let _sender = scene.sender(
        &broker,
        "rewritten",
        "app.log*",
        "poll_interval_ms = 20\nline_bytes_max = 65536",
    );
    let loader = scene.loader(&broker, "rewritten");
    scene.wait_for_rows(10, &loader);
    let mut next = 10;
    let mut expected: Vec<u64> = (0..10).collect();
    for (round, pause_ms) in [0u64, 2, 5, 10, 20, 40].into_iter().enumerate() {
        scene.rewrite_in_place("app.log", "");
        std::thread::sleep(Duration::from_millis(200));
        // Lines, a line far over line_bytes_max (its pieces take the tailer
        // a while), lines: then copied and truncated at once.
        let overlong = format!("{{\"long\":\"{}\"}}\n", "y".repeat(300_000));
        let text = format!("{}{overlong}{}", lines(next..next + 150), lines(next + 150..next + 170));
        scene.append_text("app.log", &text);
        expected.extend(next..next + 170);
        next += 170;
        std::thread::sleep(Duration::from_millis(pause_ms));
        scene.copytruncate("app.log", &format!("app.log.{}", round + 1));
        std::thread::sleep(Duration::from_millis(1500));
    }
    scene.wait_for_rows(expected.len() as u64, &loader);
    scene.assert_exactly_once(&expected);
}

/// A rewrite whose new identity could not be saved must send nothing under
/// it: after the restart, another rewrite would get the same identity (it
/// is derived from the saved one) and its lines, at the same positions,
/// would be taken for duplicates by the loader.
#[test]
fn a_rewrite_whose_new_identity_is_not_saved_sends_nothing_under_it() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.log", 0..100);
    let mut sender = scene.sender(&broker, "successor", "app.log", "");
    let loader = scene.loader(&broker, "successor");
    scene.wait_for_rows(100, &loader);
    // Every registry save fails from now on (its temporary file is a directory).
    std::fs::create_dir(scene.path("state").join("registry.tmp")).unwrap();
    scene.rewrite_in_place("app.log", &lines(1000..1100));
    let stopped = wait_until(Duration::from_secs(30), || {
        sender
            .child
            .as_mut()
            .is_some_and(|child| child.try_wait().unwrap().is_some())
    });
    assert!(
        stopped,
        "a failed save at a rewrite must stop the sender\n{}",
        sender.log()
    );
    std::fs::remove_dir(scene.path("state").join("registry.tmp")).unwrap();
    // Rewritten again while the sender is down.
    scene.rewrite_in_place("app.log", &lines(2000..2100));
    sender.launch();
    let expected: Vec<u64> = (0..100).chain(2000..2100).collect();
    let arrived = wait_until(Duration::from_secs(30), || {
        let loaded = scene.loaded();
        expected.iter().all(|n| loaded.contains_key(n))
    });
    let missing = expected.iter().filter(|n| !scene.loaded().contains_key(n)).count();
    assert!(
        arrived,
        "{missing} lines of the last rewrite never loaded\n{}",
        sender.log()
    );
    let loaded = scene.loaded();
    assert!(loaded.values().all(|count| *count == 1), "a line loaded twice");
}

/// `relay send` as an unprivileged user (root opens any file), logging to
/// `log`.
struct Unprivileged {
    child: Option<Child>,
    args: Vec<String>,
    log: PathBuf,
}

impl Unprivileged {
    fn start(args: Vec<String>, log: &Path) -> Self {
        let mut process = Self {
            child: None,
            args,
            log: log.to_owned(),
        };
        process.launch();
        process
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(relay_binary())
            .args(&self.args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Unprivileged {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
}

/// A scene whose logs and state (and `logs/app.log`, lines 0..100) belong to
/// `nobody`, for a sender run as that user, whom a `chmod 000` then stops;
/// `None`, said as skipped, when not root.
fn unprivileged_scene() -> Option<(Scene, BrokerProcess)> {
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if String::from_utf8_lossy(&uid).trim() != "0" {
        eprintln!("SKIPPED: needs root to switch to an unprivileged user");
        return None;
    }
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    chmod(scene.dir.path(), 0o755);
    std::fs::create_dir_all(scene.path("state")).unwrap();
    for dir in ["logs", "state"] {
        chown_nobody(&scene.path(dir));
    }
    scene.append("app.log", 0..100);
    chown_nobody(&scene.log_file("app.log"));
    Some((scene, broker))
}

/// A file that cannot be opened for a while (EACCES) is not a deleted file:
/// its unsent rest is sent once it can be read again, and nothing twice.
#[test]
fn a_rotated_file_that_cannot_be_opened_for_a_while_keeps_its_unsent_rest() {
    let Some((scene, broker)) = unprivileged_scene() else {
        return;
    };
    let mut sender = Unprivileged::start(
        scene.sender_args(&broker, "eacces", "app.log", ""),
        &scene.path("send.log"),
    );
    let loader = scene.loader(&broker, "eacces");
    scene.wait_for_rows(100, &loader);
    sender.terminate();
    // Written while the sender is down, rotated away, and not readable for a while.
    scene.append("app.log", 100..200);
    std::fs::rename(scene.log_file("app.log"), scene.log_file("app.log.1")).unwrap();
    chmod(&scene.log_file("app.log.1"), 0o000);
    sender.launch();
    let looked = wait_until(Duration::from_secs(30), || sender.log().contains("Permission denied"));
    assert!(
        looked,
        "the sender never said it cannot read the file\n{}",
        sender.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    chmod(&scene.log_file("app.log.1"), 0o644);
    scene.wait_for_rows(200, &loader);
    scene.assert_exactly_once(&(0..200).collect::<Vec<_>>());
}

/// A file at a watched path that cannot be opened for a while (EACCES; the
/// same for EMFILE) has not rotated away: its open tailer goes on, its
/// position is kept, and it is not read again as a new file afterwards.
#[test]
fn a_watched_file_that_cannot_be_opened_for_a_while_is_not_read_again() {
    let Some((scene, broker)) = unprivileged_scene() else {
        return;
    };
    let sender = Unprivileged::start(
        scene.sender_args(&broker, "unopenable", "app.log", ""),
        &scene.path("send.log"),
    );
    let loader = scene.loader(&broker, "unopenable");
    scene.wait_for_rows(100, &loader);
    chmod(&scene.log_file("app.log"), 0o000);
    scene.append("app.log", 100..150);
    let said = wait_until(Duration::from_secs(30), || sender.log().contains("Permission denied"));
    assert!(said, "the sender never said it cannot open the file\n{}", sender.log());
    // Longer than rotate_wait_ms (1 s): a file taken for rotated away is closed by then.
    std::thread::sleep(Duration::from_secs(3));
    chmod(&scene.log_file("app.log"), 0o644);
    scene.append("app.log", 150..200);
    scene.wait_for_rows(200, &loader);
    scene.assert_exactly_once(&(0..200).collect::<Vec<_>>());
}

//! The whole chain under fire: writers append events to log files and rotate
//! them, `relay send`, `relay broker` and `relay load` run as separate
//! processes, and a seeded killer sends `kill -9` to a random role at random
//! moments and restarts it. At the end the warehouse must hold every line of
//! every file written exactly once, `relay_offsets` must equal the end
//! offsets, and nothing may be rejected.
//!
//! The writers cover both dedup keys of `proto-spec/LOADER.md` and both
//! rotations of `proto-spec/STORAGE.md` ("Sender state"):
//!
//! | file | event id | rotation |
//! |---|---|---|
//! | `writer0.jsonl`, `writer1.jsonl` (`relay gen-events`) | `/uuid` | rename |
//! | `writer2.jsonl` | none: `host:file_id:position` | rename |
//! | `writer3.jsonl` | none: `host:file_id:position` | copytruncate |
//! | `writer4.jsonl` | `/uuid` | copytruncate |
//!
//! The lines of all files in `logs/` (live and rotated) are the lines
//! written, each once and each unique (`support/log_writers.rs`). The
//! warehouse keeps the whole event in a json column, and rows are counted
//! per event, not as distinct values, so a line loaded twice under two dedup
//! keys is caught; a failure lists the lines lost or loaded twice per file,
//! with their rows, their records in the topic (headers included) and the
//! sender's log about their files.
//!
//! CI runs a short version (10 kills per warehouse). A long run:
//! `RELAY_CHAOS_CYCLES=100 RELAY_CHAOS_SEED=7 cargo test --test chaos -- --nocapture`.
//!
//! The same run also loses power (`support/power.rs`, `relay-plugfs`): under
//! the sender's state, under the SQLite warehouse, and under `relay up` with
//! all three on the failing disk; each cut may also tear unsynced pages.
//! `RELAY_POWER_LOSS_CYCLES` sets the number of cuts (10 by default).
//! A failing run keeps its directory (logs, sender state, SQLite warehouse)
//! and prints where.

#[path = "support/log_writers.rs"]
mod log_writers;
mod support;

use log_writers::{EventId, LogWriter, Rotation, Seeded};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::postgres::Postgres;
use support::power::PowerCut;
use support::warehouse::Warehouse;
use support::{relay_binary, run_with_timeout, BrokerProcess, RelayProcess};

/// Lines per second of each writer.
const WRITER_RATE: u64 = 1_000;
/// Lines per file before a rotation: about 1.5 s at `WRITER_RATE`, so each
/// writer rotates several times while the killer is at work.
const ROTATE_LINES: u64 = 1_500;
/// How long the counts may stand still before the run is judged as it is.
const STALL_MAX: Duration = Duration::from_secs(60);
/// Lost or duplicated lines described in a failure, with their evidence.
const PROBLEMS_SHOWN_MAX: usize = 10;

/// The writers inside the test process, after the two `relay gen-events` ones.
const IN_PROCESS_WRITERS: [(EventId, Rotation); 3] = [
    (EventId::Absent, Rotation::Rename),
    (EventId::Absent, Rotation::CopyTruncate),
    (EventId::Uuid, Rotation::CopyTruncate),
];
const GEN_EVENTS_WRITERS: u64 = 2;

/// How the chain is crashed, and which of its files sit on a disk that loses power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// `kill -9` of a random role (separate processes; the page cache survives).
    Kill,
    /// As `Kill`, on a SASL broker whose grants give the sender and the
    /// loader only what their roles need, each logged in as its own user.
    KillPerRoleUsers,
    /// The sender's machine loses power: its state (registry, rejects) is on
    /// `relay-plugfs`; the broker and the loader keep running.
    SenderPower,
    /// The warehouse's machine loses power: SQLite is on `relay-plugfs`, and
    /// the loader goes down with it.
    WarehousePower,
    /// `relay up` on one machine that loses power: broker data, sender state
    /// and SQLite all on `relay-plugfs`.
    UpPower,
}

/// The writer whose events a route sends to [`ROUTED_TABLE`].
const ROUTED_WRITER: u64 = 4;
const ROUTED_TABLE: &str = "writer4";
/// The rows of every table, as one (the columns the checks read).
const ALL_ROWS: &str = "(SELECT relay_partition, relay_offset, relay_source_file, relay_source_position, dedup_key, event \
     FROM events UNION ALL SELECT relay_partition, relay_offset, relay_source_file, relay_source_position, dedup_key, event \
     FROM writer4 UNION ALL SELECT relay_partition, relay_offset, relay_source_file, relay_source_position, dedup_key, \
     event FROM purchases) AS all_rows";

/// The password of every user of the per-role run.
const PASSWORD: &str = "chaos with grants";

thread_local! {
    /// Flags that log this test's own `relay` commands in (as an admin), when
    /// the broker asks for a login.
    static ADMIN_FLAGS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `relay ARGS` for the test's own checks, logged in when it must be.
fn relay_command(args: &[&str]) -> Command {
    let mut command = Command::new(relay_binary());
    command.args(args);
    ADMIN_FLAGS.with(|flags| command.args(flags.borrow().iter()));
    command
}

/// The login flags of `user` on the per-role broker.
fn login_flags(user: &str) -> Vec<String> {
    [
        "--security-protocol",
        "SASL_PLAINTEXT",
        "--sasl-username",
        user,
        "--sasl-password",
        PASSWORD,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `[broker.sasl]` with users sender, loader and ops, and their grants.
fn per_role_broker_config() -> String {
    let credential = support::pki::hash_password(PASSWORD);
    format!(
        "[broker.sasl]\n[broker.sasl.users]\nsender = \"{credential}\"\nloader = \"{credential}\"\nops = \"{credential}\"\n\
         [[broker.grants]]\nusers = [\"sender\"]\nrole = \"sender\"\ntopics = [\"events\"]\n\
         [[broker.grants]]\nusers = [\"loader\"]\nrole = \"loader\"\ntopics = [\"events\"]\ngroups = [\"chaos-loader\"]\n\
         [[broker.grants]]\nusers = [\"ops\"]\nrole = \"admin\"\n"
    )
}

/// The embedded broker's section for `relay up`.
fn broker_section(listen: &str, data_dir: &Path) -> String {
    format!(
        "[broker]\nlisten = \"{listen}\"\ndata_dir = \"{}\"\ndefault_partitions = 4\n\n",
        data_dir.display()
    )
}

fn config(dir: &Path, state: &Path, warehouse: &Warehouse, broker: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(
        &path,
        format!(
            r#"{broker}[[send]]
topic = "events"
paths = ["{logs}/*.jsonl*"]
state_dir = "{state}"

[[load]]
topic = "events"
group = "chaos-loader"
warehouse = "{warehouse}"
table = "events"
batch_records_max = 1000
batch_wait_ms = 100
metadata = ["partition", "offset", "source_file", "source_position"]

[[load.columns]]
name = "event"
pointer = ""
type = "json"
nullable = false

[[load.columns]]
name = "uuid"
pointer = "/uuid"
type = "uuid"

[[load.columns]]
name = "player_id"
pointer = "/player_id"
type = "text"

[[load.columns]]
name = "amount"
pointer = "/amount"
type = "bigint"

[[load.columns]]
name = "ts"
pointer = "/ts"
type = "timestamptz"

# Routes: the game events' purchases and writer 4's events go to tables of
# their own, in the same transaction as the rest (exact counts per table
# are checked).
[[load.route]]
table = "purchases"
when = {{ pointer = "/type", equals = "purchase" }}
metadata = ["partition", "offset", "source_file", "source_position"]

[[load.route.columns]]
name = "event"
pointer = ""
type = "json"
nullable = false

[[load.route.columns]]
name = "amount"
pointer = "/amount"
type = "bigint"
nullable = false

[[load.route]]
table = "{ROUTED_TABLE}"
when = {{ pointer = "/writer", equals = {ROUTED_WRITER} }}
metadata = ["partition", "offset", "source_file", "source_position"]

[[load.route.columns]]
name = "event"
pointer = ""
type = "json"
nullable = false

[[load.route.columns]]
name = "uuid"
pointer = "/uuid"
type = "uuid"
"#,
            logs = dir.join("logs").display(),
            state = state.display(),
            warehouse = warehouse.url(),
        ),
    )
    .unwrap();
    path
}

/// A `relay gen-events` writer, killed if the test ends before it does.
struct GenEvents(Child);

impl Drop for GenEvents {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gen_events(file: &Path, count: u64, seed: u64) -> GenEvents {
    let child = Command::new(relay_binary())
        .args(["gen-events", "--file"])
        .arg(file)
        .args(["--rate", &WRITER_RATE.to_string()])
        .args(["--rotate-lines", &ROTATE_LINES.to_string()])
        .args(["--count", &count.to_string(), "--seed", &seed.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    GenEvents(child)
}

/// An event's text with its keys sorted, the same whatever wrote it out
/// (the log line, SQLite's text, PostgreSQL's jsonb); `None` for text that
/// is not a JSON object.
fn canonical(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let sorted: BTreeMap<&String, &serde_json::Value> = value.as_object()?.iter().collect();
    serde_json::to_string(&sorted).ok()
}

fn canonical_event(text: &str) -> String {
    canonical(text).unwrap_or_else(|| panic!("not a JSON event: {text:?}"))
}

/// Where a line was written.
struct Written {
    file: String,
    position: usize,
}

/// Every line of every file in `logs` (live and rotated), by canonical event.
fn written_lines(logs: &Path) -> HashMap<String, Vec<Written>> {
    let mut lines: HashMap<String, Vec<Written>> = HashMap::new();
    for entry in std::fs::read_dir(logs).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut position = 0;
        for line in text.split_inclusive('\n') {
            assert!(line.ends_with('\n'), "{file} ends with an unfinished line");
            let place = Written {
                file: file.clone(),
                position,
            };
            lines.entry(canonical_event(line)).or_default().push(place);
            position += line.len();
        }
    }
    lines
}

/// Every row of the warehouse by canonical event, each described by where
/// its record came from.
fn loaded_rows(warehouse: &Warehouse) -> HashMap<String, Vec<String>> {
    let text = |column: &str| format!("COALESCE(CAST({column} AS TEXT), '')");
    let rows = warehouse.column(&format!(
        "SELECT {} || '|' || {} || '|' || {} || '|' || {} || '|' || {} || '|' || CAST(event AS TEXT) FROM {ALL_ROWS}",
        text("relay_partition"),
        text("relay_offset"),
        text("relay_source_file"),
        text("relay_source_position"),
        text("dedup_key"),
    ));
    let mut loaded: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows {
        let fields: Vec<&str> = row.splitn(6, '|').collect();
        assert_eq!(fields.len(), 6, "a row of six fields: {row:?}");
        let place = format!(
            "loaded from partition {} offset {} (source_file {}, source_position {}, dedup_key {})",
            fields[0], fields[1], fields[2], fields[3], fields[4]
        );
        loaded.entry(canonical_event(fields[5])).or_default().push(place);
    }
    loaded
}

fn describe_topic(address: &str) -> Vec<(String, i64)> {
    let describe = run_with_timeout(
        &mut relay_command(&["topics", "describe", "events", "--broker", address]),
        Duration::from_secs(30),
    );
    String::from_utf8_lossy(&describe.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            Some((fields.first()?.to_string(), fields.get(3)?.parse().ok()?))
        })
        .collect()
}

fn loaded_offsets(warehouse: &Warehouse) -> i64 {
    warehouse.count("SELECT SUM(next_offset) FROM relay_offsets WHERE group_id = 'chaos-loader'")
}

/// Waits until the warehouse holds exactly `total` rows and the loader has
/// read to the end of the topic, or until nothing moved for `STALL_MAX` (a
/// line loaded twice makes more rows; a lost one, fewer), or for at most
/// 300 s; the checks that follow judge what is there.
fn wait_until_settled(warehouse: &Warehouse, address: &str, total: i64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = (-1, -1, -1);
    let mut last_change = Instant::now();
    let mut settled_since: Option<Instant> = None;
    while Instant::now() < deadline && last_change.elapsed() < STALL_MAX {
        let end: i64 = describe_topic(address).iter().map(|(_, end)| end).sum();
        let now = (
            warehouse.count(&format!("SELECT COUNT(*) FROM {ALL_ROWS}")),
            end,
            loaded_offsets(warehouse),
        );
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        if now.0 == total && now.1 == now.2 {
            // Settled for 3 s, so an in-flight duplicate arrives before judging.
            if settled_since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_secs(3) {
                return;
            }
        } else {
            settled_since = None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The topic's records (`relay consume --format json`) whose value is one of `events`.
fn topic_records_of(address: &str, events: &[&String]) -> HashMap<String, Vec<String>> {
    let consumed = run_with_timeout(
        &mut relay_command(&["consume", "--topic", "events", "--format", "json", "--broker", address]),
        Duration::from_secs(120),
    );
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    for line in String::from_utf8_lossy(&consumed.stdout).lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(value) = record["value"].as_str() else {
            continue;
        };
        let Some(event) = canonical(value) else { continue };
        if events.contains(&&event) {
            found.entry(event).or_default().push(line.to_owned());
        }
    }
    found
}

/// The last `count` lines of `text` that mention any of `needles`.
fn log_excerpt(text: &str, needles: &[String], count: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| needles.iter().any(|n| l.contains(n.as_str())))
        .collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

fn log_tail(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// The canonical events not loaded exactly once (lost, loaded twice, or
/// never written), the first ones of every file first, so the evidence
/// samples every file and rotation.
fn not_exactly_once<'a>(
    written: &'a HashMap<String, Vec<Written>>,
    loaded: &'a HashMap<String, Vec<String>>,
) -> Vec<&'a String> {
    let rows = |event: &String| loaded.get(event).map_or(0, Vec::len);
    let mut problems: Vec<(Option<(&str, usize)>, &String)> = written
        .keys()
        .chain(loaded.keys().filter(|event| !written.contains_key(*event)))
        .filter(|event| rows(event) != 1 || written.get(*event).map_or(0, Vec::len) != 1)
        .map(|event| (first_place(written, event), event))
        .collect();
    problems.sort();
    let mut seen_in_file: HashMap<Option<&str>, usize> = HashMap::new();
    let mut ranked: Vec<(usize, &String)> = problems
        .into_iter()
        .map(|(place, event)| {
            let rank = seen_in_file.entry(place.map(|(file, _)| file)).or_default();
            *rank += 1;
            (*rank, event)
        })
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, event)| event).collect()
}

fn first_place<'a>(written: &'a HashMap<String, Vec<Written>>, event: &String) -> Option<(&'a str, usize)> {
    let place = written.get(event)?.first()?;
    Some((place.file.as_str(), place.position))
}

/// Lines not loaded exactly once: how many per file, then the first few
/// with where they were written, their rows, their records in the topic and
/// the sender's log about their files; `None` when every line is loaded
/// exactly once and no row is foreign.
fn exactly_once_report(
    written: &HashMap<String, Vec<Written>>,
    loaded: &HashMap<String, Vec<String>>,
    address: &str,
    send_log: &str,
) -> Option<String> {
    let problems = not_exactly_once(written, loaded);
    if problems.is_empty() {
        return None;
    }
    let rows = |event: &String| loaded.get(event).map_or(0, Vec::len);
    let mut tally: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for event in &problems {
        let file = first_place(written, event).map_or("(never written)", |(file, _)| file);
        let kind = if rows(event) == 0 {
            "lost"
        } else {
            "loaded more than once"
        };
        *tally.entry((file, kind)).or_default() += 1;
    }
    let mut report = format!("{} lines not loaded exactly once:\n", problems.len());
    for ((file, kind), count) in tally {
        report.push_str(&format!("  {file}: {count} {kind}\n"));
    }
    let shown = &problems[..problems.len().min(PROBLEMS_SHOWN_MAX)];
    let records = topic_records_of(address, shown);
    report.push_str(&format!("the first {}:\n", shown.len()));
    let mut files = Vec::new();
    for event in shown {
        report.push_str(&format!("- {event}: {} rows\n", rows(event)));
        for place in written.get(*event).into_iter().flatten() {
            report.push_str(&format!(
                "    written to {} at position {}\n",
                place.file, place.position
            ));
            files.push(place.file.split(".jsonl").next().unwrap_or_default().to_owned() + ".jsonl");
        }
        for place in loaded.get(*event).into_iter().flatten() {
            report.push_str(&format!("    {place}\n"));
        }
        for record in records.get(*event).into_iter().flatten() {
            report.push_str(&format!("    in the topic: {record}\n"));
        }
    }
    files.sort();
    files.dedup();
    files.extend(["sender started".to_owned(), "registry".to_owned()]);
    report.push_str(&format!(
        "send log about {files:?}:\n{}\n",
        log_excerpt(send_log, &files, 80)
    ));
    Some(report)
}

/// The seeded killer: `cycles` times, after 0.3-1.5 s, `kill -9` of a random
/// role and its restart; returns the kills per role (broker, sender, loader).
fn kill_and_restart(
    cycles: u64,
    seed: u64,
    broker: &mut BrokerProcess,
    sender: &mut RelayProcess,
    loader: &mut RelayProcess,
) -> [u32; 3] {
    let mut random = Seeded(seed | 1);
    let mut kills = [0u32; 3];
    for _ in 0..cycles {
        std::thread::sleep(Duration::from_millis(300 + random.next() % 1200));
        let victim = (random.next() % 3) as usize;
        kills[victim] += 1;
        match victim {
            0 => {
                broker.kill9();
                broker.restart();
            }
            1 => {
                sender.kill9();
                sender.launch();
            }
            _ => {
                loader.kill9();
                loader.launch();
            }
        }
    }
    kills
}

/// Every writer, started: `relay gen-events` processes and threads.
struct Writers {
    gen_events: Vec<GenEvents>,
    threads: Vec<JoinHandle<u64>>,
}

impl Writers {
    fn start(logs: &Path, events_per_writer: u64, seed: u64) -> Self {
        std::fs::create_dir_all(logs).unwrap();
        let file = |w: u64| logs.join(format!("writer{w}.jsonl"));
        let gen_events = (0..GEN_EVENTS_WRITERS)
            .map(|w| gen_events(&file(w), events_per_writer, seed + w))
            .collect();
        let threads = (GEN_EVENTS_WRITERS..)
            .zip(IN_PROCESS_WRITERS)
            .map(|(w, (id, rotation))| {
                let writer = LogWriter {
                    file: file(w),
                    writer: w,
                    id,
                    rotation,
                    count: events_per_writer,
                    rate_per_second: WRITER_RATE,
                    rotate_lines: ROTATE_LINES,
                    seed: seed + w,
                };
                std::thread::spawn(move || writer.run())
            })
            .collect();
        Self { gen_events, threads }
    }

    /// Waits for every writer to write all its events.
    fn finish(self, events_per_writer: u64) {
        for mut writer in self.gen_events {
            assert!(writer.0.wait().unwrap().success());
        }
        for thread in self.threads {
            assert_eq!(thread.join().unwrap(), events_per_writer);
        }
    }
}

/// Asserts that the loader's `relay_offsets` are the topic's end offsets;
/// returns the records in the topic.
fn assert_loaded_to_the_end(warehouse: &Warehouse, address: &str) -> i64 {
    let mut end_offsets = 0;
    for (partition, end) in describe_topic(address) {
        let stored = warehouse.count(&format!(
            "SELECT next_offset FROM relay_offsets WHERE group_id = 'chaos-loader' AND partition = {partition}"
        ));
        assert_eq!(stored, end, "relay_offsets of partition {partition} is its end offset");
        end_offsets += stored;
    }
    end_offsets
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The processes of a run: separate roles, or one `relay up`.
#[allow(clippy::large_enum_variant)] // one value per test run
enum Roles {
    Separate {
        broker: BrokerProcess,
        sender: RelayProcess,
        loader: RelayProcess,
    },
    Up(RelayProcess),
}

impl Roles {
    /// The log to search for what the sender said.
    fn send_log(&self) -> String {
        match self {
            Roles::Separate { sender, .. } => sender.log(),
            Roles::Up(up) => up.log(),
        }
    }
}

/// A free port of 127.0.0.1 for a broker that must keep its address across
/// restarts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The power cuts: `cycles` times, after 0.5-2 s, the plug is pulled, the
/// processes on the lost disk die with it, the disk comes back with what
/// survived and the processes start again on it. `after_power_on` checks the
/// surviving image before they do.
fn cut_power(cut: &mut PowerCut, cycles: u64, victims: &mut [&mut RelayProcess], after_power_on: impl Fn(u64)) {
    for cycle in 0..cycles {
        cut.random_wait(500, 2000);
        cut.pull();
        for victim in victims.iter_mut() {
            victim.kill9();
        }
        cut.power_off();
        cut.power_on();
        after_power_on(cycle);
        for victim in victims.iter_mut() {
            victim.launch();
        }
    }
}

/// How many times the topic holds each line's event (`relay consume`).
fn sends_per_event(address: &str) -> HashMap<String, usize> {
    let consumed = run_with_timeout(
        &mut relay_command(&["consume", "--topic", "events", "--format", "json", "--broker", address]),
        Duration::from_secs(120),
    );
    let mut sends: HashMap<String, usize> = HashMap::new();
    for line in String::from_utf8_lossy(&consumed.stdout).lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(event) = record["value"].as_str().and_then(canonical) {
            *sends.entry(event).or_default() += 1;
        }
    }
    sends
}

fn chaos(warehouse: Warehouse, dir: &Path, crash: Crash) {
    let cycles = match crash {
        Crash::Kill | Crash::KillPerRoleUsers => knob("RELAY_CHAOS_CYCLES", 10),
        _ => support::power::cycles(10) as u64,
    };
    let seed = knob("RELAY_CHAOS_SEED", 0x00c0_ffee);
    // Writing lasts about as long as the kills (0.9 s apart on average), or
    // the power cuts (1.25 s apart).
    let events_per_writer = match crash {
        Crash::Kill | Crash::KillPerRoleUsers => 2_700 + cycles * 700,
        _ => 2_700 + cycles * 1_000,
    };
    let started = Instant::now();
    let mut cut = match crash {
        Crash::Kill | Crash::KillPerRoleUsers => None,
        _ => match PowerCut::new(&dir.join("disk"), &format!("chaos {crash:?}")) {
            Some(mut cut) => {
                cut.power_on();
                Some(cut)
            }
            None => return,
        },
    };
    let state = match crash {
        Crash::SenderPower | Crash::UpPower => dir.join("disk/state"),
        _ => dir.join("state"),
    };
    let logs = dir.join("logs");
    let (mut roles, address) = if crash == Crash::UpPower {
        let address = format!("127.0.0.1:{}", free_port());
        let broker = broker_section(&address, &dir.join("disk/broker"));
        let config = config(dir, &state, &warehouse, &broker).display().to_string();
        let writers = Writers::start(&logs, events_per_writer, seed);
        let up = RelayProcess::start(vec!["up".into(), "--config".into(), config], &dir.join("up.log"));
        ((Roles::Up(up), writers), address)
    } else {
        let per_role = crash == Crash::KillPerRoleUsers;
        let broker = BrokerProcess::start(
            dir,
            &if per_role {
                per_role_broker_config()
            } else {
                String::new()
            },
        );
        let address = broker.address.clone();
        if per_role {
            ADMIN_FLAGS.with(|flags| *flags.borrow_mut() = login_flags("ops"));
        }
        let created = run_with_timeout(
            &mut relay_command(&["topics", "create", "events", "--partitions", "4", "--broker", &address]),
            Duration::from_secs(30),
        );
        assert!(created.status.success());
        let config = config(dir, &state, &warehouse, "").display().to_string();
        let client_args = |role: &str| {
            let mut args = [role, "--broker", &address, "--config", &config]
                .map(str::to_owned)
                .to_vec();
            if per_role {
                // Each role as its own user: "send" logs in as sender, "load" as loader.
                args.extend(login_flags(if role == "send" { "sender" } else { "loader" }));
            }
            args
        };
        let writers = Writers::start(&logs, events_per_writer, seed);
        let sender = RelayProcess::start(client_args("send"), &dir.join("send.log"));
        let loader = RelayProcess::start(client_args("load"), &dir.join("load.log"));
        ((Roles::Separate { broker, sender, loader }, writers), address)
    };
    let (ref mut processes, _) = roles;
    let integrity = |cycle: u64| {
        if matches!(crash, Crash::WarehousePower | Crash::UpPower)
            && std::path::Path::new(&dir.join("disk/warehouse.db")).exists()
        {
            let check = warehouse.query("PRAGMA integrity_check");
            assert_eq!(check, "ok", "power cut {cycle}: the warehouse after the cut");
        }
    };
    let crashes = match (crash, processes, cut.as_mut()) {
        (Crash::Kill | Crash::KillPerRoleUsers, Roles::Separate { broker, sender, loader }, _) => {
            let kills = kill_and_restart(cycles, seed, broker, sender, loader);
            format!(
                "{cycles} kills (broker {}, sender {}, loader {})",
                kills[0], kills[1], kills[2]
            )
        }
        (Crash::SenderPower, Roles::Separate { sender, .. }, Some(cut)) => {
            cut_power(cut, cycles, &mut [sender], integrity);
            format!("{} power cuts under the sender ({} torn)", cut.pulls, cut.torn_pulls)
        }
        (Crash::WarehousePower, Roles::Separate { loader, .. }, Some(cut)) => {
            cut_power(cut, cycles, &mut [loader], integrity);
            format!("{} power cuts under the warehouse ({} torn)", cut.pulls, cut.torn_pulls)
        }
        (Crash::UpPower, Roles::Up(up), Some(cut)) => {
            cut_power(cut, cycles, &mut [up], integrity);
            format!("{} power cuts under relay up ({} torn)", cut.pulls, cut.torn_pulls)
        }
        _ => unreachable!("crash mode and roles match"),
    };
    if let Some(cut) = &cut {
        cut.report(&format!("chaos {crash:?}"));
    }
    let (processes, writers) = roles;
    writers.finish(events_per_writer);
    let writing = started.elapsed();
    let written = written_lines(&logs);
    let total = (GEN_EVENTS_WRITERS + IN_PROCESS_WRITERS.len() as u64) * events_per_writer;
    let lines_in_files = written.values().map(Vec::len).sum::<usize>() as u64;
    assert_eq!(lines_in_files, total, "the files hold every line written");
    wait_until_settled(&warehouse, &address, total as i64);
    let loaded = loaded_rows(&warehouse);
    let sender_rejects = std::fs::read_to_string(state.join("rejects")).unwrap_or_default();
    let (broker_address, send_log) = (address.clone(), processes.send_log());
    if let Some(report) = exactly_once_report(&written, &loaded, &broker_address, &send_log) {
        let load_log = match &processes {
            Roles::Separate { loader, .. } => loader.log(),
            Roles::Up(up) => up.log(),
        };
        panic!(
            "seed {seed}, {crashes}: every line exactly once\n{report}\nsender rejects: {sender_rejects:?}\nload log (end):\n{}",
            log_tail(&load_log, 40)
        );
    }
    assert_eq!(warehouse.count("SELECT COUNT(*) FROM relay_rejects"), 0);
    // The route: exactly writer 4's lines in its table, none of them in events.
    assert_eq!(
        warehouse.count(&format!("SELECT COUNT(*) FROM {ROUTED_TABLE}")),
        events_per_writer as i64,
        "{ROUTED_TABLE} holds writer {ROUTED_WRITER}'s lines, each once"
    );
    let in_default = match &warehouse {
        Warehouse::Sqlite(_) => "SELECT COUNT(*) FROM events WHERE json_extract(event, '$.writer') = 4",
        Warehouse::Postgres(_) => "SELECT COUNT(*) FROM events WHERE (event->>'writer')::bigint = 4",
    };
    assert_eq!(
        warehouse.count(in_default),
        0,
        "writer {ROUTED_WRITER}'s lines stay out of events"
    );
    // Game events by type: every purchase written is in purchases, once, and nowhere else.
    let purchases_written = written
        .keys()
        .filter(|event| event.contains("\"type\":\"purchase\""))
        .count() as i64;
    assert!(purchases_written > 0, "the generators wrote purchases");
    assert_eq!(
        warehouse.count("SELECT COUNT(*) FROM purchases"),
        purchases_written,
        "purchases, each once"
    );
    let purchases_elsewhere = match &warehouse {
        Warehouse::Sqlite(_) => "SELECT COUNT(*) FROM events WHERE json_extract(event, '$.type') = 'purchase'",
        Warehouse::Postgres(_) => "SELECT COUNT(*) FROM events WHERE event->>'type' = 'purchase'",
    };
    assert_eq!(warehouse.count(purchases_elsewhere), 0, "purchases stay out of events");
    assert!(
        sender_rejects.is_empty(),
        "the sender rejected nothing:\n{sender_rejects}"
    );
    let end_offsets = assert_loaded_to_the_end(&warehouse, &address);
    if let Some(cut) = cut
        .as_ref()
        .filter(|_| matches!(crash, Crash::SenderPower | Crash::UpPower))
    {
        // Each power cut may re-send what was in flight (acknowledged but not
        // yet saved in the registry) once, never more.
        let sends = sends_per_event(&address);
        let (event, most) = sends.iter().max_by_key(|(_, n)| **n).expect("events in the topic");
        assert!(
            *most <= 1 + cut.pulls,
            "{event} sent {most} times in {} power cuts",
            cut.pulls
        );
    }
    drop(processes);
    let lines_of = |kind: fn(&(EventId, Rotation)) -> bool| {
        IN_PROCESS_WRITERS.iter().filter(|w| kind(w)).count() as u64 * events_per_writer
    };
    eprintln!(
        "chaos: seed {seed}, {crashes}, {total} lines written \
         ({} with no id, {} in copytruncated files) and loaded once, {end_offsets} records in the topic \
         ({} duplicates sent and de-duplicated), writing {:.1} s, {:.1} s in all",
        lines_of(|(id, _)| *id == EventId::Absent),
        lines_of(|(_, rotation)| *rotation == Rotation::CopyTruncate),
        end_offsets - total as i64,
        writing.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// Runs `chaos` in a fresh directory, kept (and named) when the run fails.
fn chaos_keeping_failures(warehouse: impl FnOnce(&Path) -> Warehouse, crash: Crash) {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = warehouse(dir.path());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| chaos(warehouse, dir.path(), crash)));
    if let Err(panic) = outcome {
        eprintln!("chaos: the failed run's directory is kept: {}", dir.keep().display());
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn chaos_with_sqlite_loses_and_duplicates_nothing() {
    chaos_keeping_failures(Warehouse::sqlite, Crash::Kill);
}

#[test]
fn chaos_with_per_role_users_loses_and_duplicates_nothing() {
    chaos_keeping_failures(Warehouse::sqlite, Crash::KillPerRoleUsers);
}

#[test]
fn power_loss_under_the_sender_loses_and_duplicates_nothing() {
    chaos_keeping_failures(Warehouse::sqlite, Crash::SenderPower);
}

#[test]
fn power_loss_under_the_sqlite_warehouse_loses_and_duplicates_nothing() {
    chaos_keeping_failures(|dir| Warehouse::sqlite(&dir.join("disk")), Crash::WarehousePower);
}

#[test]
fn power_loss_under_relay_up_loses_and_duplicates_nothing() {
    chaos_keeping_failures(|dir| Warehouse::sqlite(&dir.join("disk")), Crash::UpPower);
}

#[test]
fn chaos_with_postgres_loses_and_duplicates_nothing() {
    let Some(postgres) = Postgres::start() else { return };
    chaos_keeping_failures(|_| Warehouse::Postgres(postgres), Crash::Kill);
}

//! Power loss, not only `kill -9`: the real binaries on `relay-plugfs`, a
//! filesystem that keeps only what fsync made durable when the plug is pulled
//! (sometimes with torn, half-written pages). Seeded; see `support/power.rs`
//! for the knobs. Each test pulls the plug at random moments under load and
//! checks, after every restart, what its role promises.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use support::power::{cycles, LineProcess, PowerCut};
use support::{python, python_script, BrokerProcess};

const TOPIC: &str = "plugged";
const GROUP: &str = "plugged-group";
const PARTITIONS: i32 = 3;

/// Small segments so that every cycle rolls some (new files, directory
/// syncs, index writes); an index entry every 512 bytes.
const BROKER_LOG: &str = "[broker.log]\nsegment_bytes = 65536\nindex_interval_bytes = 512\n";

/// Plug pulls on one disk before a long run starts over on an empty one.
const FRESH_DISK_CYCLES: usize = 10;

/// What a `dump` saw: records by (partition, offset), committed offsets.
struct Dump {
    partitions: usize,
    records: BTreeMap<(i32, i64), String>,
    committed: BTreeMap<i32, i64>,
}

fn dump(python: &Path, broker: &BrokerProcess, stderr: &Path) -> Dump {
    let script = python_script("power_loss_clients.py");
    let lines = LineProcess::spawn(
        python,
        &[script.to_str().unwrap(), "dump", &broker.address, TOPIC, GROUP],
        stderr,
    )
    .wait(Duration::from_secs(180));
    let mut dump = Dump {
        partitions: 0,
        records: BTreeMap::new(),
        committed: BTreeMap::new(),
    };
    let mut ended = false;
    for (_, line) in lines {
        let fields: Vec<&str> = line.splitn(4, ' ').collect();
        match fields.as_slice() {
            ["partitions", n] => dump.partitions = n.parse().unwrap(),
            ["record", p, o, value] => {
                let previous = dump
                    .records
                    .insert((p.parse().unwrap(), o.parse().unwrap()), value.to_string());
                assert!(previous.is_none(), "offset {p}/{o} read twice");
            }
            ["committed", p, o] => {
                dump.committed.insert(p.parse().unwrap(), o.parse().unwrap());
            }
            ["end"] => ended = true,
            _ => panic!("dump: {line}\n{}", std::fs::read_to_string(stderr).unwrap_or_default()),
        }
    }
    assert!(
        ended,
        "dump did not finish\n{}",
        std::fs::read_to_string(stderr).unwrap_or_default()
    );
    dump
}

/// Everything a broker on the surviving image must show, whatever the policy:
/// dense offsets from 0, every value once, and only values that were sent.
fn check_log_shape(dump: &Dump, cycle: usize) {
    let mut next: HashMap<i32, i64> = HashMap::new();
    let mut values = BTreeSet::new();
    for (&(p, o), value) in &dump.records {
        let expected = next.entry(p).or_insert(0);
        assert_eq!(
            o, *expected,
            "cycle {cycle}: partition {p} jumps from {expected} to {o}"
        );
        *expected += 1;
        assert!(
            value.starts_with('c') && value.contains('-'),
            "cycle {cycle}: {p}/{o} holds {value:?}, never sent"
        );
        assert!(
            values.insert(value.clone()),
            "cycle {cycle}: {value} stored twice (second at {p}/{o})"
        );
    }
}

struct Clients {
    producer: LineProcess,
    committer: LineProcess,
}

fn start_clients(python: &Path, broker: &BrokerProcess, cycle: usize, base: &Path) -> Clients {
    let script = python_script("power_loss_clients.py");
    let script = script.to_str().unwrap();
    let partitions = PARTITIONS.to_string();
    let prefix = format!("c{cycle}");
    let stderr = base.join("clients.log");
    // Committed offsets grow across cycles: each cycle starts above the last.
    let first_commit = (cycle as i64 * 1_000_000 + 1).to_string();
    Clients {
        producer: LineProcess::spawn(
            python,
            &[script, "produce", &broker.address, TOPIC, &partitions, &prefix],
            &stderr,
        ),
        committer: LineProcess::spawn(
            python,
            &[
                script,
                "commit",
                &broker.address,
                TOPIC,
                GROUP,
                &partitions,
                &first_commit,
            ],
            &stderr,
        ),
    }
}

/// Acknowledged records and commits, with the time each acknowledgement arrived.
#[derive(Default)]
struct Acknowledged {
    records: BTreeMap<(i32, i64), (String, Instant)>,
    /// Acknowledged commits (the offset every partition was set to), in order.
    commits: Vec<(Instant, i64)>,
}

impl Acknowledged {
    fn absorb(&mut self, clients: Clients) {
        for (at, line) in clients.producer.kill() {
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            if let ["ack", p, o, value] = fields.as_slice() {
                let key = (p.parse().unwrap(), o.parse().unwrap());
                if let Some((previous, _)) = self.records.insert(key, (value.to_string(), at)) {
                    panic!("offset {p}/{o} acknowledged for {previous} and again for {value}");
                }
            }
        }
        for (at, line) in clients.committer.kill() {
            if let Some(n) = line.strip_prefix("committed ") {
                self.commits.push((at, n.parse().unwrap()));
            }
        }
    }
}

/// Pulls the plug under an idempotent acks=all producer and a committing
/// group, `cycles` times, restarting the broker on each surviving image;
/// `durable_before` says which acknowledged records must have survived.
fn broker_through_power_losses(
    test: &str,
    policy: &str,
    default_cycles: usize,
    must_survive: impl Fn(Instant, Instant) -> bool,
) {
    let Some(python) = python() else { return };
    let base = tempfile::tempdir().unwrap();
    let Some(mut cut) = PowerCut::new(&base.path().join("disk"), test) else {
        return;
    };
    let data_dir = cut.mountpoint.join("broker");
    let config = format!("{BROKER_LOG}{policy}");
    let stderr = base.path().join("dump.log");
    cut.power_on();
    let mut broker = BrokerProcess::start_with_data_dir(base.path(), &data_dir, &config, &[]);
    let mut acked = Acknowledged::default();
    let mut lost_allowed = 0usize;
    for cycle in 0..cycles(default_cycles) {
        if cycle > 0 && cycle % FRESH_DISK_CYCLES == 0 {
            // A long run starts over on an empty disk now and then, so that
            // each check reads a bounded log.
            broker.kill9();
            cut.wipe();
            broker = BrokerProcess::start_with_data_dir(base.path(), &data_dir, &config, &[]);
            acked = Acknowledged::default();
        }
        let clients = start_clients(&python, &broker, cycle, base.path());
        cut.random_wait(300, 1500);
        if cut.rng.chance(1, 3) {
            // A process crash first (the page cache survives it), then the
            // power loss: what recovery kept from the cache must be durable.
            broker.kill9();
            broker.restart();
            cut.random_wait(200, 800);
        }
        let loss = cut.pull();
        let pulled_at = Instant::now();
        broker.kill9();
        acked.absorb(clients);
        cut.power_off();
        cut.power_on();
        // The broker must start on every surviving image.
        broker = BrokerProcess::start_with_data_dir(base.path(), &data_dir, &config, &[]);
        let dump = dump(&python, &broker, &stderr);
        check_log_shape(&dump, cycle);
        if !acked.records.is_empty() {
            assert_eq!(
                dump.partitions, PARTITIONS as usize,
                "cycle {cycle} ({loss:?}): topic lost its partitions"
            );
        }
        let mut lost = Vec::new();
        for (&(p, o), (value, at)) in &acked.records {
            if dump.records.get(&(p, o)) != Some(value) {
                lost.push((p, o, value.clone(), must_survive(*at, pulled_at)));
            }
        }
        let must: Vec<_> = lost.iter().filter(|l| l.3).collect();
        assert!(
            must.is_empty(),
            "cycle {cycle} ({loss:?}, seed {}): {} acknowledged records lost, first {:?}\n{}",
            cut.seed,
            must.len(),
            must.first(),
            broker.log()
        );
        lost_allowed += lost.len();
        // What was lost (allowed by the policy) is forgotten; what is there stays.
        acked
            .records
            .retain(|key, (value, _)| dump.records.get(key) == Some(value));
        // The last commit the policy says must have survived.
        let must_commit = acked
            .commits
            .iter()
            .filter(|(at, _)| must_survive(*at, pulled_at))
            .map(|(_, n)| *n)
            .max();
        if let Some(must_commit) = must_commit {
            for p in 0..PARTITIONS {
                let committed = dump.committed.get(&p).copied().unwrap_or(-1);
                assert!(
                    committed >= must_commit,
                    "cycle {cycle} ({loss:?}, seed {}): partition {p} committed {committed}, acknowledged {must_commit}",
                    cut.seed
                );
            }
        }
        // What survived is what later cycles must keep.
        acked.commits.retain(|(_, n)| dump.committed.values().all(|c| c >= n));
    }
    cut.report(test);
    eprintln!(
        "{test}: {} acknowledged records checked, {lost_allowed} lost as the policy allows",
        acked.records.len()
    );
}

#[test]
fn power_loss_with_fsync_always_keeps_every_acknowledged_record_and_commit() {
    broker_through_power_losses("fsync_always", "fsync = \"always\"\n", 8, |_, _| true);
}

#[test]
fn power_loss_with_fsync_interval_loses_at_most_the_last_interval() {
    // Documented: "fsync at most every fsync_interval_ms; an acknowledged
    // append may be lost in a machine crash". What was acknowledged more than
    // one interval (plus scheduling slack) before the pull must be there.
    broker_through_power_losses(
        "fsync_interval",
        "fsync = \"interval\"\nfsync_interval_ms = 200\n",
        4,
        |acked_at, pulled_at| pulled_at.duration_since(acked_at) > Duration::from_millis(200 + 800),
    );
}

#[test]
fn power_loss_with_fsync_never_still_starts_with_a_consistent_log() {
    broker_through_power_losses("fsync_never", "fsync = \"never\"\n", 4, |_, _| false);
}

/// Lines of the sender test: every 40th is longer than `line_bytes_max`.
fn sender_line(id: u64) -> String {
    if id % 40 == 39 {
        format!("long-{id}-{}\n", "z".repeat(1500 + (id as usize * 7) % 3000))
    } else {
        format!("line-{id}\n")
    }
}

/// The sender's state (registry and rejects) on the failing disk, the broker
/// and the log file on a good one: after the cuts and a clean finish, every
/// line is in the topic (at most once per cut more), every over-long line is
/// in the rejects file whole, and none of them is in the topic.
#[test]
fn power_loss_under_the_sender_keeps_every_rejected_line() {
    let base = tempfile::tempdir().unwrap();
    let Some(mut cut) = PowerCut::new(&base.path().join("disk"), "sender_rejects") else {
        return;
    };
    cut.power_on();
    let broker = BrokerProcess::start(base.path(), "");
    let logs = base.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let app = logs.join("app.log");
    let state = cut.mountpoint.join("state");
    let config = base.path().join("send.toml");
    std::fs::write(
        &config,
        format!(
            "[[send]]\ntopic = \"lines\"\npaths = [\"{}\"]\nstate_dir = \"{}\"\nline_bytes_max = 1024\n",
            app.display(),
            state.display()
        ),
    )
    .unwrap();
    let args = [
        "send",
        "--broker",
        &broker.address,
        "--config",
        config.to_str().unwrap(),
    ];
    let mut sender = support::RelayProcess::start(args.map(str::to_owned).to_vec(), &base.path().join("send.log"));
    let total: u64 = 4_000 * cycles(8) as u64;
    let writer = {
        let app = app.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::File::create(&app).unwrap();
            for id in 0..total {
                file.write_all(sender_line(id).as_bytes()).unwrap();
                if id % 100 == 99 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    while !writer.is_finished() {
        cut.random_wait(200, 1200);
        cut.pull();
        sender.kill9();
        cut.power_off();
        cut.power_on();
        sender.launch();
    }
    writer.join().unwrap();
    let expected: BTreeSet<String> = (0..total)
        .map(sender_line)
        .filter(|l| l.starts_with("line-"))
        .map(|l| l.trim_end().to_owned())
        .collect();
    // Wait until every short line is in the topic.
    let mut sends: HashMap<String, usize> = HashMap::new();
    let started = Instant::now();
    loop {
        let consumed = support::run_with_timeout(
            std::process::Command::new(support::relay_binary()).args([
                "consume",
                "--topic",
                "lines",
                "--broker",
                &broker.address,
            ]),
            Duration::from_secs(120),
        );
        sends.clear();
        for value in String::from_utf8_lossy(&consumed.stdout).lines() {
            *sends.entry(value.to_owned()).or_default() += 1;
        }
        if expected.iter().all(|l| sends.contains_key(l)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} of {} lines in the topic\n{}",
            expected.iter().filter(|l| sends.contains_key(*l)).count(),
            expected.len(),
            sender.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(sender.terminate(), Some(0), "{}", sender.log());
    for (value, count) in &sends {
        assert!(
            expected.contains(value),
            "{value:.40} is in the topic and should not be"
        );
        assert!(
            *count <= 1 + cut.pulls,
            "{value} sent {count} times in {} cuts",
            cut.pulls
        );
    }
    // Every over-long line whole in the rejects file, after its header. An
    // entry cut short by a torn write may be there too, followed by the same
    // line again, whole.
    let rejects = std::fs::read(state.join("rejects")).unwrap();
    let rejects = String::from_utf8_lossy(&rejects);
    let prefix = format!("# relay-reject file={} position=", app.display());
    let mut whole: HashMap<usize, HashSet<&str>> = HashMap::new();
    for entry in rejects.split(prefix.as_str()).skip(1) {
        let Some((header, rest)) = entry.split_once('\n') else {
            continue;
        };
        let Some(position) = header.split_whitespace().next().and_then(|p| p.parse().ok()) else {
            continue;
        };
        if let Some((body, _)) = rest.split_once('\n') {
            whole.entry(position).or_default().insert(body);
        }
    }
    let mut position = 0;
    for id in 0..total {
        let text = sender_line(id);
        if text.starts_with("long-") {
            assert!(
                whole
                    .get(&position)
                    .is_some_and(|bodies| bodies.contains(text.trim_end())),
                "line {id} at {position} is not whole in the rejects file"
            );
        }
        position += text.len();
    }
    cut.report("sender_rejects");
    let duplicates: usize = sends.values().map(|n| n - 1).sum();
    eprintln!(
        "sender_rejects: {} lines, {duplicates} sent again after a cut",
        expected.len()
    );
}

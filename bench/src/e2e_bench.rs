//! `relay-bench e2e`: the whole pipeline, one process each way. A `relay up`
//! (broker, sender, SQLite loader) runs from a config in a scratch directory;
//! this bench appends JSON lines carrying their write time to the watched
//! file at a fixed rate and polls the warehouse: a row's latency is the time
//! from its line being written to it being visible in the table.

use crate::report::Phase;
use clap::Args;
use hdrhistogram::Histogram;
use relay_proto::clock::now_micros as now_us;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Args, Clone)]
pub struct E2eBenchArgs {
    /// The `relay` binary to run.
    #[arg(long, default_value = "target/release/relay")]
    pub relay: PathBuf,
    /// Lines per second written.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// The loader's batch_wait_ms (with `write_when_idle`, the default, a
    /// batch waits no timer: it goes as soon as no write is in flight).
    #[arg(long, default_value_t = 50)]
    pub batch_wait_ms: u64,
    /// Scratch directory base (default under target/, on the project's disk).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(args: &E2eBenchArgs) -> Result<Phase, String> {
    let base = args.dir.clone().unwrap_or_else(|| PathBuf::from("target/bench-data"));
    std::fs::create_dir_all(&base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let scratch = tempfile::tempdir_in(&base).map_err(|e| e.to_string())?;
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| e.to_string())?;
    let warehouse = dir.join("warehouse.db");
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            r#"[broker]
listen = "127.0.0.1:0"
data_dir = "{data}"

[[send]]
topic = "e2e"
paths = ["{logs}/*.jsonl"]
state_dir = "{state}"

[[load]]
topic = "e2e"
group = "e2e-loader"
warehouse = "sqlite://{warehouse}"
table = "events"
batch_wait_ms = {wait}
batch_records_max = 50000
columns = [
  {{ name = "uuid", pointer = "/uuid", type = "uuid" }},
  {{ name = "written_us", pointer = "/written_us", type = "bigint" }},
]
"#,
            data = dir.join("data").display(),
            logs = dir.join("logs").display(),
            state = dir.join("state").display(),
            warehouse = warehouse.display(),
            wait = args.batch_wait_ms,
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut relay = Command::new(&args.relay)
        .args(["up", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("relay.log")).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", args.relay.display()))?;
    let result = measure(args, dir, &warehouse);
    let _ = Command::new("kill").args(["-TERM", &relay.id().to_string()]).status();
    let _ = relay.wait();
    result
}

fn measure(args: &E2eBenchArgs, dir: &std::path::Path, warehouse: &std::path::Path) -> Result<Phase, String> {
    let total = args.rate * args.seconds;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("logs/events.jsonl"))
        .map_err(|e| e.to_string())?;
    let db = wait_for_table(warehouse)?;
    let mut last_rowid = warm_up(&mut file, &db)?;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds");
    let started = Instant::now();
    let mut written = 0u64;
    let mut seen = 0u64;
    let mut query = db
        .prepare("SELECT rowid, written_us FROM events WHERE rowid > ?1 ORDER BY rowid")
        .map_err(|e| e.to_string())?;
    let deadline = Duration::from_secs(args.seconds + 60);
    while seen < total {
        // Write what is due by now, in one append.
        let due = ((started.elapsed().as_secs_f64() * args.rate as f64) as u64).min(total);
        if due > written {
            write_lines(&mut file, written..due)?;
            written = due;
        }
        seen += record_new_rows(&mut query, &mut last_rowid, &mut latency)?;
        if started.elapsed() > deadline {
            return Err(format!(
                "only {seen} of {total} rows visible after {} s",
                deadline.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(Phase {
        name: format!("e2e file->sqlite {}/s", args.rate),
        records: seen,
        bytes: 0,
        elapsed: started.elapsed(),
        latency_us: Some(latency),
    })
}

/// The warehouse, once the loader has created its table (it does at start).
fn wait_for_table(warehouse: &std::path::Path) -> Result<rusqlite::Connection, String> {
    let started_wait = Instant::now();
    loop {
        if let Ok(db) = rusqlite::Connection::open_with_flags(warehouse, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) {
            if db.prepare("SELECT count(*) FROM events").is_ok() {
                return Ok(db);
            }
        }
        if started_wait.elapsed() > Duration::from_secs(30) {
            return Err("the loader did not create its table within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends one line through the whole pipeline (topic creation, the loader's
/// rebalance onto it) before anything is measured; the rowid it got.
fn warm_up(file: &mut std::fs::File, db: &rusqlite::Connection) -> Result<i64, String> {
    writeln!(
        file,
        "{{\"uuid\":\"00000000-0000-4000-9000-000000000000\",\"written_us\":{}}}",
        now_us()
    )
    .map_err(|e| e.to_string())?;
    let warm = Instant::now();
    loop {
        let rows: i64 = db
            .query_row("SELECT coalesce(max(rowid), 0) FROM events", [], |row| row.get(0))
            .map_err(|e| e.to_string())?;
        if rows > 0 {
            return Ok(rows);
        }
        if warm.elapsed() > Duration::from_secs(60) {
            return Err("the warm-up line was not loaded within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Appends lines number `lines` in one write, all stamped with now.
fn write_lines(file: &mut std::fs::File, lines: std::ops::Range<u64>) -> Result<(), String> {
    let mut chunk = String::new();
    let stamp = now_us();
    for n in lines {
        chunk.push_str(&format!(
            "{{\"uuid\":\"00000000-0000-4000-8000-{n:012}\",\"written_us\":{stamp}}}\n"
        ));
    }
    file.write_all(chunk.as_bytes()).map_err(|e| e.to_string())
}

/// Records the latency of every row after `last_rowid` (moved past them);
/// how many there were.
fn record_new_rows(
    query: &mut rusqlite::Statement<'_>,
    last_rowid: &mut i64,
    latency: &mut Histogram<u64>,
) -> Result<u64, String> {
    let now = now_us();
    let rows = query
        .query_map([*last_rowid], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
        .map_err(|e| e.to_string())?;
    let mut seen = 0;
    for row in rows {
        let (rowid, written_us) = row.map_err(|e| e.to_string())?;
        *last_rowid = (*last_rowid).max(rowid);
        let _ = latency.record((now - written_us).max(1) as u64);
        seen += 1;
    }
    Ok(seen)
}

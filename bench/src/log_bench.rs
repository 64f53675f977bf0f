//! `relay-bench log`: the storage engine alone, no network.
//!
//! `--writers` threads append copies of one prebuilt batch (`--batch-records`
//! records of `--record-bytes` bytes each) to one partition for `--seconds`,
//! under the chosen fsync policy; then one reader reads the whole partition
//! back from offset 0 in `--read-bytes` chunks. The data directory defaults
//! to a fresh directory under `target/` so it sits on the project's disk
//! (never tmpfs), and is removed afterwards.

use crate::report::{self, Phase};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use relay_broker::log::{FaultInjector, FsyncPolicy, LogConfig, PartitionLog};
use relay_proto::{BatchBuilder, RecordBatches, RecordSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Fsync {
    Always,
    Interval,
    Never,
}

#[derive(Debug, Args)]
pub struct LogBenchArgs {
    #[arg(long, default_value_t = 4)]
    writers: usize,
    #[arg(long, value_enum, default_value = "always")]
    fsync: Fsync,
    #[arg(long, default_value_t = 1000)]
    batch_records: usize,
    #[arg(long, default_value_t = 100)]
    record_bytes: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 1024 * 1024)]
    read_bytes: usize,
    /// Directory for the partition (created and removed); default under target/.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn template_batch(args: &LogBenchArgs) -> Vec<u8> {
    let mut builder = BatchBuilder::new(1_767_225_600_000);
    for index in 0..args.batch_records {
        let mut value = format!("{{\"n\":{index},\"pad\":\"").into_bytes();
        value.resize(args.record_bytes.saturating_sub(2), b'x');
        value.extend_from_slice(b"\"}");
        builder.push(RecordSpec::value(value));
    }
    builder.build()
}

pub fn run(args: &LogBenchArgs) -> Result<(), String> {
    let (scratch, log) = open_log(args)?;
    let template = template_batch(args);
    let payload_bytes = (args.batch_records * args.record_bytes) as u64;
    println!(
        "log bench: {} writers, fsync {:?}, batches of {} x {} B records ({} B on disk), {} s, dir {}",
        args.writers,
        args.fsync,
        args.batch_records,
        args.record_bytes,
        template.len(),
        args.seconds,
        scratch.path().display()
    );
    let (latency, append_elapsed) = append_for(args, &log, &template);
    let batches = latency.len();
    log.flush().map_err(|e| e.to_string())?;
    let (records, bytes, read_elapsed) = read_all(&log, args.read_bytes)?;

    report::print(&[
        Phase {
            name: format!("append fsync={:?} w={}", args.fsync, args.writers).to_lowercase(),
            records: batches * args.batch_records as u64,
            bytes: batches * payload_bytes,
            elapsed: append_elapsed,
            latency_us: Some(latency),
        },
        Phase {
            name: "read (page cache)".into(),
            records,
            bytes,
            elapsed: read_elapsed,
            latency_us: None,
        },
    ]);
    Ok(())
}

/// A fresh partition under `--dir` (default `target/bench-data`) with the
/// chosen fsync policy and no retention; the directory goes with the guard.
fn open_log(args: &LogBenchArgs) -> Result<(tempfile::TempDir, PartitionLog), String> {
    let base = args.dir.clone().unwrap_or_else(|| PathBuf::from("target/bench-data"));
    std::fs::create_dir_all(&base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let scratch = tempfile::tempdir_in(&base).map_err(|e| format!("temporary dir in {}: {e}", base.display()))?;
    let fsync = match args.fsync {
        Fsync::Always => FsyncPolicy::Always,
        Fsync::Interval => FsyncPolicy::Interval,
        Fsync::Never => FsyncPolicy::Never,
    };
    let config = LogConfig {
        fsync,
        retention_ms: -1,
        ..LogConfig::default()
    };
    let (log, _) = PartitionLog::open(scratch.path(), config, FaultInjector::default()).map_err(|e| e.to_string())?;
    Ok((scratch, log))
}

/// `--writers` threads append copies of `template` until `--seconds` pass;
/// the append latencies (µs) of all of them, and how long it took.
fn append_for(args: &LogBenchArgs, log: &PartitionLog, template: &[u8]) -> (Histogram<u64>, Duration) {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let histograms: Vec<Histogram<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.writers)
            .map(|_| {
                scope.spawn(move || {
                    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
                    let mut batch = template.to_vec();
                    while Instant::now() < deadline {
                        batch.copy_from_slice(template);
                        let start = Instant::now();
                        log.append(&mut batch).expect("append");
                        latency.saturating_record(start.elapsed().as_micros() as u64);
                    }
                    latency
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).collect()
    });
    let elapsed = started.elapsed();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    for histogram in &histograms {
        latency.add(histogram).expect("same bounds");
    }
    (latency, elapsed)
}

/// Reads the whole partition from offset 0 in `read_bytes` chunks: records,
/// bytes, and how long it took.
fn read_all(log: &PartitionLog, read_bytes: usize) -> Result<(u64, u64, Duration), String> {
    let started = Instant::now();
    let (mut offset, mut records, mut bytes) = (0i64, 0u64, 0u64);
    loop {
        let result = log.read(offset, read_bytes).map_err(|e| e.to_string())?;
        if result.bytes.is_empty() {
            break;
        }
        bytes += result.bytes.len() as u64;
        for item in RecordBatches::new(&result.bytes) {
            let (_, header, _) = item.map_err(|e| e.to_string())?;
            records += header.record_count() as u64;
            offset = header.last_offset() + 1;
        }
    }
    Ok((records, bytes, started.elapsed()))
}

//! `relay produce`: one record per line of a file or standard input. Lines
//! are read as bytes (no encoding assumed), the trailing newline removed;
//! with `--key-field` the key comes from that top-level JSON field (lines
//! that are not JSON objects, or lack the field, get no key). Reading streams
//! with bounded memory: the producer's buffer makes reading wait.

use super::client::{connect, fail, runtime, with_config};
use crate::cli::ProduceArgs;
use crate::exit;
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use relay_client::producer::{parse_compression, Delivery, Producer, ProducerConfig, ProducerRecord};
use relay_client::ClientError;
use relay_sender::key_of;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Chunks of lines read ahead of the producer, and lines per chunk: 16 x
/// 1,000 lines keeps the reader thread busy without holding much memory.
const READ_AHEAD_CHUNKS_MAX: usize = 16;
const CHUNK_LINES_MAX: usize = 1000;
/// The reader's buffer: input is read from the file in pieces of at most
/// 1 MiB, whatever the line lengths.
const READ_BUFFER_BYTES_MAX: usize = 1 << 20;
/// A record not acknowledged by the broker within 30 s counts as not
/// delivered (the summary says how many, with the first error).
const DELIVERY_WAIT_MS_MAX: u64 = 30_000;

/// Reads lines (without their newline) on a blocking thread, in chunks.
fn read_lines(
    input: Box<dyn Read + Send>,
    chunks: mpsc::Sender<std::io::Result<Vec<Vec<u8>>>>,
    progress: Option<ProgressBar>,
) {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES_MAX, input);
    let mut chunk = Vec::with_capacity(CHUNK_LINES_MAX);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(read) => {
                if let Some(bar) = &progress {
                    bar.inc(read as u64);
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                chunk.push(line);
                if chunk.len() == CHUNK_LINES_MAX && chunks.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
                    return;
                }
            }
            Err(error) => {
                let _ = chunks.blocking_send(Err(error));
                return;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.blocking_send(Ok(chunk));
    }
}

/// Deliveries awaited behind the reader: enough to keep several batches in
/// flight per partition without holding the whole file.
const IN_FLIGHT_DELIVERIES_MAX: usize = 100_000;

pub fn run(mut args: ProduceArgs) -> i32 {
    if let Err(code) = with_config("produce", &mut args.client, args.config.as_deref()) {
        return code;
    }
    let codec = match parse_compression(&args.compression) {
        Ok(codec) => codec,
        Err(error) => {
            eprintln!("relay produce: {error}");
            return exit::USAGE;
        }
    };
    let Some((input, total_bytes)) = open_input(&args) else {
        return exit::USAGE;
    };
    runtime().block_on(async move {
        let cluster = match connect(&args.client, "relay-produce").await {
            Ok(cluster) => cluster,
            Err(error) => return fail("produce", &error),
        };
        let config = ProducerConfig {
            compression: codec,
            delivery_timeout: Some(Duration::from_millis(DELIVERY_WAIT_MS_MAX)),
            ..ProducerConfig::default()
        };
        let producer = match Producer::new(cluster, config).await {
            Ok(producer) => producer,
            Err(error) => return fail("produce", &error),
        };
        let progress = total_bytes.map(progress_bar);
        let (deliveries, pending) = mpsc::channel::<Delivery>(IN_FLIGHT_DELIVERIES_MAX);
        let waiter = tokio::spawn(wait_for_deliveries(pending));
        let started = Instant::now();
        let (chunks, lines) = mpsc::channel::<std::io::Result<Vec<Vec<u8>>>>(READ_AHEAD_CHUNKS_MAX);
        let reader_progress = progress.clone();
        let reader = tokio::task::spawn_blocking(move || read_lines(input, chunks, reader_progress));
        let produced = produce_lines(&args, &producer, lines, &deliveries).await;
        let _ = reader.await;
        drop(deliveries);
        producer.flush().await;
        let (failed, first_error) = waiter.await.expect("delivery task");
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        report(&args, &produced, started.elapsed().as_secs_f64(), failed, first_error)
    })
}

/// The input and its size (none for standard input); `None` after saying
/// why a file cannot be read.
fn open_input(args: &ProduceArgs) -> Option<(Box<dyn Read + Send>, Option<u64>)> {
    match args.file.as_deref() {
        None => Some((Box::new(std::io::stdin()), None)),
        Some(path) if path.as_os_str() == "-" => Some((Box::new(std::io::stdin()), None)),
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => {
                let size = file.metadata().map(|m| m.len()).ok();
                Some((Box::new(file), size))
            }
            Err(error) => {
                eprintln!("relay produce: cannot read {}: {error}", path.display());
                None
            }
        },
    }
}

/// The progress bar of a file of `total` bytes.
fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
            .expect("template"),
    );
    bar
}

/// Awaits every delivery: how many failed, and the first error.
async fn wait_for_deliveries(mut pending: mpsc::Receiver<Delivery>) -> (u64, Option<ClientError>) {
    let (mut failed, mut first_error) = (0u64, None);
    while let Some(delivery) = pending.recv().await {
        if let Err(error) = delivery.wait().await {
            failed += 1;
            first_error.get_or_insert(error);
        }
    }
    (failed, first_error)
}

/// How far producing got, and why it stopped early if it did.
struct Produced {
    outcome: Result<(), Stop>,
    records: u64,
    bytes: u64,
}

/// Sends every line read as a record, handing each delivery to the waiter.
/// Ctrl-C (or SIGTERM) stops reading; what was sent is still flushed and
/// acknowledged, and the summary says how far the input got.
async fn produce_lines(
    args: &ProduceArgs,
    producer: &Producer,
    mut lines: mpsc::Receiver<std::io::Result<Vec<Vec<u8>>>>,
    deliveries: &mpsc::Sender<Delivery>,
) -> Produced {
    let (mut records, mut bytes) = (0u64, 0u64);
    let interrupted = relay_supervisor::signal::wait_for_signal();
    tokio::pin!(interrupted);
    let outcome = 'produce: loop {
        let received = tokio::select! {
            received = lines.recv() => received,
            _ = &mut interrupted => break Err(Stop::Interrupted),
        };
        let chunk = match received {
            None => break Ok(()),
            Some(Err(error)) => break Err(Stop::Failed(format!("reading input: {error}"))),
            Some(Ok(chunk)) => chunk,
        };
        for line in chunk {
            let key = args.key_field.as_deref().and_then(|field| key_of(&line, field));
            bytes += line.len() as u64;
            let record = ProducerRecord {
                topic: args.topic.clone(),
                key,
                value: Some(Bytes::from(line)),
                ..ProducerRecord::default()
            };
            match producer.send(record).await {
                Ok(delivery) => {
                    records += 1;
                    if deliveries.send(delivery).await.is_err() {
                        break 'produce Err(Stop::Failed("delivery tracking stopped".into()));
                    }
                }
                Err(error) => break 'produce Err(Stop::Failed(error.to_string())),
            }
        }
    };
    Produced {
        outcome,
        records,
        bytes,
    }
}

/// The summary line, then why producing stopped or failed; the exit code.
fn report(args: &ProduceArgs, produced: &Produced, seconds: f64, failed: u64, first_error: Option<ClientError>) -> i32 {
    let Produced {
        outcome,
        records,
        bytes,
    } = produced;
    eprintln!(
        "produced {} records ({:.1} MB) to {} in {seconds:.2} s ({:.0} records/s)",
        records - failed,
        *bytes as f64 / 1e6,
        args.topic,
        (records - failed) as f64 / seconds.max(1e-9)
    );
    match outcome {
        Err(Stop::Interrupted) => {
            let input = args
                .file
                .as_deref()
                .map_or("standard input".into(), |p| p.display().to_string());
            eprintln!(
                "relay produce: interrupted after {records} records (through line {records} of {input}); {} acknowledged by the broker",
                records - failed
            );
            return exit::INTERRUPTED;
        }
        Err(Stop::Failed(error)) => {
            eprintln!("relay produce: {error}");
            return exit::FAILURE;
        }
        Ok(()) => {}
    }
    if let Some(error) = first_error {
        eprintln!("relay produce: {failed} records were not delivered; first error: {error}");
        return if error.is_unreachable() {
            exit::UNREACHABLE
        } else {
            exit::FAILURE
        };
    }
    exit::SUCCESS
}

/// Why producing stopped before the end of the input.
enum Stop {
    Failed(String),
    /// SIGINT or SIGTERM.
    Interrupted,
}

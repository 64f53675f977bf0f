//! `relay-bench send`: `relay send` on one large file. Writes `--gib` of
//! 100-byte JSON lines, starts a broker and `relay send --metrics`, and
//! measures the time until every byte is acknowledged (the sender's
//! `relay_sender_bytes_acked_total` equals the file size) and the sender's
//! peak RSS.

use crate::processes::{self, scrape_sum};
use crate::report::Phase;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Args, Clone)]
pub struct SendBenchArgs {
    #[arg(long, default_value = "target/release/relay")]
    pub relay: PathBuf,
    #[arg(long, default_value_t = 10.0)]
    pub gib: f64,
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(args: &SendBenchArgs) -> Result<(Phase, u64), String> {
    let base = args.dir.clone().unwrap_or_else(|| PathBuf::from("target/bench-data"));
    std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
    let scratch = tempfile::tempdir_in(&base).map_err(|e| e.to_string())?;
    let dir = scratch.path();
    let file = dir.join("big.jsonl");
    let target = (args.gib * (1u64 << 30) as f64) as u64;
    let (size, lines) = write_big_file(&file, target)?;
    let data = dir.join("data").display().to_string();
    let mut broker = processes::start(
        &args.relay,
        &["broker", "--listen", "127.0.0.1:0", "--data-dir", &data],
        &dir.join("broker.log"),
    )?;
    let path = file.display().to_string();
    let state = dir.join("state").display().to_string();
    let started = Instant::now();
    let mut sender = processes::start(
        &args.relay,
        &[
            "send",
            "--broker",
            &broker.address,
            "--topic",
            "big",
            "--path",
            &path,
            "--state-dir",
            &state,
            "--metrics",
            "127.0.0.1:0",
        ],
        &dir.join("send.log"),
    )?;
    let peak_rss = wait_until_acked(&sender, size, started)?;
    let elapsed = started.elapsed();
    let peak_rss = peak_rss.max(sender.peak_rss_bytes().unwrap_or(0));
    sender.terminate();
    broker.terminate();
    Ok((
        Phase {
            name: format!("send {:.0} GiB file", args.gib),
            records: lines,
            bytes: size,
            elapsed,
            latency_us: None,
        },
        peak_rss,
    ))
}

/// Writes 100-byte JSON lines to `file` until it holds at least `target`
/// bytes: its size and its lines.
fn write_big_file(file: &std::path::Path, target: u64) -> Result<(u64, u64), String> {
    let mut writer =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(file).map_err(|e| e.to_string())?);
    let (mut size, mut lines) = (0u64, 0u64);
    while size < target {
        // 100 bytes with the newline.
        let line = format!(
            "{{\"n\":{lines:012},\"event\":\"bench\",\"pad\":\"{}\"}}\n",
            "x".repeat(53)
        );
        writer.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        size += line.len() as u64;
        lines += 1;
    }
    writer.flush().map_err(|e| e.to_string())?;
    Ok((size, lines))
}

/// Polls the sender's metrics until it has acknowledged `size` bytes (an
/// hour at most after `started`): the sender's peak RSS meanwhile.
fn wait_until_acked(sender: &processes::Started, size: u64, started: Instant) -> Result<u64, String> {
    let metrics = sender
        .metrics
        .clone()
        .ok_or("the sender announced no metrics address")?;
    let mut peak_rss = 0;
    loop {
        peak_rss = peak_rss.max(sender.peak_rss_bytes().unwrap_or(0));
        let acked = scrape_sum(&metrics, "relay_sender_bytes_acked_total").unwrap_or(0.0) as u64;
        if acked >= size {
            return Ok(peak_rss);
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(format!("only {acked} of {size} bytes acknowledged after an hour"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

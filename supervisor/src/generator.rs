//! The event generator behind `relay gen-events` and `relay up --gen-events`:
//! an application writing its log. It writes realistic game events (uuid, player, event
//! type, amount, timestamp) as JSON lines at a chosen rate, renaming the file
//! every `rotate_lines` lines (`events.jsonl` → `events.jsonl.1`, …) as a
//! log rotator would. Used by the quickstart (`relay up --gen-events`) and by
//! the chaos test, whose writers make the ground truth: every uuid in every
//! file must end up in the warehouse exactly once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EVENT_TYPES: [&str; 6] = ["login", "match_start", "match_end", "purchase", "level_up", "logout"];

#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub file: PathBuf,
    pub rate_per_second: u64,
    pub rotate_lines: u64,
    /// Stop after this many events (`None`: until stopped).
    pub count: Option<u64>,
    pub seed: u64,
}

impl GeneratorConfig {
    /// Writes `events.jsonl` in the directory of the first sender pattern.
    pub fn for_send_paths(paths: &[String], rate_per_second: u64) -> Result<Self, String> {
        let first = paths.first().ok_or("the [[send]] section has no paths")?;
        let dir = Path::new(first)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok(Self {
            file: dir.join("events.jsonl"),
            rate_per_second,
            rotate_lines: 100_000,
            count: None,
            seed: seed_from_clock(),
        })
    }
}

/// A seed that differs from run to run (never 0, which xorshift cannot leave).
pub fn seed_from_clock() -> u64 {
    relay_proto::clock::now_micros() as u64 | 1
}

/// xorshift64*: fast, seedable, good enough for test data.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn uuid_v4(random: &mut Random) -> String {
    let (high, low) = (random.next(), random.next());
    let bytes: u128 = (u128::from(high) << 64) | u128::from(low);
    let bytes = (bytes & !(0xf << 76) | (0x4 << 76)) & !(0xc << 60) | (0x8 << 60);
    let hex = format!("{bytes:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn event(random: &mut Random) -> String {
    let kind = EVENT_TYPES[(random.next() % EVENT_TYPES.len() as u64) as usize];
    let amount = if kind == "purchase" { random.next() % 10_000 } else { 0 };
    let micros = relay_proto::clock::now_micros();
    format!(
        "{{\"uuid\":\"{}\",\"player_id\":\"player-{}\",\"type\":\"{kind}\",\"amount\":{amount},\"ts\":\"{}\"}}",
        uuid_v4(random),
        random.next() % 5_000,
        relay_client::time::format_rfc3339_micros(micros)
    )
}

/// Writes events until `count` or `stopped()`; returns how many.
pub fn generate(config: &GeneratorConfig, stopped: impl Fn() -> bool) -> Result<u64, String> {
    if let Some(dir) = config.file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let mut file = open(&config.file)?;
    let mut random = Random(config.seed.max(1));
    let started = Instant::now();
    let (mut written, mut in_file, mut rotations) = (0u64, 0u64, 0u64);
    let mut buffer = String::new();
    while config.count.is_none_or(|count| written < count) && !stopped() {
        // Write in slices of 10 ms so the rate is smooth.
        let due = (started.elapsed().as_secs_f64() * config.rate_per_second as f64) as u64 + 1;
        let slice = due
            .saturating_sub(written)
            .min(config.count.map_or(u64::MAX, |c| c - written));
        if slice == 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        for _ in 0..slice {
            buffer.push_str(&event(&mut random));
            buffer.push('\n');
            written += 1;
            in_file += 1;
            if in_file == config.rotate_lines {
                file.write_all(buffer.as_bytes()).map_err(|e| e.to_string())?;
                buffer.clear();
                rotations += 1;
                let rotated = PathBuf::from(format!("{}.{rotations}", config.file.display()));
                std::fs::rename(&config.file, &rotated)
                    .map_err(|e| format!("rotating {}: {e}", config.file.display()))?;
                file = open(&config.file)?;
                in_file = 0;
            }
        }
        file.write_all(buffer.as_bytes()).map_err(|e| e.to_string())?;
        buffer.clear();
    }
    Ok(written)
}

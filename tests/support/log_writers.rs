//! Applications writing log files for the chaos test: JSON events, one a
//! line, at a steady rate, rotated by rename or copytruncate. Every line is
//! unique (the writer and a sequence number, plus a uuid when asked), so a
//! test can count each line in the files and in the warehouse.
//!
//! A copytruncate writer copies and truncates between two of its own writes:
//! the copy holds every line written before, the truncated file none of
//! them, so the lines of all files (live and rotated) are the lines written,
//! each once. A real `logrotate copytruncate` loses the lines written
//! between its copy and its truncation; that loss is not the sender's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// xorshift64: the same sequence for the same seed.
pub struct Seeded(pub u64);

impl Seeded {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventId {
    /// `"uuid": "…"`, the loader's default dedup key.
    Uuid,
    /// Nothing the loader can use as a key: it falls back to the line's source.
    Absent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// `mv file file.N`, then a new `file`.
    Rename,
    /// Copy `file` to `file.N`, then truncate `file` to 0 and keep appending to it.
    CopyTruncate,
}

/// One writer: `count` events into `file` at `rate_per_second`, rotated to
/// `file.1`, `file.2`, … every `rotate_lines` lines.
pub struct LogWriter {
    pub file: PathBuf,
    /// Written into every event as `"writer"`.
    pub writer: u64,
    pub id: EventId,
    pub rotation: Rotation,
    pub count: u64,
    pub rate_per_second: u64,
    pub rotate_lines: u64,
    pub seed: u64,
}

fn uuid_text(random: &mut Seeded) -> String {
    let hex = format!("{:016x}{:016x}", random.next(), random.next());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `{"writer":W,"seq":N,"pad":"…"}` (after a `"uuid"` when asked), with a
/// padding of random length so lines and files differ in size.
fn event_line(writer: u64, seq: u64, id: EventId, random: &mut Seeded) -> String {
    let pad: String = (0..random.next() % 48)
        .map(|_| char::from(b'a' + (random.next() % 26) as u8))
        .collect();
    let uuid = match id {
        EventId::Uuid => format!("\"uuid\":\"{}\",", uuid_text(random)),
        EventId::Absent => String::new(),
    };
    format!("{{{uuid}\"writer\":{writer},\"seq\":{seq},\"pad\":\"{pad}\"}}\n")
}

fn open_for_append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

impl LogWriter {
    /// Writes every event, in slices of 10 ms so the rate is smooth; returns
    /// how many it wrote.
    pub fn run(&self) -> u64 {
        let mut out = open_for_append(&self.file);
        let mut random = Seeded(self.seed | 1);
        let started = Instant::now();
        let (mut written, mut in_file, mut rotations) = (0, 0, 0);
        let mut buffer = String::new();
        while written < self.count {
            let due = (started.elapsed().as_secs_f64() * self.rate_per_second as f64) as u64 + 1;
            let due = due.min(self.count);
            if due <= written {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            while written < due {
                buffer.push_str(&event_line(self.writer, written, self.id, &mut random));
                written += 1;
                in_file += 1;
                if in_file == self.rotate_lines {
                    out.write_all(buffer.as_bytes()).unwrap();
                    buffer.clear();
                    rotations += 1;
                    self.rotate(&mut out, rotations);
                    in_file = 0;
                }
            }
            out.write_all(buffer.as_bytes()).unwrap();
            buffer.clear();
        }
        written
    }

    fn rotate(&self, out: &mut std::fs::File, rotations: u64) {
        let rotated = PathBuf::from(format!("{}.{rotations}", self.file.display()));
        match self.rotation {
            Rotation::Rename => {
                std::fs::rename(&self.file, &rotated).unwrap();
                *out = open_for_append(&self.file);
            }
            Rotation::CopyTruncate => {
                std::fs::copy(&self.file, &rotated).unwrap();
                // Appends go to the new end, 0, as a logger's O_APPEND writes do.
                out.set_len(0).unwrap();
            }
        }
    }
}

//! The reference model: what the application wrote, line by line, and what
//! each line must become. Every complete JSON line must be loaded exactly
//! once into its table with every value equal to what was written; every
//! banner must be in `relay_rejects` with its bytes; every half line either
//! completed (then loaded), still pending at the end of a file that is
//! still there, or set aside whole in the sender's rejects. Knows nothing of
//! processes: `world.rs` tells it what happened, `check.rs` compares.

use relay_client::time::format_rfc3339_micros;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The banner an application prints at every start: 300 bytes, not JSON,
/// the same each time, so a rewritten file has the same first 256 bytes.
pub fn banner() -> String {
    format!("# model-app starting {}", "=".repeat(300 - 21))
}
const _: () = assert!(21 == "# model-app starting ".len());

/// Bytes of the long line's filler: over the sender's 64 KiB read chunk.
pub const LONG_LINE_FILLER_BYTES: usize = 70 * 1024;

/// The sender's `line_bytes_max` in the model's configuration.
pub const LINE_BYTES_MAX: usize = 256 * 1024;
/// Bytes of an over-long line's filler: over `LINE_BYTES_MAX`.
pub const OVERLONG_FILLER_BYTES: usize = 300 * 1024;

/// The table a line's `kind` routes it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    Events,
    Kinds,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Kinds => "kinds",
        }
    }
}

/// A complete line as written, and what its row must hold.
#[derive(Debug, Clone)]
pub struct Written {
    pub file: u8,
    pub table: Table,
    /// The event as written (the parsed line).
    pub event: Value,
    /// `ts` as the warehouse must hold it: UTC, microseconds.
    pub ts_utc: String,
}

/// A half line whose file went away or was rotated before it was completed.
#[derive(Debug, Clone)]
pub struct Stranded {
    pub seq: u64,
    pub bytes: Vec<u8>,
    /// Where its bytes are (the rotated copy), or `None` once deleted.
    pub path: Option<PathBuf>,
}

/// Small deterministic generator for field values (splitmix64).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const INTEGERS: [i64; 8] = [
    i64::MIN,
    i64::MAX,
    (1 << 53) + 1,
    -(1 << 53) - 1,
    0,
    -1,
    1_000_000_007,
    42,
];
const DOUBLES: [f64; 6] = [0.1, 1e-7, 123.456, 1.5e300, -2.5, 5e-324];
const TEXTS: [&str; 8] = [
    "plain",
    "quote \" and backslash \\",
    "tab\tnew\nline",
    "é ü ß",
    "日本語のテキスト",
    "astral 😀🎉𝄞",
    "",
    "   spaces   ",
];
/// Offsets a timestamp is written with: Z, +05:30, -08:00, +14:00.
const OFFSETS_MINUTES: [i64; 4] = [0, 330, -480, 840];

#[derive(Default)]
pub struct Reference {
    pub values_seed: u64,
    next_seq: u64,
    pub complete: BTreeMap<u64, Written>,
    pub banners: u64,
    /// The half line pending in each file: (seq, first half, second half).
    pub pending: BTreeMap<u8, (u64, String, String)>,
    pub stranded: Vec<Stranded>,
    /// Lines over `LINE_BYTES_MAX`: each must be in the sender's rejects.
    pub overlong: Vec<Vec<u8>>,
    /// Bytes flipped in sealed segments: records there may be lost, each
    /// one counted in `relay_gaps`.
    pub corruptions: u32,
}

impl Reference {
    pub fn new(values_seed: u64) -> Self {
        Self {
            values_seed,
            next_seq: 1,
            ..Self::default()
        }
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// A new complete line for `file` (its bytes without the newline), recorded as expected.
    pub fn line(&mut self, file: u8, id: bool, filler_bytes: usize) -> String {
        let seq = self.take_seq();
        let (text, written) = self.event(seq, file, id, filler_bytes);
        self.complete.insert(seq, written);
        text
    }

    /// The event `seq`: its line and what its row must hold.
    fn event(&self, seq: u64, file: u8, id: bool, filler_bytes: usize) -> (String, Written) {
        let r = |k: u64| mix(self.values_seed ^ mix(seq.wrapping_mul(16) + k));
        let table = if r(0) % 3 == 0 { Table::Kinds } else { Table::Events };
        // 1970..2100, microseconds, sometimes whole seconds or milliseconds.
        let mut micros = (r(1) % 4_102_444_800_000_000) as i64;
        match r(2) % 4 {
            0 => micros -= micros % 1_000_000,
            1 => micros -= micros % 1_000,
            _ => {}
        }
        let offset_minutes = OFFSETS_MINUTES[(r(3) % 4) as usize];
        let ts_utc = format_rfc3339_micros(micros);
        let local = format_rfc3339_micros(micros + offset_minutes * 60_000_000);
        let ts = if offset_minutes == 0 {
            local
        } else {
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let m = offset_minutes.abs();
            format!("{}{sign}{:02}:{:02}", local.trim_end_matches('Z'), m / 60, m % 60)
        };
        let n = if r(4) % 2 == 0 {
            INTEGERS[(r(5) % 8) as usize]
        } else {
            r(5) as i64
        };
        let mut event = json!({
            "seq": seq,
            "kind": if table == Table::Kinds { "k" } else { "e" },
            "ts": ts,
            "n": n,
            "s": TEXTS[(r(6) % 8) as usize],
            "x": DOUBLES[(r(7) % 6) as usize],
        });
        if id {
            event["id"] = json!(format!("m-{seq}"));
        }
        if filler_bytes > 0 {
            event["filler"] = json!("f".repeat(filler_bytes));
        }
        let text = serde_json::to_string(&event).unwrap();
        let written = Written {
            file,
            table,
            event,
            ts_utc,
        };
        (text, written)
    }

    /// A line over the sender's limit: never loaded, set aside whole.
    pub fn overlong_line(&mut self, file: u8) -> String {
        let seq = self.take_seq();
        let (text, _) = self.event(seq, file, true, OVERLONG_FILLER_BYTES);
        self.overlong.push(text.clone().into_bytes());
        text
    }

    /// Starts a half line in `file`: returns its first half.
    pub fn start_partial(&mut self, file: u8) -> String {
        let seq = self.take_seq();
        let (text, _) = self.event(seq, file, true, 0);
        let cut = (0..=text.len() / 2).rev().find(|i| text.is_char_boundary(*i)).unwrap();
        let (first, second) = (text[..cut].to_owned(), text[cut..].to_owned());
        self.pending.insert(file, (seq, first.clone(), second));
        first
    }

    /// Completes `file`'s half line: returns its second half (the newline
    /// not included); the line is now expected.
    pub fn finish_partial(&mut self, file: u8) -> Option<String> {
        let (seq, _, second) = self.pending.remove(&file)?;
        let (_, written) = self.event(seq, file, true, 0);
        self.complete.insert(seq, written);
        Some(second)
    }

    /// `file`'s half line will never be completed: its bytes now sit at
    /// the end of `path` (a rotated copy), or nowhere (`None`: deleted).
    pub fn strand_partial(&mut self, file: u8, path: Option<PathBuf>) {
        if let Some((seq, first, _)) = self.pending.remove(&file) {
            self.stranded.push(Stranded {
                seq,
                bytes: first.into_bytes(),
                path,
            });
        }
    }

    /// The file at `path` was deleted: its stranded half lines are gone from disk.
    pub fn deleted(&mut self, path: &std::path::Path) {
        for stranded in &mut self.stranded {
            if stranded.path.as_deref() == Some(path) {
                stranded.path = None;
            }
        }
    }
}

//! Opening a partition directory (Kafka's `LogLoader`): find the segments,
//! decide which to trust, rescan the rest (setting corrupt batches aside and
//! cutting only a zero-filled or torn tail, see [`crate::log::segment::repair`]),
//! and rebuild the idempotent-producer state from batch headers.
//!
//! Trust rules:
//! - after a clean shutdown, every segment's indexes are checked against its
//!   file and the tail is walked; any disagreement makes that segment rescan;
//! - so is a segment the data directory's recovery checkpoint verifies
//!   (unchanged since a clean close, see [`crate::log::clean_checkpoint`]),
//!   even after a crash: it was fsynced whole and not written since;
//! - otherwise segments wholly below the recovery point are checked the same
//!   way, and every segment from the one holding the recovery point onwards is
//!   rescanned batch by batch with CRCs, its indexes rebuilt;
//! - a segment that ends past the next one's base is rescanned with that
//!   base as its bound; corruption in one segment never touches another:
//!   a corrupt batch costs only itself, its offsets a gap;
//! - the next offset is at least one past the highest offset any quarantine
//!   file held, so an offset is never handed out twice.

use crate::log::checkpoint::{create_dir_all, read_recovery_point, sync_dir, take_clean_shutdown};
use crate::log::clean_checkpoint::PartitionCheckpoint;
use crate::log::config::LogConfig;
use crate::log::error::{io_error, Result};
use crate::log::faults::FaultInjector;
use crate::log::file_names::{parse_segment_file, LOG_SUFFIX};
use crate::log::mapped_index::Preallocate;
use crate::log::producer_state::ProducerStates;
use crate::log::quarantine::{self, QUARANTINE_TEMPORARY_SUFFIX, REWRITE_SUFFIX};
use crate::log::segment::{Segment, SegmentRole};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What opening a partition found, for the start-up log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadSummary {
    pub clean_shutdown: bool,
    pub segments: usize,
    /// Segments trusted because the recovery checkpoint verified them.
    pub segments_verified: usize,
    pub segments_rescanned: usize,
    pub bytes_truncated: u64,
    /// Corrupt batches (spans) set aside in quarantine files.
    pub batches_set_aside: usize,
}

pub struct LoadedLog {
    pub segments: BTreeMap<i64, Segment>,
    pub producers: ProducerStates,
    pub recovery_point: i64,
    pub summary: LoadSummary,
}

/// The segments' base offsets, and whether orphans were removed (the
/// directory changed).
fn segment_base_offsets(dir: &Path) -> Result<(BTreeSet<i64>, bool)> {
    let mut bases = BTreeSet::new();
    let mut orphans = Vec::new();
    let mut index_bases = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        let name = entry.file_name();
        let name = name.to_str().unwrap_or_default();
        if name.ends_with(REWRITE_SUFFIX) || name.ends_with(QUARANTINE_TEMPORARY_SUFFIX) {
            // A set-aside interrupted by a crash: the scan below repeats it.
            orphans.push(entry.path());
            continue;
        }
        let Some((base, suffix)) = parse_segment_file(name) else {
            continue;
        };
        if suffix == LOG_SUFFIX {
            bases.insert(base);
        } else {
            index_bases.insert((base, entry.path()));
        }
    }
    for (base, path) in index_bases {
        if !bases.contains(&base) {
            orphans.push(path);
        }
    }
    let changed = !orphans.is_empty();
    for path in orphans {
        tracing::warn!(path = %path.display(), "removing an index without a segment, or an interrupted copy");
        std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
    }
    Ok((bases, changed))
}

/// Opens every segment of `dir`, recovering what needs it; `checkpoint` is
/// what the data directory's recovery checkpoint says about it.
pub fn load(
    dir: &Path,
    config: &LogConfig,
    faults: &FaultInjector,
    checkpoint: &PartitionCheckpoint,
) -> Result<LoadedLog> {
    // A partition directory's entry must be durable before anything in it is
    // acknowledged: a lost directory is a lost partition.
    create_dir_all(dir)?;
    let clean_shutdown = take_clean_shutdown(dir)? || checkpoint.clean;
    let recovery_point = read_recovery_point(dir);
    let (bases, orphans_removed) = segment_base_offsets(dir)?;
    let bases: Vec<i64> = bases.into_iter().collect();
    let mut summary = LoadSummary {
        clean_shutdown,
        ..LoadSummary::default()
    };
    let mut segments = BTreeMap::new();

    for (slot, &base) in bases.iter().enumerate() {
        let next_base = bases.get(slot + 1).copied();
        let holds_recovery_point = next_base.is_none_or(|next| next > recovery_point);
        let trust = if clean_shutdown || !holds_recovery_point {
            Trust::Indexes
        } else if checkpoint.verifies(dir, base) {
            Trust::Headers
        } else {
            Trust::Nothing
        };
        let rescanned_before = summary.segments_rescanned;
        let segment = open_segment(dir, base, next_base, trust, config, faults, &mut summary)?;
        if trust == Trust::Headers && summary.segments_rescanned == rescanned_before {
            summary.segments_verified += 1;
        }
        segments.insert(base, segment);
    }

    let created = segments.is_empty();
    if created {
        segments.insert(0, Segment::create(dir, 0, config, faults.clone())?);
    }
    if let Some(end) = quarantine::highest_end(dir)? {
        segments
            .values_mut()
            .next_back()
            .expect("one segment at least")
            .skip_to(end);
    }
    // The directory as listed here is what the log is from now on: a segment
    // created just before a process crash (page cache intact, directory entry
    // not yet synced) would otherwise vanish in a later power loss with every
    // record appended to it since. A clean close left the listing durable:
    // then only a change made here needs the fsync.
    if !clean_shutdown || created || orphans_removed || summary.segments_rescanned > 0 {
        sync_dir(dir)?;
    }
    let mut producers = ProducerStates::default();
    for segment in segments.values() {
        segment.for_each_header(|header| producers.record(header))?;
    }
    summary.segments = segments.len();
    Ok(LoadedLog {
        segments,
        producers,
        recovery_point,
        summary,
    })
}

/// How much of a segment recovery may take as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Log and indexes (clean shutdown, or below the recovery point), once
    /// the indexes agree with the log.
    Indexes,
    /// The log, verified by the recovery checkpoint; indexes rebuilt from
    /// its headers.
    Headers,
    /// Nothing: rescan batch by batch with CRCs.
    Nothing,
}

/// Opens the segment at `base` as far as `trust` allows, rescanning it when
/// that fails.
fn open_segment(
    dir: &Path,
    base: i64,
    next_base: Option<i64>,
    trust: Trust,
    config: &LogConfig,
    faults: &FaultInjector,
    summary: &mut LoadSummary,
) -> Result<Segment> {
    let preallocate = if next_base.is_none() {
        Preallocate::Full
    } else {
        Preallocate::Exact
    };
    let mut segment = Segment::open(dir, base, config, preallocate, faults.clone())?;
    let loaded = match trust {
        Trust::Indexes => segment.load_trusted()?,
        Trust::Headers => segment.load_verified()?,
        Trust::Nothing => false,
    };
    let trusted = loaded && next_base.is_none_or(|next| segment.next_offset() <= next);
    if trusted {
        return Ok(segment);
    }
    drop(segment);
    rescan(dir, base, next_base, config, faults, summary)
}

/// Rescans one segment batch by batch, setting corrupt batches aside.
fn rescan(
    dir: &Path,
    base: i64,
    next_base: Option<i64>,
    config: &LogConfig,
    faults: &FaultInjector,
    summary: &mut LoadSummary,
) -> Result<Segment> {
    let mut segment = Segment::open(dir, base, config, Preallocate::Full, faults.clone())?;
    let role = next_base.map_or(SegmentRole::Active, |next_base| SegmentRole::Sealed { next_base });
    let result = segment.recover(role)?;
    summary.segments_rescanned += 1;
    summary.batches_set_aside += result.set_aside.len();
    if result.truncated_bytes > 0 {
        tracing::warn!(
            segment = %segment.log_path().display(),
            position = result.valid_bytes,
            bytes = result.truncated_bytes,
            reason = result.truncation_reason.as_deref().unwrap_or(""),
            "cut the tail of the segment: it held no batch (a zero-filled or torn tail)"
        );
        summary.bytes_truncated += result.truncated_bytes;
    }
    if next_base.is_some() {
        segment.seal()?;
    }
    Ok(segment)
}

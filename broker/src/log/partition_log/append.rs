//! The append path of a partition log: every batch of a record set is
//! validated (header, CRC-32C) before anything is written, idempotent
//! retries are answered with their original offsets, a batch larger than
//! `message_bytes_max` is refused, and the rest are written with their base
//! offsets patched in, rolling to a new segment when the active one must roll
//! (size, age, offset range, full indexes). A batch larger than
//! `segment_bytes` is not refused: the segment before it rolls, it fills a
//! segment of its own, and the next batch rolls again (Kafka does the same).
//! Nothing is decompressed. Waiting for durability is
//! [`super::durability`]'s.
//!
//! Order of the checks on an idempotent batch: a retry of a batch already in
//! the log is answered as a duplicate whatever its size (so a limit lowered
//! between a write and its retry cannot turn the retry into a split, and the
//! split into a second copy), then the size, then the sequence.
//!
//! Locks: the write, and a roll's fsync of the segment it seals, happen under
//! `state`; `sync` is taken inside it only briefly (to refuse writes to a
//! poisoned log, or to poison it when that fsync fails), as the lock order
//! allows.

use super::{LogState, PartitionLog};
use crate::log::checkpoint::{sync_dir, write_recovery_point};
use crate::log::config::FsyncPolicy;
use crate::log::error::{LogError, Result};
use crate::log::producer_state::SequenceCheck;
use crate::log::segment::Segment;
use relay_proto::batch::patch_base_offset;
use relay_proto::{BatchHeader, RecordBatches};

/// What validating a record set found out.
struct Validated {
    /// The set is one batch with a producer id.
    idempotent: bool,
    /// Bytes of its largest batch, log overhead included.
    largest_batch_bytes: usize,
}

/// Result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The batch was a retry of one already in the log; nothing was written.
    pub duplicate: bool,
    pub log_start_offset: i64,
}

impl PartitionLog {
    /// Appends a record set (one or more whole batches, as in a Produce
    /// request). Batches are validated (header and CRC) first and written with
    /// their base offsets patched in; nothing is decompressed. Returns once the
    /// append is as durable as the fsync policy promises.
    pub fn append(&self, records: &mut [u8]) -> Result<AppendInfo> {
        let info = self.append_unsynced(records)?;
        self.make_durable(&info)?;
        Ok(info)
    }

    /// The first half of [`PartitionLog::append`]: validates and writes, in
    /// order with other appends, without waiting for durability. A server
    /// calls this in request order and [`PartitionLog::make_durable`]
    /// concurrently, so one connection's requests keep their order while
    /// their fsyncs overlap.
    pub fn append_unsynced(&self, records: &mut [u8]) -> Result<AppendInfo> {
        let validated = self.validate(records)?;
        let mut state = self.state.lock();
        self.check_writable(&state)?;
        let sequence = validated.idempotent.then(|| {
            let header = BatchHeader::parse(records).expect("validated").expect("whole");
            state.producers.check(&header)
        });
        if let Some(Ok(SequenceCheck::Duplicate(original))) = sequence {
            return Ok(AppendInfo {
                base_offset: original.first_offset,
                last_offset: original.last_offset,
                duplicate: true,
                log_start_offset: state.log_start_offset(),
            });
        }
        if validated.largest_batch_bytes > self.config.message_bytes_max {
            return Err(LogError::BatchTooLarge {
                batch_bytes: validated.largest_batch_bytes,
                message_bytes_max: self.config.message_bytes_max,
            });
        }
        if let Some(Err(error)) = sequence {
            return Err(error);
        }
        self.write_batches(&mut state, records)
    }

    /// Waits until `info`'s append is as durable as the fsync policy promises
    /// (for a duplicate, the original append it points at).
    pub fn make_durable(&self, info: &AppendInfo) -> Result<()> {
        self.after_append(info.last_offset)
    }

    /// Checks every batch's header and CRC, and how the set is made up.
    fn validate(&self, records: &[u8]) -> Result<Validated> {
        let mut batch_count = 0;
        let mut idempotent = false;
        let mut largest_batch_bytes = 0;
        let mut batches = RecordBatches::new(records);
        loop {
            let position = batches.position();
            let header = match batches.next() {
                None => break,
                Some(Err(source)) => return Err(LogError::InvalidBatch { position, source }),
                Some(Ok((_, header, _))) => header,
            };
            batch_count += 1;
            idempotent |= header.has_producer_id();
            largest_batch_bytes = largest_batch_bytes.max(header.total_bytes());
        }
        match batch_count {
            0 => Err(LogError::EmptyRecordSet),
            1 => Ok(Validated {
                idempotent,
                largest_batch_bytes,
            }),
            batch_count if idempotent => Err(LogError::MultipleIdempotentBatches { batch_count }),
            _ => Ok(Validated {
                idempotent: false,
                largest_batch_bytes,
            }),
        }
    }

    fn check_writable(&self, state: &LogState) -> Result<()> {
        if state.closed {
            return Err(LogError::Closed { dir: self.dir.clone() });
        }
        if let Some(reason) = &self.sync.lock().poisoned {
            return Err(LogError::Poisoned {
                dir: self.dir.clone(),
                reason: reason.clone(),
            });
        }
        Ok(())
    }

    fn write_batches(&self, state: &mut LogState, records: &mut [u8]) -> Result<AppendInfo> {
        let base_offset = state.active().next_offset();
        let mut position = 0;
        while position < records.len() {
            let next_offset = state.active().next_offset();
            let total = BatchHeader::parse(&records[position..])
                .expect("validated")
                .expect("whole")
                .total_bytes();
            let batch = &mut records[position..position + total];
            patch_base_offset(batch, next_offset);
            let header = BatchHeader::parse(batch).expect("validated").expect("whole");
            if state.active().should_roll(total, header.last_offset(), &self.config) {
                self.roll(state)?;
            }
            state.active_mut().append(batch, &header)?;
            state.producers.record(&header);
            position += total;
        }
        if self.config.fsync != FsyncPolicy::Always {
            state.visible = state.end();
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: state.active().next_offset() - 1,
            duplicate: false,
            log_start_offset: state.log_start_offset(),
        })
    }

    /// Seals the active segment and starts a new one. The old segment is
    /// fsynced first, so one fsync of the newest segment covers every append
    /// before it, and the recovery point can move past it.
    fn roll(&self, state: &mut LogState) -> Result<()> {
        let active = state.active_mut();
        if let Err(error) = active.sync() {
            self.poison(&error);
            return Err(error);
        }
        active.seal()?;
        let base_offset = active.next_offset();
        let segment = Segment::create(&self.dir, base_offset, &self.config, self.faults.clone())?;
        sync_dir(&self.dir)?;
        state.segments.insert(base_offset, segment);
        write_recovery_point(&self.dir, base_offset)?;
        tracing::debug!(dir = %self.dir.display(), base_offset, "rolled to a new segment");
        Ok(())
    }
}

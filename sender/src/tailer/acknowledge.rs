//! A tailer's acknowledgement task: moves the registry's position (and the
//! fingerprint of the bytes before it) as deliveries complete, in file
//! order; writes lines the broker refuses to the rejects file; applies a
//! truncation's new identity and saves it before the tailer sends under it.

use super::{line_records, Ack};
use crate::delivery::{self, Outcome};
use crate::error::SenderError;
use crate::identity::{self, FileId, FileKey, Fingerprint};
use crate::metrics::FileMetrics;
use crate::shared::SenderShared;
use bytes::Bytes;
use relay_client::producer::BatchDelivery;
use relay_proto::stop::Stop;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A line the broker refuses as such (larger than it accepts) goes to the
/// rejects file with its bytes, so it can be replayed; the error when it
/// cannot be written there (the line must then not be skipped).
fn refuse(
    shared: &SenderShared,
    path: &std::path::Path,
    position: u64,
    line: &[u8],
    error: &relay_client::ClientError,
    counters: &FileMetrics,
) -> Result<(), SenderError> {
    tracing::error!(file = %path.display(), position, %error, "the broker refuses this line; written with its bytes to the rejects file");
    shared.reject_line(path, position, line, &error.to_string())?;
    counters.lines_rejected.increment(1);
    Ok(())
}

/// Which file an acknowledgement task serves.
pub(super) struct Source {
    pub(super) key: FileKey,
    /// The file's acknowledged position when its tailer started.
    pub(super) start_position: u64,
    pub(super) path: PathBuf,
    /// For the bytes before a position only part of a batch reached.
    pub(super) file: Arc<File>,
}

/// Moves the registry's position as deliveries complete, in file order. A
/// line whose delivery failed for a reason not about the line is sent again
/// until it is acknowledged; the position waits for it. At a stop, a line
/// still failing is left unacknowledged (sent again after the restart).
pub(super) async fn acknowledge(
    shared: Arc<SenderShared>,
    source: Source,
    mut pending: mpsc::Receiver<Ack>,
    counters: Arc<FileMetrics>,
    stop: Stop,
) {
    let mut acknowledging = Acknowledging {
        shared,
        acked: source.start_position,
        source,
        counters,
        stop,
    };
    while let Some(ack) = pending.recv().await {
        if acknowledging.apply(ack).await == Applied::Done {
            return;
        }
    }
}

/// Whether an acknowledgement task goes on after an entry of its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    Next,
    /// A stop, a fatal error, or a failed save: nothing more is applied.
    Done,
}

/// An acknowledgement task's state.
struct Acknowledging {
    shared: Arc<SenderShared>,
    source: Source,
    /// The file's acknowledged position as this task last moved it: each
    /// batch and skipped line starts there (the tailer queues them in file
    /// order, without gaps), and it only moves forward, but for a
    /// truncation's reset to 0 under a new identity.
    acked: u64,
    counters: Arc<FileMetrics>,
    stop: Stop,
}

impl Acknowledging {
    /// Applies one entry of the queue.
    async fn apply(&mut self, ack: Ack) -> Applied {
        match ack {
            Ack::Lines {
                lines,
                source,
                delivery,
                before,
            } => self.lines(lines, source, delivery, before).await,
            Ack::Skip { end, before } => {
                self.move_to(end, Some(before));
                Applied::Next
            }
            Ack::Fingerprint(fingerprint) => {
                self.shared.registry.refresh_fingerprint(self.source.key, fingerprint);
                Applied::Next
            }
            Ack::Reset {
                file_id,
                fingerprint,
                saved,
            } => self.reset(file_id, fingerprint, saved),
        }
    }

    /// Waits for a batch's lines to be delivered (sending again those that
    /// failed for a reason not about them); the position moves past every
    /// line, in file order, that was acknowledged or written to the rejects file.
    async fn lines(
        &mut self,
        lines: Vec<(u64, Bytes)>,
        source: Bytes,
        delivery: BatchDelivery,
        before: Fingerprint,
    ) -> Applied {
        assert!(
            lines.first().is_some_and(|(position, _)| *position == self.acked),
            "acknowledgements apply in file order: a batch of {} starts at {:?}, not where the last one ended ({})",
            self.source.path.display(),
            lines.first().map(|(position, _)| position),
            self.acked,
        );
        let shared = &self.shared;
        let records = |indexes: &[usize]| line_records(shared, &source, indexes.iter().map(|&index| &lines[index]));
        let delivered = delivery::deliver(
            &shared.producer,
            &shared.trouble,
            records,
            lines.len(),
            delivery,
            &mut self.stop,
        )
        .await;
        let done_to = self.settle(&lines, delivered.outcomes);
        let whole = done_to == lines.last().map(|(p, l)| p + l.len() as u64 + 1);
        if let Some(done_to) = done_to {
            // Part of a batch: the bytes before its end come from the file.
            let before = if whole {
                Some(before)
            } else {
                identity::before(&self.source.file, done_to).ok()
            };
            self.move_to(done_to, before);
        }
        match delivered.end {
            None if whole => Applied::Next,
            Some(Outcome::Fatal(error)) => {
                self.shared.fail(SenderError::Fatal(error));
                Applied::Done
            }
            _ => Applied::Done,
        }
    }

    /// Counts each line's outcome, in file order, and writes refused lines
    /// to the rejects file; the end of the last line settled, if any.
    fn settle(&self, lines: &[(u64, Bytes)], outcomes: Vec<Option<Outcome>>) -> Option<u64> {
        let mut done_to = None;
        for ((position, line), outcome) in lines.iter().zip(outcomes) {
            assert!(
                *position == done_to.unwrap_or(self.acked),
                "a batch of {} holds lines that follow each other: one at {position} after {:?}",
                self.source.path.display(),
                done_to,
            );
            match outcome {
                Some(Outcome::Acknowledged) => {
                    self.counters.lines_acked.increment(1);
                }
                Some(Outcome::Refused(error)) => {
                    let path = &self.source.path;
                    if let Err(error) = refuse(&self.shared, path, *position, line, &error, &self.counters) {
                        self.shared.fail(error);
                        break;
                    }
                }
                _ => break,
            }
            done_to = Some(position + line.len() as u64 + 1);
        }
        done_to
    }

    /// Applies a truncation's new identity and saves it: a handover is a
    /// checkpoint, the copy must find the old content's identity and the
    /// file its new one after a crash. The tailer sends nothing under the
    /// new identity before it hears the save worked.
    fn reset(&mut self, file_id: FileId, fingerprint: Option<Fingerprint>, saved: oneshot::Sender<bool>) -> Applied {
        self.shared.registry.reset(self.source.key, file_id, fingerprint);
        self.counters.set_acked(0);
        // The one move back: new content, under a new identity, from 0.
        self.acked = 0;
        let durable = self.shared.must_save();
        let _ = saved.send(durable);
        if durable {
            Applied::Next
        } else {
            Applied::Done
        }
    }

    /// Moves the file's acknowledged position to `end`, with the bytes before it.
    fn move_to(&mut self, end: u64, before: Option<Fingerprint>) {
        assert!(
            end > self.acked,
            "a file's acknowledged position only moves forward: {} from {} to {end}",
            self.source.path.display(),
            self.acked,
        );
        self.acked = end;
        self.shared.registry.acknowledge(self.source.key, end, before);
        self.counters.set_acked(end);
    }
}

//! A tailer's acknowledgement task: moves the registry's position (and the
//! fingerprint of the bytes before it) as deliveries complete, in file
//! order; writes lines the broker refuses to the rejects file; applies a
//! truncation's new identity and saves it before the tailer sends under it.

use super::{line_records, Ack};
use crate::delivery::{self, Outcome};
use crate::error::SenderError;
use crate::identity::{self, FileKey};
use crate::metrics::FileMetrics;
use crate::shared::SenderShared;
use bytes::Bytes;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

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
    shared.stats.lines_rejected.fetch_add(1, Ordering::Relaxed);
    counters.lines_rejected.increment(1);
    Ok(())
}

/// Which file an acknowledgement task serves.
pub(super) struct Source {
    pub(super) key: FileKey,
    pub(super) path: PathBuf,
    pub(super) path_text: Bytes,
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
    mut stop: watch::Receiver<bool>,
) {
    let Source {
        key,
        path,
        path_text,
        file,
    } = source;
    while let Some(ack) = pending.recv().await {
        let acked = match ack {
            Ack::Lines {
                lines,
                file_id,
                delivery,
                before,
            } => {
                let records = |indexes: &[usize]| {
                    line_records(
                        &shared,
                        &path_text,
                        &file_id,
                        indexes.iter().map(|&index| &lines[index]),
                    )
                };
                let delivered = delivery::deliver(
                    &shared.producer,
                    &shared.trouble,
                    records,
                    lines.len(),
                    delivery,
                    &mut stop,
                )
                .await;
                // The position moves past every line, in file order, that
                // was acknowledged or written to the rejects file.
                let mut done_to = None;
                for ((position, line), outcome) in lines.iter().zip(delivered.outcomes) {
                    match outcome {
                        Some(Outcome::Acknowledged) => {
                            shared.stats.lines_acked.fetch_add(1, Ordering::Relaxed);
                            counters.lines_acked.increment(1);
                        }
                        Some(Outcome::Refused(error)) => {
                            if let Err(error) = refuse(&shared, &path, *position, line, &error, &counters) {
                                shared.fail(error);
                                break;
                            }
                        }
                        _ => break,
                    }
                    done_to = Some(position + line.len() as u64 + 1);
                }
                let whole = done_to == lines.last().map(|(p, l)| p + l.len() as u64 + 1);
                if let Some(done_to) = done_to {
                    // Part of a batch: the bytes before its end come from the file.
                    let before = if whole {
                        Some(before)
                    } else {
                        identity::before(&file, done_to).ok()
                    };
                    shared.registry.acknowledge(key, done_to, before);
                    counters.set_acked(done_to);
                }
                match delivered.end {
                    None if whole => continue,
                    Some(Outcome::Fatal(error)) => {
                        shared.fail(SenderError::Fatal(error));
                        return;
                    }
                    _ => return,
                }
            }
            Ack::Skip { end, before } => (end, before),
            Ack::Fingerprint(fingerprint) => {
                shared.registry.refresh_fingerprint(key, fingerprint);
                continue;
            }
            Ack::Reset {
                file_id,
                fingerprint,
                saved,
            } => {
                shared.registry.reset(key, file_id, fingerprint);
                counters.set_acked(0);
                // A handover is a checkpoint: the copy must find the old
                // content's identity and the file its new one after a crash.
                let durable = shared.must_save();
                let _ = saved.send(durable);
                if !durable {
                    return;
                }
                continue;
            }
        };
        let (acked, before) = acked;
        shared.registry.acknowledge(key, acked, Some(before));
        counters.set_acked(acked);
    }
}

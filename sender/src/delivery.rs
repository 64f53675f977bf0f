//! Getting lines into the broker, a batch at a time (one read chunk's lines
//! of one file), whatever happens around them. A line is
//! given up only for an error about the line itself (larger than the broker
//! accepts): it then goes to the rejects file with its bytes. Any other
//! error (unknown topic, authorization, broker gone, a refused batch) leaves
//! the file position where it is and the line is sent again with capped
//! backoff, for as long as it takes; a wrong cluster is fatal (the sender
//! stops, position unchanged). The condition is logged at WARN when it
//! starts, once every [`TROUBLE_LOG_INTERVAL`] while it lasts, and when it
//! ends, and is visible as the `relay_sender_send_blocked` gauge.

use crate::metrics::TopicMetrics;
use parking_lot::Mutex;
use relay_client::backoff::Backoff;
use relay_client::producer::{BatchDelivery, BatchRecord, Producer};
use relay_client::ClientError;
use relay_proto::stop::Stop;
use std::time::{Duration, Instant};

/// First pause after a failed send.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause between two attempts: a topic created or a broker back
/// is noticed within this long.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often a condition that lasts is logged again.
pub const TROUBLE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What an error means for the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// About this line: it can never be sent (larger than the broker accepts).
    Line,
    /// About where the sender is sending: nothing will be sent, stop.
    Fatal,
    /// About the path to the broker or its state: send again later.
    Transient,
}

pub fn classify(error: &ClientError) -> Class {
    match error {
        ClientError::ClusterMismatch { .. } => Class::Fatal,
        // The user may not produce here: no line can go until the grants change.
        error if error.is_not_authorized() => Class::Fatal,
        error if error.is_record_too_large() => Class::Line,
        _ => Class::Transient,
    }
}

/// How a line's sending ended.
#[derive(Debug)]
pub enum Outcome {
    /// The broker acknowledged the line.
    Acknowledged,
    /// The line itself was refused; it belongs in the rejects file.
    Refused(ClientError),
    /// Nothing can be sent to this cluster.
    Fatal(ClientError),
    /// The sender is stopping; the line stays unacknowledged.
    Stopped,
}

/// How a batch of lines' sending ended: per line, in order,
/// `Acknowledged` or `Refused`, or `None` for a line still unacknowledged
/// when the batch stopped for `end` (`Fatal` or `Stopped`).
#[derive(Debug)]
pub struct Delivered {
    pub outcomes: Vec<Option<Outcome>>,
    pub end: Option<Outcome>,
}

/// A topic's ongoing send trouble, shared by its files' tailers.
pub struct Trouble {
    topic: String,
    state: Mutex<Option<TroubleState>>,
    metrics: TopicMetrics,
}

struct TroubleState {
    since: Instant,
    logged: Instant,
}

impl Trouble {
    pub fn new(topic: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            state: Mutex::new(None),
            metrics: TopicMetrics::new(topic),
        }
    }

    fn note(&self, error: &ClientError) {
        self.metrics.send_errors.increment(1);
        let mut state = self.state.lock();
        match state.as_mut() {
            None => {
                tracing::warn!(topic = %self.topic, %error, "cannot send lines; retrying until it works (no line is skipped, positions wait)");
                self.metrics.send_blocked.set(1.0);
                let now = Instant::now();
                *state = Some(TroubleState {
                    since: now,
                    logged: now,
                });
            }
            Some(ongoing) if ongoing.logged.elapsed() >= TROUBLE_LOG_INTERVAL => {
                tracing::warn!(topic = %self.topic, %error, blocked_s = ongoing.since.elapsed().as_secs(), "still cannot send lines; retrying");
                ongoing.logged = Instant::now();
            }
            Some(_) => {}
        }
    }

    fn clear(&self) {
        if let Some(ended) = self.state.lock().take() {
            tracing::info!(topic = %self.topic, blocked_s = ended.since.elapsed().as_secs(), "sending lines again");
            self.metrics.send_blocked.set(0.0);
        }
    }
}

/// Hands a batch of lines (`records`) to the producer, again and again
/// through transient errors, until it takes them. `Err` carries the outcome
/// when it never did (`Fatal` or `Stopped`).
pub async fn send(
    producer: &Producer,
    trouble: &Trouble,
    records: impl Fn() -> Vec<BatchRecord>,
    stop: &mut Stop,
) -> Result<BatchDelivery, Outcome> {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    loop {
        match producer.send_batch(&trouble.topic, None, records()).await {
            Ok(delivery) => return Ok(delivery),
            Err(error) => match classify(&error) {
                // Nothing about one line is known before the broker answers:
                // an error that claims so here is not the line's to bear.
                Class::Fatal | Class::Line => return Err(Outcome::Fatal(error)),
                Class::Transient => {
                    trouble.note(&error);
                    if pause(&mut backoff, stop).await {
                        return Err(Outcome::Stopped);
                    }
                }
            },
        }
    }
}

/// Waits for a batch of `count` lines; the lines that failed for a reason
/// not about themselves are sent again (built by `records` from their
/// indexes) until the broker acknowledges them; a line refused as such is
/// `Refused`. Stops early only for a fatal error or the sender's stop.
pub async fn deliver(
    producer: &Producer,
    trouble: &Trouble,
    records: impl Fn(&[usize]) -> Vec<BatchRecord>,
    count: usize,
    mut delivery: BatchDelivery,
    stop: &mut Stop,
) -> Delivered {
    let mut outcomes: Vec<Option<Outcome>> = (0..count).map(|_| None).collect();
    let mut waiting: Vec<usize> = (0..count).collect();
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    loop {
        let mut results = delivery.wait().await;
        if results.len() != waiting.len() {
            // The producer went away: every line of the batch is unanswered.
            let error = results
                .pop()
                .and_then(Result::err)
                .unwrap_or_else(|| ClientError::Invalid("a batch answered for the wrong number of lines".into()));
            results = waiting.iter().map(|_| Err(error.copy_for_delivery())).collect();
        }
        let mut again = Vec::new();
        let mut trouble_seen = None;
        let mut fatal = None;
        for (&index, result) in waiting.iter().zip(results) {
            match result {
                Ok(_) => outcomes[index] = Some(Outcome::Acknowledged),
                Err(error) => match classify(&error) {
                    Class::Line => outcomes[index] = Some(Outcome::Refused(error)),
                    Class::Fatal => fatal = fatal.or(Some(error)),
                    Class::Transient => {
                        again.push(index);
                        trouble_seen = Some(error);
                    }
                },
            }
        }
        if let Some(error) = fatal {
            return Delivered {
                outcomes,
                end: Some(Outcome::Fatal(error)),
            };
        }
        let Some(error) = trouble_seen else {
            trouble.clear();
            return Delivered { outcomes, end: None };
        };
        trouble.note(&error);
        if pause(&mut backoff, stop).await {
            return Delivered {
                outcomes,
                end: Some(Outcome::Stopped),
            };
        }
        delivery = match send(producer, trouble, || records(&again), stop).await {
            Ok(delivery) => delivery,
            Err(outcome) => {
                return Delivered {
                    outcomes,
                    end: Some(outcome),
                }
            }
        };
        waiting = again;
    }
}

/// Sleeps `backoff`'s next delay; true when the sender is stopping instead.
async fn pause(backoff: &mut Backoff, stop: &mut Stop) -> bool {
    if stop.is_stopped() {
        return true;
    }
    tokio::select! {
        _ = backoff.sleep() => {}
        _ = stop.stopped() => return true,
    }
    stop.is_stopped()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wrong_cluster_is_fatal_and_everything_else_is_retried() {
        let mismatch = ClientError::ClusterMismatch {
            expected: "a".into(),
            actual: "b".into(),
        };
        assert_eq!(classify(&mismatch), Class::Fatal);
        assert_eq!(classify(&ClientError::UnknownTopic("t".into())), Class::Transient);
        let refused = ClientError::Authentication {
            address: "x".into(),
            reason: "no".into(),
        };
        assert_eq!(classify(&refused), Class::Transient);
    }
}

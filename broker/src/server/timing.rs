//! Where one request's time goes, stage by stage: `queue` (frame read off
//! the socket to its handler starting), `decode`, the handler's work
//! (`append` and `fsync_wait` for Produce, `handle` for every other API),
//! and `response` (from the answer being ready, or the produce being
//! durable, to its bytes written and flushed: encoding, waiting behind the
//! connection's earlier answers, and the write). Recorded once per answered
//! request into `relay_broker_request_stage_seconds{api,stage}` and
//! `relay_broker_request_latency_seconds{api}`, and logged when the total
//! passes `[broker] slow_request_ms`.
//!
//! A [`Timing`] is a few `Instant`s carried with the request; the metric
//! keys are built once, so recording allocates nothing.

use super::versions::SUPPORTED;
use crate::metrics;
use ::metrics::Key;
use kafka_protocol::messages::ApiKey;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The stages of a request, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Queue,
    Decode,
    /// The handler's work for every API but Produce (its answer encoded).
    Handle,
    /// Produce: topic lookup, grants, and the write into each segment.
    Append,
    /// Produce: waiting for the fsync policy (the group commit) to make the
    /// appended batches durable.
    FsyncWait,
    Response,
}

const STAGES: [Stage; 6] = [
    Stage::Queue,
    Stage::Decode,
    Stage::Handle,
    Stage::Append,
    Stage::FsyncWait,
    Stage::Response,
];

impl Stage {
    fn label(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Decode => "decode",
            Stage::Handle => "handle",
            Stage::Append => "append",
            Stage::FsyncWait => "fsync_wait",
            Stage::Response => "response",
        }
    }
}

/// Highest API key served, so metric keys can be indexed by API key.
fn api_key_max() -> usize {
    SUPPORTED
        .iter()
        .map(|(api, ..)| *api as i16 as usize)
        .max()
        .unwrap_or(0)
}

/// The `api` label of API key `key`, spelled as in `relay_broker_requests_total`.
fn api_label(key: usize) -> String {
    ApiKey::try_from(key as i16).map_or_else(|_| "other".to_owned(), |api| format!("{api:?}"))
}

/// The stage histograms' keys for every API and stage, at `key *
/// STAGES.len() + stage`.
static STAGE_KEYS: LazyLock<Vec<Key>> = LazyLock::new(|| {
    (0..=api_key_max())
        .flat_map(|key| STAGES.map(|stage| metrics::request_stage_key(api_label(key), stage.label())))
        .collect()
});

/// The request-latency histogram's key for every API, at its API key.
static LATENCY_KEYS: LazyLock<Vec<Key>> = LazyLock::new(|| {
    (0..=api_key_max())
        .map(|key| metrics::request_latency_key(api_label(key)))
        .collect()
});

/// When one request crossed each stage boundary; `Copy`, kept with its reply.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Known once the header is read; a request closed before has no stages.
    api: Option<ApiKey>,
    read: Instant,
    started: Instant,
    decoded: Instant,
    handled: Instant,
}

impl Timing {
    /// A request whose frame was fully read just now.
    pub fn read_now() -> Self {
        let now = Instant::now();
        Self {
            api: None,
            read: now,
            started: now,
            decoded: now,
            handled: now,
        }
    }

    /// The handler starts on a request of `api`.
    pub fn started(&mut self, api: ApiKey) {
        self.api = Some(api);
        self.started = Instant::now();
        // An answer made before any body is decoded (ApiVersions at an
        // unsupported version) has a zero decode stage.
        self.decoded = self.started;
    }

    /// The request's body is decoded.
    pub fn decoded(&mut self) {
        self.decoded = Instant::now();
    }

    /// The handler returned (Produce: every partition appended).
    pub fn handled(&mut self) {
        self.handled = Instant::now();
    }

    /// The answer was written and flushed at `flushed`; `durable` is when a
    /// produce's fsync wait ended. Records every stage and the total, and
    /// logs the request when the total passes `slow` (each is one line).
    pub fn finish(&self, durable: Option<Instant>, flushed: Instant, slow: Option<Duration>, peer: SocketAddr) {
        let Some(api) = self.api else { return };
        let stages = self.stages(api, durable, flushed);
        let key = api as i16 as usize;
        for (stage, elapsed) in stages.iter().filter_map(|(stage, elapsed)| Some((*stage, (*elapsed)?))) {
            metrics::request_time(&STAGE_KEYS[key * STAGES.len() + stage as usize], elapsed);
        }
        let total = flushed.saturating_duration_since(self.read);
        metrics::request_time(&LATENCY_KEYS[key], total);
        if slow.is_some_and(|slow| total >= slow) {
            log_slow(api, peer, total, &stages);
        }
    }

    /// Each stage's time; `None` for a stage this request did not have.
    fn stages(&self, api: ApiKey, durable: Option<Instant>, flushed: Instant) -> [(Stage, Option<Duration>); 5] {
        let work = if api == ApiKey::Produce {
            Stage::Append
        } else {
            Stage::Handle
        };
        let answered = durable.unwrap_or(self.handled);
        let between = |from: Instant, to: Instant| Some(to.saturating_duration_since(from));
        [
            (Stage::Queue, between(self.read, self.started)),
            (Stage::Decode, between(self.started, self.decoded)),
            (work, between(self.decoded, self.handled)),
            (
                Stage::FsyncWait,
                durable.and_then(|durable| between(self.handled, durable)),
            ),
            (Stage::Response, between(answered, flushed)),
        ]
    }
}

/// One line for a request slower than `slow_request_ms`, with its stages.
fn log_slow(api: ApiKey, peer: SocketAddr, total: Duration, stages: &[(Stage, Option<Duration>); 5]) {
    let micros = |stage: usize| stages[stage].1.map_or(0, |d| d.as_micros() as u64);
    tracing::warn!(
        ?api,
        %peer,
        total_us = total.as_micros() as u64,
        queue_us = micros(0),
        decode_us = micros(1),
        work = stages[2].0.label(),
        work_us = micros(2),
        fsync_wait_us = micros(3),
        response_us = micros(4),
        "slow request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_contiguous_and_add_up_to_the_total() {
        let mut timing = Timing::read_now();
        timing.started(ApiKey::Produce);
        timing.decoded();
        timing.handled();
        let durable = Instant::now();
        let flushed = Instant::now();
        let stages = timing.stages(ApiKey::Produce, Some(durable), flushed);
        let names: Vec<_> = stages.iter().map(|(stage, _)| stage.label()).collect();
        assert_eq!(names, ["queue", "decode", "append", "fsync_wait", "response"]);
        let sum: Duration = stages.iter().filter_map(|(_, elapsed)| *elapsed).sum();
        assert_eq!(sum, flushed - timing.read);
    }

    #[test]
    fn other_apis_have_a_handle_stage_and_no_fsync_wait() {
        let mut timing = Timing::read_now();
        timing.started(ApiKey::Metadata);
        let stages = timing.stages(ApiKey::Metadata, None, Instant::now());
        assert_eq!(stages[2].0, Stage::Handle);
        assert_eq!(stages[3].1, None);
    }

    #[test]
    fn every_served_api_and_stage_has_its_key() {
        for (api, ..) in SUPPORTED {
            let key = *api as i16 as usize;
            let stage = &STAGE_KEYS[key * STAGES.len() + Stage::Response as usize];
            let labels: Vec<_> = stage.labels().map(|l| (l.key(), l.value())).collect();
            assert_eq!(labels, [("api", format!("{api:?}").as_str()), ("stage", "response")]);
            assert_eq!(stage.name(), metrics::REQUEST_STAGE);
            let latency: Vec<_> = LATENCY_KEYS[key].labels().map(|l| l.value()).collect();
            assert_eq!(latency, [format!("{api:?}").as_str()]);
        }
    }
}

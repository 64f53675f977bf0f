//! A broker driven one Kafka request at a time through its real request path
//! (`server::dispatch::dispatch`, in-process), that can be restarted on the
//! same data directory. Requests are encoded and responses decoded with the
//! `kafka-protocol` crate, checking frame length and correlation id.

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use relay_broker::broker::Broker;
use relay_broker::config::BrokerConfig;
use relay_broker::context::Context;
use relay_broker::log::{FaultInjector, FsyncPolicy};
use relay_broker::server::dispatch::{dispatch, Reply, Timing};
use relay_broker::server::session::Session;
use std::sync::atomic::{AtomicI32, Ordering};

pub struct WireBroker {
    runtime: tokio::runtime::Runtime,
    broker: Option<Broker>,
    context: Option<Context>,
    config: BrokerConfig,
    faults: FaultInjector,
    correlation_id: AtomicI32,
    _dir: tempfile::TempDir,
}

impl WireBroker {
    /// Starts a broker on a scratch directory, after `configure` adjusted
    /// its configuration (fsync "never" unless it says otherwise).
    pub fn start(configure: impl FnOnce(&mut BrokerConfig)) -> Self {
        Self::start_with_faults(configure, FaultInjector::default())
    }

    /// As [`WireBroker::start`], with `faults` in every log the broker opens.
    pub fn start_with_faults(configure: impl FnOnce(&mut BrokerConfig), faults: FaultInjector) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("scratch directory");
        let mut config = BrokerConfig {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().join("data"),
            ..BrokerConfig::default()
        };
        config.log.fsync = FsyncPolicy::Never;
        configure(&mut config);
        let mut broker = Self {
            runtime,
            broker: None,
            context: None,
            config,
            faults,
            correlation_id: AtomicI32::new(0),
            _dir: dir,
        };
        broker.boot();
        broker
    }

    fn boot(&mut self) {
        let broker = self
            .runtime
            .block_on(Broker::start_with_faults(self.config.clone(), self.faults.clone()))
            .expect("broker starts");
        self.context = Some(std::sync::Arc::clone(broker.context()));
        self.broker = Some(broker);
    }

    /// Shuts the broker down cleanly and starts it again on the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    fn stop(&mut self) {
        self.context = None;
        if let Some(broker) = self.broker.take() {
            self.runtime.block_on(broker.shutdown());
        }
    }

    pub fn context(&self) -> &Context {
        self.context.as_ref().expect("running")
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Sends `request` at `version` from a connection without SASL.
    pub fn call<Req: Encodable, Res: Decodable>(&self, api: ApiKey, version: i16, request: &Req) -> Res {
        self.call_in(Session::Open, api, version, request)
    }

    /// Sends `request` at `version` as `user`, past SASL.
    pub fn call_as<Req: Encodable, Res: Decodable>(&self, user: &str, api: ApiKey, version: i16, request: &Req) -> Res {
        self.call_in(Session::Authenticated { user: user.into() }, api, version, request)
    }

    fn call_in<Req: Encodable, Res: Decodable>(
        &self,
        mut session: Session,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Res {
        let correlation_id = self.correlation_id.fetch_add(1, Ordering::Relaxed) + 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("wire-test")));
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, api.request_header_version(version))
            .expect("encode header");
        request.encode(&mut frame, version).expect("encode request");
        let peer = "127.0.0.1:1".parse().expect("address");
        let context = self.context();
        let bytes = self.runtime.block_on(async {
            let mut timing = Timing::read_now();
            let reply = dispatch(context, &mut session, peer, frame.freeze(), &mut timing)
                .await
                .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
            match reply {
                Reply::Ready(bytes) => bytes,
                Reply::Later(handle) => handle.await.expect("answer task").expect("answer").frame,
                Reply::Nothing | Reply::Last(_) => panic!("{api:?} v{version}: no answer"),
            }
        });
        let length = i32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(length, bytes.len() - 4, "the length prefix is the frame's");
        let mut body = bytes.slice(4..);
        let header = ResponseHeader::decode(&mut body, api.response_header_version(version)).expect("response header");
        assert_eq!(header.correlation_id, correlation_id);
        let response = Res::decode(&mut body, version).expect("response body");
        assert!(
            body.is_empty(),
            "{api:?} v{version}: {} bytes after the response",
            body.len()
        );
        response
    }
}

impl Drop for WireBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(text(name))
}

/// A Produce request (acks -1) of one record batch to partition 0 of `topic`.
pub fn produce_request(topic: &str, batch: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(batch)))])])
}

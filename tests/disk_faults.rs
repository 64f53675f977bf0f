//! A failing disk, through the wire protocol, with the broker in this process
//! so its storage can be made to fail (ENOSPC on writes, EIO on fsync)
//! without a special kernel or LD_PRELOAD:
//! - disk full: produce gets KAFKA_STORAGE_ERROR, fetch keeps serving what
//!   was acknowledged, nothing is corrupted, and writes resume exactly at the
//!   next offset once space returns;
//! - failed fsync: that produce gets KAFKA_STORAGE_ERROR and the partition
//!   refuses writes until restart (poisoned), other partitions go on, and
//!   after a restart every acknowledged record is there.

mod support;

use relay_broker::broker::Broker;
use relay_broker::config::BrokerConfig;
use relay_broker::log::FaultInjector;
use support::raw_client::{batch, create_topic, fetch, produce, RawConnection};

const KAFKA_STORAGE_ERROR: i16 = 56;

struct InProcess {
    runtime: tokio::runtime::Runtime,
    broker: Option<Broker>,
    config: BrokerConfig,
    faults: FaultInjector,
}

impl InProcess {
    fn start(dir: &std::path::Path) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = BrokerConfig {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.join("data"),
            ..BrokerConfig::default()
        };
        let faults = FaultInjector::default();
        let broker = runtime
            .block_on(Broker::start_with_faults(config.clone(), faults.clone()))
            .unwrap();
        Self {
            runtime,
            broker: Some(broker),
            config,
            faults,
        }
    }

    fn address(&self) -> String {
        self.broker.as_ref().unwrap().local_addr().to_string()
    }

    /// Clean shutdown (a poisoned partition is closed without its marker),
    /// then a fresh start on the same data with healthy storage.
    fn restart(&mut self) {
        let broker = self.broker.take().unwrap();
        self.runtime.block_on(broker.shutdown());
        self.faults = FaultInjector::default();
        self.broker = Some(
            self.runtime
                .block_on(Broker::start_with_faults(self.config.clone(), self.faults.clone()))
                .unwrap(),
        );
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(broker) = self.broker.take() {
            self.runtime.block_on(broker.shutdown());
        }
    }
}

#[test]
fn disk_full_refuses_writes_keeps_reads_and_resumes_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = InProcess::start(dir.path());
    let mut connection = RawConnection::connect(&broker.address());
    create_topic(&mut connection, "events", 1);
    for n in 0..10 {
        assert_eq!(produce(&mut connection, "events", 0, batch(None, 5), 9), (0, n * 5));
    }

    broker.faults.set_disk_full(true);
    for _ in 0..3 {
        let (error, _) = produce(&mut connection, "events", 0, batch(None, 5), 9);
        assert_eq!(error, KAFKA_STORAGE_ERROR, "a write to a full disk is a storage error");
    }
    // Reads go on: every acknowledged record, CRC-checked, nothing more.
    assert_eq!(fetch(&mut connection, "events", 0, 0), (0, 50, 50));
    // Another connection is served too.
    let mut other = RawConnection::connect(&broker.address());
    assert_eq!(fetch(&mut other, "events", 0, 25), (0, 50, 25));

    broker.faults.set_disk_full(false);
    assert_eq!(
        produce(&mut connection, "events", 0, batch(None, 5), 9),
        (0, 50),
        "writes resume at the next offset: no gap, no leftover of the refused writes"
    );
    assert_eq!(fetch(&mut connection, "events", 0, 0), (0, 55, 55));

    // After a restart the log is exactly what was acknowledged.
    broker.restart();
    let mut connection = RawConnection::connect(&broker.address());
    assert_eq!(fetch(&mut connection, "events", 0, 0), (0, 55, 55));
    assert_eq!(produce(&mut connection, "events", 0, batch(None, 5), 9), (0, 55));
}

#[test]
fn failed_fsync_poisons_the_partition_and_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = InProcess::start(dir.path());
    let mut connection = RawConnection::connect(&broker.address());
    create_topic(&mut connection, "events", 2);
    for n in 0..4 {
        assert_eq!(produce(&mut connection, "events", 0, batch(None, 3), 9), (0, n * 3));
    }

    broker.faults.fail_next_fsyncs(1);
    let (error, _) = produce(&mut connection, "events", 0, batch(None, 3), 9);
    assert_eq!(error, KAFKA_STORAGE_ERROR, "an fsync failure is never acknowledged");
    // The partition refuses writes until restart, even with a healthy disk.
    let (error, _) = produce(&mut connection, "events", 0, batch(None, 3), 9);
    assert_eq!(error, KAFKA_STORAGE_ERROR, "a poisoned partition refuses writes");
    // What was acknowledged is still served; the other partition still takes writes.
    let (error, _, records) = fetch(&mut connection, "events", 0, 0);
    assert_eq!((error, records), (0, 12));
    assert_eq!(produce(&mut connection, "events", 1, batch(None, 3), 9), (0, 0));

    broker.restart();
    let mut connection = RawConnection::connect(&broker.address());
    let (error, high_watermark, records) = fetch(&mut connection, "events", 0, 0);
    assert_eq!(error, 0);
    assert!(
        records >= 12 && high_watermark == records as i64,
        "every acknowledged record survives ({records} records, high watermark {high_watermark})"
    );
    let (error, offset) = produce(&mut connection, "events", 0, batch(None, 3), 9);
    assert_eq!(
        (error, offset),
        (0, high_watermark),
        "after a restart the partition takes writes again"
    );
}

//! `Broker::health` on a real broker whose disk is made to fail: a failed
//! fsync poisons exactly one partition, health names it (and only it) until
//! the broker restarts on healthy storage.

use relay_broker::broker::Broker;
use relay_broker::config::BrokerConfig;
use relay_broker::health::PartitionName;
use relay_broker::log::{FaultInjector, FsyncPolicy};
use relay_proto::{BatchBuilder, RecordSpec};

fn config(dir: &std::path::Path) -> BrokerConfig {
    let mut config = BrokerConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("data"),
        ..BrokerConfig::default()
    };
    config.log.fsync = FsyncPolicy::Always;
    config
}

fn batch() -> Vec<u8> {
    let mut builder = BatchBuilder::new(1_767_225_600_000);
    builder.push(RecordSpec::value(b"health".to_vec()));
    builder.build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_shows_the_partition_in_health_until_restart() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::default();
    let broker = Broker::start_with_faults(config(dir.path()), faults.clone())
        .await
        .unwrap();
    let topics = &broker.context().topics;
    topics.create("a", 2, 1, &[], false).unwrap();
    let b = topics.create("b", 1, 1, &[], false).unwrap();
    b.partitions[0].append(&mut batch()).expect("healthy disk appends");
    assert!(broker.health().is_healthy(), "{}", broker.health());

    faults.fail_next_fsyncs(1);
    let a = topics.get("a").unwrap();
    a.partitions[1]
        .append(&mut batch())
        .expect_err("the append's fsync fails");
    b.partitions[0].append(&mut batch()).expect("other partitions go on");

    let health = broker.health();
    assert_eq!(
        health.poisoned_partitions,
        vec![PartitionName {
            topic: "a".into(),
            partition: 1
        }]
    );
    assert_eq!(health.to_string(), "partitions refuse writes after a failed fsync: a-1");
    assert_eq!(broker.context().health(), health);
    broker.shutdown().await;

    let broker = Broker::start(config(dir.path())).await.unwrap();
    assert!(broker.health().is_healthy(), "{}", broker.health());
    broker.shutdown().await;
}

//! Limits under load, against a `relay broker` process with small budgets:
//! 2,000 idle connections, a client that pipelines fetches and never reads
//! the answers, and many clients sending large produce requests at once.
//! The broker stays responsive for a well-behaved client throughout, and
//! its resident memory stays within what its budgets allow.

mod support;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use relay_proto::{BatchBuilder, RecordSpec};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::raw_client::{create_topic, fetch, produce, RawConnection};
use support::BrokerProcess;

const BUDGETS: &str = "
request_bytes_max = 8388608            # 8 MiB
requests_memory_bytes_max = 16777216   # 16 MiB in flight, all connections
fetch_response_bytes_max = 2097152     # 2 MiB per fetch
connection_send_bytes_max = 4194304    # 4 MiB unsent per connection
connections_max = 3000
[broker.log]
message_bytes_max = 8300000            # the 8 MiB batches below, under the frame limit
";

/// Resident memory of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Raises this process's open-file limit to its hard limit (children inherit it).
fn raise_open_files() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let hard = line.split_whitespace().nth(4).unwrap().to_owned();
    let _ = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={hard}:{hard}"),
        ])
        .status();
}

/// A batch of `records` values of `record_bytes` bytes.
fn big_batch(records: usize, record_bytes: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(1_767_225_600_000);
    for _ in 0..records {
        builder.push(RecordSpec::value(vec![b'r'; record_bytes]));
    }
    builder.build()
}

/// A produce and a fetch round trip on a fresh connection; returns how long it took.
fn round_trip(address: &str) -> Duration {
    let started = Instant::now();
    let mut connection = RawConnection::connect(address);
    let (error, _) = produce(&mut connection, "probe", 0, big_batch(1, 100), 9);
    assert_eq!(error, 0);
    let (error, _, records) = fetch(&mut connection, "probe", 0, 0);
    assert_eq!(error, 0);
    assert!(records >= 1);
    started.elapsed()
}

#[test]
fn the_broker_stays_responsive_and_bounded_under_idle_slow_and_large_clients() {
    raise_open_files();
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), BUDGETS);
    let pid = broker.pid();
    let mut setup = RawConnection::connect(&broker.address);
    create_topic(&mut setup, "probe", 1);
    create_topic(&mut setup, "big", 1);
    // 64 MiB of data for the slow reader to ask for.
    for _ in 0..64 {
        assert_eq!(produce(&mut setup, "big", 0, big_batch(1024, 1024), 9).0, 0);
    }
    let baseline = rss_bytes(pid);
    assert!(round_trip(&broker.address) < Duration::from_secs(2));

    // 2,000 idle connections.
    let idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(&broker.address).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let with_idle = round_trip(&broker.address);
    assert!(
        with_idle < Duration::from_secs(2),
        "{with_idle:?} with 2,000 idle connections"
    );

    // A client that pipelines 200 fetches of 2 MiB and reads nothing.
    let mut slow = RawConnection::connect(&broker.address);
    let mut sent = 0;
    for n in 0..200 {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(64 << 20)
            .with_topics(vec![kafka_protocol::messages::fetch_request::FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("big")))
                .with_partitions(vec![
                    kafka_protocol::messages::fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset((n % 64) * 1024)
                        .with_partition_max_bytes(64 << 20),
                ])]);
        slow.stream.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
        if !slow.try_send(ApiKey::Fetch, 12, &request) {
            break; // the broker stopped reading from it: backpressure reached the socket
        }
        sent += 1;
    }
    // Many clients sending 8 MiB produce requests at once (160 MiB in all).
    let senders: Vec<_> = (0..20)
        .map(|_| {
            let address = broker.address.clone();
            std::thread::spawn(move || {
                let mut connection = RawConnection::connect(&address);
                let (error, _) = produce(&mut connection, "big", 0, big_batch(8000, 1000), 9);
                error
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    let mut peak = 0;
    for _ in 0..10 {
        worst = worst.max(round_trip(&broker.address));
        peak = peak.max(rss_bytes(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    for sender in senders {
        assert_eq!(sender.join().unwrap(), 0, "every large produce is eventually taken");
    }
    peak = peak.max(rss_bytes(pid));
    assert!(worst < Duration::from_secs(2), "a well-behaved client waited {worst:?}");
    // Budgets: 16 MiB of requests, 4 MiB unsent for the slow reader, 2 MiB per
    // fetch being built, plus the large produces' copies being appended.
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "slow reader got {sent} fetches in before backpressure; worst round trip {worst:?}; RSS {} MiB -> peak {} MiB",
        baseline >> 20,
        peak >> 20
    );
    assert!(
        growth < 128 * 1024 * 1024,
        "resident memory grew by {} MiB (baseline {} MiB)",
        growth >> 20,
        baseline >> 20
    );
    drop(idle);
    drop(slow);
    assert!(round_trip(&broker.address) < Duration::from_secs(2));
    assert!(
        broker.log().lines().all(|l| !l.contains("panicked")),
        "{}",
        broker.log()
    );
}

//! `relay-bench produce`: N producers (each its own client and connections)
//! send fixed-size records to a topic's partitions, as fast as they can or at
//! a target rate, through Relay's idempotent producer: by default a batch of
//! `--batch-records` at a time (`Producer::send_batch`, what `relay send`
//! does), or with `--api record` one `send` per record. Latency is from the
//! send to the broker's acknowledgement (durable under the broker's fsync
//! policy), for every record and for each batch. Works against Relay's broker
//! or any Kafka cluster. With `--broker-metrics`, Relay's broker's `/metrics`
//! is scraped before and after, and where each produce request's time went in
//! the broker is printed next to the client's latency (`broker_stages`).

use crate::broker_stages::{self, Snapshot};
use crate::report::{self, Phase};
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use relay_client::admin::Admin;
use relay_client::producer::{
    parse_compression, BatchDelivery, BatchRecord, Delivery, Producer, ProducerConfig, ProducerRecord,
};
use relay_client::ClientSettings;
use relay_client::Cluster;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, Args, Clone)]
pub struct ProduceBenchArgs {
    /// Created with --partitions when missing.
    #[arg(long, default_value = "bench")]
    pub topic: String,
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Records per batch (sets the producer's batch size).
    #[arg(long, default_value_t = 1000)]
    pub batch_records: usize,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// -1 (all), 1 or 0.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub acks: i16,
    /// Records in all (split over the producers).
    #[arg(long, default_value_t = 10_000_000)]
    pub records: u64,
    /// Target records per second in all; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// `batch`: `send_batch` of --batch-records at a time; `record`: `send` per record.
    #[arg(long, default_value = "batch")]
    pub api: String,
    /// The broker's metrics address (Relay's `--metrics`): prints the
    /// broker's produce stages during this run beside the client's latency.
    #[arg(long)]
    pub broker_metrics: Option<String>,
    /// `--broker`, `--security-protocol`, `--sasl-*`, `--tls-ca`: the broker and how to reach it.
    #[command(flatten)]
    pub client: ClientSettings,
}

pub async fn ensure_topic(client: &ClientSettings, topic: &str, partitions: i32) -> Result<(), String> {
    let cluster = Cluster::connect(client.cluster_config("relay-bench").map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let admin = Admin::new(cluster);
    let exists = admin
        .list_topics()
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .any(|(name, _)| name == topic);
    if !exists {
        admin
            .create_topic(topic, partitions, &[])
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs the bench and prints its phases, then, with `--broker-metrics`, the
/// broker's stages of the produce requests sent during the run.
pub async fn run_and_print(args: &ProduceBenchArgs) -> Result<(), String> {
    let before = args.broker_metrics.as_deref().map(Snapshot::take).transpose()?;
    let phases = run(args).await?;
    report::print(&phases);
    if let (Some(address), Some(before)) = (&args.broker_metrics, before) {
        let after = Snapshot::take(address)?;
        // Per batch: one send_batch, the produce request's round trip.
        if let Some(batches) = phases[1].latency_us.as_ref() {
            let client = broker_stages::Client {
                count: batches.len(),
                mean_ms: batches.mean() / 1000.0,
                p50_ms: batches.value_at_quantile(0.5) as f64 / 1000.0,
                p99_ms: batches.value_at_quantile(0.99) as f64 / 1000.0,
            };
            broker_stages::print(&before, &after, &client);
        }
    }
    Ok(())
}

/// Two phases with the same throughput: latency per record (send to
/// acknowledgement, including the wait for its batch to fill) and per batch
/// (the record that closed each batch: the produce request's round trip).
pub async fn run(args: &ProduceBenchArgs) -> Result<Vec<Phase>, String> {
    ensure_topic(&args.client, &args.topic, args.partitions).await?;
    let codec = parse_compression(&args.compression)?;
    let value = Bytes::from(vec![b'x'; args.record_bytes]);
    let per_producer = args.records / args.producers as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..args.producers {
        let args = args.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut config = args.client.cluster_config("relay-bench").map_err(|e| e.to_string())?;
            config.client_id = format!("relay-bench-{index}");
            let cluster = Cluster::connect(config).await.map_err(|e| e.to_string())?;
            let producer_config = ProducerConfig {
                // A caller of send_batch made its batch already: waiting for
                // more would only add latency.
                linger: if args.api == "batch" {
                    Duration::ZERO
                } else {
                    Duration::from_millis(5)
                },
                // The producer charges each record its bytes plus 64 of
                // framing: this closes every batch at exactly batch_records.
                batch_bytes_max: args.batch_records * (args.record_bytes + 64),
                compression: codec,
                acks: args.acks,
                buffer_bytes_max: 64 * 1024 * 1024,
                ..ProducerConfig::default()
            };
            let producer = Producer::new(cluster, producer_config)
                .await
                .map_err(|e| e.to_string())?;
            match args.api.as_str() {
                "batch" => produce_batches(&producer, &args, value, per_producer, index).await,
                "record" => produce_one(&producer, &args, value, per_producer, index).await,
                other => Err(format!("--api {other}: use batch or record")),
            }
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut batch_latency = latency.clone();
    for task in tasks {
        let (records, batches) = task.await.map_err(|e| e.to_string())??;
        latency.add(records).map_err(|e| e.to_string())?;
        batch_latency.add(batches).map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();
    let records = per_producer * args.producers as u64;
    let name = format!(
        "produce {}p acks={} {} {}",
        args.producers, args.acks, args.compression, args.api
    );
    Ok(vec![
        Phase {
            name: format!("{name} per record"),
            records,
            bytes: records * args.record_bytes as u64,
            elapsed,
            latency_us: Some(latency),
        },
        Phase {
            name: format!("{name} per batch"),
            records,
            bytes: records * args.record_bytes as u64,
            elapsed,
            latency_us: Some(batch_latency),
        },
    ])
}

/// One producer's share; returns its per-record and per-batch latencies.
async fn produce_one(
    producer: &Producer,
    args: &ProduceBenchArgs,
    value: Bytes,
    records: u64,
    index: usize,
) -> Result<(Histogram<u64>, Histogram<u64>), String> {
    // Deliveries complete in order per partition; a waiter records each one's
    // latency so `send` never waits on an acknowledgement itself.
    // Each delivery is tagged with whether its record closed a batch: that
    // record's latency is the batch's (its wait for the batch to fill is nil).
    let (deliveries, mut waiting) = mpsc::channel::<(Instant, bool, Delivery)>(1 << 16);
    let waiter = tokio::spawn(async move {
        let mut records = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
        let mut batches = records.clone();
        while let Some((sent, closes_batch, delivery)) = waiting.recv().await {
            delivery.wait().await.map_err(|e| e.to_string())?;
            let micros = sent.elapsed().as_micros().max(1) as u64;
            let _ = records.record(micros);
            if closes_batch {
                let _ = batches.record(micros);
            }
        }
        Ok::<_, String>((records, batches))
    });
    let per_second = args.rate as f64 / args.producers as f64;
    let started = Instant::now();
    // One clock read per 64 records: reading it per record cost 10% of the
    // bench's CPU; the error is the time to send 64 records (microseconds).
    let mut sent = started;
    for n in 0..records {
        if n % 64 == 0 {
            if per_second > 0.0 {
                let due = started + Duration::from_secs_f64(n as f64 / per_second);
                tokio::time::sleep_until(due.into()).await;
            }
            sent = Instant::now();
        }
        let record = ProducerRecord {
            topic: args.topic.clone(),
            partition: Some(((n / args.batch_records as u64) as usize + index) as i32 % args.partitions),
            value: Some(value.clone()),
            ..ProducerRecord::default()
        };
        let delivery = producer.send(record).await.map_err(|e| e.to_string())?;
        let closes_batch = n % args.batch_records as u64 == args.batch_records as u64 - 1;
        let sent = if closes_batch { Instant::now() } else { sent };
        if deliveries.send((sent, closes_batch, delivery)).await.is_err() {
            break;
        }
    }
    drop(deliveries);
    producer.flush().await;
    waiter.await.map_err(|e| e.to_string())?
}

/// One producer's share, `batch_records` at a time through `send_batch`,
/// each batch to the next partition in turn; every record's latency is its
/// batch's (they are sent and answered together).
async fn produce_batches(
    producer: &Producer,
    args: &ProduceBenchArgs,
    value: Bytes,
    records: u64,
    index: usize,
) -> Result<(Histogram<u64>, Histogram<u64>), String> {
    let (deliveries, mut waiting) = mpsc::channel::<(Instant, u64, BatchDelivery)>(1 << 12);
    let waiter = tokio::spawn(async move {
        let mut records = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
        let mut batches = records.clone();
        while let Some((sent, count, delivery)) = waiting.recv().await {
            for result in delivery.wait().await {
                result.map_err(|e| e.to_string())?;
            }
            let micros = sent.elapsed().as_micros().max(1) as u64;
            let _ = records.record_n(micros, count);
            let _ = batches.record(micros);
        }
        Ok::<_, String>((records, batches))
    });
    let per_second = args.rate as f64 / args.producers as f64;
    let started = Instant::now();
    let batch = args.batch_records.max(1) as u64;
    let mut n = 0;
    let mut call = index as i32;
    while n < records {
        if per_second > 0.0 {
            let due = started + Duration::from_secs_f64(n as f64 / per_second);
            tokio::time::sleep_until(due.into()).await;
        }
        let count = batch.min(records - n);
        let batch_records = (0..count)
            .map(|_| BatchRecord {
                value: Some(value.clone()),
                ..BatchRecord::default()
            })
            .collect();
        let sent = Instant::now();
        let partition = Some(call % args.partitions);
        call += 1;
        let delivery = producer
            .send_batch(&args.topic, partition, batch_records)
            .await
            .map_err(|e| e.to_string())?;
        if deliveries.send((sent, count, delivery)).await.is_err() {
            break;
        }
        n += count;
    }
    drop(deliveries);
    producer.flush().await;
    waiter.await.map_err(|e| e.to_string())?
}

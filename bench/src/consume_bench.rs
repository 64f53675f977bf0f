//! `relay-bench consume`: N consumers of one group read a topic from the
//! earliest offset to the end offsets seen at start; records/s and MB/s of
//! values, through Relay's consumer (fetch, CRC check, decompression, record
//! decoding).

use crate::report::Phase;
use clap::Args;
use relay_client::admin::Admin;
use relay_client::consumer::{Consumer, ConsumerConfig, StartPosition};
use relay_client::ClientSettings;
use relay_client::Cluster;
use std::time::Instant;

#[derive(Debug, Args, Clone)]
pub struct ConsumeBenchArgs {
    #[arg(long, default_value = "bench")]
    pub topic: String,
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// `--broker`, `--security-protocol`, `--sasl-*`, `--tls-ca`: the broker and how to reach it.
    #[command(flatten)]
    pub client: ClientSettings,
}

pub async fn run(args: &ConsumeBenchArgs) -> Result<Phase, String> {
    let cluster = Cluster::connect(args.client.cluster_config("relay-bench").map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let partitions = Admin::new(cluster)
        .describe_topic(&args.topic)
        .await
        .map_err(|e| e.to_string())?;
    let total: i64 = partitions.iter().map(|p| p.end_offset - p.start_offset).sum();
    let group = (args.consumers > 1).then(|| format!("relay-bench-{}", std::process::id()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.consumers {
        let (args, group) = (args.clone(), group.clone());
        let total = total as u64;
        tasks.push(tokio::spawn(async move {
            let cluster = Cluster::connect(args.client.cluster_config("relay-bench").map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())?;
            let mut config = ConsumerConfig::new(vec![args.topic.clone()], group);
            config.start = StartPosition::Earliest;
            config.commit_on_rebalance = false;
            let mut consumer = Consumer::new(cluster, config).await.map_err(|e| e.to_string())?;
            let (mut records, mut bytes) = (0u64, 0u64);
            loop {
                let poll = consumer.poll().await.map_err(|e| e.to_string())?;
                records += poll.records.len() as u64;
                bytes += poll
                    .records
                    .iter()
                    .map(|r| r.value.map_or(0, <[u8]>::len) as u64)
                    .sum::<u64>();
                if consumer.at_end() && poll.assigned.is_none() {
                    break;
                }
                if records >= total {
                    break;
                }
            }
            let _ = consumer.close().await;
            Ok::<_, String>((records, bytes))
        }));
    }
    let (mut records, mut bytes) = (0, 0);
    for task in tasks {
        let (r, b) = task.await.map_err(|e| e.to_string())??;
        records += r;
        bytes += b;
    }
    Ok(Phase {
        name: format!("consume {}c from earliest", args.consumers),
        records,
        bytes,
        elapsed: started.elapsed(),
        latency_us: None,
    })
}

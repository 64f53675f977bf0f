//! `relay-bench restart`: fills a broker with `--gib` of log over
//! `--partitions` partitions, `kill -9`s it, starts it again on the same data
//! directory and measures the time from spawn until it serves: Metadata
//! answered and the end offset of every partition listed.

use crate::processes;
use crate::produce_bench::{self, ProduceBenchArgs};
use crate::report::Phase;
use clap::Args;
use relay_client::admin::Admin;
use relay_client::{ClientSettings, Cluster, ClusterConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Args, Clone)]
pub struct RestartBenchArgs {
    #[arg(long, default_value = "target/release/relay")]
    pub relay: PathBuf,
    /// Log to write before the kill, in GiB.
    #[arg(long, default_value_t = 10.0)]
    pub gib: f64,
    #[arg(long, default_value_t = 10)]
    pub partitions: i32,
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub async fn run(args: &RestartBenchArgs) -> Result<Phase, String> {
    let base = args.dir.clone().unwrap_or_else(|| PathBuf::from("target/bench-data"));
    std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
    let scratch = tempfile::tempdir_in(&base).map_err(|e| e.to_string())?;
    let data = scratch.path().join("data");
    let data_arg = data.display().to_string();
    let log = scratch.path().join("broker.log");
    let mut broker = processes::start(
        &args.relay,
        &["broker", "--listen", "127.0.0.1:0", "--data-dir", &data_arg],
        &log,
    )?;
    let record_bytes = 1000;
    let records = (args.gib * (1u64 << 30) as f64 / record_bytes as f64) as u64;
    let fill = ProduceBenchArgs {
        topic: "restart".into(),
        partitions: args.partitions,
        producers: 2,
        record_bytes,
        batch_records: 1000,
        compression: "none".into(),
        acks: 1,
        records,
        rate: 0,
        api: "batch".into(),
        broker_metrics: None,
        client: ClientSettings {
            brokers: Some(broker.address.clone()),
            ..ClientSettings::default()
        },
    };
    let filled = produce_bench::run(&fill).await?.remove(0);
    eprintln!(
        "restart bench: wrote {:.1} GiB in {:.0} s; kill -9",
        filled.bytes as f64 / (1u64 << 30) as f64,
        filled.elapsed.as_secs_f64()
    );
    broker.kill9();
    let address = broker.address.clone();
    let started = Instant::now();
    let mut broker = processes::start(
        &args.relay,
        &["broker", "--listen", &address, "--data-dir", &data_arg],
        &scratch.path().join("broker-restart.log"),
    )?;
    loop {
        let serving = async {
            let cluster = Cluster::connect(ClusterConfig::new(&address)).await.ok()?;
            let partitions = Admin::new(cluster).describe_topic("restart").await.ok()?;
            (partitions.len() == args.partitions as usize).then_some(())
        };
        if serving.await.is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err("the broker did not serve within 120 s of its restart".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    broker.terminate();
    Ok(Phase {
        name: format!("restart after kill -9, {:.0} GiB", args.gib),
        records: 1,
        bytes: 0,
        elapsed,
        latency_us: None,
    })
}

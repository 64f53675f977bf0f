//! `relay topics list|describe|create|delete`.

use super::client::{connect, fail, runtime, with_config};
use crate::cli::{TopicsArgs, TopicsCommand};
use crate::exit;
use relay_client::admin::Admin;

pub fn run(mut args: TopicsArgs) -> i32 {
    if let Err(code) = with_config("topics", &mut args.client, args.config.as_deref()) {
        return code;
    }
    runtime().block_on(async move {
        let admin = match connect(&args.client, "relay-topics").await {
            Ok(cluster) => Admin::new(cluster),
            Err(error) => return fail("topics", &error),
        };
        let result = match args.command {
            TopicsCommand::List => admin.list_topics().await.map(|topics| {
                println!("{:<40} {:>10}", "TOPIC", "PARTITIONS");
                for (topic, partitions) in topics {
                    println!("{topic:<40} {partitions:>10}");
                }
            }),
            TopicsCommand::Describe { topic } => admin.describe_topic(&topic).await.map(|partitions| {
                println!(
                    "{:<10} {:>8} {:>14} {:>14} {:>14}",
                    "PARTITION", "LEADER", "START", "END", "RECORDS"
                );
                for p in &partitions {
                    println!(
                        "{:<10} {:>8} {:>14} {:>14} {:>14}",
                        p.partition,
                        p.leader,
                        p.start_offset,
                        p.end_offset,
                        p.end_offset - p.start_offset
                    );
                }
            }),
            TopicsCommand::Create {
                topic,
                partitions,
                retention_bytes,
                retention_ms,
            } => {
                let mut configs = Vec::new();
                if let Some(bytes) = retention_bytes {
                    configs.push(("retention.bytes".to_owned(), bytes.to_string()));
                }
                if let Some(ms) = retention_ms {
                    configs.push(("retention.ms".to_owned(), ms.to_string()));
                }
                admin
                    .create_topic(&topic, partitions, &configs)
                    .await
                    .map(|()| println!("created topic {topic} with {partitions} partitions"))
            }
            TopicsCommand::Delete { topic } => admin
                .delete_topic(&topic)
                .await
                .map(|()| println!("deleted topic {topic}")),
        };
        match result {
            Ok(()) => exit::SUCCESS,
            Err(error) => fail("topics", &error),
        }
    })
}

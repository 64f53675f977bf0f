//! `relay consume`: prints a topic's records. With `--group` it is a group
//! member that commits exactly what it printed (so two processes in one group
//! split the partitions and print each record once between them); without,
//! it reads every partition from `--from`. It exits at the end of every
//! partition unless `--follow`, after `--max` records, or on Ctrl-C, and
//! always leaves its group cleanly.

use super::client::{connect, fail, parse_position, runtime, with_config};
use crate::cli::ConsumeArgs;
use crate::exit;
use relay_client::consumer::{Consumer, ConsumerConfig, TopicPartition};
use relay_client::records::RecordView;
use std::collections::HashSet;
use std::io::Write;

/// Printed records are written to standard output in pieces of at most
/// 64 KiB (one write(2) per piece, not per record).
const OUTPUT_BUFFER_BYTES_MAX: usize = 1 << 16;

fn json_line(record: &RecordView<'_>) -> String {
    let text = |bytes: Option<&[u8]>| match bytes {
        None => serde_json::Value::Null,
        Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
    };
    let mut headers: serde_json::Map<String, serde_json::Value> = record
        .headers()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), text(v)))
        .collect();
    show_line_source(record, &mut headers);
    serde_json::json!({
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
        "key": text(record.key),
        "headers": headers,
        "value": text(record.value),
    })
    .to_string()
}

/// A sender's compact source headers (`relay_source`, `rp`) shown as the
/// readable `source_host`, `source_file`, `source_file_id` and
/// `source_position`, as the older form wrote them; an unreadable one is
/// left as it came.
fn show_line_source(record: &RecordView<'_>, headers: &mut serde_json::Map<String, serde_json::Value>) {
    use relay_proto::source_headers::{self as names, LineSource};
    let header = |name: &str| record.header(name);
    if header(names::HEADER_SOURCE).is_none() {
        return;
    }
    let Ok(Some(source)) = LineSource::read(header) else {
        return;
    };
    headers.remove(names::HEADER_SOURCE);
    headers.remove(names::HEADER_LINE_POSITION);
    let text = |bytes: &[u8]| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned());
    let shown = [
        (names::HEADER_HOST, source.host.as_deref().map(text)),
        (names::HEADER_FILE, source.file.as_deref().map(text)),
        (
            names::HEADER_FILE_ID,
            Some(text(source.file_id.as_deref().unwrap_or_default().as_bytes())),
        ),
        (
            names::HEADER_POSITION,
            source.position.as_deref().map(|p| text(p.as_bytes())),
        ),
    ];
    for (name, value) in shown {
        if let Some(value) = value {
            headers.insert(name.to_owned(), value);
        }
    }
}

pub fn run(mut args: ConsumeArgs) -> i32 {
    if let Err(code) = with_config("consume", &mut args.client, args.config.as_deref()) {
        return code;
    }
    let start = match parse_position(&args.from) {
        Ok(start) => start,
        Err(error) => {
            eprintln!("relay consume: --from {error}");
            return exit::USAGE;
        }
    };
    runtime().block_on(async move {
        let cluster = match connect(&args.client, "relay-consume").await {
            Ok(cluster) => cluster,
            Err(error) => return fail("consume", &error),
        };
        let mut config = ConsumerConfig::new(vec![args.topic.clone()], args.group.clone());
        config.start = start;
        // A sender's `relay_source` goes once per run in a batch.
        config.sticky_header_keys = relay_proto::source_headers::STICKY_HEADER_KEYS
            .iter()
            .map(|key| bytes::Bytes::from_static(key.as_bytes()))
            .collect();
        let mut consumer = match Consumer::new(cluster, config).await {
            Ok(consumer) => consumer,
            Err(error) => return fail("consume", &error),
        };
        let code = tokio::select! {
            code = print_records(&mut consumer, &args) => code,
            _ = tokio::signal::ctrl_c() => exit::SUCCESS,
        };
        if args.group.is_some() {
            if let Err(error) = consumer.commit().await {
                eprintln!("relay consume: final commit failed: {error}");
            }
        }
        if let Err(error) = consumer.close().await {
            eprintln!("relay consume: leaving the group: {error}");
        }
        code
    })
}

async fn print_records(consumer: &mut Consumer, args: &ConsumeArgs) -> i32 {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(OUTPUT_BUFFER_BYTES_MAX, stdout.lock());
    let mut printed = 0u64;
    loop {
        let poll = match consumer.poll().await {
            Ok(poll) => poll,
            Err(error) => return fail("consume", &error),
        };
        let mut printed_now = 0usize;
        for record in &poll.records {
            if args.max.is_some_and(|max| printed >= max) {
                break;
            }
            if let Some(why) = record.undecodable {
                eprintln!("relay consume: {}/{}: {why}; skipped", record.topic, record.partition);
                printed_now += 1;
                continue;
            }
            let written = if args.format == "json" {
                writeln!(out, "{}", json_line(&record))
            } else {
                out.write_all(record.value.unwrap_or_default())
                    .and_then(|()| out.write_all(b"\n"))
            };
            if written.is_err() {
                return exit::SUCCESS; // the reader went away (`| head`)
            }
            printed += 1;
            printed_now += 1;
        }
        if out.flush().is_err() {
            return exit::SUCCESS;
        }
        if args.max.is_some_and(|max| printed >= max) {
            // Commit exactly what was printed: rewind each partition to its
            // first record that was fetched but not printed.
            let mut rewound: HashSet<TopicPartition> = HashSet::new();
            for record in poll.records.iter().skip(printed_now) {
                let partition = TopicPartition {
                    topic: record.topic.to_string(),
                    partition: record.partition,
                };
                if rewound.insert(partition.clone()) {
                    consumer.seek(partition, record.offset);
                }
            }
            return exit::SUCCESS;
        }
        if args.group.is_some() && !poll.records.is_empty() {
            if let Err(error) = consumer.commit().await {
                eprintln!("relay consume: commit failed: {error}");
            }
        }
        if !args.follow && consumer.at_end() {
            return exit::SUCCESS;
        }
    }
}

//! The offsets compare-and-set on SQLite: a batch from a loader whose view of
//! a partition's offset is stale is refused whole: no row, no reject and no
//! offset of it is kept.

use relay_loader::config::{ColumnSpec, ColumnType, LoaderConfig, TimeFormat};
use relay_loader::sink::{Batch, OffsetAdvance, Sink, SinkError};
use relay_loader::transform::{Reject, Row, Value};
use std::sync::Arc;

fn config(path: &std::path::Path) -> LoaderConfig {
    let mut config = LoaderConfig::new(vec!["t".into()], "g", &format!("sqlite://{}", path.display()), "events");
    config.columns = vec![ColumnSpec {
        name: "n".into(),
        pointer: "/n".into(),
        column_type: ColumnType::Bigint,
        nullable: true,
        time_format: TimeFormat::default(),
    }];
    config
}

fn batch(rows: std::ops::Range<i64>, previous: Option<i64>, next: i64) -> Arc<Batch> {
    Arc::new(Batch {
        rows: rows
            .clone()
            .map(|n| Row {
                table: 0,
                values: vec![Value::BigInt(n)],
                dedup_key: format!("k{n}"),
            })
            .collect(),
        inserted: Default::default(),
        gaps: Vec::new(),
        rejects: vec![Reject {
            table: "events".into(),
            topic: "t".into(),
            partition: 0,
            offset: rows.end,
            raw: b"bad".to_vec(),
            error: "bad".into(),
            source: None,
        }],
        offsets: vec![OffsetAdvance {
            topic: "t".into(),
            partition: 0,
            previous,
            next,
        }],
    })
}

fn count(path: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_stale_loader_is_fenced_and_its_batch_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let mut sink = Sink::open(&config(&path)).await.unwrap();
    sink.write("g", &batch(0..10, None, 11)).await.unwrap();
    sink.write("g", &batch(10..20, Some(11), 21)).await.unwrap();
    assert_eq!(sink.offsets("g").await.unwrap().get(&("t".to_owned(), 0)), Some(&21));

    // A loader that still believes the partition has no row, or is at 11.
    for stale in [None, Some(11)] {
        match sink.write("g", &batch(100..110, stale, 500)).await {
            Err(SinkError::Fenced {
                partition: 0, expected, ..
            }) => assert_eq!(expected, stale),
            other => panic!("expected a fence, got {other:?}"),
        }
    }
    assert_eq!(
        count(&path, "SELECT COUNT(*) FROM events"),
        20,
        "no row of a fenced batch"
    );
    assert_eq!(
        count(&path, "SELECT COUNT(*) FROM relay_rejects"),
        2,
        "no reject of a fenced batch"
    );
    assert_eq!(count(&path, "SELECT next_offset FROM relay_offsets"), 21);

    // Replaying an already committed batch (same rows, same rejects) adds nothing.
    sink.write("g", &batch(10..20, Some(21), 21)).await.unwrap();
    assert_eq!(count(&path, "SELECT COUNT(*) FROM events"), 20);
    assert_eq!(count(&path, "SELECT COUNT(*) FROM relay_rejects"), 2);
}

/// A batch whose only record is a rejected line from `source` at `offset`.
fn rejected_line(offset: i64, source: &str, previous: Option<i64>) -> Arc<Batch> {
    Arc::new(Batch {
        rows: Vec::new(),
        inserted: Default::default(),
        gaps: Vec::new(),
        rejects: vec![Reject {
            table: "events".into(),
            topic: "t".into(),
            partition: 0,
            offset,
            raw: b"# banner".to_vec(),
            error: "not JSON".into(),
            source: Some(source.into()),
        }],
        offsets: vec![OffsetAdvance {
            topic: "t".into(),
            partition: 0,
            previous,
            next: offset + 1,
        }],
    })
}

#[tokio::test]
async fn a_line_sent_twice_is_rejected_once_even_in_a_table_made_before_sources() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    // relay_rejects as loaders before source identities made it.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE relay_rejects (
                 target_table TEXT NOT NULL, group_id TEXT NOT NULL, topic TEXT NOT NULL,
                 partition INTEGER NOT NULL, \"offset\" INTEGER NOT NULL, raw BLOB NOT NULL,
                 error TEXT NOT NULL, rejected_at TEXT NOT NULL,
                 UNIQUE (target_table, topic, partition, \"offset\"));",
        )
        .unwrap();
    let mut sink = Sink::open(&config(&path)).await.unwrap();
    // The sender was killed after the broker acknowledged the line and
    // before it saved its position: the line is in the topic twice.
    sink.write("g", &rejected_line(3, "host:f1:0", None)).await.unwrap();
    sink.write("g", &rejected_line(7, "host:f1:0", Some(4))).await.unwrap();
    sink.write("g", &rejected_line(9, "host:f1:301", Some(8)))
        .await
        .unwrap();
    assert_eq!(count(&path, "SELECT COUNT(*) FROM relay_rejects"), 2);
    assert_eq!(count(&path, "SELECT next_offset FROM relay_offsets"), 10);
}

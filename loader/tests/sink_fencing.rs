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
        gaps: Vec::new(),
        rejects: vec![Reject {
            table: "events".into(),
            topic: "t".into(),
            partition: 0,
            offset: rows.end,
            raw: b"bad".to_vec(),
            error: "bad".into(),
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

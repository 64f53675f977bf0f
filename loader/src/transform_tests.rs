use super::*;
use bytes::Bytes;
use relay_client::records::ConsumerRecord;
use relay_proto::source_headers::{HEADER_FILE, HEADER_FILE_ID, HEADER_HOST, HEADER_POSITION};

fn config() -> LoaderConfig {
    let mut config = LoaderConfig::new(vec!["events".into()], "g", "sqlite://x", "events");
    let column = |name: &str, pointer: &str, column_type| ColumnSpec {
        name: name.into(),
        pointer: pointer.into(),
        column_type,
        nullable: true,
        time_format: TimeFormat::default(),
    };
    config.columns = vec![
        column("uuid", "/uuid", ColumnType::Uuid),
        column("player", "/player/id", ColumnType::Text),
        column("amount", "/amount", ColumnType::Bigint),
        column("score", "/score", ColumnType::Double),
        column("won", "/won", ColumnType::Boolean),
        column("at", "/at", ColumnType::Timestamptz),
        column("extra", "/extra", ColumnType::Json),
    ];
    config.metadata = vec![MetadataColumn::Offset, MetadataColumn::SourcePosition];
    config
}

fn row_of(config: &LoaderConfig, record: &ConsumerRecord) -> Result<Row, Box<Reject>> {
    match transform(&Loading::new(config).unwrap(), &record.view()) {
        Transformed::Row(row) => Ok(row),
        Transformed::Reject(reject) => Err(Box::new(reject)),
        Transformed::Skipped(why) => panic!("skipped: {why:?}"),
    }
}

fn record(value: &str) -> ConsumerRecord {
    ConsumerRecord {
        topic: "events".into(),
        partition: 2,
        offset: 77,
        timestamp_ms: 1_000,
        key: None,
        value: Some(Bytes::from(value.to_owned())),
        headers: vec![(HEADER_POSITION.into(), Some(Bytes::from_static(b"4096")))],
        undecodable: None,
    }
}

#[test]
fn typed_columns_are_filled_and_checked() {
    let row = row_of(
        &config(),
        &record(r#"{"uuid":"6f1c0a52-3c5f-4f0e-9a4e-0d5b6c7d8e9f","player":{"id":"p1"},"amount":12,"score":"2.5","won":true,"at":"2026-01-01T00:00:00Z","extra":{"a":[1]}}"#),
    )
    .unwrap();
    assert_eq!(row.dedup_key, "6f1c0a52-3c5f-4f0e-9a4e-0d5b6c7d8e9f");
    assert_eq!(row.values[1], Value::Text("p1".into()));
    assert_eq!(row.values[2], Value::BigInt(12));
    assert_eq!(row.values[3], Value::Double(2.5));
    assert_eq!(row.values[4], Value::Bool(true));
    assert_eq!(row.values[5], Value::Timestamp(1_767_225_600_000_000));
    assert_eq!(row.values[7], Value::BigInt(77));
    assert_eq!(row.values[8], Value::BigInt(4096));
}

#[test]
fn events_without_an_id_are_keyed_by_file_identity_not_by_name() {
    let with_headers = |headers: &[(&str, &str)]| {
        let mut record = record(r#"{"n":1}"#);
        record.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), Some(Bytes::from(v.to_string()))))
            .collect();
        row_of(&config(), &record).unwrap().dedup_key
    };
    let id = "0123456789abcdef0123456789abcdef";
    let old_name = [
        (HEADER_HOST, "h"),
        (HEADER_FILE, "app.log"),
        (HEADER_FILE_ID, id),
        (HEADER_POSITION, "10"),
    ];
    let new_name = [
        (HEADER_HOST, "h"),
        (HEADER_FILE, "app.log.1"),
        (HEADER_FILE_ID, id),
        (HEADER_POSITION, "10"),
    ];
    assert_eq!(with_headers(&old_name), format!("h:{id}:10"));
    assert_eq!(with_headers(&old_name), with_headers(&new_name));
    let before_ids = [(HEADER_HOST, "h"), (HEADER_FILE, "app.log"), (HEADER_POSITION, "10")];
    assert_eq!(with_headers(&before_ids), "h:app.log:10");
    assert_eq!(with_headers(&[]), "events/2/77");
}

#[test]
fn bad_records_become_rejects_with_reasons() {
    for (line, reason) in [
        ("not json", "not JSON"),
        ("[1,2]", "not a JSON object"),
        (r#"{"uuid":"nope"}"#, "not a UUID"),
        (r#"{"amount":"twelve"}"#, "64-bit integer"),
        (r#"{"amount":1.5}"#, "64-bit integer"),
        (r#"{"won":"yes"}"#, "true or false"),
        (r#"{"at":"yesterday"}"#, "RFC 3339"),
        (r#"{"player":{"id":"a\u0000b"}}"#, "NUL"),
    ] {
        let reject = row_of(&config(), &record(line)).unwrap_err();
        assert_eq!(reject.table, "events");
        assert!(reject.error.contains(reason), "{line}: {}", reject.error);
        assert_eq!((reject.partition, reject.offset), (2, 77));
        assert_eq!(reject.raw, line.as_bytes());
    }
}

#[test]
fn dedup_key_falls_back_to_the_record_position() {
    let row = row_of(&config(), &record(r#"{"amount":1}"#)).unwrap();
    assert_eq!(row.dedup_key, "events/2/77");
}

fn routed() -> LoaderConfig {
    let text = r#"
        topic = "events"
        group = "g"
        warehouse = "sqlite://x"
        [[route]]
        table = "purchases"
        when = { pointer = "/type", equals = "purchase" }
        [[route.columns]]
        name = "amount"
        pointer = "/amount"
        type = "bigint"
        nullable = false
        [[route]]
        table = "sessions"
        when = { pointer = "/type", in = ["login", "logout"] }
        [[route.columns]]
        name = "player"
        pointer = "/player"
        type = "text"
    "#;
    let config: LoaderConfig = toml::from_str(text).unwrap();
    config.validate().unwrap();
    config
}

#[test]
fn first_matching_route_wins_and_the_unrouted_are_skipped() {
    let config = routed();
    let loading = Loading::new(&config).unwrap();
    let row = |value: &str| transform(&loading, &record(value).view());
    match row(r#"{"type":"purchase","amount":5}"#) {
        Transformed::Row(row) => assert_eq!((row.table, &row.values[0]), (0, &Value::BigInt(5))),
        other => panic!("{other:?}"),
    }
    match row(r#"{"type":"logout","player":"p"}"#) {
        Transformed::Row(row) => assert_eq!(row.table, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(row(r#"{"type":"match"}"#), Transformed::Skipped(Routed::Unrouted));
    match row(r#"{"type":"purchase","amount":"lots"}"#) {
        Transformed::Reject(reject) => {
            assert_eq!(reject.table, "purchases");
            assert!(reject.error.contains("amount"), "{}", reject.error);
        }
        other => panic!("{other:?}"),
    }
    match row("not json") {
        Transformed::Reject(reject) => assert_eq!(reject.table, "(unrouted)"),
        other => panic!("{other:?}"),
    }
    let mut only = config.clone();
    only.only_table = Some("sessions".into());
    let loading = Loading::new(&only).unwrap();
    assert_eq!(
        transform(&loading, &record(r#"{"type":"purchase","amount":5}"#).view()),
        Transformed::Skipped(Routed::OtherTable)
    );
}

#[test]
fn a_default_table_takes_what_no_route_does() {
    let mut config = routed();
    config.table = "events".into();
    let loading = Loading::new(&config).unwrap();
    match transform(&loading, &record(r#"{"type":"match"}"#).view()) {
        Transformed::Row(row) => assert_eq!(loading.tables()[row.table].table, "events"),
        other => panic!("{other:?}"),
    }
    match transform(&loading, &record("[]").view()) {
        Transformed::Reject(reject) => assert_eq!(reject.table, "events"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nginx_lines_load_into_typed_columns() {
    let text = r#"
        topic = "web"
        group = "g"
        warehouse = "sqlite://x"
        table = "web"
        format = "regex"
        pattern_name = "nginx_combined"
        regex = '^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
        [[columns]]
        name = "remote_addr"
        pointer = "/remote_addr"
        type = "text"
        [[columns]]
        name = "time"
        pointer = "/time"
        type = "timestamptz"
        time_format = "clf"
        [[columns]]
        name = "status"
        pointer = "/status"
        type = "bigint"
    "#;
    let config: LoaderConfig = toml::from_str(text).unwrap();
    config.validate().unwrap();
    let line = r#"203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 404 12"#;
    let row = row_of(&config, &record(line)).unwrap();
    assert_eq!(row.values[0], Value::Text("203.0.113.9".into()));
    assert_eq!(row.values[1], Value::Timestamp(971_211_336_000_000));
    assert_eq!(row.values[2], Value::BigInt(404));
    let reject = row_of(&config, &record("garbage")).unwrap_err();
    assert_eq!(
        (reject.table.as_str(), reject.error.as_str()),
        ("web", "does not match pattern nginx_combined")
    );
}

#[test]
fn route_mistakes_are_refused() {
    let mut config = routed();
    config.route[1].table = "purchases".into();
    assert!(config.validate().unwrap_err().contains("target of two routes"));
    let mut config = routed();
    config.only_table = Some("nope".into());
    assert!(config.validate().unwrap_err().contains("only_table"));
    let mut config = routed();
    config.route.clear();
    assert!(config.validate().unwrap_err().contains("no table"));
    let mut config = routed();
    config.route[0].when.exists = Some(true);
    assert!(config.validate().unwrap_err().contains("exactly one"));
}

#[test]
fn metadata_a_column_cannot_hold_is_rejected_not_altered() {
    let mut config = config();
    config.metadata = vec![MetadataColumn::SourceFile, MetadataColumn::RecordTimestamp];
    let mut latin1 = record(r#"{"n":1}"#);
    latin1.headers = vec![(HEADER_FILE.into(), Some(Bytes::from_static(b"caf\xe9.log")))];
    let reject = row_of(&config, &latin1).unwrap_err();
    assert!(
        reject.error.contains("relay_source_file") && reject.error.contains("not UTF-8"),
        "{}",
        reject.error
    );
    let mut untimed = record(r#"{"n":1}"#);
    untimed.timestamp_ms = -1;
    let row = row_of(&config, &untimed).unwrap();
    assert_eq!(row.values[7..], [Value::Null, Value::Null]);
    untimed.timestamp_ms = i64::MAX / 10;
    assert!(row_of(&config, &untimed)
        .unwrap_err()
        .error
        .contains("between years 1 and 9999"));
}

#[test]
fn values_keep_the_text_they_were_written_as() {
    let mut config = config();
    config.dedup_key = "/id".into();
    let row = row_of(
        &config,
        &record(r#"{"id": 12345678901234567890123, "player": {"id": 1.50}, "score": 0.1, "at": "2026-12-07T14:58:04.004729+05:30", "extra": {"b": [1.0, 9007199254740993], "a": -0.0}}"#),
    )
    .unwrap();
    assert_eq!(row.dedup_key, "12345678901234567890123");
    let reject = row_of(&config, &record(r#"{"uuid": 12345678901234567890123}"#)).unwrap_err();
    assert!(
        reject.error.contains("12345678901234567890123 is not a UUID"),
        "{}",
        reject.error
    );
    assert_eq!(row.values[1], Value::Text("1.50".into()));
    assert_eq!(row.values[3], Value::Double(0.1));
    assert_eq!(row.values[5], Value::Timestamp(1_796_635_684_004_729));
    assert_eq!(
        row.values[6],
        Value::Json(crate::values::json_text::JsonText(
            r#"{"b": [1.0, 9007199254740993], "a": -0.0}"#.into()
        ))
    );
}

#[test]
fn a_repeated_key_means_its_last_value_for_every_column_type() {
    let row = row_of(
        &config(),
        &record(r#"{"score": 1.5, "extra": [1], "score": 2.50, "player": {"id": 7, "id": 8.0}, "extra": {"k": 1.0}}"#),
    )
    .unwrap();
    assert_eq!(row.values[1], Value::Text("8.0".into()));
    assert_eq!(row.values[3], Value::Double(2.5));
    assert_eq!(
        row.values[6],
        Value::Json(crate::values::json_text::JsonText(r#"{"k": 1.0}"#.into()))
    );
}

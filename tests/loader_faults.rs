//! Loader faults that used to lose or stall data without a word, each
//! through the `relay` binary against real warehouses: a table whose dedup
//! key is unique under another name (a PRIMARY KEY, an operator's UNIQUE)
//! dedups replays instead of stalling; a batch that fails while every
//! probe of its rows passes backs off, is counted and turns `/health` 503
//! instead of spinning; `--only-table` in the section's own group is
//! refused; the lag keeps following the broker during a warehouse outage,
//! also for a loader started during one (it serves /metrics meanwhile);
//! a `[[load]]` without columns keeps the whole event.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use support::postgres::Postgres;
use support::warehouse::Warehouse;
use support::{http_get, metric_sum, relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};

/// How long a one-shot `relay load --until-end` of a few hundred events may take.
const ONE_SHOT_LIMIT: Duration = Duration::from_secs(60);

fn produce(broker: &BrokerProcess, dir: &Path, topic: &str, range: std::ops::Range<u64>) {
    let file = dir.join(format!("{topic}-{}.jsonl", range.start));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for n in range {
        writeln!(
            out,
            r#"{{"uuid":"event-{n}","kind":"{}","n":{n}}}"#,
            if n % 2 == 0 { "a" } else { "b" }
        )
        .unwrap();
    }
    drop(out);
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", topic, file.to_str().unwrap()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn create(warehouse: &Warehouse, sql: &str) {
    match warehouse {
        Warehouse::Sqlite(path) => rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap(),
        Warehouse::Postgres(postgres) => {
            postgres.query(sql);
        }
    }
}

fn write_config(dir: &Path, body: &str) -> String {
    let config = dir.join("load.toml");
    std::fs::write(&config, body).unwrap();
    config.display().to_string()
}

/// `relay load --config CONFIG --until-end` plus `extra` flags, to the end.
fn load_once(broker: &BrokerProcess, config: &str, extra: &[&str]) -> Output {
    let mut args = vec!["load", "--broker", &broker.address, "--config", config, "--until-end"];
    args.extend_from_slice(extra);
    run_with_timeout(Command::new(relay_binary()).args(&args), ONE_SHOT_LIMIT)
}

const UUID_COLUMN: &str = "[[load.columns]]\nname = \"uuid\"\npointer = \"/uuid\"\ntype = \"text\"\n";

/// Loads 300 events into a table the operator made with `create`, then
/// loads them all again in a second group (a replay): every event is in
/// the table once, nothing is rejected, and both loads finish.
fn replays_are_deduplicated(warehouse: Warehouse, create_sql: &str) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    create(&warehouse, create_sql);
    produce(&broker, dir.path(), "replayed", 0..300);
    let config = write_config(
        dir.path(),
        &format!(
            "[[load]]\ntopic = \"replayed\"\ngroup = \"first\"\nwarehouse = \"{}\"\ntable = \"events\"\n\
             create_table = false\nbatch_records_max = 100\nbatch_wait_ms = 100\n{UUID_COLUMN}",
            warehouse.url()
        ),
    );
    for group in ["first", "replay"] {
        let output = load_once(&broker, &config, &["--group", group]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "the {group} load did not finish:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            warehouse.count(&format!(
                "select next_offset from relay_offsets where group_id = '{group}'"
            )),
            300,
            "{group}"
        );
    }
    assert_eq!(warehouse.count("select count(*) from events"), 300);
    assert_eq!(warehouse.count("select count(distinct uuid) from events"), 300);
    assert_eq!(warehouse.count("select count(*) from relay_rejects"), 0);
}

const SQLITE_PRIMARY_KEY: &str = "CREATE TABLE events (uuid TEXT, dedup_key TEXT PRIMARY KEY NOT NULL)";
const SQLITE_UNIQUE_OTHER_NAME: &str =
    "CREATE TABLE events (uuid TEXT, dedup_key TEXT NOT NULL, CONSTRAINT one_per_event UNIQUE (dedup_key))";
const POSTGRES_PRIMARY_KEY: &str = "CREATE TABLE events (uuid text, dedup_key text PRIMARY KEY)";
const POSTGRES_UNIQUE_OTHER_NAME: &str =
    "CREATE TABLE events (uuid text, dedup_key text NOT NULL, CONSTRAINT one_per_event UNIQUE (dedup_key))";

#[test]
fn sqlite_primary_key_dedup_table_dedups_replays() {
    let dir = tempfile::tempdir().unwrap();
    replays_are_deduplicated(Warehouse::sqlite(dir.path()), SQLITE_PRIMARY_KEY);
}

#[test]
fn sqlite_unique_constraint_of_another_name_dedups_replays() {
    let dir = tempfile::tempdir().unwrap();
    replays_are_deduplicated(Warehouse::sqlite(dir.path()), SQLITE_UNIQUE_OTHER_NAME);
}

#[test]
fn postgres_primary_key_dedup_table_dedups_replays() {
    let Some(postgres) = Postgres::start() else { return };
    replays_are_deduplicated(Warehouse::Postgres(postgres), POSTGRES_PRIMARY_KEY);
}

#[test]
fn postgres_unique_constraint_of_another_name_dedups_replays() {
    let Some(postgres) = Postgres::start() else { return };
    replays_are_deduplicated(Warehouse::Postgres(postgres), POSTGRES_UNIQUE_OTHER_NAME);
}

#[test]
fn postgres_a_deferrable_or_partial_unique_dedup_key_is_refused_at_start() {
    let Some(postgres) = Postgres::start() else { return };
    let warehouse = Warehouse::Postgres(postgres);
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let config = write_config(
        dir.path(),
        &format!(
            "[[load]]\ntopic = \"t\"\ngroup = \"g\"\nwarehouse = \"{}\"\ntable = \"events\"\ncreate_table = false\n{UUID_COLUMN}",
            warehouse.url()
        ),
    );
    for table in [
        "CREATE TABLE events (uuid text, dedup_key text PRIMARY KEY DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TABLE events (uuid text, dedup_key text NOT NULL);
         CREATE UNIQUE INDEX events_recent ON events (dedup_key) WHERE uuid IS NOT NULL",
    ] {
        create(&warehouse, &format!("DROP TABLE IF EXISTS events; {table}"));
        let output = load_once(&broker, &config, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{table}: {stderr}");
        assert!(stderr.contains("dedup_key has no unique index"), "{stderr}");
    }
}

#[test]
fn postgres_a_batch_failing_while_its_probes_pass_backs_off_and_turns_health_unhealthy() {
    let Some(postgres) = Postgres::start() else { return };
    let warehouse = Warehouse::Postgres(postgres);
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    // Refuses rows written by COPY (a batch's first attempt) but not by
    // INSERT (every probe): the refusal is never about one row.
    create(
        &warehouse,
        "CREATE TABLE events (uuid text, dedup_key text NOT NULL);
         CREATE UNIQUE INDEX events_dedup_key ON events (dedup_key);
         CREATE FUNCTION refuse_copy() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF current_query() ILIKE 'COPY%' THEN
             RAISE EXCEPTION 'no COPY here' USING ERRCODE = 'check_violation';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_copy BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_copy();",
    );
    produce(&broker, dir.path(), "stuck", 0..50);
    let loader = metered_loader(dir.path(), &broker, "stuck", &warehouse, "create_table = false\n");
    let metrics = loader.metrics_address(1);
    let retries = || {
        http_get(&metrics, "/metrics")
            .and_then(|(_, body)| metric_sum(&body, "relay_loader_batch_retries_total", &[("table", "events")]))
            .unwrap_or(0.0)
    };
    let unhealthy = wait_until(Duration::from_secs(30), || {
        http_get(&metrics, "/health").is_some_and(|(status, _)| status == 503)
    });
    assert!(
        unhealthy,
        "/health stayed green; retries {}\n{}",
        retries(),
        loader.log()
    );
    let (_, health) = http_get(&metrics, "/health").unwrap();
    assert!(health.contains("a batch failed"), "{health}");
    // Ten more seconds of a stuck batch: a few attempts (backoff capped at
    // 1 s), not thousands; one ERROR line per minute.
    let before = retries();
    std::thread::sleep(Duration::from_secs(10));
    let during = retries() - before;
    assert!(
        (3.0..=15.0).contains(&during),
        "{during} attempts in 10 s with the backoff capped at 1 s\n{}",
        loader.log()
    );
    let errors = loader.log().matches("a batch keeps failing").count();
    assert_eq!(errors, 1, "{}", loader.log());
    let isolations = loader.log().matches("isolating them into relay_rejects").count();
    assert_eq!(
        isolations,
        1,
        "one WARN for the first attempt, not one per attempt\n{}",
        loader.log()
    );
    assert_eq!(
        warehouse.count("select count(*) from relay_rejects"),
        0,
        "nothing skipped"
    );
    // The operator fixes the table: the same batch loads, /health turns green.
    create(&warehouse, "DROP TRIGGER refuse_copy ON events");
    let loaded = wait_until(Duration::from_secs(30), || {
        warehouse.count("select count(*) from events") == 50
            && http_get(&metrics, "/health").is_some_and(|(status, _)| status == 200)
    });
    assert!(loaded, "{}", loader.log());
    assert_eq!(warehouse.count("select next_offset from relay_offsets"), 50);
}

/// A section with a default table and a route: `--only-table` of either
/// without `--group` would move the main group's offsets past the other's rows.
fn routed_config(dir: &Path, warehouse: &Warehouse) -> String {
    write_config(
        dir,
        &format!(
            "[[load]]\ntopic = \"routed\"\ngroup = \"main\"\nwarehouse = \"{}\"\ntable = \"others\"\n\
             batch_wait_ms = 100\n{UUID_COLUMN}\n\
             [[load.route]]\ntable = \"a\"\nwhen = {{ pointer = \"/kind\", equals = \"a\" }}\n\
             [[load.route.columns]]\nname = \"uuid\"\npointer = \"/uuid\"\ntype = \"text\"\n",
            warehouse.url()
        ),
    )
}

#[test]
fn only_table_without_group_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let warehouse = Warehouse::sqlite(dir.path());
    produce(&broker, dir.path(), "routed", 0..100);
    let config = routed_config(dir.path(), &warehouse);
    for extra in [
        &["--only-table", "a"][..],
        &["--only-table", "a", "--group", "main"][..],
    ] {
        let output = load_once(&broker, &config, extra);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("--group backfill-a") && stderr.contains("others"),
            "the refusal names the fix and the tables left out: {stderr}"
        );
    }
    assert_eq!(
        warehouse.count("select count(*) from relay_offsets"),
        0,
        "no offset moved"
    );
    // In a group of its own the backfill loads its table only; the main
    // group then still loads every row of both.
    let output = load_once(&broker, &config, &["--only-table", "a", "--group", "backfill-a"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(warehouse.count("select count(*) from a"), 50);
    let output = load_once(&broker, &config, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(warehouse.count("select count(*) from a"), 50);
    assert_eq!(warehouse.count("select count(*) from others"), 50);
}

#[test]
fn two_sections_sharing_a_group_where_one_is_a_backfill_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let warehouse = Warehouse::sqlite(dir.path());
    let url = warehouse.url();
    let config = write_config(
        dir.path(),
        &format!(
            "[[load]]\ntopic = \"routed\"\ngroup = \"main\"\nwarehouse = \"{url}\"\ntable = \"others\"\n\n\
             [[load]]\ntopic = \"routed\"\ngroup = \"main\"\nwarehouse = \"{url}\"\nonly_table = \"a\"\n\
             [[load.route]]\ntable = \"a\"\nwhen = {{ pointer = \"/kind\", equals = \"a\" }}\n"
        ),
    );
    let output = load_once(&broker, &config, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--group backfill-a"), "{stderr}");
}

/// A `relay load` of a quick-retrying `[[load]]` of `topic` into `events`
/// (a uuid column, and the section's `extra` settings) of `warehouse`,
/// serving metrics on a free port.
fn metered_loader(dir: &Path, broker: &BrokerProcess, topic: &str, warehouse: &Warehouse, extra: &str) -> RelayProcess {
    let config = write_config(
        dir,
        &format!(
            "[[load]]\ntopic = \"{topic}\"\ngroup = \"g\"\nwarehouse = \"{}\"\ntable = \"events\"\n{extra}\
             batch_wait_ms = 100\nretry_backoff_max_ms = 1000\n{UUID_COLUMN}",
            warehouse.url()
        ),
    );
    let args = [
        "load",
        "--broker",
        &broker.address,
        "--config",
        &config,
        "--metrics",
        "127.0.0.1:0",
    ];
    RelayProcess::start(args.iter().map(|s| s.to_string()).collect(), &dir.join("load.log"))
}

/// Loads 500 events, then takes the warehouse away with `outage(true)`:
/// 300 events arrive (fetched, then the batch waits), then 500 more (never
/// fetched): the lag must reach 800, and 0 again once `outage(false)`.
fn lag_follows_the_end_offset_during(mut warehouse: Warehouse, mut outage: impl FnMut(&mut Warehouse, bool)) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), "lagging", 0..500);
    let loader = metered_loader(dir.path(), &broker, "lagging", &warehouse, "");
    let metrics = loader.metrics_address(1);
    let lag = || {
        http_get(&metrics, "/metrics")
            .and_then(|(_, body)| metric_sum(&body, "relay_loader_lag", &[("table", "events")]))
            .unwrap_or(-1.0)
    };
    let loaded = wait_until(Duration::from_secs(30), || {
        warehouse.count("select count(*) from events") == 500 && lag() == 0.0
    });
    assert!(loaded, "lag {}\n{}", lag(), loader.log());
    outage(&mut warehouse, true);
    // The loader fetches these and then waits on the warehouse…
    produce(&broker, dir.path(), "lagging", 500..800);
    let waiting = wait_until(Duration::from_secs(30), || lag() == 300.0);
    assert!(waiting, "lag {}\n{}", lag(), loader.log());
    // Past the batch's first attempt (which fetches the next records
    // alongside): the loader only waits on the warehouse now.
    std::thread::sleep(Duration::from_secs(2));
    // …while these arrive: the lag must count them too.
    produce(&broker, dir.path(), "lagging", 800..1300);
    let growing = wait_until(Duration::from_secs(20), || lag() == 800.0);
    assert!(growing, "the lag froze at {} while 800 wait\n{}", lag(), loader.log());
    outage(&mut warehouse, false);
    let caught_up = wait_until(Duration::from_secs(90), || {
        warehouse.count("select count(*) from events") == 1300 && lag() == 0.0
    });
    assert!(caught_up, "lag {}\n{}", lag(), loader.log());
}

#[test]
fn lag_follows_end_offset_during_warehouse_outage() {
    let Some(postgres) = Postgres::start() else { return };
    lag_follows_the_end_offset_during(Warehouse::Postgres(postgres), |warehouse, down| {
        let Warehouse::Postgres(postgres) = warehouse else {
            unreachable!()
        };
        if down {
            postgres.stop_server();
        } else {
            postgres.start_server();
        }
    });
}

#[test]
fn lag_follows_end_offset_while_the_sqlite_warehouse_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    // An exclusive transaction of another process holds every writer off
    // (the loader waits out its 30 s busy timeout per attempt).
    let mut lock: Option<rusqlite::Connection> = None;
    lag_follows_the_end_offset_during(Warehouse::sqlite(dir.path()), move |warehouse, down| {
        let Warehouse::Sqlite(path) = warehouse else {
            unreachable!()
        };
        if down {
            let connection = rusqlite::Connection::open(path).unwrap();
            connection.execute_batch("BEGIN EXCLUSIVE").unwrap();
            lock = Some(connection);
        } else if let Some(connection) = lock.take() {
            connection.execute_batch("ROLLBACK").unwrap();
        }
    });
}

/// A loader (re)started while PostgreSQL is down cannot read its offsets:
/// the backlog must still show, counted from the broker's copy of the
/// group's offsets, with `relay_loader_warehouse_up` 0, and everything loads
/// once the server is back.
#[test]
fn lag_shows_when_the_loader_starts_during_a_warehouse_outage() {
    let Some(postgres) = Postgres::start() else { return };
    let mut warehouse = Warehouse::Postgres(postgres);
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), "restarted", 0..500);
    let mut loader = metered_loader(dir.path(), &broker, "restarted", &warehouse, "");
    let gauge = |metrics: &str, name: &str| {
        http_get(metrics, "/metrics").and_then(|(_, body)| metric_sum(&body, name, &[("table", "events")]))
    };
    let first = loader.metrics_address(1);
    let loaded = wait_until(Duration::from_secs(30), || {
        warehouse.count("select count(*) from events") == 500 && gauge(&first, "relay_loader_lag") == Some(0.0)
    });
    assert!(loaded, "{}", loader.log());
    loader.kill9();
    let Warehouse::Postgres(postgres) = &mut warehouse else {
        unreachable!()
    };
    postgres.stop_server();
    produce(&broker, dir.path(), "restarted", 500..800);
    loader.launch();
    let second = loader.metrics_address(2);
    let shown = wait_until(Duration::from_secs(20), || {
        gauge(&second, "relay_loader_lag") == Some(300.0) && gauge(&second, "relay_loader_warehouse_up") == Some(0.0)
    });
    assert!(
        shown,
        "lag {:?}, warehouse_up {:?} while 300 wait and the warehouse is down\n{}",
        gauge(&second, "relay_loader_lag"),
        gauge(&second, "relay_loader_warehouse_up"),
        loader.log()
    );
    postgres.start_server();
    let caught_up = wait_until(Duration::from_secs(60), || {
        warehouse.count("select count(*) from events") == 800 && gauge(&second, "relay_loader_lag") == Some(0.0)
    });
    assert!(caught_up, "{}", loader.log());
}

/// A `[[load]]` with a table and no columns: every event is kept whole.
fn whole_events_are_kept(warehouse: Warehouse, uuid_of_event: &str) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), "bare", 0..20);
    let config = write_config(
        dir.path(),
        &format!(
            "[[load]]\ntopic = \"bare\"\ngroup = \"g\"\nwarehouse = \"{}\"\ntable = \"events\"\n",
            warehouse.url()
        ),
    );
    let output = load_once(&broker, &config, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(warehouse.count("select count(*) from events"), 20);
    let uuids = warehouse.column(&format!("select {uuid_of_event} from events order by relay_offset"));
    let expected: Vec<String> = (0..20).map(|n| format!("event-{n}")).collect();
    assert_eq!(uuids, expected);
}

#[test]
fn sqlite_load_without_columns_keeps_whole_event() {
    let dir = tempfile::tempdir().unwrap();
    whole_events_are_kept(Warehouse::sqlite(dir.path()), "json_extract(event, '$.uuid')");
}

#[test]
fn postgres_load_without_columns_keeps_whole_event() {
    let Some(postgres) = Postgres::start() else { return };
    whole_events_are_kept(Warehouse::Postgres(postgres), "event->>'uuid'");
}

#[test]
fn postgres_a_failed_offset_commit_to_the_broker_is_logged_at_warn() {
    let Some(postgres) = Postgres::start() else { return };
    let mut warehouse = Warehouse::Postgres(postgres);
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), "mirrored", 0..100);
    let config = write_config(
        dir.path(),
        &format!(
            "[[load]]\ntopic = \"mirrored\"\ngroup = \"g\"\nwarehouse = \"{}\"\ntable = \"events\"\n\
             batch_wait_ms = 100\nretry_backoff_max_ms = 500\n{UUID_COLUMN}",
            warehouse.url()
        ),
    );
    let loader = RelayProcess::start(
        vec![
            "load".into(),
            "--broker".into(),
            broker.address.clone(),
            "--config".into(),
            config,
        ],
        &dir.path().join("load.log"),
    );
    let loaded = wait_until(Duration::from_secs(30), || {
        warehouse.count("select count(*) from events") == 100
    });
    assert!(loaded, "{}", loader.log());
    let Warehouse::Postgres(postgres) = &mut warehouse else {
        unreachable!()
    };
    postgres.stop_server();
    produce(&broker, dir.path(), "mirrored", 100..200);
    let waiting = wait_until(Duration::from_secs(30), || {
        loader.log().contains("warehouse unavailable")
    });
    assert!(waiting, "{}", loader.log());
    // The batch commits in the warehouse while the broker is gone: its
    // mirror to the broker (offsets and open gap counts) fails, loudly.
    broker.kill9();
    postgres.start_server();
    let committed = wait_until(Duration::from_secs(30), || {
        warehouse.count("select count(*) from events") == 200
    });
    assert!(committed, "{}", loader.log());
    let warned = wait_until(Duration::from_secs(10), || {
        loader.log().lines().any(|line| {
            line.contains(" WARN ") && line.contains("committing offsets and open gap counts to the broker failed")
        })
    });
    assert!(warned, "{}", loader.log());
}

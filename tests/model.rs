//! The generative whole-pipeline test (`proto-spec/MODEL.md`): proptest
//! draws cases — a table shape and a schedule of application writes,
//! operator actions and faults — runs each against the real `relay broker`,
//! `relay send` and `relay load` processes, and checks the warehouse against
//! a reference model of what was written. A failing case is shrunk to a
//! smaller schedule that still fails, saved as JSON with a shell script
//! beside it under `target/model-failures/`, and replayed with
//! `RELAY_MODEL_REPLAY=<file.json>`. Every regression found so far is kept in
//! `tests/model/regressions/` and replayed on every run.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `RELAY_MODEL_CASES` | cases drawn | 6 |
//! | `RELAY_MODEL_SEED` | the drawing's seed (a number, or `random`) | 28 |
//! | `RELAY_MODEL_SHRINK_SECONDS` | time spent shrinking a failure (0: none) | 300 |
//! | `RELAY_MODEL_REPLAY` | one saved case to run instead | — |

#[path = "model/check.rs"]
mod check;
#[path = "model/reference.rs"]
mod reference;
#[path = "model/schedule.rs"]
mod schedule;
#[path = "model/store.rs"]
mod store;
mod support;
#[path = "model/world.rs"]
mod world;

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use schedule::Case;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) if text == "random" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// Runs one case in a new directory; `Err` describes the broken promise,
/// with the roles' logs, and keeps the directory.
fn run_case(case: &Case) -> Result<(), String> {
    let dir = tempfile::Builder::new().prefix("relay-model-").tempdir().unwrap();
    let started = Instant::now();
    let mut world = world::World::start(case, dir.path());
    let mut outcome = Ok(());
    for (step, action) in case.actions.iter().enumerate() {
        if let Err(problem) = world.apply(action) {
            outcome = Err(format!("step {step} ({action:?}): {problem}"));
            break;
        }
    }
    if outcome.is_ok() {
        outcome = world.finish().map_err(|problem| format!("at the end: {problem}"));
    }
    if outcome.is_ok() {
        let tail = world.tail_quarantined();
        let problems = check::check(
            &world.store,
            &dir.path().join("state"),
            &world.reference,
            case.columns,
            tail,
        );
        if !problems.is_empty() {
            outcome = Err(problems.join("\n"));
        }
    }
    eprintln!(
        "model case: {} actions ({} skipped), {} lines, {}, {:.1} s: {}",
        case.actions.len(),
        world.skipped,
        world.reference.complete.len(),
        world.store.url().split(':').next().unwrap_or_default(),
        started.elapsed().as_secs_f64(),
        if outcome.is_ok() { "ok" } else { "FAILED" }
    );
    if outcome.is_ok() {
        world.store.remove();
    }
    outcome.map_err(|problem| {
        let kept = dir.keep();
        // The reason stays with the roles' logs (a shrink's attempts each keep theirs).
        let _ = std::fs::write(kept.join("failure.txt"), format!("{problem}\n\n{case:#?}\n"));
        format!("{problem}\n{}\n(directory kept: {})", world.logs(), kept.display())
    })
}

fn failures_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("model-failures");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a failing case as JSON and as a shell script; returns the JSON's path.
fn save_failure(case: &Case, seed: u64) -> PathBuf {
    let stem = failures_dir().join(format!("seed-{seed}"));
    let json = stem.with_extension("json");
    std::fs::write(&json, serde_json::to_string_pretty(case).unwrap()).unwrap();
    std::fs::write(stem.with_extension("sh"), schedule::render_script(case)).unwrap();
    json
}

fn replay(path: &Path) {
    let case: Case = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|error| panic!("{}: not a model case: {error}", path.display()));
    if let Err(problem) = run_case(&case) {
        panic!("replay of {} failed:\n{problem}", path.display());
    }
}

/// The tests here take turns: a case's outage stops the PostgreSQL cluster
/// its test started, which the other test must not be using; a turn ends
/// by stopping that cluster.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Turn(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

impl Turn {
    fn take() -> Self {
        Turn(TURN.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        store::stop_cluster();
    }
}

#[test]
fn drawn_schedules_load_every_line_once_with_its_values() {
    let _turn = Turn::take();
    if let Ok(path) = std::env::var("RELAY_MODEL_REPLAY") {
        return replay(Path::new(&path));
    }
    let cases = env_number("RELAY_MODEL_CASES", 6) as u32;
    let seed = env_number("RELAY_MODEL_SEED", 28);
    eprintln!("model: {cases} cases, RELAY_MODEL_SEED={seed}");
    // 0 seconds: report the first failing case as drawn, unshrunk.
    let shrink_seconds = env_number("RELAY_MODEL_SHRINK_SECONDS", 300) as u32;
    let config = Config {
        cases,
        max_shrink_iters: if shrink_seconds == 0 { 0 } else { 1_000 },
        max_shrink_time: shrink_seconds * 1000,
        failure_persistence: None,
        ..Config::default()
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let result = runner.run(&schedule::case(), |case| run_case(&case).map_err(TestCaseError::fail));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => {
            let json = save_failure(&case, seed);
            panic!(
                "model case failed (shrunk to {} actions): {reason}\n{}\nsaved: {} (replay with RELAY_MODEL_REPLAY=that file)",
                case.actions.len(),
                schedule::render_script(&case),
                json.display()
            );
        }
        Err(TestError::Abort(reason)) => panic!("model run aborted: {reason}"),
    }
}

/// Every failure the model found, kept as its minimal schedule; all are
/// run, and every one that fails is listed.
#[test]
fn model_regressions_stay_fixed() {
    let _turn = Turn::take();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/model/regressions");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    let mut failed = Vec::new();
    for path in &paths {
        eprintln!("model regression: {}", path.display());
        let case: Case = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|error| panic!("{}: not a model case: {error}", path.display()));
        if let Err(problem) = run_case(&case) {
            eprintln!("FAILED {}:\n{problem}", path.display());
            failed.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} model regressions failed: {}",
        failed.len(),
        paths.len(),
        failed.join(", ")
    );
}

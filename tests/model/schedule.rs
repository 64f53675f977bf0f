//! What a model case is made of: the warehouse table's shape, and a schedule
//! of application actions, operator actions and faults, drawn by proptest
//! strategies (so a failing schedule shrinks: actions are dropped and their
//! numbers made smaller), saved as JSON to be replayed, and rendered as a
//! shell script that does the same by hand. The meaning of every action is
//! in `proto-spec/MODEL.md`; `world.rs` carries them out.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Log files the application writes, in `logs/`: `a.log` and `b.log` are
/// plain files, `c.log` is a symbolic link to `targets/c.log` (as
/// `/var/log/containers/*.log` are).
pub const FILES: [&str; 3] = ["a", "b", "c"];
/// The file that is a symbolic link.
pub const SYMLINKED_FILE: u8 = 2;
/// Lines one `Append` writes at most: enough to fill several read chunks
/// and batches, few enough that a case stays a few seconds long.
pub const APPEND_LINES_MAX: u16 = 200;
/// Actions in one schedule at most.
pub const ACTIONS_MAX: usize = 24;

/// A role of the pipeline, each its own process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Broker,
    Sender,
    Loader,
}

/// How the warehouse's table came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableSetup {
    /// The loader makes it (`create_table = true`).
    Created,
    /// The operator made it first, its dedup key a `PRIMARY KEY`.
    PrimaryKey,
    /// The operator made it first, its dedup key `UNIQUE` under a name of their own.
    UniqueNamed,
}

/// Where the rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Warehouse {
    Sqlite,
    /// A database of its own on the run's throwaway PostgreSQL cluster.
    Postgres,
}

/// What the `[[load]]` section asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Columns {
    /// Typed columns for each field of the event.
    Typed,
    /// A `table` and no columns: the whole event must still be kept.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// The application appends `lines` complete lines to `file`; `ids`:
    /// each carries its own event id (else the source position is the key).
    Append {
        file: u8,
        lines: u16,
        ids: bool,
    },
    /// One line longer than a read chunk (70 KiB).
    AppendLong {
        file: u8,
    },
    /// One line over the sender's `line_bytes_max` (256 KiB here): it must
    /// be set aside whole in the sender's rejects.
    AppendOverlong {
        file: u8,
    },
    /// A 300-byte banner that is not JSON (the same at every start): the
    /// loader must reject it with its bytes.
    Banner {
        file: u8,
    },
    /// The first half of a line, without its newline.
    StartPartial {
        file: u8,
    },
    /// The rest of the pending half line, and its newline.
    FinishPartial {
        file: u8,
    },
    /// `mv F.log F.log.N`; the application goes on in a new `F.log`.
    RotateRename {
        file: u8,
    },
    /// `cp F.log F.log.N && : > F.log`, with the application paused.
    CopyTruncate {
        file: u8,
    },
    /// `: > F.log` once every line in it is loaded: the application starts
    /// the file over (the same banner comes back with the next `Banner`).
    Rewrite {
        file: u8,
    },
    /// `gzip` of the oldest rotated copy of `F`, once its complete lines are
    /// loaded (logrotate's `compress`): the `.gz` matches the paths, and
    /// must not come back as lines.
    Compress {
        file: u8,
    },
    /// `rm` of the oldest rotated copy of `F`, once its complete lines are loaded.
    DeleteRotated {
        file: u8,
    },
    /// `rm F.log` (its unloaded complete lines are waited for first).
    Delete {
        file: u8,
    },
    /// `kill -9` of a role, started again at once.
    Kill {
        role: Role,
    },
    /// SIGTERM (a clean stop: lines in flight drained, the batch in hand
    /// finished), then started again.
    Restart {
        role: Role,
    },
    /// The sender stopped cleanly and started with its paths written the
    /// other way (`logs/*.log*` or one pattern per file): the same files, so
    /// nothing may be sent again or skipped.
    ChangeGlob,
    /// `kill -9` of a role, left down until `Start` or the end.
    Stop {
        role: Role,
    },
    Start {
        role: Role,
    },
    /// The warehouse is held (an exclusive lock) while `lines` are appended:
    /// the loader's lag gauge must show them.
    WarehouseOutage {
        lines: u16,
    },
    /// `relay load --only-table kinds --until-end --from earliest`, with a
    /// group of its own or (`own_group = false`) without `--group`, which
    /// must be refused (exit 2).
    Backfill {
        own_group: bool,
    },
    /// `kill -9` of the broker, one byte flipped in the middle of a sealed
    /// segment (bit rot), the broker started again: the batch there may be
    /// lost, but only it, and only as a gap the loader records.
    CorruptSealed {
        pick: u16,
    },
    /// Waits until every complete line so far is loaded.
    Settle,
    /// Time passes.
    Pause {
        ms: u16,
    },
}

/// One case: the table's shape and what happens to the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub warehouse: Warehouse,
    pub table: TableSetup,
    pub columns: Columns,
    /// Seeds the field values of every line (timestamps, integers, text).
    pub values_seed: u64,
    pub actions: Vec<Action>,
}

fn file() -> impl Strategy<Value = u8> {
    0..FILES.len() as u8
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Broker), Just(Role::Sender), Just(Role::Loader)]
}

/// Application actions carry most of the weight: faults need lines to hurt.
pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => (file(), 1..=APPEND_LINES_MAX, any::<bool>()).prop_map(|(file, lines, ids)| Action::Append { file, lines, ids }),
        1 => file().prop_map(|file| Action::AppendLong { file }),
        1 => file().prop_map(|file| Action::AppendOverlong { file }),
        2 => file().prop_map(|file| Action::Banner { file }),
        2 => file().prop_map(|file| Action::StartPartial { file }),
        2 => file().prop_map(|file| Action::FinishPartial { file }),
        2 => file().prop_map(|file| Action::RotateRename { file }),
        2 => file().prop_map(|file| Action::CopyTruncate { file }),
        2 => file().prop_map(|file| Action::Rewrite { file }),
        1 => file().prop_map(|file| Action::Compress { file }),
        1 => file().prop_map(|file| Action::DeleteRotated { file }),
        1 => file().prop_map(|file| Action::Delete { file }),
        3 => role().prop_map(|role| Action::Kill { role }),
        1 => role().prop_map(|role| Action::Restart { role }),
        1 => Just(Action::ChangeGlob),
        2 => role().prop_map(|role| Action::Stop { role }),
        2 => role().prop_map(|role| Action::Start { role }),
        1 => (1..=50u16).prop_map(|lines| Action::WarehouseOutage { lines }),
        1 => any::<bool>().prop_map(|own_group| Action::Backfill { own_group }),
        1 => any::<u16>().prop_map(|pick| Action::CorruptSealed { pick }),
        2 => Just(Action::Settle),
        2 => (1..=1_000u16).prop_map(|ms| Action::Pause { ms }),
    ]
}

/// Actions come first: proptest shrinks a tuple's parts in order, and a
/// shorter schedule is what a reader needs; the values seed never shrinks
/// (a smaller seed is no simpler a case).
pub fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(action(), 1..=ACTIONS_MAX),
        prop_oneof![2 => Just(Warehouse::Sqlite), 1 => Just(Warehouse::Postgres)],
        prop_oneof![
            2 => Just(TableSetup::Created),
            1 => Just(TableSetup::PrimaryKey),
            1 => Just(TableSetup::UniqueNamed)
        ],
        prop_oneof![3 => Just(Columns::Typed), 1 => Just(Columns::None)],
        any::<u64>().no_shrink(),
    )
        .prop_map(|(actions, warehouse, table, columns, values_seed)| Case {
            warehouse,
            table,
            columns,
            values_seed,
            actions,
        })
}

impl Action {
    /// The shell line(s) that do this by hand (`render_script`).
    fn shell(&self) -> String {
        let name = |file: &u8| FILES[*file as usize];
        match self {
            Action::Append { file, lines, ids } => {
                format!("append {} {lines} {}", name(file), if *ids { "ids" } else { "no-ids" })
            }
            Action::AppendLong { file } => format!("append_long {}", name(file)),
            Action::AppendOverlong { file } => format!("append_overlong {}", name(file)),
            Action::Compress { file } => format!(
                "settle; gzip \"$(ls -tr logs/{}.log.* | grep -v gz | head -1)\"",
                name(file)
            ),
            Action::Banner { file } => format!("banner {}", name(file)),
            Action::StartPartial { file } => format!("printf '{{\"seq\":0,\"half\":' >> logs/{}.log", name(file)),
            Action::FinishPartial { file } => format!("printf '1}}\\n' >> logs/{}.log", name(file)),
            Action::RotateRename { file } => format!("mv logs/{0}.log logs/{0}.log.$((++n))", name(file)),
            Action::CopyTruncate { file } => {
                format!("cp logs/{0}.log logs/{0}.log.$((++n)) && : > logs/{0}.log", name(file))
            }
            Action::Rewrite { file } => format!("settle; : > logs/{}.log", name(file)),
            Action::DeleteRotated { file } => format!("settle; rm \"$(ls -tr logs/{}.log.* | head -1)\"", name(file)),
            Action::Delete { file } => format!("settle; rm logs/{}.log", name(file)),
            Action::Kill { role } => format!("kill -9 ${role:?}_pid; start {role:?}"),
            Action::Restart { role } => format!("kill -TERM ${role:?}_pid; wait; start {role:?}"),
            Action::ChangeGlob => "kill -TERM $Sender_pid; wait; toggle_paths relay.toml; start Sender".into(),
            Action::Stop { role } => format!("kill -9 ${role:?}_pid"),
            Action::Start { role } => format!("start {role:?}"),
            Action::WarehouseOutage { lines } => {
                format!("warehouse_down; append a {lines} ids; wait_for_lag {lines}; warehouse_up")
            }
            Action::Backfill { own_group } => format!(
                "relay load --config relay.toml --only-table kinds --until-end --from earliest{}",
                if *own_group {
                    " --group backfill-$((++n))"
                } else {
                    "   # must exit 2"
                }
            ),
            Action::CorruptSealed { pick } => {
                format!("kill -9 $Broker_pid; flip_middle_byte sealed_segment {pick}; start Broker")
            }
            Action::Settle => "settle".into(),
            Action::Pause { ms } => format!("sleep {}", f64::from(*ms) / 1000.0),
        }
    }
}

/// A shell script that replays `case` by hand against the `relay` binary;
/// the helper functions it calls (`append`, `settle`, `start`) are described
/// in `proto-spec/MODEL.md`.
pub fn render_script(case: &Case) -> String {
    let mut script = format!(
        "#!/usr/bin/env bash\n# relay model case: {:?} warehouse, table {:?}, columns {:?}, values seed {}\n\
         # replay: RELAY_MODEL_REPLAY=<this case's .json> cargo test --test model -- --nocapture\n\
         set -e\n",
        case.warehouse, case.table, case.columns, case.values_seed
    );
    for action in &case.actions {
        script.push_str(&action.shell());
        script.push('\n');
    }
    script.push_str("settle  # then: every complete line once, values equal, rejects and gaps accounted\n");
    script
}

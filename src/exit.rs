//! Exit codes of every `relay` command.

/// Success.
pub const SUCCESS: i32 = 0;
/// A checked condition failed (for example lag over `--max`), or the job failed.
pub const FAILURE: i32 = 1;
/// Usage or configuration error.
pub const USAGE: i32 = 2;
/// The broker or the warehouse cannot be reached.
pub const UNREACHABLE: i32 = 3;
/// Stopped by SIGINT (Ctrl-C) before the end of the work, as shells count it (128 + 2).
pub const INTERRUPTED: i32 = 130;

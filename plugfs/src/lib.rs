//! # relay-plugfs: a filesystem that can lose power
//!
//! A FUSE filesystem for tests, held in memory, that tracks what `fsync`
//! made durable and, when told to pull the plug, keeps only that (optionally
//! with torn, half-written unsynced pages), then fails every request like a
//! dead disk. `kill -9` leaves the page cache intact and so cannot show a
//! missing or misplaced fsync; this can. The model (what counts as durable)
//! is written down in `proto-spec/POWER_LOSS.md`.
//!
//! # Layout
//! - `model.rs`: inodes with live and durable state; the durability rules.
//! - `image.rs`: a tree as values, read from and written to a real directory.
//! - `fs.rs`: FUSE requests onto the model.
//! - `mount.rs`: mount, pull the plug, unmount.
//! - `rng.rs`: the seeded generator behind torn images and test schedules.

mod fs;
mod image;
mod model;
mod mount;
mod rng;

pub use fs::Counts;
pub use image::Image;
pub use model::{Loss, PAGE_BYTES, SECTOR_BYTES};
pub use mount::{fuse_available, PlugFs, UNMOUNT_WAIT_MAX};
pub use rng::Rng;

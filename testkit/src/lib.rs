//! relay-testkit: what the workspace's tests share (a dev-dependency only,
//! never published).
//!
//! # Layout
//! - [`external`]: an external tool named by an environment variable, or a
//!   loud SKIPPED line (a panic in CI, where every part must be present).
//! - [`postgres`]: a throwaway PostgreSQL cluster for one test.

pub mod postgres;

use std::path::PathBuf;

pub use postgres::Postgres;

/// The external tool named by `variable`, or `None` after a loud SKIPPED line
/// (a panic in CI, where every part must be present).
pub fn external(variable: &str, what: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable).map(PathBuf::from).filter(|p| p.exists()) {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required in CI: run the tests through scripts/test.sh (it sets {variable})");
    }
    eprintln!("SKIPPED: {what} not available ({variable} unset); run scripts/test.sh to install it");
    None
}

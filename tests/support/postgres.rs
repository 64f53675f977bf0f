//! A throwaway PostgreSQL cluster for one test: the workspace's one helper
//! ([`relay_testkit::postgres`]), under the path the root tests use.

pub use relay_testkit::postgres::Postgres;

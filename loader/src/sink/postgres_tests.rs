//! Against a throwaway PostgreSQL 15 cluster ([`relay_testkit::Postgres`]:
//! `RELAY_PG_BIN`, skipped without it outside CI).

use super::*;
use relay_testkit::Postgres;

async fn synchronous_commit(sink: &mut PostgresSink) -> String {
    let client = sink.client().await.unwrap();
    client.query_one("SHOW synchronous_commit", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn every_session_commits_synchronously_whatever_the_server_default() {
    let Some(cluster) = Postgres::start_with(&[("synchronous_commit", "off")]) else {
        return;
    };
    let config = LoaderConfig::new(vec!["t".into()], "g", &cluster.url(), "events");
    let mut sink = PostgresSink::open(&cluster.url(), &config).await.unwrap();
    assert_eq!(
        synchronous_commit(&mut sink).await,
        "on",
        "the session kept the server's off"
    );
    // A reconnected session is pinned too.
    sink.client = None;
    assert_eq!(
        synchronous_commit(&mut sink).await,
        "on",
        "a reconnected session kept the server's off"
    );
}

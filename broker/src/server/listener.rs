//! Accepts connections until shutdown, within `connections_max`; then waits
//! a bounded time for open connections to finish their in-flight requests.
//! On a TLS listener each connection's handshake runs in its own task, within
//! `handshake_timeout_ms`, so a slow or silent client never holds up accepting.

use super::connection;
use crate::context::Context;
use crate::metrics;
use relay_proto::stop::Stop;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How long shutdown waits for in-flight requests (a fetch long-poll is at
/// most its max_wait_ms, usually 500 ms; a JoinGroup can wait longer and is cut).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub async fn run(listener: TcpListener, ctx: Context, mut stop: Stop) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stop.stopped() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors or similar: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.load(Ordering::Acquire) >= ctx.config.connections_max {
            tracing::warn!(%peer, limit = ctx.config.connections_max, "refusing connection: connections_max reached");
            metrics::rejected("connections_max");
            drop(stream);
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        metrics::connection_opened();
        let (ctx, stop, open) = (Arc::clone(&ctx), stop.clone(), Arc::clone(&open));
        let _ = stream.set_nodelay(true);
        connections.spawn(async move {
            match &ctx.security.tls {
                None => {
                    let (reader, writer) = stream.into_split();
                    connection::serve(Arc::clone(&ctx), reader, writer, peer, stop).await
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(ctx.security.tls_handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let (reader, writer) = tokio::io::split(stream);
                            connection::serve(Arc::clone(&ctx), reader, writer, peer, stop).await
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(%peer, %error, "closing connection: TLS handshake failed");
                            metrics::rejected("tls_handshake");
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "closing connection: TLS handshake not finished within handshake_timeout_ms");
                            metrics::rejected("tls_handshake");
                        }
                    }
                }
            }
            open.fetch_sub(1, Ordering::AcqRel);
            metrics::connection_closed();
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "cutting connections still busy after the shutdown grace period"
        );
        connections.abort_all();
    }
}

//! One client connection: a reader that takes frames in order and a writer
//! that sends replies in the same order (Kafka guarantees responses in
//! request order per connection). Requests are handled one after another, as
//! Kafka's broker does, so a producer's batches reach the log in the order it
//! sent them; only waiting for durability runs on, so a pipelining producer's
//! fsyncs overlap.
//!
//! A bad frame, an unknown API or an undecodable request closes this
//! connection, logged with the peer address; nothing else is affected.
//!
//! On a SASL listener a connection starts unauthenticated: it may send only
//! ApiVersions, SaslHandshake and SaslAuthenticate, small ones, and must
//! finish within `authentication_timeout_ms` (see [`super::session`]).
//!
//! Memory is bounded two ways: a request's body is read only once the
//! broker-wide request budget (`requests_memory_bytes_max`) has room for it,
//! and a client that does not read its responses stops being read from once
//! `connection_send_bytes_max` of them wait to be sent.

use super::dispatch::dispatch;
use super::frame::{read_body, read_length, FrameError};
use super::request::{DispatchError, Reply};
use super::session::Session;
use crate::context::Context;
use crate::metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Replies queued per connection before the reader stops reading: librdkafka
/// keeps at most 5 produce requests in flight per partition and Java clients
/// 5 per connection, so 64 never throttles a well-behaved client while bounding
/// what one connection can hold.
pub const IN_FLIGHT_REQUESTS_MAX: usize = 64;

/// A reply on its way to the writer, with its share of this connection's
/// send budget, given back once it is written.
struct Queued {
    reply: Reply,
    _send_memory: Option<OwnedSemaphorePermit>,
}

/// Serves one connection until it closes or shutdown: the two halves of a
/// TCP stream (`into_split`, no lock between them) or of a TLS stream.
pub async fn serve<R, W>(ctx: Context, mut reader: R, writer: W, peer: SocketAddr, mut shutdown: watch::Receiver<bool>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut session = Session::new(&ctx.security);
    let authentication_deadline = ctx
        .security
        .sasl
        .as_ref()
        .map(|users| Instant::now() + users.authentication_timeout);
    let (replies, queue) = mpsc::channel(IN_FLIGHT_REQUESTS_MAX);
    let writer = tokio::spawn(write_replies(writer, queue, peer));
    let idle = Duration::from_millis(ctx.config.idle_timeout_ms);
    let request_bytes_max = ctx.config.request_bytes_max;
    let send_bytes_max = ctx.config.connection_send_bytes_max;
    let send_budget = Arc::new(Semaphore::new(send_bytes_max));
    loop {
        let (wait, authenticating) = match authentication_deadline {
            Some(deadline) if !session.may_use_broker() => {
                (deadline.saturating_duration_since(Instant::now()).min(idle), true)
            }
            _ => (idle, false),
        };
        let bytes_max = session.request_bytes_max(request_bytes_max);
        let length = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            length = tokio::time::timeout(wait, read_length(&mut reader, bytes_max)) => length,
        };
        let length = match length {
            Err(_) if authenticating => {
                tracing::warn!(%peer, "closing connection: not authenticated within authentication_timeout_ms");
                metrics::rejected("unauthenticated");
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection");
                break;
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(length))) => length,
            Ok(Err(FrameError::Io(error))) => {
                tracing::debug!(%peer, %error, "connection closed by the client");
                break;
            }
            Ok(Err(error)) => {
                tracing::warn!(%peer, %error, "closing connection: bad frame");
                metrics::rejected("bad_frame");
                break;
            }
        };
        // Backpressure: the body is read only once the broker-wide request
        // budget has room for it; until then this client is not read from.
        let request_memory = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            permit = Arc::clone(&ctx.request_memory).acquire_many_owned(length as u32) => {
                permit.expect("the request budget is never closed")
            }
        };
        let frame = match tokio::time::timeout(idle, read_body(&mut reader, length)).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(error)) => {
                tracing::warn!(%peer, %error, "closing connection: bad frame");
                metrics::rejected("bad_frame");
                break;
            }
            Err(_) => {
                tracing::warn!(%peer, length, "closing connection: request body not sent within the idle timeout");
                metrics::rejected("bad_frame");
                break;
            }
        };
        let dispatched = dispatch(&ctx, &mut session, peer, frame).await;
        // The request's bytes are gone once it is handled (a produce's
        // records are in the log; only its small answer may still wait).
        drop(request_memory);
        match dispatched {
            Ok(reply) => {
                // A client that does not read its responses stops being read
                // from once this connection holds send_bytes_max unsent bytes
                // (one larger response still goes, alone).
                let last = matches!(reply, Reply::Last(_));
                let send_memory = match &reply {
                    Reply::Ready(bytes) | Reply::Last(bytes) => {
                        let permits = bytes.len().min(send_bytes_max) as u32;
                        match Arc::clone(&send_budget).acquire_many_owned(permits).await {
                            Ok(permit) => Some(permit),
                            Err(_) => break,
                        }
                    }
                    _ => None,
                };
                let queued = Queued {
                    reply,
                    _send_memory: send_memory,
                };
                if replies.send(queued).await.is_err() || last {
                    break;
                }
            }
            Err(error @ DispatchError::Unauthenticated { .. }) => {
                tracing::warn!(%peer, %error, "closing connection: not authenticated");
                metrics::rejected("unauthenticated");
                break;
            }
            Err(error) => {
                tracing::warn!(%peer, %error, "closing connection: bad request");
                metrics::rejected("bad_request");
                break;
            }
        }
    }
    drop(replies);
    let _ = writer.await;
}

async fn write_replies<W: AsyncWrite + Unpin>(mut writer: W, mut queue: mpsc::Receiver<Queued>, peer: SocketAddr) {
    while let Some(queued) = queue.recv().await {
        let bytes = match queued.reply {
            Reply::Nothing => continue,
            Reply::Ready(bytes) | Reply::Last(bytes) => bytes,
            Reply::Later(handle) => match handle.await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(error)) => {
                    tracing::error!(%peer, %error, "closing connection: response failed");
                    break;
                }
                Err(error) => {
                    tracing::error!(%peer, %error, "closing connection: response task failed");
                    break;
                }
            },
        };
        // flush: a TLS stream may keep the tail of a large response in its
        // buffer when the socket was full (a no-op on plain TCP).
        let written = match writer.write_all(&bytes).await {
            Ok(()) => writer.flush().await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            tracing::debug!(%peer, %error, "client went away");
            break;
        }
    }
    let _ = writer.shutdown().await;
}

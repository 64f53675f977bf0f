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
use super::timing::Timing;
use crate::context::Context;
use crate::metrics;
use bytes::Bytes;
use relay_proto::stop::Stop;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
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
    timing: Timing,
    _send_memory: Option<OwnedSemaphorePermit>,
}

/// Serves one connection until it closes or shutdown: the two halves of a
/// TCP stream (`into_split`, no lock between them) or of a TLS stream.
pub async fn serve<R, W>(ctx: Context, reader: R, writer: W, peer: SocketAddr, stop: Stop)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (replies, queue) = mpsc::channel(IN_FLIGHT_REQUESTS_MAX);
    let slow = ctx.config.slow_request_ms.map(Duration::from_millis);
    let writer = tokio::spawn(write_replies(writer, queue, peer, slow));
    let send_bytes_max = ctx.config.connection_send_bytes_max;
    let send_budget = Arc::new(Semaphore::new(send_bytes_max));
    let mut requests = Requests::new(ctx, reader, peer, stop);
    while let Some((frame, request_memory)) = requests.next().await {
        let mut timing = Timing::read_now();
        let dispatched = requests.handle(frame, &mut timing).await;
        // The request's bytes are gone once it is handled (a produce's
        // records are in the log; only its small answer may still wait).
        drop(request_memory);
        let Some(reply) = reply_or_close(dispatched, peer) else {
            break;
        };
        if !queue_reply(reply, timing, &replies, &send_budget, send_bytes_max).await {
            break;
        }
    }
    drop(replies);
    let _ = writer.await;
}

/// The reading side of one connection: what its loop keeps between requests.
struct Requests<R> {
    ctx: Context,
    reader: R,
    peer: SocketAddr,
    session: Session,
    /// When a connection still unauthenticated is closed (SASL listeners only).
    authentication_deadline: Option<Instant>,
    idle: Duration,
    stop: Stop,
}

impl<R: AsyncRead + Unpin> Requests<R> {
    fn new(ctx: Context, reader: R, peer: SocketAddr, stop: Stop) -> Self {
        let authentication_deadline = ctx
            .security
            .sasl
            .as_ref()
            .map(|users| Instant::now() + users.authentication_timeout);
        Self {
            session: Session::new(&ctx.security),
            idle: Duration::from_millis(ctx.config.idle_timeout_ms),
            ctx,
            reader,
            peer,
            authentication_deadline,
            stop,
        }
    }

    /// The next request frame, with its share of the broker-wide request
    /// budget; `None` when the connection is to close (each reason logged).
    async fn next(&mut self) -> Option<(Bytes, OwnedSemaphorePermit)> {
        let length = self.read_length().await?;
        let request_memory = self.reserve_request_memory(length).await?;
        let frame = self.read_body(length).await?;
        Some((frame, request_memory))
    }

    /// Routes one frame to its handler, in this connection's SASL state.
    async fn handle(&mut self, frame: Bytes, timing: &mut Timing) -> Result<Reply, DispatchError> {
        dispatch(&self.ctx, &mut self.session, self.peer, frame, timing).await
    }

    /// How long to wait for the next length prefix, and whether the wait is
    /// the authentication deadline (not yet authenticated) rather than idleness.
    fn length_wait(&self) -> (Duration, bool) {
        match self.authentication_deadline {
            Some(deadline) if !self.session.may_use_broker() => {
                (deadline.saturating_duration_since(Instant::now()).min(self.idle), true)
            }
            _ => (self.idle, false),
        }
    }

    async fn read_length(&mut self) -> Option<usize> {
        let (wait, authenticating) = self.length_wait();
        let bytes_max = self.session.request_bytes_max(self.ctx.config.request_bytes_max);
        let length = tokio::select! {
            biased;
            _ = self.stop.stopped() => return None,
            length = tokio::time::timeout(wait, read_length(&mut self.reader, bytes_max)) => length,
        };
        let peer = self.peer;
        match length {
            Err(_) if authenticating => {
                tracing::warn!(%peer, "closing connection: not authenticated within authentication_timeout_ms");
                metrics::rejected("unauthenticated");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection");
                None
            }
            Ok(Ok(length)) => length,
            Ok(Err(FrameError::Io(error))) => {
                tracing::debug!(%peer, %error, "connection closed by the client");
                None
            }
            Ok(Err(error)) => {
                tracing::warn!(%peer, %error, "closing connection: bad frame");
                metrics::rejected("bad_frame");
                None
            }
        }
    }

    /// Backpressure: the body is read only once the broker-wide request
    /// budget has room for it; until then this client is not read from.
    async fn reserve_request_memory(&mut self, length: usize) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            biased;
            _ = self.stop.stopped() => None,
            permit = Arc::clone(&self.ctx.request_memory).acquire_many_owned(length as u32) => {
                Some(permit.expect("the request budget is never closed"))
            }
        }
    }

    async fn read_body(&mut self, length: usize) -> Option<Bytes> {
        let peer = self.peer;
        match tokio::time::timeout(self.idle, read_body(&mut self.reader, length)).await {
            Ok(Ok(frame)) => Some(frame),
            Ok(Err(error)) => {
                tracing::warn!(%peer, %error, "closing connection: bad frame");
                metrics::rejected("bad_frame");
                None
            }
            Err(_) => {
                tracing::warn!(%peer, length, "closing connection: request body not sent within the idle timeout");
                metrics::rejected("bad_frame");
                None
            }
        }
    }
}

/// The reply to send, or `None` when the request closes the connection
/// (logged and counted by reason).
fn reply_or_close(dispatched: Result<Reply, DispatchError>, peer: SocketAddr) -> Option<Reply> {
    match dispatched {
        Ok(reply) => Some(reply),
        Err(error @ DispatchError::Unauthenticated { .. }) => {
            tracing::warn!(%peer, %error, "closing connection: not authenticated");
            metrics::rejected("unauthenticated");
            None
        }
        Err(error) => {
            tracing::warn!(%peer, %error, "closing connection: bad request");
            metrics::rejected("bad_request");
            None
        }
    }
}

/// Queues `reply` for the writer; `false` when the connection is to close
/// (the writer is gone, or the reply was the last one). A client that does
/// not read its responses stops being read from once this connection holds
/// `send_bytes_max` unsent bytes (one larger response still goes, alone).
async fn queue_reply(
    reply: Reply,
    timing: Timing,
    replies: &mpsc::Sender<Queued>,
    send_budget: &Arc<Semaphore>,
    send_bytes_max: usize,
) -> bool {
    let last = matches!(reply, Reply::Last(_));
    let send_memory = match &reply {
        Reply::Ready(bytes) | Reply::Last(bytes) => {
            let permits = bytes.len().min(send_bytes_max) as u32;
            match Arc::clone(send_budget).acquire_many_owned(permits).await {
                Ok(permit) => Some(permit),
                Err(_) => return false,
            }
        }
        _ => None,
    };
    let queued = Queued {
        reply,
        timing,
        _send_memory: send_memory,
    };
    replies.send(queued).await.is_ok() && !last
}

/// Writes each reply in request order; once one is flushed, its request's
/// stages are recorded (`slow`: `slow_request_ms`, see [`super::timing`]).
async fn write_replies<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queue: mpsc::Receiver<Queued>,
    peer: SocketAddr,
    slow: Option<Duration>,
) {
    while let Some(queued) = queue.recv().await {
        let (bytes, durable) = match queued.reply {
            Reply::Nothing => continue,
            Reply::Ready(bytes) | Reply::Last(bytes) => (bytes, None),
            Reply::Later(handle) => match handle.await {
                Ok(Ok(late)) => (late.frame, Some(late.at)),
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
        queued.timing.finish(durable, std::time::Instant::now(), slow, peer);
    }
    let _ = writer.shutdown().await;
}

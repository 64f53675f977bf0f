//! One client connection: a reader that takes frames in order and a writer
//! that sends replies in the same order (Kafka guarantees responses in
//! request order per connection). Requests are handled one after another, as
//! Kafka's broker does, so a producer's batches reach the log in the order it
//! sent them; only waiting for durability runs on, so a pipelining producer's
//! fsyncs overlap.
//!
//! A bad frame, an unknown API or an undecodable request closes this
//! connection, logged with the peer address; nothing else is affected.

use super::context::Context;
use super::dispatch::{dispatch, Reply};
use super::frame::{read_frame, FrameError};
use crate::metrics;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Replies queued per connection before the reader stops reading: librdkafka
/// keeps at most 5 produce requests in flight per partition and Java clients
/// 5 per connection, so 64 never throttles a well-behaved client while bounding
/// what one connection can hold.
pub const IN_FLIGHT_REQUESTS_MAX: usize = 64;

pub async fn serve(ctx: Context, stream: TcpStream, peer: SocketAddr, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let (replies, queue) = mpsc::channel(IN_FLIGHT_REQUESTS_MAX);
    let writer = tokio::spawn(write_replies(writer, queue, peer));
    let idle = Duration::from_millis(ctx.config.idle_timeout_ms);
    let request_bytes_max = ctx.config.request_bytes_max;
    loop {
        let frame = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            frame = tokio::time::timeout(idle, read_frame(&mut reader, request_bytes_max)) => frame,
        };
        let frame = match frame {
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection");
                break;
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(frame))) => frame,
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
        match dispatch(&ctx, peer, frame).await {
            Ok(reply) => {
                if replies.send(reply).await.is_err() {
                    break;
                }
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

async fn write_replies(mut writer: OwnedWriteHalf, mut queue: mpsc::Receiver<Reply>, peer: SocketAddr) {
    while let Some(reply) = queue.recv().await {
        let bytes = match reply {
            Reply::Nothing => continue,
            Reply::Ready(bytes) => bytes,
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
        if let Err(error) = writer.write_all(&bytes).await {
            tracing::debug!(%peer, %error, "client went away");
            break;
        }
    }
    let _ = writer.shutdown().await;
}

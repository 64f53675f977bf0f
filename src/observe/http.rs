//! The `--metrics ADDR` endpoint: a minimal HTTP/1.1 server for Prometheus
//! scrapes and health probes. `GET /metrics` answers the text exposition
//! format; `GET /health` answers 200 with one line per check, or 503 when any
//! check fails. Every request gets one response and the connection is closed.
//! A request head larger than [`REQUEST_HEAD_BYTES_MAX`] or slower than
//! [`REQUEST_TIMEOUT`] is answered 400/408 and dropped; nothing else notices.

use super::Observer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head accepted (scrapers send a few hundred bytes).
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often histogram samples are folded into buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Binds `address` and serves until the runtime stops. Returns the bound
/// address (port 0 picks a free one).
pub async fn serve(address: &str, observer: Arc<Observer>) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen for metrics on {address}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("metrics listener on {address}: {e}"))?;
    let upkeep = Arc::clone(&observer);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            ticker.tick().await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let observer = Arc::clone(&observer);
            tokio::spawn(async move {
                if let Err(error) = answer(stream, &observer).await {
                    tracing::debug!(%peer, %error, "metrics request failed");
                }
            });
        }
    });
    tracing::info!(listen = %local, "serving /metrics and /health");
    Ok(local)
}

async fn answer(mut stream: TcpStream, observer: &Observer) -> std::io::Result<()> {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => return respond(&mut stream, 400, "text/plain", "request head too large\n").await,
        Ok(Err(error)) => return Err(error),
        Err(_) => return respond(&mut stream, 408, "text/plain", "request timed out\n").await,
    };
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    if method != "GET" {
        return respond(&mut stream, 405, "text/plain", "only GET is served\n").await;
    }
    match path {
        "/metrics" => {
            let observer_text = observer.render();
            respond(
                &mut stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                &observer_text,
            )
            .await
        }
        "/health" => {
            let checks = observer.health();
            let healthy = checks.iter().all(|(_, outcome)| outcome.is_ok());
            let mut body = String::from(if healthy { "ok\n" } else { "unhealthy\n" });
            for (name, outcome) in checks {
                match outcome {
                    Ok(()) => body.push_str(&format!("{name}: ok\n")),
                    Err(reason) => body.push_str(&format!("{name}: {reason}\n")),
                }
            }
            respond(&mut stream, if healthy { 200 } else { 503 }, "text/plain", &body).await
        }
        _ => respond(&mut stream, 404, "text/plain", "not found: try /metrics or /health\n").await,
    }
}

/// Reads up to the blank line that ends the head; `None` when it is too large.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() > REQUEST_HEAD_BYTES_MAX {
            return Ok(None);
        }
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

async fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

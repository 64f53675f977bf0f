//! The `--metrics ADDR` endpoint: hyper's HTTP/1.1 server answering
//! Prometheus scrapes and health probes. `GET /metrics` answers the text
//! exposition format; `GET /health` answers 200 with one line per check, or
//! 503 when any check fails; other paths get 404 and other methods 405.
//! Every connection carries one request and is closed after its response.
//!
//! A request head larger than [`REQUEST_HEAD_BYTES_MAX`] is answered 431 by
//! hyper; a client slower than [`REQUEST_TIMEOUT`] to send its head is
//! disconnected. Nothing else notices either. This module only reads the
//! [`Observer`]: it never records metrics of its own requests.

use super::Observer;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Longest request head accepted: scrapers send a few hundred bytes, so
/// 8 KiB is twenty times what Prometheus sends, and hyper's smallest buffer.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// hyper refuses a read buffer below 8 KiB (it asserts at start-up).
const _: () = assert!(REQUEST_HEAD_BYTES_MAX >= 8 * 1024);
/// How long a client may take to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often histogram samples are folded into buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors), so the loop
/// does not spin while the process is short of them.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_CONTENT_TYPE: &str = "text/plain";

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
            match listener.accept().await {
                Ok((stream, peer)) => {
                    tokio::spawn(serve_connection(stream, peer, Arc::clone(&observer)));
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                }
            }
        }
    });
    tracing::info!(listen = %local, "serving /metrics and /health");
    Ok(local)
}

/// One request, one response, then the connection closes (`keep_alive(false)`).
async fn serve_connection(stream: TcpStream, peer: SocketAddr, observer: Arc<Observer>) {
    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
        let response = answer(&request, &observer);
        async move { Ok::<_, Infallible>(response) }
    });
    let outcome = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .max_buf_size(REQUEST_HEAD_BYTES_MAX)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = outcome {
        tracing::debug!(%peer, %error, "metrics request failed");
    }
}

fn answer<B>(request: &Request<B>, observer: &Observer) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT_CONTENT_TYPE,
            "only GET is served\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => respond(StatusCode::OK, METRICS_CONTENT_TYPE, observer.render()),
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
            let status = if healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond(status, TEXT_CONTENT_TYPE, body)
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            TEXT_CONTENT_TYPE,
            "not found: try /metrics or /health\n".into(),
        ),
    }
}

/// hyper adds `Content-Length` (the body is one buffer) and, with keep-alive
/// off, `Connection: close`.
fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, target: &str) -> Request<()> {
        Request::builder().method(method).uri(target).body(()).unwrap()
    }

    #[test]
    fn only_get_is_served() {
        let observer = Observer::global();
        for method in [Method::HEAD, Method::POST, Method::PUT] {
            let response = answer(&request(method, "/metrics"), &observer);
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        }
    }

    #[test]
    fn paths_route_ignoring_the_query() {
        let observer = Observer::global();
        let metrics = answer(&request(Method::GET, "/metrics?name=x"), &observer);
        assert_eq!(metrics.status(), StatusCode::OK);
        assert_eq!(metrics.headers()[CONTENT_TYPE], METRICS_CONTENT_TYPE);
        let other = answer(&request(Method::GET, "/metricsx"), &observer);
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        assert_eq!(other.headers()[CONTENT_TYPE], TEXT_CONTENT_TYPE);
    }

    /// Sends `bytes` to a fresh endpoint and reads until the server closes.
    async fn exchange(bytes: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let local = serve("127.0.0.1:0", Observer::global()).await.unwrap();
        let mut stream = TcpStream::connect(local).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        let mut response = Vec::new();
        let deadline = REQUEST_TIMEOUT + Duration::from_secs(5);
        tokio::time::timeout(deadline, stream.read_to_end(&mut response))
            .await
            .expect("the server closes the connection")
            .unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }

    #[tokio::test]
    async fn connection_closes_after_one_response() {
        let response = exchange(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("\r\ncontent-type: text/plain\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(body.starts_with("ok\n"), "{body}");
    }

    #[tokio::test]
    async fn oversized_request_head_is_refused() {
        let padding = "a".repeat(REQUEST_HEAD_BYTES_MAX);
        let request = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\n\r\n");
        let response = exchange(request.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    }

    #[tokio::test]
    async fn silent_client_is_disconnected_after_the_request_timeout() {
        let started = std::time::Instant::now();
        let response = exchange(b"GET /metrics HTTP/1.1\r\n").await;
        assert_eq!(response, "");
        assert!(started.elapsed() >= REQUEST_TIMEOUT, "{:?}", started.elapsed());
    }
}

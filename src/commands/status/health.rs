//! Asking a role's `/health` for `relay status`'s verdict: the same checks
//! the role's own endpoint runs (relay-supervisor's `observe`), one line per
//! check, `name: ok` or `name: reason`. One plain HTTP/1.1 GET with
//! `Connection: close`, read to the end: the answer is a few lines, so a
//! client library would add nothing but the 503 it treats as an error.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one `/health` may take, connect to last byte: a local endpoint
/// answers in milliseconds, so this only ends a hung or unreachable one.
const HEALTH_WAIT_SECONDS_MAX: u64 = 5;
/// Largest answer read: one line per role of a process (a sender's line
/// names every path that matches nothing), far under this.
const HEALTH_BYTES_MAX: u64 = 1024 * 1024;

/// One check of a role's `/health`: its name (`broker`, `load TABLE`,
/// `send TOPIC`) and `Err(reason)` when it fails.
pub(super) type Check = (String, Result<(), String>);

/// Each address's checks, or why it did not answer.
pub(super) type Healths = [(String, Result<Vec<Check>, String>)];

/// Asks every address in turn.
pub(super) async fn health_all(addresses: &[String]) -> Vec<(String, Result<Vec<Check>, String>)> {
    let mut answers = Vec::with_capacity(addresses.len());
    for address in addresses {
        let answer = tokio::time::timeout(Duration::from_secs(HEALTH_WAIT_SECONDS_MAX), health(address))
            .await
            .unwrap_or_else(|_| Err(format!("no answer from {address} in {HEALTH_WAIT_SECONDS_MAX} s")));
        answers.push((address.clone(), answer));
    }
    answers
}

/// `GET http://address/health`: its checks when it answered 200 or 503.
async fn health(address: &str) -> Result<Vec<Check>, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot reach {address}: {e}"))?;
    let request = format!("GET /health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(HEALTH_BYTES_MAX)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    parse(&String::from_utf8_lossy(&answer)).map_err(|e| format!("{address}/health: {e}"))
}

/// The checks of a whole HTTP answer: status 200 or 503, then a body whose
/// first line is `ok` or `unhealthy` and each further line `name: outcome`.
pub(super) fn parse(answer: &str) -> Result<Vec<Check>, String> {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| "not an HTTP answer".to_owned())?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" && status != "503" {
        return Err(format!("HTTP {status} (is this a Relay --metrics address?)"));
    }
    Ok(body
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(": "))
        .map(|(name, outcome)| {
            let outcome = if outcome == "ok" {
                Ok(())
            } else {
                Err(outcome.to_owned())
            };
            (name.to_owned(), outcome)
        })
        .collect())
}

/// A check's name as the verdict says it: `loader TABLE`, `sender TOPIC`,
/// `broker`.
pub(super) fn role_of(check: &str) -> String {
    if let Some(table) = check.strip_prefix("load ") {
        format!("loader {table}")
    } else if let Some(topic) = check.strip_prefix("send ") {
        format!("sender {topic}")
    } else {
        check.to_owned()
    }
}

//! Reading another Relay process's `/metrics` for `relay status`: one
//! HTTP/1.0 GET on loopback or a LAN address, and a parser for the
//! Prometheus text format's sample lines (`name{label="value",...} number`).

use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest exposition read (a sender with thousands of files stays far below).
pub const SCRAPE_BYTES_MAX: usize = 16 * 1024 * 1024;
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Fetches `http://address/metrics` and parses its samples.
pub async fn scrape(address: &str) -> Result<Vec<Sample>, String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot reach metrics at {address}: {e}"))?;
        stream
            .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
            .await
            .map_err(|e| format!("metrics at {address}: {e}"))?;
        let mut response = Vec::new();
        (&mut stream)
            .take(SCRAPE_BYTES_MAX as u64)
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("metrics at {address}: {e}"))?;
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(SCRAPE_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("metrics at {address}: no answer in {} s", SCRAPE_TIMEOUT.as_secs()))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("metrics at {address}: not an HTTP response"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(format!("metrics at {address}: {status}"));
    }
    Ok(parse(body))
}

/// The sample lines of a text exposition; comments and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (&line[..open], parse_labels(&line[open + 1..close])?, &line[close + 1..])
        }
        None => {
            let (name, rest) = line.split_once(' ')?;
            (name, BTreeMap::new(), rest)
        }
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y \"quoted\""` into a map (escapes `\\`, `\"`, `\n` undone).
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(labels);
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        chars.next()?; // '='
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                other => value.push(other),
            }
        }
        labels.insert(name.trim().to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_and_without_labels() {
        let text = "# TYPE x counter\nx_total 12\nlag{table=\"ev\\\"ents\",partition=\"3\"} 7.5\n\nbad line\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].name, "x_total");
        assert_eq!(samples[0].value, 12.0);
        assert_eq!(samples[1].labels["table"], "ev\"ents");
        assert_eq!(samples[1].labels["partition"], "3");
        assert_eq!(samples[1].value, 7.5);
    }
}

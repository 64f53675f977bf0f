//! The client side of [`crate::observe`]: reading another Relay process's
//! `/metrics` (for `relay status`). One HTTP/1.1 GET through hyper's client
//! on loopback or a LAN address, parsed by `prom_text_format_parser` into
//! flat samples (`name{label="value",...} number`), the way Prometheus
//! stores them: a histogram's series keep their `_bucket`, `_sum` and
//! `_count` names and its `le` label.
//!
//! It never retries and never follows redirects: one answer per call.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::header::HOST;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use prom_text_format_parser::{ScrapeParseError, Type, ValueType};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Largest exposition read: a sender with thousands of files writes about
/// 200 bytes of series per file, so 16 MiB leaves room for ~80,000 files.
pub const SCRAPE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// How long one scrape may take, connect to last byte: a local endpoint
/// answers in milliseconds, so 5 s only ends a hung or unreachable one.
pub const SCRAPE_WAIT_MAX: Duration = Duration::from_secs(5);

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Fetches `http://address/metrics` and parses its samples.
pub async fn scrape(address: &str) -> Result<Vec<Sample>, String> {
    let body = tokio::time::timeout(SCRAPE_WAIT_MAX, fetch(address))
        .await
        .map_err(|_| format!("metrics at {address}: no answer in {} s", SCRAPE_WAIT_MAX.as_secs()))??;
    parse(&String::from_utf8_lossy(&body)).map_err(|error| format!("metrics at {address}: {error}"))
}

/// Scrapes each address in turn: every address with its samples, or why
/// there are none.
pub async fn scrape_all(addresses: &[String]) -> Vec<(String, Result<Vec<Sample>, String>)> {
    let mut scraped = Vec::with_capacity(addresses.len());
    for address in addresses {
        scraped.push((address.clone(), scrape(address).await));
    }
    scraped
}

/// The body of a `200 OK` answer to `GET /metrics`.
async fn fetch(address: &str) -> Result<Bytes, String> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot reach metrics at {address}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("metrics at {address}: {e}"))?;
    // The connection task moves the bytes; dropping the set (on return or
    // when the timeout drops this future) aborts it and closes the socket.
    let mut connection_task = JoinSet::new();
    connection_task.spawn(connection);
    let request = Request::get("/metrics")
        .header(HOST, address)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("metrics at {address}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("metrics at {address}: {e}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("metrics at {address}: HTTP {}", response.status()));
    }
    let collected = Limited::new(response.into_body(), SCRAPE_BYTES_MAX)
        .collect()
        .await
        .map_err(|error| match error.downcast_ref::<LengthLimitError>() {
            Some(_) => format!(
                "metrics at {address}: the exposition is larger than {SCRAPE_BYTES_MAX} bytes; \
                 is this a Relay metrics endpoint?"
            ),
            None => format!("metrics at {address}: {error}"),
        })?;
    Ok(collected.to_bytes())
}

/// The samples of a text exposition. A line that is not valid exposition
/// syntax fails the whole text (naming the line); grouping quirks, such as
/// a `# TYPE` with no samples, lose no sample and are ignored.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    // An empty exposition (no metric recorded yet) is valid, but the
    // library's grammar wants at least one line.
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let (metrics, error) = prom_text_format_parser::parse_scrape(text);
    if let Some(ScrapeParseError::Parse(error)) = error {
        return Err(format!("not a Prometheus text exposition: {}", error.trim_end()));
    }
    let mut samples = Vec::new();
    for metric in metrics {
        for sample in metric.samples {
            let suffix = match (metric.kind, sample.value.value_type) {
                (_, ValueType::Sum) => "_sum",
                (_, ValueType::Count) => "_count",
                (Type::Histogram, ValueType::Sample) => "_bucket",
                _ => "",
            };
            samples.push(Sample {
                name: format!("{}{suffix}", metric.name),
                labels: sample
                    .labels
                    .iter()
                    .map(|label| (label.key.clone(), unescape_label_value(&label.value)))
                    .collect(),
                value: sample.value.value.as_f64(),
            });
        }
    }
    Ok(samples)
}

/// Undoes the text format's label-value escapes (`\\`, `\"`, `\n`); the
/// parser validates them but hands values back as written.
fn unescape_label_value(escaped: &str) -> String {
    let mut value = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        let unescaped = match (c, chars.clone().next()) {
            ('\\', Some(escaped)) => {
                chars.next();
                if escaped == 'n' {
                    '\n'
                } else {
                    escaped
                }
            }
            (c, _) => c,
        };
        value.push(unescaped);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_samples_with_and_without_labels() {
        let text = "# TYPE x counter\nx_total 12\nlag{table=\"events\",partition=\"3\"} 7.5\n\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].name, "x_total");
        assert_eq!(samples[0].value, 12.0);
        assert!(samples[0].labels.is_empty());
        assert_eq!(samples[1].name, "lag");
        assert_eq!(samples[1].labels, labels(&[("table", "events"), ("partition", "3")]));
        assert_eq!(samples[1].value, 7.5);
    }

    #[test]
    fn escaped_label_values_are_unescaped() {
        let text = concat!(
            "# TYPE relay_sender_bytes_behind gauge\n",
            r#"relay_sender_bytes_behind{file="/var/log/a,b=c}.log",table="ev\"ents"} 42"#,
            "\n",
            r#"relay_sender_bytes_behind{file="C:\\logs\nx"} 7"#,
            "\n",
        );
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(
            samples[0].labels,
            labels(&[("file", "/var/log/a,b=c}.log"), ("table", "ev\"ents")])
        );
        assert_eq!(samples[0].value, 42.0);
        assert_eq!(samples[1].labels, labels(&[("file", "C:\\logs\nx")]));
    }

    #[test]
    fn histogram_series_keep_their_suffixes_and_le_label() {
        let text = concat!(
            "# HELP lat_seconds Latency.\n",
            "# TYPE lat_seconds histogram\n",
            "lat_seconds_bucket{topic=\"t\",le=\"0.5\"} 1\n",
            "lat_seconds_bucket{topic=\"t\",le=\"+Inf\"} 2\n",
            "lat_seconds_sum{topic=\"t\"} 0.75\n",
            "lat_seconds_count{topic=\"t\"} 2\n",
            "# TYPE rpc summary\n",
            "rpc{quantile=\"0.99\"} 0.1\n",
            "rpc_sum 3\n",
            "rpc_count 30\n",
        );
        let samples = parse(text).unwrap();
        let series: Vec<(&str, f64)> = samples.iter().map(|s| (s.name.as_str(), s.value)).collect();
        assert_eq!(
            series,
            [
                ("lat_seconds_bucket", 1.0),
                ("lat_seconds_bucket", 2.0),
                ("lat_seconds_sum", 0.75),
                ("lat_seconds_count", 2.0),
                ("rpc", 0.1),
                ("rpc_sum", 3.0),
                ("rpc_count", 30.0),
            ]
        );
        assert_eq!(samples[1].labels, labels(&[("topic", "t"), ("le", "+Inf")]));
        assert_eq!(samples[0].labels["le"], "0.5");
        assert_eq!(samples[4].labels["quantile"], "0.99");
    }

    #[test]
    fn special_values_and_timestamps_parse() {
        let samples = parse("a NaN\nb +Inf\nc -Inf 1700000000000\nd 1e3\n").unwrap();
        assert!(samples[0].value.is_nan());
        assert_eq!(samples[1].value, f64::INFINITY);
        assert_eq!(samples[2].value, f64::NEG_INFINITY);
        assert_eq!(samples[3].value, 1000.0);
    }

    #[test]
    fn empty_or_comment_only_exposition_has_no_samples() {
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(parse("# nothing recorded yet\n").unwrap(), []);
    }

    #[test]
    fn type_line_without_samples_loses_no_sample() {
        let samples = parse("# TYPE idle gauge\n# TYPE busy gauge\nbusy 1\n").unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].name, "busy");
    }

    #[test]
    fn malformed_line_is_an_error_naming_the_line() {
        let error = parse("a 1\nbad line\nc 3\n").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
    }

    #[tokio::test]
    async fn scrapes_a_real_endpoint() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = vec![0u8; 1024];
            let read = stream.read(&mut head).await.unwrap();
            let head = String::from_utf8_lossy(&head[..read]).into_owned();
            let body = "# TYPE up gauge\nup{role=\"broker\"} 1\n";
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
            head
        });
        let samples = scrape(&address).await.unwrap();
        assert_eq!(
            samples,
            [Sample {
                name: "up".into(),
                labels: labels(&[("role", "broker")]),
                value: 1.0
            }]
        );
        let head = server.await.unwrap();
        assert!(head.starts_with("GET /metrics HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains(&format!("host: {address}\r\n")),
            "{head}"
        );
    }

    #[tokio::test]
    async fn non_200_answer_is_an_error_with_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.read(&mut [0u8; 1024]).await;
            let _ = stream
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        });
        let error = scrape(&address).await.unwrap_err();
        assert_eq!(error, format!("metrics at {address}: HTTP 404 Not Found"));
    }
}

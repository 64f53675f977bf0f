//! Where the broker spent a produce request's time during one bench run:
//! `/metrics` scraped before and after, and from the difference of each
//! histogram's buckets, each stage's count, mean, p50 and p99
//! (`relay_broker_request_stage_seconds{api="Produce"}`: queue, decode,
//! append, fsync_wait, response), the broker's whole request
//! (`relay_broker_request_latency_seconds`) and one fsync, printed next to
//! the client's p50/p99 per request. The means add up to the broker's mean
//! (the stages are contiguous); quantiles are interpolated inside a bucket
//! as Prometheus's `histogram_quantile` does, so they are as fine as the
//! broker's buckets (25 µs to 10 s, 0.5–1 ms apart around 1–3 ms).

use crate::processes::scrape;
use std::collections::HashMap;

/// One `/metrics` exposition: each sample's value by its series (name and
/// labels as the broker prints them).
pub struct Snapshot(HashMap<String, f64>);

impl Snapshot {
    /// Scrapes `address`'s `/metrics`.
    pub fn take(address: &str) -> Result<Self, String> {
        let text = scrape(address).ok_or_else(|| format!("cannot scrape http://{address}/metrics"))?;
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
            .collect();
        Ok(Self(samples))
    }
}

/// A histogram's samples added between two snapshots, for the series of
/// `name` whose labels include every one of `labels`.
struct Delta {
    /// (upper bound, cumulative count), ascending; `+Inf` last.
    buckets: Vec<(f64, f64)>,
    count: f64,
    sum: f64,
}

fn delta(before: &Snapshot, after: &Snapshot, name: &str, labels: &[(&str, &str)]) -> Delta {
    let mut buckets: HashMap<String, f64> = HashMap::new();
    let (mut count, mut sum) = (0.0, 0.0);
    for (series, value) in &after.0 {
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        let pairs: Vec<&str> = series_labels.trim_end_matches('}').split(',').collect();
        if !labels
            .iter()
            .all(|(key, value)| pairs.contains(&format!("{key}=\"{value}\"").as_str()))
        {
            continue;
        }
        let added = value - before.0.get(series).copied().unwrap_or(0.0);
        match series_name.strip_prefix(name) {
            Some("_bucket") => {
                let Some(le) = pairs.iter().find_map(|pair| pair.strip_prefix("le=\"")) else {
                    continue;
                };
                *buckets.entry(le.trim_end_matches('"').to_owned()).or_default() += added;
            }
            Some("_count") => count += added,
            Some("_sum") => sum += added,
            _ => {}
        }
    }
    let mut buckets: Vec<(f64, f64)> = buckets
        .into_iter()
        .filter_map(|(le, cumulative)| Some((le.parse().ok()?, cumulative)))
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    Delta { buckets, count, sum }
}

impl Delta {
    /// The `quantile` in seconds, interpolated inside its bucket (the
    /// highest finite bound when it falls in `+Inf`).
    fn quantile(&self, quantile: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = quantile * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(upper, cumulative) in &self.buckets {
            if cumulative >= rank {
                if upper.is_infinite() {
                    return Some(lower);
                }
                let inside = cumulative - below;
                let fraction = if inside > 0.0 { (rank - below) / inside } else { 1.0 };
                return Some(lower + (upper - lower) * fraction);
            }
            (lower, below) = (upper, cumulative);
        }
        Some(lower)
    }

    fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }
}

/// Labels a series must carry, as (name, value) pairs.
type Labels = &'static [(&'static str, &'static str)];

/// The rows printed: label, metric, label filter.
const ROWS: [(&str, &str, Labels); 7] = [
    ("queue", STAGE, &[PRODUCE, ("stage", "queue")]),
    ("decode", STAGE, &[PRODUCE, ("stage", "decode")]),
    ("append", STAGE, &[PRODUCE, ("stage", "append")]),
    ("fsync_wait", STAGE, &[PRODUCE, ("stage", "fsync_wait")]),
    ("response", STAGE, &[PRODUCE, ("stage", "response")]),
    ("total", TOTAL, &[PRODUCE]),
    ("one fsync", "relay_broker_fsync_latency_seconds", &[]),
];
const STAGE: &str = "relay_broker_request_stage_seconds";
const TOTAL: &str = "relay_broker_request_latency_seconds";
const PRODUCE: (&str, &str) = ("api", "Produce");

fn ms(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), |s| format!("{:.3}", s * 1000.0))
}

/// The client's side of the same requests: how many, and their latency
/// from the send to the acknowledgement, in ms.
pub struct Client {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Prints the broker's produce stages between `before` and `after` as a
/// table under the client's latency of the same requests, with the mean
/// time spent outside the broker (client, loopback, waiting in the socket
/// behind the connection's previous request), then one JSON line per row
/// (`"broker_stage"`).
pub fn print(before: &Snapshot, after: &Snapshot, client: &Client) {
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10}",
        "per produce request", "count", "mean ms", "p50 ms", "p99 ms"
    );
    println!(
        "{:<28} {:>10} {:>10.3} {:>10.3} {:>10.3}",
        "client (send → ack)", client.count, client.mean_ms, client.p50_ms, client.p99_ms
    );
    let deltas: Vec<_> = ROWS
        .iter()
        .map(|(row, name, labels)| (*row, delta(before, after, name, labels)))
        .collect();
    for (row, delta) in &deltas {
        println!(
            "{:<28} {:>10.0} {:>10} {:>10} {:>10}",
            format!("broker {row}"),
            delta.count,
            ms(delta.mean()),
            ms(delta.quantile(0.5)),
            ms(delta.quantile(0.99))
        );
    }
    let broker_mean = deltas
        .iter()
        .find(|(row, _)| *row == "total")
        .and_then(|(_, d)| d.mean());
    let outside = broker_mean.map(|broker| client.mean_ms / 1000.0 - broker);
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10}",
        "outside the broker",
        "-",
        ms(outside),
        "-",
        "-"
    );
    for (row, delta) in &deltas {
        let number = |seconds: Option<f64>| seconds.map_or_else(|| "null".to_owned(), |s| format!("{:.4}", s * 1000.0));
        println!(
            "{{\"broker_stage\":\"{row}\",\"count\":{},\"mean_ms\":{},\"p50_ms\":{},\"p99_ms\":{}}}",
            delta.count,
            number(delta.mean()),
            number(delta.quantile(0.5)),
            number(delta.quantile(0.99))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(samples: &[(&str, f64)]) -> Snapshot {
        Snapshot(samples.iter().map(|(s, v)| (s.to_string(), *v)).collect())
    }

    #[test]
    fn quantiles_come_from_the_buckets_added_during_the_run() {
        let series = |le: &str| format!("{STAGE}_bucket{{api=\"Produce\",stage=\"append\",le=\"{le}\"}}");
        let before = snapshot(&[
            (&series("0.001"), 100.0),
            (&series("0.002"), 100.0),
            (&series("+Inf"), 100.0),
        ]);
        // During the run: 50 under 1 ms, 50 between 1 and 2 ms.
        let after = snapshot(&[
            (&series("0.001"), 150.0),
            (&series("0.002"), 200.0),
            (&series("+Inf"), 200.0),
        ]);
        let delta = delta(&before, &after, STAGE, &[PRODUCE, ("stage", "append")]);
        assert_eq!(
            delta.buckets,
            vec![(0.001, 50.0), (0.002, 100.0), (f64::INFINITY, 100.0)]
        );
        assert!((delta.quantile(0.5).unwrap() - 0.001).abs() < 1e-12);
        assert!((delta.quantile(0.99).unwrap() - 0.00198).abs() < 1e-12);
    }

    #[test]
    fn other_labels_and_metrics_are_left_out() {
        let after = snapshot(&[
            (&format!("{STAGE}_count{{api=\"Fetch\",stage=\"handle\"}}"), 7.0),
            (&format!("{STAGE}_count{{api=\"Produce\",stage=\"append\"}}"), 3.0),
            (&format!("{STAGE}_sum{{api=\"Produce\",stage=\"append\"}}"), 0.003),
            (&format!("{TOTAL}_count{{api=\"Produce\"}}"), 3.0),
        ]);
        let delta = delta(&snapshot(&[]), &after, STAGE, &[PRODUCE, ("stage", "append")]);
        assert_eq!(delta.count, 3.0);
        assert!((delta.mean().unwrap() - 0.001).abs() < 1e-12);
        assert_eq!(delta.quantile(0.5), None);
    }
}

//! Benchmark figures: one row per measured phase, printed as an aligned table
//! and as one JSON object per line (no serde: the fields are flat numbers).

use hdrhistogram::Histogram;
use std::time::Duration;

pub struct Phase {
    pub name: String,
    pub records: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Per-operation latencies in microseconds, when measured.
    pub latency_us: Option<Histogram<u64>>,
}

impl Phase {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    pub fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }

    fn latency_ms(&self, quantile: f64) -> Option<f64> {
        self.latency_us
            .as_ref()
            .map(|h| h.value_at_quantile(quantile) as f64 / 1000.0)
    }

    fn max_ms(&self) -> Option<f64> {
        self.latency_us.as_ref().map(|h| h.max() as f64 / 1000.0)
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

pub fn print(phases: &[Phase]) {
    println!(
        "{:<28} {:>12} {:>14} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "phase", "records", "records/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for phase in phases {
        println!(
            "{:<28} {:>12} {:>14.0} {:>10.1} {:>9} {:>9} {:>9} {:>9}",
            phase.name,
            phase.records,
            phase.records_per_second(),
            phase.megabytes_per_second(),
            cell(phase.latency_ms(0.5)),
            cell(phase.latency_ms(0.99)),
            cell(phase.latency_ms(0.999)),
            cell(phase.max_ms()),
        );
    }
    for phase in phases {
        println!(
            "{{\"phase\":\"{}\",\"records\":{},\"seconds\":{:.3},\"records_per_second\":{:.0},\"mb_per_second\":{:.1},\"p50_ms\":{},\"p99_ms\":{},\"p999_ms\":{},\"max_ms\":{}}}",
            phase.name,
            phase.records,
            phase.elapsed.as_secs_f64(),
            phase.records_per_second(),
            phase.megabytes_per_second(),
            json_number(phase.latency_ms(0.5)),
            json_number(phase.latency_ms(0.99)),
            json_number(phase.latency_ms(0.999)),
            json_number(phase.max_ms()),
        );
    }
}

fn json_number(value: Option<f64>) -> String {
    value.map_or_else(|| "null".to_string(), |v| format!("{v:.3}"))
}

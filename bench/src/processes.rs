//! Running `relay` processes for the benchmarks that need them: a broker on
//! a scratch data directory (its address read from its start line), a
//! sender, and the peak RSS of a process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A child `relay` process and the addresses its start line announced.
pub struct Started {
    pub child: Child,
    pub address: String,
    pub metrics: Option<String>,
}

impl Started {
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Peak resident set (VmHWM) in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

/// Starts `relay ARGS...`, logging stderr to `log`, and reads its start line.
pub fn start(relay: &Path, args: &[&str], log: &Path) -> Result<Started, String> {
    let mut child = Command::new(relay)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", relay.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    // Keep draining stdout so the child never blocks on it.
    std::thread::spawn(move || for _ in reader.lines() {});
    let address = line
        .split(" on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .trim_end_matches(',')
        .to_owned();
    let metrics = line
        .split("metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned);
    if line.is_empty() {
        return Err(format!(
            "{} {args:?} did not start; see {}",
            relay.display(),
            log.display()
        ));
    }
    Ok(Started {
        child,
        address,
        metrics,
    })
}

/// The `/metrics` exposition at `address` (the HTTP head included).
pub fn scrape(address: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

/// A sample's value from a `/metrics` exposition (summed over label sets).
pub fn scrape_sum(address: &str, name: &str) -> Option<f64> {
    let text = scrape(address)?;
    let mut sum = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if series == name || series.starts_with(&format!("{name}{{")) {
            *sum.get_or_insert(0.0) += value.parse::<f64>().ok()?;
        }
    }
    sum
}

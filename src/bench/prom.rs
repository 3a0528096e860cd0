//! Scraping the relay under test's `/metrics` (Prometheus text format) and reading the
//! few series the bench reports.
//!
//! Owns: one bounded HTTP/1.1 GET over a std socket with time-outs, and a parser of the
//! text format's sample lines. Does not check: types, help text, timestamps or
//! histograms (only counters and gauges are read).

use crate::config::limits::{BENCH_METRICS_RESPONSE_BYTES_MAX, BENCH_METRICS_TIMEOUT_MILLIS_MAX};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Series the bench reads.
pub mod names {
    /// Frames the sequencer numbered (events that passed validation), by `frame_type`.
    pub const SEQUENCED: &str = "relay_sequencer_frames_total";
    /// Frames written to consumers (live and replay), all fan-out cores.
    pub const FANOUT_SENT: &str = "relay_fanout_frames_sent_total";
    /// Dropped frames, by `reason` (and `shard`).
    pub const REJECTIONS: &str = "relay_verify_rejections_total";
    /// User-space copies of frame bytes by the ingest frame buffers. Expected name; the
    /// relay reports the same figure through `Relay::frame_copied_bytes` in-process.
    pub const FRAME_COPIED: &str = "relay_frame_copied_bytes_total";
    /// Frame bytes the fan-out copied instead of sending from the shared buffer.
    pub const FANOUT_COPIED: &str = "relay_fanout_copied_bytes_total";
    /// Upstream hosts with a live session.
    pub const CONNECTED_HOSTS: &str = "relay_upstream_connected_hosts";
}

/// Label pairs of one series.
type Labels = Vec<(String, String)>;

/// One sample line: name, labels, value.
type Line = (String, Labels, f64);

/// One scrape: every sample line as (name, labels, value).
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    samples: Vec<Line>,
}

impl Scrape {
    /// Parse the text format; lines that do not parse are skipped.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(parse_line)
            .collect();
        Scrape { samples }
    }

    /// Whether a series of this name is present.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }

    /// The sum of every series of this name (0 when absent).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    }

    /// The sum of this name's series grouped by the value of `label`.
    pub fn sum_by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut by = BTreeMap::new();
        for (_, labels, value) in self.samples.iter().filter(|(n, _, _)| n == name) {
            let key = labels
                .iter()
                .find(|(k, _)| k == label)
                .map_or_else(String::new, |(_, v)| v.clone());
            *by.entry(key).or_insert(0.0) += value;
        }
        by
    }
}

/// `name{k="v",…} value [timestamp]`.
fn parse_line(line: &str) -> Option<Line> {
    let (series, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..].find('}')? + open;
            (&line[..close + 1], &line[close + 1..])
        }
        None => line.split_at(line.find(char::is_whitespace)?),
    };
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    let (name, labels) = match series.find('{') {
        Some(open) => (
            &series[..open],
            parse_labels(&series[open + 1..series.len() - 1]),
        ),
        None => (series, Vec::new()),
    };
    Some((name.to_owned(), labels, value))
}

/// `k="v",k2="v2"` (values as written; our label values never hold quotes or commas).
fn parse_labels(text: &str) -> Labels {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        })
        .collect()
}

/// GET `/metrics` from `addr`; `None` when it does not answer in time.
pub fn scrape(addr: SocketAddr) -> Option<Scrape> {
    let timeout = Duration::from_millis(BENCH_METRICS_TIMEOUT_MILLIS_MAX);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = Vec::new();
    // A time-out or reset after some bytes still leaves a usable answer.
    let _ = stream
        .take(BENCH_METRICS_RESPONSE_BYTES_MAX as u64)
        .read_to_end(&mut body);
    let text = String::from_utf8_lossy(&body);
    let head_end = text.find("\r\n\r\n")?;
    if !text.starts_with("HTTP/1.1 200") && !text.starts_with("HTTP/1.0 200") {
        return None;
    }
    Some(Scrape::parse(&text[head_end + 4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_groups() {
        let text = "# TYPE relay_verify_rejections_total counter\n\
            relay_verify_rejections_total{reason=\"bad_signature\",shard=\"0\"} 3\n\
            relay_verify_rejections_total{reason=\"bad_signature\",shard=\"1\"} 2\n\
            relay_verify_rejections_total{reason=\"rev_old\",shard=\"0\"} 1\n\
            relay_upstream_connected_hosts 7\n\
            garbage line\n";
        let scrape = Scrape::parse(text);
        assert_eq!(scrape.sum(names::REJECTIONS), 6.0);
        assert_eq!(scrape.sum(names::CONNECTED_HOSTS), 7.0);
        assert!(!scrape.has(names::FRAME_COPIED));
        let by = scrape.sum_by(names::REJECTIONS, "reason");
        assert_eq!(by.get("bad_signature"), Some(&5.0));
        assert_eq!(by.get("rev_old"), Some(&1.0));
    }
}

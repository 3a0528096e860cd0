//! Starting `relay serve` in a test: the loopback flags every end-to-end test uses, and
//! reading counters from the relay's metrics port.

use relay::config::{ServeArgs, Validation};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `relay serve` on loopback ports chosen by the OS, crawling `upstreams` (ws://) from
/// their oldest event, identities from `plc_url`, strict validation, RocksDB in `data_dir`,
/// no default host limits (operators' limits still apply).
pub fn loopback_args(
    plc_url: String,
    upstreams: Vec<String>,
    cores: usize,
    data_dir: PathBuf,
) -> ServeArgs {
    ServeArgs {
        cores,
        data_dir,
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        plc_url,
        upstreams,
        allow_plaintext: true,
        new_host_cursor: Some(0),
        validation: Validation::Strict,
        replay_window_secs: 3600,
        eventlog_bytes_max: 1 << 30,
        database_url: None,
        admin_token: None,
        allow_private_hosts: false,
        bootstrap_relay: None,
        // The end-to-end suites offer more than the 50 events/s per host of the default
        // limits, and time their checks on it; tests/serve_host_limits.rs turns them on.
        no_default_host_limits: true,
        status_recheck_interval_secs: relay::config::limits::STATUS_RECHECK_INTERVAL_SECS,
    }
}

/// A fresh directory for one test's data.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Counter values by (metric, `reason` label), summed over the other labels.
pub fn scrape(metrics: SocketAddr) -> BTreeMap<(String, String), u64> {
    let mut stream = std::net::TcpStream::connect(metrics).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let mut counts = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or_default().to_owned();
        let reason = series
            .split("reason=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_owned();
        let value: f64 = value.parse().unwrap_or(0.0);
        *counts.entry((name, reason)).or_insert(0) += value as u64;
    }
    counts
}

/// POST a JSON body to the relay's API, with a bearer token if given; the whole response.
pub fn post(addr: SocketAddr, path: &str, body: &str, token: Option<&str>) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: relay\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// GET a path of the relay's API, with a bearer token if given: the status and the JSON
/// body (`Null` when the body is not JSON).
pub fn get_json(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: relay\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or_default())
}

/// The frames the relay replays from cursor 0: until 500 ms of silence, or for at most
/// `within` while live events keep coming (a replay of a test's log takes well under it).
pub fn replay_all(addr: SocketAddr, within: std::time::Duration) -> Vec<Vec<u8>> {
    use super::ws_client::{Message, WsClient};
    let mut client = WsClient::connect(
        addr,
        "/xrpc/com.atproto.sync.subscribeRepos?cursor=0",
        std::time::Duration::from_millis(500),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + within;
    let mut frames = Vec::new();
    while std::time::Instant::now() < deadline {
        match client.next() {
            Ok(Message::Binary(bytes)) => frames.push(bytes),
            _ => break,
        }
    }
    frames
}

/// Poll `done` every 250 ms until it holds; fail the test after `within`.
pub fn wait_until(what: &str, within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Commits the relay replays from cursor 0, per host (by the account's PDS in `host_of`),
/// and whether any (did, rev) came twice.
pub fn commits_by_host(
    addr: SocketAddr,
    host_of: &BTreeMap<String, String>,
) -> (BTreeMap<String, usize>, bool) {
    use relay::frame::event::{Event, Frame};
    let mut counts = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut twice = false;
    for bytes in replay_all(addr, std::time::Duration::from_secs(5)) {
        if let Event::Commit(commit) = Frame::decode(&bytes).unwrap().event() {
            *counts.entry(host_of[commit.repo()].clone()).or_insert(0) += 1;
            twice |= !seen.insert((commit.repo().to_owned(), commit.rev().to_owned()));
        }
    }
    (counts, twice)
}

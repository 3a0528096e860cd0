//! The metrics port: installs the Prometheus recorder and serves its text exposition on
//! `GET /metrics` from one plain thread (never a data-plane executor).
//!
//! Owns: the global metrics recorder and its upkeep. Must not: serve anything but
//! `/metrics`. Connections are served one at a time with short time-outs: a scraper is
//! one client, and a slow or hostile one only delays the next scrape.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// How long one scrape connection may take to send its request or read the answer.
const SCRAPE_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest scrape request head read.
const SCRAPE_REQUEST_BYTES_MAX: usize = 8 * 1024;

/// Install the recorder (once per process) and serve it on `addr`. Returns the bound
/// address.
pub fn start(addr: SocketAddr) -> io::Result<SocketAddr> {
    let handle = install()?;
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("relay-metrics".to_owned())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // One failed scrape is the scraper's problem; keep serving.
                let _ = serve(stream, &handle);
            }
        })?;
    Ok(bound)
}

fn install() -> io::Result<PrometheusHandle> {
    // One recorder per process, however many relays a process starts (tests do): the
    // lock makes "is there one? else install it" a single step.
    static HANDLE: std::sync::Mutex<Option<PrometheusHandle>> = std::sync::Mutex::new(None);
    let mut slot = HANDLE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| io::Error::other(format!("metrics recorder: {e}")))?;
    *slot = Some(handle.clone());
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("relay-metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })?;
    Ok(handle)
}

fn serve(mut stream: TcpStream, handle: &PrometheusHandle) -> io::Result<()> {
    stream.set_read_timeout(Some(SCRAPE_IO_TIMEOUT))?;
    stream.set_write_timeout(Some(SCRAPE_IO_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < SCRAPE_REQUEST_BYTES_MAX {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let ok = head.starts_with(b"GET /metrics ") || head.starts_with(b"GET /metrics?");
    let (status, body) = if ok {
        ("200 OK", handle.render())
    } else {
        (
            "404 Not Found",
            "not found: the metrics are at /metrics\n".to_owned(),
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

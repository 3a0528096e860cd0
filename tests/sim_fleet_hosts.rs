//! The fleet's host modes from the outside: a silent host accepts the upgrade and sends
//! nothing, a slow-drip host sends valid frames a few bytes at a time, a seq-resetting
//! host starts its sequence again at 1; each counted as the fleet says.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use relay::config::limits::SIM_SEQ_RESET_EVENTS_MAX;
use relay::frame::event::Frame;
use relay::frame::ws::{self, Role};
use relay::sim::fleet::{Fleet, FleetConfig};
use relay::sim::hostile::HostileMode;

/// Connect, upgrade, and return the stream with the bytes read past the head.
fn subscribe(hostport: &str, cursor: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(hostport).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let key = ws::client_key([3; 16]);
    let path = format!("/xrpc/com.atproto.sync.subscribeRepos{cursor}");
    stream
        .write_all(ws::client_request(hostport, &path, &key, "t").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(r) = ws::parse_upgrade_response(&buf, &key).unwrap() {
            assert_eq!(r.status, 101);
            buf.drain(..r.head_len);
            return (stream, buf);
        }
    }
}

/// Read whole messages until `idle` passes without a byte.
fn messages(stream: &mut TcpStream, mut buf: Vec<u8>, idle: Duration, max: usize) -> Vec<Vec<u8>> {
    stream.set_read_timeout(Some(idle)).unwrap();
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    while out.len() < max {
        if let Some(h) = ws::parse_header(&buf, Role::Client, 1 << 26).unwrap() {
            let total = h.header_len + h.payload_len as usize;
            if buf.len() >= total {
                out.push(buf[h.header_len..total].to_vec());
                buf.drain(..total);
                continue;
            }
        }
        match stream.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    out
}

#[test]
fn silent_slow_and_resetting_hosts_behave_and_are_counted() {
    let limit = 2 * 3 * SIM_SEQ_RESET_EVENTS_MAX;
    let config = FleetConfig {
        hosts: 4,
        accounts_per_host: 2,
        events_per_sec: 0,
        seed: 5,
        event_limit: Some(limit),
        presign_buffer_events: limit as usize,
        hostile_modes: vec![
            HostileMode::SilentHost,
            HostileMode::SlowDrip,
            HostileMode::ResetSeq,
        ],
        p256_share: 0.0,
        ..FleetConfig::default()
    };
    let fleet = Fleet::start(config).unwrap();
    let hosts = fleet.hostnames();
    // Host 2 resets its seq: watch it live from the start.
    let resetting = hosts[2].clone();
    let watcher = std::thread::spawn(move || {
        let (mut stream, buf) = subscribe(&resetting, "");
        stream
            .set_read_timeout(Some(Duration::from_secs(240)))
            .unwrap();
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).unwrap();
        let mut buf2 = buf;
        buf2.push(first[0]);
        messages(&mut stream, buf2, Duration::from_secs(3), usize::MAX)
    });
    assert!(fleet.wait_until_emitted(Duration::from_secs(240)));
    let seqs: Vec<u64> = watcher
        .join()
        .unwrap()
        .iter()
        .map(|m| Frame::decode(m).unwrap().seq().unwrap())
        .collect();
    let resets = seqs.windows(2).filter(|w| w[1] < w[0]).count() as u64;
    assert!(resets >= 1, "host 2 emitted {} events", seqs.len());
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1 || w[1] == 1));

    let (mut silent, buf) = subscribe(&hosts[0], "?cursor=0");
    assert!(buf.is_empty());
    assert!(messages(&mut silent, buf, Duration::from_millis(700), 1).is_empty());

    let (mut slow, buf) = subscribe(&hosts[1], "?cursor=0");
    let start = Instant::now();
    let first = messages(&mut slow, buf, Duration::from_secs(10), 1);
    let took = start.elapsed();
    assert_eq!(first.len(), 1);
    assert_eq!(Frame::decode(&first[0]).unwrap().seq(), Some(1));
    assert!(
        took >= Duration::from_millis(100),
        "slow drip took {took:?}"
    );
    drop(slow);

    let counters = fleet.stop();
    assert_eq!(counters.hostile_of(HostileMode::SilentHost), 1);
    assert_eq!(counters.hostile_of(HostileMode::SlowDrip), 1);
    assert_eq!(counters.hostile_of(HostileMode::ResetSeq), resets);
    assert_eq!(counters.valid, counters.emitted);
    assert_eq!(counters.emitted, limit);
    assert_eq!(counters.hostile_events(), 0);
}

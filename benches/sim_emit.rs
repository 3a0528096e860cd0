//! The simulator's emit path: stamping `time` into a pre-signed frame plus its WebSocket
//! header (the per-event work of the emit loop), and a whole one-core fleet emitting
//! pre-signed commits to a subscriber that drains the socket.
//!
//! Input: honest `#commit` frames of one create of a ~200-byte post (about 1 KB each),
//! pre-signed by `SimAccount`; `Throughput::Elements(1)` = one event.
//!
//! Expectation: stamping is a 27-byte format + copy (well under 1 µs); the fleet's emit
//! rate is bounded by the socket writes of the one executor. The brief asks for at least
//! 50,000 valid commit events/s from one core.

#![allow(clippy::unwrap_used, reason = "a bench with a broken setup must stop")]

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

use relay::frame::ws::{self, Opcode};
use relay::identity::key::Curve;
use relay::sim::fleet::{Fleet, FleetConfig, KindMix, find_time, stamp_time};
use relay::sim::{SimAccount, SimOp};

const FRAMES: usize = 1_000;
const FLEET_EVENTS: u64 = 20_000;

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn stamp(c: &mut Criterion) {
    let mut account = SimAccount::new(9, Curve::Secp256k1, "h").unwrap();
    let now = now_micros();
    let mut frames: Vec<Vec<u8>> = (0..FRAMES as u64)
        .map(|i| {
            account
                .commit(&[SimOp::Create { size_bytes: 200 }], now + i, i + 1)
                .unwrap()
        })
        .collect();
    let at: Vec<usize> = frames.iter().map(|f| find_time(f).unwrap()).collect();
    let mut out = Vec::with_capacity(256 * 1024);
    let mut group = c.benchmark_group("sim_emit");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("stamp_time_and_ws_header", |b| {
        b.iter(|| {
            let index = i % FRAMES;
            i += 1;
            let frame = &mut frames[index];
            stamp_time(frame, at[index], now_micros());
            let mut header = [0u8; ws::WS_HEADER_BYTES_MAX];
            let n = ws::encode_header(true, Opcode::Binary, frame.len() as u64, None, &mut header);
            if out.len() > 200 * 1024 {
                out.clear();
            }
            out.extend_from_slice(&header[..n]);
            out.extend_from_slice(frame);
            black_box(out.len())
        })
    });
    group.finish();
}

/// Subscribe and drain the socket until `stop` bytes of silence.
fn drain(hostport: String) -> u64 {
    let mut stream = TcpStream::connect(&hostport).unwrap();
    let key = ws::client_key([1; 16]);
    let request = ws::client_request(
        &hostport,
        "/xrpc/com.atproto.sync.subscribeRepos?cursor=0",
        &key,
        "bench",
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n as u64;
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
    }
    total
}

fn fleet(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_emit");
    group.throughput(Throughput::Elements(FLEET_EVENTS));
    // Each iteration pre-signs a whole fleet (seconds) but only emission is timed:
    // flat sampling keeps criterion from scaling iterations by the timed part alone.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("fleet_one_core_commits", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let config = FleetConfig {
                    hosts: 1,
                    accounts_per_host: 100,
                    events_per_sec: 0,
                    event_limit: Some(FLEET_EVENTS),
                    presign_buffer_events: FLEET_EVENTS as usize,
                    kind_mix: KindMix {
                        commit: 1.0,
                        sync: 0.0,
                        identity: 0.0,
                        account: 0.0,
                    },
                    record_sizes: vec![(200, 1)],
                    p256_share: 0.0,
                    ..FleetConfig::default()
                };
                let fleet = Fleet::start(config).unwrap();
                let host = fleet.hostnames()[0].clone();
                let reader = std::thread::spawn(move || drain(host));
                assert!(fleet.wait_until_emitted(Duration::from_secs(120)));
                let counters = fleet.stop();
                // First release to the last emit loop's drain, timed by the fleet.
                total += Duration::from_micros(counters.emit_micros);
                assert_eq!(counters.valid, FLEET_EVENTS);
                assert!(reader.join().unwrap() > 0);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, stamp, fleet);
criterion_main!(benches);

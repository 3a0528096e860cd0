//! The downstream side end to end over loopback: real `#commit` frames (simulated
//! accounts, real keys) go through the frame buffer, the commit rules, the sequencer and
//! the event log, are published to a fan-out hub, and reach WebSocket consumers through
//! the HTTP server. Every test runs a glommio executor on its own thread, binds port 0 on
//! 127.0.0.1, and fails if it has not finished within its time-out.

mod common;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use relay::api::server::{Router, serve};
use relay::eventlog::{
    AccountKey, Appender, EventLog, EventLogConfig, IoBackendChoice, ReplayRecord,
};
use relay::fanout::{Hub, HubConfig, ReplayPool, SUBSCRIBE_REPOS_PATH};
use relay::frame::event::{Event, Frame};
use relay::frame::ws::{self, Role};
use relay::identity::key::Curve;
use relay::runtime::frames::{FrameRegionConfig, FrameWriter, RegionId};
use relay::sequencer::{Sequenced, Sequencer};
use relay::sim::account::{SimAccount, SimOp};
use relay::verify::rules::{Policy, verify_commit_frame};
use relay::verify::signature::{ParsedKey, VerifierSet};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

// ---- the producing side: buffer → rules → sequencer → log ----

/// Produces sequenced, durable frames from a pool of honest commits (each verified on its
/// own, so the pool can be reused).
struct Source {
    log: EventLog,
    appender: Appender<Sequenced>,
    writer: FrameWriter,
    sequencer: Sequencer,
    key: ParsedKey,
    pool: Vec<Vec<u8>>,
    next: usize,
    /// The account key the next frames are logged under.
    account: u64,
}

impl Source {
    fn new(log: &EventLog, next_seq: relay::eventlog::Seq, record_bytes: usize) -> Source {
        let mut account = SimAccount::new(7, Curve::Secp256k1, "pds.test").unwrap();
        let key = ParsedKey::new(&account.public_key(), &VerifierSet::FASTEST).unwrap();
        let now = now_micros() - 60_000_000;
        let pool = (0..8u64)
            .map(|i| {
                account
                    .commit(
                        &[SimOp::Create {
                            size_bytes: record_bytes,
                        }],
                        now + i * 1000,
                        i + 1,
                    )
                    .unwrap()
            })
            .collect();
        Source {
            log: log.clone(),
            appender: log.start_writer(None).unwrap(),
            writer: FrameWriter::new(RegionId::new(0), FrameRegionConfig::default()).unwrap(),
            sequencer: Sequencer::new(next_seq),
            key,
            pool,
            next: 0,
            account: 1,
        }
    }

    /// `n` more frames, appended to the log; returns once all are durable.
    async fn produce(&mut self, n: usize) -> Vec<Sequenced> {
        let policy = Policy {
            now_micros: now_micros(),
            strict: true,
        };
        let mut out = Vec::new();
        for _ in 0..n {
            let bytes = &self.pool[self.next % self.pool.len()];
            self.next += 1;
            let mut slot = self.writer.reserve(bytes.len()).unwrap();
            slot.unfilled_mut()[..bytes.len()].copy_from_slice(bytes);
            slot.advance(bytes.len()).unwrap();
            let handle = self.writer.commit(slot, bytes.len()).unwrap();
            let verified = verify_commit_frame(handle, &self.key, None, &policy)
                .map_err(|(_, r)| r)
                .unwrap();
            let sequenced = self
                .sequencer
                .assign(verified, AccountKey::new(self.account))
                .unwrap();
            self.appender.append(sequenced.clone()).unwrap();
            out.push(sequenced);
        }
        let last = out.last().map(|f| f.seq());
        while self.log.durable_seq() < last {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            self.writer.copied_bytes(),
            0,
            "no copy after the socket read"
        );
        out
    }

    /// Produce `n` frames and publish them on `hub`.
    async fn publish(&mut self, hub: &Hub, n: usize) {
        for frame in self.produce(n).await {
            hub.publish(frame);
        }
    }
}

// ---- the test bed: log, hub, server ----

struct Bed {
    log: EventLog,
    hub: Rc<Hub>,
    addr: SocketAddr,
    source: Source,
    dir: PathBuf,
}

impl Bed {
    fn records(&self) -> BTreeMap<u64, Vec<u8>> {
        self.log
            .read_from(0)
            .map(Result::unwrap)
            .map(|ReplayRecord { seq, payload, .. }| (seq.get(), payload))
            .collect()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn log_config(dir: &std::path::Path) -> EventLogConfig {
    let mut config = EventLogConfig::new(dir);
    config.io = IoBackendChoice::FallbackOnly;
    config.fsync_interval = Duration::from_micros(100);
    config
}

fn bed(
    name: &str,
    log_config_of: impl FnOnce(&std::path::Path) -> EventLogConfig,
    hub: HubConfig,
    record_bytes: usize,
) -> Bed {
    let dir = std::env::temp_dir().join(format!("relay-fanout-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (log, recovery) = EventLog::open(&log_config_of(&dir)).unwrap();
    let pool = ReplayPool::start(&log, 2).unwrap();
    let hub = Hub::new(0, hub, log.clone(), pool).unwrap();
    let mut router = Router::new("test-version");
    router.websocket(SUBSCRIBE_REPOS_PATH, hub.subscribe_repos());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    glommio::spawn_local(serve(listener, Rc::new(router))).detach();
    let source = Source::new(&log, recovery.next_seq, record_bytes);
    Bed {
        log,
        hub,
        addr,
        source,
        dir,
    }
}

/// Run `test` on a fresh executor thread; fail after `TEST_TIMEOUT`.
fn run<F, Fut>(name: &'static str, test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (done, finished) = std::sync::mpsc::channel();
    let handle = glommio::LocalExecutorBuilder::default()
        .name(name)
        .spawn(move || async move {
            test().await;
            let _ = done.send(());
        })
        .unwrap();
    match finished.recv_timeout(TEST_TIMEOUT) {
        Ok(()) => handle.join().unwrap(),
        // A panic inside the executor drops the sender.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let _ = handle.join();
            panic!("{name}: the test panicked");
        }
        // The executor thread is left behind; the test process fails and exits.
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: timed out after {TEST_TIMEOUT:?}")
        }
    }
}

// ---- a WebSocket consumer ----

#[derive(Debug, PartialEq, Eq)]
enum Msg {
    Commit(u64),
    Info(String),
    Error(String),
}

struct Consumer {
    stream: TcpStream,
    buf: Vec<u8>,
}

async fn connect_stream(addr: SocketAddr, recv_buffer: Option<usize>) -> TcpStream {
    match recv_buffer {
        None => TcpStream::connect(addr).await.unwrap(),
        Some(bytes) => {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(bytes).unwrap();
            socket.connect(&addr.into()).unwrap();
            socket.set_nonblocking(true).unwrap();
            TcpStream::from(socket)
        }
    }
}

impl Consumer {
    async fn connect(
        addr: SocketAddr,
        cursor: Option<u64>,
        recv_buffer: Option<usize>,
    ) -> Consumer {
        let mut stream = connect_stream(addr, recv_buffer).await;
        let path = match cursor {
            Some(c) => format!("{SUBSCRIBE_REPOS_PATH}?cursor={c}"),
            None => SUBSCRIBE_REPOS_PATH.to_owned(),
        };
        let key = ws::client_key([9; 16]);
        let request = ws::client_request(&addr.to_string(), &path, &key, "fanout-test");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut consumer = Consumer {
            stream,
            buf: Vec::new(),
        };
        loop {
            if let Some(response) = ws::parse_upgrade_response(&consumer.buf, &key).unwrap() {
                assert_eq!(response.status, 101);
                consumer.buf.drain(..response.head_len);
                return consumer;
            }
            assert!(consumer.fill().await, "closed during the handshake");
        }
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await.unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next binary message, or `None` at EOF.
    async fn message(&mut self) -> Option<Vec<u8>> {
        let (opcode, message) = self.frame().await?;
        assert_eq!(opcode, ws::Opcode::Binary);
        Some(message)
    }

    /// The next frame of any kind, or `None` at EOF.
    async fn frame(&mut self) -> Option<(ws::Opcode, Vec<u8>)> {
        loop {
            if let Some(header) = ws::parse_header(&self.buf, Role::Client, 1 << 24).unwrap() {
                let total = header.header_len + header.payload_len as usize;
                if self.buf.len() >= total {
                    let message = self.buf[header.header_len..total].to_vec();
                    self.buf.drain(..total);
                    return Some((header.opcode, message));
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next `n` messages (panics at an early EOF), decoded, with their bytes.
    async fn take(&mut self, n: usize) -> Vec<(Msg, Vec<u8>)> {
        let mut out = Vec::new();
        for _ in 0..n {
            let message = self.message().await.expect("stream ended early");
            out.push((decode(&message), message));
        }
        out
    }

    /// Every message until the server closes.
    async fn rest(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Some(message) = self.message().await {
            out.push(decode(&message));
        }
        out
    }
}

fn decode(message: &[u8]) -> Msg {
    match Frame::decode(message).unwrap().event() {
        Event::Commit(commit) => Msg::Commit(commit.seq()),
        Event::Info(info) => Msg::Info(info.name().to_owned()),
        Event::Error(error) => Msg::Error(error.error().to_owned()),
        other => panic!("unexpected message {other:?}"),
    }
}

/// Assert `got` is exactly the commits `seqs`, byte-equal to the log's records.
fn assert_commits(
    got: &[(Msg, Vec<u8>)],
    seqs: std::ops::RangeInclusive<u64>,
    records: &BTreeMap<u64, Vec<u8>>,
) {
    let want: Vec<u64> = seqs.collect();
    let seen: Vec<u64> = got
        .iter()
        .map(|(msg, _)| match msg {
            Msg::Commit(seq) => *seq,
            other => panic!("expected a commit, got {other:?}"),
        })
        .collect();
    assert_eq!(seen, want, "every seq once, in order");
    for ((_, bytes), seq) in got.iter().zip(&want) {
        assert_eq!(
            Some(bytes),
            records.get(seq),
            "seq {seq}: bytes equal the log record"
        );
    }
}

async fn wait_consumers(hub: &Hub, n: usize) {
    while hub.consumer_count() < n {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

// ---- the tests ----

#[test]
fn live_consumers_get_every_frame_once_in_order_without_copies() {
    run("fanout-live", || async {
        let mut bed = bed("live", log_config, HubConfig::new(), 400);
        bed.source.publish(&bed.hub, 5).await;
        let clients: Vec<_> = (0..3)
            .map(|_| {
                let addr = bed.addr;
                glommio::spawn_local(async move {
                    let mut consumer = Consumer::connect(addr, None, None).await;
                    consumer.take(60).await
                })
            })
            .collect();
        wait_consumers(&bed.hub, 3).await;
        for _ in 0..6 {
            bed.source.publish(&bed.hub, 10).await;
        }
        let records = bed.records();
        for client in clients {
            // No cursor: live from now, so the 5 earlier frames are not sent.
            assert_commits(&client.await, 6..=65, &records);
        }
        let stats = bed.hub.stats();
        assert_eq!(stats.live_frames_sent, 180);
        assert_eq!(stats.replay_frames_sent, 0);
        assert_eq!(
            stats.copied_bytes, 0,
            "no frame byte copied on the live path"
        );
        let snapshot = bed.hub.consumers();
        assert_eq!(snapshot.len(), 3);
        assert!(
            snapshot
                .iter()
                .all(|c| c.sent_seq == Some(65) && c.lag_frames == 0)
        );
        common::report("fanout live: 3 consumers x 60 frames", 180);
    });
}

#[test]
fn cursor_replays_from_the_log_then_crosses_to_live_without_gap_or_duplicate() {
    run("fanout-crossover", || async {
        let mut config = HubConfig::new();
        config.ring_frames_max = 8;
        let mut bed = bed("crossover", log_config, config, 400);
        bed.source.publish(&bed.hub, 300).await;
        let addr = bed.addr;
        let client = glommio::spawn_local(async move {
            let mut consumer = Consumer::connect(addr, Some(5), None).await;
            consumer.take(395).await
        });
        wait_consumers(&bed.hub, 1).await;
        // Publish while the consumer replays: some frames land while its batch is out.
        for _ in 0..20 {
            bed.source.publish(&bed.hub, 5).await;
            glommio::executor().yield_now().await;
        }
        let got = client.await;
        assert_commits(&got, 6..=400, &bed.records());
        let stats = bed.hub.stats();
        assert!(stats.replay_frames_sent > 0, "started from the log");
        assert!(stats.live_frames_sent > 0, "ended live: {stats:?}");
        assert_eq!(stats.copied_bytes, 0);
        common::report("fanout crossover: cursor 5, 395 frames", got.len());
    });
}

#[test]
fn cursor_zero_latest_and_future() {
    run("fanout-cursors", || async {
        let mut bed = bed("cursors", log_config, HubConfig::new(), 400);
        bed.source.publish(&bed.hub, 10).await;
        let records = bed.records();

        // cursor = 0: everything from the oldest, then live.
        let mut zero = Consumer::connect(bed.addr, Some(0), None).await;
        assert_commits(&zero.take(10).await, 1..=10, &records);
        // cursor = latest: nothing to replay; the next frame comes live.
        let mut latest = Consumer::connect(bed.addr, Some(10), None).await;
        wait_consumers(&bed.hub, 2).await;
        bed.source.publish(&bed.hub, 1).await;
        let records = bed.records();
        assert_commits(&zero.take(1).await, 11..=11, &records);
        assert_commits(&latest.take(1).await, 11..=11, &records);

        // cursor > latest: FutureCursor, then the server closes.
        let mut future = Consumer::connect(bed.addr, Some(12), None).await;
        assert_eq!(future.rest().await, vec![Msg::Error("FutureCursor".into())]);
        // cursor = latest is not in the future.
        let mut at_head = Consumer::connect(bed.addr, Some(11), None).await;
        bed.source.publish(&bed.hub, 1).await;
        assert_commits(&at_head.take(1).await, 12..=12, &bed.records());
        common::report("fanout cursors: 0, latest, latest+1", 4);
    });
}

#[test]
fn outdated_cursor_gets_info_then_the_oldest_event() {
    run("fanout-outdated", || async {
        let small_segments = |dir: &std::path::Path| {
            let mut config = log_config(dir);
            config.segment_bytes = 16 * 1024;
            config.replay_window = Duration::ZERO;
            config
        };
        let mut bed = bed("outdated", small_segments, HubConfig::new(), 400);
        bed.source.publish(&bed.hub, 120).await;
        assert!(bed.log.segment_count() > 3, "several segments");
        let report = bed
            .log
            .enforce_retention(SystemTime::now() + Duration::from_secs(1))
            .unwrap();
        let oldest = bed.log.oldest_seq().unwrap().get();
        assert!(oldest > 3, "the window moved: {report:?}");
        let records = bed.records();

        // cursor = oldest − 2: one seq is lost → OutdatedCursor, then from the oldest.
        let mut outdated = Consumer::connect(bed.addr, Some(oldest - 2), None).await;
        let got = outdated.take(1 + (120 - oldest + 1) as usize).await;
        assert_eq!(got[0].0, Msg::Info("OutdatedCursor".into()));
        assert_commits(&got[1..], oldest..=120, &records);
        // cursor = oldest − 1: nothing lost, no info.
        let mut edge = Consumer::connect(bed.addr, Some(oldest - 1), None).await;
        assert_commits(
            &edge.take((120 - oldest + 1) as usize).await,
            oldest..=120,
            &records,
        );
        // cursor = 0: from the oldest, no info.
        let mut zero = Consumer::connect(bed.addr, Some(0), None).await;
        assert_commits(
            &zero.take((120 - oldest + 1) as usize).await,
            oldest..=120,
            &records,
        );
        // All three go on live.
        wait_consumers(&bed.hub, 3).await;
        bed.source.publish(&bed.hub, 1).await;
        let records = bed.records();
        for consumer in [&mut outdated, &mut edge, &mut zero] {
            assert_commits(&consumer.take(1).await, 121..=121, &records);
        }
        common::report("fanout outdated cursor: oldest-2, oldest-1, 0", 3);
    });
}

#[test]
fn a_slow_consumer_falls_back_to_the_log_and_still_gets_everything() {
    run("fanout-slow", || async {
        let mut config = HubConfig::new();
        config.ring_frames_max = 4;
        let mut bed = bed("slow", log_config, config, 16 * 1024);
        let addr = bed.addr;
        let (paused, resume) = flume::bounded::<()>(1);
        let client = glommio::spawn_local(async move {
            let mut consumer = Consumer::connect(addr, None, Some(4096)).await;
            let mut got = consumer.take(1).await;
            let _ = resume.recv_async().await;
            got.extend(consumer.take(199).await);
            got
        });
        wait_consumers(&bed.hub, 1).await;
        bed.source.publish(&bed.hub, 1).await;
        // The consumer reads one frame, then stops while 199 more (~3 MB) are published.
        for _ in 0..199 {
            bed.source.publish(&bed.hub, 1).await;
        }
        paused.send_async(()).await.unwrap();
        let got = client.await;
        assert_commits(&got, 1..=200, &bed.records());
        let stats = bed.hub.stats();
        assert!(
            stats.replay_frames_sent > 0,
            "it fell back to the log: {stats:?}"
        );
        assert_eq!(stats.copied_bytes, 0);
        common::report("fanout slow consumer: fell back, got 200", got.len());
    });
}

#[test]
fn a_consumer_past_its_lag_budget_gets_consumer_too_slow() {
    run("fanout-too-slow", || async {
        let mut config = HubConfig::new();
        config.ring_frames_max = 4;
        config.consumer_lag_bytes_max = 256 * 1024;
        let mut bed = bed("too-slow", log_config, config, 16 * 1024);
        let addr = bed.addr;
        let (paused, resume) = flume::bounded::<()>(1);
        let client = glommio::spawn_local(async move {
            let mut consumer = Consumer::connect(addr, None, Some(4096)).await;
            let first = consumer.take(1).await;
            let _ = resume.recv_async().await;
            (first, consumer.rest().await)
        });
        wait_consumers(&bed.hub, 1).await;
        for _ in 0..200 {
            bed.source.publish(&bed.hub, 1).await;
        }
        paused.send_async(()).await.unwrap();
        let (first, rest) = client.await;
        assert_eq!(first[0].0, Msg::Commit(1));
        let (last, commits) = rest.split_last().expect("some messages");
        assert_eq!(*last, Msg::Error("ConsumerTooSlow".into()));
        let want: Vec<Msg> = (2..2 + commits.len() as u64).map(Msg::Commit).collect();
        assert_eq!(
            commits,
            want.as_slice(),
            "a gapless prefix before the error"
        );
        assert!(commits.len() < 199, "disconnected before the end");
        common::report("fanout too slow: ConsumerTooSlow after a gapless prefix", 1);
    });
}

async fn http_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8(response).unwrap()
}

#[test]
fn router_health_unknown_routes_and_malformed_heads() {
    run("fanout-router", || async {
        let bed = bed("router", log_config, HubConfig::new(), 400);
        let addr = bed.addr;
        // Every fan-out core binds the same address: glommio sets SO_REUSEPORT.
        let second = TcpListener::bind(addr).expect("a second listener on the same port");
        drop(second);
        // Keep-alive: two requests on one connection; the second asks to close.
        let both = http_exchange(
            addr,
            b"GET /xrpc/_health HTTP/1.1\r\nHost: x\r\n\r\nGET /xrpc/_health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(both.matches("HTTP/1.1 200 OK").count(), 2, "{both}");
        assert!(both.contains(r#"{"version":"test-version"}"#), "{both}");

        let cases: [(&[u8], &str, &str); 5] = [
            (
                b"GET /xrpc/com.example.nothing HTTP/1.1\r\nConnection: close\r\n\r\n",
                "501",
                "MethodNotImplemented",
            ),
            (
                b"GET /elsewhere HTTP/1.1\r\nConnection: close\r\n\r\n",
                "404",
                "NotFound",
            ),
            (
                b"POST /xrpc/_health HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                "405",
                "InvalidRequest",
            ),
            (
                b"GET /xrpc/com.atproto.sync.subscribeRepos HTTP/1.1\r\nConnection: close\r\n\r\n",
                "400",
                "InvalidRequest",
            ),
            // A malformed head: 400, then the server closes (read_to_end returns).
            (b"NOT AN HTTP REQUEST\r\n\r\n", "400", "InvalidRequest"),
        ];
        for (request, status, error) in cases {
            let response = http_exchange(addr, request).await;
            assert!(
                response.starts_with(&format!("HTTP/1.1 {status} ")),
                "{response}"
            );
            assert!(
                response.contains(&format!(r#""error":"{error}""#)),
                "{response}"
            );
            assert!(response.contains(r#""message":"#), "{response}");
        }
        // A bad cursor is refused before the upgrade.
        let key = ws::client_key([1; 16]);
        let request = ws::client_request(
            "x",
            &format!("{SUBSCRIBE_REPOS_PATH}?cursor=abc"),
            &key,
            "t",
        );
        let response = http_exchange(addr, request.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
        common::report("fanout router: health, keep-alive, 5 errors, bad cursor", 8);
    });
}

#[test]
fn hidden_accounts_limit_and_write_timeout() {
    run("fanout-policies", || async {
        let mut config = HubConfig::new();
        config.consumers_max = 1;
        config.ring_frames_max = 4;
        config.write_timeout = Duration::from_secs(1);
        let mut bed = bed("policies", log_config, config, 16 * 1024);
        let mut consumer = Consumer::connect(bed.addr, None, Some(4096)).await;
        wait_consumers(&bed.hub, 1).await;

        // A second consumer on this core is refused before the upgrade.
        let key = ws::client_key([2; 16]);
        let request = ws::client_request("x", SUBSCRIBE_REPOS_PATH, &key, "t");
        let response = http_exchange(bed.addr, request.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
        assert!(
            response.contains(r#""error":"ConsumerLimit""#),
            "{response}"
        );

        // A hidden account's frames are not delivered live; unhidden, they are again.
        bed.hub.hide_account(AccountKey::new(1));
        bed.source.publish(&bed.hub, 3).await;
        bed.hub.unhide_account(AccountKey::new(1));
        bed.source.publish(&bed.hub, 2).await;
        assert_commits(&consumer.take(2).await, 4..=5, &bed.records());

        // A consumer that stops reading for good is cut off by the write time-out.
        // Frames keep coming until the socket buffers are full and a write blocks.
        let started = std::time::Instant::now();
        while bed.hub.consumer_count() > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not disconnected"
            );
            bed.source.publish(&bed.hub, 4).await;
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        let stats = bed.hub.stats();
        eprintln!(
            "write time-out {:?} after the consumer stopped; {} bytes had been sent",
            started.elapsed(),
            stats.bytes_sent
        );
        assert_eq!(bed.hub.stats().disconnects, 1);
        drop(consumer);
        common::report("fanout policies: limit, hide, write time-out", 3);
    });
}

#[test]
fn a_client_ping_gets_a_pong_and_the_stream_goes_on() {
    run("fanout-ping", || async {
        let mut bed = bed("ping", log_config, HubConfig::new(), 400);
        let mut consumer = Consumer::connect(bed.addr, None, None).await;
        wait_consumers(&bed.hub, 1).await;
        let mask = [1, 2, 3, 4];
        let mut header = [0u8; ws::WS_HEADER_BYTES_MAX];
        let len = ws::encode_header(true, ws::Opcode::Ping, 5, Some(mask), &mut header);
        let mut payload = b"hello".to_vec();
        ws::apply_mask(&mut payload, mask, 0);
        consumer.stream.write_all(&header[..len]).await.unwrap();
        consumer.stream.write_all(&payload).await.unwrap();
        assert_eq!(
            consumer.frame().await,
            Some((ws::Opcode::Pong, b"hello".to_vec()))
        );
        bed.source.publish(&bed.hub, 1).await;
        assert_commits(&consumer.take(1).await, 1..=1, &bed.records());
        common::report("fanout ping: pong, then frames", 1);
    });
}

/// A rough figure, not an assertion: frames fanned out per second to 8 live consumers on
/// one core (consumers read on the same core). `cargo test --release --test fanout --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn live_fanout_throughput() {
    run("fanout-throughput", || async {
        const CONSUMERS: usize = 8;
        const FRAMES: usize = 4000;
        let mut bed = bed("throughput", log_config, HubConfig::new(), 800);
        // One frame first, so that consumers start live and wait (not replay) while the
        // measured frames are produced.
        bed.source.publish(&bed.hub, 1).await;
        let clients: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let addr = bed.addr;
                glommio::spawn_local(async move {
                    let mut consumer = Consumer::connect(addr, None, None).await;
                    for _ in 0..FRAMES {
                        consumer.message().await.expect("frame");
                    }
                })
            })
            .collect();
        wait_consumers(&bed.hub, CONSUMERS).await;
        let frames = bed.source.produce(FRAMES).await;
        let bytes: usize = frames.iter().map(|f| f.out().len()).sum();
        let started = std::time::Instant::now();
        for frame in frames {
            bed.hub.publish(frame);
        }
        for client in clients {
            client.await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let sent = (CONSUMERS * FRAMES) as f64;
        println!(
            "live fan-out: {CONSUMERS} consumers x {FRAMES} frames ({} B avg): {:.0} frames/s, {:.1} MB/s sent, copied bytes {}",
            bytes / FRAMES,
            sent / elapsed,
            sent * (bytes / FRAMES) as f64 / elapsed / 1e6,
            bed.hub.stats().copied_bytes
        );
    });
}

#[test]
fn takedowns_are_hidden_in_replay_and_live() {
    run("fanout-takedown", || async {
        let mut bed = bed("takedown", log_config, HubConfig::new(), 400);
        for account in [1, 2, 1] {
            bed.source.account = account;
            bed.source.publish(&bed.hub, 5).await;
        }
        // Account 2 is taken down: the log hides its records at replay, the hub live.
        let taken_down = AccountKey::new(2);
        bed.log
            .take_down(taken_down, relay::eventlog::Seq::new(16).unwrap())
            .unwrap();
        bed.hub.hide_account(taken_down);
        let records = bed.records();
        let mut consumer = Consumer::connect(bed.addr, Some(0), None).await;
        let got = consumer.take(10).await;
        assert_commits(&got[..5], 1..=5, &records);
        assert_commits(&got[5..], 11..=15, &records);
        bed.source.account = 2;
        bed.source.publish(&bed.hub, 3).await;
        bed.source.account = 1;
        bed.source.publish(&bed.hub, 1).await;
        assert_commits(&consumer.take(1).await, 19..=19, &bed.records());
        common::report("fanout takedown: replay and live", 2);
    });
}

//! `relay tail`: a checking consumer. It subscribes to any relay's (or PDS's)
//! `subscribeRepos`, decodes and re-verifies every event independently of the relay's own
//! code paths where it can (signature with the DID's key from the PLC directory, with the
//! reference backends; seq strictly increasing; per-account rev order; Sync 1.1
//! inversion), and reports counts, gaps, duplicates and end-to-end latency.
//!
//! Owns: `check` (the sans-IO checker and its report), `histogram`, and with the
//! `server` feature `client` (its own blocking WebSocket client) and [`run`] (one thread:
//! read, look keys up through `identity::service`, check).
//! Must not: share state with a relay under test; it is a client like any other.
//!
//! Threading: [`run`] blocks its calling thread, which reads, decodes and takes seq,
//! type counts and latency on arrival. The keyed checks (signatures, MST inversion) run
//! there too with `check_threads = 1`, or on `check_threads` threads that each own the
//! accounts hashing to them (per-account order kept), fed through bounded queues that
//! block the reader when full. Key lookups are synchronous on the checking thread (once
//! per account, cached). A slow check therefore backpressures the server through TCP,
//! which shows in the latency figures: tail measures what a consumer that checks
//! everything would see. In sharded mode the progress line shows the reader's counts;
//! the keyed verdicts join the report at the end.

pub mod check;
pub mod cli;
#[cfg(feature = "server")]
pub mod client;
pub mod histogram;

pub use check::{Arrival, Backends, Checker, CheckerConfig, Feed, SeenEvent, TailReport};

#[cfg(feature = "server")]
pub use run_impl::{StopHandle, TailConfig, TailError, progress_line, run};

#[cfg(feature = "server")]
mod run_impl {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use futures_lite::future::block_on;

    use crate::api::http::Url;
    use crate::config::limits::{TAIL_CHECK_QUEUE_FRAMES_MAX, TAIL_CHECK_THREADS_MAX};
    use crate::identity::service::{IdentityConfig, IdentityService, now_micros};
    use crate::identity::transport::tls_client_config;
    use crate::tail::check::Arrival;
    use crate::tail::check::{Backends, Checker, CheckerConfig, Feed, TailReport};
    use crate::tail::client::{ClientError, Next, WsClient};
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
    use std::thread::JoinHandle;

    /// The XRPC path of the firehose, added when the URL has no path.
    const SUBSCRIBE_REPOS_PATH: &str = "/xrpc/com.atproto.sync.subscribeRepos";
    /// How often the read loop wakes without data to look at the stop flag and limits.
    const POLL_INTERVAL: Duration = Duration::from_millis(50);
    /// Time allowed to connect and upgrade.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Stops a running [`run`] from another thread (it returns its report within about
    /// one poll interval, 50 ms).
    #[derive(Clone, Debug, Default)]
    pub struct StopHandle(Arc<AtomicBool>);

    impl StopHandle {
        /// A fresh handle.
        pub fn new() -> StopHandle {
            StopHandle::default()
        }

        /// Ask the run to stop.
        pub fn stop(&self) {
            self.0.store(true, Ordering::Relaxed);
        }

        /// Whether stop was asked.
        pub fn is_stopped(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }

    /// What to subscribe to and when to stop.
    #[derive(Clone, Debug)]
    pub struct TailConfig {
        /// `ws://` or `wss://` URL: a host (the subscribeRepos path is added) or the full
        /// endpoint.
        pub url: String,
        /// Resume from this cursor.
        pub cursor: Option<u64>,
        /// The PLC directory the keys come from.
        pub plc_url: String,
        /// Allow `http://` for the PLC directory and did:web (loopback tests).
        pub allow_http: bool,
        /// Stop after this many frames.
        pub events_max: Option<u64>,
        /// Stop after this long.
        pub duration: Option<Duration>,
        /// Stop when nothing arrives for this long.
        pub idle_timeout: Duration,
        /// Record (seq, did, rev, type) of every event in the report (bounded).
        pub record_events: bool,
        /// Signature backends (reference by default).
        pub backends: Backends,
        /// Print a progress line to stderr each second.
        pub progress: bool,
        /// Threads for the keyed checks (1 = all on the reading thread; at most
        /// `TAIL_CHECK_THREADS_MAX`).
        pub check_threads: usize,
        /// Stop from another thread.
        pub stop: StopHandle,
    }

    impl TailConfig {
        /// Defaults: no cursor, no limits but a 10 s idle time-out, reference backends,
        /// no recording, no progress, one check thread per core.
        pub fn new(url: &str, plc_url: &str) -> TailConfig {
            TailConfig {
                url: url.to_owned(),
                cursor: None,
                plc_url: plc_url.to_owned(),
                allow_http: false,
                events_max: None,
                duration: None,
                idle_timeout: Duration::from_secs(10),
                record_events: false,
                backends: Backends::Reference,
                progress: false,
                check_threads: std::thread::available_parallelism()
                    .map_or(1, std::num::NonZeroUsize::get)
                    .min(TAIL_CHECK_THREADS_MAX),
                stop: StopHandle::new(),
            }
        }
    }

    /// Why tail could not start. Once subscribed, every ending (including a broken
    /// connection) returns the report, with the cause in `TailReport::end`.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum TailError {
        /// The URL is not ws:// or wss://.
        BadUrl,
        /// The identity service could not start (bad PLC URL, TLS config).
        Identity(crate::identity::resolver::ResolveError),
        /// Connecting or upgrading failed.
        Client(ClientError),
    }

    impl TailError {
        /// A short, bounded label.
        pub fn reason(&self) -> &'static str {
            match self {
                TailError::BadUrl => "bad_url",
                TailError::Identity(e) => e.reason(),
                TailError::Client(e) => e.reason(),
            }
        }
    }

    impl std::fmt::Display for TailError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                TailError::Identity(e) => write!(f, "identity: {e}"),
                TailError::Client(e) => write!(f, "{e}"),
                TailError::BadUrl => f.write_str("bad_url: expected ws:// or wss://"),
            }
        }
    }

    impl std::error::Error for TailError {}

    /// The subscription URL: the firehose path when none is given, and the cursor.
    fn subscription_url(config: &TailConfig) -> Result<Url, TailError> {
        let url = Url::parse(&config.url).map_err(|_| TailError::BadUrl)?;
        if !matches!(
            url.scheme,
            crate::api::http::Scheme::Ws | crate::api::http::Scheme::Wss
        ) {
            return Err(TailError::BadUrl);
        }
        let mut path = if url.path_and_query == "/" {
            SUBSCRIBE_REPOS_PATH.to_owned()
        } else {
            url.path_and_query.clone()
        };
        if let Some(cursor) = config.cursor {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&format!("cursor={cursor}"));
        }
        Ok(url.with_path(&path))
    }

    /// Subscribe and check until a limit, the idle time-out, a stop, or the connection
    /// ends; then return the report. Blocks the calling thread.
    pub fn run(config: TailConfig) -> Result<TailReport, TailError> {
        let url = subscription_url(&config)?;
        let mut identity_config = IdentityConfig::new(&config.plc_url);
        identity_config.allow_http = config.allow_http;
        let identity = IdentityService::spawn(identity_config).map_err(TailError::Identity)?;
        let tls = tls_client_config().map_err(|e| TailError::Client(ClientError::Connect(e)))?;
        let mut client = WsClient::connect(&url, Some(&tls), CONNECT_TIMEOUT, POLL_INTERVAL)
            .map_err(TailError::Client)?;
        let checker_config = CheckerConfig {
            backends: config.backends,
            record_events: config.record_events,
        };
        let mut checking = Checking::start(checker_config, config.check_threads, &identity);
        let end = read_loop(&config, &mut client, &mut checking, &identity);
        let mut report = checking.finish();
        report.end = end.to_owned();
        Ok(report)
    }

    fn read_loop(
        config: &TailConfig,
        client: &mut WsClient,
        checking: &mut Checking,
        identity: &IdentityService,
    ) -> &'static str {
        let started = Instant::now();
        let mut last_data = Instant::now();
        let mut last_progress = Instant::now();
        let mut message = Vec::new();
        loop {
            if config.stop.is_stopped() {
                return "stopped";
            }
            if config.duration.is_some_and(|d| started.elapsed() >= d) {
                return "duration";
            }
            if config.progress && last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                eprintln!("{}", progress_line(&checking.progress()));
            }
            match client.next_message(&mut message) {
                Ok(Next::Message) => {
                    last_data = Instant::now();
                    checking.feed(identity, &mut message, now_micros());
                    if config
                        .events_max
                        .is_some_and(|max| checking.frames() >= max)
                    {
                        return "events_max";
                    }
                }
                Ok(Next::Idle) if last_data.elapsed() >= config.idle_timeout => {
                    return "idle_timeout";
                }
                Ok(Next::Idle) => {}
                Err(e) => return e.reason(),
            }
        }
    }

    /// Work for a check thread, in the order the frames arrived.
    enum Work {
        /// A `#commit`/`#sync` of this DID, received at this time.
        Frame(String, Vec<u8>, u64),
        /// The DID's identity changed.
        Forget(String),
    }

    /// Where the checks run: all on the reading thread, or the keyed checks on threads
    /// that each own the accounts hashing to them (so per-account order holds).
    enum Checking {
        Inline(Checker),
        Sharded {
            arrival: Checker,
            workers: Vec<(SyncSender<Work>, JoinHandle<TailReport>)>,
        },
    }

    impl Checking {
        fn start(config: CheckerConfig, threads: usize, identity: &IdentityService) -> Checking {
            let threads = threads.clamp(1, TAIL_CHECK_THREADS_MAX);
            if threads == 1 {
                return Checking::Inline(Checker::new(config));
            }
            let mut workers = Vec::with_capacity(threads);
            for index in 0..threads {
                let (sender, receiver) = sync_channel(TAIL_CHECK_QUEUE_FRAMES_MAX);
                let identity = identity.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("tail-check-{index}"))
                    .spawn(move || check_worker(config, &receiver, &identity));
                match spawned {
                    Ok(handle) => workers.push((sender, handle)),
                    // No thread: check what we have on the threads that did start.
                    Err(_) => break,
                }
            }
            if workers.is_empty() {
                return Checking::Inline(Checker::new(config));
            }
            Checking::Sharded {
                arrival: Checker::new(config),
                workers,
            }
        }

        fn feed(&mut self, identity: &IdentityService, message: &mut Vec<u8>, recv_micros: u64) {
            match self {
                Checking::Inline(checker) => handle(checker, identity, message, recv_micros),
                Checking::Sharded { arrival, workers } => {
                    match arrival.arrive(message, recv_micros) {
                        Arrival::Done => {}
                        Arrival::Keyed(did) => {
                            let worker = shard(&did, workers.len());
                            let frame = std::mem::take(message);
                            if let Some((sender, _)) = workers.get(worker) {
                                // A worker that died has dropped its receiver; its share of
                                // the report is lost, which the totals show.
                                let _ = sender.send(Work::Frame(did, frame, recv_micros));
                            }
                        }
                        Arrival::IdentityChanged(did) => {
                            identity.purge(&did);
                            if let Some((sender, _)) = workers.get(shard(&did, workers.len())) {
                                let _ = sender.send(Work::Forget(did));
                            }
                        }
                    }
                }
            }
        }

        fn frames(&self) -> u64 {
            match self {
                Checking::Inline(checker)
                | Checking::Sharded {
                    arrival: checker, ..
                } => checker.frames(),
            }
        }

        /// The reading thread's view (in sharded mode the keyed verdicts arrive at the end).
        fn progress(&self) -> TailReport {
            match self {
                Checking::Inline(checker)
                | Checking::Sharded {
                    arrival: checker, ..
                } => checker.snapshot(false),
            }
        }

        fn finish(self) -> TailReport {
            match self {
                Checking::Inline(checker) => checker.report(),
                Checking::Sharded { arrival, workers } => {
                    let mut report = arrival.report();
                    for (sender, handle) in workers {
                        drop(sender);
                        if let Ok(part) = handle.join() {
                            report.merge_keyed(part);
                        }
                    }
                    report
                }
            }
        }
    }

    /// A stable shard of a DID (FNV-1a).
    fn shard(did: &str, shards: usize) -> usize {
        let hash = did.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        (hash % shards.max(1) as u64) as usize
    }

    fn check_worker(
        config: CheckerConfig,
        work: &Receiver<Work>,
        identity: &IdentityService,
    ) -> TailReport {
        let mut checker = Checker::new(config);
        for item in work {
            match item {
                Work::Frame(did, frame, recv_micros) => {
                    if let Feed::NeedKey(did) = checker.feed_keyed(&did, &frame, recv_micros) {
                        provide(&mut checker, identity, &did);
                    }
                }
                Work::Forget(did) => {
                    identity.purge(&did);
                    checker.forget_key(&did);
                }
            }
        }
        checker.report()
    }

    /// Feed one message; fetch the key synchronously when the checker asks for it.
    fn handle(checker: &mut Checker, identity: &IdentityService, message: &[u8], recv_micros: u64) {
        match checker.feed(message, recv_micros) {
            Feed::Done => {}
            Feed::NeedKey(did) => provide(checker, identity, &did),
            Feed::IdentityChanged(did) => identity.purge(&did),
        }
    }

    fn provide(checker: &mut Checker, identity: &IdentityService, did: &str) {
        let resolved = block_on(identity.resolve(did));
        let key = resolved.as_ref().map(|r| &r.document.signing_key);
        checker.provide_key(did, key.map_err(|e| e.reason()));
    }

    /// One line of progress.
    pub fn progress_line(report: &TailReport) -> String {
        format!(
            "tail: {} frames ({} valid, {} invalid), seq {}..{}, {} gaps, {} dups, latency p50 {} µs p99 {} µs",
            report.frames,
            report.valid,
            report.invalid,
            report.seq.first.unwrap_or(0),
            report.seq.last.unwrap_or(0),
            report.seq.gaps,
            report.seq.duplicates,
            report.latency.p50_micros,
            report.latency.p99_micros,
        )
    }
}

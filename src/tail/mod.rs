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
//! Threading: [`run`] blocks its calling thread; it reads and checks on that thread and
//! waits for key lookups synchronously (once per account, cached). A slow check therefore
//! backpressures the server through TCP, which shows up in the latency figures: tail
//! measures what a consumer that checks everything would see.

pub mod check;
pub mod cli;
#[cfg(feature = "server")]
pub mod client;
pub mod histogram;

pub use check::{Backends, Checker, CheckerConfig, Feed, SeenEvent, TailReport};

#[cfg(feature = "server")]
pub use run_impl::{StopHandle, TailConfig, TailError, progress_line, run};

#[cfg(feature = "server")]
mod run_impl {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use futures_lite::future::block_on;

    use crate::api::http::Url;
    use crate::identity::service::{IdentityConfig, IdentityService, now_micros};
    use crate::identity::transport::tls_client_config;
    use crate::tail::check::{Backends, Checker, CheckerConfig, Feed, TailReport};
    use crate::tail::client::{ClientError, Next, WsClient};

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
        /// Stop from another thread.
        pub stop: StopHandle,
    }

    impl TailConfig {
        /// Defaults: no cursor, no limits but a 10 s idle time-out, reference backends,
        /// no recording, no progress.
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
        let mut checker = Checker::new(CheckerConfig {
            backends: config.backends,
            record_events: config.record_events,
        });
        let end = read_loop(&config, &mut client, &mut checker, &identity);
        let mut report = checker.report();
        report.end = end.to_owned();
        Ok(report)
    }

    fn read_loop(
        config: &TailConfig,
        client: &mut WsClient,
        checker: &mut Checker,
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
                eprintln!("{}", progress_line(&checker.snapshot(false)));
            }
            match client.next_message(&mut message) {
                Ok(Next::Message) => {
                    last_data = Instant::now();
                    handle(checker, identity, &message, now_micros());
                    if config
                        .events_max
                        .is_some_and(|max| checker_frames(checker) >= max)
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

    fn checker_frames(checker: &Checker) -> u64 {
        checker.frames()
    }

    /// Feed one message; fetch the key synchronously when the checker asks for it.
    fn handle(checker: &mut Checker, identity: &IdentityService, message: &[u8], recv_micros: u64) {
        match checker.feed(message, recv_micros) {
            Feed::Done => {}
            Feed::NeedKey(did) => {
                let resolved = block_on(identity.resolve(&did));
                let key = resolved.as_ref().map(|r| &r.document.signing_key);
                checker.provide_key(&did, key.map_err(|e| e.reason()));
            }
            Feed::IdentityChanged(did) => identity.purge(&did),
        }
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

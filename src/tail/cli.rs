//! `relay tail`: the command line of the checking consumer. Flags have `RELAY_TAIL_…`
//! environment twins. A progress line goes to stderr each second, the summary to stdout at
//! the end, the full report as JSON to `--json PATH` when given.

use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `relay tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// The firehose: `ws://` or `wss://` host (the subscribeRepos path is added) or full URL.
    #[arg(long, env = "RELAY_TAIL_URL")]
    pub url: String,
    /// Resume from this cursor.
    #[arg(long, env = "RELAY_TAIL_CURSOR")]
    pub cursor: Option<u64>,
    /// The PLC directory the signing keys come from.
    #[arg(long, env = "RELAY_TAIL_PLC", default_value = "https://plc.directory")]
    pub plc: String,
    /// Allow plain http:// for the PLC directory and did:web (loopback tests).
    #[arg(long, env = "RELAY_TAIL_ALLOW_HTTP")]
    pub allow_http: bool,
    /// Stop after this many frames.
    #[arg(long, env = "RELAY_TAIL_EVENTS")]
    pub events: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, env = "RELAY_TAIL_DURATION_SECS")]
    pub duration_secs: Option<u64>,
    /// Stop when nothing arrives for this many seconds.
    #[arg(long, env = "RELAY_TAIL_IDLE_TIMEOUT_SECS", default_value_t = 10)]
    pub idle_timeout_secs: u64,
    /// Write the full report as JSON here.
    #[arg(long, env = "RELAY_TAIL_JSON")]
    pub json: Option<PathBuf>,
    /// Record every event's (seq, did, rev, type) in the JSON report (bounded).
    #[arg(long, env = "RELAY_TAIL_RECORD_EVENTS")]
    pub record_events: bool,
    /// Verify with libsecp256k1/ring instead of the reference k256/p256.
    #[arg(long, env = "RELAY_TAIL_FAST_VERIFY")]
    pub fast_verify: bool,
    /// Threads for signature and MST checks (default: one per core, at most 8).
    #[arg(long, env = "RELAY_TAIL_CHECK_THREADS")]
    pub check_threads: Option<usize>,
}

/// Run the consumer. Exit 0 when every event checked out, 1 when some did not, 2 when
/// tail could not start.
pub fn run(args: TailArgs) -> ExitCode {
    #[cfg(feature = "server")]
    {
        run_server(args)
    }
    #[cfg(not(feature = "server"))]
    {
        let _ = args;
        eprintln!("relay tail needs the `server` feature (network IO)");
        ExitCode::from(2)
    }
}

#[cfg(feature = "server")]
fn run_server(args: TailArgs) -> ExitCode {
    use crate::tail::{Backends, TailConfig};
    use std::time::Duration;

    let mut config = TailConfig::new(&args.url, &args.plc);
    config.cursor = args.cursor;
    config.allow_http = args.allow_http;
    config.events_max = args.events;
    config.duration = args.duration_secs.map(Duration::from_secs);
    config.idle_timeout = Duration::from_secs(args.idle_timeout_secs);
    config.record_events = args.record_events;
    config.progress = true;
    if let Some(threads) = args.check_threads {
        config.check_threads = threads;
    }
    if args.fast_verify {
        config.backends = Backends::Fast;
    }
    let report = match crate::tail::run(config) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("relay tail: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", crate::tail::progress_line(&report));
    println!(
        "tail: ended by {}; {:.1} s, {:.0} frames/s; by type {:?}; invalid {:?}; latency p99.9 {} µs max {} µs",
        report.end,
        report.elapsed_secs,
        report.events_per_sec,
        report.by_type,
        report.invalid_by_reason,
        report.latency.p999_micros,
        report.latency.max_micros,
    );
    if let Some(path) = &args.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("relay tail: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.invalid == 0 && report.seq.duplicates == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

//! The binary's logger: one line per record on stderr, `RELAY_LOG` (error, warn, info,
//! debug, trace; default info) sets the level.
//!
//! Owns: formatting log lines. Must not: be on a hot path at `info` (data-plane code logs
//! per frame only at `debug`).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let thread = std::thread::current();
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        // A failed write to stderr has nowhere better to go.
        let _ = writeln!(
            std::io::stderr().lock(),
            "{now:.6} {level} [{}] {}: {}",
            thread.name().unwrap_or("-"),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Install the logger once; later calls do nothing.
pub fn init() {
    let level = match std::env::var("RELAY_LOG").as_deref() {
        Ok("error") => LevelFilter::Error,
        Ok("warn") => LevelFilter::Warn,
        Ok("debug") => LevelFilter::Debug,
        Ok("trace") => LevelFilter::Trace,
        Ok("off") => LevelFilter::Off,
        _ => LevelFilter::Info,
    };
    // Leaked once: the logger lives as long as the process.
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { level }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

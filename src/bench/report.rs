//! The figures of one run and their outputs: a summary table (stdout), a JSON file and an
//! HTML report with inline SVG plots (latency distribution, events/s over time, RSS over
//! time). No scripts, no external assets: the HTML file is self-contained.
//!
//! Owns: turning samples, the final scrape and the consumers' reports into figures.
//! Does not: measure anything itself.

use super::BenchPlan;
use super::Scenario;
use super::prom::{Scrape, names};
use super::runner::CpuPlacement;
use crate::sim::fleet::FleetCounters;
use crate::tail::TailReport;
use crate::tail::histogram::Percentiles;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One sample of the relay and the fleet (taken each second).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sample {
    /// `backlog`, `connect`, `warmup` or `measure`.
    pub phase: &'static str,
    /// Seconds since the bench started.
    pub t_secs: f64,
    /// Events the fleet emitted so far.
    pub offered_total: u64,
    /// Frames the relay sequenced so far (`relay_sequencer_frames_total`).
    pub validated_total: u64,
    /// Frames the relay wrote to consumers so far (`relay_fanout_frames_sent_total`).
    pub sent_total: u64,
    /// Frames the relay dropped so far (`relay_verify_rejections_total`).
    pub rejected_total: u64,
    /// The relay's `VmRSS`, KiB.
    pub rss_kib: u64,
    /// The relay's `utime + stime`, seconds.
    pub cpu_secs: f64,
    /// Whether this second's metrics scrape answered (else the totals are the last ones).
    pub scraped: bool,
}

/// What one consumer saw.
#[derive(Clone, Debug, Serialize)]
pub struct ConsumerSummary {
    /// Frames received.
    pub frames: u64,
    /// Events that passed every check.
    pub valid: u64,
    /// Events that failed a check.
    pub invalid: u64,
    /// Failed events by reason.
    pub invalid_by_reason: BTreeMap<&'static str, u64>,
    /// Seq gaps.
    pub gaps: u64,
    /// Repeated seqs.
    pub duplicates: u64,
    /// Simulator emit → consumer receive, µs.
    pub latency: Percentiles,
    /// Frames/s between its first and last frame.
    pub events_per_sec: f64,
    /// Why it ended.
    pub end: String,
}

impl ConsumerSummary {
    fn of(report: &TailReport) -> ConsumerSummary {
        ConsumerSummary {
            frames: report.frames,
            valid: report.valid,
            invalid: report.invalid,
            invalid_by_reason: report.invalid_by_reason.clone(),
            gaps: report.seq.gaps,
            duplicates: report.seq.duplicates,
            latency: report.latency,
            events_per_sec: report.events_per_sec,
            end: report.end.clone(),
        }
    }
}

/// RSS of a long run: one value a minute after warm-up and the least-squares slope.
#[derive(Clone, Debug, Serialize)]
pub struct RssTrend {
    /// `VmRSS` at each whole minute of the measured window, KiB.
    pub rss_per_minute_kib: Vec<u64>,
    /// Slope of those values, KiB per minute (0 with fewer than two).
    pub slope_kib_per_minute: f64,
}

/// Every figure of one run (the JSON file is this, serialized).
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The plan as run.
    pub plan: BenchPlan,
    /// True when smaller than the scenario's full size.
    pub reduced: bool,
    /// CPUs of the relay and of the bench's threads.
    pub placement: CpuPlacement,
    /// Ingest shards of the relay at `--cores` (`runtime::placement`).
    pub ingest_shards: usize,
    /// Length of the measured window, seconds.
    pub measured_secs: f64,
    /// `max`: events pre-generated before the relay started.
    pub backlog_events: Option<u64>,
    /// Events/s the fleet emitted during the window.
    pub offered_events_per_sec: f64,
    /// Events/s the relay sequenced during the window (`max`: while it had work).
    pub validated_events_per_sec: f64,
    /// The same per ingest shard.
    pub validated_events_per_sec_per_ingest_core: f64,
    /// Events/s the relay dropped during the window (`relay_verify_rejections_total`).
    pub rejected_events_per_sec: f64,
    /// Mean over consumers of frames received / window.
    pub delivered_events_per_sec_per_consumer: f64,
    /// All consumers together.
    pub delivered_events_per_sec_total: f64,
    /// The worst consumer's value of each percentile, µs.
    pub latency_worst: Percentiles,
    /// Largest `VmRSS` seen (from the relay's start), KiB.
    pub rss_peak_kib: u64,
    /// `VmRSS` at the end of the window, KiB.
    pub rss_final_kib: u64,
    /// Relay CPU seconds during the window.
    pub cpu_secs: f64,
    /// Relay CPU seconds per 1,000 sequenced events during the window.
    pub cpu_secs_per_1000_events: f64,
    /// `relay_verify_rejections_total` by reason, at the end.
    pub rejections_by_reason: BTreeMap<String, u64>,
    /// `relay_frame_copied_bytes_total` at the end; `None` when the relay does not export it.
    pub frame_copied_bytes_total: Option<u64>,
    /// `relay_fanout_copied_bytes_total` at the end; `None` when absent.
    pub fanout_copied_bytes_total: Option<u64>,
    /// (frame + fan-out copied bytes) / sequenced frames, of the series present.
    pub copied_bytes_per_frame: Option<f64>,
    /// Frames the relay sequenced in all (end of run).
    pub sequenced_total: u64,
    /// The fleet's final counters.
    pub fleet_emitted: u64,
    /// Large commits the fleet emitted.
    pub fleet_large_commits: u64,
    /// `soak` (and any run of two minutes or more): RSS each minute.
    pub rss_trend: Option<RssTrend>,
    /// Per consumer.
    pub consumers: Vec<ConsumerSummary>,
    /// Each second.
    pub samples: Vec<Sample>,
    /// What the reader should know (reduced sizes, shared CPUs, missing series).
    pub notes: Vec<String>,
    /// Wall time of the whole run, seconds.
    pub wall_secs: f64,
}

impl BenchReport {
    /// Every consumer received something and saw no invalid, missing or repeated event.
    pub fn consumers_clean(&self) -> bool {
        self.consumers
            .iter()
            .all(|c| c.frames > 0 && c.invalid == 0 && c.gaps == 0 && c.duplicates == 0)
    }
}

/// What [`build`] turns into a report.
pub(crate) struct Inputs<'a> {
    pub plan: &'a BenchPlan,
    pub placement: &'a CpuPlacement,
    pub samples: Vec<Sample>,
    pub final_scrape: &'a Scrape,
    pub consumers: &'a [TailReport],
    pub fleet: &'a FleetCounters,
    pub backlog: Option<u64>,
    pub notes: Vec<String>,
    pub wall_secs: f64,
}

/// The figures.
pub(crate) fn build(inputs: Inputs<'_>) -> BenchReport {
    let Inputs {
        plan,
        placement,
        samples,
        final_scrape,
        consumers,
        fleet,
        backlog,
        mut notes,
        wall_secs,
    } = inputs;
    let first = samples.iter().position(|s| s.phase == "measure");
    let start = first
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| samples.get(i))
        .cloned()
        .unwrap_or_default();
    let end = samples.last().cloned().unwrap_or_default();
    let secs = (end.t_secs - start.t_secs).max(f64::EPSILON);
    let ingest_shards =
        crate::runtime::placement::ingest_shards(&crate::runtime::placement::plan(plan.cores));
    let validated = end.validated_total.saturating_sub(start.validated_total);
    let validated_per_sec = if plan.scenario == Scenario::Max {
        busy_rate(&samples)
    } else {
        validated as f64 / secs
    };
    let cpu = end.cpu_secs - start.cpu_secs;
    let frames: Vec<u64> = consumers.iter().map(|c| c.frames).collect();
    let delivered_total = frames.iter().sum::<u64>() as f64 / secs;
    let copied = copied_bytes(final_scrape, end.validated_total, &mut notes);
    note_context(plan, placement, &mut notes);
    BenchReport {
        plan: plan.clone(),
        reduced: plan.reduced(),
        placement: placement.clone(),
        ingest_shards,
        measured_secs: secs,
        backlog_events: backlog,
        offered_events_per_sec: end.offered_total.saturating_sub(start.offered_total) as f64 / secs,
        validated_events_per_sec: validated_per_sec,
        validated_events_per_sec_per_ingest_core: validated_per_sec / ingest_shards.max(1) as f64,
        rejected_events_per_sec: end.rejected_total.saturating_sub(start.rejected_total) as f64
            / secs,
        delivered_events_per_sec_per_consumer: delivered_total / consumers.len().max(1) as f64,
        delivered_events_per_sec_total: delivered_total,
        latency_worst: worst(consumers),
        rss_peak_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        rss_final_kib: end.rss_kib,
        cpu_secs: cpu,
        cpu_secs_per_1000_events: if validated > 0 {
            cpu / (validated as f64 / 1000.0)
        } else {
            0.0
        },
        rejections_by_reason: final_scrape
            .sum_by(names::REJECTIONS, "reason")
            .into_iter()
            .map(|(k, v)| (k, v as u64))
            .collect(),
        frame_copied_bytes_total: copied.0,
        fanout_copied_bytes_total: copied.1,
        copied_bytes_per_frame: copied.2,
        sequenced_total: end.validated_total,
        fleet_emitted: fleet.emitted,
        fleet_large_commits: fleet.large_commits,
        rss_trend: rss_trend(&samples),
        consumers: consumers.iter().map(ConsumerSummary::of).collect(),
        samples,
        notes,
        wall_secs,
    }
}

/// `max`: sequenced events over the seconds in which the relay sequenced any (from the
/// first such second to the last), so a drained backlog does not dilute the rate.
fn busy_rate(samples: &[Sample]) -> f64 {
    let busy: Vec<(f64, u64)> = samples
        .windows(2)
        .filter(|w| w[1].validated_total > w[0].validated_total)
        .map(|w| {
            (
                w[1].t_secs - w[0].t_secs,
                w[1].validated_total - w[0].validated_total,
            )
        })
        .collect();
    let first = samples
        .windows(2)
        .position(|w| w[1].validated_total > w[0].validated_total);
    let last = samples
        .windows(2)
        .rposition(|w| w[1].validated_total > w[0].validated_total);
    match (first, last) {
        (Some(first), Some(last)) => {
            let span = samples[last + 1].t_secs - samples[first].t_secs;
            let events: u64 = busy.iter().map(|(_, n)| n).sum();
            events as f64 / span.max(f64::EPSILON)
        }
        _ => 0.0,
    }
}

fn copied_bytes(
    scrape: &Scrape,
    frames: u64,
    notes: &mut Vec<String>,
) -> (Option<u64>, Option<u64>, Option<f64>) {
    let frame = scrape
        .has(names::FRAME_COPIED)
        .then(|| scrape.sum(names::FRAME_COPIED) as u64);
    let fanout = scrape
        .has(names::FANOUT_COPIED)
        .then(|| scrape.sum(names::FANOUT_COPIED) as u64);
    if frame.is_none() {
        notes.push(format!(
            "the relay does not export `{}` yet (expected name: user-space copies of frame \
             bytes by the ingest frame buffers); copied bytes per frame counts only the series present",
            names::FRAME_COPIED
        ));
    }
    let per_frame = (frame.is_some() || fanout.is_some())
        .then(|| (frame.unwrap_or(0) + fanout.unwrap_or(0)) as f64 / frames.max(1) as f64);
    (frame, fanout, per_frame)
}

fn note_context(plan: &BenchPlan, placement: &CpuPlacement, notes: &mut Vec<String>) {
    if placement.shared {
        notes.push(format!(
            "{} CPUs: the relay (--cores {}) shares them with the simulator and the consumers; \
             figures are bounded by that, not by the relay alone",
            placement.cpus.len(),
            plan.cores
        ));
    } else {
        notes.push(format!(
            "relay executors pinned to CPUs {:?}; simulator and consumers on CPUs {:?}; the \
             relay's helper threads (identity, event-log writer, replay, metrics) are not pinned",
            placement.relay_cpus, placement.bench_cpus
        ));
    }
    if plan.reduced() {
        notes.push(format!(
            "reduced size: the full `{}` scenario does not fit this machine",
            plan.scenario.label()
        ));
    }
    if plan.scenario == Scenario::Max {
        notes.push(
            "max: latency is from each event's emit into the backlog, so it includes the wait \
             in the backlog; it is not an end-to-end latency of a live stream"
                .to_owned(),
        );
    }
}

fn worst(consumers: &[TailReport]) -> Percentiles {
    consumers.iter().fold(Percentiles::default(), |w, c| {
        let l = &c.latency;
        Percentiles {
            count: w.count + l.count,
            min_micros: if w.count == 0 {
                l.min_micros
            } else {
                w.min_micros.min(l.min_micros)
            },
            p50_micros: w.p50_micros.max(l.p50_micros),
            p90_micros: w.p90_micros.max(l.p90_micros),
            p99_micros: w.p99_micros.max(l.p99_micros),
            p999_micros: w.p999_micros.max(l.p999_micros),
            max_micros: w.max_micros.max(l.max_micros),
        }
    })
}

/// RSS at each whole minute of the measured window, when it has two or more.
fn rss_trend(samples: &[Sample]) -> Option<RssTrend> {
    let measure: Vec<&Sample> = samples.iter().filter(|s| s.phase == "measure").collect();
    let t0 = measure.first()?.t_secs;
    let mut per_minute = Vec::new();
    for sample in &measure {
        let minute = ((sample.t_secs - t0) / 60.0).floor() as usize;
        if minute >= per_minute.len() {
            per_minute.push(sample.rss_kib);
        }
    }
    if per_minute.len() < 2 {
        return None;
    }
    Some(RssTrend {
        slope_kib_per_minute: slope(&per_minute),
        rss_per_minute_kib: per_minute,
    })
}

/// Least-squares slope of `values` against their index.
fn slope(values: &[u64]) -> f64 {
    let n = values.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, &v) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (v as f64 - mean_y);
        den += dx * dx;
    }
    if den > 0.0 { num / den } else { 0.0 }
}

/// One progress line (each second).
pub fn progress_line(
    last: Option<&Sample>,
    now: &Sample,
    second: u64,
    of: u64,
    consumers: usize,
) -> String {
    let last = last.cloned().unwrap_or_default();
    let dt = (now.t_secs - last.t_secs).max(f64::EPSILON);
    let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt;
    format!(
        "bench [{} {second}/{of}s] offered {:.0}/s validated {:.0}/s sent {:.0}/s ({} consumers) rejected {} rss {} MiB cpu {:.1}s{}",
        now.phase,
        rate(last.offered_total, now.offered_total),
        rate(last.validated_total, now.validated_total),
        rate(last.sent_total, now.sent_total),
        consumers,
        now.rejected_total,
        now.rss_kib / 1024,
        now.cpu_secs,
        if now.scraped {
            ""
        } else {
            " (metrics did not answer)"
        },
    )
}

/// The summary table (plain text, Markdown-compatible).
pub fn summary_table(r: &BenchReport) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        (
            "scenario",
            format!(
                "{}{}",
                r.plan.scenario.label(),
                if r.reduced { " (reduced)" } else { "" }
            ),
        ),
        (
            "relay --cores / ingest shards",
            format!("{} / {}", r.plan.cores, r.ingest_shards),
        ),
        (
            "hosts × accounts",
            format!("{} × {}", r.plan.hosts, r.plan.accounts_per_host),
        ),
        ("consumers", r.consumers.len().to_string()),
        ("measured window", format!("{:.1} s", r.measured_secs)),
        (
            "offered events/s",
            match r.backlog_events {
                Some(n) => format!("backlog of {n} events"),
                None => format!("{:.0}", r.offered_events_per_sec),
            },
        ),
        (
            "validated events/s",
            format!("{:.0}", r.validated_events_per_sec),
        ),
        (
            "validated events/s per ingest core",
            format!("{:.0}", r.validated_events_per_sec_per_ingest_core),
        ),
        (
            "rejected events/s",
            format!("{:.0}", r.rejected_events_per_sec),
        ),
        (
            "delivered events/s per consumer",
            format!("{:.0}", r.delivered_events_per_sec_per_consumer),
        ),
        (
            "latency p50 / p99 / p99.9 / max (worst consumer)",
            format!(
                "{} / {} / {} / {}",
                micros(r.latency_worst.p50_micros),
                micros(r.latency_worst.p99_micros),
                micros(r.latency_worst.p999_micros),
                micros(r.latency_worst.max_micros)
            ),
        ),
        (
            "relay RSS peak / final",
            format!("{} / {} MiB", r.rss_peak_kib / 1024, r.rss_final_kib / 1024),
        ),
        (
            "relay CPU s per 1,000 events",
            format!("{:.3}", r.cpu_secs_per_1000_events),
        ),
        (
            "rejections",
            if r.rejections_by_reason.is_empty() {
                "none".to_owned()
            } else {
                format!("{:?}", r.rejections_by_reason)
            },
        ),
        (
            "copied bytes per frame",
            r.copied_bytes_per_frame
                .map_or_else(|| "not exported".to_owned(), |b| format!("{b:.1}")),
        ),
        ("consumers clean", r.consumers_clean().to_string()),
    ];
    if let Some(trend) = &r.rss_trend {
        rows.push((
            "RSS slope",
            format!(
                "{:.1} KiB/min over {} minutes",
                trend.slope_kib_per_minute,
                trend.rss_per_minute_kib.len()
            ),
        ));
    }
    let mut out = String::from("| figure | value |\n|---|---|\n");
    for (name, value) in rows {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

fn micros(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// Write `bench-<scenario>-cores<N>.json` and `.html` under `dir`; return their paths.
pub fn write_outputs(r: &BenchReport, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let stem = format!("bench-{}-cores{}", r.plan.scenario.label(), r.plan.cores);
    let json = dir.join(format!("{stem}.json"));
    let html = dir.join(format!("{stem}.html"));
    let text = serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(&json, text)?;
    std::fs::write(&html, html_report(r))?;
    Ok((json, html))
}

/// The HTML report: the table and three SVG plots.
pub fn html_report(r: &BenchReport) -> String {
    let mut out = String::new();
    let title = format!(
        "relay bench: {} --cores {}",
        r.plan.scenario.label(),
        r.plan.cores
    );
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style>\
         </head><body><h1>{title}</h1><table>"
    );
    for line in summary_table(r).lines().skip(2) {
        if let Some(row) = line.strip_prefix("| ").and_then(|l| l.strip_suffix(" |")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let _ = write!(
                out,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(cells[0]),
                escape(cells.get(1).copied().unwrap_or(""))
            );
        }
    }
    out.push_str("</table><ul>");
    for note in &r.notes {
        let _ = write!(out, "<li>{}</li>", escape(note));
    }
    out.push_str("</ul><h2>End-to-end latency (simulator emit → consumer receive)</h2>");
    out.push_str(&latency_svg(&r.latency_worst));
    out.push_str("<h2>Events/s over time</h2>");
    out.push_str(&rates_svg(&r.samples, r.consumers.len()));
    out.push_str("<h2>Relay RSS over time</h2>");
    let rss: Vec<(f64, f64)> = r
        .samples
        .iter()
        .map(|s| (s.t_secs, s.rss_kib as f64 / 1024.0))
        .collect();
    out.push_str(&line_chart(
        "seconds since start",
        "MiB",
        &[("VmRSS", "#1f77b4", rss)],
    ));
    out.push_str("</body></html>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 320.0;
const MARGIN: f64 = 60.0;

/// Per-second rates: offered, validated, and sent per consumer.
fn rates_svg(samples: &[Sample], consumers: usize) -> String {
    let rate = |f: fn(&Sample) -> u64, per: f64| -> Vec<(f64, f64)> {
        samples
            .windows(2)
            .map(|w| {
                let dt = (w[1].t_secs - w[0].t_secs).max(f64::EPSILON);
                (
                    w[1].t_secs,
                    f(&w[1]).saturating_sub(f(&w[0])) as f64 / dt / per,
                )
            })
            .collect()
    };
    line_chart(
        "seconds since start",
        "events/s",
        &[
            (
                "offered (fleet emitted)",
                "#ff7f0e",
                rate(|s| s.offered_total, 1.0),
            ),
            (
                "validated (relay sequenced)",
                "#2ca02c",
                rate(|s| s.validated_total, 1.0),
            ),
            (
                "delivered per consumer (relay sent / consumers)",
                "#1f77b4",
                rate(|s| s.sent_total, consumers.max(1) as f64),
            ),
        ],
    )
}

/// A line chart with linear axes from 0.
/// One plotted line: name, colour, points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

fn line_chart(x_label: &str, y_label: &str, series: &[Series<'_>]) -> String {
    let points = series.iter().flat_map(|(_, _, p)| p.iter());
    let (x_max, y_max) = points.fold((1.0_f64, 1.0_f64), |(x, y), &(px, py)| {
        (x.max(px), y.max(py))
    });
    let y_max = y_max * 1.1;
    let sx = |x: f64| MARGIN + x / x_max * (WIDTH - 2.0 * MARGIN);
    let sy = |y: f64| HEIGHT - MARGIN + -y / y_max * (HEIGHT - 2.0 * MARGIN);
    let mut svg = svg_frame(x_label, y_label);
    for tick in 0..=4 {
        let y = y_max * f64::from(tick) / 4.0;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            MARGIN - 4.0,
            sy(y) + 4.0,
            short(y)
        );
        let x = x_max * f64::from(tick) / 4.0;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            sx(x),
            HEIGHT - MARGIN + 16.0,
            short(x)
        );
    }
    for (index, (name, color, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            path.join(" ")
        );
        let ly = 14.0 + 14.0 * index as f64;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"3\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            MARGIN + 10.0,
            ly - 4.0,
            MARGIN + 24.0,
            ly,
            escape(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The latency distribution as a histogram whose bins are the percentile intervals
/// (the consumers keep percentiles, not buckets): min–p50 holds 50 % of the events,
/// p50–p90 40 %, p90–p99 9 %, p99–p99.9 0.9 %, p99.9–max 0.1 %. The x axis is
/// logarithmic; each bar's height is its share per decade, so areas compare.
fn latency_svg(p: &Percentiles) -> String {
    let edges = [
        p.min_micros.max(1),
        p.p50_micros.max(1),
        p.p90_micros.max(1),
        p.p99_micros.max(1),
        p.p999_micros.max(1),
        p.max_micros.max(1),
    ];
    let shares = [50.0, 40.0, 9.0, 0.9, 0.1];
    let lo = (edges[0] as f64).log10().floor();
    let hi = ((edges[5] as f64).log10().ceil()).max(lo + 1.0);
    let sx = |us: u64| MARGIN + ((us as f64).log10() - lo) / (hi - lo) * (WIDTH - 2.0 * MARGIN);
    let bars: Vec<(f64, f64, f64, f64)> = (0..5)
        .map(|i| {
            let (a, b) = (sx(edges[i]), sx(edges[i + 1]).max(sx(edges[i]) + 2.0));
            let decades = ((b - a) / (WIDTH - 2.0 * MARGIN) * (hi - lo)).max(1e-3);
            (a, b, shares[i], shares[i] / decades)
        })
        .collect();
    let density_max = bars.iter().map(|b| b.3).fold(1e-9, f64::max);
    let mut svg = svg_frame("latency, µs (log scale)", "% of events per decade");
    for decade in lo as i32..=hi as i32 {
        let x = MARGIN + (f64::from(decade) - lo) / (hi - lo) * (WIDTH - 2.0 * MARGIN);
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            HEIGHT - MARGIN + 16.0,
            short(10f64.powi(decade))
        );
    }
    let labels = ["min–p50", "p50–p90", "p90–p99", "p99–p99.9", "p99.9–max"];
    for ((a, b, share, density), label) in bars.iter().zip(labels) {
        let h = density / density_max * (HEIGHT - 2.0 * MARGIN);
        let _ = write!(
            svg,
            "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#1f77b4\" fill-opacity=\"0.6\" stroke=\"#1f77b4\"><title>{label}: {share} %</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{label}</text>",
            HEIGHT - MARGIN - h,
            b - a,
            (a + b) / 2.0,
            HEIGHT - MARGIN - h - 4.0,
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"14\" font-size=\"11\">p50 {} · p99 {} · p99.9 {} · max {} (worst consumer)</text>",
        MARGIN + 10.0,
        micros(p.p50_micros),
        micros(p.p99_micros),
        micros(p.p999_micros),
        micros(p.max_micros)
    );
    svg.push_str("</svg>");
    svg
}

fn svg_frame(x_label: &str, y_label: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">\
         <line x1=\"{MARGIN}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/>\
         <line x1=\"{MARGIN}\" y1=\"{MARGIN}\" x2=\"{MARGIN}\" y2=\"{b}\" stroke=\"#333\"/>\
         <text x=\"{cx}\" y=\"{xl}\" font-size=\"12\" text-anchor=\"middle\">{x}</text>\
         <text x=\"14\" y=\"{cy}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 {cy})\">{y}</text>",
        b = HEIGHT - MARGIN,
        r = WIDTH - MARGIN,
        cx = WIDTH / 2.0,
        xl = HEIGHT - 16.0,
        cy = HEIGHT / 2.0,
        x = escape(x_label),
        y = escape(y_label),
    )
}

/// 1234 → "1.2k", 2500000 → "2.5M".
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        assert!((slope(&[100, 110, 120, 130]) - 10.0).abs() < 1e-9);
        assert_eq!(slope(&[5]), 0.0);
    }

    #[test]
    fn busy_rate_ignores_idle_seconds() {
        let s = |t: f64, v: u64| Sample {
            t_secs: t,
            validated_total: v,
            ..Sample::default()
        };
        let samples = [
            s(0.0, 0),
            s(1.0, 0),
            s(2.0, 1000),
            s(3.0, 2000),
            s(4.0, 2000),
            s(5.0, 2000),
        ];
        assert!((busy_rate(&samples) - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn latency_plot_is_svg() {
        let p = Percentiles {
            count: 10,
            min_micros: 100,
            p50_micros: 900,
            p90_micros: 2000,
            p99_micros: 9000,
            p999_micros: 20000,
            max_micros: 40000,
        };
        let svg = latency_svg(&p);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 5);
    }
}

//! A short run of `relay bench`'s runner: a small fleet → `relay serve` as a child process
//! (the binary cargo built for this test) → two checking consumers, for a few seconds.
//! Every consumer gets events and finds none invalid, missing or repeated; the relay's
//! RSS and CPU come from its own /proc entry; the JSON and HTML reports are written.

use relay::bench::{BenchPlan, Scenario, report, run_scenario};
use std::path::PathBuf;

#[test]
fn a_short_standard_run_reports_every_figure() {
    let out = std::env::temp_dir().join(format!("relay-bench-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut plan = BenchPlan::new(
        Scenario::Standard,
        PathBuf::from(env!("CARGO_BIN_EXE_relay")),
        out.clone(),
    );
    plan.hosts = 4;
    plan.accounts_per_host = 5;
    plan.rate = 100;
    plan.consumers = 2;
    plan.duration_secs = 5;
    plan.warmup_secs = 1;
    plan.progress = false;
    let report = run_scenario(&plan).expect("bench runs");
    println!("{}", report::summary_table(&report));

    assert!(report.reduced);
    assert_eq!(report.consumers.len(), 2);
    assert!(report.consumers_clean(), "{:?}", report.consumers);
    for consumer in &report.consumers {
        assert!(consumer.valid > 100, "consumer got events: {consumer:?}");
        assert!(consumer.latency.count > 0);
    }
    assert!(
        report.offered_events_per_sec > 50.0,
        "{}",
        report.offered_events_per_sec
    );
    assert!(
        report.validated_events_per_sec > 50.0,
        "{}",
        report.validated_events_per_sec
    );
    assert!(report.delivered_events_per_sec_per_consumer > 50.0);
    assert!(report.rss_peak_kib > 1024, "relay RSS read from /proc");
    assert!(report.rss_final_kib > 0);
    assert!(report.cpu_secs > 0.0);
    assert!(
        report
            .samples
            .iter()
            .filter(|s| s.phase == "measure")
            .count()
            >= 5
    );
    assert!(
        report
            .samples
            .iter()
            .all(|s| s.scraped || s.phase == "connect")
    );

    let (json, html) = report::write_outputs(&report, &out).expect("reports written");
    let parsed: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(parsed["plan"]["scenario"], "standard");
    let html = std::fs::read_to_string(&html).unwrap();
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(!html.contains("<script"));
    // The relay's data directory is removed when it stops.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("relay-data-"))
        .collect();
    assert!(leftovers.is_empty());
    let _ = std::fs::remove_dir_all(&out);
}

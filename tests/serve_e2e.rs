//! End to end on loopback: a simulated fleet (both curves, some large commits) →
//! `relay serve` (in this process, `--cores 1` and `--cores 2`) → three independent
//! checking consumers (`relay tail`'s library). Every valid event is delivered exactly
//! once to each consumer, in order, re-verified by the consumer; relay seqs are strictly
//! increasing without gaps; no frame byte was copied after the socket read. Then the
//! API over what was relayed: each account's `getLatestCommit` is the commit (CID and
//! rev) of the last `#commit` / `#sync` a consumer replaying the log saw for it, and
//! `listRepos` heads are those same, lexicon-valid CIDs.

mod api_support;

use api_support::common;

use relay::config::ServeArgs;
use relay::runtime::serve::start;
use relay::sim::fleet::{Fleet, FleetConfig, FleetHandle};
use relay::tail::{TailConfig, TailReport, run as run_tail};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn serve_args(fleet: &FleetHandle, cores: usize, data_dir: PathBuf) -> ServeArgs {
    common::serve::loopback_args(fleet.plc_url(), fleet.host_urls(), cores, data_dir)
}

/// The relay's rejection and disconnect counters, from its metrics port.
fn relay_rejections(metrics: std::net::SocketAddr) -> String {
    let interesting = ["rejections", "identity_failures", "disconnects"];
    common::serve::scrape(metrics)
        .into_iter()
        .filter(|((name, _), _)| interesting.iter().any(|i| name.contains(i)))
        .map(|((name, reason), value)| format!("{name}{{{reason}}} {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail_all(listen: std::net::SocketAddr, plc: &str, expected: u64) -> TailReport {
    let mut config = TailConfig::new(&format!("ws://{listen}"), plc);
    config.cursor = Some(0);
    config.allow_http = true;
    config.events_max = Some(expected);
    config.idle_timeout = Duration::from_secs(20);
    config.duration = Some(Duration::from_secs(120));
    config.record_events = true;
    run_tail(config).expect("tail runs")
}

fn check_delivery(cores: usize) {
    let fleet = Fleet::start(FleetConfig {
        hosts: 50,
        accounts_per_host: 20,
        events_per_sec: 2_000,
        event_limit: Some(3_000),
        large_commit_share: 0.005,
        p256_share: 0.5,
        seed: 40 + cores as u64,
        ..FleetConfig::default()
    })
    .expect("fleet starts");
    let dir = common::serve::temp_dir(&format!("e2e-cores{cores}"));
    let relay = start(&serve_args(&fleet, cores, dir.clone())).expect("relay starts");
    assert!(
        fleet.wait_until_emitted(Duration::from_secs(60)),
        "fleet emitted its events"
    );
    let counters = fleet.counters();
    let expected = counters.valid;
    assert!(
        counters.large_commits > 0,
        "some large commits: {counters:?}"
    );

    let plc = fleet.plc_url();
    let listen = relay.listen;
    let reports: Vec<TailReport> = std::thread::scope(|scope| {
        let tails: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| tail_all(listen, &plc, expected)))
            .collect();
        tails.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (index, report) in reports.iter().enumerate() {
        assert_eq!(
            report.invalid, 0,
            "consumer {index}: {:?}",
            report.invalid_by_reason
        );
        assert_eq!(
            report.valid,
            expected,
            "consumer {index}: every valid event; by type {:?}, fleet {counters:?}, relay: {}",
            report.by_type,
            relay_rejections(relay.metrics_listen)
        );
        assert_eq!(report.seq.gaps, 0, "consumer {index}: no gap");
        assert_eq!(report.seq.duplicates, 0, "consumer {index}: no duplicate");
        assert_eq!(
            report.rev_order_violations, 0,
            "consumer {index}: per-account order"
        );
        assert_eq!(
            report.seq.first,
            Some(1),
            "consumer {index}: seq starts at 1"
        );
        assert_eq!(
            report.seq.last,
            Some(expected),
            "consumer {index}: seq dense"
        );
    }
    assert_eq!(
        relay.frame_copied_bytes(),
        0,
        "no frame byte copied after the socket read"
    );
    let heads = check_heads(listen);
    println!(
        "suite serve e2e --cores {cores}: {expected} valid events ({} large) to 3 consumers, p50 {} µs p99 {} µs; {heads} heads checked",
        counters.large_commits, reports[0].latency.p50_micros, reports[0].latency.p99_micros
    );
    relay.stop();
    fleet.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a consumer last saw of one account: its last commit (CID, rev) and the status of
/// its last `#account` event.
#[derive(Default)]
struct LastSeen {
    commit: Option<(String, String)>,
    status: Option<&'static str>,
}

/// Per DID, from every frame replayed from cursor 0: the last `#commit` (its `commit`
/// field) or `#sync` (its CAR root), and the last `#account` status.
fn last_seen(listen: std::net::SocketAddr) -> BTreeMap<String, LastSeen> {
    use relay::frame::event::{Event, Frame};
    let mut seen: BTreeMap<String, LastSeen> = BTreeMap::new();
    for bytes in common::serve::replay_all(listen, Duration::from_secs(60)) {
        let frame = Frame::decode(&bytes).expect("the relay sends decodable frames");
        match frame.event() {
            Event::Commit(e) => {
                seen.entry(e.repo().to_owned()).or_default().commit =
                    Some((e.commit().to_string(), e.rev().to_owned()));
            }
            Event::Sync(e) => {
                let root = relay::frame::car::CarReader::new(e.blocks())
                    .and_then(|car| car.single_root())
                    .expect("a #sync CAR with one root");
                seen.entry(e.did().to_owned()).or_default().commit =
                    Some((root.to_string(), e.rev().to_owned()));
            }
            Event::Account(e) => {
                let status = if e.active() {
                    "active"
                } else {
                    match e.status() {
                        Some("takendown") => "takendown",
                        Some("suspended") => "suspended",
                        Some("deactivated") => "deactivated",
                        Some("deleted") => "deleted",
                        _ => "other",
                    }
                };
                seen.entry(e.did().to_owned()).or_default().status = Some(status);
            }
            _ => {}
        }
    }
    seen
}

/// `getLatestCommit` and `listRepos` against what a consumer saw; returns the number of
/// heads compared.
fn check_heads(listen: std::net::SocketAddr) -> usize {
    let lex = api_support::Lexicons::new();
    let get = |path: &str| api_support::request(listen, "GET", path, &[], b"");
    let seen = last_seen(listen);
    let mut compared = 0;
    let mut served = BTreeMap::new();
    let mut wrong = Vec::new();
    for (did, last) in &seen {
        let Some((cid, rev)) = &last.commit else {
            continue;
        };
        let response = get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"));
        let nsid = "com.atproto.sync.getLatestCommit";
        let refusal = match last.status {
            Some("takendown") => Some("RepoTakendown"),
            Some("suspended") => Some("RepoSuspended"),
            Some("deactivated") => Some("RepoDeactivated"),
            Some("deleted") => Some("RepoNotFound"),
            _ => None,
        };
        if let Some(name) = refusal {
            response.assert_error(400, name);
            lex.check_error(nsid, name);
            continue;
        }
        assert_eq!(response.status, 200, "{did}: {:?}", response.json());
        let body = response.json();
        lex.check_output(nsid, &body);
        let got = (body["cid"].as_str(), body["rev"].as_str());
        if got != (Some(cid.as_str()), Some(rev.as_str())) {
            wrong.push(format!("{did}: served {got:?}, last seen ({cid}, {rev})"));
        }
        served.insert(did.clone(), cid.clone());
        compared += 1;
    }
    assert!(
        wrong.is_empty(),
        "getLatestCommit is the last commit a consumer saw: {} of {compared} differ: {wrong:#?}",
        wrong.len()
    );
    assert!(compared > 0, "some accounts have a commit");
    let mut listed = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/xrpc/com.atproto.sync.listRepos?limit=1000&cursor={c}"),
            None => "/xrpc/com.atproto.sync.listRepos?limit=1000".to_owned(),
        };
        let response = get(&path);
        assert_eq!(response.status, 200);
        let body = response.json();
        lex.check_output("com.atproto.sync.listRepos", &body);
        for repo in body["repos"].as_array().unwrap() {
            let did = repo["did"].as_str().unwrap();
            if let Some(cid) = served.get(did) {
                assert_eq!(repo["head"].as_str(), Some(cid.as_str()), "{did}: head");
                listed += 1;
            }
        }
        match body["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(listed, compared, "every served head is listed");
    compared
}

#[test]
fn every_valid_event_reaches_every_consumer_once_with_one_core() {
    check_delivery(1);
}

#[test]
fn every_valid_event_reaches_every_consumer_once_with_two_cores() {
    check_delivery(2);
}

//! The operator's live views through the admin API of a running relay (three cores: two
//! ingest shards and two fan-out cores): `GET /admin/rejections` lists what the hostile
//! hosts of a `relay sim` fleet sent, per host and per account, with the reasons the
//! relay's counters count; `GET /admin/consumers` lists the `subscribeRepos` consumers of
//! every core, whichever core answers. Both need the bearer token and refuse bad input.

mod common;

use common::serve::get_json;
use common::ws_client::{Message, WsClient};
use relay::runtime::serve::start;
use relay::sim::fleet::{Fleet, FleetConfig};
use relay::sim::hostile::HostileMode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const TOKEN: &str = "admin-views-token";

/// The hostile modes of the fleet and the relay's reason for each.
const MODES: [(HostileMode, &str); 4] = [
    (HostileMode::BadSignature, "bad_signature"),
    (HostileMode::MalformedCbor, "frame_body_not_cbor"),
    (HostileMode::UnknownType, "unknown_type"),
    (HostileMode::RevRollback, "rev_not_newer"),
];

fn rejections(addr: SocketAddr, query: &str) -> Vec<Value> {
    let (status, body) = get_json(addr, &format!("/admin/rejections?{query}"), Some(TOKEN));
    assert_eq!(status, 200, "{query}: {body}");
    body["rejections"].as_array().cloned().unwrap_or_default()
}

/// `relay_verify_rejections_total` by reason (summed over shards).
fn counted(metrics: SocketAddr) -> BTreeMap<String, u64> {
    common::serve::scrape(metrics)
        .into_iter()
        .filter(|((metric, _), n)| metric == "relay_verify_rejections_total" && *n > 0)
        .map(|((_, reason), n)| (reason, n))
        .collect()
}

fn by_reason(entries: &[Value]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for entry in entries {
        *out.entry(entry["reason"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    out
}

/// Every host's listing, and their reasons added up, once the counters have settled on
/// the expected values (the verifier judges asynchronously). Nothing is listed before:
/// a listing read while a shard records would make it drop that entry (counted as
/// `contended`), and the comparison below must be exact.
fn settled_listings(
    relay: &relay::runtime::serve::Relay,
    hosts: &[String],
    expected: &BTreeMap<String, u64>,
) -> (BTreeMap<String, Vec<Value>>, BTreeMap<String, u64>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while &counted(relay.metrics_listen) != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    let listings: BTreeMap<String, Vec<Value>> = hosts
        .iter()
        .map(|h| {
            (
                h.clone(),
                rejections(relay.listen, &format!("host={h}&limit=1000")),
            )
        })
        .collect();
    let mut total = BTreeMap::new();
    for entries in listings.values() {
        for (reason, n) in by_reason(entries) {
            *total.entry(reason).or_insert(0) += n;
        }
    }
    (listings, total)
}

fn check_host_listing(host: &str, entries: &[Value]) {
    let mut previous = None;
    for entry in entries {
        assert_eq!(entry["host"], host, "{entry}");
        let time = entry["time"].as_str().unwrap().to_owned();
        assert!(
            time.ends_with('Z') && time.len() == 27,
            "RFC 3339 µs: {time}"
        );
        if let Some(previous) = &previous {
            assert!(&time <= previous, "newest first: {time} after {previous}");
        }
        previous = Some(time);
        assert!(entry["shard"].as_u64().unwrap() < 2, "{entry}");
        match entry["reason"].as_str().unwrap() {
            "bad_signature" | "rev_not_newer" => {
                assert_eq!(entry["frameType"], "commit", "{entry}");
                assert!(
                    entry["did"].as_str().unwrap().starts_with("did:"),
                    "{entry}"
                );
                assert!(entry["seq"].as_u64().unwrap() > 0, "{entry}");
            }
            // Not decoded far enough to name an account or a frame type.
            "unknown_type" | "frame_body_not_cbor" => {
                assert!(
                    entry["did"].is_null() && entry["frameType"].is_null(),
                    "{entry}"
                );
            }
            _ => {}
        }
    }
}

fn check_auth_and_input(addr: SocketAddr, host: &str) {
    for path in [
        format!("/admin/rejections?host={host}"),
        "/admin/consumers".to_owned(),
    ] {
        for token in [None, Some("wrong-token")] {
            let (status, body) = get_json(addr, &path, token);
            assert_eq!(
                (status, body["error"].as_str()),
                (401, Some("AuthenticationRequired")),
                "{path} with {token:?}"
            );
        }
    }
    for query in [
        String::new(),
        "limit=10".to_owned(),
        format!("host={host}&did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"),
        "did=not-a-did".to_owned(),
        format!("host={host}&limit=0"),
        format!("host={host}&limit=1001"),
    ] {
        let (status, body) = get_json(addr, &format!("/admin/rejections?{query}"), Some(TOKEN));
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("InvalidRequest")),
            "?{query}: {body}"
        );
    }
}

/// Two consumers, one replaying from cursor 0 and one live; `/admin/consumers` shows both
/// with their addresses and cursors, whichever core each landed on.
fn check_consumers(addr: SocketAddr) {
    let path = "/xrpc/com.atproto.sync.subscribeRepos";
    let mut replaying =
        WsClient::connect(addr, &format!("{path}?cursor=0"), Duration::from_secs(2)).unwrap();
    let live = WsClient::connect(addr, path, Duration::from_secs(2)).unwrap();
    for _ in 0..3 {
        assert!(matches!(replaying.next().unwrap(), Message::Binary(_)));
    }
    let want = [
        (replaying.local_addr().unwrap().to_string(), Some(0)),
        (live.local_addr().unwrap().to_string(), None),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let (status, body) = get_json(addr, "/admin/consumers", Some(TOKEN));
        assert_eq!(status, 200, "{body}");
        let consumers = body["consumers"].as_array().cloned().unwrap_or_default();
        let mine: Vec<Value> = want
            .iter()
            .filter_map(|(remote, _)| consumers.iter().find(|c| c["remote"] == *remote).cloned())
            .collect();
        if mine.len() == 2 && mine[0]["framesSent"].as_u64() >= Some(3) {
            break mine;
        }
        assert!(Instant::now() < deadline, "both consumers listed: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for (consumer, (_, cursor)) in listed.iter().zip(want) {
        assert_eq!(consumer["cursor"].as_u64(), cursor, "{consumer}");
        assert!(consumer["shard"].as_u64().unwrap() < 2, "{consumer}");
        assert!(consumer["connectedAt"].as_str().unwrap().ends_with('Z'));
        assert!(consumer["lagFrames"].is_u64() && consumer["bytesSent"].is_u64());
        assert!(matches!(
            consumer["state"].as_str(),
            Some("live" | "replaying")
        ));
    }
    assert!(listed[0]["sentSeq"].as_u64() >= Some(3), "{}", listed[0]);
    println!(
        "consumers: replaying on core {}, live on core {}",
        listed[0]["shard"], listed[1]["shard"]
    );
}

#[test]
fn admin_lists_rejections_per_host_and_account_and_every_cores_consumers() {
    let fleet = Fleet::start(FleetConfig {
        hosts: 3,
        accounts_per_host: 3,
        events_per_sec: 400,
        event_limit: Some(400),
        hostile_modes: MODES.iter().map(|(mode, _)| *mode).collect(),
        hostile_share: 0.2,
        seed: 606,
        ..FleetConfig::default()
    })
    .unwrap();
    let dir = common::serve::temp_dir("admin-views");
    let mut args = common::serve::loopback_args(fleet.plc_url(), fleet.host_urls(), 3, dir.clone());
    args.admin_token = Some(TOKEN.to_owned());
    args.allow_private_hosts = true;
    let relay = start(&args).unwrap();
    assert!(fleet.wait_until_emitted(Duration::from_secs(30)));
    let counters = fleet.counters();
    let mut expected = BTreeMap::new();
    for (mode, reason) in MODES {
        let n = counters.hostile_of(mode);
        if n > 0 {
            expected.insert(reason.to_owned(), n);
        }
    }
    let hosts = fleet.hostnames();
    let (listings, total) = settled_listings(&relay, &hosts, &expected);
    assert_eq!(
        counted(relay.metrics_listen),
        expected,
        "counters vs fleet modes"
    );
    let dropped: u64 = common::serve::scrape(relay.metrics_listen)
        .iter()
        .filter(|((metric, _), _)| metric == "relay_verify_rejection_log_dropped_total")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        dropped, 0,
        "no entry dropped: nothing read the rings while they filled"
    );
    assert_eq!(total, expected, "listings of every host vs the counters");
    for (host, entries) in &listings {
        check_host_listing(host, entries);
    }

    // One account's listing: exactly its entries of the host listings, newest first.
    let all: Vec<&Value> = listings.values().flatten().collect();
    let did = all
        .iter()
        .find_map(|e| e["did"].as_str())
        .expect("a rejection naming its account")
        .to_owned();
    let of_did = rejections(relay.listen, &format!("did={did}&limit=1000"));
    let expected_of_did: Vec<&&Value> = all.iter().filter(|e| e["did"] == did.as_str()).collect();
    assert_eq!(of_did.len(), expected_of_did.len(), "{did}");
    assert!(of_did.iter().all(|e| e["did"] == did.as_str()));
    assert_eq!(
        rejections(relay.listen, &format!("did={did}&limit=1")),
        of_did[..1]
    );
    assert!(rejections(relay.listen, "host=unknown.example").is_empty());

    check_auth_and_input(relay.listen, &hosts[0]);
    check_consumers(relay.listen);
    println!(
        "suite serve admin views: {} rejections over {} hosts listed with their reasons ({:?}); {} of {did}",
        all.len(),
        hosts.len(),
        total,
        of_did.len()
    );
    relay.stop();
    fleet.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

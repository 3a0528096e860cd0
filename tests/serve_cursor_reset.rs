//! A PDS whose sequence restarts (a wiped and restored PDS), end to end through a running
//! relay: without an operator the relay refuses the host's frames at or below its cursor
//! (`upstream_seq_not_increasing`), counts the regression, flags the host in
//! `GET /admin/hosts` and keeps its stored cursor, while the other host flows on — on the
//! connection that saw the restart and on a new one (resubscribed from the stored cursor,
//! answered `FutureCursor`, then live: the check is across connections, not per
//! connection only, or the relay would follow the new sequence there silently); after
//! `POST /admin/hosts/resetCursor` the host's new sequence flows from its start, with
//! nothing relayed twice and nothing valid of the other host lost.

mod common;

use common::ws_client::{Message, WsClient};
use relay::config::limits::SIM_SEQ_RESET_EVENTS_MAX;
use relay::frame::event::Frame;
use relay::runtime::serve::start;
use relay::sim::fleet::{Fleet, FleetConfig, KindMix};
use relay::sim::hostile::HostileMode;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN: &str = "cursor-reset-token";
/// Events of the whole fleet: host 0 (which restarts its seq after
/// `SIM_SEQ_RESET_EVENTS_MAX`) gets about half, so it restarts once and not twice.
const EVENTS: u64 = 1_300;

/// The seqs a sim host serves from cursor 0 (its current sequence, in order).
fn host_seqs(hostname: &str) -> Vec<u64> {
    let addr: SocketAddr = hostname.parse().unwrap();
    let mut client = WsClient::connect(
        addr,
        "/xrpc/com.atproto.sync.subscribeRepos?cursor=0",
        Duration::from_millis(1_000),
    )
    .unwrap();
    let mut seqs = Vec::new();
    while let Ok(Message::Binary(bytes)) = client.next() {
        seqs.push(Frame::decode(&bytes).unwrap().seq().unwrap());
    }
    seqs
}

/// `seq` of `getHostStatus` and of the host's `listHosts` entry.
fn public_seqs(addr: SocketAddr, hostname: &str) -> (u64, u64) {
    let (status, body) = common::serve::get_json(
        addr,
        &format!("/xrpc/com.atproto.sync.getHostStatus?hostname={hostname}"),
        None,
    );
    assert_eq!(status, 200, "getHostStatus {hostname}: {body}");
    let (status, list) = common::serve::get_json(addr, "/xrpc/com.atproto.sync.listHosts", None);
    assert_eq!(status, 200, "listHosts: {list}");
    let listed = list["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hostname"] == hostname)
        .unwrap_or_else(|| panic!("{hostname} not in listHosts: {list}"))["seq"]
        .as_u64()
        .unwrap();
    (body["seq"].as_u64().unwrap(), listed)
}

/// The host's entry of `GET /admin/hosts`.
fn admin_host(addr: SocketAddr, hostname: &str) -> serde_json::Value {
    let (status, body) = common::serve::get_json(addr, "/admin/hosts", Some(TOKEN));
    assert_eq!(status, 200, "admin hosts: {body}");
    body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hostname"] == hostname)
        .cloned()
        .unwrap_or_else(|| panic!("{hostname} not in /admin/hosts: {body}"))
}

fn counter(metrics: SocketAddr, name: &str, reason: &str) -> u64 {
    common::serve::scrape(metrics)
        .get(&(name.to_owned(), reason.to_owned()))
        .copied()
        .unwrap_or(0)
}

#[test]
fn a_restarted_sequence_is_refused_until_the_operator_resets_the_cursor() {
    let fleet = Fleet::start(FleetConfig {
        hosts: 2,
        accounts_per_host: 3,
        events_per_sec: 200,
        event_limit: Some(EVENTS),
        presign_buffer_events: EVENTS as usize,
        hostile_modes: vec![HostileMode::ResetSeq],
        kind_mix: KindMix {
            commit: 1.0,
            sync: 0.0,
            identity: 0.0,
            account: 0.0,
        },
        seed: 47,
        ..FleetConfig::default()
    })
    .unwrap();
    let dir = common::serve::temp_dir("cursor-reset");
    let mut args = common::serve::loopback_args(fleet.plc_url(), fleet.host_urls(), 1, dir.clone());
    args.admin_token = Some(TOKEN.to_owned());
    args.allow_private_hosts = true;
    let relay = start(&args).unwrap();
    let host_of: BTreeMap<String, String> = fleet
        .accounts()
        .into_iter()
        .map(|a| (a.did, a.host))
        .collect();
    let hosts = fleet.hostnames();
    // Host mode number 0 goes to host 0.
    let (wiped, other) = (hosts[0].clone(), hosts[1].clone());
    let count = |listen: SocketAddr, host: &str| {
        common::serve::commits_by_host(listen, &host_of)
            .0
            .get(host)
            .map_or(0, |&n| n as u64)
    };

    // Without an operator: the old sequence (seqs 1..=500) is relayed whole, the new one
    // (seqs from 1 again) is refused; the other host's events all come through.
    assert!(fleet.wait_until_emitted(Duration::from_secs(30)));
    let new_seqs = host_seqs(&wiped);
    let other_total = host_seqs(&other).len() as u64;
    let restarted = new_seqs.len() as u64;
    assert!(
        restarted > 0 && new_seqs.windows(2).all(|w| w[1] == w[0] + 1) && new_seqs[0] == 1,
        "host 0 restarted its sequence once: {new_seqs:?}"
    );
    assert!(restarted < SIM_SEQ_RESET_EVENTS_MAX);
    let metrics = relay.metrics_listen;
    common::serve::wait_until(
        "the restarted sequence refused",
        Duration::from_secs(30),
        || {
            counter(
                metrics,
                "relay_verify_rejections_total",
                "upstream_seq_not_increasing",
            ) > 0
                && count(relay.listen, &other) == other_total
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let refused = counter(
        metrics,
        "relay_verify_rejections_total",
        "upstream_seq_not_increasing",
    );
    assert_eq!(
        count(relay.listen, &wiped),
        SIM_SEQ_RESET_EVENTS_MAX,
        "only the old sequence of the wiped host is relayed"
    );
    assert_eq!(
        count(relay.listen, &other),
        other_total,
        "the other host is unaffected"
    );
    let regressions = counter(metrics, "relay_upstream_seq_regressions_total", "");
    assert!(regressions >= 1, "the regression is counted");
    assert_eq!(
        public_seqs(relay.listen, &wiped),
        (SIM_SEQ_RESET_EVENTS_MAX, SIM_SEQ_RESET_EVENTS_MAX),
        "the stored cursor stays at the old sequence's end"
    );
    let flagged = admin_host(relay.listen, &wiped);
    assert_eq!(
        flagged["seqRegression"]["cursor"], SIM_SEQ_RESET_EVENTS_MAX,
        "the wiped host is flagged: {flagged}"
    );
    assert!(
        flagged["seqRegression"]["action"]
            .as_str()
            .unwrap()
            .contains("resetCursor")
    );
    assert!(
        admin_host(relay.listen, &other)
            .get("seqRegression")
            .is_none()
    );
    let (_, listed) = common::serve::get_json(
        relay.listen,
        &format!("/admin/rejections?host={wiped}"),
        Some(TOKEN),
    );
    let reasons: BTreeSet<&str> = listed["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["upstream_seq_not_increasing"]),
        "{listed}"
    );

    // A new connection (a ban and an unban subscribe the host again from its stored
    // cursor): the cursor is in the host's future (`FutureCursor`), a regression counted
    // again on that connection; still nothing of the new sequence is followed.
    let connects = counter(metrics, "relay_upstream_connects_total", "");
    for route in ["ban", "unban"] {
        let answer = common::serve::post(
            relay.listen,
            &format!("/admin/hosts/{route}"),
            &format!("{{\"hostname\":\"{wiped}\"}}"),
            Some(TOKEN),
        );
        assert!(answer.starts_with("HTTP/1.1 200"), "{route}: {answer}");
        std::thread::sleep(Duration::from_millis(500));
    }
    common::serve::wait_until(
        "the new connection counted",
        Duration::from_secs(30),
        || counter(metrics, "relay_upstream_seq_regressions_total", "") > regressions,
    );
    let regressions = counter(metrics, "relay_upstream_seq_regressions_total", "");
    assert_eq!(count(relay.listen, &wiped), SIM_SEQ_RESET_EVENTS_MAX);
    assert_eq!(
        public_seqs(relay.listen, &wiped),
        (SIM_SEQ_RESET_EVENTS_MAX, SIM_SEQ_RESET_EVENTS_MAX),
        "a new connection keeps the stored cursor"
    );
    assert!(
        admin_host(relay.listen, &wiped)
            .get("seqRegression")
            .is_some()
    );

    // That connection goes on live (from the host's head): an event the host emits now
    // has a seq of the new sequence, below the cursor, and is refused on this connection
    // too (a check per connection only would follow the new sequence here, silently).
    common::serve::wait_until("the live reconnection", Duration::from_secs(30), || {
        counter(metrics, "relay_upstream_connects_total", "") >= connects + 2
    });
    // The host registers the subscription right after the upgrade the relay counted.
    std::thread::sleep(Duration::from_millis(500));
    let rotated = fleet
        .accounts()
        .into_iter()
        .find(|a| a.host == wiped)
        .unwrap()
        .did;
    fleet.rotate_key(&rotated).unwrap();
    common::serve::wait_until("the live event refused", Duration::from_secs(30), || {
        counter(
            metrics,
            "relay_verify_rejections_total",
            "upstream_seq_not_increasing",
        ) > refused
    });
    let refused = counter(
        metrics,
        "relay_verify_rejections_total",
        "upstream_seq_not_increasing",
    );
    assert_eq!(
        counter(metrics, "relay_upstream_seq_regressions_total", ""),
        regressions + 1,
        "counted once more, for the live connection"
    );
    let regressions = regressions + 1;
    assert_eq!(
        public_seqs(relay.listen, &wiped),
        (SIM_SEQ_RESET_EVENTS_MAX, SIM_SEQ_RESET_EVENTS_MAX),
        "the live connection keeps the stored cursor"
    );
    // The host's new sequence now ends with that `#identity`.
    let restarted_seq = restarted + 1;
    assert_eq!(host_seqs(&wiped).len() as u64, restarted_seq);

    // The operator resets the cursor: the new sequence flows from its start.
    let answer = common::serve::post(
        relay.listen,
        "/admin/hosts/resetCursor",
        &format!("{{\"hostname\":\"{wiped}\"}}"),
        Some(TOKEN),
    );
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "reset accepted: {answer}"
    );
    common::serve::wait_until("the new sequence relayed", Duration::from_secs(30), || {
        count(relay.listen, &wiped) == SIM_SEQ_RESET_EVENTS_MAX + restarted
    });
    common::serve::wait_until("the new cursor stored", Duration::from_secs(30), || {
        public_seqs(relay.listen, &wiped) == (restarted_seq, restarted_seq)
    });
    let (counts, twice) = common::serve::commits_by_host(relay.listen, &host_of);
    assert!(!twice, "no commit relayed twice across the reset");
    assert_eq!(counts[&wiped] as u64, SIM_SEQ_RESET_EVENTS_MAX + restarted);
    assert_eq!(
        counts[&other] as u64, other_total,
        "nothing of the other host lost"
    );
    assert!(
        admin_host(relay.listen, &wiped)
            .get("seqRegression")
            .is_none()
    );
    assert_eq!(
        counter(metrics, "relay_upstream_seq_regressions_total", ""),
        regressions,
        "the reset connection is no regression"
    );
    println!(
        "suite serve cursor reset: {refused} frames of the restarted sequence refused ({regressions} regressions), \
         then its {restarted} commits relayed after resetCursor; {other_total} of the other host"
    );
    relay.stop();
    fleet.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

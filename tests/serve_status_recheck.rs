//! A stale upstream status heals by itself: an account its host deactivates (`#account`
//! active false) has its commits dropped; when the host's `getRepoStatus` says active
//! again without any `#account` event, the relay's re-checker finds it within its
//! interval, announces the account active (`#account` active true) and relays its later
//! commits. Over both stores (one after the other); loopback only; about 15 s each.

mod common;

use common::ws_client::{Message, WsClient};
use relay::frame::event::{Event, Frame};
use relay::runtime::serve::start;
use relay::sim::fleet::{Fleet, FleetConfig, KindMix};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// What the replayed log says of one account, in seq order.
#[derive(Debug, Default)]
struct Seen {
    /// Its commits, each with the index of the `#account` events before it.
    commits_after: Vec<usize>,
    /// Its `#account` events: (active, status).
    accounts: Vec<(bool, Option<String>)>,
}

fn seen(addr: std::net::SocketAddr, did: &str) -> Seen {
    let mut seen = Seen::default();
    for bytes in replay(addr) {
        let frame = Frame::decode(&bytes).unwrap();
        match frame.event() {
            Event::Commit(commit) if commit.repo() == did => {
                seen.commits_after.push(seen.accounts.len());
            }
            Event::Account(event) if event.did() == did => seen
                .accounts
                .push((event.active(), event.status().map(str::to_owned))),
            _ => {}
        }
    }
    seen
}

/// The frames replayed from cursor 0 within 1.5 s (live events keep coming; the test's
/// log replays well within it), read with a time-out a loaded test machine meets.
fn replay(addr: std::net::SocketAddr) -> Vec<Vec<u8>> {
    let path = "/xrpc/com.atproto.sync.subscribeRepos?cursor=0";
    let mut client = WsClient::connect(addr, path, Duration::from_secs(2)).unwrap();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut frames = Vec::new();
    while Instant::now() < deadline {
        match client.next() {
            Ok(Message::Binary(bytes)) => frames.push(bytes),
            _ => break,
        }
    }
    frames
}

/// The sum of a counter's series whose `label` is `value`.
fn counter(metrics: std::net::SocketAddr, name: &str, label: &str, value: &str) -> u64 {
    let mut stream = std::net::TcpStream::connect(metrics).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let wanted = format!("{label}=\"{value}\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&wanted))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// The two stores' tests take turns: each runs a fleet and a relay on a small machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn an_account_inactive_upstream_heals_through_get_repo_status_on_rocksdb() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    heals("rocksdb", None);
}

#[test]
fn an_account_inactive_upstream_heals_through_get_repo_status_on_postgres() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(schema) = common::pg::TestSchema::create("status_recheck") else {
        return;
    };
    heals("postgres", Some(schema.url()));
}

fn heals(store: &str, database_url: Option<String>) {
    let fleet = Fleet::start(FleetConfig {
        hosts: 1,
        accounts_per_host: 3,
        events_per_sec: 60,
        seed: 21,
        presign_buffer_events: 200,
        // No random `#account` events: only the test changes the account's status.
        kind_mix: KindMix {
            commit: 0.98,
            sync: 0.01,
            identity: 0.01,
            account: 0.0,
        },
        ..FleetConfig::default()
    })
    .unwrap();
    let dir = common::serve::temp_dir(&format!("status-recheck-{store}"));
    let mut args = common::serve::loopback_args(fleet.plc_url(), fleet.host_urls(), 1, dir.clone());
    args.database_url = database_url;
    args.status_recheck_interval_secs = 1;
    let relay = start(&args).unwrap();
    let target = fleet.accounts()[0].did.clone();
    let within = Duration::from_secs(20);

    common::serve::wait_until("the account's first commits", within, || {
        seen(relay.listen, &target).commits_after.len() >= 2
    });
    fleet.deactivate(&target, "deactivated").unwrap();
    common::serve::wait_until("the host's inactive #account is relayed", within, || {
        seen(relay.listen, &target).accounts.len() == 1
    });
    // While the host says inactive, the re-checker asks and changes nothing, and the
    // account's commits are dropped.
    common::serve::wait_until("a re-check finds it still inactive", within, || {
        counter(
            relay.metrics_listen,
            "relay_status_recheck_checks_total",
            "outcome",
            "still_inactive",
        ) >= 1
            && counter(
                relay.metrics_listen,
                "relay_verify_rejections_total",
                "reason",
                "account_inactive",
            ) >= 3
    });
    let inactive = seen(relay.listen, &target);
    assert_eq!(
        inactive.accounts,
        [(false, Some("deactivated".to_owned()))],
        "only the host's event so far"
    );
    assert!(
        inactive.commits_after.iter().all(|&after| after == 0),
        "no commit of the account is relayed after its inactive #account"
    );

    // The host answers active again, with no `#account` event: the re-checker heals it.
    fleet.set_hosting_active(&target, true).unwrap();
    common::serve::wait_until("the relay announces the account active", within, || {
        seen(relay.listen, &target).accounts.len() == 2
    });
    common::serve::wait_until("the account's commits are relayed again", within, || {
        seen(relay.listen, &target).commits_after.contains(&2)
    });
    let healed = seen(relay.listen, &target);
    assert_eq!(healed.accounts[1], (true, None), "the relay's own #account");
    assert!(
        healed.commits_after.iter().all(|&after| after != 1),
        "nothing relayed between the two #account events"
    );
    assert!(
        counter(
            relay.metrics_listen,
            "relay_status_recheck_checks_total",
            "outcome",
            "healed",
        ) >= 1
    );
    // The other accounts flowed throughout.
    let other = seen(relay.listen, &fleet.accounts()[1].did);
    assert!(other.commits_after.len() > healed.commits_after.len() / 2);
    println!(
        "suite serve status recheck ({store}): {} commits before, {} after the heal",
        healed.commits_after.iter().filter(|&&a| a == 0).count(),
        healed.commits_after.iter().filter(|&&a| a == 2).count()
    );
    relay.stop();
    fleet.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

//! Start-up hosts end to end: a relay started with `--bootstrap-relay` and no upstream
//! imports the hosts another relay lists (skipping the one it lists as banned), crawls
//! them, and relays their events, nothing twice. (Stored hosts subscribed again after a
//! restart: tests/serve_restart.rs, whose second run names no `--upstream`.)

mod common;

use common::serve::{get_json, post};
use relay::runtime::serve::start;
use relay::sim::fleet::{Fleet, FleetConfig, KindMix};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN: &str = "bootstrap-token";

#[test]
fn a_bootstrapped_relay_crawls_the_hosts_another_relay_lists() {
    let fleet = Fleet::start(FleetConfig {
        hosts: 3,
        accounts_per_host: 2,
        events_per_sec: 45,
        event_limit: None,
        kind_mix: KindMix {
            commit: 1.0,
            sync: 0.0,
            identity: 0.0,
            account: 0.0,
        },
        seed: 53,
        ..FleetConfig::default()
    })
    .unwrap();
    let host_of: BTreeMap<String, String> = fleet
        .accounts()
        .into_iter()
        .map(|a| (a.did, a.host))
        .collect();
    let hosts = fleet.hostnames();
    let dir_a = common::serve::temp_dir("bootstrap-a");
    let mut args_a =
        common::serve::loopback_args(fleet.plc_url(), fleet.host_urls(), 1, dir_a.clone());
    args_a.admin_token = Some(TOKEN.to_owned());
    args_a.allow_private_hosts = true;
    let a = start(&args_a).unwrap();
    common::serve::wait_until(
        "the source relays every host",
        Duration::from_secs(60),
        || {
            let (counts, _) = common::serve::commits_by_host(a.listen, &host_of);
            hosts
                .iter()
                .all(|h| counts.get(h).copied().unwrap_or(0) >= 3)
        },
    );
    let banned = &hosts[2];
    let answer = post(
        a.listen,
        "/admin/hosts/ban",
        &format!("{{\"hostname\":\"{banned}\"}}"),
        Some(TOKEN),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "ban: {answer}");

    let dir_b = common::serve::temp_dir("bootstrap-b");
    let mut args_b = common::serve::loopback_args(fleet.plc_url(), Vec::new(), 1, dir_b.clone());
    args_b.allow_private_hosts = true;
    args_b.bootstrap_relay = Some(format!("http://{}", a.listen));
    let b = start(&args_b).unwrap();
    let (status, listed) = get_json(b.listen, "/xrpc/com.atproto.sync.listHosts", None);
    assert_eq!(status, 200, "{listed}");
    let listed: BTreeSet<&str> = listed["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([hosts[0].as_str(), hosts[1].as_str()]),
        "imported all but the host banned at the source"
    );
    let count = |relay: SocketAddr, host: &str| {
        common::serve::commits_by_host(relay, &host_of)
            .0
            .get(host)
            .copied()
            .unwrap_or(0)
    };
    common::serve::wait_until(
        "the bootstrapped relay crawls the imported hosts",
        Duration::from_secs(60),
        || count(b.listen, &hosts[0]) >= 3 && count(b.listen, &hosts[1]) >= 3,
    );
    assert_eq!(count(b.listen, banned), 0, "the banned host is not crawled");

    let (_, twice) = common::serve::commits_by_host(b.listen, &host_of);
    assert!(!twice, "nothing relayed twice");
    println!(
        "suite serve bootstrap: 2 of 3 listed hosts imported (1 banned at the source) and crawled"
    );
    b.stop();
    a.stop();
    drop(fleet);
    let _ = std::fs::remove_dir_all(dir_a);
    let _ = std::fs::remove_dir_all(dir_b);
}

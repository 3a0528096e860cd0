//! Operators' host controls applied live, through the admin API of a running relay: a
//! banned host's session stops and none of its events are relayed while the other host
//! flows on; an unban subscribes it again from its stored cursor, and its events come
//! back with nothing relayed twice.

mod common;

use relay::runtime::serve::start;
use relay::sim::fleet::{Fleet, FleetConfig, KindMix};
use std::collections::BTreeMap;
use std::time::Duration;

const TOKEN: &str = "host-control-token";

#[test]
fn a_ban_stops_a_live_host_and_an_unban_resumes_it() {
    let fleet = Fleet::start(FleetConfig {
        hosts: 2,
        accounts_per_host: 3,
        events_per_sec: 60,
        event_limit: None,
        kind_mix: KindMix {
            commit: 1.0,
            sync: 0.0,
            identity: 0.0,
            account: 0.0,
        },
        seed: 31,
        ..FleetConfig::default()
    })
    .unwrap();
    let dir = common::serve::temp_dir("host-control");
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
    let (banned, other) = (hosts[0].clone(), hosts[1].clone());
    let count = |host: &str| {
        common::serve::commits_by_host(relay.listen, &host_of)
            .0
            .get(host)
            .copied()
            .unwrap_or(0)
    };
    common::serve::wait_until("both hosts relayed", Duration::from_secs(60), || {
        count(&banned) >= 5 && count(&other) >= 5
    });

    let answer = common::serve::post(
        relay.listen,
        "/admin/hosts/ban",
        &format!("{{\"hostname\":\"{banned}\"}}"),
        Some(TOKEN),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "ban accepted: {answer}");
    // What was already on its way settles, then the banned host's count stays put.
    std::thread::sleep(Duration::from_secs(2));
    let at_ban = count(&banned);
    let other_at_ban = count(&other);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        count(&banned),
        at_ban,
        "no event of the banned host after the ban"
    );
    assert!(count(&other) > other_at_ban, "the other host flows on");

    let answer = common::serve::post(
        relay.listen,
        "/admin/hosts/unban",
        &format!("{{\"hostname\":\"{banned}\"}}"),
        Some(TOKEN),
    );
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "unban accepted: {answer}"
    );
    common::serve::wait_until(
        "the unbanned host relayed again",
        Duration::from_secs(60),
        || count(&banned) > at_ban,
    );
    let (_, twice) = common::serve::commits_by_host(relay.listen, &host_of);
    assert!(!twice, "no commit relayed twice across the ban");
    println!(
        "suite serve host control: ban held {at_ban} commits of {banned} for 4 s while {other} flowed; unban resumed it"
    );
    relay.stop();
    fleet.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

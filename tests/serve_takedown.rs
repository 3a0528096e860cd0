//! A takedown through the admin API of a running relay: the account's events stop, the
//! relay's own `#account` event (active false, status takendown) goes out, and replay
//! from an older cursor no longer serves the account's earlier events. Other accounts'
//! events flow on.

mod common;

use common::serve::post;
use common::ws_client::{Message, WsClient};
use relay::frame::event::{Event, Frame};
use relay::runtime::serve::start;
use relay::sim::fleet::{Fleet, FleetConfig};
use std::time::Duration;

const TOKEN: &str = "test-admin-token";

fn replay(addr: std::net::SocketAddr) -> Vec<Vec<u8>> {
    let mut client = WsClient::connect(
        addr,
        "/xrpc/com.atproto.sync.subscribeRepos?cursor=0",
        Duration::from_secs(2),
    )
    .unwrap();
    let mut frames = Vec::new();
    while let Ok(Message::Binary(bytes)) = client.next() {
        frames.push(bytes);
    }
    frames
}

fn did_of(frame: &Frame<'_>) -> Option<String> {
    Some(match frame.event() {
        Event::Commit(e) => e.repo().to_owned(),
        Event::Sync(e) => e.did().to_owned(),
        Event::Identity(e) => e.did().to_owned(),
        Event::Account(e) => e.did().to_owned(),
        _ => return None,
    })
}

#[test]
fn a_takedown_stops_the_account_announces_it_and_hides_its_history() {
    let fleet = Fleet::start(FleetConfig {
        hosts: 2,
        accounts_per_host: 4,
        events_per_sec: 300,
        event_limit: Some(1_200),
        seed: 9,
        ..FleetConfig::default()
    })
    .unwrap();
    let dir = common::serve::temp_dir("takedown");
    let mut args = common::serve::loopback_args(fleet.plc_url(), fleet.host_urls(), 1, dir.clone());
    args.admin_token = Some(TOKEN.to_owned());
    let relay = start(&args).unwrap();
    let target = fleet.accounts()[0].did.clone();

    // Let the account's events flow for a while, so it has history in the log.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let frames = replay(relay.listen);
        let seen = frames
            .iter()
            .filter(|f| Frame::decode(f).ok().and_then(|f| did_of(&f)).as_deref() == Some(&target))
            .count();
        if seen >= 3 || std::time::Instant::now() > deadline {
            assert!(seen >= 3, "the account has events before the takedown");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let refused = post(
        relay.listen,
        "/admin/repo/takedown",
        &format!("{{\"did\":\"{target}\"}}"),
        Some("wrong"),
    );
    assert!(
        refused.starts_with("HTTP/1.1 401"),
        "wrong token refused: {refused}"
    );
    let answer = post(
        relay.listen,
        "/admin/repo/takedown",
        &format!("{{\"did\":\"{target}\"}}"),
        Some(TOKEN),
    );
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "takedown accepted: {answer}"
    );
    assert!(fleet.wait_until_emitted(Duration::from_secs(60)));
    std::thread::sleep(Duration::from_secs(2));

    let frames = replay(relay.listen);
    let mut announcements = 0;
    let mut others = 0;
    for bytes in &frames {
        let frame = Frame::decode(bytes).unwrap();
        match (did_of(&frame).as_deref() == Some(&target), frame.event()) {
            (true, Event::Account(event)) => {
                assert!(!event.active());
                assert_eq!(event.status(), Some("takendown"));
                announcements += 1;
            }
            (true, other) => panic!("the account's event is still served: {other:?}"),
            (false, _) => others += 1,
        }
    }
    assert_eq!(announcements, 1, "the relay announced the takedown once");
    assert!(others > 0, "other accounts' events flow on");
    println!("suite serve takedown: history hidden, announced once, {others} other events served");
    relay.stop();
    fleet.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

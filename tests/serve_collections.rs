//! The collection index end to end: a relay fed by a simulated fleet lists, for every
//! collection its consumers saw records created in, exactly the accounts that created
//! them (and pages through them with cursors); bad parameters get the lexicon's errors;
//! a second relay with no upstream at all backfills its index from the first one's
//! `listReposByCollection` through the admin API, and ends with the same lists.

mod common;

use common::serve::{get_json, post};
use relay::frame::event::{Event, Frame, OpAction};
use relay::runtime::serve::start;
use relay::sim::fleet::{Fleet, FleetConfig, KindMix};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN: &str = "collections-token";

/// collection → DIDs with create or update ops in it, from every replayed commit.
fn expected_index(addr: SocketAddr) -> BTreeMap<String, BTreeSet<String>> {
    let mut index: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for bytes in common::serve::replay_all(addr, Duration::from_secs(5)) {
        let frame = Frame::decode(&bytes).unwrap();
        if let Event::Commit(commit) = frame.event() {
            for op in commit.ops().filter(|op| op.action != OpAction::Delete) {
                let collection = op.path.split('/').next().unwrap().to_owned();
                index
                    .entry(collection)
                    .or_default()
                    .insert(commit.repo().to_owned());
            }
        }
    }
    index
}

/// Every DID `listReposByCollection` lists for `collection`, walking pages of `limit`.
fn listed(addr: SocketAddr, collection: &str, limit: usize) -> Vec<String> {
    let mut dids = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut path = format!(
            "/xrpc/com.atproto.sync.listReposByCollection?collection={collection}&limit={limit}"
        );
        if !cursor.is_empty() {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = get_json(addr, &path, None);
        assert_eq!(status, 200, "{path}: {body}");
        let repos = body["repos"].as_array().unwrap();
        assert!(repos.len() <= limit);
        for repo in repos {
            assert_eq!(repo.as_object().unwrap().len(), 1, "only did: {repo}");
            dids.push(repo["did"].as_str().unwrap().to_owned());
        }
        match body.get("cursor").and_then(|c| c.as_str()) {
            Some(next) => cursor = next.to_owned(),
            None => return dids,
        }
    }
}

fn bad_requests_get_lexicon_errors(addr: SocketAddr) {
    let base = "/xrpc/com.atproto.sync.listReposByCollection";
    for query in [
        "",
        "?collection=",
        "?collection=not-an-nsid",
        "?collection=app.bsky.feed.post&limit=0",
        "?collection=app.bsky.feed.post&limit=2001",
        "?collection=app.bsky.feed.post&limit=ten",
        "?collection=app.bsky.feed.post&cursor=garbage",
        "?collection=app.bsky.feed.post&collection=app.bsky.feed.like",
    ] {
        let (status, body) = get_json(addr, &format!("{base}{query}"), None);
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "InvalidRequest", "{query}: {body}");
        assert!(body["message"].is_string(), "{query}: {body}");
    }
    let (status, body) = get_json(addr, &format!("{base}?collection=com.example.none"), None);
    assert_eq!(
        (status, body["repos"].as_array().map(Vec::len)),
        (200, Some(0))
    );
}

fn bad_triggers_are_refused(addr: SocketAddr) {
    let path = "/admin/collections/backfill";
    let refused = post(
        addr,
        path,
        r#"{"source":"http://127.0.0.1:1","collections":["a.b.c"]}"#,
        None,
    );
    assert!(refused.starts_with("HTTP/1.1 401"), "no token: {refused}");
    for body in [
        r#"{"collections":["a.b.c"]}"#,
        r#"{"source":"ftp://relay.example","collections":["a.b.c"]}"#,
        r#"{"source":"http://127.0.0.1:1/xrpc","collections":["a.b.c"]}"#,
        r#"{"source":"http://127.0.0.1:1","collections":[]}"#,
        r#"{"source":"http://127.0.0.1:1","collections":["not an nsid"]}"#,
        r#"{"source":"http://127.0.0.1:1"}"#,
        "[]",
    ] {
        let answer = post(addr, path, body, Some(TOKEN));
        assert!(answer.starts_with("HTTP/1.1 400"), "{body}: {answer}");
        assert!(answer.contains("InvalidRequest"), "{body}: {answer}");
    }
}

#[test]
fn the_index_follows_the_stream_and_a_second_relay_backfills_it() {
    let fleet = Fleet::start(FleetConfig {
        hosts: 2,
        accounts_per_host: 4,
        events_per_sec: 200,
        event_limit: Some(160),
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
    let dir_a = common::serve::temp_dir("collections-a");
    let mut args =
        common::serve::loopback_args(fleet.plc_url(), fleet.host_urls(), 1, dir_a.clone());
    args.admin_token = Some(TOKEN.to_owned());
    let a = start(&args).unwrap();

    let mut expected = BTreeMap::new();
    common::serve::wait_until(
        "every simulated commit relayed",
        Duration::from_secs(60),
        || {
            expected = expected_index(a.listen);
            let total: usize = expected.values().map(BTreeSet::len).sum();
            total > 0 && expected == expected_index(a.listen)
        },
    );
    common::serve::wait_until(
        "the index caught up with the stream",
        Duration::from_secs(60),
        || {
            expected.iter().all(|(c, dids)| {
                listed(a.listen, c, 2000) == dids.iter().cloned().collect::<Vec<_>>()
            })
        },
    );
    for (collection, dids) in &expected {
        let walked = listed(a.listen, collection, 1);
        assert_eq!(
            walked,
            dids.iter().cloned().collect::<Vec<_>>(),
            "{collection} by pages of 1"
        );
    }
    bad_requests_get_lexicon_errors(a.listen);

    // The second relay knows nothing and has no upstream: everything comes from A.
    let dir_b = common::serve::temp_dir("collections-b");
    let mut args_b = common::serve::loopback_args(fleet.plc_url(), Vec::new(), 1, dir_b.clone());
    args_b.admin_token = Some(TOKEN.to_owned());
    let b = start(&args_b).unwrap();
    bad_triggers_are_refused(b.listen);
    let collections: Vec<&String> = expected.keys().collect();
    let trigger = serde_json::json!({
        "source": format!("http://{}", a.listen),
        "collections": collections,
    });
    let answer = post(
        b.listen,
        "/admin/collections/backfill",
        &trigger.to_string(),
        Some(TOKEN),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "trigger: {answer}");
    assert!(
        answer.contains(&format!("\"queued\":{}", collections.len())),
        "{answer}"
    );
    common::serve::wait_until("every backfill job done", Duration::from_secs(60), || {
        let (status, body) = get_json(b.listen, "/admin/collections/backfill", Some(TOKEN));
        assert_eq!(status, 200, "{body}");
        let jobs = body["jobs"].as_array().unwrap();
        jobs.len() == collections.len() && jobs.iter().all(|j| j["status"] == "done")
    });
    let (_, progress) = get_json(b.listen, "/admin/collections/backfill", Some(TOKEN));
    for job in progress["jobs"].as_array().unwrap() {
        let collection = job["collection"].as_str().unwrap();
        assert_eq!(
            job["imported"].as_u64(),
            Some(expected[collection].len() as u64),
            "{job}"
        );
        assert_eq!(job["refused"].as_u64(), Some(0), "{job}");
    }
    for (collection, dids) in &expected {
        assert_eq!(
            listed(b.listen, collection, 500),
            dids.iter().cloned().collect::<Vec<_>>(),
            "{collection} backfilled"
        );
    }
    let (status, _) = get_json(b.listen, "/admin/collections/backfill", None);
    assert_eq!(status, 401, "progress needs the token");

    let pairs: usize = expected.values().map(BTreeSet::len).sum();
    println!(
        "suite serve collections: {} collections, {pairs} (collection, did) pairs indexed from the stream and backfilled by a second relay",
        expected.len()
    );
    b.stop();
    a.stop();
    drop(fleet);
    let _ = std::fs::remove_dir_all(dir_a);
    let _ = std::fs::remove_dir_all(dir_b);
}

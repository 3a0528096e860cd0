//! The `com.atproto.sync.*` endpoints end to end: a router on a glommio executor
//! (127.0.0.1:0) over a RocksDB store in a temp dir and, when `RELAY_TEST_DATABASE_URL`
//! is set, PostgreSQL; requests from a blocking std client; every 200 body validated
//! against its lexicon's output schema, every error name against the lexicon's errors.

mod api_support;

use api_support::{Backend, FakeHost, FakeTlsHost, Lexicons, Options, Response, Server};
use relay::frame::cid::Cid;
use relay::state::{CollectionRepo, LocalStatus, RevUpdate, UpstreamStatus};
use serde_json::Value;
use std::time::Duration;

const SYNC: &str = "com.atproto.sync";

/// Checks a reply of `method`: 200 bodies against the output schema, errors against the
/// declared names. Returns the JSON body.
fn checked(lex: &Lexicons, method: &str, response: &Response, cases: &mut usize) -> Value {
    *cases += 1;
    let nsid = format!("{SYNC}.{method}");
    let body = response.json();
    if response.status == 200 {
        lex.check_output(&nsid, &body);
    } else {
        lex.check_error(&nsid, body["error"].as_str().unwrap());
    }
    body
}

struct Seeded {
    active: String,
    no_commit: String,
    takendown: String,
    suspended: String,
    deactivated: String,
    /// A rev stored without its commit CID (as a relay before the commit CID wrote it).
    no_head: String,
    rev: String,
    cid: String,
}

/// Three hosts, six accounts on the first.
fn seed(server: &Server) -> Seeded {
    let rev = "3jzfcijpj2z2a".to_owned();
    let cid = Cid::for_dag_cbor(b"\xa0");
    // A data CID unlike the commit CID: the API must serve the commit's.
    let data = Cid::for_dag_cbor(b"\x80");
    let (rev2, cid_bytes) = (rev.clone(), cid.to_bytes().to_vec());
    let data_bytes = data.to_bytes().to_vec();
    let dids = server.store(move |store| {
        let host = store.upsert_host("pds1.example.com", 1)?;
        store.upsert_host("pds2.example.com", 2)?;
        store.upsert_host("pds3.example.com", 3)?;
        store.set_host_cursor(host.id, 77)?;
        let mut dids = Vec::new();
        for (i, name) in [
            "active",
            "nocommit",
            "takendown",
            "suspended",
            "deactivated",
            "nohead",
        ]
        .iter()
        .enumerate()
        {
            let did = format!("did:plc:{name}{i}aaaaaaaaaaaa");
            let account = store.get_or_create_account(&did, host.id)?;
            if *name != "nocommit" {
                let update = RevUpdate {
                    rev: rev2.clone(),
                    data_cid: data_bytes.clone(),
                    desynchronized: false,
                    commit_cid: (*name != "nohead").then(|| cid_bytes.clone()),
                };
                assert!(store.update_account_rev(account.uid, &update)?);
            }
            match *name {
                "takendown" => {
                    store.set_local_status(account.uid, LocalStatus::Takendown)?;
                }
                "suspended" => {
                    store.set_upstream_status(account.uid, UpstreamStatus::Suspended)?;
                }
                "deactivated" => {
                    store.set_upstream_status(account.uid, UpstreamStatus::Deactivated)?;
                }
                _ => {}
            }
            dids.push(did);
        }
        Ok(dids)
    });
    Seeded {
        active: dids[0].clone(),
        no_commit: dids[1].clone(),
        takendown: dids[2].clone(),
        suspended: dids[3].clone(),
        deactivated: dids[4].clone(),
        no_head: dids[5].clone(),
        rev,
        cid: cid.to_string(),
    }
}

fn suite(backend: &Backend) {
    let lex = Lexicons::new();
    let server = Server::start(backend.open(), Options::default());
    let mut cases = 0;

    let health = server.get("/xrpc/_health");
    assert_eq!(
        (health.status, health.json()["version"].as_str()),
        (200, Some("test"))
    );

    let empty = server.get("/xrpc/com.atproto.sync.listHosts");
    let body = checked(&lex, "listHosts", &empty, &mut cases);
    assert_eq!(body, serde_json::json!({ "hosts": [] }));

    let seeded = seed(&server);
    list_hosts(&server, &lex, &mut cases);
    host_status(&server, &lex, &mut cases);
    list_repos(&server, &lex, &seeded, &mut cases);
    repo_status(&server, &lex, &seeded, &mut cases);
    latest_commit(&server, &lex, &seeded, &mut cases);
    get_repo(&server, &seeded, &mut cases);
    routing(&server, &mut cases);
    repos_by_collection(&server, &lex, &seeded, &mut cases);
    api_support::report(&format!("api endpoints ({})", backend.name), cases);
}

fn list_hosts(server: &Server, lex: &Lexicons, cases: &mut usize) {
    let page = server.get("/xrpc/com.atproto.sync.listHosts?limit=2");
    let body = checked(lex, "listHosts", &page, cases);
    let names: Vec<_> = body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hostname"].clone())
        .collect();
    assert_eq!(names, ["pds1.example.com", "pds2.example.com"]);
    assert_eq!(body["hosts"][0]["seq"], 77);
    assert_eq!(body["hosts"][0]["accountCount"], 6);
    assert_eq!(body["hosts"][0]["status"], "active");
    let cursor = body["cursor"]
        .as_str()
        .expect("a full page has a cursor")
        .to_owned();
    let next = server.get(&format!(
        "/xrpc/com.atproto.sync.listHosts?limit=2&cursor={cursor}"
    ));
    let body = checked(lex, "listHosts", &next, cases);
    assert_eq!(body["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(body["hosts"][0]["hostname"], "pds3.example.com");
    assert!(body.get("cursor").is_none());
    let all = server.get("/xrpc/com.atproto.sync.listHosts?limit=1000");
    assert_eq!(
        checked(lex, "listHosts", &all, cases)["hosts"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "cursor=abc",
        "cursor=-1",
        "cursor=",
        "limit=1&limit=2",
        "cursor=%zz",
    ] {
        let response = server.get(&format!("/xrpc/com.atproto.sync.listHosts?{bad}"));
        response.assert_error(400, "InvalidRequest");
        checked(lex, "listHosts", &response, cases);
    }
}

fn host_status(server: &Server, lex: &Lexicons, cases: &mut usize) {
    let known = server.get("/xrpc/com.atproto.sync.getHostStatus?hostname=PDS1.example.com");
    let body = checked(lex, "getHostStatus", &known, cases);
    assert_eq!(
        body,
        serde_json::json!({"hostname": "pds1.example.com", "seq": 77, "accountCount": 6, "status": "active"})
    );
    let unknown = server.get("/xrpc/com.atproto.sync.getHostStatus?hostname=nope.example.com");
    unknown.assert_error(400, "HostNotFound");
    checked(lex, "getHostStatus", &unknown, cases);
    let missing = server.get("/xrpc/com.atproto.sync.getHostStatus");
    missing.assert_error(400, "InvalidRequest");
    checked(lex, "getHostStatus", &missing, cases);
}

fn list_repos(server: &Server, lex: &Lexicons, seeded: &Seeded, cases: &mut usize) {
    let all = server.get("/xrpc/com.atproto.sync.listRepos");
    let body = checked(lex, "listRepos", &all, cases);
    let repos = body["repos"].as_array().unwrap();
    // The account without a commit has no head or rev, the one whose rev was stored
    // without its commit CID no head: neither is listed.
    assert_eq!(repos.len(), 4, "{body}");
    assert!(repos.iter().all(|r| r["did"] != seeded.no_commit.as_str()));
    assert!(repos.iter().all(|r| r["did"] != seeded.no_head.as_str()));
    let by_did = |did: &str| repos.iter().find(|r| r["did"] == did).unwrap().clone();
    assert_eq!(
        by_did(&seeded.active),
        serde_json::json!({"did": seeded.active, "head": seeded.cid, "rev": seeded.rev, "active": true})
    );
    assert_eq!(by_did(&seeded.takendown)["status"], "takendown");
    assert_eq!(by_did(&seeded.takendown)["active"], false);
    assert_eq!(by_did(&seeded.suspended)["status"], "suspended");
    assert_eq!(by_did(&seeded.deactivated)["status"], "deactivated");
    // Paging by uid: 2 + 2 + 2 accounts scanned and a last empty page (the skipped ones
    // still move the cursor).
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".into(),
        };
        let page = server.get(&format!("/xrpc/com.atproto.sync.listRepos?{query}"));
        let body = checked(lex, "listRepos", &page, cases);
        seen.extend(
            body["repos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["did"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match body["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!((seen.len(), pages), (4, 4));
    for bad in ["limit=0", "limit=1001", "cursor=x1"] {
        let response = server.get(&format!("/xrpc/com.atproto.sync.listRepos?{bad}"));
        response.assert_error(400, "InvalidRequest");
        checked(lex, "listRepos", &response, cases);
    }
}

fn repo_status(server: &Server, lex: &Lexicons, seeded: &Seeded, cases: &mut usize) {
    let path = |did: &str| format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}");
    let active = checked(
        lex,
        "getRepoStatus",
        &server.get(&path(&seeded.active)),
        cases,
    );
    assert_eq!(
        active,
        serde_json::json!({"did": seeded.active, "active": true, "rev": seeded.rev})
    );
    let down = checked(
        lex,
        "getRepoStatus",
        &server.get(&path(&seeded.takendown)),
        cases,
    );
    assert_eq!(
        (down["active"].clone(), down["status"].clone()),
        (false.into(), "takendown".into())
    );
    let fresh = checked(
        lex,
        "getRepoStatus",
        &server.get(&path(&seeded.no_commit)),
        cases,
    );
    assert_eq!(
        fresh,
        serde_json::json!({"did": seeded.no_commit, "active": true})
    );
    let no_head = checked(
        lex,
        "getRepoStatus",
        &server.get(&path(&seeded.no_head)),
        cases,
    );
    assert_eq!(
        no_head,
        serde_json::json!({"did": seeded.no_head, "active": true, "rev": seeded.rev})
    );
    let unknown = server.get(&path("did:plc:unknownaaaaaaaaaaaaa"));
    unknown.assert_error(400, "RepoNotFound");
    checked(lex, "getRepoStatus", &unknown, cases);
    for bad in [
        path("not-a-did"),
        "/xrpc/com.atproto.sync.getRepoStatus".into(),
    ] {
        let response = server.get(&bad);
        response.assert_error(400, "InvalidRequest");
        checked(lex, "getRepoStatus", &response, cases);
    }
}

fn latest_commit(server: &Server, lex: &Lexicons, seeded: &Seeded, cases: &mut usize) {
    let path = |did: &str| format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}");
    let ok = checked(
        lex,
        "getLatestCommit",
        &server.get(&path(&seeded.active)),
        cases,
    );
    assert_eq!(
        ok,
        serde_json::json!({"cid": seeded.cid, "rev": seeded.rev})
    );
    for (did, error) in [
        (seeded.takendown.as_str(), "RepoTakendown"),
        (seeded.suspended.as_str(), "RepoSuspended"),
        (seeded.deactivated.as_str(), "RepoDeactivated"),
        (seeded.no_commit.as_str(), "RepoNotFound"),
        (seeded.no_head.as_str(), "RepoNotFound"),
        ("did:plc:unknownaaaaaaaaaaaaa", "RepoNotFound"),
    ] {
        let response = server.get(&path(did));
        let body = response.assert_error(400, error);
        checked(lex, "getLatestCommit", &response, cases);
        if did == seeded.no_head || did == seeded.no_commit {
            assert_eq!(body["message"], "no commit of this repo relayed yet");
        }
    }
    let bad = server.get(&path("did:bad"));
    bad.assert_error(400, "InvalidRequest");
    checked(lex, "getLatestCommit", &bad, cases);
}

fn get_repo(server: &Server, seeded: &Seeded, cases: &mut usize) {
    let lex = Lexicons::new();
    let path = |q: &str| format!("/xrpc/com.atproto.sync.getRepo?{q}");
    let redirect = server.get(&path(&format!("did={}", seeded.active)));
    assert_eq!(redirect.status, 302);
    let encoded = seeded.active.replace(':', "%3A");
    assert_eq!(
        redirect.header("location"),
        Some(
            format!("https://pds1.example.com/xrpc/com.atproto.sync.getRepo?did={encoded}")
                .as_str()
        )
    );
    *cases += 1;
    let since = server.get(&path(&format!("did={}&since=3jzfcijpj2z2a", seeded.active)));
    assert!(
        since
            .header("location")
            .unwrap()
            .ends_with("&since=3jzfcijpj2z2a")
    );
    *cases += 1;
    for (query, status, error) in [
        (format!("did={}", seeded.takendown), 400, "RepoTakendown"),
        (
            format!("did={}", seeded.deactivated),
            400,
            "RepoDeactivated",
        ),
        (
            "did=did:plc:unknownaaaaaaaaaaaaa".into(),
            400,
            "RepoNotFound",
        ),
        (
            format!("did={}&since=notatid", seeded.active),
            400,
            "InvalidRequest",
        ),
        (String::new(), 400, "InvalidRequest"),
    ] {
        let response = server.get(&path(&query));
        response.assert_error(status, error);
        lex.check_error("com.atproto.sync.getRepo", error);
        *cases += 1;
    }
}

fn routing(server: &Server, cases: &mut usize) {
    let wrong_method = server.get("/xrpc/com.atproto.sync.requestCrawl");
    wrong_method.assert_error(405, "InvalidRequest");
    let unknown = server.get("/xrpc/com.atproto.sync.notAMethod");
    unknown.assert_error(501, "MethodNotImplemented");
    *cases += 2;
}

/// `listReposByCollection` over the seeded index: DID order, cursors, accounts that are
/// not active hidden (the cursor still moves past them), lexicon bounds and errors.
fn repos_by_collection(server: &Server, lex: &Lexicons, seeded: &Seeded, cases: &mut usize) {
    let post = "app.bsky.feed.post";
    let mut indexed: Vec<String> = (0..5)
        .map(|i| format!("did:plc:index{i}aaaaaaaaaaa"))
        .collect();
    indexed.push(seeded.active.clone());
    indexed.push(seeded.takendown.clone());
    indexed.push(seeded.deactivated.clone());
    let pairs: Vec<CollectionRepo> = indexed
        .iter()
        .map(|did| CollectionRepo {
            collection: post.to_owned(),
            did: did.clone(),
        })
        .chain(std::iter::once(CollectionRepo {
            collection: "app.bsky.feed.like".to_owned(),
            did: seeded.active.clone(),
        }))
        .collect();
    server.store(move |store| store.add_collection_repos(&pairs));
    let mut visible: Vec<String> = indexed
        .iter()
        .filter(|d| **d != seeded.takendown && **d != seeded.deactivated)
        .cloned()
        .collect();
    visible.sort();
    let path = |q: &str| format!("/xrpc/com.atproto.sync.listReposByCollection?{q}");
    let all = checked(
        lex,
        "listReposByCollection",
        &server.get(&path(&format!("collection={post}"))),
        cases,
    );
    let dids: Vec<&str> = all["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["did"].as_str().unwrap())
        .collect();
    assert_eq!(dids, visible, "every active indexed DID, in order");
    assert!(all.get("cursor").is_none(), "a short page has no cursor");

    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let q = if cursor.is_empty() {
            format!("collection={post}&limit=2")
        } else {
            format!("collection={post}&limit=2&cursor={cursor}")
        };
        let page = checked(lex, "listReposByCollection", &server.get(&path(&q)), cases);
        let repos = page["repos"].as_array().unwrap();
        assert!(repos.len() <= 2);
        walked.extend(repos.iter().map(|r| r["did"].as_str().unwrap().to_owned()));
        match page["cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(walked, visible, "pages of 2 walk the same list");

    let like = checked(
        lex,
        "listReposByCollection",
        &server.get(&path("collection=app.bsky.feed.like")),
        cases,
    );
    assert_eq!(like["repos"], serde_json::json!([{ "did": seeded.active }]));
    let none = checked(
        lex,
        "listReposByCollection",
        &server.get(&path("collection=com.example.none")),
        cases,
    );
    assert_eq!(none, serde_json::json!({ "repos": [] }));
    for q in [
        "",
        "collection=",
        "collection=not_an_nsid",
        "collection=app.bsky.feed.post&limit=0",
        "collection=app.bsky.feed.post&limit=2001",
        "collection=app.bsky.feed.post&limit=-1",
        "collection=app.bsky.feed.post&cursor=not-a-did",
        "collection=app.bsky.feed.post&collection=app.bsky.feed.like",
    ] {
        server.get(&path(q)).assert_error(400, "InvalidRequest");
        *cases += 1;
    }
    let max = server.get(&path("collection=app.bsky.feed.post&limit=2000"));
    assert_eq!(max.status, 200, "the lexicon maximum is accepted");
}

#[test]
fn endpoints_over_rocksdb() {
    suite(&Backend::rocksdb());
}

#[test]
fn endpoints_over_postgres() {
    if let Some(backend) = Backend::postgres() {
        suite(&backend);
    }
}

fn crawl(server: &Server, hostname: &str) -> Response {
    server.post(
        "/xrpc/com.atproto.sync.requestCrawl",
        &serde_json::json!({ "hostname": hostname }).to_string(),
    )
}

fn crawl_suite(backend: &Backend) {
    let lex = Lexicons::new();
    let options = Options {
        new_hosts_per_day: 2,
        ..Options::default()
    };
    let server = Server::start(backend.open(), options);
    let mut cases = 0;
    let error = |response: &Response, status: u16, name: &str, cases: &mut usize| {
        response.assert_error(status, name);
        lex.check_error("com.atproto.sync.requestCrawl", name);
        *cases += 1;
    };

    // A live PDS is stored and handed to ingest.
    let pds = FakeHost::pds();
    let accepted = crawl(&server, &pds.hostname());
    assert_eq!((accepted.status, accepted.body.len()), (200, 0));
    let request = server.crawl.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        (request.hostname.as_str(), request.new),
        (pds.hostname().as_str(), true)
    );
    let status = server.get(&format!(
        "/xrpc/com.atproto.sync.getHostStatus?hostname={}",
        pds.hostname()
    ));
    assert_eq!(status.json()["status"], "active");
    cases += 1;
    // A re-crawl of a known host passes again (not counted against the budget).
    assert_eq!(crawl(&server, &pds.hostname()).status, 200);
    assert!(
        !server
            .crawl
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .new
    );
    cases += 1;

    // Refusals: nothing stored, nothing queued.
    let relay = FakeHost::start(
        200,
        Some("indigo-relay/0.2 (atproto-relay)"),
        r#"{"did":"did:web:r.test"}"#,
    );
    error(
        &crawl(&server, &relay.hostname()),
        400,
        "InvalidRequest",
        &mut cases,
    );
    let not_pds = FakeHost::start(404, None, r#"{"error":"NotFound"}"#);
    error(
        &crawl(&server, &not_pds.hostname()),
        400,
        "InvalidRequest",
        &mut cases,
    );
    let no_did = FakeHost::start(200, None, r#"{"availableUserDomains":[]}"#);
    error(
        &crawl(&server, &no_did.hostname()),
        400,
        "InvalidRequest",
        &mut cases,
    );
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    error(&crawl(&server, &closed), 400, "InvalidRequest", &mut cases);
    for body in [
        "not json",
        "{}",
        r#"{"hostname": 5}"#,
        r#"{"hostname": "bad host!"}"#,
        r#"{"hostname": "https://pds.example.com"}"#,
        r#"{"hostname": ""}"#,
    ] {
        let response = server.post("/xrpc/com.atproto.sync.requestCrawl", body);
        error(&response, 400, "InvalidRequest", &mut cases);
    }
    assert!(
        server.crawl.try_recv().is_err(),
        "a refused host was queued"
    );
    let stored = server.store({
        let names = [relay.hostname(), not_pds.hostname(), closed.clone()];
        move |store| {
            let mut found = 0;
            for name in &names {
                found += usize::from(store.get_host(name)?.is_some());
            }
            Ok(found)
        }
    });
    assert_eq!(stored, 0, "a refused host was stored");

    // Bans: a banned domain (and its subdomains), a banned host.
    server.store(|store| store.put_domain_ban("example.com"));
    error(
        &crawl(&server, "pds.example.com"),
        400,
        "HostBanned",
        &mut cases,
    );
    error(
        &crawl(&server, "example.com"),
        400,
        "HostBanned",
        &mut cases,
    );
    let banned = FakeHost::pds();
    let banned_name = banned.hostname();
    server.store(move |store| {
        let mut host = store.upsert_host(&banned_name, 1)?;
        host.status = relay::state::HostStatus::Banned;
        store.put_host(&host)
    });
    error(
        &crawl(&server, &banned.hostname()),
        400,
        "HostBanned",
        &mut cases,
    );

    // The daily budget: two new hosts (the first PDS was one; refusals gave theirs back).
    let second = FakeHost::pds();
    assert_eq!(crawl(&server, &second.hostname()).status, 200);
    let third = FakeHost::pds();
    error(
        &crawl(&server, &third.hostname()),
        429,
        "RateLimitExceeded",
        &mut cases,
    );
    cases += 1;
    api_support::report(&format!("api requestCrawl ({})", backend.name), cases);
}

#[test]
fn request_crawl_over_rocksdb() {
    crawl_suite(&Backend::rocksdb());
}

#[test]
fn request_crawl_over_postgres() {
    if let Some(backend) = Backend::postgres() {
        crawl_suite(&backend);
    }
}

/// Without `allow_private_hosts`: private, loopback, link-local addresses and local names
/// are refused before any lookup or connection; ports are refused.
#[test]
fn private_hosts_are_refused() {
    let backend = Backend::rocksdb();
    let options = Options {
        allow_private_hosts: false,
        ..Options::default()
    };
    let server = Server::start(backend.open(), options);
    let pds = FakeHost::pds();
    let mut cases = 0;
    for hostname in [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "192.168.1.1",
        "localhost",
        "printer.local",
        "metadata.internal",
        "1.0.0.127.in-addr.arpa",
        &pds.hostname(),
        "pds.example.com:8443",
    ] {
        let response = crawl(&server, hostname);
        response.assert_error(400, "InvalidRequest");
        cases += 1;
    }
    assert!(server.crawl.try_recv().is_err());
    api_support::report("api requestCrawl private hosts", cases);
}

/// The checker itself: it must refuse what the lexicons refuse.
#[test]
fn the_lexicon_checker_refuses_bad_bodies() {
    let lex = Lexicons::new();
    let bad = [
        ("listHosts", serde_json::json!({})),
        ("listHosts", serde_json::json!({"hosts": [{"seq": 1}]})),
        (
            "listHosts",
            serde_json::json!({"hosts": [{"hostname": "a", "seq": "1"}]}),
        ),
        (
            "listRepos",
            serde_json::json!({"repos": [{"did": "nope", "head": "x", "rev": "y"}]}),
        ),
        (
            "getRepoStatus",
            serde_json::json!({"did": "did:plc:abc", "active": "yes"}),
        ),
        (
            "getLatestCommit",
            serde_json::json!({"cid": "bafy", "rev": "3jzfcijpj2z2a", "extra": 1}),
        ),
    ];
    for (method, body) in &bad {
        let nsid = format!("{SYNC}.{method}");
        let result = std::panic::catch_unwind(|| lex.check_output(&nsid, body));
        assert!(result.is_err(), "{method} accepted {body}");
    }
    let result = std::panic::catch_unwind(|| {
        lex.check_error("com.atproto.sync.getLatestCommit", "HostNotFound")
    });
    assert!(result.is_err());
    api_support::report("api lexicon checker", bad.len() + 1);
}

/// The https liveness check: a name (`localhost`, resolved through the system resolver
/// on the blocking pool) with a certificate the check trusts passes; the same host is
/// refused by a check that does not trust it.
#[test]
fn request_crawl_checks_liveness_over_tls() {
    let host = FakeTlsHost::start();
    let trusting = Server::start(
        Backend::rocksdb().open(),
        Options {
            tls_roots: Some(host.roots()),
            ..Options::default()
        },
    );
    let accepted = crawl(&trusting, &host.hostname());
    assert_eq!(
        accepted.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&accepted.body)
    );
    let request = trusting.crawl.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(request.hostname, host.hostname());
    drop(trusting);
    let untrusting = Server::start(Backend::rocksdb().open(), Options::default());
    let refused = crawl(&untrusting, &host.hostname()).assert_error(400, "InvalidRequest");
    assert!(
        refused["message"].as_str().unwrap().contains("TLS"),
        "{refused}"
    );
    assert!(untrusting.crawl.try_recv().is_err());
    api_support::report("api requestCrawl over TLS", 2);
}

/// Not a check: prints the sequential request rate of `getRepoStatus` (one connection
/// per request, store reads through the state thread) for the report. Run with
/// `cargo test --test api_endpoints -- --ignored --nocapture`.
#[test]
#[ignore]
fn request_rate_probe() {
    let server = Server::start(Backend::rocksdb().open(), Options::default());
    let seeded = seed(&server);
    let path = format!("/xrpc/com.atproto.sync.getRepoStatus?did={}", seeded.active);
    let n = 2000;
    let started = std::time::Instant::now();
    for _ in 0..n {
        assert_eq!(server.get(&path).status, 200);
    }
    let elapsed = started.elapsed();
    println!(
        "getRepoStatus: {n} sequential requests in {elapsed:?} ({:.0}/s, {:.0} µs each)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_micros() as f64 / n as f64
    );
}

//! The `/admin` routes end to end over RocksDB and (with `RELAY_TEST_DATABASE_URL`)
//! PostgreSQL: bearer-token checks, host and domain bans, limits, cursor reset,
//! takedowns, the events handed to the data plane, and the full-queue reply.

mod api_support;

use api_support::{Backend, Options, Server};
use relay::admin::AdminEvent;
use relay::state::{HostStatus, LocalStatus};
use std::time::Duration;

const TOKEN: &str = "s3cret-token";

fn event(server: &Server) -> AdminEvent {
    server.admin.recv_timeout(Duration::from_secs(5)).unwrap()
}

fn suite(backend: &Backend) {
    let server = Server::start(backend.open(), Options::default());
    let mut cases = 0;
    let (host_id, uid) = server.store(|store| {
        let host = store.upsert_host("pds1.example.com", 1)?;
        store.set_host_cursor(host.id, 500)?;
        let account = store.get_or_create_account("did:plc:adminaaaaaaaaaaaaaaa", host.id)?;
        Ok((host.id, account.uid))
    });

    // Auth: every route refuses a missing, wrong or non-Bearer token with 401.
    for path in ["/admin/hosts", "/admin/domains"] {
        server.get(path).assert_error(401, "AuthenticationRequired");
        server
            .admin_get(path, "wrong")
            .assert_error(401, "AuthenticationRequired");
        server
            .admin_get(path, "s3cret-token-and-more")
            .assert_error(401, "AuthenticationRequired");
        cases += 3;
    }
    let basic = relay_basic(&server);
    basic.assert_error(401, "AuthenticationRequired");
    server
        .post("/admin/hosts/ban", r#"{"hostname":"pds1.example.com"}"#)
        .assert_error(401, "AuthenticationRequired");
    cases += 2;

    // Listing with counters and limits.
    let hosts = server.admin_get("/admin/hosts", TOKEN);
    assert_eq!(hosts.status, 200);
    let host = &hosts.json()["hosts"][0];
    assert_eq!(host["hostname"], "pds1.example.com");
    assert_eq!(
        (host["seq"].as_u64(), host["accountCount"].as_u64()),
        (Some(500), Some(1))
    );
    for field in [
        "id",
        "status",
        "accountLimit",
        "ratePerSecond",
        "ratePerHour",
        "ratePerDay",
        "failures",
        "firstSeenMs",
        "lastConnectedMs",
    ] {
        assert!(host.get(field).is_some(), "{field} missing: {host}");
    }
    // Nothing set: the stored settings are null and the relay's defaults are in force.
    assert!(host["accountLimit"].is_null(), "{host}");
    let effective = &host["effective"];
    assert_eq!(effective["accountLimit"], 100, "{host}");
    assert_eq!(effective["accountLimitSource"], "default");
    assert_eq!(
        (&effective["ratePerSecond"], &effective["rateSource"]),
        (&serde_json::json!(50), &serde_json::json!("default"))
    );
    cases += 1;
    server
        .admin_get("/admin/hosts?limit=0", TOKEN)
        .assert_error(400, "InvalidRequest");
    server
        .admin_get("/admin/hosts?cursor=x", TOKEN)
        .assert_error(400, "InvalidRequest");
    cases += 3;

    // Limits.
    let changed = server.admin_post(
        "/admin/hosts/changeLimits",
        TOKEN,
        r#"{"hostname":"pds1.example.com","accountLimit":10,"perSecond":5,"perDay":1000}"#,
    );
    assert_eq!(changed.status, 200, "{:?}", changed.json());
    match event(&server) {
        AdminEvent::HostLimitsChanged {
            host_id: id,
            account_limit,
            rate_limits,
        } => {
            assert_eq!((id, account_limit), (host_id, 10));
            assert_eq!(
                (
                    rate_limits.per_second,
                    rate_limits.per_hour,
                    rate_limits.per_day
                ),
                (5, 0, 1000)
            );
        }
        other => panic!("{other:?}"),
    }
    let stored = server
        .store(|store| store.get_host("pds1.example.com"))
        .unwrap();
    assert_eq!(
        (stored.account_limit, stored.rate_limits.per_day),
        (10, 1000)
    );
    let host = &server.admin_get("/admin/hosts", TOKEN).json()["hosts"][0];
    let effective = &host["effective"];
    assert_eq!(
        (
            &host["accountLimit"],
            &effective["accountLimit"],
            &effective["accountLimitSource"],
            &effective["ratePerSecond"],
            &effective["ratePerHour"],
            &effective["rateSource"]
        ),
        (
            &serde_json::json!(10),
            &serde_json::json!(10),
            &serde_json::json!("operator"),
            &serde_json::json!(5),
            &serde_json::json!(2_510),
            &serde_json::json!("operator")
        ),
        "operator settings in force, the hour left to its default scaled by the limit: {host}"
    );
    // 0 is unlimited, null returns a limit to the default.
    let changed = server.admin_post(
        "/admin/hosts/changeLimits",
        TOKEN,
        r#"{"hostname":"pds1.example.com","accountLimit":0,"perSecond":null}"#,
    );
    assert_eq!(changed.status, 200, "{:?}", changed.json());
    let _ = event(&server);
    let host = &server.admin_get("/admin/hosts", TOKEN).json()["hosts"][0];
    let effective = &host["effective"];
    assert_eq!(
        (
            &host["accountLimit"],
            &host["ratePerSecond"],
            &effective["accountLimit"],
            &effective["ratePerSecond"],
            &effective["ratePerDay"]
        ),
        (
            &serde_json::json!(0),
            &serde_json::Value::Null,
            &serde_json::json!(0),
            &serde_json::json!(5_000),
            &serde_json::json!(1_000)
        ),
        "unlimited accounts get the trusted per-second default: {host}"
    );
    cases += 2;
    for bad in [
        r#"{"hostname":"pds1.example.com","accountLimit":-1}"#,
        r#"{"hostname":"pds1.example.com","perHour":"x"}"#,
        r#"{"accountLimit":1}"#,
        "[]",
    ] {
        server
            .admin_post("/admin/hosts/changeLimits", TOKEN, bad)
            .assert_error(400, "InvalidRequest");
        cases += 1;
    }
    server
        .admin_post(
            "/admin/hosts/changeLimits",
            TOKEN,
            r#"{"hostname":"nope.example.com","accountLimit":1}"#,
        )
        .assert_error(400, "HostNotFound");
    cases += 2;

    // Cursor reset.
    assert_eq!(
        server
            .admin_post(
                "/admin/hosts/resetCursor",
                TOKEN,
                r#"{"hostname":"pds1.example.com"}"#
            )
            .status,
        200
    );
    assert_eq!(event(&server), AdminEvent::HostCursorReset { host_id });
    let status = server.get("/xrpc/com.atproto.sync.getHostStatus?hostname=pds1.example.com");
    assert_eq!(status.json()["seq"], 0);
    server
        .admin_post(
            "/admin/hosts/resetCursor",
            TOKEN,
            r#"{"hostname":"nope.example.com"}"#,
        )
        .assert_error(400, "HostNotFound");
    cases += 2;

    // Host bans: a known host, and an unknown one (stored banned so requestCrawl refuses).
    assert_eq!(
        server
            .admin_post(
                "/admin/hosts/ban",
                TOKEN,
                r#"{"hostname":"PDS1.example.com"}"#
            )
            .status,
        200
    );
    assert!(matches!(event(&server), AdminEvent::HostBanned { host_id: id, .. } if id == host_id));
    let status = server.get("/xrpc/com.atproto.sync.getHostStatus?hostname=pds1.example.com");
    assert_eq!(status.json()["status"], "banned");
    assert_eq!(
        server
            .admin_post(
                "/admin/hosts/ban",
                TOKEN,
                r#"{"hostname":"evil.example.net"}"#
            )
            .status,
        200
    );
    let _ = event(&server);
    let crawl = server.post(
        "/xrpc/com.atproto.sync.requestCrawl",
        r#"{"hostname":"evil.example.net"}"#,
    );
    crawl.assert_error(400, "HostBanned");
    assert_eq!(
        server
            .admin_post(
                "/admin/hosts/unban",
                TOKEN,
                r#"{"hostname":"pds1.example.com"}"#
            )
            .status,
        200
    );
    assert!(matches!(event(&server), AdminEvent::HostUnbanned { .. }));
    let stored = server
        .store(|store| store.get_host("pds1.example.com"))
        .unwrap();
    assert_eq!(stored.status, HostStatus::Active);
    server
        .admin_post(
            "/admin/hosts/unban",
            TOKEN,
            r#"{"hostname":"never.example.com"}"#,
        )
        .assert_error(400, "HostNotFound");
    server
        .admin_post("/admin/hosts/ban", TOKEN, r#"{"hostname":"bad host"}"#)
        .assert_error(400, "InvalidRequest");
    cases += 6;

    // Domain bans.
    assert_eq!(
        server
            .admin_post("/admin/domains/ban", TOKEN, r#"{"domain":"Spam.example"}"#)
            .status,
        200
    );
    assert_eq!(
        event(&server),
        AdminEvent::DomainBanned {
            domain: "spam.example".into()
        }
    );
    let domains = server.admin_get("/admin/domains", TOKEN);
    assert_eq!(
        domains.json(),
        serde_json::json!({"domains": ["spam.example"]})
    );
    server
        .post(
            "/xrpc/com.atproto.sync.requestCrawl",
            r#"{"hostname":"pds.spam.example"}"#,
        )
        .assert_error(400, "HostBanned");
    assert_eq!(
        server
            .admin_post(
                "/admin/domains/unban",
                TOKEN,
                r#"{"domain":"spam.example"}"#
            )
            .status,
        200
    );
    assert_eq!(
        event(&server),
        AdminEvent::DomainUnbanned {
            domain: "spam.example".into()
        }
    );
    assert_eq!(
        server.admin_get("/admin/domains", TOKEN).json()["domains"],
        serde_json::json!([])
    );
    for bad in [r#"{"domain":"not a domain"}"#, r#"{"domain":5}"#, "{}"] {
        server
            .admin_post("/admin/domains/ban", TOKEN, bad)
            .assert_error(400, "InvalidRequest");
        cases += 1;
    }
    cases += 4;

    // Takedowns.
    let did = "did:plc:adminaaaaaaaaaaaaaaa";
    let body = format!(r#"{{"did":"{did}"}}"#);
    assert_eq!(
        server
            .admin_post("/admin/repo/takedown", TOKEN, &body)
            .status,
        200
    );
    assert_eq!(
        event(&server),
        AdminEvent::AccountStatusChanged {
            uid,
            did: did.into(),
            status: LocalStatus::Takendown
        }
    );
    let status = server
        .get(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}"))
        .json();
    assert_eq!(
        (status["active"].clone(), status["status"].clone()),
        (false.into(), "takendown".into())
    );
    assert_eq!(
        server
            .admin_post("/admin/repo/reverseTakedown", TOKEN, &body)
            .status,
        200
    );
    assert!(matches!(
        event(&server),
        AdminEvent::AccountStatusChanged {
            status: LocalStatus::Active,
            ..
        }
    ));
    let status = server
        .get(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}"))
        .json();
    assert_eq!(status["active"], true);
    server
        .admin_post(
            "/admin/repo/takedown",
            TOKEN,
            r#"{"did":"did:plc:unknownaaaaaaaaaaaaa"}"#,
        )
        .assert_error(400, "RepoNotFound");
    server
        .admin_post("/admin/repo/takedown", TOKEN, r#"{"did":"nope"}"#)
        .assert_error(400, "InvalidRequest");
    cases += 4;

    // Collection backfill: trigger, progress, bad input; a done job starts over.
    let path = "/admin/collections/backfill";
    server.get(path).assert_error(401, "AuthenticationRequired");
    server
        .post(
            path,
            r#"{"source":"http://127.0.0.1:1","collections":["a.b.c"]}"#,
        )
        .assert_error(401, "AuthenticationRequired");
    for body in [
        r#"{"collections":["app.bsky.feed.post"]}"#,
        r#"{"source":"ftp://relay.example","collections":["app.bsky.feed.post"]}"#,
        r#"{"source":"http://127.0.0.1:1/xrpc","collections":["app.bsky.feed.post"]}"#,
        r#"{"source":"http://127.0.0.1:1","collections":[]}"#,
        r#"{"source":"http://127.0.0.1:1","collections":["not an nsid"]}"#,
        r#"{"source":"http://127.0.0.1:1","collections":"app.bsky.feed.post"}"#,
        "not json",
    ] {
        server
            .admin_post(path, TOKEN, body)
            .assert_error(400, "InvalidRequest");
        cases += 1;
    }
    let done_key = "collections http://127.0.0.1:1 app.bsky.graph.follow";
    server.store(move |store| {
        store.put_backfill(
            done_key,
            &relay::state::BackfillRecord {
                cursor: "did:plc:zzz".into(),
                done: 7,
                failed: 0,
                status: "done".into(),
            },
        )
    });
    let queued = server.admin_post(
        path,
        TOKEN,
        r#"{"source":"http://127.0.0.1:1/","collections":["app.bsky.feed.post","app.bsky.graph.follow"]}"#,
    );
    assert_eq!(
        (queued.status, queued.json()["queued"].as_u64()),
        (200, Some(2))
    );
    let progress = server.admin_get(path, TOKEN);
    assert_eq!(progress.status, 200);
    let body = progress.json();
    assert!(body["index"]["cursor"].is_u64(), "{body}");
    let jobs = body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{body}");
    for job in jobs {
        assert_eq!(job["source"], "http://127.0.0.1:1", "{job}");
        // The worker may have started on it (and the dead source fails it later).
        assert!(
            ["queued", "running", "failed"].contains(&job["status"].as_str().unwrap()),
            "{job}"
        );
    }
    let follow = jobs
        .iter()
        .find(|j| j["collection"] == "app.bsky.graph.follow")
        .unwrap();
    assert_eq!(
        (follow["cursor"].as_str(), follow["imported"].as_u64()),
        (Some(""), Some(0)),
        "a done job starts over: {follow}"
    );
    server
        .admin_get(&format!("{path}?limit=0"), TOKEN)
        .assert_error(400, "InvalidRequest");
    cases += 4;

    // Wrong verb on an admin route.
    server
        .admin_get("/admin/repo/takedown", TOKEN)
        .assert_error(405, "InvalidRequest");
    cases += 1;
    api_support::report(&format!("api admin ({})", backend.name), cases);
}

fn relay_basic(server: &Server) -> api_support::Response {
    api_support::request(
        server.addr,
        "GET",
        "/admin/hosts",
        &[("Authorization", "Basic YWRtaW46czNjcmV0LXRva2Vu")],
        b"",
    )
}

#[test]
fn admin_over_rocksdb() {
    suite(&Backend::rocksdb());
}

#[test]
fn admin_over_postgres() {
    if let Some(backend) = Backend::postgres() {
        suite(&backend);
    }
}

#[test]
fn admin_without_a_token_is_disabled() {
    let backend = Backend::rocksdb();
    let options = Options {
        admin_token: None,
        ..Options::default()
    };
    let server = Server::start(backend.open(), options);
    server
        .admin_get("/admin/hosts", "anything")
        .assert_error(403, "Forbidden");
    server.get("/admin/domains").assert_error(403, "Forbidden");
    server
        .admin_post("/admin/repo/takedown", "", r#"{"did":"did:plc:x"}"#)
        .assert_error(403, "Forbidden");
    api_support::report("api admin disabled", 3);
}

/// A full event queue: the change is stored, the reply is 503, and repeating it (once
/// the queue drains) succeeds — nothing is applied twice or lost.
#[test]
fn a_full_event_queue_is_a_503() {
    let backend = Backend::rocksdb();
    let options = Options {
        admin_queue: 1,
        ..Options::default()
    };
    let server = Server::start(backend.open(), options);
    let ban = |domain: &str| {
        server.admin_post(
            "/admin/domains/ban",
            TOKEN,
            &format!(r#"{{"domain":"{domain}"}}"#),
        )
    };
    assert_eq!(ban("one.example").status, 200);
    ban("two.example").assert_error(503, "ServiceUnavailable");
    let domains = server.store(|store| store.list_domain_bans());
    assert_eq!(domains, ["one.example", "two.example"]);
    let _ = event(&server);
    assert_eq!(ban("two.example").status, 200);
    assert_eq!(
        event(&server),
        AdminEvent::DomainBanned {
            domain: "two.example".into()
        }
    );
    api_support::report("api admin queue full", 3);
}

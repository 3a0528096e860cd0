//! DID documents from the indigo fixtures, and the identity service against a loopback
//! HTTP stub: did:plc and did:web resolution, not-found (negatively cached), malformed
//! documents, TTL expiry, purge, refresh, snapshot/load, the overload policy, coalescing.

mod common;
mod tail_support;

use std::time::Duration;

use futures_lite::future::block_on;
use relay::identity::did_doc::{DidDocError, DidDocument};
use relay::identity::key::{Curve, KeyError};
use relay::identity::resolver::ResolveError;
use relay::identity::service::{IdentityConfig, IdentityService};
use relay::sim::SimAccount;
use tail_support::{HttpStub, did_document};

fn service(stub: &HttpStub, tweak: impl FnOnce(&mut IdentityConfig)) -> IdentityService {
    let mut config = IdentityConfig::new(&stub.url());
    config.allow_http = true;
    config.lookup_timeout = Duration::from_secs(5);
    tweak(&mut config);
    IdentityService::spawn(config).unwrap()
}

fn account(seed: u64, curve: Curve) -> SimAccount {
    SimAccount::new(seed, curve, "pds.test").unwrap()
}

#[test]
fn indigo_did_documents_parse() {
    let cases = [
        (
            "indigo/atproto/identity/testdata/did_plc_doc.json",
            Some("atproto.com"),
        ),
        (
            "indigo/atproto/identity/testdata/did_plc_doc_legacy.json",
            Some("atproto.com"),
        ),
        ("indigo/testing/testdata/greenground.didDoc.json", None),
        ("indigo/testing/testdata/fakermaker.didDoc.json", None),
        ("indigo/testing/testdata/paul_staging.didDoc.json", None),
        (
            "indigo/testing/testdata/did_plc_z5vnbioquyhivxirw3bbljmu.didDoc.json",
            None,
        ),
    ];
    for (rel, handle) in cases {
        let bytes = common::fixture_bytes(rel);
        let json = common::fixture_json(rel);
        let did = json["id"].as_str().unwrap();
        let document = DidDocument::parse(did, &bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(document.id, did);
        assert_eq!(
            document.signing_key,
            common::atproto_key_of_document(rel).unwrap(),
            "{rel}"
        );
        if let Some(handle) = handle {
            assert_eq!(document.handle.as_deref(), Some(handle), "{rel}");
        }
        let pds = json["service"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["type"] == "AtprotoPersonalDataServer"))
            .map(|s| s["serviceEndpoint"].as_str().unwrap().to_owned());
        assert_eq!(document.pds_endpoint, pds, "{rel}");
        assert_eq!(
            DidDocument::parse("did:plc:someoneelse", &bytes),
            Err(DidDocError::IdMismatch),
            "{rel}"
        );
    }
    let web = "indigo/atproto/identity/testdata/did_web_doc.json";
    assert_eq!(
        DidDocument::parse("did:web:discover.bsky.social", &common::fixture_bytes(web)),
        Err(DidDocError::Key(KeyError::AtprotoMethodAbsent))
    );
    assert_eq!(
        DidDocument::parse("did:plc:x", b"{not json"),
        Err(DidDocError::Json)
    );
    let huge = vec![b' '; relay::config::limits::DID_DOCUMENT_BYTES_MAX + 1];
    assert_eq!(
        DidDocument::parse("did:plc:x", &huge),
        Err(DidDocError::TooLarge)
    );
    common::report("indigo DID documents", cases.len() + 4);
}

#[test]
fn resolves_plc_and_web_and_caches() {
    let stub = HttpStub::start();
    let alice = account(1, Curve::Secp256k1);
    stub.serve_did(alice.did(), &alice.public_key());
    let web_did = format!("did:web:127.0.0.1%3A{}", stub.port);
    let bob = account(2, Curve::P256);
    stub.route(
        "/.well-known/did.json",
        200,
        did_document(&web_did, &bob.public_key()).as_bytes(),
        Duration::ZERO,
    );
    let identity = service(&stub, |_| {});

    let resolved = block_on(identity.resolve(alice.did())).unwrap();
    assert_eq!(resolved.did, alice.did());
    assert_eq!(resolved.document.signing_key, alice.public_key());
    assert_eq!(
        resolved.document.pds_endpoint.as_deref(),
        Some("http://127.0.0.1:1")
    );
    assert!(resolved.document.handle.is_some());
    let again = block_on(identity.resolve(alice.did())).unwrap();
    assert_eq!(again, resolved);
    assert_eq!(
        stub.hits(&format!("/{}", alice.did())),
        1,
        "second lookup from cache"
    );
    assert_eq!(identity.cached(alice.did()).as_deref(), Some(&*resolved));

    let web = block_on(identity.resolve(&web_did)).unwrap();
    assert_eq!(web.document.signing_key, bob.public_key());
    assert_eq!(stub.hits("/.well-known/did.json"), 1);

    // refresh bypasses the cache.
    block_on(identity.refresh(alice.did())).unwrap();
    assert_eq!(stub.hits(&format!("/{}", alice.did())), 2);

    // purge forgets.
    identity.purge(alice.did());
    assert!(identity.cached(alice.did()).is_none());
    block_on(identity.resolve(alice.did())).unwrap();
    assert_eq!(stub.hits(&format!("/{}", alice.did())), 3);

    // snapshot → load into a fresh service: served without a lookup.
    let saved = identity.snapshot();
    assert_eq!(saved.len(), 2);
    let restarted = service(&stub, |_| {});
    assert_eq!(restarted.load(saved), 2);
    assert_eq!(
        restarted.cached(alice.did()).unwrap().document.signing_key,
        alice.public_key()
    );
    block_on(restarted.resolve(&web_did)).unwrap();
    assert_eq!(stub.hits("/.well-known/did.json"), 1);
    common::report("identity: plc, did:web, cache, refresh, purge, snapshot", 6);
}

#[test]
fn failures_are_typed_and_not_found_is_remembered() {
    let stub = HttpStub::start();
    let identity = service(&stub, |_| {});
    let missing = account(3, Curve::Secp256k1);
    let path = format!("/{}", missing.did());
    assert_eq!(
        block_on(identity.resolve(missing.did())),
        Err(ResolveError::NotFound)
    );
    assert_eq!(
        block_on(identity.resolve(missing.did())),
        Err(ResolveError::NotFound)
    );
    assert_eq!(stub.hits(&path), 1, "negative entry cached");
    assert!(identity.cached(missing.did()).is_none());

    let broken = account(4, Curve::P256);
    stub.route(
        &format!("/{}", broken.did()),
        200,
        b"{\"id\": 5",
        Duration::ZERO,
    );
    assert_eq!(
        block_on(identity.resolve(broken.did())),
        Err(ResolveError::Document(DidDocError::Json))
    );
    let other = account(5, Curve::P256);
    stub.route(
        &format!("/{}", other.did()),
        200,
        did_document(missing.did(), &other.public_key()).as_bytes(),
        Duration::ZERO,
    );
    let error = block_on(identity.resolve(other.did())).unwrap_err();
    assert_eq!(
        (error.reason(), error),
        (
            "did_doc_id_mismatch",
            ResolveError::Document(DidDocError::IdMismatch)
        )
    );
    let flaky = account(6, Curve::P256);
    stub.route(&format!("/{}", flaky.did()), 503, b"", Duration::ZERO);
    assert_eq!(
        block_on(identity.resolve(flaky.did())),
        Err(ResolveError::Status(503))
    );
    block_on(identity.resolve(flaky.did())).unwrap_err();
    assert_eq!(
        stub.hits(&format!("/{}", flaky.did())),
        2,
        "transient errors are not cached"
    );

    assert_eq!(
        block_on(identity.resolve("did:example:123")),
        Err(ResolveError::UnsupportedDid)
    );
    let strict = IdentityService::spawn(IdentityConfig::new(&stub.url())).unwrap();
    assert_eq!(
        block_on(strict.resolve(missing.did())),
        Err(ResolveError::HttpNotAllowed)
    );
    common::report("identity: typed failures", 7);
}

#[test]
fn entries_expire_after_their_ttl() {
    let stub = HttpStub::start();
    let alice = account(7, Curve::Secp256k1);
    stub.serve_did(alice.did(), &alice.public_key());
    let ghost = account(8, Curve::Secp256k1);
    let identity = service(&stub, |c| {
        c.ttl = Duration::from_millis(300);
        c.negative_ttl = Duration::from_millis(150);
    });
    block_on(identity.resolve(alice.did())).unwrap();
    block_on(identity.resolve(ghost.did())).unwrap_err();
    block_on(identity.resolve(alice.did())).unwrap();
    block_on(identity.resolve(ghost.did())).unwrap_err();
    assert_eq!(stub.hits(&format!("/{}", alice.did())), 1);
    assert_eq!(stub.hits(&format!("/{}", ghost.did())), 1);
    std::thread::sleep(Duration::from_millis(200));
    block_on(identity.resolve(ghost.did())).unwrap_err();
    assert_eq!(
        stub.hits(&format!("/{}", ghost.did())),
        2,
        "negative TTL is shorter"
    );
    assert!(identity.cached(alice.did()).is_some());
    std::thread::sleep(Duration::from_millis(150));
    assert!(identity.cached(alice.did()).is_none(), "expired");
    block_on(identity.resolve(alice.did())).unwrap();
    assert_eq!(stub.hits(&format!("/{}", alice.did())), 2);
    common::report("identity: TTL expiry", 4);
}

#[test]
fn full_queue_fails_fast_and_same_did_lookups_coalesce() {
    let stub = HttpStub::start();
    let accounts: Vec<SimAccount> = (10..13).map(|s| account(s, Curve::Secp256k1)).collect();
    for account in &accounts {
        stub.route(
            &format!("/{}", account.did()),
            200,
            did_document(account.did(), &account.public_key()).as_bytes(),
            Duration::from_millis(400),
        );
    }
    let identity = service(&stub, |c| {
        c.workers = 1;
        c.queue_requests_max = 1;
    });
    let first = identity.resolve(accounts[0].did());
    assert_eq!(stub.next_request(), format!("/{}", accounts[0].did()));
    // The worker is busy with the first; the second waits in the queue of one...
    let second = identity.resolve(accounts[1].did());
    // ...and the third is refused at once.
    let started = std::time::Instant::now();
    assert_eq!(
        block_on(identity.resolve(accounts[2].did())),
        Err(ResolveError::Overloaded)
    );
    assert!(started.elapsed() < Duration::from_millis(100));
    // Many waiters of one DID share one lookup.
    let joined: Vec<_> = (0..20)
        .map(|_| identity.resolve(accounts[0].did()))
        .collect();
    let waiters = std::thread::spawn(move || {
        joined
            .into_iter()
            .map(|f| block_on(f).unwrap().document.signing_key)
            .collect::<Vec<_>>()
    });
    assert_eq!(block_on(first).unwrap().did, accounts[0].did());
    assert_eq!(block_on(second).unwrap().did, accounts[1].did());
    let keys = waiters.join().unwrap();
    assert!(keys.iter().all(|k| *k == accounts[0].public_key()));
    assert_eq!(
        stub.hits(&format!("/{}", accounts[0].did())),
        1,
        "coalesced"
    );
    assert_eq!(stub.hits(&format!("/{}", accounts[2].did())), 0);
    common::report("identity: overload policy and coalescing", 3);
}

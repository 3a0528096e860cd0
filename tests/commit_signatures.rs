//! Commit signatures on real data: indigo's repo CARs against their bundled DID documents
//! (the one the fixture README says does not verify must fail), and every `#commit`/`#sync`
//! of indigo's relay scenarios against the scenario account's key, through every backend.

mod common;

use relay::frame::car::Blocks;
use relay::frame::event::{Event, Frame};
use relay::identity::key::PublicKey;
use relay::verify::commit::{CommitSignatureError, verify_commit_signature};
use relay::verify::signature::{Backend, ParsedKey, SignatureError};

fn document_key(rel: &str) -> PublicKey {
    common::atproto_key_of_document(rel).unwrap()
}

fn check_car(car_rel: &str, key: &PublicKey) -> Result<(), CommitSignatureError> {
    let bytes = common::fixture_bytes(car_rel);
    let mut blocks = Blocks::new();
    let root = blocks.load(&bytes, 100_000).unwrap();
    let block = blocks.get(&root).unwrap();
    let mut scratch = Vec::new();
    let mut outcome = None;
    for backend in Backend::for_curve(key.curve()) {
        let parsed = ParsedKey::with_backend(key, backend).unwrap();
        let result = verify_commit_signature(block, &parsed, &mut scratch).map(|_| ());
        // Every backend must reach the same verdict.
        if let Some(previous) = &outcome {
            assert_eq!(previous, &result, "{car_rel}: backends disagree");
        }
        outcome = Some(result);
    }
    outcome.unwrap()
}

#[test]
fn indigo_repo_cars_verify_against_their_did_documents() {
    let dir = "indigo/testing/testdata";
    let good = [
        ("greenground.repo.car", "greenground.didDoc.json"),
        ("paul_staging.repo.car", "paul_staging.didDoc.json"),
    ];
    for (car, doc) in good {
        let key = document_key(&format!("{dir}/{doc}"));
        check_car(&format!("{dir}/{car}"), &key).unwrap_or_else(|e| panic!("{car}: {e}"));
    }
    // fakermaker is an old (v2) commit from the TypeScript PDS, signed before atproto
    // required low-S: strict verification refuses it for exactly that reason, and the
    // same signature with s normalised to n - s verifies with the document's key.
    let key = document_key(&format!("{dir}/fakermaker.didDoc.json"));
    let strict = check_car(&format!("{dir}/fakermaker.repo.car"), &key);
    assert_eq!(
        strict,
        Err(CommitSignatureError::Signature(SignatureError::HighS))
    );
    assert_normalised_signature_verifies(&format!("{dir}/fakermaker.repo.car"), &key);
    // The README: this CAR's signature does not verify with that document's key.
    let key = document_key(&format!(
        "{dir}/did_plc_z5vnbioquyhivxirw3bbljmu.didDoc.json"
    ));
    let bad = check_car(
        &format!("{dir}/bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu.car"),
        &key,
    );
    assert_eq!(
        bad,
        Err(CommitSignatureError::Signature(SignatureError::Mismatch))
    );
    common::report("indigo repo CAR signatures", good.len() + 2);
}

#[test]
fn indigo_scenario_commits_verify_with_the_account_key() {
    let dir = common::fixture("indigo/cmd/relay/testing/testdata");
    let mut checked = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let scenario: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let multibase =
            scenario["accounts"][0]["identity"]["keys"]["atproto"]["publicKeyMultibase"]
                .as_str()
                .unwrap();
        let key = PublicKey::from_multikey(multibase).unwrap();
        let mut scratch = Vec::new();
        for message in scenario["messages"].as_array().unwrap() {
            let mut bytes = common::atjson::to_cbor(&message["frame"]["header"]);
            bytes.extend(common::atjson::to_cbor(&message["frame"]["body"]));
            let frame = Frame::decode(&bytes).unwrap();
            let (blocks_bytes, did) = match frame.event() {
                Event::Commit(commit) => (commit.blocks(), commit.repo()),
                Event::Sync(sync) => (sync.blocks(), sync.did()),
                _ => continue,
            };
            let mut blocks = Blocks::new();
            let root = blocks.load(blocks_bytes, 10_000).unwrap();
            for backend in Backend::for_curve(key.curve()) {
                let parsed = ParsedKey::with_backend(&key, backend).unwrap();
                let commit =
                    verify_commit_signature(blocks.get(&root).unwrap(), &parsed, &mut scratch)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(commit.did(), did);
            }
            // A different key must not verify the same commit.
            let other = ParsedKey::with_backend(
                &relay::verify::signature::SigningKey::generate_from_seed(key.curve(), [9; 32])
                    .unwrap()
                    .public_key(),
                Backend::for_curve(key.curve())[0],
            )
            .unwrap();
            assert!(
                verify_commit_signature(blocks.get(&root).unwrap(), &other, &mut scratch).is_err()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 25,
        "expected the scenarios' commits and syncs, got {checked}"
    );
    common::report("indigo scenario commit signatures", checked);
}

/// Re-sign nothing: take the commit's own (r, s), replace s by n - s (P-256 order), and
/// verify over the unsigned bytes. Proves a high-S rejection is only about the S form.
fn assert_normalised_signature_verifies(car_rel: &str, key: &PublicKey) {
    const P256_ORDER: [u8; 32] =
        hex_literal("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let bytes = common::fixture_bytes(car_rel);
    let mut blocks = Blocks::new();
    let root = blocks.load(&bytes, 100_000).unwrap();
    let commit = relay::frame::commit::Commit::decode(blocks.get(&root).unwrap()).unwrap();
    let mut sig = *commit.sig();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let diff = i16::from(P256_ORDER[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(diff < 0);
        sig[32 + i] = diff.rem_euclid(256) as u8;
    }
    let mut unsigned = Vec::new();
    commit.unsigned_bytes(&mut unsigned);
    for backend in Backend::for_curve(key.curve()) {
        ParsedKey::with_backend(key, backend)
            .unwrap()
            .verify(&unsigned, &sig)
            .unwrap();
    }
}

const fn hex_literal(text: &str) -> [u8; 32] {
    let bytes = text.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(bytes[2 * i]) << 4) | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    if c >= b'a' { c - b'a' + 10 } else { c - b'0' }
}

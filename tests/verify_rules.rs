//! The `#commit` rule set on indigo's relay scenarios (real firehose frames): every frame
//! the scenario passes is verified (strict Sync 1.1 where the scenario is strict), and the
//! frames it drops for rev order are refused. Drops that depend on account status or
//! upstream seq belong to later layers and are listed, not judged, here.

mod common;

use relay::frame::event::{Event, Frame};
use relay::identity::key::PublicKey;
use relay::verify::rules::{AccountState, Policy, Rejection, verify_commit_frame};
use relay::verify::signature::{Backend, ParsedKey, SigningKey};
use std::collections::HashMap;

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[test]
fn indigo_scenarios_through_the_commit_rules() {
    let dir = common::fixture("indigo/cmd/relay/testing/testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (mut passed, mut refused, mut out_of_scope) = (0, 0, 0);
    for path in &files {
        let scenario: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let strict = !scenario["lenient"].as_bool().unwrap_or(false);
        let multibase =
            scenario["accounts"][0]["identity"]["keys"]["atproto"]["publicKeyMultibase"]
                .as_str()
                .unwrap();
        let key = PublicKey::from_multikey(multibase).unwrap();
        let key = ParsedKey::with_backend(&key, Backend::for_curve(key.curve())[1]).unwrap();
        let policy = Policy {
            now_micros: now_micros(),
            strict,
        };
        let mut states: HashMap<String, AccountState> = HashMap::new();
        for message in scenario["messages"].as_array().unwrap() {
            let mut bytes = common::atjson::to_cbor(&message["frame"]["header"]);
            bytes.extend(common::atjson::to_cbor(&message["frame"]["body"]));
            let Event::Commit(commit) = *Frame::decode(&bytes).unwrap().event() else {
                continue;
            };
            let did = commit.repo().to_owned();
            let drop = message["drop"].as_bool().unwrap_or(false);
            let result = verify_commit_frame(bytes.as_slice(), &key, states.get(&did), &policy);
            match (drop, result) {
                (false, Ok(verified)) => {
                    assert_eq!(verified.did(), did);
                    assert_eq!(verified.commit_cid(), Some(commit.commit()));
                    states.insert(did, verified.next_state().unwrap());
                    passed += 1;
                }
                (false, Err((_, rejection))) => {
                    panic!("{name}: a frame the scenario passes was refused: {rejection}")
                }
                (true, Err((_, rejection))) => {
                    assert!(
                        matches!(rejection, Rejection::RevNotNewer | Rejection::RevMismatch),
                        "{name}: dropped for {rejection}"
                    );
                    refused += 1;
                }
                // Dropped by the scenario for account status or upstream seq: not this layer.
                (true, Ok(_)) => {
                    assert!(
                        name != "rev_ordering.json" && name != "post_lifecycle.json",
                        "{name}: must refuse"
                    );
                    out_of_scope += 1;
                }
            }
        }
    }
    assert!(
        passed >= 20 && refused == 2,
        "passed {passed}, refused {refused}"
    );
    common::report("indigo scenarios: commits passed by the rules", passed);
    common::report("indigo scenarios: commits refused for rev order", refused);
    common::report(
        "indigo scenarios: drops owned by later layers (status, seq)",
        out_of_scope,
    );
}

#[test]
fn strict_sync11_commits_need_the_right_key_and_inversion() {
    let scenario = common::fixture_json("indigo/cmd/relay/testing/testdata/post_lifecycle.json");
    let policy = Policy {
        now_micros: now_micros(),
        strict: true,
    };
    let stranger =
        SigningKey::generate_from_seed(relay::identity::key::Curve::Secp256k1, [3; 32]).unwrap();
    let stranger = ParsedKey::with_backend(&stranger.public_key(), Backend::Libsecp256k1).unwrap();
    let message = &scenario["messages"][0];
    let mut bytes = common::atjson::to_cbor(&message["frame"]["header"]);
    bytes.extend(common::atjson::to_cbor(&message["frame"]["body"]));
    let (_, rejection) =
        verify_commit_frame(bytes.as_slice(), &stranger, None, &policy).unwrap_err();
    assert_eq!(rejection.reason(), "bad_signature");
    // A rev from far in the future is refused: judge "now" as a year before the commit.
    let multibase = scenario["accounts"][0]["identity"]["keys"]["atproto"]["publicKeyMultibase"]
        .as_str()
        .unwrap();
    let key = PublicKey::from_multikey(multibase).unwrap();
    let key = ParsedKey::with_backend(&key, Backend::Libsecp256k1).unwrap();
    let early = Policy {
        now_micros: 1_600_000_000_000_000,
        strict: true,
    };
    let (_, rejection) = verify_commit_frame(bytes.as_slice(), &key, None, &early).unwrap_err();
    assert_eq!(rejection, Rejection::FutureRev);
    // Truncated bytes are a decode rejection, never a panic.
    let (_, rejection) =
        verify_commit_frame(&bytes[..bytes.len() / 2], &key, None, &policy).unwrap_err();
    assert_eq!(rejection.reason(), "decode");
}

//! Firehose frames and commit objects against the indigo vectors (relay scenarios, captured
//! firehose commits, full repo CARs), CAR framing against the go-car/js-car vectors, the
//! negative cases of every frame rule, seq renumbering, and encode→decode properties.

mod common;

use common::atjson;
use proptest::prelude::*;
use relay::config::limits::{
    COMMIT_BLOCKS_BYTES_MAX, COMMIT_OPS_MAX, FRAME_SIZE_BYTES_MAX, SYNC_BLOCKS_BYTES_MAX,
};
use relay::frame::car::{Blocks, CarError, CarReader};
use relay::frame::cbor::{self, OwnedValue, Value};
use relay::frame::cid::{Cid, Codec};
use relay::frame::commit::{Commit, CommitError, CommitVersion, UnsignedCommit};
use relay::frame::event::{
    AccountEventOwned, CommitEventOwned, ErrorFrameOwned, Event, EventOwned, Frame, FrameError,
    IdentityEventOwned, InfoEventOwned, OpAction, RepoOpOwned, SyncEventOwned, encode_seq_patch,
};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::path::Path;

const SCENARIO_DIR: &str = "indigo/cmd/relay/testing/testdata";
const SCENARIOS: [&str; 7] = [
    "account_lifecycle.json",
    "deactivation.json",
    "legacy.json",
    "post_lifecycle.json",
    "post_lifecycle_legacy.json",
    "rev_ordering.json",
    "seq_ordering.json",
];
const FIREHOSE_COMMIT_DIR: &str = "indigo/atproto/repo/testdata";
const FIREHOSE_COMMITS: [&str; 4] = [
    "firehose_commit_4621317030.json",
    "firehose_commit_4621317332.json",
    "firehose_commit_4621332152.json",
    "firehose_commit_4623075231.json",
];

/// Names of the files in a fixture folder whose name ends with `suffix`.
fn files_in(dir: &str, suffix: &str) -> BTreeSet<String> {
    std::fs::read_dir(common::fixture(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(suffix))
        .collect()
}

fn assert_suite_covers(dir: &str, suffix: &str, expected: &[&str]) {
    let found = files_in(dir, suffix);
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        found, expected,
        "files of {dir} and the suite's list differ"
    );
}

/// One message of a vector file: the JSON header and body.
struct JsonFrame {
    origin: String,
    /// The scenario says the relay must drop this message.
    drop: bool,
    header: Json,
    body: Json,
}

impl JsonFrame {
    fn bytes(&self) -> Vec<u8> {
        let mut out = atjson::to_cbor(&self.header);
        out.extend(atjson::to_cbor(&self.body));
        out
    }
}

fn scenario_frames() -> Vec<JsonFrame> {
    assert_suite_covers(SCENARIO_DIR, ".json", &SCENARIOS);
    let mut frames = Vec::new();
    for name in SCENARIOS {
        let scenario = common::fixture_json(&format!("{SCENARIO_DIR}/{name}"));
        for (i, message) in scenario["messages"].as_array().unwrap().iter().enumerate() {
            frames.push(JsonFrame {
                origin: format!("{name}#{i}"),
                drop: message["drop"].as_bool().unwrap(),
                header: message["frame"]["header"].clone(),
                body: message["frame"]["body"].clone(),
            });
        }
    }
    frames
}

fn firehose_commit_frames() -> Vec<JsonFrame> {
    let found: Vec<String> = files_in(FIREHOSE_COMMIT_DIR, ".json").into_iter().collect();
    assert_eq!(found, FIREHOSE_COMMITS);
    FIREHOSE_COMMITS
        .iter()
        .map(|name| {
            let body = common::fixture_json(&format!("{FIREHOSE_COMMIT_DIR}/{name}"));
            let seq: u64 = name["firehose_commit_".len()..name.len() - 5]
                .parse()
                .unwrap();
            assert_eq!(body["seq"], json!(seq), "{name}: file name gives the seq");
            JsonFrame {
                origin: name.to_string(),
                drop: false,
                header: json!({"op": 1, "t": "#commit"}),
                body,
            }
        })
        .collect()
}

fn opt_str(json: &Json) -> Option<&str> {
    if json.is_null() {
        None
    } else {
        Some(json.as_str().unwrap())
    }
}

fn opt_link(json: &Json) -> Option<Cid> {
    if json.is_null() {
        None
    } else {
        Some(atjson::link(json))
    }
}

/// Every decoded field equals its JSON; returns the number of fields compared.
fn check_event_against_json(event: &Event<'_>, body: &Json, origin: &str) -> usize {
    match event {
        Event::Commit(e) => {
            assert_eq!(e.seq(), body["seq"].as_u64().unwrap(), "{origin}");
            assert_eq!(e.repo(), body["repo"], "{origin}");
            assert_eq!(e.rev(), body["rev"], "{origin}");
            assert_eq!(e.since(), opt_str(&body["since"]), "{origin}");
            assert_eq!(e.commit(), atjson::link(&body["commit"]), "{origin}");
            assert_eq!(e.blocks(), atjson::bytes(&body["blocks"]), "{origin}");
            assert_eq!(e.prev_data(), opt_link(&body["prevData"]), "{origin}");
            assert_eq!(e.time(), body["time"], "{origin}");
            assert_eq!(e.rebase(), body["rebase"].as_bool().unwrap(), "{origin}");
            assert_eq!(e.too_big(), body["tooBig"].as_bool().unwrap(), "{origin}");
            let blobs: Vec<Cid> = match &body["blobs"] {
                Json::Null => Vec::new(),
                list => list.as_array().unwrap().iter().map(atjson::link).collect(),
            };
            assert_eq!(e.blobs().collect::<Vec<_>>(), blobs, "{origin}");
            let json_ops = body["ops"].as_array().unwrap();
            assert_eq!(e.ops().len(), json_ops.len(), "{origin}");
            for (op, json_op) in e.ops().zip(json_ops) {
                assert_eq!(op.action.as_str(), json_op["action"], "{origin}");
                assert_eq!(op.path, json_op["path"], "{origin}");
                assert_eq!(op.cid, opt_link(&json_op["cid"]), "{origin}");
                assert_eq!(op.prev, opt_link(&json_op["prev"]), "{origin}");
            }
            11 + 4 * json_ops.len()
        }
        Event::Sync(e) => {
            assert_eq!(e.seq(), body["seq"].as_u64().unwrap(), "{origin}");
            assert_eq!(e.did(), body["did"], "{origin}");
            assert_eq!(e.rev(), body["rev"], "{origin}");
            assert_eq!(e.time(), body["time"], "{origin}");
            assert_eq!(e.blocks(), atjson::bytes(&body["blocks"]), "{origin}");
            5
        }
        Event::Identity(e) => {
            assert_eq!(e.seq(), body["seq"].as_u64().unwrap(), "{origin}");
            assert_eq!(e.did(), body["did"], "{origin}");
            assert_eq!(e.time(), body["time"], "{origin}");
            assert_eq!(e.handle(), opt_str(&body["handle"]), "{origin}");
            4
        }
        Event::Account(e) => {
            assert_eq!(e.seq(), body["seq"].as_u64().unwrap(), "{origin}");
            assert_eq!(e.did(), body["did"], "{origin}");
            assert_eq!(e.time(), body["time"], "{origin}");
            assert_eq!(e.active(), body["active"].as_bool().unwrap(), "{origin}");
            assert_eq!(e.status(), opt_str(&body["status"]), "{origin}");
            5
        }
        other => panic!("{origin}: unexpected {other:?}"),
    }
}

/// The commit block re-encodes canonically: unsigned bytes + sig give the block back.
fn check_commit_reencodes(block: &[u8], commit: &Commit<'_>, origin: &str) {
    let mut unsigned = Vec::new();
    commit.unsigned_bytes(&mut unsigned);
    let Value::Map(map) = cbor::decode(&unsigned).unwrap() else {
        panic!("{origin}: unsigned commit is not a map")
    };
    assert!(map.get("sig").is_none(), "{origin}");
    let OwnedValue::Map(mut entries) = OwnedValue::from_view(&Value::Map(map)) else {
        unreachable!()
    };
    entries.push(("sig".into(), OwnedValue::Bytes(commit.sig().to_vec())));
    assert_eq!(
        OwnedValue::Map(entries).to_bytes(),
        block,
        "{origin}: unsigned + sig"
    );
    let mut whole = Vec::new();
    commit.encode(&mut whole);
    assert_eq!(whole, block, "{origin}: encode");
    if let Some(builder) = commit.to_unsigned() {
        let mut signed = Vec::new();
        builder.encode_signed(commit.sig(), &mut signed);
        assert_eq!(signed, block, "{origin}: builder");
    }
}

/// Load the CAR of a `#commit`/`#sync`, find its commit and check it against the event.
/// Returns the number of blocks and whether the commit's rev equals the event's (the
/// rev-ordering scenario tampers with the event rev of frames that must be dropped).
fn check_blocks(event: &Event<'_>, origin: &str) -> (usize, bool) {
    let (car, did, rev, expected_root) = match event {
        Event::Commit(e) => (e.blocks(), e.repo(), e.rev(), Some(e.commit())),
        Event::Sync(e) => (e.blocks(), e.did(), e.rev(), None),
        _ => return (0, true),
    };
    let mut blocks = Blocks::new();
    let root = blocks
        .load(car, usize::MAX)
        .unwrap_or_else(|e| panic!("{origin}: {e}"));
    if let Some(expected) = expected_root {
        assert_eq!(root, expected, "{origin}: CAR root is the commit CID");
    }
    let block = blocks
        .get(&root)
        .unwrap_or_else(|| panic!("{origin}: no commit block"));
    let commit = Commit::decode(block).unwrap_or_else(|e| panic!("{origin}: {e}"));
    assert_eq!(commit.did(), did, "{origin}");
    let rev_matches = commit.rev() == Some(rev);
    check_commit_reencodes(block, &commit, origin);
    if let Event::Commit(e) = event {
        for op in e.ops() {
            if let Some(cid) = op.cid {
                assert!(
                    blocks.get(&cid).is_some(),
                    "{origin}: record {cid} not in CAR"
                );
            }
        }
    }
    (blocks.len(), rev_matches)
}

#[test]
fn relay_scenario_frames_decode_and_match_their_json() {
    let frames = scenario_frames();
    let (mut fields, mut cars, mut tampered) = (0, 0, 0);
    for jf in &frames {
        let bytes = jf.bytes();
        let frame = Frame::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", jf.origin));
        assert_eq!(frame.header_bytes(), atjson::to_cbor(&jf.header));
        assert_eq!(frame.body_bytes(), atjson::to_cbor(&jf.body));
        assert_eq!(frame.seq(), jf.body["seq"].as_u64());
        let t = jf.header["t"].as_str().unwrap();
        let kind = match frame.event() {
            Event::Commit(_) => "#commit",
            Event::Sync(_) => "#sync",
            Event::Identity(_) => "#identity",
            Event::Account(_) => "#account",
            other => panic!("{other:?}"),
        };
        assert_eq!(kind, t, "{}", jf.origin);
        fields += check_event_against_json(frame.event(), &jf.body, &jf.origin);
        let (blocks, rev_matches) = check_blocks(frame.event(), &jf.origin);
        if blocks > 0 {
            cars += 1;
        }
        if !rev_matches {
            assert!(
                jf.drop,
                "{}: event rev differs from the commit's",
                jf.origin
            );
            tampered += 1;
        }
    }
    assert_eq!(frames.len(), 35);
    assert_eq!(cars, 26, "25 #commit and 1 #sync CARs");
    assert_eq!(tampered, 2, "rev_ordering's seq 101 and 102");
    common::report("indigo relay scenarios: frames", frames.len());
    common::report("indigo relay scenarios: fields compared", fields);
    common::report("indigo relay scenarios: commit CARs + commit objects", cars);
}

#[test]
fn captured_firehose_commits_decode_as_frames() {
    let frames = firehose_commit_frames();
    let mut ops = 0;
    for jf in &frames {
        let bytes = jf.bytes();
        let frame = Frame::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", jf.origin));
        check_event_against_json(frame.event(), &jf.body, &jf.origin);
        let Event::Commit(commit) = frame.event() else {
            panic!("{}: not a commit", jf.origin)
        };
        assert!(commit.prev_data().is_none(), "captured before Sync 1.1");
        ops += commit.ops().len();
        assert!(check_blocks(frame.event(), &jf.origin).1, "{}", jf.origin);
    }
    assert_eq!(ops, 1 + 1 + 42 + 1);
    common::report("indigo captured firehose commits", frames.len());
}

struct RepoCar {
    path: &'static str,
    sections: usize,
    unique_blocks: usize,
    version: CommitVersion,
    did: Option<&'static str>,
    rev: Option<&'static str>,
    has_prev: bool,
}

const REPO_CARS: [RepoCar; 7] = [
    RepoCar {
        path: "indigo/testing/testdata/greenground.repo.car",
        sections: 4,
        unique_blocks: 4,
        version: CommitVersion::V3,
        did: Some("did:plc:kzcqyc3unb33eh5sxzsfs25z"),
        rev: Some("3k67up3j7hf2x"),
        has_prev: true,
    },
    RepoCar {
        path: "indigo/testing/testdata/fakermaker.repo.car",
        sections: 690,
        unique_blocks: 682,
        version: CommitVersion::LegacyV2,
        did: None,
        rev: None,
        has_prev: true,
    },
    RepoCar {
        path: "indigo/testing/testdata/paul_staging.repo.car",
        sections: 458,
        unique_blocks: 452,
        version: CommitVersion::LegacyV2,
        did: None,
        rev: None,
        has_prev: true,
    },
    RepoCar {
        path: "indigo/testing/testdata/bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu.car",
        sections: 10,
        unique_blocks: 9,
        version: CommitVersion::LegacyV2,
        did: None,
        rev: None,
        has_prev: true,
    },
    RepoCar {
        path: "indigo/testing/testdata/repo_slice.car",
        sections: 5,
        unique_blocks: 5,
        version: CommitVersion::LegacyV2,
        did: None,
        rev: None,
        has_prev: true,
    },
    RepoCar {
        path: "indigo/testing/testdata/divy.repo",
        sections: 9,
        unique_blocks: 9,
        version: CommitVersion::LegacyV2,
        did: None,
        rev: None,
        has_prev: false,
    },
    RepoCar {
        path: "indigo/atproto/repo/testdata/bnewbold.robocracy.org.20250310005405.car",
        sections: 56,
        unique_blocks: 56,
        version: CommitVersion::V3,
        did: Some("did:plc:nhxcyu4ewwhl5pqil4dotqjo"),
        rev: Some("3ljlyqit2uk2l"),
        has_prev: false,
    },
];

#[test]
fn full_repo_cars_load_and_their_commits_decode() {
    let listed: Vec<&str> = REPO_CARS
        .iter()
        .filter_map(|r| r.path.strip_prefix("indigo/testing/testdata/"))
        .filter(|name| name.ends_with(".car"))
        .collect();
    assert_suite_covers("indigo/testing/testdata", ".car", &listed);
    let mut dag_cbor_blocks = 0;
    for repo in &REPO_CARS {
        let car = common::fixture_bytes(repo.path);
        let sections = CarReader::new(&car).unwrap().count();
        assert_eq!(sections, repo.sections, "{}", repo.path);
        let mut blocks = Blocks::new();
        let root = blocks
            .load(&car, usize::MAX)
            .unwrap_or_else(|e| panic!("{}: {e}", repo.path));
        assert_eq!(blocks.len(), repo.unique_blocks, "{}", repo.path);
        let stem = Path::new(repo.path).file_stem().and_then(|s| s.to_str());
        if let Some(name) = stem.filter(|name| name.starts_with("bafy")) {
            assert_eq!(root.to_string(), name, "the file is named by its root");
        }
        let block = blocks.get(&root).unwrap();
        let commit = Commit::decode(block).unwrap_or_else(|e| panic!("{}: {e}", repo.path));
        assert_eq!(commit.version(), repo.version, "{}", repo.path);
        assert_eq!(commit.is_legacy(), repo.version == CommitVersion::LegacyV2);
        assert!(commit.did().starts_with("did:"), "{}", repo.path);
        if let Some(did) = repo.did {
            assert_eq!(commit.did(), did);
        }
        if commit.version() == CommitVersion::V3 {
            assert_eq!(commit.rev().map(str::len), Some(13), "a TID rev");
        }
        assert_eq!(commit.rev(), repo.rev, "{}", repo.path);
        assert_eq!(commit.prev().is_some(), repo.has_prev, "{}", repo.path);
        assert!(
            blocks.get(&commit.data()).is_some(),
            "{}: MST root",
            repo.path
        );
        check_commit_reencodes(block, &commit, repo.path);
        for (cid, data) in blocks.iter() {
            if cid.codec() == Codec::DagCbor {
                let value = cbor::decode(data).unwrap_or_else(|e| panic!("{cid}: {e}"));
                let mut again = Vec::new();
                cbor::encode_value(&value, &mut again);
                assert_eq!(again, data, "{cid} re-encodes canonically");
                dag_cbor_blocks += 1;
            }
        }
    }
    common::report("indigo repo CARs", REPO_CARS.len());
    common::report(
        "indigo repo CARs: dag-cbor blocks decoded strictly",
        dag_cbor_blocks,
    );
}

#[test]
fn divy_repo_is_a_legacy_commit_with_null_prev() {
    let car = common::fixture_bytes("indigo/testing/testdata/divy.repo");
    let mut blocks = Blocks::new();
    let root = blocks.load(&car, usize::MAX).unwrap();
    let commit = Commit::decode(blocks.get(&root).unwrap()).unwrap();
    assert!(commit.is_legacy());
    assert_eq!(commit.prev(), None);
    assert!(
        commit.to_unsigned().is_none(),
        "legacy commits are not rebuilt as v3"
    );
}

// ---- CAR framing vectors ----

fn sections_until_error(car: &[u8]) -> (usize, Option<CarError>) {
    let mut ok = 0;
    for section in CarReader::new(car).unwrap() {
        match section {
            Ok(section) => {
                section.verify().unwrap();
                ok += 1;
            }
            Err(e) => return (ok, Some(e)),
        }
    }
    (ok, None)
}

#[test]
fn go_car_and_js_car_vectors() {
    assert_suite_covers(
        "go-car/v2/testdata",
        ".car",
        &[
            "sample-corrupt-pragma.car",
            "sample-rootless-v42.car",
            "sample-unixfs-v2.car",
            "sample-v1-tailing-corrupt-section.car",
            "sample-v1-with-zero-len-section2.car",
            "sample-v1.car",
        ],
    );
    assert_suite_covers(
        "go-car/cmd/car/testdata/inputs",
        ".car",
        &["badheaderlength.car", "badsectionlength.car"],
    );
    assert_suite_covers("js-car/test", ".car", &["go.car"]);

    // Valid v1: blake2b-256 dag-cbor and identity raw blocks all hash-check.
    let sample = common::fixture_bytes("go-car/v2/testdata/sample-v1.car");
    assert_eq!(CarReader::new(&sample).unwrap().roots().len(), 1);
    assert_eq!(sections_until_error(&sample), (1049, None));
    let mut blocks = Blocks::new();
    assert_eq!(
        blocks.load(&sample, usize::MAX),
        Err(CarError::NotAtprotoCid),
        "an atproto loader refuses blake2b CIDs"
    );

    let truncated =
        common::fixture_bytes("go-car/v2/testdata/sample-v1-tailing-corrupt-section.car");
    assert_eq!(
        sections_until_error(&truncated),
        (1048, Some(CarError::SectionLengthExceedsInput))
    );
    let padded = common::fixture_bytes("go-car/v2/testdata/sample-v1-with-zero-len-section2.car");
    assert_eq!(
        sections_until_error(&padded),
        (20, Some(CarError::ZeroLengthSection))
    );
    let header_errors = [
        (
            "go-car/v2/testdata/sample-corrupt-pragma.car",
            CarError::HeaderLengthExceedsInput,
        ),
        (
            "go-car/v2/testdata/sample-rootless-v42.car",
            CarError::UnsupportedVersion(42),
        ),
        (
            "go-car/v2/testdata/sample-unixfs-v2.car",
            CarError::UnsupportedVersion(2),
        ),
        (
            "go-car/cmd/car/testdata/inputs/badheaderlength.car",
            CarError::HeaderLengthExceedsInput,
        ),
    ];
    for (path, expected) in header_errors {
        let car = common::fixture_bytes(path);
        assert_eq!(CarReader::new(&car).err(), Some(expected), "{path}");
        assert_eq!(
            Blocks::new().load(&car, usize::MAX),
            Err(expected),
            "{path}"
        );
    }
    let bad_section = common::fixture_bytes("go-car/cmd/car/testdata/inputs/badsectionlength.car");
    assert_eq!(CarReader::new(&bad_section).unwrap().roots().len(), 0);
    assert_eq!(
        sections_until_error(&bad_section),
        (0, Some(CarError::SectionLengthExceedsInput))
    );

    // Two roots, CIDv0 dag-pb + raw + dag-cbor: fine generically, not as an atproto CAR.
    let go_car = common::fixture_bytes("js-car/test/go.car");
    let reader = CarReader::new(&go_car).unwrap();
    assert_eq!(reader.roots().len(), 2);
    assert_eq!(reader.single_root(), Err(CarError::BadRoot));
    assert_eq!(sections_until_error(&go_car), (8, None));
    assert_eq!(blocks.load(&go_car, usize::MAX), Err(CarError::BadRoot));
    common::report("go-car + js-car CAR vectors", 9);
}

// ---- negative frames ----

fn did_example() -> &'static str {
    "did:plc:44ybard66vv44zksje25o7dz"
}

fn sample_cid(seed: &[u8]) -> Cid {
    Cid::for_dag_cbor(seed)
}

fn sample_commit() -> CommitEventOwned {
    CommitEventOwned {
        seq: 42,
        rebase: false,
        too_big: false,
        repo: did_example().into(),
        commit: sample_cid(b"commit"),
        rev: "3lmxjza3nva27".into(),
        since: Some("3lmxjxi3hjn23".into()),
        blocks: vec![1, 2, 3],
        ops: vec![RepoOpOwned {
            action: OpAction::Create,
            path: "app.bsky.feed.like/3lmxjza3h2i27".into(),
            cid: Some(sample_cid(b"record")),
            prev: None,
        }],
        blobs: Vec::new(),
        prev_data: Some(sample_cid(b"mst")),
        time: "2025-04-16T21:30:26.717Z".into(),
    }
}

/// The header and body of an owned frame as owned values, for surgery.
fn split(frame: &[u8]) -> (OwnedValue, Vec<(String, OwnedValue)>) {
    let (header, rest) = cbor::decode_prefix(frame).unwrap();
    let OwnedValue::Map(body) = OwnedValue::from_view(&cbor::decode(rest).unwrap()) else {
        panic!("body not a map")
    };
    (OwnedValue::from_view(&header), body)
}

fn join(header: &OwnedValue, body: Vec<(String, OwnedValue)>) -> Vec<u8> {
    let mut out = header.to_bytes();
    out.extend(OwnedValue::Map(body).to_bytes());
    out
}

fn with_field(frame: &[u8], key: &str, value: Option<OwnedValue>) -> Vec<u8> {
    let (header, mut body) = split(frame);
    body.retain(|(k, _)| k != key);
    if let Some(value) = value {
        body.push((key.to_owned(), value));
    }
    join(&header, body)
}

fn encode(event: EventOwned) -> Vec<u8> {
    event.to_frame_bytes()
}

fn commit_frame() -> Vec<u8> {
    encode(EventOwned::Commit(sample_commit()))
}

fn err(bytes: &[u8]) -> FrameError {
    Frame::decode(bytes).expect_err("must be rejected")
}

fn text(s: &str) -> Option<OwnedValue> {
    Some(OwnedValue::text(s))
}

fn op_value(action: &str, cid: Option<Cid>) -> OwnedValue {
    OwnedValue::map([
        ("action", OwnedValue::text(action)),
        ("path", OwnedValue::text("app.bsky.feed.post/3lmxjza3h2i27")),
        (
            "cid",
            cid.map_or(OwnedValue::Null, |c| {
                OwnedValue::Link(c.to_bytes().to_vec())
            }),
        ),
    ])
}

#[test]
fn header_errors_are_typed() {
    let body = split(&commit_frame()).1;
    let header = |entries: Vec<(&str, OwnedValue)>| OwnedValue::map(entries);
    let cases: Vec<(Vec<u8>, FrameError)> = vec![
        (
            join(
                &header(vec![
                    ("op", OwnedValue::int(2)),
                    ("t", OwnedValue::text("#commit")),
                ]),
                body.clone(),
            ),
            FrameError::UnknownOp { op: 2 },
        ),
        (
            join(&header(vec![("op", OwnedValue::int(-2))]), body.clone()),
            FrameError::UnknownOp { op: -2 },
        ),
        (
            join(&header(vec![("op", OwnedValue::int(1))]), body.clone()),
            FrameError::MissingField("t"),
        ),
        (
            join(
                &header(vec![("t", OwnedValue::text("#commit"))]),
                body.clone(),
            ),
            FrameError::MissingField("op"),
        ),
        (
            join(
                &header(vec![
                    ("op", OwnedValue::text("1")),
                    ("t", OwnedValue::text("#commit")),
                ]),
                body.clone(),
            ),
            FrameError::WrongFieldType("op"),
        ),
        (
            join(
                &header(vec![("op", OwnedValue::int(1)), ("t", OwnedValue::int(1))]),
                body.clone(),
            ),
            FrameError::WrongFieldType("t"),
        ),
        (
            join(&OwnedValue::Array(vec![]), body.clone()),
            FrameError::HeaderNotMap,
        ),
    ];
    let n = cases.len();
    for (bytes, expected) in cases {
        assert_eq!(err(&bytes), expected);
    }
    // Structural errors.
    let frame = commit_frame();
    let header_len = cbor::decode_prefix(&frame)
        .map(|(_, rest)| frame.len() - rest.len())
        .unwrap();
    assert_eq!(err(&frame[..header_len]), FrameError::MissingBody);
    let mut trailing = frame.clone();
    trailing.push(0x00);
    assert_eq!(
        err(&trailing),
        FrameError::TrailingBytes {
            offset: frame.len()
        }
    );
    assert!(matches!(
        err(&frame[..frame.len() - 1]),
        FrameError::BodyNotCbor(_)
    ));
    assert!(matches!(err(&[0xa1, 0x62]), FrameError::HeaderNotCbor(_)));
    assert!(matches!(err(&[]), FrameError::HeaderNotCbor(_)));
    let mut not_map = frame[..header_len].to_vec();
    not_map.push(0x80);
    assert_eq!(err(&not_map), FrameError::BodyNotMap);
    // A non-canonical body (keys out of order) is not DAG-CBOR.
    let mut unsorted = frame[..header_len].to_vec();
    unsorted.extend([0xa2, 0x63, b's', b'e', b'q', 0x01, 0x62, b'x', b'y', 0x01]);
    assert!(matches!(err(&unsorted), FrameError::BodyNotCbor(_)));
    common::report("negative frames: header and structure", n + 7);
}

#[test]
fn commit_field_errors_are_typed() {
    let frame = commit_frame();
    let link = |c: Cid| OwnedValue::Link(c.to_bytes().to_vec());
    // A CIDv1 with a blake2b multihash: a well-formed link atproto does not use.
    let mut foreign = vec![0x01, 0x71, 0xa0, 0xe4, 0x02, 0x20];
    foreign.extend([7u8; 32]);
    let cases: Vec<(&str, Option<OwnedValue>, FrameError)> = vec![
        ("rev", None, FrameError::MissingField("rev")),
        ("seq", None, FrameError::MissingField("seq")),
        ("since", None, FrameError::MissingField("since")),
        ("blobs", None, FrameError::MissingField("blobs")),
        ("time", None, FrameError::MissingField("time")),
        ("tooBig", None, FrameError::MissingField("tooBig")),
        ("seq", text("42"), FrameError::WrongFieldType("seq")),
        (
            "seq",
            Some(OwnedValue::int(-1)),
            FrameError::FieldOutOfRange("seq"),
        ),
        (
            "seq",
            Some(OwnedValue::Unsigned(1 << 63)),
            FrameError::FieldOutOfRange("seq"),
        ),
        (
            "ops",
            Some(OwnedValue::map([("a", OwnedValue::Null)])),
            FrameError::WrongFieldType("ops"),
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![OwnedValue::int(1)])),
            FrameError::WrongFieldType("ops"),
        ),
        (
            "rebase",
            Some(OwnedValue::int(0)),
            FrameError::WrongFieldType("rebase"),
        ),
        (
            "repo",
            Some(OwnedValue::Bytes(b"did:plc:x".to_vec())),
            FrameError::WrongFieldType("repo"),
        ),
        (
            "repo",
            text(&format!("did:web:{}", "a".repeat(2048))),
            FrameError::FieldTooLong("repo"),
        ),
        (
            "commit",
            text("bafyrei"),
            FrameError::WrongFieldType("commit"),
        ),
        (
            "commit",
            Some(OwnedValue::Link(foreign.clone())),
            FrameError::InvalidCid("commit"),
        ),
        ("blocks", text("car"), FrameError::WrongFieldType("blocks")),
        (
            "since",
            Some(OwnedValue::int(3)),
            FrameError::WrongFieldType("since"),
        ),
        (
            "blobs",
            Some(OwnedValue::Array(vec![OwnedValue::Null])),
            FrameError::WrongFieldType("blobs"),
        ),
        (
            "prevData",
            Some(OwnedValue::Null),
            FrameError::WrongFieldType("prevData"),
        ),
        (
            "time",
            Some(OwnedValue::Null),
            FrameError::WrongFieldType("time"),
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![op_value(
                "frobnicate",
                Some(sample_cid(b"r")),
            )])),
            FrameError::BadOpAction,
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![op_value(
                "delete",
                Some(sample_cid(b"r")),
            )])),
            FrameError::OpCidMismatch,
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![op_value("create", None)])),
            FrameError::OpCidMismatch,
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![op_value("update", None)])),
            FrameError::OpCidMismatch,
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![OwnedValue::map([
                ("action", OwnedValue::text("delete")),
                ("cid", OwnedValue::Null),
            ])])),
            FrameError::MissingField("op.path"),
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![OwnedValue::map([
                ("action", OwnedValue::text("delete")),
                ("path", OwnedValue::text("a/b")),
            ])])),
            FrameError::MissingField("op.cid"),
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![OwnedValue::map([(
                "action",
                OwnedValue::int(1),
            )])])),
            FrameError::WrongFieldType("op.action"),
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![OwnedValue::map([
                ("action", OwnedValue::text("update")),
                ("path", OwnedValue::text("a/b")),
                ("cid", link(sample_cid(b"new"))),
                ("prev", OwnedValue::Null),
            ])])),
            FrameError::WrongFieldType("op.prev"),
        ),
        (
            "ops",
            Some(OwnedValue::Array(vec![OwnedValue::map([
                ("action", OwnedValue::text("delete")),
                ("path", OwnedValue::text("a".repeat(831))),
                ("cid", OwnedValue::Null),
            ])])),
            FrameError::FieldTooLong("op.path"),
        ),
    ];
    let n = cases.len();
    for (key, value, expected) in cases {
        let bytes = with_field(&frame, key, value.clone());
        assert_eq!(err(&bytes), expected, "{key} = {value:?}");
        assert!(!expected.reason().is_empty() && !expected.to_string().is_empty());
    }
    common::report("negative frames: commit fields", n);
}

#[test]
fn limits_are_enforced_at_their_boundaries() {
    let op = op_value("delete", None);
    let mut commit = sample_commit();
    commit.ops = Vec::new();
    let frame = encode(EventOwned::Commit(commit.clone()));
    let ops = |n: usize| Some(OwnedValue::Array(vec![op.clone(); n]));
    assert!(Frame::decode(&with_field(&frame, "ops", ops(COMMIT_OPS_MAX))).is_ok());
    assert_eq!(
        err(&with_field(&frame, "ops", ops(COMMIT_OPS_MAX + 1))),
        FrameError::TooManyOps { count: 201 }
    );
    commit.blocks = vec![0; COMMIT_BLOCKS_BYTES_MAX];
    assert!(Frame::decode(&encode(EventOwned::Commit(commit.clone()))).is_ok());
    commit.blocks.push(0);
    assert_eq!(
        err(&encode(EventOwned::Commit(commit))),
        FrameError::BlocksTooLarge { len: 2_000_001 }
    );
    let mut sync = SyncEventOwned {
        seq: 1,
        did: did_example().into(),
        blocks: vec![0; SYNC_BLOCKS_BYTES_MAX],
        rev: "3lmxjza3nva27".into(),
        time: "2025-04-16T21:30:26.717Z".into(),
    };
    assert!(Frame::decode(&encode(EventOwned::Sync(sync.clone()))).is_ok());
    sync.blocks.push(0);
    assert_eq!(
        err(&encode(EventOwned::Sync(sync))),
        FrameError::BlocksTooLarge { len: 10_001 }
    );
    // An info frame grown to exactly the frame limit decodes; one byte more does not.
    let mut info = InfoEventOwned {
        name: "OutdatedCursor".into(),
        message: Some(String::new()),
    };
    let overhead = encode(EventOwned::Info(info.clone())).len();
    let fill = FRAME_SIZE_BYTES_MAX - overhead - 4; // the text head grows by 4 bytes
    info.message = Some("x".repeat(fill));
    let at_limit = encode(EventOwned::Info(info.clone()));
    assert_eq!(at_limit.len(), FRAME_SIZE_BYTES_MAX);
    assert!(Frame::decode(&at_limit).is_ok());
    info.message = Some("x".repeat(fill + 1));
    assert_eq!(
        err(&encode(EventOwned::Info(info))),
        FrameError::FrameTooLarge {
            len: FRAME_SIZE_BYTES_MAX + 1
        }
    );
    let long_handle = IdentityEventOwned {
        seq: 1,
        did: did_example().into(),
        time: "t".into(),
        handle: Some("a".repeat(254)),
    };
    assert_eq!(
        err(&encode(EventOwned::Identity(long_handle))),
        FrameError::FieldTooLong("handle")
    );
    common::report("negative frames: limits at their boundaries", 9);
}

#[test]
fn other_message_types_check_their_fields() {
    let account = encode(EventOwned::Account(AccountEventOwned {
        seq: 7,
        did: did_example().into(),
        time: "2025-04-16T21:30:26.717Z".into(),
        active: true,
        status: None,
    }));
    let identity = encode(EventOwned::Identity(IdentityEventOwned {
        seq: 7,
        did: did_example().into(),
        time: "2025-04-16T21:30:26.717Z".into(),
        handle: None,
    }));
    let sync = encode(EventOwned::Sync(SyncEventOwned {
        seq: 7,
        did: did_example().into(),
        blocks: vec![],
        rev: "r".into(),
        time: "t".into(),
    }));
    let info = encode(EventOwned::Info(InfoEventOwned {
        name: "OutdatedCursor".into(),
        message: None,
    }));
    let cases: Vec<(&[u8], &str, Option<OwnedValue>, FrameError)> = vec![
        (
            &account[..],
            "active",
            None,
            FrameError::MissingField("active"),
        ),
        (
            &account[..],
            "active",
            text("true"),
            FrameError::WrongFieldType("active"),
        ),
        (
            &account[..],
            "status",
            Some(OwnedValue::Null),
            FrameError::WrongFieldType("status"),
        ),
        (&account[..], "did", None, FrameError::MissingField("did")),
        (
            &identity[..],
            "time",
            None,
            FrameError::MissingField("time"),
        ),
        (
            &identity[..],
            "handle",
            Some(OwnedValue::Null),
            FrameError::WrongFieldType("handle"),
        ),
        (
            &identity[..],
            "seq",
            Some(OwnedValue::Float(1.0)),
            FrameError::WrongFieldType("seq"),
        ),
        (&sync[..], "rev", None, FrameError::MissingField("rev")),
        (
            &sync[..],
            "blocks",
            None,
            FrameError::MissingField("blocks"),
        ),
        (
            &sync[..],
            "did",
            Some(OwnedValue::int(1)),
            FrameError::WrongFieldType("did"),
        ),
        (&info[..], "name", None, FrameError::MissingField("name")),
        (
            &info[..],
            "message",
            Some(OwnedValue::int(1)),
            FrameError::WrongFieldType("message"),
        ),
    ];
    let n = cases.len();
    for (frame, key, value, expected) in cases {
        assert_eq!(err(&with_field(frame, key, value)), expected, "{key}");
    }
    // Unknown fields are tolerated; unknown types decode as Unknown.
    let extra = with_field(&account, "zzNewField", Some(OwnedValue::Array(vec![])));
    assert!(matches!(
        Frame::decode(&extra).unwrap().event(),
        Event::Account(_)
    ));
    let (_, body) = split(&account);
    let unknown = join(
        &OwnedValue::map([
            ("op", OwnedValue::int(1)),
            ("t", OwnedValue::text("#labels")),
        ]),
        body,
    );
    let frame = Frame::decode(&unknown).unwrap();
    assert_eq!(frame.event(), &Event::Unknown { t: "#labels" });
    assert_eq!((frame.seq(), frame.seq_span()), (None, None));
    common::report("negative frames: other message types", n + 2);
}

#[test]
fn error_frames_decode() {
    let mut cases = 0;
    for (error, message) in [
        ("FutureCursor", Some("Cursor in the future.")),
        ("ConsumerTooSlow", None),
    ] {
        let owned = ErrorFrameOwned {
            error: error.into(),
            message: message.map(str::to_owned),
        };
        let bytes = encode(EventOwned::Error(owned.clone()));
        assert_eq!(
            &bytes[..5],
            &[0xa1, 0x62, b'o', b'p', 0x20],
            "header {{op: -1}}"
        );
        let frame = Frame::decode(&bytes).unwrap();
        let Event::Error(e) = frame.event() else {
            panic!()
        };
        assert_eq!((e.error(), e.message()), (error, message));
        assert_eq!(frame.seq(), None);
        assert_eq!(frame.seq_patch(1), None);
        assert_eq!(
            frame.into_event().into_owned(),
            Some(EventOwned::Error(owned))
        );
        cases += 1;
    }
    // Built independently from JSON, as a PDS would send it.
    let bytes = [
        atjson::to_cbor(&json!({"op": -1})),
        atjson::to_cbor(&json!({"error": "FutureCursor", "message": "x"})),
    ]
    .concat();
    assert!(
        matches!(Frame::decode(&bytes).unwrap().event(), Event::Error(e) if e.error() == "FutureCursor")
    );
    let no_error = [
        atjson::to_cbor(&json!({"op": -1})),
        atjson::to_cbor(&json!({"message": "x"})),
    ]
    .concat();
    assert_eq!(err(&no_error), FrameError::MissingField("error"));
    common::report("error frames", cases + 2);
}

// ---- seq renumbering ----

const NEW_SEQS: [u64; 9] = [
    0,
    23,
    24,
    65_536,
    (1 << 32) - 1,
    (1 << 32) + 1,
    (1 << 53) - 1,
    1 << 53,
    i64::MAX as u64,
];

fn set_seq(event: &mut EventOwned, seq: u64) {
    match event {
        EventOwned::Commit(e) => e.seq = seq,
        EventOwned::Sync(e) => e.seq = seq,
        EventOwned::Identity(e) => e.seq = seq,
        EventOwned::Account(e) => e.seq = seq,
        EventOwned::Info(_) | EventOwned::Error(_) => {}
    }
}

#[test]
fn every_vector_frame_renumbers_by_patching_only_seq() {
    let frames: Vec<JsonFrame> = scenario_frames()
        .into_iter()
        .chain(firehose_commit_frames())
        .collect();
    let mut cases = 0;
    for jf in &frames {
        let bytes = jf.bytes();
        let frame = Frame::decode(&bytes).unwrap();
        let span = frame.seq_span().unwrap();
        let (old, old_len) = encode_seq_patch(frame.seq().unwrap());
        assert_eq!(&bytes[span.clone()], &old[..old_len], "{}", jf.origin);
        assert!(span.start > frame.header_bytes().len());
        for new_seq in NEW_SEQS {
            let patch = frame.seq_patch(new_seq).unwrap();
            assert_eq!(patch.prefix(), &bytes[..span.start]);
            assert_eq!(patch.suffix(), &bytes[span.end..]);
            let mut out = Vec::new();
            patch.write_to(&mut out);
            assert_eq!(out.len(), patch.len());
            let renumbered = Frame::decode(&out).unwrap_or_else(|e| panic!("{}: {e}", jf.origin));
            assert_eq!(renumbered.seq(), Some(new_seq));
            assert_eq!(renumbered.header_bytes(), frame.header_bytes());
            let mut expected = frame.event().into_owned().unwrap();
            set_seq(&mut expected, new_seq);
            assert_eq!(
                renumbered.event().into_owned().unwrap(),
                expected,
                "{}",
                jf.origin
            );
            let mut body = jf.body.clone();
            body["seq"] = json!(new_seq);
            let scratch = JsonFrame {
                origin: String::new(),
                drop: false,
                header: jf.header.clone(),
                body,
            };
            assert_eq!(
                out,
                scratch.bytes(),
                "{}: equals a from-scratch encoding",
                jf.origin
            );
            cases += 1;
        }
    }
    common::report("seq renumbering of every vector frame", cases);
}

// ---- commit object errors ----

#[test]
fn commit_object_errors_are_typed() {
    let builder = UnsignedCommit {
        did: did_example(),
        data: sample_cid(b"mst"),
        rev: "3lmxjza3nva27",
        prev: None,
    };
    let mut block = Vec::new();
    builder.encode_signed(&[9; 64], &mut block);
    let OwnedValue::Map(base) = OwnedValue::from_view(&cbor::decode(&block).unwrap()) else {
        panic!()
    };
    let with = |key: &str, value: Option<OwnedValue>| {
        let mut entries = base.clone();
        entries.retain(|(k, _)| k != key);
        if let Some(value) = value {
            entries.push((key.to_owned(), value));
        }
        OwnedValue::Map(entries).to_bytes()
    };
    let cases: Vec<(Vec<u8>, CommitError)> = vec![
        (with("rev", None), CommitError::MissingField("rev")),
        (with("prev", None), CommitError::MissingField("prev")),
        (with("sig", None), CommitError::MissingField("sig")),
        (with("data", None), CommitError::MissingField("data")),
        (with("did", None), CommitError::MissingField("did")),
        (with("version", None), CommitError::MissingField("version")),
        (
            with("version", Some(OwnedValue::int(4))),
            CommitError::UnsupportedVersion(4),
        ),
        (
            with("version", Some(OwnedValue::int(-3))),
            CommitError::WrongFieldType("version"),
        ),
        (
            with("sig", Some(OwnedValue::Bytes(vec![0; 63]))),
            CommitError::BadSignatureLength { len: 63 },
        ),
        (with("sig", text("sig")), CommitError::WrongFieldType("sig")),
        (
            with("data", Some(OwnedValue::Null)),
            CommitError::WrongFieldType("data"),
        ),
        (
            with("did", Some(OwnedValue::int(1))),
            CommitError::WrongFieldType("did"),
        ),
        (
            with("did", text(&"d".repeat(2049))),
            CommitError::FieldTooLong("did"),
        ),
        (
            with("extra", Some(OwnedValue::Null)),
            CommitError::UnknownField,
        ),
        (OwnedValue::Array(vec![]).to_bytes(), CommitError::NotMap),
    ];
    let n = cases.len();
    for (bytes, expected) in cases {
        assert_eq!(Commit::decode(&bytes), Err(expected));
        assert!(expected.reason().starts_with("commit_"));
    }
    assert!(matches!(
        Commit::decode(&block[..block.len() - 1]),
        Err(CommitError::NotCbor(_))
    ));
    // A legacy v2 commit without rev is accepted and flagged.
    let legacy = {
        let mut entries = base.clone();
        entries.retain(|(k, _)| k != "rev" && k != "version");
        entries.push(("version".into(), OwnedValue::int(2)));
        OwnedValue::Map(entries).to_bytes()
    };
    let commit = Commit::decode(&legacy).unwrap();
    assert!(commit.is_legacy() && commit.rev().is_none());
    check_commit_reencodes(&legacy, &commit, "legacy without rev");
    common::report("commit object errors", n + 2);
}

// ---- properties ----

fn cid_strategy() -> impl Strategy<Value = Cid> {
    prop_oneof![
        any::<[u8; 8]>().prop_map(|seed| Cid::compute(Codec::DagCbor, &seed)),
        any::<[u8; 8]>().prop_map(|seed| Cid::compute(Codec::Raw, &seed)),
    ]
}

fn op_strategy() -> impl Strategy<Value = RepoOpOwned> {
    (
        prop_oneof![
            Just(OpAction::Create),
            Just(OpAction::Update),
            Just(OpAction::Delete)
        ],
        "[a-z.]{1,30}/[a-z0-9]{1,15}",
        cid_strategy(),
        proptest::option::of(cid_strategy()),
    )
        .prop_map(|(action, path, cid, prev)| RepoOpOwned {
            action,
            path,
            cid: (action != OpAction::Delete).then_some(cid),
            prev,
        })
}

fn commit_strategy() -> impl Strategy<Value = CommitEventOwned> {
    (
        (
            0..=i64::MAX as u64,
            any::<bool>(),
            any::<bool>(),
            "did:plc:[a-z2-7]{24}",
            cid_strategy(),
        ),
        (
            "[a-z2-7]{13}",
            proptest::option::of("[a-z2-7]{13}"),
            proptest::collection::vec(any::<u8>(), 0..300),
        ),
        (
            proptest::collection::vec(op_strategy(), 0..6),
            proptest::collection::vec(cid_strategy(), 0..3),
            proptest::option::of(cid_strategy()),
            "\\PC{0,30}",
        ),
    )
        .prop_map(
            |(
                (seq, rebase, too_big, repo, commit),
                (rev, since, blocks),
                (ops, blobs, prev_data, time),
            )| {
                CommitEventOwned {
                    seq,
                    rebase,
                    too_big,
                    repo,
                    commit,
                    rev,
                    since,
                    blocks,
                    ops,
                    blobs,
                    prev_data,
                    time,
                }
            },
        )
}

fn identity_strategy() -> impl Strategy<Value = IdentityEventOwned> {
    (
        0..=i64::MAX as u64,
        "did:[a-z]{3}:[a-zA-Z0-9._:%-]{1,60}",
        "\\PC{0,30}",
        proptest::option::of("[a-z0-9.-]{1,253}"),
    )
        .prop_map(|(seq, did, time, handle)| IdentityEventOwned {
            seq,
            did,
            time,
            handle,
        })
}

fn account_strategy() -> impl Strategy<Value = AccountEventOwned> {
    (
        0..=i64::MAX as u64,
        "did:plc:[a-z2-7]{24}",
        "\\PC{0,30}",
        any::<bool>(),
        proptest::option::of("\\PC{0,20}"),
    )
        .prop_map(|(seq, did, time, active, status)| AccountEventOwned {
            seq,
            did,
            time,
            active,
            status,
        })
}

fn check_round_trip(event: EventOwned) -> Result<(), TestCaseError> {
    let bytes = event.to_frame_bytes();
    let frame = Frame::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(frame.event().into_owned(), Some(event.clone()));
    if let Some(seq) = frame.seq() {
        let (encoded, len) = encode_seq_patch(seq);
        prop_assert_eq!(&bytes[frame.seq_span().unwrap()], &encoded[..len]);
    }
    // The builders write canonical bytes: a generic re-encode gives the same.
    let (header, rest) = cbor::decode_prefix(&bytes).unwrap();
    let mut again = Vec::new();
    cbor::encode_value(&header, &mut again);
    cbor::encode_value(&cbor::decode(rest).unwrap(), &mut again);
    prop_assert_eq!(again, bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn commit_events_round_trip(event in commit_strategy()) {
        check_round_trip(EventOwned::Commit(event))?;
    }

    #[test]
    fn identity_events_round_trip(event in identity_strategy()) {
        check_round_trip(EventOwned::Identity(event))?;
    }

    #[test]
    fn account_events_round_trip(event in account_strategy()) {
        check_round_trip(EventOwned::Account(event))?;
    }

    #[test]
    fn sync_info_error_round_trip(
        seq in 0..=i64::MAX as u64,
        name in "\\PC{0,20}",
        message in proptest::option::of("\\PC{0,40}"),
        blocks in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        check_round_trip(EventOwned::Sync(SyncEventOwned {
            seq, did: "did:plc:abc".into(), blocks, rev: name.clone(), time: name.clone(),
        }))?;
        check_round_trip(EventOwned::Info(InfoEventOwned { name: name.clone(), message: message.clone() }))?;
        check_round_trip(EventOwned::Error(ErrorFrameOwned { error: name, message }))?;
    }

    #[test]
    fn decode_never_panics_on_mutated_frames(
        index in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = commit_frame();
        let at = index.index(bytes.len());
        bytes[at] = byte;
        let _ = Frame::decode(&bytes);
    }
}

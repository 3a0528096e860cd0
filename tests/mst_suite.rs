//! MST vectors: atproto-interop key heights and prefixes, the 128 exhaustive MST CARs and
//! the 896 single-op diff cases of mst-test-suite (forward, inverse, proof minimality),
//! hand-built malformed nodes and trees, and property tests.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use proptest::prelude::*;
use relay::frame::car::Blocks;
use relay::frame::cbor::OwnedValue;
use relay::frame::cid::Cid;
use relay::verify::mst::{
    self, Action, Mst, MstError, NoBlocks, NodeEntry, Op, common_prefix_len, decode_node,
    encode_node, key_height,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const EXHAUSTIVE_KEYS: [&str; 7] = ["k/00", "k/02", "k/04", "k/39", "k/40", "k/48", "k/49"];

fn cid(text: &str) -> Cid {
    Cid::parse_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn cid_set(value: &serde_json::Value) -> BTreeSet<Cid> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| cid(v.as_str().unwrap()))
        .collect()
}

/// A CID that stands for a record: the CID of a small CBOR value.
fn leaf(n: u64) -> Cid {
    Cid::for_dag_cbor(&OwnedValue::Unsigned(n).to_bytes())
}

fn walk_all(source: &impl mst::BlockSource, root: Cid) -> Vec<(Vec<u8>, Cid)> {
    let mut out = Vec::new();
    mst::walk(source, root, |key, value| out.push((key.to_vec(), value))).unwrap();
    out
}

// ---- atproto-interop/mst -------------------------------------------------------------

#[test]
fn interop_key_heights() {
    let cases = common::fixture_json("atproto-interop/mst/key_heights.json");
    let cases = cases.as_array().unwrap();
    for case in cases {
        let key = case["key"].as_str().unwrap();
        let height = case["height"].as_u64().unwrap();
        assert_eq!(u64::from(key_height(key.as_bytes())), height, "key {key:?}");
    }
    assert_eq!(cases.len(), 9);
    common::report("atproto-interop mst/key_heights.json", cases.len());
}

#[test]
fn interop_common_prefix() {
    let cases = common::fixture_json("atproto-interop/mst/common_prefix.json");
    let cases = cases.as_array().unwrap();
    for case in cases {
        let left = case["left"].as_str().unwrap();
        let right = case["right"].as_str().unwrap();
        let len = case["len"].as_u64().unwrap() as usize;
        assert_eq!(
            common_prefix_len(left.as_bytes(), right.as_bytes()),
            len,
            "{left:?} / {right:?}"
        );
    }
    assert_eq!(cases.len(), 13);
    common::report("atproto-interop mst/common_prefix.json", cases.len());
}

#[test]
fn interop_example_keys() {
    let keys = common::fixture_lines("atproto-interop/mst/example_keys.txt");
    for key in &keys {
        let digit = key.as_bytes()[1];
        assert!(digit.is_ascii_digit(), "{key:?}");
        assert_eq!(key_height(key.as_bytes()), digit - b'0', "{key:?}");
    }
    assert_eq!(keys.len(), 156);
    common::report("atproto-interop mst/example_keys.txt", keys.len());
}

// ---- mst-test-suite: the 128 exhaustive CARs -------------------------------------------

fn exhaustive_car(mask: usize) -> Vec<u8> {
    common::fixture_bytes(&format!(
        "mst-test-suite/cars/exhaustive/exhaustive_{mask:03}.car"
    ))
}

#[test]
fn exhaustive_cars_decode_walk_and_rebuild() {
    let mut cases = 0;
    for mask in 0..128usize {
        let car = exhaustive_car(mask);
        let mut blocks = Blocks::new();
        let root = blocks.load(&car, 1000).unwrap();

        // Every block of the CAR is a valid MST node on its own.
        for (block_cid, block) in blocks.iter() {
            decode_node(block).unwrap_or_else(|e| panic!("{mask}: {block_cid}: {e}"));
        }

        // The walked keys are exactly those of the mask.
        let walked = walk_all(&blocks, root);
        let keys: Vec<&[u8]> = walked.iter().map(|(k, _)| k.as_slice()).collect();
        let expected: Vec<&[u8]> = EXHAUSTIVE_KEYS
            .iter()
            .enumerate()
            .filter(|(bit, _)| mask & (1 << bit) != 0)
            .map(|(_, k)| k.as_bytes())
            .collect();
        assert_eq!(keys, expected, "mask {mask}");

        // Rebuilding from the walked pairs gives the same root and exactly the CAR's blocks.
        let mut built = Mst::from_entries(walked.iter().map(|(k, v)| (k.as_slice(), *v))).unwrap();
        let diff = built.commit().unwrap();
        assert_eq!(diff.root(), root, "mask {mask}: bulk build");
        let built_cids: BTreeSet<Cid> = diff.new_blocks().iter().map(|(c, _)| *c).collect();
        let car_cids: BTreeSet<Cid> = blocks.iter().map(|(c, _)| *c).collect();
        assert_eq!(built_cids, car_cids, "mask {mask}: node blocks");
        for (block_cid, block) in diff.new_blocks() {
            assert_eq!(blocks.get(block_cid), Some(block.as_slice()), "mask {mask}");
        }

        // Inserting one by one, in reverse order, gives the same root.
        let mut inserted = Mst::new();
        for (key, value) in walked.iter().rev() {
            assert_eq!(inserted.insert(&NoBlocks, key, *value).unwrap(), None);
        }
        assert_eq!(inserted.root().unwrap(), root, "mask {mask}: inserts");
        cases += 1;
    }
    assert_eq!(cases, 128);
    common::report("mst-test-suite cars/exhaustive", cases);
}

#[test]
fn exhaustive_empty_tree_is_the_empty_node() {
    let car = exhaustive_car(0);
    let mut blocks = Blocks::new();
    let root = blocks.load(&car, 10).unwrap();
    assert_eq!(root, mst::empty_root());
    assert_eq!(blocks.get(&root), Some(&mst::EMPTY_NODE_BLOCK[..]));
    assert_eq!(Mst::new().root().unwrap(), root);
    assert_eq!(Mst::from_entries([]).unwrap().root().unwrap(), root);
}

// ---- mst-test-suite: the 896 single-op diff cases ------------------------------------

struct DiffCase {
    name: String,
    car_a: Vec<u8>,
    car_b: Vec<u8>,
    created: BTreeSet<Cid>,
    deleted: BTreeSet<Cid>,
    ops: Vec<(String, Option<Cid>, Option<Cid>)>,
    inductive: BTreeSet<Cid>,
}

fn diff_cases() -> Vec<DiffCase> {
    let lines = common::fixture_lines("mst-test-suite/tests/diff/exhaustive-single-op.jsonl");
    lines
        .iter()
        .map(|line| {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let car = |field: &str| {
                let rel = case["inputs"][field].as_str().unwrap();
                common::fixture_bytes(&format!(
                    "mst-test-suite/{}",
                    rel.strip_prefix("./").unwrap()
                ))
            };
            let results = &case["results"];
            let opt_cid = |v: &serde_json::Value| v.as_str().map(cid);
            let ops = results["record_ops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|op| {
                    (
                        op["rpath"].as_str().unwrap().to_owned(),
                        opt_cid(&op["old_value"]),
                        opt_cid(&op["new_value"]),
                    )
                })
                .collect();
            DiffCase {
                name: case["_file"].as_str().unwrap().to_owned(),
                car_a: car("mst_a"),
                car_b: car("mst_b"),
                created: cid_set(&results["created_nodes"]),
                deleted: cid_set(&results["deleted_nodes"]),
                ops,
                inductive: cid_set(&results["inductive_proof_nodes"]),
            }
        })
        .collect()
}

fn to_ops(ops: &[(String, Option<Cid>, Option<Cid>)]) -> Vec<Op<'_>> {
    ops.iter()
        .map(|(key, old, new)| Op {
            key: key.as_bytes(),
            action: match (old, new) {
                (None, Some(cid)) => Action::Create { cid: *cid },
                (Some(prev), Some(cid)) => Action::Update {
                    cid: *cid,
                    prev: *prev,
                },
                (Some(prev), None) => Action::Delete { prev: *prev },
                (None, None) => panic!("op without values"),
            },
        })
        .collect()
}

#[test]
fn single_op_diffs_forward_inverse_and_proofs() {
    let cases = diff_cases();
    let mut proof_removals = 0;
    for case in &cases {
        let name = &case.name;
        let mut blocks_a = Blocks::new();
        let root_a = blocks_a.load(&case.car_a, 1000).unwrap();
        let mut blocks_b = Blocks::new();
        let root_b = blocks_b.load(&case.car_b, 1000).unwrap();
        assert_eq!(case.ops.len(), 1, "{name}");
        let ops = to_ops(&case.ops);

        // Forward on the full tree a: root of b, and exactly the created/deleted nodes.
        let mut tree = Mst::from_root(root_a);
        tree.apply(&blocks_a, &ops).unwrap();
        let diff = tree.commit().unwrap();
        assert_eq!(diff.root(), root_b, "{name}: forward root");
        let created: BTreeSet<Cid> = diff.new_blocks().iter().map(|(c, _)| *c).collect();
        assert_eq!(created, case.created, "{name}: created nodes");
        let deleted: BTreeSet<Cid> = diff.removed().iter().copied().collect();
        assert_eq!(deleted, case.deleted, "{name}: deleted nodes");
        for (block_cid, block) in diff.new_blocks() {
            assert_eq!(blocks_b.get(block_cid), Some(block.as_slice()), "{name}");
        }
        assert_eq!(
            mst::apply_ops(&blocks_a, root_a, &ops),
            Ok(root_b),
            "{name}"
        );

        // Inverse on b, with only the inductive proof nodes: root of a.
        let proof: HashMap<Cid, Vec<u8>> = case
            .inductive
            .iter()
            .map(|c| {
                let block = blocks_b
                    .get(c)
                    .unwrap_or_else(|| panic!("{name}: {c} not in b"));
                (*c, block.to_vec())
            })
            .collect();
        assert_eq!(
            mst::invert_ops(&proof, root_b, &ops),
            Ok(root_a),
            "{name}: inverse"
        );

        // Every proof node is needed: without it the inversion reports that very block.
        assert!(!case.inductive.is_empty(), "{name}");
        for missing in &case.inductive {
            let mut partial = proof.clone();
            partial.remove(missing);
            assert_eq!(
                mst::invert_ops(&partial, root_b, &ops),
                Err(MstError::MissingBlock(*missing)),
                "{name}: without {missing}"
            );
            proof_removals += 1;
        }

        // The inverse of the wrong value is rejected.
        let wrong = to_ops(&case.ops)
            .into_iter()
            .map(|op| Op {
                key: op.key,
                action: match op.action {
                    Action::Create { .. } => Action::Create { cid: leaf(9) },
                    Action::Delete { prev } => Action::Update { cid: leaf(9), prev },
                    other => other,
                },
            })
            .collect::<Vec<_>>();
        assert_eq!(
            mst::invert_ops(&blocks_b, root_b, &wrong),
            Err(MstError::OpMismatch { index: 0 }),
            "{name}: wrong value"
        );
    }
    assert_eq!(cases.len(), 896);
    common::report(
        "mst-test-suite tests/diff/exhaustive-single-op.jsonl",
        cases.len(),
    );
    common::report(
        "mst-test-suite single-op proof node removals",
        proof_removals,
    );
}

// ---- malformed nodes -----------------------------------------------------------------

fn link(cid: Cid) -> OwnedValue {
    OwnedValue::Link(cid.to_bytes().to_vec())
}

fn entry(p: u64, k: &[u8], v: Cid, t: Option<Cid>) -> OwnedValue {
    OwnedValue::map([
        ("p", OwnedValue::Unsigned(p)),
        ("k", OwnedValue::Bytes(k.to_vec())),
        ("v", link(v)),
        ("t", t.map_or(OwnedValue::Null, link)),
    ])
}

fn node(l: Option<Cid>, entries: Vec<OwnedValue>) -> Vec<u8> {
    OwnedValue::map([
        ("l", l.map_or(OwnedValue::Null, link)),
        ("e", OwnedValue::Array(entries)),
    ])
    .to_bytes()
}

/// Two keys of layer 0 and one of layer 1 from the interop example keys.
const L0_A: &[u8] = b"A0/374913";
const L0_B: &[u8] = b"B0/601692";
const L1_B: &[u8] = b"B1/986427";

#[test]
fn malformed_nodes_are_rejected_with_their_reason() {
    let v = leaf(1);
    let raw = Cid::compute(relay::frame::cid::Codec::Raw, b"x");
    let cases: Vec<(&str, Vec<u8>, MstError)> = vec![
        (
            "not a map",
            OwnedValue::Array(vec![]).to_bytes(),
            MstError::NodeShape,
        ),
        (
            "extra field",
            OwnedValue::map([
                ("l", OwnedValue::Null),
                ("e", OwnedValue::Array(vec![])),
                ("x", OwnedValue::Null),
            ])
            .to_bytes(),
            MstError::NodeShape,
        ),
        (
            "missing l",
            OwnedValue::map([("e", OwnedValue::Array(vec![]))]).to_bytes(),
            MstError::NodeShape,
        ),
        (
            "l not a link",
            OwnedValue::map([
                ("l", OwnedValue::Unsigned(1)),
                ("e", OwnedValue::Array(vec![])),
            ])
            .to_bytes(),
            MstError::NodeShape,
        ),
        (
            "entry missing t",
            node(
                None,
                vec![OwnedValue::map([
                    ("p", OwnedValue::Unsigned(0)),
                    ("k", OwnedValue::Bytes(L0_A.to_vec())),
                    ("v", link(v)),
                ])],
            ),
            MstError::EntryShape,
        ),
        (
            "k as text",
            node(
                None,
                vec![OwnedValue::map([
                    ("p", OwnedValue::Unsigned(0)),
                    ("k", OwnedValue::text("A0/374913")),
                    ("v", link(v)),
                    ("t", OwnedValue::Null),
                ])],
            ),
            MstError::EntryShape,
        ),
        (
            "raw value link",
            node(None, vec![entry(0, L0_A, raw, None)]),
            MstError::LinkNotDagCbor,
        ),
        (
            "first p not zero",
            node(None, vec![entry(1, L0_A, v, None)]),
            MstError::FirstPrefixNotZero,
        ),
        (
            "p too long",
            node(
                None,
                vec![entry(0, L0_A, v, None), entry(10, b"x", v, None)],
            ),
            MstError::PrefixTooLong,
        ),
        (
            "p not maximal",
            node(
                None,
                vec![entry(0, b"A0/1", v, None), entry(0, b"A0/2", v, None)],
            ),
            MstError::PrefixNotMaximal,
        ),
        (
            "keys out of order",
            node(None, vec![entry(0, L0_B, v, None), entry(0, L0_A, v, None)]),
            MstError::KeyOrder,
        ),
        (
            "duplicate key",
            node(None, vec![entry(0, L0_A, v, None), entry(9, b"", v, None)]),
            MstError::KeyOrder,
        ),
        (
            "empty key",
            node(None, vec![entry(0, b"", v, None)]),
            MstError::KeyEmpty,
        ),
        (
            "key too long",
            node(None, vec![entry(0, &[b'a'; 1025], v, None)]),
            MstError::KeyTooLong,
        ),
        (
            "mixed heights",
            node(None, vec![entry(0, L0_A, v, None), entry(0, L1_B, v, None)]),
            MstError::KeyHeight,
        ),
        (
            "layer 0 with a subtree",
            node(None, vec![entry(0, L0_A, v, Some(leaf(2)))]),
            MstError::LinkBelowLeaf,
        ),
        (
            "layer 0 with a left subtree",
            node(Some(leaf(2)), vec![entry(0, L0_A, v, None)]),
            MstError::LinkBelowLeaf,
        ),
    ];
    for (name, block, expected) in &cases {
        let err = decode_node(block).err();
        assert_eq!(err, Some(*expected), "{name}");
        assert!(expected.reason().starts_with("mst_"), "{name}");
    }
    // Non-canonical CBOR is a CBOR error: an indefinite-length map, a non-minimal array
    // head, trailing bytes.
    let mut indefinite = node(None, vec![]);
    indefinite[0] = 0xbf;
    let non_minimal = vec![0xa2, 0x61, b'e', 0x98, 0x00, 0x61, b'l', 0xf6];
    let mut trailing = node(None, vec![]);
    trailing.push(0xf6);
    for (name, block) in [
        ("indefinite", indefinite),
        ("non-minimal", non_minimal),
        ("trailing", trailing),
    ] {
        assert!(
            matches!(decode_node(&block), Err(MstError::NotCbor(_))),
            "{name}"
        );
    }
    // A raw CID as `l`.
    assert_eq!(
        decode_node(&node(Some(raw), vec![])).err(),
        Some(MstError::LinkNotDagCbor)
    );
    common::report("hand-built malformed MST nodes", cases.len() + 4);
}

#[test]
fn node_encoding_round_trips() {
    let (a, b) = (leaf(1), leaf(2));
    let entries = [
        NodeEntry {
            key: b"A1/076595",
            value: a,
            right: Some(b),
        },
        NodeEntry {
            key: b"B1/986427",
            value: b,
            right: None,
        },
    ];
    let mut block = Vec::new();
    encode_node(Some(a), &entries, &mut block);
    let view = decode_node(&block).unwrap();
    assert_eq!(view.layer(), Some(1));
    assert_eq!(view.left(), Some(a));
    assert_eq!(view.len(), 2);
    let mut keys = Vec::new();
    view.for_each_key(|key, value, right| keys.push((key.to_vec(), value, right)));
    assert_eq!(
        keys,
        vec![
            (b"A1/076595".to_vec(), a, Some(b)),
            (b"B1/986427".to_vec(), b, None)
        ]
    );
    let raw: Vec<_> = view
        .entries()
        .map(|e| (e.prefix_len(), e.suffix().to_vec()))
        .collect();
    assert_eq!(
        raw,
        vec![(0, b"A1/076595".to_vec()), (0, b"B1/986427".to_vec())]
    );
    let mut empty = Vec::new();
    encode_node(None, &[], &mut empty);
    assert_eq!(empty, mst::EMPTY_NODE_BLOCK);
}

// ---- malformed trees -----------------------------------------------------------------

fn store(blocks: &[&Vec<u8>]) -> HashMap<Cid, Vec<u8>> {
    blocks
        .iter()
        .map(|b| (Cid::for_dag_cbor(b), (*b).clone()))
        .collect()
}

fn walk_err(source: &HashMap<Cid, Vec<u8>>, root: &[u8]) -> MstError {
    mst::walk(source, Cid::for_dag_cbor(root), |_, _| {}).unwrap_err()
}

#[test]
fn malformed_trees_are_rejected() {
    let v = leaf(1);
    let leaf_a = node(None, vec![entry(0, L0_A, v, None)]);
    let leaf_b = node(None, vec![entry(0, L0_B, v, None)]);
    let cid_a = Cid::for_dag_cbor(&leaf_a);
    let cid_b = Cid::for_dag_cbor(&leaf_b);

    // A layer-1 root whose left child holds a key greater than the root's key.
    let root = node(Some(cid_b), vec![entry(0, b"A1/076595", v, None)]);
    assert_eq!(
        walk_err(&store(&[&root, &leaf_b]), &root),
        MstError::KeyOutOfRange
    );
    // Right child below the key: out of range too.
    let root = node(None, vec![entry(0, L1_B, v, Some(cid_a))]);
    assert_eq!(
        walk_err(&store(&[&root, &leaf_a]), &root),
        MstError::KeyOutOfRange
    );
    // A correct two-layer tree walks.
    let root = node(Some(cid_a), vec![entry(0, L1_B, v, None)]);
    let good = store(&[&root, &leaf_a]);
    assert_eq!(walk_all(&good, Cid::for_dag_cbor(&root)).len(), 2);

    // A root with no entries but a subtree is not trimmed.
    let untrimmed = node(Some(cid_a), vec![]);
    assert_eq!(
        walk_err(&store(&[&untrimmed, &leaf_a]), &untrimmed),
        MstError::RootNotTrimmed
    );

    // A layer-2 root pointing straight at a layer-0 node skips a layer.
    let skip = node(Some(cid_a), vec![entry(0, b"A2/827942", v, None)]);
    assert_eq!(
        walk_err(&store(&[&skip, &leaf_a]), &skip),
        MstError::LayerMismatch
    );

    // An empty node below the root.
    let empty = node(None, vec![]);
    let root = node(
        Some(Cid::for_dag_cbor(&empty)),
        vec![entry(0, L1_B, v, None)],
    );
    assert_eq!(
        walk_err(&store(&[&root, &empty]), &root),
        MstError::EmptyNode
    );

    // An entry-less node at layer 0 cannot point further down.
    let inner = node(Some(cid_a), vec![]);
    let root = node(
        Some(Cid::for_dag_cbor(&inner)),
        vec![entry(0, L1_B, v, None)],
    );
    assert_eq!(
        walk_err(&store(&[&root, &inner, &leaf_a]), &root),
        MstError::LinkBelowLeaf
    );

    // A missing child.
    let root = node(Some(cid_a), vec![entry(0, L1_B, v, None)]);
    assert_eq!(
        walk_err(&store(&[&root]), &root),
        MstError::MissingBlock(cid_a)
    );
    common::report("hand-built malformed MST trees", 8);
}

#[test]
fn op_checks() {
    let keys: Vec<String> = (0..50)
        .map(|i| format!("app.bsky.feed.post/{i:04}"))
        .collect();
    let mut tree = Mst::from_entries(keys.iter().map(|k| (k.as_bytes(), leaf(1)))).unwrap();
    let diff = tree.commit().unwrap();
    let blocks: HashMap<Cid, Vec<u8>> = diff.new_blocks().iter().cloned().collect();
    let root = diff.root();
    let key = keys[7].as_bytes();
    let new_key = b"app.bsky.feed.post/zzzz".as_slice();
    let mismatch = Err(MstError::OpMismatch { index: 0 });
    let create_existing = [Op {
        key,
        action: Action::Create { cid: leaf(2) },
    }];
    assert_eq!(mst::apply_ops(&blocks, root, &create_existing), mismatch);
    let update_wrong_prev = [Op {
        key,
        action: Action::Update {
            cid: leaf(2),
            prev: leaf(3),
        },
    }];
    assert_eq!(mst::apply_ops(&blocks, root, &update_wrong_prev), mismatch);
    let delete_absent = [Op {
        key: new_key,
        action: Action::Delete { prev: leaf(1) },
    }];
    assert_eq!(mst::apply_ops(&blocks, root, &delete_absent), mismatch);
    // Inverting a delete of a key that is still there.
    assert_eq!(
        mst::invert_ops(
            &blocks,
            root,
            &[Op {
                key,
                action: Action::Delete { prev: leaf(1) }
            }]
        ),
        mismatch
    );
    // Update round trip.
    let update = [Op {
        key,
        action: Action::Update {
            cid: leaf(2),
            prev: leaf(1),
        },
    }];
    let after = mst::apply_ops(&blocks, root, &update).unwrap();
    assert_ne!(after, root);
    let mut forward = Mst::from_root(root);
    forward.apply(&blocks, &update).unwrap();
    let mut all = blocks.clone();
    all.extend(forward.commit().unwrap().into_new_blocks());
    assert_eq!(mst::invert_ops(&all, after, &update), Ok(root));
    // Bad keys.
    let mut tree = Mst::new();
    assert_eq!(
        tree.insert(&NoBlocks, b"", leaf(1)),
        Err(MstError::KeyEmpty)
    );
    assert_eq!(
        tree.insert(&NoBlocks, &[b'a'; 1025], leaf(1)),
        Err(MstError::KeyTooLong)
    );
    assert_eq!(
        Mst::from_entries([(b"a".as_slice(), leaf(1)), (b"a".as_slice(), leaf(2))]).err(),
        Some(MstError::DuplicateKey)
    );
    // A missing root.
    assert_eq!(
        mst::invert_ops(&NoBlocks, root, &update),
        Err(MstError::MissingBlock(root))
    );
    common::report("MST op checks", 9);
}

// ---- properties ----------------------------------------------------------------------

fn key_strategy() -> impl Strategy<Value = String> {
    // Few distinct collections and short record keys: shared prefixes and collisions.
    (0..3usize, "[a-z0-9]{1,6}").prop_map(|(c, rkey)| {
        let collection = ["app.bsky.feed.post", "app.bsky.feed.like", "a.b.c"][c];
        format!("{collection}/{rkey}")
    })
}

fn pairs_strategy() -> impl Strategy<Value = BTreeMap<String, u64>> {
    proptest::collection::btree_map(key_strategy(), 0..1000u64, 0..120)
}

fn root_of(map: &BTreeMap<String, u64>) -> Cid {
    Mst::from_entries(map.iter().map(|(k, v)| (k.as_bytes(), leaf(*v))))
        .unwrap()
        .root()
        .unwrap()
}

/// A valid layer-1 node with a subtree and three entries, for mutation.
fn sample_node() -> Vec<u8> {
    let entries = [
        NodeEntry {
            key: b"A1/076595",
            value: leaf(1),
            right: Some(leaf(2)),
        },
        NodeEntry {
            key: b"B1/986427",
            value: leaf(3),
            right: None,
        },
        NodeEntry {
            key: b"D1/834852",
            value: leaf(4),
            right: Some(leaf(5)),
        },
    ];
    let mut block = Vec::new();
    encode_node(Some(leaf(6)), &entries, &mut block);
    block
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn mutated_nodes_are_rejected_or_canonical(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
    ) {
        let mut block = sample_node();
        prop_assert!(decode_node(&block).is_ok());
        for (at, byte, kind) in edits {
            let at = at.index(block.len() + 1);
            match kind {
                0 if at < block.len() => block[at] = byte,
                1 => block.insert(at, byte),
                _ => block.truncate(at),
            }
        }
        match decode_node(&block) {
            // Whatever is accepted re-encodes to the very same bytes.
            Ok(view) => {
                let mut keys = Vec::new();
                view.for_each_key(|k, v, t| keys.push((k.to_vec(), v, t)));
                let entries: Vec<NodeEntry<'_>> = keys
                    .iter()
                    .map(|(k, v, t)| NodeEntry { key: k, value: *v, right: *t })
                    .collect();
                let mut again = Vec::new();
                encode_node(view.left(), &entries, &mut again);
                prop_assert_eq!(again, block);
            }
            Err(e) => prop_assert_ne!(e, MstError::Internal),
        }
    }

    #[test]
    fn root_is_independent_of_insertion_order(map in pairs_strategy(), seed in any::<u64>()) {
        let mut items: Vec<(&String, &u64)> = map.iter().collect();
        // A seeded shuffle.
        let mut state = seed | 1;
        for i in (1..items.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            items.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut tree = Mst::new();
        for (key, value) in &items {
            tree.insert(&NoBlocks, key.as_bytes(), leaf(**value)).unwrap();
        }
        let root = tree.root().unwrap();
        prop_assert_eq!(root, root_of(&map));
        // Walking a committed tree returns the map.
        let blocks: HashMap<Cid, Vec<u8>> = tree.commit().unwrap().into_new_blocks().into_iter().collect();
        let walked = walk_all(&blocks, root);
        let expected: Vec<(Vec<u8>, Cid)> =
            map.iter().map(|(k, v)| (k.as_bytes().to_vec(), leaf(*v))).collect();
        prop_assert_eq!(walked, expected);
    }

    #[test]
    fn apply_then_invert_with_the_diff_only(
        map in pairs_strategy(),
        changes in proptest::collection::vec((key_strategy(), proptest::option::of(0..1000u64)), 1..8),
    ) {
        let mut before = Mst::from_entries(map.iter().map(|(k, v)| (k.as_bytes(), leaf(*v)))).unwrap();
        let base = before.commit().unwrap();
        let all: HashMap<Cid, Vec<u8>> = base.new_blocks().iter().cloned().collect();
        // Turn the changes into valid ops against the current state (one op per key).
        let mut state = map.clone();
        let mut ops_owned: Vec<(String, Action)> = Vec::new();
        for (key, value) in changes {
            if ops_owned.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let action = match (state.get(&key).copied(), value) {
                (None, Some(v)) => Action::Create { cid: leaf(v) },
                (Some(old), Some(v)) if old != v => Action::Update { cid: leaf(v), prev: leaf(old) },
                (Some(old), _) => Action::Delete { prev: leaf(old) },
                (None, None) => continue,
            };
            match value {
                Some(v) if !matches!(action, Action::Delete { .. }) => state.insert(key.clone(), v),
                _ => state.remove(&key),
            };
            ops_owned.push((key, action));
        }
        let ops: Vec<Op<'_>> = ops_owned.iter().map(|(k, a)| Op { key: k.as_bytes(), action: *a }).collect();
        let mut after = Mst::from_root(base.root());
        after.apply(&all, &ops).unwrap();
        let diff = after.commit().unwrap();
        prop_assert_eq!(diff.root(), root_of(&state));
        // Inverting with only the new blocks gives back the old root.
        let new_only: HashMap<Cid, Vec<u8>> = diff.new_blocks().iter().cloned().collect();
        let mut everything = all.clone();
        everything.extend(new_only.clone());
        prop_assert_eq!(mst::invert_ops(&everything, diff.root(), &ops), Ok(base.root()));
        // The blocks the inversion reads are enough, and each of them is needed.
        let proof = mst::inversion_proof(&everything, diff.root(), &ops).unwrap();
        let proof_only: HashMap<Cid, Vec<u8>> =
            proof.iter().map(|c| (*c, everything[c].clone())).collect();
        prop_assert_eq!(mst::invert_ops(&proof_only, diff.root(), &ops), Ok(base.root()));
        for missing in &proof {
            let mut partial = proof_only.clone();
            partial.remove(missing);
            prop_assert_eq!(
                mst::invert_ops(&partial, diff.root(), &ops),
                Err(MstError::MissingBlock(*missing))
            );
        }
        match mst::invert_ops(&new_only, diff.root(), &ops) {
            Ok(root) => prop_assert_eq!(root, base.root()),
            Err(MstError::MissingBlock(_)) => {}
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
    }

    #[test]
    fn random_edits_agree_with_rebuilding(
        map in pairs_strategy(),
        edits in proptest::collection::vec((key_strategy(), proptest::option::of(0..1000u64)), 0..60),
    ) {
        let mut tree = Mst::from_entries(map.iter().map(|(k, v)| (k.as_bytes(), leaf(*v)))).unwrap();
        let base = tree.commit().unwrap();
        let mut blocks: HashMap<Cid, Vec<u8>> = base.new_blocks().iter().cloned().collect();
        let mut tree = Mst::from_root(base.root());
        let mut state = map;
        for (i, (key, value)) in edits.into_iter().enumerate() {
            match value {
                Some(v) => {
                    let previous = tree.insert(&blocks, key.as_bytes(), leaf(v)).unwrap();
                    prop_assert_eq!(previous, state.insert(key, v).map(leaf));
                }
                None => {
                    let previous = tree.remove(&blocks, key.as_bytes()).unwrap();
                    prop_assert_eq!(previous, state.remove(&key).map(leaf));
                }
            }
            if i % 7 == 0 {
                // Commit now and then, reloading from the blocks so far.
                let diff = tree.commit().unwrap();
                blocks.extend(diff.new_blocks().iter().cloned());
                tree = Mst::from_root(diff.root());
            }
        }
        prop_assert_eq!(tree.root().unwrap(), root_of(&state));
    }
}

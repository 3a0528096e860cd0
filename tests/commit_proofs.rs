//! atproto-interop firehose/commit-proof-fixtures.json: Sync 1.1 commit proofs. Build the
//! tree before the commit, apply the commit's adds and dels, check the new blocks cover the
//! proof, then invert the ops on the proof blocks alone and get the tree before back.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use relay::frame::cid::Cid;
use relay::verify::mst::{self, Action, Mst, MstError, Op};
use std::collections::{BTreeSet, HashMap};

fn cid(text: &str) -> Cid {
    Cid::parse_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn commit_proof_fixtures() {
    let cases = common::fixture_json("atproto-interop/firehose/commit-proof-fixtures.json");
    let cases = cases.as_array().unwrap();
    for case in cases {
        let name = case["comment"].as_str().unwrap();
        let value = cid(case["leafValue"].as_str().unwrap());
        let keys = strings(&case["keys"]);
        let adds = strings(&case["adds"]);
        let dels = strings(&case["dels"]);
        let root_before = cid(case["rootBeforeCommit"].as_str().unwrap());
        let root_after = cid(case["rootAfterCommit"].as_str().unwrap());
        let in_proof: BTreeSet<Cid> = strings(&case["blocksInProof"])
            .iter()
            .map(|c| cid(c))
            .collect();

        // The tree before the commit.
        let mut tree = Mst::from_entries(keys.iter().map(|k| (k.as_bytes(), value))).unwrap();
        let before = tree.commit().unwrap();
        assert_eq!(before.root(), root_before, "{name}: root before");
        let before_blocks: HashMap<Cid, Vec<u8>> = before.new_blocks().iter().cloned().collect();

        // The commit: adds then dels, as the fixture lists them.
        let ops: Vec<Op<'_>> = adds
            .iter()
            .map(|k| Op {
                key: k.as_bytes(),
                action: Action::Create { cid: value },
            })
            .chain(dels.iter().map(|k| Op {
                key: k.as_bytes(),
                action: Action::Delete { prev: value },
            }))
            .collect();
        let mut after = Mst::from_root(root_before);
        after.apply(&before_blocks, &ops).unwrap();
        let diff = after.commit().unwrap();
        assert_eq!(diff.root(), root_after, "{name}: root after");
        let new_blocks: HashMap<Cid, Vec<u8>> = diff.new_blocks().iter().cloned().collect();
        let mut after_blocks = before_blocks.clone();
        after_blocks.extend(new_blocks.clone());
        // What a PDS sends: the new blocks, the rewritten path nodes and the nodes the
        // inversion reads (neighbours of deleted keys that the forward edit never touched).
        let read: BTreeSet<Cid> = mst::inversion_proof(&after_blocks, root_after, &ops)
            .unwrap()
            .into_iter()
            .collect();
        for needed in &in_proof {
            assert!(
                new_blocks.contains_key(needed)
                    || diff.rewritten().contains(needed)
                    || read.contains(needed),
                "{name}: {needed} not among the new, rewritten or proof blocks"
            );
        }

        // Inversion on the proof blocks alone.
        let proof: HashMap<Cid, Vec<u8>> = in_proof
            .iter()
            .map(|c| (*c, after_blocks[c].clone()))
            .collect();
        assert_eq!(
            mst::invert_ops(&proof, root_after, &ops),
            Ok(root_before),
            "{name}: inverse"
        );
        // The blocks the inversion reads are all in the proof; without one of them it
        // reports that very block, without any other it still succeeds.
        assert!(read.is_subset(&in_proof), "{name}: reads {read:?}");
        for missing in &in_proof {
            let mut partial = proof.clone();
            partial.remove(missing);
            let expected = if read.contains(missing) {
                Err(MstError::MissingBlock(*missing))
            } else {
                Ok(root_before)
            };
            assert_eq!(
                mst::invert_ops(&partial, root_after, &ops),
                expected,
                "{name}: without {missing}"
            );
        }

        // Leaving out one op breaks the inversion (a different root or a mismatch).
        for skip in 0..ops.len() {
            let fewer: Vec<Op<'_>> = ops
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, op)| *op)
                .collect();
            match mst::invert_ops(&after_blocks, root_after, &fewer) {
                Ok(root) => assert_ne!(root, root_before, "{name}: without op {skip}"),
                Err(e) => assert!(
                    matches!(e, MstError::MissingBlock(_) | MstError::OpMismatch { .. }),
                    "{name}: {e}"
                ),
            }
        }
    }
    assert_eq!(cases.len(), 6);
    common::report(
        "atproto-interop firehose/commit-proof-fixtures.json",
        cases.len(),
    );
}

//! The simulator's accounts emit frames that pass every relay check when honest and fail
//! the matching check when hostile.

mod common;

use relay::frame::car::Blocks;
use relay::frame::cid::Cid;
use relay::frame::event::{CommitEvent, Event, Frame, OpAction};
use relay::identity::key::Curve;
use relay::sim::{Hostile, SimAccount, SimOp};
use relay::syntax::Tid;
use relay::verify::commit::verify_commit_signature;
use relay::verify::mst::{Action, MstError, Op, invert_ops};
use relay::verify::signature::{ParsedKey, VerifierSet};

const BLOCKS_MAX: usize = 10_000;
const T0: u64 = 1_700_000_000_000_000;
const TEN_MINUTES_MICROS: u64 = 10 * 60 * 1_000_000;

/// Mixed operations for commit `i`: creates dominate early, updates and deletes follow.
fn ops_for(i: usize) -> Vec<SimOp> {
    let mut ops = vec![SimOp::Create {
        size_bytes: 100 + 37 * i,
    }];
    if i % 2 == 1 {
        ops.push(SimOp::Update {
            pick: i * 7,
            size_bytes: 300,
        });
    }
    if i % 3 == 2 {
        ops.push(SimOp::Delete { pick: i * 3 });
    }
    if i.is_multiple_of(5) {
        ops.push(SimOp::Create { size_bytes: 2_000 });
        ops.push(SimOp::Create { size_bytes: 50 });
    }
    ops
}

fn commit_event<'a>(frame: &Frame<'a>) -> CommitEvent<'a> {
    match frame.event() {
        Event::Commit(commit) => *commit,
        other => panic!("not a commit: {other:?}"),
    }
}

fn mst_ops(commit: &CommitEvent<'_>) -> Vec<(String, Action)> {
    commit
        .ops()
        .map(|op| {
            let action = match op.action {
                OpAction::Create => Action::Create {
                    cid: op.cid.unwrap(),
                },
                OpAction::Update => Action::Update {
                    cid: op.cid.unwrap(),
                    prev: op.prev.unwrap(),
                },
                OpAction::Delete => Action::Delete {
                    prev: op.prev.unwrap(),
                },
            };
            (op.path.to_owned(), action)
        })
        .collect()
}

/// Invert the frame's ops on its own CAR slice.
fn invert(commit: &CommitEvent<'_>, blocks: &Blocks<'_>, data: Cid) -> Result<Cid, MstError> {
    let owned = mst_ops(commit);
    let ops: Vec<Op<'_>> = owned
        .iter()
        .map(|(path, action)| Op {
            key: path.as_bytes(),
            action: *action,
        })
        .collect();
    invert_ops(blocks, data, &ops)
}

/// Every honest check, returning the commit's data CID.
fn check_honest(
    frame_bytes: &[u8],
    key: &ParsedKey,
    since: Option<&str>,
    prev_data: Option<Cid>,
) -> Cid {
    let frame = Frame::decode(frame_bytes).unwrap();
    let commit = commit_event(&frame);
    assert_eq!(commit.since(), since);
    assert_eq!(commit.prev_data(), prev_data);
    assert!(!commit.rebase() && !commit.too_big());
    assert_eq!(commit.blobs().count(), 0);
    if let Some(since) = since {
        assert!(Tid::parse(commit.rev()).unwrap() > Tid::parse(since).unwrap());
    }
    let mut blocks = Blocks::new();
    assert_eq!(
        blocks.load(commit.blocks(), BLOCKS_MAX).unwrap(),
        commit.commit()
    );
    let block = blocks.get(&commit.commit()).unwrap();
    let mut scratch = Vec::new();
    let signed = verify_commit_signature(block, key, &mut scratch).unwrap();
    assert_eq!(signed.did(), commit.repo());
    assert_eq!(signed.rev(), Some(commit.rev()));
    assert_eq!(signed.prev(), None);
    let data = signed.data();
    for op in commit.ops() {
        if let Some(cid) = op.cid {
            assert!(blocks.get(&cid).is_some(), "record block of {}", op.path);
        }
    }
    if let Some(prev_data) = prev_data {
        assert_eq!(invert(&commit, &blocks, data).unwrap(), prev_data);
    }
    data
}

fn run_account(seed: u64, curve: Curve) -> usize {
    let mut account = SimAccount::new(seed, curve, "pds.example.test").unwrap();
    let key = ParsedKey::new(&account.public_key(), &VerifierSet::REFERENCE).unwrap();
    assert_eq!(account.public_key().curve(), curve);
    let mut since: Option<String> = None;
    let mut prev_data = None;
    let mut deletes = 0;
    let mut updates = 0;
    for i in 0..20 {
        // Several commits share a timestamp: revs must still strictly increase.
        let now = T0 + (i as u64 / 3) * 1_000;
        let frame = account.commit(&ops_for(i), now, i as u64 + 1).unwrap();
        let data = check_honest(&frame, &key, since.as_deref(), prev_data);
        let decoded = Frame::decode(&frame).unwrap();
        let commit = commit_event(&decoded);
        assert_eq!(decoded.seq(), Some(i as u64 + 1));
        assert!(commit.time().ends_with('Z') && commit.time().len() == 27);
        deletes += commit
            .ops()
            .filter(|op| op.action == OpAction::Delete)
            .count();
        updates += commit
            .ops()
            .filter(|op| op.action == OpAction::Update)
            .count();
        since = Some(commit.rev().to_owned());
        prev_data = Some(data);
        assert_eq!(account.last_data(), Some(data));
        assert_eq!(account.last_commit(), Some(commit.commit()));
    }
    assert!(
        deletes >= 5 && updates >= 5,
        "{deletes} deletes, {updates} updates"
    );
    20
}

#[test]
fn p256_account_commits_pass_every_check() {
    common::report("sim p256 honest commits", run_account(1, Curve::P256));
}

#[test]
fn secp256k1_account_commits_pass_every_check() {
    common::report(
        "sim secp256k1 honest commits",
        run_account(2, Curve::Secp256k1),
    );
}

#[test]
fn accounts_are_deterministic() {
    let mut a = SimAccount::new(9, Curve::P256, "h").unwrap();
    let mut b = SimAccount::new(9, Curve::P256, "h").unwrap();
    assert_eq!(a.did(), b.did());
    for i in 0..5 {
        let ops = ops_for(i);
        assert_eq!(
            a.commit(&ops, T0 + i as u64, 1).unwrap(),
            b.commit(&ops, T0 + i as u64, 1).unwrap()
        );
    }
    let other = SimAccount::new(10, Curve::P256, "h").unwrap();
    assert_ne!(a.did(), other.did());
}

#[test]
fn sync_identity_and_account_frames_decode() {
    let mut account = SimAccount::new(3, Curve::Secp256k1, "h").unwrap();
    assert!(account.sync_frame(T0, 1).is_err());
    account.commit(&ops_for(0), T0, 1).unwrap();
    let sync = account.sync_frame(T0 + 1, 2).unwrap();
    let frame = Frame::decode(&sync).unwrap();
    let Event::Sync(event) = frame.event() else {
        panic!("not a sync")
    };
    assert_eq!(event.did(), account.did());
    assert_eq!(event.rev(), account.last_rev().unwrap().as_str());
    let mut blocks = Blocks::new();
    assert_eq!(
        blocks.load(event.blocks(), 1).unwrap(),
        account.last_commit().unwrap()
    );

    let identity = account.identity_frame(Some("alice.test"), T0, 3);
    let frame = Frame::decode(&identity).unwrap();
    let Event::Identity(event) = frame.event() else {
        panic!("not an identity")
    };
    assert_eq!(
        (event.did(), event.handle()),
        (account.did(), Some("alice.test"))
    );

    let status = account.account_frame(false, Some("takendown"), T0, 4);
    let frame = Frame::decode(&status).unwrap();
    let Event::Account(event) = frame.event() else {
        panic!("not an account")
    };
    assert_eq!((event.active(), event.status()), (false, Some("takendown")));
    common::report("sim sync/identity/account frames", 3);
}

/// What a relay's checks say about a hostile frame.
fn hostile_detected(
    kind: Hostile,
    bytes: &[u8],
    key: &ParsedKey,
    last_data: Cid,
    last_rev: &str,
    now: u64,
) {
    let frame = match Frame::decode(bytes) {
        Ok(frame) => frame,
        Err(e) => {
            assert!(
                matches!(kind, Hostile::MalformedCbor | Hostile::TooManyOps),
                "{kind:?} failed decoding: {e}"
            );
            return;
        }
    };
    assert!(
        !matches!(kind, Hostile::MalformedCbor | Hostile::TooManyOps),
        "{kind:?} decoded"
    );
    let commit = commit_event(&frame);
    let mut blocks = Blocks::new();
    let root = match blocks.load(commit.blocks(), BLOCKS_MAX) {
        Ok(root) => root,
        Err(e) => {
            assert_eq!(kind, Hostile::TruncatedCar, "{kind:?} failed CAR load: {e}");
            return;
        }
    };
    if root != commit.commit() {
        assert_eq!(kind, Hostile::CarRootNotCommit);
        return;
    }
    let block = blocks.get(&commit.commit()).unwrap();
    let mut scratch = Vec::new();
    let signed = match verify_commit_signature(block, key, &mut scratch) {
        Ok(signed) => signed,
        Err(e) => {
            assert_eq!(
                kind,
                Hostile::BadSignature,
                "{kind:?} failed signature: {e}"
            );
            return;
        }
    };
    let rev = Tid::parse(commit.rev()).unwrap();
    if rev <= Tid::parse(last_rev).unwrap() {
        assert_eq!(kind, Hostile::RevNotNewer);
        return;
    }
    if rev.timestamp_micros() > now + TEN_MINUTES_MICROS {
        assert_eq!(kind, Hostile::FutureRev);
        return;
    }
    match invert(&commit, &blocks, signed.data()) {
        Ok(prev) if Some(prev) == commit.prev_data() && prev == last_data => {
            panic!("{kind:?} passed every check")
        }
        Ok(prev) if Some(prev) != commit.prev_data() => {
            assert_eq!(kind, Hostile::WrongPrevData)
        }
        Ok(_) => panic!("{kind:?}: inversion agrees with prevData but not the chain"),
        Err(e) => assert_eq!(
            kind,
            Hostile::OpsDoNotInvert,
            "{kind:?} failed inversion: {e}"
        ),
    }
}

#[test]
fn every_hostile_kind_is_detected() {
    for curve in Curve::ALL {
        let mut account = SimAccount::new(4, curve, "evil.test").unwrap();
        let key = ParsedKey::new(&account.public_key(), &VerifierSet::REFERENCE).unwrap();
        for i in 0..6 {
            account
                .commit(&ops_for(i), T0 + i as u64, i as u64)
                .unwrap();
        }
        let now = T0 + 100;
        for kind in Hostile::ALL {
            let last_data = account.last_data().unwrap();
            let last_rev = account.last_rev().unwrap();
            let ops = [
                SimOp::Create { size_bytes: 200 },
                SimOp::Update {
                    pick: 1,
                    size_bytes: 200,
                },
                SimOp::Delete { pick: 2 },
            ];
            let bytes = account.hostile_commit(kind, &ops, now, 99).unwrap();
            hostile_detected(kind, &bytes, &key, last_data, last_rev.as_str(), now);
            // The honest chain is untouched.
            assert_eq!(account.last_data(), Some(last_data));
            assert_eq!(account.last_rev(), Some(last_rev));
        }
        // And continues: the next honest commit still passes.
        let (last_rev, last_data) = (account.last_rev().unwrap(), account.last_data());
        let frame = account.commit(&ops_for(7), now + 1, 100).unwrap();
        check_honest(&frame, &key, Some(last_rev.as_str()), last_data);
    }
    common::report("sim hostile kinds", Hostile::ALL.len() * Curve::ALL.len());
}

fn sim_op() -> impl proptest::strategy::Strategy<Value = SimOp> {
    use proptest::prelude::*;
    prop_oneof![
        (0usize..3_000).prop_map(|size_bytes| SimOp::Create { size_bytes }),
        (any::<usize>(), 0usize..3_000)
            .prop_map(|(pick, size_bytes)| SimOp::Update { pick, size_bytes }),
        any::<usize>().prop_map(|pick| SimOp::Delete { pick }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Any seed and any op sequence (including empty commits and deletes of everything)
    /// gives a chain that passes every check.
    #[test]
    fn any_op_sequence_gives_a_valid_chain(
        seed in proptest::prelude::any::<u64>(),
        secp in proptest::prelude::any::<bool>(),
        commits in proptest::collection::vec(proptest::collection::vec(sim_op(), 0..8), 1..10),
    ) {
        let curve = if secp { Curve::Secp256k1 } else { Curve::P256 };
        let mut account = SimAccount::new(seed, curve, "prop.test").unwrap();
        let key = ParsedKey::new(&account.public_key(), &VerifierSet::FASTEST).unwrap();
        for (i, ops) in commits.iter().enumerate() {
            let since = account.last_rev().map(|rev| rev.as_str().to_owned());
            let prev_data = account.last_data();
            let frame = account.commit(ops, T0 + i as u64 * 3, i as u64).unwrap();
            check_honest(&frame, &key, since.as_deref(), prev_data);
        }
    }
}

#[test]
fn emptying_the_repo_and_refilling_it_stays_valid() {
    let mut account = SimAccount::new(11, Curve::P256, "h").unwrap();
    let key = ParsedKey::new(&account.public_key(), &VerifierSet::REFERENCE).unwrap();
    let steps: [&[SimOp]; 4] = [
        &[
            SimOp::Create { size_bytes: 10 },
            SimOp::Create { size_bytes: 10 },
        ],
        &[SimOp::Delete { pick: 0 }, SimOp::Delete { pick: 0 }],
        &[],
        &[SimOp::Create { size_bytes: 10 }],
    ];
    for (i, ops) in steps.iter().enumerate() {
        let since = account.last_rev().map(|rev| rev.as_str().to_owned());
        let prev_data = account.last_data();
        let frame = account.commit(ops, T0, i as u64).unwrap();
        check_honest(&frame, &key, since.as_deref(), prev_data);
        if i == 1 {
            assert_eq!(account.record_count(), 0);
            assert_eq!(account.last_data(), Some(relay::verify::mst::empty_root()));
        }
    }
    common::report("sim empty repo round trip", steps.len());
}

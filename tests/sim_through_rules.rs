//! The simulator's accounts against the relay's own rule set: every honest commit passes
//! strictly with the chain intact (not desynchronized), and every hostile kind is refused
//! with its own reason while the honest chain goes on.

use relay::frame::cid::Cid;
use relay::frame::event::{Event, Frame};
use relay::identity::key::Curve;
use relay::sim::account::{Hostile, SimAccount, SimOp};
use relay::verify::rules::{AccountState, Policy, verify_commit_frame, verify_sync_frame};
use relay::verify::signature::{ParsedKey, VerifierSet};

const NOW: u64 = 1_763_800_000_000_000;

fn expected_reason(kind: Hostile) -> &'static str {
    match kind {
        Hostile::BadSignature => "bad_signature",
        Hostile::WrongPrevData | Hostile::OpsDoNotInvert => "mst_inversion",
        Hostile::RevNotNewer => "rev_not_newer",
        Hostile::FutureRev => "future_rev",
        Hostile::TooManyOps | Hostile::MalformedCbor => "decode",
        Hostile::CarRootNotCommit => "car_root_mismatch",
        Hostile::TruncatedCar => "bad_car",
        _ => "unknown hostile kind",
    }
}

#[test]
fn honest_commits_pass_and_each_hostile_kind_is_refused_with_its_reason() {
    let mut refused = 0;
    for (seed, curve) in [(1u64, Curve::Secp256k1), (2, Curve::P256)] {
        let mut account = SimAccount::new(seed, curve, "pds.test").unwrap();
        let key = ParsedKey::new(&account.public_key(), &VerifierSet::FASTEST).unwrap();
        let policy = Policy {
            now_micros: NOW + 12_000_000,
            strict: true,
        };
        let mut state: Option<AccountState> = None;
        let mut last_commit: Option<Cid> = None;
        let mut seq = 0;
        for round in 0..12u64 {
            seq += 1;
            let ops = [
                SimOp::Create { size_bytes: 300 },
                SimOp::Update {
                    pick: round as usize,
                    size_bytes: 200,
                },
                SimOp::Delete {
                    pick: 3 * round as usize,
                },
            ];
            let frame = account
                .commit(
                    &ops[..1 + (round as usize % 3)],
                    NOW + round * 1_000_000,
                    seq,
                )
                .unwrap();
            let verified = verify_commit_frame(frame.as_slice(), &key, state.as_ref(), &policy)
                .map_err(|(_, r)| r)
                .unwrap_or_else(|r| panic!("honest commit {round} refused: {r}"));
            assert!(!verified.desynchronized(), "honest chain is continuous");
            assert_eq!(verified.did(), account.did());
            assert_eq!(
                verified.commit_cid(),
                Some(commit_field(&frame)),
                "the commit CID to store is the frame's `commit`"
            );
            last_commit = verified.commit_cid();
            state = verified.next_state();
            if round >= 1 {
                let kind = Hostile::ALL[(round as usize - 1) % Hostile::ALL.len()];
                let bad = account
                    .hostile_commit(
                        kind,
                        &[SimOp::Create { size_bytes: 100 }],
                        NOW + round * 1_000_000,
                        seq,
                    )
                    .unwrap();
                let (_, rejection) =
                    verify_commit_frame(bad.as_slice(), &key, state.as_ref(), &policy)
                        .expect_err(&format!("{kind:?} passed"));
                assert_eq!(
                    rejection.reason(),
                    expected_reason(kind),
                    "{kind:?}: {rejection}"
                );
                refused += 1;
            }
        }
        // A #sync announcing the current commit: the commit CID to store is its CAR root,
        // the same commit as the last #commit's.
        seq += 1;
        let sync = account.sync_frame(NOW + 13_000_000, seq).unwrap();
        let verified = verify_sync_frame(sync.as_slice(), &key, state.as_ref(), &policy)
            .map_err(|(_, r)| r)
            .unwrap_or_else(|r| panic!("honest #sync refused: {r}"));
        assert!(last_commit.is_some());
        assert_eq!(verified.commit_cid(), last_commit);
        assert_eq!(verified.next_state(), state);
    }
    assert_eq!(refused, 22);
    println!("suite sim hostile commits through the rules: {refused} cases");
}

/// The `commit` field of a `#commit` frame.
fn commit_field(frame: &[u8]) -> Cid {
    match Frame::decode(frame).unwrap().event() {
        Event::Commit(event) => event.commit(),
        _ => panic!("not a #commit frame"),
    }
}

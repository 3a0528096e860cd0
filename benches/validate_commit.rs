//! Validated `#commit` events per second on one core: the whole rule set
//! (`verify::rules::verify_commit_frame_with`: decode, CAR hash checks, signature with the
//! default fast backend, rev order, Sync 1.1 MST inversion) over real simulator commits
//! of a 300-record repo, with the per-core `VerifyScratch`. `Throughput::Elements(1)` =
//! one frame.
//!
//! Bound: the signature check alone (benches/signature.rs; docs/BENCHMARKS.md): about
//! 32 µs for secp256k1 (libsecp256k1) and 53 µs for P-256 (ring). Everything else the
//! rules do should add only a few µs to it.

#![allow(clippy::unwrap_used, reason = "a bench with a broken setup must stop")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relay::identity::key::Curve;
use relay::sim::account::{SimAccount, SimOp};
use relay::verify::rules::{AccountState, Policy, VerifyScratch, verify_commit_frame_with};
use relay::verify::signature::{ParsedKey, VerifierSet};
use std::hint::black_box;

const NOW: u64 = 1_763_800_000_000_000;
const REPO_RECORDS: u64 = 300;

/// A repo of `REPO_RECORDS` posts, then one more one-create commit: that frame and the
/// account state it follows.
fn commit_after_repo(curve: Curve) -> (Vec<u8>, AccountState, ParsedKey) {
    let mut account = SimAccount::new(11, curve, "pds.bench").unwrap();
    let key = ParsedKey::new(&account.public_key(), &VerifierSet::FASTEST).unwrap();
    let policy = Policy {
        now_micros: NOW + 10_000_000_000,
        strict: true,
    };
    let mut state = None;
    let mut scratch = VerifyScratch::new();
    for i in 0..REPO_RECORDS {
        let frame = account
            .commit(&[SimOp::Create { size_bytes: 300 }], NOW + i * 1_000, i + 1)
            .unwrap();
        let verified = verify_commit_frame_with(
            frame.as_slice(),
            &key,
            state.as_ref(),
            &policy,
            &mut scratch,
        )
        .map_err(|(_, r)| r)
        .unwrap();
        state = verified.next_state();
    }
    let frame = account
        .commit(
            &[SimOp::Create { size_bytes: 300 }],
            NOW + REPO_RECORDS * 1_000,
            REPO_RECORDS + 1,
        )
        .unwrap();
    (frame, state.unwrap(), key)
}

fn validate(c: &mut Criterion) {
    let policy = Policy {
        now_micros: NOW + 10_000_000_000,
        strict: true,
    };
    let mut group = c.benchmark_group("validate_commit");
    group.throughput(Throughput::Elements(1));
    for curve in [Curve::Secp256k1, Curve::P256] {
        let (frame, prior, key) = commit_after_repo(curve);
        let mut scratch = VerifyScratch::new();
        group.bench_function(curve.name(), |b| {
            b.iter(|| {
                verify_commit_frame_with(
                    black_box(frame.as_slice()),
                    &key,
                    Some(&prior),
                    &policy,
                    &mut scratch,
                )
                .map_err(|(_, r)| r)
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);

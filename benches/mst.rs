//! Sync 1.1 inversion on the ingest path: undo a typical 1–3 op commit on a 10,000-record
//! repo (`app.bsky.feed.post/<tid>` keys), reading only the blocks of the commit's CAR
//! slice (new nodes + inversion proof), loaded into the same `car::Blocks` index the
//! relay uses. Throughput is in commits.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relay::frame::car::{Blocks, write_car};
use relay::frame::cbor::OwnedValue;
use relay::frame::cid::Cid;
use relay::verify::mst::{self, Action, Mst, Op};
use std::collections::HashMap;
use std::hint::black_box;

const REPO_RECORDS: usize = 10_000;
const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A TID: 53-bit microsecond timestamp and 10-bit clock id, base32-sortable.
fn tid(micros: u64, clock: u64) -> String {
    let value = (micros << 10) | (clock & 0x3ff);
    (0..13)
        .rev()
        .map(|i| TID_ALPHABET[((value >> (i * 5)) & 0x1f) as usize] as char)
        .collect()
}

fn record_cid(n: u64) -> Cid {
    Cid::for_dag_cbor(&OwnedValue::map([("n", OwnedValue::Unsigned(n))]).to_bytes())
}

fn car(root: Cid, blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    write_car(
        &root,
        blocks.iter().map(|(cid, data)| (cid, data.as_slice())),
        &mut out,
    );
    out
}

struct Commit {
    ops: Vec<(String, Action)>,
    root_before: Cid,
    root_after: Cid,
    car: Vec<u8>,
}

/// The repo, then a commit of `n_ops` ops: new posts (the newest TIDs), a deleted old
/// post, an edited post.
fn commit(n_ops: usize) -> Commit {
    let start: u64 = 1_700_000_000_000_000;
    let keys: Vec<String> = (0..REPO_RECORDS as u64)
        .map(|i| {
            format!(
                "app.bsky.feed.post/{}",
                tid(start + i * 3_700_001 % 86_400_000_000 + i * 1_000_000, i)
            )
        })
        .collect();
    let mut tree = Mst::from_entries(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.as_bytes(), record_cid(i as u64))),
    )
    .unwrap();
    let before = tree.commit().unwrap();
    let all: HashMap<Cid, Vec<u8>> = before.new_blocks().iter().cloned().collect();
    let now = start + REPO_RECORDS as u64 * 2_000_000;
    let candidates = [
        (
            format!("app.bsky.feed.post/{}", tid(now, 7)),
            Action::Create {
                cid: record_cid(1 << 40),
            },
        ),
        (
            keys[1234].clone(),
            Action::Delete {
                prev: record_cid(1234),
            },
        ),
        (
            keys[7777].clone(),
            Action::Update {
                cid: record_cid(1 << 41),
                prev: record_cid(7777),
            },
        ),
    ];
    let ops: Vec<(String, Action)> = candidates.into_iter().take(n_ops).collect();
    let op_views: Vec<Op<'_>> = ops
        .iter()
        .map(|(k, a)| Op {
            key: k.as_bytes(),
            action: *a,
        })
        .collect();
    let mut after = Mst::from_root(before.root());
    after.apply(&all, &op_views).unwrap();
    let diff = after.commit().unwrap();
    let mut after_blocks = all.clone();
    after_blocks.extend(diff.new_blocks().iter().cloned());
    // The CAR slice: new nodes plus whatever else the inversion reads.
    let mut slice: HashMap<Cid, Vec<u8>> = diff.new_blocks().iter().cloned().collect();
    for cid in mst::inversion_proof(&after_blocks, diff.root(), &op_views).unwrap() {
        slice.insert(cid, after_blocks[&cid].clone());
    }
    let mut slice: Vec<(Cid, Vec<u8>)> = slice.into_iter().collect();
    slice.sort();
    eprintln!(
        "{n_ops}-op commit: {} blocks in the slice, {} bytes",
        slice.len(),
        slice.iter().map(|(_, b)| b.len()).sum::<usize>()
    );
    Commit {
        car: car(diff.root(), &slice),
        ops,
        root_before: before.root(),
        root_after: diff.root(),
    }
}

fn bench_inversion(c: &mut Criterion) {
    let mut group = c.benchmark_group("mst_invert");
    group.throughput(Throughput::Elements(1));
    for n_ops in 1..=3 {
        let commit = commit(n_ops);
        let ops: Vec<Op<'_>> = commit
            .ops
            .iter()
            .map(|(k, a)| Op {
                key: k.as_bytes(),
                action: *a,
            })
            .collect();
        let mut blocks = Blocks::new();
        assert_eq!(blocks.load(&commit.car, 1000).unwrap(), commit.root_after);
        assert_eq!(
            mst::invert_ops(&blocks, commit.root_after, &ops),
            Ok(commit.root_before)
        );

        group.bench_function(format!("{n_ops}_op_fresh"), |b| {
            b.iter(|| mst::invert_ops(black_box(&blocks), commit.root_after, black_box(&ops)))
        });
        let mut tree = Mst::new();
        group.bench_function(format!("{n_ops}_op_reused"), |b| {
            b.iter(|| {
                tree.reset(commit.root_after);
                tree.invert(black_box(&blocks), black_box(&ops)).unwrap();
                tree.root()
            })
        });
        group.bench_function(format!("{n_ops}_op_with_car_load"), |b| {
            let mut index = Blocks::new();
            b.iter(|| {
                let root = index.load(black_box(&commit.car), 1000).unwrap();
                tree.reset(root);
                tree.invert(&index, black_box(&ops)).unwrap();
                tree.root()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_inversion);
criterion_main!(benches);

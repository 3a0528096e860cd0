//! Firehose frame decoding: a ~1 KiB `#commit` (one op, a commit + MST node + record CAR)
//! and a ~1 MiB `#commit` (256 blocks of 4 KiB), each measured two ways:
//! `frame_only` (strict DAG-CBOR + field checks, no hashing) and `with_blocks`
//! (the same plus `Blocks::load` of the CAR, which SHA-256-checks every block).
//!
//! Run: `cargo bench --bench frame_decode -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relay::frame::car::{Blocks, write_car};
use relay::frame::cbor::OwnedValue;
use relay::frame::cid::Cid;
use relay::frame::commit::UnsignedCommit;
use relay::frame::event::{CommitEventOwned, Event, Frame, OpAction, RepoOpOwned};
use std::hint::black_box;

/// A CARv1 with `root` first in the header and `blocks` as sections.
fn car(root: &Cid, blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    write_car(
        root,
        blocks.iter().map(|(cid, data)| (cid, data.as_slice())),
        &mut out,
    );
    out
}

fn record(text_len: usize, seed: usize) -> Vec<u8> {
    OwnedValue::map([
        ("$type", OwnedValue::text("app.bsky.feed.post")),
        ("text", OwnedValue::text("x".repeat(text_len))),
        (
            "createdAt",
            OwnedValue::text(format!("2025-04-16T21:30:{:02}.717Z", seed % 60)),
        ),
        ("langs", OwnedValue::Array(vec![OwnedValue::text("en")])),
    ])
    .to_bytes()
}

/// A commit frame whose CAR holds the signed commit, one MST node and `records` blocks.
fn commit_frame(records: usize, record_text_len: usize) -> Vec<u8> {
    let mut blocks: Vec<(Cid, Vec<u8>)> = (0..records)
        .map(|i| {
            let data = record(record_text_len, i);
            (Cid::for_dag_cbor(&data), data)
        })
        .collect();
    let first = blocks[0].0;
    let mst = OwnedValue::map([
        (
            "e",
            OwnedValue::Array(vec![OwnedValue::map([
                (
                    "k",
                    OwnedValue::Bytes(b"app.bsky.feed.post/3lmxjzlexp22k".to_vec()),
                ),
                ("p", OwnedValue::Unsigned(0)),
                ("t", OwnedValue::Null),
                ("v", OwnedValue::Link(first.to_bytes().to_vec())),
            ])]),
        ),
        ("l", OwnedValue::Null),
    ])
    .to_bytes();
    let mst_cid = Cid::for_dag_cbor(&mst);
    let mut commit_block = Vec::new();
    UnsignedCommit {
        did: "did:plc:44ybard66vv44zksje25o7dz",
        data: mst_cid,
        rev: "3lmxjzlrcpk24",
        prev: None,
    }
    .encode_signed(&[0x5a; 64], &mut commit_block);
    let commit_cid = Cid::for_dag_cbor(&commit_block);
    blocks.insert(0, (mst_cid, mst));
    blocks.insert(0, (commit_cid, commit_block));
    let event = CommitEventOwned {
        seq: 35_949_840,
        rebase: false,
        too_big: false,
        repo: "did:plc:44ybard66vv44zksje25o7dz".into(),
        commit: commit_cid,
        rev: "3lmxjzlrcpk24".into(),
        since: Some("3lmxjzbfkb522".into()),
        blocks: car(&commit_cid, &blocks),
        ops: vec![RepoOpOwned {
            action: OpAction::Create,
            path: "app.bsky.feed.post/3lmxjzlexp22k".into(),
            cid: Some(first),
            prev: None,
        }],
        blobs: Vec::new(),
        prev_data: Some(Cid::for_dag_cbor(b"previous mst root")),
        time: "2025-04-16T21:30:38.972Z".into(),
    };
    let mut out = Vec::new();
    event.encode_frame(&mut out);
    out
}

fn decode_with_blocks<'a>(frame: &'a [u8], blocks: &mut Blocks<'a>) -> usize {
    let frame = Frame::decode(frame).expect("valid frame");
    let Event::Commit(commit) = frame.into_event() else {
        panic!("not a commit")
    };
    let root = blocks.load(commit.blocks(), usize::MAX).expect("valid CAR");
    assert_eq!(root, commit.commit());
    blocks.len() + commit.ops().len()
}

fn bench_frames(c: &mut Criterion) {
    for (name, frame, by_bytes) in [
        ("commit_1KiB_1op", commit_frame(1, 120), false),
        ("commit_1MiB_256x4KiB", commit_frame(256, 4000), true),
    ] {
        let mut group = c.benchmark_group(format!("frame_decode/{name}"));
        group.throughput(if by_bytes {
            Throughput::Bytes(frame.len() as u64)
        } else {
            Throughput::Elements(1)
        });
        eprintln!("{name}: {} bytes", frame.len());
        group.bench_function("frame_only", |b| {
            b.iter(|| Frame::decode(black_box(&frame)).map(|f| f.seq()))
        });
        group.bench_function("with_blocks_hash_checked", |b| {
            // One index reused across iterations, as a relay worker does: the steady
            // state (no allocation) is what is timed.
            let frame: &[u8] = &frame;
            let mut blocks = Blocks::new();
            b.iter(|| decode_with_blocks(black_box(frame), &mut blocks))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_frames);
criterion_main!(benches);

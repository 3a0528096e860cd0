//! Signature verification per backend, key parsed once, and the cost of parsing a key.
//!
//! Input: a 256-byte message (an unsigned commit is a little smaller) signed once with
//! a seed-derived key; `Throughput::Elements(1)` = one verification (or one parse).
//!
//! Expectation, from docs/build-notes.md (single core of this machine, release):
//! k256 ~73 µs/verify (13.6k/s), libsecp256k1 ~35 µs (28.7k/s), p256 ~333 µs (3k/s),
//! ring ~60 µs (16.7k/s) including its own SHA-256 of the message; SHA-256 of 256 bytes
//! adds well under 1 µs. Parsing a compressed secp256k1 key with k256 costs ~7.6 µs
//! (decompression is a square root), which is why `ParsedKey` is built once per DID.
//! The fastest backend per curve is the default `VerifierSet`.

#![allow(clippy::unwrap_used, reason = "a bench with a broken setup must stop")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use relay::identity::key::{Curve, PublicKey};
use relay::verify::signature::{Backend, ParsedKey, SigningKey};

const MESSAGE_BYTES: usize = 256;

fn signer_for(curve: Curve) -> SigningKey {
    SigningKey::generate_from_seed(curve, [42; 32]).unwrap()
}

fn verify(c: &mut Criterion) {
    let message: Vec<u8> = (0..MESSAGE_BYTES).map(|i| (i % 251) as u8).collect();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    for backend in Backend::ALL {
        let signer = signer_for(backend.curve());
        let signature = signer.sign(&message);
        let key = ParsedKey::with_backend(&signer.public_key(), backend).unwrap();
        key.verify(&message, &signature).unwrap();
        group.bench_function(backend.name(), |b| {
            b.iter(|| key.verify(black_box(&message), black_box(&signature)))
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_compressed_key");
    group.throughput(Throughput::Elements(1));
    for curve in Curve::ALL {
        let public_key = signer_for(curve).public_key();
        let compressed = *public_key.compressed_bytes();
        group.bench_function(format!("public_key/{}", curve.name()), |b| {
            b.iter(|| PublicKey::from_sec1_bytes(curve, black_box(&compressed)))
        });
        let did_key = public_key.to_did_key();
        group.bench_function(format!("did_key/{}", curve.name()), |b| {
            b.iter(|| PublicKey::from_did_key(black_box(&did_key)))
        });
        for backend in Backend::for_curve(curve) {
            group.bench_function(format!("parsed_key/{}", backend.name()), |b| {
                b.iter(|| ParsedKey::with_backend(black_box(&public_key), backend))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, verify, parse);
criterion_main!(benches);

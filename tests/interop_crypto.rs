//! Keys and signatures against external vectors, read in place:
//! atproto-interop `crypto/` (signatures through every backend, private key → did:key),
//! and indigo's DID documents (the `#atproto` key in Multikey and legacy forms).
//! Property tests: sign/verify round trips on every backend, bit flips and high-S
//! variants rejected.

// A test fails by panicking: unwrap and panic are the assertions here (the crate denies
// them for src/; this inner attribute also covers the shared `common` helpers).
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use proptest::prelude::*;
use serde_json::Value;

use relay::identity::key::{Curve, KeyError, LegacyKeyType, PublicKey};
use relay::identity::multibase::decode_base58btc;
use relay::verify::signature::{Backend, ParsedKey, SignatureError, SigningKey, VerifierSet};

const SIGNATURE_FIXTURES: &str = "atproto-interop/crypto/signature-fixtures.json";
const W3C_K256: &str = "atproto-interop/crypto/w3c_didkey_K256.json";
const W3C_P256: &str = "atproto-interop/crypto/w3c_didkey_P256.json";

/// Group orders, written out independently of the library (SEC 2 § 2.4.1, FIPS 186-4
/// § D.1.2.3), to build high-S variants s → n − s.
const SECP256K1_ORDER_HEX: &str =
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
const P256_ORDER_HEX: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn text<'a>(case: &'a Value, field: &str) -> &'a str {
    case[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field} missing in {case}"))
}

fn base64(case: &Value, field: &str) -> Vec<u8> {
    STANDARD_NO_PAD.decode(text(case, field)).unwrap()
}

fn curve_of_algorithm(algorithm: &str) -> Curve {
    match algorithm {
        "ES256" => Curve::P256,
        "ES256K" => Curve::Secp256k1,
        other => panic!("unknown algorithm {other}"),
    }
}

/// The error the fixture's tags call for, or `None` for a valid signature.
fn expected_error(case: &Value, signature: &[u8]) -> Option<SignatureError> {
    let valid = case["validSignature"].as_bool().unwrap();
    let tags: Vec<&str> = case["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    match (valid, tags.as_slice()) {
        (true, []) => None,
        (false, ["high-s"]) => Some(SignatureError::HighS),
        (false, ["der-encoded"]) => Some(SignatureError::NotCompact {
            len: signature.len(),
        }),
        other => panic!("fixture case not understood: {other:?}"),
    }
}

/// Both key forms of a fixture case: the did:key and the legacy compressed multibase.
fn fixture_keys(case: &Value, curve: Curve) -> [PublicKey; 2] {
    let from_did_key = PublicKey::from_did_key(text(case, "publicKeyDid")).unwrap();
    let suite = text(case, "didDocSuite");
    let kind = LegacyKeyType::from_type_name(suite).unwrap();
    let legacy = text(case, "publicKeyMultibase");
    let from_legacy = PublicKey::from_legacy_multibase(kind, legacy).unwrap();
    assert_eq!(
        PublicKey::from_verification_method(suite, legacy),
        Ok(from_legacy)
    );
    assert_eq!(kind.curve(), curve);
    assert_eq!(from_did_key.curve(), curve);
    assert_eq!(from_did_key, from_legacy, "both forms name one key");
    assert_eq!(from_did_key.to_did_key(), text(case, "publicKeyDid"));
    [from_did_key, from_legacy]
}

fn check_signature_case(case: &Value) -> usize {
    let curve = curve_of_algorithm(text(case, "algorithm"));
    assert_eq!(curve.jwt_algorithm(), text(case, "algorithm"));
    let message = base64(case, "messageBase64");
    let signature = base64(case, "signatureBase64");
    let expected = expected_error(case, &signature);
    let digest: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(&message).into()
    };
    let mut checks = 0;
    for key in fixture_keys(case, curve) {
        for backend in Backend::for_curve(curve) {
            let parsed = ParsedKey::with_backend(&key, backend).unwrap();
            let label = format!("{} via {}", text(case, "comment"), backend.name());
            let result = parsed.verify(&message, &signature);
            assert_eq!(result, expected.map_or(Ok(()), Err), "{label}");
            let prehashed = parsed.verify_prehashed(&digest, &signature);
            let prehashed_expected = match (backend, expected) {
                // The form checks run first, so ring reports the form error it shares.
                (Backend::Ring, None) => Err(SignatureError::PrehashUnsupported { backend }),
                (_, None) => Ok(()),
                (_, Some(error)) => Err(error),
            };
            assert_eq!(prehashed, prehashed_expected, "{label} (prehashed)");
            if expected.is_none() {
                let mut tampered = message.clone();
                tampered[0] ^= 1;
                assert_eq!(
                    parsed.verify(&tampered, &signature),
                    Err(SignatureError::Mismatch)
                );
            }
            checks += 1;
        }
        let chosen = ParsedKey::new(&key, &VerifierSet::default()).unwrap();
        assert_eq!(
            chosen.verify(&message, &signature),
            expected.map_or(Ok(()), Err)
        );
    }
    checks
}

#[test]
fn signature_fixtures_through_every_backend() {
    let fixtures = common::fixture_json(SIGNATURE_FIXTURES);
    let cases = fixtures.as_array().unwrap();
    let mut checks = 0;
    let mut seen = [0usize; 3];
    for case in cases {
        checks += check_signature_case(case);
        let signature = base64(case, "signatureBase64");
        match expected_error(case, &signature) {
            None => seen[0] += 1,
            Some(SignatureError::HighS) => seen[1] += 1,
            Some(_) => seen[2] += 1,
        }
    }
    assert_eq!(cases.len(), 6);
    assert_eq!(seen, [2, 2, 2], "valid, high-s, der-encoded");
    assert_eq!(checks, 6 * 2 * 2, "each case × 2 key forms × 2 backends");
    common::report(
        "atproto-interop crypto/signature-fixtures.json (2 key forms × 2 backends each)",
        cases.len(),
    );
}

fn check_derivation(signer: &SigningKey, public_did_key: &str) {
    let public_key = signer.public_key();
    assert_eq!(public_key.to_did_key(), public_did_key);
    let parsed = PublicKey::from_did_key(public_did_key).unwrap();
    assert_eq!(parsed, public_key);
    assert_eq!(parsed.to_did_key(), public_did_key);
    // The derived key verifies what the private key signs, on every backend.
    let signature = signer.sign(public_did_key.as_bytes());
    for backend in Backend::for_curve(parsed.curve()) {
        let key = ParsedKey::with_backend(&parsed, backend).unwrap();
        assert_eq!(key.verify(public_did_key.as_bytes(), &signature), Ok(()));
    }
}

#[test]
fn w3c_did_key_k256_private_to_public() {
    let cases = common::fixture_json(W3C_K256);
    let cases = cases.as_array().unwrap();
    for case in cases {
        let secret: [u8; 32] = hex::decode(text(case, "privateKeyBytesHex"))
            .unwrap()
            .try_into()
            .unwrap();
        for backend in Backend::for_curve(Curve::Secp256k1) {
            let signer = SigningKey::from_secret_bytes(backend, secret).unwrap();
            assert_eq!(signer.curve(), Curve::Secp256k1);
            check_derivation(&signer, text(case, "publicDidKey"));
        }
    }
    assert_eq!(cases.len(), 5);
    common::report(
        "atproto-interop crypto/w3c_didkey_K256.json (k256 and libsecp256k1 signers)",
        cases.len(),
    );
}

#[test]
fn w3c_did_key_p256_private_to_public() {
    let cases = common::fixture_json(W3C_P256);
    let cases = cases.as_array().unwrap();
    for case in cases {
        let decoded = decode_base58btc(text(case, "privateKeyBytesBase58")).unwrap();
        let secret: [u8; 32] = decoded.as_slice().try_into().unwrap();
        let signer = SigningKey::from_secret_bytes(Backend::P256, secret).unwrap();
        assert_eq!(signer.curve(), Curve::P256);
        check_derivation(&signer, text(case, "publicDidKey"));
    }
    assert_eq!(cases.len(), 1);
    common::report("atproto-interop crypto/w3c_didkey_P256.json", cases.len());
}

fn atproto_key_of_document(rel: &str) -> Result<PublicKey, KeyError> {
    common::atproto_key_of_document(rel)
}

#[test]
fn indigo_did_documents() {
    let cases: [(&str, Option<Curve>); 7] = [
        (
            "indigo/atproto/identity/testdata/did_plc_doc.json",
            Some(Curve::Secp256k1),
        ),
        (
            "indigo/atproto/identity/testdata/did_plc_doc_legacy.json",
            Some(Curve::Secp256k1),
        ),
        ("indigo/atproto/identity/testdata/did_web_doc.json", None),
        (
            "indigo/testing/testdata/greenground.didDoc.json",
            Some(Curve::Secp256k1),
        ),
        (
            "indigo/testing/testdata/fakermaker.didDoc.json",
            Some(Curve::P256),
        ),
        (
            "indigo/testing/testdata/paul_staging.didDoc.json",
            Some(Curve::Secp256k1),
        ),
        (
            "indigo/testing/testdata/did_plc_z5vnbioquyhivxirw3bbljmu.didDoc.json",
            Some(Curve::Secp256k1),
        ),
    ];
    for (rel, curve) in cases {
        let result = atproto_key_of_document(rel);
        match curve {
            Some(curve) => {
                let key = result.unwrap_or_else(|e| panic!("{rel}: {e}"));
                assert_eq!(key.curve(), curve, "{rel}");
                assert_eq!(PublicKey::from_did_key(&key.to_did_key()), Ok(key), "{rel}");
                for backend in Backend::for_curve(curve) {
                    assert!(ParsedKey::with_backend(&key, backend).is_ok(), "{rel}");
                }
            }
            None => assert_eq!(result, Err(KeyError::AtprotoMethodAbsent), "{rel}"),
        }
    }
    let multikey = atproto_key_of_document(cases[0].0).unwrap();
    let legacy = atproto_key_of_document(cases[1].0).unwrap();
    assert_eq!(
        multikey, legacy,
        "Multikey and legacy uncompressed forms name one key"
    );
    assert_eq!(
        multikey.to_multikey(),
        "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF",
        "normalised form equals the document's Multikey"
    );
    common::report("indigo DID documents (#atproto key)", cases.len());
}

fn order(curve: Curve) -> [u8; 32] {
    let hex = match curve {
        Curve::P256 => P256_ORDER_HEX,
        Curve::Secp256k1 => SECP256K1_ORDER_HEX,
    };
    hex::decode(hex).unwrap().try_into().unwrap()
}

/// The same signature with s replaced by n − s (valid ECDSA, but high-S).
fn high_s_variant(curve: Curve, signature: &[u8; 64]) -> [u8; 64] {
    let n = order(curve);
    let mut out = *signature;
    let mut borrow = 0i16;
    for index in (0..32).rev() {
        let mut value = i16::from(n[index]) - i16::from(signature[32 + index]) - borrow;
        borrow = i16::from(value < 0);
        if value < 0 {
            value += 256;
        }
        out[32 + index] = value as u8;
    }
    out
}

fn signer_for(backend: Backend, seed: [u8; 32]) -> Option<SigningKey> {
    match backend {
        // Exercise the k256 signer on the raw secret; the others derive from the seed.
        Backend::K256 => SigningKey::from_secret_bytes(Backend::K256, seed).ok(),
        other => SigningKey::generate_from_seed(other.curve(), seed).ok(),
    }
}

fn round_trip(
    backend: Backend,
    seed: [u8; 32],
    message: &[u8],
    bit: prop::sample::Index,
) -> Result<(), TestCaseError> {
    let signer = signer_for(backend, seed);
    prop_assume!(signer.is_some());
    let signer = signer.unwrap();
    let key = ParsedKey::with_backend(&signer.public_key(), backend).unwrap();
    let signature = signer.sign(message);
    prop_assert_eq!(key.verify(message, &signature), Ok(()));

    let mut flipped_signature = signature;
    let bit_index = bit.index(flipped_signature.len() * 8);
    flipped_signature[bit_index / 8] ^= 1 << (bit_index % 8);
    prop_assert!(key.verify(message, &flipped_signature).is_err());

    if !message.is_empty() {
        let mut flipped_message = message.to_vec();
        let bit_index = bit.index(flipped_message.len() * 8);
        flipped_message[bit_index / 8] ^= 1 << (bit_index % 8);
        prop_assert_eq!(
            key.verify(&flipped_message, &signature),
            Err(SignatureError::Mismatch)
        );
    }

    let high = high_s_variant(backend.curve(), &signature);
    prop_assert_eq!(key.verify(message, &high), Err(SignatureError::HighS));
    Ok(())
}

/// proptest's default case count; the four suites take about 9 s in a debug build,
/// mostly pure-Rust P-256.
const PROPTEST_CASES: u32 = 256;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(PROPTEST_CASES))]

    #[test]
    fn round_trip_k256(seed in any::<[u8; 32]>(), message in prop::collection::vec(any::<u8>(), 0..512), bit in any::<prop::sample::Index>()) {
        round_trip(Backend::K256, seed, &message, bit)?;
    }

    #[test]
    fn round_trip_libsecp256k1(seed in any::<[u8; 32]>(), message in prop::collection::vec(any::<u8>(), 0..512), bit in any::<prop::sample::Index>()) {
        round_trip(Backend::Libsecp256k1, seed, &message, bit)?;
    }

    #[test]
    fn round_trip_p256(seed in any::<[u8; 32]>(), message in prop::collection::vec(any::<u8>(), 0..512), bit in any::<prop::sample::Index>()) {
        round_trip(Backend::P256, seed, &message, bit)?;
    }

    #[test]
    fn round_trip_ring(seed in any::<[u8; 32]>(), message in prop::collection::vec(any::<u8>(), 0..512), bit in any::<prop::sample::Index>()) {
        round_trip(Backend::Ring, seed, &message, bit)?;
    }
}

#[test]
fn proptest_suites_are_named() {
    for backend in Backend::ALL {
        common::report(
            &format!(
                "proptest sign/verify/bit-flip/high-S round trip on {}",
                backend.name()
            ),
            PROPTEST_CASES as usize,
        );
    }
}

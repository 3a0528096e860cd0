//! ECDSA signature verification for atproto keys, with a choice of backend per curve.
//!
//! Owns: the atproto signature rules (64-byte compact r‖s over SHA-256 of the message,
//! low-S required on both curves), the four backends (k256 and libsecp256k1 for
//! secp256k1; p256 and ring for P-256), [`ParsedKey`] (a key pre-parsed once per DID
//! into its backend's form), and [`SigningKey`] for the simulator and tests.
//! Must not touch: key text formats and DID documents (`identity::key`), commits and
//! their encoding (callers pass the signed bytes or their SHA-256).
//! Always checks, before any backend runs and identically for all four: the length is
//! 64 (a DER signature is [`SignatureError::NotCompact`]), 0 < r < n, 0 < s < n, and
//! s ≤ n/2 (low-S). k256 and libsecp256k1 would reject high-S themselves; p256 and ring
//! accept it, so the check is ours and uniform.
//! Does not check: anything about what was signed.
//!
//! libsecp256k1 keeps a thread-local context inside the `secp256k1` crate; it is
//! created once per thread and holds no data of ours.

use std::fmt;

use k256::ecdsa::signature::Signer;
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::sec1::ToSec1Point;
use sha2::{Digest, Sha256};

use crate::identity::key::{Curve, PublicKey, UNCOMPRESSED_POINT_BYTES};

/// Length of an atproto signature: r ‖ s, 32 bytes each, big-endian.
pub const SIGNATURE_BYTES: usize = 64;
/// Length of a SHA-256 digest.
pub const SHA256_BYTES: usize = 32;

/// Length of one scalar (r or s) of a compact signature.
const SCALAR_BYTES: usize = 32;

/// secp256k1 group order n (SEC 2, § 2.4.1), big-endian.
const SECP256K1_ORDER: [u8; SCALAR_BYTES] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];
/// ⌊n/2⌋ for secp256k1: the largest low-S value.
const SECP256K1_HALF_ORDER: [u8; SCALAR_BYTES] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];
/// P-256 group order n (FIPS 186-4, § D.1.2.3), big-endian.
const P256_ORDER: [u8; SCALAR_BYTES] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// ⌊n/2⌋ for P-256: the largest low-S value.
const P256_HALF_ORDER: [u8; SCALAR_BYTES] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Domain separation for [`SigningKey::generate_from_seed`], so a seed used elsewhere
/// never becomes a secret key directly.
const SEED_DOMAIN: &[u8] = b"relay/verify/signature: signing key from seed";
/// Seed-derivation attempts before giving up: a hash lands outside [1, n) with
/// probability below 2⁻³² per try on P-256 and 2⁻¹²⁷ on secp256k1.
const SEED_ATTEMPTS: u8 = 8;

/// A signature implementation. Each verifies one curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// RustCrypto `k256` (pure Rust), secp256k1.
    K256,
    /// Bitcoin Core's libsecp256k1 through the `secp256k1` crate, secp256k1.
    Libsecp256k1,
    /// RustCrypto `p256` (pure Rust), P-256.
    P256,
    /// `ring` (BoringSSL-derived assembly), P-256. Hashes the message itself, so it
    /// cannot verify a prehashed digest.
    Ring,
}

impl Backend {
    /// All four backends.
    pub const ALL: [Backend; 4] = [
        Backend::K256,
        Backend::Libsecp256k1,
        Backend::P256,
        Backend::Ring,
    ];

    /// The curve this backend verifies.
    pub fn curve(self) -> Curve {
        match self {
            Self::K256 | Self::Libsecp256k1 => Curve::Secp256k1,
            Self::P256 | Self::Ring => Curve::P256,
        }
    }

    /// The backends of a curve: the pure-Rust reference first, then the fast one.
    pub fn for_curve(curve: Curve) -> [Backend; 2] {
        match curve {
            Curve::P256 => [Self::P256, Self::Ring],
            Curve::Secp256k1 => [Self::K256, Self::Libsecp256k1],
        }
    }

    /// A short lowercase name, usable as a bounded metric label.
    pub fn name(self) -> &'static str {
        match self {
            Self::K256 => "k256",
            Self::Libsecp256k1 => "libsecp256k1",
            Self::P256 => "p256",
            Self::Ring => "ring",
        }
    }
}

/// The backend chosen for each curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerifierSet {
    secp256k1: Backend,
    p256: Backend,
}

impl VerifierSet {
    /// The pure-Rust RustCrypto pair (k256, p256): the reference.
    pub const REFERENCE: VerifierSet = VerifierSet {
        secp256k1: Backend::K256,
        p256: Backend::P256,
    };

    /// The fastest pair measured on the project's machine (benches/signature.rs, one
    /// core, key parsed once, 256-byte message, medians): libsecp256k1 31.7 µs vs k256
    /// 70.1 µs per verify, and ring 52.6 µs vs p256 274.7 µs. Both pass every interop
    /// fixture.
    pub const FASTEST: VerifierSet = VerifierSet {
        secp256k1: Backend::Libsecp256k1,
        p256: Backend::Ring,
    };

    /// A set from one backend per curve; rejects a backend given for the wrong curve.
    pub fn new(secp256k1: Backend, p256: Backend) -> Result<Self, SignatureError> {
        for (backend, curve) in [(secp256k1, Curve::Secp256k1), (p256, Curve::P256)] {
            if backend.curve() != curve {
                return Err(SignatureError::BackendCurveMismatch { backend, curve });
            }
        }
        Ok(Self { secp256k1, p256 })
    }

    /// The backend chosen for `curve`.
    pub fn backend_for(&self, curve: Curve) -> Backend {
        match curve {
            Curve::P256 => self.p256,
            Curve::Secp256k1 => self.secp256k1,
        }
    }
}

impl Default for VerifierSet {
    /// [`VerifierSet::FASTEST`].
    fn default() -> Self {
        Self::FASTEST
    }
}

/// Why a signature (or a key, for a backend) was rejected.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// A backend was asked to handle a curve it does not implement.
    BackendCurveMismatch {
        /// The backend.
        backend: Backend,
        /// The curve it was asked to handle.
        curve: Curve,
    },
    /// s > n/2: atproto requires low-S signatures.
    HighS,
    /// The backend refused a key that `identity::key` had validated (a backend bug).
    KeyRejected {
        /// The backend that refused.
        backend: Backend,
    },
    /// The signature is well-formed but does not verify for this key and message.
    Mismatch,
    /// Not 64 bytes: atproto signatures are compact r‖s, never DER.
    NotCompact {
        /// The length found.
        len: usize,
    },
    /// The backend cannot verify a prehashed digest (ring hashes the message itself).
    PrehashUnsupported {
        /// The backend.
        backend: Backend,
    },
    /// r is 0 or ≥ n.
    ROutOfRange,
    /// s is 0 or ≥ n.
    SOutOfRange,
    /// The secret scalar is 0 or ≥ n.
    SecretKeyInvalid,
    /// The backend has no signing implementation here (ring).
    SigningUnsupported {
        /// The backend.
        backend: Backend,
    },
}

impl SignatureError {
    /// A short snake_case label, usable as a bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BackendCurveMismatch { .. } => "backend_curve_mismatch",
            Self::HighS => "signature_high_s",
            Self::KeyRejected { .. } => "key_rejected_by_backend",
            Self::Mismatch => "signature_mismatch",
            Self::NotCompact { .. } => "signature_not_compact",
            Self::PrehashUnsupported { .. } => "prehash_unsupported",
            Self::ROutOfRange => "signature_r_out_of_range",
            Self::SOutOfRange => "signature_s_out_of_range",
            Self::SecretKeyInvalid => "secret_key_invalid",
            Self::SigningUnsupported { .. } => "signing_unsupported",
        }
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BackendCurveMismatch { backend, curve } => {
                write!(
                    f,
                    "backend {} does not implement {}",
                    backend.name(),
                    curve.name()
                )
            }
            Self::HighS => f.write_str("signature s is above n/2 (atproto requires low-S)"),
            Self::KeyRejected { backend } => {
                write!(f, "backend {} rejected a validated key", backend.name())
            }
            Self::Mismatch => f.write_str("signature does not verify"),
            Self::NotCompact { len } => {
                write!(
                    f,
                    "signature of {len} bytes, expected {SIGNATURE_BYTES} (compact r||s)"
                )
            }
            Self::PrehashUnsupported { backend } => {
                write!(
                    f,
                    "backend {} cannot verify a prehashed digest",
                    backend.name()
                )
            }
            Self::ROutOfRange => f.write_str("signature r is zero or not below the group order"),
            Self::SOutOfRange => f.write_str("signature s is zero or not below the group order"),
            Self::SecretKeyInvalid => {
                f.write_str("secret key is zero or not below the group order")
            }
            Self::SigningUnsupported { backend } => {
                write!(f, "backend {} cannot sign here", backend.name())
            }
        }
    }
}

impl std::error::Error for SignatureError {}

/// A signature that passed the atproto form checks: 64 bytes, r and s in [1, n),
/// s ≤ n/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactSignature {
    bytes: [u8; SIGNATURE_BYTES],
}

impl CompactSignature {
    /// Check the form of `bytes` as a signature on `curve`.
    pub fn parse(curve: Curve, bytes: &[u8]) -> Result<Self, SignatureError> {
        let not_compact = SignatureError::NotCompact { len: bytes.len() };
        let array: [u8; SIGNATURE_BYTES] = bytes.try_into().map_err(|_| not_compact)?;
        let (r, s) = array.split_at_checked(SCALAR_BYTES).ok_or(not_compact)?;
        let (order, half_order) = match curve {
            Curve::P256 => (&P256_ORDER, &P256_HALF_ORDER),
            Curve::Secp256k1 => (&SECP256K1_ORDER, &SECP256K1_HALF_ORDER),
        };
        // Equal-length big-endian byte strings compare like the numbers they encode.
        let in_range = |scalar: &[u8]| scalar.iter().any(|byte| *byte != 0) && scalar < &order[..];
        if !in_range(r) {
            return Err(SignatureError::ROutOfRange);
        }
        if !in_range(s) {
            return Err(SignatureError::SOutOfRange);
        }
        if s > &half_order[..] {
            return Err(SignatureError::HighS);
        }
        Ok(Self { bytes: array })
    }

    /// The 64 bytes r ‖ s.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.bytes
    }
}

/// A key in the form its backend verifies with.
#[derive(Clone, Debug)]
enum BackendKey {
    K256(k256::ecdsa::VerifyingKey),
    Libsecp256k1(secp256k1::PublicKey),
    P256(p256::ecdsa::VerifyingKey),
    /// ring takes the uncompressed point and validates it on each call (a cheap check,
    /// no decompression).
    Ring(ring::signature::UnparsedPublicKey<[u8; UNCOMPRESSED_POINT_BYTES]>),
}

/// A public key parsed once (per DID) into the form of the backend chosen for its
/// curve; verification never parses the key again.
#[derive(Clone, Debug)]
pub struct ParsedKey {
    public_key: PublicKey,
    backend: Backend,
    key: BackendKey,
}

impl ParsedKey {
    /// Parse `public_key` for the backend `verifiers` chooses for its curve.
    pub fn new(public_key: &PublicKey, verifiers: &VerifierSet) -> Result<Self, SignatureError> {
        Self::with_backend(public_key, verifiers.backend_for(public_key.curve()))
    }

    /// Parse `public_key` for one named backend (tests and benches compare them).
    pub fn with_backend(public_key: &PublicKey, backend: Backend) -> Result<Self, SignatureError> {
        let curve = public_key.curve();
        if backend.curve() != curve {
            return Err(SignatureError::BackendCurveMismatch { backend, curve });
        }
        let compressed = public_key.compressed_bytes();
        let rejected = SignatureError::KeyRejected { backend };
        let key = match backend {
            Backend::K256 => k256::ecdsa::VerifyingKey::from_sec1_bytes(compressed)
                .map(BackendKey::K256)
                .map_err(|_| rejected)?,
            Backend::Libsecp256k1 => secp256k1::PublicKey::from_byte_array_compressed(*compressed)
                .map(BackendKey::Libsecp256k1)
                .map_err(|_| rejected)?,
            Backend::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(compressed)
                .map(BackendKey::P256)
                .map_err(|_| rejected)?,
            Backend::Ring => {
                let point = p256::PublicKey::from_sec1_bytes(compressed)
                    .map_err(|_| rejected)?
                    .to_sec1_point(false);
                let uncompressed = point.as_bytes().try_into().map_err(|_| rejected)?;
                BackendKey::Ring(ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    uncompressed,
                ))
            }
        };
        Ok(Self {
            public_key: *public_key,
            backend,
            key,
        })
    }

    /// The key this was parsed from.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The backend that verifies with this key.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Verify an atproto signature over `message` (SHA-256 of the message is signed).
    /// Hashes once: with sha2 for k256, libsecp256k1 and p256; inside ring for ring.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        let signature = CompactSignature::parse(self.public_key.curve(), signature)?;
        if let BackendKey::Ring(key) = &self.key {
            return key
                .verify(message, signature.as_bytes())
                .map_err(|_| SignatureError::Mismatch);
        }
        let digest: [u8; SHA256_BYTES] = Sha256::digest(message).into();
        verify_digest_with_backend(&self.key, &digest, signature.as_bytes())
    }

    /// Verify an atproto signature given the SHA-256 `digest` of the signed message,
    /// for callers that hashed already. ring cannot take a digest: with a ring key this
    /// returns [`SignatureError::PrehashUnsupported`]; call [`ParsedKey::verify`] instead.
    pub fn verify_prehashed(
        &self,
        digest: &[u8; SHA256_BYTES],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let signature = CompactSignature::parse(self.public_key.curve(), signature)?;
        verify_digest_with_backend(&self.key, digest, signature.as_bytes())
    }
}

/// Verify with the backend alone, without our form checks, so that tests can observe
/// what each backend accepts by itself.
fn verify_digest_with_backend(
    key: &BackendKey,
    digest: &[u8; SHA256_BYTES],
    signature: &[u8; SIGNATURE_BYTES],
) -> Result<(), SignatureError> {
    let verified = match key {
        BackendKey::K256(key) => k256::ecdsa::Signature::from_slice(signature)
            .and_then(|signature| key.verify_prehash(digest, &signature))
            .is_ok(),
        BackendKey::Libsecp256k1(key) => secp256k1::ecdsa::Signature::from_compact(signature)
            .and_then(|signature| {
                let message = secp256k1::Message::from_digest(*digest);
                secp256k1::ecdsa::verify(&signature, message, key)
            })
            .is_ok(),
        BackendKey::P256(key) => p256::ecdsa::Signature::from_slice(signature)
            .and_then(|signature| key.verify_prehash(digest, &signature))
            .is_ok(),
        BackendKey::Ring(_) => {
            return Err(SignatureError::PrehashUnsupported {
                backend: Backend::Ring,
            });
        }
    };
    if verified {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A secret key, for the simulator and tests: signs deterministically (RFC 6979) and
/// always emits low-S compact signatures.
#[derive(Clone)]
pub enum SigningKey {
    /// secp256k1 through k256.
    K256(k256::ecdsa::SigningKey),
    /// secp256k1 through libsecp256k1.
    Libsecp256k1(secp256k1::SecretKey),
    /// P-256 through p256.
    P256(p256::ecdsa::SigningKey),
}

impl SigningKey {
    /// A key whose secret scalar is `secret` (big-endian), signing with `backend`.
    /// ring has no deterministic signer here: it returns `SigningUnsupported`.
    pub fn from_secret_bytes(
        backend: Backend,
        secret: [u8; SCALAR_BYTES],
    ) -> Result<Self, SignatureError> {
        let invalid = |_| SignatureError::SecretKeyInvalid;
        match backend {
            Backend::K256 => k256::ecdsa::SigningKey::from_slice(&secret)
                .map(Self::K256)
                .map_err(invalid),
            Backend::Libsecp256k1 => secp256k1::SecretKey::from_secret_bytes(secret)
                .map(Self::Libsecp256k1)
                .map_err(|_| SignatureError::SecretKeyInvalid),
            Backend::P256 => p256::ecdsa::SigningKey::from_slice(&secret)
                .map(Self::P256)
                .map_err(invalid),
            Backend::Ring => Err(SignatureError::SigningUnsupported { backend }),
        }
    }

    /// A key derived from `seed` by hashing (any seed works, including all zeros),
    /// signing with libsecp256k1 for secp256k1 and p256 for P-256.
    pub fn generate_from_seed(curve: Curve, seed: [u8; 32]) -> Result<Self, SignatureError> {
        let backend = match curve {
            Curve::P256 => Backend::P256,
            Curve::Secp256k1 => Backend::Libsecp256k1,
        };
        for attempt in 0..SEED_ATTEMPTS {
            let mut hasher = Sha256::new();
            hasher.update(SEED_DOMAIN);
            hasher.update([attempt]);
            hasher.update(seed);
            let secret: [u8; SCALAR_BYTES] = hasher.finalize().into();
            if let Ok(key) = Self::from_secret_bytes(backend, secret) {
                return Ok(key);
            }
        }
        Err(SignatureError::SecretKeyInvalid)
    }

    /// The curve of this key.
    pub fn curve(&self) -> Curve {
        match self {
            Self::K256(_) | Self::Libsecp256k1(_) => Curve::Secp256k1,
            Self::P256(_) => Curve::P256,
        }
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        let compressed = match self {
            Self::K256(key) => key.verifying_key().as_affine().to_bytes().into(),
            Self::Libsecp256k1(key) => secp256k1::PublicKey::from_secret_key(key).serialize(),
            Self::P256(key) => key.verifying_key().as_affine().to_bytes().into(),
        };
        PublicKey::from_derived_point(self.curve(), compressed)
    }

    /// Sign SHA-256 of `message`: 64 bytes r ‖ s with s normalised to low-S.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        match self {
            Self::K256(key) => {
                let signature: k256::ecdsa::Signature = key.sign(message);
                signature.normalize_s().to_bytes().into()
            }
            Self::Libsecp256k1(key) => {
                let digest: [u8; SHA256_BYTES] = Sha256::digest(message).into();
                let message = secp256k1::Message::from_digest(digest);
                // libsecp256k1 only produces low-S signatures.
                secp256k1::ecdsa::sign(message, key).serialize_compact()
            }
            Self::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.normalize_s().to_bytes().into()
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    /// Shows the curve and public key, never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("curve", &self.curve())
            .field("public_key", &self.public_key().to_did_key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests fail loudly on a broken invariant"
)]
mod tests {
    use super::*;

    fn subtract_from_order(curve: Curve, s: &[u8]) -> [u8; 32] {
        let order = match curve {
            Curve::P256 => P256_ORDER,
            Curve::Secp256k1 => SECP256K1_ORDER,
        };
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for index in (0..32).rev() {
            let mut value = i16::from(order[index]) - i16::from(s[index]) - borrow;
            borrow = i16::from(value < 0);
            if value < 0 {
                value += 256;
            }
            out[index] = value as u8;
        }
        out
    }

    fn one() -> [u8; 32] {
        let mut one = [0u8; 32];
        one[31] = 1;
        one
    }

    fn high_s_variant(curve: Curve, signature: &[u8; 64]) -> [u8; 64] {
        let mut out = *signature;
        out[32..].copy_from_slice(&subtract_from_order(curve, &signature[32..]));
        out
    }

    /// The half-order constants agree with the curve crates' own notion of "high".
    #[test]
    fn half_orders_match_the_curve_crates() {
        let r = [1u8; 32];
        let mut above = SECP256K1_HALF_ORDER;
        above[31] += 1;
        let at = k256::ecdsa::Signature::from_scalars(r, SECP256K1_HALF_ORDER).unwrap();
        assert_eq!(at.normalize_s(), at);
        let past = k256::ecdsa::Signature::from_scalars(r, above).unwrap();
        assert_ne!(past.normalize_s(), past);

        let mut above = P256_HALF_ORDER;
        above[31] += 1;
        let at = p256::ecdsa::Signature::from_scalars(r, P256_HALF_ORDER).unwrap();
        assert_eq!(at.normalize_s(), at);
        let past = p256::ecdsa::Signature::from_scalars(r, above).unwrap();
        assert_ne!(past.normalize_s(), past);

        // n itself is out of range for the crates, n − 1 is in range.
        for curve in Curve::ALL {
            let order = match curve {
                Curve::P256 => P256_ORDER,
                Curve::Secp256k1 => SECP256K1_ORDER,
            };
            let crate_accepts = |s: [u8; 32]| match curve {
                Curve::P256 => p256::ecdsa::Signature::from_scalars(r, s).is_ok(),
                Curve::Secp256k1 => k256::ecdsa::Signature::from_scalars(r, s).is_ok(),
            };
            assert!(!crate_accepts(order));
            assert!(crate_accepts(subtract_from_order(curve, &one())));
        }
    }

    #[test]
    fn form_checks_reject_out_of_range_scalars() {
        for curve in Curve::ALL {
            let (order, half) = match curve {
                Curve::P256 => (P256_ORDER, P256_HALF_ORDER),
                Curve::Secp256k1 => (SECP256K1_ORDER, SECP256K1_HALF_ORDER),
            };
            let join = |r: [u8; 32], s: [u8; 32]| {
                let mut bytes = [0u8; 64];
                bytes[..32].copy_from_slice(&r);
                bytes[32..].copy_from_slice(&s);
                bytes
            };
            let one = one();
            let mut past_half = half;
            past_half[31] += 1;
            let cases = [
                (join([0; 32], one), Err(SignatureError::ROutOfRange)),
                (join(order, one), Err(SignatureError::ROutOfRange)),
                (join([0xff; 32], one), Err(SignatureError::ROutOfRange)),
                (join(one, [0; 32]), Err(SignatureError::SOutOfRange)),
                (join(one, order), Err(SignatureError::SOutOfRange)),
                (join(one, past_half), Err(SignatureError::HighS)),
            ];
            for (bytes, expected) in cases {
                assert_eq!(CompactSignature::parse(curve, &bytes).map(|_| ()), expected);
            }
            assert!(CompactSignature::parse(curve, &join(one, half)).is_ok());
            assert!(
                CompactSignature::parse(curve, &join(subtract_from_order(curve, &one), one))
                    .is_ok()
            );
            assert_eq!(
                CompactSignature::parse(curve, &[1; 70]),
                Err(SignatureError::NotCompact { len: 70 })
            );
        }
    }

    /// What each backend does with a high-S signature when our check is bypassed:
    /// k256 and libsecp256k1 reject it themselves; p256 and ring accept it, which is
    /// why the low-S check is ours.
    #[test]
    fn backends_on_their_own_with_high_s() {
        let message = b"low-S is an atproto rule";
        let digest: [u8; 32] = Sha256::digest(message).into();
        for backend in Backend::ALL {
            let signer_backend = if backend == Backend::Ring {
                Backend::P256
            } else {
                backend
            };
            let signer = SigningKey::from_secret_bytes(signer_backend, [7; 32]).unwrap();
            let parsed = ParsedKey::with_backend(&signer.public_key(), backend).unwrap();
            let low = signer.sign(message);
            let high = high_s_variant(backend.curve(), &low);
            let backend_accepts_high = match &parsed.key {
                BackendKey::Ring(key) => key.verify(message, &high).is_ok(),
                key => verify_digest_with_backend(key, &digest, &high).is_ok(),
            };
            let expected = matches!(backend, Backend::P256 | Backend::Ring);
            assert_eq!(backend_accepts_high, expected, "{}", backend.name());
            assert_eq!(parsed.verify(message, &high), Err(SignatureError::HighS));
            assert_eq!(parsed.verify(message, &low), Ok(()));
        }
    }

    #[test]
    fn verifier_set_checks_curves() {
        assert_eq!(
            VerifierSet::new(Backend::K256, Backend::Ring),
            Ok(VerifierSet {
                secp256k1: Backend::K256,
                p256: Backend::Ring
            })
        );
        assert_eq!(
            VerifierSet::new(Backend::P256, Backend::Ring),
            Err(SignatureError::BackendCurveMismatch {
                backend: Backend::P256,
                curve: Curve::Secp256k1
            })
        );
        assert_eq!(
            VerifierSet::new(Backend::K256, Backend::Libsecp256k1),
            Err(SignatureError::BackendCurveMismatch {
                backend: Backend::Libsecp256k1,
                curve: Curve::P256
            })
        );
        assert_eq!(VerifierSet::default(), VerifierSet::FASTEST);
    }

    #[test]
    fn signing_key_rules() {
        assert_eq!(
            SigningKey::from_secret_bytes(Backend::K256, [0; 32]).map(|_| ()),
            Err(SignatureError::SecretKeyInvalid)
        );
        assert_eq!(
            SigningKey::from_secret_bytes(Backend::Libsecp256k1, SECP256K1_ORDER).map(|_| ()),
            Err(SignatureError::SecretKeyInvalid)
        );
        assert_eq!(
            SigningKey::from_secret_bytes(Backend::P256, P256_ORDER).map(|_| ()),
            Err(SignatureError::SecretKeyInvalid)
        );
        assert_eq!(
            SigningKey::from_secret_bytes(Backend::Ring, [1; 32]).map(|_| ()),
            Err(SignatureError::SigningUnsupported {
                backend: Backend::Ring
            })
        );
        // k256 and libsecp256k1 derive the same public key and the same RFC 6979
        // signature from the same secret.
        let k256 = SigningKey::from_secret_bytes(Backend::K256, [9; 32]).unwrap();
        let libsecp = SigningKey::from_secret_bytes(Backend::Libsecp256k1, [9; 32]).unwrap();
        assert_eq!(k256.public_key(), libsecp.public_key());
        assert_eq!(k256.sign(b"same"), libsecp.sign(b"same"));
        // Seeds are hashed, so the all-zero seed works and seeds give distinct keys.
        for curve in Curve::ALL {
            let zero = SigningKey::generate_from_seed(curve, [0; 32]).unwrap();
            let one = SigningKey::generate_from_seed(curve, [1; 32]).unwrap();
            assert_eq!(zero.curve(), curve);
            assert_ne!(zero.public_key(), one.public_key());
            assert!(!format!("{zero:?}").contains("secret"));
        }
    }

    #[test]
    fn ring_refuses_prehash() {
        let signer = SigningKey::generate_from_seed(Curve::P256, [3; 32]).unwrap();
        let parsed = ParsedKey::with_backend(&signer.public_key(), Backend::Ring).unwrap();
        let signature = signer.sign(b"m");
        let digest: [u8; 32] = Sha256::digest(b"m").into();
        assert_eq!(
            parsed.verify_prehashed(&digest, &signature),
            Err(SignatureError::PrehashUnsupported {
                backend: Backend::Ring
            })
        );
        let reference = ParsedKey::with_backend(&signer.public_key(), Backend::P256).unwrap();
        assert_eq!(reference.verify_prehashed(&digest, &signature), Ok(()));
        assert_eq!(
            ParsedKey::with_backend(&signer.public_key(), Backend::K256).map(|_| ()),
            Err(SignatureError::BackendCurveMismatch {
                backend: Backend::K256,
                curve: Curve::P256
            })
        );
    }

    #[test]
    fn reasons_are_snake_case() {
        let errors = [
            SignatureError::BackendCurveMismatch {
                backend: Backend::K256,
                curve: Curve::P256,
            },
            SignatureError::HighS,
            SignatureError::KeyRejected {
                backend: Backend::Ring,
            },
            SignatureError::Mismatch,
            SignatureError::NotCompact { len: 70 },
            SignatureError::PrehashUnsupported {
                backend: Backend::Ring,
            },
            SignatureError::ROutOfRange,
            SignatureError::SOutOfRange,
            SignatureError::SecretKeyInvalid,
            SignatureError::SigningUnsupported {
                backend: Backend::Ring,
            },
        ];
        for error in errors {
            assert!(
                error
                    .reason()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
            assert!(!error.to_string().is_empty());
        }
    }
}

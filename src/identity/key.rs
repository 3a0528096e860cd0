//! Public keys of atproto accounts: the two curves, their text forms, and the choice of
//! the `#atproto` key in a DID document.
//!
//! Owns: [`PublicKey`] (curve + 33-byte compressed SEC1 point) and its parsing from
//! `did:key`, `Multikey` verification methods (multicodec 0xe7 secp256k1-pub, 0x1200
//! p256-pub, compressed point) and the legacy DID-document types
//! `EcdsaSecp256k1VerificationKey2019` / `EcdsaSecp256r1VerificationKey2019` (base58btc of
//! the raw 33-byte compressed or 65-byte uncompressed point, no multicodec).
//! Must not touch: signatures (`verify::signature` builds per-backend forms from a
//! [`PublicKey`]), network resolution, JSON parsing of whole DID documents.
//! Always checks: the multibase prefix and alphabet, a minimal multicodec varint naming
//! one of the two curves, the SEC1 tag and length, and that the point is on the curve
//! (with the reference crates k256 and p256; this runs once per DID, never per event).
//! Uncompressed points are normalised to compressed, so one key has one representation.
//! Does not check: that a verification method's `id` or `controller` names the DID the
//! document was resolved for (the resolver does).

use std::fmt;

use k256::elliptic_curve::group::GroupEncoding;

use crate::identity::multibase::{
    self, MultibaseError, decode_multibase_base58btc, decode_uvarint, encode_uvarint,
};

/// Length of a compressed SEC1 point (tag 0x02/0x03 + x).
pub const COMPRESSED_POINT_BYTES: usize = 33;
/// Length of an uncompressed SEC1 point (tag 0x04 + x + y).
pub const UNCOMPRESSED_POINT_BYTES: usize = 65;
/// The method prefix of a `did:key` identifier.
pub const DID_KEY_PREFIX: &str = "did:key:";
/// The verification-method type whose `publicKeyMultibase` carries a multicodec prefix.
pub const MULTIKEY_TYPE: &str = "Multikey";
/// The suffix of the id of an account's signing key in its DID document.
pub const ATPROTO_METHOD_SUFFIX: &str = "#atproto";

/// multicodec `secp256k1-pub` (compressed point).
const MULTICODEC_SECP256K1_PUB: u64 = 0xe7;
/// multicodec `p256-pub` (compressed point).
const MULTICODEC_P256_PUB: u64 = 0x1200;

/// The two curves atproto signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1), JWT algorithm `ES256`.
    P256,
    /// secp256k1 (K-256), JWT algorithm `ES256K`.
    Secp256k1,
}

impl Curve {
    /// Both curves, for tables and tests.
    pub const ALL: [Curve; 2] = [Curve::P256, Curve::Secp256k1];

    /// The multicodec code of this curve's compressed public key.
    pub fn multicodec(self) -> u64 {
        match self {
            Self::P256 => MULTICODEC_P256_PUB,
            Self::Secp256k1 => MULTICODEC_SECP256K1_PUB,
        }
    }

    /// The curve whose compressed public key has this multicodec code.
    pub fn from_multicodec(code: u64) -> Option<Self> {
        match code {
            MULTICODEC_P256_PUB => Some(Self::P256),
            MULTICODEC_SECP256K1_PUB => Some(Self::Secp256k1),
            _ => None,
        }
    }

    /// The JWT/JOSE algorithm name atproto uses for this curve (`ES256`, `ES256K`).
    pub fn jwt_algorithm(self) -> &'static str {
        match self {
            Self::P256 => "ES256",
            Self::Secp256k1 => "ES256K",
        }
    }

    /// A short lowercase name, usable as a bounded metric label.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "p256",
            Self::Secp256k1 => "secp256k1",
        }
    }
}

/// The legacy DID-document verification-method types: the key is base58btc of the raw
/// SEC1 point (33 or 65 bytes) with no multicodec prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LegacyKeyType {
    /// `EcdsaSecp256k1VerificationKey2019`.
    EcdsaSecp256k1VerificationKey2019,
    /// `EcdsaSecp256r1VerificationKey2019`.
    EcdsaSecp256r1VerificationKey2019,
}

impl LegacyKeyType {
    /// The legacy type named by a verification method's `type`, if it is one.
    pub fn from_type_name(name: &str) -> Option<Self> {
        match name {
            "EcdsaSecp256k1VerificationKey2019" => Some(Self::EcdsaSecp256k1VerificationKey2019),
            "EcdsaSecp256r1VerificationKey2019" => Some(Self::EcdsaSecp256r1VerificationKey2019),
            _ => None,
        }
    }

    /// The `type` string of this legacy type.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::EcdsaSecp256k1VerificationKey2019 => "EcdsaSecp256k1VerificationKey2019",
            Self::EcdsaSecp256r1VerificationKey2019 => "EcdsaSecp256r1VerificationKey2019",
        }
    }

    /// The curve of keys of this type.
    pub fn curve(self) -> Curve {
        match self {
            Self::EcdsaSecp256k1VerificationKey2019 => Curve::Secp256k1,
            Self::EcdsaSecp256r1VerificationKey2019 => Curve::P256,
        }
    }
}

/// Why a public key was rejected.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// No verification method of the DID document has an id ending in `#atproto`.
    AtprotoMethodAbsent,
    /// A `did:key` string that does not start with `did:key:`.
    DidKeyPrefixMissing,
    /// The multibase text or the multicodec varint is malformed.
    Encoding(MultibaseError),
    /// The multicodec names a key type other than secp256k1-pub or p256-pub.
    MulticodecUnsupported {
        /// The multicodec code found.
        code: u64,
    },
    /// A multicodec key form (`did:key`, `Multikey`) whose point is not 33 bytes: atproto
    /// requires the compressed point there.
    NotCompressed {
        /// The point length found.
        len: usize,
    },
    /// The bytes are well-formed SEC1 but not a point of the curve (or the identity).
    PointInvalid {
        /// The curve the point was checked against.
        curve: Curve,
    },
    /// A raw SEC1 point of neither 33 nor 65 bytes.
    PointLengthInvalid {
        /// The length found.
        len: usize,
    },
    /// A SEC1 tag that does not match the length (0x02/0x03 for 33 bytes, 0x04 for 65).
    PointTagInvalid {
        /// The first byte found.
        tag: u8,
    },
    /// The `#atproto` verification method has no `publicKeyMultibase`.
    PublicKeyMultibaseAbsent,
    /// A verification-method `type` that is neither `Multikey` nor a legacy type.
    VerificationMethodTypeUnsupported,
}

impl KeyError {
    /// A short snake_case label, usable as a bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::AtprotoMethodAbsent => "atproto_method_absent",
            Self::DidKeyPrefixMissing => "did_key_prefix_missing",
            Self::Encoding(inner) => inner.reason(),
            Self::MulticodecUnsupported { .. } => "multicodec_unsupported",
            Self::NotCompressed { .. } => "point_not_compressed",
            Self::PointInvalid { .. } => "point_not_on_curve",
            Self::PointLengthInvalid { .. } => "point_length_invalid",
            Self::PointTagInvalid { .. } => "point_tag_invalid",
            Self::PublicKeyMultibaseAbsent => "public_key_multibase_absent",
            Self::VerificationMethodTypeUnsupported => "verification_method_type_unsupported",
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AtprotoMethodAbsent => {
                f.write_str("DID document has no verification method with id ending in #atproto")
            }
            Self::DidKeyPrefixMissing => write!(f, "did:key does not start with {DID_KEY_PREFIX}"),
            Self::Encoding(inner) => write!(f, "key encoding: {inner}"),
            Self::MulticodecUnsupported { code } => {
                write!(f, "multicodec 0x{code:x} is not secp256k1-pub or p256-pub")
            }
            Self::NotCompressed { len } => {
                write!(
                    f,
                    "multicodec key holds {len} bytes, expected a 33-byte compressed point"
                )
            }
            Self::PointInvalid { curve } => {
                write!(f, "bytes are not a point of {}", curve.name())
            }
            Self::PointLengthInvalid { len } => {
                write!(f, "SEC1 point of {len} bytes, expected 33 or 65")
            }
            Self::PointTagInvalid { tag } => {
                write!(f, "SEC1 tag 0x{tag:02x} does not match the point length")
            }
            Self::PublicKeyMultibaseAbsent => {
                f.write_str("#atproto verification method has no publicKeyMultibase")
            }
            Self::VerificationMethodTypeUnsupported => {
                f.write_str("verification method type is not Multikey or a legacy ECDSA type")
            }
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Encoding(inner) => Some(inner),
            _ => None,
        }
    }
}

impl From<MultibaseError> for KeyError {
    fn from(inner: MultibaseError) -> Self {
        Self::Encoding(inner)
    }
}

/// One entry of a DID document's `verificationMethod` array, borrowed from whatever
/// parsed the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerificationMethodRef<'a> {
    /// The method's `id` (absolute `did:…#atproto` or relative `#atproto`).
    pub id: &'a str,
    /// The method's `type`.
    pub method_type: &'a str,
    /// The method's `publicKeyMultibase`, if present.
    pub public_key_multibase: Option<&'a str>,
}

/// A validated atproto public key: the curve and the compressed SEC1 point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey {
    curve: Curve,
    compressed: [u8; COMPRESSED_POINT_BYTES],
}

impl PublicKey {
    /// Parse a raw SEC1 point (33-byte compressed or 65-byte uncompressed) of `curve`,
    /// checking that it lies on the curve, and keep it compressed.
    pub fn from_sec1_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        check_sec1_tag(bytes)?;
        let compressed =
            match curve {
                Curve::P256 => p256::PublicKey::from_sec1_bytes(bytes)
                    .map(|key| key.as_affine().to_bytes().into()),
                Curve::Secp256k1 => k256::PublicKey::from_sec1_bytes(bytes)
                    .map(|key| key.as_affine().to_bytes().into()),
            }
            .map_err(|_| KeyError::PointInvalid { curve })?;
        Ok(Self { curve, compressed })
    }

    /// Build a key from a point the caller computed itself (from a secret key), so it
    /// is on the curve by construction and is not checked again.
    pub(crate) fn from_derived_point(
        curve: Curve,
        compressed: [u8; COMPRESSED_POINT_BYTES],
    ) -> Self {
        Self { curve, compressed }
    }

    /// Parse a `did:key:z…` identifier (multicodec 0xe7 or 0x1200, compressed point).
    pub fn from_did_key(did_key: &str) -> Result<Self, KeyError> {
        let multikey = did_key
            .strip_prefix(DID_KEY_PREFIX)
            .ok_or(KeyError::DidKeyPrefixMissing)?;
        Self::from_multikey(multikey)
    }

    /// The `did:key` identifier of this key.
    pub fn to_did_key(&self) -> String {
        let mut did_key = String::from(DID_KEY_PREFIX);
        did_key.push_str(&self.to_multikey());
        did_key
    }

    /// Parse the `publicKeyMultibase` of a `Multikey` verification method:
    /// `z` + base58btc(varint(multicodec) ‖ compressed point).
    pub fn from_multikey(public_key_multibase: &str) -> Result<Self, KeyError> {
        let decoded = decode_multibase_base58btc(public_key_multibase)?;
        let (code, point) = decode_uvarint(decoded.as_slice())?;
        let curve = Curve::from_multicodec(code).ok_or(KeyError::MulticodecUnsupported { code })?;
        if point.len() != COMPRESSED_POINT_BYTES {
            return Err(KeyError::NotCompressed { len: point.len() });
        }
        Self::from_sec1_bytes(curve, point)
    }

    /// The `publicKeyMultibase` of this key in `Multikey` form.
    pub fn to_multikey(&self) -> String {
        let mut bytes = Vec::with_capacity(2 + COMPRESSED_POINT_BYTES);
        encode_uvarint(self.curve.multicodec(), &mut bytes);
        bytes.extend_from_slice(&self.compressed);
        multibase::encode_multibase_base58btc(&bytes)
    }

    /// Parse the `publicKeyMultibase` of a legacy verification method: `z` + base58btc of
    /// the raw point, compressed (33 bytes) or uncompressed (65 bytes).
    pub fn from_legacy_multibase(
        kind: LegacyKeyType,
        public_key_multibase: &str,
    ) -> Result<Self, KeyError> {
        let decoded = decode_multibase_base58btc(public_key_multibase)?;
        Self::from_sec1_bytes(kind.curve(), decoded.as_slice())
    }

    /// Parse a verification method given its `type` and `publicKeyMultibase`.
    pub fn from_verification_method(
        method_type: &str,
        public_key_multibase: &str,
    ) -> Result<Self, KeyError> {
        if method_type == MULTIKEY_TYPE {
            return Self::from_multikey(public_key_multibase);
        }
        let kind = LegacyKeyType::from_type_name(method_type)
            .ok_or(KeyError::VerificationMethodTypeUnsupported)?;
        Self::from_legacy_multibase(kind, public_key_multibase)
    }

    /// The account signing key of a DID document: the first verification method whose
    /// id ends with `#atproto`. Reports [`KeyError::AtprotoMethodAbsent`] when there is none.
    pub fn from_atproto_verification_method<'a>(
        methods: impl IntoIterator<Item = VerificationMethodRef<'a>>,
    ) -> Result<Self, KeyError> {
        let method = methods
            .into_iter()
            .find(|method| method.id.ends_with(ATPROTO_METHOD_SUFFIX))
            .ok_or(KeyError::AtprotoMethodAbsent)?;
        let multibase = method
            .public_key_multibase
            .ok_or(KeyError::PublicKeyMultibaseAbsent)?;
        Self::from_verification_method(method.method_type, multibase)
    }

    /// The curve of this key.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The compressed SEC1 point.
    pub fn compressed_bytes(&self) -> &[u8; COMPRESSED_POINT_BYTES] {
        &self.compressed
    }
}

/// The SEC1 tag must match the length before the curve crates see the bytes, so that
/// the hybrid (0x06/0x07) and compact forms they might accept never reach them.
fn check_sec1_tag(bytes: &[u8]) -> Result<(), KeyError> {
    let tag = bytes.first().copied().unwrap_or(0);
    match (bytes.len(), tag) {
        (COMPRESSED_POINT_BYTES, 0x02 | 0x03) | (UNCOMPRESSED_POINT_BYTES, 0x04) => Ok(()),
        (COMPRESSED_POINT_BYTES | UNCOMPRESSED_POINT_BYTES, _) => {
            Err(KeyError::PointTagInvalid { tag })
        }
        (len, _) => Err(KeyError::PointLengthInvalid { len }),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests fail loudly on a broken invariant"
)]
mod tests {
    use super::*;

    const K256_DID_KEY: &str = "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme";
    const P256_DID_KEY: &str = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo";

    #[test]
    fn did_key_round_trips_for_both_curves() {
        for (did_key, curve) in [
            (K256_DID_KEY, Curve::Secp256k1),
            (P256_DID_KEY, Curve::P256),
        ] {
            let key = PublicKey::from_did_key(did_key).unwrap();
            assert_eq!(key.curve(), curve);
            assert_eq!(key.to_did_key(), did_key);
            let multikey = did_key.strip_prefix(DID_KEY_PREFIX).unwrap();
            assert_eq!(PublicKey::from_multikey(multikey).unwrap(), key);
            assert_eq!(
                PublicKey::from_verification_method("Multikey", multikey).unwrap(),
                key
            );
        }
    }

    #[test]
    fn uncompressed_points_are_normalised() {
        let key = PublicKey::from_did_key(K256_DID_KEY).unwrap();
        let uncompressed = k256::PublicKey::from_sec1_bytes(key.compressed_bytes())
            .unwrap()
            .to_sec1_bytes_uncompressed();
        let legacy = multibase::encode_multibase_base58btc(&uncompressed);
        let parsed = PublicKey::from_legacy_multibase(
            LegacyKeyType::EcdsaSecp256k1VerificationKey2019,
            &legacy,
        )
        .unwrap();
        assert_eq!(parsed, key);
    }

    /// Uncompressed SEC1 bytes through the curve crate, for tests only.
    trait Uncompressed {
        fn to_sec1_bytes_uncompressed(&self) -> Vec<u8>;
    }

    impl Uncompressed for k256::PublicKey {
        fn to_sec1_bytes_uncompressed(&self) -> Vec<u8> {
            use k256::elliptic_curve::sec1::ToSec1Point;
            self.to_sec1_point(false).as_bytes().to_vec()
        }
    }

    #[test]
    fn malformed_keys_are_rejected_with_reasons() {
        let key = PublicKey::from_did_key(K256_DID_KEY).unwrap();
        let mut off_curve = *key.compressed_bytes();
        // x = 5 has no square root on secp256k1 (5³ + 7 = 132 is a non-residue mod p).
        off_curve.iter_mut().skip(1).for_each(|byte| *byte = 0);
        if let Some(last) = off_curve.last_mut() {
            *last = 5;
        }
        let cases: [(Result<PublicKey, KeyError>, KeyError); 9] = [
            (
                PublicKey::from_did_key("did:web:example.com"),
                KeyError::DidKeyPrefixMissing,
            ),
            (
                PublicKey::from_did_key("did:key:fQ3sh"),
                KeyError::Encoding(MultibaseError::UnsupportedBase { prefix: 'f' }),
            ),
            (
                PublicKey::from_did_key("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"),
                KeyError::MulticodecUnsupported { code: 0xed },
            ),
            (
                PublicKey::from_sec1_bytes(Curve::Secp256k1, &off_curve),
                KeyError::PointInvalid {
                    curve: Curve::Secp256k1,
                },
            ),
            (
                PublicKey::from_sec1_bytes(Curve::Secp256k1, &[0x02; 32]),
                KeyError::PointLengthInvalid { len: 32 },
            ),
            (
                PublicKey::from_sec1_bytes(Curve::P256, &[0x04; 33]),
                KeyError::PointTagInvalid { tag: 0x04 },
            ),
            (
                PublicKey::from_verification_method("Ed25519VerificationKey2020", "z6Mk"),
                KeyError::VerificationMethodTypeUnsupported,
            ),
            (
                PublicKey::from_atproto_verification_method([VerificationMethodRef {
                    id: "#other",
                    method_type: MULTIKEY_TYPE,
                    public_key_multibase: Some("z"),
                }]),
                KeyError::AtprotoMethodAbsent,
            ),
            (
                PublicKey::from_atproto_verification_method([VerificationMethodRef {
                    id: "#atproto",
                    method_type: MULTIKEY_TYPE,
                    public_key_multibase: None,
                }]),
                KeyError::PublicKeyMultibaseAbsent,
            ),
        ];
        for (result, expected) in cases {
            assert_eq!(result, Err(expected));
            assert!(!expected.reason().is_empty());
            assert!(!expected.to_string().is_empty());
        }
    }

    #[test]
    fn multikey_with_uncompressed_point_is_rejected() {
        let key = PublicKey::from_did_key(K256_DID_KEY).unwrap();
        let uncompressed = k256::PublicKey::from_sec1_bytes(key.compressed_bytes())
            .unwrap()
            .to_sec1_bytes_uncompressed();
        let mut bytes = Vec::new();
        encode_uvarint(Curve::Secp256k1.multicodec(), &mut bytes);
        bytes.extend_from_slice(&uncompressed);
        let multikey = multibase::encode_multibase_base58btc(&bytes);
        assert_eq!(
            PublicKey::from_multikey(&multikey),
            Err(KeyError::NotCompressed {
                len: UNCOMPRESSED_POINT_BYTES
            })
        );
    }
}

//! DAG-CBOR strictness (table of forbidden encodings) and property tests: encode/decode
//! round trips, and ciborium as an independent oracle for what our bytes mean.

use proptest::prelude::*;
use relay::frame::cbor::{self, DecodeError, OwnedValue};

fn err(hex_input: &str) -> DecodeError {
    cbor::decode(&hex::decode(hex_input).unwrap()).unwrap_err()
}

#[test]
fn forbidden_encodings_are_rejected_with_their_reason() {
    let table: &[(&str, &str, &str)] = &[
        (
            "non-minimal uint (24 in 2 bytes)",
            "1900 18",
            "cbor_non_minimal_integer",
        ),
        (
            "non-minimal uint (5 with info 24)",
            "1805",
            "cbor_non_minimal_integer",
        ),
        ("non-minimal length", "5801 61", "cbor_non_minimal_integer"),
        ("indefinite array", "9f01ff", "cbor_indefinite_length"),
        ("indefinite map", "bf616101ff", "cbor_indefinite_length"),
        ("indefinite bytes", "5f4101ff", "cbor_indefinite_length"),
        ("break byte", "ff", "cbor_indefinite_length"),
        ("reserved info", "1c", "cbor_reserved_info"),
        ("tag 1 (epoch time)", "c11a514b67b0", "cbor_unsupported_tag"),
        ("tag 42 on text", "d82a6161", "cbor_invalid_link"),
        (
            "tag 42 without 0x00 prefix",
            "d82a4101",
            "cbor_invalid_link",
        ),
        ("undefined", "f7", "cbor_undefined"),
        ("simple value 16", "f0", "cbor_unsupported_simple"),
        (
            "simple value in next byte",
            "f820",
            "cbor_unsupported_simple",
        ),
        ("half float", "f93c00", "cbor_float_not_double"),
        ("single float", "fa3fc00000", "cbor_float_not_double"),
        ("NaN", "fb7ff8000000000000", "cbor_non_finite_float"),
        ("infinity", "fb7ff0000000000000", "cbor_non_finite_float"),
        ("-infinity", "fbfff0000000000000", "cbor_non_finite_float"),
        ("map key not text", "a10102", "cbor_map_key_not_text"),
        (
            "map keys out of order (bytewise)",
            "a2616201616101",
            "cbor_map_key_order",
        ),
        (
            "map keys out of order (length first)",
            "a262616101616201",
            "cbor_map_key_order",
        ),
        ("duplicate key", "a2616101616102", "cbor_duplicate_map_key"),
        ("invalid utf-8", "62c328", "cbor_invalid_utf8"),
        ("truncated uint", "1a0001", "cbor_unexpected_end"),
        (
            "truncated array",
            "820102"[..4].as_ref(),
            "cbor_length_exceeds_input",
        ),
        (
            "huge byte length",
            "5bffffffffffffffff",
            "cbor_length_exceeds_input",
        ),
        (
            "huge array count",
            "9bffffffffffffffff",
            "cbor_length_exceeds_input",
        ),
        ("trailing bytes", "0101", "cbor_trailing_bytes"),
        ("empty input", "", "cbor_unexpected_end"),
    ];
    for (name, input, reason) in table {
        let input: String = input.split_whitespace().collect();
        assert_eq!(err(&input).reason(), *reason, "{name}");
    }
    println!("suite cbor forbidden encodings: {} cases", table.len());
}

#[test]
fn nesting_bound_is_enforced_without_stack_overflow() {
    let depth = relay::config::limits::CBOR_NESTING_DEPTH_MAX + 1;
    let mut deep = vec![0x81u8; depth];
    deep.push(0x01);
    assert_eq!(
        cbor::decode(&deep).unwrap_err().reason(),
        "cbor_nesting_too_deep"
    );
    let mut ok = vec![0x81u8; depth - 1];
    ok.push(0x01);
    cbor::decode(&ok).unwrap();
    // A million nested arrays is rejected just as cheaply.
    let hostile = vec![0x81u8; 1_000_000];
    assert!(cbor::decode(&hostile).is_err());
}

#[test]
fn decode_prefix_splits_back_to_back_items() {
    let bytes = hex::decode("a261746723636f6d6d6974626f7001a1637365710c").unwrap();
    let (header, rest) = cbor::decode_prefix(&bytes).unwrap();
    let cbor::Value::Map(header) = header else {
        panic!("header is a map")
    };
    assert_eq!(header.get("t"), Some(cbor::Value::Text("#commit")));
    assert_eq!(header.get("op"), Some(cbor::Value::Unsigned(1)));
    let body = cbor::decode(rest).unwrap();
    let cbor::Value::Map(body) = body else {
        panic!("body is a map")
    };
    assert_eq!(body.get("seq"), Some(cbor::Value::Unsigned(12)));
}

fn arb_value() -> impl Strategy<Value = OwnedValue> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(OwnedValue::Unsigned),
        any::<u64>().prop_map(OwnedValue::Negative),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(OwnedValue::Bytes),
        ".{0,20}".prop_map(OwnedValue::Text),
        any::<bool>().prop_map(OwnedValue::Bool),
        Just(OwnedValue::Null),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(OwnedValue::Float),
        any::<[u8; 32]>().prop_map(|d| {
            let mut cid = vec![0x01, 0x71, 0x12, 0x20];
            cid.extend_from_slice(&d);
            OwnedValue::Link(cid)
        }),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(OwnedValue::Array),
            proptest::collection::btree_map("[a-z$]{0,6}", inner, 0..8)
                .prop_map(|m| OwnedValue::Map(m.into_iter().collect())),
        ]
    })
}

/// Canonical form of an owned value for comparison: maps sorted canonically.
fn canonical(value: &OwnedValue) -> OwnedValue {
    let bytes = value.to_bytes();
    OwnedValue::from_view(&cbor::decode(&bytes).unwrap())
}

fn to_ciborium(value: &OwnedValue) -> ciborium::Value {
    match value {
        OwnedValue::Unsigned(n) => ciborium::Value::Integer((*n).into()),
        OwnedValue::Negative(n) => {
            ciborium::Value::Integer((-1 - i128::from(*n)).try_into().unwrap())
        }
        OwnedValue::Bytes(b) => ciborium::Value::Bytes(b.clone()),
        OwnedValue::Text(t) => ciborium::Value::Text(t.clone()),
        OwnedValue::Array(a) => ciborium::Value::Array(a.iter().map(to_ciborium).collect()),
        OwnedValue::Map(m) => ciborium::Value::Map(
            m.iter()
                .map(|(k, v)| (ciborium::Value::Text(k.clone()), to_ciborium(v)))
                .collect(),
        ),
        OwnedValue::Link(cid) => {
            let mut tagged = vec![0u8];
            tagged.extend_from_slice(cid);
            ciborium::Value::Tag(42, Box::new(ciborium::Value::Bytes(tagged)))
        }
        OwnedValue::Bool(b) => ciborium::Value::Bool(*b),
        OwnedValue::Null => ciborium::Value::Null,
        OwnedValue::Float(f) => ciborium::Value::Float(*f),
    }
}

proptest! {
    #[test]
    fn encode_decode_round_trip(value in arb_value()) {
        let bytes = value.to_bytes();
        let decoded = cbor::decode(&bytes).unwrap();
        let mut again = Vec::new();
        cbor::encode_value(&decoded, &mut again);
        prop_assert_eq!(&again, &bytes);
        prop_assert_eq!(canonical(&OwnedValue::from_view(&decoded)), canonical(&value));
    }

    #[test]
    fn ciborium_reads_the_same_value(value in arb_value()) {
        let bytes = value.to_bytes();
        let theirs: ciborium::Value = ciborium::from_reader(bytes.as_slice()).unwrap();
        let ours = to_ciborium(&canonical(&value));
        prop_assert_eq!(theirs, ours);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(value) = cbor::decode(&bytes) {
            // Whatever is accepted is canonical: it re-encodes to the same bytes.
            let mut again = Vec::new();
            cbor::encode_value(&value, &mut again);
            prop_assert_eq!(again, bytes);
        }
    }
}

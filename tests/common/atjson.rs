//! Fixture helpers over the library's atproto JSON converter (`relay::frame::atjson`):
//! firehose messages in the fixture files are written in that JSON form.

use relay::frame::atjson;
use relay::frame::cbor::OwnedValue;
use relay::frame::cid::Cid;
use serde_json::Value as Json;

/// Convert one JSON value; panics (failing the test) on anything outside the data model.
pub fn to_owned_value(json: &Json) -> OwnedValue {
    atjson::value_from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

/// The canonical DAG-CBOR bytes of a JSON value.
pub fn to_cbor(json: &Json) -> Vec<u8> {
    to_owned_value(json).to_bytes()
}

/// A `$link` object as a CID.
pub fn link(json: &Json) -> Cid {
    match to_owned_value(json) {
        OwnedValue::Link(bytes) => Cid::from_bytes(&bytes).unwrap(),
        other => panic!("not a $link: {other:?}"),
    }
}

/// A `$bytes` object decoded.
pub fn bytes(json: &Json) -> Vec<u8> {
    match to_owned_value(json) {
        OwnedValue::Bytes(bytes) => bytes,
        other => panic!("not $bytes: {other:?}"),
    }
}

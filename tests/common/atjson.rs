//! The atproto JSON form of the data model, as the fixture files write firehose messages,
//! converted to owned DAG-CBOR values: `{"$bytes": <base64, unpadded>}` → bytes,
//! `{"$link": <base32 CID>}` → a tag-42 link, integers, strings, null, booleans, arrays
//! and objects as themselves. Floats are not in the data model and fail the test.

use base64::Engine;
use relay::frame::cbor::OwnedValue;
use relay::frame::cid::Cid;
use serde_json::Value as Json;

/// Convert one JSON value; panics (failing the test) on anything outside the data model.
pub fn to_owned_value(json: &Json) -> OwnedValue {
    match json {
        Json::Null => OwnedValue::Null,
        Json::Bool(b) => OwnedValue::Bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                OwnedValue::Unsigned(u)
            } else if let Some(i) = n.as_i64() {
                OwnedValue::int(i)
            } else {
                panic!("float {n} is not in the atproto data model")
            }
        }
        Json::String(s) => OwnedValue::Text(s.clone()),
        Json::Array(items) => OwnedValue::Array(items.iter().map(to_owned_value).collect()),
        Json::Object(map) => {
            if let Some(bytes) = special(map, "$bytes") {
                return OwnedValue::Bytes(decode_base64(bytes));
            }
            if let Some(link) = special(map, "$link") {
                let cid = Cid::parse_str(link).unwrap_or_else(|e| panic!("$link {link}: {e}"));
                return OwnedValue::Link(cid.to_bytes().to_vec());
            }
            OwnedValue::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), to_owned_value(v)))
                    .collect(),
            )
        }
    }
}

/// The canonical DAG-CBOR bytes of a JSON value.
pub fn to_cbor(json: &Json) -> Vec<u8> {
    to_owned_value(json).to_bytes()
}

/// A `$link` string as a CID.
pub fn link(json: &Json) -> Cid {
    let text = json["$link"]
        .as_str()
        .unwrap_or_else(|| panic!("not a $link: {json}"));
    Cid::parse_str(text).unwrap()
}

/// A `$bytes` value decoded.
pub fn bytes(json: &Json) -> Vec<u8> {
    decode_base64(
        json["$bytes"]
            .as_str()
            .unwrap_or_else(|| panic!("not $bytes: {json}")),
    )
}

/// The string under `key` of a `{"$link"|"$bytes": string}` object with no other key.
fn special<'j>(map: &'j serde_json::Map<String, Json>, key: &str) -> Option<&'j str> {
    if map.len() != 1 {
        return None;
    }
    map.get(key).map(|v| {
        v.as_str()
            .unwrap_or_else(|| panic!("{key} must hold a string"))
    })
}

fn decode_base64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("$bytes is not unpadded standard base64: {e}"))
}

//! The atproto JSON form of the data model (`$link`, `$bytes`, blobs), converted to and
//! checked as DAG-CBOR values.
//!
//! Owns: the data-model rules that apply to JSON input (no non-integer floats, `$type`
//! a non-empty string, well-formed `$link`/`$bytes` objects with no extra keys, blobs with
//! a `ref` link, a `mimeType` string and an integer `size`).
//! Must not: sit on the firehose hot path (frames are CBOR); it serves fixtures, the
//! simulator and the HTTP API.

use crate::frame::cbor::OwnedValue;
use crate::frame::cid::Cid;
use base64::Engine;
use serde_json::Value as Json;
use std::fmt;

/// Why a JSON value is not valid in the atproto data model.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataModelError {
    /// A record (top level) that is not an object.
    TopLevelNotObject,
    /// A number with a fractional part, or outside the 64-bit integer range.
    Float,
    /// `$type` that is not a non-empty string.
    BadType,
    /// A `$link` object that is malformed or holds a bad CID.
    BadLink,
    /// A `$bytes` object that is malformed or holds bad base64.
    BadBytes,
    /// A blob missing a field or with a field of the wrong type.
    BadBlob,
}

impl DataModelError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            DataModelError::TopLevelNotObject => "data_model_top_level_not_object",
            DataModelError::Float => "data_model_float",
            DataModelError::BadType => "data_model_bad_type",
            DataModelError::BadLink => "data_model_bad_link",
            DataModelError::BadBytes => "data_model_bad_bytes",
            DataModelError::BadBlob => "data_model_bad_blob",
        }
    }
}

impl fmt::Display for DataModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for DataModelError {}

/// Convert a record-like JSON value (must be an object at the top) to the data model.
pub fn record_from_json(json: &Json) -> Result<OwnedValue, DataModelError> {
    if !json.is_object() {
        return Err(DataModelError::TopLevelNotObject);
    }
    value_from_json(json)
}

/// Convert any atproto JSON value to the data model.
pub fn value_from_json(json: &Json) -> Result<OwnedValue, DataModelError> {
    match json {
        Json::Null => Ok(OwnedValue::Null),
        Json::Bool(b) => Ok(OwnedValue::Bool(*b)),
        Json::Number(n) => number(n),
        Json::String(s) => Ok(OwnedValue::Text(s.clone())),
        Json::Array(items) => items
            .iter()
            .map(value_from_json)
            .collect::<Result<_, _>>()
            .map(OwnedValue::Array),
        Json::Object(map) => object(map),
    }
}

fn number(n: &serde_json::Number) -> Result<OwnedValue, DataModelError> {
    if let Some(i) = n.as_i64() {
        return Ok(OwnedValue::int(i));
    }
    if let Some(u) = n.as_u64() {
        return Ok(OwnedValue::Unsigned(u));
    }
    // JSON writers may print an integer as `123.0`; the data model has only integers.
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
            Ok(OwnedValue::int(f as i64))
        }
        _ => Err(DataModelError::Float),
    }
}

fn object(map: &serde_json::Map<String, Json>) -> Result<OwnedValue, DataModelError> {
    if let Some(link) = map.get("$link") {
        return link_object(map, link);
    }
    if let Some(bytes) = map.get("$bytes") {
        return bytes_object(map, bytes);
    }
    match map.get("$type") {
        None => {}
        Some(Json::String(t)) if t == "blob" => check_blob(map)?,
        Some(Json::String(t)) if !t.is_empty() => {}
        Some(_) => return Err(DataModelError::BadType),
    }
    let entries = map
        .iter()
        .map(|(k, v)| Ok((k.clone(), value_from_json(v)?)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OwnedValue::Map(entries))
}

fn link_object(
    map: &serde_json::Map<String, Json>,
    link: &Json,
) -> Result<OwnedValue, DataModelError> {
    let (1, Json::String(text)) = (map.len(), link) else {
        return Err(DataModelError::BadLink);
    };
    let cid = Cid::parse_str(text).map_err(|_| DataModelError::BadLink)?;
    Ok(OwnedValue::Link(cid.to_bytes().to_vec()))
}

fn bytes_object(
    map: &serde_json::Map<String, Json>,
    bytes: &Json,
) -> Result<OwnedValue, DataModelError> {
    let (1, Json::String(text)) = (map.len(), bytes) else {
        return Err(DataModelError::BadBytes);
    };
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| DataModelError::BadBytes)?;
    Ok(OwnedValue::Bytes(decoded))
}

fn check_blob(map: &serde_json::Map<String, Json>) -> Result<(), DataModelError> {
    let link_ok = matches!(map.get("ref"), Some(Json::Object(r)) if r.contains_key("$link"));
    let mime_ok = matches!(map.get("mimeType"), Some(Json::String(_)));
    let size_ok = matches!(map.get("size"), Some(Json::Number(n)) if n.is_i64() || n.is_u64());
    if link_ok && mime_ok && size_ok {
        Ok(())
    } else {
        Err(DataModelError::BadBlob)
    }
}

/// Encode bytes the way atproto JSON does (`$bytes`: standard base64 without padding).
pub fn bytes_to_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

//! An owned DAG-CBOR value tree, for building data (tests, the simulator, fixtures in
//! JSON form). Not for the hot path: decoding never builds one.

use super::decode::{Value, canonical_key_cmp};
use super::encode::Encoder;

/// An owned DAG-CBOR value. Maps are kept as entry lists and sorted canonically when
/// encoded, so any insertion order gives the same bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedValue {
    /// A non-negative integer.
    Unsigned(u64),
    /// A negative integer `-1 - n`.
    Negative(u64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A text string.
    Text(String),
    /// An array.
    Array(Vec<OwnedValue>),
    /// A map with text keys; duplicate keys are the builder's bug.
    Map(Vec<(String, OwnedValue)>),
    /// A link given as the CID's binary form.
    Link(Vec<u8>),
    /// A boolean.
    Bool(bool),
    /// Null.
    Null,
    /// A finite float.
    Float(f64),
}

impl OwnedValue {
    /// A signed integer.
    pub fn int(value: i64) -> OwnedValue {
        if value >= 0 {
            OwnedValue::Unsigned(value as u64)
        } else {
            OwnedValue::Negative((-(value + 1)) as u64)
        }
    }

    /// A text value.
    pub fn text(value: impl Into<String>) -> OwnedValue {
        OwnedValue::Text(value.into())
    }

    /// A map from `(key, value)` pairs in any order.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, OwnedValue)>) -> OwnedValue {
        OwnedValue::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Canonical DAG-CBOR bytes of this value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Append canonical DAG-CBOR bytes of this value.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            OwnedValue::Unsigned(n) => {
                Encoder::new(out).u64(*n);
            }
            OwnedValue::Negative(n) => {
                Encoder::new(out).negative(*n);
            }
            OwnedValue::Bytes(b) => {
                Encoder::new(out).bytes(b);
            }
            OwnedValue::Text(t) => {
                Encoder::new(out).text(t);
            }
            OwnedValue::Array(items) => {
                Encoder::new(out).array(items.len() as u64);
                items.iter().for_each(|item| item.encode(out));
            }
            OwnedValue::Map(entries) => {
                let mut sorted: Vec<&(String, OwnedValue)> = entries.iter().collect();
                sorted.sort_by(|a, b| canonical_key_cmp(&a.0, &b.0));
                Encoder::new(out).map(sorted.len() as u64);
                for (key, value) in sorted {
                    Encoder::new(out).text(key);
                    value.encode(out);
                }
            }
            OwnedValue::Link(cid) => {
                Encoder::new(out).link_bytes(cid);
            }
            OwnedValue::Bool(b) => {
                Encoder::new(out).bool(*b);
            }
            OwnedValue::Null => {
                Encoder::new(out).null();
            }
            OwnedValue::Float(f) => {
                Encoder::new(out).f64(*f);
            }
        }
    }

    /// Copy a borrowed view into an owned tree.
    pub fn from_view(value: &Value<'_>) -> OwnedValue {
        match value {
            Value::Unsigned(n) => OwnedValue::Unsigned(*n),
            Value::Negative(n) => OwnedValue::Negative(*n),
            Value::Bytes(b) => OwnedValue::Bytes(b.to_vec()),
            Value::Text(t) => OwnedValue::Text((*t).to_owned()),
            Value::Array(a) => {
                OwnedValue::Array(a.iter().map(|v| OwnedValue::from_view(&v)).collect())
            }
            Value::Map(m) => OwnedValue::Map(
                m.iter()
                    .map(|(k, v)| (k.to_owned(), OwnedValue::from_view(&v)))
                    .collect(),
            ),
            Value::Link(cid) => OwnedValue::Link(cid.as_bytes().to_vec()),
            Value::Bool(b) => OwnedValue::Bool(*b),
            Value::Null => OwnedValue::Null,
            Value::Float(f) => OwnedValue::Float(*f),
        }
    }
}

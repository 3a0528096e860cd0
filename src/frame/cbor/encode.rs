//! Canonical DAG-CBOR encoding.
//!
//! Owns: writing heads in their shortest form, strings, links and floats the way
//! DAG-CBOR requires. Must not: reorder caller-built maps behind the caller's back; map
//! entries written through [`Encoder`] must come in canonical key order (the owned
//! [`super::OwnedValue`] sorts for you, and a debug assertion catches misuse in tests).

use super::decode::{Value, canonical_key_cmp};

/// Appends canonical DAG-CBOR to a byte vector.
#[derive(Debug)]
pub struct Encoder<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> Encoder<'o> {
    /// An encoder appending to `out`.
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        Encoder { out }
    }

    fn head(&mut self, major: u8, arg: u64) {
        let major = major << 5;
        if arg < 24 {
            self.out.push(major | arg as u8);
        } else if arg <= 0xff {
            self.out.extend_from_slice(&[major | 24, arg as u8]);
        } else if arg <= 0xffff {
            self.out.push(major | 25);
            self.out.extend_from_slice(&(arg as u16).to_be_bytes());
        } else if arg <= 0xffff_ffff {
            self.out.push(major | 26);
            self.out.extend_from_slice(&(arg as u32).to_be_bytes());
        } else {
            self.out.push(major | 27);
            self.out.extend_from_slice(&arg.to_be_bytes());
        }
    }

    /// An unsigned integer.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.head(0, value);
        self
    }

    /// A signed integer.
    pub fn i64(&mut self, value: i64) -> &mut Self {
        if value >= 0 {
            self.head(0, value as u64);
        } else {
            // -1 - n = value  =>  n = -(value + 1), which cannot overflow.
            self.head(1, (-(value + 1)) as u64);
        }
        self
    }

    /// A negative integer given as `n` in `-1 - n` (covers the full CBOR range).
    pub fn negative(&mut self, n: u64) -> &mut Self {
        self.head(1, n);
        self
    }

    /// A byte string.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.head(2, bytes.len() as u64);
        self.out.extend_from_slice(bytes);
        self
    }

    /// A text string.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.head(3, text.len() as u64);
        self.out.extend_from_slice(text.as_bytes());
        self
    }

    /// An array head; `len` items must follow.
    pub fn array(&mut self, len: u64) -> &mut Self {
        self.head(4, len);
        self
    }

    /// A map head; `len` key/value pairs must follow, keys in canonical order.
    pub fn map(&mut self, len: u64) -> &mut Self {
        self.head(5, len);
        self
    }

    /// A tag-42 link to the CID whose binary form is `cid_bytes`.
    pub fn link_bytes(&mut self, cid_bytes: &[u8]) -> &mut Self {
        self.head(6, super::decode::TAG_LINK);
        self.head(2, cid_bytes.len() as u64 + 1);
        self.out.push(0x00);
        self.out.extend_from_slice(cid_bytes);
        self
    }

    /// A boolean.
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.out.push(if value { 0xf5 } else { 0xf4 });
        self
    }

    /// `null`.
    pub fn null(&mut self) -> &mut Self {
        self.out.push(0xf6);
        self
    }

    /// A float, always in 64 bits. The caller must not pass NaN or infinities.
    pub fn f64(&mut self, value: f64) -> &mut Self {
        debug_assert!(value.is_finite(), "DAG-CBOR has no non-finite floats");
        self.out.push(0xfb);
        self.out.extend_from_slice(&value.to_bits().to_be_bytes());
        self
    }

    /// Bytes already known to be one canonical item (e.g. a record passed through).
    pub fn raw(&mut self, item: &[u8]) -> &mut Self {
        self.out.extend_from_slice(item);
        self
    }
}

/// Encode a decoded view back to bytes. A view decoded from canonical input encodes to
/// the identical bytes.
pub fn encode_value(value: &Value<'_>, out: &mut Vec<u8>) {
    let mut enc = Encoder::new(out);
    match value {
        Value::Unsigned(n) => {
            enc.u64(*n);
        }
        Value::Negative(n) => {
            enc.negative(*n);
        }
        Value::Bytes(b) => {
            enc.bytes(b);
        }
        Value::Text(t) => {
            enc.text(t);
        }
        Value::Array(array) => {
            enc.array(array.len());
            for item in array.iter() {
                encode_value(&item, out);
            }
        }
        Value::Map(map) => {
            enc.map(map.len());
            let mut previous: Option<&str> = None;
            for (key, item) in map.iter() {
                debug_assert!(previous.is_none_or(|p| canonical_key_cmp(p, key).is_lt()));
                previous = Some(key);
                Encoder::new(out).text(key);
                encode_value(&item, out);
            }
        }
        Value::Link(cid) => {
            enc.link_bytes(cid.as_bytes());
        }
        Value::Bool(b) => {
            enc.bool(*b);
        }
        Value::Null => {
            enc.null();
        }
        Value::Float(f) => {
            enc.f64(*f);
        }
    }
}

//! Strict DAG-CBOR decoding into borrowed views.
//!
//! Owns: the byte-level grammar of DAG-CBOR and its strictness rules.
//! Must not: allocate per value, interpret atproto semantics, or touch IO.
//!
//! Always checks (a whole item is validated before any view of it is handed out):
//! definite lengths only, minimal integer and length heads, lengths within the input,
//! UTF-8 text, map keys that are text in canonical order (shorter first, then bytewise;
//! strictly increasing, so no duplicates), tag 42 only and only around a well-formed CID
//! with the 0x00 multibase prefix, 64-bit finite floats only, no `undefined` or other
//! simple values, and a nesting depth bound.
//! Does not check: that integers fit i64 or that links use atproto codecs (the layers
//! above decide; the generic IPLD fixtures need both).

use super::DecodeError;
use crate::config::limits::CBOR_NESTING_DEPTH_MAX;
use crate::frame::cid::CidRef;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// The only tag DAG-CBOR allows: a CID link.
pub(crate) const TAG_LINK: u64 = 42;

/// A decoded DAG-CBOR value borrowing from the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Major type 0.
    Unsigned(u64),
    /// Major type 1: the value is `-1 - n`.
    Negative(u64),
    /// A byte string.
    Bytes(&'a [u8]),
    /// A UTF-8 text string.
    Text(&'a str),
    /// An array, iterated lazily.
    Array(Array<'a>),
    /// A map with text keys in canonical order, iterated lazily.
    Map(Map<'a>),
    /// A tag-42 CID link.
    Link(CidRef<'a>),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A finite 64-bit float.
    Float(f64),
}

/// A validated array: its element count and the bytes of its elements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Array<'a> {
    len: u64,
    body: &'a [u8],
}

/// A validated map: its entry count and the bytes of its entries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Map<'a> {
    len: u64,
    body: &'a [u8],
}

/// Decode exactly one DAG-CBOR item; trailing bytes are an error.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let (value, rest) = decode_prefix(input)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            offset: input.len() - rest.len(),
        });
    }
    Ok(value)
}

/// Decode one DAG-CBOR item at the start of `input` and return the bytes after it.
/// Firehose frames are two items back to back (header, then body).
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, &[u8]), DecodeError> {
    let mut reader = Reader::new(input);
    reader.skip_item(0)?;
    let (item, rest) = input
        .split_at_checked(reader.pos)
        .ok_or(DecodeError::Internal)?;
    let value = Reader::new(item).read_validated()?;
    Ok((value, rest))
}

/// Validate that `input` is exactly one well-formed DAG-CBOR item.
pub fn validate(input: &[u8]) -> Result<(), DecodeError> {
    decode(input).map(|_| ())
}

impl<'a> Array<'a> {
    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements in order.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            reader: Reader::new(self.body),
            remaining: self.len,
        }
    }

    /// The encoded bytes of all elements (without the array head).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

impl<'a> Map<'a> {
    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in canonical key order.
    pub fn iter(&self) -> MapIter<'a> {
        MapIter {
            reader: Reader::new(self.body),
            remaining: self.len,
        }
    }

    /// The value under `key`, if present. Linear: maps in frames are small, and typed
    /// decoders walk `iter()` once instead.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The encoded bytes of all entries (without the map head).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// Iterator over the elements of a validated [`Array`].
#[derive(Clone, Debug)]
pub struct ArrayIter<'a> {
    reader: Reader<'a>,
    remaining: u64,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // The body was validated when the array was built, so this cannot fail; if it
        // somehow did, ending the iteration is the safe answer.
        self.reader.read_validated().ok()
    }
}

/// Iterator over the entries of a validated [`Map`].
#[derive(Clone, Debug)]
pub struct MapIter<'a> {
    reader: Reader<'a>,
    remaining: u64,
}

impl<'a> Iterator for MapIter<'a> {
    type Item = (&'a str, Value<'a>);

    fn next(&mut self) -> Option<(&'a str, Value<'a>)> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let key = match self.reader.read_validated().ok()? {
            Value::Text(key) => key,
            _ => return None,
        };
        let value = self.reader.read_validated().ok()?;
        Some((key, value))
    }
}

/// A cursor over CBOR bytes.
#[derive(Clone, Debug)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A decoded item head: major type and argument, with the additional-info bits kept
/// for the simple/float major type.
#[derive(Clone, Copy, Debug)]
struct Head {
    major: u8,
    info: u8,
    arg: u64,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::LengthExceedsInput { offset: self.pos })?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::UnexpectedEnd { offset: self.pos })?;
        self.pos = end;
        Ok(bytes)
    }

    fn take_len(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let remaining = self.buf.len() - self.pos.min(self.buf.len());
        // Reject a length larger than the input before touching it: nothing is allocated.
        if len > remaining as u64 {
            return Err(DecodeError::LengthExceedsInput { offset: self.pos });
        }
        self.take(len as usize)
    }

    fn read_u8(&mut self) -> Result<u8, DecodeError> {
        let byte = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError::UnexpectedEnd { offset: self.pos })?;
        self.pos += 1;
        Ok(byte)
    }

    fn read_be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Read a head, enforcing minimal encoding and definite lengths.
    fn read_head(&mut self) -> Result<Head, DecodeError> {
        let offset = self.pos;
        let first = self.read_u8()?;
        let major = first >> 5;
        let info = first & 0x1f;
        let (arg, minimum) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (self.read_be(1)?, 24),
            25 => (self.read_be(2)?, 0x100),
            26 => (self.read_be(4)?, 0x1_0000),
            27 => (self.read_be(8)?, 0x1_0000_0000),
            28..=30 => return Err(DecodeError::ReservedInfo { offset }),
            _ => return Err(DecodeError::IndefiniteLength { offset }),
        };
        // Floats (major 7, info 25..27) carry bits, not an integer: minimality does not apply.
        if major != MAJOR_SIMPLE && arg < minimum {
            return Err(DecodeError::NonMinimalInteger { offset });
        }
        Ok(Head { major, info, arg })
    }

    /// Validate one item and advance past it.
    fn skip_item(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth > CBOR_NESTING_DEPTH_MAX {
            return Err(DecodeError::NestingTooDeep { offset: self.pos });
        }
        let offset = self.pos;
        let head = self.read_head()?;
        match head.major {
            MAJOR_UNSIGNED | MAJOR_NEGATIVE => Ok(()),
            MAJOR_BYTES => self.take_len(head.arg).map(|_| ()),
            MAJOR_TEXT => self.read_text(head.arg, offset).map(|_| ()),
            MAJOR_ARRAY => self.skip_array(head.arg, depth),
            MAJOR_MAP => self.skip_map(head.arg, depth),
            MAJOR_TAG => self.read_link(head.arg, offset).map(|_| ()),
            _ => simple_value(head, offset).map(|_| ()),
        }
    }

    fn skip_array(&mut self, len: u64, depth: usize) -> Result<(), DecodeError> {
        self.check_count_fits(len, 1)?;
        for _ in 0..len {
            self.skip_item(depth + 1)?;
        }
        Ok(())
    }

    fn skip_map(&mut self, len: u64, depth: usize) -> Result<(), DecodeError> {
        self.check_count_fits(len, 2)?;
        let mut previous: Option<&'a str> = None;
        for _ in 0..len {
            let offset = self.pos;
            let head = self.read_head()?;
            if head.major != MAJOR_TEXT {
                return Err(DecodeError::MapKeyNotText { offset });
            }
            let key = self.read_text(head.arg, offset)?;
            if let Some(previous) = previous {
                check_key_order(previous, key, offset)?;
            }
            previous = Some(key);
            self.skip_item(depth + 1)?;
        }
        Ok(())
    }

    /// Every element takes at least one byte: a count larger than the remaining input
    /// is rejected at once, so a hostile length costs nothing.
    fn check_count_fits(&self, count: u64, bytes_per_element_min: u64) -> Result<(), DecodeError> {
        let remaining = (self.buf.len() - self.pos.min(self.buf.len())) as u64;
        match count.checked_mul(bytes_per_element_min) {
            Some(need) if need <= remaining => Ok(()),
            _ => Err(DecodeError::LengthExceedsInput { offset: self.pos }),
        }
    }

    fn read_text(&mut self, len: u64, offset: usize) -> Result<&'a str, DecodeError> {
        let bytes = self.take_len(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { offset })
    }

    fn read_link(&mut self, tag: u64, offset: usize) -> Result<CidRef<'a>, DecodeError> {
        if tag != TAG_LINK {
            return Err(DecodeError::UnsupportedTag { offset, tag });
        }
        let content_offset = self.pos;
        let head = self.read_head()?;
        if head.major != MAJOR_BYTES {
            return Err(DecodeError::InvalidLink {
                offset: content_offset,
            });
        }
        let bytes = self.take_len(head.arg)?;
        CidRef::from_tagged_bytes(bytes).ok_or(DecodeError::InvalidLink {
            offset: content_offset,
        })
    }

    /// Read an item already known valid (its bytes passed `skip_item`), building a view.
    fn read_validated(&mut self) -> Result<Value<'a>, DecodeError> {
        let offset = self.pos;
        let head = self.read_head()?;
        match head.major {
            MAJOR_UNSIGNED => Ok(Value::Unsigned(head.arg)),
            MAJOR_NEGATIVE => Ok(Value::Negative(head.arg)),
            MAJOR_BYTES => Ok(Value::Bytes(self.take_len(head.arg)?)),
            MAJOR_TEXT => Ok(Value::Text(self.read_text(head.arg, offset)?)),
            MAJOR_ARRAY => {
                let body = self.container_body(head.arg, 1)?;
                Ok(Value::Array(Array {
                    len: head.arg,
                    body,
                }))
            }
            MAJOR_MAP => {
                let body = self.container_body(head.arg, 2)?;
                Ok(Value::Map(Map {
                    len: head.arg,
                    body,
                }))
            }
            MAJOR_TAG => Ok(Value::Link(self.read_link(head.arg, offset)?)),
            _ => simple_value(head, offset),
        }
    }

    /// The bytes of `count * items_per_entry` consecutive items, skipped without
    /// re-checking what validation already proved.
    fn container_body(
        &mut self,
        count: u64,
        items_per_entry: u64,
    ) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let items = count
            .checked_mul(items_per_entry)
            .ok_or(DecodeError::Internal)?;
        for _ in 0..items {
            self.skip_validated()?;
        }
        self.buf.get(start..self.pos).ok_or(DecodeError::Internal)
    }

    /// Skip an item already validated: only heads and lengths are read.
    fn skip_validated(&mut self) -> Result<(), DecodeError> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let head = self.read_head()?;
            match head.major {
                MAJOR_BYTES | MAJOR_TEXT => {
                    self.take_len(head.arg)?;
                }
                MAJOR_ARRAY => pending = pending.saturating_add(head.arg),
                MAJOR_MAP => pending = pending.saturating_add(head.arg.saturating_mul(2)),
                MAJOR_TAG => pending += 1,
                _ => {}
            }
        }
        Ok(())
    }
}

fn check_key_order(previous: &str, key: &str, offset: usize) -> Result<(), DecodeError> {
    use std::cmp::Ordering;
    match canonical_key_cmp(previous, key) {
        Ordering::Less => Ok(()),
        Ordering::Equal => Err(DecodeError::DuplicateMapKey { offset }),
        Ordering::Greater => Err(DecodeError::MapKeyOrder { offset }),
    }
}

/// DAG-CBOR canonical map key order: shorter keys first, then bytewise.
pub fn canonical_key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

fn simple_value<'a>(head: Head, offset: usize) -> Result<Value<'a>, DecodeError> {
    match head.info {
        20 => Ok(Value::Bool(false)),
        21 => Ok(Value::Bool(true)),
        22 => Ok(Value::Null),
        23 => Err(DecodeError::Undefined { offset }),
        25 | 26 => Err(DecodeError::FloatNotDouble { offset }),
        27 => {
            let float = f64::from_bits(head.arg);
            if float.is_finite() {
                Ok(Value::Float(float))
            } else {
                Err(DecodeError::NonFiniteFloat { offset })
            }
        }
        _ => Err(DecodeError::UnsupportedSimple { offset }),
    }
}

//! CAR v1: the container of commit slices in `#commit`/`#sync` frames and of full repos.
//!
//! Owns: streaming section iteration over a byte slice ([`CarReader`]), the sorted
//! block index a commit check looks blocks up in ([`Blocks`]), and the writer of
//! single-root CARs ([`write_car`]: the simulator's commit slices, repo exports).
//! Must not: allocate per section, or decode block contents beyond the header.
//! Always checks: header and section lengths against the input *before* using them (a
//! hostile length costs nothing), version 1, the header's shape (`roots` array of links,
//! `version`, nothing else), zero-length sections, a CID at the start of every section.
//! Does not check: block hashes while iterating (call [`Section::verify`], or let
//! [`Blocks::load`] do it), or which codecs blocks use.

use crate::frame::cbor::Encoder;
use crate::frame::cbor::{self, Value};
use crate::frame::cid::{Cid, CidError, CidRef};
use crate::frame::varint::{VarintError, read_varint, write_varint};
use std::fmt;

/// Why a CAR cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CarError {
    /// The header length varint is malformed or missing.
    BadHeaderLength(VarintError),
    /// The header claims more bytes than the input has.
    HeaderLengthExceedsInput,
    /// A header of length zero.
    EmptyHeader,
    /// The header is not valid DAG-CBOR.
    HeaderNotCbor(cbor::DecodeError),
    /// The header is not a map of `roots` and `version`.
    BadHeaderShape,
    /// A version other than 1 (CARv2 files announce 2).
    UnsupportedVersion(u64),
    /// Version 1 without a `roots` array.
    MissingRoots,
    /// A section length varint is malformed.
    BadSectionLength(VarintError),
    /// A section claims more bytes than the input has left.
    SectionLengthExceedsInput,
    /// A section of length zero (padding is not accepted).
    ZeroLengthSection,
    /// The section does not start with a CID.
    BadSectionCid(CidError),
    /// A block does not hash to its CID.
    HashMismatch,
    /// The root is not a block of the CAR, or there is not exactly one root.
    BadRoot,
    /// A CID that atproto does not use (not v1 sha2-256 dag-cbor/raw).
    NotAtprotoCid,
    /// More blocks than the bound allows.
    TooManyBlocks,
}

impl CarError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            CarError::BadHeaderLength(_) => "car_bad_header_length",
            CarError::HeaderLengthExceedsInput => "car_header_length_exceeds_input",
            CarError::EmptyHeader => "car_empty_header",
            CarError::HeaderNotCbor(_) => "car_header_not_cbor",
            CarError::BadHeaderShape => "car_bad_header_shape",
            CarError::UnsupportedVersion(_) => "car_unsupported_version",
            CarError::MissingRoots => "car_missing_roots",
            CarError::BadSectionLength(_) => "car_bad_section_length",
            CarError::SectionLengthExceedsInput => "car_section_length_exceeds_input",
            CarError::ZeroLengthSection => "car_zero_length_section",
            CarError::BadSectionCid(_) => "car_bad_section_cid",
            CarError::HashMismatch => "car_hash_mismatch",
            CarError::BadRoot => "car_bad_root",
            CarError::NotAtprotoCid => "car_not_atproto_cid",
            CarError::TooManyBlocks => "car_too_many_blocks",
        }
    }
}

impl fmt::Display for CarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CarError::HeaderNotCbor(e) => write!(f, "CAR header: {e}"),
            CarError::UnsupportedVersion(v) => write!(f, "CAR version {v} is not supported"),
            CarError::BadSectionCid(e) => write!(f, "CAR section CID: {e}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for CarError {}

/// A streaming CAR v1 reader over a byte slice. Iterating yields sections; after the
/// first error it yields nothing more.
#[derive(Clone, Debug)]
pub struct CarReader<'a> {
    roots: cbor::Array<'a>,
    rest: &'a [u8],
    failed: bool,
}

/// One CAR section: a CID and the block bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section<'a> {
    cid: CidRef<'a>,
    data: &'a [u8],
}

impl<'a> Section<'a> {
    /// The block's CID as written in the CAR.
    pub fn cid(&self) -> CidRef<'a> {
        self.cid
    }

    /// The block bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Check the block against its CID.
    pub fn verify(&self) -> Result<(), CarError> {
        self.cid.verify_block(self.data).map_err(|e| match e {
            CidError::HashMismatch => CarError::HashMismatch,
            other => CarError::BadSectionCid(other),
        })
    }
}

impl<'a> CarReader<'a> {
    /// Read the header; sections are read as the reader is iterated.
    pub fn new(input: &'a [u8]) -> Result<CarReader<'a>, CarError> {
        let (header_len, used) = read_varint(input).map_err(CarError::BadHeaderLength)?;
        let after_len = input.get(used..).unwrap_or_default();
        if header_len > after_len.len() as u64 {
            return Err(CarError::HeaderLengthExceedsInput);
        }
        if header_len == 0 {
            return Err(CarError::EmptyHeader);
        }
        let (header, rest) = after_len
            .split_at_checked(header_len as usize)
            .ok_or(CarError::HeaderLengthExceedsInput)?;
        let roots = parse_header(header)?;
        Ok(CarReader {
            roots,
            rest,
            failed: false,
        })
    }

    /// The root CIDs of the header.
    pub fn roots(&self) -> impl ExactSizeIterator<Item = CidRef<'a>> + 'a {
        let len = self.roots.len() as usize;
        RootIter {
            inner: self.roots.iter(),
            left: len,
        }
    }

    /// The single root an atproto CAR must have, as an atproto CID.
    pub fn single_root(&self) -> Result<Cid, CarError> {
        let mut roots = self.roots();
        match (roots.next(), roots.next()) {
            (Some(root), None) => Cid::try_from(root).map_err(|_| CarError::NotAtprotoCid),
            _ => Err(CarError::BadRoot),
        }
    }

    fn next_section(&mut self) -> Result<Option<Section<'a>>, CarError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (len, used) = read_varint(self.rest).map_err(CarError::BadSectionLength)?;
        let after_len = self.rest.get(used..).unwrap_or_default();
        if len > after_len.len() as u64 {
            return Err(CarError::SectionLengthExceedsInput);
        }
        if len == 0 {
            return Err(CarError::ZeroLengthSection);
        }
        let (section, rest) = after_len
            .split_at_checked(len as usize)
            .ok_or(CarError::SectionLengthExceedsInput)?;
        let (cid, cid_len) = CidRef::read_prefix(section).map_err(CarError::BadSectionCid)?;
        let data = section.get(cid_len..).unwrap_or_default();
        self.rest = rest;
        Ok(Some(Section { cid, data }))
    }
}

impl<'a> Iterator for CarReader<'a> {
    type Item = Result<Section<'a>, CarError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_section() {
            Ok(section) => section.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

struct RootIter<'a> {
    inner: cbor::ArrayIter<'a>,
    left: usize,
}

impl<'a> Iterator for RootIter<'a> {
    type Item = CidRef<'a>;

    fn next(&mut self) -> Option<CidRef<'a>> {
        // parse_header proved every element is a link.
        let item = self.inner.next()?;
        self.left = self.left.saturating_sub(1);
        match item {
            Value::Link(cid) => Some(cid),
            _ => None,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for RootIter<'_> {}

fn parse_header(header: &[u8]) -> Result<cbor::Array<'_>, CarError> {
    let Value::Map(map) = cbor::decode(header).map_err(CarError::HeaderNotCbor)? else {
        return Err(CarError::BadHeaderShape);
    };
    let mut version = None;
    let mut roots = None;
    for (key, value) in map.iter() {
        match (key, value) {
            ("version", Value::Unsigned(v)) => version = Some(v),
            ("roots", Value::Array(array)) => roots = Some(array),
            _ => return Err(CarError::BadHeaderShape),
        }
    }
    match version {
        Some(1) => {}
        Some(other) => return Err(CarError::UnsupportedVersion(other)),
        None => return Err(CarError::BadHeaderShape),
    }
    let roots = roots.ok_or(CarError::MissingRoots)?;
    if !roots.iter().all(|root| matches!(root, Value::Link(_))) {
        return Err(CarError::BadHeaderShape);
    }
    Ok(roots)
}

/// The blocks of an atproto CAR, sorted by CID for lookup. Reusable: `load` clears and
/// refills it, keeping its capacity, so steady-state use allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct Blocks<'a> {
    sorted: Vec<(Cid, &'a [u8])>,
}

impl<'a> Blocks<'a> {
    /// An empty index.
    pub fn new() -> Self {
        Blocks { sorted: Vec::new() }
    }

    /// An empty index over a recycled buffer (see [`Blocks::recycle`]).
    pub fn with_buffer(mut buffer: Vec<(Cid, &'a [u8])>) -> Self {
        buffer.clear();
        Blocks { sorted: buffer }
    }

    /// Give the buffer back for the next frame, emptied and re-typed to another
    /// lifetime without giving up its allocation: the in-place collect of an emptied
    /// vector reuses the allocation (same element size and alignment), so a per-core
    /// index allocates only while it grows to the largest CAR seen.
    pub fn recycle<'b>(self) -> Vec<(Cid, &'b [u8])> {
        recycle_vec(self.sorted)
    }

    /// Load every block of an atproto CAR, checking each hash, and return its single
    /// root. Duplicate sections (seen in real repos) are kept once.
    pub fn load(&mut self, car: &'a [u8], blocks_max: usize) -> Result<Cid, CarError> {
        self.sorted.clear();
        let reader = CarReader::new(car)?;
        let root = reader.single_root()?;
        for section in reader {
            let section = section?;
            section.verify()?;
            let cid = Cid::try_from(section.cid()).map_err(|_| CarError::NotAtprotoCid)?;
            if self.sorted.len() >= blocks_max {
                return Err(CarError::TooManyBlocks);
            }
            self.sorted.push((cid, section.data()));
        }
        self.sorted.sort_unstable_by_key(|entry| entry.0);
        self.sorted.dedup_by(|a, b| a.0 == b.0);
        Ok(root)
    }

    /// The block with this CID, if the CAR had it.
    pub fn get(&self, cid: &Cid) -> Option<&'a [u8]> {
        let index = self
            .sorted
            .binary_search_by(|probe| probe.0.cmp(cid))
            .ok()?;
        self.sorted.get(index).map(|(_, data)| *data)
    }

    /// Number of distinct blocks.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The blocks in CID order.
    pub fn iter(&self) -> impl Iterator<Item = (&Cid, &'a [u8])> {
        self.sorted.iter().map(|(cid, data)| (cid, *data))
    }
}

/// Append a CAR v1 with single root `root` and `blocks` to `out`.
pub fn write_car<'b>(
    root: &Cid,
    blocks: impl IntoIterator<Item = (&'b Cid, &'b [u8])>,
    out: &mut Vec<u8>,
) {
    let mut header = Vec::new();
    Encoder::new(&mut header)
        .map(2)
        .text("roots")
        .array(1)
        .link_bytes(&root.to_bytes())
        .text("version")
        .u64(1);
    write_varint(header.len() as u64, out);
    out.extend_from_slice(&header);
    for (cid, block) in blocks {
        let cid_bytes = cid.to_bytes();
        write_varint((cid_bytes.len() + block.len()) as u64, out);
        out.extend_from_slice(&cid_bytes);
        out.extend_from_slice(block);
    }
}

/// Empty `vec` and re-type its element (e.g. a borrow's lifetime), keeping the
/// allocation when the element layouts match (the in-place collect of an emptied vector).
pub fn recycle_vec<T, U>(mut vec: Vec<T>) -> Vec<U> {
    vec.clear();
    vec.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_car_loads_with_its_root() {
        let block = crate::verify::mst::EMPTY_NODE_BLOCK;
        let cid = Cid::for_dag_cbor(&block);
        let mut car = Vec::new();
        write_car(&cid, [(&cid, &block[..])], &mut car);
        let mut blocks = Blocks::new();
        assert_eq!(blocks.load(&car, 10).unwrap(), cid);
        assert_eq!(blocks.get(&cid), Some(&block[..]));
    }
}

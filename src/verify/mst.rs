//! The Merkle Search Tree (MST) of atproto repositories: key heights, strict node
//! decoding, canonical node encoding, a lazily loaded editable tree ([`Mst`]), and the
//! Sync 1.1 check that inverts a commit's operations ([`invert_ops`]).
//!
//! Owns: the MST node format (`{l, e: [{p, k, v, t}]}`), the tree's canonical shape, and
//! the operations on it (get, insert, remove, split, merge, walk, root CID).
//! Must not: do IO, decode commits or CAR files (that is `frame`), or know what records
//! contain. Blocks come from a [`BlockSource`]; a block the operation needs and the source
//! lacks is [`MstError::MissingBlock`], which is how an incomplete commit proof shows.
//!
//! Always checks, for every node it reads: canonical DAG-CBOR, exactly the fields
//! `e`/`l` and `k`/`p`/`t`/`v` with the right types, links that are atproto DAG-CBOR CIDs,
//! prefix lengths (0 first, never longer than the previous key, and maximal, so that the
//! encoding is canonical), keys non-empty, at most [`MST_KEY_BYTES_MAX`] bytes and strictly
//! increasing, every key's height equal to the node's layer, a child exactly one layer
//! below its parent, no links below layer 0, no empty nodes except the empty root, a
//! trimmed root, and every child's keys inside the gap of its parent that points to it.
//! So a tree that passes is the canonical tree of its keys, and its root CID is a function
//! of the key → CID map alone.
//! Does not check: block hashes (the source must be hash-checked, as
//! [`crate::frame::car::Blocks::load`] does), the syntax of keys as repo paths (the frame
//! layer checks op paths), or that records exist.

use crate::config::limits::MST_KEY_BYTES_MAX;
use crate::frame::car::Blocks;
use crate::frame::cbor::{self, Encoder, Value};
use crate::frame::cid::{Cid, CidRef, Codec};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

/// Why an MST node, tree or operation is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MstError {
    /// A node the operation needs is not in the block source (an incomplete proof).
    MissingBlock(Cid),
    /// The node block is not one canonical DAG-CBOR item.
    NotCbor(cbor::DecodeError),
    /// The node is not a map of exactly `e` (array) and `l` (link or null).
    NodeShape,
    /// An entry is not a map of exactly `k` (bytes), `p` (uint), `t` (link or null) and
    /// `v` (link).
    EntryShape,
    /// A link that is not an atproto DAG-CBOR CID.
    LinkNotDagCbor,
    /// The first entry of a node has a non-zero prefix length.
    FirstPrefixNotZero,
    /// A prefix length longer than the previous key.
    PrefixTooLong,
    /// A prefix length shorter than the bytes the key shares with the previous key: a
    /// non-canonical encoding.
    PrefixNotMaximal,
    /// An empty key.
    KeyEmpty,
    /// A key longer than `MST_KEY_BYTES_MAX`.
    KeyTooLong,
    /// Keys of a node not strictly increasing.
    KeyOrder,
    /// Keys of one node at different heights.
    KeyHeight,
    /// A node at a layer other than one below its parent.
    LayerMismatch,
    /// A subtree link in a layer-0 node.
    LinkBelowLeaf,
    /// A non-root node with neither entries nor a subtree.
    EmptyNode,
    /// A root node without entries that points to a subtree (the tree was not trimmed).
    RootNotTrimmed,
    /// A child node whose keys fall outside the gap of its parent that links to it.
    KeyOutOfRange,
    /// The same key twice in the pairs a tree is built from.
    DuplicateKey,
    /// The tree's value before undoing (or applying) an operation does not match it.
    OpMismatch {
        /// Position of the operation in the list.
        index: usize,
    },
    /// A broken internal invariant; never expected on any input.
    Internal,
}

impl MstError {
    /// A short, bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            MstError::MissingBlock(_) => "mst_missing_block",
            MstError::NotCbor(_) => "mst_not_cbor",
            MstError::NodeShape => "mst_node_shape",
            MstError::EntryShape => "mst_entry_shape",
            MstError::LinkNotDagCbor => "mst_link_not_dag_cbor",
            MstError::FirstPrefixNotZero => "mst_first_prefix_not_zero",
            MstError::PrefixTooLong => "mst_prefix_too_long",
            MstError::PrefixNotMaximal => "mst_prefix_not_maximal",
            MstError::KeyEmpty => "mst_key_empty",
            MstError::KeyTooLong => "mst_key_too_long",
            MstError::KeyOrder => "mst_key_order",
            MstError::KeyHeight => "mst_key_height",
            MstError::LayerMismatch => "mst_layer_mismatch",
            MstError::LinkBelowLeaf => "mst_link_below_leaf",
            MstError::EmptyNode => "mst_empty_node",
            MstError::RootNotTrimmed => "mst_root_not_trimmed",
            MstError::KeyOutOfRange => "mst_key_out_of_range",
            MstError::DuplicateKey => "mst_duplicate_key",
            MstError::OpMismatch { .. } => "mst_op_mismatch",
            MstError::Internal => "mst_internal",
        }
    }
}

impl fmt::Display for MstError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MstError::MissingBlock(cid) => write!(f, "MST: block {cid} is not in the proof"),
            MstError::NotCbor(e) => write!(f, "MST node: {e}"),
            MstError::OpMismatch { index } => {
                write!(f, "MST: operation {index} does not match the tree")
            }
            other => write!(f, "MST: {}", other.reason()),
        }
    }
}

impl std::error::Error for MstError {}

// ---------------------------------------------------------------------------------------
// Keys

/// The layer of a key: the number of leading zero bits of SHA-256(key), halved (rounded
/// down), i.e. the count of leading zero 2-bit chunks. Layers run from 0 to 128.
pub fn key_height(key: &[u8]) -> u8 {
    let digest = sha2::Sha256::digest(key);
    let mut zero_bits: u32 = 0;
    for byte in digest.iter() {
        if *byte == 0 {
            zero_bits += 8;
        } else {
            zero_bits += byte.leading_zeros();
            break;
        }
    }
    (zero_bits / 2) as u8
}

/// The number of leading bytes `a` and `b` share (the `p` of prefix compression).
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn check_key(key: &[u8]) -> Result<(), MstError> {
    if key.is_empty() {
        Err(MstError::KeyEmpty)
    } else if key.len() > MST_KEY_BYTES_MAX {
        Err(MstError::KeyTooLong)
    } else {
        Ok(())
    }
}

/// The previous key of a node while its entries are read, rebuilt from prefix + suffix
/// in a fixed buffer so that validation allocates nothing.
struct KeyBuf {
    bytes: [u8; MST_KEY_BYTES_MAX],
    len: usize,
}

impl KeyBuf {
    fn new() -> Self {
        KeyBuf {
            bytes: [0; MST_KEY_BYTES_MAX],
            len: 0,
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// Replace the key by `previous[..prefix_len] + suffix`, checking that the new key is
    /// canonically compressed and strictly greater than the previous one.
    fn advance(&mut self, first: bool, prefix_len: usize, suffix: &[u8]) -> Result<(), MstError> {
        if first && prefix_len != 0 {
            return Err(MstError::FirstPrefixNotZero);
        }
        if prefix_len > self.len {
            return Err(MstError::PrefixTooLong);
        }
        let new_len = prefix_len + suffix.len();
        if new_len == 0 {
            return Err(MstError::KeyEmpty);
        }
        if new_len > MST_KEY_BYTES_MAX {
            return Err(MstError::KeyTooLong);
        }
        if !first {
            let old_rest = self.bytes.get(prefix_len..self.len).unwrap_or_default();
            if let (Some(a), Some(b)) = (suffix.first(), old_rest.first())
                && a == b
            {
                return Err(MstError::PrefixNotMaximal);
            }
            if suffix <= old_rest {
                return Err(MstError::KeyOrder);
            }
        }
        let slot = self
            .bytes
            .get_mut(prefix_len..new_len)
            .ok_or(MstError::Internal)?;
        slot.copy_from_slice(suffix);
        self.len = new_len;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Node decoding

/// A validated MST node, borrowing the block. Every check that needs only the node itself
/// has passed; checks that need its place in the tree (layer, key range) are the tree's.
#[derive(Clone, Copy, Debug)]
pub struct NodeView<'a> {
    left: Option<Cid>,
    /// The encoded entries, back to back (the body of the `e` array).
    entries: &'a [u8],
    len: usize,
    layer: Option<u8>,
}

/// One entry of a [`NodeView`], as stored: the key is prefix-compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryView<'a> {
    prefix_len: usize,
    suffix: &'a [u8],
    value: Cid,
    right: Option<Cid>,
}

impl<'a> EntryView<'a> {
    /// How many leading bytes the key shares with the previous key of the node (`p`).
    pub fn prefix_len(&self) -> usize {
        self.prefix_len
    }

    /// The key bytes after the shared prefix (`k`).
    pub fn suffix(&self) -> &'a [u8] {
        self.suffix
    }

    /// The record CID (`v`).
    pub fn value(&self) -> Cid {
        self.value
    }

    /// The subtree to the right of this entry (`t`).
    pub fn right(&self) -> Option<Cid> {
        self.right
    }
}

impl<'a> NodeView<'a> {
    /// The subtree left of the first entry (`l`).
    pub fn left(&self) -> Option<Cid> {
        self.left
    }

    /// The node's layer (the height of its keys); `None` for a node without entries.
    pub fn layer(&self) -> Option<u8> {
        self.layer
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the node has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in key order.
    pub fn entries(&self) -> EntryIter<'a> {
        EntryIter {
            cursor: Cursor::new(self.entries),
            remaining: self.len,
        }
    }

    /// Call `f` with each entry's full key, value and right subtree, in key order.
    pub fn for_each_key(&self, mut f: impl FnMut(&[u8], Cid, Option<Cid>)) {
        let mut key = KeyBuf::new();
        for (index, entry) in self.entries().enumerate() {
            // Validated when the view was built, so this cannot fail.
            if key
                .advance(index == 0, entry.prefix_len, entry.suffix)
                .is_err()
            {
                return;
            }
            f(key.as_slice(), entry.value, entry.right);
        }
    }
}

/// Iterator over the entries of a [`NodeView`].
#[derive(Clone, Debug)]
pub struct EntryIter<'a> {
    cursor: Cursor<'a>,
    remaining: usize,
}

impl<'a> Iterator for EntryIter<'a> {
    type Item = EntryView<'a>;

    fn next(&mut self) -> Option<EntryView<'a>> {
        // The node was validated when the view was built; a failure here cannot happen,
        // and ending the iteration is the safe answer if it did.
        self.remaining = self.remaining.checked_sub(1)?;
        self.cursor.entry()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// Decode and validate one MST node block.
///
/// Nodes have one fixed schema, so a node in canonical DAG-CBOR has exactly one byte
/// layout per content; the reader below checks that layout in a single pass. Anything it
/// does not accept is handed to the generic DAG-CBOR decoder only to name the error.
pub fn decode_node(block: &[u8]) -> Result<NodeView<'_>, MstError> {
    decode_node_with(block, |_, _| {})
}

/// [`decode_node`], calling `on_entry` with each entry's full key as it is validated
/// (so a caller copying keys out needs no second pass; on error it may have seen some).
fn decode_node_with<'a>(
    block: &'a [u8],
    mut on_entry: impl FnMut(&[u8], &EntryView<'a>),
) -> Result<NodeView<'a>, MstError> {
    let mut key = KeyBuf::new();
    let mut layer = None;
    let mut has_link = false;
    let parsed = Cursor::new(block).node(|index, entry| {
        key.advance(index == 0, entry.prefix_len, entry.suffix)?;
        let height = key_height(key.as_slice());
        match layer {
            None => layer = Some(height),
            Some(expected) if expected != height => return Err(MstError::KeyHeight),
            Some(_) => {}
        }
        has_link |= entry.right.is_some();
        on_entry(key.as_slice(), &entry);
        Ok(())
    });
    let (left, entries, len) = match parsed {
        Ok(parsed) => parsed,
        Err(Reject::Invalid(e)) => return Err(e),
        Err(Reject::Layout) => return Err(diagnose(block)),
    };
    if layer == Some(0) && (has_link || left.is_some()) {
        return Err(MstError::LinkBelowLeaf);
    }
    Ok(NodeView {
        left,
        entries,
        len,
        layer,
    })
}

/// Why the strict reader stopped.
enum Reject {
    /// The bytes are not the canonical layout of a node: [`diagnose`] names the problem.
    Layout,
    /// The layout is right but an entry breaks a rule.
    Invalid(MstError),
}

/// Map keys and link framing of the node schema, as canonical DAG-CBOR bytes.
const NODE_HEAD: [u8; 3] = [0xa2, 0x61, b'e'];
const NODE_LEFT_KEY: [u8; 2] = [0x61, b'l'];
const ENTRY_HEAD: [u8; 3] = [0xa4, 0x61, b'k'];
const ENTRY_PREFIX_KEY: [u8; 2] = [0x61, b'p'];
const ENTRY_RIGHT_KEY: [u8; 2] = [0x61, b't'];
const ENTRY_VALUE_KEY: [u8; 2] = [0x61, b'v'];
const CBOR_NULL: u8 = 0xf6;
/// Tag 42, a 37-byte byte string, the identity multibase prefix, then CIDv1 DAG-CBOR
/// SHA2-256 with a 32-byte digest: the only link an MST node may hold.
const DAG_CBOR_LINK_HEAD: [u8; 9] = [0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71, 0x12, 0x20];
/// The smallest entry: map head and `k`, an empty suffix, `p`, `t` null, and `v`.
const ENTRY_BYTES_MIN: usize = ENTRY_HEAD.len() + 1 + 2 + 1 + 2 + 1 + 2 + 9 + 32;

/// A strict single-pass reader of the node schema. Every method returns `None` on any
/// deviation from the canonical layout.
#[derive(Clone, Debug)]
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let taken = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(taken)
    }

    fn expect(&mut self, literal: &[u8]) -> Option<()> {
        (self.take(literal.len())? == literal).then_some(())
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// A head of `major` type in its shortest form; returns its argument.
    fn head(&mut self, major: u8) -> Option<u64> {
        let first = *self.take(1)?.first()?;
        if first >> 5 != major {
            return None;
        }
        let (size, minimum) = match first & 0x1f {
            info @ 0..=23 => return Some(u64::from(info)),
            24 => (1, 24),
            25 => (2, 0x100),
            26 => (4, 0x1_0000),
            27 => (8, 0x1_0000_0000),
            _ => return None,
        };
        let arg = self
            .take(size)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        (arg >= minimum).then_some(arg)
    }

    fn link(&mut self) -> Option<Cid> {
        // The CID starts after the tag, the byte-string head and the multibase byte.
        let start = self.pos + 5;
        self.expect(&DAG_CBOR_LINK_HEAD)?;
        self.take(32)?;
        Cid::from_bytes(self.bytes.get(start..self.pos)?).ok()
    }

    fn optional_link(&mut self) -> Option<Option<Cid>> {
        if self.peek()? == CBOR_NULL {
            self.pos += 1;
            return Some(None);
        }
        self.link().map(Some)
    }

    fn entry(&mut self) -> Option<EntryView<'a>> {
        self.expect(&ENTRY_HEAD)?;
        let suffix_len = usize::try_from(self.head(2)?).ok()?;
        let suffix = self.take(suffix_len)?;
        self.expect(&ENTRY_PREFIX_KEY)?;
        let prefix_len = usize::try_from(self.head(0)?).ok()?;
        self.expect(&ENTRY_RIGHT_KEY)?;
        let right = self.optional_link()?;
        self.expect(&ENTRY_VALUE_KEY)?;
        let value = self.link()?;
        Some(EntryView {
            prefix_len,
            suffix,
            value,
            right,
        })
    }

    /// A whole node block: `l`, the bytes of the entries, and their count. Each entry
    /// goes to `on_entry` as soon as it is read.
    fn node(
        &mut self,
        mut on_entry: impl FnMut(usize, EntryView<'a>) -> Result<(), MstError>,
    ) -> Result<(Option<Cid>, &'a [u8], usize), Reject> {
        self.expect(&NODE_HEAD).ok_or(Reject::Layout)?;
        let len = self.head(4).and_then(|len| usize::try_from(len).ok());
        let len = len.ok_or(Reject::Layout)?;
        // A hostile count fails here, before any loop.
        if len > self.bytes.len().saturating_sub(self.pos) / ENTRY_BYTES_MIN {
            return Err(Reject::Layout);
        }
        let start = self.pos;
        for index in 0..len {
            let entry = self.entry().ok_or(Reject::Layout)?;
            on_entry(index, entry).map_err(Reject::Invalid)?;
        }
        let entries = self.bytes.get(start..self.pos).ok_or(Reject::Layout)?;
        self.expect(&NODE_LEFT_KEY).ok_or(Reject::Layout)?;
        let left = self.optional_link().ok_or(Reject::Layout)?;
        if self.pos != self.bytes.len() {
            return Err(Reject::Layout);
        }
        Ok((left, entries, len))
    }
}

/// Name what is wrong with a block the strict reader rejected, using the generic decoder.
fn diagnose(block: &[u8]) -> MstError {
    let value = match cbor::decode(block) {
        Ok(value) => value,
        Err(e) => return MstError::NotCbor(e),
    };
    let Value::Map(map) = value else {
        return MstError::NodeShape;
    };
    let mut fields = map.iter();
    let (Some(("e", Value::Array(entries))), Some(("l", left)), None) =
        (fields.next(), fields.next(), fields.next())
    else {
        return MstError::NodeShape;
    };
    if let Err(e) = optional_link(left, MstError::NodeShape) {
        return e;
    }
    for item in entries.iter() {
        if let Err(e) = diagnose_entry(item) {
            return e;
        }
    }
    // Valid DAG-CBOR of the right shape is always accepted by the strict reader.
    MstError::Internal
}

fn diagnose_entry(item: Value<'_>) -> Result<(), MstError> {
    let Value::Map(map) = item else {
        return Err(MstError::EntryShape);
    };
    let mut fields = map.iter();
    let (
        Some(("k", Value::Bytes(_))),
        Some(("p", Value::Unsigned(prefix_len))),
        Some(("t", right)),
        Some(("v", Value::Link(value))),
        None,
    ) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    )
    else {
        return Err(MstError::EntryShape);
    };
    usize::try_from(prefix_len).map_err(|_| MstError::PrefixTooLong)?;
    dag_cbor_link(value)?;
    optional_link(right, MstError::EntryShape).map(|_| ())
}

fn dag_cbor_link(cid: CidRef<'_>) -> Result<Cid, MstError> {
    Cid::try_from(cid)
        .ok()
        .filter(|cid| cid.codec() == Codec::DagCbor)
        .ok_or(MstError::LinkNotDagCbor)
}

fn optional_link(value: Value<'_>, shape: MstError) -> Result<Option<Cid>, MstError> {
    match value {
        Value::Null => Ok(None),
        Value::Link(cid) => dag_cbor_link(cid).map(Some),
        _ => Err(shape),
    }
}

// ---------------------------------------------------------------------------------------
// Node encoding

/// The block of the empty tree: `{e: [], l: null}`.
pub const EMPTY_NODE_BLOCK: [u8; 7] = [0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6];

/// The root CID of the empty tree.
pub fn empty_root() -> Cid {
    Cid::for_dag_cbor(&EMPTY_NODE_BLOCK)
}

/// One entry to encode: full key, record CID, right subtree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeEntry<'k> {
    /// The full key.
    pub key: &'k [u8],
    /// The record CID.
    pub value: Cid,
    /// The subtree right of the entry.
    pub right: Option<Cid>,
}

/// Append the canonical block of a node. Keys must be strictly increasing (the caller's
/// invariant); prefixes are compressed maximally, as the format requires.
pub fn encode_node(left: Option<Cid>, entries: &[NodeEntry<'_>], out: &mut Vec<u8>) {
    Encoder::new(out)
        .map(2)
        .text("e")
        .array(entries.len() as u64);
    let mut previous: &[u8] = &[];
    for entry in entries {
        write_entry(out, previous, entry.key, entry.value, entry.right);
        previous = entry.key;
    }
    Encoder::new(out).text("l");
    write_optional_link(out, left);
}

fn write_entry(out: &mut Vec<u8>, previous: &[u8], key: &[u8], value: Cid, right: Option<Cid>) {
    let prefix_len = common_prefix_len(previous, key);
    let suffix = key.get(prefix_len..).unwrap_or_default();
    Encoder::new(out)
        .map(4)
        .text("k")
        .bytes(suffix)
        .text("p")
        .u64(prefix_len as u64)
        .text("t");
    write_optional_link(out, right);
    Encoder::new(out).text("v").link_bytes(&value.to_bytes());
}

fn write_optional_link(out: &mut Vec<u8>, link: Option<Cid>) {
    match link {
        Some(cid) => Encoder::new(out).link_bytes(&cid.to_bytes()),
        None => Encoder::new(out).null(),
    };
}

// ---------------------------------------------------------------------------------------
// Block sources

/// Where the tree reads node blocks from. Blocks must already be hash-checked.
pub trait BlockSource {
    /// The block with this CID, if the source has it.
    fn get(&self, cid: &Cid) -> Option<&[u8]>;
}

impl BlockSource for Blocks<'_> {
    fn get(&self, cid: &Cid) -> Option<&[u8]> {
        Blocks::get(self, cid)
    }
}

impl<S: BuildHasher> BlockSource for HashMap<Cid, Vec<u8>, S> {
    fn get(&self, cid: &Cid) -> Option<&[u8]> {
        HashMap::get(self, cid).map(Vec::as_slice)
    }
}

impl BlockSource for BTreeMap<Cid, Vec<u8>> {
    fn get(&self, cid: &Cid) -> Option<&[u8]> {
        BTreeMap::get(self, cid).map(Vec::as_slice)
    }
}

impl<T: BlockSource + ?Sized> BlockSource for &T {
    fn get(&self, cid: &Cid) -> Option<&[u8]> {
        (**self).get(cid)
    }
}

/// A source without blocks: for trees built in memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBlocks;

impl BlockSource for NoBlocks {
    fn get(&self, _cid: &Cid) -> Option<&[u8]> {
        None
    }
}

// ---------------------------------------------------------------------------------------
// Operations

/// A record operation of a commit, on key `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op<'k> {
    /// The MST key (`collection/rkey`).
    pub key: &'k [u8],
    /// What the commit did to the key.
    pub action: Action,
}

/// What an operation did to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The key was absent and now maps to `cid`.
    Create {
        /// The new record CID.
        cid: Cid,
    },
    /// The key mapped to `prev` and now maps to `cid`.
    Update {
        /// The new record CID.
        cid: Cid,
        /// The record CID before the commit.
        prev: Cid,
    },
    /// The key mapped to `prev` and is now absent.
    Delete {
        /// The record CID before the commit.
        prev: Cid,
    },
}

/// Sync 1.1 check: undo `ops` on the tree after the commit, reading only the blocks in
/// `source` (the commit's CAR slice), and return the root CID of the tree before the
/// commit, which the caller compares to the commit's `prevData`.
pub fn invert_ops<S: BlockSource + ?Sized>(
    source: &S,
    root_after: Cid,
    ops: &[Op<'_>],
) -> Result<Cid, MstError> {
    let mut tree = Mst::from_root(root_after);
    tree.invert(source, ops)?;
    tree.root()
}

/// Apply `ops` to the tree with root `root_before` and return the new root CID.
pub fn apply_ops<S: BlockSource + ?Sized>(
    source: &S,
    root_before: Cid,
    ops: &[Op<'_>],
) -> Result<Cid, MstError> {
    let mut tree = Mst::from_root(root_before);
    tree.apply(source, ops)?;
    tree.root()
}

/// The CIDs (sorted) of the node blocks of the tree after a commit that [`invert_ops`]
/// reads to undo `ops`: what a commit's CAR slice must carry besides the new blocks for
/// the Sync 1.1 check to pass. `source` must hold the whole tree after the commit (or at
/// least those blocks).
pub fn inversion_proof<S: BlockSource + ?Sized>(
    source: &S,
    root_after: Cid,
    ops: &[Op<'_>],
) -> Result<Vec<Cid>, MstError> {
    let mut tree = Mst::from_root(root_after);
    tree.invert(source, ops)?;
    let mut read = tree.read;
    read.sort_unstable();
    read.dedup();
    Ok(read)
}

/// Call `f` with every key and record CID of the tree with root `root`, in key order,
/// validating every node on the way.
pub fn walk<S: BlockSource + ?Sized>(
    source: &S,
    root: Cid,
    mut f: impl FnMut(&[u8], Cid),
) -> Result<(), MstError> {
    Mst::from_root(root).walk(source, &mut f)
}

// ---------------------------------------------------------------------------------------
// The tree

/// Index of a node in the tree's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NodeId(usize);

/// A subtree pointer: nothing, a node not loaded yet (known only by CID), or a node in
/// the arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Link {
    #[default]
    Empty,
    Stored(Cid),
    Loaded(NodeId),
}

/// A key in the tree's key arena.
#[derive(Clone, Copy, Debug)]
struct KeyRef {
    start: usize,
    len: usize,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: KeyRef,
    value: Cid,
    right: Link,
}

#[derive(Clone, Debug, Default)]
struct Node {
    layer: u8,
    left: Link,
    entries: Vec<Entry>,
    /// The CID of the current content; `None` after a change, until `root` recomputes it.
    cid: Option<Cid>,
    /// The CID the node had when loaded or last committed; `None` for a new node.
    base: Option<Cid>,
    /// Re-encoded since the last commit.
    encoded: bool,
}

/// The exclusive key range a subtree must fall in; `None` is unbounded.
#[derive(Clone, Copy, Debug, Default)]
struct Bounds {
    low: Option<KeyRef>,
    high: Option<KeyRef>,
}

/// What changed since the tree was loaded or last committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    root: Cid,
    new_blocks: Vec<(Cid, Vec<u8>)>,
    rewritten: Vec<Cid>,
    removed: Vec<Cid>,
}

impl Diff {
    /// The root CID of the tree now.
    pub fn root(&self) -> Cid {
        self.root
    }

    /// Node blocks of the tree now that it did not have before.
    pub fn new_blocks(&self) -> &[(Cid, Vec<u8>)] {
        &self.new_blocks
    }

    /// Nodes an edit passed through (a split or merge path) whose content came out
    /// unchanged. Not new, but a PDS that sends them with the new blocks proves the path.
    pub fn rewritten(&self) -> &[Cid] {
        &self.rewritten
    }

    /// Node CIDs the tree had before and no longer has, sorted.
    pub fn removed(&self) -> &[Cid] {
        &self.removed
    }

    /// The new blocks, by value.
    pub fn into_new_blocks(self) -> Vec<(Cid, Vec<u8>)> {
        self.new_blocks
    }
}

/// An editable MST whose nodes are loaded lazily from a [`BlockSource`]: subtrees an
/// operation does not touch stay referenced by CID and are never read. Reusable: `reset`
/// keeps the arenas' capacity.
///
/// After an operation returns an error the tree is in an unspecified (but memory-safe)
/// state; `reset` it before further use.
#[derive(Clone, Debug, Default)]
pub struct Mst {
    nodes: Vec<Node>,
    /// Slots in use; the slots after them keep their entry vectors for reuse.
    live: usize,
    keys: Vec<u8>,
    root: Link,
    /// The root CID when the tree was loaded or last committed.
    committed_root: Option<Cid>,
    /// Base CIDs of loaded nodes that were dropped from the tree.
    discarded: Vec<Cid>,
    /// CIDs of the blocks read from the source, in load order.
    read: Vec<Cid>,
    scratch: Vec<u8>,
}

impl Mst {
    /// The empty tree.
    pub fn new() -> Mst {
        Mst::default()
    }

    /// The tree with root `root`, nothing loaded yet.
    pub fn from_root(root: Cid) -> Mst {
        let mut tree = Mst::new();
        tree.reset(root);
        tree
    }

    /// Forget everything and start over from `root`, keeping allocations.
    pub fn reset(&mut self, root: Cid) {
        self.live = 0;
        self.keys.clear();
        self.discarded.clear();
        self.read.clear();
        self.root = Link::Stored(root);
        self.committed_root = Some(root);
    }

    /// Build the tree of a set of (key, record CID) pairs, in any order.
    pub fn from_entries<'k>(
        entries: impl IntoIterator<Item = (&'k [u8], Cid)>,
    ) -> Result<Mst, MstError> {
        let mut tree = Mst::new();
        let mut items: Vec<(KeyRef, Cid, u8)> = Vec::new();
        for (key, value) in entries {
            check_key(key)?;
            let key_ref = tree.push_key(key);
            items.push((key_ref, value, key_height(key)));
        }
        items.sort_unstable_by(|a, b| tree.key(a.0).cmp(tree.key(b.0)));
        if items
            .windows(2)
            .any(|pair| matches!(pair, [a, b] if tree.key(a.0) == tree.key(b.0)))
        {
            return Err(MstError::DuplicateKey);
        }
        tree.root = match items.iter().map(|item| item.2).max() {
            Some(top) => tree.build(&items, top)?,
            None => Link::Empty,
        };
        Ok(tree)
    }

    /// The record CID under `key`.
    pub fn get<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        key: &[u8],
    ) -> Result<Option<Cid>, MstError> {
        let height = key_height(key);
        let Some(mut id) = self.root_node(source)? else {
            return Ok(None);
        };
        let mut bounds = Bounds::default();
        loop {
            let layer = self.node(id)?.layer;
            if height > layer {
                return Ok(None);
            }
            let index = match self.search(id, key)? {
                Ok(index) => return Ok(Some(self.entry(id, index)?.value)),
                Err(_) if height == layer => return Ok(None),
                Err(index) => index,
            };
            let child_bounds = self.gap_bounds(id, index, bounds)?;
            match self.load_gap(source, id, index, bounds)? {
                Some(child) => {
                    id = child;
                    bounds = child_bounds;
                }
                None => return Ok(None),
            }
        }
    }

    /// Set `key` to `value`; returns the previous value.
    pub fn insert<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        key: &[u8],
        value: Cid,
    ) -> Result<Option<Cid>, MstError> {
        check_key(key)?;
        let height = key_height(key);
        let Some(root) = self.root_node(source)? else {
            let leaf = self.new_chain(key, value, height, height)?;
            self.root = Link::Loaded(leaf);
            return Ok(None);
        };
        let layer = self.node(root)?.layer;
        if height <= layer {
            return self.insert_at(source, root, height, key, value, Bounds::default());
        }
        // The key is above the root: split the whole tree around it and grow upwards.
        let key_ref = self.push_key(key);
        let root_link = Link::Loaded(root);
        let (low, high) = self.split(source, root_link, Some(layer), key_ref, Bounds::default())?;
        let low = self.wrap(low, layer, height - 1);
        let high = self.wrap(high, layer, height - 1);
        let top = self.alloc(height, low);
        self.node_mut(top)?.entries.push(Entry {
            key: key_ref,
            value,
            right: high,
        });
        self.root = Link::Loaded(top);
        Ok(None)
    }

    /// Remove `key`; returns the value it had.
    pub fn remove<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        key: &[u8],
    ) -> Result<Option<Cid>, MstError> {
        let height = key_height(key);
        let Some(root) = self.root_node(source)? else {
            return Ok(None);
        };
        if height > self.node(root)?.layer {
            return Ok(None);
        }
        let (link, previous) = self.remove_at(source, root, height, key, Bounds::default())?;
        if previous.is_some() {
            self.root = link;
            self.trim_root(source)?;
        }
        Ok(previous)
    }

    /// Undo `ops` (the operations of one commit, in commit order), last first. Before
    /// undoing each, the key must hold what the operation left: the new CID for a create
    /// or update, nothing for a delete; otherwise [`MstError::OpMismatch`].
    ///
    /// Undoing in reverse makes any op sequence invert exactly, even one that touches a
    /// key twice. For the distinct paths of a normalized commit (Sync 1.1) the order does
    /// not change the resulting root.
    pub fn invert<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        ops: &[Op<'_>],
    ) -> Result<(), MstError> {
        for (index, op) in ops.iter().enumerate().rev() {
            let current = self.get(source, op.key)?;
            let mismatch = MstError::OpMismatch { index };
            match op.action {
                Action::Create { cid } => {
                    if current != Some(cid) {
                        return Err(mismatch);
                    }
                    self.remove(source, op.key)?;
                }
                Action::Update { cid, prev } => {
                    if current != Some(cid) {
                        return Err(mismatch);
                    }
                    self.insert(source, op.key, prev)?;
                }
                Action::Delete { prev } => {
                    if current.is_some() {
                        return Err(mismatch);
                    }
                    self.insert(source, op.key, prev)?;
                }
            }
        }
        Ok(())
    }

    /// Apply `ops` in order. Before each, the key must hold what the operation expects:
    /// nothing for a create, `prev` for an update or delete.
    pub fn apply<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        ops: &[Op<'_>],
    ) -> Result<(), MstError> {
        for (index, op) in ops.iter().enumerate() {
            let current = self.get(source, op.key)?;
            let expected = match op.action {
                Action::Create { .. } => None,
                Action::Update { prev, .. } | Action::Delete { prev } => Some(prev),
            };
            if current != expected {
                return Err(MstError::OpMismatch { index });
            }
            match op.action {
                Action::Create { cid } | Action::Update { cid, .. } => {
                    self.insert(source, op.key, cid)?;
                }
                Action::Delete { .. } => {
                    self.remove(source, op.key)?;
                }
            }
        }
        Ok(())
    }

    /// Call `f` with every key and record CID in key order, loading (and validating)
    /// every node not loaded yet.
    pub fn walk<S: BlockSource + ?Sized, F: FnMut(&[u8], Cid)>(
        &mut self,
        source: &S,
        f: &mut F,
    ) -> Result<(), MstError> {
        match self.root_node(source)? {
            Some(root) => self.walk_node(source, root, Bounds::default(), f),
            None => Ok(()),
        }
    }

    /// The CIDs of the node blocks read from sources since the tree was created or
    /// reset. After [`Mst::invert`] on the tree after a commit, these are exactly the
    /// blocks a commit proof must carry for that inversion.
    pub fn blocks_read(&self) -> &[Cid] {
        &self.read
    }

    /// The root CID, encoding the nodes changed since the last call.
    pub fn root(&mut self) -> Result<Cid, MstError> {
        match self.root {
            Link::Empty => Ok(empty_root()),
            Link::Stored(cid) => Ok(cid),
            Link::Loaded(id) => self.node_cid(id),
        }
    }

    /// The root CID plus the node blocks created and the node CIDs dropped since the
    /// tree was loaded or last committed; the next diff starts from here.
    pub fn commit(&mut self) -> Result<Diff, MstError> {
        let root = self.root()?;
        let mut new_blocks = Vec::new();
        let mut rewritten = Vec::new();
        let mut removed = std::mem::take(&mut self.discarded);
        let mut present = Vec::new();
        let mut stack = Vec::new();
        if let Link::Loaded(id) = self.root {
            stack.push(id);
        }
        while let Some(id) = stack.pop() {
            let node = self.node(id)?;
            let (cid, base, encoded) =
                (node.cid.ok_or(MstError::Internal)?, node.base, node.encoded);
            present.push(cid);
            // Only re-encoded nodes can have re-encoded children: the walk stops elsewhere.
            if !encoded {
                continue;
            }
            stack.extend(self.loaded_children(id)?);
            self.node_mut(id)?.encoded = false;
            if base == Some(cid) {
                rewritten.push(cid);
                continue;
            }
            removed.extend(base);
            let mut block = Vec::new();
            self.encode_arena_node(id, &mut block)?;
            new_blocks.push((cid, block));
            self.node_mut(id)?.base = Some(cid);
        }
        let empty = empty_root();
        if self.committed_root != Some(root) {
            if root == empty {
                new_blocks.push((empty, EMPTY_NODE_BLOCK.to_vec()));
            }
            removed.extend(self.committed_root.filter(|cid| *cid == empty));
        }
        present.sort_unstable();
        removed.sort_unstable();
        removed.dedup();
        removed.retain(|cid| present.binary_search(cid).is_err() && *cid != root);
        self.committed_root = Some(root);
        Ok(Diff {
            root,
            new_blocks,
            rewritten,
            removed,
        })
    }

    // ---- arena access ----

    fn node(&self, id: NodeId) -> Result<&Node, MstError> {
        self.nodes.get(id.0).ok_or(MstError::Internal)
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, MstError> {
        self.nodes.get_mut(id.0).ok_or(MstError::Internal)
    }

    fn entry(&self, id: NodeId, index: usize) -> Result<Entry, MstError> {
        self.node(id)?
            .entries
            .get(index)
            .copied()
            .ok_or(MstError::Internal)
    }

    fn key(&self, key: KeyRef) -> &[u8] {
        self.keys
            .get(key.start..key.start + key.len)
            .unwrap_or_default()
    }

    fn push_key(&mut self, key: &[u8]) -> KeyRef {
        let start = self.keys.len();
        self.keys.extend_from_slice(key);
        KeyRef {
            start,
            len: key.len(),
        }
    }

    fn alloc(&mut self, layer: u8, left: Link) -> NodeId {
        let id = NodeId(self.live);
        match self.nodes.get_mut(self.live) {
            Some(slot) => {
                slot.layer = layer;
                slot.left = left;
                slot.entries.clear();
                slot.cid = None;
                slot.base = None;
                slot.encoded = false;
            }
            None => self.nodes.push(Node {
                layer,
                left,
                ..Node::default()
            }),
        }
        self.live += 1;
        id
    }

    /// Mark a node changed; its ancestors are marked by the callers on the way up.
    fn touch(&mut self, id: NodeId) -> Result<(), MstError> {
        self.node_mut(id)?.cid = None;
        Ok(())
    }

    /// Drop a node from the tree, remembering its old CID for the diff.
    fn discard(&mut self, id: NodeId) -> Result<(), MstError> {
        if let Some(base) = self.node(id)?.base {
            self.discarded.push(base);
        }
        Ok(())
    }

    /// Position of `key` in the node: `Ok` if present, else `Err(insertion point)`.
    fn search(&self, id: NodeId, key: &[u8]) -> Result<Result<usize, usize>, MstError> {
        let node = self.node(id)?;
        Ok(node
            .entries
            .binary_search_by(|entry| self.key(entry.key).cmp(key)))
    }

    /// Gap `index` of a node: the subtree left of entry `index` (`l` for 0, else the `t`
    /// of entry `index - 1`).
    fn gap(&self, id: NodeId, index: usize) -> Result<Link, MstError> {
        let node = self.node(id)?;
        match index.checked_sub(1) {
            None => Ok(node.left),
            Some(before) => Ok(node.entries.get(before).ok_or(MstError::Internal)?.right),
        }
    }

    fn set_gap(&mut self, id: NodeId, index: usize, link: Link) -> Result<(), MstError> {
        let node = self.node_mut(id)?;
        match index.checked_sub(1) {
            None => node.left = link,
            Some(before) => {
                node.entries
                    .get_mut(before)
                    .ok_or(MstError::Internal)?
                    .right = link
            }
        }
        Ok(())
    }

    fn gap_bounds(&self, id: NodeId, index: usize, outer: Bounds) -> Result<Bounds, MstError> {
        let node = self.node(id)?;
        let low = match index.checked_sub(1) {
            None => outer.low,
            Some(before) => Some(node.entries.get(before).ok_or(MstError::Internal)?.key),
        };
        let high = node.entries.get(index).map(|e| e.key).or(outer.high);
        Ok(Bounds { low, high })
    }

    fn loaded_children(&self, id: NodeId) -> Result<Vec<NodeId>, MstError> {
        let node = self.node(id)?;
        let links = std::iter::once(node.left).chain(node.entries.iter().map(|e| e.right));
        Ok(links
            .filter_map(|link| match link {
                Link::Loaded(child) => Some(child),
                _ => None,
            })
            .collect())
    }

    // ---- loading ----

    /// The root node, loading it if needed; `None` for the empty tree.
    fn root_node<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
    ) -> Result<Option<NodeId>, MstError> {
        match self.root {
            Link::Empty => Ok(None),
            Link::Loaded(id) => Ok(Some(id)),
            Link::Stored(cid) => {
                let loaded = self.load(source, cid, None, Bounds::default())?;
                self.root = loaded.map_or(Link::Empty, Link::Loaded);
                Ok(loaded)
            }
        }
    }

    /// A non-root node expected at `layer` within `bounds`, loading it if needed.
    fn load_link<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        link: Link,
        layer: u8,
        bounds: Bounds,
    ) -> Result<NodeId, MstError> {
        match link {
            Link::Loaded(id) => Ok(id),
            Link::Empty => Err(MstError::Internal),
            Link::Stored(cid) => self
                .load(source, cid, Some(layer), bounds)?
                .ok_or(MstError::Internal),
        }
    }

    /// Read node `cid`, validate it (against `layer`, which its parent implies, and
    /// `bounds`) and add it to the arena. `None` is the empty tree, allowed only as the
    /// root (`layer` is `None` for the root).
    fn load<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        cid: Cid,
        layer: Option<u8>,
        bounds: Bounds,
    ) -> Result<Option<NodeId>, MstError> {
        let block = source.get(&cid).ok_or(MstError::MissingBlock(cid))?;
        let id = self.alloc(0, Link::Empty);
        let mut entries = std::mem::take(&mut self.node_mut(id)?.entries);
        let keys = &mut self.keys;
        let view = decode_node_with(block, |key, entry| {
            let start = keys.len();
            keys.extend_from_slice(key);
            entries.push(Entry {
                key: KeyRef {
                    start,
                    len: key.len(),
                },
                value: entry.value(),
                right: entry.right().map_or(Link::Empty, Link::Stored),
            });
        })?;
        let node_layer = match (view.layer(), layer) {
            (Some(actual), Some(expected)) if actual != expected => {
                return Err(MstError::LayerMismatch);
            }
            (Some(actual), _) => actual,
            (None, None) if view.left().is_some() => return Err(MstError::RootNotTrimmed),
            (None, None) => {
                // The empty tree: give the slot back.
                self.live -= 1;
                return Ok(None);
            }
            (None, Some(_)) if view.left().is_none() => return Err(MstError::EmptyNode),
            (None, Some(0)) => return Err(MstError::LinkBelowLeaf),
            (None, Some(expected)) => expected,
        };
        if entries.len() != view.len() {
            return Err(MstError::Internal);
        }
        let in_range = match (entries.first(), entries.last()) {
            (Some(first), Some(last)) => {
                bounds
                    .low
                    .is_none_or(|low| self.key(first.key) > self.key(low))
                    && bounds
                        .high
                        .is_none_or(|high| self.key(last.key) < self.key(high))
            }
            _ => true,
        };
        if !in_range {
            return Err(MstError::KeyOutOfRange);
        }
        self.read.push(cid);
        let node = self.node_mut(id)?;
        node.layer = node_layer;
        node.left = view.left().map_or(Link::Empty, Link::Stored);
        node.entries = entries;
        node.cid = Some(cid);
        node.base = Some(cid);
        Ok(Some(id))
    }

    /// Load the subtree of gap `index` of a node if needed, and link it in.
    fn load_gap<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        id: NodeId,
        index: usize,
        outer: Bounds,
    ) -> Result<Option<NodeId>, MstError> {
        let link = self.gap(id, index)?;
        if let Link::Stored(_) = link {
            let layer = self.node(id)?.layer.checked_sub(1);
            let layer = layer.ok_or(MstError::LinkBelowLeaf)?;
            let bounds = self.gap_bounds(id, index, outer)?;
            let child = self.load_link(source, link, layer, bounds)?;
            self.set_gap(id, index, Link::Loaded(child))?;
            return Ok(Some(child));
        }
        Ok(match link {
            Link::Loaded(child) => Some(child),
            _ => None,
        })
    }

    // ---- building ----

    fn build(&mut self, items: &[(KeyRef, Cid, u8)], layer: u8) -> Result<Link, MstError> {
        if items.is_empty() {
            return Ok(Link::Empty);
        }
        let id = self.alloc(layer, Link::Empty);
        let below = layer.checked_sub(1);
        let mut start = 0;
        for (index, &(key, value, height)) in items.iter().enumerate() {
            if height != layer {
                continue;
            }
            let gap = self.build_below(items.get(start..index), below)?;
            let gap_index = self.node(id)?.entries.len();
            self.set_gap(id, gap_index, gap)?;
            self.node_mut(id)?.entries.push(Entry {
                key,
                value,
                right: Link::Empty,
            });
            start = index + 1;
        }
        let gap = self.build_below(items.get(start..), below)?;
        let gap_index = self.node(id)?.entries.len();
        self.set_gap(id, gap_index, gap)?;
        Ok(Link::Loaded(id))
    }

    fn build_below(
        &mut self,
        items: Option<&[(KeyRef, Cid, u8)]>,
        layer: Option<u8>,
    ) -> Result<Link, MstError> {
        match (items.unwrap_or_default(), layer) {
            ([], _) => Ok(Link::Empty),
            (items, Some(layer)) => self.build(items, layer),
            (_, None) => Err(MstError::Internal),
        }
    }

    /// A single-key subtree topped at `top` (entry-less nodes above the key's layer).
    fn new_chain(
        &mut self,
        key: &[u8],
        value: Cid,
        height: u8,
        top: u8,
    ) -> Result<NodeId, MstError> {
        let key = self.push_key(key);
        let leaf = self.alloc(height, Link::Empty);
        self.node_mut(leaf)?.entries.push(Entry {
            key,
            value,
            right: Link::Empty,
        });
        match self.wrap(Link::Loaded(leaf), height, top) {
            Link::Loaded(id) => Ok(id),
            _ => Err(MstError::Internal),
        }
    }

    /// Put a subtree at layer `from` under entry-less nodes up to layer `to`.
    fn wrap(&mut self, link: Link, from: u8, to: u8) -> Link {
        let mut link = link;
        if link == Link::Empty {
            return link;
        }
        for layer in from..to {
            link = Link::Loaded(self.alloc(layer + 1, link));
        }
        link
    }

    // ---- editing ----

    fn insert_at<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        id: NodeId,
        height: u8,
        key: &[u8],
        value: Cid,
        bounds: Bounds,
    ) -> Result<Option<Cid>, MstError> {
        let layer = self.node(id)?.layer;
        match self.search(id, key)? {
            Ok(index) => {
                let entry = self
                    .node_mut(id)?
                    .entries
                    .get_mut(index)
                    .ok_or(MstError::Internal)?;
                let previous = entry.value;
                entry.value = value;
                if previous != value {
                    self.touch(id)?;
                }
                Ok(Some(previous))
            }
            Err(index) if height == layer => {
                let key_ref = self.push_key(key);
                let gap = self.gap(id, index)?;
                let gap_bounds = self.gap_bounds(id, index, bounds)?;
                let (low, high) =
                    self.split(source, gap, layer.checked_sub(1), key_ref, gap_bounds)?;
                self.set_gap(id, index, low)?;
                let node = self.node_mut(id)?;
                if index > node.entries.len() {
                    return Err(MstError::Internal);
                }
                let entry = Entry {
                    key: key_ref,
                    value,
                    right: high,
                };
                node.entries.insert(index, entry);
                node.cid = None;
                Ok(None)
            }
            Err(index) => {
                let child_layer = layer.checked_sub(1).ok_or(MstError::Internal)?;
                let gap_bounds = self.gap_bounds(id, index, bounds)?;
                let previous = match self.load_gap(source, id, index, bounds)? {
                    Some(child) => self.insert_at(source, child, height, key, value, gap_bounds)?,
                    None => {
                        let chain = self.new_chain(key, value, height, child_layer)?;
                        self.set_gap(id, index, Link::Loaded(chain))?;
                        None
                    }
                };
                if previous != Some(value) {
                    self.touch(id)?;
                }
                Ok(previous)
            }
        }
    }

    /// Split the subtree at `link` (at `layer`) into the parts below and above `key`.
    fn split<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        link: Link,
        layer: Option<u8>,
        key: KeyRef,
        bounds: Bounds,
    ) -> Result<(Link, Link), MstError> {
        if link == Link::Empty {
            return Ok((Link::Empty, Link::Empty));
        }
        let layer = layer.ok_or(MstError::LinkBelowLeaf)?;
        let id = self.load_link(source, link, layer, bounds)?;
        let index = match self.search(id, self.key(key))? {
            Err(index) => index,
            // The key's height is above this layer, so it cannot be stored here.
            Ok(_) => return Err(MstError::Internal),
        };
        let gap = self.gap(id, index)?;
        let gap_bounds = self.gap_bounds(id, index, bounds)?;
        let (low, high) = self.split(source, gap, layer.checked_sub(1), key, gap_bounds)?;
        self.touch(id)?;
        let len = self.node(id)?.entries.len();
        if index == 0 {
            // Everything in this node goes right; the left part is only the low gap.
            let left = self.entryless(layer, low);
            self.node_mut(id)?.left = high;
            return Ok((left, self.prune(id)?));
        }
        let right = if index < len {
            let tail = self.alloc(layer, high);
            let mut moved = std::mem::take(&mut self.node_mut(tail)?.entries);
            moved.extend(self.node_mut(id)?.entries.drain(index..));
            self.node_mut(tail)?.entries = moved;
            Link::Loaded(tail)
        } else {
            self.entryless(layer, high)
        };
        self.set_gap(id, index, low)?;
        Ok((Link::Loaded(id), right))
    }

    /// An entry-less node at `layer` over `below`, or nothing when `below` is empty.
    fn entryless(&mut self, layer: u8, below: Link) -> Link {
        if below == Link::Empty {
            Link::Empty
        } else {
            Link::Loaded(self.alloc(layer, below))
        }
    }

    /// The link for a node after an edit: nothing if it has neither entries nor subtree.
    fn prune(&mut self, id: NodeId) -> Result<Link, MstError> {
        let node = self.node(id)?;
        if node.entries.is_empty() && node.left == Link::Empty {
            self.discard(id)?;
            Ok(Link::Empty)
        } else {
            Ok(Link::Loaded(id))
        }
    }

    fn remove_at<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        id: NodeId,
        height: u8,
        key: &[u8],
        bounds: Bounds,
    ) -> Result<(Link, Option<Cid>), MstError> {
        let layer = self.node(id)?.layer;
        let index = match self.search(id, key)? {
            Ok(index) => return self.remove_entry(source, id, index, bounds),
            Err(_) if height == layer => return Ok((Link::Loaded(id), None)),
            Err(index) => index,
        };
        let gap_bounds = self.gap_bounds(id, index, bounds)?;
        let Some(child) = self.load_gap(source, id, index, bounds)? else {
            return Ok((Link::Loaded(id), None));
        };
        let (child_link, previous) = self.remove_at(source, child, height, key, gap_bounds)?;
        if previous.is_none() {
            return Ok((Link::Loaded(id), None));
        }
        self.set_gap(id, index, child_link)?;
        self.touch(id)?;
        Ok((self.prune(id)?, previous))
    }

    /// Remove entry `index` of a node, merging the subtrees on either side of it.
    fn remove_entry<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        id: NodeId,
        index: usize,
        bounds: Bounds,
    ) -> Result<(Link, Option<Cid>), MstError> {
        let layer = self.node(id)?.layer;
        let entry = self.entry(id, index)?;
        let left = self.gap(id, index)?;
        let left_bounds = self.gap_bounds(id, index, bounds)?;
        let right_bounds = self.gap_bounds(id, index + 1, bounds)?;
        let below = layer.checked_sub(1);
        let merged = self.merge(source, left, entry.right, below, left_bounds, right_bounds)?;
        let node = self.node_mut(id)?;
        if index >= node.entries.len() {
            return Err(MstError::Internal);
        }
        node.entries.remove(index);
        node.cid = None;
        self.set_gap(id, index, merged)?;
        Ok((self.prune(id)?, Some(entry.value)))
    }

    /// Join two adjacent subtrees at `layer` (all keys of `left` below all of `right`).
    fn merge<S: BlockSource + ?Sized>(
        &mut self,
        source: &S,
        left: Link,
        right: Link,
        layer: Option<u8>,
        left_bounds: Bounds,
        right_bounds: Bounds,
    ) -> Result<Link, MstError> {
        if left == Link::Empty {
            return Ok(right);
        }
        if right == Link::Empty {
            return Ok(left);
        }
        let layer = layer.ok_or(MstError::LinkBelowLeaf)?;
        let left_id = self.load_link(source, left, layer, left_bounds)?;
        let right_id = self.load_link(source, right, layer, right_bounds)?;
        let left_len = self.node(left_id)?.entries.len();
        let inner_left = self.gap(left_id, left_len)?;
        let inner_left_bounds = self.gap_bounds(left_id, left_len, left_bounds)?;
        let inner_right = self.node(right_id)?.left;
        let inner_right_bounds = self.gap_bounds(right_id, 0, right_bounds)?;
        let inner = self.merge(
            source,
            inner_left,
            inner_right,
            layer.checked_sub(1),
            inner_left_bounds,
            inner_right_bounds,
        )?;
        self.set_gap(left_id, left_len, inner)?;
        let mut moved = std::mem::take(&mut self.node_mut(right_id)?.entries);
        self.node_mut(left_id)?.entries.extend_from_slice(&moved);
        moved.clear();
        self.node_mut(right_id)?.entries = moved;
        self.touch(left_id)?;
        self.discard(right_id)?;
        Ok(Link::Loaded(left_id))
    }

    /// After a removal, drop entry-less nodes from the top so the root holds keys.
    fn trim_root<S: BlockSource + ?Sized>(&mut self, source: &S) -> Result<(), MstError> {
        while let Link::Loaded(id) = self.root {
            let node = self.node(id)?;
            if !node.entries.is_empty() {
                return Ok(());
            }
            let (left, layer) = (node.left, node.layer);
            self.discard(id)?;
            self.root = match left {
                Link::Empty => Link::Empty,
                child => {
                    let below = layer.checked_sub(1).ok_or(MstError::LinkBelowLeaf)?;
                    Link::Loaded(self.load_link(source, child, below, Bounds::default())?)
                }
            };
        }
        Ok(())
    }

    fn walk_node<S: BlockSource + ?Sized, F: FnMut(&[u8], Cid)>(
        &mut self,
        source: &S,
        id: NodeId,
        bounds: Bounds,
        f: &mut F,
    ) -> Result<(), MstError> {
        let len = self.node(id)?.entries.len();
        for index in 0..=len {
            let gap_bounds = self.gap_bounds(id, index, bounds)?;
            if let Some(child) = self.load_gap(source, id, index, bounds)? {
                self.walk_node(source, child, gap_bounds, f)?;
            }
            if index < len {
                let entry = self.entry(id, index)?;
                f(self.key(entry.key), entry.value);
            }
        }
        Ok(())
    }

    // ---- encoding ----

    fn node_cid(&mut self, id: NodeId) -> Result<Cid, MstError> {
        if let Some(cid) = self.node(id)?.cid {
            return Ok(cid);
        }
        let len = self.node(id)?.entries.len();
        for index in 0..=len {
            if let Link::Loaded(child) = self.gap(id, index)? {
                self.node_cid(child)?;
            }
        }
        let mut block = std::mem::take(&mut self.scratch);
        block.clear();
        let encoded = self.encode_arena_node(id, &mut block);
        let cid = Cid::for_dag_cbor(&block);
        self.scratch = block;
        encoded?;
        let node = self.node_mut(id)?;
        node.cid = Some(cid);
        node.encoded = true;
        Ok(cid)
    }

    fn link_cid(&self, link: Link) -> Result<Option<Cid>, MstError> {
        match link {
            Link::Empty => Ok(None),
            Link::Stored(cid) => Ok(Some(cid)),
            Link::Loaded(id) => self.node(id)?.cid.map(Some).ok_or(MstError::Internal),
        }
    }

    /// Encode a node whose children all have their CIDs.
    fn encode_arena_node(&self, id: NodeId, out: &mut Vec<u8>) -> Result<(), MstError> {
        let node = self.node(id)?;
        Encoder::new(out)
            .map(2)
            .text("e")
            .array(node.entries.len() as u64);
        let mut previous: &[u8] = &[];
        for entry in &node.entries {
            let key = self.key(entry.key);
            write_entry(out, previous, key, entry.value, self.link_cid(entry.right)?);
            previous = key;
        }
        Encoder::new(out).text("l");
        write_optional_link(out, self.link_cid(node.left)?);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_cid() {
        assert_eq!(
            empty_root().to_string(),
            "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
        );
        let mut block = Vec::new();
        encode_node(None, &[], &mut block);
        assert_eq!(block, EMPTY_NODE_BLOCK);
    }

    #[test]
    fn heads_must_be_minimal() {
        let head = |bytes: &[u8]| Cursor::new(bytes).head(0);
        assert_eq!(head(&[0x17]), Some(23));
        assert_eq!(head(&[0x18, 0x18]), Some(24));
        assert_eq!(head(&[0x18, 0x17]), None);
        assert_eq!(head(&[0x19, 0x00, 0xff]), None);
        assert_eq!(head(&[0x19, 0x01, 0x00]), Some(256));
        assert_eq!(head(&[0x1a, 0x00, 0x00, 0xff, 0xff]), None);
        assert_eq!(head(&[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(head(&[0x1f]), None);
        assert_eq!(head(&[0x40]), None);
    }

    #[test]
    fn key_rules() {
        let mut key = KeyBuf::new();
        assert_eq!(
            key.advance(true, 1, b"a"),
            Err(MstError::FirstPrefixNotZero)
        );
        key.advance(true, 0, b"abc").unwrap();
        assert_eq!(key.advance(false, 4, b"d"), Err(MstError::PrefixTooLong));
        assert_eq!(key.advance(false, 2, b"c"), Err(MstError::PrefixNotMaximal));
        assert_eq!(key.advance(false, 2, b"b"), Err(MstError::KeyOrder));
        assert_eq!(key.advance(false, 3, b""), Err(MstError::KeyOrder));
        key.advance(false, 3, b"d").unwrap();
        assert_eq!(key.as_slice(), b"abcd");
        key.advance(false, 1, b"c").unwrap();
        assert_eq!(key.as_slice(), b"ac");
    }

    #[test]
    fn chains_and_wraps() {
        let mut tree = Mst::new();
        // "blue" is at height 1: a single-node tree at layer 1.
        tree.insert(&NoBlocks, b"blue", empty_root()).unwrap();
        let Link::Loaded(root) = tree.root else {
            panic!("root not loaded")
        };
        assert_eq!(tree.node(root).unwrap().layer, 1);
        assert_eq!(tree.get(&NoBlocks, b"blue").unwrap(), Some(empty_root()));
        assert_eq!(tree.remove(&NoBlocks, b"blue").unwrap(), Some(empty_root()));
        assert_eq!(tree.root().unwrap(), empty_root());
    }
}

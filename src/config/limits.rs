//! Every bound of the product, named `*_max` (units last) in one place, with compile-time
//! assertions tying related limits together. Sorted by the module that enforces them.

// ---- frame ----

/// Deepest nesting of arrays/maps a DAG-CBOR item may have. Firehose frames, commits and
/// MST nodes are a few levels deep; records are deeper but bounded in practice. The bound
/// keeps validation's recursion (and a hostile input's cost) small.
pub const CBOR_NESTING_DEPTH_MAX: usize = 128;

// ---- verify::mst ----

/// Longest MST key (a repo path `collection/rkey`) accepted, in bytes. An NSID is at most
/// 317 bytes and a record key at most 512, so every valid path fits; the bound keeps the
/// stack buffer that rebuilds prefix-compressed keys small and fixed.
pub const MST_KEY_BYTES_MAX: usize = 1024;

//! Sans-IO decoding of everything that arrives on a socket: DAG-CBOR, CIDs, CAR
//! slices and firehose frames, as borrowed views over the bytes read.
//!
//! Owns: byte-level formats and their size limits.
//! Must not: await, do IO, resolve identities or verify signatures (that is `verify`).

pub mod atjson;
pub mod car;
pub mod cbor;
pub mod cid;
pub mod commit;
pub mod event;
pub mod varint;
pub mod ws;

//! State: hosts, accounts, the identity cache snapshot and backfill progress behind one
//! store interface (RocksDB by default, PostgreSQL on request).
//!
//! Must not: run on a data-plane core (every store call may block).

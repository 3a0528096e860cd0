//! Byte encodings of the RocksDB records (docs/specs/state.md has the layouts).
//!
//! Owns: keys (big-endian ids, so byte order is numeric order) and values (a version
//! byte, then fixed-width big-endian integers and `u32`-length-prefixed byte strings).
//! Statuses are stored as their labels so the two stores share one vocabulary.
//!
//! Checks: every decode is strict — unknown version, short input, trailing bytes, a bad
//! label or non-UTF-8 text is [`StateError::Corrupt`]. Does not check field bounds (the
//! store checks them before encoding).
//!
//! Versions: host, identity and backfill values are version 1. Account values are
//! version 2 (version 1 plus the commit CID appended at the end); a version 1 account
//! value, as the previous relay wrote it, still decodes, with no commit CID. Accounts are
//! rewritten as version 2 on their next write. An older relay refuses version 2 values
//! (`Corrupt`), so a downgrade is not supported once an account was written.

use super::{
    AccountRecord, BackfillRecord, HostRecord, HostStatus, LocalStatus, RateLimits, StateError,
    UpstreamStatus,
};

/// Version byte of the host, identity and backfill values.
const VERSION: u8 = 1;
/// Version byte of the account values written by this code (commit CID appended).
const ACCOUNT_VERSION: u8 = 2;
/// Version byte of the account values of the previous layout (no commit CID), still read.
const ACCOUNT_VERSION_V1: u8 = 1;

/// A big-endian id key.
pub fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Decodes a big-endian id key.
pub fn decode_id(bytes: &[u8]) -> Result<u64, StateError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StateError::Corrupt("id key"))?;
    Ok(u64::from_be_bytes(array))
}

struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Writer {
        Writer::with_version(VERSION)
    }
    fn with_version(version: u8) -> Writer {
        Writer(vec![version])
    }
    fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    fn bytes(&mut self, value: &[u8]) -> &mut Self {
        // Bounded far below u32::MAX by limits before any encode.
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(value);
        self
    }
    fn opt_bytes(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                self.bytes(v);
            }
        }
        self
    }
    fn flag(&mut self, value: bool) -> &mut Self {
        self.0.push(u8::from(value));
        self
    }
}

struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Result<Reader<'a>, StateError> {
        Reader::versioned(bytes, what, &[VERSION]).map(|(_, reader)| reader)
    }
    /// A reader of a value whose version byte is one of `accepted`, and that version.
    fn versioned(
        bytes: &'a [u8],
        what: &'static str,
        accepted: &[u8],
    ) -> Result<(u8, Reader<'a>), StateError> {
        match bytes.split_first() {
            Some((&version, rest)) if accepted.contains(&version) => {
                Ok((version, Reader { rest, what }))
            }
            _ => Err(StateError::Corrupt(what)),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        if self.rest.len() < n {
            return Err(StateError::Corrupt(self.what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, StateError> {
        decode_id(self.take(8)?).map_err(|_| StateError::Corrupt(self.what))
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }
    fn bytes(&mut self) -> Result<&'a [u8], StateError> {
        let head = self.take(4)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        self.take(len)
    }
    fn text(&mut self) -> Result<&'a str, StateError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| StateError::Corrupt(self.what))
    }
    fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, StateError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            _ => Err(StateError::Corrupt(self.what)),
        }
    }
    fn flag(&mut self) -> Result<bool, StateError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(StateError::Corrupt(self.what)),
        }
    }
    fn label<T>(&mut self, parse: fn(&str) -> Option<T>) -> Result<T, StateError> {
        parse(self.text()?).ok_or(StateError::Corrupt(self.what))
    }
    fn finish(self) -> Result<(), StateError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(StateError::Corrupt(self.what))
        }
    }
}

/// Encodes a host value (the id is the key).
pub fn encode_host(host: &HostRecord) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(host.hostname.as_bytes())
        .bytes(host.status.as_str().as_bytes())
        .u64(host.last_seq)
        .u64(host.account_count)
        .u64(host.account_limit)
        .u64(host.rate_limits.per_second)
        .u64(host.rate_limits.per_hour)
        .u64(host.rate_limits.per_day)
        .u64(u64::from(host.failures))
        .u64(host.first_seen_ms)
        .u64(host.last_connected_ms);
    w.0
}

/// Decodes a host value stored under `id`.
pub fn decode_host(id: u64, bytes: &[u8]) -> Result<HostRecord, StateError> {
    let mut r = Reader::new(bytes, "host")?;
    let hostname = r.text()?.to_owned();
    let status = r.label(HostStatus::from_label)?;
    let last_seq = r.u64()?;
    let account_count = r.u64()?;
    let account_limit = r.u64()?;
    let rate_limits = RateLimits {
        per_second: r.u64()?,
        per_hour: r.u64()?,
        per_day: r.u64()?,
    };
    let failures = u32::try_from(r.u64()?).map_err(|_| StateError::Corrupt("host"))?;
    let first_seen_ms = r.u64()?;
    let last_connected_ms = r.u64()?;
    r.finish()?;
    Ok(HostRecord {
        id,
        hostname,
        status,
        last_seq,
        account_count,
        account_limit,
        rate_limits,
        failures,
        first_seen_ms,
        last_connected_ms,
    })
}

/// Encodes an account value (the uid is the key), version 2.
pub fn encode_account(account: &AccountRecord) -> Vec<u8> {
    let mut w = Writer::with_version(ACCOUNT_VERSION);
    w.bytes(account.did.as_bytes())
        .u64(account.host_id)
        .bytes(account.local_status.as_str().as_bytes())
        .bytes(account.upstream_status.as_str().as_bytes())
        .opt_bytes(account.rev.as_deref().map(str::as_bytes))
        .opt_bytes(account.data_cid.as_deref())
        .flag(account.desynchronized)
        .opt_bytes(account.commit_cid.as_deref());
    w.0
}

/// Decodes an account value stored under `uid`: version 2, or version 1 (no commit CID).
pub fn decode_account(uid: u64, bytes: &[u8]) -> Result<AccountRecord, StateError> {
    let (version, mut r) =
        Reader::versioned(bytes, "account", &[ACCOUNT_VERSION_V1, ACCOUNT_VERSION])?;
    let did = r.text()?.to_owned();
    let host_id = r.u64()?;
    let local_status = r.label(LocalStatus::from_label)?;
    let upstream_status = r.label(UpstreamStatus::from_label)?;
    let rev = match r.opt_bytes()? {
        None => None,
        Some(b) => Some(
            std::str::from_utf8(b)
                .map_err(|_| StateError::Corrupt("account"))?
                .to_owned(),
        ),
    };
    let data_cid = r.opt_bytes()?.map(<[u8]>::to_vec);
    let desynchronized = r.flag()?;
    let commit_cid = match version {
        ACCOUNT_VERSION_V1 => None,
        _ => r.opt_bytes()?.map(<[u8]>::to_vec),
    };
    r.finish()?;
    Ok(AccountRecord {
        uid,
        did,
        host_id,
        local_status,
        upstream_status,
        rev,
        data_cid,
        desynchronized,
        commit_cid,
    })
}

/// Encodes an identity snapshot value.
pub fn encode_identity(entry: &[u8], fetched_at_ms: u64) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(fetched_at_ms).bytes(entry);
    w.0
}

/// Decodes an identity snapshot value: (entry, fetched_at_ms).
pub fn decode_identity(bytes: &[u8]) -> Result<(Vec<u8>, u64), StateError> {
    let mut r = Reader::new(bytes, "identity")?;
    let fetched_at_ms = r.u64()?;
    let entry = r.bytes()?.to_vec();
    r.finish()?;
    Ok((entry, fetched_at_ms))
}

/// Encodes a backfill progress value.
pub fn encode_backfill(record: &BackfillRecord) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(record.cursor.as_bytes())
        .u64(record.done)
        .u64(record.failed)
        .bytes(record.status.as_bytes());
    w.0
}

/// Decodes a backfill progress value.
pub fn decode_backfill(bytes: &[u8]) -> Result<BackfillRecord, StateError> {
    let mut r = Reader::new(bytes, "backfill")?;
    let cursor = r.text()?.to_owned();
    let done = r.u64()?;
    let failed = r.u64()?;
    let status = r.text()?.to_owned();
    r.finish()?;
    Ok(BackfillRecord {
        cursor,
        done,
        failed,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_round_trips_and_rejects_trailing_bytes() {
        let account = AccountRecord {
            uid: 7,
            did: "did:plc:abc".into(),
            host_id: 3,
            local_status: LocalStatus::Takendown,
            upstream_status: UpstreamStatus::Deactivated,
            rev: Some("3kabc".into()),
            data_cid: Some(vec![1, 2, 3]),
            desynchronized: true,
            commit_cid: Some(vec![1, 0x71, 0x12, 0x20, 9]),
        };
        let mut bytes = encode_account(&account);
        assert_eq!(bytes[0], ACCOUNT_VERSION);
        assert_eq!(decode_account(7, &bytes).unwrap(), account);
        bytes.push(0);
        assert!(matches!(
            decode_account(7, &bytes),
            Err(StateError::Corrupt(_))
        ));
        assert!(decode_account(7, &bytes[..5]).is_err());
        assert!(decode_account(7, &[]).is_err());
        let none = AccountRecord {
            commit_cid: None,
            ..account
        };
        assert_eq!(decode_account(7, &encode_account(&none)).unwrap(), none);
    }

    /// An account value exactly as the previous version (value version 1, no commit CID)
    /// wrote it, byte by byte: it still decodes, with no commit CID.
    #[test]
    fn an_old_format_account_decodes_without_a_commit_cid() {
        let mut old = vec![1u8];
        let bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        };
        bytes(&mut old, b"did:plc:old");
        old.extend_from_slice(&5u64.to_be_bytes());
        bytes(&mut old, b"active");
        bytes(&mut old, b"deactivated");
        old.push(1);
        bytes(&mut old, b"3kabcdefghij2");
        old.push(1);
        bytes(&mut old, &[1, 0x71, 0x12, 0x20, 7]);
        old.push(0);
        let decoded = decode_account(9, &old).unwrap();
        assert_eq!(
            decoded,
            AccountRecord {
                uid: 9,
                did: "did:plc:old".into(),
                host_id: 5,
                local_status: LocalStatus::Active,
                upstream_status: UpstreamStatus::Deactivated,
                rev: Some("3kabcdefghij2".into()),
                data_cid: Some(vec![1, 0x71, 0x12, 0x20, 7]),
                desynchronized: false,
                commit_cid: None,
            }
        );
        // Version 1 ends at the flag: a commit CID after it is trailing bytes.
        let mut longer = old.clone();
        longer.push(0);
        assert!(decode_account(9, &longer).is_err());
        // Unknown versions are refused, the old one is rewritten as version 2.
        old[0] = 3;
        assert!(decode_account(9, &old).is_err());
        let rewritten = encode_account(&decoded);
        assert_eq!(rewritten[0], ACCOUNT_VERSION);
        assert_eq!(decode_account(9, &rewritten).unwrap(), decoded);
    }
}

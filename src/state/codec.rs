//! Byte encodings of the RocksDB records (docs/specs/state.md has the layouts).
//!
//! Owns: keys (big-endian ids, so byte order is numeric order) and values (a version
//! byte, then fixed-width big-endian integers and `u32`-length-prefixed byte strings).
//! Statuses are stored as their labels so the two stores share one vocabulary.
//!
//! Checks: every decode is strict — unknown version, short input, trailing bytes, a bad
//! label or non-UTF-8 text is [`StateError::Corrupt`]. Does not check field bounds (the
//! store checks them before encoding).

use super::{
    AccountRecord, BackfillRecord, HostRecord, HostStatus, LocalStatus, RateLimits, StateError,
    UpstreamStatus,
};

/// Version byte of every value written by this code.
const VERSION: u8 = 1;

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
        Writer(vec![VERSION])
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
        match bytes.split_first() {
            Some((&VERSION, rest)) => Ok(Reader { rest, what }),
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

/// Encodes an account value (the uid is the key).
pub fn encode_account(account: &AccountRecord) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(account.did.as_bytes())
        .u64(account.host_id)
        .bytes(account.local_status.as_str().as_bytes())
        .bytes(account.upstream_status.as_str().as_bytes())
        .opt_bytes(account.rev.as_deref().map(str::as_bytes))
        .opt_bytes(account.data_cid.as_deref())
        .flag(account.desynchronized);
    w.0
}

/// Decodes an account value stored under `uid`.
pub fn decode_account(uid: u64, bytes: &[u8]) -> Result<AccountRecord, StateError> {
    let mut r = Reader::new(bytes, "account")?;
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
        };
        let mut bytes = encode_account(&account);
        assert_eq!(decode_account(7, &bytes).unwrap(), account);
        bytes.push(0);
        assert!(matches!(
            decode_account(7, &bytes),
            Err(StateError::Corrupt(_))
        ));
        assert!(decode_account(7, &bytes[..5]).is_err());
        assert!(decode_account(7, &[]).is_err());
    }
}

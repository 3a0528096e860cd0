//! Takedown tombstones: which accounts' past records replay hides.
//!
//! Owns: the append-only tombstone file (`tombstones.log`: a 64-byte header, then 32-byte
//! checksummed entries of account key, seq and a reversal flag), loading it at open, and
//! the in-memory map of active takedowns that replay consults. A takedown of account A at
//! seq T hides A's records with seq < T (the `#account` event at T and anything later stay
//! visible); a later reversal entry restores them. Segments are never rewritten.
//! Must not: know about DIDs (the caller maps them to account keys) or emit events.
//! Always checks: the file header, every entry's checksum, the size bound. A torn last
//! entry (a crash during an append that therefore never returned) is cut; a bad entry
//! followed by valid ones is corruption and refuses the open, because dropping a takedown
//! would silently republish taken-down content.
//! Does not check: whether the account exists, or whether a reversal matches an earlier
//! takedown (the last entry for an account wins).

use super::format::{
    FILE_HEADER_LEN, TOMBSTONE_ENTRY_LEN, TombstoneEntry, decode_tombstone_file_header,
    encode_tombstone_file_header,
};
use super::segments::{lock, read, write};
use super::{AccountKey, EventLogError, Seq, io_error, sync_dir, unix_micros_now};
use crate::config::limits::EVENTLOG_TOMBSTONE_FILE_BYTES_MAX;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

/// File name of the tombstone file inside the log directory.
pub(crate) const TOMBSTONE_FILE_NAME: &str = "tombstones.log";

#[derive(Debug)]
struct TombstoneFile {
    file: File,
    end: u64,
}

/// The loaded tombstones and the open file new entries are appended to.
#[derive(Debug)]
pub(crate) struct Tombstones {
    path: PathBuf,
    file: Mutex<TombstoneFile>,
    active: RwLock<HashMap<AccountKey, Seq>>,
    /// Lets replay skip the map lookup entirely while no takedown is active.
    any_active: AtomicBool,
}

impl Tombstones {
    /// Open (or create) the tombstone file in `dir`; returns the bytes cut from a torn tail.
    pub(crate) fn open(dir: &Path) -> Result<(Tombstones, u64), EventLogError> {
        let path = dir.join(TOMBSTONE_FILE_NAME);
        if !path.exists() {
            create_file(dir, &path)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("open_tombstones", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| io_error("stat_tombstones", &path, e))?
            .len();
        if len > EVENTLOG_TOMBSTONE_FILE_BYTES_MAX {
            return Err(EventLogError::TombstoneFileFull);
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| io_error("read_tombstones", &path, e))?;
        let (active, valid_end) = load_entries(&bytes)?;
        let cut = len - valid_end;
        if cut > 0 {
            file.set_len(valid_end)
                .map_err(|e| io_error("truncate_tombstones", &path, e))?;
            file.sync_all()
                .map_err(|e| io_error("sync_tombstones", &path, e))?;
        }
        let any_active = AtomicBool::new(!active.is_empty());
        let tombstones = Tombstones {
            path,
            file: Mutex::new(TombstoneFile {
                file,
                end: valid_end,
            }),
            active: RwLock::new(active),
            any_active,
        };
        Ok((tombstones, cut))
    }

    /// Append an entry durably (write + fdatasync), then apply it to the map.
    pub(crate) fn append(&self, entry: TombstoneEntry) -> Result<(), EventLogError> {
        let mut file = lock(&self.file);
        let next_end = file.end + TOMBSTONE_ENTRY_LEN as u64;
        if next_end > EVENTLOG_TOMBSTONE_FILE_BYTES_MAX {
            return Err(EventLogError::TombstoneFileFull);
        }
        let write_err = |e| io_error("append_tombstone", &self.path, e);
        file.file
            .write_all_at(&entry.encode(), file.end)
            .map_err(write_err)?;
        file.file.sync_data().map_err(write_err)?;
        file.end = next_end;
        let mut active = write(&self.active);
        apply(&mut active, entry);
        self.any_active.store(!active.is_empty(), Ordering::Release);
        Ok(())
    }

    /// Whether replay must skip a record of `account` with this seq.
    pub(crate) fn hides(&self, account: AccountKey, seq: u64) -> bool {
        if !self.any_active.load(Ordering::Acquire) {
            return false;
        }
        read(&self.active)
            .get(&account)
            .is_some_and(|takedown| seq < takedown.get())
    }

    /// The seq of the account's active takedown, if any.
    pub(crate) fn takedown_of(&self, account: AccountKey) -> Option<Seq> {
        read(&self.active).get(&account).copied()
    }
}

fn apply(active: &mut HashMap<AccountKey, Seq>, entry: TombstoneEntry) {
    if entry.reversed {
        active.remove(&entry.account_key);
    } else {
        active.insert(entry.account_key, entry.seq);
    }
}

fn create_file(dir: &Path, path: &Path) -> Result<(), EventLogError> {
    let temp = dir.join(format!("{TOMBSTONE_FILE_NAME}.tmp"));
    let create_err = |e| io_error("create_tombstones", &temp, e);
    let file = File::create(&temp).map_err(create_err)?;
    file.write_all_at(&encode_tombstone_file_header(unix_micros_now()), 0)
        .map_err(create_err)?;
    file.sync_all().map_err(create_err)?;
    fs::rename(&temp, path).map_err(|e| io_error("rename_tombstones", path, e))?;
    sync_dir(dir).map_err(|e| io_error("sync_dir", dir, e))
}

/// The active takedowns and the end of the valid entries. A defect is a torn tail (cut)
/// only when no valid entry follows it.
fn load_entries(bytes: &[u8]) -> Result<(HashMap<AccountKey, Seq>, u64), EventLogError> {
    decode_tombstone_file_header(bytes)
        .map_err(|defect| EventLogError::TombstoneCorrupt { offset: 0, defect })?;
    let mut active = HashMap::new();
    let body = bytes.get(FILE_HEADER_LEN..).unwrap_or_default();
    let mut entries = body.chunks(TOMBSTONE_ENTRY_LEN).enumerate();
    for (i, chunk) in &mut entries {
        let offset = (FILE_HEADER_LEN + i * TOMBSTONE_ENTRY_LEN) as u64;
        match TombstoneEntry::decode(chunk) {
            Ok(entry) => apply(&mut active, entry),
            Err(defect) => {
                if entries.any(|(_, later)| TombstoneEntry::decode(later).is_ok()) {
                    return Err(EventLogError::TombstoneCorrupt { offset, defect });
                }
                return Ok((active, offset));
            }
        }
    }
    Ok((active, bytes.len() as u64))
}

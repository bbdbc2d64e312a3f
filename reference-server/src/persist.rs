//! The `--data-dir` store: records, the change journal and room history in one
//! redb file, so a restarted server keeps its data and its journal epoch.
//!
//! Every logical write (a record change with its journal entry and the new
//! head, or a room message with its counter) is one redb transaction committed
//! with `Durability::Immediate`, which fsyncs before `commit` returns. Callers
//! commit before they change memory, push to subscribers or reply, so nothing
//! a client has seen can be lost by a crash. redb's commit is atomic: after a
//! crash the file opens at the last complete commit and a torn one is
//! discarded, never half-applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidewire_protocol::{ChangeEvent, ChatMessage, Object};

use crate::idempotency::{Kept, KeyName, Remember};

/// `epoch`: the journal epoch, written once when the directory is new.
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// `head`: the last journal position ever assigned (kept even when retention
/// has dropped every entry, so positions are never reused).
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// (database, collection, _id) -> record JSON.
const RECORDS: TableDefinition<(&str, &str, &str), &str> = TableDefinition::new("records");
/// position -> [`JournalEntry`] JSON, for the retained positions only.
const JOURNAL: TableDefinition<u64, &str> = TableDefinition::new("journal");
/// (room, message_id) -> message JSON; message ids sort in posting order.
const ROOM_MESSAGES: TableDefinition<(&str, &str), &str> = TableDefinition::new("room_messages");
/// room -> messages ever posted, so ids keep increasing after history is trimmed.
const ROOM_POSTED: TableDefinition<&str, u64> = TableDefinition::new("room_posted");
/// (principal, idempotency key) -> [`Kept`] JSON: the remembered record writes.
const IDEMPOTENCY: TableDefinition<(&str, &str), &str> = TableDefinition::new("idempotency");
/// (principal, idempotency key) -> [`Kept`] JSON: the remembered room posts, a
/// kind of their own (section 7.5), kept with the history they wrote to.
const POST_KEYS: TableDefinition<(&str, &str), &str> = TableDefinition::new("post_idempotency");

type KeysTable = TableDefinition<'static, (&'static str, &'static str), &'static str>;

const FILE_NAME: &str = "tidewire.redb";

/// Why the data directory could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create data directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    // Boxed: redb's error is large, and every storage call returns this.
    #[error("storage failure: {0}")]
    Database(Box<redb::Error>),
    #[error("corrupt stored data: {0}")]
    Corrupt(#[from] serde_json::Error),
}

// redb reports each phase with its own error type; all of them convert into
// `redb::Error`, so `?` works on every call.
macro_rules! from_redb {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StorageError {
            fn from(err: $ty) -> StorageError {
                StorageError::Database(Box::new(err.into()))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A journal entry as stored: the event in its full form (updates with
/// `full_document`) and the commit time used for retention by age.
#[derive(Serialize, Deserialize)]
pub(crate) struct JournalEntry {
    pub committed_ms: u64,
    pub event: ChangeEvent,
}

/// Everything read back from a data directory at start.
pub(crate) struct Recovered {
    pub epoch: String,
    /// The directory had no epoch yet: this start created it.
    pub fresh: bool,
    pub head: u64,
    /// (database, collection) -> _id -> record.
    pub records: BTreeMap<(String, String), BTreeMap<String, Value>>,
    /// Retained entries by position, oldest first.
    pub journal: Vec<(u64, JournalEntry)>,
    /// room -> (messages ever posted, kept history oldest first).
    pub rooms: BTreeMap<String, (u64, Vec<ChatMessage>)>,
    /// The remembered idempotency keys, oldest first.
    pub keys: Vec<(Remember, Kept)>,
    /// The remembered keys of room posts, oldest first.
    pub post_keys: Vec<(Remember, Kept)>,
}

/// An open data directory, shared by the store and the rooms.
pub(crate) struct Disk {
    db: Database,
}

impl Disk {
    /// Opens (creating when needed) the store in `dir` and reads it back.
    /// Opening after a crash rolls back to the last complete commit.
    pub fn open(dir: &Path) -> Result<(Arc<Disk>, Recovered), StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let db = Database::create(dir.join(FILE_NAME))?;
        let disk = Disk { db };
        let (epoch, fresh) = disk.epoch()?;
        let recovered = disk.read_all(epoch, fresh)?;
        Ok((Arc::new(disk), recovered))
    }

    fn begin(&self) -> Result<WriteTransaction, StorageError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        Ok(txn)
    }

    /// Reads the epoch, or creates every table and a new epoch in a new directory.
    fn epoch(&self) -> Result<(String, bool), StorageError> {
        let txn = self.begin()?;
        let found = {
            txn.open_table(RECORDS)?;
            txn.open_table(JOURNAL)?;
            txn.open_table(ROOM_MESSAGES)?;
            txn.open_table(ROOM_POSTED)?;
            txn.open_table(IDEMPOTENCY)?;
            txn.open_table(POST_KEYS)?;
            let mut counters = txn.open_table(COUNTERS)?;
            let mut meta = txn.open_table(META)?;
            let existing = meta.get("epoch")?.map(|e| e.value().to_string());
            match existing {
                Some(epoch) => (epoch, false),
                None => {
                    let epoch = uuid::Uuid::new_v4().simple().to_string();
                    meta.insert("epoch", epoch.as_str())?;
                    counters.insert("head", 0)?;
                    (epoch, true)
                }
            }
        };
        txn.commit()?;
        Ok(found)
    }

    fn read_all(&self, epoch: String, fresh: bool) -> Result<Recovered, StorageError> {
        let txn = self.db.begin_read()?;
        let head = txn
            .open_table(COUNTERS)?
            .get("head")?
            .map_or(0, |h| h.value());
        let mut records: BTreeMap<(String, String), BTreeMap<String, Value>> = BTreeMap::new();
        for row in txn.open_table(RECORDS)?.iter()? {
            let (key, value) = row?;
            let (database, collection, id) = key.value();
            records
                .entry((database.to_string(), collection.to_string()))
                .or_default()
                .insert(id.to_string(), serde_json::from_str(value.value())?);
        }
        let mut journal = Vec::new();
        for row in txn.open_table(JOURNAL)?.iter()? {
            let (position, entry) = row?;
            journal.push((position.value(), serde_json::from_str(entry.value())?));
        }
        let mut rooms: BTreeMap<String, (u64, Vec<ChatMessage>)> = BTreeMap::new();
        for row in txn.open_table(ROOM_POSTED)?.iter()? {
            let (room, posted) = row?;
            rooms.insert(room.value().to_string(), (posted.value(), Vec::new()));
        }
        for row in txn.open_table(ROOM_MESSAGES)?.iter()? {
            let (key, message) = row?;
            let (room, _) = key.value();
            rooms
                .entry(room.to_string())
                .or_default()
                .1
                .push(serde_json::from_str(message.value())?);
        }
        Ok(Recovered {
            epoch,
            fresh,
            head,
            records,
            journal,
            rooms,
            keys: read_keys(&txn, IDEMPOTENCY)?,
            post_keys: read_keys(&txn, POST_KEYS)?,
        })
    }

    /// Commits one record change: the record (`None` deletes it), its journal
    /// entry at `position` (the new head), and the removal of the journal
    /// positions retention drops (which may include `position` itself).
    pub fn commit_change(
        &self,
        key: (&str, &str, &str),
        record: Option<&Object>,
        position: u64,
        entry: &JournalEntry,
        dropped: &[u64],
        (kept, forgotten): (Option<&(Remember, Kept)>, &[KeyName]),
    ) -> Result<(), StorageError> {
        let txn = self.begin()?;
        {
            let mut records = txn.open_table(RECORDS)?;
            match record {
                Some(record) => {
                    records.insert(key, serde_json::to_string(record)?.as_str())?;
                }
                None => {
                    records.remove(key)?;
                }
            }
            let mut journal = txn.open_table(JOURNAL)?;
            journal.insert(position, serde_json::to_string(entry)?.as_str())?;
            for old in dropped {
                journal.remove(old)?;
            }
            txn.open_table(COUNTERS)?.insert("head", position)?;
            write_keys(&txn, IDEMPOTENCY, kept, forgotten)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Forgets keys older than the window outside a write (at start).
    pub fn forget_keys(&self, forgotten: &[KeyName]) -> Result<(), StorageError> {
        self.forget_in(IDEMPOTENCY, forgotten)
    }

    /// Forgets keys of room posts older than the window outside a post (at start).
    pub fn forget_post_keys(&self, forgotten: &[KeyName]) -> Result<(), StorageError> {
        self.forget_in(POST_KEYS, forgotten)
    }

    fn forget_in(&self, table: KeysTable, forgotten: &[KeyName]) -> Result<(), StorageError> {
        if forgotten.is_empty() {
            return Ok(());
        }
        let txn = self.begin()?;
        write_keys(&txn, table, None, forgotten)?;
        txn.commit()?;
        Ok(())
    }

    /// Removes journal positions that retention dropped outside a commit (at start).
    pub fn drop_journal(&self, dropped: &[u64]) -> Result<(), StorageError> {
        if dropped.is_empty() {
            return Ok(());
        }
        let txn = self.begin()?;
        {
            let mut journal = txn.open_table(JOURNAL)?;
            for old in dropped {
                journal.remove(old)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Commits a room message with the room's new message count, and removes
    /// the messages the history bound drops (which may include this one);
    /// remembers the post's key and forgets the expired ones.
    pub fn post(
        &self,
        room: &str,
        posted: u64,
        message: &ChatMessage,
        dropped: &[&str],
        (kept, forgotten): (Option<&(Remember, Kept)>, &[KeyName]),
    ) -> Result<(), StorageError> {
        let txn = self.begin()?;
        {
            let mut messages = txn.open_table(ROOM_MESSAGES)?;
            messages.insert(
                (room, message.message_id.as_str()),
                serde_json::to_string(message)?.as_str(),
            )?;
            for old in dropped {
                messages.remove((room, *old))?;
            }
            txn.open_table(ROOM_POSTED)?.insert(room, posted)?;
            write_keys(&txn, POST_KEYS, kept, forgotten)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Removes room messages that the history bound dropped outside a post (at start).
    pub fn drop_room_messages(&self, room: &str, dropped: &[&str]) -> Result<(), StorageError> {
        if dropped.is_empty() {
            return Ok(());
        }
        let txn = self.begin()?;
        {
            let mut messages = txn.open_table(ROOM_MESSAGES)?;
            for old in dropped {
                messages.remove((room, *old))?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Forgets the `forgotten` keys of `table` and remembers `kept`, in the write's
/// own transaction: a key is remembered exactly when its write is durable.
fn write_keys(
    txn: &WriteTransaction,
    table: KeysTable,
    kept: Option<&(Remember, Kept)>,
    forgotten: &[KeyName],
) -> Result<(), StorageError> {
    let mut keys = txn.open_table(table)?;
    for (principal, key) in forgotten {
        keys.remove((principal.as_str(), key.as_str()))?;
    }
    if let Some((write, kept)) = kept {
        keys.insert(
            (write.principal.as_str(), write.key.as_str()),
            serde_json::to_string(kept)?.as_str(),
        )?;
    }
    Ok(())
}

/// The remembered keys of `table`, oldest first.
fn read_keys(
    txn: &redb::ReadTransaction,
    table: KeysTable,
) -> Result<Vec<(Remember, Kept)>, StorageError> {
    let mut keys = Vec::new();
    // A directory written before keys of this kind were kept has no table yet.
    if let Ok(table) = txn.open_table(table) {
        for row in table.iter()? {
            let (name, kept) = row?;
            let (principal, key) = name.value();
            let kept: Kept = serde_json::from_str(kept.value())?;
            keys.push((
                Remember {
                    principal: principal.to_string(),
                    key: key.to_string(),
                    fingerprint: kept.fingerprint.clone(),
                },
                kept,
            ));
        }
    }
    keys.sort_by_key(|(_, kept)| kept.at_ms);
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tidewire_protocol::{ErrorCode, ResumeToken};

    use crate::config::Config;
    use crate::state::State;

    fn open(dir: &std::path::Path, retention: usize) -> (State, bool) {
        State::new(Config {
            data_dir: Some(dir.to_path_buf()),
            journal_retention: retention,
            ..Config::default()
        })
        .expect("the data directory opens")
    }

    fn record(id: &str) -> tidewire_protocol::Object {
        json!({"_id": id, "n": 1}).as_object().unwrap().clone()
    }

    #[test]
    fn a_reopened_directory_keeps_epoch_records_and_positions() {
        let dir = tempfile::tempdir().unwrap();
        let (state, fresh) = open(dir.path(), 0);
        assert!(fresh);
        let epoch = state.epoch.clone();
        {
            let mut store = state.store.write();
            store.create("d", "c", record("a")).unwrap();
            store.create("d", "c", record("b")).unwrap();
            store.update("d", "c", "a", &record("a"), &[]).unwrap();
            store.delete("d", "c", "b").unwrap();
        }
        drop(state);

        let (state, fresh) = open(dir.path(), 0);
        assert!(!fresh, "the directory was created by the first start");
        assert_eq!(state.epoch, epoch);
        let mut store = state.store.write();
        assert!(store.get("d", "c", "a").is_some());
        assert!(store.get("d", "c", "b").is_none());
        // Retention 0 kept no events, but the head survived: positions are
        // never reused, so a token names one change forever.
        let head = ResumeToken(format!("{epoch}:4"));
        let older = ResumeToken(format!("{epoch}:3"));
        assert_eq!(store.resume_position(&head).unwrap(), 4);
        assert_eq!(
            store.resume_position(&older).unwrap_err().code,
            ErrorCode::HistoryLost
        );
        store.create("d", "c", record("c")).unwrap();
        assert_eq!(store.token(5), format!("{epoch}:5"));
        assert_eq!(
            store.resume_position(&head).unwrap_err().code,
            ErrorCode::HistoryLost
        );
    }

    #[test]
    fn a_smaller_retention_trims_the_stored_journal_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (state, _) = open(dir.path(), 10);
        let epoch = state.epoch.clone();
        for id in ["a", "b", "c", "d"] {
            state.store.write().create("d", "c", record(id)).unwrap();
        }
        drop(state);

        let (state, _) = open(dir.path(), 2);
        drop(state);
        // Reopening with the larger bound again cannot bring the trimmed events back.
        let (state, _) = open(dir.path(), 10);
        let store = state.store.write();
        let token = |p: u64| ResumeToken(format!("{epoch}:{p}"));
        assert_eq!(store.resume_position(&token(2)).unwrap(), 2);
        assert_eq!(
            store.resume_position(&token(1)).unwrap_err().code,
            ErrorCode::HistoryLost
        );
    }
}

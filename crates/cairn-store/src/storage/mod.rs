//! The storage floor: the engines and the types they exchange with the layers above. Only
//! this module (and the error conversion) names a database crate; features decide policy and
//! call the engine's operations. Nothing here imports a feature or the store: the floor
//! depends only on the support modules (errors, values). PostgreSQL will be a sibling of
//! `sqlite/` with the same file names.

pub(crate) mod sqlite;

use crate::codec::ValueKind;

/// What survives a crash. Both levels keep the file consistent: a transaction is there whole
/// or not at all. They differ in how many of the newest commits a power loss may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode, the default. A crash of the application (a panic,
    /// `kill -9`, an OOM kill) loses nothing that was committed. A power loss or OS crash may
    /// lose the last commits before the most recent checkpoint, never corrupt the file.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is on stable storage before it returns, so it also
    /// survives a power loss. Each commit costs an fsync (milliseconds on most disks).
    Full,
}

/// A rollback journal to fall back to where WAL is unavailable (network filesystems without
/// shared memory). Concurrency still works, with readers and the writer excluding each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RollbackJournal {
    /// `journal_mode=DELETE`.
    Delete,
    /// `journal_mode=TRUNCATE`.
    Truncate,
    /// `journal_mode=PERSIST`.
    Persist,
}

/// Where a schema version number is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VersionSlot<'s> {
    /// `PRAGMA user_version`: users' own files, and cairn's own schema in a store.
    UserVersion,
    /// A row of `cairn_migrations`: users' scopes inside a store.
    Scope(&'s str),
}

impl VersionSlot<'_> {
    pub(crate) fn name(&self) -> &str {
        match self {
            VersionSlot::UserVersion => "user_version",
            VersionSlot::Scope(s) => s,
        }
    }
}

/// A stored value as read: its bytes and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub bytes: Vec<u8>,
    pub kind: ValueKind,
}

impl Stored {
    /// From the kind's code as stored. A code this version does not know (a later version
    /// wrote it, which the schema version check would have refused) reads as bytes.
    pub fn new(bytes: Vec<u8>, code: i64) -> Stored {
        let kind = u8::try_from(code).ok().and_then(ValueKind::from_code).unwrap_or(ValueKind::Bytes);
        Stored { bytes, kind }
    }
}

/// A fresh entry: its value and expiry.
pub(crate) struct EntryRow {
    pub value: Stored,
    pub expires_at: Option<i64>,
}

/// A namespace's counters and settings.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NsRow {
    pub entries: u64,
    pub bytes: u64,
    pub max_entries: Option<u64>,
    pub max_bytes: Option<u64>,
    pub lru: bool,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

/// One ledger row, as stored.
#[derive(Debug, Clone)]
pub(crate) struct ItemRow {
    pub id: String,
    pub state: i64,
    pub seq: Option<i64>,
    pub attempts: i64,
    pub worker: Option<String>,
    pub result: Option<Stored>,
    pub error: Option<String>,
    pub updated_at: i64,
}

/// Who holds a lock.
#[derive(Debug, Clone)]
pub(crate) struct HolderRow {
    pub owner: String,
    pub boot_id: String,
    pub pid: i64,
    pub pid_start: i64,
    pub expires_at: i64,
}

/// Who takes a lock.
pub(crate) struct Taker<'a> {
    pub owner: &'a str,
    pub boot_id: &'a str,
    pub pid: i64,
    pub pid_start: i64,
}

/// Page counts of the main database file.
pub(crate) struct Pages {
    pub page_size: u64,
    pub page_count: u64,
    pub freelist: u64,
}

/// The stored ledger states (features decide what they mean; see `crate::ledger`).
pub(crate) const PENDING: i64 = 0;
pub(crate) const CLAIMED: i64 = 1;
pub(crate) const DONE: i64 = 2;
pub(crate) const FAILED: i64 = 3;

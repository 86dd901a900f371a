//! The storage floor: the engines and the types they exchange with the layers above. Only
//! this module (and the error conversion) names a database crate; features decide policy and
//! call the engine's operations. Nothing here imports a feature or the store: the floor
//! depends only on the support modules (errors, values). PostgreSQL will be a sibling of
//! `sqlite/` with the same file names.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod sqlite;
mod states;

use std::path::Path;
use std::time::Duration;

use crate::codec::{Rows, SqlValue, ValueKind};
use crate::error::Result;

/// The engines a store can run on. A second engine is a second variant, behind its feature.
pub(crate) enum Engine {
    /// One SQLite file.
    Sqlite(sqlite::Engine),
    /// A schema on a PostgreSQL server (boxed: its connection is several times the size of a
    /// SQLite handle).
    #[cfg(feature = "postgres")]
    Postgres(Box<postgres::Engine>),
}

impl Engine {
    /// The SQLite engine, for what only a file has (opening checks, WAL, statement statistics).
    pub(crate) fn sqlite(&self) -> Result<&sqlite::Engine> {
        match self {
            Engine::Sqlite(e) => Ok(e),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => Err(crate::error::Error::invalid(format!(
                "{}: this is for a store in a SQLite file, not one on PostgreSQL",
                e.path().display()
            ))),
        }
    }

    /// BEGIN IMMEDIATE, returning a guard that rolls back unless disarmed: on an early
    /// return, an error or a panic alike.
    pub(crate) fn begin(&self) -> Result<TxGuard<'_>> {
        self.begin_immediate()?;
        Ok(TxGuard { engine: self, done: false })
    }
}

/// An open write transaction; see [`Engine::begin`].
pub(crate) struct TxGuard<'e> {
    engine: &'e Engine,
    done: bool,
}

impl TxGuard<'_> {
    pub(crate) fn commit(mut self) -> Result<()> {
        self.engine.commit()?;
        self.done = true;
        Ok(())
    }

    /// Leave the transaction as it is (committed, or to be ended by other means).
    pub(crate) fn disarm(mut self) {
        self.done = true;
    }
}

impl Drop for TxGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.engine.rollback_quietly();
        }
    }
}

/// Writes the engine contract once: the trait (one doc line per operation), its
/// implementation for each engine's inherent methods of the same names (so that a missing or
/// mistyped operation fails to compile), and its forwarding through [`Engine`].
macro_rules! engine_ops {
    ($($(#[doc = $doc:literal])* fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) $(-> $ret:ty)?;)*) => {
        /// The operations every engine answers. Time (`now`) and every threshold arrive as
        /// parameters; features decide policy. Each operation is atomic by itself; a write
        /// runs inside a transaction the store has begun.
        // A claim carries its whole context (namespace, id, worker, lease, time, holder, the
        // holder it replaces): one operation, one statement, rather than a struct per call.
        #[allow(clippy::too_many_arguments)]
        pub(crate) trait EngineOps {
            $($(#[doc = $doc])* fn $name(&self $(, $arg: $ty)*) $(-> $ret)?;)*
        }

        #[allow(clippy::too_many_arguments)]
        impl EngineOps for sqlite::Engine {
            $(#[inline]
            fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
                sqlite::Engine::$name(self $(, $arg)*)
            })*
        }

        #[allow(clippy::too_many_arguments)]
        #[cfg(feature = "postgres")]
        #[allow(clippy::too_many_arguments)]
        impl EngineOps for postgres::Engine {
            $(#[inline]
            fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
                postgres::Engine::$name(self $(, $arg)*)
            })*
        }

        impl EngineOps for Engine {
            $(#[inline]
            fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
                match self {
                    Engine::Sqlite(e) => EngineOps::$name(e $(, $arg)*),
                    #[cfg(feature = "postgres")]
                    Engine::Postgres(e) => EngineOps::$name(&**e $(, $arg)*),
                }
            })*
        }
    };
}

engine_ops! {
    /// The file (or server) errors are reported against.
    fn path(&self) -> &Path;
    /// How long a write waits for another's lock.
    fn busy_timeout(&self) -> Duration;
    /// Change it (for a moment: a dropped lock guard waits less).
    fn set_busy_timeout(&self, d: Duration);
    /// Begin a write transaction, taking the write lock now.
    fn begin_immediate(&self) -> Result<()>;
    /// Commit the open transaction.
    fn commit(&self) -> Result<()>;
    /// Roll back the open transaction, if any; errors are dropped.
    fn rollback_quietly(&self);
    /// True while a transaction is open.
    fn in_transaction(&self) -> bool;
    /// The engine's consistency check: `["ok"]` or the problems.
    fn integrity_check(&self) -> Result<Vec<String>>;
    /// Rows changed by the last statement.
    fn changes(&self) -> usize;
    /// One statement of the user's own, fenced off from cairn's tables; its rows.
    fn user_sql(&self, sql: &str, params: &[SqlValue], read_only: bool) -> Result<Rows>;
    /// One statement of a user's migration step (trusted, not fenced); its rows.
    fn migration_sql(&self, sql: &str, params: &[SqlValue]) -> Result<Rows>;
    /// A schema version.
    fn read_version(&self, slot: VersionSlot<'_>) -> Result<i64>;
    /// Set a schema version.
    fn write_version(&self, slot: VersionSlot<'_>, version: i64) -> Result<()>;
    /// Run a migration step's SQL.
    fn run_script(&self, sql: &str) -> Result<()>;
    /// Give free space back.
    fn vacuum(&self) -> Result<()>;
    /// A compacted copy, from one snapshot.
    fn vacuum_into(&self, dest: &Path) -> Result<()>;
    /// Move the log into the database.
    fn checkpoint_truncate(&self) -> Result<()>;
    /// Sizes of the database.
    fn pages(&self) -> Result<Pages>;
    /// What only a server can say about its health (a file's health is read from the file).
    fn server_health(&self) -> Result<Vec<Health>>;

    /// A fresh entry's value.
    fn cache_get(&self, ns: &str, key: &str, now: i64) -> Result<Option<Stored>>;
    /// A fresh entry's value, recording its use with `rank`.
    fn cache_get_touch(&self, ns: &str, key: &str, now: i64, rank: i64) -> Result<Option<Stored>>;
    /// The next recency rank of a bounded namespace.
    fn cache_next_rank(&self, ns: &str) -> Result<i64>;
    /// A fresh entry's value and expiry.
    fn cache_entry(&self, ns: &str, key: &str, now: i64) -> Result<Option<EntryRow>>;
    /// Whether a fresh entry exists.
    fn cache_contains(&self, ns: &str, key: &str, now: i64) -> Result<bool>;
    /// Insert or replace an entry (keeping a bounded namespace's sizes).
    fn cache_upsert(&self, ns: &str, key: &str, value: (&[u8], ValueKind), expires_at: Option<i64>, rank: Option<i64>) -> Result<()>;
    /// Insert unless a fresh entry exists; true if it inserted.
    fn cache_add(&self, ns: &str, key: &str, value: (&[u8], ValueKind), expires_at: Option<i64>, rank: Option<i64>, now: i64) -> Result<bool>;
    /// Delete an entry: `Some(fresh)` if there was one.
    fn cache_delete(&self, ns: &str, key: &str, now: i64) -> Result<Option<bool>>;
    /// A fresh entry's new expiry; false if none.
    fn cache_set_expiry(&self, ns: &str, key: &str, now: i64, expires_at: Option<i64>) -> Result<bool>;
    /// A page of fresh keys in `[from, until)` after `after`.
    fn cache_keys(&self, ns: &str, range: (&str, Option<&str>), after: &str, limit: i64, now: i64) -> Result<Vec<String>>;
    /// Delete a namespace's entries; how many.
    fn cache_clear(&self, ns: &str) -> Result<u64>;
    /// Delete a namespace's entries whose keys lie in `[from, until)` (`until` `None`: to the
    /// end), and their fill markers; how many entries.
    fn cache_clear_range(&self, ns: &str, range: (&str, Option<&str>)) -> Result<u64>;
    /// Delete a namespace's expired entries; how many.
    fn cache_sweep_ns(&self, ns: &str, now: i64) -> Result<u64>;
    /// Delete some (or a batch of) expired entries of any namespace, and stale fill markers.
    fn cache_sweep(&self, now: i64, many: bool) -> Result<u64>;
    /// A namespace's counters and settings.
    fn cache_ns(&self, ns: &str) -> Result<Option<NsRow>>;
    /// The namespaces with entries or settings, sorted.
    fn cache_namespaces(&self) -> Result<Vec<String>>;
    /// Serialize the writers of a bounded namespace until the transaction ends (its sizes
    /// must not change between a write and its evictions). A single-writer engine: nothing.
    fn cache_lock_ns(&self, ns: &str) -> Result<()>;
    /// True for an engine shared by many writers at once (a server): the bookkeeping that
    /// rides along with writes (hit counts, the amortized sweep) then runs after the commit,
    /// in transactions of its own, so that it never makes a user's transaction wait or fail.
    fn bookkeeping_apart(&self) -> bool;
    /// True for an engine on which a fenced claim or completion is atomic as one statement
    /// outside a transaction (a server, with row locks): the store then sends it on its own,
    /// saving the BEGIN and COMMIT round trips. SQLite: false (its write lock is the
    /// transaction, and its checks of the file run under it).
    fn single_statement_writes(&self) -> bool;
    /// Store a namespace's bounds (and rank or unrank its entries).
    fn cache_set_limits(&self, ns: &str, max_entries: Option<u64>, max_bytes: Option<u64>, lru: bool) -> Result<()>;
    /// Count a namespace's entries and bytes.
    fn cache_count(&self, ns: &str) -> Result<(u64, u64)>;
    /// Evict the `n` lowest-ranked entries but `keep`; how many.
    fn cache_evict(&self, ns: &str, keep: &str, n: u64) -> Result<u64>;
    /// Add hit and miss counts to a namespace's totals.
    fn cache_add_tally(&self, ns: &str, hits: u64, misses: u64) -> Result<()>;
    /// Keep a reading process's counts outside the database until a write adds them, so that
    /// a process that only reads needs no write transaction; false if this engine keeps none
    /// (the caller writes them in a transaction).
    fn cache_defer_tally(&self, counts: &[NsTally]) -> Result<bool>;
    /// The counts kept so and not yet added.
    fn cache_deferred_tally(&self) -> Result<Vec<NsTally>>;
    /// Inside a write transaction: take the counts kept so, to be added by it.
    fn cache_take_deferred_tally(&self) -> Result<Vec<NsTally>>;
    /// Who is computing a key, until when.
    fn fill_get(&self, ns: &str, key: &str) -> Result<Option<(String, i64)>>;
    /// Take a key's fill marker unless someone holds a live one (`dead`: an owner found dead).
    fn fill_try_claim(&self, ns: &str, key: &str, owner: &str, expires_at: i64, now: i64, dead: Option<&str>) -> Result<bool>;
    /// Drop `owner`'s fill marker.
    fn fill_release(&self, ns: &str, key: &str, owner: &str) -> Result<()>;

    /// A job's checkpoint.
    fn checkpoint_get(&self, job: &str) -> Result<Option<Stored>>;
    /// Save a job's checkpoint.
    fn checkpoint_set(&self, job: &str, value: (&[u8], ValueKind), now: i64) -> Result<()>;
    /// Delete a job's checkpoint; true if there was one.
    fn checkpoint_delete(&self, job: &str) -> Result<bool>;

    /// Whether an item is done.
    fn ledger_is_done(&self, ns: &str, id: &str) -> Result<bool>;
    /// An item as stored.
    fn ledger_item(&self, ns: &str, id: &str) -> Result<Option<ItemRow>>;
    /// Mark an item done (with a result); true if this call did it.
    fn ledger_mark_done(&self, ns: &str, id: &str, result: Option<(&[u8], ValueKind)>, now: i64) -> Result<bool>;
    /// Mark items done; how many were not.
    fn ledger_mark_done_many(&self, ns: &str, ids: &[&str], now: i64) -> Result<u64>;
    /// Queue the items the ledger does not know, in order; how many.
    fn ledger_enqueue_many(&self, ns: &str, items: &[NewItem<'_>], now: i64) -> Result<u64>;
    /// Claim one item (taking over `replace`, a dead holder).
    fn ledger_claim(&self, ns: &str, id: &str, worker: &str, lease_until: i64, now: i64, holder: Option<&str>, replace: Option<&str>) -> Result<Option<ClaimRow>>;
    /// Claim the next item: an expired claim, else the pending item due first.
    fn ledger_claim_next(&self, ns: &str, worker: &str, lease_until: i64, now: i64, holder: Option<&str>) -> Result<Option<ClaimRow>>;
    /// Claim up to `n` items at once (expired claims first, then the pending ones due first).
    fn ledger_claim_next_many(&self, ns: &str, worker: &str, lease_until: i64, now: i64, holder: Option<&str>, n: u32) -> Result<Vec<ClaimRow>>;
    /// Take over the oldest claim of a dead holder.
    fn ledger_claim_held_by(&self, ns: &str, dead: &str, worker: &str, lease_until: i64, now: i64, holder: Option<&str>) -> Result<Option<ClaimRow>>;
    /// The processes holding claims in a namespace.
    fn ledger_holders(&self, ns: &str) -> Result<Vec<String>>;
    /// The process a claim of an item is tied to.
    fn ledger_holder(&self, ns: &str, id: &str) -> Result<Option<String>>;
    /// A worker's claim of an item (live, lapsed, or completed by it): token and lease expiry.
    fn ledger_held(&self, ns: &str, id: &str, worker: &str) -> Result<Option<(i64, i64)>>;
    /// The namespaces with items, sorted.
    fn ledger_namespaces(&self) -> Result<Vec<String>>;
    /// Move a claim's lease; false if fenced.
    fn ledger_extend(&self, ns: &str, id: &str, worker: &str, token: i64, lease_until: i64) -> Result<bool>;
    /// Complete a claim; false if fenced. True again for the same claim once done by it.
    fn ledger_complete(&self, ns: &str, id: &str, worker: &str, token: i64, result: Option<(&[u8], ValueKind)>, now: i64) -> Result<bool>;
    /// Complete several claims at once; for each, in order, what `ledger_complete` answers.
    fn ledger_complete_many(&self, ns: &str, claims: &[Fenced<'_>], now: i64) -> Result<Vec<bool>>;
    /// Record a failure (pending again after `backoff`, or given up at `max_attempts`); the
    /// state left, or `None` if the claim was fenced.
    fn ledger_fail(&self, ns: &str, id: &str, claim: Option<(&str, i64)>, error: &str, retry: RetryRule, now: i64) -> Result<Option<i64>>;
    /// Given-up items (those of `ids`, or all with `None`) pending again, attempts reset,
    /// due now; how many.
    fn ledger_retry(&self, ns: &str, ids: Option<&[&str]>, now: i64) -> Result<u64>;
    /// Delete up to `limit` items done before `before` (Unix ms); how many.
    fn ledger_prune_done(&self, ns: &str, before: i64, limit: i64) -> Result<u64>;
    /// Which ids are done or given up, from one snapshot.
    fn ledger_filter_settled(&self, ns: &str, ids: &[&str]) -> Result<Vec<bool>>;
    /// Items per stored state (an expired claim counted as pending).
    fn ledger_counts(&self, ns: &str, now: i64) -> Result<Vec<(i64, u64)>>;
    /// A page of items in id order.
    fn ledger_list(&self, ns: &str, state: Option<i64>, after: &str, limit: i64) -> Result<Vec<ItemRow>>;
    /// Delete an item; true if known.
    fn ledger_delete(&self, ns: &str, id: &str) -> Result<bool>;
    /// Delete a namespace's items; how many.
    fn ledger_clear(&self, ns: &str) -> Result<u64>;

    /// Store one chunk of a memo result's output (`gen`: which result of the key).
    fn memo_chunk_put(&self, ns: &str, key: &str, gen: i64, seq: i64, data: &[u8]) -> Result<()>;
    /// Hand a result's chunks to `f` in order, all from one snapshot; how many there were.
    fn memo_chunks_each(&self, ns: &str, key: &str, gen: i64, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64>;
    /// How many chunks a result has.
    fn memo_chunks_count(&self, ns: &str, key: &str, gen: i64) -> Result<u64>;
    /// Delete a result's chunks; how many.
    fn memo_chunks_drop(&self, ns: &str, key: &str, gen: i64) -> Result<u64>;
    /// Delete the chunks of a key's other results; how many.
    fn memo_chunks_drop_others(&self, ns: &str, key: &str, keep: i64) -> Result<u64>;
    /// Delete the chunks of keys that have neither an entry nor a live fill marker; how many.
    fn memo_chunks_gc(&self, now: i64) -> Result<u64>;
    /// Give back memory the engine keeps cached but does not need.
    fn release_memory(&self);

    /// The holders of a lock's slots below `slots` (a plain lock has slot 0 alone), by slot.
    fn lock_holders(&self, name: &str, slots: u32) -> Result<Vec<HolderRow>>;
    /// Take the lowest slot below `slots` that is free or expired; which one.
    fn lock_take_any(&self, name: &str, slots: u32, t: &Taker<'_>, expires_at: i64, now: i64) -> Result<Option<u32>>;
    /// Take a slot from `dead`, a holder found dead (or if it is free or expired); true if taken.
    fn lock_take_over(&self, name: &str, slot: u32, t: &Taker<'_>, expires_at: i64, now: i64, dead: &str) -> Result<bool>;
    /// Move a slot's expiry; false if not the owner's.
    fn lock_renew(&self, name: &str, slot: u32, owner: &str, expires_at: i64) -> Result<bool>;
    /// Release a slot; false if not the owner's.
    fn lock_release(&self, name: &str, slot: u32, owner: &str) -> Result<bool>;
}

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

impl Durability {
    /// The level's name: `normal` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Normal => "normal",
            Durability::Full => "full",
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `normal` or `full`.
///
/// ```
/// use cairn::Durability;
///
/// assert_eq!("full".parse::<Durability>()?, Durability::Full);
/// assert_eq!(Durability::Normal.to_string(), "normal");
/// assert!("fsync".parse::<Durability>().is_err());
/// # Ok::<(), cairn::Error>(())
/// ```
impl std::str::FromStr for Durability {
    type Err = crate::error::Error;

    fn from_str(name: &str) -> Result<Durability> {
        match name {
            "normal" => Ok(Durability::Normal),
            "full" => Ok(Durability::Full),
            other => Err(crate::error::Error::invalid(format!(
                "durability is \"normal\" or \"full\", not {other:?}"
            ))),
        }
    }
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

/// A server URL with its password replaced by `***`, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let shown = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
            format!("{}{masked}{}", &url[..scheme_end], &rest[at..])
        }
        None => url.to_owned(),
    };
    // A password may come as a parameter too (`?password=...`, libpq's `sslpassword`).
    let Some((base, query)) = shown.split_once('?') else { return shown };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if matches!(k.to_ascii_lowercase().as_str(), "password" | "sslpassword") => {
                format!("{k}=***")
            }
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
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

/// Hits and misses of one namespace, counted and not yet added to its totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NsTally {
    pub ns: String,
    pub hits: u64,
    pub misses: u64,
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
    /// When a pending item may be handed out (Unix ms); `None` unless pending.
    pub due: Option<i64>,
    /// What the item carries for its worker.
    pub data: Option<Stored>,
}

/// Who holds a lock's slot.
#[derive(Debug, Clone)]
pub(crate) struct HolderRow {
    pub slot: u32,
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

/// An item to queue: its id, what it carries for its worker, and when it may first be handed
/// out (Unix ms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewItem<'a> {
    pub id: &'a str,
    pub data: Option<(&'a [u8], ValueKind)>,
    pub due: i64,
}

/// A claim as a fenced write names it: the item, the worker holding it and its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fenced<'a> {
    pub id: &'a str,
    pub worker: &'a str,
    pub token: i64,
}

/// A claim as made: the item, the new fencing token, what the item carries, and how many
/// times it failed before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimRow {
    pub id: String,
    pub token: i64,
    pub data: Option<Stored>,
    pub attempts: i64,
}

/// What a failure leads to: the item is given up at `max_attempts` failures; until then it may
/// be handed out again after `base × 2^(failures before)`, at most `cap`, scaled by `jitter`
/// (0.5 to 1, chosen by the feature).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryRule {
    pub max_attempts: u32,
    pub base_ms: i64,
    pub cap_ms: i64,
    pub jitter: f64,
}

impl RetryRule {
    /// The delay after the failure that makes `failures` in all.
    pub fn delay_ms(&self, failures: i64) -> i64 {
        let doublings = u32::try_from((failures - 1).clamp(0, 62)).unwrap_or(62);
        let full =
            self.base_ms.saturating_mul(1i64.checked_shl(doublings).unwrap_or(i64::MAX)).min(self.cap_ms);
        (full as f64 * self.jitter) as i64
    }
}

/// One check of a server's health: what, whether all is well, what was found, what to do.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    pub fix: Option<String>,
}

/// The stored ledger states (features decide what they mean; see `crate::ledger`).
pub(crate) const PENDING: i64 = 0;
pub(crate) const CLAIMED: i64 = 1;
pub(crate) const DONE: i64 = 2;
pub(crate) const FAILED: i64 = 3;

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    /// A password never reaches a message, in the user part or as a parameter; the rest of
    /// the URL stays as written, so the message still says which server.
    #[test]
    fn passwords_are_masked_wherever_the_url_carries_them() {
        for (url, shown) in [
            ("postgres://u:s3cret@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u@h/db?password=s3cret&sslmode=disable",
                "postgres://u@h/db?password=***&sslmode=disable",
            ),
            (
                "postgresql://h/db?user=u&PASSWORD=x&sslpassword=y",
                "postgresql://h/db?user=u&PASSWORD=***&sslpassword=***",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db?cairn_schema=s", "postgres://h/db?cairn_schema=s"),
            ("/not/a/url?password=x", "/not/a/url?password=x"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}

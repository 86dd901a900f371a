//! The storage floor: the engines and the types they exchange with the layers above. Only
//! this module (and the error conversion) names a database crate; features decide policy and
//! call the engine's operations. Nothing here imports a feature or the store: the floor
//! depends only on the support modules (errors, values). PostgreSQL will be a sibling of
//! `sqlite/` with the same file names.

use std::path::Path;
use std::time::Duration;

use crate::codec::ValueKind;
use crate::error::Result;

/// The engines a store can run on. A second engine is a second variant, behind its feature.
// The SQLite engine is the common case and stays inline (boxing it would add a pointer chase
// to every operation); the PostgreSQL one is the boxed, rarer variant.
#[allow(clippy::large_enum_variant)]
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

/// Writes one part of the engine contract once: the trait (one doc line per operation), its
/// implementation for each engine's inherent methods of the same names (so that a missing or
/// mistyped operation fails to compile), and its forwarding through [`Engine`]. The contract
/// is split by feature (`CacheOps` in `cache.rs`, `LedgerOps` in `ledger.rs`, ...), beside the
/// rows each part exchanges, so that a feature imports the part it uses and a new feature adds
/// a part of its own without touching the others.
macro_rules! engine_ops {
    ($(#[doc = $tdoc:literal])* trait $trait:ident {
        $($(#[doc = $doc:literal])* fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) $(-> $ret:ty)?;)*
    }) => {
        $(#[doc = $tdoc])*
        /// Time (`now`) and every threshold arrive as parameters; features decide policy. Each
        /// operation is atomic by itself; a write runs inside a transaction the store has begun.
        // A claim carries its whole context (namespace, id, worker, lease, time, holder, the
        // holder it replaces): one operation, one statement, rather than a struct per call.
        #[allow(clippy::too_many_arguments)]
        pub(crate) trait $trait {
            $($(#[doc = $doc])* fn $name(&self $(, $arg: $ty)*) $(-> $ret)?;)*
        }

        #[allow(clippy::too_many_arguments)]
        impl $trait for $crate::storage::sqlite::Engine {
            $(#[inline]
            fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
                $crate::storage::sqlite::Engine::$name(self $(, $arg)*)
            })*
        }

        #[cfg(feature = "postgres")]
        #[allow(clippy::too_many_arguments)]
        impl $trait for $crate::storage::postgres::Engine {
            $(#[inline]
            fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
                $crate::storage::postgres::Engine::$name(self $(, $arg)*)
            })*
        }

        impl $trait for $crate::storage::Engine {
            $(#[inline]
            fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
                match self {
                    $crate::storage::Engine::Sqlite(e) => $trait::$name(e $(, $arg)*),
                    #[cfg(feature = "postgres")]
                    $crate::storage::Engine::Postgres(e) => $trait::$name(&**e $(, $arg)*),
                }
            })*
        }
    };
}

// After the macro, so that each part of the contract can use it.
mod cache;
mod checkpoint;
pub(crate) mod job;
mod ledger;
mod limit;
mod location;
mod lock;
mod memo;
mod metrics;
mod migrate;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod redact;
mod run;
mod sql;
pub(crate) mod sqlite;
mod states;
mod watch;

pub(crate) use cache::{CacheOps, EntryRow, NsHitCounts, NsRow, SWEEP_MANY_BATCH};
pub(crate) use checkpoint::CheckpointOps;
pub(crate) use job::{JobOps, JobRow, JobRunRow, JOB_FAILED, JOB_RUNNING, JOB_SUCCEEDED};
pub(crate) use ledger::{
    ClaimRow, Fenced, ItemRow, LedgerOps, NewItem, PolicyRow, RetryRule, Setting, Takeover, CANCELLED,
    CLAIMED, DONE, FAILED, PENDING, WAITING,
};
pub(crate) use limit::{LimitOps, LimitRow};
pub(crate) use location::{expand_home, resolve_file};
pub(crate) use lock::{HolderRow, LockOps, Taker};
pub(crate) use memo::MemoOps;
pub(crate) use metrics::MetricsOps;
pub(crate) use migrate::{run_steps, MigrateOps, VersionSlot};
pub(crate) use redact::redact_url;
pub(crate) use run::{
    Hold, RunOps, RunRow, RunWithStep, StepResult, StepRow, StepWrite, RUN_FAILED, RUN_FINISHED, RUN_RUNNING,
    STEP_DONE, STEP_FAILED,
};
pub(crate) use sql::SqlOps;
pub(crate) use watch::{WakeRow, WatchOps, Watcher, Woke};

engine_ops! {
    /// The operations every engine answers whatever the feature: transactions, the file or server
    /// itself, and what looking after it needs.
    trait EngineOps {
        /// The file (or server) errors are reported against.
        fn path(&self) -> &Path;
        /// Where another connection opens the same store: the file, or the server's URL with
        /// its password.
        fn location(&self) -> std::path::PathBuf;
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
        /// Give free space back.
        fn vacuum(&self) -> Result<()>;
        /// A compacted copy, from one snapshot.
        fn vacuum_into(&self, dest: &Path) -> Result<()>;
        /// Sizes of the database.
        fn pages(&self) -> Result<Pages>;
        /// What only a server can say about its health (a file's health is read from the file).
        fn server_health(&self) -> Result<Vec<Health>>;
        /// Refuse a write that would be lost: the file opened was deleted, moved or replaced.
        fn ensure_same_file(&self) -> Result<()>;
        /// Before closing: settle the log of a file that was moved while open.
        fn settle_if_moved(&self);
        /// The files on disk that make up the store (none for a server or in memory).
        fn files(&self) -> Vec<std::path::PathBuf>;
        /// Bytes of the write-ahead log (0 without one).
        fn log_bytes(&self) -> u64;
        /// The version of cairn's own schema this code writes.
        fn schema_latest(&self) -> i64;
        /// True for an engine shared by many writers at once (a server): the bookkeeping that
        /// rides along with writes (hit counts, the amortized sweep) then runs after the commit,
        /// in transactions of its own, so that it never makes a user's transaction wait or fail.
        fn bookkeeping_apart(&self) -> bool;
        /// True for an engine on which a fenced claim or completion is atomic as one statement
        /// outside a transaction (a server, with row locks): the store then sends it on its own,
        /// saving the BEGIN and COMMIT round trips. SQLite: false (its write lock is the
        /// transaction, and its checks of the file run under it).
        fn single_statement_writes(&self) -> bool;
        /// Give back memory the engine keeps cached but does not need.
        fn release_memory(&self);
    }
}

/// How to open a store, from the store's options (see `Options` for each one's meaning).
#[derive(Debug, Clone)]
pub(crate) struct OpenRequest<'a> {
    pub read_only: bool,
    pub read_only_if_unwritable: bool,
    /// No file at the path: open an empty, read-only stand-in instead of creating one.
    pub read_missing_as_empty: bool,
    pub fallback: Option<RollbackJournal>,
    pub durability: Durability,
    pub busy_timeout: Duration,
    pub vfs: Option<&'a str>,
    /// The PostgreSQL schema; `None`: the URL's `cairn_schema`, else `cairn`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub schema: Option<&'a str>,
}

impl Default for OpenRequest<'_> {
    fn default() -> Self {
        OpenRequest {
            read_only: false,
            read_only_if_unwritable: false,
            read_missing_as_empty: false,
            fallback: None,
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(5),
            vfs: None,
            schema: None,
        }
    }
}

/// An engine as opened, and what the store needs to know of how.
pub(crate) struct Opened {
    pub engine: Engine,
    /// `wal`, `memory`, a fallback rollback journal, `postgres`, or `none` for a missing store.
    pub journal_mode: String,
    pub read_only: bool,
    /// Nothing exists at this location yet: the engine is an empty stand-in (in memory) that
    /// only reads.
    pub missing: Option<std::path::PathBuf>,
    /// The server's clock at open (Unix ms), for an engine whose leases are judged on it.
    pub server_millis: Option<i64>,
    /// The schema the store lives in, for an engine that has schemas: another connection to
    /// the same store (a lock's keep-alive) must find the same one.
    pub schema: Option<String>,
}

impl Opened {
    pub(crate) fn new(engine: Engine, journal_mode: String, read_only: bool) -> Opened {
        Opened { engine, journal_mode, read_only, missing: None, server_millis: None, schema: None }
    }
}

/// A `postgres://` or `postgresql://` URL rather than a file name.
pub(crate) fn is_server_url(text: &str) -> bool {
    let lower = text.get(..13).map(str::to_ascii_lowercase).unwrap_or_default();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Open the store at `location`: a server's URL opens the engine for it, anything else names a
/// SQLite file (a leading `~` expanded; other URLs refused: see `location`).
pub(crate) fn open(location: &Path, req: &OpenRequest<'_>) -> Result<Opened> {
    let location = location::resolve(location)?;
    match location.to_str().filter(|p| is_server_url(p)) {
        Some(url) => open_server(url, req),
        None => sqlite::open::open_file(&location, req),
    }
}

/// A private in-memory store, gone when dropped: for tests and examples.
pub(crate) fn open_in_memory(req: &OpenRequest<'_>) -> Result<Opened> {
    sqlite::open::open_in_memory(req)
}

/// A user's own database file (not a store), for its migrations.
pub(crate) fn open_plain(path: &Path, read_only: bool, busy_timeout: Duration) -> Result<Engine> {
    sqlite::open::open_plain(&location::resolve_file(path)?, read_only, busy_timeout)
}

#[cfg(feature = "postgres")]
fn open_server(url: &str, req: &OpenRequest<'_>) -> Result<Opened> {
    let (url, in_url) = postgres::split_schema(url);
    let schema = req.schema.map(str::to_owned).or(in_url).unwrap_or_else(|| "cairn".to_owned());
    let engine = postgres::Engine::open(&postgres::OpenSpec {
        url: &url,
        schema: &schema,
        busy_timeout: req.busy_timeout,
    })?;
    engine.ensure_schema(req.read_only)?;
    let server_millis = engine.server_millis()?;
    Ok(Opened {
        engine: Engine::Postgres(Box::new(engine)),
        journal_mode: "postgres".into(),
        read_only: req.read_only,
        missing: None,
        server_millis: Some(server_millis),
        schema: Some(schema),
    })
}

#[cfg(not(feature = "postgres"))]
fn open_server(url: &str, _req: &OpenRequest<'_>) -> Result<Opened> {
    Err(crate::error::Error::invalid(format!(
        "{}: a PostgreSQL URL needs cairn built with its 'postgres' feature (the cairn CLI has it)",
        redact_url(url)
    )))
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
    /// Every level, from the cheapest to the safest.
    pub const ALL: [Durability; 2] = [Durability::Normal, Durability::Full];

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
/// for level in Durability::ALL {
///     assert_eq!(level.as_str().parse::<Durability>()?, level);
/// }
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

/// Page counts of the main database file.
pub(crate) struct Pages {
    pub page_size: u64,
    pub page_count: u64,
    pub freelist: u64,
}

/// One check of a server's health: what, whether all is well, what was found, what to do.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    pub fix: Option<String>,
}

//! The store's core: opening it (through the engine `storage::open` chooses), its options,
//! and the write-transaction path every feature's writes run through. Features attach their
//! handles (`Store::cache`, `Tx::ledger`, ...) and keep their per-handle state from their own
//! modules; nothing here names a feature or an engine.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
pub use crate::storage::{Durability, RollbackJournal};
use crate::storage::{Engine, EngineOps, OpenRequest, Opened, TxGuard};

mod default_path;
mod features;

pub use default_path::default_path;
pub(crate) use features::FeatureState;
use features::Features;

pub(crate) const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_FILL_TIMEOUT: Duration = Duration::from_secs(30);
/// Busy timeouts are capped here: SQLite takes milliseconds as a C int.
const MAX_BUSY_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// How to open a [`Store`]. Defaults: busy timeout 5 s, [`Durability::Normal`], WAL required,
/// read-write, the system clock, fill timeout 30 s.
///
/// ```
/// use cairn::{Durability, Options};
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir()?;
/// let store = Options::new()
///     .busy_timeout(Duration::from_secs(30))
///     .durability(Durability::Full)
///     .open(dir.path().join("state.db"))?;
/// assert_eq!(store.journal_mode(), "wal");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    busy_timeout: Duration,
    durability: Durability,
    read_only: bool,
    read_only_if_unwritable: bool,
    read_missing_as_empty: bool,
    fallback: Option<RollbackJournal>,
    clock: Arc<dyn Clock>,
    /// A clock was given: a store on a server keeps it instead of reading the server's.
    clock_given: bool,
    fill_timeout: Duration,
    vfs: Option<String>,
    schema: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            durability: Durability::Normal,
            read_only: false,
            read_only_if_unwritable: false,
            read_missing_as_empty: false,
            fallback: None,
            clock: Arc::new(SystemClock),
            clock_given: false,
            fill_timeout: DEFAULT_FILL_TIMEOUT,
            vfs: None,
            schema: None,
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Options::default()
    }

    /// How long to wait for another process's write lock before failing with
    /// [`ErrorKind::Busy`](crate::ErrorKind::Busy). Default 5 s; 0 fails at once; more than
    /// 24 h is refused at open with `InvalidInput`.
    pub fn busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }

    /// What a commit survives. Default [`Durability::Normal`].
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Open for reading only: nothing is created, migrated or written, and writes fail with
    /// [`ErrorKind::ReadOnly`](crate::ErrorKind::ReadOnly). For inspection tools.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// Where the file cannot be written (write-protected, in a read-only directory or on a
    /// read-only file system), open it read-only instead of failing with
    /// [`ErrorKind::ReadOnly`](crate::ErrorKind::ReadOnly). For commands that only read;
    /// [`Store::is_read_only`] tells which open happened.
    ///
    /// ```
    /// use cairn::Options;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Options::new().read_only_if_unwritable(true).open(dir.path().join("state.db"))?;
    /// assert!(!store.is_read_only()); // writable here, so opened read-write
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_only_if_unwritable(mut self, yes: bool) -> Self {
        self.read_only_if_unwritable = yes;
        self
    }

    /// Where no store exists at the path yet, read it as an empty one instead of creating it:
    /// nothing is created on disk (no file, no directory), every read answers as a new store
    /// would (no entries, no items, nothing done), writes fail with
    /// [`ErrorKind::ReadOnly`](crate::ErrorKind::ReadOnly), and [`Store::is_missing`] says so.
    /// For commands that only read, so that a mistyped path is not silently a fresh start: the
    /// CLI's reading commands say "no store at PATH yet" when it happens. An existing store
    /// opens as without this option. Files only: a store on a server opens as usual.
    ///
    /// ```
    /// use cairn::{ErrorKind, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("typo/state.db");
    /// let store = Options::new().read_missing_as_empty(true).open(&path)?;
    /// assert!(store.is_missing());
    /// assert_eq!(store.ledger("jobs").filter_new(["a", "b"])?, ["a", "b"]);
    /// assert_eq!(store.cache("c").set("k", "v", None).unwrap_err().kind(), ErrorKind::ReadOnly);
    /// assert!(!dir.path().join("typo").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_missing_as_empty(mut self, yes: bool) -> Self {
        self.read_missing_as_empty = yes;
        self
    }

    /// Accept a rollback journal where WAL cannot be enabled, instead of failing with
    /// [`ErrorKind::WalUnavailable`](crate::ErrorKind::WalUnavailable).
    pub fn fallback_journal(mut self, mode: RollbackJournal) -> Self {
        self.fallback = Some(mode);
        self
    }

    /// The clock behind expiry and leases. Default: the system clock for a file; for a store on
    /// PostgreSQL, the server's clock (read at open, then advanced by this host's monotonic
    /// clock), so that every host judges leases on one timeline.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self.clock_given = true;
        self
    }

    /// The PostgreSQL schema that holds cairn's tables. Default: `cairn`, or the URL's
    /// `cairn_schema` parameter (`postgres://host/db?cairn_schema=jobs`). Ignored for files.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = Some(name.into());
        self
    }

    /// How long other processes wait for one that is computing a value in
    /// [`Cache::get_or_set_with`](crate::Cache::get_or_set_with) before they take over, in case it crashed. Default 30 s;
    /// under a millisecond is refused at open with `InvalidInput` (every process would compute).
    pub fn fill_timeout(mut self, d: Duration) -> Self {
        self.fill_timeout = d;
        self
    }

    /// The SQLite VFS to open the file with (advanced: `unix-dotfile` for filesystems whose
    /// locks do not work). Default: SQLite's default VFS.
    pub fn vfs(mut self, name: impl Into<String>) -> Self {
        self.vfs = Some(name.into());
        self
    }

    /// Open (or create) the store at `path`. Missing parent directories are created (0700),
    /// a new file is created 0600 whatever the umask, and so are its `-wal` and `-shm` files.
    ///
    /// `path` is a file's path. A leading `~` is your home directory (`$HOME`, else the
    /// password database's) and `~user` that user's, as a shell would expand them (cron and
    /// systemd do not). A name that starts like a URL other than PostgreSQL's (`sqlite:///x.db`,
    /// `file:x.db`, any `scheme:`) is refused with `InvalidInput` naming the path to give
    /// instead, before anything is created; `./file:x.db` names a file of that name. `:memory:`
    /// names a file in the working directory too, never an in-memory database (use
    /// [`Options::open_in_memory`] for that).
    ///
    /// A `postgres://` or `postgresql://` URL opens a store on that server instead (with the
    /// `postgres` feature): the same API, for workers on many hosts.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        self.validate()?;
        if path.as_os_str().is_empty() {
            return Err(Error::invalid("the database path is empty"));
        }
        let opened = crate::storage::open(path, &self.request())?;
        Ok(self.into_store(opened))
    }

    /// A private in-memory store, gone when dropped: for tests and examples.
    pub fn open_in_memory(self) -> Result<Store> {
        self.validate()?;
        let opened = crate::storage::open_in_memory(&self.request())?;
        Ok(self.into_store(opened))
    }

    /// Settings that would switch a guarantee off, or that SQLite cannot take, are refused.
    fn validate(&self) -> Result<()> {
        if self.busy_timeout > MAX_BUSY_TIMEOUT {
            return Err(Error::invalid(format!(
                "a busy timeout is at most 24h (SQLite counts it in milliseconds in a 32-bit integer); this one is {}",
                crate::duration::format_duration(self.busy_timeout)
            )));
        }
        crate::duration::at_least_1ms(
            self.fill_timeout,
            "a fill timeout",
            "would let every process compute a missing value at once, not one of them",
        )
    }

    fn request(&self) -> OpenRequest<'_> {
        OpenRequest {
            read_only: self.read_only,
            read_only_if_unwritable: self.read_only_if_unwritable,
            read_missing_as_empty: self.read_missing_as_empty,
            fallback: self.fallback,
            durability: self.durability,
            busy_timeout: self.busy_timeout,
            vfs: self.vfs.as_deref(),
            schema: self.schema.as_deref(),
        }
    }

    fn into_store(mut self, opened: Opened) -> Store {
        if let Some(millis) = opened.server_millis.filter(|_| !self.clock_given) {
            // Leases are judged on the server's clock, so that every host shares one timeline.
            self.clock = Arc::new(crate::clock::ServerClock::new(millis));
        }
        if opened.schema.is_some() {
            // Another connection to this store (a lock's keep-alive) must find the same schema,
            // wherever it was given.
            self.schema = opened.schema;
        }
        Store {
            options: self.clone(),
            engine: opened.engine,
            clock: self.clock,
            fill_timeout: self.fill_timeout,
            read_only: opened.read_only,
            missing: opened.missing,
            journal_mode: opened.journal_mode,
            explicit: Cell::new(false),
            features: Features::with(crate::FEATURE_STATES),
        }
    }
}

/// A handle on one cairn database file.
///
/// A `Store` is one SQLite connection: `Send`, not `Sync`. Open one per thread or process;
/// any number may share a file. Every operation is either a read or a one-operation
/// transaction; [`Store::transaction`] groups several into one atomic unit.
///
/// ```
/// use cairn::Store;
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path().join("state.db"))?;
/// store.cache("pages").set("home", "<html>…</html>", None)?;
/// assert_eq!(store.cache("pages").get::<String>("home")?.as_deref(), Some("<html>…</html>"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Store {
    /// What it was opened with: a second connection to the same file (a lock's keep-alive)
    /// opens with the same.
    pub(crate) options: Options,
    pub(crate) engine: Engine,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) fill_timeout: Duration,
    read_only: bool,
    /// Opened with [`Options::read_missing_as_empty`] where no store exists yet: the path it
    /// stands in for (the engine is in memory).
    missing: Option<PathBuf>,
    journal_mode: String,
    /// A transaction begun with [`Store::begin_transaction`] is open.
    pub(crate) explicit: Cell<bool>,
    /// What each feature keeps per handle between operations (the cache's pending hit counts,
    /// the ledger's scans for dead holders, ...), made at open.
    features: Features,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path())
            .field("journal_mode", &self.journal_mode)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (or create) the store at `path` with the default [`Options`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Options::new().open(path)
    }

    /// Open the store at [`default_path`].
    pub fn open_default() -> Result<Store> {
        Options::new().open(default_path()?)
    }

    /// Open an existing store for reading only; see [`Options::read_only`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        Options::new().read_only(true).open(path)
    }

    /// A private in-memory store with the default options.
    pub fn open_in_memory() -> Result<Store> {
        Options::new().open_in_memory()
    }

    /// The database file (`:memory:` for an in-memory store; for a store on PostgreSQL, its URL
    /// without the password; for a missing store read as empty, where it would be).
    pub fn path(&self) -> &Path {
        self.missing.as_deref().unwrap_or_else(|| self.engine.path())
    }

    /// Another handle on this store, for another thread: the same file or server, opened
    /// with the same options (read-only if this one is). A store is not shared between
    /// threads; a thread that works beside this one opens its own handle this way.
    /// An in-memory store has no other handle: `InvalidInput`.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = cairn::Store::open(dir.path().join("state.db"))?;
    /// store.ledger("orders").mark_done("o-1")?;
    /// let other = store.open_again()?;
    /// let seen = std::thread::spawn(move || other.ledger("orders").is_done("o-1")).join();
    /// assert!(matches!(seen, Ok(Ok(true))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_again(&self) -> Result<Store> {
        if self.journal_mode == "memory" || self.path() == Path::new(":memory:") {
            return Err(Error::invalid("an in-memory store has no other handle: it lives in one connection"));
        }
        self.options.clone().open(self.location())
    }

    /// Where another connection opens this store: the file, or the server's URL with its
    /// password (never shown; `path` is what messages show).
    pub(crate) fn location(&self) -> PathBuf {
        self.missing.clone().unwrap_or_else(|| self.engine.location())
    }

    /// The journal mode in force: `wal`, `memory`, a fallback rollback journal, `postgres`
    /// for a store on a PostgreSQL server, or `none` for a missing store read as empty
    /// ([`Store::is_missing`]).
    pub fn journal_mode(&self) -> &str {
        &self.journal_mode
    }

    /// How long a write waits for another process's lock before failing with `Busy`.
    pub fn busy_timeout(&self) -> Duration {
        self.engine.busy_timeout()
    }

    /// The durability it was opened with ([`Options::durability`]). On a file with a rollback
    /// journal, `Normal` commits as `Full` would: its promise needs it.
    pub fn durability(&self) -> Durability {
        self.options.durability
    }

    /// True if opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// True if no store existed at the path and this handle reads as an empty one instead
    /// (opened with [`Options::read_missing_as_empty`]): nothing was created, and it only reads.
    pub fn is_missing(&self) -> bool {
        self.missing.is_some()
    }

    /// The state a feature keeps for this handle, created on first use.
    pub(crate) fn feature<T: FeatureState + Default>(&self) -> &T {
        self.features.get::<T>()
    }

    /// `PRAGMA integrity_check` on a file (the server's own check on PostgreSQL): `["ok"]`
    /// when the store is sound, else the problems found.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.engine.integrity_check()
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// True when time is the server's, read by the statements themselves: a store on a server
    /// opened without a clock of its own (a given clock, as in tests, is used everywhere).
    pub(crate) fn time_from_server(&self) -> bool {
        !self.options.clock_given && self.journal_mode == "postgres"
    }

    /// For writes outside [`Store::write_tx`] (migrations, vacuum): not read-only, and still
    /// the file this handle opened.
    pub(crate) fn ensure_writable(&self) -> Result<()> {
        self.refuse_if_read_only()?;
        self.refuse_if_in_transaction()?;
        self.engine.ensure_same_file()
    }

    /// What runs its own transactions (migrations, vacuum, backup) cannot run inside one.
    pub(crate) fn refuse_if_in_transaction(&self) -> Result<()> {
        if self.engine.in_transaction() {
            return Err(Error::invalid(
                "a transaction is already open on this store: migrate, vacuum and backup run transactions of \
                 their own; run them before or after it",
            ));
        }
        Ok(())
    }

    fn refuse_if_read_only(&self) -> Result<()> {
        if self.missing.is_some() {
            return Err(Error::ReadOnly {
                path: self.path().to_path_buf(),
                detail: "no store exists there yet, and this handle only reads it as empty                          (read_missing_as_empty): open it without that option to create it"
                    .into(),
            });
        }
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.path().to_path_buf(),
                detail: "the store was opened read-only; open it read-write to change it".into(),
            });
        }
        Ok(())
    }

    /// The one write path: BEGIN IMMEDIATE, `f`, then the bookkeeping that rides along with
    /// any write (each feature's: hit/miss counts, an amortized sweep), then COMMIT. The guard
    /// rolls back on error and on panic.
    pub(crate) fn write_tx<T, E>(&self, f: impl FnOnce(&Store) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        let tx = self.begin_write()?;
        let out = f(self)?;
        self.finish_write()?;
        tx.disarm();
        Ok(out)
    }

    /// A write that is one fenced statement (a claim, a completion) run the cheapest way the
    /// engine allows: on its own on a server (see `EngineOps::single_statement_writes`), in a
    /// one-operation transaction ([`Store::write_tx`]) on SQLite. Outside a transaction only.
    pub(crate) fn write_one<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        if !self.engine.single_statement_writes() {
            return self.write_tx(f);
        }
        self.refuse_if_read_only()?;
        if self.engine.in_transaction() {
            return self.write_tx(f); // refused there, with the reason
        }
        let out = f(self)?;
        let now = self.now();
        self.features.each(|state| state.committed(&self.engine, now));
        Ok(out)
    }

    /// BEGIN IMMEDIATE, then what must be checked once the write lock is held. The guard rolls
    /// the transaction back unless disarmed.
    pub(crate) fn begin_write(&self) -> Result<TxGuard<'_>> {
        self.refuse_if_read_only()?;
        if self.engine.in_transaction() {
            return Err(Error::invalid(
                "a transaction is already open on this store: inside it, use the Tx handle (tx.cache(..), \
                 tx.ledger(..), tx.checkpoint(..)) instead of the store's shortcuts",
            ));
        }
        let tx = self.engine.begin()?;
        // Checked under the write lock, so no other cairn process can be swapping the file
        // between this check and the commit.
        self.engine.ensure_same_file()?;
        self.features.each(FeatureState::begun);
        Ok(tx)
    }

    /// The bookkeeping that rides along with any write, then COMMIT. On failure the
    /// transaction is rolled back and each feature keeps what it would have written for the
    /// next write. On an engine whose bookkeeping runs apart, it runs after the commit.
    pub(crate) fn finish_write(&self) -> Result<()> {
        let now = self.now();
        let mut done = Ok(());
        if !self.engine.bookkeeping_apart() {
            self.features.each(|state| {
                if done.is_ok() {
                    done = state.before_commit(&self.engine, now);
                }
            });
        }
        if let Err(e) = done.and_then(|()| self.engine.commit()) {
            self.features.each(FeatureState::rolled_back);
            self.engine.rollback_quietly();
            return Err(e);
        }
        self.features.each(|state| state.committed(&self.engine, now));
        Ok(())
    }
}

impl Drop for Store {
    /// Rolls back a transaction left open, lets each feature settle what it keeps for this
    /// handle (the cache's pending hit counts), then settles the -wal if the file was deleted,
    /// moved or replaced while open.
    fn drop(&mut self) {
        self.rollback_transaction();
        if !self.read_only && !self.engine.in_transaction() {
            self.features.each(|state| state.closing(self));
        }
        self.engine.settle_if_moved();
    }
}

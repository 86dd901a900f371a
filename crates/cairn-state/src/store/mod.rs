//! Opening a store: options, durability, file safety, and the write-transaction core that
//! every feature's operations run through.

use std::cell::Cell;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{Cache, CacheState};
use crate::checkpoint::Checkpoint;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::migrate::{self, MigrationReport, MigrationStatus, Migrations, Slot};
use crate::storage::sqlite::{self, schema, OpenSpec};
pub use crate::storage::{Durability, RollbackJournal};
use crate::storage::{Engine, EngineOps, TxGuard};
use crate::tx::Tx;

mod file;

pub use file::default_path;
use file::FileId;
pub(crate) use file::{check_owner, prepare_file, unwritable};

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
    /// [`Cache::get_or_set_with`] before they take over, in case it crashed. Default 30 s;
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
    /// `path` is a file name, whatever characters it holds: `file:x.db?mode=memory` and
    /// `:memory:` name files in the working directory, never a SQLite URI or an in-memory
    /// database (use [`Options::open_in_memory`] for that).
    ///
    /// A `postgres://` or `postgresql://` URL opens a store on that server instead (with the
    /// `postgres` feature): the same API, for workers on many hosts.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        self.validate()?;
        if path.as_os_str().is_empty() {
            return Err(Error::invalid("the database path is empty"));
        }
        if let Some(url) = path.to_str().filter(|p| is_server_url(p)) {
            return self.open_server(url);
        }
        // Absolute from here on: the file SQLite opens, the one checked and created 0600 below,
        // and the one each write checks again are the same whatever the name looks like.
        let path = &sqlite::sqlite_file_name(path)?;
        if self.read_only {
            return self.open_read_only(path);
        }
        prepare_file(path)?;
        // A file that is not SQLite at all is better reported as such than as unwritable.
        sqlite::check_header(path)?;
        if let Some(why) = unwritable(path) {
            if self.read_only_if_unwritable {
                return self.open_read_only(path);
            }
            return Err(Error::ReadOnly { path: path.to_path_buf(), detail: why.reason });
        }
        let engine = Engine::Sqlite(sqlite::Engine::open(&self.spec(Some(path), false))?);
        // Read who owns the file before anything writes to it: even the switch to WAL is a
        // write, and a file of another application must stay byte-for-byte untouched.
        let id = engine.sqlite()?.identity()?;
        if !id.is_cairn() && !id.is_fresh() {
            return Err(foreign(path, id));
        }
        if engine.sqlite()?.conn().is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(Error::ReadOnly {
                path: path.to_path_buf(),
                detail: "SQLite opened it read-only: check the permissions of the file, of its \
                         directory and of its -wal and -shm files"
                    .into(),
            });
        }
        let journal = engine.sqlite()?.enable_wal(self.fallback)?;
        engine.sqlite()?.set_durability(self.durability, &journal)?;
        let migrations = cairn_migrations();
        if id.is_cairn() && id.user_version == migrations.latest() {
            // Up to date: skip the runner, which would take the write lock just to look.
            check_schema(&engine, path)?;
            return Ok(self.into_store(engine, journal, false));
        }
        migrate::run(&engine, Slot::UserVersion, &migrations, &|e, version| {
            // Re-checked under the write lock: another program may have created the file
            // between our first look and now.
            let id = e.sqlite()?.identity()?;
            if version == 0 && !id.is_fresh() && !id.is_cairn() {
                return Err(foreign(path, id));
            }
            Ok(())
        })
        .map_err(|e| match e {
            Error::SchemaTooNew { path, found, supported, .. } => {
                Error::SchemaTooNew { path, scope: "cairn".into(), found, supported }
            }
            other => other,
        })?;
        check_schema(&engine, path)?;
        Ok(self.into_store(engine, journal, false))
    }

    fn open_read_only(self, path: &Path) -> Result<Store> {
        check_owner(path)?;
        if !path.exists() {
            return Err(Error::Io {
                action: "open",
                path: path.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "no such file; a read-only open never creates one",
                ),
            });
        }
        sqlite::check_header(path)?;
        let mut spec = self.spec(Some(path), true);
        // Reading a WAL database needs its -shm, which SQLite creates beside the file. Where
        // nobody can create files (a read-only directory or file system), no writer can be at
        // work either (a writer needs a -wal there), so without a -wal the file alone is the
        // whole database and can be read as immutable. With a -wal present it must be read
        // through, so no.
        spec.immutable =
            unwritable(path).is_some_and(|u| u.no_side_files) && !sqlite::side_file(path, "-wal").exists();
        let engine = Engine::Sqlite(sqlite::Engine::open(&spec)?);
        let id = engine.sqlite()?.identity()?;
        if !id.is_cairn() && !id.is_fresh() {
            return Err(foreign(path, id));
        }
        let latest = cairn_migrations().latest();
        let found = id.user_version;
        if found < 0 {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                detail: format!("its 'cairn' schema version is {found}; versions start at 0"),
            });
        }
        if found > latest {
            return Err(Error::SchemaTooNew {
                path: path.to_path_buf(),
                scope: "cairn".into(),
                found,
                supported: latest,
            });
        }
        if found < latest {
            return Err(Error::SchemaTooOld {
                path: path.to_path_buf(),
                scope: "cairn".into(),
                found,
                expected: latest,
            });
        }
        check_schema(&engine, path)?;
        engine.sqlite()?.set_query_only()?;
        let journal = if spec.immutable && sqlite::header_says_wal(path) {
            // Immutable reads bypass the log, so SQLite reports "delete"; the file is a WAL store.
            "wal".to_string()
        } else {
            engine.sqlite()?.pragma_text("journal_mode")?
        };
        Ok(self.into_store(engine, journal, true))
    }

    #[cfg(feature = "postgres")]
    fn open_server(mut self, url: &str) -> Result<Store> {
        use crate::storage::postgres;
        let (url, in_url) = postgres::split_schema(url);
        let schema = self.schema.clone().or(in_url).unwrap_or_else(|| "cairn".to_owned());
        let engine = postgres::Engine::open(&postgres::OpenSpec {
            url: &url,
            schema: &schema,
            busy_timeout: self.busy_timeout,
        })?;
        engine.ensure_schema(self.read_only)?;
        if !self.clock_given {
            self.clock = Arc::new(crate::clock::ServerClock::new(engine.server_millis()?));
        }
        let read_only = self.read_only;
        // Another connection to this store (a lock's keep-alive) must find the same schema,
        // wherever it was given.
        self.schema = Some(schema);
        Ok(self.into_store(Engine::Postgres(Box::new(engine)), "postgres".into(), read_only))
    }

    #[cfg(not(feature = "postgres"))]
    fn open_server(self, url: &str) -> Result<Store> {
        Err(Error::invalid(format!(
            "{}: a PostgreSQL URL needs cairn built with its 'postgres' feature (the cairn CLI has it)",
            crate::storage::redact_url(url)
        )))
    }

    /// A private in-memory store, gone when dropped: for tests and examples.
    pub fn open_in_memory(self) -> Result<Store> {
        self.validate()?;
        let engine = Engine::Sqlite(sqlite::Engine::open(&self.spec(None, false))?);
        engine.sqlite()?.set_durability(self.durability, "memory")?;
        migrate::run(&engine, Slot::UserVersion, &cairn_migrations(), &|_, _| Ok(()))?;
        Ok(self.into_store(engine, "memory".into(), false))
    }

    /// Settings that would switch a guarantee off, or that SQLite cannot take, are refused.
    fn validate(&self) -> Result<()> {
        if self.busy_timeout > MAX_BUSY_TIMEOUT {
            return Err(Error::invalid(format!(
                "a busy timeout is at most 24h (SQLite counts it in milliseconds in a 32-bit integer); this one is {}",
                crate::duration::show(self.busy_timeout)
            )));
        }
        crate::duration::at_least_1ms(
            self.fill_timeout,
            "a fill timeout",
            "would let every process compute a missing value at once, not one of them",
        )
    }

    fn spec<'a>(&'a self, path: Option<&'a Path>, read_only: bool) -> OpenSpec<'a> {
        OpenSpec {
            path,
            read_only,
            create: true,
            immutable: false,
            busy_timeout: self.busy_timeout,
            vfs: self.vfs.as_deref(),
        }
    }

    fn into_store(self, engine: Engine, journal_mode: String, read_only: bool) -> Store {
        let file_id = if read_only || journal_mode == "memory" || journal_mode == "postgres" {
            None
        } else {
            FileId::of(engine.path())
        };
        Store {
            options: self.clone(),
            file_id,
            engine,
            clock: self.clock,
            fill_timeout: self.fill_timeout,
            read_only,
            journal_mode,
            explicit: Cell::new(false),
            ledger_scans: crate::ledger::Scans::default(),
            cache: CacheState::default(),
        }
    }
}

/// A `postgres://` or `postgresql://` URL rather than a file name.
pub(crate) fn is_server_url(text: &str) -> bool {
    let lower = text.get(..13).map(str::to_ascii_lowercase).unwrap_or_default();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// cairn's own schema as a list of migrations for the runner.
pub(crate) fn cairn_migrations() -> Migrations<'static> {
    use crate::migrate::M;
    use schema::SchemaStep;
    Migrations::new(
        schema::STEPS
            .iter()
            .map(|step| match step {
                SchemaStep::Sql(sql) => M::up(sql),
                SchemaStep::Data(f) => M::sqlite(*f),
            })
            .collect(),
    )
}

/// A file that says it is a current cairn store must have cairn's tables as the migrations
/// made them; otherwise every later statement would fail with an internal "no such column".
fn check_schema(engine: &Engine, path: &Path) -> Result<()> {
    if engine.sqlite()?.schema_fingerprint()? == schema::SCHEMA_FINGERPRINT {
        return Ok(());
    }
    Err(Error::Corrupt {
        path: path.to_path_buf(),
        detail: "its header says it is a cairn store, but cairn's tables in it are not as cairn made them \
                 (changed by another program, or damaged)"
            .into(),
    })
}

fn foreign(path: &Path, id: sqlite::Identity) -> Error {
    Error::ForeignDatabase {
        path: path.to_path_buf(),
        application_id: id.application_id,
        tables: id.schema_objects,
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
    journal_mode: String,
    /// The database file this handle opened, checked before each write: see [`FileId`].
    file_id: Option<FileId>,
    /// A transaction begun with [`Store::begin_transaction`] is open.
    explicit: Cell<bool>,
    /// When this handle last looked for claims of dead processes, per ledger namespace.
    pub(crate) ledger_scans: crate::ledger::Scans,
    /// The cache's bookkeeping for this handle (counts not yet written, bounds read in the
    /// current transaction, eviction policies).
    pub(crate) cache: CacheState,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.engine.path())
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
    /// without the password).
    pub fn path(&self) -> &Path {
        self.engine.path()
    }

    /// Where another connection opens this store: the file, or the server's URL with its
    /// password (never shown; `path` is what messages show).
    pub(crate) fn location(&self) -> std::path::PathBuf {
        match &self.engine {
            #[cfg(feature = "postgres")]
            Engine::Postgres(pg) => std::path::PathBuf::from(pg.url()),
            _ => self.path().to_path_buf(),
        }
    }

    /// The journal mode in force: `wal`, `memory`, a fallback rollback journal, or `postgres`
    /// for a store on a PostgreSQL server.
    pub fn journal_mode(&self) -> &str {
        &self.journal_mode
    }

    /// How long a write waits for another process's lock before failing with `Busy`.
    pub fn busy_timeout(&self) -> Duration {
        self.engine.busy_timeout()
    }

    /// True if opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The cache namespace `ns`. Each operation on it is its own transaction; inside
    /// [`Store::transaction`] use [`Tx::cache`] instead.
    pub fn cache<'a>(&'a self, ns: &'a str) -> Cache<'a> {
        Cache::new(self, ns, false)
    }

    /// The ledger namespace `ns`; see [`Ledger`]. Inside [`Store::transaction`] use
    /// [`Tx::ledger`].
    pub fn ledger<'a>(&'a self, ns: &'a str) -> Ledger<'a> {
        Ledger::new(self, ns, false)
    }

    /// The checkpoint of `job`; see [`Checkpoint`]. Inside [`Store::transaction`] use
    /// [`Tx::checkpoint`].
    pub fn checkpoint<'a>(&'a self, job: &'a str) -> Checkpoint<'a> {
        Checkpoint::new(self, job, false)
    }

    /// Run `f` in one IMMEDIATE transaction: committed if it returns `Ok`, rolled back if it
    /// returns `Err` or panics. Every feature is reachable through the [`Tx`], so updates to
    /// several of them are atomic.
    ///
    /// Inside the closure, use the [`Tx`]: a shortcut of the store itself (`store.cache(..)
    /// .set(..)`) would try to open a second transaction and fails with `InvalidInput`. Holding
    /// a [`LockGuard`](crate::LockGuard) or a handle of the same store meanwhile is fine.
    ///
    /// ```
    /// use cairn::{Error, Store};
    ///
    /// let store = Store::open_in_memory()?;
    /// store.transaction(|tx| {
    ///     tx.cache("stock").incr("apples", -1, None)?;
    ///     tx.cache("orders").set("o-17", "apples", None)?;
    ///     Ok::<_, Error>(())
    /// })?;
    /// assert_eq!(store.cache("stock").get::<i64>("apples")?, Some(-1));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn transaction<T, E>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        self.write_tx(|store| f(&Tx::new(store)))
    }

    /// Apply your own migrations to this store's file, versioned under `scope` (see
    /// [`Migrations`] for why not `user_version`).
    pub fn migrate(&self, scope: &str, migrations: &Migrations<'_>) -> Result<MigrationReport> {
        validate_scope(scope)?;
        self.ensure_writable()?;
        migrate::run(&self.engine, Slot::Scope(scope), migrations, &|_, _| Ok(()))
    }

    /// Where `scope` stands in this file against `migrations`, without changing anything.
    pub fn migration_status(&self, scope: &str, migrations: &Migrations<'_>) -> Result<MigrationStatus> {
        validate_scope(scope)?;
        Ok(MigrationStatus {
            current: self.engine.read_version(Slot::Scope(scope))?,
            latest: migrations.latest(),
        })
    }

    /// Remove every expired cache entry, in every namespace. Returns how many. Writes also
    /// remove a few in passing, so calling this is optional.
    pub fn sweep(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.write_tx(|s| {
                let n = s.engine.cache_sweep(s.now(), true)?;
                // The chunks of large memo outputs whose entries went (and of dead runs).
                s.engine.memo_chunks_gc(s.now())?;
                Ok::<_, Error>(n)
            })?;
            total += n;
            if n < sqlite::SWEEP_MANY_BATCH {
                return Ok(total);
            }
        }
    }

    /// The cache namespaces that hold entries or statistics, sorted.
    pub fn cache_namespaces(&self) -> Result<Vec<String>> {
        self.engine.cache_namespaces()
    }

    /// The ledger namespaces that hold items, sorted.
    pub fn ledger_namespaces(&self) -> Result<Vec<String>> {
        self.engine.ledger_namespaces()
    }

    /// `PRAGMA integrity_check`: `["ok"]` when the file is sound, else the problems found.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.engine.integrity_check()
    }

    /// Write the hit and miss counts gathered by reads since the last write, and on SQLite
    /// those that processes which only read left beside the file (`<db>-hits`). Done anyway
    /// by writes (and when the store is dropped, kept beside the file); [`Cache::stats`]
    /// counts them all already. Call this to have them in the database now.
    pub fn flush_stats(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        if self.engine.bookkeeping_apart() {
            if self.cache.has_pending_counts() {
                self.cache.flush_apart(&self.engine);
            }
            return Ok(());
        }
        if !self.cache.has_pending_counts() && self.engine.cache_deferred_tally()?.is_empty() {
            return Ok(());
        }
        self.cache.fold_at_next_write();
        self.write_tx(|_| Ok(()))
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// For writes outside [`Store::write_tx`] (migrations, vacuum): not read-only, and still
    /// the file this handle opened.
    pub(crate) fn ensure_writable(&self) -> Result<()> {
        self.refuse_if_read_only()?;
        self.refuse_if_in_transaction()?;
        self.ensure_same_file()
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
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.path().to_path_buf(),
                detail: "the store was opened read-only; open it read-write to change it".into(),
            });
        }
        Ok(())
    }

    /// Refuse to write when the file at the store's path is no longer the one this handle
    /// opened. In WAL mode a write to a deleted or replaced database still "commits" (into a
    /// -wal that now belongs to no file, or beside someone else's file) and is gone when the
    /// handle closes: the caller would be told "saved" about data that is lost.
    fn ensure_same_file(&self) -> Result<()> {
        let Some(opened) = self.file_id else { return Ok(()) };
        let path = self.path();
        let why = match FileId::of(path) {
            Some(now) if now == opened => return Ok(()),
            Some(_) => "another file has replaced the one this store opened",
            None => "the file this store opened was deleted or moved",
        };
        Err(Error::Io {
            action: "write to",
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                format!("{why}; the write was refused because it would be lost: open the store again"),
            ),
        })
    }

    /// The one write path: BEGIN IMMEDIATE, `f`, then the bookkeeping that rides along with
    /// any write (hit/miss counts, an amortized sweep), then COMMIT. The guard rolls back on
    /// error and on panic.
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
        self.cache.after_commit(&self.engine, self.now());
        Ok(out)
    }

    /// BEGIN IMMEDIATE, then what must be checked once the write lock is held. The guard rolls
    /// the transaction back unless disarmed.
    fn begin_write(&self) -> Result<TxGuard<'_>> {
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
        self.ensure_same_file()?;
        self.cache.begin_transaction();
        Ok(tx)
    }

    /// The bookkeeping that rides along with any write, then COMMIT. On failure the
    /// transaction is rolled back and the counts are kept for the next write.
    fn finish_write(&self) -> Result<()> {
        if self.engine.bookkeeping_apart() {
            if let Err(e) = self.engine.commit() {
                self.engine.rollback_quietly();
                return Err(e);
            }
            self.cache.after_commit(&self.engine, self.now());
            return Ok(());
        }
        let counts = self.cache.take_counts();
        let done =
            self.cache.ride_along(&self.engine, &counts, self.now()).and_then(|()| self.engine.commit());
        if let Err(e) = done {
            self.cache.restore_counts(counts);
            self.engine.rollback_quietly();
            return Err(e);
        }
        Ok(())
    }

    /// Begin a transaction that [`Store::commit_transaction`] or
    /// [`Store::rollback_transaction`] ends: for language bindings whose transactions are a
    /// begin/end pair (Python's `with`), where [`Store::transaction`]'s closure cannot be
    /// used. It takes the write lock at once (`BEGIN IMMEDIATE`), as `transaction` does; use
    /// [`Store::current_transaction`] for the [`Tx`] while it is open. The store's shortcuts
    /// are refused meanwhile, and dropping the store rolls it back. `InvalidInput` if a
    /// transaction is already open.
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// store.begin_transaction()?;
    /// let tx = store.current_transaction().expect("open");
    /// tx.cache("c").set("k", "v", None)?;
    /// tx.ledger("l").mark_done("1")?;
    /// store.commit_transaction()?;
    /// assert!(store.ledger("l").is_done("1")?);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn begin_transaction(&self) -> Result<()> {
        self.begin_write()?.disarm();
        self.explicit.set(true);
        Ok(())
    }

    /// The transaction begun with [`Store::begin_transaction`], while it is open.
    pub fn current_transaction(&self) -> Option<Tx<'_>> {
        (self.explicit.get() && self.engine.in_transaction()).then(|| Tx::new(self))
    }

    /// Commit the transaction begun with [`Store::begin_transaction`]. If the commit fails the
    /// transaction has been rolled back: nothing of it is in the file. `InvalidInput` if none
    /// is open.
    pub fn commit_transaction(&self) -> Result<()> {
        if !self.explicit.replace(false) {
            return Err(Error::invalid("no transaction is open: begin one with begin_transaction"));
        }
        if !self.engine.in_transaction() {
            // SQLite rolls a transaction back by itself after some errors (a full disk).
            return Err(Error::invalid(
                "the transaction was already rolled back after an earlier error in it; nothing of it was committed",
            ));
        }
        self.finish_write()
    }

    /// Roll back the transaction begun with [`Store::begin_transaction`], if one is open.
    pub fn rollback_transaction(&self) {
        if self.explicit.replace(false) {
            self.engine.rollback_quietly();
        }
    }

    /// True while a transaction is open on this store (begun by [`Store::transaction`] or
    /// [`Store::begin_transaction`]).
    pub fn in_transaction(&self) -> bool {
        self.engine.in_transaction()
    }
}

impl Drop for Store {
    /// Leaves the pending hit and miss counts to the engine to keep apart until another
    /// write adds them (SQLite: `<db>-hits`), so that a process that only read needs no write
    /// transaction; where it cannot, writes them, waiting at most a moment for the lock:
    /// statistics are not worth stalling a process's exit. Then settles the -wal if the file
    /// was deleted, moved or replaced while open (see `Store::ensure_same_file`).
    fn drop(&mut self) {
        self.rollback_transaction();
        if !self.read_only
            && self.cache.has_pending_counts()
            && !self.engine.in_transaction()
            && !self.cache.defer(&self.engine)
        {
            self.engine.set_busy_timeout(Duration::from_millis(200));
            let _ = self.flush_stats();
        }
        if let Some(opened) = self.file_id {
            if FileId::of(self.path()) != Some(opened) && !self.engine.in_transaction() {
                // SQLite will not checkpoint a file that has moved when it closes, so the -wal
                // stays at the old name holding this file's frames: a database later put at
                // that path would read them as its own pages. Checkpointing through the open
                // descriptor moves the frames into the file they belong to (wherever `mv` put
                // it) and leaves an empty log behind.
                self.engine.set_busy_timeout(Duration::from_millis(200));
                let _ = self.engine.checkpoint_truncate();
            }
        }
    }
}

fn validate_scope(scope: &str) -> Result<()> {
    if scope.is_empty() || scope.len() > 256 || scope.contains('\0') {
        return Err(Error::invalid("a migration scope is a name of 1 to 256 bytes without NUL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// A second writer waits out another's lock instead of failing. The holder keeps the lock
    /// until the waiter's connection has really started waiting (its busy handler ran), so
    /// the wait is certain, whatever the machine's load, and no sleep decides it.
    #[test]
    fn a_second_writer_waits_out_a_lock_held_while_it_waits() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::invalid(e.to_string()))?;
        let path = dir.path().join("s.db");
        let holder = Store::open(&path)?;
        let waiter = Options::new().busy_timeout(Duration::from_secs(60)).open(&path)?;
        let waits = waiter.engine.sqlite()?.waits();
        holder.begin_transaction()?;
        holder.current_transaction().map(|tx| tx.cache("n").incr("x", 1, None)).transpose()?;
        let writer = std::thread::spawn(move || waiter.cache("n").incr("x", 1, None));
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while waits.load(Ordering::Relaxed) == 0 {
            assert!(std::time::Instant::now() < until, "the second writer never waited");
            std::thread::yield_now();
        }
        holder.commit_transaction()?;
        assert_eq!(writer.join().map_err(|_| Error::invalid("writer panicked"))??, 2);
        Ok(())
    }
}

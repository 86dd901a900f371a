//! The SQLite engine: the connection, its pragmas, transactions and busy handling. Each
//! feature's statements live in the file of the same name beside this one.

/// A recursive CTE `n(ns)` listing the distinct namespaces of a table keyed by `(ns, ...)`
/// by skip-scanning its primary key: one index probe per namespace, not one per row.
macro_rules! skip_scan_ns {
    ($table:literal) => {
        concat!(
            "n(ns) AS (SELECT min(ns) FROM ",
            $table,
            " UNION ALL SELECT (SELECT min(ns) FROM ",
            $table,
            " WHERE ns > n.ns) FROM n WHERE ns IS NOT NULL)"
        )
    };
}

mod cache;
mod checkpoint;
mod file;
pub(crate) mod hits;
mod job;
pub(crate) mod ledger;
mod limit;
pub(crate) mod lock;
mod maintenance;
mod memo;
mod metrics;
mod migrate;
pub(crate) mod open;
mod run;
pub(crate) mod schema;
mod user_sql;
pub(crate) mod watch;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{ffi, Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};
use crate::storage::{Durability, RollbackJournal};

/// `PRAGMA application_id` of every cairn store: "carn" in ASCII. A non-empty file without it
/// belongs to someone else and is never written.
pub(crate) const APPLICATION_ID: i32 = 0x6361_726e;

/// What the engine needs to know to open a connection.
pub(crate) struct OpenSpec<'a> {
    pub path: Option<&'a Path>,
    pub read_only: bool,
    pub create: bool,
    /// Read the file as one that nobody changes (SQLite's `immutable=1`): no locks, no -shm.
    pub immutable: bool,
    pub busy_timeout: Duration,
    pub vfs: Option<&'a str>,
}

/// Who a file belongs to, read before anything is written to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Identity {
    pub application_id: i32,
    pub schema_objects: i64,
    pub user_version: i64,
}

impl Identity {
    pub fn is_fresh(&self) -> bool {
        self.application_id == 0 && self.schema_objects == 0 && self.user_version == 0
    }

    pub fn is_cairn(&self) -> bool {
        self.application_id == APPLICATION_ID
    }
}

/// One SQLite connection and the path its errors are reported against.
pub(crate) struct Engine {
    conn: Connection,
    path: PathBuf,
    busy_ms: Arc<AtomicU64>,
    /// How many times this connection found the file locked and began to wait: lets a test
    /// know another connection is waiting on it, without sleeping and hoping.
    waits: Arc<AtomicU64>,
    /// Tells the authorizer whether the statement being compiled is the user's.
    gate: Arc<std::sync::Mutex<user_sql::Gate>>,
    /// Ledger namespaces found larger than a `filter_new` chunk: probing id by id is cheaper
    /// there than reading them whole (see `ledger_filter_settled`).
    large_ledgers: std::cell::RefCell<Vec<String>>,
    /// The database file this connection opened, checked before each write (see
    /// `Engine::ensure_same_file`); `None` in memory and for read-only opens.
    file_id: Option<file::FileId>,
}

impl Engine {
    /// Open the connection and install the busy handler. No pragma that writes is run here.
    pub fn open(spec: &OpenSpec<'_>) -> Result<Engine> {
        let path = match spec.path {
            Some(p) => sqlite_file_name(p)?,
            None => PathBuf::from(":memory:"),
        };
        let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if spec.read_only {
            flags |= OpenFlags::SQLITE_OPEN_READ_ONLY;
        } else {
            flags |= OpenFlags::SQLITE_OPEN_READ_WRITE;
            if spec.create {
                flags |= OpenFlags::SQLITE_OPEN_CREATE;
            }
        }
        let conn = match (spec.path, spec.vfs) {
            (None, _) => Connection::open_in_memory(),
            (Some(_), None) if spec.immutable => {
                Connection::open_with_flags(immutable_uri(&path), flags | OpenFlags::SQLITE_OPEN_URI)
            }
            (Some(_), None) => Connection::open_with_flags(&path, flags),
            (Some(_), Some(vfs)) => {
                let vfs = std::ffi::CString::new(vfs)
                    .map_err(|_| Error::invalid("VFS name contains a NUL byte"))?;
                Connection::open_with_flags_and_vfs(&path, flags, vfs.as_c_str())
            }
        }
        .map_err(|e| classify(e, &path, spec.busy_timeout))?;
        let busy_ms = Arc::new(AtomicU64::new(millis_u64(spec.busy_timeout)));
        let gate = Arc::new(std::sync::Mutex::new(user_sql::Gate::default()));
        let mut engine = Engine {
            conn,
            path,
            busy_ms,
            waits: Arc::new(AtomicU64::new(0)),
            gate,
            large_ledgers: std::cell::RefCell::default(),
            file_id: None,
        };
        engine.install_busy_handler()?;
        let authorizer = user_sql::authorizer(Arc::clone(&engine.gate));
        engine.conn.authorizer(Some(authorizer)).map_err(|e| classify(e, &engine.path, Duration::ZERO))?;
        // 64 MiB of page cache (SQLite's default is 2 MiB), allocated only as pages are read,
        // so a small store pays nothing: a cache of 100,000 entries or a ledger of a million
        // ids (20 to 45 MB) stays in memory once read, and a lookup in a larger one reads one
        // leaf instead of several pages. With 16 MiB, random reads in such stores went to the
        // operating system for a page most of the time (a `pread` per get; a quarter of a
        // `filter_new`'s time at a million ids). (Not mmap: SQLite turns read errors on a
        // mapped file into SIGBUS rather than an error.)
        engine.retry_busy(|c| c.pragma_update(None, "cache_size", -65_536))?;
        // Every hot statement is cached; the default of 16 is too few once features add theirs.
        engine.conn.set_prepared_statement_cache_capacity(64);
        Ok(engine)
    }

    /// SQLite's own busy_timeout sleeps 1, 2, 5, 10, ... up to 100 ms between attempts, which
    /// wastes most of a short lock hold. This handler polls from 50 µs, doubling up to 6.4 ms,
    /// plus as much again of jitter so that waiting processes do not retry in lockstep, until
    /// the timeout has passed.
    fn install_busy_handler(&mut self) -> Result<()> {
        let limit = Arc::clone(&self.busy_ms);
        let waits = Arc::clone(&self.waits);
        let mut started = Instant::now();
        let handler = move |count: i32| -> bool {
            if count == 0 {
                started = Instant::now();
                waits.fetch_add(1, Ordering::Relaxed);
            }
            let limit = Duration::from_millis(limit.load(Ordering::Relaxed));
            let waited = started.elapsed();
            if waited >= limit {
                return false;
            }
            let base = 50u64 << count.clamp(0, 7);
            let jitter = u64::from(waited.subsec_nanos()) % base;
            let nap = Duration::from_micros(base + jitter).min(limit - waited);
            std::thread::sleep(nap);
            true
        };
        let path = self.path.clone();
        self.conn.busy_handler(Some(handler)).map_err(|e| classify(e, &path, Duration::ZERO))
    }

    /// A counter of the times this connection began waiting for another's lock.
    #[cfg(test)]
    pub fn waits(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.waits)
    }

    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_ms.load(Ordering::Relaxed))
    }

    pub fn set_busy_timeout(&self, d: Duration) {
        self.busy_ms.store(millis_u64(d), Ordering::Relaxed);
    }

    /// Every write runs under BEGIN IMMEDIATE, the file's checks with it.
    pub fn single_statement_writes(&self) -> bool {
        false
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the migration runner's data steps (the documented escape hatch).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Turn a rusqlite error into cairn's, against this file.
    pub fn err(&self, e: rusqlite::Error) -> Error {
        classify(e, &self.path, self.busy_timeout())
    }

    /// Run `f`, retrying while SQLite reports busy without having waited (WAL recovery, a
    /// journal-mode switch), until the busy timeout has passed.
    pub fn retry_busy<T>(&self, mut f: impl FnMut(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let started = Instant::now();
        let mut nap = Duration::from_micros(200);
        loop {
            match f(&self.conn) {
                Err(e) if is_busy(&e) && started.elapsed() < self.busy_timeout() => {
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(Duration::from_millis(10));
                }
                other => return other.map_err(|e| self.err(e)),
            }
        }
    }

    /// Who the file belongs to. Reads only, in one statement: separate reads could straddle
    /// another process's initialisation and see its tables without its application_id.
    pub fn identity(&self) -> Result<Identity> {
        self.retry_busy(|c| {
            c.query_row(
                "SELECT (SELECT application_id FROM pragma_application_id), \
                        (SELECT user_version FROM pragma_user_version), \
                        (SELECT count(*) FROM sqlite_schema)",
                [],
                |r| {
                    Ok(Identity {
                        application_id: r.get(0)?,
                        user_version: r.get(1)?,
                        schema_objects: r.get(2)?,
                    })
                },
            )
        })
    }

    /// A digest (FNV-1a, 64 bits, hex) of cairn's own schema objects: type, name, table and
    /// SQL of each, in name order; the user's tables in the same file are left out. It runs
    /// at every open, so it is kept cheap: one plain scan, filtered here, and a hash that
    /// only has to notice change, not resist forgery (whoever can write the file can do worse).
    pub fn schema_fingerprint(&self) -> Result<String> {
        use rusqlite::types::ValueRef;
        fn bytes<'a>(v: ValueRef<'a>) -> &'a [u8] {
            match v {
                ValueRef::Text(b) | ValueRef::Blob(b) => b,
                _ => b"",
            }
        }
        self.retry_busy(|c| {
            let mut st =
                c.prepare_cached("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name")?;
            let mut rows = st.query([])?;
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            let mut feed = |b: &[u8]| {
                for &x in b {
                    h ^= u64::from(x);
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
            };
            while let Some(r) = rows.next()? {
                let name = bytes(r.get_ref(1)?);
                if !(name.starts_with(b"cairn_") || name.starts_with(b"sqlite_autoindex_cairn_")) {
                    continue;
                }
                for i in 0..4 {
                    feed(bytes(r.get_ref(i)?));
                    feed(b"|");
                }
                feed(b"\n");
            }
            Ok(format!("{h:016x}"))
        })
    }

    /// Switch to WAL and check that it took. Returns the journal mode in force.
    pub fn enable_wal(&self, fallback: Option<RollbackJournal>) -> Result<String> {
        let mode: String =
            self.retry_busy(|c| c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)))?;
        let mode = mode.to_ascii_lowercase();
        if mode == "wal" || mode == "memory" {
            return Ok(mode);
        }
        let Some(fallback) = fallback else {
            return Err(Error::WalUnavailable { path: self.path.clone(), mode });
        };
        let want = match fallback {
            RollbackJournal::Delete => "DELETE",
            RollbackJournal::Truncate => "TRUNCATE",
            RollbackJournal::Persist => "PERSIST",
        };
        let mode: String =
            self.retry_busy(|c| c.pragma_update_and_check(None, "journal_mode", want, |r| r.get(0)))?;
        Ok(mode.to_ascii_lowercase())
    }

    /// `synchronous` for the durability asked for. With a rollback journal NORMAL can corrupt
    /// the file on power loss, so it is raised to FULL there: the promise is kept, not the name.
    pub fn set_durability(&self, durability: Durability, journal_mode: &str) -> Result<()> {
        let level = match durability {
            Durability::Full => "FULL",
            Durability::Normal if journal_mode == "wal" || journal_mode == "memory" => "NORMAL",
            Durability::Normal => "FULL",
        };
        self.retry_busy(|c| c.pragma_update(None, "synchronous", level))?;
        self.retry_busy(|c| c.pragma_update(None, "foreign_keys", "ON"))
    }

    pub fn set_query_only(&self) -> Result<()> {
        self.retry_busy(|c| c.pragma_update(None, "query_only", "ON"))
    }

    pub fn pragma_text(&self, name: &str) -> Result<String> {
        self.retry_busy(|c| c.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0))).map(
            |v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            },
        )
    }

    /// BEGIN IMMEDIATE: take the write lock up front, so a transaction never has to upgrade
    /// from reader to writer (the one wait in WAL mode that a busy handler cannot cover).
    pub fn begin_immediate(&self) -> Result<()> {
        self.retry_busy(|c| c.prepare_cached("BEGIN IMMEDIATE")?.execute([]).map(drop))
    }

    /// BEGIN (deferred): one consistent snapshot for a series of reads.
    pub fn begin_read(&self) -> Result<TxGuard<'_>> {
        self.retry_busy(|c| c.prepare_cached("BEGIN")?.execute([]).map(drop))?;
        Ok(TxGuard { engine: self, done: false })
    }

    pub fn commit(&self) -> Result<()> {
        self.retry_busy(|c| c.prepare_cached("COMMIT")?.execute([]).map(drop))
    }

    /// Roll back if a transaction is open. Errors are dropped: SQLite rolls back by itself
    /// whenever ROLLBACK cannot run (the connection closes, the process dies).
    pub fn rollback_quietly(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// `PRAGMA integrity_check`: "ok" or the problems found.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.retry_busy(|c| {
            let mut st = c.prepare("PRAGMA integrity_check")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    /// The first column of every row of `sql`, as text.
    fn strings(&self, sql: &str) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Read one optional row with a cached statement; a helper for the feature files.
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        st.query_row(params, f).optional().map_err(|e| self.err(e))
    }

    /// Execute one cached statement; returns the rows changed.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        st.execute(params).map_err(|e| self.err(e))
    }
}

/// An open read transaction; see [`Engine::begin_read`].
pub(crate) struct TxGuard<'e> {
    engine: &'e Engine,
    done: bool,
}

impl TxGuard<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.engine.commit()?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TxGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.engine.rollback_quietly();
        }
    }
}

fn millis_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// The name to give SQLite for the file at `path`: the same path made absolute. SQLite (built
/// with `SQLITE_USE_URI`, as rusqlite's bundled build is) reads a name starting with `file:` as
/// a URI whatever the open flags say, and `:memory:` as no file at all; an absolute name starts
/// with `/`, so it is always exactly the named file. Only `..` and symbolic links are left for
/// the file system to resolve, as it would for any other program.
pub(crate) fn sqlite_file_name(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::Io {
        action: "resolve",
        path: path.to_path_buf(),
        source: e,
    })
}

/// `file:PATH?immutable=1`, every byte of the path that is not plainly safe percent-encoded,
/// so that no `?`, `#` or `%` in a file name is read as URI syntax.
fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Messages with which SQLite reports a damaged file under SQLITE_ERROR (found by the
/// `store_file` fuzz target).
const CORRUPTION_MESSAGES: &[&str] = &["unsupported file format", "malformed database schema"];

/// The single mapping from SQLite's result codes to cairn's error kinds.
pub(crate) fn classify(e: rusqlite::Error, path: &Path, busy_waited: Duration) -> Error {
    let path = path.to_path_buf();
    let (code, extended, msg) = match &e {
        rusqlite::Error::SqliteFailure(f, msg) => (f.code, f.extended_code, msg.clone()),
        // cairn binds every value with its type, so a value of another type, or text that is
        // not UTF-8, in one of its columns was put there by something else, or by damage
        // (found by the store_file fuzz target). The detail keeps SQLite's words.
        rusqlite::Error::Utf8Error(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::FromSqlConversionFailure(..) => {
            return Error::Corrupt {
                path,
                detail: format!("a value in it is not what cairn stored there: {e}"),
            };
        }
        _ => return Error::Sqlite { path, source: Box::new(e) },
    };
    let detail = msg.unwrap_or_else(|| code_text(extended));
    match code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Error::Busy { path, waited: busy_waited },
        ErrorCode::NotADatabase => Error::NotADatabase { path },
        ErrorCode::DatabaseCorrupt => Error::Corrupt { path, detail },
        ErrorCode::ReadOnly => Error::ReadOnly {
            path,
            detail: format!(
                "{detail}: check the permissions of the file, of its directory and of its -wal and -shm files"
            ),
        },
        ErrorCode::DiskFull => Error::DiskFull { path },
        ErrorCode::SystemIoFailure => Error::Io {
            action: "use",
            path,
            source: std::io::Error::other(format!(
                "{detail}: nothing was half-written (the transaction was rolled back); check the disk \
                 and its file system (dmesg), then retry"
            )),
        },
        // SQLite reports a damaged header or schema with its generic SQLITE_ERROR code; only
        // the message tells them from a mistake in a statement.
        ErrorCode::Unknown if CORRUPTION_MESSAGES.iter().any(|m| detail.contains(m)) => {
            Error::Corrupt { path, detail }
        }
        ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
            Error::Io { action: "use", path, source: std::io::Error::other(detail) }
        }
        _ => Error::Sqlite { path, source: Box::new(e) },
    }
}

fn code_text(extended: i32) -> String {
    ffi::Error::new(extended).to_string()
}

/// Check the file header before SQLite touches the file, so that a truncated database is
/// reported at open rather than by whichever later query first reaches a missing page.
pub(crate) fn check_header(path: &Path) -> Result<()> {
    let io = |action, source| Error::Io { action, path: path.to_path_buf(), source };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("open", e)),
    };
    let len = file.metadata().map_err(|e| io("inspect", e))?.len();
    if len == 0 {
        return Ok(());
    }
    let mut header = [0u8; 100];
    let mut got = 0;
    while got < header.len() {
        match file.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(io("read", e)),
        }
    }
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    if got < header.len() {
        return Err(if header[..got] == MAGIC[..got.min(16)] {
            Error::Corrupt {
                path: path.to_path_buf(),
                detail: format!("truncated to {len} bytes, shorter than a SQLite header"),
            }
        } else {
            Error::NotADatabase { path: path.to_path_buf() }
        });
    }
    if &header[..16] != MAGIC {
        return Err(Error::NotADatabase { path: path.to_path_buf() });
    }
    let be32 = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n => u64::from(n),
    };
    // The in-header page count is only meaningful when the change counter matches
    // "version-valid-for"; with a non-empty WAL the file may legitimately lag behind it.
    let counted_valid = be32(24) == be32(92) && be32(28) > 0;
    let wal_len = std::fs::metadata(side_file(path, "-wal")).map_or(0, |m| m.len());
    if counted_valid && wal_len == 0 {
        let want = u64::from(be32(28)) * page_size;
        if len < want {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "truncated: the header counts {} pages of {page_size} bytes but the file holds {len} bytes",
                    be32(28)
                ),
            });
        }
    }
    Ok(())
}

/// Bytes 18 and 19 of the header are 2 in a WAL-mode database.
pub(crate) fn header_says_wal(path: &Path) -> bool {
    let mut head = [0u8; 20];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && head[18] == 2
        && head[19] == 2
}

/// `state.db` → `state.db-wal`.
pub(crate) fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Asserts that each of `sqls`, already run through the statement cache, was never recompiled
/// (`SQLITE_STMTSTATUS_REPREPARE`): see the tests in cache.rs and ledger.rs.
#[cfg(test)]
pub(crate) fn assert_compiled_once(engine: &Engine, sqls: &[&str]) -> Result<()> {
    for sql in sqls {
        let st = engine.conn().prepare_cached(sql).map_err(|err| engine.err(err))?;
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0, "{sql}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of 100,000 entries or a ledger of a million ids (20 to 45 MB) stays in the page
    /// cache once read. At 16 MiB, random gets in such a store went to the operating system
    /// for a page most of the time (issue 19, docs/BENCHMARKS.md).
    #[test]
    fn connections_ask_for_a_64_mib_page_cache() -> Result<()> {
        let store = crate::Store::open_in_memory()?;
        let e = store.engine.sqlite()?;
        let kib: i64 = e.conn().query_row("PRAGMA cache_size", [], |r| r.get(0)).map_err(|err| e.err(err))?;
        assert_eq!(kib, -65_536, "a negative cache_size is in KiB");
        Ok(())
    }

    #[test]
    fn file_names_given_to_sqlite_are_absolute_so_never_a_uri_or_memory() -> Result<()> {
        for name in ["file:state.db?mode=memory", ":memory:", "plain.db", "dir/file:x"] {
            let given = sqlite_file_name(Path::new(name))?;
            assert!(given.is_absolute(), "{name}");
            assert!(given.ends_with(name), "{name} -> {}", given.display());
        }
        Ok(())
    }
}

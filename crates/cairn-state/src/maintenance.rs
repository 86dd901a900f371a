//! Looking after a store's file: hot backups, vacuuming, statistics and a health report.

use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::cache::CacheStats;
use crate::error::{Error, Result};
use crate::ledger::LedgerCounts;
use crate::storage::{EngineOps, MigrateOps};
use crate::store::Store;

/// A WAL larger than this means checkpoints are not keeping up (a long-lived reader holds
/// them back): SQLite's automatic checkpoint keeps it near 4 MiB otherwise.
const WAL_WARN_BYTES: u64 = 64 << 20;

/// One namespace's figures, from [`Store::stats`].
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct NamespaceStats {
    /// The namespace.
    pub ns: String,
    /// Its cache figures (zero when it holds no cache entries).
    pub cache: CacheStats,
    /// Its ledger figures (zero when it holds no ledger items).
    pub ledger: LedgerCounts,
}

/// The size of a store's file, from [`Store::file_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FileStats {
    /// Bytes of the database file, in pages.
    pub db_bytes: u64,
    /// Bytes of pages free for reuse ([`Store::vacuum`] gives them back).
    pub free_bytes: u64,
    /// Bytes of the write-ahead log.
    pub wal_bytes: u64,
}

/// One check of [`Store::doctor`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// What was checked: `integrity`, `journal_mode`, `permissions`...
    pub check: &'static str,
    /// True when all is well.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do about it, when something is wrong.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Finding { check, ok: true, detail: detail.into(), fix: None }
    }

    fn problem(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding { check, ok: false, detail: detail.into(), fix: Some(fix.into()) }
    }
}

impl Store {
    /// Write a consistent copy of the store to `dest` while other processes keep writing: one
    /// read snapshot, compacted. The copy is written beside `dest` and renamed over it when
    /// complete, so `dest` is never half-written and an older backup there is replaced
    /// atomically. It is readable by its owner only.
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path().join("state.db"))?;
    /// store.cache("c").set("k", "v", None)?;
    /// store.backup(dir.path().join("backup.db"))?;
    /// let copy = Store::open(dir.path().join("backup.db"))?;
    /// assert_eq!(copy.cache("c").get::<String>("k")?.as_deref(), Some("v"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        self.refuse_if_in_transaction()?;
        if self.engine.bookkeeping_apart() {
            // A server's store: the engine says what to use instead, naming `dest`.
            return self.engine.vacuum_into(dest);
        }
        fn io_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Error + 'p {
            move |source| Error::Io { action, path: path.to_path_buf(), source }
        }
        if dest.is_dir() {
            return Err(Error::Io {
                action: "back up to",
                path: dest.to_path_buf(),
                source: io::Error::other("it is a directory; give the path of a file"),
            });
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        // tempfile creates it 0600 and removes it if anything below fails.
        let tmp = tempfile::Builder::new()
            .prefix(".cairn-backup-")
            .tempfile_in(&dir)
            .map_err(io_err("create a temporary file in", &dir))?;
        self.engine.vacuum_into(tmp.path())?;
        tmp.as_file().sync_all().map_err(io_err("sync", tmp.path()))?;
        tmp.persist(dest).map_err(|e| Error::Io {
            action: "rename the backup to",
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        // Make the rename itself durable.
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io_err("sync", &dir))
    }

    /// Give free pages back to the file system and empty the write-ahead log. Takes the write
    /// lock for as long as it runs (the whole file is rewritten).
    pub fn vacuum(&self) -> Result<()> {
        self.ensure_writable()?;
        self.engine.vacuum()
    }

    /// How big the file and its log are.
    pub fn file_stats(&self) -> Result<FileStats> {
        let pages = self.engine.pages()?;
        let wal_bytes = self.engine.log_bytes();
        Ok(FileStats {
            db_bytes: pages.page_count * pages.page_size,
            free_bytes: pages.freelist * pages.page_size,
            wal_bytes,
        })
    }

    /// Figures for every namespace that holds cache entries, statistics or ledger items,
    /// sorted by name.
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// store.cache("pages").set("a", "x", None)?;
    /// store.ledger("jobs").mark_done("1")?;
    /// let stats = store.stats()?;
    /// assert_eq!(stats.iter().map(|s| s.ns.as_str()).collect::<Vec<_>>(), ["jobs", "pages"]);
    /// assert_eq!(stats[0].ledger.done, 1);
    /// assert_eq!(stats[1].cache.entries, 1);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn stats(&self) -> Result<Vec<NamespaceStats>> {
        let mut names = self.cache_namespaces()?;
        names.extend(self.ledger_namespaces()?);
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|ns| {
                let cache = self.cache(&ns).stats()?;
                let ledger = self.ledger(&ns).counts()?;
                Ok(NamespaceStats { ns, cache, ledger })
            })
            .collect()
    }

    /// Check the file's health: integrity, journal mode, schema version,
    /// permissions of the file and its side files, and the size of the write-ahead log. Each
    /// finding that is not ok says how to fix it. Reads only.
    pub fn doctor(&self) -> Result<Vec<Finding>> {
        let server = self.engine.server_health()?;
        if !server.is_empty() {
            return Ok(server
                .into_iter()
                .map(|h| Finding { check: h.check, ok: h.ok, detail: h.detail, fix: h.fix })
                .collect());
        }
        let mut out = Vec::new();
        let integrity = self.integrity_check()?;
        out.push(if integrity == ["ok"] {
            Finding::ok("integrity", "ok")
        } else {
            Finding::problem(
                "integrity",
                integrity.join("; "),
                "restore the file from a backup (cairn backup), or move it aside to start afresh",
            )
        });

        let mode = self.journal_mode();
        out.push(if mode == "wal" {
            Finding::ok("journal_mode", "wal")
        } else {
            Finding::problem(
                "journal_mode",
                format!("{mode} (expected wal: concurrent readers and writers block each other)"),
                "move the file to a local file system that supports shared memory, then open it with cairn again",
            )
        });

        let version = self.engine.read_version(crate::storage::VersionSlot::UserVersion)?;
        let latest = self.engine.schema_latest();
        out.push(if version == latest {
            Finding::ok("schema", format!("version {version}"))
        } else {
            Finding::problem(
                "schema",
                format!("version {version}, this cairn expects {latest}"),
                "open the store once with this cairn (any command that writes) to migrate it",
            )
        });

        out.extend(self.permission_findings());

        let files = self.file_stats()?;
        out.push(if files.wal_bytes <= WAL_WARN_BYTES {
            Finding::ok("wal_size", format!("{} bytes", files.wal_bytes))
        } else {
            Finding::problem(
                "wal_size",
                format!(
                    "{} bytes: checkpoints are not keeping up, most likely held back by a long-lived reader",
                    files.wal_bytes
                ),
                "end long-running processes that keep the store open, then run `cairn vacuum`",
            )
        });
        out.push(Finding::ok(
            "free_space",
            format!(
                "{} of {} bytes free for reuse (`cairn vacuum` gives them back)",
                files.free_bytes, files.db_bytes
            ),
        ));
        Ok(out)
    }

    /// Each file's mode: no file readable by other users, and no side file (-wal, -shm,
    /// -hits) that its owner cannot write. The database file itself may be write-protected on
    /// purpose; a side file may not: SQLite opens an unwritable -wal or -shm read-only, and
    /// every write to the store then fails even once the file is writable again.
    fn permission_findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for path in self.engine.files() {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let mode = meta.permissions().mode() & 0o777;
            let loose = mode & 0o077 != 0;
            let blocks_writes = path != self.path() && mode & 0o200 == 0;
            let shown = path.display();
            out.push(match (blocks_writes, loose) {
                (false, false) => Finding::ok("permissions", format!("{shown} is {mode:04o}")),
                (false, true) => Finding::problem(
                    "permissions",
                    format!("{shown} is {mode:04o}: other users can read what your scripts stored"),
                    format!("chmod 600 '{shown}'"),
                ),
                (true, _) => Finding::problem(
                    "permissions",
                    format!(
                        "{shown} is {mode:04o}: its owner cannot write it, as writers of the store must \
                         (SQLite opens a -wal or -shm it cannot write read-only, and every write fails)"
                    ),
                    // Also closes a mode that lets others read, when there is one.
                    if loose { format!("chmod 600 '{shown}'") } else { format!("chmod u+w '{shown}'") },
                ),
            });
        }
        out
    }
}

//! Opening a store's file: the checks that come before anything is written (whose file it is,
//! whether it is SQLite, whether it can be written), WAL and durability, cairn's own schema
//! brought up to date, and the read-only and in-memory variants. Also the plain opening of a
//! user's own SQLite file for its migrations.

use std::io;
use std::path::Path;

use super::file::{
    check_owner, keep_side_files_writable, prepare_file, refuse_what_is_not_a_regular_file,
    repair_side_files, unwritable, FileId, SideModes,
};
use super::schema::{self, SchemaStep};
use super::{check_header, header_says_wal, side_file, sqlite_file_name, Identity, OpenSpec};
use crate::error::{Error, Result};
use crate::storage::{run_steps, Engine, MigrateOps, OpenRequest, Opened, VersionSlot};

/// The version of cairn's own schema this code writes.
pub(crate) fn latest() -> i64 {
    i64::try_from(schema::STEPS.len()).unwrap_or(i64::MAX)
}

fn spec<'a>(req: &'a OpenRequest<'a>, path: Option<&'a Path>, read_only: bool) -> OpenSpec<'a> {
    OpenSpec { path, read_only, create: true, immutable: false, busy_timeout: req.busy_timeout, vfs: req.vfs }
}

/// Open (or create) the store at `path`: see `Options::open` for what is promised.
pub(crate) fn open_file(path: &Path, req: &OpenRequest<'_>) -> Result<Opened> {
    // Absolute from here on: the file SQLite opens, the one checked and created 0600 below,
    // and the one each write checks again are the same whatever the name looks like.
    let path = &sqlite_file_name(path)?;
    refuse_what_is_not_a_regular_file(path)?;
    if req.read_missing_as_empty && is_missing(path) {
        return open_missing(path, req);
    }
    if req.read_only {
        return open_read_only(path, req);
    }
    prepare_file(path)?;
    // A file that is not SQLite at all is better reported as such than as unwritable.
    check_header(path)?;
    repair_side_files(path);
    if let Some(why) = unwritable(path) {
        if req.read_only_if_unwritable {
            return open_read_only(path, req);
        }
        return Err(Error::ReadOnly { path: path.to_path_buf(), detail: why.reason });
    }
    let mut sqlite = super::Engine::open(&spec(req, Some(path), false))?;
    // Read who owns the file before anything writes to it: even the switch to WAL is a
    // write, and a file of another application must stay byte-for-byte untouched.
    let id = sqlite.identity()?;
    if !id.is_cairn() && !id.is_fresh() {
        return Err(foreign(path, id));
    }
    if sqlite.conn().is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(Error::ReadOnly {
            path: path.to_path_buf(),
            detail: "SQLite opened it read-only: check the permissions of the file, of its \
                     directory and of its -wal and -shm files"
                .into(),
        });
    }
    let journal = sqlite.enable_wal(req.fallback)?;
    sqlite.set_durability(req.durability, &journal)?;
    // Checked before each write from now on: see `Engine::ensure_same_file`.
    sqlite.remember_file(FileId::of(path));
    let engine = Engine::Sqlite(sqlite);
    if !(id.is_cairn() && id.user_version == latest()) {
        // Behind (or new): migrate. Up to date, the runner is skipped: it would take the write
        // lock just to look.
        apply_schema(&engine, &|e, version| {
            // Re-checked under the write lock: another program may have created the file
            // between our first look and now.
            let id = e.sqlite()?.identity()?;
            if version == 0 && !id.is_fresh() && !id.is_cairn() {
                return Err(foreign(path, id));
            }
            Ok(())
        })?;
    }
    check_schema(engine.sqlite()?, path)?;
    Ok(Opened::new(engine, journal, false))
}

fn open_read_only(path: &Path, req: &OpenRequest<'_>) -> Result<Opened> {
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
    check_header(path)?;
    let mut spec = spec(req, Some(path), true);
    // Reading a WAL database needs its -shm, which SQLite creates beside the file. Where
    // nobody can create files (a read-only directory or file system), no writer can be at
    // work either (a writer needs a -wal there), so without a -wal the file alone is the
    // whole database and can be read as immutable. With a -wal present it must be read
    // through, so no.
    spec.immutable = unwritable(path).is_some_and(|u| u.no_side_files) && !side_file(path, "-wal").exists();
    let before = SideModes::of(path);
    let sqlite = super::Engine::open(&spec)?;
    // The first read creates the -wal and -shm, with the file's own mode.
    let id = sqlite.identity();
    keep_side_files_writable(path, &before);
    let id = id?;
    if !id.is_cairn() && !id.is_fresh() {
        return Err(foreign(path, id));
    }
    let latest = latest();
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
    check_schema(&sqlite, path)?;
    sqlite.set_query_only()?;
    let journal = if spec.immutable && header_says_wal(path) {
        // Immutable reads bypass the log, so SQLite reports "delete"; the file is a WAL store.
        "wal".to_string()
    } else {
        sqlite.pragma_text("journal_mode")?
    };
    Ok(Opened::new(Engine::Sqlite(sqlite), journal, true))
}

/// Nothing at all at `path`: no file, and no symbolic link either (a dangling one is refused
/// at open, as always). A path under a missing directory is missing too.
fn is_missing(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

/// No store at `path` yet, to be read: an empty store in memory stands in for it, read-only,
/// so that every read answers as a new store would while nothing is created on disk. (It stays
/// an in-memory engine, so that nothing it does reaches files beside `path`.)
fn open_missing(path: &Path, req: &OpenRequest<'_>) -> Result<Opened> {
    let engine = Engine::Sqlite(super::Engine::open(&spec(req, None, false))?);
    apply_schema(&engine, &|_, _| Ok(()))?;
    engine.sqlite()?.set_query_only()?;
    let mut opened = Opened::new(engine, "none".into(), true);
    opened.missing = Some(path.to_path_buf());
    Ok(opened)
}

/// A private in-memory store, gone when dropped.
pub(crate) fn open_in_memory(req: &OpenRequest<'_>) -> Result<Opened> {
    let sqlite = super::Engine::open(&spec(req, None, false))?;
    sqlite.set_durability(req.durability, "memory")?;
    let engine = Engine::Sqlite(sqlite);
    apply_schema(&engine, &|_, _| Ok(()))?;
    Ok(Opened::new(engine, "memory".into(), false))
}

/// A user's own SQLite file, for its migrations: created (0600) unless `read_only`; a cairn
/// store is refused, its `user_version` being cairn's.
pub(crate) fn open_plain(path: &Path, read_only: bool, busy_timeout: std::time::Duration) -> Result<Engine> {
    refuse_what_is_not_a_regular_file(path)?;
    if !read_only {
        prepare_file(path)?;
    }
    check_header(path)?;
    let sqlite = super::Engine::open(&OpenSpec {
        path: Some(path),
        read_only,
        create: !read_only,
        immutable: false,
        busy_timeout,
        vfs: None,
    })?;
    if sqlite.identity()?.is_cairn() {
        return Err(Error::invalid(format!(
            "{} is a cairn store, whose user_version is cairn's own: migrate your tables inside it under a scope \
             name of yours (Store::migrate, or `cairn migrate --scope NAME`), or give the path of your own database",
            path.display()
        )));
    }
    Ok(Engine::Sqlite(sqlite))
}

/// cairn's own schema steps, each in its own transaction with its `user_version` bump.
/// `check` runs inside each, with the version found, before anything is written.
fn apply_schema(engine: &Engine, check: &dyn Fn(&Engine, i64) -> Result<()>) -> Result<()> {
    let apply = |e: &Engine, version: i64| -> Result<()> {
        let step = usize::try_from(version - 1).ok().and_then(|i| schema::STEPS.get(i));
        match step {
            Some(SchemaStep::Sql(sql)) => e.run_script(sql),
            Some(SchemaStep::Data(f)) => {
                let s = e.sqlite()?;
                f(s.conn()).map_err(|err| s.err(err))
            }
            None => Ok(()),
        }
    };
    run_steps(engine, VersionSlot::UserVersion, latest(), check, &apply).map(|_| ()).map_err(|e| match e {
        Error::SchemaTooNew { path, found, supported, .. } => {
            Error::SchemaTooNew { path, scope: "cairn".into(), found, supported }
        }
        other => other,
    })
}

/// A file that says it is a current cairn store must have cairn's tables as the migrations
/// made them; otherwise every later statement would fail with an internal "no such column".
fn check_schema(sqlite: &super::Engine, path: &Path) -> Result<()> {
    if sqlite.schema_fingerprint()? == schema::SCHEMA_FINGERPRINT {
        return Ok(());
    }
    Err(Error::Corrupt {
        path: path.to_path_buf(),
        detail: "its header says it is a cairn store, but cairn's tables in it are not as cairn made them \
                 (changed by another program, or damaged)"
            .into(),
    })
}

fn foreign(path: &Path, id: Identity) -> Error {
    Error::ForeignDatabase {
        path: path.to_path_buf(),
        application_id: id.application_id,
        tables: id.schema_objects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::EngineOps;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    fn request(busy_timeout: Duration) -> OpenRequest<'static> {
        OpenRequest { busy_timeout, ..OpenRequest::default() }
    }

    /// A second writer waits out another's lock instead of failing. The holder keeps the lock
    /// until the waiter's connection has really started waiting (its busy handler ran), so
    /// the wait is certain, whatever the machine's load, and no sleep decides it.
    #[test]
    fn a_second_writer_waits_out_a_lock_held_while_it_waits() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::invalid(e.to_string()))?;
        let path = dir.path().join("s.db");
        let holder = open_file(&path, &request(Duration::from_secs(5)))?.engine;
        let waiter = open_file(&path, &request(Duration::from_secs(60)))?.engine;
        let waits = waiter.sqlite()?.waits();
        holder.begin_immediate()?;
        let writer = std::thread::spawn(move || -> Result<()> {
            waiter.begin_immediate()?;
            waiter.commit()
        });
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while waits.load(Ordering::Relaxed) == 0 {
            assert!(std::time::Instant::now() < until, "the second writer never waited");
            std::thread::yield_now();
        }
        holder.commit()?;
        writer.join().map_err(|_| Error::invalid("writer panicked"))?
    }
}

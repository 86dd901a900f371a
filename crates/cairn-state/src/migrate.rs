//! Schema migrations: ordered steps, each applied in its own transaction with its version bump.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use crate::codec::{Rows, SqlValue};
use crate::error::{Error, Result};
pub(crate) use crate::storage::VersionSlot as Slot;
use crate::storage::{Engine, EngineOps, MigrateOps};

/// A data-migration function: runs inside the step's transaction.
type StepFn<'a> = Box<dyn Fn(&MigrationDb<'_>) -> Result<()> + Send + Sync + 'a>;

/// The database a data-migration step ([`M::up_with`]) works on, inside the step's
/// transaction: whatever it changes commits with the step's version bump, or not at all.
pub struct MigrationDb<'e> {
    engine: &'e Engine,
}

impl MigrationDb<'_> {
    /// Run one statement with its parameters; how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<usize> {
        self.engine.migration_sql(sql, params)?;
        Ok(self.engine.changes())
    }

    /// Run one statement with its parameters; its rows.
    pub fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Rows> {
        self.engine.migration_sql(sql, params)
    }

    /// Run several statements, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        self.engine.run_script(sql)
    }
}

/// One migration step: SQL text, or a Rust function for data migrations.
pub struct M<'a> {
    pub(crate) step: Step<'a>,
}

pub(crate) enum Step<'a> {
    Sql(Cow<'a, str>),
    Rust(StepFn<'a>),
}

impl<'a> M<'a> {
    /// A step of one or more SQL statements.
    pub fn up(sql: &'a str) -> Self {
        M { step: Step::Sql(Cow::Borrowed(sql)) }
    }

    /// A step of SQL read at run time (from a file, say).
    pub fn up_owned(sql: String) -> M<'static> {
        M { step: Step::Sql(Cow::Owned(sql)) }
    }

    /// A step written in Rust, for migrations SQL alone cannot express (a data migration).
    /// It receives the database inside the step's transaction ([`MigrationDb`]); returning an
    /// error rolls the step back.
    ///
    /// ```
    /// use cairn::{Migrations, SqlValue, M};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let migrations = Migrations::new(vec![
    ///     M::up("CREATE TABLE users (name TEXT NOT NULL, email TEXT)"),
    ///     M::up_with(|db| {
    ///         for row in db.query("SELECT rowid, name FROM users WHERE email IS NULL", &[])? {
    ///             if let [id, SqlValue::Text(name)] = &row[..] {
    ///                 let email = format!("{}@example.com", name.to_lowercase());
    ///                 db.execute("UPDATE users SET email = ?1 WHERE rowid = ?2", &[email.into(), id.clone()])?;
    ///             }
    ///         }
    ///         Ok(())
    ///     }),
    /// ]);
    /// migrations.apply_to_file(dir.path().join("app.db"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn up_with(f: impl Fn(&MigrationDb<'_>) -> Result<()> + Send + Sync + 'a) -> Self {
        M { step: Step::Rust(Box::new(f)) }
    }
}

impl fmt::Debug for M<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.step {
            Step::Sql(sql) => f.debug_tuple("M::up").field(sql).finish(),
            Step::Rust(_) => f.write_str("M::up_with(..)"),
        }
    }
}

/// An ordered list of migration steps. Step `i` (from 0) takes the schema to version `i + 1`;
/// each step is applied in its own IMMEDIATE transaction together with its version bump.
///
///
/// # Where versions are kept
/// * In **your own database file** ([`Migrations::apply_to_file`]) the version is
///   `PRAGMA user_version`, as most SQLite tools expect.
/// * In **a cairn store's file** ([`Store::migrate`](crate::Store::migrate)) `user_version`
///   belongs to cairn's own schema, so your steps are versioned under a *scope* name of your
///   choosing, in the table `cairn_migrations`. Any number of scopes can share one file;
///   neither they nor cairn's own version can collide. `apply_to_file` refuses a cairn store
///   for that reason.
///
/// # Guarantees
/// * Each pending step commits with its version bump or not at all: a crash between steps
///   (or inside one) leaves the file at a clean version, and the next run continues there.
/// * Re-running is a no-op. Several processes may run the same list at once: each step is
///   applied by exactly one of them.
/// * A file whose version is ahead of the list is refused with
///   [`ErrorKind::SchemaTooNew`](crate::ErrorKind::SchemaTooNew): no silent downgrade.
/// * Steps must not contain `BEGIN`/`COMMIT` or change `journal_mode`: they already run inside
///   a transaction.
///
/// ```
/// use cairn::{Migrations, M};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("app.db");
/// let migrations = Migrations::new(vec![
///     M::up("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"),
///     M::up("ALTER TABLE users ADD COLUMN email TEXT;"),
///     M::up_with(|db| {
///         // Data migrations get the database, inside the step's transaction.
///         db.execute("INSERT INTO users (name) VALUES (?1)", &["admin".into()])?;
///         Ok(())
///     }),
/// ]);
/// let report = migrations.apply_to_file(&path)?;
/// assert_eq!((report.from, report.to), (0, 3));
/// assert!(migrations.apply_to_file(&path)?.applied.is_empty()); // re-running is a no-op
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Migrations<'a> {
    steps: Vec<M<'a>>,
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The version found before the run.
    pub from: i64,
    /// The version after the run.
    pub to: i64,
    /// The versions this run applied (steps applied by a concurrent process are not listed).
    pub applied: Vec<i64>,
}

/// Where a file stands against a list of migrations, without changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The version in the file.
    pub current: i64,
    /// The version the list reaches.
    pub latest: i64,
}

impl MigrationStatus {
    /// The versions a run would apply, in order (empty when up to date or ahead).
    pub fn pending(&self) -> std::ops::RangeInclusive<i64> {
        (self.current + 1)..=self.latest
    }

    /// True if the file is ahead of the list: a run would refuse it.
    pub fn is_ahead(&self) -> bool {
        self.current > self.latest
    }
}

impl<'a> Migrations<'a> {
    /// The steps, in order.
    pub fn new(steps: Vec<M<'a>>) -> Self {
        Migrations { steps }
    }

    /// The version the list reaches: its number of steps.
    pub fn latest(&self) -> i64 {
        i64::try_from(self.steps.len()).unwrap_or(i64::MAX)
    }

    /// Bring a SQLite file of your own to the latest version, creating it if missing (mode
    /// 0600). Its journal mode is left as it is. A cairn store is refused: use
    /// [`Store::migrate`](crate::Store::migrate) with a scope there.
    pub fn apply_to_file(&self, path: impl AsRef<Path>) -> Result<MigrationReport> {
        let engine = crate::storage::open_plain(path.as_ref(), false, crate::store::DEFAULT_BUSY_TIMEOUT)?;
        run(&engine, Slot::UserVersion, self, &|_, _| Ok(()))
    }

    /// Where a file of your own stands, for a dry run. A missing file is at version 0 and is
    /// not created.
    pub fn status_of_file(&self, path: impl AsRef<Path>) -> Result<MigrationStatus> {
        let path = &crate::storage::resolve_file(path.as_ref())?;
        if !path.exists() {
            return Ok(MigrationStatus { current: 0, latest: self.latest() });
        }
        let engine = crate::storage::open_plain(path, true, crate::store::DEFAULT_BUSY_TIMEOUT)?;
        let current = engine.read_version(Slot::UserVersion)?;
        Ok(MigrationStatus { current, latest: self.latest() })
    }

    /// The steps of a directory of `NNN_name.sql` files (`001_users.sql`, `002_email.sql`...):
    /// version N is the file numbered N. Numbers must run from 1 without gaps or repeats, and
    /// every `.sql` file must be numbered, so a typo is an error rather than a skipped step.
    /// Other files are ignored.
    ///
    /// ```
    /// use cairn::Migrations;
    ///
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("001_users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
    /// std::fs::write(dir.path().join("002_email.sql"), "ALTER TABLE users ADD COLUMN email TEXT;")?;
    /// let (migrations, files) = Migrations::from_dir(dir.path())?;
    /// assert_eq!(migrations.latest(), 2);
    /// assert!(files[1].ends_with("002_email.sql"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<(Migrations<'static>, Vec<std::path::PathBuf>)> {
        let dir = dir.as_ref();
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { action, path, source }
        };
        let mut numbered = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io("read the directory", dir))? {
            let path = entry.map_err(io("read the directory", dir))?.path();
            if path.extension().is_none_or(|e| e != "sql") || !path.is_file() {
                continue;
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            let number = match digits.parse::<i64>() {
                Ok(n) if n > 0 && name[digits.len()..].starts_with('_') => n,
                _ => {
                    return Err(Error::invalid(format!(
                        "{}: migration files are named NNN_name.sql with NNN from 001 (e.g. 001_create_users.sql)",
                        path.display()
                    )))
                }
            };
            numbered.push((number, path));
        }
        numbered.sort();
        for (i, (number, path)) in numbered.iter().enumerate() {
            let expected = i as i64 + 1;
            if *number != expected {
                return Err(Error::invalid(format!(
                    "{}: expected migration number {expected} here ({}); numbers must run from 1 without gaps or repeats",
                    path.display(),
                    if *number < expected { "a repeat" } else { "a gap before it" }
                )));
            }
        }
        let mut steps = Vec::with_capacity(numbered.len());
        for (_, path) in &numbered {
            steps.push(M::up_owned(std::fs::read_to_string(path).map_err(io("read", path))?));
        }
        Ok((Migrations::new(steps), numbered.into_iter().map(|(_, p)| p).collect()))
    }

    pub(crate) fn step(&self, version: i64) -> Option<&M<'a>> {
        usize::try_from(version - 1).ok().and_then(|i| self.steps.get(i))
    }
}

impl crate::store::Store {
    /// Apply your own migrations to this store's file, versioned under `scope` (see
    /// [`Migrations`] for why not `user_version`).
    pub fn migrate(&self, scope: &str, migrations: &Migrations<'_>) -> Result<MigrationReport> {
        crate::names::validate_scope(scope)?;
        self.ensure_writable()?;
        run(&self.engine, Slot::Scope(scope), migrations, &|_, _| Ok(()))
    }

    /// Where `scope` stands in this file against `migrations`, without changing anything.
    pub fn migration_status(&self, scope: &str, migrations: &Migrations<'_>) -> Result<MigrationStatus> {
        crate::names::validate_scope(scope)?;
        Ok(MigrationStatus {
            current: self.engine.read_version(Slot::Scope(scope))?,
            latest: migrations.latest(),
        })
    }
}

/// Apply every pending step, one IMMEDIATE transaction each. `check` runs inside each
/// transaction with the version found, before anything is written.
pub(crate) fn run(
    engine: &Engine,
    slot: Slot<'_>,
    migrations: &Migrations<'_>,
    check: &dyn Fn(&Engine, i64) -> Result<()>,
) -> Result<MigrationReport> {
    let apply = |e: &Engine, version: i64| match migrations.step(version) {
        Some(step) => apply_step(e, step),
        None => Ok(()),
    };
    let done = crate::storage::run_steps(engine, slot, migrations.latest(), check, &apply)?;
    Ok(MigrationReport { from: done.from, to: done.to, applied: done.applied })
}

fn apply_step(engine: &Engine, step: &M<'_>) -> Result<()> {
    match &step.step {
        Step::Sql(sql) => engine.run_script(sql),
        Step::Rust(f) => f(&MigrationDb { engine }),
    }
}

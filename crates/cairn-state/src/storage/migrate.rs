//! Schema versions and migration steps: the part of the engine contract the migration
//! runner uses.
use crate::codec::{Rows, SqlValue};
use crate::error::{Error, Result};
use crate::storage::{Engine, EngineOps};

engine_ops! {
    /// Schema versions and migration steps.
    trait MigrateOps {
        /// One statement of a user's migration step (trusted, not fenced); its rows.
        fn migration_sql(&self, sql: &str, params: &[SqlValue]) -> Result<Rows>;
        /// A schema version.
        fn read_version(&self, slot: VersionSlot<'_>) -> Result<i64>;
        /// Set a schema version.
        fn write_version(&self, slot: VersionSlot<'_>, version: i64) -> Result<()>;
        /// Run a migration step's SQL.
        fn run_script(&self, sql: &str) -> Result<()>;
    }
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

/// What a run of migration steps did: the version found, the version left, the steps applied.
pub(crate) struct Applied {
    pub from: i64,
    pub to: i64,
    pub applied: Vec<i64>,
}

/// Apply every pending step up to `latest`, one IMMEDIATE transaction each with its version
/// bump in `slot`; `apply(engine, v)` runs step `v` (from 1). `check` runs inside each
/// transaction with the version found, before anything is written: the store uses it to refuse
/// a file that is not its own. Engine-neutral: cairn's own schema and users' migrations both
/// run through it.
pub(crate) fn run_steps(
    engine: &Engine,
    slot: VersionSlot<'_>,
    latest: i64,
    check: &dyn Fn(&Engine, i64) -> Result<()>,
    apply: &dyn Fn(&Engine, i64) -> Result<()>,
) -> Result<Applied> {
    let mut from = None;
    let mut applied = Vec::new();
    loop {
        let tx = engine.begin()?;
        let current = engine.read_version(slot)?;
        check(engine, current)?;
        let from = *from.get_or_insert(current);
        if current < 0 {
            // No migration runner writes one; without this check no step would match and the
            // file would pass as up to date (found by the store_file fuzz target).
            return Err(Error::Corrupt {
                path: engine.path().to_path_buf(),
                detail: format!("its '{}' schema version is {current}; versions start at 0", slot.name()),
            });
        }
        if current > latest {
            return Err(Error::SchemaTooNew {
                path: engine.path().to_path_buf(),
                scope: slot.name().to_owned(),
                found: current,
                supported: latest,
            });
        }
        let next = current + 1;
        if next > latest {
            drop(tx);
            return Ok(Applied { from, to: current, applied });
        }
        apply(engine, next).and_then(|()| engine.write_version(slot, next)).map_err(|e| {
            Error::Migration { scope: slot.name().to_owned(), version: next, source: Box::new(e) }
        })?;
        tx.commit()?;
        applied.push(next);
    }
}

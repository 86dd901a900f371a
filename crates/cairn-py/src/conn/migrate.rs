//! Migrations of the user's own schema: in the store's file under a scope (methods), or in a
//! SQLite file of the user's own (functions).

use std::path::PathBuf;

use cairn::{Migrations, M};
use pyo3::prelude::*;

use super::Connection;
use crate::convert::Text;
use crate::errors::Failure;

/// The steps of a migration list: SQL strings, or a directory of `NNN_name.sql` files.
fn migrations(steps: Option<Vec<String>>, dir: Option<PathBuf>) -> Result<Migrations<'static>, Failure> {
    match (steps, dir) {
        (Some(steps), None) => Ok(Migrations::new(steps.into_iter().map(M::up_owned).collect())),
        (None, Some(dir)) => Ok(Migrations::from_dir(dir)?.0),
        _ => Err(Failure::Cairn(cairn::Error::InvalidInput(
            "give the migration steps either as a list of SQL strings or as a directory".into(),
        ))),
    }
}

/// What a migration run did (`cairn::MigrationReport`). Private: `cairn.MigrationReport` is
/// made from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawMigrationReport {
    /// The version found before the run.
    from_version: i64,
    /// The version after the run.
    to_version: i64,
    /// The versions this run applied.
    applied: Vec<i64>,
}

impl From<cairn::MigrationReport> for RawMigrationReport {
    fn from(r: cairn::MigrationReport) -> Self {
        RawMigrationReport { from_version: r.from, to_version: r.to, applied: r.applied }
    }
}

/// Where a schema stands against a list of steps (`cairn::MigrationStatus`). Private:
/// `cairn.MigrationStatus` is made from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawMigrationStatus {
    /// The version in the file (or under the scope).
    current: i64,
    /// The version the steps reach.
    latest: i64,
}

impl From<cairn::MigrationStatus> for RawMigrationStatus {
    fn from(s: cairn::MigrationStatus) -> Self {
        RawMigrationStatus { current: s.current, latest: s.latest }
    }
}

/// Bring the user's own file at `path` to the latest version (`PRAGMA user_version`); what
/// the run did.
#[pyfunction]
#[pyo3(signature = (path, steps=None, dir=None))]
pub(crate) fn migrate_file(
    py: Python<'_>,
    path: PathBuf,
    steps: Option<Vec<String>>,
    dir: Option<PathBuf>,
) -> PyResult<RawMigrationReport> {
    py.detach(|| Ok(migrations(steps, dir)?.apply_to_file(&path)?.into())).map_err(|e: Failure| e.into_py(py))
}

/// Where the user's own file at `path` stands against the steps.
#[pyfunction]
#[pyo3(signature = (path, steps=None, dir=None))]
pub(crate) fn migration_status_of_file(
    py: Python<'_>,
    path: PathBuf,
    steps: Option<Vec<String>>,
    dir: Option<PathBuf>,
) -> PyResult<RawMigrationStatus> {
    py.detach(|| Ok(migrations(steps, dir)?.status_of_file(&path)?.into()))
        .map_err(|e: Failure| e.into_py(py))
}

#[pymethods]
impl Connection {
    /// What applying the steps under `scope` did.
    #[pyo3(signature = (scope, steps=None, dir=None))]
    fn migrate(
        &self,
        py: Python<'_>,
        scope: Text,
        steps: Option<Vec<String>>,
        dir: Option<PathBuf>,
    ) -> PyResult<RawMigrationReport> {
        self.run_store(py, |s| Ok(s.migrate(&scope, &migrations(steps, dir)?)?.into()))
    }

    /// Where `scope` stands against the steps.
    #[pyo3(signature = (scope, steps=None, dir=None))]
    fn migration_status(
        &self,
        py: Python<'_>,
        scope: Text,
        steps: Option<Vec<String>>,
        dir: Option<PathBuf>,
    ) -> PyResult<RawMigrationStatus> {
        self.run_store(py, |s| Ok(s.migration_status(&scope, &migrations(steps, dir)?)?.into()))
    }
}

//! Migrations of the user's own schema: in the store's file under a scope (methods), or in a
//! SQLite file of the user's own (functions).

use std::path::PathBuf;

use cairn::{Migrations, M};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

use super::Connection;
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

type Report = (i64, i64, Vec<i64>);

fn report(r: cairn::MigrationReport) -> Report {
    (r.from, r.to, r.applied)
}

/// `(from, to, applied)` after bringing the user's own file at `path` to the latest version
/// (`PRAGMA user_version`).
#[pyfunction]
#[pyo3(signature = (path, steps=None, dir=None))]
pub(crate) fn migrate_file(
    py: Python<'_>,
    path: PathBuf,
    steps: Option<Vec<String>>,
    dir: Option<PathBuf>,
) -> PyResult<Report> {
    py.detach(|| Ok(report(migrations(steps, dir)?.apply_to_file(&path)?)))
        .map_err(|e: Failure| e.into_py(py))
}

/// `(current, latest)` of the user's own file at `path` against the steps.
#[pyfunction]
#[pyo3(signature = (path, steps=None, dir=None))]
pub(crate) fn migration_status_of_file(
    py: Python<'_>,
    path: PathBuf,
    steps: Option<Vec<String>>,
    dir: Option<PathBuf>,
) -> PyResult<(i64, i64)> {
    py.detach(|| {
        let s = migrations(steps, dir)?.status_of_file(&path)?;
        Ok((s.current, s.latest))
    })
    .map_err(|e: Failure| e.into_py(py))
}

#[pymethods]
impl Connection {
    /// `(from, to, applied)` after applying the steps under `scope`.
    #[pyo3(signature = (scope, steps=None, dir=None))]
    fn migrate(
        &self,
        py: Python<'_>,
        scope: PyBackedStr,
        steps: Option<Vec<String>>,
        dir: Option<PathBuf>,
    ) -> PyResult<Report> {
        self.run_store(py, |s| Ok(report(s.migrate(&scope, &migrations(steps, dir)?)?)))
    }

    /// `(current, latest)` of `scope` against the steps.
    #[pyo3(signature = (scope, steps=None, dir=None))]
    fn migration_status(
        &self,
        py: Python<'_>,
        scope: PyBackedStr,
        steps: Option<Vec<String>>,
        dir: Option<PathBuf>,
    ) -> PyResult<(i64, i64)> {
        self.run_store(py, |s| {
            let st = s.migration_status(&scope, &migrations(steps, dir)?)?;
            Ok((st.current, st.latest))
        })
    }
}

//! The user's own SQL on the user's own tables: `query` and `execute`, which join an open
//! transaction.

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::Connection;
use crate::convert::{self, Text};

#[pymethods]
impl Connection {
    /// Rows of a reading statement on the user's own tables.
    #[pyo3(signature = (sql, params, tx))]
    fn query(
        &self,
        py: Python<'_>,
        sql: Text,
        params: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<Py<PyList>> {
        let params = convert::sql_params(params)?;
        let rows = self.run(py, tx, |s| {
            Ok(match &s.tx {
                Some(t) => t.query(&sql, &params)?,
                None => s.store.query(&sql, &params)?,
            })
        })?;
        convert::rows(py, rows)
    }

    /// Run one statement on the user's own tables; how many rows it changed.
    #[pyo3(signature = (sql, params, tx))]
    fn execute(
        &self,
        py: Python<'_>,
        sql: Text,
        params: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<usize> {
        let params = convert::sql_params(params)?;
        self.run(py, tx, |s| {
            Ok(match &s.tx {
                Some(t) => t.execute(&sql, &params)?,
                None => s.store.execute(&sql, &params)?,
            })
        })
    }
}

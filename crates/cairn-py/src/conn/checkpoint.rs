//! Checkpoints: a job's saved position, `checkpoint_*` methods.

use cairn::Value;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

use super::Connection;
use crate::convert;

#[pymethods]
impl Connection {
    fn checkpoint_get(
        &self,
        py: Python<'_>,
        job: PyBackedStr,
        tx: u64,
        default: Py<PyAny>,
    ) -> PyResult<Py<PyAny>> {
        match self.run(py, tx, |s| Ok(s.checkpoint(&job).get::<Value>()?))? {
            Some(v) => convert::to_py(py, v),
            None => Ok(default),
        }
    }

    fn checkpoint_set(
        &self,
        py: Python<'_>,
        job: PyBackedStr,
        value: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<()> {
        let value = convert::to_value(value)?;
        self.run(py, tx, |s| Ok(s.checkpoint(&job).set(&value)?))
    }

    fn checkpoint_delete(&self, py: Python<'_>, job: PyBackedStr, tx: u64) -> PyResult<bool> {
        self.run(py, tx, |s| Ok(s.checkpoint(&job).delete()?))
    }
}

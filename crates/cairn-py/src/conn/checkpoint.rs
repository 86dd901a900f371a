//! Checkpoints: a job's saved position, `checkpoint_*` methods.

use cairn::Value;
use pyo3::prelude::*;

use super::Connection;
use crate::convert::{self, Text};

#[pymethods]
impl Connection {
    fn checkpoint_get(&self, py: Python<'_>, job: Text, tx: u64, default: Py<PyAny>) -> PyResult<Py<PyAny>> {
        match self.run(py, tx, |s| Ok(s.checkpoint(&job).get::<Value>()?))? {
            Some(v) => convert::to_py(py, v),
            None => Ok(default),
        }
    }

    fn checkpoint_set(&self, py: Python<'_>, job: Text, value: &Bound<'_, PyAny>, tx: u64) -> PyResult<()> {
        let value = convert::to_value(value)?;
        self.run(py, tx, |s| Ok(s.checkpoint(&job).set(&value)?))
    }

    fn checkpoint_delete(&self, py: Python<'_>, job: Text, tx: u64) -> PyResult<bool> {
        self.run(py, tx, |s| Ok(s.checkpoint(&job).delete()?))
    }
}

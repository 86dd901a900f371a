//! Maintenance of the whole store: the integrity check, an online backup, VACUUM and the
//! metrics for Prometheus.

use std::path::PathBuf;

use pyo3::prelude::*;

use super::Connection;

#[pymethods]
impl Connection {
    fn integrity_check(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.run_store(py, |s| Ok(s.integrity_check()?))
    }

    fn backup(&self, py: Python<'_>, dest: PathBuf) -> PyResult<()> {
        self.run_store(py, |s| Ok(s.backup(&dest)?))
    }

    fn vacuum(&self, py: Python<'_>) -> PyResult<()> {
        self.run_store(py, |s| Ok(s.vacuum()?))
    }

    fn prometheus_metrics(&self, py: Python<'_>) -> PyResult<String> {
        self.run_store(py, |s| Ok(s.metrics()?.to_prometheus()))
    }
}

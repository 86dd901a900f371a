//! Rate limits: `limit_take`. The waiting is the Python layer's (`cairn.Limiter`), in sleeps
//! of the exact retry-after, so Ctrl-C interrupts it; each take is one call here.

use pyo3::prelude::*;

use super::Connection;
use crate::convert::Text;
use crate::errors::to_py;

#[pymethods]
impl Connection {
    /// Take a slot of the rate limit `name` (`rate` as `"10/s"`, `burst` slots at once) if one
    /// is free: None; else the seconds until the next one frees.
    fn limit_take(&self, py: Python<'_>, name: Text, rate: &str, burst: u32) -> PyResult<Option<f64>> {
        let rate: cairn::Rate = rate.parse().map_err(|e| to_py(py, e))?;
        self.run_store(py, |s| {
            Ok(s.limiter(&name, rate).burst(burst).take()?.retry_after().map(|d| d.as_secs_f64()))
        })
    }
}

/// A rate's count and its period in seconds, from text like `"10/s"` or `"5/10s"`.
#[pyfunction]
pub(crate) fn parse_rate(py: Python<'_>, text: &str) -> PyResult<(u64, f64)> {
    let rate: cairn::Rate = text.parse().map_err(|e| to_py(py, e))?;
    Ok((rate.count(), rate.period().as_secs_f64()))
}

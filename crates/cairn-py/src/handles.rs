//! Small values the store hands out: a claim on a ledger item, a held lock and its
//! keep-alive thread, and the manual clock for tests.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::{to_py, Failure};

/// A worker's hold on a ledger item (its id, worker, fencing token and lease end). Private:
/// `cairn.Claim` wraps it.
#[pyclass(frozen, module = "cairn._cairn", name = "RawClaim")]
pub(crate) struct Claim(cairn::Claim);

impl Claim {
    pub(crate) fn new(c: cairn::Claim) -> Self {
        Claim(c)
    }

    pub(crate) fn inner(&self) -> &cairn::Claim {
        &self.0
    }
}

#[pymethods]
impl Claim {
    /// The item's id.
    #[getter]
    fn id(&self) -> &str {
        self.0.id()
    }

    /// The worker holding it.
    #[getter]
    fn worker(&self) -> &str {
        self.0.worker()
    }

    /// The fencing token, bumped by every claim of the item.
    #[getter]
    fn token(&self) -> i64 {
        self.0.token()
    }

    /// When the lease runs out, in Unix milliseconds.
    #[getter]
    fn lease_until_millis(&self) -> i64 {
        self.0.lease_until_millis()
    }

    /// Which attempt this is: 1 the first time the item is worked on.
    #[getter]
    fn attempt(&self) -> u32 {
        self.0.attempt()
    }

    /// What the item carries for its worker, as the type it was queued with; None if nothing.
    #[getter]
    fn data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.0.data::<cairn::Value>().map_err(|e| to_py(py, e))? {
            Some(v) => crate::convert::to_py(py, v),
            None => Ok(py.None()),
        }
    }
}

/// A held named lock, as data (not released when dropped). Private: `cairn.Lock` uses it.
#[pyclass(frozen, module = "cairn._cairn")]
pub(crate) struct HeldLock(cairn::HeldLock);

impl HeldLock {
    pub(crate) fn new(h: cairn::HeldLock) -> Self {
        HeldLock(h)
    }

    pub(crate) fn inner(&self) -> &cairn::HeldLock {
        &self.0
    }
}

#[pymethods]
impl HeldLock {
    /// The lock's name.
    #[getter]
    fn name(&self) -> &str {
        self.0.name()
    }

    /// The unique owner name the hold is recorded under.
    #[getter]
    fn owner(&self) -> &str {
        self.0.owner()
    }
}

/// This process's hold on a cache key's fill marker (`cairn::FillClaim`), from
/// `Connection.cache_fill_try`; taken by `cache_fill_complete` or `cache_fill_abandon`.
/// Private: `cairn.AsyncCache.get_or_set` uses it.
#[pyclass(frozen, module = "cairn._cairn")]
pub(crate) struct FillClaim(Mutex<Option<cairn::FillClaim>>);

impl FillClaim {
    pub(crate) fn new(c: cairn::FillClaim) -> Self {
        FillClaim(Mutex::new(Some(c)))
    }

    /// The claim, once: a second completion (or abandon) of the same claim is refused.
    pub(crate) fn take(&self, py: Python<'_>) -> PyResult<cairn::FillClaim> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().ok_or_else(|| {
            to_py(py, cairn::Error::InvalidInput("this fill was already completed or abandoned".into()))
        })
    }
}

#[pymethods]
impl FillClaim {
    /// The key being computed.
    #[getter]
    fn key(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(|c| c.key().to_owned())
    }
}

/// The library's thread renewing a lock. Private: `cairn.Lock` uses it.
#[pyclass(frozen, module = "cairn._cairn")]
pub(crate) struct KeepAlive(Mutex<Option<cairn::KeepAlive>>);

impl KeepAlive {
    pub(crate) fn new(k: cairn::KeepAlive) -> Self {
        KeepAlive(Mutex::new(Some(k)))
    }
}

#[pymethods]
impl KeepAlive {
    /// True once a renewal found the lock taken over.
    fn lost(&self, py: Python<'_>) -> bool {
        py.detach(|| {
            let k = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            k.as_ref().is_some_and(cairn::KeepAlive::lost)
        })
    }

    /// Stop renewing; raises `LeaseLostError` if a renewal found the lock taken over. Stopping
    /// twice is fine.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            let k = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            match k {
                Some(k) => k.stop().map_err(Failure::Cairn),
                None => Ok(()),
            }
        })
        .map_err(|e| e.into_py(py))
    }
}

/// A clock that moves only when told to, shared by the stores it is given to. Private:
/// `cairn.testing.ManualClock` wraps it.
#[pyclass(frozen, module = "cairn._cairn", name = "RawManualClock")]
pub(crate) struct ManualClock(cairn::ManualClock);

impl ManualClock {
    pub(crate) fn inner(&self) -> &cairn::ManualClock {
        &self.0
    }
}

#[pymethods]
impl ManualClock {
    /// A clock reading `millis` milliseconds since the Unix epoch.
    #[new]
    fn new(millis: i64) -> Self {
        ManualClock(cairn::ManualClock::new(millis))
    }

    /// The time, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64 {
        use cairn::Clock;
        self.0.now_millis()
    }

    /// Move time forward by `millis` milliseconds.
    fn advance_millis(&self, millis: u64) {
        self.0.advance(Duration::from_millis(millis));
    }

    /// Set the time.
    fn set_millis(&self, millis: i64) {
        self.0.set_millis(millis);
    }
}

/// Seconds in a duration as every duration argument takes it (seconds, a timedelta or a
/// string like `"5m"`), checked: for settings validated when given rather than when used.
#[pyfunction]
pub(crate) fn duration_seconds(value: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    crate::convert::seconds(value, what).map(|d| d.as_secs_f64())
}

/// Seconds in a duration written like `"1h30m"`, `"500ms"` (the CLI's syntax).
#[pyfunction]
pub(crate) fn parse_duration(py: Python<'_>, text: &str) -> PyResult<f64> {
    cairn::parse_duration(text).map(|d| d.as_secs_f64()).map_err(|e| to_py(py, e))
}

/// The default store location: `$CAIRN_DB`, else `$XDG_STATE_HOME/cairn/state.db`, else
/// `~/.local/state/cairn/state.db`. A str, not a `pathlib.Path`, which would fold the `//` of a
/// `postgres://` URL given in `$CAIRN_DB`.
#[pyfunction]
pub(crate) fn default_path(py: Python<'_>) -> PyResult<String> {
    cairn::default_path().map(|p| p.to_string_lossy().into_owned()).map_err(|e| to_py(py, e))
}

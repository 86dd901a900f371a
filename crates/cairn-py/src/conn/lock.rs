//! Named locks and counting semaphores: `lock_*` methods. They never join a transaction.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

use super::Connection;
use crate::convert;
use crate::handles::{HeldLock, KeepAlive};

#[pymethods]
impl Connection {
    /// Take one of the lock's `max` slots if one is free (or its holder is dead); None at
    /// once otherwise. A plain lock is `max` 1.
    #[pyo3(signature = (name, ttl, max=1))]
    fn lock_try(
        &self,
        py: Python<'_>,
        name: PyBackedStr,
        ttl: &Bound<'_, PyAny>,
        max: u32,
    ) -> PyResult<Option<HeldLock>> {
        let ttl = convert::seconds(ttl, "a lock TTL")?;
        let held =
            self.run_store(py, |s| Ok(s.try_semaphore(&name, max, ttl)?.map(cairn::LockGuard::into_held)))?;
        Ok(held.map(HeldLock::new))
    }

    fn lock_renew(&self, py: Python<'_>, lock: PyRef<'_, HeldLock>, ttl: &Bound<'_, PyAny>) -> PyResult<()> {
        let ttl = convert::seconds(ttl, "a lock TTL")?;
        let held = lock.inner();
        self.run_store(py, |s| Ok(s.renew_lock(held, ttl)?))
    }

    fn lock_release(&self, py: Python<'_>, lock: PyRef<'_, HeldLock>) -> PyResult<bool> {
        let held = lock.inner();
        self.run_store(py, |s| Ok(s.release_lock(held)?))
    }

    /// Renew the lock every `ttl / 3` from a thread of the library with its own connection.
    fn lock_keep_alive(
        &self,
        py: Python<'_>,
        lock: PyRef<'_, HeldLock>,
        ttl: &Bound<'_, PyAny>,
    ) -> PyResult<KeepAlive> {
        let ttl = convert::seconds(ttl, "a lock TTL")?;
        let held = lock.inner();
        Ok(KeepAlive::new(self.run_store(py, |s| Ok(s.keep_alive(held, ttl)?))?))
    }

    /// `(owner, pid, expires_at_millis)` of the lock's holder, or None.
    fn lock_holder(&self, py: Python<'_>, name: PyBackedStr) -> PyResult<Option<(String, u32, i64)>> {
        let h = self.run_store(py, |s| Ok(s.lock_holder(&name)?))?;
        Ok(h.map(|h| (h.owner, h.pid, h.expires_at_millis)))
    }

    /// `(slot, owner, pid, expires_at_millis)` of the holders of the lock's slots below `max`.
    fn lock_holders(
        &self,
        py: Python<'_>,
        name: PyBackedStr,
        max: u32,
    ) -> PyResult<Vec<(u32, String, u32, i64)>> {
        let hs = self.run_store(py, |s| Ok(s.lock_holders(&name, max)?))?;
        Ok(hs.into_iter().map(|h| (h.slot, h.owner, h.pid, h.expires_at_millis)).collect())
    }
}

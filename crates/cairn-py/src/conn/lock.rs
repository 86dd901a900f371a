//! Named locks and counting semaphores: `lock_*` methods. They never join a transaction.

use pyo3::prelude::*;

use super::Connection;
use crate::convert::{self, Text};
use crate::handles::{HeldLock, KeepAlive};

/// Who holds a slot of a lock (`cairn::LockHolder`). Private: `cairn.LockHolder` is made from
/// it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawLockHolder {
    /// Which slot: 0 for a plain lock.
    slot: u32,
    /// The holder's unique owner name.
    owner: String,
    /// Its process id.
    pid: u32,
    /// When its hold runs out unless renewed, in Unix milliseconds.
    expires_at_millis: i64,
}

impl From<cairn::LockHolder> for RawLockHolder {
    fn from(h: cairn::LockHolder) -> Self {
        RawLockHolder { slot: h.slot, owner: h.owner, pid: h.pid, expires_at_millis: h.expires_at_millis }
    }
}

#[pymethods]
impl Connection {
    /// Take one of the lock's `max` slots if one is free (or its holder is dead); None at
    /// once otherwise. A plain lock is `max` 1.
    #[pyo3(signature = (name, ttl, max=1))]
    fn lock_try(
        &self,
        py: Python<'_>,
        name: Text,
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

    /// The holder of the lock (its slot 0), or None.
    fn lock_holder(&self, py: Python<'_>, name: Text) -> PyResult<Option<RawLockHolder>> {
        let h = self.run_store(py, |s| Ok(s.lock_holder(&name)?))?;
        Ok(h.map(RawLockHolder::from))
    }

    /// The holders of the lock's slots below `max`, by slot.
    fn lock_holders(&self, py: Python<'_>, name: Text, max: u32) -> PyResult<Vec<RawLockHolder>> {
        let hs = self.run_store(py, |s| Ok(s.lock_holders(&name, max)?))?;
        Ok(hs.into_iter().map(RawLockHolder::from).collect())
    }
}

//! `Connection`: one `cairn::Store` (one SQLite connection) behind a re-entrant mutex, with
//! the store's operations as methods. The Python layer (`cairn.Store`) opens one per thread
//! per process; this type only checks that it is not used from a forked child.
//!
//! Rules every method follows:
//! * the interpreter is released (`py.detach`) around everything that touches SQLite or
//!   waits, and the mutex is only ever taken while detached, so a thread waiting for the
//!   file's write lock never stalls the others, and two threads cannot deadlock over the
//!   interpreter and the mutex;
//! * Python callbacks (a `get_or_set` compute) re-attach; their exceptions come out unchanged;
//! * a `tx` argument of 0 runs the operation on its own (the store's shortcut); any other
//!   value must be the number `begin` returned for the transaction still open, and the
//!   operation joins it.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::Duration;

use cairn::{
    Cache, CacheLimits, Checkpoint, ClaimHolder, Durability, Eviction, ItemState, Ledger, Migrations,
    Options, Store, Tx, Value, M,
};
use parking_lot::ReentrantMutex;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyList};

use crate::convert::{self, Indexed};
use crate::errors::{invalid, Failure, ForkedError};
use crate::handles::{Claim, HeldLock, KeepAlive, ManualClock};

/// What the mutex guards. `RefCell` because `close` takes the store out while other methods
/// borrow it (a callback re-entering on the same thread borrows it a second time).
struct State {
    store: RefCell<Option<Store>>,
    /// The number of the explicit transaction open on this connection, 0 when none is.
    tx: Cell<u64>,
    /// The last number handed out.
    last_tx: Cell<u64>,
}

/// One connection to a cairn store, for one thread of one process. Private: use
/// `cairn.Store`.
#[pyclass(frozen, weakref, module = "cairn._cairn")]
pub(crate) struct Connection {
    state: ReentrantMutex<State>,
    /// The process that opened it: a forked child must not use it.
    pid: u32,
    path: String,
    journal_mode: String,
    read_only: bool,
    busy_timeout: Duration,
}

/// Where an operation runs: on the store alone, or inside its open transaction.
pub(crate) struct Scope<'s> {
    store: &'s Store,
    tx: Option<Tx<'s>>,
}

impl Scope<'_> {
    fn cache<'a>(&'a self, ns: &'a str) -> Cache<'a> {
        match &self.tx {
            Some(tx) => tx.cache(ns),
            None => self.store.cache(ns),
        }
    }

    fn ledger<'a>(&'a self, ns: &'a str) -> Ledger<'a> {
        match &self.tx {
            Some(tx) => tx.ledger(ns),
            None => self.store.ledger(ns),
        }
    }

    fn checkpoint<'a>(&'a self, job: &'a str) -> Checkpoint<'a> {
        match &self.tx {
            Some(tx) => tx.checkpoint(job),
            None => self.store.checkpoint(job),
        }
    }
}

impl Connection {
    fn check_pid(&self) -> PyResult<()> {
        let me = std::process::id();
        if me == self.pid {
            return Ok(());
        }
        Err(ForkedError::new_err(format!(
            "this connection was opened by process {} and cannot be used in process {me}, a child forked \
             from it (SQLite connections do not survive fork); cairn.Store opens one of the child's own \
             by itself",
            self.pid
        )))
    }

    /// Run `f` on the store, detached from the interpreter, under the connection's mutex.
    fn run<T, F>(&self, py: Python<'_>, tx: u64, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&Scope<'_>) -> Result<T, Failure> + Send,
    {
        self.check_pid()?;
        py.detach(|| {
            let state = self.state.lock();
            let slot = state.store.try_borrow().map_err(|_| Failure::Closed)?;
            let store = slot.as_ref().ok_or(Failure::Closed)?;
            let scope = if tx == 0 {
                Scope { store, tx: None }
            } else if state.tx.get() != tx {
                return Err(Failure::Ended);
            } else {
                match store.current_transaction() {
                    Some(t) => Scope { store, tx: Some(t) },
                    None => {
                        // Rolled back by SQLite itself after an error inside it (a full disk).
                        state.tx.set(0);
                        return Err(Failure::Ended);
                    }
                }
            };
            f(&scope)
        })
        .map_err(|e| e.into_py(py))
    }

    /// [`Connection::run`] for operations that do not join transactions.
    fn run_store<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&Store) -> Result<T, Failure> + Send,
    {
        self.run(py, 0, |s| f(s.store))
    }
}

fn durability(name: &str) -> PyResult<Durability> {
    match name {
        "normal" => Ok(Durability::Normal),
        "full" => Ok(Durability::Full),
        other => Err(invalid(format!("durability is \"normal\" or \"full\", not {other:?}"))),
    }
}

fn lru(eviction: &str) -> PyResult<Eviction> {
    match eviction {
        "lrs" | "least-recently-stored" => Ok(Eviction::LeastRecentlyStored),
        "lru" | "least-recently-used" => Ok(Eviction::LeastRecentlyUsed),
        other => Err(invalid(format!("eviction is \"lrs\" or \"lru\", not {other:?}"))),
    }
}

/// A ledger handle with the caller's failure policy; `None` keeps the library's retry delay.
fn failing(l: Ledger<'_>, max_attempts: u32, retry_delay: Option<Duration>) -> Ledger<'_> {
    let l = l.max_attempts(max_attempts);
    match retry_delay {
        Some(d) => l.retry_delay(d),
        None => l,
    }
}

fn state_name(s: ItemState) -> &'static str {
    s.as_str()
}

fn item_state(name: &str) -> PyResult<ItemState> {
    match name {
        "pending" => Ok(ItemState::Pending),
        "claimed" => Ok(ItemState::Claimed),
        "done" => Ok(ItemState::Done),
        "failed" => Ok(ItemState::Failed),
        other => Err(invalid(format!("an item state is pending, claimed, done or failed, not {other:?}"))),
    }
}

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
    /// Open the store at `path`, a file or a `postgres://` URL (or a private in-memory one with
    /// `memory=True`). `schema` is the PostgreSQL schema (ignored for files).
    #[new]
    #[pyo3(signature = (path, *, memory=false, busy_timeout=None, durability="normal".to_string(),
        read_only=false, read_only_if_unwritable=false, fill_timeout=None, clock=None, schema=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        memory: bool,
        busy_timeout: Option<&Bound<'_, PyAny>>,
        durability: String,
        read_only: bool,
        read_only_if_unwritable: bool,
        fill_timeout: Option<&Bound<'_, PyAny>>,
        clock: Option<PyRef<'_, ManualClock>>,
        schema: Option<String>,
    ) -> PyResult<Self> {
        let mut options = Options::new()
            .durability(self::durability(&durability)?)
            .read_only(read_only)
            .read_only_if_unwritable(read_only_if_unwritable);
        if let Some(d) = convert::duration(busy_timeout, "busy_timeout")? {
            options = options.busy_timeout(d);
        }
        if let Some(d) = convert::duration(fill_timeout, "fill_timeout")? {
            options = options.fill_timeout(d);
        }
        if let Some(c) = clock {
            options = options.clock(c.inner().clone());
        }
        if let Some(name) = schema {
            options = options.schema(name);
        }
        let store = py
            .detach(|| match (memory, path) {
                (true, _) => options.open_in_memory(),
                (false, Some(p)) => options.open(p),
                (false, None) => cairn::default_path().and_then(|p| options.open(p)),
            })
            .map_err(|e| crate::errors::to_py(py, e))?;
        Ok(Connection {
            pid: std::process::id(),
            path: store.path().to_string_lossy().into_owned(),
            journal_mode: store.journal_mode().to_owned(),
            read_only: store.is_read_only(),
            busy_timeout: store.busy_timeout(),
            state: ReentrantMutex::new(State {
                store: RefCell::new(Some(store)),
                tx: Cell::new(0),
                last_tx: Cell::new(0),
            }),
        })
    }

    /// The database file (absolute), `:memory:`, or a server's URL without its password.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// `wal`, `memory`, or a fallback rollback journal.
    #[getter]
    fn journal_mode(&self) -> &str {
        &self.journal_mode
    }

    /// True if opened read-only.
    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    /// The busy timeout, in seconds.
    #[getter]
    fn busy_timeout(&self) -> f64 {
        self.busy_timeout.as_secs_f64()
    }

    /// The process that opened it.
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    /// Close the connection: pending statistics are written and an open transaction is rolled
    /// back. Closing twice is fine. In a forked child the parent's connection is let go of
    /// without touching the file.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let forked = std::process::id() != self.pid;
        py.detach(|| {
            let state = self.state.lock();
            let mut slot = state.store.try_borrow_mut().map_err(|_| Failure::InUse)?;
            let store = slot.take();
            state.tx.set(0);
            drop(slot);
            if forked {
                std::mem::forget(store);
            } else {
                drop(store);
            }
            Ok(())
        })
        .map_err(|e: Failure| e.into_py(py))
    }

    /// True until `close`.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| {
            let state = self.state.lock();
            state.store.try_borrow().map(|s| s.is_none()).unwrap_or(false)
        })
    }

    /// True while a transaction begun with `begin` is open.
    #[getter]
    fn in_transaction(&self, py: Python<'_>) -> bool {
        py.detach(|| self.state.lock().tx.get() != 0)
    }

    // ---- transactions -------------------------------------------------------------------

    /// BEGIN IMMEDIATE; returns the transaction's number, which its handles pass as `tx`.
    fn begin(&self, py: Python<'_>) -> PyResult<u64> {
        self.check_pid()?;
        py.detach(|| {
            let state = self.state.lock();
            let slot = state.store.try_borrow().map_err(|_| Failure::Closed)?;
            let store = slot.as_ref().ok_or(Failure::Closed)?;
            store.begin_transaction()?;
            let n = state.last_tx.get() + 1;
            state.last_tx.set(n);
            state.tx.set(n);
            Ok(n)
        })
        .map_err(|e: Failure| e.into_py(py))
    }

    /// COMMIT transaction `tx`. On failure it has been rolled back.
    fn commit(&self, py: Python<'_>, tx: u64) -> PyResult<()> {
        self.check_pid()?;
        py.detach(|| {
            let state = self.state.lock();
            let slot = state.store.try_borrow().map_err(|_| Failure::Closed)?;
            let store = slot.as_ref().ok_or(Failure::Closed)?;
            if state.tx.get() != tx || tx == 0 {
                return Err(Failure::Ended);
            }
            state.tx.set(0);
            store.commit_transaction()?;
            Ok(())
        })
        .map_err(|e: Failure| e.into_py(py))
    }

    /// ROLLBACK transaction `tx`, if it is still open.
    fn rollback(&self, py: Python<'_>, tx: u64) -> PyResult<()> {
        self.check_pid()?;
        py.detach(|| {
            let state = self.state.lock();
            if state.tx.get() != tx || tx == 0 {
                return;
            }
            state.tx.set(0);
            if let Ok(slot) = state.store.try_borrow() {
                if let Some(store) = slot.as_ref() {
                    store.rollback_transaction();
                }
            };
        });
        Ok(())
    }

    // ---- cache ------------------------------------------------------------------------------

    /// The value of `key`, or `default` when it is absent or expired.
    fn cache_get(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        key: PyBackedStr,
        tx: u64,
        default: Py<PyAny>,
    ) -> PyResult<Py<PyAny>> {
        match self.run(py, tx, |s| Ok(s.cache(&ns).get::<Value>(&key)?))? {
            Some(v) => convert::to_py(py, v),
            None => Ok(default),
        }
    }

    fn cache_contains(&self, py: Python<'_>, ns: PyBackedStr, key: PyBackedStr, tx: u64) -> PyResult<bool> {
        self.run(py, tx, |s| Ok(s.cache(&ns).contains(&key)?))
    }

    #[pyo3(signature = (ns, key, value, ttl, tx))]
    fn cache_set(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        key: PyBackedStr,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<()> {
        let value = convert::to_value(value)?;
        let ttl = convert::duration(ttl, "a TTL")?;
        self.run(py, tx, |s| Ok(s.cache(&ns).set(&key, &value, ttl)?))
    }

    #[pyo3(signature = (ns, key, value, ttl, tx))]
    fn cache_add(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        key: PyBackedStr,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<bool> {
        let value = convert::to_value(value)?;
        let ttl = convert::duration(ttl, "a TTL")?;
        self.run(py, tx, |s| Ok(s.cache(&ns).add(&key, &value, ttl)?))
    }

    fn cache_delete(&self, py: Python<'_>, ns: PyBackedStr, key: PyBackedStr, tx: u64) -> PyResult<bool> {
        self.run(py, tx, |s| Ok(s.cache(&ns).delete(&key)?))
    }

    #[pyo3(signature = (ns, key, ttl, tx))]
    fn cache_touch(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        key: PyBackedStr,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<bool> {
        let ttl = convert::duration(ttl, "a TTL")?;
        self.run(py, tx, |s| Ok(s.cache(&ns).touch(&key, ttl)?))
    }

    #[pyo3(signature = (ns, key, by, ttl, tx))]
    fn cache_incr(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        key: PyBackedStr,
        by: i64,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<i64> {
        let ttl = convert::duration(ttl, "a TTL")?;
        self.run(py, tx, |s| Ok(s.cache(&ns).incr(&key, by, ttl)?))
    }

    fn cache_keys(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        prefix: PyBackedStr,
        tx: u64,
    ) -> PyResult<Vec<String>> {
        self.run(py, tx, |s| Ok(s.cache(&ns).keys(&prefix)?))
    }

    /// Every entry of the namespace, or those whose key starts with `prefix`.
    #[pyo3(signature = (ns, prefix, tx))]
    fn cache_clear(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        prefix: Option<PyBackedStr>,
        tx: u64,
    ) -> PyResult<u64> {
        self.run(py, tx, |s| {
            let cache = s.cache(&ns);
            Ok(match &prefix {
                Some(p) => cache.clear_prefix(p)?,
                None => cache.clear()?,
            })
        })
    }

    fn cache_sweep(&self, py: Python<'_>, ns: PyBackedStr, tx: u64) -> PyResult<u64> {
        self.run(py, tx, |s| Ok(s.cache(&ns).sweep()?))
    }

    /// `(entries, bytes, hits, misses, evictions, max_entries, max_bytes, eviction)`.
    #[allow(clippy::type_complexity)]
    fn cache_stats(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        tx: u64,
    ) -> PyResult<(u64, u64, u64, u64, u64, Option<u64>, Option<u64>, &'static str)> {
        let st = self.run(py, tx, |s| Ok(s.cache(&ns).stats()?))?;
        let l = st.limits;
        Ok((st.entries, st.bytes, st.hits, st.misses, st.evictions, l.max_entries, l.max_bytes, eviction(l)))
    }

    /// `(max_entries, max_bytes, eviction)`.
    fn cache_limits(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        tx: u64,
    ) -> PyResult<(Option<u64>, Option<u64>, &'static str)> {
        let l = self.run(py, tx, |s| Ok(s.cache(&ns).limits()?))?;
        Ok((l.max_entries, l.max_bytes, eviction(l)))
    }

    #[pyo3(signature = (ns, max_entries, max_bytes, eviction, tx))]
    fn cache_set_limits(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        max_entries: Option<u64>,
        max_bytes: Option<u64>,
        eviction: PyBackedStr,
        tx: u64,
    ) -> PyResult<()> {
        let limits = CacheLimits { max_entries, max_bytes, eviction: lru(&eviction)? };
        self.run(py, tx, |s| Ok(s.cache(&ns).set_limits(limits)?))
    }

    /// The value of `key`; on a miss, `compute()` it (once across processes), store it with
    /// `ttl` and return it as stored.
    #[pyo3(signature = (ns, key, compute, ttl, tx))]
    fn cache_get_or_set(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        key: PyBackedStr,
        compute: Py<PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<Py<PyAny>> {
        let ttl = convert::duration(ttl, "a TTL")?;
        let v = self.run(py, tx, |s| {
            s.cache(&ns).get_or_set_with(&key, ttl, || {
                Python::attach(|py| -> Result<Value, Failure> {
                    let out = compute.call0(py)?;
                    Ok(convert::to_value(out.bind(py))?)
                })
            })
        })?;
        convert::to_py(py, v)
    }

    // ---- ledger -----------------------------------------------------------------------------

    #[pyo3(signature = (ns, id, result, tx))]
    fn ledger_mark_done(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        id: &Bound<'_, PyAny>,
        result: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<bool> {
        let id = convert::id(id)?;
        let result = result.filter(|r| !r.is_none()).map(convert::to_value).transpose()?;
        self.run(py, tx, |s| {
            let l = s.ledger(&ns);
            Ok(match &result {
                Some(r) => l.mark_done_with(&id, r)?,
                None => l.mark_done(&id)?,
            })
        })
    }

    fn ledger_mark_done_many(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        ids: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<u64> {
        let (_, ids) = convert::ids(ids)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).mark_done_many(ids)?))
    }

    fn ledger_is_done(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        id: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<bool> {
        let id = convert::id(id)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).is_done(&id)?))
    }

    /// The ids (the caller's own objects) that are neither done nor given up, in input order.
    fn ledger_filter_new(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        ids: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Py<PyList>> {
        let (originals, ids) = convert::ids(ids)?;
        let todo: Vec<Indexed> = self.run(py, tx, |s| Ok(s.ledger(&ns).filter_new(ids)?))?;
        let list = PyList::empty(py);
        for item in todo {
            list.append(originals[item.index].bind(py))?;
        }
        Ok(list.unbind())
    }

    fn ledger_result(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        id: &Bound<'_, PyAny>,
        tx: u64,
        default: Py<PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let id = convert::id(id)?;
        match self.run(py, tx, |s| Ok(s.ledger(&ns).result::<Value>(&id)?))? {
            Some(v) => convert::to_py(py, v),
            None => Ok(default),
        }
    }

    /// A dict of what is recorded about `id`, or None.
    fn ledger_item(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        id: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Option<Py<PyDict>>> {
        let id = convert::id(id)?;
        let item = self.run(py, tx, |s| Ok(s.ledger(&ns).item(&id)?))?;
        item.map(|i| item_dict(py, i)).transpose()
    }

    #[pyo3(signature = (ns, id, error, max_attempts, retry_delay, tx))]
    #[allow(clippy::too_many_arguments)]
    fn ledger_fail(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        id: &Bound<'_, PyAny>,
        error: PyBackedStr,
        max_attempts: u32,
        retry_delay: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<&'static str> {
        let id = convert::id(id)?;
        let retry_delay = convert::duration(retry_delay, "a retry delay")?;
        self.run(py, tx, |s| {
            Ok(state_name(failing(s.ledger(&ns), max_attempts, retry_delay).fail(&id, &error)?))
        })
    }

    fn ledger_enqueue(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        ids: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<u64> {
        let (_, ids) = convert::ids(ids)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).enqueue(ids)?))
    }

    /// Queue `(id, data, delay, not_before)` tuples (`cairn.QueueItem`'s fields, `not_before`
    /// as Unix milliseconds or an RFC 3339 string); how many were new.
    fn ledger_enqueue_items(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        items: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<u64> {
        let mut queued = Vec::with_capacity(items.len().unwrap_or(0));
        for item in items.try_iter()? {
            queued.push(convert::queue_item(&item?)?);
        }
        self.run(py, tx, |s| Ok(s.ledger(&ns).enqueue_items(queued)?))
    }

    /// Put given-up items back in the queue; how many.
    fn ledger_retry(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        ids: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<u64> {
        let (_, ids) = convert::ids(ids)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).retry(ids)?))
    }

    fn ledger_retry_all_failed(&self, py: Python<'_>, ns: PyBackedStr, tx: u64) -> PyResult<u64> {
        self.run(py, tx, |s| Ok(s.ledger(&ns).retry_all_failed()?))
    }

    /// Delete the items done more than `age` ago; how many.
    fn ledger_prune_done(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        age: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<u64> {
        let age = convert::seconds(age, "an age")?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).prune_done(age)?))
    }

    #[pyo3(signature = (ns, id, worker, lease, tx))]
    fn ledger_claim(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        id: &Bound<'_, PyAny>,
        worker: PyBackedStr,
        lease: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Option<Claim>> {
        let id = convert::id(id)?;
        let lease = convert::seconds(lease, "a lease")?;
        let c = self.run(py, tx, |s| {
            Ok(s.ledger(&ns).holder(ClaimHolder::ThisProcess).claim(&id, &worker, lease)?)
        })?;
        Ok(c.map(Claim::new))
    }

    #[pyo3(signature = (ns, worker, lease, tx))]
    fn ledger_claim_next(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        worker: PyBackedStr,
        lease: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Option<Claim>> {
        let lease = convert::seconds(lease, "a lease")?;
        let c = self.run(py, tx, |s| Ok(s.ledger(&ns).claim_next(&worker, lease)?))?;
        Ok(c.map(Claim::new))
    }

    #[pyo3(signature = (ns, worker, lease, n, tx))]
    fn ledger_claim_next_many(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        worker: PyBackedStr,
        lease: &Bound<'_, PyAny>,
        n: u32,
        tx: u64,
    ) -> PyResult<Vec<Claim>> {
        let lease = convert::seconds(lease, "a lease")?;
        let claims = self.run(py, tx, |s| Ok(s.ledger(&ns).claim_next_many(&worker, lease, n)?))?;
        Ok(claims.into_iter().map(Claim::new).collect())
    }

    fn ledger_held_claim(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        id: &Bound<'_, PyAny>,
        worker: PyBackedStr,
        tx: u64,
    ) -> PyResult<Option<Claim>> {
        let id = convert::id(id)?;
        let c = self.run(py, tx, |s| Ok(s.ledger(&ns).held_claim(&id, &worker)?))?;
        Ok(c.map(Claim::new))
    }

    #[pyo3(signature = (ns, claim, lease, tx))]
    fn ledger_extend(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        claim: PyRef<'_, Claim>,
        lease: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Claim> {
        let lease = convert::seconds(lease, "a lease")?;
        let c = claim.inner();
        Ok(Claim::new(self.run(py, tx, |s| Ok(s.ledger(&ns).extend(c, lease)?))?))
    }

    #[pyo3(signature = (ns, claim, result, tx))]
    fn ledger_complete(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        claim: PyRef<'_, Claim>,
        result: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<()> {
        let result = result.filter(|r| !r.is_none()).map(convert::to_value).transpose()?;
        let c = claim.inner();
        self.run(py, tx, |s| {
            let l = s.ledger(&ns);
            match &result {
                Some(r) => l.complete_with(c, r)?,
                None => l.complete(c)?,
            }
            Ok(())
        })
    }

    fn ledger_complete_many(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        claims: Vec<PyRef<'_, Claim>>,
        tx: u64,
    ) -> PyResult<Vec<bool>> {
        let claims: Vec<cairn::Claim> = claims.iter().map(|c| c.inner().clone()).collect();
        self.run(py, tx, |s| Ok(s.ledger(&ns).complete_many(&claims)?))
    }

    #[pyo3(signature = (ns, claim, error, max_attempts, retry_delay, tx))]
    #[allow(clippy::too_many_arguments)]
    fn ledger_fail_claim(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        claim: PyRef<'_, Claim>,
        error: PyBackedStr,
        max_attempts: u32,
        retry_delay: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<&'static str> {
        let c = claim.inner();
        let retry_delay = convert::duration(retry_delay, "a retry delay")?;
        self.run(py, tx, |s| {
            Ok(state_name(failing(s.ledger(&ns), max_attempts, retry_delay).fail_claim(c, &error)?))
        })
    }

    /// `(pending, claimed, done, failed)`.
    fn ledger_counts(&self, py: Python<'_>, ns: PyBackedStr, tx: u64) -> PyResult<(u64, u64, u64, u64)> {
        let c = self.run(py, tx, |s| Ok(s.ledger(&ns).counts()?))?;
        Ok((c.pending, c.claimed, c.done, c.failed))
    }

    #[pyo3(signature = (ns, state, after, limit, tx))]
    fn ledger_list(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        state: Option<PyBackedStr>,
        after: Option<PyBackedStr>,
        limit: usize,
        tx: u64,
    ) -> PyResult<Py<PyList>> {
        let state = state.as_deref().map(item_state).transpose()?;
        let items = self.run(py, tx, |s| Ok(s.ledger(&ns).list(state, after.as_deref(), limit)?))?;
        let list = PyList::empty(py);
        for i in items {
            list.append(item_dict(py, i)?)?;
        }
        Ok(list.unbind())
    }

    fn ledger_delete(
        &self,
        py: Python<'_>,
        ns: PyBackedStr,
        id: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<bool> {
        let id = convert::id(id)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).delete(&id)?))
    }

    fn ledger_clear(&self, py: Python<'_>, ns: PyBackedStr, tx: u64) -> PyResult<u64> {
        self.run(py, tx, |s| Ok(s.ledger(&ns).clear()?))
    }

    // ---- checkpoints ------------------------------------------------------------------------

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

    // ---- locks ------------------------------------------------------------------------------

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

    // ---- migrations and users' own SQL ------------------------------------------------------

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

    /// Rows of a reading statement on the user's own tables.
    #[pyo3(signature = (sql, params, tx))]
    fn query(
        &self,
        py: Python<'_>,
        sql: PyBackedStr,
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
        sql: PyBackedStr,
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

    // ---- maintenance ------------------------------------------------------------------------

    fn sweep(&self, py: Python<'_>) -> PyResult<u64> {
        self.run_store(py, |s| Ok(s.sweep()?))
    }

    fn integrity_check(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.run_store(py, |s| Ok(s.integrity_check()?))
    }

    fn flush_stats(&self, py: Python<'_>) -> PyResult<()> {
        self.run_store(py, |s| Ok(s.flush_stats()?))
    }

    fn cache_namespaces(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.run_store(py, |s| Ok(s.cache_namespaces()?))
    }

    fn ledger_namespaces(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.run_store(py, |s| Ok(s.ledger_namespaces()?))
    }

    fn backup(&self, py: Python<'_>, dest: PathBuf) -> PyResult<()> {
        self.run_store(py, |s| Ok(s.backup(&dest)?))
    }

    fn vacuum(&self, py: Python<'_>) -> PyResult<()> {
        self.run_store(py, |s| Ok(s.vacuum()?))
    }
}

fn eviction(l: CacheLimits) -> &'static str {
    match l.eviction {
        Eviction::LeastRecentlyUsed => "lru",
        _ => "lrs",
    }
}

fn item_dict(py: Python<'_>, i: cairn::Item) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &i.id)?;
    d.set_item("state", state_name(i.state))?;
    d.set_item("attempts", i.attempts)?;
    d.set_item("error", &i.error)?;
    d.set_item("worker", &i.worker)?;
    let result = match (i.result, i.result_kind) {
        (Some(bytes), kind) => {
            let v = Value::from_kind(kind.unwrap_or(cairn::ValueKind::Bytes), bytes)
                .map_err(|e| crate::errors::to_py(py, e))?;
            convert::to_py(py, v)?
        }
        (None, _) => py.None(),
    };
    d.set_item("result", result)?;
    let data = match i.data {
        Some(bytes) => {
            let v = Value::from_kind(i.data_kind.unwrap_or(cairn::ValueKind::Bytes), bytes)
                .map_err(|e| crate::errors::to_py(py, e))?;
            convert::to_py(py, v)?
        }
        None => py.None(),
    };
    d.set_item("data", data)?;
    d.set_item("due_millis", i.due_millis)?;
    d.set_item("updated_at_millis", i.updated_at_millis)?;
    Ok(d.unbind())
}

impl Drop for Connection {
    /// In a forked child the store belongs to the parent: dropping it would write through the
    /// parent's SQLite state (statistics, a rollback, a checkpoint). Let go of it instead.
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            if let Some(store) = self.state.get_mut().store.get_mut().take() {
                std::mem::forget(store);
            }
        }
    }
}

//! `Connection`: one `cairn::Store` (one SQLite connection, or one PostgreSQL session) behind
//! a re-entrant mutex, with the store's operations as methods. The Python layer
//! (`cairn.Store`) opens one per thread per process; this type only checks that it is not used
//! from a forked child.
//!
//! This file holds the class, opening and closing, the thread and fork machinery and
//! transactions. Each feature's methods are in a `#[pymethods]` block of their own, in the
//! file of the feature's name (pyo3's `multiple-pymethods`): `conn/cache.rs`,
//! `conn/ledger.rs`, `conn/checkpoint.rs`, `conn/lock.rs`, `conn/limit.rs`, `conn/job.rs`, `conn/migrate.rs`, `conn/sql.rs`
//! and `conn/maintenance.rs`.
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

mod cache;
mod checkpoint;
mod job;
mod ledger;
mod limit;
mod lock;
mod maintenance;
mod migrate;
mod run;
mod sql;
mod transaction;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use cairn::{Cache, Checkpoint, Durability, Ledger, Options, Store, Tx};
use parking_lot::ReentrantMutex;
use pyo3::prelude::*;

use crate::convert;
use crate::errors::{to_py, Failure, ForkedError};
use crate::handles::ManualClock;

pub(crate) use cache::{RawCacheLimits, RawCacheStats};
pub(crate) use job::{RawJobHealth, RawJobInfo, RawJobOutcome, RawJobRun};
pub(crate) use ledger::{RawItem, RawLedgerCounts, RawLedgerPolicy};
pub(crate) use limit::parse_rate;
pub(crate) use lock::RawLockHolder;
pub(crate) use migrate::{migrate_file, migration_status_of_file, RawMigrationReport, RawMigrationStatus};
pub(crate) use run::{HeldRun, RawRunInfo, RawStepInfo};
pub(crate) use transaction::TransactionBase;

/// Calls inside the library and transactions left open, across every connection of the
/// process. A child forked while it is not zero inherits SQLite's process-wide state (its
/// mutexes, the locks it records per file) in the middle of a change by a thread that does not
/// exist in the child: a connection the child opens then waits on a mutex nobody will release,
/// or sees a write lock nobody holds and gets `BusyError` on every try. Counted before the
/// interpreter is released, so a thread is counted before it can touch SQLite: `os.fork` holds
/// the interpreter, and a thread not yet counted cannot reach the library until it is.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// Set in a child forked while [`BUSY`] was not zero: the child opens no connection.
static FORKED_MID_CALL: AtomicBool = AtomicBool::new(false);

/// One count of [`BUSY`], for as long as it lives.
struct Busy;

impl Busy {
    fn enter() -> Self {
        BUSY.fetch_add(1, Ordering::SeqCst);
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Run by the `cairn` package in a forked child (`os.register_at_fork`), before any other
/// code of the child: the calls and transactions counted are those of the parent's threads
/// (the child has none), so the child remembers whether there were any and starts at zero.
#[pyfunction]
pub(crate) fn after_fork_in_child() {
    if BUSY.swap(0, Ordering::SeqCst) != 0 {
        FORKED_MID_CALL.store(true, Ordering::SeqCst);
    }
}

/// The refusal to open a connection in a child forked in the middle of a call.
fn check_not_forked_mid_call() -> PyResult<()> {
    if !FORKED_MID_CALL.load(Ordering::SeqCst) {
        return Ok(());
    }
    Err(ForkedError::new_err(
        "this process was forked while a thread of its parent was inside a cairn call or held a \
         transaction open: the database library's state copied into the child may stay locked for \
         good, so cairn opens no connection here rather than hang or fail with BusyError; fork \
         before starting the threads that use the store (or while none is using it), or start \
         processes with multiprocessing's \"spawn\" or \"forkserver\" method or subprocess",
    ))
}

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
    /// [`FORKS`] when it was opened: while the count is unchanged, this is that process.
    forks: u64,
    path: String,
    journal_mode: String,
    read_only: bool,
    /// Opened with `read_missing_as_empty` where no store was: it reads as an empty one.
    missing: bool,
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

/// Mark transaction `n` (0: none) open on `state`, keeping [`BUSY`] counting open transactions.
fn set_tx(state: &State, n: u64) {
    let was = state.tx.replace(n);
    match (was != 0, n != 0) {
        (false, true) => {
            BUSY.fetch_add(1, Ordering::SeqCst);
        }
        (true, false) => {
            BUSY.fetch_sub(1, Ordering::SeqCst);
        }
        _ => {}
    }
}

/// How many times this process forked a child that went on running Python, counted in the
/// child by the interpreter's at-fork hook ([`count_fork`], registered when the module is
/// imported: `os.fork`, `multiprocessing`, `pty.fork` and any extension that calls
/// `PyOS_AfterFork_Child` run it). A child inherits the parent's count and adds one, so a
/// connection whose recorded count is still the current one is used in the process that
/// opened it: the check before each call is one atomic load. `getpid(2)` there cost 0.3 µs,
/// 6% of a cache hit from Python (docs/BENCHMARKS.md, issue 19).
static FORKS: AtomicU64 = AtomicU64::new(0);

/// The at-fork hook (in the child) behind [`FORKS`].
#[pyfunction]
pub(crate) fn count_fork() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

impl Connection {
    fn check_pid(&self) -> PyResult<()> {
        if FORKS.load(Ordering::Relaxed) == self.forks {
            return Ok(());
        }
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
        let busy = Busy::enter();
        py.detach(move || {
            let _busy = busy;
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
                        set_tx(&state, 0);
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

#[pymethods]
impl Connection {
    /// Open the store at `path`, a file or a `postgres://` URL (or a private in-memory one with
    /// `memory=True`). `schema` is the PostgreSQL schema (ignored for files).
    #[new]
    #[pyo3(signature = (path, *, memory=false, busy_timeout=None, durability="normal".to_string(),
        read_only=false, read_only_if_unwritable=false, read_missing_as_empty=false, fill_timeout=None,
        clock=None, schema=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        memory: bool,
        busy_timeout: Option<&Bound<'_, PyAny>>,
        durability: String,
        read_only: bool,
        read_only_if_unwritable: bool,
        read_missing_as_empty: bool,
        fill_timeout: Option<&Bound<'_, PyAny>>,
        clock: Option<PyRef<'_, ManualClock>>,
        schema: Option<String>,
    ) -> PyResult<Self> {
        let mut options = Options::new()
            .durability(durability.parse::<Durability>().map_err(|e| to_py(py, e))?)
            .read_only(read_only)
            .read_only_if_unwritable(read_only_if_unwritable)
            .read_missing_as_empty(read_missing_as_empty);
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
        check_not_forked_mid_call()?;
        let busy = Busy::enter();
        let store = py
            .detach(move || {
                let _busy = busy;
                match (memory, path) {
                    (true, _) => options.open_in_memory(),
                    (false, Some(p)) => options.open(p),
                    (false, None) => cairn::default_path().and_then(|p| options.open(p)),
                }
            })
            .map_err(|e| to_py(py, e))?;
        Ok(Connection {
            pid: std::process::id(),
            forks: FORKS.load(Ordering::Relaxed),
            path: store.path().to_string_lossy().into_owned(),
            journal_mode: store.journal_mode().to_owned(),
            read_only: store.is_read_only(),
            missing: store.is_missing(),
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

    /// True if no store existed at the path and this reads as an empty one instead.
    #[getter]
    fn missing(&self) -> bool {
        self.missing
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
        let busy = Busy::enter();
        py.detach(move || {
            let _busy = busy;
            let state = self.state.lock();
            let mut slot = state.store.try_borrow_mut().map_err(|_| Failure::InUse)?;
            let store = slot.take();
            if !forked {
                set_tx(&state, 0);
            }
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
        let busy = Busy::enter();
        py.detach(move || {
            let _busy = busy;
            let state = self.state.lock();
            let slot = state.store.try_borrow().map_err(|_| Failure::Closed)?;
            let store = slot.as_ref().ok_or(Failure::Closed)?;
            store.begin_transaction()?;
            let n = state.last_tx.get() + 1;
            state.last_tx.set(n);
            set_tx(&state, n);
            Ok(n)
        })
        .map_err(|e: Failure| e.into_py(py))
    }

    /// COMMIT transaction `tx`. On failure it has been rolled back.
    fn commit(&self, py: Python<'_>, tx: u64) -> PyResult<()> {
        self.check_pid()?;
        let busy = Busy::enter();
        py.detach(move || {
            let _busy = busy;
            let state = self.state.lock();
            let slot = state.store.try_borrow().map_err(|_| Failure::Closed)?;
            let store = slot.as_ref().ok_or(Failure::Closed)?;
            if state.tx.get() != tx || tx == 0 {
                return Err(Failure::Ended);
            }
            set_tx(&state, 0);
            store.commit_transaction()?;
            Ok(())
        })
        .map_err(|e: Failure| e.into_py(py))
    }

    /// ROLLBACK transaction `tx`, if it is still open.
    fn rollback(&self, py: Python<'_>, tx: u64) -> PyResult<()> {
        self.check_pid()?;
        let busy = Busy::enter();
        py.detach(move || {
            let _busy = busy;
            let state = self.state.lock();
            if state.tx.get() != tx || tx == 0 {
                return;
            }
            set_tx(&state, 0);
            if let Ok(slot) = state.store.try_borrow() {
                if let Some(store) = slot.as_ref() {
                    store.rollback_transaction();
                }
            };
        });
        Ok(())
    }
}

impl Drop for Connection {
    /// In a forked child the store belongs to the parent: dropping it would write through the
    /// parent's SQLite state (statistics, a rollback, a checkpoint). Let go of it instead.
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            if let Some(store) = self.state.get_mut().store.get_mut().take() {
                std::mem::forget(store);
            }
        } else {
            // Dropping the store rolls its transaction back.
            set_tx(self.state.get_mut(), 0);
        }
    }
}

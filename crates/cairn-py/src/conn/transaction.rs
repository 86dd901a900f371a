//! `TransactionBase`: the `with` protocol of `cairn.Transaction` (a Python subclass adds the
//! handles). It is here, not in Python, because a Python `__enter__` or `__exit__` can be cut
//! short by Ctrl-C: the interpreter raises `KeyboardInterrupt` between any two of its
//! bytecodes, so a `__enter__` interrupted just after `BEGIN` returned (while it waited for the
//! write lock, say) leaves a transaction open that no `with` block will end, and an `__exit__`
//! interrupted on its first line never rolls back. A method of an extension class runs no
//! bytecode: the interrupt is raised after it returns, inside the `with` block (whose exit then
//! rolls back) or after the block has ended.

use parking_lot::Mutex;
use pyo3::exceptions::PyAttributeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::Connection;
use crate::errors::invalid;

/// The connection the transaction began on (kept after it ends, so that its handles say it
/// has ended), and the number `begin` gave it while it is open (0 before and after).
struct Open {
    conn: Option<Py<Connection>>,
    n: u64,
}

/// A transaction for a `with` block, over a `cairn.Store`. Subclassed by `cairn.Transaction`.
#[pyclass(subclass, frozen, module = "cairn._cairn")]
pub(crate) struct TransactionBase {
    store: Py<PyAny>,
    open: Mutex<Open>,
    used: Mutex<bool>,
}

#[pymethods]
impl TransactionBase {
    #[new]
    fn new(store: Py<PyAny>) -> Self {
        TransactionBase { store, open: Mutex::new(Open { conn: None, n: 0 }), used: Mutex::new(false) }
    }

    /// The store.
    #[getter]
    fn _store(&self, py: Python<'_>) -> Py<PyAny> {
        self.store.clone_ref(py)
    }

    /// The transaction's number while it is open, else 0.
    #[getter]
    fn _n(&self) -> u64 {
        self.open.lock().n
    }

    /// The connection once the transaction has begun, else None.
    #[getter]
    fn _c(&self, py: Python<'_>) -> Option<Py<Connection>> {
        self.open.lock().conn.as_ref().map(|c| c.clone_ref(py))
    }

    /// The connection once the transaction has begun (the handles' fast path); an
    /// `AttributeError` before, which sends them to the slow path and its message.
    #[getter]
    fn conn(&self, py: Python<'_>) -> PyResult<Py<Connection>> {
        self.open
            .lock()
            .conn
            .as_ref()
            .map(|c| c.clone_ref(py))
            .ok_or_else(|| PyAttributeError::new_err("conn"))
    }

    /// `BEGIN IMMEDIATE` on this thread's connection (waiting up to the busy timeout for the
    /// write lock).
    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        let py = slf.py();
        let me = slf.get();
        {
            let mut used = me.used.lock();
            if *used {
                return Err(invalid("a Transaction object is used once; call store.transaction() again"));
            }
            *used = true;
        }
        let store = me.store.bind(py);
        // Python code: an interrupt here comes before anything is begun.
        let conn = store.call_method0(intern!(py, "_conn"))?;
        let conn = conn.cast_into::<Connection>()?;
        let local = store.getattr(intern!(py, "_local"))?;
        let n = conn.get().begin(py)?;
        // From here on no bytecode runs until the `with` block has begun.
        *me.open.lock() = Open { conn: Some(conn.clone().unbind()), n };
        if let Err(e) = local.setattr(intern!(py, "tx"), slf) {
            me.open.lock().n = 0;
            conn.get().rollback(py, n)?;
            return Err(e);
        }
        Ok(slf.clone().unbind())
    }

    /// `COMMIT` after a normal exit (a failed commit has rolled back, and raises); `ROLLBACK`
    /// after an exception, which propagates.
    fn __exit__(
        slf: &Bound<'_, Self>,
        exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let py = slf.py();
        let me = slf.get();
        let (conn, n) = {
            let mut open = me.open.lock();
            (open.conn.as_ref().map(|c| c.clone_ref(py)), std::mem::take(&mut open.n))
        };
        // Ended first: whatever fails below, the connection holds nothing.
        let ended = match conn {
            Some(conn) if n != 0 && exc_type.is_none() => conn.get().commit(py, n),
            Some(conn) if n != 0 => conn.get().rollback(py, n),
            _ => Ok(()),
        };
        let local = me.store.bind(py).getattr(intern!(py, "_local"))?;
        let tx = intern!(py, "tx");
        if local.getattr(tx).is_ok_and(|t| t.is(slf)) {
            local.setattr(tx, py.None())?;
        }
        ended?;
        Ok(false)
    }
}

//! cairn's errors as Python exceptions. The classes are defined in `cairn/errors.py` (with
//! their docstrings and builtin bases, and picklable) and raised from here by `ErrorKind`, with
//! the library's message text, its Rust names given as Python's (`PYTHON_NAMES`).

use cairn::ErrorKind;
use pyo3::import_exception;
use pyo3::prelude::*;

import_exception!(cairn.errors, BusyError);
import_exception!(cairn.errors, NotADatabaseError);
import_exception!(cairn.errors, CorruptError);
import_exception!(cairn.errors, ForeignDatabaseError);
import_exception!(cairn.errors, SchemaTooNewError);
import_exception!(cairn.errors, SchemaTooOldError);
import_exception!(cairn.errors, ReadOnlyError);
import_exception!(cairn.errors, DiskFullError);
import_exception!(cairn.errors, FileSystemError);
import_exception!(cairn.errors, WalUnavailableError);
import_exception!(cairn.errors, InvalidInputError);
import_exception!(cairn.errors, SQLError);
import_exception!(cairn.errors, DecodeError);
import_exception!(cairn.errors, MigrationError);
import_exception!(cairn.errors, LeaseLostError);
import_exception!(cairn.errors, RunHeldError);
import_exception!(cairn.errors, StepChangedError);
import_exception!(cairn.errors, UnavailableError);
import_exception!(cairn.errors, InternalError);
import_exception!(cairn.errors, ClosedError);
import_exception!(cairn.errors, ForkedError);

/// Why a call failed, carried out of a `detach`ed closure and turned into a Python exception
/// once the interpreter is attached again.
pub(crate) enum Failure {
    /// The library refused or failed.
    Cairn(cairn::Error),
    /// A Python exception: from a callback (a `get_or_set` compute), passed on unchanged.
    Py(PyErr),
    /// The connection was closed.
    Closed,
    /// `close()` called from inside a callback that is using the connection.
    InUse,
    /// A transaction handle used after its `with` block.
    Ended,
}

impl From<cairn::Error> for Failure {
    fn from(e: cairn::Error) -> Self {
        Failure::Cairn(e)
    }
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Self {
        Failure::Py(e)
    }
}

impl Failure {
    pub(crate) fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Cairn(e) => to_py(py, e),
            Failure::Py(e) => e,
            Failure::Closed => ClosedError::new_err("the store is closed; open a new cairn.Store to use the file again"),
            Failure::InUse => InvalidInputError::new_err(
                "invalid input: the store cannot be closed from inside one of its own callbacks (a get_or_set compute or a memoized function)",
            ),
            Failure::Ended => InvalidInputError::new_err(
                "invalid input: this transaction has ended (committed or rolled back); the handles of `tx` work only inside its `with` block",
            ),
        }
    }
}

/// The exception for `e`: the class of its kind, the library's message, `errno` where the
/// operating system gave one, `maybe_committed` on an `UnavailableError` whose commit may have
/// happened, and the failed step's own error as `__cause__` of a `MigrationError`.
pub(crate) fn to_py(py: Python<'_>, e: cairn::Error) -> PyErr {
    let msg = pythonic(e.to_string());
    let err = match e.kind() {
        _ if matches!(e, cairn::Error::Sql { .. }) => SQLError::new_err(msg),
        ErrorKind::Busy => BusyError::new_err(msg),
        ErrorKind::NotADatabase => NotADatabaseError::new_err(msg),
        ErrorKind::Corrupt => CorruptError::new_err(msg),
        ErrorKind::ForeignDatabase => ForeignDatabaseError::new_err(msg),
        ErrorKind::SchemaTooNew => SchemaTooNewError::new_err(msg),
        ErrorKind::SchemaTooOld => SchemaTooOldError::new_err(msg),
        ErrorKind::ReadOnly => ReadOnlyError::new_err(msg),
        ErrorKind::DiskFull => DiskFullError::new_err(msg),
        ErrorKind::Io => FileSystemError::new_err(msg),
        ErrorKind::WalUnavailable => WalUnavailableError::new_err(msg),
        ErrorKind::InvalidInput => InvalidInputError::new_err(msg),
        ErrorKind::Decode => DecodeError::new_err(msg),
        ErrorKind::Migration => MigrationError::new_err(msg),
        ErrorKind::LeaseLost => LeaseLostError::new_err(msg),
        ErrorKind::RunHeld => RunHeldError::new_err(msg),
        ErrorKind::StepChanged => StepChangedError::new_err(msg),
        ErrorKind::Unavailable => UnavailableError::new_err(msg),
        // Internal, and kinds added to the library later (`ErrorKind` is non_exhaustive).
        _ => InternalError::new_err(msg),
    };
    let errno = match &e {
        cairn::Error::DiskFull { .. } => Some(28), // ENOSPC
        cairn::Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    };
    if let Some(n) = errno {
        // Best effort: the message already says it all.
        let _ = err.value(py).setattr("errno", n);
    }
    if let cairn::Error::Unavailable { maybe_committed: true, .. } = &e {
        // Best effort, as errno: the message says it too.
        let _ = err.value(py).setattr("maybe_committed", true);
    }
    if let cairn::Error::Migration { source, .. } = e {
        err.set_cause(py, Some(to_py(py, *source)));
    }
    err
}

/// The library's names in its messages, as a Python user calls the same thing.
const PYTHON_NAMES: &[(&str, &str)] = &[
    (
        "the Tx handle (tx.cache(..), tx.ledger(..), tx.checkpoint(..))",
        "the transaction's handles (tx.cache(...), tx.ledger(...), tx.checkpoint(...), tx.execute(...))",
    ),
    ("Tx::execute", "tx.execute"),
    ("Store::execute", "store.execute"),
    ("Store::transaction", "`with store.transaction() as tx:`"),
    ("Options::schema", "cairn.Store(..., schema=NAME)"),
    ("Store::migrate", "store.migrate(scope, steps)"),
];

/// `msg` with the library's names replaced by Python's.
fn pythonic(mut msg: String) -> String {
    for (rust, python) in PYTHON_NAMES {
        if msg.contains(rust) {
            msg = msg.replace(rust, python);
        }
    }
    msg
}

/// `InvalidInputError` with the library's prefix, for refusals made here.
pub(crate) fn invalid(msg: impl std::fmt::Display) -> PyErr {
    InvalidInputError::new_err(format!("invalid input: {msg}"))
}

/// For `map_err` on library calls made while attached.
pub(crate) fn py_err(e: cairn::Error) -> PyErr {
    Python::attach(|py| to_py(py, e))
}

//! `cairn._cairn`: the extension module under the `cairn` Python package. It moves values in
//! and out of the library (`cairn-state`) and maps its errors; the Pythonic API, the codecs'
//! JSON side and the exception classes live in `python/cairn/`.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod conn;
mod convert;
mod errors;
mod handles;

use pyo3::prelude::*;

#[pymodule]
fn _cairn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<conn::Connection>()?;
    m.add_class::<conn::TransactionBase>()?;
    m.add_class::<handles::Claim>()?;
    m.add_class::<handles::HeldLock>()?;
    m.add_class::<handles::FillClaim>()?;
    m.add_class::<handles::KeepAlive>()?;
    m.add_class::<handles::ManualClock>()?;
    m.add_class::<conn::RawCacheLimits>()?;
    m.add_class::<conn::RawCacheStats>()?;
    m.add_class::<conn::RawItem>()?;
    m.add_class::<conn::RawLedgerCounts>()?;
    m.add_class::<conn::RawLedgerPolicy>()?;
    m.add_class::<conn::RawLockHolder>()?;
    m.add_class::<conn::RawJobRun>()?;
    m.add_class::<conn::RawJobInfo>()?;
    m.add_class::<conn::RawJobHealth>()?;
    m.add_class::<conn::RawJobOutcome>()?;
    m.add_class::<conn::RawMigrationReport>()?;
    m.add_class::<conn::RawMigrationStatus>()?;
    m.add_class::<conn::HeldRun>()?;
    m.add_class::<conn::RawRunInfo>()?;
    m.add_class::<conn::RawStepInfo>()?;
    m.add_function(wrap_pyfunction!(conn::after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(conn::migrate_file, m)?)?;
    m.add_function(wrap_pyfunction!(conn::migration_status_of_file, m)?)?;
    m.add_function(wrap_pyfunction!(handles::parse_duration, m)?)?;
    m.add_function(wrap_pyfunction!(conn::parse_rate, m)?)?;
    m.add_function(wrap_pyfunction!(handles::duration_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(handles::default_path, m)?)?;
    // Connections tell a forked child from the process that opened them by this count (where
    // there is no fork, there is no hook and nothing to tell).
    if let Ok(register) = m.py().import("os")?.getattr("register_at_fork") {
        let hook = pyo3::types::PyDict::new(m.py());
        hook.set_item("after_in_child", wrap_pyfunction!(conn::count_fork, m)?)?;
        register.call((), Some(&hook))?;
    }
    m.add("SQLITE_VERSION", rusqlite::version())?;
    m.add("DEFAULT_RETRY_DELAY", cairn::DEFAULT_RETRY_DELAY.as_secs_f64())?;
    m.add("DEFAULT_MAX_ATTEMPTS", cairn::DEFAULT_MAX_ATTEMPTS)?;
    m.add("DEFAULT_LEASE", cairn::DEFAULT_LEASE.as_secs_f64())?;
    m.add("MAX_BURST", cairn::MAX_BURST)?;
    m.add("DEFAULT_KEEP", cairn::DEFAULT_KEEP)?;
    m.add("DEFAULT_MAX_CATCH_UP", cairn::DEFAULT_MAX_CATCH_UP)?;
    Ok(())
}

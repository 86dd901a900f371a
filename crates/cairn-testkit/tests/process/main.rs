//! Tests with real processes: SIGKILL at random points, several writers on one file, and
//! compute-once across processes. The children are `cairn-child` workloads.

mod crash;
mod dead_holder;
mod faults;
mod fork;
mod ledger;
mod limit;
mod migrate;
mod overlap;
mod perms;
mod postgres;
mod stampede;
mod testkit;

use std::path::Path;

use cairn_testkit::ExclusiveGuard;

/// The `cairn-child` binary built for these tests.
pub fn child() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cairn-child"))
}

/// Wait for the machine: hold this for the whole of a test that loads every core (see
/// [`cairn_testkit::exclusive`]), so that two such tests never run side by side.
pub fn heavy() -> ExclusiveGuard {
    cairn_testkit::exclusive(cairn_testkit::HEAVY).expect("take the lock of the heavy tests")
}

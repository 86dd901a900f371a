//! Tests with real processes: SIGKILL at random points, several writers on one file, and
//! compute-once across processes. The children are `cairn-child` workloads.

mod crash;
mod faults;
mod ledger;
mod migrate;
mod overlap;
mod perms;
mod stampede;
mod testkit;

use std::path::Path;

/// The `cairn-child` binary built for these tests.
pub fn child() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cairn-child"))
}

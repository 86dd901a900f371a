//! In-process integration tests of the cairn library, one module per feature. Tests that need
//! several real processes or SIGKILL live in the cairn-testkit crate.

mod batch;
mod cache;
mod contract;
mod controls;
mod engines;
mod group_model;
mod jobs;
mod ledger;
mod ledger_model;
mod limits;
mod locks;
mod maintenance;
mod memo;
mod metrics;
mod migrate;
mod model;
mod paging;
mod postgres;
mod queue_order;
mod refusals;
mod runs;
mod sql;
mod store;
mod times;
mod wait;

use cairn::{ManualClock, Options, Store};
use std::path::PathBuf;

/// A store in a fresh temporary directory, with a manual clock at a fixed time.
pub fn temp_store() -> (tempfile::TempDir, PathBuf, Store, ManualClock) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let clock = ManualClock::new(1_700_000_000_000);
    let store = Options::new().clock(clock.clone()).open(&path).expect("open");
    (dir, path, store, clock)
}

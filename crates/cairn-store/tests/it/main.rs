//! In-process integration tests of the cairn library, one module per feature. Tests that need
//! several real processes or SIGKILL live in the cairn-testkit crate.

mod cache;
mod ledger;
mod ledger_model;
mod migrate;
mod model;
mod store;

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

/// Say that a test skipped (part of) its work for want of `what`; under CI (`CI` set), whose
/// machine is root with mount(8) and a C compiler, fail instead: there a skip would pass a
/// promise that nothing checked.
pub fn skip_unless_ci(what: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("this test needs {what}, and CI must run it: .ci/run has to provide it");
    }
    eprintln!("skipped: this test needs {what}");
}

//! In-process integration tests of the cairn library, one module per feature. Tests that need
//! several real processes or SIGKILL live in the cairn-testkit crate.

mod batch;
mod cache;
mod contract;
mod engines;
mod ledger;
mod ledger_model;
mod locks;
mod maintenance;
mod memo;
mod migrate;
mod model;
mod paging;
mod postgres;
mod refusals;
mod sql;
mod store;
mod times;

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

/// Say that a test skipped (part of) its work for want of `what`, and add a line naming the
/// test to the file `$CAIRN_SKIP_LOG` if set (`.ci/run` and `scripts/test` list them at the
/// end). Under `CAIRN_NO_SKIP` (see [`must_not_skip`]; `.ci/run` sets it, its machine being
/// root with mount(8) and a C compiler) fail instead: there a skip would pass a promise that
/// nothing checked. The same as `cairn_testkit::skip_unless_ci`, which this crate cannot use.
pub fn skip_unless_ci(what: &str) {
    if must_not_skip(std::env::var_os("CAIRN_NO_SKIP").as_deref()) {
        panic!("this test needs {what}, and CAIRN_NO_SKIP forbids a skip: provide it or set CAIRN_NO_SKIP=0");
    }
    let line = format!("{}: needs {what}", std::thread::current().name().unwrap_or("a test"));
    eprintln!("skipped: {line}");
    if let Some(log) = std::env::var_os("CAIRN_SKIP_LOG").filter(|l| !l.is_empty()) {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
            .unwrap_or_else(|e| panic!("cannot record the skip in CAIRN_SKIP_LOG={log:?}: {e}"));
    }
}

/// Whether `CAIRN_NO_SKIP` set to `value` makes a test that cannot run fail instead of
/// skipping: set, non-empty and not `0`.
fn must_not_skip(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn cairn_no_skip_forbids_skipping_when_set_non_empty_and_not_0() {
    assert!(!must_not_skip(None));
    assert!(!must_not_skip(Some("".as_ref())));
    assert!(!must_not_skip(Some("0".as_ref())));
    assert!(must_not_skip(Some("1".as_ref())));
    assert!(must_not_skip(Some("yes".as_ref())));
}

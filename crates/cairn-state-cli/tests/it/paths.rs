//! `--db` is a path, whatever characters it holds: SQLite would read `file:...` as a URI
//! (`?mode=memory` sends every write to a private in-memory database that vanishes when the
//! command exits, and the file it does create skips cairn's 0600 and ownership checks) and
//! `:memory:` as no file at all.

use std::os::unix::fs::PermissionsExt;

use crate::{assert_one_line_error, Env};

/// Writes through a `--db` value, then reads them back from a second process: only a real
/// file could hold them.
fn assert_persists_as_a_private_file(env: &Env, db: &str) {
    env.ok(&["--db", db, "cache", "set", "k", "kept"], 0);
    env.ok(&["--db", db, "ledger", "mark", "job-1"], 0);
    assert_eq!(env.ok(&["--db", db, "cache", "get", "k"], 0), "kept", "{db}");
    env.ok(&["--db", db, "ledger", "has", "job-1"], 0);
    let file = env.path(db);
    let mode =
        std::fs::metadata(&file).unwrap_or_else(|e| panic!("{db} was not created: {e}")).permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{db}");
    // And nothing else was created under another name.
    let mut names: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.retain(|n| !n.starts_with(db));
    assert_eq!(names, Vec::<String>::new(), "{db}");
}

#[test]
fn a_db_value_that_looks_like_a_sqlite_uri_names_a_file_and_keeps_every_write() {
    for db in ["file:state.db?mode=memory", "file:state.db?mode=memory&cache=shared", "file:x.db#frag%20"] {
        let env = Env::new();
        assert_persists_as_a_private_file(&env, db);
    }
}

#[test]
fn a_db_value_of_colon_memory_is_a_file_too() {
    let env = Env::new();
    assert_persists_as_a_private_file(&env, ":memory:");
}

#[test]
fn migrate_and_backup_take_uri_looking_names_as_files() {
    let env = Env::new();
    let dir = env.path("m");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("001_t.sql"), "CREATE TABLE t (x INTEGER);").unwrap();
    env.ok(&["--db", "file:app.db?mode=memory", "migrate", dir.to_str().unwrap()], 0);
    // Applied to the file: a second run has nothing left to do.
    assert_eq!(
        env.ok(&["--db", "file:app.db?mode=memory", "migrate", "--dry-run", dir.to_str().unwrap()], 0),
        ""
    );
    env.ok(&["cache", "set", "k", "v"], 0);
    env.ok(&["backup", "file:copy.db?mode=memory"], 0);
    assert_eq!(env.ok(&["--db", "file:copy.db?mode=memory", "cache", "get", "k"], 0), "v");
}

/// Settings that would switch a guarantee off are usage errors (exit 2) with the valid range,
/// and change nothing.
#[test]
fn zero_leases_and_ttls_and_an_oversized_busy_timeout_exit_2_saying_the_range() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "a"], 0);
    for (args, says) in [
        (&["lock", "x", "--ttl", "0s", "--", "true"][..], "a lock TTL of 0s gives no mutual exclusion"),
        (&["ledger", "claim", "a", "--worker", "w", "--lease", "0s"], "a claim lease of 0s"),
        (&["ledger", "next", "--worker", "w", "--lease", "0ms"], "give at least 1ms"),
        (&["--busy-timeout", "25h", "cache", "get", "k"], "a busy timeout is at most 24h"),
        (&["memo", "--ttl", "0s", "--", "true"], "give at least 1ms"),
    ] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
        crate::assert_one_line_error(&err);
    }
    assert_eq!(env.ok(&["ledger", "count", "--state", "pending"], 0), "1\n", "nothing was claimed");
}

/// `--db /dev/null` (a reading or a writing command) is refused as a character device, exit 3,
/// and leaves nothing beside it: it was a disk I/O error and a `/dev/null-journal` of mode
/// 0666.
#[test]
fn a_device_as_db_is_refused_by_name_and_leaves_no_journal() {
    let env = Env::new();
    let journal = std::path::Path::new("/dev/null-journal");
    let there_before = journal.exists();
    for args in [&["cache", "get", "k"][..], &["cache", "set", "k", "v"], &["ledger", "mark", "x"]] {
        let (code, out, err) = env.run(&[&["--db", "/dev/null"][..], args].concat());
        assert_eq!((code, out.as_slice()), (3, &b""[..]), "{args:?}: {err}");
        assert_one_line_error(&err);
        assert!(err.contains("/dev/null") && err.contains("a character device"), "{err}");
    }
    assert_eq!(journal.exists(), there_before, "a journal was left beside /dev/null");
}

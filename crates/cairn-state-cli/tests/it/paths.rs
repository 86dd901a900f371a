//! `--db` and `$CAIRN_DB` are a file's path or a `postgres://` URL. A leading `~` is the home
//! directory (cron and systemd pass it on unexpanded). A name that looks like another URL
//! (`sqlite:///x.db`, `file:x.db?mode=memory`) is refused before anything is created: taken as a
//! path it made directories named `sqlite:` and `file:`, and SQLite itself would read `file:...`
//! as a URI (`?mode=memory` sends every write to a private in-memory database). `./file:x.db`
//! names a file of that name, and `:memory:` is a file too, never SQLite's in-memory database.

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
    names.retain(|n| !n.starts_with(db.trim_start_matches("./")));
    assert_eq!(names, Vec::<String>::new(), "{db}");
}

#[test]
fn a_sqlite_uri_after_dot_slash_names_a_file_and_keeps_every_write() {
    for db in
        ["./file:state.db?mode=memory", "./file:state.db?mode=memory&cache=shared", "./file:x.db#frag%20"]
    {
        let env = Env::new();
        assert_persists_as_a_private_file(&env, db);
    }
}

/// Each refusal is a usage error (exit 2) naming the path to give, whichever command and
/// whichever way the name came; nothing is created, not even by a reading command.
#[test]
fn a_db_value_that_looks_like_a_url_is_refused_naming_the_path_to_give_and_creates_nothing() {
    let env = Env::new();
    let steps = env.path("m");
    std::fs::create_dir(&steps).unwrap();
    std::fs::write(steps.join("001_t.sql"), "CREATE TABLE t (x INTEGER);").unwrap();
    for (db, says) in [
        ("sqlite:///x.db", "give its path, x.db"),
        ("sqlite:////tmp/cairn-never/x.db", "give its path, /tmp/cairn-never/x.db"),
        ("file:///tmp/cairn-never/x.db", "give its path, /tmp/cairn-never/x.db"),
        ("file:state.db?mode=memory", "give its path, state.db (or ./file:state.db?mode=memory"),
        ("mysql://u@h/db", "a file's path or a postgres:// URL"),
    ] {
        for args in [
            &["cache", "set", "k", "v"][..],
            &["ledger", "filter"],
            &["cache", "get", "k"],
            &["migrate", "--dry-run", "m"],
            &["migrate", "m"],
        ] {
            for via_env in [false, true] {
                let mut c = env.cairn();
                if via_env {
                    c.env("CAIRN_DB", db);
                } else {
                    c.args(["--db", db]);
                }
                let out = c.args(args).write_stdin("a\nb\n").output().unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{db} {args:?}: {err}");
                assert!(out.stdout.is_empty(), "{db} {args:?}");
                assert!(err.contains(says), "{db} {args:?}: {err}");
                crate::assert_one_line_error(&err);
            }
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["m"]);
    assert!(!std::path::Path::new("/tmp/cairn-never").exists());
}

/// A `~` that no shell expanded (`--db=~/x.db`, a quoted word, a crontab's or a systemd unit's
/// CAIRN_DB) is the home directory, not a directory named `~` in the working directory.
#[test]
fn a_leading_tilde_in_db_or_cairn_db_is_the_home_directory() {
    let env = Env::new();
    let home = env.path("home");
    std::fs::create_dir(&home).unwrap();
    let cairn = |db: &str, args: &[&str]| {
        let out = env.cairn().env("HOME", &home).env("CAIRN_DB", db).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{db} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    cairn("~/cron.db", &["cache", "set", "k", "from cron"]);
    cairn("unused.db", &["--db=~/sub/flag.db", "ledger", "mark", "a"]);
    assert_eq!(cairn("~/cron.db", &["cache", "get", "k"]), "from cron");
    cairn("~/sub/flag.db", &["ledger", "has", "a"]);
    assert!(home.join("cron.db").is_file() && home.join("sub/flag.db").is_file());
    assert!(!env.path("~").exists(), "a directory named ~ was created");
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
    env.ok(&["--db", "./file:app.db?mode=memory", "migrate", dir.to_str().unwrap()], 0);
    // Applied to the file: a second run has nothing left to do.
    assert_eq!(
        env.ok(&["--db", "./file:app.db?mode=memory", "migrate", "--dry-run", dir.to_str().unwrap()], 0),
        ""
    );
    assert!(env.path("file:app.db?mode=memory").is_file());
    env.ok(&["cache", "set", "k", "v"], 0);
    env.ok(&["backup", "file:copy.db?mode=memory"], 0);
    assert_eq!(env.ok(&["--db", "./file:copy.db?mode=memory", "cache", "get", "k"], 0), "v");
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

/// The reading commands and what an empty store answers: (arguments, stdin, exit code, stdout).
const READS_OF_AN_EMPTY_STORE: &[(&[&str], &str, i32, &str)] = &[
    (&["ledger", "filter"], "a\nb\n", 0, "a\nb\n"),
    (&["ledger", "has", "a"], "", 1, ""),
    (&["ledger", "count"], "", 0, "pending\t0\nclaimed\t0\ndone\t0\nfailed\t0\ncancelled\t0\n"),
    (&["--json", "ledger", "count", "--state", "done"], "", 0, "0\n"),
    (&["ledger", "list"], "", 0, ""),
    (&["cache", "get", "k"], "", 1, ""),
    (&["cache", "list"], "", 0, ""),
    (&["checkpoint", "get", "job"], "", 1, ""),
    (&["stats"], "", 0, ""),
    (&["migrate", "--dry-run", "--scope", "app", "m"], "", 0, "m/001_t.sql\n"),
    (&["doctor"], "", 1, ""),
];

/// Runs every reading command on a store that does not exist at `db`: each answers as an empty
/// store would and says, as its one line on stderr, that there is no store there yet.
fn assert_reads_as_empty(env: &Env, db: &std::path::Path, cairn: impl Fn() -> assert_cmd::Command) {
    std::fs::create_dir_all(env.path("m")).unwrap();
    std::fs::write(env.path("m/001_t.sql"), "CREATE TABLE t (x INTEGER);").unwrap();
    for (args, stdin, code, stdout) in READS_OF_AN_EMPTY_STORE {
        let out = cairn().args(*args).write_stdin(*stdin).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), *stdout, "{args:?}");
        assert_eq!(
            err,
            format!("cairn: no store at {} yet; the first write creates it\n", db.display()),
            "{args:?}"
        );
    }
}

/// A mistyped --db must not look like a fresh start that silently creates a store: reading
/// commands answer as an empty store would (so the first run of the README's filter-and-mark
/// loop still does every id), say on stderr that there is no store there yet, and create
/// nothing, neither the file nor its directories. The first write creates both.
#[test]
fn reading_commands_on_a_missing_store_answer_as_an_empty_one_say_so_and_create_nothing() {
    let env = Env::new();
    let db = env.path("typo/stat.db");
    let db_arg = db.to_str().unwrap().to_owned();
    assert_reads_as_empty(&env, &db, || {
        let mut c = env.cairn();
        c.args(["--db", &db_arg]);
        c
    });
    assert!(!env.path("typo").exists(), "a reading command created the directory");

    // The README's loop, first run: every id is worked on, then marked, which creates the store.
    let (code, ids, _) = env.run_stdin(&["--db", &db_arg, "ledger", "filter"], b"a\nb\n");
    assert_eq!((code, ids.as_slice()), (0, &b"a\nb\n"[..]));
    for id in String::from_utf8(ids).unwrap().lines() {
        env.ok(&["--db", &db_arg, "ledger", "mark", id], 0);
    }
    assert!(db.is_file());
    let (code, out, err) = env.run_stdin(&["--db", &db_arg, "ledger", "filter"], b"a\nb\nc\n");
    assert_eq!((code, String::from_utf8_lossy(&out).as_ref(), err.as_str()), (0, "c\n", ""));
}

/// The same on the default path (no --db, no $CAIRN_DB): before any write, a reading command
/// creates neither ~/.local/state/cairn nor the file.
#[test]
fn reading_commands_on_the_default_path_before_any_write_create_nothing() {
    let env = Env::new();
    let home = env.path("home");
    std::fs::create_dir(&home).unwrap();
    let db = home.join(".local/state/cairn/state.db");
    let cairn = || {
        let mut c = env.cairn();
        c.env_remove("CAIRN_DB").env("HOME", &home);
        c
    };
    assert_reads_as_empty(&env, &db, cairn);
    assert!(!home.join(".local").exists(), "a reading command created the default directories");
    let out = cairn().args(["cache", "set", "k", "v"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.is_file());
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

/// `backup` and `vacuum` of a mistyped --db made an empty store (and its directories) only to
/// copy or compact it, and exited 0: a backup job would have saved nothing, silently. Both are
/// refused (exit 3, naming the path), and neither creates the store, its directory or the copy.
#[test]
fn backup_and_vacuum_of_a_missing_store_are_refused_and_create_nothing() {
    let env = Env::new();
    let db = env.path("typo/stat.db");
    let db_arg = db.to_str().unwrap().to_owned();
    let copy = env.path("copy.db");
    for (args, what) in [(vec!["backup", copy.to_str().unwrap()], "back up"), (vec!["vacuum"], "vacuum")] {
        let mut all = vec!["--db", db_arg.as_str()];
        all.extend(args.iter().copied());
        let (code, out, err) = env.run(&all);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert_eq!(
            err,
            format!("cairn: no store at {}: nothing to {what}; check --db and $CAIRN_DB\n", db.display())
        );
    }
    assert!(!env.path("typo").exists(), "a refused command created the directory");
    assert!(!copy.exists(), "backup wrote a copy of nothing");
    // Once the store exists, both work.
    env.ok(&["--db", &db_arg, "cache", "set", "k", "v"], 0);
    env.ok(&["--db", &db_arg, "backup", copy.to_str().unwrap()], 0);
    env.ok(&["--db", &db_arg, "vacuum"], 0);
    assert!(copy.is_file());
}

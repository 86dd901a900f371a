//! `cairn cache`, and the errors every command shares.

use crate::{assert_one_line_error, read, wait_until, Env};

#[test]
fn get_prints_the_exact_bytes_and_exits_1_on_a_miss() {
    let env = Env::new();
    env.ok(&["cache", "set", "k", "hello world"], 0);
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "hello world"); // no newline added
    let (code, out, err) = env.run(&["cache", "get", "other"]);
    assert_eq!((code, out.len(), err.as_str()), (1, 0, ""));
    // Namespaces are separate.
    env.ok(&["-n", "other", "cache", "get", "k"], 1);
}

#[test]
fn set_reads_stdin_binary_safe_when_no_value_is_given() {
    let env = Env::new();
    let bytes = b"a\0b\xff\xfe\ntrailing\n".to_vec();
    let (code, _, err) = env.run_stdin(&["cache", "set", "bin"], &bytes);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = env.run(&["cache", "get", "bin"]);
    assert_eq!((code, out), (0, bytes));
}

#[test]
fn a_non_utf8_argument_value_is_stored_as_given() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let value = std::ffi::OsStr::from_bytes(b"caf\xe9");
    env.cairn().args(["cache", "set", "k"]).arg(value).assert().code(0);
    let out = env.cairn().args(["cache", "get", "k"]).output().unwrap();
    assert_eq!(out.stdout, b"caf\xe9");
}

#[test]
fn an_expired_entry_is_a_miss_and_sweep_counts_what_it_removes() {
    let env = Env::new();
    let input = b"{\"op\":\"set\",\"key\":\"a\",\"value\":\"1\",\"ttl\":\"500ms\"}\n{\"op\":\"set\",\"key\":\"b\",\"value\":\"1\",\"ttl\":\"500ms\"}\n";
    env.ok(&["cache", "set", "keep", "v", "--ttl", "1h"], 0);
    // Any write sweeps a few expired entries on the side (the batch's own transaction too, so
    // the ttl outlives it), and nothing else runs before `sweep`.
    assert_eq!(env.run_stdin(&["batch"], input).0, 0);
    // Watched go with `list`, which only reads: a `get` would write its miss count, and
    // that write would sweep them before `sweep` could count them.
    let keys = || env.ok(&["cache", "list"], 0);
    wait_until("the 500 ms entries expired", || keys() == "keep\n");
    assert_eq!(env.ok(&["cache", "sweep"], 0), "2\n");
    assert_eq!(env.ok(&["cache", "sweep"], 0), "0\n");
    env.ok(&["cache", "set", "c", "v", "--ttl", "1ms"], 0);
    wait_until("the 1 ms entry expired", || keys() == "keep\n");
    let (code, out, _) = env.run(&["cache", "get", "c"]);
    assert_eq!((code, out.len()), (1, 0));
    assert_eq!(env.ok(&["cache", "get", "keep"], 0), "v");
}

#[test]
fn add_del_touch_answer_yes_with_0_and_no_with_1() {
    let env = Env::new();
    env.ok(&["cache", "add", "k", "first"], 0);
    env.ok(&["cache", "add", "k", "second"], 1);
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "first");
    env.ok(&["cache", "touch", "k", "--ttl", "1h"], 0);
    env.ok(&["cache", "touch", "missing"], 1);
    env.ok(&["cache", "del", "k"], 0);
    env.ok(&["cache", "del", "k"], 1);
}

#[test]
fn incr_prints_the_new_value_and_refuses_text() {
    let env = Env::new();
    assert_eq!(env.ok(&["cache", "incr", "n"], 0), "1\n");
    assert_eq!(env.ok(&["cache", "incr", "n", "10"], 0), "11\n");
    assert_eq!(env.ok(&["cache", "incr", "n", "-20"], 0), "-9\n");
    env.ok(&["cache", "set", "t", "text"], 0);
    let (code, out, err) = env.run(&["cache", "incr", "t"]);
    assert_eq!((code, out.len()), (7, 0));
    assert_one_line_error(&err);
    assert!(err.contains("not an integer"), "{err}");
}

#[test]
fn list_prints_keys_by_prefix_as_lines_or_json_and_clear_counts() {
    let env = Env::new();
    for k in ["b:2", "a:1", "b:1"] {
        env.ok(&["cache", "set", k, "v"], 0);
    }
    assert_eq!(env.ok(&["cache", "list"], 0), "a:1\nb:1\nb:2\n");
    assert_eq!(env.ok(&["cache", "list", "--prefix", "b:"], 0), "b:1\nb:2\n");
    assert_eq!(env.ok(&["--json", "cache", "list", "--prefix", "b:"], 0), "[\"b:1\",\"b:2\"]\n");
    assert_eq!(env.ok(&["cache", "clear"], 0), "3\n");
    assert_eq!(env.ok(&["cache", "list"], 0), "");
}

#[test]
fn clear_with_a_prefix_removes_only_those_keys_and_prints_how_many() {
    let env = Env::new();
    for k in ["b:2", "a:1", "b:1", "b"] {
        env.ok(&["cache", "set", k, "v"], 0);
    }
    assert_eq!(env.ok(&["cache", "clear", "--prefix", "b:"], 0), "2\n");
    assert_eq!(env.ok(&["cache", "list"], 0), "a:1\nb\n");
    assert_eq!(env.ok(&["cache", "clear", "--prefix", "zz"], 0), "0\n", "none is not a failure");
    assert_eq!(env.ok(&["-n", "other", "cache", "clear", "--prefix", "a"], 0), "0\n");
    assert_eq!(env.ok(&["cache", "list"], 0), "a:1\nb\n");
}

#[test]
fn usage_errors_exit_2_with_one_line_and_create_nothing() {
    let env = Env::new();
    for args in [
        &["cache", "get", ""][..],
        &["cache", "set", "k", "v", "--ttl", "10"],
        &["cache", "set", "k", "v", "--ttl", "soon"],
        &["cache", "frobnicate"],
        &["--no-such-flag", "cache", "get", "k"],
        &["-n", "", "cache", "get", "k"],
        &["ledger", "mark", ""],
        &["ledger", "claim", "x"],
        &["lock", "l", "--wait", "1x", "--", "true"],
    ] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert_one_line_error(&err);
    }
    assert!(!env.db().exists(), "a usage error must not create the store");
}

#[test]
fn help_and_version_succeed_on_stdout_and_list_the_exit_codes() {
    let env = Env::new();
    let help = env.ok(&["--help"], 0);
    for line in ["0    success", "2    usage error", "6    the store stayed locked", "127"] {
        assert!(help.contains(line), "{line}");
    }
    assert!(env.ok(&["--version"], 0).starts_with("cairn "));
    let (code, _, err) = env.run(&["cache"]);
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains("subcommands: get, set"), "{err}");
}

#[test]
fn usage_errors_keep_their_tip_and_name_the_subcommands_help_on_one_line() {
    let env = Env::new();
    for (args, wanted) in [
        (
            &["cache", "gte", "k"][..],
            &["tip: a similar subcommand exists: 'get'", "; see cairn cache --help"][..],
        ),
        (&["lock", "nightly", "./x.sh"], &["put '--' before it: '-- ./x.sh'", "; see cairn lock --help"]),
        (&["cache", "get", "--bogus", "k"], &["use '-- --bogus'", "; see cairn cache get --help"]),
        (&["memo"], &["not provided: <CMD>...; usage: cairn memo -- <CMD>...", "; see cairn memo --help"]),
        (&["lock"], &["not provided: <NAME> <CMD>...", "; see cairn lock --help"]),
        (&[], &["'cairn' requires a subcommand", "cache, memo, ledger", "; see cairn --help"]),
    ] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert_one_line_error(&err);
        assert!(!err.contains('`'), "{args:?}: {err}");
        for part in wanted {
            assert!(err.contains(part), "{args:?}: {part:?} not in {err:?}");
        }
    }
}

#[test]
fn a_file_that_is_not_a_store_exits_4_and_is_left_untouched() {
    let env = Env::new();
    let bytes: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(env.db(), &bytes).unwrap();
    let (code, _, err) = env.run(&["cache", "set", "k", "v"]);
    assert_eq!(code, 4, "{err}");
    assert_one_line_error(&err);
    assert_eq!(read(&env.db()), bytes);
    assert!(!env.path("state.db-wal").exists());
}

#[test]
fn another_applications_database_exits_4_and_a_truncated_store_too() {
    let env = Env::new();
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute_batch("CREATE TABLE theirs (x); INSERT INTO theirs VALUES (1);").unwrap();
    }
    let before = read(&env.db());
    let (code, _, err) = env.run(&["ledger", "mark", "1"]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(read(&env.db()), before);

    let other = Env::new();
    other.ok(&["cache", "set", "k", "v"], 0);
    let full = read(&other.db());
    std::fs::write(other.db(), &full[..full.len() / 2 + 100]).unwrap();
    let (code, _, err) = other.run(&["cache", "get", "k"]);
    assert_eq!(code, 4, "{err}");
    assert_one_line_error(&err);
}

#[test]
fn a_store_from_a_newer_cairn_exits_5_untouched() {
    let env = Env::new();
    env.ok(&["cache", "set", "k", "v"], 0);
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = read(&env.db());
    let (code, _, err) = env.run(&["cache", "set", "k", "w"]);
    assert_eq!(code, 5, "{err}");
    assert_one_line_error(&err);
    assert_eq!(read(&env.db()), before);
}

#[test]
fn a_path_that_cannot_be_created_exits_3() {
    let env = Env::new();
    // /proc refuses new directories even to root, unlike a chmod-ed test directory. (A reading
    // command there creates nothing: it reads the missing store as empty.)
    let (code, _, err) = env.run(&["--db", "/proc/cairn-test/state.db", "cache", "set", "k", "v"]);
    assert_eq!(code, 3, "{err}");
    assert_one_line_error(&err);
    // A directory given as the file.
    let (code, _, err) = env.run(&["--db", env.dir.path().to_str().unwrap(), "cache", "get", "k"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn a_store_locked_past_the_busy_timeout_exits_6() {
    let env = Env::new();
    env.ok(&["cache", "set", "k", "v"], 0);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (code, _, err) = env.run(&["--busy-timeout", "200ms", "cache", "set", "k", "w"]);
    assert_eq!(code, 6, "{err}");
    assert_one_line_error(&err);
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "v");
}

#[test]
fn the_default_path_follows_cairn_db_then_xdg_state_home_with_private_directories() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let state = env.path("xdg");
    let mut c = assert_cmd::Command::cargo_bin("cairn").unwrap();
    // An empty CAIRN_DB counts as unset, as in most tools.
    c.env("CAIRN_DB", "").env("XDG_STATE_HOME", &state).args(["cache", "set", "k", "v"]).assert().code(0);
    let file = state.join("cairn/state.db");
    assert!(file.exists());
    assert_eq!(std::fs::metadata(state.join("cairn")).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // --db wins over CAIRN_DB.
    env.ok(&["--db", env.path("other.db").to_str().unwrap(), "cache", "set", "k", "v"], 0);
    assert!(env.path("other.db").exists() && !env.db().exists());
}

#[test]
fn a_closed_stdout_pipe_is_a_quiet_success() {
    let env = Env::new();
    env.ok(&["ledger", "mark", "0"], 0); // a store, so that nothing is said about a missing one
    let script = format!(
        "seq 1 200000 | {bin} ledger filter | head -n 1; echo \"${{PIPESTATUS[1]}}\"",
        bin = crate::cairn_bin().display()
    );
    let out = crate::output_within(
        std::process::Command::new("bash").arg("-c").arg(script).env("CAIRN_DB", env.db()),
        "a pipeline into head",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n0\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn a_dangling_symlink_at_the_store_path_exits_3_and_creates_nothing() {
    let env = Env::new();
    let target = env.path("elsewhere.db");
    std::os::unix::fs::symlink(&target, env.db()).unwrap();
    let (code, _, err) = env.run(&["cache", "set", "k", "v"]);
    assert_eq!(code, 3, "{err}");
    assert_one_line_error(&err);
    assert!(!target.exists());
}

//! `-n` and `$CAIRN_NS`: the namespace of the commands that have one, refused by those that
//! have none instead of ignored.

use crate::{assert_one_line_error, Env};

#[test]
fn cairn_ns_is_the_namespace_when_n_is_not_given_and_n_overrides_it() {
    let env = Env::new();
    let with_ns = |args: &[&str]| {
        let out = env.cairn().env("CAIRN_NS", "invoices").args(args).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(with_ns(&["ledger", "mark", "inv-1"]).0, 0);
    assert_eq!(with_ns(&["cache", "set", "token", "t0"]).0, 0);
    env.ok(&["-n", "invoices", "ledger", "has", "inv-1"], 0);
    env.ok(&["ledger", "has", "inv-1"], 1);
    assert_eq!(env.ok(&["-n", "invoices", "cache", "get", "token"], 0), "t0");
    assert_eq!(with_ns(&["ledger", "has", "inv-1"]).0, 0);
    assert_eq!(with_ns(&["-n", "orders", "ledger", "has", "inv-1"]).0, 1, "-n wins over $CAIRN_NS");
    assert_eq!(with_ns(&["--json", "stats"]).1.lines().count(), 1, "stats of $CAIRN_NS only");
}

#[test]
fn n_is_refused_by_commands_without_a_namespace_instead_of_ignored() {
    let env = Env::new();
    std::fs::create_dir(env.path("migrations")).unwrap();
    for (args, what) in [
        (&["checkpoint", "set", "export", "7"][..], "checkpoints have no namespace"),
        (&["checkpoint", "get", "export"], "checkpoints have no namespace"),
        (&["lock", "nightly", "--", "touch", "ran"], "locks have no namespace"),
        (&["doctor"], "the whole store"),
        (&["vacuum"], "the whole store"),
        (&["backup", "copy.db"], "the whole store"),
        (&["migrate", "migrations"], "the whole store"),
        (&["completions", "bash"], "no namespace"),
    ] {
        for n_at in [0, 1] {
            let mut argv: Vec<&str> = args.to_vec();
            argv.splice(n_at..n_at, ["-n", "invoices"]);
            let (code, out, err) = env.run(&argv);
            assert_eq!(code, 2, "{argv:?}: {err}");
            assert!(out.is_empty(), "{argv:?}");
            assert_one_line_error(&err);
            assert!(err.contains("takes no -n/--ns") && err.contains(what), "{argv:?}: {err}");
        }
    }
    assert!(!env.path("ran").exists(), "the lock's command ran");
    assert!(!env.path("copy.db").exists());
    env.ok(&["checkpoint", "get", "export"], 1);

    // $CAIRN_NS, exported for a whole job, is the namespace of what has one; checkpoints and
    // locks, which have none, leave it alone.
    let out =
        env.cairn().env("CAIRN_NS", "invoices").args(["checkpoint", "set", "export", "7"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = env
        .cairn()
        .env("CAIRN_NS", "invoices")
        .args(["lock", "nightly", "--", "touch", "ran"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(env.ok(&["checkpoint", "get", "export"], 0), "7");
    assert!(env.path("ran").exists());
}

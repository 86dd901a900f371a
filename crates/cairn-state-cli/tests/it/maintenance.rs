//! `cairn batch`, `migrate`, `stats`, `doctor`, `backup`, `vacuum`, `completions`, `man`.

use std::os::unix::fs::PermissionsExt;

use crate::{assert_one_line_error, cairn_bin, Env};

#[test]
fn batch_applies_every_line_in_one_transaction() {
    let env = Env::new();
    let input = br#"{"op":"set","ns":"n","key":"k","value":"v","ttl":"1h"}
{"op":"incr","key":"runs"}
{"op":"mark","ns":"jobs","id":"42"}
{"op":"checkpoint","job":"j","value":"p9"}
"#;
    let (code, _, err) = env.run_stdin(&["batch"], input);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.ok(&["-n", "n", "cache", "get", "k"], 0), "v");
    assert_eq!(env.ok(&["cache", "get", "runs"], 0), "1");
    env.ok(&["-n", "jobs", "ledger", "has", "42"], 0);
    assert_eq!(env.ok(&["checkpoint", "get", "j"], 0), "p9");
}

#[test]
fn a_malformed_batch_line_rejects_the_whole_batch_with_its_number() {
    let env = Env::new();
    env.ok(&["cache", "set", "k", "old"], 0);
    let input = b"{\"op\":\"set\",\"key\":\"k\",\"value\":\"new\"}\n{\"op\":\"mark\",\"id\":\"1\"}\n{\"op\":\"set\",\"key\":\"k\"\n";
    let (code, _, err) = env.run_stdin(&["batch"], input);
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains("line 3"), "{err}");
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "old");
    env.ok(&["ledger", "has", "1"], 1);
    // An operation the store refuses (an empty key) rolls back the lines before it.
    let (code, _, err) =
        env.run_stdin(&["batch"], b"{\"op\":\"mark\",\"id\":\"2\"}\n{\"op\":\"del\",\"key\":\"\"}\n");
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");
    env.ok(&["ledger", "has", "2"], 1);
}

fn migrations(env: &Env) -> std::path::PathBuf {
    let dir = env.path("migrations");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("001_users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);")
        .unwrap();
    std::fs::write(dir.join("002_email.sql"), "ALTER TABLE users ADD COLUMN email TEXT;").unwrap();
    std::fs::write(dir.join("README.md"), "ignored").unwrap();
    dir
}

#[test]
fn migrate_applies_numbered_files_in_order_once() {
    let env = Env::new();
    let dir = migrations(&env);
    let app = env.path("app.db");
    let (app_s, dir_s) = (app.to_str().unwrap(), dir.to_str().unwrap());
    let dry = env.ok(&["--db", app_s, "migrate", dir_s, "--dry-run"], 0);
    assert!(dry.contains("001_users.sql") && dry.contains("002_email.sql"), "{dry}");
    assert!(!app.exists(), "a dry run creates nothing");
    let applied = env.ok(&["--db", app_s, "migrate", dir_s], 0);
    assert_eq!(applied.lines().count(), 2);
    assert_eq!(env.ok(&["--db", app_s, "migrate", dir_s], 0), "");
    let conn = rusqlite::Connection::open(&app).unwrap();
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, 2);
    conn.execute("INSERT INTO users (name, email) VALUES ('a', 'b')", []).unwrap();
    drop(conn);

    // A third file applies alone; a database ahead of the files is refused.
    std::fs::write(dir.join("003_idx.sql"), "CREATE INDEX users_email ON users (email);").unwrap();
    assert!(env.ok(&["--db", app_s, "migrate", dir_s], 0).contains("003_idx.sql"));
    std::fs::remove_file(dir.join("003_idx.sql")).unwrap();
    let (code, _, err) = env.run(&["--db", app_s, "migrate", dir_s]);
    assert_eq!(code, 5, "{err}");
}

#[test]
fn migrate_refuses_badly_numbered_files_and_failing_steps() {
    let env = Env::new();
    let dir = migrations(&env);
    std::fs::write(dir.join("004_gap.sql"), "SELECT 1;").unwrap();
    let (code, _, err) =
        env.run(&["--db", env.path("a.db").to_str().unwrap(), "migrate", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("004_gap.sql"), "{err}");
    std::fs::rename(dir.join("004_gap.sql"), dir.join("003_bad.sql")).unwrap();
    std::fs::write(dir.join("003_bad.sql"), "CREATE TABLE users (dup);").unwrap();
    let (code, _, err) =
        env.run(&["--db", env.path("a.db").to_str().unwrap(), "migrate", dir.to_str().unwrap()]);
    assert_eq!(code, 7, "{err}");
    assert_one_line_error(&err);
}

#[test]
fn migrate_into_a_cairn_store_needs_a_scope() {
    let env = Env::new();
    let dir = migrations(&env);
    env.ok(&["cache", "set", "k", "v"], 0);
    let (code, _, err) = env.run(&["migrate", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("--scope"), "{err}");
    assert_eq!(env.ok(&["migrate", dir.to_str().unwrap(), "--scope", "app"], 0).lines().count(), 2);
    assert_eq!(env.ok(&["migrate", dir.to_str().unwrap(), "--scope", "app"], 0), "");
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "v");
}

#[test]
fn stats_report_entries_hits_and_ledger_states_per_namespace() {
    let env = Env::new();
    env.ok(&["-n", "pages", "cache", "set", "a", "xyz"], 0);
    env.ok(&["-n", "pages", "cache", "get", "a"], 0);
    env.ok(&["-n", "pages", "cache", "get", "b"], 1);
    env.ok(&["-n", "jobs", "ledger", "mark", "1", "2"], 0);
    let text = env.ok(&["stats"], 0);
    assert!(text.contains("pages\tentries=1 bytes=4 hit_rate=50.0%"), "{text}");
    assert!(text.contains("jobs\tentries=0") && text.contains("done=2"), "{text}");
    let json = env.ok(&["--json", "-n", "pages", "stats"], 0);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!((v["cache"]["hits"].as_u64(), v["cache"]["misses"].as_u64()), (Some(1), Some(1)));
}

#[test]
fn doctor_passes_a_healthy_store_and_says_how_to_fix_loose_permissions() {
    let env = Env::new();
    env.ok(&["doctor"], 1); // no store yet
    env.ok(&["cache", "set", "k", "v"], 0);
    let report = env.ok(&["doctor"], 0);
    assert!(report.contains("integrity") && report.contains("wal"), "{report}");
    std::fs::set_permissions(env.db(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let report = env.ok(&["doctor"], 1);
    assert!(report.contains("FAIL") && report.contains("chmod 600"), "{report}");
    let json = env.ok(&["--json", "doctor"], 1);
    assert!(json.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
}

#[test]
fn backup_writes_a_private_consistent_copy_and_vacuum_keeps_data() {
    let env = Env::new();
    let ids: String = (0..5000).map(|i| format!("{i}\n")).collect();
    env.run_stdin(&["ledger", "mark", "-"], ids.as_bytes());
    env.ok(&["cache", "set", "k", "v"], 0);
    let copy = env.path("backups/copy.db");
    env.ok(&["backup", copy.to_str().unwrap()], 0);
    env.ok(&["backup", copy.to_str().unwrap()], 0); // replaces the older copy
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
    let c = copy.to_str().unwrap();
    assert_eq!(env.ok(&["--db", c, "cache", "get", "k"], 0), "v");
    assert_eq!(env.ok(&["--db", c, "ledger", "count", "--state", "done"], 0), "5000\n");
    env.ok(&["ledger", "reset"], 0);
    let (code, out, err) = env.run(&["vacuum"]);
    assert_eq!((code, out.len()), (0, 0), "{err}");
    assert!(err.contains("vacuumed"), "{err}");
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "v");
}

#[test]
fn completions_and_the_man_page_come_from_the_definitions() {
    let env = Env::new();
    let bash = env.ok(&["completions", "bash"], 0);
    assert!(bash.contains("ledger") && bash.contains("--no-wait"), "bash completion lacks commands");
    assert!(env.ok(&["completions", "zsh"], 0).contains("#compdef cairn"));
    let man = env.ok(&["man"], 0);
    assert!(man.contains(".TH cairn") && man.contains("Exit status"), "{}", &man[..200.min(man.len())]);
}

#[test]
fn every_subcommand_has_a_man_page_and_man_dir_writes_them_all() {
    let env = Env::new();
    let memo = env.ok(&["man", "memo"], 0);
    assert!(memo.starts_with(".ie") && memo.contains(".TH cairn-memo 1"), "{}", &memo[..200.min(memo.len())]);
    assert!(memo.contains("\\-\\-forget") && memo.contains("\\-\\-modtime"), "the page lists memo's options");
    assert!(env.ok(&["man", "cache", "clear"], 0).contains("\\-\\-prefix"));
    let (code, _, err) = env.run(&["man", "cache", "nope"]);
    assert_eq!(code, 2);
    crate::assert_one_line_error(&err);

    let dir = env.path("man1");
    let listed = env.ok(&["man", "--dir", dir.to_str().unwrap()], 0);
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(listed.lines().count(), written.len(), "every file written is listed");
    for page in [
        "cairn.1",
        "cairn-memo.1",
        "cairn-lock.1",
        "cairn-cache.1",
        "cairn-cache-clear.1",
        "cairn-ledger-next.1",
    ] {
        assert!(written.iter().any(|w| w == page), "{page} missing from {written:?}");
    }
    // One page per visible subcommand, at every level; none for the hidden `help`.
    let help = env.ok(&["--help"], 0);
    let top: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   ")) // a description's wrapped line
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(top.len() >= 10, "{top:?}");
    for c in top {
        assert!(written.contains(&format!("cairn-{c}.1")), "no page for cairn {c}");
    }
    assert!(!written.iter().any(|w| w.contains("help")), "{written:?}");
    for page in &written {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(&format!(".TH {} 1", page.trim_end_matches(".1"))), "{page}");
    }
}

#[test]
fn durability_full_is_chosen_by_flag_or_environment_and_other_levels_are_usage_errors() {
    let env = Env::new();
    env.ok(&["--durability", "full", "cache", "set", "k", "v"], 0);
    let out = env.cairn().env("CAIRN_DURABILITY", "full").args(["cache", "get", "k"]).output().unwrap();
    assert_eq!((out.status.code(), out.stdout.as_slice()), (Some(0), &b"v"[..]));
    env.ok(&["--durability", "normal", "ledger", "mark", "a"], 0);
    for (flag, env_value) in [(Some("fsync"), None), (Some("FULL"), None), (None, Some("paranoid"))] {
        let mut cmd = env.cairn();
        if let Some(level) = flag {
            cmd.args(["--durability", level]);
        }
        if let Some(level) = env_value {
            cmd.env("CAIRN_DURABILITY", level);
        }
        let out = cmd.args(["cache", "set", "k", "w"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_one_line_error(&err);
        assert!(err.contains("[possible values: normal, full]"), "{err}");
    }
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "v");
    assert!(env.ok(&["--help"], 0).contains("CAIRN_DURABILITY"));
}

#[test]
fn stats_in_the_prometheus_format_count_items_entries_and_the_locks_held() {
    let env = Env::new();
    env.ok(&["-n", "pages", "cache", "set", "a", "xyz"], 0);
    env.ok(&["-n", "pages", "cache", "get", "a"], 0);
    env.ok(&["-n", "pages", "cache", "get", "b"], 1);
    env.ok(&["-n", "jobs", "ledger", "enqueue", "1", "2", "3"], 0);
    env.ok(&["-n", "jobs", "ledger", "mark", "0"], 0);
    env.ok(&["-n", "jobs", "ledger", "pause"], 0);
    // The stats run while `cairn lock` holds "nightly": the lock is counted.
    let bin = cairn_bin();
    let text =
        env.ok(&["lock", "nightly", "--", bin.to_str().unwrap(), "stats", "--format", "prometheus"], 0);
    for line in [
        "# TYPE cairn_ledger_items gauge\n",
        "cairn_ledger_items{ns=\"jobs\",state=\"pending\"} 3\n",
        "cairn_ledger_items{ns=\"jobs\",state=\"done\"} 1\n",
        "cairn_ledger_paused{ns=\"jobs\"} 1\n",
        "# TYPE cairn_cache_hits_total counter\n",
        "cairn_cache_entries{ns=\"pages\"} 1\n",
        "cairn_cache_bytes{ns=\"pages\"} 4\n",
        "cairn_cache_hits_total{ns=\"pages\"} 1\n",
        "cairn_cache_misses_total{ns=\"pages\"} 1\n",
        "cairn_locks_held 1\n",
        "cairn_lock_slots_held{lock=\"nightly\"} 1\n",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    let age = text.lines().find(|l| l.starts_with("cairn_ledger_oldest_queued_age_seconds{ns=\"jobs\"} "));
    let age: f64 = age.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).expect(&text);
    assert!(age >= 0.0, "{text}");

    // -n keeps one namespace (locks have none: they stay); the default format is unchanged.
    let one = env.ok(&["-n", "pages", "stats", "--format", "prometheus"], 0);
    assert!(!one.contains("ns=\"jobs\"") && one.contains("ns=\"pages\""), "{one}");
    assert!(one.contains("cairn_locks_held 0\n"), "{one}");
    assert_eq!(env.ok(&["stats", "--format", "text"], 0), env.ok(&["stats"], 0));
}

#[test]
fn stats_textfile_replaces_the_file_atomically_readable_by_the_collector() {
    let env = Env::new();
    env.ok(&["-n", "q", "ledger", "enqueue", "a"], 0);
    let dir = env.path("textfile");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("cairn.prom");
    std::fs::write(&file, "stale\n").unwrap();
    let (code, out, err) =
        env.run(&["stats", "--format", "prometheus", "--textfile", file.to_str().unwrap()]);
    assert_eq!((code, out.as_slice(), err.as_str()), (0, &b""[..], ""));
    let written = std::fs::read_to_string(&file).unwrap();
    // What stdout gets, but for the age, which grows between the two runs.
    let timeless =
        |t: &str| t.lines().filter(|l| !l.contains("_age_seconds{")).collect::<Vec<_>>().join("\n");
    assert_eq!(timeless(&written), timeless(&env.ok(&["stats", "--format", "prometheus"], 0)));
    assert!(written.contains("cairn_ledger_items{ns=\"q\",state=\"pending\"} 1\n"), "{written}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "node_exporter, another user, reads it");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["cairn.prom"], "no temporary file left behind");

    // A name the collector skips is written, with a note saying so.
    let (code, _, err) = env.run(&["stats", "--format", "prometheus", "--textfile", "cairn.txt"]);
    assert_eq!(code, 0);
    assert!(err.contains("*.prom"), "{err}");
    assert!(env.path("cairn.txt").exists());
}

#[test]
fn stats_refuse_a_textfile_without_the_prometheus_format_and_a_missing_directory() {
    let env = Env::new();
    env.ok(&["cache", "set", "k", "v"], 0);
    for args in [
        &["stats", "--textfile", "m.prom"][..],
        &["--json", "stats", "--format", "prometheus"],
        &["stats", "--format", "openmetrics"],
    ] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.starts_with("cairn: ") || err.starts_with("error: "), "{args:?}: {err}");
    }
    assert!(!env.path("m.prom").exists());
    let (code, _, err) = env.run(&["stats", "--format", "prometheus", "--textfile", "no/such/dir/m.prom"]);
    assert_eq!(code, 3, "{err}");
    assert_one_line_error(&err);
}

//! The `cairn` binary on a store on a PostgreSQL server (`--db postgres://...`): the same
//! commands and exit codes as on a file, the file-only ones refused as usage errors, a server
//! that cannot be reached exits 3, and a password in the URL never reaches any output.
//!
//! Each test runs on a fresh schema (`?cairn_schema=`) of the server named by `CAIRN_TEST_PG`
//! ([`cairn_testkit::postgres`]), dropped when it ends. Without a server the tests say so and
//! skip, which `CAIRN_NO_SKIP` turns into failures.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use cairn_testkit::postgres::{test_schema, TestSchema};

use crate::{assert_one_line_error, wait_until, wait_within, Env};

/// A scratch store on the test server: a fresh schema, and a directory to run `cairn` in.
struct Pg {
    env: Env,
    schema: TestSchema,
}

/// The test server, or `None` (said loudly; a failure under `CAIRN_NO_SKIP`) without one.
fn pg() -> Option<Pg> {
    Some(Pg { schema: test_schema()?, env: Env::new() })
}

impl Pg {
    fn url(&self) -> String {
        self.schema.url()
    }

    /// The same URL with a password in it (the test server trusts its clients, so any works).
    fn url_with_password(&self) -> String {
        self.url().replacen("://postgres@", "://postgres:secret@", 1)
    }

    /// `cairn --db <url> args`: (exit code, stdout, stderr).
    fn run_at(&self, url: &str, args: &[&str]) -> (i32, String, String) {
        let out = self.env.cairn().arg("--db").arg(url).args(args).output().unwrap();
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
    }

    /// Run, expecting `code`; the stdout.
    fn ok(&self, args: &[&str], code: i32) -> String {
        let (got, out, err) = self.run_at(&self.url(), args);
        assert_eq!(got, code, "cairn {args:?}: stderr: {err}");
        out
    }

    fn store(&self) -> cairn::Store {
        cairn::Store::open(self.url()).unwrap()
    }
}

#[test]
fn cache_set_get_and_incr_on_postgres() {
    let Some(pg) = pg() else { return };
    pg.ok(&["cache", "set", "k", "v", "--ttl", "1h"], 0);
    assert_eq!(pg.ok(&["cache", "get", "k"], 0), "v");
    pg.ok(&["cache", "get", "missing"], 1);
    assert_eq!(pg.ok(&["cache", "incr", "n"], 0), "1\n");
    assert_eq!(pg.ok(&["cache", "incr", "n", "10"], 0), "11\n");
    let (code, _, err) = pg.run_at(&pg.url(), &["cache", "incr", "k"]);
    assert_eq!(code, 7, "incr of text: {err}");
    assert_one_line_error(&err);
    assert_eq!(pg.store().cache("default").get::<i64>("n").unwrap(), Some(11), "what the library reads");
}

#[test]
fn ledger_enqueue_next_done_and_a_dead_pids_claim_taken_over_on_postgres() {
    let Some(pg) = pg() else { return };
    pg.ok(&["ledger", "enqueue", "a", "b"], 0);
    let mut shell = std::process::Command::new("sleep").arg("3600").spawn().expect("spawn sleep");
    let pid = shell.id().to_string();
    assert_eq!(pg.ok(&["ledger", "next", "--worker", "w1", "--lease", "1h", "--pid", &pid], 0), "a\n");
    pg.ok(&["ledger", "claim", "a", "--worker", "w2", "--lease", "1h"], 1); // its process lives
    shell.kill().expect("kill");
    shell.wait().expect("reap");
    // An hour of lease left, but the process is gone: the next worker gets it now.
    assert_eq!(pg.ok(&["ledger", "next", "--worker", "w2", "--lease", "1h"], 0), "a\n");
    pg.ok(&["ledger", "done", "a", "--worker", "w1"], 1); // the dead worker's claim is fenced
    pg.ok(&["ledger", "done", "a", "--worker", "w2"], 0);
    assert_eq!(pg.ok(&["ledger", "next", "--worker", "w2", "--lease", "1h"], 0), "b\n");
    pg.ok(&["ledger", "done", "b", "--worker", "w2"], 0);
    pg.ok(&["ledger", "next", "--worker", "w2"], 1); // nothing left
    pg.ok(&["ledger", "has", "a"], 0);
    assert_eq!(pg.ok(&["ledger", "count", "--state", "done"], 0), "2\n");
}

#[test]
fn lock_on_postgres_runs_the_command_or_exits_1_while_another_holds_it() {
    let Some(pg) = pg() else { return };
    pg.ok(&["lock", "job", "--no-wait", "--", "sh", "-c", "touch ran"], 0);
    assert!(pg.env.path("ran").exists());
    let store = pg.store();
    let guard = store.try_lock("job", Duration::from_secs(3600)).unwrap().expect("free");
    let (code, _, err) = pg.run_at(&pg.url(), &["lock", "job", "--no-wait", "--", "touch", "again"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("lock 'job' is held"), "{err}");
    assert!(!pg.env.path("again").exists(), "the command ran while the lock was held");
    drop(guard);
    assert_eq!(pg.ok(&["lock", "job", "--no-wait", "--", "sh", "-c", "exit 42"], 42), "");
}

/// `cairn lock` keeps its lock alive while the command runs past the lock's TTL: the lock's
/// expiry moves forward (seen from another connection), and cairn does not report it lost.
#[test]
fn lock_on_postgres_renews_its_lock_while_the_command_runs() {
    let Some(pg) = pg() else { return };
    let store = pg.store();
    let mut cairn = Group(
        std::process::Command::new(crate::cairn_bin())
            .args(["--db", &pg.url(), "lock", "job", "--ttl", "300ms", "--"])
            .args(["sh", "-c", "while [ ! -e go ]; do sleep 0.01; done"])
            .current_dir(pg.env.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let expiry = || store.lock_holder("job").unwrap().map(|h| h.expires_at_millis);
    wait_until("cairn holds the lock", || expiry().is_some());
    let first = expiry().expect("held");
    wait_until("a renewal moved the expiry", || expiry().is_some_and(|e| e > first));
    std::fs::write(pg.env.path("go"), b"").unwrap();
    let status = wait_within(&mut cairn.0, "cairn lock");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut cairn.0.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("was not held to the end"), "{err}");
}

/// A child started in its own process group, killed with its group if the test fails first.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let group = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = self.0.wait();
        }
    }
}

#[test]
fn doctor_on_postgres_reports_the_servers_health_and_exits_1_on_a_finding() {
    let Some(pg) = pg() else { return };
    pg.ok(&["cache", "set", "k", "v"], 0); // a store to examine
    let (code, out, err) = pg.run_at(&pg.url(), &["doctor"]);
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    assert!(out.lines().any(|l| l.starts_with("ok    server")), "{out}");
    assert!(out.contains(&format!("'{}' at version", pg.schema.name())), "{out}");
    assert_eq!(
        code == 1,
        out.lines().any(|l| l.starts_with("FAIL")),
        "exit 1 exactly when a check failed: {out}"
    );
    let autovacuum: String =
        pg.schema.client().query_one("SELECT current_setting('autovacuum')", &[]).unwrap().get(0);
    if autovacuum == "off" {
        assert_eq!(code, 1, "{out}");
        assert!(out.lines().any(|l| l.starts_with("FAIL  autovacuum")), "{out}");
    }
    let (json_code, json, _) = pg.run_at(&pg.url(), &["--json", "doctor"]);
    assert_eq!(json_code, code);
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["check"].is_string() && v["ok"].is_boolean(), "{line}");
    }
}

#[test]
fn doctor_on_postgres_creates_no_schema() {
    let Some(pg) = pg() else { return };
    let (code, _, err) = pg.run_at(&pg.url(), &["doctor"]);
    assert_eq!(code, 1, "no store here yet: {err}");
    let schemas: i64 = pg
        .schema
        .client()
        .query_one("SELECT count(*) FROM pg_namespace WHERE nspname = $1", &[&pg.schema.name()])
        .unwrap()
        .get(0);
    assert_eq!(schemas, 0, "a health check changed what it examines");
}

#[test]
fn backup_of_a_store_on_postgres_is_a_usage_error_naming_pg_dump() {
    let Some(pg) = pg() else { return };
    pg.ok(&["cache", "set", "k", "v"], 0);
    let copy = pg.env.path("copy.db");
    let (code, _, err) = pg.run_at(&pg.url(), &["backup", copy.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert_one_line_error(&err);
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!copy.exists());
}

#[test]
fn a_server_that_cannot_be_reached_exits_3() {
    let Some(pg) = pg() else { return };
    for url in [
        "postgres://postgres@127.0.0.1:1/test?cairn_schema=nowhere", // nothing listens there
        "postgres://postgres@cairn-test-host.invalid/test?cairn_schema=nowhere", // no such host
    ] {
        let (code, out, err) = pg.run_at(url, &["cache", "get", "k"]);
        assert_eq!((code, out.as_str()), (3, ""), "{url}: {err}");
        assert_one_line_error(&err);
        assert!(err.contains("the database server is unavailable"), "{err}");
    }
}

/// A password in `--db` reaches no output: not the messages of errors (an unreachable server,
/// a refused backup, a type error, a held lock, a lost claim), not doctor's report, not stats.
#[test]
fn a_password_in_the_url_never_appears_in_any_output() {
    let Some(pg) = pg() else { return };
    let url = pg.url_with_password();
    let unreachable = url.replacen(":5432/", ":1/", 1);
    assert!(unreachable.contains(":secret@127.0.0.1:1/"), "{unreachable}");
    let store = pg.store();
    let runs: Vec<(String, Vec<&str>)> = vec![
        (url.clone(), vec!["cache", "set", "t", "text"]),
        (url.clone(), vec!["cache", "get", "t"]),
        (url.clone(), vec!["cache", "incr", "t"]),
        (url.clone(), vec!["ledger", "claim", "x", "--worker", "w1"]),
        (url.clone(), vec!["ledger", "done", "x", "--worker", "w2"]),
        (url.clone(), vec!["doctor"]),
        (url.clone(), vec!["--json", "doctor"]),
        (url.clone(), vec!["stats"]),
        (url.clone(), vec!["backup", "copy.db"]),
        (url.clone(), vec!["vacuum"]),
        (unreachable.clone(), vec!["cache", "get", "t"]),
        (unreachable.clone(), vec!["doctor"]),
    ];
    let mut codes = Vec::new();
    for (url, args) in &runs {
        let (code, out, err) = pg.run_at(url, args);
        assert!(!out.contains("secret") && !err.contains("secret"), "cairn {args:?}: {out}{err}");
        codes.push(code);
    }
    // doctor: 1 with a finding (autovacuum is off on the test server), else 0.
    let doctor = codes[5];
    assert!(doctor == 0 || doctor == 1, "{codes:?}");
    assert_eq!(codes, [0, 0, 7, 0, 1, doctor, doctor, 0, 2, 0, 3, 3], "the runs did what they should");
    let _held = store.try_lock("job", Duration::from_secs(3600)).unwrap().expect("free");
    let (code, out, err) = pg.run_at(&url, &["lock", "job", "--no-wait", "--", "true"]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.contains("secret") && !err.contains("secret"), "{out}{err}");
}

/// A password is hidden however it is written: with an unescaped `/`, `?` or `@` (the driver
/// reads the user part to the first `@`, so it connects with them), or as a parameter whose
/// name is percent-encoded. An `@` that ends the user part early makes the driver quote a part
/// of the password as an unknown option: that is not shown either.
#[test]
fn a_password_with_unescaped_slashes_question_marks_or_an_encoded_name_never_appears() {
    let Some(pg) = pg() else { return };
    let reachable = pg.url().replacen("://postgres@", "://postgres:s3KRt/qZw?vXj@", 1);
    assert!(reachable.contains(":s3KRt/qZw?vXj@127.0.0.1:5432/"), "{reachable}");
    let runs = [
        (reachable.clone(), vec!["cache", "set", "t", "text"], 0),
        (reachable.clone(), vec!["cache", "incr", "t"], 7),
        (reachable.clone(), vec!["backup", "copy.db"], 2),
        (reachable.replacen(":5432/", ":1/", 1), vec!["cache", "get", "t"], 3),
        (
            "postgres://postgres@127.0.0.1:1/test?passw%6Frd=s3KRt/qZw?vXj".into(),
            vec!["cache", "get", "t"],
            3,
        ),
        ("postgres://postgres@127.0.0.1:1/test?%70assword=s3KRt/qZw?vXj".into(), vec!["doctor"], 3),
        ("postgres://postgres:s3KRt/qZw@vXj@127.0.0.1:1/test".into(), vec!["cache", "get", "t"], 3),
        ("postgres://postgres:s3KRt@qZw?vXj=x@127.0.0.1:1/test".into(), vec!["cache", "get", "t"], 2),
    ];
    for (url, args, expected) in runs {
        let (code, out, err) = pg.run_at(&url, &args);
        assert_eq!(code, expected, "{url} {args:?}: {err}");
        for part in ["s3KRt", "qZw", "vXj"] {
            assert!(!out.contains(part) && !err.contains(part), "{url} {args:?} shows {part:?}: {out}{err}");
        }
    }
}

/// A role that may not log in or does not exist, and a database that does not exist, cannot
/// use the server: exit 3, as an unreachable server; a schema name PostgreSQL reserves
/// (`pg_...`) is a bad name: exit 2. All three exited 8, "PostgreSQL error".
#[test]
fn a_refused_role_or_a_missing_database_exits_3_and_a_reserved_schema_name_exits_2() {
    let Some(pg) = pg() else { return };
    let role = format!("cairn_test_nologin_{}", std::process::id());
    pg.schema.client().batch_execute(&format!("CREATE ROLE \"{role}\" NOLOGIN")).unwrap();
    let (server, db) = pg
        .schema
        .server()
        .split('?')
        .next()
        .unwrap_or_default()
        .rsplit_once('/')
        .expect("a URL with a database");
    let runs = [
        (pg.url().replacen("://postgres@", &format!("://{role}@"), 1), 3, "not permitted to log in"),
        (pg.url().replacen("://postgres@", "://cairn_test_no_such_role@", 1), 3, "does not exist"),
        (format!("{server}/cairn_test_no_such_database"), 3, "does not exist"),
        (format!("{server}/{db}?cairn_schema=pg_x"), 2, "pg_"),
    ];
    let results: Vec<_> = runs.iter().map(|(url, _, _)| pg.run_at(url, &["cache", "get", "k"])).collect();
    pg.schema.client().batch_execute(&format!("DROP ROLE \"{role}\"")).unwrap();
    for ((url, want, says), (code, out, err)) in runs.iter().zip(results) {
        assert_eq!((code, out.as_str()), (*want, ""), "{url}: {err}");
        assert_one_line_error(&err);
        assert!(err.contains(says), "{url}: {err}");
    }
}

#[test]
fn a_runs_steps_on_postgres_replay_on_the_scripts_next_run_and_reset_runs_them_again() {
    let Some(pg) = pg() else { return };
    let script =
        "$C step build -- sh -c 'echo build >> side; echo built; echo warn >&2' || exit $?\n$C run finish";
    let run = || crate::runs::script_at(&pg.env, &pg.url(), "deploy-1", script);
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let second = run();
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    assert_eq!((second.stdout.as_slice(), second.stderr.as_slice()), (&b"built\n"[..], &b"warn\n"[..]));
    assert_eq!(std::fs::read_to_string(pg.env.path("side")).unwrap(), "build\n", "ran once");
    assert!(pg.ok(&["run", "status", "deploy-1"], 0).starts_with("deploy-1\tfinished\t"));
    assert_eq!(pg.ok(&["run", "reset", "deploy-1", "--from", "build"], 0), "1\n");
    assert_eq!(run().status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(pg.env.path("side")).unwrap(), "build\nbuild\n");
    pg.ok(&["run", "forget", "deploy-1"], 0);
    assert!(pg.store().cache("cairn.run-output").keys("").unwrap().is_empty(), "its output went too");
}

#[test]
fn next_with_a_wait_and_ledger_wait_on_postgres() {
    let Some(pg) = pg() else { return };
    pg.ok(&["ledger", "next", "--worker", "w", "--wait", "30ms"], 1);
    pg.ok(&["ledger", "wait", "--timeout", "0s"], 0);
    let mut waiter = std::process::Command::new(crate::cairn_bin())
        .args(["--db", &pg.url(), "ledger", "next", "--worker", "w", "--wait", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100)); // let it begin to wait
    pg.ok(&["ledger", "enqueue", "a"], 0);
    assert_eq!(wait_within(&mut waiter, "next --wait").code(), Some(0));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut waiter.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(out, "a\n");
    pg.ok(&["ledger", "wait", "--timeout", "30ms"], 1); // claimed
    pg.ok(&["ledger", "done", "a", "--worker", "w"], 0);
    pg.ok(&["ledger", "wait", "--timeout", "10s"], 0);
}

#[test]
fn stats_in_the_prometheus_format_on_postgres_name_no_password_and_write_the_textfile() {
    let Some(pg) = pg() else { return };
    pg.ok(&["-n", "q", "ledger", "enqueue", "a", "b"], 0);
    pg.ok(&["-n", "pages", "cache", "set", "k", "v"], 0);
    let store = pg.store();
    let _held = store.try_lock("nightly", Duration::from_secs(60)).unwrap().expect("free");
    let file = pg.env.path("cairn.prom");
    let (code, out, err) = pg.run_at(
        &pg.url_with_password(),
        &["stats", "--format", "prometheus", "--textfile", file.to_str().unwrap()],
    );
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let text = std::fs::read_to_string(&file).unwrap();
    for line in [
        "cairn_ledger_items{ns=\"q\",state=\"pending\"} 2\n",
        "cairn_cache_entries{ns=\"pages\"} 1\n",
        "cairn_lock_slots_held{lock=\"nightly\"} 1\n",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert!(!text.contains("secret"), "{text}");
}

/// `cairn job run` on a server: 8 processes fired at once run the command once for the slot,
/// and the history, list and check read it back.
#[test]
fn eight_job_runs_fired_at_once_on_postgres_run_the_command_once() {
    let Some(pg) = pg() else { return };
    let mut children: Vec<_> = (0..8)
        .map(|_| {
            std::process::Command::new(crate::cairn_bin())
                .args(["--db", &pg.url(), "job", "run", "j", "--every", "3650d", "--"])
                .args(["sh", "-c", "echo $$ >> ran; sleep 0.2"])
                .current_dir(pg.env.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap()
        })
        .collect();
    for child in &mut children {
        assert!(wait_within(child, "cairn job run").success());
    }
    let ran = std::fs::read_to_string(pg.env.path("ran")).unwrap();
    assert_eq!(ran.lines().count(), 1, "{ran}");
    assert_eq!(pg.ok(&["--json", "job", "history", "j"], 0).lines().count(), 1);
    assert_eq!(pg.ok(&["--json", "job", "list"], 0).lines().count(), 1);
    pg.ok(&["job", "check", "j", "--max-age", "1h"], 0);
    let (code, _, err) = pg.run_at(&pg.url(), &["job", "run", "j", "--every", "0s", "--", "true"]);
    assert_eq!(code, 2, "{err}");
    assert_one_line_error(&err);
}

/// An id longer than the server can index (about 2,700 bytes; cairn's own limit is 4096)
/// exited 8 with the server's raw "index row size ... exceeds btree version 4 maximum 2704":
/// it is a usage error (exit 2) on one line that says the limit.
#[test]
fn an_id_longer_than_the_server_can_index_exits_2_saying_the_limit() {
    let Some(pg) = pg() else { return };
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let long: String = (0..3_500)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[(x % 36) as usize])
        })
        .collect();
    let (code, _, err) = pg.run_at(&pg.url(), &["ledger", "mark", &long]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("about 2,700 bytes"), "{err}");
    assert_one_line_error(&err);
}

//! `ledger cancel`, `snooze`, `pause` and `resume`: their output and exit codes, on a file and
//! on PostgreSQL, and a worker process that loses its item to a cancel while it works on it.

use std::os::unix::process::CommandExt;
use std::process::Command;

use cairn_testkit::postgres::{test_schema, TestSchema};

use crate::{assert_one_line_error, cairn_bin, wait_until, wait_within, Env};

/// A store to run the commands on: the scratch file, or a fresh schema on the test server.
struct Db {
    env: Env,
    url: Option<String>,
    _schema: Option<TestSchema>,
}

impl Db {
    fn file() -> Db {
        Db { env: Env::new(), url: None, _schema: None }
    }

    /// `None` (said, and a failure under `CAIRN_NO_SKIP`) without a test server.
    fn postgres() -> Option<Db> {
        let schema = test_schema()?;
        Some(Db { env: Env::new(), url: Some(schema.url()), _schema: Some(schema) })
    }

    /// `--db` for this store.
    fn db_arg(&self) -> String {
        self.url.clone().unwrap_or_else(|| self.env.db().display().to_string())
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.env.cairn().arg("--db").arg(self.db_arg()).args(args).output().unwrap();
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
    }

    fn ok(&self, args: &[&str], code: i32) -> String {
        let (got, out, err) = self.run(args);
        assert_eq!(got, code, "cairn {args:?}: stderr: {err}");
        out
    }
}

/// Each test on a file, then on the test server.
fn on_each(test: impl Fn(&Db)) {
    test(&Db::file());
    if let Some(pg) = Db::postgres() {
        test(&pg);
    }
}

#[test]
fn cancel_takes_items_out_of_the_queue_and_retry_brings_them_back() {
    on_each(|db| {
        db.ok(&["ledger", "enqueue", "a", "b", "c"], 0);
        assert_eq!(db.ok(&["ledger", "next", "--worker", "w1"], 0), "a\n");
        assert_eq!(db.ok(&["ledger", "cancel", "a", "b"], 0), "2\n");
        assert_eq!(db.ok(&["ledger", "cancel", "a"], 0), "0\n", "cancelled already");
        db.ok(&["ledger", "done", "a", "--worker", "w1"], 1); // its claim was lost
        assert_eq!(db.ok(&["ledger", "next", "--worker", "w2"], 0), "c\n");
        db.ok(&["ledger", "next", "--worker", "w2"], 1);
        assert_eq!(db.ok(&["ledger", "count", "--state", "cancelled"], 0), "2\n");
        let list = db.ok(&["ledger", "list", "--state", "cancelled"], 0);
        assert_eq!(list, "a\tcancelled\t-\nb\tcancelled\t-\n");
        let counts = db.ok(&["ledger", "count"], 0);
        assert!(counts.contains("cancelled\t2\n"), "{counts}");
        let json: serde_json::Value =
            serde_json::from_str(&db.ok(&["--json", "ledger", "count"], 0)).unwrap();
        assert_eq!((json["cancelled"].as_u64(), json["paused"].as_bool()), (Some(2), Some(false)));
        assert_eq!(db.ok(&["ledger", "retry", "--all-failed"], 0), "0\n", "cancelled items are named");
        assert_eq!(db.ok(&["ledger", "retry", "a", "b"], 0), "2\n");
        assert_eq!(db.ok(&["ledger", "next", "--worker", "w2"], 0), "a\n");
    });
}

#[test]
fn cancelling_an_unknown_or_done_id_exits_2_and_cancels_nothing() {
    on_each(|db| {
        db.ok(&["ledger", "enqueue", "a"], 0);
        db.ok(&["ledger", "mark", "d"], 0);
        for ids in [&["a", "nope"][..], &["a", "d"]] {
            let args: Vec<&str> = ["ledger", "cancel"].iter().chain(ids).copied().collect();
            let (code, out, err) = db.run(&args);
            assert_eq!((code, out.as_str()), (2, ""), "{err}");
            assert_one_line_error(&err);
            assert!(err.contains("nothing cancelled"), "{err}");
        }
        assert_eq!(db.ok(&["ledger", "count", "--state", "cancelled"], 0), "0\n");
        db.ok(&["ledger", "cancel"], 2); // no id: usage
    });
}

#[test]
fn snooze_puts_a_claim_back_due_later_with_its_attempts() {
    on_each(|db| {
        db.ok(&["ledger", "enqueue", "a", "b"], 0);
        assert_eq!(db.ok(&["ledger", "next", "--worker", "w1"], 0), "a\n");
        let json: serde_json::Value = serde_json::from_str(
            &db.ok(&["--json", "ledger", "snooze", "a", "--worker", "w1", "--for", "1h"], 0),
        )
        .unwrap();
        assert!(json["due_ms"].as_i64().is_some(), "{json}");
        db.ok(&["ledger", "done", "a", "--worker", "w1"], 1); // the claim ended
        db.ok(&["ledger", "snooze", "a", "--worker", "w1", "--for", "1h"], 1); // no claim any more
        assert_eq!(db.ok(&["ledger", "next", "--worker", "w2"], 0), "b\n");
        db.ok(&["ledger", "next", "--worker", "w2"], 1); // a is due in an hour
        let item: serde_json::Value =
            serde_json::from_str(db.ok(&["--json", "ledger", "list", "--state", "pending"], 0).trim())
                .unwrap();
        assert_eq!((item["id"].as_str(), item["attempts"].as_u64()), (Some("a"), Some(0)));
        // Bad durations are usage errors, and change nothing.
        assert_eq!(db.ok(&["ledger", "claim", "a", "--worker", "w3"], 0), "");
        for bad in ["0s", "-5m", "soon"] {
            let (code, _, err) = db.run(&["ledger", "snooze", "a", "--worker", "w3", "--for", bad]);
            assert_eq!(code, 2, "--for {bad}: {err}");
        }
        db.ok(&["ledger", "done", "a", "--worker", "w3"], 0);
    });
}

#[test]
fn pause_stops_next_until_resume_and_count_says_so() {
    on_each(|db| {
        db.ok(&["ledger", "enqueue", "a", "b"], 0);
        assert_eq!(db.ok(&["ledger", "next", "--worker", "w1", "--lease", "1h"], 0), "a\n");
        assert_eq!(db.ok(&["ledger", "pause"], 0), "");
        db.ok(&["ledger", "next", "--worker", "w2"], 1);
        db.ok(&["ledger", "claim", "b", "--worker", "w2"], 1);
        db.ok(&["ledger", "claim", "a", "--worker", "w1", "--lease", "1h"], 0); // a renewal
        db.ok(&["ledger", "done", "a", "--worker", "w1"], 0); // claims held go on
        let counts = db.ok(&["ledger", "count"], 0);
        assert!(counts.ends_with("paused\tuntil-resumed\n"), "{counts}");
        let json: serde_json::Value =
            serde_json::from_str(&db.ok(&["--json", "ledger", "count"], 0)).unwrap();
        assert_eq!((json["paused"].as_bool(), json["paused_until_ms"].is_null()), (Some(true), true));
        let stats = db.ok(&["stats"], 0);
        assert!(stats.contains("paused=until-resumed"), "{stats}");
        let json: serde_json::Value =
            serde_json::from_str(&db.ok(&["--json", "ledger", "resume"], 0)).unwrap();
        assert_eq!(json["was_paused"].as_bool(), Some(true));
        assert_eq!(db.ok(&["ledger", "resume"], 0), "", "resuming twice is no error");
        assert!(!db.ok(&["ledger", "count"], 0).contains("paused"));
        assert_eq!(db.ok(&["ledger", "next", "--worker", "w2"], 0), "b\n");
    });
}

#[test]
fn a_pause_for_a_while_or_until_a_time_says_until_when_and_refuses_a_time_past() {
    on_each(|db| {
        db.ok(&["ledger", "enqueue", "a"], 0);
        let json: serde_json::Value =
            serde_json::from_str(&db.ok(&["--json", "ledger", "pause", "--for", "1h"], 0)).unwrap();
        assert!(json["paused_until_ms"].as_i64().is_some(), "{json}");
        db.ok(&["ledger", "next", "--worker", "w"], 1);
        db.ok(&["ledger", "pause", "--until", "2999-01-01T00:00:00Z"], 0);
        assert!(db.ok(&["ledger", "count"], 0).ends_with("paused\t2999-01-01T00:00:00.000Z\n"));
        for bad in [
            &["ledger", "pause", "--until", "2001-01-01T00:00:00Z"][..],
            &["ledger", "pause", "--for", "0s"],
            &["ledger", "pause", "--until", "tomorrow"],
            &["ledger", "pause", "--for", "1h", "--until", "2999-01-01T00:00:00Z"],
        ] {
            let (code, _, err) = db.run(bad);
            assert_eq!(code, 2, "{bad:?}: {err}");
        }
        assert!(db.ok(&["ledger", "count"], 0).ends_with("paused\t2999-01-01T00:00:00.000Z\n"), "unchanged");
        db.ok(&["ledger", "resume"], 0);
        assert_eq!(db.ok(&["ledger", "next", "--worker", "w"], 0), "a\n");
    });
}

#[test]
fn batch_cancels_snoozes_pauses_and_resumes() {
    on_each(|db| {
        db.ok(&["ledger", "enqueue", "a", "b", "c"], 0);
        db.ok(&["ledger", "claim", "b", "--worker", "w"], 0);
        let ops = "{\"op\":\"cancel\",\"id\":\"a\"}\n{\"op\":\"snooze\",\"id\":\"b\",\"worker\":\"w\",\"for\":\"1h\"}\n\
                   {\"op\":\"pause\"}\n";
        let out = db.env.cairn().arg("--db").arg(db.db_arg()).arg("batch").write_stdin(ops).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(db.ok(&["ledger", "count", "--state", "cancelled"], 0), "1\n");
        db.ok(&["ledger", "next", "--worker", "w"], 1); // paused
        let out = db
            .env
            .cairn()
            .arg("--db")
            .arg(db.db_arg())
            .arg("batch")
            .write_stdin("{\"op\":\"resume\"}\n")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(db.ok(&["ledger", "next", "--worker", "w"], 0), "c\n", "b is snoozed for an hour");
    });
}

/// A worker process holds an item (claimed with `ledger next`) while the test cancels it: the
/// worker's `ledger done` exits 1 and the item stays cancelled.
#[test]
fn a_worker_process_holding_a_cancelled_item_cannot_complete_it() {
    on_each(|db| {
        db.ok(&["ledger", "enqueue", "job-1"], 0);
        let dir = db.env.dir.path();
        let script = r#"id=$("$CAIRN" --db "$DB" ledger next --worker w1 --pid $$) || exit 90
            touch claimed
            while [ ! -e go ]; do sleep 0.01; done
            "$CAIRN" --db "$DB" ledger done "$id" --worker w1 2>done.err
            echo $? > done.rc"#;
        let mut worker = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("CAIRN", cairn_bin())
            .env("DB", db.db_arg())
            .current_dir(dir)
            .process_group(0)
            .spawn()
            .unwrap();
        wait_until("the worker claims its item", || dir.join("claimed").exists());
        assert_eq!(db.ok(&["ledger", "count", "--state", "claimed"], 0), "1\n");
        assert_eq!(db.ok(&["ledger", "cancel", "job-1"], 0), "1\n");
        std::fs::write(dir.join("go"), "").unwrap();
        assert!(wait_within(&mut worker, "the worker").success());
        let rc = std::fs::read_to_string(dir.join("done.rc")).unwrap();
        assert_eq!(rc.trim(), "1", "the worker's done exits 1");
        let err = std::fs::read_to_string(dir.join("done.err")).unwrap();
        assert!(err.contains("cancelled"), "{err}");
        assert_eq!(db.ok(&["ledger", "list"], 0), "job-1\tcancelled\t-\n");
    });
}

//! Migrations: the child applies twelve heavy steps one commit at a time, either under a
//! scope of a cairn store (created by the child, so early kills land in cairn's own schema
//! migrations) or to a plain SQLite file's `user_version` (rollback journal: the kills leave
//! hot journals). After any kill the file must be at a clean version: exactly the tables of
//! the steps up to it, each whole, the summary row bumped once per step, and every step the
//! child reported.

use std::path::Path;

use cairn::{Error, Store};
use cairn_testkit::{step_bytes, torture_migrations, Rng, Running, STEP_ROWS};
use rusqlite::{Connection, OpenFlags};

use super::{await_kill_point, kill, numbers_after, Tally, Workload};
use crate::child;

const STEPS: i64 = 12;
const SCOPE: &str = "app";

#[derive(Default)]
pub(super) struct MigrationSteps {
    /// The highest step reported on the current file, in any round.
    reported: i64,
    /// A cairn store (odd files) or a plain file (even ones).
    in_store: bool,
}

impl Workload for MigrationSteps {
    fn name(&self) -> &'static str {
        "migrations"
    }

    fn start_file(&mut self, _: &Path, n: u64) -> Result<(), Error> {
        *self = MigrationSteps { reported: 0, in_store: n % 2 == 1 };
        Ok(())
    }

    fn round(&mut self, path: &Path, rng: &mut Rng, tally: &mut Tally) -> Result<bool, Error> {
        let p = path.to_str().expect("utf-8 path");
        let steps = STEPS.to_string();
        let mut args = vec!["migrate-steps", "--db", p, "--steps", &steps];
        if self.in_store {
            args.extend(["--scope", SCOPE]);
        }
        let run = Running::spawn(child(), &args).expect("spawn");
        await_kill_point(rng, &run, "OPEN ", 50);
        let lines = kill(run);
        if !lines.iter().any(|l| l == "MIGRATED") {
            tally.kills += 1;
        }
        let at = numbers_after(&lines, "AT ");
        tally.reported += at.len() as u64;
        self.reported = self.reported.max(at.into_iter().max().map_or(0, |k| k as i64));
        if lines.last().is_some_and(|l| l.starts_with("STEP ")) {
            tally.mid_work += 1;
        }
        Ok(verify(path, self.in_store.then_some(SCOPE), self.reported)? == STEPS)
    }
}

/// Checks a migrated file; returns its version.
fn verify(path: &Path, scope: Option<&str>, reported: i64) -> Result<i64, Error> {
    let version = match scope {
        // Opening completes cairn's own schema if the kill interrupted its creation.
        Some(scope) => {
            Store::open(path)?.migration_status(scope, &torture_migrations(STEPS, |_| {}))?.current
        }
        None if !path.exists() => {
            assert_eq!(reported, 0, "step {reported} was reported committed but the file is gone");
            return Ok(0);
        }
        // A read-write connection rolls back a hot journal, as the next run would.
        None => plain(path).pragma_query_value(None, "user_version", |r| r.get(0)).expect("user_version"),
    };
    assert!((0..=STEPS).contains(&version), "version {version} of {STEPS} steps");
    assert!(
        reported <= version,
        "step {reported} was reported committed but the file is at version {version}"
    );
    // One integrity check for both kinds of file, through a plain connection.
    let conn = plain(path);
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(check, "ok", "integrity_check after a kill");
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND (name GLOB 't[0-9]*' OR name = 'summary')")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .expect("tables");
    tables.sort();
    let mut want: Vec<String> = (1..=version).map(|k| format!("t{k}")).collect();
    if version > 0 {
        want.push("summary".into());
    }
    want.sort();
    assert_eq!(tables, want, "the tables of a file at version {version}: a step was partly applied");
    for k in 1..=version {
        let (rows, bytes): (i64, i64) = conn
            .query_row(&format!("SELECT count(*), sum(length(v)) FROM t{k}"), [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("a step's table");
        assert_eq!((rows, bytes), (STEP_ROWS, step_bytes(k)), "t{k} is not whole at version {version}");
    }
    if version > 0 {
        let summary: (i64, i64, i64) = conn
            .query_row("SELECT count(*), sum(steps), sum(rows) FROM summary", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("summary");
        assert_eq!(summary, (1, version, version * STEP_ROWS), "the summary row at version {version}");
    }
    Ok(version)
}

fn plain(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).expect("open the file")
}

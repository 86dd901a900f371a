//! The cron jobs' SQL on PostgreSQL, run inside the store's transaction.

use postgres::Row;

use super::Engine;
use crate::error::Result;
use crate::storage::job::ABANDONED;
use crate::storage::{JobRow, JobRunRow, JOB_FAILED, JOB_RUNNING};

const GET: &str = "SELECT name, schedule, done_through, runs, keep, succeeded, failed FROM {s}.cairn_job \
     WHERE name = $1";
const ALL: &str = "SELECT name, schedule, done_through, runs, keep, succeeded, failed FROM {s}.cairn_job \
     ORDER BY name";
const ABANDON: &str =
    "UPDATE {s}.cairn_job_run SET outcome = $2, stderr_tail = $3 WHERE job = $1 AND outcome = $4";
const COUNT_ABANDONED: &str = "UPDATE {s}.cairn_job SET failed = failed + $2 WHERE name = $1";
const START_JOB: &str =
    "INSERT INTO {s}.cairn_job AS j (name, schedule, done_through, runs, keep, succeeded, failed) \
     VALUES ($1, $2, NULL, 1, $3, 0, 0) \
     ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule, keep = excluded.keep, \
     runs = j.runs + 1 RETURNING runs";
const START_RUN: &str = "INSERT INTO {s}.cairn_job_run \
     (job, seq, slot, slot_end, started, finished, outcome, status, duration_ms, host, pid, stderr_tail) \
     VALUES ($1, $2, $3, $4, $5, NULL, $8, NULL, NULL, $6, $7, NULL)";
const FINISH_RUN: &str = "UPDATE {s}.cairn_job_run SET finished = $3, outcome = $4, status = $5, \
     duration_ms = greatest($3 - started, 0), stderr_tail = $6 WHERE job = $1 AND seq = $2 RETURNING slot";
const FINISH_JOB: &str = "UPDATE {s}.cairn_job SET \
     succeeded = succeeded + CASE WHEN $2::bigint = 1 THEN 1 ELSE 0 END, \
     failed = failed + CASE WHEN $2::bigint = 2 THEN 1 ELSE 0 END, \
     done_through = CASE WHEN $3::boolean THEN greatest(coalesce(done_through, $4), $4) ELSE done_through END \
     WHERE name = $1 RETURNING runs - keep";
const PRUNE: &str = "DELETE FROM {s}.cairn_job_run WHERE job = $1 AND seq <= $2";
const RUNS: &str = "SELECT seq, slot, slot_end, started, finished, outcome, status, duration_ms, host, pid, \
     stderr_tail FROM {s}.cairn_job_run WHERE job = $1 AND ($2::bigint IS NULL OR outcome = $2) \
     ORDER BY seq DESC LIMIT $3";

fn job_row(r: &Row) -> JobRow {
    JobRow {
        name: r.get(0),
        schedule: r.get(1),
        done_through: r.get(2),
        runs: r.get(3),
        keep: r.get(4),
        succeeded: r.get(5),
        failed: r.get(6),
    }
}

impl Engine {
    pub fn job_get(&self, name: &str) -> Result<Option<JobRow>> {
        Ok(self.row(GET, &[&name])?.as_ref().map(job_row))
    }

    pub fn job_all(&self) -> Result<Vec<JobRow>> {
        Ok(self.rows(ALL, &[])?.iter().map(job_row).collect())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn job_start(
        &self,
        name: &str,
        schedule: &str,
        keep: i64,
        slot: i64,
        slot_end: i64,
        started: i64,
        host: &str,
        pid: i64,
    ) -> Result<i64> {
        let abandoned = self.exec(ABANDON, &[&name, &JOB_FAILED, &ABANDONED, &JOB_RUNNING])?;
        if abandoned > 0 {
            let n = i64::try_from(abandoned).unwrap_or(i64::MAX);
            self.exec(COUNT_ABANDONED, &[&name, &n])?;
        }
        let seq: i64 = self.row(START_JOB, &[&name, &schedule, &keep])?.map_or(1, |r| r.get(0));
        self.exec(START_RUN, &[&name, &seq, &slot, &slot_end, &started, &host, &pid, &JOB_RUNNING])?;
        Ok(seq)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn job_finish(
        &self,
        name: &str,
        seq: i64,
        finished: i64,
        outcome: i64,
        status: Option<i64>,
        stderr_tail: Option<&str>,
        complete: bool,
    ) -> Result<()> {
        let Some(run) = self.row(FINISH_RUN, &[&name, &seq, &finished, &outcome, &status, &stderr_tail])?
        else {
            return Ok(());
        };
        let slot: i64 = run.get(0);
        if let Some(row) = self.row(FINISH_JOB, &[&name, &outcome, &complete, &slot])? {
            let upto: i64 = row.get(0);
            self.exec(PRUNE, &[&name, &upto])?;
        }
        Ok(())
    }

    pub fn job_runs(&self, name: &str, outcome: Option<i64>, limit: i64) -> Result<Vec<JobRunRow>> {
        Ok(self
            .rows(RUNS, &[&name, &outcome, &limit])?
            .iter()
            .map(|r| JobRunRow {
                seq: r.get(0),
                slot: r.get(1),
                slot_end: r.get(2),
                started: r.get(3),
                finished: r.get(4),
                outcome: r.get(5),
                status: r.get(6),
                duration_ms: r.get(7),
                host: r.get(8),
                pid: r.get(9),
                stderr_tail: r.get(10),
            })
            .collect())
    }
}

//! The cron jobs' SQL.

use rusqlite::params;

use super::Engine;
use crate::error::Result;
use crate::storage::job::ABANDONED;
use crate::storage::{JobRow, JobRunRow, JOB_FAILED, JOB_RUNNING};

const GET: &str =
    "SELECT name, schedule, done_through, runs, keep, succeeded, failed FROM cairn_job WHERE name = ?1";
const ALL: &str =
    "SELECT name, schedule, done_through, runs, keep, succeeded, failed FROM cairn_job ORDER BY name";
const ABANDON: &str =
    "UPDATE cairn_job_run SET outcome = ?2, stderr_tail = ?3 WHERE job = ?1 AND outcome = ?4";
const COUNT_ABANDONED: &str = "UPDATE cairn_job SET failed = failed + ?2 WHERE name = ?1";
const START_JOB: &str =
    "INSERT INTO cairn_job (name, schedule, done_through, runs, keep, succeeded, failed) \
     VALUES (?1, ?2, NULL, 1, ?3, 0, 0) \
     ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule, keep = excluded.keep, \
     runs = cairn_job.runs + 1 RETURNING runs";
const START_RUN: &str = "INSERT INTO cairn_job_run \
     (job, seq, slot, slot_end, started, finished, outcome, status, duration_ms, host, pid, stderr_tail) \
     VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?8, NULL, NULL, ?6, ?7, NULL)";
const FINISH_RUN: &str = "UPDATE cairn_job_run SET finished = ?3, outcome = ?4, status = ?5, \
     duration_ms = max(?3 - started, 0), stderr_tail = ?6 WHERE job = ?1 AND seq = ?2 RETURNING slot";
const FINISH_JOB: &str = "UPDATE cairn_job SET \
     succeeded = succeeded + (?2 = 1), failed = failed + (?2 = 2), \
     done_through = CASE WHEN ?3 THEN max(coalesce(done_through, ?4), ?4) ELSE done_through END \
     WHERE name = ?1 RETURNING runs - keep";
const PRUNE: &str = "DELETE FROM cairn_job_run WHERE job = ?1 AND seq <= ?2";
const RUNS: &str = "SELECT seq, slot, slot_end, started, finished, outcome, status, duration_ms, host, pid, \
     stderr_tail FROM cairn_job_run WHERE job = ?1 AND (?2 IS NULL OR outcome = ?2) ORDER BY seq DESC LIMIT ?3";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        name: r.get(0)?,
        schedule: r.get(1)?,
        done_through: r.get(2)?,
        runs: r.get(3)?,
        keep: r.get(4)?,
        succeeded: r.get(5)?,
        failed: r.get(6)?,
    })
}

impl Engine {
    pub fn job_get(&self, name: &str) -> Result<Option<JobRow>> {
        self.row(GET, params![name], job_row)
    }

    pub fn job_all(&self) -> Result<Vec<JobRow>> {
        let mut st = self.conn.prepare_cached(ALL).map_err(|e| self.err(e))?;
        let rows = st.query_map([], job_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
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
        let abandoned = self.exec(ABANDON, params![name, JOB_FAILED, ABANDONED, JOB_RUNNING])?;
        if abandoned > 0 {
            self.exec(COUNT_ABANDONED, params![name, i64::try_from(abandoned).unwrap_or(i64::MAX)])?;
        }
        let seq: i64 = self.row(START_JOB, params![name, schedule, keep], |r| r.get(0))?.unwrap_or(1);
        self.exec(START_RUN, params![name, seq, slot, slot_end, started, host, pid, JOB_RUNNING])?;
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
        let Some(slot): Option<i64> =
            self.row(FINISH_RUN, params![name, seq, finished, outcome, status, stderr_tail], |r| r.get(0))?
        else {
            return Ok(());
        };
        if let Some(upto) =
            self.row(FINISH_JOB, params![name, outcome, complete, slot], |r| r.get::<_, i64>(0))?
        {
            self.exec(PRUNE, params![name, upto])?;
        }
        Ok(())
    }

    pub fn job_runs(&self, name: &str, outcome: Option<i64>, limit: i64) -> Result<Vec<JobRunRow>> {
        let mut st = self.conn.prepare_cached(RUNS).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![name, outcome, limit], |r| {
                Ok(JobRunRow {
                    seq: r.get(0)?,
                    slot: r.get(1)?,
                    slot_end: r.get(2)?,
                    started: r.get(3)?,
                    finished: r.get(4)?,
                    outcome: r.get(5)?,
                    status: r.get(6)?,
                    duration_ms: r.get(7)?,
                    host: r.get(8)?,
                    pid: r.get(9)?,
                    stderr_tail: r.get(10)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }
}

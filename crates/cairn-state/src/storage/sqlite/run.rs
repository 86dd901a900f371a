//! The durable runs' SQL. Every write is fenced by the run's token inside the statement
//! itself, so that an attempt that lost the run records nothing, whatever it believed.

use rusqlite::{params, Row};

use super::Engine;
use crate::error::Result;
use crate::storage::{
    Hold, RunRow, RunWithStep, StepResult, StepRow, StepWrite, RUN_FINISHED, RUN_RUNNING, STEP_DONE,
    STEP_FAILED,
};

const RUN_COLUMNS: &str =
    "id, state, token, attempts, owner, holder, lease_until, error, started_at, updated_at, finished_at";
const STEP_COLUMNS: &str =
    "name, seq, state, fingerprint, value, kind, attempts, error, started_at, finished_at, output";

/// A step's record, written only while the attempt holding `?2` still holds the run; a step
/// already done is never overwritten.
const RECORD: &str = "INSERT INTO cairn_step \
     (run, name, seq, state, fingerprint, value, kind, attempts, error, started_at, finished_at, output) \
     SELECT ?1, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?10, ?11, ?14 FROM cairn_run WHERE id = ?1 AND token = ?2 AND state = ?12 \
     ON CONFLICT (run, name) DO UPDATE SET seq = excluded.seq, state = excluded.state, \
     fingerprint = excluded.fingerprint, value = excluded.value, kind = excluded.kind, \
     attempts = cairn_step.attempts + 1, error = excluded.error, started_at = excluded.started_at, \
     finished_at = excluded.finished_at, output = excluded.output WHERE cairn_step.state <> ?13";

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        state: r.get(1)?,
        token: r.get(2)?,
        attempts: r.get(3)?,
        owner: r.get(4)?,
        holder: r.get(5)?,
        lease_until: r.get(6)?,
        error: r.get(7)?,
        started_at: r.get(8)?,
        updated_at: r.get(9)?,
        finished_at: r.get(10)?,
    })
}

fn step_row(r: &Row<'_>) -> rusqlite::Result<StepRow> {
    let value: Option<Vec<u8>> = r.get(4)?;
    let kind: Option<i64> = r.get(5)?;
    Ok(StepRow {
        name: r.get(0)?,
        seq: r.get(1)?,
        state: r.get(2)?,
        fingerprint: r.get(3)?,
        value: value.map(|v| (v, kind.unwrap_or(0))),
        attempts: r.get(6)?,
        error: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
        output: r.get(10)?,
    })
}

impl Engine {
    /// The write lock is held already: nothing to take.
    pub fn run_lock(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    pub fn run_get(&self, id: &str) -> Result<Option<RunRow>> {
        self.row(&format!("SELECT {RUN_COLUMNS} FROM cairn_run WHERE id = ?1"), params![id], run_row)
    }

    pub fn run_insert(&self, id: &str, hold: &Hold<'_>, now: i64) -> Result<bool> {
        Ok(self.exec(
            "INSERT INTO cairn_run (id, state, token, attempts, owner, holder, lease_until, started_at, updated_at) \
             VALUES (?1, ?2, 1, 1, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (id) DO NOTHING",
            params![id, RUN_RUNNING, hold.owner, hold.holder, hold.lease_until, now],
        )? == 1)
    }

    pub fn run_take(&self, id: &str, was: i64, hold: &Hold<'_>, now: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE cairn_run SET state = ?3, token = token + 1, attempts = attempts + 1, owner = ?4, \
             holder = ?5, lease_until = ?6, updated_at = ?7 WHERE id = ?1 AND token = ?2 AND state <> ?8",
            params![id, was, RUN_RUNNING, hold.owner, hold.holder, hold.lease_until, now, RUN_FINISHED],
        )? == 1)
    }

    pub fn run_renew(&self, id: &str, token: i64, lease_until: i64, now: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE cairn_run SET lease_until = ?3, updated_at = ?4 WHERE id = ?1 AND token = ?2 AND state = ?5",
            params![id, token, lease_until, now, RUN_RUNNING],
        )? == 1)
    }

    pub fn run_end(&self, id: &str, token: i64, state: i64, error: Option<&str>, now: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE cairn_run SET state = ?3, error = ?4, owner = NULL, holder = NULL, lease_until = NULL, \
             updated_at = ?5, finished_at = CASE WHEN ?3 = ?6 THEN ?5 END \
             WHERE id = ?1 AND token = ?2 AND state = ?7",
            params![id, token, state, error, now, RUN_FINISHED, RUN_RUNNING],
        )? == 1)
    }

    pub fn step_get(&self, run: &str, name: &str) -> Result<Option<StepRow>> {
        self.row(
            &format!("SELECT {STEP_COLUMNS} FROM cairn_step WHERE run = ?1 AND name = ?2"),
            params![run, name],
            step_row,
        )
    }

    /// One row from each table at most, as a `UNION ALL` of single-table reads: SQLite
    /// compiles it for about 30,000 instructions fewer than the same three-table join. Not
    /// kept in the statement cache: its caller is a process that takes a run for one step
    /// (`cairn step`), and a cached statement is compiled as a persistent one, without
    /// SQLite's lookaside memory, which cost about 43,000 instructions more to compile it.
    pub fn run_step_get(&self, id: &str, name: &str, ns: &str) -> Result<Option<RunWithStep>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT 0, state, token, attempts, NULL FROM cairn_run WHERE id = ?1 \
                 UNION ALL SELECT 1, state, fingerprint, value, kind FROM cairn_step WHERE run = ?1 AND name = ?2 \
                 UNION ALL SELECT 2, lru, max_entries, max_bytes, NULL FROM cairn_cache_ns WHERE ns = ?3",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = st.query(params![id, name, ns]).map_err(|e| self.err(e))?;
        let mut run = None;
        let mut step = None;
        let mut lru = false;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let which: i64 = r.get(0).map_err(|e| self.err(e))?;
            let got = match which {
                0 => r.get(1).and_then(|state| {
                    run = Some((state, r.get(2)?, r.get(3)?));
                    Ok(())
                }),
                1 => r.get(1).and_then(|state| {
                    let value: Option<Vec<u8>> = r.get(3)?;
                    let kind: Option<i64> = r.get(4)?;
                    step = Some(StepResult {
                        state,
                        fingerprint: r.get(2)?,
                        value: value.map(|v| (v, kind.unwrap_or(0))),
                    });
                    Ok(())
                }),
                // As the cache reads it: least recently used, and bounded.
                _ => r.get::<_, bool>(1).and_then(|l| {
                    let entries: Option<i64> = r.get(2)?;
                    let bytes: Option<i64> = r.get(3)?;
                    lru = l && (entries.is_some() || bytes.is_some());
                    Ok(())
                }),
            };
            got.map_err(|e| self.err(e))?;
        }
        Ok(run.map(|(state, token, attempts)| RunWithStep { state, token, attempts, step, lru }))
    }

    pub fn step_record(&self, run: &str, token: i64, step: &StepWrite<'_>) -> Result<bool> {
        let (state, value, kind) = match step.value {
            Some((bytes, kind)) => (STEP_DONE, Some(bytes), Some(i64::from(kind.code()))),
            None => (STEP_FAILED, None, None),
        };
        Ok(self.exec(
            RECORD,
            params![
                run,
                token,
                step.name,
                step.seq,
                state,
                step.fingerprint,
                value,
                kind,
                step.error,
                step.started_at,
                step.finished_at,
                RUN_RUNNING,
                STEP_DONE,
                step.output
            ],
        )? == 1)
    }

    pub fn runs_list(&self, state: Option<i64>, after: &str, limit: i64) -> Result<Vec<RunRow>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM cairn_run WHERE (?1 IS NULL OR state = ?1) AND id > ?2 ORDER BY id LIMIT ?3"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st.query_map(params![state, after, limit], run_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn steps_list(&self, run: &str) -> Result<Vec<StepRow>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {STEP_COLUMNS} FROM cairn_step WHERE run = ?1 ORDER BY seq, name"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st.query_map(params![run], step_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn run_reset(&self, id: &str, from_seq: i64, now: i64) -> Result<usize> {
        let gone = self.exec("DELETE FROM cairn_step WHERE run = ?1 AND seq >= ?2", params![id, from_seq])?;
        self.exec(
            "UPDATE cairn_run SET state = CASE WHEN state = ?2 THEN ?3 ELSE state END, finished_at = NULL, \
             updated_at = ?4 WHERE id = ?1",
            params![id, RUN_FINISHED, crate::storage::RUN_FAILED, now],
        )?;
        Ok(gone)
    }

    pub fn run_forget(&self, id: &str) -> Result<bool> {
        self.exec("DELETE FROM cairn_step WHERE run = ?1", params![id])?;
        Ok(self.exec("DELETE FROM cairn_run WHERE id = ?1", params![id])? == 1)
    }

    pub fn runs_prune(&self, before: i64) -> Result<usize> {
        self.exec(
            "DELETE FROM cairn_step WHERE run IN (SELECT id FROM cairn_run WHERE finished_at < ?1)",
            params![before],
        )?;
        self.exec("DELETE FROM cairn_run WHERE finished_at < ?1", params![before])
    }
}

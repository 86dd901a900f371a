//! The durable runs' SQL on PostgreSQL. A step's record locks the run's row (`FOR SHARE`) in
//! the statement that writes it, so that it either lands before a takeover commits or sees the
//! new token and records nothing: a stale attempt never records a step.

use postgres::Row;

use super::Engine;
use crate::error::Result;
use crate::storage::{
    Hold, RunRow, RunWithStep, StepResult, StepRow, StepWrite, RUN_FINISHED, RUN_RUNNING, STEP_DONE,
    STEP_FAILED,
};

macro_rules! run_columns {
    () => {
        "id, state::bigint, token, attempts, owner, holder, lease_until, error, started_at, updated_at, finished_at"
    };
}
macro_rules! step_columns {
    () => {
        "name, seq, state::bigint, fingerprint, value, kind::bigint, attempts, error, started_at, finished_at, output"
    };
}

const RECORD: &str = "INSERT INTO {s}.cairn_step \
     (run, name, seq, state, fingerprint, value, kind, attempts, error, started_at, finished_at, output) \
     SELECT $1::text, $3::text, $4::bigint, $5::smallint, $6::text, $7::bytea, $8::smallint, 1, $9::text, $10::bigint, \
     $11::bigint, $12::text FROM {s}.cairn_run \
     WHERE id = $1 AND token = $2 AND state = 0 FOR SHARE \
     ON CONFLICT (run, name) DO UPDATE SET seq = excluded.seq, state = excluded.state, \
     fingerprint = excluded.fingerprint, value = excluded.value, kind = excluded.kind, \
     attempts = {s}.cairn_step.attempts + 1, error = excluded.error, started_at = excluded.started_at, \
     finished_at = excluded.finished_at, output = excluded.output WHERE {s}.cairn_step.state <> 2";

fn run_row(r: &Row) -> RunRow {
    RunRow {
        id: r.get(0),
        state: r.get(1),
        token: r.get(2),
        attempts: r.get(3),
        owner: r.get(4),
        holder: r.get(5),
        lease_until: r.get(6),
        error: r.get(7),
        started_at: r.get(8),
        updated_at: r.get(9),
        finished_at: r.get(10),
    }
}

fn step_row(r: &Row) -> StepRow {
    let value: Option<Vec<u8>> = r.get(4);
    let kind: Option<i64> = r.get(5);
    StepRow {
        name: r.get(0),
        seq: r.get(1),
        state: r.get(2),
        fingerprint: r.get(3),
        value: value.map(|v| (v, kind.unwrap_or(0))),
        attempts: r.get(6),
        error: r.get(7),
        started_at: r.get(8),
        finished_at: r.get(9),
        output: r.get(10),
    }
}

impl Engine {
    pub fn run_lock(&self, id: &str) -> Result<()> {
        self.row("SELECT 1 FROM {s}.cairn_run WHERE id = $1 FOR UPDATE", &[&id]).map(drop)
    }

    pub fn run_get(&self, id: &str) -> Result<Option<RunRow>> {
        Ok(self
            .row(concat!("SELECT ", run_columns!(), " FROM {s}.cairn_run WHERE id = $1"), &[&id])?
            .map(|r| run_row(&r)))
    }

    pub fn run_insert(&self, id: &str, hold: &Hold<'_>, now: i64) -> Result<bool> {
        debug_assert_eq!(RUN_RUNNING, 0);
        Ok(self.exec(
            "INSERT INTO {s}.cairn_run (id, state, token, attempts, owner, holder, lease_until, started_at, updated_at) \
             VALUES ($1, 0, 1, 1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
            &[&id, &hold.owner, &hold.holder, &hold.lease_until, &now],
        )? == 1)
    }

    pub fn run_take(&self, id: &str, was: i64, hold: &Hold<'_>, now: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE {s}.cairn_run SET state = 0, token = token + 1, attempts = attempts + 1, owner = $3, \
             holder = $4, lease_until = $5, updated_at = $6 WHERE id = $1 AND token = $2 AND state <> 2",
            &[&id, &was, &hold.owner, &hold.holder, &hold.lease_until, &now],
        )? == 1)
    }

    pub fn run_renew(&self, id: &str, token: i64, lease_until: i64, now: i64) -> Result<bool> {
        Ok(self.exec_idempotent(
            "UPDATE {s}.cairn_run SET lease_until = $3, updated_at = $4 WHERE id = $1 AND token = $2 AND state = 0",
            &[&id, &token, &lease_until, &now],
        )? == 1)
    }

    pub fn run_end(&self, id: &str, token: i64, state: i64, error: Option<&str>, now: i64) -> Result<bool> {
        let finished = state == RUN_FINISHED;
        Ok(self.exec(
            "UPDATE {s}.cairn_run SET state = CASE WHEN $5::boolean THEN 2 ELSE 1 END, error = $3, owner = NULL, \
             holder = NULL, lease_until = NULL, updated_at = $4, finished_at = CASE WHEN $5::boolean THEN $4::bigint END \
             WHERE id = $1 AND token = $2 AND state = 0",
            &[&id, &token, &error, &now, &finished],
        )? == 1)
    }

    pub fn step_get(&self, run: &str, name: &str) -> Result<Option<StepRow>> {
        Ok(self
            .row(
                concat!("SELECT ", step_columns!(), " FROM {s}.cairn_step WHERE run = $1 AND name = $2"),
                &[&run, &name],
            )?
            .map(|r| step_row(&r)))
    }

    pub fn run_step_get(&self, id: &str, name: &str, ns: &str) -> Result<Option<RunWithStep>> {
        Ok(self
            .row(
                "SELECT r.state::bigint, r.token, r.attempts, s.state::bigint, s.fingerprint, s.value, s.kind::bigint, \
                 n.lru AND (n.max_entries IS NOT NULL OR n.max_bytes IS NOT NULL) FROM {s}.cairn_run r \
                 LEFT JOIN {s}.cairn_step s ON s.run = r.id AND s.name = $2 \
                 LEFT JOIN {s}.cairn_cache_ns n ON n.ns = $3 WHERE r.id = $1",
                &[&id, &name, &ns],
            )?
            .map(|r| {
                let state: Option<i64> = r.get(3);
                let step = state.map(|state| {
                    let value: Option<Vec<u8>> = r.get(5);
                    let kind: Option<i64> = r.get(6);
                    StepResult { state, fingerprint: r.get(4), value: value.map(|v| (v, kind.unwrap_or(0))) }
                });
                let lru: Option<bool> = r.get(7);
                RunWithStep {
                    state: r.get(0),
                    token: r.get(1),
                    attempts: r.get(2),
                    step,
                    lru: lru.unwrap_or(false),
                }
            }))
    }

    pub fn step_record(&self, run: &str, token: i64, step: &StepWrite<'_>) -> Result<bool> {
        let (state, value, kind) = match step.value {
            Some((bytes, kind)) => (STEP_DONE, Some(bytes), Some(i16::from(kind.code()))),
            None => (STEP_FAILED, None, None),
        };
        let state = i16::try_from(state).unwrap_or(1);
        Ok(self.exec(
            RECORD,
            &[
                &run,
                &token,
                &step.name,
                &step.seq,
                &state,
                &step.fingerprint,
                &value,
                &kind,
                &step.error,
                &step.started_at,
                &step.finished_at,
                &step.output,
            ],
        )? == 1)
    }

    pub fn runs_list(&self, state: Option<i64>, after: &str, limit: i64) -> Result<Vec<RunRow>> {
        Ok(self
            .rows(
                concat!(
                    "SELECT ",
                    run_columns!(),
                    " FROM {s}.cairn_run WHERE ($1::bigint IS NULL OR state = $1) AND id > $2 ORDER BY id LIMIT $3"
                ),
                &[&state, &after, &limit],
            )?
            .iter()
            .map(run_row)
            .collect())
    }

    pub fn steps_list(&self, run: &str) -> Result<Vec<StepRow>> {
        Ok(self
            .rows(
                concat!("SELECT ", step_columns!(), " FROM {s}.cairn_step WHERE run = $1 ORDER BY seq, name"),
                &[&run],
            )?
            .iter()
            .map(step_row)
            .collect())
    }

    pub fn run_reset(&self, id: &str, from_seq: i64, now: i64) -> Result<usize> {
        let gone = self.exec("DELETE FROM {s}.cairn_step WHERE run = $1 AND seq >= $2", &[&id, &from_seq])?;
        self.exec(
            "UPDATE {s}.cairn_run SET state = CASE WHEN state = 2 THEN 1 ELSE state END, finished_at = NULL, \
             updated_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
        Ok(usize::try_from(gone).unwrap_or(usize::MAX))
    }

    pub fn run_forget(&self, id: &str) -> Result<bool> {
        self.exec("DELETE FROM {s}.cairn_step WHERE run = $1", &[&id])?;
        Ok(self.exec("DELETE FROM {s}.cairn_run WHERE id = $1", &[&id])? == 1)
    }

    pub fn runs_prune(&self, before: i64) -> Result<usize> {
        self.exec(
            "DELETE FROM {s}.cairn_step WHERE run IN (SELECT id FROM {s}.cairn_run WHERE finished_at < $1)",
            &[&before],
        )?;
        Ok(usize::try_from(self.exec("DELETE FROM {s}.cairn_run WHERE finished_at < $1", &[&before])?)
            .unwrap_or(usize::MAX))
    }
}

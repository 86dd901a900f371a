//! The cron jobs' part of the engine contract, and the rows it returns.

use crate::error::Result;

engine_ops! {
    /// Cron jobs: one row per job (its schedule, the newest slot it completed, counters) and
    /// one per run, newest `keep` kept. Times are Unix milliseconds.
    trait JobOps {
        /// The job's row, if it ever ran.
        fn job_get(&self, name: &str) -> Result<Option<JobRow>>;
        /// Every job that ever ran, by name.
        fn job_all(&self) -> Result<Vec<JobRow>>;
        /// Record a run starting (creating the job, or updating its schedule and `keep`);
        /// returns its number. Runs of the job still marked running are from runs that died
        /// (the caller holds the job's lock): they are marked failed, and counted so.
        fn job_start(&self, name: &str, schedule: &str, keep: i64, slot: i64, slot_end: i64, started: i64, host: &str, pid: i64) -> Result<i64>;
        /// Record run `seq`'s end; `complete`: its slot is done. Prunes runs beyond `keep`.
        fn job_finish(&self, name: &str, seq: i64, finished: i64, outcome: i64, status: Option<i64>, stderr_tail: Option<&str>, complete: bool) -> Result<()>;
        /// The job's runs, newest first, at most `limit`; with `outcome`, only those.
        fn job_runs(&self, name: &str, outcome: Option<i64>, limit: i64) -> Result<Vec<JobRunRow>>;
    }
}

/// A run still going (or one that died before recording its end).
pub(crate) const JOB_RUNNING: i64 = 0;
/// A run whose command exited 0.
pub(crate) const JOB_SUCCEEDED: i64 = 1;
/// A run whose command failed.
pub(crate) const JOB_FAILED: i64 = 2;

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobRow {
    pub name: String,
    pub schedule: String,
    pub done_through: Option<i64>,
    pub runs: i64,
    pub keep: i64,
    pub succeeded: i64,
    pub failed: i64,
}

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobRunRow {
    pub seq: i64,
    pub slot: i64,
    pub slot_end: i64,
    pub started: i64,
    pub finished: Option<i64>,
    pub outcome: i64,
    pub status: Option<i64>,
    pub duration_ms: Option<i64>,
    pub host: String,
    pub pid: i64,
    pub stderr_tail: Option<String>,
}

/// What a run that died before recording its end is marked with.
pub(crate) const ABANDONED: &str = "the run ended without recording its end (its process died)";

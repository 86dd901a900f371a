//! The durable runs' part of the engine contract, and the rows it exchanges: a run is held by
//! one attempt at a time (a lease and a fencing token, as a claim is), and each of its steps
//! keeps the result of its first success.

use crate::codec::ValueKind;
use crate::error::Result;

/// A run's states as stored: the attempt holding it is working, the last attempt ended with
/// an error (or without finishing), or the run is finished.
pub(crate) const RUN_RUNNING: i64 = 0;
pub(crate) const RUN_FAILED: i64 = 1;
pub(crate) const RUN_FINISHED: i64 = 2;

/// A step's states as stored: its last execution failed (no result), or it is done.
pub(crate) const STEP_FAILED: i64 = 1;
pub(crate) const STEP_DONE: i64 = 2;

engine_ops! {
    /// Durable runs and their steps.
    trait RunOps {
        /// A run's row.
        fn run_get(&self, id: &str) -> Result<Option<RunRow>>;
        /// Inside a write transaction: hold the run's row until it ends, so that writers of
        /// its steps that read its step list first take turns (SQLite's write lock already
        /// does; a server locks the row).
        fn run_lock(&self, id: &str) -> Result<()>;
        /// Start a run that has no row yet, held by `hold`; false if it has one by now.
        fn run_insert(&self, id: &str, hold: &Hold<'_>, now: i64) -> Result<bool>;
        /// Take a run whose token is still `was` (free, failed, lapsed or its holder dead) for a
        /// new attempt: its token and attempts go up by one; false if another took it first.
        fn run_take(&self, id: &str, was: i64, hold: &Hold<'_>, now: i64) -> Result<bool>;
        /// Move the lease of the attempt holding `token`; false if it no longer holds the run.
        fn run_renew(&self, id: &str, token: i64, lease_until: i64, now: i64) -> Result<bool>;
        /// End the attempt holding `token`: finished, or failed with `error`; false if it no
        /// longer held the run.
        fn run_end(&self, id: &str, token: i64, state: i64, error: Option<&str>, now: i64) -> Result<bool>;
        /// One step of a run.
        fn step_get(&self, run: &str, name: &str) -> Result<Option<StepRow>>;
        /// What replaying step `name` of run `id` reads, in one statement: the run's state,
        /// token and attempts, the step's result if it has that step, and whether hits in
        /// cache namespace `ns` (where command steps keep their output) record their use. None:
        /// no such run.
        fn run_step_get(&self, id: &str, name: &str, ns: &str) -> Result<Option<RunWithStep>>;
        /// Record a step's execution for the attempt holding `token` (a result when done, an
        /// error when failed); false, recording nothing, if that attempt no longer holds the run.
        fn step_record(&self, run: &str, token: i64, step: &StepWrite<'_>) -> Result<bool>;
        /// The runs in `state` (every one for None), by id, at most `limit`, after `after`.
        fn runs_list(&self, state: Option<i64>, after: &str, limit: i64) -> Result<Vec<RunRow>>;
        /// A run's steps in their order.
        fn steps_list(&self, run: &str) -> Result<Vec<StepRow>>;
        /// Forget the steps of a run from position `from_seq` on (all of them for 0), and make a
        /// finished run failed so that its next attempt runs them; how many steps went.
        fn run_reset(&self, id: &str, from_seq: i64, now: i64) -> Result<usize>;
        /// Delete a run and its steps; false if there was no such run.
        fn run_forget(&self, id: &str) -> Result<bool>;
        /// Delete the runs finished before `before` and their steps; how many runs.
        fn runs_prune(&self, before: i64) -> Result<usize>;
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunRow {
    pub id: String,
    pub state: i64,
    pub token: i64,
    pub attempts: i64,
    /// The attempt holding it; None once released.
    pub owner: Option<String>,
    /// `boot/pid/start` of the process whose death frees it; None: only the lease.
    pub holder: Option<String>,
    pub lease_until: Option<i64>,
    pub error: Option<String>,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// Who takes a run, and until when.
pub(crate) struct Hold<'a> {
    pub owner: &'a str,
    pub holder: Option<&'a str>,
    pub lease_until: i64,
}

/// A step as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepRow {
    pub name: String,
    pub seq: i64,
    pub state: i64,
    pub fingerprint: String,
    pub value: Option<(Vec<u8>, i64)>,
    pub attempts: i64,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: i64,
    /// For a command step: the head of its output when done, the tail when failed.
    pub output: Option<String>,
}

/// A run's state with one of its steps, as joining a finished run to replay that step reads
/// them (the rest of either row is not needed, so not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunWithStep {
    pub state: i64,
    pub token: i64,
    pub attempts: i64,
    /// None: the run has no such step.
    pub step: Option<StepResult>,
    /// Whether hits in the namespace record their use (its eviction is least recently used
    /// and it has a bound), as the cache reads it before a hit.
    pub lru: bool,
}

/// What replaying a step needs of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepResult {
    pub state: i64,
    pub fingerprint: String,
    pub value: Option<(Vec<u8>, i64)>,
}

/// One execution of a step to record: `value` when it succeeded, else `error`.
pub(crate) struct StepWrite<'a> {
    pub name: &'a str,
    pub seq: i64,
    pub fingerprint: &'a str,
    pub value: Option<(&'a [u8], ValueKind)>,
    pub error: Option<&'a str>,
    pub started_at: i64,
    pub finished_at: i64,
    pub output: Option<&'a str>,
}

//! Cron jobs: `job_*` methods. The Python layer (`cairn.Job`) turns the raw records into typed
//! ones and catches the run function's exceptions (it hands back a status and a traceback tail,
//! and re-raises after the run is recorded).

use std::time::Duration;

use pyo3::prelude::*;

use super::Connection;
use crate::convert::{self, Text};
use crate::errors::{to_py, Failure};

/// One run of a job (`cairn::JobRunInfo`). Private: `cairn.JobRun` is made from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawJobRun {
    seq: i64,
    slot_start_millis: i64,
    slot_end_millis: i64,
    started_millis: i64,
    finished_millis: Option<i64>,
    outcome: &'static str,
    status: Option<i32>,
    duration: Option<f64>,
    host: String,
    pid: i64,
    stderr_tail: Option<String>,
}

impl From<cairn::JobRunInfo> for RawJobRun {
    fn from(r: cairn::JobRunInfo) -> Self {
        RawJobRun {
            seq: r.seq,
            slot_start_millis: r.slot.start_ms,
            slot_end_millis: r.slot.end_ms,
            started_millis: r.started_ms,
            finished_millis: r.finished_ms,
            outcome: r.outcome.as_str(),
            status: r.status,
            duration: r.duration.map(|d| d.as_secs_f64()),
            host: r.host,
            pid: r.pid,
            stderr_tail: r.stderr_tail,
        }
    }
}

/// A job as `store.jobs()` lists it (`cairn::JobInfo`).
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawJobInfo {
    name: String,
    schedule: String,
    last_run: Option<Py<RawJobRun>>,
    last_success: Option<Py<RawJobRun>>,
    last_failure: Option<Py<RawJobRun>>,
    next_slot: Option<(i64, i64)>,
    done_through_millis: Option<i64>,
    running: bool,
    succeeded: u64,
    failed: u64,
}

/// What `job_check` found (`cairn::JobHealth`).
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawJobHealth {
    healthy: bool,
    last_success: Option<Py<RawJobRun>>,
    last_failure: Option<Py<RawJobRun>>,
    message: String,
}

/// What `job_run` did (`cairn::JobOutcome`): `kind` is `ran`, `done` or `running`.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawJobOutcome {
    kind: &'static str,
    runs: Vec<Py<RawJobRun>>,
    slot: Option<(i64, i64)>,
    pid: Option<u32>,
}

fn run_py(py: Python<'_>, r: Option<cairn::JobRunInfo>) -> PyResult<Option<Py<RawJobRun>>> {
    r.map(|r| Py::new(py, RawJobRun::from(r))).transpose()
}

/// The job's schedule: `every` (a duration) or `cron` (an expression, in zone `tz`).
fn schedule(
    py: Python<'_>,
    every: Option<&Bound<'_, PyAny>>,
    cron: Option<&str>,
    tz: &str,
) -> PyResult<cairn::Schedule> {
    let py_err = |e: cairn::Error| to_py(py, e);
    match (convert::duration(every, "a job's period")?, cron) {
        (Some(d), None) => cairn::Schedule::every(d).map_err(py_err),
        (None, Some(expr)) => cairn::Schedule::cron(expr, tz).map_err(py_err),
        _ => Err(crate::errors::invalid("a job needs exactly one of every= and cron=")),
    }
}

/// A job's policy, as the Python layer passes it.
struct Policy {
    catch_up: cairn::CatchUp,
    max_catch_up: u32,
    no_retry: bool,
    keep: u32,
}

#[pymethods]
impl Connection {
    /// Check a job's schedule and policy: the slot they give now, as Unix ms.
    #[pyo3(signature = (name, every, cron, tz, catch_up, max_catch_up, no_retry, keep))]
    #[allow(clippy::too_many_arguments)]
    fn job_current_slot(
        &self,
        py: Python<'_>,
        name: Text,
        every: Option<&Bound<'_, PyAny>>,
        cron: Option<&str>,
        tz: &str,
        catch_up: &str,
        max_catch_up: u32,
        no_retry: bool,
        keep: u32,
    ) -> PyResult<(i64, i64)> {
        let sched = schedule(py, every, cron, tz)?;
        let policy = policy(py, catch_up, max_catch_up, no_retry, keep)?;
        self.run_store(py, |s| {
            let slot = job(s, &name, sched, &policy)?.current_slot()?;
            Ok((slot.start_ms, slot.end_ms))
        })
    }

    /// Run the job's due slots, calling `f(start_ms, end_ms)` for each; `f` returns the exit
    /// status and the tail of its stderr (it must not raise: the Python layer catches).
    #[pyo3(signature = (name, every, cron, tz, catch_up, max_catch_up, no_retry, keep, f))]
    #[allow(clippy::too_many_arguments)]
    fn job_run(
        &self,
        py: Python<'_>,
        name: Text,
        every: Option<&Bound<'_, PyAny>>,
        cron: Option<&str>,
        tz: &str,
        catch_up: &str,
        max_catch_up: u32,
        no_retry: bool,
        keep: u32,
        f: Py<PyAny>,
    ) -> PyResult<RawJobOutcome> {
        let sched = schedule(py, every, cron, tz)?;
        let policy = policy(py, catch_up, max_catch_up, no_retry, keep)?;
        let outcome = self.run_store(py, |s| {
            let job = job(s, &name, sched, &policy)?;
            let mut raised: Option<PyErr> = None;
            let outcome = job.run(|slot| {
                Python::attach(|py| match f.call1(py, (slot.start_ms, slot.end_ms)) {
                    Ok(end) => match end.extract::<(i32, Option<String>)>(py) {
                        Ok((status, stderr_tail)) => cairn::JobEnd { status, stderr_tail },
                        Err(e) => {
                            raised.get_or_insert(e);
                            cairn::JobEnd::status(1)
                        }
                    },
                    Err(e) => {
                        let tail = e.to_string();
                        raised.get_or_insert(e);
                        cairn::JobEnd { status: 1, stderr_tail: Some(tail) }
                    }
                })
            })?;
            if let Some(e) = raised {
                return Err(Failure::Py(e));
            }
            Ok(outcome)
        })?;
        Ok(match outcome {
            cairn::JobOutcome::Ran(runs) => RawJobOutcome {
                kind: "ran",
                runs: runs.into_iter().map(|r| Py::new(py, RawJobRun::from(r))).collect::<PyResult<_>>()?,
                slot: None,
                pid: None,
            },
            cairn::JobOutcome::Done { slot } => RawJobOutcome {
                kind: "done",
                runs: vec![],
                slot: Some((slot.start_ms, slot.end_ms)),
                pid: None,
            },
            cairn::JobOutcome::Running { slot, pid } => {
                RawJobOutcome { kind: "running", runs: vec![], slot: Some((slot.start_ms, slot.end_ms)), pid }
            }
        })
    }

    /// The job's runs, newest first, at most `limit`.
    fn job_history(&self, py: Python<'_>, name: Text, limit: u32) -> PyResult<Vec<RawJobRun>> {
        let runs = self.run_store(py, |s| Ok(s.job_history(&name, limit)?))?;
        Ok(runs.into_iter().map(RawJobRun::from).collect())
    }

    /// Every job that ran, by name.
    fn jobs(&self, py: Python<'_>) -> PyResult<Vec<RawJobInfo>> {
        let jobs = self.run_store(py, |s| Ok(s.jobs()?))?;
        jobs.into_iter().map(|j| job_info(py, j)).collect()
    }

    /// Whether the job's last success ended within `max_age`.
    fn job_check(&self, py: Python<'_>, name: Text, max_age: &Bound<'_, PyAny>) -> PyResult<RawJobHealth> {
        let max_age: Duration = convert::seconds(max_age, "a job's maximum age")?;
        let h = self.run_store(py, |s| Ok(s.job_check(&name, max_age)?))?;
        Ok(RawJobHealth {
            healthy: h.healthy,
            last_success: run_py(py, h.last_success)?,
            last_failure: run_py(py, h.last_failure)?,
            message: h.message,
        })
    }
}

fn policy(py: Python<'_>, catch_up: &str, max_catch_up: u32, no_retry: bool, keep: u32) -> PyResult<Policy> {
    let catch_up = catch_up.parse::<cairn::CatchUp>().map_err(|e| to_py(py, e))?;
    Ok(Policy { catch_up, max_catch_up, no_retry, keep })
}

fn job<'s>(
    s: &'s cairn::Store,
    name: &str,
    sched: cairn::Schedule,
    p: &Policy,
) -> Result<cairn::Job<'s>, Failure> {
    Ok(s.job(name, sched)?
        .catch_up(p.catch_up)
        .max_catch_up(p.max_catch_up)
        .no_retry(p.no_retry)
        .keep(p.keep))
}

fn job_info(py: Python<'_>, j: cairn::JobInfo) -> PyResult<RawJobInfo> {
    Ok(RawJobInfo {
        name: j.name,
        schedule: j.schedule,
        last_run: run_py(py, j.last_run)?,
        last_success: run_py(py, j.last_success)?,
        last_failure: run_py(py, j.last_failure)?,
        next_slot: j.next_slot.map(|s| (s.start_ms, s.end_ms)),
        done_through_millis: j.done_through_ms,
        running: j.running,
        succeeded: j.succeeded,
        failed: j.failed,
    })
}

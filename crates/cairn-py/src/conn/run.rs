//! Durable runs: `run_*` methods. The attempt is plain data (`HeldRun`) that the Python `Run`
//! keeps between calls; the step names (`name#2`) and positions are counted in it.

use cairn::{RunOptions, Value};
use pyo3::prelude::*;

use super::Connection;
use crate::convert::{self, Text};
use crate::handles::KeepAlive;

/// An attempt at a run (`cairn::HeldRun`). Private: `cairn.Run` keeps it.
#[pyclass(module = "cairn._cairn")]
pub(crate) struct HeldRun(cairn::HeldRun);

#[pymethods]
impl HeldRun {
    /// The run's id.
    #[getter]
    fn id(&self) -> &str {
        self.0.id()
    }

    /// Which attempt this is, from 1.
    #[getter]
    fn attempt(&self) -> u64 {
        self.0.attempt()
    }

    /// True if the run was finished before this attempt: its steps replay only.
    #[getter]
    fn finished(&self) -> bool {
        self.0.is_finished()
    }

    /// The full name (`name#2` for the second `name`) and position of the next step `name`.
    fn next_step(&mut self, name: Text) -> PyResult<(String, i64)> {
        self.0.next_step(&name).map_err(|e| Python::attach(|py| crate::errors::to_py(py, e)))
    }
}

/// A step of a run as `cairn.StepInfo` is made from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawStepInfo {
    name: String,
    state: String,
    attempts: u64,
    error: Option<String>,
    started_at_millis: i64,
    finished_at_millis: i64,
    version: String,
    output: Option<String>,
}

/// A run as `cairn.RunInfo` is made from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawRunInfo {
    id: String,
    state: String,
    attempts: u64,
    error: Option<String>,
    holder: Option<String>,
    lease_until_millis: Option<i64>,
    started_at_millis: i64,
    updated_at_millis: i64,
    finished_at_millis: Option<i64>,
    steps: Vec<Py<RawStepInfo>>,
}

fn raw_info(py: Python<'_>, r: cairn::RunInfo) -> PyResult<RawRunInfo> {
    let steps = r
        .steps
        .into_iter()
        .map(|s| {
            Py::new(
                py,
                RawStepInfo {
                    name: s.name,
                    state: s.state.as_str().to_owned(),
                    attempts: s.attempts,
                    error: s.error,
                    started_at_millis: s.started_at_millis,
                    finished_at_millis: s.finished_at_millis,
                    version: s.version,
                    output: s.output,
                },
            )
        })
        .collect::<PyResult<_>>()?;
    Ok(RawRunInfo {
        id: r.id,
        state: r.state.as_str().to_owned(),
        attempts: r.attempts,
        error: r.error,
        holder: r.holder,
        lease_until_millis: r.lease_until_millis,
        started_at_millis: r.started_at_millis,
        updated_at_millis: r.updated_at_millis,
        finished_at_millis: r.finished_at_millis,
        steps,
    })
}

impl Connection {
    /// The next step called `name` of `run`: its full name and position, and its recorded
    /// result under `version` or, for one to run, the store's time now (its start). A new step
    /// (names come from `next_step`) is not read back: only its start is needed.
    fn step_begin(
        &self,
        py: Python<'_>,
        run: &mut cairn::HeldRun,
        name: &str,
        version: &str,
    ) -> PyResult<(String, i64, Option<Value>, i64)> {
        cairn::validate_step_version(version).map_err(|e| crate::errors::to_py(py, e))?;
        let (full, seq) = run.next_step(name).map_err(|e| crate::errors::to_py(py, e))?;
        let run = &*run;
        let replays = run.may_be_recorded(&full);
        let (value, started) = self.run_store(py, |s| {
            if replays {
                if let Some(v) = s.replay_step::<Value>(run, &full, version)? {
                    return Ok((Some(v), 0));
                }
            }
            Ok((None, s.now_millis()))
        })?;
        Ok((full, seq, value, started))
    }
}

#[pymethods]
impl Connection {
    /// Take the run `id` for an attempt (or join it finished); `wait` None: as long as it is
    /// held.
    #[pyo3(signature = (id, lease, wait))]
    fn run_take(
        &self,
        py: Python<'_>,
        id: Text,
        lease: &Bound<'_, PyAny>,
        wait: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<HeldRun> {
        let mut options = RunOptions::new().lease(convert::seconds(lease, "a lease")?);
        options = match convert::duration(wait, "wait")? {
            Some(w) => options.wait(w),
            None => options.wait_forever(),
        };
        Ok(HeldRun(self.run_store(py, |s| Ok(s.take_run(&id, &options)?))?))
    }

    /// The next step called `name` of the attempt, in one call rather than three (every
    /// call into the extension counts at a step's scale): `(True, value, full name, position,
    /// 0)` for a step recorded under `version`, `(False, None, full name, position, the store's
    /// time now)` for one to run, its start.
    fn run_step_begin(
        &self,
        py: Python<'_>,
        mut held: PyRefMut<'_, HeldRun>,
        name: Text,
        version: Text,
    ) -> PyResult<(bool, Py<PyAny>, String, i64, i64)> {
        let (full, seq, value, started) = self.step_begin(py, &mut held.0, &name, &version)?;
        match value {
            Some(v) => Ok((true, convert::to_py(py, v)?, full, seq, 0)),
            None => Ok((false, py.None(), full, seq, started)),
        }
    }

    /// `run.step` in one call into the extension: the next step called `name`, replayed if
    /// recorded under `version`, else ``fn(*args, **kwargs)`` called and its result recorded.
    /// `(0, the recorded value, ...)` for a replay, `(1, the result, ...)` for a step run and
    /// recorded, `(2, the exception fn raised, full name, position, start)` for Python to
    /// record the failure and raise it. `held` is borrowed only around the store's calls, so
    /// that `fn` may take steps of the same attempt itself.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (held, name, version, fn_, args, kwargs=None))]
    fn run_step_call(
        &self,
        py: Python<'_>,
        held: Py<HeldRun>,
        name: Text,
        version: Text,
        fn_: &Bound<'_, PyAny>,
        args: &Bound<'_, pyo3::types::PyTuple>,
        kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<(u8, Py<PyAny>, String, i64, i64)> {
        let (full, seq, value, started) = {
            let mut h = held.bind(py).try_borrow_mut()?;
            self.step_begin(py, &mut h.0, &name, &version)?
        };
        if let Some(v) = value {
            return Ok((0, convert::to_py(py, v)?, full, seq, 0));
        }
        let result = match fn_.call(args, kwargs) {
            Ok(result) => result,
            Err(e) => return Ok((2, e.into_value(py).into_any(), full, seq, started)),
        };
        let value = convert::to_value(&result)?;
        let h = held.bind(py).try_borrow()?;
        let run = &h.0;
        self.run_store(py, |s| Ok(s.record_step(run, &full, seq, &version, started, Ok(&value))?))?;
        Ok((1, result.unbind(), full, seq, started))
    }

    /// `(True, value)` for a step recorded under `version`, `(False, None)` for one to run.
    fn run_replay(
        &self,
        py: Python<'_>,
        held: PyRef<'_, HeldRun>,
        name: Text,
        version: Text,
    ) -> PyResult<(bool, Py<PyAny>)> {
        let run = &held.0;
        if !run.may_be_recorded(&name) {
            return Ok((false, py.None())); // a new step (names come from next_step)
        }
        match self.run_store(py, |s| Ok(s.replay_step::<Value>(run, &name, &version)?))? {
            Some(v) => Ok((true, convert::to_py(py, v)?)),
            None => Ok((false, py.None())),
        }
    }

    /// Record an execution of step `name`: its `value`, or the `error` it failed with; inside
    /// transaction `tx` (not 0) with its other writes.
    #[pyo3(signature = (held, name, seq, version, started_millis, value, error, tx))]
    #[allow(clippy::too_many_arguments)]
    fn run_record(
        &self,
        py: Python<'_>,
        held: PyRef<'_, HeldRun>,
        name: Text,
        seq: i64,
        version: Text,
        started_millis: i64,
        value: &Bound<'_, PyAny>,
        error: Option<Text>,
        tx: u64,
    ) -> PyResult<()> {
        let run = &held.0;
        if let Some(error) = error {
            return self.run_store(py, |s| {
                Ok(s.record_step::<Value>(run, &name, seq, &version, started_millis, Err(&error))?)
            });
        }
        let value = convert::to_value(value)?;
        self.run(py, tx, |s| match &s.tx {
            Some(t) => Ok(t.record_step(run, &name, seq, &version, started_millis, &value)?),
            None => Ok(s.store.record_step(run, &name, seq, &version, started_millis, Ok(&value))?),
        })
    }

    /// End the attempt: finished, or failed with `error`.
    #[pyo3(signature = (held, finished, error=None))]
    fn run_end(
        &self,
        py: Python<'_>,
        held: PyRef<'_, HeldRun>,
        finished: bool,
        error: Option<Text>,
    ) -> PyResult<()> {
        let run = &held.0;
        self.run_store(py, |s| Ok(s.end_run(run, finished, error.as_deref())?))
    }

    /// Push the attempt's lease a whole lease from now.
    fn run_renew(&self, py: Python<'_>, held: PyRef<'_, HeldRun>) -> PyResult<()> {
        let run = &held.0;
        self.run_store(py, |s| Ok(s.renew_run(run)?))
    }

    /// Renew the attempt's lease every third of it from a thread of the library.
    fn run_keep_alive(&self, py: Python<'_>, held: PyRef<'_, HeldRun>) -> PyResult<KeepAlive> {
        let run = &held.0;
        Ok(KeepAlive::new(self.run_store(py, |s| Ok(s.keep_run_alive(run)?))?))
    }

    /// The store's time, in Unix milliseconds.
    fn now_millis(&self, py: Python<'_>) -> PyResult<i64> {
        self.run_store(py, |s| Ok(s.now_millis()))
    }

    /// The runs (in `state`, or all), without their steps.
    #[pyo3(signature = (state=None))]
    fn runs_list(&self, py: Python<'_>, state: Option<Text>) -> PyResult<Vec<RawRunInfo>> {
        let state = match state {
            Some(s) => Some(s.parse::<cairn::RunState>().map_err(|e| crate::errors::to_py(py, e))?),
            None => None,
        };
        let runs = self.run_store(py, |s| Ok(s.runs().list(state)?))?;
        runs.into_iter().map(|r| raw_info(py, r)).collect()
    }

    /// A run with its steps, or None.
    fn run_get(&self, py: Python<'_>, id: Text) -> PyResult<Option<RawRunInfo>> {
        let run = self.run_store(py, |s| Ok(s.runs().get(&id)?))?;
        run.map(|r| raw_info(py, r)).transpose()
    }

    /// Forget a run's steps from `from_step` on (all for None); how many.
    #[pyo3(signature = (id, from_step=None))]
    fn run_reset(&self, py: Python<'_>, id: Text, from_step: Option<Text>) -> PyResult<usize> {
        self.run_store(py, |s| Ok(s.runs().reset(&id, from_step.as_deref())?))
    }

    /// Delete a run and its steps; False if there was none.
    fn run_forget(&self, py: Python<'_>, id: Text) -> PyResult<bool> {
        self.run_store(py, |s| Ok(s.runs().forget(&id)?))
    }

    /// Delete the runs finished more than `older_than` ago; how many.
    fn runs_prune(&self, py: Python<'_>, older_than: &Bound<'_, PyAny>) -> PyResult<usize> {
        let age = convert::seconds(older_than, "an age")?;
        self.run_store(py, |s| Ok(s.runs().prune(age)?))
    }
}

//! The ledger of processed items and the work queue over it: `ledger_*` methods.

use std::time::Duration;

use cairn::{ClaimHolder, ItemState, Ledger, LedgerPolicy, Value};
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::Connection;
use crate::convert::{self, Indexed, Text};
use crate::errors::to_py;
use crate::handles::Claim;

/// A `stop` for the library's waits: runs the interpreter's signal handlers (attached for the
/// moment, at most every 100 ms) and stops at the first exception they raise, kept in `slot`;
/// also stops when the caller's `stop` callable says true (an `AsyncStore` whose waiting task
/// was cancelled: its wait runs on a thread of its own, where no signal arrives), or raises.
fn stop_on_signal<'a>(
    slot: &'a mut Option<PyErr>,
    asked: Option<&'a Py<PyAny>>,
) -> impl FnMut() -> bool + 'a {
    move || {
        let stop = Python::attach(|py| {
            py.check_signals()?;
            match asked {
                Some(f) => f.call0(py)?.bind(py).is_truthy(),
                None => Ok(false),
            }
        });
        match stop {
            Ok(stop) => stop,
            Err(e) => {
                *slot = Some(e);
                true
            }
        }
    }
}

/// How many items stand where (`cairn::LedgerCounts`). Private: `cairn.LedgerCounts` is made
/// from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawLedgerCounts {
    /// Queued, or waiting for a retry.
    pending: u64,
    /// Held by a worker whose lease has not run out.
    claimed: u64,
    /// Done.
    done: u64,
    /// Given up after too many failures.
    failed: u64,
    /// Cancelled.
    cancelled: u64,
    /// Whether the namespace is paused.
    paused: bool,
    /// Until when (Unix ms) while paused; `None` until resumed (or not paused).
    paused_until_millis: Option<i64>,
}

/// A namespace's policy as stored (`cairn::LedgerPolicy`): `None` where the default applies.
/// Private: `cairn.LedgerPolicy` is made from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawLedgerPolicy {
    /// Attempts after which an item is given up.
    max_attempts: Option<u32>,
    /// The base of the backoff, in seconds.
    retry_delay: Option<f64>,
}

/// One item as recorded (`cairn::Item`), its result and data decoded. Private: `cairn.Item`
/// is made from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawItem {
    /// The id.
    id: String,
    /// `pending`, `claimed`, `done` or `failed`.
    state: &'static str,
    /// Failures recorded.
    attempts: u32,
    /// The last failure's message.
    error: Option<String>,
    /// The worker holding or last holding a claim.
    worker: Option<String>,
    /// The result stored when it was done, with its type; None if none.
    result: Py<PyAny>,
    /// What it carries for its worker, with its type; None if nothing.
    data: Py<PyAny>,
    /// For a pending item, when it may be handed out, in Unix milliseconds.
    due_millis: Option<i64>,
    /// When it last changed, in Unix milliseconds.
    updated_at_millis: i64,
}

/// A ledger handle with the caller's failure policy; `None` keeps the library's retry delay.
fn failing(l: Ledger<'_>, max_attempts: Option<u32>, retry_delay: Option<Duration>) -> Ledger<'_> {
    let l = match max_attempts {
        Some(n) => l.max_attempts(n),
        None => l,
    };
    match retry_delay {
        Some(d) => l.retry_delay(d),
        None => l,
    }
}

#[pymethods]
impl Connection {
    #[pyo3(signature = (ns, id, result, tx))]
    fn ledger_mark_done(
        &self,
        py: Python<'_>,
        ns: Text,
        id: &Bound<'_, PyAny>,
        result: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<bool> {
        let id = convert::id(id)?;
        let result = result.filter(|r| !r.is_none()).map(convert::to_value).transpose()?;
        self.run(py, tx, |s| {
            let l = s.ledger(&ns);
            Ok(match &result {
                Some(r) => l.mark_done_with(&id, r)?,
                None => l.mark_done(&id)?,
            })
        })
    }

    fn ledger_mark_done_many(
        &self,
        py: Python<'_>,
        ns: Text,
        ids: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<u64> {
        let (_, ids) = convert::ids(ids)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).mark_done_many(ids)?))
    }

    fn ledger_is_done(&self, py: Python<'_>, ns: Text, id: &Bound<'_, PyAny>, tx: u64) -> PyResult<bool> {
        let id = convert::id(id)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).is_done(&id)?))
    }

    /// The ids (the caller's own objects) that are neither done nor given up, in input order.
    fn ledger_filter_new(
        &self,
        py: Python<'_>,
        ns: Text,
        ids: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Py<PyList>> {
        let (originals, ids) = convert::ids(ids)?;
        let todo: Vec<Indexed> = self.run(py, tx, |s| Ok(s.ledger(&ns).filter_new(ids)?))?;
        let list = PyList::empty(py);
        for item in todo {
            list.append(originals[item.index].bind(py))?;
        }
        Ok(list.unbind())
    }

    fn ledger_result(
        &self,
        py: Python<'_>,
        ns: Text,
        id: &Bound<'_, PyAny>,
        tx: u64,
        default: Py<PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let id = convert::id(id)?;
        match self.run(py, tx, |s| Ok(s.ledger(&ns).result::<Value>(&id)?))? {
            Some(v) => convert::to_py(py, v),
            None => Ok(default),
        }
    }

    /// What is recorded about `id`, or None.
    fn ledger_item(
        &self,
        py: Python<'_>,
        ns: Text,
        id: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Option<RawItem>> {
        let id = convert::id(id)?;
        let item = self.run(py, tx, |s| Ok(s.ledger(&ns).item(&id)?))?;
        item.map(|i| RawItem::new(py, i)).transpose()
    }

    #[pyo3(signature = (ns, id, error, max_attempts, retry_delay, tx))]
    #[allow(clippy::too_many_arguments)]
    fn ledger_fail(
        &self,
        py: Python<'_>,
        ns: Text,
        id: &Bound<'_, PyAny>,
        error: Text,
        max_attempts: Option<u32>,
        retry_delay: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<&'static str> {
        let id = convert::id(id)?;
        let retry_delay = convert::duration(retry_delay, "a retry delay")?;
        self.run(py, tx, |s| {
            Ok(failing(s.ledger(&ns), max_attempts, retry_delay).fail(&id, &error)?.as_str())
        })
    }

    fn ledger_enqueue(&self, py: Python<'_>, ns: Text, ids: &Bound<'_, PyAny>, tx: u64) -> PyResult<u64> {
        let (_, ids) = convert::ids(ids)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).enqueue(ids)?))
    }

    /// Queue `(id, data, delay, not_before)` tuples (`cairn.QueueItem`'s fields, `not_before`
    /// as Unix milliseconds or an RFC 3339 string); how many were new.
    fn ledger_enqueue_items(
        &self,
        py: Python<'_>,
        ns: Text,
        items: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<u64> {
        let mut queued = Vec::with_capacity(items.len().unwrap_or(0));
        for item in items.try_iter()? {
            queued.push(convert::queue_item(&item?)?);
        }
        self.run(py, tx, |s| Ok(s.ledger(&ns).enqueue_items(queued)?))
    }

    /// Put given-up items back in the queue; how many.
    fn ledger_retry(&self, py: Python<'_>, ns: Text, ids: &Bound<'_, PyAny>, tx: u64) -> PyResult<u64> {
        let (_, ids) = convert::ids(ids)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).retry(ids)?))
    }

    fn ledger_retry_all_failed(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<u64> {
        self.run(py, tx, |s| Ok(s.ledger(&ns).retry_all_failed()?))
    }

    /// Delete the items done more than `age` ago; how many.
    fn ledger_prune_done(&self, py: Python<'_>, ns: Text, age: &Bound<'_, PyAny>, tx: u64) -> PyResult<u64> {
        let age = convert::seconds(age, "an age")?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).prune_done(age)?))
    }

    #[pyo3(signature = (ns, id, worker, lease, tx))]
    fn ledger_claim(
        &self,
        py: Python<'_>,
        ns: Text,
        id: &Bound<'_, PyAny>,
        worker: Text,
        lease: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Option<Claim>> {
        let id = convert::id(id)?;
        let lease = convert::seconds(lease, "a lease")?;
        let c = self.run(py, tx, |s| {
            Ok(s.ledger(&ns).holder(ClaimHolder::ThisProcess).claim(&id, &worker, lease)?)
        })?;
        Ok(c.map(Claim::new))
    }

    #[pyo3(signature = (ns, worker, lease, tx))]
    fn ledger_claim_next(
        &self,
        py: Python<'_>,
        ns: Text,
        worker: Text,
        lease: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Option<Claim>> {
        let lease = convert::seconds(lease, "a lease")?;
        let c = self.run(py, tx, |s| Ok(s.ledger(&ns).claim_next(&worker, lease)?))?;
        Ok(c.map(Claim::new))
    }

    /// `claim_next` waiting up to `wait` (None: no limit) for an item; the wait releases the
    /// interpreter and ends with the exception when a signal handler raises (Ctrl-C), and with
    /// None when `stop()` says true (asked every 100 ms at most).
    #[pyo3(signature = (ns, worker, lease, wait, tx, stop = None))]
    #[allow(clippy::too_many_arguments)] // the Python method's own arguments, one each
    fn ledger_claim_next_wait(
        &self,
        py: Python<'_>,
        ns: Text,
        worker: Text,
        lease: &Bound<'_, PyAny>,
        wait: Option<&Bound<'_, PyAny>>,
        tx: u64,
        stop: Option<Py<PyAny>>,
    ) -> PyResult<Option<Claim>> {
        let lease = convert::seconds(lease, "a lease")?;
        let wait = convert::duration(wait, "a wait")?;
        let c = self.run(py, tx, |s| {
            let mut interrupted = None;
            let claim = s.ledger(&ns).claim_next_wait_or_stop(
                &worker,
                lease,
                wait,
                &mut stop_on_signal(&mut interrupted, stop.as_ref()),
            )?;
            interrupted.map_or(Ok(claim), |e| Err(e.into()))
        })?;
        Ok(c.map(Claim::new))
    }

    /// `wait_drained`: true once nothing is pending or claimed, false at `timeout` (or when
    /// `stop()` says true).
    #[pyo3(signature = (ns, timeout, tx, stop = None))]
    fn ledger_wait_drained(
        &self,
        py: Python<'_>,
        ns: Text,
        timeout: Option<&Bound<'_, PyAny>>,
        tx: u64,
        stop: Option<Py<PyAny>>,
    ) -> PyResult<bool> {
        let timeout = convert::duration(timeout, "a timeout")?;
        self.run(py, tx, |s| {
            let mut interrupted = None;
            let drained = s
                .ledger(&ns)
                .wait_drained_or_stop(timeout, &mut stop_on_signal(&mut interrupted, stop.as_ref()))?;
            interrupted.map_or(Ok(drained), |e| Err(e.into()))
        })
    }

    #[pyo3(signature = (ns, worker, lease, n, tx))]
    fn ledger_claim_next_many(
        &self,
        py: Python<'_>,
        ns: Text,
        worker: Text,
        lease: &Bound<'_, PyAny>,
        n: u32,
        tx: u64,
    ) -> PyResult<Vec<Claim>> {
        let lease = convert::seconds(lease, "a lease")?;
        let claims = self.run(py, tx, |s| Ok(s.ledger(&ns).claim_next_many(&worker, lease, n)?))?;
        Ok(claims.into_iter().map(Claim::new).collect())
    }

    fn ledger_held_claim(
        &self,
        py: Python<'_>,
        ns: Text,
        id: &Bound<'_, PyAny>,
        worker: Text,
        tx: u64,
    ) -> PyResult<Option<Claim>> {
        let id = convert::id(id)?;
        let c = self.run(py, tx, |s| Ok(s.ledger(&ns).held_claim(&id, &worker)?))?;
        Ok(c.map(Claim::new))
    }

    #[pyo3(signature = (ns, claim, lease, tx))]
    fn ledger_extend(
        &self,
        py: Python<'_>,
        ns: Text,
        claim: PyRef<'_, Claim>,
        lease: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<Claim> {
        let lease = convert::seconds(lease, "a lease")?;
        let c = claim.inner();
        Ok(Claim::new(self.run(py, tx, |s| Ok(s.ledger(&ns).extend(c, lease)?))?))
    }

    fn ledger_release(&self, py: Python<'_>, ns: Text, claim: PyRef<'_, Claim>, tx: u64) -> PyResult<()> {
        let c = claim.inner();
        self.run(py, tx, |s| Ok(s.ledger(&ns).release(c)?))
    }

    #[pyo3(signature = (ns, claim, result, tx))]
    fn ledger_complete(
        &self,
        py: Python<'_>,
        ns: Text,
        claim: PyRef<'_, Claim>,
        result: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<()> {
        let result = result.filter(|r| !r.is_none()).map(convert::to_value).transpose()?;
        let c = claim.inner();
        self.run(py, tx, |s| {
            let l = s.ledger(&ns);
            match &result {
                Some(r) => l.complete_with(c, r)?,
                None => l.complete(c)?,
            }
            Ok(())
        })
    }

    fn ledger_complete_many(
        &self,
        py: Python<'_>,
        ns: Text,
        claims: Vec<PyRef<'_, Claim>>,
        tx: u64,
    ) -> PyResult<Vec<bool>> {
        let claims: Vec<cairn::Claim> = claims.iter().map(|c| c.inner().clone()).collect();
        self.run(py, tx, |s| Ok(s.ledger(&ns).complete_many(&claims)?))
    }

    #[pyo3(signature = (ns, claim, error, max_attempts, retry_delay, tx))]
    #[allow(clippy::too_many_arguments)]
    fn ledger_fail_claim(
        &self,
        py: Python<'_>,
        ns: Text,
        claim: PyRef<'_, Claim>,
        error: Text,
        max_attempts: Option<u32>,
        retry_delay: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<&'static str> {
        let c = claim.inner();
        let retry_delay = convert::duration(retry_delay, "a retry delay")?;
        self.run(py, tx, |s| {
            Ok(failing(s.ledger(&ns), max_attempts, retry_delay).fail_claim(c, &error)?.as_str())
        })
    }

    fn ledger_policy(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<RawLedgerPolicy> {
        let p = self.run(py, tx, |s| Ok(s.ledger(&ns).policy()?))?;
        Ok(RawLedgerPolicy {
            max_attempts: p.max_attempts,
            retry_delay: p.retry_delay.map(|d| d.as_secs_f64()),
        })
    }

    #[pyo3(signature = (ns, max_attempts, retry_delay, tx))]
    fn ledger_set_policy(
        &self,
        py: Python<'_>,
        ns: Text,
        max_attempts: Option<u32>,
        retry_delay: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<()> {
        let retry_delay = convert::duration(retry_delay, "a retry delay")?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).set_policy(LedgerPolicy { max_attempts, retry_delay })?))
    }

    fn ledger_counts(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<RawLedgerCounts> {
        let c = self.run(py, tx, |s| Ok(s.ledger(&ns).counts()?))?;
        Ok(RawLedgerCounts {
            pending: c.pending,
            claimed: c.claimed,
            done: c.done,
            failed: c.failed,
            cancelled: c.cancelled,
            paused: c.paused.is_some(),
            paused_until_millis: c.paused.and_then(cairn::Pause::until_millis),
        })
    }

    /// Cancel items, all or none; how many this call cancelled.
    fn ledger_cancel(&self, py: Python<'_>, ns: Text, ids: &Bound<'_, PyAny>, tx: u64) -> PyResult<u64> {
        let (_, ids) = convert::ids(ids)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).cancel_many(ids)?))
    }

    fn ledger_snooze(
        &self,
        py: Python<'_>,
        ns: Text,
        claim: PyRef<'_, Claim>,
        delay: &Bound<'_, PyAny>,
        tx: u64,
    ) -> PyResult<()> {
        let delay = convert::seconds(delay, "a snooze")?;
        let c = claim.inner();
        self.run(py, tx, |s| Ok(s.ledger(&ns).snooze(c, delay)?))
    }

    /// Pause for `for_`, until `until` (Unix ms, or RFC 3339 text), or with neither until
    /// resumed.
    #[pyo3(signature = (ns, for_, until, tx))]
    fn ledger_pause(
        &self,
        py: Python<'_>,
        ns: Text,
        for_: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<()> {
        let for_ = for_.filter(|d| !d.is_none()).map(|d| convert::seconds(d, "a pause")).transpose()?;
        let until = match until.filter(|u| !u.is_none()) {
            None => None,
            Some(u) => Some(match u.cast::<pyo3::types::PyString>() {
                Ok(text) => cairn::parse_time(&text.to_cow()?).map_err(|e| to_py(py, e))?,
                Err(_) => u.extract::<i64>()?,
            }),
        };
        self.run(py, tx, |s| {
            let l = s.ledger(&ns);
            match for_ {
                Some(d) => l.pause_for(d)?,
                None => l.pause(until)?,
            }
            Ok(())
        })
    }

    fn ledger_resume(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<bool> {
        self.run(py, tx, |s| Ok(s.ledger(&ns).resume()?))
    }

    /// Whether paused, and until when (Unix ms; `None` until resumed).
    fn ledger_paused(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<(bool, Option<i64>)> {
        let p = self.run(py, tx, |s| Ok(s.ledger(&ns).paused()?))?;
        Ok((p.is_some(), p.and_then(cairn::Pause::until_millis)))
    }

    #[pyo3(signature = (ns, state, after, limit, tx))]
    fn ledger_list(
        &self,
        py: Python<'_>,
        ns: Text,
        state: Option<Text>,
        after: Option<Text>,
        limit: usize,
        tx: u64,
    ) -> PyResult<Vec<RawItem>> {
        let state = state.as_deref().map(str::parse::<ItemState>).transpose().map_err(|e| to_py(py, e))?;
        let items = self.run(py, tx, |s| Ok(s.ledger(&ns).list(state, after.as_deref(), limit)?))?;
        items.into_iter().map(|i| RawItem::new(py, i)).collect()
    }

    fn ledger_delete(&self, py: Python<'_>, ns: Text, id: &Bound<'_, PyAny>, tx: u64) -> PyResult<bool> {
        let id = convert::id(id)?;
        self.run(py, tx, |s| Ok(s.ledger(&ns).delete(&id)?))
    }

    fn ledger_clear(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<u64> {
        self.run(py, tx, |s| Ok(s.ledger(&ns).clear()?))
    }

    fn ledger_namespaces(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.run_store(py, |s| Ok(s.ledger_namespaces()?))
    }
}

impl RawItem {
    fn new(py: Python<'_>, i: cairn::Item) -> PyResult<Self> {
        Ok(RawItem {
            state: i.state.as_str(),
            result: stored(py, i.result, i.result_kind)?,
            data: stored(py, i.data, i.data_kind)?,
            id: i.id,
            attempts: i.attempts,
            error: i.error,
            worker: i.worker,
            due_millis: i.due_millis,
            updated_at_millis: i.updated_at_millis,
        })
    }
}

/// The Python object for an item's stored result or data (bytes of a kind), None if none.
fn stored(py: Python<'_>, bytes: Option<Vec<u8>>, kind: Option<cairn::ValueKind>) -> PyResult<Py<PyAny>> {
    match bytes {
        Some(bytes) => {
            let v =
                Value::from_kind(kind.unwrap_or(cairn::ValueKind::Bytes), bytes).map_err(|e| to_py(py, e))?;
            convert::to_py(py, v)
        }
        None => Ok(py.None()),
    }
}

//! Durable runs: a script's steps, each executed until it succeeds once, its result recorded
//! and replayed to every later attempt, so that a re-run carries on at the first unfinished
//! step.
//!
//! A run has an id the caller chooses (its idempotency key, `deploy-<commit>`). One attempt
//! holds it at a time, as a claim holds an item: a lease (kept renewed by a thread while the
//! [`Run`] lives), the process whose death frees it at once on the same host, and a fencing
//! token bumped by every attempt. Every record of a step is fenced by that token inside the
//! statement that writes it, so an attempt that lost the run (its lease ran out and another
//! took it) records nothing: `LeaseLost`, never a stale result over a newer one.
//!
//! Steps are named; the same name a second time in one attempt is the step `name#2`, then
//! `name#3`, so loops of identical steps replay in order. A step records a fingerprint of its
//! definition (an optional version; the CLI's command line): asked for again with another, a
//! recorded step is [`Error::StepChanged`], never a silent replay of a stale result.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::clock::deadline;
use crate::codec::{Decode, Encode};
use crate::duration::format_time;
use crate::error::{Error, Result};
use crate::ledger::DEFAULT_LEASE;
use crate::lock::KeepAlive;
use crate::names::validate_name;
use crate::process;
use crate::storage::{
    EngineOps, Hold, RunOps, RunRow, StepResult, StepRow, StepWrite, Stored, RUN_FAILED, RUN_FINISHED,
    RUN_RUNNING, STEP_DONE,
};
use crate::store::Store;
use crate::tx::Tx;

/// The error an attempt leaves when it ends without [`Run::finish`] or [`Run::fail`].
const ENDED_UNFINISHED: &str = "the attempt ended without finishing";

/// The error shown for a run whose attempt stopped holding it without ending it.
const STOPPED: &str = "its attempt stopped without finishing: the process died, or its lease ran out";

/// The longest a dropped [`Run`] waits for the store to record that its attempt ended.
const DROP_WAIT: Duration = Duration::from_millis(100);

/// How to take a run: see [`Store::run_with`].
///
/// ```
/// use cairn::RunOptions;
/// use std::time::Duration;
///
/// let options = RunOptions::new().lease(Duration::from_secs(300)).wait(Duration::from_secs(10));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct RunOptions {
    lease: Duration,
    wait: Option<Duration>,
    holder_pid: Option<u32>,
    rejoin: bool,
    keep_alive: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            lease: DEFAULT_LEASE,
            wait: Some(Duration::ZERO),
            holder_pid: None,
            rejoin: false,
            keep_alive: true,
        }
    }
}

impl RunOptions {
    /// The defaults: a lease of [`DEFAULT_LEASE`](crate::DEFAULT_LEASE) (60 s), kept renewed
    /// by a thread; no wait for another attempt; held for this process.
    pub fn new() -> Self {
        RunOptions::default()
    }

    /// How long the hold lasts without a renewal: how long another host waits to take over a
    /// run whose holder vanished (on the same host a dead holder's run is taken at once).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long to wait for another live attempt to end before [`Error::RunHeld`] (default:
    /// not at all).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Wait for another live attempt as long as it holds the run.
    pub fn wait_forever(mut self) -> Self {
        self.wait = None;
        self
    }

    /// Hold the run for process `pid` of this host rather than this one: it stays held while
    /// that process lives (a shell script whose steps are processes of their own).
    pub fn holder_pid(mut self, pid: u32) -> Self {
        self.holder_pid = Some(pid);
        self
    }

    /// Join the attempt already holding the run when it is held for the same process (the
    /// next `cairn step` of one script), instead of [`Error::RunHeld`].
    pub fn rejoin(mut self, rejoin: bool) -> Self {
        self.rejoin = rejoin;
        self
    }

    /// Keep the lease renewed from a thread of its own while the [`Run`] lives (default: on,
    /// for a store in a file or on a server).
    pub fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }
}

impl Store {
    /// Take the run `id` for this attempt with the default [`RunOptions`]: see
    /// [`Store::run_with`].
    ///
    /// ```
    /// use cairn::{Json, Store};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path().join("state.db"))?;
    /// let mut executed = 0;
    /// for _attempt in 0..2 {
    ///     let mut run = store.run("backfill-2026-11-30")?;
    ///     let Json(pages): Json<Vec<i64>> = run.step("list", || {
    ///         executed += 1;
    ///         Ok::<_, cairn::Error>(Json(vec![1, 2, 3]))
    ///     })?;
    ///     assert_eq!(pages, [1, 2, 3]);
    ///     run.finish()?;
    /// }
    /// assert_eq!(executed, 1, "the second attempt replayed the recorded step");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run(&self, id: &str) -> Result<Run<'_>> {
        self.run_with(id, RunOptions::new())
    }

    /// Take the run `id` for a new attempt (creating it the first time), or join a finished
    /// one to replay it. [`Error::RunHeld`] if another live attempt holds it (after waiting,
    /// if the options say so); a holder that died on this host is taken over at once, one
    /// elsewhere once its lease has run out.
    pub fn run_with(&self, id: &str, options: RunOptions) -> Result<Run<'_>> {
        let held = self.take_run(id, &options)?;
        let renewer = if options.keep_alive && !held.finished && self.journal_mode() != "memory" {
            Some(self.keep_run_alive(&held)?)
        } else {
            None
        };
        let ended = held.finished;
        Ok(Run { store: self, held, renewer, ended })
    }

    /// The runs of this store, for operators: list, inspect, reset, forget, prune.
    pub fn runs(&self) -> Runs<'_> {
        Runs { store: self }
    }

    /// [`Store::run_with`] as plain data: nothing renews the lease or ends the attempt but
    /// the caller ([`Store::renew_run`], [`Store::end_run`]); `keep_alive` is not looked at.
    pub fn take_run(&self, id: &str, options: &RunOptions) -> Result<HeldRun> {
        self.take_run_at(id, options, None)
    }

    /// [`Store::take_run`] for a process that then replays or runs the one step `name` (a
    /// full name, as [`HeldRun::next_step`] gives: the CLI's `cairn step`). Joining a finished
    /// run reads that step in the same statement as the run (with the policy of the cache
    /// namespace where a command step's output is kept), and [`Store::replay_step`] of `name`
    /// replays what it read: one statement instead of three before the output's.
    pub fn take_run_for_step(&self, id: &str, options: &RunOptions, name: &str) -> Result<HeldRun> {
        self.take_run_at(id, options, Some(name))
    }

    fn take_run_at(&self, id: &str, options: &RunOptions, step: Option<&str>) -> Result<HeldRun> {
        validate_run_id(id)?;
        if options.lease.is_zero() {
            return Err(Error::invalid("a run's lease must be longer than zero"));
        }
        let held = |token, attempt, finished, recorded, read| HeldRun {
            id: id.to_owned(),
            token,
            attempt,
            finished,
            recorded,
            lease: options.lease,
            seen: HashMap::new(),
            next_seq: 0,
            read,
        };
        // Joining a finished run to replay it writes nothing: read it outside a write
        // transaction, so that a replaying process is a reader, as a memo replay is (no lock,
        // no commit, no fsync), and before looking at any process: a finished run is held for
        // none. Nothing changes for a run that is not finished.
        let found = match step {
            Some(name) => self.engine.run_step_get(id, name, OUTPUT_NS)?.map(|row| {
                self.cache_state().know_policy(OUTPUT_NS, row.lru);
                let read = Some(Box::new(ReadStep { name: name.to_owned(), step: row.step }));
                (row.state, row.token, row.attempts, read)
            }),
            None => self.engine.run_get(id)?.map(|row| (row.state, row.token, row.attempts, None)),
        };
        if let Some((RUN_FINISHED, token, attempts, read)) = found {
            return Ok(held(token, attempts, true, None, read));
        }
        let holder = match options.holder_pid {
            Some(pid) => process::watch(pid)?,
            None => process::watch(std::process::id())?,
        };
        let owner = process::token();
        let started = Instant::now();
        let mut nap = Duration::from_millis(20);
        loop {
            match self.try_take_run(id, &owner, holder.as_deref(), options)? {
                Taken::Attempt { token, attempt, created } => {
                    // Only this attempt can record steps now (unless another process may
                    // rejoin it: the CLI's case), and no earlier one can (fenced by the
                    // token): the steps done so far are known once, and a new step is not
                    // read back before it is recorded.
                    let recorded = match (options.rejoin, created) {
                        (true, _) => None,
                        (false, true) => Some(HashSet::new()),
                        (false, false) => Some(
                            self.engine
                                .steps_list(id)?
                                .into_iter()
                                .filter(|s| s.state == STEP_DONE)
                                .map(|s| s.name)
                                .collect(),
                        ),
                    };
                    return Ok(held(token, attempt, false, recorded, None));
                }
                Taken::Finished { token, attempts } => return Ok(held(token, attempts, true, None, None)),
                Taken::Again => {}
                Taken::Held(row) => {
                    let waited = started.elapsed();
                    if options.wait.is_some_and(|w| waited >= w) {
                        return Err(held_error(&row));
                    }
                    let left = options.wait.map_or(nap, |w| w.saturating_sub(waited));
                    std::thread::sleep(nap.min(left));
                    nap = (nap * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// The recorded result of step `name` (a full name, from [`HeldRun::next_step`]) if it is
    /// done under the same `version`; `None` if it is not recorded (so: run it);
    /// [`Error::StepChanged`] if it was recorded under another version; `InvalidInput` for a
    /// step the finished run never recorded.
    pub fn replay_step<T: Decode>(&self, run: &HeldRun, name: &str, version: &str) -> Result<Option<T>> {
        validate_version(version)?;
        let row = match run.read.as_deref() {
            // Read with the finished run, where nothing records a step.
            Some(read) if read.name == name => read.step.clone(),
            _ => self.engine.step_get(&run.id, name)?.map(|row| StepResult {
                state: row.state,
                fingerprint: row.fingerprint,
                value: row.value,
            }),
        };
        let Some(row) = row.filter(|row| row.state == STEP_DONE) else {
            if run.finished {
                return Err(Error::invalid(format!(
                    "the run '{}' is finished and never recorded a step '{name}': the script changed after it \
                     finished; to run it again, reset it: cairn run reset {}",
                    run.id,
                    crate::error::shell_word(&run.id)
                )));
            }
            return Ok(None);
        };
        if row.fingerprint != version {
            return Err(Error::StepChanged {
                run: run.id.clone(),
                step: name.to_owned(),
                recorded: shown_version(&row.fingerprint),
                given: shown_version(version),
            });
        }
        let (bytes, kind) = row.value.unwrap_or_default();
        let stored = Stored::new(bytes, kind);
        T::decode_typed(stored.kind, stored.bytes).map(Some).map_err(|e| Error::Decode {
            ns: format!("run {}", run.id),
            key: name.to_owned(),
            expected: e.expected,
            detail: e.detail,
        })
    }

    /// Record one execution of step `name` at position `seq` (from [`HeldRun::next_step`]),
    /// begun at `started_millis`: its result, or the error it failed with. `LeaseLost`, and
    /// nothing recorded, if another attempt took the run.
    pub fn record_step<T: Encode>(
        &self,
        run: &HeldRun,
        name: &str,
        seq: i64,
        version: &str,
        started_millis: i64,
        outcome: std::result::Result<&T, &str>,
    ) -> Result<()> {
        self.record_step_with_output(run, name, Some(seq), version, started_millis, outcome, None)
    }

    /// [`Store::record_step`] keeping `output` beside the step for operators (a command
    /// step's head of output, or its tail when it failed). `seq` None: the step's position is
    /// taken when it is recorded ([`Store::step_position`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_step_with_output<T: Encode>(
        &self,
        run: &HeldRun,
        name: &str,
        seq: Option<i64>,
        version: &str,
        started_millis: i64,
        outcome: std::result::Result<&T, &str>,
        output: Option<&str>,
    ) -> Result<()> {
        validate_version(version)?;
        let encoded = match outcome {
            Ok(value) => Some((value.encode()?, value.kind())),
            Err(_) => None,
        };
        let error = outcome.err().map(without_nul);
        let output = output.map(without_nul);
        let record = |s: &Store, seq: i64| {
            let mut write =
                step_write(name, seq, version, started_millis, s.now(), &encoded, error.as_deref());
            write.output = output.as_deref();
            s.engine.step_record(&run.id, run.token, &write)
        };
        let recorded = match seq {
            Some(seq) => self.write_one(|s| record(s, seq))?,
            // The position is taken in the record's own transaction, the run held meanwhile:
            // steps of one script recorded side by side get positions of their own.
            None => self.write_tx(|s| {
                s.engine.run_lock(&run.id)?;
                let seq = s.step_position(run, name)?;
                record(s, seq)
            })?,
        };
        if recorded {
            Ok(())
        } else {
            Err(lost(&run.id))
        }
    }

    /// Push the attempt's lease a whole lease from now. `LeaseLost` if another attempt took
    /// the run.
    pub fn renew_run(&self, run: &HeldRun) -> Result<()> {
        if run.finished {
            return Ok(());
        }
        if self
            .write_one(|s| s.engine.run_renew(&run.id, run.token, deadline(s.now(), run.lease), s.now()))?
        {
            Ok(())
        } else {
            Err(lost(&run.id))
        }
    }

    /// End the attempt: the run finished (`finished`), or failed with `error`. `LeaseLost` if
    /// another attempt took the run; nothing to do for a run finished before the attempt.
    pub fn end_run(&self, run: &HeldRun, finished: bool, error: Option<&str>) -> Result<()> {
        if run.finished {
            return Ok(());
        }
        let state = if finished { RUN_FINISHED } else { RUN_FAILED };
        let error = if finished { None } else { error.map(without_nul) };
        if self.write_one(|s| s.engine.run_end(&run.id, run.token, state, error.as_deref(), s.now()))? {
            Ok(())
        } else {
            Err(lost(&run.id))
        }
    }

    /// Renew the attempt's lease every third of it from a thread of the library with a
    /// connection of its own, until the [`KeepAlive`] is stopped or dropped (what [`Run`]
    /// does while it lives). Refused for an in-memory store: no other connection reaches it.
    pub fn keep_run_alive(&self, run: &HeldRun) -> Result<KeepAlive> {
        if self.journal_mode() == "memory" {
            return Err(Error::invalid(
                "an in-memory store's run cannot be kept alive: no other connection can reach it; renew it yourself",
            ));
        }
        let every = (run.lease / 3).max(Duration::from_millis(1));
        let run = run.clone();
        KeepAlive::spawn(self, format!("cairn-run-{}", run.id), every, move |renewer| renewer.renew_run(&run))
    }

    /// The store's time in Unix milliseconds (its clock's; on a server, the server's unless
    /// a clock was given): what steps' start times are taken with.
    pub fn now_millis(&self) -> i64 {
        self.now()
    }

    /// One try at taking the run, in one write transaction.
    fn try_take_run(
        &self,
        id: &str,
        owner: &str,
        holder: Option<&str>,
        options: &RunOptions,
    ) -> Result<Taken> {
        self.write_tx(|s| {
            let now = s.now();
            let hold = Hold { owner, holder, lease_until: deadline(now, options.lease) };
            let Some(row) = s.engine.run_get(id)? else {
                // Another process may create it between the two statements on a server: try again.
                return Ok(if s.engine.run_insert(id, &hold, now)? {
                    Taken::Attempt { token: 1, attempt: 1, created: true }
                } else {
                    Taken::Again
                });
            };
            if row.state == RUN_FINISHED {
                return Ok(Taken::Finished { token: row.token, attempts: row.attempts });
            }
            if is_live(&row, now) {
                // Rejoining: the same script's next step, or its shell itself, replaced by this
                // process (`bash -c 'cairn step a ...; cairn step b ...'` execs its last command,
                // which then holds the run under the shell's name and asks for the shell's parent).
                let same_holder = options.rejoin
                    && holder.is_some()
                    && (row.holder.as_deref() == holder
                        || row.holder.as_deref() == Some(process::me().name.as_str()));
                if same_holder && s.engine.run_renew(id, row.token, hold.lease_until, now)? {
                    return Ok(Taken::Attempt { token: row.token, attempt: row.attempts, created: false });
                }
                return Ok(Taken::Held(row));
            }
            if s.engine.run_take(id, row.token, &hold, now)? {
                Ok(Taken::Attempt { token: row.token + 1, attempt: row.attempts + 1, created: false })
            } else {
                Ok(Taken::Again)
            }
        })
    }
}

/// What one try at taking a run found.
enum Taken {
    Attempt {
        token: i64,
        attempt: i64,
        /// The run was created by this take: it has no steps.
        created: bool,
    },
    Finished {
        token: i64,
        attempts: i64,
    },
    Held(RunRow),
    /// Another process changed the run between reading and writing it.
    Again,
}

/// True while an attempt holds the run: it is running, its lease has not run out, and its
/// process is not known to be dead.
fn is_live(row: &RunRow, now: i64) -> bool {
    row.state == RUN_RUNNING
        && row.owner.is_some()
        && row.lease_until.is_some_and(|until| until > now)
        && !row.holder.as_deref().is_some_and(process::token_is_dead)
}

fn held_error(row: &RunRow) -> Error {
    Error::RunHeld {
        run: row.id.clone(),
        holder: row.holder.as_deref().map_or_else(|| "another host".to_owned(), describe_holder),
        until: row.lease_until.map_or_else(|| "-".to_owned(), format_time),
    }
}

/// `boot/pid/start` as a person reads it.
fn describe_holder(holder: &str) -> String {
    let mut parts = holder.split('/');
    match (parts.next(), parts.next()) {
        (Some(boot), Some(pid)) if boot == process::me().boot_id => format!("pid {pid} on this host"),
        (Some(_), Some(pid)) => format!("pid {pid} on another host"),
        _ => holder.to_owned(),
    }
}

/// One attempt at a run, from [`Store::run`]: its steps execute once and replay after.
///
/// End it with [`Run::finish`] when the script is done (later attempts then replay only) or
/// [`Run::fail`]; dropped without either, the attempt is recorded as failed and the next one
/// resumes. A run already finished is joined to replay its steps, without holding it.
#[derive(Debug)]
pub struct Run<'s> {
    store: &'s Store,
    held: HeldRun,
    renewer: Option<KeepAlive>,
    ended: bool,
}

/// An attempt at a run as plain data, not tied to a [`Store`] handle and not ended when
/// dropped: for language bindings and the CLI, whose attempts outlive one call. Take it with
/// [`Store::take_run`]; replay and record its steps, renew and end it through any store of
/// the same process ([`Store::replay_step`], [`Store::record_step`], [`Tx::record_step`],
/// [`Store::renew_run`], [`Store::end_run`]). [`Run`] does all of it for Rust callers.
///
/// ```
/// use cairn::{RunOptions, Store};
///
/// let store = Store::open_in_memory()?;
/// let mut held = store.take_run("export", &RunOptions::new())?;
/// let (name, seq) = held.next_step("fetch")?;
/// assert_eq!(store.replay_step::<i64>(&held, &name, "")?, None, "not recorded yet");
/// let started = store.now_millis();
/// store.record_step(&held, &name, seq, "", started, Ok(&42i64))?;
/// assert_eq!(store.replay_step::<i64>(&held, &name, "")?, Some(42));
/// store.end_run(&held, true, None)?;
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRun {
    id: String,
    token: i64,
    attempt: i64,
    finished: bool,
    /// The steps done when this attempt began, if no other process may join it: a step not
    /// among them is not read back before it runs. `None`: read every step.
    recorded: Option<HashSet<String>>,
    lease: Duration,
    seen: HashMap<String, u32>,
    next_seq: i64,
    /// A step read with the finished run when it was joined ([`Store::take_run_for_step`]).
    read: Option<Box<ReadStep>>,
}

/// A step of a finished run, read with the run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadStep {
    name: String,
    /// None: the run has no step of that name.
    step: Option<StepResult>,
}

impl HeldRun {
    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> u64 {
        u64::try_from(self.attempt).unwrap_or(0)
    }

    /// The fencing token of this attempt: every attempt gets a larger one.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// True if the run was finished before this attempt: its steps replay, and a step it
    /// never recorded is refused.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The lease it was taken for.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// False when step `full` (a name from [`HeldRun::next_step`], not recorded since) cannot
    /// have been recorded: it was not done when this attempt took the run, and no other
    /// process may join the attempt (no `rejoin`) nor any other attempt record (fenced by the
    /// token). Then [`Store::replay_step`] need not be asked: a new step is one statement,
    /// its record. True when it may be.
    pub fn may_be_recorded(&self, full: &str) -> bool {
        self.recorded.as_ref().is_none_or(|done| done.contains(full))
    }

    /// The full name of the next step called `name` in this attempt (`name#2` for the second
    /// one, `name#3`...), and its position in the run, from 1.
    pub fn next_step(&mut self, name: &str) -> Result<(String, i64)> {
        validate_step_name(name)?;
        let count = self.seen.entry(name.to_owned()).or_insert(0);
        *count += 1;
        let full = if *count == 1 { name.to_owned() } else { format!("{name}#{count}") };
        self.next_seq += 1;
        Ok((full, self.next_seq))
    }
}

impl Tx<'_> {
    /// [`Store::record_step`] inside this transaction: the step's record commits with the
    /// transaction's other writes, or not at all. `LeaseLost` if another attempt took the run
    /// (roll the transaction back: its writes belong to a stale attempt).
    pub fn record_step<T: Encode>(
        &self,
        run: &HeldRun,
        name: &str,
        seq: i64,
        version: &str,
        started_millis: i64,
        value: &T,
    ) -> Result<()> {
        validate_version(version)?;
        let encoded = Some((value.encode()?, value.kind()));
        let store = self.store();
        let write = step_write(name, seq, version, started_millis, store.now(), &encoded, None);
        if store.engine.step_record(&run.id, run.token, &write)? {
            Ok(())
        } else {
            Err(lost(&run.id))
        }
    }
}

/// Refuse a step version holding a NUL byte: a version is compared as text and kept in a text
/// column, which PostgreSQL's refuses NUL in, so it is refused on every engine, before the
/// step runs. Callers that run a step themselves (the bindings) check with this first.
///
/// ```
/// assert!(cairn::validate_step_version("v2").is_ok());
/// assert!(cairn::validate_step_version("v\0").is_err());
/// ```
pub fn validate_step_version(version: &str) -> Result<()> {
    validate_version(version)
}

fn validate_version(version: &str) -> Result<()> {
    if version.contains('\0') {
        return Err(Error::invalid(format!(
            "a step's version cannot contain a NUL byte ({version:?}); give a version without one"
        )));
    }
    Ok(())
}

/// What a step failed with and the head of its output, kept for operators as text: a NUL
/// byte (a command printing binary data, an exception's message) is shown as U+FFFD, as
/// PostgreSQL's text columns refuse it. Recording must not fail over what is only shown.
fn without_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The row to write for one execution of a step.
fn step_write<'a>(
    name: &'a str,
    seq: i64,
    version: &'a str,
    started: i64,
    finished: i64,
    encoded: &'a Option<(std::borrow::Cow<'_, [u8]>, crate::codec::ValueKind)>,
    error: Option<&'a str>,
) -> StepWrite<'a> {
    StepWrite {
        name,
        seq,
        fingerprint: version,
        value: encoded.as_ref().map(|(bytes, kind)| (bytes.as_ref(), *kind)),
        error,
        started_at: started,
        finished_at: finished,
        output: None,
    }
}

impl Run<'_> {
    /// The run's id.
    pub fn id(&self) -> &str {
        self.held.id()
    }

    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> u64 {
        self.held.attempt()
    }

    /// The fencing token of this attempt: every attempt gets a larger one.
    pub fn token(&self) -> i64 {
        self.held.token()
    }

    /// True if the run was finished before this attempt: its steps replay, and a step it
    /// never recorded is refused.
    pub fn is_finished(&self) -> bool {
        self.held.is_finished()
    }

    /// Run step `name`: the first time `f` succeeds its result is recorded, and every later
    /// attempt gets the recorded result back without calling `f`. A failure records the
    /// attempt and its error, no result, and is returned: the next attempt runs `f` again.
    /// `LeaseLost` if another attempt took the run meanwhile (the result is not recorded).
    pub fn step<T, E>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        T: Encode + Decode,
        E: From<Error> + fmt::Display,
    {
        self.step_with_version(name, "", f)
    }

    /// [`Run::step`] with a version of the step's definition: a step recorded under another
    /// version is [`Error::StepChanged`] instead of a replay of a result the new definition
    /// would not give.
    pub fn step_with_version<T, E>(
        &mut self,
        name: &str,
        version: &str,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        T: Encode + Decode,
        E: From<Error> + fmt::Display,
    {
        validate_version(version)?;
        let (full, seq) = self.held.next_step(name)?;
        if self.held.may_be_recorded(&full) {
            if let Some(value) = self.store.replay_step::<T>(&self.held, &full, version)? {
                return Ok(value);
            }
        }
        let started = self.store.now();
        match f() {
            Ok(value) => {
                self.store.record_step(&self.held, &full, seq, version, started, Ok(&value))?;
                Ok(value)
            }
            Err(e) => {
                // The step's own error is what the caller needs; a failure to record it (the
                // run lost meanwhile) changes nothing for the next attempt.
                let _ = self.store.record_step::<T>(
                    &self.held,
                    &full,
                    seq,
                    version,
                    started,
                    Err(&e.to_string()),
                );
                Err(e)
            }
        }
    }

    /// A step whose writes to the store commit in one transaction with its record: exactly
    /// once, even across kills. `f` gets the transaction; its result is recorded and replayed
    /// as [`Run::step`]'s. If the attempt lost the run, everything `f` wrote is rolled back
    /// (`LeaseLost`).
    pub fn step_tx<T, E>(
        &mut self,
        name: &str,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        T: Encode + Decode,
        E: From<Error> + fmt::Display,
    {
        let (full, seq) = self.held.next_step(name)?;
        if self.held.may_be_recorded(&full) {
            if let Some(value) = self.store.replay_step::<T>(&self.held, &full, "")? {
                return Ok(value);
            }
        }
        let started = self.store.now();
        let held = &self.held;
        let outcome: std::result::Result<T, E> = self.store.transaction(|tx| {
            let value = f(tx)?;
            tx.record_step(held, &full, seq, "", started, &value)?;
            Ok(value)
        });
        if let Err(e) = &outcome {
            let _ = self.store.record_step::<T>(&self.held, &full, seq, "", started, Err(&e.to_string()));
        }
        outcome
    }

    /// A durable sleep: the first time, its wake time (now plus `duration`) is recorded; every
    /// attempt then waits only what is left of it, none once it has passed.
    pub fn sleep(&mut self, name: &str, duration: Duration) -> Result<()> {
        let wake = self.wake_time(name, duration)?;
        loop {
            let left = wake.saturating_sub(self.store.now());
            if left <= 0 {
                return Ok(());
            }
            std::thread::sleep(
                Duration::from_millis(u64::try_from(left).unwrap_or(0)).min(Duration::from_secs(1)),
            );
        }
    }

    /// [`Run::sleep`] that does not wait, for a cron script that would rather exit and come
    /// back: `None` once the wake time has passed, else how long is left (the wake time is
    /// recorded the first time, as `sleep` does).
    pub fn sleep_no_wait(&mut self, name: &str, duration: Duration) -> Result<Option<Duration>> {
        let wake = self.wake_time(name, duration)?;
        let left = wake.saturating_sub(self.store.now());
        Ok((left > 0).then(|| Duration::from_millis(u64::try_from(left).unwrap_or(0))))
    }

    /// The recorded wake time of sleep `name`, recording it first if need be.
    fn wake_time(&mut self, name: &str, duration: Duration) -> Result<i64> {
        let (full, seq) = self.held.next_step(name)?;
        if let Some(wake) = self.store.replay_step::<i64>(&self.held, &full, "")? {
            return Ok(wake);
        }
        let now = self.store.now();
        let wake = deadline(now, duration);
        self.store.record_step(&self.held, &full, seq, "", now, Ok(&wake))?;
        Ok(wake)
    }

    /// Push this attempt's lease a whole lease from now, for a run taken without
    /// [`RunOptions::keep_alive`]. `LeaseLost` if another attempt took the run.
    pub fn renew(&self) -> Result<()> {
        self.store.renew_run(&self.held)
    }

    /// Finish the run: later attempts replay its steps and record no new ones.
    pub fn finish(mut self) -> Result<()> {
        self.end(true, None)
    }

    /// End this attempt as failed with `error` (shown by [`Runs::get`]); the next attempt
    /// resumes at the first step not recorded.
    pub fn fail(mut self, error: &str) -> Result<()> {
        self.end(false, Some(error))
    }

    /// Leave the run held when this value goes, without ending the attempt: for the CLI,
    /// whose steps are processes of their own and whose run is held for the script's shell.
    pub fn detach(mut self) -> Result<()> {
        self.ended = true;
        self.stop_renewing()
    }

    /// The attempt as plain data (for a binding that keeps it between calls): the `Run` no
    /// longer renews its lease nor ends it.
    pub fn into_held(mut self) -> HeldRun {
        self.ended = true;
        let _ = self.stop_renewing();
        self.held.clone()
    }

    fn end(&mut self, finished: bool, error: Option<&str>) -> Result<()> {
        self.ended = true;
        let renewing = self.stop_renewing();
        self.store.end_run(&self.held, finished, error)?;
        renewing
    }

    fn stop_renewing(&mut self) -> Result<()> {
        self.renewer.take().map_or(Ok(()), KeepAlive::stop)
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let _ = self.stop_renewing();
        let engine = &self.store.engine;
        if engine.in_transaction() {
            return; // the lease runs out on its own
        }
        let busy = engine.busy_timeout();
        engine.set_busy_timeout(busy.min(DROP_WAIT));
        let _ = self.store.end_run(&self.held, false, Some(ENDED_UNFINISHED));
        engine.set_busy_timeout(busy);
    }
}

/// The cache namespace that keeps the output of command steps (`Store::command_step`).
pub(crate) const OUTPUT_NS: &str = "cairn.run-output";

/// The prefix of every output key of run `id`: its length first, so that one run's keys are
/// exactly those with its prefix.
pub(crate) fn run_prefix(id: &str) -> String {
    format!("{}:{id}/", id.len())
}

/// The prefix of every output key of step `name` of run `id`.
pub(crate) fn step_prefix(id: &str, name: &str) -> String {
    format!("{}{}:{name}/", run_prefix(id), name.len())
}

/// Drop the kept output of the steps of run `id` from position `from_seq` on (all of them for
/// 0), inside the caller's write transaction `s`.
pub(crate) fn drop_output(s: &Store, id: &str, from_seq: i64) -> Result<()> {
    let cache = Cache::new(s, OUTPUT_NS, true);
    if from_seq <= 0 {
        cache.clear_prefix(&run_prefix(id))?;
        return Ok(());
    }
    for step in s.engine.steps_list(id)?.iter().filter(|step| step.seq >= from_seq) {
        cache.clear_prefix(&step_prefix(id, &step.name))?;
    }
    Ok(())
}

fn lost(id: &str) -> Error {
    Error::LeaseLost { what: "run", name: id.to_owned(), holder: "this attempt".to_owned() }
}

fn shown_version(fingerprint: &str) -> String {
    if fingerprint.is_empty() {
        "no version".to_owned()
    } else {
        format!("version {fingerprint:?}")
    }
}

fn validate_run_id(id: &str) -> Result<()> {
    validate_name("run id", id, crate::MAX_KEY_BYTES)
}

pub(crate) fn validate_step_name(name: &str) -> Result<()> {
    validate_name("step name", name, crate::MAX_KEY_BYTES)?;
    if name.contains('#') {
        return Err(Error::invalid(format!(
            "step name {name:?} has a '#': cairn names the second step of one name name#2, so '#' is kept for that"
        )));
    }
    Ok(())
}

/// A run's state, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunState {
    /// An attempt holds it and is working.
    Running,
    /// The last attempt ended with an error or without finishing (its process died, its lease
    /// ran out): the next one resumes.
    Failed,
    /// Finished: its steps replay.
    Finished,
}

impl RunState {
    /// Its name: `running`, `failed` or `finished`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Failed => "failed",
            RunState::Finished => "finished",
        }
    }

    fn code(self) -> i64 {
        match self {
            RunState::Running => RUN_RUNNING,
            RunState::Failed => RUN_FAILED,
            RunState::Finished => RUN_FINISHED,
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(RunState::Running),
            "failed" => Ok(RunState::Failed),
            "finished" => Ok(RunState::Finished),
            other => {
                Err(Error::invalid(format!("{other:?} is not a run state: running, failed or finished")))
            }
        }
    }
}

/// A step's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepState {
    /// Its last execution failed; nothing is recorded, and the next attempt runs it again.
    Failed,
    /// Done: its result is recorded and replays.
    Done,
}

impl StepState {
    /// Its name: `failed` or `done`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Failed => "failed",
            StepState::Done => "done",
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Runs`] shows of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunInfo {
    /// Its id.
    pub id: String,
    /// Its state (`Failed` for one whose attempt stopped holding it without ending).
    pub state: RunState,
    /// The attempts so far.
    pub attempts: u64,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Who holds it while running: `pid N on this host` or `pid N on another host`.
    pub holder: Option<String>,
    /// When the holder's lease runs out, in Unix milliseconds.
    pub lease_until_millis: Option<i64>,
    /// When its first attempt began, in Unix milliseconds.
    pub started_at_millis: i64,
    /// When it last changed.
    pub updated_at_millis: i64,
    /// When it finished.
    pub finished_at_millis: Option<i64>,
    /// Its steps in order (empty from [`Runs::list`]).
    pub steps: Vec<StepInfo>,
}

/// What [`Runs::get`] shows of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepInfo {
    /// Its full name (`fetch#2` for the second `fetch`).
    pub name: String,
    /// Done or failed.
    pub state: StepState,
    /// How many times it was executed until recorded (or so far).
    pub attempts: u64,
    /// The error of its last execution, while failed.
    pub error: Option<String>,
    /// When its last execution began, in Unix milliseconds.
    pub started_at_millis: i64,
    /// When it ended.
    pub finished_at_millis: i64,
    /// The version it was recorded with ("" for none).
    pub version: String,
    /// For a command step (`cairn step`): the head of its output when done, the tail of its
    /// error output (or output) when failed.
    pub output: Option<String>,
}

impl StepInfo {
    /// How long its last execution took.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(
            u64::try_from(self.finished_at_millis.saturating_sub(self.started_at_millis)).unwrap_or(0),
        )
    }
}

/// The runs of a store, from [`Store::runs`]: list, inspect, reset, forget, prune.
///
/// ```
/// use cairn::{RunState, Store};
///
/// let store = Store::open_in_memory()?;
/// let mut run = store.run("deploy-1")?;
/// run.step("build", || Ok::<_, cairn::Error>("ok".to_owned()))?;
/// run.finish()?;
/// let info = store.runs().get("deploy-1")?.expect("the run");
/// assert_eq!(info.state, RunState::Finished);
/// assert_eq!(info.steps[0].name, "build");
/// assert_eq!(store.runs().reset("deploy-1", Some("build"))?, 1);
/// assert_eq!(store.runs().get("deploy-1")?.expect("the run").state, RunState::Failed);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Runs<'s> {
    store: &'s Store,
}

impl Runs<'_> {
    /// Every run, or those in `state`, by id, without their steps.
    pub fn list(&self, state: Option<RunState>) -> Result<Vec<RunInfo>> {
        let now = self.store.now();
        let mut out = match state {
            None => self.stored(None, now)?,
            // Failed runs are stored failed, or running under an attempt that stopped.
            Some(RunState::Failed) => {
                let mut both = self.stored(Some(RUN_RUNNING), now)?;
                both.extend(self.stored(Some(RUN_FAILED), now)?);
                both.sort_by(|a, b| a.id.cmp(&b.id));
                both
            }
            Some(s) => self.stored(Some(s.code()), now)?,
        };
        if let Some(s) = state {
            out.retain(|r| r.state == s);
        }
        Ok(out)
    }

    /// Every run stored in `state` (all for None), by id, read a page at a time.
    fn stored(&self, state: Option<i64>, now: i64) -> Result<Vec<RunInfo>> {
        const PAGE: i64 = 1000;
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let rows = self.store.engine.runs_list(state, &after, PAGE)?;
            let last = rows.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
            if let Some(row) = rows.last() {
                after = row.id.clone();
            }
            out.extend(rows.into_iter().map(|r| info(r, now, Vec::new())));
            if last {
                return Ok(out);
            }
        }
    }

    /// A run with its steps in order; `None` if there is no such run.
    pub fn get(&self, id: &str) -> Result<Option<RunInfo>> {
        validate_run_id(id)?;
        let now = self.store.now();
        let Some(row) = self.store.engine.run_get(id)? else { return Ok(None) };
        let steps = self.store.engine.steps_list(id)?.into_iter().map(step_info).collect();
        Ok(Some(info(row, now, steps)))
    }

    /// Forget the recorded steps of run `id` from step `from` on (every step for `None`), so
    /// that its next attempt runs them again; a finished run becomes failed. Returns how many
    /// steps were forgotten. [`Error::RunHeld`] while a live attempt holds it; `InvalidInput`
    /// for a run or a step that does not exist (naming the steps there are).
    pub fn reset(&self, id: &str, from: Option<&str>) -> Result<usize> {
        validate_run_id(id)?;
        self.store.write_tx(|s| {
            let row = self.existing(s, id)?;
            let from_seq = match from {
                None => 0,
                Some(name) => {
                    let steps = s.engine.steps_list(id)?;
                    match steps.iter().find(|step| step.name == name) {
                        Some(step) => step.seq,
                        None => return Err(no_step(id, name, &steps)),
                    }
                }
            };
            if is_live(&row, s.now()) {
                return Err(held_error(&row));
            }
            drop_output(s, id, from_seq)?;
            s.engine.run_reset(id, from_seq, s.now())
        })
    }

    /// Delete run `id` and its steps: its id starts afresh. False if there was no such run;
    /// [`Error::RunHeld`] while a live attempt holds it.
    pub fn forget(&self, id: &str) -> Result<bool> {
        validate_run_id(id)?;
        self.store.write_tx(|s| match s.engine.run_get(id)? {
            None => Ok(false),
            Some(row) if is_live(&row, s.now()) => Err(held_error(&row)),
            Some(_) => {
                drop_output(s, id, 0)?;
                s.engine.run_forget(id)
            }
        })
    }

    /// Delete the runs finished more than `older_than` ago, with their steps; how many.
    pub fn prune(&self, older_than: Duration) -> Result<usize> {
        self.store.write_tx(|s| {
            let before = s.now().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
            // The kept output of the command steps of the runs that go.
            let mut after = String::new();
            loop {
                let rows = s.engine.runs_list(None, &after, 1000)?;
                let Some(last) = rows.last() else { break };
                after = last.id.clone();
                for row in rows.iter().filter(|r| r.finished_at.is_some_and(|at| at < before)) {
                    drop_output(s, &row.id, 0)?;
                }
            }
            s.engine.runs_prune(before)
        })
    }

    fn existing(&self, s: &Store, id: &str) -> Result<RunRow> {
        s.engine
            .run_get(id)?
            .ok_or_else(|| Error::invalid(format!("there is no run '{id}'; cairn run list shows the runs")))
    }
}

fn no_step(id: &str, name: &str, steps: &[StepRow]) -> Error {
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    Error::invalid(if names.is_empty() {
        format!("the run '{id}' has no step '{name}': it has recorded no step")
    } else {
        format!("the run '{id}' has no step '{name}'; its steps: {}", names.join(", "))
    })
}

fn info(row: RunRow, now: i64, steps: Vec<StepInfo>) -> RunInfo {
    let live = is_live(&row, now);
    let (state, error) = match row.state {
        RUN_FINISHED => (RunState::Finished, row.error),
        RUN_RUNNING if live => (RunState::Running, row.error),
        RUN_RUNNING => (RunState::Failed, Some(STOPPED.to_owned())),
        _ => (RunState::Failed, row.error),
    };
    RunInfo {
        id: row.id,
        state,
        attempts: u64::try_from(row.attempts).unwrap_or(0),
        error,
        holder: if live { row.holder.as_deref().map(describe_holder) } else { None },
        lease_until_millis: if live { row.lease_until } else { None },
        started_at_millis: row.started_at,
        updated_at_millis: row.updated_at,
        finished_at_millis: row.finished_at,
        steps,
    }
}

fn step_info(row: StepRow) -> StepInfo {
    StepInfo {
        name: row.name,
        state: if row.state == STEP_DONE { StepState::Done } else { StepState::Failed },
        attempts: u64::try_from(row.attempts).unwrap_or(0),
        error: row.error,
        started_at_millis: row.started_at,
        finished_at_millis: row.finished_at,
        version: row.fingerprint,
        output: row.output,
    }
}

//! Cron jobs that run once per slot of their schedule, across every process and host sharing a
//! store, never two at once; with their history and a health check.
//!
//! A schedule cuts time into slots: `every 10m` into multiples of ten minutes since the Unix
//! epoch (UTC), a cron expression into the spans between its occurrences in a time zone. A
//! job's run takes the job's lock (`job:NAME`, freed at once if its holder dies on the same
//! host, after its expiry elsewhere), then runs the slots that are due. A slot is done when a
//! run of it succeeded (or failed with `no_retry`); the store keeps the start of the newest
//! done slot, and slots complete oldest first, so every slot up to it is done.
//!
//! ```
//! use cairn::{JobOutcome, Schedule, Store};
//! let store = Store::open_in_memory()?;
//! let job = store.job("nightly", Schedule::parse_every("1h")?)?;
//! let first = job.run(|_slot| cairn::JobEnd::status(0))?;
//! assert!(first.ran());
//! let again = job.run(|_slot| cairn::JobEnd::status(0))?;
//! assert!(matches!(again, JobOutcome::Done { .. }));
//! # Ok::<(), cairn::Error>(())
//! ```

use std::str::FromStr;
use std::time::Duration;

use chrono::TimeZone;

use crate::duration::{format_time, parse_duration};
use crate::error::{Error, Result};
use crate::names::validate_name;
use crate::storage::{JobOps, JobRow, JobRunRow, JOB_FAILED, JOB_RUNNING, JOB_SUCCEEDED};
use crate::store::Store;

/// The longest a job's name may be, in bytes.
pub const MAX_JOB_NAME_BYTES: usize = 200;

/// How many runs a job keeps in its history unless told otherwise.
pub const DEFAULT_KEEP: u32 = 100;

/// How many missed slots a catch-up runs at most unless told otherwise.
pub const DEFAULT_MAX_CATCH_UP: u32 = 24;

/// The lock's expiry while its holder runs (renewed meanwhile): how long a run on a host that
/// vanished blocks the others on a server.
const LOCK_TTL: Duration = Duration::from_secs(30);

/// When a job runs: every fixed duration, or at a cron expression's times in a zone.
///
/// ```
/// use cairn::Schedule;
/// let s = Schedule::parse_every("10m")?;
/// let slot = s.slot_at(601_000)?; // 00:10:01 UTC
/// assert_eq!((slot.start_ms, slot.end_ms), (600_000, 1_200_000));
/// assert!(Schedule::cron("0 3 * * *", "Europe/Berlin").is_ok());
/// assert!(Schedule::cron("0 3 * *", "UTC").is_err());
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Every(i64),
    Cron { expr: String, tz: chrono_tz::Tz, cron: Box<croner::Cron> },
}

/// One slot of a schedule: `[start, end)`, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The slot's first millisecond.
    pub start_ms: i64,
    /// The next slot's first millisecond.
    pub end_ms: i64,
}

impl Slot {
    /// The start as RFC 3339 in UTC (what `CAIRN_SLOT` holds).
    ///
    /// ```
    /// let slot = cairn::Slot { start_ms: 0, end_ms: 1000 };
    /// assert_eq!(slot.start_rfc3339(), "1970-01-01T00:00:00.000Z");
    /// ```
    pub fn start_rfc3339(&self) -> String {
        format_time(self.start_ms)
    }

    /// The end as RFC 3339 in UTC (what `CAIRN_SLOT_END` holds).
    ///
    /// ```
    /// let slot = cairn::Slot { start_ms: 0, end_ms: 1000 };
    /// assert_eq!(slot.end_rfc3339(), "1970-01-01T00:00:01.000Z");
    /// ```
    pub fn end_rfc3339(&self) -> String {
        format_time(self.end_ms)
    }
}

impl Schedule {
    /// Slots of `every`, multiples of it since the Unix epoch (UTC). Zero (or under a
    /// millisecond) is refused.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(cairn::Schedule::every(Duration::from_secs(60)).is_ok());
    /// assert!(cairn::Schedule::every(Duration::ZERO).is_err());
    /// ```
    pub fn every(every: Duration) -> Result<Schedule> {
        let ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        if ms < 1 {
            return Err(Error::invalid(format!(
                "a job's period must be at least 1ms (got {}): give one, e.g. 10m",
                crate::duration::format_duration(every)
            )));
        }
        if ms > 100 * 366 * 86_400_000 {
            return Err(Error::invalid("a job's period must be under a century"));
        }
        Ok(Schedule { kind: Kind::Every(ms) })
    }

    /// [`Schedule::every`] of a duration as text (`10m`, `1h30m`); a negative one is refused.
    ///
    /// ```
    /// assert!(cairn::Schedule::parse_every("-5m").is_err());
    /// ```
    pub fn parse_every(text: &str) -> Result<Schedule> {
        Schedule::every(parse_duration(text)?)
    }

    /// Slots between the times of a five-field cron expression (minute hour day-of-month
    /// month day-of-week) in the time zone `tz` (an IANA name: `UTC`, `Europe/Berlin`).
    ///
    /// ```
    /// assert!(cairn::Schedule::cron("*/10 * * * *", "UTC").is_ok());
    /// assert!(cairn::Schedule::cron("0 3 * * *", "Mars/Olympus").is_err());
    /// ```
    pub fn cron(expr: &str, tz: &str) -> Result<Schedule> {
        let expr = expr.split_whitespace().collect::<Vec<_>>().join(" ");
        let fields = expr.split(' ').filter(|f| !f.is_empty()).count();
        if fields != 5 {
            return Err(Error::invalid(format!(
                "invalid cron expression {expr:?}: it has {fields} fields, and a job's has five \
                 (minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
            )));
        }
        let cron = croner::Cron::from_str(&expr)
            .map_err(|e| Error::invalid(format!("invalid cron expression {expr:?}: {e}")))?;
        let tz = chrono_tz::Tz::from_str(tz).map_err(|_| {
            Error::invalid(format!("unknown time zone {tz:?}: give an IANA name, e.g. UTC or Europe/Berlin"))
        })?;
        Ok(Schedule { kind: Kind::Cron { expr, tz, cron: Box::new(cron) } })
    }

    /// The slot that contains `at_ms` (Unix milliseconds): `start <= at_ms < end`.
    ///
    /// ```
    /// let s = cairn::Schedule::cron("0 * * * *", "UTC")?;
    /// let slot = s.slot_at(5_400_000)?; // 01:30
    /// assert_eq!((slot.start_ms, slot.end_ms), (3_600_000, 7_200_000));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn slot_at(&self, at_ms: i64) -> Result<Slot> {
        match &self.kind {
            Kind::Every(d) => {
                let start = at_ms.div_euclid(*d) * d;
                Ok(Slot { start_ms: start, end_ms: start.saturating_add(*d) })
            }
            Kind::Cron { expr, tz, cron } => {
                // Occurrences fall on whole seconds: judge on the second that holds `at_ms`.
                let secs = at_ms.div_euclid(1000);
                let at = tz.timestamp_opt(secs, 0).single().ok_or_else(|| out_of_range(at_ms))?;
                let none = |e: croner::errors::CronError| {
                    Error::invalid(format!(
                        "cron expression {expr:?} has no time around {}: {e}",
                        format_time(at_ms)
                    ))
                };
                let start = cron.find_previous_occurrence(&at, true).map_err(none)?;
                let end = cron.find_next_occurrence(&at, false).map_err(none)?;
                Ok(Slot { start_ms: start.timestamp_millis(), end_ms: end.timestamp_millis() })
            }
        }
    }

    /// The slot just before `slot`.
    fn previous(&self, slot: &Slot) -> Result<Slot> {
        self.slot_at(slot.start_ms - 1)
    }
}

fn out_of_range(at_ms: i64) -> Error {
    Error::invalid(format!("time {at_ms} ms is out of the range a schedule handles"))
}

impl std::fmt::Display for Schedule {
    /// `every 10m`, or `cron 0 3 * * * Europe/Berlin`: what [`Schedule::from_str`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Every(ms) => {
                let d = Duration::from_millis(u64::try_from(*ms).unwrap_or(0));
                write!(f, "every {}", crate::duration::format_duration(d).replace(' ', ""))
            }
            Kind::Cron { expr, tz, .. } => write!(f, "cron {expr} {}", tz.name()),
        }
    }
}

impl FromStr for Schedule {
    type Err = Error;

    /// Reads what [`Schedule`]'s `Display` writes: `every DUR` or `cron EXPR ZONE`.
    fn from_str(text: &str) -> Result<Schedule> {
        if let Some(d) = text.strip_prefix("every ") {
            return Schedule::parse_every(d.trim());
        }
        if let Some(rest) = text.strip_prefix("cron ") {
            let rest = rest.trim();
            if let Some((expr, tz)) = rest.rsplit_once(' ') {
                return Schedule::cron(expr, tz);
            }
        }
        Err(Error::invalid(format!("invalid schedule {text:?}: write 'every DUR' or 'cron EXPR ZONE'")))
    }
}

/// Which missed slots a run catches up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Only the current slot.
    #[default]
    None,
    /// Each slot since the newest done one, oldest first (at most `max_catch_up`: the newest
    /// ones).
    All,
}

impl FromStr for CatchUp {
    type Err = Error;

    fn from_str(text: &str) -> Result<CatchUp> {
        match text {
            "none" => Ok(CatchUp::None),
            "all" => Ok(CatchUp::All),
            _ => Err(Error::invalid(format!("invalid catch-up {text:?}: give none or all"))),
        }
    }
}

/// How a slot's run ended, as the run's function reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    /// The exit status: 0 is success.
    pub status: i32,
    /// The last lines of its standard error, kept in the history.
    pub stderr_tail: Option<String>,
}

impl JobEnd {
    /// An end with `status` and no stderr.
    ///
    /// ```
    /// assert_eq!(cairn::JobEnd::status(3).status, 3);
    /// ```
    pub fn status(status: i32) -> JobEnd {
        JobEnd { status, stderr_tail: None }
    }
}

/// How a run of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunOutcome {
    /// Still running, or its process died before recording its end (then marked failed by the
    /// job's next run).
    Running,
    /// Exited 0.
    Succeeded,
    /// Failed.
    Failed,
}

impl RunOutcome {
    fn of(code: i64) -> RunOutcome {
        match code {
            JOB_RUNNING => RunOutcome::Running,
            JOB_SUCCEEDED => RunOutcome::Succeeded,
            _ => RunOutcome::Failed,
        }
    }

    /// `running`, `succeeded` or `failed`.
    ///
    /// ```
    /// assert_eq!(cairn::RunOutcome::Failed.as_str(), "failed");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
        }
    }
}

/// One run in a job's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRunInfo {
    /// Its number: the job's runs are numbered from 1.
    pub seq: i64,
    /// The slot it ran.
    pub slot: Slot,
    /// When it started, Unix milliseconds.
    pub started_ms: i64,
    /// When it ended, if it recorded its end.
    pub finished_ms: Option<i64>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Its exit status, if it recorded its end.
    pub status: Option<i32>,
    /// How long it took, if it recorded its end.
    pub duration: Option<Duration>,
    /// The host it ran on.
    pub host: String,
    /// The process that ran it (the `cairn` process, for the CLI).
    pub pid: i64,
    /// The last lines of its standard error.
    pub stderr_tail: Option<String>,
}

impl From<JobRunRow> for JobRunInfo {
    fn from(r: JobRunRow) -> JobRunInfo {
        JobRunInfo {
            seq: r.seq,
            slot: Slot { start_ms: r.slot, end_ms: r.slot_end },
            started_ms: r.started,
            finished_ms: r.finished,
            outcome: RunOutcome::of(r.outcome),
            status: r.status.map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
            duration: r.duration_ms.map(|d| Duration::from_millis(u64::try_from(d).unwrap_or(0))),
            host: r.host,
            pid: r.pid,
            stderr_tail: r.stderr_tail,
        }
    }
}

/// What [`Job::run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// It ran these slots, oldest first (a failed one, retried later, ends the list).
    Ran(Vec<JobRunInfo>),
    /// The current slot is already done.
    Done {
        /// The current slot.
        slot: Slot,
    },
    /// Another process holds the job (it is running a slot).
    Running {
        /// The current slot.
        slot: Slot,
        /// The holder's pid, if it is known.
        pid: Option<u32>,
    },
}

impl JobOutcome {
    /// True if any slot ran.
    ///
    /// ```
    /// let done = cairn::JobOutcome::Done { slot: cairn::Slot { start_ms: 0, end_ms: 1 } };
    /// assert!(!done.ran());
    /// ```
    pub fn ran(&self) -> bool {
        matches!(self, JobOutcome::Ran(runs) if !runs.is_empty())
    }

    /// The status to exit with: the last failed run's, else 0.
    ///
    /// ```
    /// assert_eq!(cairn::JobOutcome::Ran(vec![]).status(), 0);
    /// ```
    pub fn status(&self) -> i32 {
        match self {
            JobOutcome::Ran(runs) => {
                runs.iter().rev().filter_map(|r| r.status).find(|s| *s != 0).unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// A job as [`Store::jobs`] lists it; also what metrics read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Its name.
    pub name: String,
    /// Its schedule as its last run gave it (`every 10m`, `cron 0 3 * * * UTC`).
    pub schedule: String,
    /// Its newest run.
    pub last_run: Option<JobRunInfo>,
    /// Its newest successful run.
    pub last_success: Option<JobRunInfo>,
    /// Its newest failed run.
    pub last_failure: Option<JobRunInfo>,
    /// The slot after the current one (`None` if its schedule no longer parses).
    pub next_slot: Option<Slot>,
    /// The start of the newest done slot.
    pub done_through_ms: Option<i64>,
    /// Whether a process holds it now.
    pub running: bool,
    /// Runs that ever succeeded (a counter: history is pruned, this is not).
    pub succeeded: u64,
    /// Runs that ever failed.
    pub failed: u64,
}

/// What [`Store::job_check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHealth {
    /// True if the last success ended within the maximum age.
    pub healthy: bool,
    /// The newest successful run.
    pub last_success: Option<JobRunInfo>,
    /// The newest failed run.
    pub last_failure: Option<JobRunInfo>,
    /// One line saying when it last succeeded and how it last failed.
    pub message: String,
}

/// A job of a store: its name, schedule and policy; made by [`Store::job`], run by [`Job::run`].
#[derive(Debug)]
pub struct Job<'s> {
    store: &'s Store,
    name: String,
    schedule: Schedule,
    catch_up: CatchUp,
    max_catch_up: u32,
    no_retry: bool,
    keep: u32,
}

impl Store {
    /// The job `name` on `schedule` (nothing is written until it runs).
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// let job = store.job("backup", cairn::Schedule::parse_every("1d")?)?;
    /// assert_eq!(job.name(), "backup");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn job(&self, name: &str, schedule: Schedule) -> Result<Job<'_>> {
        validate_name("job name", name, MAX_JOB_NAME_BYTES)?;
        Ok(Job {
            store: self,
            name: name.to_owned(),
            schedule,
            catch_up: CatchUp::None,
            max_catch_up: DEFAULT_MAX_CATCH_UP,
            no_retry: false,
            keep: DEFAULT_KEEP,
        })
    }

    /// The newest `limit` runs of job `name`, newest first.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// assert!(store.job_history("none", 10)?.is_empty());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn job_history(&self, name: &str, limit: u32) -> Result<Vec<JobRunInfo>> {
        validate_name("job name", name, MAX_JOB_NAME_BYTES)?;
        Ok(self.engine.job_runs(name, None, i64::from(limit))?.into_iter().map(JobRunInfo::from).collect())
    }

    /// Every job that ever ran, by name: schedule, last run, success and failure, next slot,
    /// running or not, runs by outcome. What `cairn job list` shows and metrics export.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// assert!(store.jobs()?.is_empty());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn jobs(&self) -> Result<Vec<JobInfo>> {
        let now = self.now();
        self.engine.job_all()?.into_iter().map(|row| self.job_info_of(row, now)).collect()
    }

    /// Job `name` as [`Store::jobs`] lists it, if it ever ran.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// assert!(store.job_info("none")?.is_none());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn job_info(&self, name: &str) -> Result<Option<JobInfo>> {
        validate_name("job name", name, MAX_JOB_NAME_BYTES)?;
        let now = self.now();
        self.engine.job_get(name)?.map(|row| self.job_info_of(row, now)).transpose()
    }

    fn job_info_of(&self, row: JobRow, now: i64) -> Result<JobInfo> {
        let last = |outcome| -> Result<Option<JobRunInfo>> {
            Ok(self.engine.job_runs(&row.name, outcome, 1)?.into_iter().next().map(JobRunInfo::from))
        };
        let next_slot = Schedule::from_str(&row.schedule)
            .ok()
            .and_then(|s| s.slot_at(now).and_then(|cur| s.slot_at(cur.end_ms)).ok());
        Ok(JobInfo {
            last_run: last(None)?,
            last_success: last(Some(JOB_SUCCEEDED))?,
            last_failure: last(Some(JOB_FAILED))?,
            next_slot,
            done_through_ms: row.done_through,
            running: self.lock_holder(&lock_name(&row.name))?.is_some(),
            succeeded: u64::try_from(row.succeeded).unwrap_or(0),
            failed: u64::try_from(row.failed).unwrap_or(0),
            name: row.name,
            schedule: row.schedule,
        })
    }

    /// Whether job `name` last succeeded within `max_age` of now (its run's end), with one
    /// line saying when it last succeeded and how it last failed. A job that never succeeded
    /// is unhealthy.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// let health = store.job_check("nightly", std::time::Duration::from_secs(86_400))?;
    /// assert!(!health.healthy);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn job_check(&self, name: &str, max_age: Duration) -> Result<JobHealth> {
        validate_name("job name", name, MAX_JOB_NAME_BYTES)?;
        let now = self.now();
        let last = |outcome| -> Result<Option<JobRunInfo>> {
            Ok(self.engine.job_runs(name, Some(outcome), 1)?.into_iter().next().map(JobRunInfo::from))
        };
        let (success, failure) = (last(JOB_SUCCEEDED)?, last(JOB_FAILED)?);
        let max_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let ended = success.as_ref().and_then(|r| r.finished_ms);
        let healthy = ended.is_some_and(|t| now.saturating_sub(t) <= max_ms);
        let ago = |t: i64| {
            let d = Duration::from_millis(u64::try_from(now.saturating_sub(t)).unwrap_or(0) / 1000 * 1000);
            format!("{} ({} ago)", format_time(t), crate::duration::format_duration(d))
        };
        let mut message = format!("job '{name}' {}: ", if healthy { "OK" } else { "UNHEALTHY" });
        match ended {
            Some(t) => message.push_str(&format!("last succeeded {}", ago(t))),
            None => message.push_str("never succeeded"),
        }
        match &failure {
            Some(f) => {
                let how = match f.status {
                    Some(s) => format!("exit status {s}"),
                    None => "died without an exit status".to_owned(),
                };
                let when = f.finished_ms.unwrap_or(f.started_ms);
                message.push_str(&format!("; last failed {} with {how}", ago(when)));
                if let Some(line) =
                    f.stderr_tail.as_deref().and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()))
                {
                    message.push_str(&format!(": {}", line.trim()));
                }
            }
            None => message.push_str("; never failed"),
        }
        if !healthy {
            message.push_str(&format!(" (max age {})", crate::duration::format_duration(max_age)));
        }
        Ok(JobHealth { healthy, last_success: success, last_failure: failure, message })
    }
}

fn lock_name(job: &str) -> String {
    format!("job:{job}")
}

impl<'s> Job<'s> {
    /// Its name.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// assert_eq!(store.job("j", cairn::Schedule::parse_every("1h")?)?.name(), "j");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its schedule.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// let job = store.job("j", cairn::Schedule::parse_every("1h")?)?;
    /// assert_eq!(job.schedule().to_string(), "every 1h");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Which missed slots a run catches up on ([`CatchUp::None`] unless told).
    ///
    /// ```
    /// use cairn::{CatchUp, ManualClock, Options, Schedule};
    /// let clock = ManualClock::new(0);
    /// let store = Options::new().clock(clock.clone()).open_in_memory()?;
    /// let job = store.job("j", Schedule::parse_every("1h")?)?.catch_up(CatchUp::All).max_catch_up(2);
    /// job.run(|_| cairn::JobEnd::status(0))?;
    /// clock.advance(std::time::Duration::from_secs(5 * 3600));
    /// assert_eq!(job.due()?.len(), 2, "the newest two of the five missed");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// The most slots one catch-up runs ([`DEFAULT_MAX_CATCH_UP`] unless told; at least 1).
    pub fn max_catch_up(mut self, n: u32) -> Self {
        self.max_catch_up = n.max(1);
        self
    }

    /// Keep one attempt per slot: a failed run completes its slot too.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// let job = store.job("j", cairn::Schedule::parse_every("1h")?)?.no_retry(true);
    /// job.run(|_| cairn::JobEnd::status(1))?;
    /// assert!(job.due()?.is_empty());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn no_retry(mut self, yes: bool) -> Self {
        self.no_retry = yes;
        self
    }

    /// How many runs the history keeps ([`DEFAULT_KEEP`] unless told; at least 1).
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// let job = store.job("j", cairn::Schedule::parse_every("1ms")?)?.keep(1);
    /// job.run(|_| cairn::JobEnd::status(1))?;
    /// job.run(|_| cairn::JobEnd::status(0))?;
    /// assert_eq!(store.job_history("j", 10)?.len(), 1);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn keep(mut self, n: u32) -> Self {
        self.keep = n.max(1);
        self
    }

    /// The slot that contains the store's clock's now.
    ///
    /// ```
    /// let clock = cairn::ManualClock::new(90_000);
    /// let store = cairn::Options::new().clock(clock).open_in_memory()?;
    /// let job = store.job("j", cairn::Schedule::parse_every("1m")?)?;
    /// assert_eq!(job.current_slot()?, cairn::Slot { start_ms: 60_000, end_ms: 120_000 });
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn current_slot(&self) -> Result<Slot> {
        self.schedule.slot_at(self.store.now())
    }

    /// The slots a run would run now, oldest first: none when the current one is done.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// let job = store.job("j", cairn::Schedule::parse_every("1h")?)?;
    /// assert_eq!(job.due()?.len(), 1);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn due(&self) -> Result<Vec<Slot>> {
        let done = self.store.engine.job_get(&self.name)?.and_then(|r| r.done_through);
        self.due_after(self.current_slot()?, done)
    }

    fn due_after(&self, current: Slot, done: Option<i64>) -> Result<Vec<Slot>> {
        let is_done = |s: &Slot| done.is_some_and(|d| s.start_ms <= d);
        if is_done(&current) {
            return Ok(Vec::new());
        }
        let mut slots = vec![current];
        if self.catch_up == CatchUp::All && done.is_some() {
            while slots.len() < self.max_catch_up as usize {
                let Some(oldest) = slots.last() else { break };
                let before = self.schedule.previous(oldest)?;
                if is_done(&before) {
                    break;
                }
                slots.push(before);
            }
        }
        slots.reverse();
        Ok(slots)
    }

    /// Run the due slots, oldest first, calling `f` for each, holding the job's lock (renewed
    /// while `f` runs) so no other process or host runs it at the same time. A slot whose run
    /// fails stays due (unless [`Job::no_retry`]) and ends the catch-up.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// let job = store.job("j", cairn::Schedule::parse_every("1h")?)?;
    /// let failed = job.run(|_| cairn::JobEnd::status(1))?;
    /// assert_eq!(failed.status(), 1);
    /// assert!(job.run(|_| cairn::JobEnd::status(0))?.ran(), "a failed slot runs again");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn run(&self, mut f: impl FnMut(&Slot) -> JobEnd) -> Result<JobOutcome> {
        let current = self.current_slot()?;
        // Read first, so the common case (already done) costs one read and no lock.
        if self.due()?.is_empty() {
            return Ok(JobOutcome::Done { slot: current });
        }
        let lock = lock_name(&self.name);
        let Some(guard) = self.store.try_lock(&lock, LOCK_TTL)? else {
            let pid = self.store.lock_holder(&lock)?.map(|h| h.pid);
            return Ok(JobOutcome::Running { slot: current, pid });
        };
        // Again under the lock: another process may have completed it since.
        let due = self.due()?;
        if due.is_empty() {
            guard.release()?;
            return Ok(JobOutcome::Done { slot: current });
        }
        // An in-memory store has no other process to exclude, nor a connection to renew from.
        let renewing =
            if self.store.journal_mode() == "memory" { None } else { Some(guard.keep_alive(LOCK_TTL)?) };
        let result = self.run_slots(&due, &mut f);
        let stopped = renewing.map_or(Ok(()), |r| r.stop());
        guard.release()?;
        let runs = result?;
        stopped?;
        Ok(JobOutcome::Ran(runs))
    }

    fn run_slots(&self, due: &[Slot], f: &mut impl FnMut(&Slot) -> JobEnd) -> Result<Vec<JobRunInfo>> {
        let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();
        let pid = i64::from(std::process::id());
        let schedule = self.schedule.to_string();
        let mut runs = Vec::new();
        for slot in due {
            let started = self.store.now();
            let seq = self.store.write_tx(|s| {
                s.engine.job_start(
                    &self.name,
                    &schedule,
                    i64::from(self.keep),
                    slot.start_ms,
                    slot.end_ms,
                    started,
                    &host,
                    pid,
                )
            })?;
            let end = f(slot);
            let finished = self.store.now();
            let ok = end.status == 0;
            let outcome = if ok { JOB_SUCCEEDED } else { JOB_FAILED };
            self.store.write_tx(|s| {
                s.engine.job_finish(
                    &self.name,
                    seq,
                    finished,
                    outcome,
                    Some(i64::from(end.status)),
                    end.stderr_tail.as_deref(),
                    ok || self.no_retry,
                )
            })?;
            runs.push(JobRunInfo {
                seq,
                slot: *slot,
                started_ms: started,
                finished_ms: Some(finished),
                outcome: RunOutcome::of(outcome),
                status: Some(end.status),
                duration: Some(Duration::from_millis(u64::try_from(finished - started).unwrap_or(0))),
                host: host.clone(),
                pid,
                stderr_tail: end.stderr_tail,
            });
            if !ok && !self.no_retry {
                break;
            }
        }
        Ok(runs)
    }
}

//! # cairn: a memory for automation scripts that survives crashes
//!
//! One SQLite file (WAL mode, a busy timeout, explicit IMMEDIATE transactions) holding:
//!
//! - a **TTL cache** ([`Cache`]): upserts, expiry, sweeps, size bounds, atomic counters, and
//!   compute-once memoization across processes ([`Cache::get_or_set_with`], [`Cache::memo`]);
//! - a **ledger of processed items** ([`Ledger`]): re-runs skip done work, and several workers
//!   share one list through claims with leases, fencing tokens and retries;
//! - **checkpoints** ([`Checkpoint`]): a job's position, saved with the marks it belongs to;
//! - **named locks** ([`Store::try_lock`]) against cron overlap, and counting semaphores
//!   ([`Store::try_semaphore`]), recovered when their holder dies;
//! - **rate limits** across processes and hosts ([`Store::limiter`]): at most a rate, with a
//!   burst, whoever asks;
//! - a **migration runner** on `user_version` for your own files, and under a scope inside a
//!   store ([`Migrations`]);
//! - **transactions** across all of them ([`Store::transaction`]), and your own SQL on the same
//!   connection ([`Store::query`], [`Tx::execute`]).
//!
//! Nothing committed is lost and nothing half-written is ever seen, whatever kills the
//! process; values keep their type ([`ValueKind`]) for the CLI and Python reading the same
//! file.
//!
//! ```
//! use cairn::{Error, Json, Store};
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path().join("state.db"))?; // or Store::open_default()
//!
//! // A cache entry that expires in an hour.
//! let pages = store.cache("pages");
//! pages.set("https://example.com", "<html>…</html>", Duration::from_secs(3600))?;
//! assert!(pages.contains("https://example.com")?);
//!
//! // Computed once, even when several processes miss at the same moment.
//! let n: i64 = pages.get_or_set_with("answer", None, || Ok::<_, Error>(42))?;
//! assert_eq!(n, 42);
//!
//! // A re-run skips done work; the marks and the job's position commit together.
//! for id in store.ledger("orders").filter_new(["o-1", "o-2"])? {
//!     store.transaction(|tx| {
//!         tx.ledger("orders").mark_done(id)?;
//!         tx.checkpoint("orders").set(id)
//!     })?;
//! }
//!
//! // No two cron runs at once.
//! let _guard = store.try_lock("nightly", std::time::Duration::from_secs(3600))?.expect("free");
//!
//! // Several updates, atomically.
//! store.transaction(|tx| {
//!     tx.cache("counters").incr("runs", 1, None)?;
//!     tx.cache("runs").set("last", Json(&["a", "b"]), None)?;
//!     Ok::<_, Error>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Store`] is one connection; open one per thread or process. Errors carry an
//! [`ErrorKind`] to branch on, and a message that says what to do.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod cache;
mod checkpoint;
mod clock;
mod codec;
mod duration;
mod error;
mod job;
mod ledger;
mod limit;
mod lock;
mod maintenance;
mod memo;
mod metrics;
mod migrate;
mod names;
mod process;
mod run;
mod run_command;
mod sql;
mod storage;
mod store;
mod tx;

pub use batch::{Batch, BatchOp};
pub use cache::{Cache, CacheLimits, CacheStats, Eviction, FillClaim, FillTry};
pub use checkpoint::Checkpoint;
pub use clock::{Clock, ManualClock, SystemClock, EARLIEST_TIME_MILLIS, LATEST_TIME_MILLIS};
pub use codec::{Decode, DecodeError, Encode, Json, Rows, SqlValue, Value, ValueKind};
pub use duration::{format_duration, format_time, parse_duration, parse_time};
pub use error::{Error, ErrorKind, Result};
pub use job::{
    CatchUp, Job, JobEnd, JobHealth, JobInfo, JobOutcome, JobRunInfo, RunOutcome, Schedule, Slot,
    DEFAULT_KEEP, DEFAULT_MAX_CATCH_UP, MAX_JOB_NAME_BYTES,
};
pub use ledger::{
    Claim, ClaimHolder, Item, ItemPage, ItemState, Ledger, LedgerCounts, LedgerPolicy, Pause, QueueItem,
    DEFAULT_LEASE, DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_DELAY, MAX_ID_BYTES, MAX_RETRY_DELAY, PAGE_SCAN_ROWS,
    PRIORITY_RANGE,
};
pub use limit::{Decision, Limiter, Rate, MAX_BURST};
pub use lock::{HeldLock, KeepAlive, LockGuard, LockHolder, MAX_SEMAPHORE_SLOTS, MIN_KEEP_ALIVE_TTL};
pub use maintenance::{FileStats, Finding, NamespaceStats};
pub use memo::{
    command_key, ChildRun, CommandKey, CommandOutput, KeptInput, MemoOutcome, MemoPolicy, MemoRecorder,
    Memoized, Stream,
};
pub use metrics::{CacheMetrics, JobMetrics, LedgerMetrics, LockMetrics, Metrics};
pub use migrate::{MigrationDb, MigrationReport, MigrationStatus, Migrations, M};
pub use names::{MAX_KEY_BYTES, MAX_NAMESPACE_BYTES, MAX_VALUE_BYTES};
pub use process::{hold_while_running, hold_while_running_for, HOLDERS_VAR};
pub use run::{
    validate_step_version, HeldRun, Run, RunInfo, RunOptions, RunState, Runs, StepInfo, StepState,
};
pub use run_command::{command_version, CommandStep};
pub use store::{default_path, Durability, Options, RollbackJournal, Store};
pub use tx::Tx;

/// The per-handle state of every feature that keeps one, created with each store, so that its
/// hooks run around every write whichever feature the write is for (the cache adds the hit
/// counts that reading processes left beside the file, and sweeps, on any write, as before the
/// features kept their own state). The crate root is where the features are wired to the
/// store's core, which names none of them (see `store/features.rs`).
pub(crate) const FEATURE_STATES: &[fn() -> Box<dyn store::FeatureState>] =
    &[|| Box::<cache::CacheState>::default(), || Box::<ledger::Scans>::default()];

/// The README's example, compiled with the doctests so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

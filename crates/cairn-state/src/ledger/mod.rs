//! The ledger of processed items: which ids are done, which failed and how often, and who is
//! working on what. It makes a job idempotent (a re-run skips what is done) and lets several
//! workers share one list through claims with leases.

use std::time::Duration;

use crate::clock::{deadline, shown_time};
use crate::codec::{Decode, Encode};
use crate::error::{Error, Result};
use crate::names::validate_name;
use crate::storage::LedgerOps;
use crate::storage::{ClaimRow, Fenced, ItemRow, NewItem, PolicyRow, RetryRule, Setting, Stored, Takeover};
use crate::store::Store;
use crate::tx::Tx;

/// How many times an item may fail before it is given up, unless the namespace's policy
/// ([`Ledger::set_policy`]) or the handle ([`Ledger::max_attempts`]) says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The lease the CLI and the Python package give a claim unless told otherwise. Short, so
/// that an item held by a worker that died on another host comes back within a minute (on
/// the same host a dead holder's item comes back at once); a slow item keeps its claim by
/// extending it ([`Ledger::extend`], or claiming it again from the CLI).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// The longest item id, in bytes.
pub const MAX_ID_BYTES: usize = 4096;

/// The base of a failed item's backoff, unless the namespace's policy ([`Ledger::set_policy`])
/// or the handle ([`Ledger::retry_delay`]) says otherwise.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// The longest a failed item waits before it is handed out again.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// Items deleted per transaction by [`Ledger::prune_done`].
const PRUNE_BATCH: i64 = 10_000;

/// A factor from 0.5 to 1 that spreads the retries of items failing at once: derived from the
/// item and the time (FNV-1a), so that a test on a manual clock sees the same delays each run.
fn jitter(ns: &str, id: &str, now: i64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ns.bytes().chain([0]).chain(id.bytes()).chain(now.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    0.5 + (h >> 11) as f64 / (1u64 << 53) as f64 / 2.0
}

mod claims;
mod control;
mod items;
mod queue;
mod wait;

pub use claims::Claim;
pub(crate) use claims::Scans;
pub use queue::{QueueItem, PRIORITY_RANGE};

use crate::storage::{CANCELLED, CLAIMED, DONE, FAILED, PENDING};

/// Where an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ItemState {
    /// Queued, or waiting for a retry.
    Pending,
    /// Held by a worker whose lease has not run out.
    Claimed,
    /// Done.
    Done,
    /// Given up after too many failures.
    Failed,
    /// Cancelled ([`Ledger::cancel`]): never handed out again, unless retried.
    Cancelled,
}

impl ItemState {
    /// The state's name: `pending`, `claimed`, `done`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Claimed => "claimed",
            ItemState::Done => "done",
            ItemState::Failed => "failed",
            ItemState::Cancelled => "cancelled",
        }
    }

    /// Every state, in the order items move through them.
    pub const ALL: [ItemState; 5] =
        [ItemState::Pending, ItemState::Claimed, ItemState::Done, ItemState::Failed, ItemState::Cancelled];

    fn code(self) -> i64 {
        match self {
            ItemState::Pending => PENDING,
            ItemState::Claimed => CLAIMED,
            ItemState::Done => DONE,
            ItemState::Failed => FAILED,
            ItemState::Cancelled => CANCELLED,
        }
    }

    fn of(row: &ItemRow, now: i64) -> ItemState {
        match row.state {
            CLAIMED if row.seq.is_some_and(|until| until > now) => ItemState::Claimed,
            DONE => ItemState::Done,
            FAILED => ItemState::Failed,
            CANCELLED => ItemState::Cancelled,
            _ => ItemState::Pending,
        }
    }
}

impl std::fmt::Display for ItemState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a state's name (`pending`, `claimed`, `done`, `failed`, `cancelled`), as the CLI and Python
/// take it.
///
/// ```
/// use cairn::ItemState;
///
/// assert_eq!("done".parse::<ItemState>()?, ItemState::Done);
/// assert_eq!(ItemState::Failed.to_string(), "failed");
/// assert!("finished".parse::<ItemState>().is_err());
/// # Ok::<(), cairn::Error>(())
/// ```
impl std::str::FromStr for ItemState {
    type Err = Error;

    fn from_str(name: &str) -> Result<ItemState> {
        ItemState::ALL.into_iter().find(|s| s.as_str() == name).ok_or_else(|| {
            Error::invalid(format!(
                "an item state is pending, claimed, done, failed or cancelled, not {name:?}"
            ))
        })
    }
}

/// One item as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Item {
    /// The id.
    pub id: String,
    /// Where it stands now.
    pub state: ItemState,
    /// Attempts that ended without the item done: failures recorded, and claims lost (taken
    /// over after their lease ran out or their worker died).
    pub attempts: u32,
    /// The last failure's message.
    pub error: Option<String>,
    /// The worker holding or last holding a claim.
    pub worker: Option<String>,
    /// The result stored when it was done, if any.
    pub result: Option<Vec<u8>>,
    /// What the result is (see [`ValueKind`](crate::ValueKind)).
    pub result_kind: Option<crate::ValueKind>,
    /// What the item carries for its worker, if anything ([`QueueItem::data`]).
    pub data: Option<Vec<u8>>,
    /// What the data is.
    pub data_kind: Option<crate::ValueKind>,
    /// For a pending item: when it may be handed out (Unix milliseconds), later than now for a
    /// delayed item or one waiting out its retry backoff.
    pub due_millis: Option<i64>,
    /// When it last changed, in Unix milliseconds.
    pub updated_at_millis: i64,
}

impl Item {
    fn from_row(row: ItemRow, now: i64) -> Item {
        Item {
            state: ItemState::of(&row, now),
            id: row.id,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            error: row.error,
            worker: row.worker,
            result_kind: row.result.as_ref().map(|r| r.kind),
            result: row.result.map(|r| r.bytes),
            data_kind: row.data.as_ref().map(|d| d.kind),
            data: row.data.map(|d| d.bytes),
            due_millis: row.due.map(shown_time),
            updated_at_millis: shown_time(row.updated_at),
        }
    }
}

/// Which process's death frees a claim at once, on the same host, instead of when its lease
/// runs out. Set with [`Ledger::holder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClaimHolder {
    /// The process making the claim (the default): a library worker that dies with its claims
    /// has them taken over by the next `claim_next` of another process.
    #[default]
    ThisProcess,
    /// Another process of this host, by pid: what a shell script that claims with one command
    /// and completes with another ties its claims to (its shell, `$$`).
    Process(u32),
    /// No process: only the lease frees the claim (a claim made for work done elsewhere).
    LeaseOnly,
}

/// A ledger namespace's policy: how many attempts an item gets before it is given up, and the
/// base of a failed item's backoff. Kept in the store with [`Ledger::set_policy`], as a cache's
/// bounds are, so that every handle of the namespace applies it: in every process, on every
/// host, inside transactions ([`Tx::ledger`]), from Rust, the CLI (`cairn ledger policy`) and
/// Python. A handle's own [`Ledger::max_attempts`] or [`Ledger::retry_delay`] overrides it for
/// that handle alone. `None`: the default ([`DEFAULT_MAX_ATTEMPTS`], [`DEFAULT_RETRY_DELAY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerPolicy {
    /// Give an item up once this many attempts ended without it being done: failures
    /// ([`Ledger::fail`]) and claims lost (taken over after their lease ran out or their
    /// worker died). At least 1.
    pub max_attempts: Option<u32>,
    /// The base of the backoff before a failed item is handed out again; see
    /// [`Ledger::retry_delay`].
    pub retry_delay: Option<Duration>,
}

impl LedgerPolicy {
    /// The attempts after which an item is given up, its default filled in.
    pub fn max_attempts_or_default(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }

    /// The base of the backoff, its default filled in.
    pub fn retry_delay_or_default(&self) -> Duration {
        self.retry_delay.unwrap_or(DEFAULT_RETRY_DELAY)
    }

    fn row(&self) -> PolicyRow {
        PolicyRow {
            max_attempts: self.max_attempts.map(i64::from),
            retry_delay_ms: self.retry_delay.map(crate::clock::duration_millis),
        }
    }

    fn of(row: PolicyRow) -> LedgerPolicy {
        LedgerPolicy {
            max_attempts: row.max_attempts.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            retry_delay: row.retry_delay_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        }
    }
}

/// A page of items from [`Ledger::page`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ItemPage {
    /// The items, in id order.
    pub items: Vec<Item>,
    /// Where the next page starts (its `after`); `None` when there is nothing more to read.
    pub next: Option<String>,
}

/// The most items [`Ledger::page`] reads for one page, whatever its filter: a page stays a
/// few milliseconds with a million items in the namespace.
pub const PAGE_SCAN_ROWS: usize = 10_000;

/// How many rows [`Ledger::page`] reads per statement.
const PAGE_CHUNK_ROWS: usize = 500;

/// How many items stand where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LedgerCounts {
    /// Queued or waiting for a retry (expired claims included).
    pub pending: u64,
    /// Held under a live lease.
    pub claimed: u64,
    /// Done.
    pub done: u64,
    /// Given up.
    pub failed: u64,
    /// Cancelled ([`Ledger::cancel`]).
    pub cancelled: u64,
    /// Whether the namespace is paused ([`Ledger::pause`]), and until when.
    pub paused: Option<Pause>,
}

/// How long a paused namespace ([`Ledger::pause`]) stays paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pause {
    /// Until this time (Unix milliseconds), or [`Ledger::resume`] before.
    Until(i64),
    /// Until [`Ledger::resume`].
    UntilResumed,
}

impl Pause {
    /// Until when, in Unix milliseconds; `None` until resumed.
    pub fn until_millis(self) -> Option<i64> {
        match self {
            Pause::Until(at) => Some(at),
            Pause::UntilResumed => None,
        }
    }
}

impl Store {
    /// The ledger namespace `ns`; see [`Ledger`]. Inside [`Store::transaction`] use
    /// [`Tx::ledger`].
    pub fn ledger<'a>(&'a self, ns: &'a str) -> Ledger<'a> {
        Ledger::new(self, ns, false)
    }

    /// The ledger namespaces that hold items, sorted.
    pub fn ledger_namespaces(&self) -> Result<Vec<String>> {
        self.engine.ledger_namespaces()
    }
}

impl Tx<'_> {
    /// The ledger namespace `ns`, inside this transaction.
    pub fn ledger<'a>(&'a self, ns: &'a str) -> Ledger<'a> {
        Ledger::new(self.store(), ns, true)
    }
}

/// One namespace of the ledger, from [`Store::ledger`] (each operation its own transaction)
/// or [`Tx::ledger`](crate::Tx::ledger) (operations join the transaction).
///
/// # States
/// * **Pending**: queued with [`Ledger::enqueue`], or waiting for a retry after a failure.
/// * **Claimed**: a worker holds it until its lease runs out; after that it counts as pending
///   again and another worker may claim it.
/// * **Done**: recorded once; marking it again changes nothing.
/// * **Failed**: given up after `max_attempts` attempts (see [`LedgerPolicy`]): failures, and
///   claims lost because their worker died or hung (taken over by another claim).
/// * **Cancelled**: by [`Ledger::cancel`]; never handed out again, unless [`Ledger::retry`]
///   puts it back. A claim on it is lost.
///
/// A namespace can be paused ([`Ledger::pause`]): nothing is handed out until it is resumed
/// or the pause ends.
///
/// # Fencing
/// Every claim carries a token that each new claim of the item bumps. Completing, failing or
/// extending with a claim whose item was since claimed by another worker fails with
/// [`ErrorKind::LeaseLost`](crate::ErrorKind::LeaseLost), so an item is recorded done exactly
/// once, by the worker that held it last.
///
/// ```
/// use cairn::Store;
/// use std::time::Duration;
///
/// let store = Store::open_in_memory()?;
/// let ledger = store.ledger("invoices");
/// let todo = ledger.filter_new(["a", "b", "c"])?;       // all three are new
/// for id in todo {
///     // ... the work ...
///     ledger.mark_done(id)?;
/// }
/// assert!(ledger.filter_new(["a", "b", "c", "d"])?.eq(&["d"])); // a re-run skips done work
///
/// // Several workers on one list:
/// let claim = ledger.claim("e", "worker-1", Duration::from_secs(60))?.expect("free");
/// assert!(ledger.claim("e", "worker-2", Duration::from_secs(60))?.is_none());
/// ledger.complete(&claim)?;
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Ledger<'a> {
    store: &'a Store,
    ns: &'a str,
    in_tx: bool,
    /// The handle's own limit, over the namespace's policy.
    max_attempts: Option<u32>,
    holder: ClaimHolder,
    /// The handle's own backoff base, over the namespace's policy.
    retry_delay: Option<Duration>,
}

impl<'a> Ledger<'a> {
    pub(crate) fn new(store: &'a Store, ns: &'a str, in_tx: bool) -> Self {
        Ledger { store, ns, in_tx, max_attempts: None, holder: ClaimHolder::ThisProcess, retry_delay: None }
    }

    /// The namespace's name.
    ///
    /// ```
    /// let store = cairn::Store::open_in_memory()?;
    /// assert_eq!(store.ledger("orders").namespace(), "orders");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn namespace(&self) -> &str {
        self.ns
    }

    /// Keep the namespace's policy in the store, replacing the one before: every handle of the
    /// namespace applies it from its next operation on, in every process, inside transactions
    /// too, unless the handle overrides it ([`Ledger::max_attempts`], [`Ledger::retry_delay`]).
    /// `LedgerPolicy::default()` goes back to the defaults. Items already given up stay so
    /// ([`Ledger::retry`] puts them back). Inside a transaction, it joins it.
    ///
    /// ```
    /// use cairn::{ItemState, LedgerPolicy, Store};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// store.ledger("jobs").set_policy(LedgerPolicy {
    ///     max_attempts: Some(5),
    ///     retry_delay: Some(Duration::ZERO),
    /// })?;
    /// store.ledger("jobs").enqueue(["a"])?;
    /// // A handle made anywhere else, here inside a transaction, applies the same policy.
    /// for _ in 0..4 {
    ///     let state = store.transaction(|tx| tx.ledger("jobs").fail("a", "timeout"))?;
    ///     assert_eq!(state, ItemState::Pending);
    /// }
    /// assert_eq!(store.ledger("jobs").fail("a", "timeout")?, ItemState::Failed, "the 5th attempt");
    /// assert_eq!(store.ledger("jobs").policy()?.max_attempts, Some(5));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn set_policy(&self, policy: LedgerPolicy) -> Result<()> {
        if policy.max_attempts == Some(0) {
            return Err(Error::invalid(
                "max_attempts must be at least 1: with 0 an item would be given up before its first attempt",
            ));
        }
        self.write(|s| s.engine.ledger_set_policy(self.ns, policy.row()))
    }

    /// The namespace's policy as stored (`None` where the default applies; see
    /// [`LedgerPolicy::max_attempts_or_default`]). This handle's own overrides are not in it.
    pub fn policy(&self) -> Result<LedgerPolicy> {
        self.check_ns()?;
        Ok(LedgerPolicy::of(self.store.engine.ledger_policy(self.ns)?))
    }

    /// The base of the backoff before a failed item is handed out again: the first retry waits
    /// about `base`, each next one twice as long (at most [`MAX_RETRY_DELAY`]), with jitter
    /// (50 to 100% of that), so that items failing together do not come back together.
    /// For this handle alone, over the namespace's policy ([`Ledger::set_policy`]); without
    /// either, [`DEFAULT_RETRY_DELAY`]. Zero retries at once.
    ///
    /// ```
    /// use cairn::{ItemState, ManualClock, Options};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(1_000_000);
    /// let store = Options::new().clock(clock.clone()).open_in_memory()?;
    /// let queue = store.ledger("jobs").retry_delay(Duration::from_secs(10));
    /// queue.enqueue(["a"])?;
    /// let claim = queue.claim_next("w", Duration::from_secs(60))?.expect("a");
    /// assert_eq!(queue.fail_claim(&claim, "timeout")?, ItemState::Pending);
    /// assert!(queue.claim_next("w", Duration::from_secs(60))?.is_none(), "waiting out its backoff");
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(queue.claim_next("w", Duration::from_secs(60))?.expect("due").attempt(), 2);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn retry_delay(mut self, base: Duration) -> Self {
        self.retry_delay = Some(base);
        self
    }

    /// Tie this handle's claims to a process: if it dies, another worker on the same host
    /// takes them over at once rather than after the lease. Default
    /// [`ClaimHolder::ThisProcess`]. Where processes cannot be watched (no `/proc`, or another
    /// host), leases alone free claims.
    ///
    /// ```
    /// use cairn::{ClaimHolder, Store};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// // A claim for work that outlives this process: only its lease frees it.
    /// let ledger = store.ledger("jobs").holder(ClaimHolder::LeaseOnly);
    /// assert!(ledger.claim("42", "w1", Duration::from_secs(60))?.is_some());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn holder(mut self, holder: ClaimHolder) -> Self {
        self.holder = holder;
        self
    }

    /// The process name stored with this handle's claims.
    fn holder_token(&self) -> Result<Option<String>> {
        match self.holder {
            ClaimHolder::ThisProcess => crate::process::watch(std::process::id()),
            ClaimHolder::Process(pid) => crate::process::watch(pid),
            ClaimHolder::LeaseOnly => Ok(None),
        }
    }

    /// Give items up after `n` attempts (failures and lost claims), for this handle alone,
    /// over the namespace's policy ([`Ledger::set_policy`]); without either,
    /// [`DEFAULT_MAX_ATTEMPTS`]. `n` must be at least 1: the handle's writes refuse 0 with
    /// `InvalidInput`.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// The attempts after which this handle gives an item up, as the engines resolve it.
    fn max_attempts_setting(&self) -> Setting {
        Setting { given: self.max_attempts.map(i64::from), default: i64::from(DEFAULT_MAX_ATTEMPTS) }
    }

    /// [`Ledger::write`] of one fenced statement (a claim, a completion, a failure of a
    /// claim, an extension): outside a transaction the store may send it on its own.
    fn write_one<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        if self.in_tx {
            return self.write(f);
        }
        self.check_settings()?;
        self.store.write_one(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        self.check_settings()?;
        if self.in_tx {
            f(self.store)
        } else {
            self.store.write_tx(f)
        }
    }

    fn check_settings(&self) -> Result<()> {
        self.check_ns()?;
        if self.max_attempts == Some(0) {
            return Err(Error::invalid(
                "max_attempts must be at least 1: with 0 an item would be given up before its first attempt",
            ));
        }
        Ok(())
    }

    fn check_ns(&self) -> Result<()> {
        validate_name("namespace", self.ns, crate::MAX_NAMESPACE_BYTES)
    }
}

/// Every id, validated before anything is read or written.
fn collect_ids<S: AsRef<str>>(ids: impl IntoIterator<Item = S>) -> Result<Vec<S>> {
    let ids: Vec<S> = ids.into_iter().collect();
    for id in &ids {
        validate_id(id.as_ref())?;
    }
    Ok(ids)
}

/// A lease of zero has run out when it is taken: another worker could claim the item at once.
fn validate_lease(lease: Duration) -> Result<()> {
    crate::duration::at_least_1ms(
        lease,
        "a claim lease",
        "gives no exclusion (another worker could claim the item at once)",
    )
}

fn validate_id(id: &str) -> Result<()> {
    validate_name("id", id, MAX_ID_BYTES)
}

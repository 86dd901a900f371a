//! The ledger of processed items: which ids are done, which failed and how often, and who is
//! working on what. It makes a job idempotent (a re-run skips what is done) and lets several
//! workers share one list through claims with leases.

use std::time::Duration;

use crate::cache::validate_name;
use crate::clock::deadline;
use crate::codec::{Decode, Encode};
use crate::error::{Error, Result};
use crate::storage::EngineOps;
use crate::storage::{ClaimRow, Fenced, ItemRow, NewItem, RetryRule, Stored};
use crate::store::Store;

/// How many times an item may fail before it is given up, unless set with
/// [`Ledger::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The longest item id, in bytes.
pub const MAX_ID_BYTES: usize = 4096;

/// The base of a failed item's backoff, unless set with [`Ledger::retry_delay`].
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

/// How often one store looks for claims whose process died, per namespace: the longest such
/// a claim waits before `claim_next` hands it out again.
const DEAD_SCAN_EVERY: Duration = Duration::from_millis(100);

/// When each namespace was last searched for dead holders, by one store.
#[derive(Debug, Default)]
pub(crate) struct Scans(std::cell::RefCell<std::collections::HashMap<String, std::time::Instant>>);

impl Scans {
    /// True (and the time noted) if `ns` was not searched in the last `every`.
    fn due(&self, ns: &str, every: Duration) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.0.borrow_mut();
        match last.get_mut(ns) {
            Some(at) if now.duration_since(*at) < every => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                last.insert(ns.to_owned(), now);
                true
            }
        }
    }
}

use crate::storage::{CLAIMED, DONE, FAILED, PENDING};

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
}

impl ItemState {
    /// The state's name: `pending`, `claimed`, `done` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Claimed => "claimed",
            ItemState::Done => "done",
            ItemState::Failed => "failed",
        }
    }

    /// Every state, in the order items move through them.
    pub const ALL: [ItemState; 4] = [ItemState::Pending, ItemState::Claimed, ItemState::Done, ItemState::Failed];

    fn code(self) -> i64 {
        match self {
            ItemState::Pending => PENDING,
            ItemState::Claimed => CLAIMED,
            ItemState::Done => DONE,
            ItemState::Failed => FAILED,
        }
    }

    fn of(row: &ItemRow, now: i64) -> ItemState {
        match row.state {
            CLAIMED if row.seq.is_some_and(|until| until > now) => ItemState::Claimed,
            DONE => ItemState::Done,
            FAILED => ItemState::Failed,
            _ => ItemState::Pending,
        }
    }
}

impl std::fmt::Display for ItemState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a state's name (`pending`, `claimed`, `done`, `failed`), as the CLI and Python
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
            Error::invalid(format!("an item state is pending, claimed, done or failed, not {name:?}"))
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
    /// Failures recorded.
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
            due_millis: row.due,
            updated_at_millis: row.updated_at,
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
}

/// A worker's hold on an item, from [`Ledger::claim`] or [`Ledger::claim_next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    id: String,
    worker: String,
    token: i64,
    lease_until: i64,
    data: Option<Stored>,
    attempts: i64,
}

impl Claim {
    /// The item's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The worker that holds it.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The fencing token: bumped by every claim of the item.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// When the lease runs out, in Unix milliseconds.
    pub fn lease_until_millis(&self) -> i64 {
        self.lease_until
    }

    /// Which attempt this is: 1 the first time the item is worked on, 2 after one failure...
    pub fn attempt(&self) -> u32 {
        u32::try_from(self.attempts.saturating_add(1)).unwrap_or(u32::MAX)
    }

    /// What the item carries for its worker ([`QueueItem::data`]), as `T`.
    ///
    /// ```
    /// use cairn::{Json, QueueItem, Store};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let queue = store.ledger("emails");
    /// queue.enqueue_items([QueueItem::new("msg-1").data(Json(["a@example.com", "hello"]))?])?;
    /// let claim = queue.claim_next("w1", Duration::from_secs(60))?.expect("queued");
    /// let Json([to, body]) = claim.data::<Json<[String; 2]>>()?.expect("data");
    /// assert_eq!((to.as_str(), body.as_str(), claim.attempt()), ("a@example.com", "hello", 1));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn data<T: Decode>(&self) -> Result<Option<T>> {
        self.data
            .clone()
            .map(|d| {
                T::decode_typed(d.kind, d.bytes).map_err(|e| Error::Decode {
                    ns: "ledger".into(),
                    key: self.id.clone(),
                    expected: e.expected,
                    detail: e.detail,
                })
            })
            .transpose()
    }

    fn of(row: ClaimRow, worker: &str, lease_until: i64) -> Claim {
        Claim {
            id: row.id,
            worker: worker.to_owned(),
            token: row.token,
            lease_until,
            data: row.data,
            attempts: row.attempts,
        }
    }
}

/// An item to queue with [`Ledger::enqueue_items`]: its id, and optionally data for its
/// worker and a time before which it is not handed out.
#[derive(Debug, Clone)]
pub struct QueueItem {
    id: String,
    data: Option<(Vec<u8>, crate::ValueKind)>,
    not_before: NotBefore,
}

#[derive(Debug, Clone, Copy)]
enum NotBefore {
    Now,
    After(Duration),
    At(i64),
}

impl QueueItem {
    /// The item `id`, due at once, without data.
    pub fn new(id: impl Into<String>) -> Self {
        QueueItem { id: id.into(), data: None, not_before: NotBefore::Now }
    }

    /// Data for the worker, handed out with the claim ([`Claim::data`]).
    pub fn data(mut self, data: impl Encode) -> Result<Self> {
        let bytes = data.encode()?.into_owned();
        crate::cache::validate_value(&bytes)?;
        self.data = Some((bytes, data.kind()));
        Ok(self)
    }

    /// Not handed out before `delay` from when it is queued.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.not_before = NotBefore::After(delay);
        self
    }

    /// Not handed out before this time, in Unix milliseconds.
    pub fn not_before_millis(mut self, at: i64) -> Self {
        self.not_before = NotBefore::At(at);
        self
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
/// * **Failed**: it failed `max_attempts` times and was given up.
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
    max_attempts: u32,
    holder: ClaimHolder,
    retry_delay: Duration,
}

impl<'a> Ledger<'a> {
    pub(crate) fn new(store: &'a Store, ns: &'a str, in_tx: bool) -> Self {
        Ledger {
            store,
            ns,
            in_tx,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            holder: ClaimHolder::ThisProcess,
            retry_delay: DEFAULT_RETRY_DELAY,
        }
    }

    /// The base of the backoff before a failed item is handed out again: the first retry waits
    /// about `base`, each next one twice as long (at most [`MAX_RETRY_DELAY`]), with jitter
    /// (50 to 100% of that), so that items failing together do not come back together.
    /// Default [`DEFAULT_RETRY_DELAY`]; zero retries at once.
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
        self.retry_delay = base;
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

    /// Give items up after `n` failures. Default [`DEFAULT_MAX_ATTEMPTS`]. `n` must be at
    /// least 1: the handle's writes refuse 0 with `InvalidInput`.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
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

    /// Record `id` as done. True if this call did it; false if it already was.
    pub fn mark_done(&self, id: &str) -> Result<bool> {
        validate_id(id)?;
        self.write(|s| s.engine.ledger_mark_done(self.ns, id, None, s.now()))
    }

    /// Record `id` as done with a (small) result value, read back by [`Ledger::result`]. The
    /// first result is kept: marking a done item again changes nothing.
    pub fn mark_done_with(&self, id: &str, result: impl Encode) -> Result<bool> {
        validate_id(id)?;
        let bytes = result.encode()?;
        self.write(|s| s.engine.ledger_mark_done(self.ns, id, Some((&bytes, result.kind())), s.now()))
    }

    /// Record many ids as done in one transaction; returns how many were newly done.
    pub fn mark_done_many<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<u64> {
        let ids = collect_ids(ids)?;
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        self.write(|s| s.engine.ledger_mark_done_many(self.ns, &ids, s.now()))
    }

    fn check_settings(&self) -> Result<()> {
        self.check_ns()?;
        if self.max_attempts == 0 {
            return Err(Error::invalid(
                "max_attempts must be at least 1: with 0 an item would be given up before its first attempt",
            ));
        }
        Ok(())
    }

    fn check_ns(&self) -> Result<()> {
        validate_name("namespace", self.ns, crate::MAX_NAMESPACE_BYTES)
    }

    /// True if `id` is done.
    pub fn is_done(&self, id: &str) -> Result<bool> {
        self.check_ns()?;
        validate_id(id)?;
        self.store.engine.ledger_is_done(self.ns, id)
    }

    /// The ids that still need work (neither done nor given up), in input order, read from
    /// one snapshot of the ledger.
    pub fn filter_new<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<Vec<S>> {
        self.check_ns()?;
        let ids = collect_ids(ids)?;
        let settled = {
            let refs: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
            self.store.engine.ledger_filter_settled(self.ns, &refs)?
        };
        Ok(ids.into_iter().zip(settled).filter(|(_, settled)| !settled).map(|(id, _)| id).collect())
    }

    /// The result stored with a done item.
    pub fn result<T: Decode>(&self, id: &str) -> Result<Option<T>> {
        let Some(item) = self.item(id)? else { return Ok(None) };
        let kind = item.result_kind.unwrap_or(crate::ValueKind::Bytes);
        item.result
            .map(|bytes| {
                T::decode_typed(kind, bytes).map_err(|e| Error::Decode {
                    ns: self.ns.to_owned(),
                    key: id.to_owned(),
                    expected: e.expected,
                    detail: e.detail,
                })
            })
            .transpose()
    }

    /// Everything recorded about `id`.
    pub fn item(&self, id: &str) -> Result<Option<Item>> {
        self.check_ns()?;
        validate_id(id)?;
        let now = self.store.now();
        Ok(self.store.engine.ledger_item(self.ns, id)?.map(|row| Item::from_row(row, now)))
    }

    /// Record a failure of `id` with its error text. Below `max_attempts` failures the item
    /// is pending again (at the back of the queue); at `max_attempts` it is given up. A done
    /// item stays done. Returns the state it is left in.
    pub fn fail(&self, id: &str, error: &str) -> Result<ItemState> {
        validate_id(id)?;
        self.write(|s| self.record_failure(s, id, None, error))
    }

    /// Claim `id` for `worker` for `lease`. `None` if it is done, given up, or held by
    /// another worker whose lease has not run out and whose process (see [`Ledger::holder`])
    /// is not known to be dead. Claiming an item this worker already holds renews the claim
    /// (with a new token).
    pub fn claim(&self, id: &str, worker: &str, lease: Duration) -> Result<Option<Claim>> {
        validate_id(id)?;
        validate_name("worker", worker, MAX_ID_BYTES)?;
        validate_lease(lease)?;
        let holder = self.holder_token()?;
        self.write(|s| {
            if let Some(claim) = self.claim_in(s, id, worker, lease, holder.as_deref(), None)? {
                return Ok(Some(claim));
            }
            match s.engine.ledger_holder(self.ns, id)? {
                Some(dead) if crate::process::token_is_dead(&dead) => {
                    self.claim_in(s, id, worker, lease, holder.as_deref(), Some(&dead))
                }
                _ => Ok(None),
            }
        })
    }

    /// Claim the next item of the queue for `worker`: a claim whose process died on this host
    /// (noticed within 0.1 s), then one whose lease ran out, else the oldest pending item.
    /// `None` if there is nothing to do.
    pub fn claim_next(&self, worker: &str, lease: Duration) -> Result<Option<Claim>> {
        validate_name("worker", worker, MAX_ID_BYTES)?;
        validate_lease(lease)?;
        let holder = self.holder_token()?;
        // Which holding processes are dead is found before the write lock is taken (a plain
        // read, then /proc), so other workers do not wait on it; the claim below re-checks the
        // holder under the lock.
        let dead = if self.in_tx { Vec::new() } else { self.dead_holders()? };
        self.write_one(|s| {
            let dead = if self.in_tx { self.dead_holders()? } else { dead };
            let now = s.now();
            let lease_until = deadline(now, lease);
            let holder = holder.as_deref();
            let mut claimed = None;
            for d in &dead {
                claimed = s.engine.ledger_claim_held_by(self.ns, d, worker, lease_until, now, holder)?;
                if claimed.is_some() {
                    break;
                }
            }
            if claimed.is_none() {
                claimed = s.engine.ledger_claim_next(self.ns, worker, lease_until, now, holder)?;
            }
            Ok(claimed.map(|row| Claim::of(row, worker, lease_until)))
        })
    }

    /// Claim up to `n` items at once for `worker` (in one statement on a server): claims of
    /// dead processes and expired ones first, then the oldest pending items. Fewer (or none)
    /// when the queue holds fewer. Each claim is fenced on its own, as from
    /// [`Ledger::claim_next`].
    ///
    /// ```
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.enqueue(["a", "b", "c"])?;
    /// let batch = queue.claim_next_many("w1", Duration::from_secs(60), 2)?;
    /// assert_eq!(batch.iter().map(|c| c.id()).collect::<Vec<_>>(), ["a", "b"]);
    /// for claim in &batch {
    ///     queue.complete(claim)?;
    /// }
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn claim_next_many(&self, worker: &str, lease: Duration, n: u32) -> Result<Vec<Claim>> {
        validate_name("worker", worker, MAX_ID_BYTES)?;
        validate_lease(lease)?;
        let holder = self.holder_token()?;
        let dead = if self.in_tx { Vec::new() } else { self.dead_holders()? };
        self.write_one(|s| {
            let dead = if self.in_tx { self.dead_holders()? } else { dead };
            let now = s.now();
            let lease_until = deadline(now, lease);
            let holder = holder.as_deref();
            let mut claimed = Vec::new();
            for d in &dead {
                while claimed.len() < n as usize {
                    match s.engine.ledger_claim_held_by(self.ns, d, worker, lease_until, now, holder)? {
                        Some(c) => claimed.push(c),
                        None => break,
                    }
                }
            }
            let rest = n.saturating_sub(u32::try_from(claimed.len()).unwrap_or(u32::MAX));
            if rest > 0 {
                claimed.extend(s.engine.ledger_claim_next_many(
                    self.ns,
                    worker,
                    lease_until,
                    now,
                    holder,
                    rest,
                )?);
            }
            Ok(claimed.into_iter().map(|row| Claim::of(row, worker, lease_until)).collect())
        })
    }

    /// The processes holding claims in this namespace that are known to be dead. Looked for
    /// at most every [`DEAD_SCAN_EVERY`] per store and namespace: a worker claiming thousands
    /// of items a second would otherwise read the claimed part of the queue and `/proc` for
    /// each one, to find a death that happens once in a long while.
    fn dead_holders(&self) -> Result<Vec<String>> {
        self.check_ns()?;
        if !self.store.ledger_scans.due(self.ns, DEAD_SCAN_EVERY) {
            return Ok(Vec::new());
        }
        let mut holders = self.store.engine.ledger_holders(self.ns)?;
        let me = crate::process::me();
        holders.retain(|h| *h != me.name && crate::process::token_is_dead(h));
        Ok(holders)
    }

    fn claim_in(
        &self,
        s: &Store,
        id: &str,
        worker: &str,
        lease: Duration,
        holder: Option<&str>,
        replace: Option<&str>,
    ) -> Result<Option<Claim>> {
        let now = s.now();
        let lease_until = deadline(now, lease);
        Ok(s.engine
            .ledger_claim(self.ns, id, worker, lease_until, now, holder, replace)?
            .map(|row| Claim::of(row, worker, lease_until)))
    }

    /// The claim `worker` holds on `id`, for a process that did not make it (a shell script
    /// claiming with one command and completing with another). `None` if another worker
    /// claimed the item since, or it is no longer claimed. A lapsed lease that nobody took over
    /// is still returned: completing it is safe, because fencing refuses it once anyone else
    /// claims. So is the claim of an item this worker completed: completing it again changes
    /// nothing (a retry after a commit whose outcome was lost).
    ///
    /// ```
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let ledger = store.ledger("jobs");
    /// ledger.claim("42", "w1", Duration::from_secs(60))?;
    /// let claim = ledger.held_claim("42", "w1")?.expect("w1 holds it");
    /// ledger.complete(&claim)?;
    /// assert!(ledger.is_done("42")?);
    /// assert!(ledger.held_claim("42", "w2")?.is_none());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn held_claim(&self, id: &str, worker: &str) -> Result<Option<Claim>> {
        validate_id(id)?;
        validate_name("worker", worker, MAX_ID_BYTES)?;
        self.check_ns()?;
        let Some((token, lease_until)) = self.store.engine.ledger_held(self.ns, id, worker)? else {
            return Ok(None);
        };
        let item = self.store.engine.ledger_item(self.ns, id)?;
        Ok(Some(Claim {
            id: id.to_owned(),
            worker: worker.to_owned(),
            token,
            lease_until,
            attempts: item.as_ref().map_or(0, |i| i.attempts),
            data: item.and_then(|i| i.data),
        }))
    }

    /// Extend a claim's lease to `lease` from now (a heartbeat). Fails with `LeaseLost` if
    /// another worker claimed the item since.
    pub fn extend(&self, claim: &Claim, lease: Duration) -> Result<Claim> {
        validate_lease(lease)?;
        self.write_one(|s| {
            let lease_until = deadline(s.now(), lease);
            if s.engine.ledger_extend(self.ns, &claim.id, &claim.worker, claim.token, lease_until)? {
                Ok(Claim { lease_until, ..claim.clone() })
            } else {
                Err(lost(claim))
            }
        })
    }

    /// Record a claimed item as done. Fails with `LeaseLost`, recording nothing, if another
    /// worker claimed the item since (fencing). Completing again with the same claim succeeds
    /// and changes nothing: safe to retry after a commit whose outcome was lost (a server's
    /// connection dropped).
    pub fn complete(&self, claim: &Claim) -> Result<()> {
        self.complete_inner(claim, None)
    }

    /// [`Ledger::complete`] with a result value.
    pub fn complete_with(&self, claim: &Claim, result: impl Encode) -> Result<()> {
        let bytes = result.encode()?;
        self.complete_inner(claim, Some((&bytes, result.kind())))
    }

    fn complete_inner(&self, claim: &Claim, result: Option<(&[u8], crate::ValueKind)>) -> Result<()> {
        self.write_one(|s| {
            if s.engine.ledger_complete(self.ns, &claim.id, &claim.worker, claim.token, result, s.now())? {
                Ok(())
            } else {
                Err(lost(claim))
            }
        })
    }

    /// Complete several claims at once: one statement on a server, one transaction on a
    /// file. Each claim is fenced on its own; the answer says, in the order given, which were
    /// recorded as done (`true`, also for a claim that had completed its item already, as a
    /// retry after a lost commit) and which were refused because another worker claimed the
    /// item since (`false`: that work must not count, as [`Ledger::complete`]'s `LeaseLost`
    /// says for one). Inside a transaction, it joins it.
    ///
    /// ```
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.enqueue(["a", "b", "c"])?;
    /// let batch = queue.claim_next_many("w1", Duration::from_secs(60), 3)?;
    /// assert_eq!(queue.complete_many(&batch)?, [true, true, true]);
    /// assert_eq!(queue.counts()?.done, 3);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn complete_many(&self, claims: &[Claim]) -> Result<Vec<bool>> {
        let fenced: Vec<Fenced<'_>> =
            claims.iter().map(|c| Fenced { id: &c.id, worker: &c.worker, token: c.token }).collect();
        self.write_one(|s| s.engine.ledger_complete_many(self.ns, &fenced, s.now()))
    }

    /// Record a failure of a claimed item; see [`Ledger::fail`]. Fails with `LeaseLost` if
    /// another worker claimed the item since.
    pub fn fail_claim(&self, claim: &Claim, error: &str) -> Result<ItemState> {
        self.write_one(|s| self.record_failure(s, &claim.id, Some(claim), error))
    }

    fn record_failure(&self, s: &Store, id: &str, claim: Option<&Claim>, error: &str) -> Result<ItemState> {
        let now = s.now();
        let fenced = claim.map(|c| (c.worker.as_str(), c.token));
        let retry = RetryRule {
            max_attempts: self.max_attempts,
            base_ms: crate::clock::duration_millis(self.retry_delay),
            cap_ms: crate::clock::duration_millis(MAX_RETRY_DELAY),
            jitter: jitter(self.ns, id, now),
        };
        match s.engine.ledger_fail(self.ns, id, fenced, error, retry, now)? {
            Some(PENDING) => Ok(ItemState::Pending),
            Some(DONE) => Ok(ItemState::Done),
            Some(FAILED) => Ok(ItemState::Failed),
            Some(_) => Ok(ItemState::Claimed),
            None => Err(claim.map_or_else(|| Error::invalid("the item changed while failing it"), lost)),
        }
    }

    /// Queue ids for [`Ledger::claim_next`], in order. Ids the ledger knows already (queued,
    /// claimed, done or failed) are skipped. Returns how many were queued.
    pub fn enqueue<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<u64> {
        let ids = collect_ids(ids)?;
        self.write(|s| {
            let now = s.now();
            let items: Vec<NewItem<'_>> =
                ids.iter().map(|id| NewItem { id: id.as_ref(), data: None, due: now }).collect();
            s.engine.ledger_enqueue_many(self.ns, &items, now)
        })
    }

    /// Queue items with data for their workers or a time before which they are not handed
    /// out (see [`QueueItem`]), in order; ids the ledger knows already are skipped. Returns how
    /// many were queued. Items are handed out by the time they are due, then in queue order.
    ///
    /// ```
    /// use cairn::{QueueItem, Store};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let queue = store.ledger("reports");
    /// queue.enqueue_items([
    ///     QueueItem::new("daily").delay(Duration::from_secs(3600)),
    ///     QueueItem::new("now").data("urgent")?,
    /// ])?;
    /// assert_eq!(queue.claim_next("w", Duration::from_secs(60))?.expect("due").id(), "now");
    /// assert!(queue.claim_next("w", Duration::from_secs(60))?.is_none(), "daily is not due yet");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn enqueue_items(&self, items: impl IntoIterator<Item = QueueItem>) -> Result<u64> {
        let items: Vec<QueueItem> = items.into_iter().collect();
        for item in &items {
            validate_id(&item.id)?;
        }
        self.write(|s| {
            let now = s.now();
            let rows: Vec<NewItem<'_>> = items
                .iter()
                .map(|item| NewItem {
                    id: &item.id,
                    data: item.data.as_ref().map(|(b, k)| (b.as_slice(), *k)),
                    due: match item.not_before {
                        NotBefore::Now => now,
                        NotBefore::After(d) => deadline(now, d),
                        NotBefore::At(at) => at,
                    },
                })
                .collect();
            s.engine.ledger_enqueue_many(self.ns, &rows, now)
        })
    }

    /// Put given-up items back in the queue, due now, their attempts and error reset: a re-run
    /// of what failed too often, once its cause is fixed. Ids that are not given up are left
    /// as they are. Returns how many were put back.
    pub fn retry<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<u64> {
        let ids = collect_ids(ids)?;
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        self.write(|s| s.engine.ledger_retry(self.ns, Some(&ids), s.now()))
    }

    /// [`Ledger::retry`] every given-up item of the namespace.
    pub fn retry_all_failed(&self) -> Result<u64> {
        self.write(|s| s.engine.ledger_retry(self.ns, None, s.now()))
    }

    /// Delete the items done more than `age` ago, to keep a long-lived ledger small; returns
    /// how many. A re-run no longer skips a pruned id: prune only what will not come again.
    /// Deleted in batches of 10,000, each its own transaction, so other writers are never kept
    /// waiting long.
    pub fn prune_done(&self, age: Duration) -> Result<u64> {
        self.check_ns()?;
        let before = self.store.now().saturating_sub(crate::clock::duration_millis(age));
        let mut total = 0;
        loop {
            let n = self.write(|s| s.engine.ledger_prune_done(self.ns, before, PRUNE_BATCH))?;
            total += n;
            if self.in_tx || n < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// How many items stand where.
    pub fn counts(&self) -> Result<LedgerCounts> {
        self.check_ns()?;
        let mut c = LedgerCounts::default();
        for (state, n) in self.store.engine.ledger_counts(self.ns, self.store.now())? {
            match state {
                CLAIMED => c.claimed += n,
                DONE => c.done += n,
                FAILED => c.failed += n,
                _ => c.pending += n,
            }
        }
        Ok(c)
    }

    /// A page of items in id order, starting after `after` (`None`: from the start),
    /// optionally only those in `state`. Page through with the last id returned.
    pub fn list(&self, state: Option<ItemState>, after: Option<&str>, limit: usize) -> Result<Vec<Item>> {
        self.check_ns()?;
        let now = self.store.now();
        // Stored states differ from visible ones for expired claims: filter those here.
        let stored = state.map(|s| if s == ItemState::Pending { None } else { Some(s.code()) });
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let mut cursor = after.unwrap_or("").to_owned();
        while out.len() < limit as usize {
            let rows = self.store.engine.ledger_list(self.ns, stored.flatten(), &cursor, limit)?;
            let exhausted = (rows.len() as i64) < limit;
            for row in rows {
                cursor.clone_from(&row.id);
                let item = Item::from_row(row, now);
                if state.is_none_or(|s| s == item.state) && out.len() < limit as usize {
                    out.push(item);
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }

    /// Forget `id` entirely, as if it had never been seen. True if it was known.
    pub fn delete(&self, id: &str) -> Result<bool> {
        validate_id(id)?;
        self.write(|s| s.engine.ledger_delete(self.ns, id))
    }

    /// Forget every item of the namespace. Returns how many.
    pub fn clear(&self) -> Result<u64> {
        self.write(|s| s.engine.ledger_clear(self.ns))
    }
}

fn lost(claim: &Claim) -> Error {
    Error::LeaseLost { what: "claim", name: claim.id.clone(), holder: claim.worker.clone() }
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

//! The ledger's part of the engine contract, and the rows it exchanges.

use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::Stored;

engine_ops! {
    /// The ledger: items, claims with leases and fencing, the queue.
    trait LedgerOps {
        /// Whether an item is done.
        fn ledger_is_done(&self, ns: &str, id: &str) -> Result<bool>;
        /// An item as stored.
        fn ledger_item(&self, ns: &str, id: &str) -> Result<Option<ItemRow>>;
        /// Mark an item done (with a result); true if this call did it.
        fn ledger_mark_done(&self, ns: &str, id: &str, result: Option<(&[u8], ValueKind)>, now: i64) -> Result<bool>;
        /// Mark items done; how many were not.
        fn ledger_mark_done_many(&self, ns: &str, ids: &[&str], now: i64) -> Result<u64>;
        /// Queue the items the ledger does not know, in order; how many.
        fn ledger_enqueue_many(&self, ns: &str, items: &[NewItem<'_>], now: i64) -> Result<u64>;
        /// Claim one item (taking over `replace`, a dead holder). Taking over a lapsed claim or
        /// a dead holder's follows `lost`: the row comes back `given_up` instead of claimed when
        /// that ends the item.
        fn ledger_claim(&self, ns: &str, id: &str, worker: &str, lease_until: i64, now: i64, holder: Option<&str>, replace: Option<&str>, lost: Takeover) -> Result<Option<ClaimRow>>;
        /// Claim the next item: an expired claim (taken over as `lost` says), else the pending
        /// item due first.
        fn ledger_claim_next(&self, ns: &str, worker: &str, lease_until: i64, now: i64, holder: Option<&str>, lost: Takeover) -> Result<Option<ClaimRow>>;
        /// Claim up to `n` items at once (expired claims first, taken over as `lost` says, then
        /// the pending ones due first); the rows given up are among those returned.
        fn ledger_claim_next_many(&self, ns: &str, worker: &str, lease_until: i64, now: i64, holder: Option<&str>, n: u32, lost: Takeover) -> Result<Vec<ClaimRow>>;
        /// Take over the oldest claim of a dead holder, as `lost` says.
        fn ledger_claim_held_by(&self, ns: &str, dead: &str, worker: &str, lease_until: i64, now: i64, holder: Option<&str>, lost: Takeover) -> Result<Option<ClaimRow>>;
        /// The processes holding claims in a namespace.
        fn ledger_holders(&self, ns: &str) -> Result<Vec<String>>;
        /// The process a claim of an item is tied to.
        fn ledger_holder(&self, ns: &str, id: &str) -> Result<Option<String>>;
        /// A worker's claim of an item (live, lapsed, or completed by it): token and lease expiry.
        fn ledger_held(&self, ns: &str, id: &str, worker: &str) -> Result<Option<(i64, i64)>>;
        /// The namespaces with items, sorted.
        fn ledger_namespaces(&self) -> Result<Vec<String>>;
        /// Move a claim's lease; false if fenced.
        fn ledger_extend(&self, ns: &str, id: &str, worker: &str, token: i64, lease_until: i64) -> Result<bool>;
        /// Give a claimed item back, pending again and due at `now`, its attempts unchanged;
        /// false if fenced.
        fn ledger_release(&self, ns: &str, id: &str, worker: &str, token: i64, now: i64) -> Result<bool>;
        /// Complete a claim; false if fenced. True again for the same claim once done by it.
        fn ledger_complete(&self, ns: &str, id: &str, worker: &str, token: i64, result: Option<(&[u8], ValueKind)>, now: i64) -> Result<bool>;
        /// Complete several claims at once; for each, in order, what `ledger_complete` answers.
        fn ledger_complete_many(&self, ns: &str, claims: &[Fenced<'_>], now: i64) -> Result<Vec<bool>>;
        /// Record a failure (pending again after the rule's backoff, or given up at its
        /// `max_attempts`, each resolved against the namespace's stored policy); the state left,
        /// or `None` if the claim was fenced.
        fn ledger_fail(&self, ns: &str, id: &str, claim: Option<(&str, i64)>, error: &str, retry: RetryRule, now: i64) -> Result<Option<i64>>;
        /// Given-up items (those of `ids`, or all with `None`) pending again, attempts reset,
        /// due now; how many. Cancelled items too, when named in `ids`.
        fn ledger_retry(&self, ns: &str, ids: Option<&[&str]>, now: i64) -> Result<u64>;
        /// Cancel an item that is pending, claimed or given up (its claim, if any, fenced);
        /// true if this call did it.
        fn ledger_cancel(&self, ns: &str, id: &str, now: i64) -> Result<bool>;
        /// Give a claimed item back, pending again and due at `due`, its attempts unchanged;
        /// false if fenced.
        fn ledger_snooze(&self, ns: &str, id: &str, worker: &str, token: i64, due: i64, now: i64) -> Result<bool>;
        /// Until when the namespace is paused (Unix ms, `i64::MAX`: until resumed), as stored.
        fn ledger_paused_until(&self, ns: &str) -> Result<Option<i64>>;
        /// Pause the namespace until `until` (Unix ms), or resume it with `None`.
        fn ledger_set_paused(&self, ns: &str, until: Option<i64>) -> Result<()>;
        /// Delete up to `limit` items done before `before` (Unix ms); how many.
        fn ledger_prune_done(&self, ns: &str, before: i64, limit: i64) -> Result<u64>;
        /// Which ids are done, given up or cancelled, from one snapshot.
        fn ledger_filter_settled(&self, ns: &str, ids: &[&str]) -> Result<Vec<bool>>;
        /// Items per stored state (an expired claim counted as pending).
        fn ledger_counts(&self, ns: &str, now: i64) -> Result<Vec<(i64, u64)>>;
        /// A page of items in id order.
        fn ledger_list(&self, ns: &str, state: Option<i64>, after: &str, limit: i64) -> Result<Vec<ItemRow>>;
        /// Delete an item; true if known.
        fn ledger_delete(&self, ns: &str, id: &str) -> Result<bool>;
        /// Delete a namespace's items (its policy stays); how many.
        fn ledger_clear(&self, ns: &str) -> Result<u64>;
        /// The namespace's stored policy (all `None` if none was set).
        fn ledger_policy(&self, ns: &str) -> Result<PolicyRow>;
        /// Store the namespace's policy, replacing the one before (`None`: the default).
        fn ledger_set_policy(&self, ns: &str, policy: PolicyRow) -> Result<()>;
        /// An item of group `grp` left the group's head (claimed or pending) position, or may
        /// have: if the group has no pending or claimed item now, its first waiting one (in
        /// queue order) becomes pending. Idempotent; call it after any write that ends a
        /// grouped item (done, given up, cancelled, deleted). True if an item moved up.
        fn ledger_group_advance(&self, ns: &str, grp: &str) -> Result<bool>;
    }
}

/// One ledger row, as stored.
#[derive(Debug, Clone)]
pub(crate) struct ItemRow {
    pub id: String,
    pub state: i64,
    pub seq: Option<i64>,
    pub attempts: i64,
    pub worker: Option<String>,
    pub result: Option<Stored>,
    pub error: Option<String>,
    pub updated_at: i64,
    /// When a pending item may be handed out (Unix ms); `None` unless pending.
    pub due: Option<i64>,
    /// What the item carries for its worker.
    pub data: Option<Stored>,
}

/// An item to queue: its id, what it carries for its worker, and when it may first be handed
/// out (Unix ms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewItem<'a> {
    pub id: &'a str,
    pub data: Option<(&'a [u8], ValueKind)>,
    pub due: i64,
    /// Higher is handed out first.
    pub priority: i64,
    /// At most one item of a group is pending or claimed at once (its head); the others wait
    /// (state `WAITING`) in queue order, and the head's leaving lets the next one in.
    pub grp: Option<&'a str>,
}

/// A claim as a fenced write names it: the item, the worker holding it and its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fenced<'a> {
    pub id: &'a str,
    pub worker: &'a str,
    pub token: i64,
}

/// A claim as made: the item, the new fencing token, what the item carries, and how many
/// attempts it had before (failures and lost claims, this takeover's included). Or, with
/// `given_up`, an item whose lost claim was its last attempt: given up, not claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimRow {
    pub id: String,
    pub token: i64,
    pub data: Option<Stored>,
    pub attempts: i64,
    pub given_up: bool,
}

/// What taking over a claim does, when its lease ran out or its holder died (a renewal by the
/// claim's own worker, or a pending item's claim, is no takeover): the lost claim counts as an
/// attempt, and when that makes `max_attempts` the item is given up (failed, its worker and
/// holder cleared) instead of claimed. Its error then becomes `lost_every_time` if it had none
/// (every attempt so far was a lost claim), else `lost_last`; in either, `{n}` stands for the
/// attempts and, in `lost_last`, `{error}` for the error the item had.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Takeover {
    pub max_attempts: Setting,
    pub lost_every_time: &'static str,
    pub lost_last: &'static str,
}

/// A namespace's policy as stored in `cairn_ledger_ns`: `None` where it was not set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PolicyRow {
    pub max_attempts: Option<i64>,
    pub retry_delay_ms: Option<i64>,
}

/// One setting of a namespace's policy as a handle asks for it: the handle's own value if it
/// set one, else the namespace's stored one, else `default`. Engines resolve it where they read
/// the item's row (on a server, inside the same statement), so that it costs no round trip.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setting {
    pub given: Option<i64>,
    pub default: i64,
}

impl Setting {
    /// The value in force, given what the namespace stores.
    pub fn resolve(self, stored: Option<i64>) -> i64 {
        self.given.or(stored).unwrap_or(self.default)
    }
}

/// What a failure leads to: the item is given up at `max_attempts` failures; until then it may
/// be handed out again after `base × 2^(failures before)`, at most `cap`, scaled by `jitter`
/// (0.5 to 1, chosen by the feature).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryRule {
    pub max_attempts: Setting,
    pub base_ms: Setting,
    pub cap_ms: i64,
    pub jitter: f64,
}

impl RetryRule {
    /// The delay after the failure that makes `failures` in all, with the backoff base `base_ms`.
    pub fn delay_ms(&self, base_ms: i64, failures: i64) -> i64 {
        let doublings = u32::try_from((failures - 1).clamp(0, 62)).unwrap_or(62);
        let full = base_ms.saturating_mul(1i64.checked_shl(doublings).unwrap_or(i64::MAX)).min(self.cap_ms);
        (full as f64 * self.jitter) as i64
    }
}

/// The stored ledger states (features decide what they mean; see `crate::ledger`).
pub(crate) const PENDING: i64 = 0;

pub(crate) const CLAIMED: i64 = 1;

pub(crate) const DONE: i64 = 2;

pub(crate) const FAILED: i64 = 3;

/// Cancelled: never handed out again (until retried); a claim on it is fenced.
pub(crate) const CANCELLED: i64 = 4;
/// Queued behind another item of its group (see [`NewItem::grp`]): out of the queue's claim
/// order until the item ahead of it leaves (done, given up, cancelled or deleted). Readers show
/// it as pending.
pub(crate) const WAITING: i64 = 5;

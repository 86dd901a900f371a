//! Claims: a worker's hold on an item, with a lease and a fencing token; completing and
//! failing them; taking over the claims of workers that died.

use super::*;

/// How often one store looks for claims whose process died, per namespace: the longest such
/// a claim waits before `claim_next` hands it out again.
const DEAD_SCAN_EVERY: Duration = Duration::from_millis(100);

/// The error of an item given up because its last attempt's claim was lost, when every
/// attempt before ended the same way (`{n}`: the attempts).
const LOST_EVERY_TIME: &str = "its claims were lost {n} times: the worker died or hung";

/// The same when an attempt before failed with an error of its own (`{error}`).
const LOST_LAST: &str =
    "given up after {n} attempts, the last one's claim lost: the worker died or hung (the failure before: {error})";

/// When each namespace was last searched for dead holders, by one store.
#[derive(Debug, Default)]
pub(crate) struct Scans(std::cell::RefCell<std::collections::HashMap<String, std::time::Instant>>);

impl crate::store::FeatureState for Scans {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

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

    /// Which attempt this is: 1 the first time the item is worked on, 2 after one failure or
    /// one claim lost (taken over from a worker that died or hung), and so on.
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

impl<'a> Ledger<'a> {
    /// Record a failure of `id` with its error text. Below `max_attempts` failures the item
    /// is pending again (at the back of the queue); at `max_attempts` it is given up. A done
    /// item stays done. Returns the state it is left in.
    pub fn fail(&self, id: &str, error: &str) -> Result<ItemState> {
        validate_id(id)?;
        self.write(|s| self.record_failure(s, id, None, error))
    }

    /// Claim `id` for `worker` for `lease`. `None` if it is done, given up, cancelled, or
    /// held by another worker whose lease has not run out and whose process (see
    /// [`Ledger::holder`]) is not known to be dead, or if the namespace is paused
    /// ([`Ledger::pause`]). Claiming an item this worker already holds renews the claim
    /// (with a new token), paused or not.
    ///
    /// Taking over a claim whose lease ran out or whose process died counts as an attempt
    /// (the worker died or hung on the item); if that makes the item's last attempt (see
    /// [`LedgerPolicy::max_attempts`]), the item is given up instead, and `None` returned.
    pub fn claim(&self, id: &str, worker: &str, lease: Duration) -> Result<Option<Claim>> {
        validate_id(id)?;
        validate_name("worker", worker, MAX_ID_BYTES)?;
        validate_lease(lease)?;
        let holder = self.holder_token()?;
        self.write(|s| {
            if self.paused_at(s.now())?.is_some() && !self.renews(s, id, worker)? {
                return Ok(None);
            }
            if let Some(row) = self.claim_in(s, id, worker, lease, holder.as_deref(), None)? {
                return Ok(row);
            }
            match s.engine.ledger_holder(self.ns, id)? {
                Some(dead) if crate::process::token_is_dead(&dead) => {
                    Ok(self.claim_in(s, id, worker, lease, holder.as_deref(), Some(&dead))?.flatten())
                }
                _ => Ok(None),
            }
        })
    }

    /// Claim the next item of the queue for `worker`: a claim whose process died on this host
    /// (noticed within 0.1 s), then one whose lease ran out, else the oldest pending item.
    /// `None` if there is nothing to do, or the namespace is paused ([`Ledger::pause`]).
    ///
    /// Taking over a claim counts as an attempt, so an item that kills or hangs every worker
    /// that takes it (a poison item) is not handed out forever: at its last attempt (see
    /// [`LedgerPolicy::max_attempts`]) it is given up, with an error saying its claims were
    /// lost, and the next item is claimed instead.
    ///
    /// ```
    /// use cairn::{ItemState, LedgerPolicy, ManualClock, Options};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(1_000_000);
    /// let store = Options::new().clock(clock.clone()).open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.set_policy(LedgerPolicy { max_attempts: Some(2), ..LedgerPolicy::default() })?;
    /// queue.enqueue(["poison", "next"])?;
    /// let lease = Duration::from_secs(60);
    /// assert_eq!(queue.claim_next("w1", lease)?.expect("poison").attempt(), 1);
    /// clock.advance(lease); // w1 hung (or died) on it
    /// assert_eq!(queue.claim_next("w2", lease)?.expect("poison again").attempt(), 2);
    /// clock.advance(lease); // so did w2: its second lost claim is its last attempt
    /// assert_eq!(queue.claim_next("w3", lease)?.expect("the next item").id(), "next");
    /// let poison = queue.item("poison")?.expect("known");
    /// assert_eq!(poison.state, ItemState::Failed);
    /// assert_eq!(poison.error.as_deref(), Some("its claims were lost 2 times: the worker died or hung"));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn claim_next(&self, worker: &str, lease: Duration) -> Result<Option<Claim>> {
        validate_name("worker", worker, MAX_ID_BYTES)?;
        validate_lease(lease)?;
        let holder = self.holder_token()?;
        // Which holding processes are dead is found before the write lock is taken (a plain
        // read, then /proc), so other workers do not wait on it; the claim below re-checks the
        // holder under the lock.
        let dead = if self.in_tx { Vec::new() } else { self.dead_holders()? };
        let lost = self.takeover();
        self.write_one(|s| {
            let dead = if self.in_tx { self.dead_holders()? } else { dead };
            let now = s.now();
            let lease_until = deadline(now, lease);
            let holder = holder.as_deref();
            let mut claimed = None;
            'dead: for d in &dead {
                // A dead holder's claim given up: on to its next one.
                while let Some(row) =
                    s.engine.ledger_claim_held_by(self.ns, d, worker, lease_until, now, holder, lost)?
                {
                    if !row.given_up {
                        claimed = Some(row);
                        break 'dead;
                    }
                }
            }
            if claimed.is_none() {
                claimed = loop {
                    match s.engine.ledger_claim_next(self.ns, worker, lease_until, now, holder, lost)? {
                        Some(row) if row.given_up => {} // on to the next item
                        row => break row,
                    }
                };
            }
            Ok(claimed.map(|row| Claim::of(row, worker, lease_until)))
        })
    }

    /// Claim up to `n` items at once for `worker` (in one statement on a server): claims of
    /// dead processes and expired ones first, then the oldest pending items. Fewer (or none)
    /// when the queue holds fewer. Each claim is fenced on its own, and counts a takeover as
    /// an attempt, as from [`Ledger::claim_next`].
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
        let lost = self.takeover();
        self.write_one(|s| {
            let dead = if self.in_tx { self.dead_holders()? } else { dead };
            let now = s.now();
            let lease_until = deadline(now, lease);
            let holder = holder.as_deref();
            let mut claimed = Vec::new();
            for d in &dead {
                while claimed.len() < n as usize {
                    match s.engine.ledger_claim_held_by(self.ns, d, worker, lease_until, now, holder, lost)? {
                        Some(c) if c.given_up => {}
                        Some(c) => claimed.push(c),
                        None => break,
                    }
                }
            }
            loop {
                let rest = n.saturating_sub(u32::try_from(claimed.len()).unwrap_or(u32::MAX));
                if rest == 0 {
                    break;
                }
                let rows =
                    s.engine.ledger_claim_next_many(self.ns, worker, lease_until, now, holder, rest, lost)?;
                // Items given up took places in the batch: ask again for those, until the queue
                // has no more.
                let gave_up = rows.iter().any(|c| c.given_up);
                claimed.extend(rows.into_iter().filter(|c| !c.given_up));
                if !gave_up {
                    break;
                }
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
        if !self.store.feature::<Scans>().due(self.ns, DEAD_SCAN_EVERY) {
            return Ok(Vec::new());
        }
        let mut holders = self.store.engine.ledger_holders(self.ns)?;
        let me = crate::process::me();
        holders.retain(|h| *h != me.name && crate::process::token_is_dead(h));
        Ok(holders)
    }

    /// `None`: not claimable; `Some(None)`: given up (its lost claim was its last attempt).
    fn claim_in(
        &self,
        s: &Store,
        id: &str,
        worker: &str,
        lease: Duration,
        holder: Option<&str>,
        replace: Option<&str>,
    ) -> Result<Option<Option<Claim>>> {
        let now = s.now();
        let lease_until = deadline(now, lease);
        Ok(s.engine
            .ledger_claim(self.ns, id, worker, lease_until, now, holder, replace, self.takeover())?
            .map(|row| (!row.given_up).then(|| Claim::of(row, worker, lease_until))))
    }

    /// What a takeover of a lapsed or dead holder's claim does, for this handle.
    fn takeover(&self) -> Takeover {
        Takeover {
            max_attempts: self.max_attempts_setting(),
            lost_every_time: LOST_EVERY_TIME,
            lost_last: LOST_LAST,
        }
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
            lease_until: shown_time(lease_until),
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

    /// Give a claimed item back without spending an attempt: it is pending again at once (at
    /// the back of the queue) and the next claim shows the same attempt number. For work that
    /// stopped for a reason that is not the item's (an operator's Ctrl-C, a shutdown), where
    /// [`Ledger::fail_claim`] would count a failure towards `max_attempts`. Fails with
    /// `LeaseLost`, changing nothing, if another worker claimed the item since.
    ///
    /// ```
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.enqueue(["a"])?;
    /// let claim = queue.claim_next("w1", Duration::from_secs(60))?.expect("queued");
    /// queue.release(&claim)?; // interrupted: not the item's fault
    /// let again = queue.claim_next("w2", Duration::from_secs(60))?.expect("pending again");
    /// assert_eq!((again.id(), again.attempt()), ("a", 1));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn release(&self, claim: &Claim) -> Result<()> {
        self.write_one(|s| {
            if s.engine.ledger_release(self.ns, &claim.id, &claim.worker, claim.token, s.now())? {
                Ok(())
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
            max_attempts: self.max_attempts_setting(),
            base_ms: Setting {
                given: self.retry_delay.map(crate::clock::duration_millis),
                default: crate::clock::duration_millis(DEFAULT_RETRY_DELAY),
            },
            cap_ms: crate::clock::duration_millis(MAX_RETRY_DELAY),
            jitter: jitter(self.ns, id, now),
        };
        match s.engine.ledger_fail(self.ns, id, fenced, error, retry, now)? {
            Some(PENDING) => Ok(ItemState::Pending),
            Some(DONE) => Ok(ItemState::Done),
            Some(FAILED) => Ok(ItemState::Failed),
            Some(CANCELLED) => Ok(ItemState::Cancelled),
            Some(_) => Ok(ItemState::Claimed),
            None => Err(claim.map_or_else(|| Error::invalid("the item changed while failing it"), lost)),
        }
    }
}

pub(super) fn lost(claim: &Claim) -> Error {
    Error::LeaseLost { what: "claim", name: claim.id.clone(), holder: claim.worker.clone() }
}

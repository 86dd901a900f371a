//! Items: marking them done, asking which are, reading, listing, retrying, pruning.

use super::*;

impl<'a> Ledger<'a> {
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

    /// Put given-up or cancelled items back in the queue, due now, their attempts and error
    /// reset: a re-run of what failed too often, once its cause is fixed, or of what was
    /// cancelled by mistake. Ids that are neither are left as they are. Returns how many were
    /// put back.
    pub fn retry<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<u64> {
        let ids = collect_ids(ids)?;
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        self.write(|s| s.engine.ledger_retry(self.ns, Some(&ids), s.now()))
    }

    /// [`Ledger::retry`] every given-up item of the namespace (cancelled items stay
    /// cancelled: name them to [`Ledger::retry`]).
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
                CANCELLED => c.cancelled += n,
                _ => c.pending += n,
            }
        }
        c.paused = self.paused()?;
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

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

    /// How many items stand where. Reads every item of the namespace once (no index holds
    /// them by state): some 150 ms for a million items.
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

    /// A page of items for browsing: those whose id starts with `prefix` (all for `""`), in id
    /// order after `after` (`None`: from the start), optionally only those in `state`. Unlike
    /// [`Ledger::list`], the work is bounded whatever the filter: it reads at most
    /// [`PAGE_SCAN_ROWS`] items through the primary key (the id prefix is a range of it), so a
    /// page of the 5 failed items among a million done ones may come back short, with
    /// [`ItemPage::next`] saying where to go on. `next` is `None` once the namespace, or the
    /// ids with the prefix, are exhausted.
    ///
    /// ```
    /// use cairn::{ItemState, Store};
    ///
    /// let store = Store::open_in_memory()?;
    /// let q = store.ledger("orders");
    /// q.enqueue(["eu-1", "eu-2", "eu-3", "us-1"])?;
    /// q.mark_done("eu-2")?;
    /// let page = q.page(None, "eu-", None, 2)?;
    /// let ids: Vec<&str> = page.items.iter().map(|i| i.id.as_str()).collect();
    /// assert_eq!(ids, ["eu-1", "eu-2"]);
    /// let rest = q.page(None, "eu-", page.next.as_deref(), 2)?;
    /// assert_eq!(rest.items[0].id, "eu-3");
    /// assert_eq!(rest.next, None);
    /// let done = q.page(Some(ItemState::Done), "", None, 10)?;
    /// assert_eq!(done.items.len(), 1);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn page(
        &self,
        state: Option<ItemState>,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ItemPage> {
        self.check_ns()?;
        if prefix.len() > MAX_ID_BYTES || prefix.contains('\0') {
            return Err(Error::invalid(format!(
                "an id prefix is at most {MAX_ID_BYTES} bytes, without NUL bytes"
            )));
        }
        let now = self.store.now();
        let limit = limit.max(1);
        let mut items = Vec::new();
        let mut cursor = after.unwrap_or("").to_owned();
        // The prefix's ids are the range [prefix, ...) of the key; the query reads ids after
        // the cursor, so the id equal to the prefix is read on its own.
        if !prefix.is_empty() && cursor.as_str() < prefix {
            if let Some(row) = self.store.engine.ledger_item(self.ns, prefix)? {
                let item = Item::from_row(row, now);
                if state.is_none_or(|s| s == item.state) {
                    items.push(item);
                }
            }
            cursor = prefix.to_owned();
        }
        let mut scanned = 0;
        // Rows are filtered here, not in the query: a filtered query would read the whole
        // namespace in one statement when few items match.
        while items.len() < limit && scanned < PAGE_SCAN_ROWS {
            let chunk = PAGE_CHUNK_ROWS;
            let rows = self.store.engine.ledger_list(self.ns, None, &cursor, chunk as i64)?;
            let exhausted = rows.len() < chunk;
            for row in rows {
                if !row.id.starts_with(prefix) {
                    return Ok(ItemPage { items, next: None });
                }
                scanned += 1;
                cursor.clone_from(&row.id);
                let item = Item::from_row(row, now);
                if state.is_none_or(|s| s == item.state) {
                    items.push(item);
                    if items.len() == limit {
                        return Ok(ItemPage { items, next: Some(cursor) });
                    }
                }
            }
            if exhausted {
                return Ok(ItemPage { items, next: None });
            }
        }
        Ok(ItemPage { items, next: Some(cursor) })
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

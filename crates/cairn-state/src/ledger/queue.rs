//! The queue: items with data for their worker and a time before which they are not handed
//! out.

use super::*;
use crate::clock::{duration_millis, EARLIEST_TIME_MILLIS, LATEST_TIME_MILLIS};
use crate::duration::{format_duration, format_time};

/// The priorities an item may have ([`QueueItem::priority`]): higher is handed out first.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i64> = -1000..=1000;

/// An item to queue with [`Ledger::enqueue_items`]: its id, and optionally data for its
/// worker, a time before which it is not handed out, a priority and a group.
#[derive(Debug, Clone)]
pub struct QueueItem {
    id: String,
    data: Option<(Vec<u8>, crate::ValueKind)>,
    not_before: NotBefore,
    priority: i64,
    group: Option<String>,
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
        QueueItem { id: id.into(), data: None, not_before: NotBefore::Now, priority: 0, group: None }
    }

    /// Data for the worker, handed out with the claim ([`Claim::data`]).
    pub fn data(mut self, data: impl Encode) -> Result<Self> {
        let bytes = data.encode()?.into_owned();
        crate::names::validate_value(&bytes)?;
        self.data = Some((bytes, data.kind()));
        Ok(self)
    }

    /// Not handed out before `delay` from when it is queued. A delay that reaches past
    /// [`LATEST_TIME_MILLIS`](crate::LATEST_TIME_MILLIS) is refused when the item is queued.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.not_before = NotBefore::After(delay);
        self
    }

    /// Not handed out before this time, in Unix milliseconds. A time outside
    /// [`EARLIEST_TIME_MILLIS`](crate::EARLIEST_TIME_MILLIS) to
    /// [`LATEST_TIME_MILLIS`](crate::LATEST_TIME_MILLIS) is refused when the item is queued.
    pub fn not_before_millis(mut self, at: i64) -> Self {
        self.not_before = NotBefore::At(at);
        self
    }

    /// Handed out before items of a lower priority (the default is 0); items of equal
    /// priority go by the time they are due, then in queue order. A priority is never handed
    /// out before it is due. One outside [`PRIORITY_RANGE`] is refused when the item is queued.
    /// A failed, released or taken-over item keeps its priority.
    ///
    /// ```
    /// use cairn::{QueueItem, Store};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.enqueue_items([QueueItem::new("routine"), QueueItem::new("urgent").priority(10)])?;
    /// assert_eq!(queue.claim_next("w", Duration::from_secs(60))?.expect("queued").id(), "urgent");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    /// In group `key`: at most one item of a group is handed out at once, in the order the
    /// group's items were queued; items of other groups (and items of none) go on meanwhile.
    /// The next item of a group is handed out once the one before is done, given up, or
    /// deleted; one failed for a retry, or released, stays first in its group. Keys follow the
    /// rules of ids (non-empty, at most [`MAX_ID_BYTES`](crate::MAX_ID_BYTES) bytes).
    ///
    /// ```
    /// use cairn::{QueueItem, Store};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// let lease = Duration::from_secs(60);
    /// queue.enqueue_items([
    ///     QueueItem::new("alice-1").group("alice"),
    ///     QueueItem::new("alice-2").group("alice"),
    ///     QueueItem::new("bob-1").group("bob"),
    /// ])?;
    /// let first = queue.claim_next("w1", lease)?.expect("queued");
    /// assert_eq!(first.id(), "alice-1");
    /// // alice-2 waits for alice-1; bob's item goes meanwhile.
    /// assert_eq!(queue.claim_next("w2", lease)?.expect("queued").id(), "bob-1");
    /// assert!(queue.claim_next("w3", lease)?.is_none());
    /// queue.complete(&first)?;
    /// assert_eq!(queue.claim_next("w3", lease)?.expect("next in group").id(), "alice-2");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn group(mut self, key: impl Into<String>) -> Self {
        self.group = Some(key.into());
        self
    }
}

impl<'a> Ledger<'a> {
    /// Queue ids for [`Ledger::claim_next`], in order. Ids the ledger knows already (queued,
    /// claimed, done or failed) are skipped. Returns how many were queued.
    pub fn enqueue<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<u64> {
        let ids = collect_ids(ids)?;
        self.write(|s| {
            let now = s.now();
            let items: Vec<NewItem<'_>> = ids
                .iter()
                .map(|id| NewItem { id: id.as_ref(), data: None, due: now, priority: 0, grp: None })
                .collect();
            s.engine.ledger_enqueue_many(self.ns, &items, now)
        })
    }

    /// Queue items with data for their workers or a time before which they are not handed
    /// out (see [`QueueItem`]), in order; ids the ledger knows already are skipped. Returns how
    /// many were queued. Items are handed out by priority (highest first), then by the time
    /// they are due, then in queue order; an item of a group waits for the group's items
    /// queued before it. Nothing is queued if any item is refused (a bad id, priority, group
    /// or time).
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
            item.validate()?;
        }
        self.write(|s| {
            let now = s.now();
            let rows = items
                .iter()
                .map(|item| {
                    Ok(NewItem {
                        id: &item.id,
                        data: item.data.as_ref().map(|(b, k)| (b.as_slice(), *k)),
                        due: item.due(now)?,
                        priority: item.priority,
                        grp: item.group.as_deref(),
                    })
                })
                .collect::<Result<Vec<NewItem<'_>>>>()?;
            s.engine.ledger_enqueue_many(self.ns, &rows, now)
        })
    }
}

impl QueueItem {
    /// Refuse what cannot be stored before anything is written.
    fn validate(&self) -> Result<()> {
        validate_id(&self.id)?;
        if !PRIORITY_RANGE.contains(&self.priority) {
            return Err(Error::invalid(format!(
                "item {:?}: a priority is from {} to {}, not {}",
                self.id,
                PRIORITY_RANGE.start(),
                PRIORITY_RANGE.end(),
                self.priority
            )));
        }
        if let Some(group) = &self.group {
            validate_name("group", group, MAX_ID_BYTES)
                .map_err(|e| Error::invalid(format!("item {:?}: {e}", self.id)))?;
        }
        Ok(())
    }

    /// When the item is due if queued at `now`; a time out of the range cairn keeps is refused
    /// here, before anything is written, rather than stored for every reader to trip on.
    fn due(&self, now: i64) -> Result<i64> {
        let range = EARLIEST_TIME_MILLIS..=LATEST_TIME_MILLIS;
        let refused = |what: String| {
            Error::invalid(format!(
                "item {:?}: {what} is out of range: cairn keeps times from {} to {}",
                self.id,
                format_time(EARLIEST_TIME_MILLIS),
                format_time(LATEST_TIME_MILLIS)
            ))
        };
        match self.not_before {
            NotBefore::Now => Ok(now),
            NotBefore::After(d) => {
                let due = now.saturating_add(duration_millis(d));
                if range.contains(&due) {
                    Ok(due)
                } else {
                    Err(refused(format!("a delay of {}", format_duration(d))))
                }
            }
            NotBefore::At(at) if range.contains(&at) => Ok(at),
            NotBefore::At(at) => Err(refused(format!("not before {at} ms ({})", format_time(at)))),
        }
    }
}

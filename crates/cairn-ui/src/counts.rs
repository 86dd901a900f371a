//! The overview's ledger counts. Counting a namespace's items by state reads every item (70 to
//! 150 ms for a million: no index holds them by state, because keeping one, or counters, made
//! every claim and every mark of every worker pay for a page that is opened now and then;
//! docs/BENCHMARKS.md, "The overview at a million items"). So, as River UI and Oban Web do, a
//! namespace that counts quickly is counted on every view, and a large one is counted by a
//! thread of its own beside the server: a view shows its newest count and how old it is, and
//! asks for a fresh one once that is older than ten times what counting it takes (at least a
//! second), so the counting thread never spends more than about a tenth of a core.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cairn::{Ledger, LedgerCounts, Store};

/// A namespace counted faster than this is counted on every view.
const INLINE: Duration = Duration::from_millis(10);

/// The shortest time between two counts of one large namespace.
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// What was counted of one namespace.
#[derive(Clone, Copy)]
struct Known {
    counts: LedgerCounts,
    /// When the count began: it shows the namespace as it was then, or later.
    at: Instant,
    took: Duration,
    /// A recount is asked for and not done yet.
    asked: bool,
}

/// The counts known, and the namespace whose first count the counting thread is making.
#[derive(Default)]
struct State {
    known: HashMap<String, Known>,
    first: Option<String>,
}

/// The state, and the signal of each count landing (for a view waiting for a first count).
type Table = Arc<(Mutex<State>, Condvar)>;

/// How long a view waits for a first count under way before making its own.
const FIRST_COUNT_WAIT: Duration = Duration::from_secs(30);

/// The counts of the server's store, and the thread that counts its large namespaces.
pub struct Counter {
    table: Table,
    /// To the counting thread; `None` where there is none (an in-memory store has no second
    /// handle): then every namespace is counted on every view. (The server answers on one
    /// thread: nothing else sends.)
    ask: Option<Sender<String>>,
    /// [`INLINE`], but for tests, which cannot rely on how long a count takes.
    inline: Duration,
}

impl Counter {
    /// Starts the counting thread on another handle of `store`, which counts every namespace
    /// once at once, so that the first view finds the large ones counted.
    pub fn start(store: &Store) -> Counter {
        let table: Table = Arc::default();
        let ask = store.open_again().ok().map(|other| {
            let (tx, rx) = channel::<String>();
            let shared = Arc::clone(&table);
            std::thread::spawn(move || {
                for ns in other.ledger_namespaces().unwrap_or_default() {
                    let first = {
                        let mut state = lock(&shared);
                        let first = !state.known.contains_key(&ns);
                        if first {
                            state.first = Some(ns.clone());
                        }
                        first
                    };
                    if first {
                        recount(&other, &shared, &ns);
                    }
                }
                // Ends when the server (and with it the sender) is gone.
                for ns in rx {
                    recount(&other, &shared, &ns);
                }
            });
            tx
        });
        Counter { table, ask, inline: INLINE }
    }

    /// The counts of `ledger`'s namespace, and their age when they were not read now.
    /// Whether the namespace is paused is always read now.
    pub fn counts(&self, ledger: &Ledger<'_>) -> cairn::Result<(LedgerCounts, Option<Duration>)> {
        let ns = ledger.namespace();
        let known = {
            // A view right after the start finds the first count of a large namespace under
            // way: waiting for it costs less than a second count of the same items beside it.
            let (_, landed) = &*self.table;
            let state = self.table();
            let (state, _) = landed
                .wait_timeout_while(state, FIRST_COUNT_WAIT, |s| {
                    s.first.as_deref() == Some(ns) && !s.known.contains_key(ns)
                })
                .unwrap_or_else(PoisonError::into_inner);
            state.known.get(ns).copied()
        };
        match known {
            Some(k) if k.took >= self.inline && self.ask.is_some() => {
                let age = k.at.elapsed();
                if age >= MIN_REFRESH.max(k.took * 10) && !k.asked {
                    self.ask(ns);
                }
                let mut counts = k.counts;
                counts.paused = ledger.paused()?;
                Ok((counts, Some(age)))
            }
            _ => {
                let at = Instant::now();
                let counts = ledger.counts()?;
                self.table()
                    .known
                    .insert(ns.to_owned(), Known { counts, at, took: at.elapsed(), asked: false });
                Ok((counts, None))
            }
        }
    }

    /// An action changed `ns`: count it again (a large one, in the background).
    pub fn changed(&self, ns: &str) {
        let large = self.table().known.get(ns).is_some_and(|k| k.took >= self.inline && !k.asked);
        if large {
            self.ask(ns);
        }
    }

    fn ask(&self, ns: &str) {
        let Some(ask) = &self.ask else { return };
        let sent = ask.send(ns.to_owned()).is_ok();
        if let Some(k) = self.table().known.get_mut(ns) {
            k.asked = sent;
        }
    }

    fn table(&self) -> MutexGuard<'_, State> {
        lock(&self.table)
    }
}

fn lock(table: &Table) -> MutexGuard<'_, State> {
    // Only plain inserts happen under the lock: a panic elsewhere leaves it consistent.
    table.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts `ns` on the counting thread's handle. A failed count (the store busy past its
/// timeout, a server gone) leaves the old one, to be asked for again by the next view.
fn recount(store: &Store, table: &Table, ns: &str) {
    let at = Instant::now();
    let counted = store.ledger(ns).counts();
    let mut state = lock(table);
    match counted {
        Ok(counts) => {
            state.known.insert(ns.to_owned(), Known { counts, at, took: at.elapsed(), asked: false });
        }
        Err(_) => {
            if let Some(k) = state.known.get_mut(ns) {
                k.asked = false;
            }
        }
    }
    if state.first.as_deref() == Some(ns) {
        state.first = None;
    }
    drop(state);
    table.1.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A namespace that counts quickly is read on every view: a change shows at once.
    #[test]
    fn a_small_namespace_is_counted_on_every_view() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path().join("s.db"))?;
        let mut counter = Counter::start(&store);
        counter.inline = Duration::from_secs(3600);
        store.ledger("q").enqueue(["a", "b"])?;
        let (c, age) = counter.counts(&store.ledger("q"))?;
        assert_eq!((c.pending, age), (2, None));
        store.ledger("q").mark_done("a")?;
        let (c, age) = counter.counts(&store.ledger("q"))?;
        assert_eq!((c.pending, c.done, age), (1, 1, None));
        Ok(())
    }

    /// A namespace whose count took long is shown from that count with its age, its pause
    /// read now; a view once the count is older than its refresh time asks for a new one.
    #[test]
    fn a_large_namespace_is_shown_from_its_last_count_and_recounted_when_stale(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path().join("s.db"))?;
        let (tx, rx) = channel();
        // Every count is "large" here, however fast this machine counts.
        let counter = Counter { table: Arc::default(), ask: Some(tx), inline: Duration::ZERO };
        store.ledger("big").enqueue(["a"])?;
        let mut old = LedgerCounts::default();
        old.pending = 7;
        let long_ago =
            Instant::now().checked_sub(Duration::from_secs(5)).ok_or("a clock 5 s past its start")?;
        counter.table().known.insert(
            "big".into(),
            Known { counts: old, at: long_ago, took: Duration::from_millis(150), asked: false },
        );
        store.ledger("big").pause(None)?;
        let (c, age) = counter.counts(&store.ledger("big"))?;
        assert_eq!(c.pending, 7, "the kept count, not a new read");
        assert!(c.paused.is_some(), "the pause is read now");
        assert!(age.is_some_and(|a| a >= Duration::from_secs(5)));
        assert_eq!(rx.try_recv().ok().as_deref(), Some("big"), "5 s is past 10 x 150 ms: recount asked");
        counter.counts(&store.ledger("big"))?;
        assert!(rx.try_recv().is_err(), "asked once until the recount lands");
        store.ledger("big").mark_done("b")?;
        counter.changed("big");
        assert!(rx.try_recv().is_err(), "a recount is under way already: not asked twice");
        let table: Table = Arc::clone(&counter.table);
        recount(&store, &table, "big");
        let (c, age) = counter.counts(&store.ledger("big"))?;
        assert_eq!(c.pending, 1, "the recount replaced the kept count");
        assert_eq!(c.done, 1);
        assert!(age.is_some_and(|a| a < Duration::from_secs(5)), "and its age is the new count's");
        counter.changed("big");
        assert_eq!(rx.try_recv().ok().as_deref(), Some("big"), "an action asks for a recount at once");
        Ok(())
    }

    /// A view that finds the first count of its namespace under way waits for it instead of
    /// reading the items a second time beside it.
    #[test]
    fn a_view_waits_for_a_first_count_under_way() -> Result<(), Box<dyn std::error::Error>> {
        let store = Store::open_in_memory()?;
        store.ledger("big").enqueue(["a"])?;
        let (tx, _rx) = channel();
        let counter = Counter { table: Arc::default(), ask: Some(tx), inline: Duration::ZERO };
        counter.table().first = Some("big".into());
        let table = Arc::clone(&counter.table);
        let landing = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut counts = LedgerCounts::default();
            counts.pending = 42;
            let mut state = lock(&table);
            state.known.insert(
                "big".into(),
                Known { counts, at: Instant::now(), took: Duration::from_secs(1), asked: false },
            );
            state.first = None;
            drop(state);
            table.1.notify_all();
        });
        let (c, _) = counter.counts(&store.ledger("big"))?;
        landing.join().map_err(|_| "the landing thread panicked")?;
        assert_eq!(c.pending, 42, "the count that landed, not one of its own (1)");
        Ok(())
    }

    /// An in-memory store has no second handle: every view counts.
    #[test]
    fn without_a_counting_thread_every_view_counts() -> Result<(), Box<dyn std::error::Error>> {
        let store = Store::open_in_memory()?;
        let counter = Counter::start(&store);
        assert!(counter.ask.is_none());
        store.ledger("q").enqueue(["a"])?;
        assert_eq!(counter.counts(&store.ledger("q"))?.0.pending, 1);
        store.ledger("q").enqueue(["b"])?;
        assert_eq!(counter.counts(&store.ledger("q"))?.0.pending, 2);
        Ok(())
    }
}

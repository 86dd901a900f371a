//! What features keep per store handle, and the points of the write path where they act.
//!
//! A feature that must remember something between operations (the cache's hit counts not yet
//! written, the ledger's last scans for dead holders) defines a type for it and implements
//! [`FeatureState`]; the store creates it on first use ([`Store::feature`](super::Store)) and
//! calls its hooks around every write transaction. The crate root lists the states every store
//! starts with (`FEATURE_STATES` in `lib.rs`), so that their hooks run on every write; a state
//! not listed is created on first use. So the write core knows no feature, and a new feature
//! adds its state (and a line in that list) without touching the store.

use std::any::Any;
use std::cell::OnceCell;

use super::Store;
use crate::error::Result;
use crate::storage::Engine;

/// A feature's state for one store handle, and what it does around writes. Every hook has a
/// default that does nothing.
pub(crate) trait FeatureState: Any + Send {
    /// For the store to hand the state back as its own type.
    fn as_any(&self) -> &dyn Any;

    /// A write transaction began (the write lock is held).
    fn begun(&self) {}

    /// Inside every write transaction, just before COMMIT, on an engine whose bookkeeping
    /// rides along with writes (see `EngineOps::bookkeeping_apart`): write what the feature
    /// kept for the next write. An error rolls the transaction back.
    fn before_commit(&self, _engine: &Engine, _now: i64) -> Result<()> {
        Ok(())
    }

    /// The transaction was rolled back after [`FeatureState::before_commit`]: keep again what
    /// it would have written.
    fn rolled_back(&self) {}

    /// A write committed (a transaction, or a single-statement write). Nothing here may fail
    /// the write: failures are left for the next time.
    fn committed(&self, _engine: &Engine, _now: i64) {}

    /// The store is being dropped, outside any transaction, read-write.
    fn closing(&self, _store: &Store) {}
}

/// How many kinds of feature state a store can hold. A feature that keeps state takes one
/// slot; `every_feature_state_finds_a_slot` fails when they outgrow it.
const SLOTS: usize = 8;

/// The states, each created on first use. Lookup is a scan of a few slots comparing type ids:
/// a few nanoseconds, on paths (a cache hit) that cost microseconds.
#[derive(Default)]
pub(super) struct Features {
    slots: [OnceCell<Box<dyn FeatureState>>; SLOTS],
}

impl Features {
    /// With the states `made` creates, in that order (the crate's `FEATURE_STATES`).
    pub(super) fn with(made: &[fn() -> Box<dyn FeatureState>]) -> Features {
        let features = Features::default();
        for (slot, make) in features.slots.iter().zip(made) {
            // A fresh cell: the value is always taken.
            let _ = slot.set(make());
        }
        features
    }

    /// The state of type `T`, created (with `T::default()`) on first use.
    pub(super) fn get<T: FeatureState + Default>(&self) -> &T {
        for slot in &self.slots {
            // The first empty slot is reached only when no earlier one holds a `T`.
            let state = slot.get_or_init(|| Box::new(T::default()));
            if let Some(state) = state.as_any().downcast_ref::<T>() {
                return state;
            }
        }
        // Not reachable from input: the kinds of state are fixed at compile time, and a test
        // creates every one of them in one store.
        panic!("more than {SLOTS} kinds of feature state: raise SLOTS in store/features.rs")
    }

    /// Call `f` on every state created so far, in the order they were created.
    pub(super) fn each(&self, mut f: impl FnMut(&dyn FeatureState)) {
        for state in self.slots.iter().map_while(OnceCell::get) {
            f(state.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Default)]
    struct Counter(Cell<u32>);

    impl FeatureState for Counter {
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn begun(&self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[derive(Default)]
    struct Other;

    impl FeatureState for Other {
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn each_kind_of_state_is_created_once_and_found_again() {
        let features = Features::default();
        features.get::<Counter>().0.set(5);
        features.get::<Other>();
        assert_eq!(features.get::<Counter>().0.get(), 5, "the same state, not a new one");
        let mut seen = 0;
        features.each(|state| {
            state.begun();
            seen += 1;
        });
        assert_eq!(seen, 2);
        assert_eq!(features.get::<Counter>().0.get(), 6, "hooks reach the stored state");
    }

    /// Every feature that keeps state, in one store: more kinds than slots would panic here
    /// first, not in a user's process.
    #[test]
    fn every_feature_state_finds_a_slot() -> Result<()> {
        let store = Store::open_in_memory()?;
        store.cache("c").set("k", "v", None)?;
        store.ledger("l").mark_done("1")?;
        store.ledger("l").claim_next("w", std::time::Duration::from_secs(60))?;
        let mut kinds = 0;
        store.features.each(|_| kinds += 1);
        assert_eq!(kinds, crate::FEATURE_STATES.len(), "every state is made at open, none on the side");
        assert!(kinds <= SLOTS, "{kinds} kinds of state");
        Ok(())
    }

    /// A write of any feature runs every feature's hooks: a ledger mark by a process that never
    /// touched the cache still adds the hit counts a reading process left beside the file (with
    /// states made on first use it would not, and the file would only grow).
    #[test]
    fn a_write_that_is_not_the_caches_still_adds_the_hit_counts_readers_left() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::invalid(e.to_string()))?;
        let path = dir.path().join("s.db");
        Store::open(&path)?.cache("c").set("k", "v", None)?;
        {
            let reader = Store::open(&path)?;
            assert_eq!(reader.cache("c").get::<String>("k")?.as_deref(), Some("v"));
        } // dropped without a write: its hit is kept beside the file
        let hits = dir.path().join("s.db-hits");
        assert!(
            std::fs::metadata(&hits).map(|m| m.len()).unwrap_or(0) > 0,
            "the reader's hit was kept apart"
        );
        let writer = Store::open(&path)?;
        writer.ledger("l").mark_done("1")?;
        assert_eq!(std::fs::metadata(&hits).map(|m| m.len()).unwrap_or(0), 0, "the ledger's write added it");
        assert_eq!(writer.cache("c").stats()?.hits, 1);
        Ok(())
    }
}

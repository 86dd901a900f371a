//! Transactions: one atomic unit across every feature.

use crate::cache::Cache;
use crate::checkpoint::Checkpoint;
use crate::ledger::Ledger;
use crate::store::Store;

/// An open IMMEDIATE transaction, handed to the closure of [`Store::transaction`].
///
/// Operations through it join the transaction: they are committed together when the closure
/// returns `Ok`, and rolled back together otherwise.
pub struct Tx<'s> {
    store: &'s Store,
}

impl<'s> Tx<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Tx { store }
    }

    pub(crate) fn store(&self) -> &'s Store {
        self.store
    }

    /// The cache namespace `ns`, inside this transaction.
    ///
    /// ```
    /// use cairn::{Error, Store};
    ///
    /// let store = Store::open_in_memory()?;
    /// let result = store.transaction(|tx| {
    ///     tx.cache("a").set("k", "written", None)?;
    ///     Err::<(), _>(Error::InvalidInput("changed my mind".into()))
    /// });
    /// assert!(result.is_err());
    /// assert_eq!(store.cache("a").get::<String>("k")?, None); // rolled back
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn cache<'a>(&'a self, ns: &'a str) -> Cache<'a> {
        Cache::new(self.store, ns, true)
    }

    /// The ledger namespace `ns`, inside this transaction.
    pub fn ledger<'a>(&'a self, ns: &'a str) -> Ledger<'a> {
        Ledger::new(self.store, ns, true)
    }

    /// The checkpoint of `job`, inside this transaction.
    pub fn checkpoint<'a>(&'a self, job: &'a str) -> Checkpoint<'a> {
        Checkpoint::new(self.store, job, true)
    }
}

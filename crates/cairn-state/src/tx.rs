//! Transactions: one atomic unit across every feature. Each feature attaches its handle to
//! [`Tx`] from its own module (`Tx::cache` in `cache`, `Tx::ledger` in `ledger`, ...).

use crate::error::{Error, Result};
use crate::storage::EngineOps;
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
}

impl Store {
    /// Run `f` in one IMMEDIATE transaction: committed if it returns `Ok`, rolled back if it
    /// returns `Err` or panics. Every feature is reachable through the [`Tx`], so updates to
    /// several of them are atomic.
    ///
    /// Inside the closure, use the [`Tx`]: a shortcut of the store itself (`store.cache(..)
    /// .set(..)`) would try to open a second transaction and fails with `InvalidInput`. Holding
    /// a [`LockGuard`](crate::LockGuard) or a handle of the same store meanwhile is fine.
    ///
    /// ```
    /// use cairn::{Error, Store};
    ///
    /// let store = Store::open_in_memory()?;
    /// store.transaction(|tx| {
    ///     tx.cache("stock").incr("apples", -1, None)?;
    ///     tx.cache("orders").set("o-17", "apples", None)?;
    ///     Ok::<_, Error>(())
    /// })?;
    /// assert_eq!(store.cache("stock").get::<i64>("apples")?, Some(-1));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn transaction<T, E>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        self.write_tx(|store| f(&Tx::new(store)))
    }

    /// Begin a transaction that [`Store::commit_transaction`] or
    /// [`Store::rollback_transaction`] ends: for language bindings whose transactions are a
    /// begin/end pair (Python's `with`), where [`Store::transaction`]'s closure cannot be
    /// used. It takes the write lock at once (`BEGIN IMMEDIATE`), as `transaction` does; use
    /// [`Store::current_transaction`] for the [`Tx`] while it is open. The store's shortcuts
    /// are refused meanwhile, and dropping the store rolls it back. `InvalidInput` if a
    /// transaction is already open.
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// store.begin_transaction()?;
    /// let tx = store.current_transaction().expect("open");
    /// tx.cache("c").set("k", "v", None)?;
    /// tx.ledger("l").mark_done("1")?;
    /// store.commit_transaction()?;
    /// assert!(store.ledger("l").is_done("1")?);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn begin_transaction(&self) -> Result<()> {
        self.begin_write()?.disarm();
        self.explicit.set(true);
        Ok(())
    }

    /// The transaction begun with [`Store::begin_transaction`], while it is open.
    pub fn current_transaction(&self) -> Option<Tx<'_>> {
        (self.explicit.get() && self.engine.in_transaction()).then(|| Tx::new(self))
    }

    /// Commit the transaction begun with [`Store::begin_transaction`]. If the commit fails the
    /// transaction has been rolled back: nothing of it is in the file. `InvalidInput` if none
    /// is open.
    pub fn commit_transaction(&self) -> Result<()> {
        if !self.explicit.replace(false) {
            return Err(Error::invalid("no transaction is open: begin one with begin_transaction"));
        }
        if !self.engine.in_transaction() {
            // SQLite rolls a transaction back by itself after some errors (a full disk).
            return Err(Error::invalid(
                "the transaction was already rolled back after an earlier error in it; nothing of it was committed",
            ));
        }
        self.finish_write()
    }

    /// Roll back the transaction begun with [`Store::begin_transaction`], if one is open.
    pub fn rollback_transaction(&self) {
        if self.explicit.replace(false) {
            self.engine.rollback_quietly();
        }
    }

    /// True while a transaction is open on this store (begun by [`Store::transaction`] or
    /// [`Store::begin_transaction`]).
    pub fn in_transaction(&self) -> bool {
        self.engine.in_transaction()
    }
}

//! SQL of the user's own on the store's connection: for tables kept in the store's file beside
//! cairn's (created with [`Store::migrate`]), so that no second SQLite connection, and in a
//! Python process no second copy of SQLite, ever opens the file. cairn's own tables are out
//! of reach of these statements.

use crate::codec::{Rows, SqlValue};
use crate::error::Result;
use crate::storage::{EngineOps, SqlOps};
use crate::store::Store;
use crate::tx::Tx;

impl Store {
    /// Run one statement that only reads (a `SELECT`) on the store's own connection and return
    /// its rows. A statement that would write is refused (write in a transaction with
    /// [`Tx::execute`], or with [`Store::execute`]); so is one that touches cairn's own tables
    /// (`cairn_*`), controls transactions, attaches files or sets pragmas: all with
    /// `InvalidInput`.
    ///
    /// ```
    /// use cairn::{Migrations, SqlValue, Store, M};
    ///
    /// let store = Store::open_in_memory()?;
    /// store.migrate("app", &Migrations::new(vec![M::up("CREATE TABLE users (name TEXT)")]))?;
    /// store.execute("INSERT INTO users VALUES (?1)", &[SqlValue::Text("ada".into())])?;
    /// let rows = store.query("SELECT name FROM users", &[])?;
    /// assert_eq!(rows, vec![vec![SqlValue::Text("ada".into())]]);
    /// assert!(store.query("SELECT * FROM cairn_cache", &[]).is_err());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Rows> {
        self.engine.user_sql(sql, params, true)
    }

    /// Run one statement on the user's own tables in a transaction of its own; returns how many
    /// rows it changed. The same refusals as [`Store::query`], except that it may write.
    pub fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<usize> {
        self.write_tx(|s| {
            s.engine.user_sql(sql, params, false)?;
            Ok(s.engine.changes())
        })
    }
}

impl Tx<'_> {
    /// Run one statement on the user's own tables inside this transaction, so that it commits
    /// or rolls back with cairn's own updates; returns how many rows it changed. Refused with
    /// `InvalidInput`: cairn's own tables (`cairn_*`), transaction control, `ATTACH`, pragmas.
    ///
    /// ```
    /// use cairn::{Error, Migrations, SqlValue, Store, M};
    ///
    /// let store = Store::open_in_memory()?;
    /// store.migrate("app", &Migrations::new(vec![M::up("CREATE TABLE orders (id TEXT)")]))?;
    /// store.transaction(|tx| {
    ///     tx.execute("INSERT INTO orders VALUES (?1)", &[SqlValue::Text("o-17".into())])?;
    ///     tx.ledger("orders").mark_done("o-17")?; // both, or neither
    ///     Ok::<_, Error>(())
    /// })?;
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<usize> {
        self.store().engine.user_sql(sql, params, false)?;
        Ok(self.store().engine.changes())
    }

    /// [`Store::query`] inside this transaction: it sees the transaction's own writes.
    pub fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Rows> {
        self.store().engine.user_sql(sql, params, true)
    }
}

//! Running the user's own SQL on cairn's connection, fenced off from cairn's tables by an
//! authorizer: SQLite asks it about every table, index, pragma and transaction a statement
//! would touch, as the statement is compiled.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{Value, ValueRef};

use super::Engine;
use crate::codec::{Rows, SqlValue};
use crate::error::{Error, Result};

/// Whether the statement being compiled is the user's, and why it was refused if it was.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    user: bool,
    refused: Option<String>,
}

/// Pragmas that only describe the user's own tables.
const READ_PRAGMAS: &[&str] =
    &["table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"];

fn is_cairns(name: &str) -> bool {
    name.len() >= 6 && name[..6].eq_ignore_ascii_case("cairn_")
}

/// The authorizer: everything is allowed to cairn's own statements; a user's statement is
/// refused anything that could change or read cairn's tables or the connection's state.
pub(crate) fn authorizer(
    gate: Arc<Mutex<Gate>>,
) -> impl FnMut(AuthContext<'_>) -> Authorization + Send + 'static {
    move |ctx: AuthContext<'_>| {
        let mut gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
        if !gate.user {
            return Authorization::Allow;
        }
        let refusal = match ctx.action {
            AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
                Some("it controls the transaction, which cairn does: use Store::transaction".to_owned())
            }
            AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
                Some("it attaches another database file to cairn's connection".to_owned())
            }
            AuthAction::Pragma { pragma_name, pragma_value } => {
                let reads_own = READ_PRAGMAS.iter().any(|p| pragma_name.eq_ignore_ascii_case(p))
                    && !pragma_value.is_some_and(is_cairns);
                (!reads_own)
                    .then(|| format!("it sets or reads PRAGMA {pragma_name}, which is cairn's to manage"))
            }
            AuthAction::CreateIndex { index_name: a, table_name: b }
            | AuthAction::CreateTempIndex { index_name: a, table_name: b }
            | AuthAction::DropIndex { index_name: a, table_name: b }
            | AuthAction::DropTempIndex { index_name: a, table_name: b } => {
                [a, b].into_iter().find(|n| is_cairns(n)).map(own_table)
            }
            AuthAction::Reindex { index_name } if is_cairns(index_name) => Some(own_table(index_name)),
            AuthAction::CreateTable { table_name }
            | AuthAction::CreateTempTable { table_name }
            | AuthAction::CreateTrigger { table_name, .. }
            | AuthAction::CreateTempTrigger { table_name, .. }
            | AuthAction::Delete { table_name }
            | AuthAction::DropTable { table_name }
            | AuthAction::DropTempTable { table_name }
            | AuthAction::DropTrigger { table_name, .. }
            | AuthAction::DropTempTrigger { table_name, .. }
            | AuthAction::Insert { table_name }
            | AuthAction::Read { table_name, .. }
            | AuthAction::Update { table_name, .. }
            | AuthAction::AlterTable { table_name, .. }
            | AuthAction::Analyze { table_name }
            | AuthAction::CreateVtable { table_name, .. }
            | AuthAction::DropVtable { table_name, .. }
                if is_cairns(table_name) =>
            {
                Some(own_table(table_name))
            }
            AuthAction::CreateView { view_name } | AuthAction::CreateTempView { view_name }
                if is_cairns(view_name) =>
            {
                Some(own_table(view_name))
            }
            _ => None,
        };
        match refusal {
            Some(why) => {
                gate.refused.get_or_insert(why);
                Authorization::Deny
            }
            None => Authorization::Allow,
        }
    }
}

fn own_table(name: &str) -> String {
    format!(
        "it touches {name}: names starting with cairn_ are cairn's own tables; keep yours under other names"
    )
}

impl Engine {
    /// Compile and run one statement of the user's; its rows. `read_only`: refuse a statement
    /// that would write.
    pub fn user_sql(&self, sql: &str, params: &[SqlValue], read_only: bool) -> Result<Rows> {
        self.run_sql(sql, params, read_only, true)
    }

    /// One statement of a migration step of the user's: trusted like the step's SQL, so not
    /// fenced (a step may create and fill whatever its file needs).
    pub fn migration_sql(&self, sql: &str, params: &[SqlValue]) -> Result<Rows> {
        self.run_sql(sql, params, false, false)
    }

    fn run_sql(&self, sql: &str, params: &[SqlValue], read_only: bool, fenced: bool) -> Result<Rows> {
        let refused =
            |why: String| Error::invalid(format!("refused SQL ({why}): {}", crate::codec::truncated(sql)));
        {
            let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            gate.user = fenced;
            gate.refused = None;
        }
        // Not the statement cache: a cached statement recompiled later (after a schema change)
        // would be authorized as cairn's own.
        let prepared = self.conn.prepare(sql);
        let why = {
            let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            gate.user = false;
            gate.refused.take()
        };
        let mut st = match (prepared, why) {
            (Ok(st), None) => st,
            (_, Some(why)) => return Err(refused(why)),
            (Err(rusqlite::Error::MultipleStatement), None) => {
                return Err(refused("it holds more than one statement; run them one at a time".into()))
            }
            (Err(e), None) => return Err(self.statement_err(e, sql)),
        };
        if read_only && !st.readonly() {
            return Err(refused(
                "it writes; write inside a transaction with Tx::execute, or with Store::execute".into(),
            ));
        }
        let columns = st.column_count();
        let bound = params.iter().map(|p| match p {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(n) => Value::Integer(*n),
            SqlValue::Real(x) => Value::Real(*x),
            SqlValue::Text(t) => Value::Text(t.clone()),
            SqlValue::Blob(b) => Value::Blob(b.clone()),
        });
        let mut rows = st.query(rusqlite::params_from_iter(bound)).map_err(|e| self.statement_err(e, sql))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.statement_err(e, sql))? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(|e| self.err(e))? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(n) => SqlValue::Integer(n),
                    ValueRef::Real(x) => SqlValue::Real(x),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    /// `e`, from compiling or running the statement `sql` of the user's: [`Error::Sql`] when
    /// the statement itself is at fault (its syntax, a table or column it names, a constraint
    /// it breaks, its parameters), else what any statement's failure is (busy, read-only, a
    /// full disk, corruption...).
    fn statement_err(&self, e: rusqlite::Error, sql: &str) -> Error {
        use rusqlite::ErrorCode::{ConstraintViolation, ParameterOutOfRange, TooBig, TypeMismatch, Unknown};
        let own = match &e {
            rusqlite::Error::SqliteFailure(f, _) => {
                matches!(f.code, Unknown | ConstraintViolation | TypeMismatch | ParameterOutOfRange | TooBig)
            }
            rusqlite::Error::InvalidParameterCount(..)
            | rusqlite::Error::InvalidParameterName(_)
            | rusqlite::Error::SqlInputError { .. } => true,
            _ => false,
        };
        match self.err(e) {
            // SQLITE_ERROR is also how SQLite reports a damaged schema: `err` has told them apart.
            Error::Sqlite { path, source } if own => {
                Error::Sql { path, detail: source.to_string(), statement: crate::codec::truncated(sql) }
            }
            other => other,
        }
    }

    /// Rows changed by the last statement.
    pub fn changes(&self) -> usize {
        usize::try_from(self.conn.changes()).unwrap_or(usize::MAX)
    }
}

//! The user's own SQL on PostgreSQL. The server has no statement authorizer as SQLite does, so
//! cairn's tables are fenced off by name (a statement that names a `cairn_` relation or cairn's
//! schema is refused) and transaction control by its first word; `Store::query` runs in a
//! read-only transaction, which the server enforces. For strict isolation, give the users'
//! roles no privileges on cairn's schema.

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use super::Engine;
use crate::codec::{Rows, SqlValue};
use crate::error::{Error, Result};

/// Statements that would end, nest or reconfigure the transaction or the session.
const CONTROL: &[&str] = &[
    "begin",
    "start",
    "commit",
    "end",
    "rollback",
    "abort",
    "savepoint",
    "release",
    "prepare",
    "set",
    "reset",
    "listen",
    "unlisten",
    "notify",
    "discard",
    "lock",
    "copy",
    "vacuum",
    "checkpoint",
];

/// A parameter converted to whatever the server expects at its position.
#[derive(Debug)]
struct Param<'a>(&'a SqlValue);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let bad = || {
            format!(
                "a {} parameter for a column of type {ty}: cast it in the SQL (e.g. $1::text)",
                kind(self.0)
            )
        };
        match self.0 {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Integer(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n).map_err(|_| bad())?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n).map_err(|_| bad())?.to_sql(ty, out),
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                _ => Err(bad().into()),
            },
            SqlValue::Real(x) => match *ty {
                Type::FLOAT8 => x.to_sql(ty, out),
                Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                _ => Err(bad().into()),
            },
            SqlValue::Text(t) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    t.as_str().to_sql(ty, out)
                }
                _ => Err(bad().into()),
            },
            SqlValue::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(bad().into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn kind(v: &SqlValue) -> &'static str {
    match v {
        SqlValue::Null => "NULL",
        SqlValue::Integer(_) => "integer",
        SqlValue::Real(_) => "real",
        SqlValue::Text(_) => "text",
        SqlValue::Blob(_) => "blob",
    }
}

/// Why a statement of the user's may not run on cairn's connection, if it may not.
fn refusal(sql: &str, schema: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let first =
        lower.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').find(|w| !w.is_empty()).unwrap_or("");
    if CONTROL.contains(&first) {
        return Some(format!(
            "it is a {} statement; cairn controls the transaction and the session",
            first.to_uppercase()
        ));
    }
    let words = lower.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '"' || c == '.'));
    for word in words {
        let bare = word.replace('"', "");
        if bare.split('.').any(|part| part.starts_with("cairn_")) {
            return Some(format!(
                "it names {bare}: names starting with cairn_ are cairn's own tables; keep yours under other names"
            ));
        }
        if bare.split('.').next() == Some(schema.to_ascii_lowercase().as_str()) && bare.contains('.') {
            return Some(format!("it names {bare}, in cairn's own schema '{schema}'"));
        }
    }
    None
}

impl Engine {
    pub fn user_sql(&self, sql: &str, params: &[SqlValue], read_only: bool) -> Result<Rows> {
        if let Some(why) = refusal(sql, self.schema()) {
            return Err(Error::invalid(format!("refused SQL ({why}): {}", crate::codec::truncated(sql))));
        }
        if read_only && !self.in_tx.get() {
            // The server enforces it: a write fails inside a read-only transaction.
            self.client()?.batch_execute("BEGIN READ ONLY").map_err(|e| self.err(e))?;
            let rows = self.run_user(sql, params);
            let _ = self.client.borrow_mut().batch_execute(if rows.is_ok() { "COMMIT" } else { "ROLLBACK" });
            return rows.map_err(|e| match e {
                Error::ReadOnly { .. } => Error::invalid(format!(
                    "refused SQL (it writes; write inside a transaction with Tx::execute, or with Store::execute): {}",
                    crate::codec::truncated(sql)
                )),
                other => other,
            });
        }
        if read_only {
            let first = sql.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            if !matches!(first.as_str(), "select" | "values" | "table" | "show" | "with") {
                return Err(Error::invalid(format!(
                    "refused SQL (it writes; use Tx::execute): {}",
                    crate::codec::truncated(sql)
                )));
            }
        }
        self.run_user(sql, params)
    }

    /// A migration step's statement: trusted like its SQL, run as it is.
    pub fn migration_sql(&self, sql: &str, params: &[SqlValue]) -> Result<Rows> {
        self.run_user(sql, params)
    }

    fn run_user(&self, sql: &str, params: &[SqlValue]) -> Result<Rows> {
        let mut client = self.client()?;
        let st = client.prepare(sql).map_err(|e| {
            if e.code() == Some(&postgres::error::SqlState::SYNTAX_ERROR)
                && e.as_db_error().is_some_and(|db| db.message().contains("multiple commands"))
            {
                return Error::invalid(format!(
                    "refused SQL (several statements in one call; none of them ran: run them one at a time): {}",
                    crate::codec::truncated(sql)
                ));
            }
            self.statement_err(e, sql)
        })?;
        let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        if st.columns().is_empty() {
            let n = client.execute(&st, &refs).map_err(|e| self.statement_err(e, sql))?;
            self.last_changes.set(usize::try_from(n).unwrap_or(usize::MAX));
            return Ok(Vec::new());
        }
        let rows = client.query(&st, &refs).map_err(|e| self.statement_err(e, sql))?;
        self.last_changes.set(rows.len());
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut values = Vec::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                let ty = col.type_();
                let v = match *ty {
                    Type::INT8 => row.get::<_, Option<i64>>(i).map(SqlValue::Integer),
                    Type::INT4 => row.get::<_, Option<i32>>(i).map(|n| SqlValue::Integer(n.into())),
                    Type::INT2 => row.get::<_, Option<i16>>(i).map(|n| SqlValue::Integer(n.into())),
                    Type::BOOL => row.get::<_, Option<bool>>(i).map(|b| SqlValue::Integer(b.into())),
                    Type::FLOAT8 => row.get::<_, Option<f64>>(i).map(SqlValue::Real),
                    Type::FLOAT4 => row.get::<_, Option<f32>>(i).map(|x| SqlValue::Real(x.into())),
                    Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                        row.get::<_, Option<String>>(i).map(SqlValue::Text)
                    }
                    Type::BYTEA => row.get::<_, Option<Vec<u8>>>(i).map(SqlValue::Blob),
                    _ => {
                        return Err(Error::invalid(format!(
                            "column {} is of type {ty}, which cairn does not convert: cast it in the SQL \
                             (e.g. {}::text)",
                            col.name(),
                            col.name()
                        )))
                    }
                };
                values.push(v.unwrap_or(SqlValue::Null));
            }
            out.push(values);
        }
        Ok(out)
    }
}

impl Engine {
    /// `e`, from preparing or running the statement `sql` of the user's: [`Error::Sql`] when
    /// the statement itself is at fault (SQLSTATE classes 21 cardinality, 22 data, 23
    /// integrity constraint, 42 syntax or an unknown name, 44 check option, 0A unsupported;
    /// or a parameter the driver could not convert), else what any statement's failure is
    /// (busy, read-only, a lost server...).
    fn statement_err(&self, e: postgres::Error, sql: &str) -> Error {
        const OWN: &[&str] = &["21", "22", "23", "42", "44", "0A"];
        let own = match e.as_db_error() {
            Some(db) => OWN.iter().any(|class| db.code().code().starts_with(class)),
            // Not from the server and not a lost connection (which `err` makes Unavailable):
            // the driver refused a parameter (its type, or their count) before sending it.
            None => true,
        };
        match self.err(e) {
            Error::Server { path, source } if own => {
                Error::Sql { path, detail: source.to_string(), statement: crate::codec::truncated(sql) }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn statements_naming_cairns_tables_or_controlling_the_transaction_are_refused() {
        for sql in [
            "SELECT * FROM cairn_cache",
            "select * from \"cairn\".\"cairn_ledger\"",
            "DELETE FROM cairn.cairn_lock",
            "SELECT * FROM cairn.anything",
            "BEGIN",
            "  commit",
            "SET search_path = cairn",
            "savepoint x",
        ] {
            assert!(refusal(sql, "cairn").is_some(), "{sql}");
        }
        for sql in [
            "SELECT * FROM orders",
            "INSERT INTO app.users VALUES ($1)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
        ] {
            assert!(refusal(sql, "cairn").is_none(), "{sql}");
        }
    }
}

//! The user's own SQL on the store's connection: it commits with cairn's updates, and it can
//! never reach cairn's own tables, the transaction, or the connection's settings. On both
//! engines; the SQL is the user's, so it is written in each engine's dialect where they differ
//! (`?1` or `$1`, blob literals, describing a table), and so is the way a statement is refused:
//! SQLite's authorizer sees every table a statement reaches (through views and triggers too),
//! PostgreSQL refuses by the names a statement contains and by its first word.

use cairn::{Error, ErrorKind, Migrations, SqlValue, Store, M};

use crate::contract;
use crate::engines::{Engine, Fixture};

/// The users' table, made by a migration in the store.
fn with_orders(f: &Fixture) -> Result<(), Error> {
    f.store
        .migrate(
            "app",
            &Migrations::new(vec![M::up("CREATE TABLE orders (id TEXT PRIMARY KEY, qty INTEGER)")]),
        )
        .map(drop)
}

/// `sql` with SQLite's `?N` parameters written as PostgreSQL's `$N` on that engine.
fn dialect(f: &Fixture, sql: &str) -> String {
    match f.engine {
        Engine::Sqlite => sql.to_owned(),
        Engine::Postgres => sql.replace('?', "$"),
    }
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.into())
}

fn refused_everywhere(store: &Store, sql: &str) {
    for result in [store.execute(sql, &[]).map(drop), store.transaction(|tx| tx.execute(sql, &[]).map(drop))]
    {
        let err = result.expect_err(sql);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{sql}: {err}");
        assert!(err.to_string().contains("refused SQL"), "{sql}: {err}");
    }
}

contract! {
    fn statements_in_a_transaction_commit_or_roll_back_with_cairns_own_updates(f) {
        with_orders(f)?;
        let store = &f.store;
        store.transaction(|tx| {
            assert_eq!(
                tx.execute(
                    &dialect(f, "INSERT INTO orders VALUES (?1, ?2)"),
                    &[text("o-1"), SqlValue::Integer(3)]
                )?,
                1
            );
            tx.ledger("orders").mark_done("o-1")?;
            assert_eq!(tx.query("SELECT count(*) FROM orders", &[])?, vec![vec![SqlValue::Integer(1)]]);
            Ok::<_, Error>(())
        })?;
        let failed = store.transaction(|tx| {
            tx.execute("INSERT INTO orders VALUES ('o-2', 1)", &[])?;
            tx.ledger("orders").mark_done("o-2")?;
            Err::<(), _>(Error::InvalidInput("the work failed".into()))
        });
        assert!(failed.is_err());
        let rows = store.query("SELECT id, qty FROM orders ORDER BY id", &[])?;
        assert_eq!(rows, vec![vec![text("o-1"), SqlValue::Integer(3)]]);
        assert!(store.ledger("orders").is_done("o-1")?);
        assert!(!store.ledger("orders").is_done("o-2")?);
        assert_eq!(store.execute("UPDATE orders SET qty = qty + 1", &[])?, 1);
        let kinds = match f.engine {
            Engine::Sqlite => "SELECT qty, NULL, 1.5, x'00ff' FROM orders",
            Engine::Postgres => "SELECT qty, NULL, 1.5::float8, '\\x00ff'::bytea FROM orders",
        };
        assert_eq!(
            store.query(kinds, &[])?,
            vec![vec![
                SqlValue::Integer(4),
                SqlValue::Null,
                SqlValue::Real(1.5),
                SqlValue::Blob(vec![0, 255])
            ]]
        );
        let describe = match f.engine {
            Engine::Sqlite => "PRAGMA table_info(orders)",
            Engine::Postgres => {
                "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'orders'"
            }
        };
        assert!(!store.query(describe, &[])?.is_empty(), "describing one's own tables is fine");
        Ok(())
    }

    fn statements_that_reach_cairns_tables_the_transaction_or_the_connection_are_refused(f) {
        with_orders(f)?;
        let store = &f.store;
        store.cache("c").set("k", "v", None)?;
        let view = "CREATE VIEW peek AS SELECT * FROM cairn_cache";
        match f.engine {
            Engine::Sqlite => {
                store.execute(view, &[])?; // harmless until read
                store.execute(
                    "CREATE TRIGGER wipe AFTER INSERT ON orders BEGIN DELETE FROM cairn_cache; END",
                    &[],
                )?;
            }
            Engine::Postgres => {
                // No authorizer sees what a view or a function reaches later: they are refused
                // as they are made.
                refused_everywhere(store, view);
                refused_everywhere(
                    store,
                    "CREATE FUNCTION wipe() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN DELETE FROM cairn_cache; RETURN NULL; END $$",
                );
            }
        }
        let shared = [
            "SELECT * FROM cairn_cache",
            "SELECT * FROM CAIRN_LEDGER",
            "INSERT INTO cairn_checkpoint (job, value, updated_at) VALUES ('j', x'00', 0)",
            "UPDATE cairn_cache SET value = x'00'",
            "DELETE FROM cairn_lock",
            "DROP TABLE cairn_cache",
            "CREATE TABLE cairn_mine (x)",
            "CREATE INDEX mine ON cairn_cache (key)",
            "DROP INDEX cairn_cache_recency",
            "ALTER TABLE cairn_cache ADD COLUMN x",
            "CREATE TRIGGER t AFTER INSERT ON cairn_cache BEGIN SELECT 1; END",
            "BEGIN",
            "COMMIT",
            "SAVEPOINT s",
        ];
        let engine_specific: &[&str] = match f.engine {
            Engine::Sqlite => &[
                "SELECT * FROM peek",
                "ATTACH DATABASE ':memory:' AS other",
                "PRAGMA journal_mode = DELETE",
                "PRAGMA writable_schema = 1",
                "PRAGMA table_info(cairn_cache)",
                "INSERT INTO orders VALUES ('fires-wipe', 1)",
            ],
            Engine::Postgres => &[
                "START TRANSACTION",
                "ROLLBACK",
                "END",
                "RELEASE SAVEPOINT s",
                "SET search_path = public",
                "SET LOCAL lock_timeout = 0",
                "RESET ALL",
                "DISCARD ALL",
                "LISTEN jobs",
                "NOTIFY jobs",
                "LOCK TABLE orders",
                "COPY orders TO STDOUT",
                "VACUUM orders",
                "PREPARE p AS SELECT 1",
                "SELECT * FROM pg_catalog.pg_class, cairn_meta",
            ],
        };
        for sql in shared.iter().chain(engine_specific) {
            refused_everywhere(store, sql);
        }
        if f.engine == Engine::Sqlite {
            store.execute("DROP TRIGGER wipe", &[])?;
        }
        let err = store.query("INSERT INTO orders VALUES ('x', 1)", &[]).unwrap_err();
        assert!(err.to_string().contains("it writes"), "{err}");
        // cairn's own statements still run, and the store is sound and cairn's.
        assert_eq!(store.cache("c").get::<String>("k")?.as_deref(), Some("v"));
        assert!(store.query("SELECT * FROM orders", &[])?.is_empty());
        let again = f.reopen();
        assert_eq!(again.integrity_check()?, vec!["ok"]);
        let journal = match f.engine {
            Engine::Sqlite => "wal",
            Engine::Postgres => "postgres",
        };
        assert_eq!(again.journal_mode(), journal);
        Ok(())
    }

    /// A second statement hidden behind a first is refused, not run: one statement per call.
    fn several_statements_in_one_call_are_refused_and_none_of_them_runs(f) {
        with_orders(f)?;
        refused_everywhere(&f.store, "SELECT 1; DROP TABLE orders");
        refused_everywhere(&f.store, "INSERT INTO orders VALUES ('a', 1); DELETE FROM orders");
        assert!(f.store.query("SELECT * FROM orders", &[])?.is_empty(), "the table is still there, empty");
        Ok(())
    }

    fn a_statement_that_fails_on_its_own_terms_is_invalid_input_naming_the_statement(f) {
        with_orders(f)?;
        let store = &f.store;
        store.execute("INSERT INTO orders VALUES ('o-1', 1)", &[])?;
        let wrong_type = match f.engine {
            // SQLite's STRICT typing is off: a mismatch shows as a parameter count instead.
            Engine::Sqlite => ("INSERT INTO orders VALUES (?1, ?2)", vec![text("o-9")]),
            Engine::Postgres => ("INSERT INTO orders VALUES ($1, $2)", vec![text("o-9"), text("three")]),
        };
        let failures: Vec<(&str, Result<(), Error>)> = vec![
            ("syntax", store.execute("SELEC 1", &[]).map(drop)),
            ("unknown table", store.query("SELECT * FROM no_such_table", &[]).map(drop)),
            ("unknown column", store.query("SELECT nope FROM orders", &[]).map(drop)),
            ("constraint", store.execute("INSERT INTO orders VALUES ('o-1', 2)", &[]).map(drop)),
            ("parameters", store.execute(wrong_type.0, &wrong_type.1).map(drop)),
            (
                "constraint in a transaction",
                store.transaction(|tx| tx.execute("INSERT INTO orders VALUES ('o-1', 3)", &[]).map(drop)),
            ),
        ];
        for (what, result) in failures {
            let err = result.expect_err(what);
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
            assert!(matches!(err, Error::Sql { .. }), "{what}: {err:?}");
            assert!(err.to_string().contains("your SQL statement failed"), "{what}: {err}");
        }
        assert_eq!(store.query("SELECT qty FROM orders", &[])?, vec![vec![SqlValue::Integer(1)]]);
        Ok(())
    }
}

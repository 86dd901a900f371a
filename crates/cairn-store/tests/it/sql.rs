//! The user's own SQL on the store's connection: it commits with cairn's updates, and it can
//! never reach cairn's own tables, the transaction, or the connection's settings.

use cairn::{Error, ErrorKind, Migrations, SqlValue, Store, M};

fn app_store() -> Result<(tempfile::TempDir, std::path::PathBuf, Store), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = Store::open(&path)?;
    store.migrate(
        "app",
        &Migrations::new(vec![M::up("CREATE TABLE orders (id TEXT PRIMARY KEY, qty INTEGER)")]),
    )?;
    Ok((dir, path, store))
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.into())
}

#[test]
fn statements_in_a_transaction_commit_or_roll_back_with_cairns_own_updates() -> Result<(), Error> {
    let (_d, _p, store) = app_store()?;
    store.transaction(|tx| {
        assert_eq!(
            tx.execute("INSERT INTO orders VALUES (?1, ?2)", &[text("o-1"), SqlValue::Integer(3)])?,
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
    assert_eq!(
        store.query("SELECT qty, NULL, 1.5, x'00ff' FROM orders", &[])?,
        vec![vec![SqlValue::Integer(4), SqlValue::Null, SqlValue::Real(1.5), SqlValue::Blob(vec![0, 255])]]
    );
    assert!(
        !store.query("PRAGMA table_info(orders)", &[])?.is_empty(),
        "describing one's own tables is fine"
    );
    Ok(())
}

#[test]
fn statements_that_reach_cairns_tables_the_transaction_or_the_connection_are_refused() -> Result<(), Error> {
    let (_d, path, store) = app_store()?;
    store.cache("c").set("k", "v", None)?;
    store.execute("CREATE VIEW peek AS SELECT * FROM cairn_cache", &[])?; // harmless until read
    store.execute("CREATE TRIGGER wipe AFTER INSERT ON orders BEGIN DELETE FROM cairn_cache; END", &[])?;
    for sql in [
        "SELECT * FROM cairn_cache",
        "SELECT * FROM CAIRN_LEDGER",
        "SELECT * FROM peek",
        "INSERT INTO cairn_checkpoint (job, value, updated_at) VALUES ('j', x'00', 0)",
        "UPDATE cairn_cache SET value = x'00'",
        "DELETE FROM cairn_lock",
        "DROP TABLE cairn_cache",
        "CREATE TABLE cairn_mine (x)",
        "CREATE INDEX mine ON cairn_cache (key)",
        "DROP INDEX cairn_cache_expiry",
        "ALTER TABLE cairn_cache ADD COLUMN x",
        "CREATE TRIGGER t AFTER INSERT ON cairn_cache BEGIN SELECT 1; END",
        "BEGIN",
        "COMMIT",
        "SAVEPOINT s",
        "ATTACH DATABASE ':memory:' AS other",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA writable_schema = 1",
        "PRAGMA table_info(cairn_cache)",
        "SELECT 1; DROP TABLE orders",
        "INSERT INTO orders VALUES ('fires-wipe', 1)",
    ] {
        for result in
            [store.execute(sql, &[]).map(drop), store.transaction(|tx| tx.execute(sql, &[]).map(drop))]
        {
            let err = result.expect_err(sql);
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{sql}: {err}");
            assert!(err.to_string().contains("refused SQL"), "{sql}: {err}");
        }
    }
    store.execute("DROP TRIGGER wipe", &[])?;
    let err = store.query("INSERT INTO orders VALUES ('x', 1)", &[]).unwrap_err();
    assert!(err.to_string().contains("it writes"), "{err}");
    // cairn's own statements still run, and the file is sound and cairn's.
    assert_eq!(store.cache("c").get::<String>("k")?.as_deref(), Some("v"));
    assert!(store.query("SELECT * FROM orders", &[])?.is_empty());
    drop(store);
    let again = Store::open(&path)?;
    assert_eq!(again.integrity_check()?, vec!["ok"]);
    assert_eq!(again.journal_mode(), "wal");
    Ok(())
}

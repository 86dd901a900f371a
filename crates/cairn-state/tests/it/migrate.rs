//! The migration runner: inside a store under a scope (on both engines), and on users' own
//! SQLite files through `user_version` (SQLite only: `apply_to_file` is about a file).

use std::sync::atomic::{AtomicUsize, Ordering};

use cairn::{Error, ErrorKind, Migrations, M};
use rusqlite::Connection;

use crate::contract;
use crate::temp_store;

/// The version of cairn's own schema that this build writes on SQLite.
const CAIRN_SCHEMA: i64 = 11;

fn steps() -> Migrations<'static> {
    Migrations::new(vec![
        M::up("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"),
        M::up("ALTER TABLE items ADD COLUMN price INTEGER NOT NULL DEFAULT 0;"),
        M::up_with(|db| {
            db.execute("INSERT INTO items (name, price) VALUES ('seed', 5)", &[])?;
            Ok(())
        }),
        M::up("CREATE INDEX items_by_name ON items (name);"),
    ])
}

fn user_version(path: &std::path::Path) -> i64 {
    let conn = Connection::open(path).expect("open");
    conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("read")
}

#[test]
fn every_older_version_migrates_to_the_newest() -> Result<(), Error> {
    let all = steps();
    for start in 0..=all.latest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.db");
        // Bring a file to `start` with a prefix of the list, as an older release would have.
        let older = Migrations::new(steps().into_prefix(start));
        older.apply_to_file(&path)?;
        assert_eq!(user_version(&path), start);
        let report = all.apply_to_file(&path)?;
        assert_eq!(report.from, start);
        assert_eq!(report.to, 4);
        assert_eq!(report.applied, ((start + 1)..=4).collect::<Vec<_>>());
        let conn = Connection::open(&path).expect("open");
        let seeded: i64 =
            conn.query_row("SELECT count(*) FROM items WHERE name = 'seed'", [], |r| r.get(0)).expect("q");
        assert_eq!(seeded, 1, "starting at {start}");
    }
    Ok(())
}

trait Prefix {
    fn into_prefix(self, n: i64) -> Vec<M<'static>>;
}
impl Prefix for Migrations<'static> {
    fn into_prefix(self, n: i64) -> Vec<M<'static>> {
        let all = [
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
            "ALTER TABLE items ADD COLUMN price INTEGER NOT NULL DEFAULT 0;",
            "INSERT INTO items (name, price) VALUES ('seed', 5);",
            "CREATE INDEX items_by_name ON items (name);",
        ];
        all.iter().take(n as usize).map(|s| M::up(s)).collect()
    }
}

#[test]
fn re_running_is_a_no_op() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.db");
    let runs = AtomicUsize::new(0);
    let m = Migrations::new(vec![M::up_with(|c| {
        runs.fetch_add(1, Ordering::SeqCst);
        c.execute_batch("CREATE TABLE t (x);")?;
        Ok(())
    })]);
    m.apply_to_file(&path)?;
    let again = m.apply_to_file(&path)?;
    assert!(again.applied.is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    Ok(())
}

#[test]
fn a_file_ahead_of_the_list_is_refused_and_left_as_is() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.db");
    steps().apply_to_file(&path)?;
    let shorter = Migrations::new(vec![M::up("CREATE TABLE items (id INTEGER PRIMARY KEY);")]);
    let err = shorter.apply_to_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaTooNew, "{err}");
    assert!(matches!(err, Error::SchemaTooNew { found: 4, supported: 1, .. }));
    assert_eq!(user_version(&path), 4);
    assert!(shorter.status_of_file(&path)?.is_ahead());
    Ok(())
}

#[test]
fn a_failing_step_rolls_back_whole_and_keeps_earlier_steps() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.db");
    let m = Migrations::new(vec![
        M::up("CREATE TABLE a (x);"),
        M::up("CREATE TABLE b (x); INSERT INTO b VALUES (1); THIS IS NOT SQL;"),
    ]);
    let err = m.apply_to_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Migration);
    assert!(err.to_string().contains("step 2 failed"), "{err}");
    assert_eq!(user_version(&path), 1);
    let conn = Connection::open(&path).expect("open");
    let b: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'b'", [], |r| r.get(0)).expect("q");
    assert_eq!(b, 0, "half of step 2 was applied");
    Ok(())
}

#[test]
fn status_lists_pending_versions_without_creating_the_file() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.db");
    let st = steps().status_of_file(&path)?;
    assert_eq!(st.pending().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(!path.exists());
    Migrations::new(vec![M::up("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")])
        .apply_to_file(&path)?;
    assert_eq!(steps().status_of_file(&path)?.pending().collect::<Vec<_>>(), vec![2, 3, 4]);
    Ok(())
}

#[test]
fn user_version_migrations_refuse_a_cairn_store() -> Result<(), Error> {
    let (_d, path, store, _c) = temp_store();
    drop(store);
    let err = steps().apply_to_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("Store::migrate"), "{err}");
    assert_eq!(user_version(&path), CAIRN_SCHEMA);
    Ok(())
}

contract! {
    fn scopes_in_a_store_never_collide_with_each_other_or_with_cairn(f) {
        let store = &f.store;
        let app = Migrations::new(vec![
            M::up("CREATE TABLE app_t (x INTEGER);"),
            M::up("CREATE TABLE app_u (x INTEGER);"),
        ]);
        let plugin = Migrations::new(vec![M::up("CREATE TABLE plugin_t (x INTEGER);")]);
        assert_eq!(store.migrate("app", &app)?.to, 2);
        assert_eq!(store.migrate("plugin", &plugin)?.to, 1);
        assert!(store.migrate("app", &app)?.applied.is_empty());
        assert_eq!(store.migration_status("plugin", &plugin)?.current, 1);
        assert_eq!(f.cairn_version(), f.engine.cairn_schema_version(), "cairn's own version is untouched");
        store.cache("n").set("k", "still works", None)?;
        let reopened = f.reopen();
        assert_eq!(reopened.migration_status("app", &app)?.current, 2);
        Ok(())
    }

    fn a_scope_ahead_of_its_list_is_refused(f) {
        let store = &f.store;
        store.migrate(
            "app",
            &Migrations::new(vec![
                M::up("CREATE TABLE a (x INTEGER);"),
                M::up("CREATE TABLE b (x INTEGER);"),
            ]),
        )?;
        let err =
            store.migrate("app", &Migrations::new(vec![M::up("CREATE TABLE a (x INTEGER);")])).unwrap_err();
        assert!(
            matches!(err, Error::SchemaTooNew { found: 2, supported: 1, ref scope, .. } if scope == "app"),
            "{err}"
        );
        Ok(())
    }

    /// A step that fails rolls back whole, with its version bump; the steps before it stay.
    fn a_failing_step_in_a_scope_rolls_back_whole_and_keeps_earlier_steps(f) {
        let store = &f.store;
        let m = Migrations::new(vec![
            M::up("CREATE TABLE a (x INTEGER);"),
            M::up("CREATE TABLE b (x INTEGER); INSERT INTO b VALUES (1); THIS IS NOT SQL;"),
        ]);
        let err = store.migrate("app", &m).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Migration, "{err}");
        assert!(err.to_string().contains("step 2 failed"), "{err}");
        assert_eq!(store.migration_status("app", &m)?.current, 1);
        assert!(store.query("SELECT count(*) FROM a", &[]).is_ok(), "step 1 stays");
        assert!(store.query("SELECT count(*) FROM b", &[]).is_err(), "half of step 2 was applied");
        Ok(())
    }

    /// Steps written as code (`M::up_with`) run on either engine through the same handle.
    fn a_step_written_as_code_runs_in_its_steps_transaction(f) {
        let store = &f.store;
        let m = Migrations::new(vec![
            M::up("CREATE TABLE items (name TEXT NOT NULL, price INTEGER NOT NULL DEFAULT 0);"),
            M::up_with(|db| {
                db.execute("INSERT INTO items (name, price) VALUES ('seed', 5)", &[])?;
                Ok(())
            }),
        ]);
        assert_eq!(store.migrate("app", &m)?.applied, vec![1, 2]);
        assert!(store.migrate("app", &m)?.applied.is_empty(), "re-running is a no-op");
        assert_eq!(
            store.query("SELECT count(*) FROM items WHERE name = 'seed'", &[])?,
            vec![vec![cairn::SqlValue::Integer(1)]]
        );
        Ok(())
    }
}

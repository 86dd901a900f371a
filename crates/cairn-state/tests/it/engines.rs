//! The contract suite's harness: the same test body on every engine. `contract!` writes, for
//! each test, one `#[test]` on a SQLite file and one on a fresh schema of the PostgreSQL server
//! named by `CAIRN_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`). Without a
//! reachable server, or in a build without the `postgres` feature, the PostgreSQL half says so
//! and skips, which `CAIRN_NO_SKIP` turns into a failure (`.ci/run` sets it and starts the
//! server). Each schema is dropped when its test ends; schemas left by killed runs are dropped
//! when a later run starts.
//!
//! The contract tests live in the file of their feature (`cache.rs`, `ledger.rs`, ...) beside
//! the few that are about a SQLite file and run on it alone; `cargo test --test it postgres`
//! runs every PostgreSQL half.

use std::cell::RefCell;
use std::sync::{Condvar, Mutex};

use cairn::{ManualClock, Options, Store};

/// Where a test's store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A file in a temporary directory.
    Sqlite,
    /// A fresh schema on the test server.
    Postgres,
}

impl Engine {
    /// The version of cairn's own schema that this build writes on the engine: SQLite counts
    /// the steps its files went through (7); PostgreSQL started at SQLite's sixth layout (1),
    /// and took the seventh step with it (2).
    pub fn cairn_schema_version(self) -> i64 {
        match self {
            Engine::Sqlite => 7,
            Engine::Postgres => 2,
        }
    }
}

/// One test's store, its clock, and how to open it again (another process's view).
pub struct Fixture {
    /// The engine it runs on, for the few assertions that differ by engine.
    #[allow(dead_code)]
    pub engine: Engine,
    /// The store, on a manual clock.
    pub store: Store,
    /// The clock the store reads; advance it instead of sleeping.
    pub clock: ManualClock,
    /// The file path or URL. On PostgreSQL the URL sets the session's `search_path` to a
    /// schema of the test's own (`<schema>_app`), where users' tables (migrations, user SQL)
    /// go, as they would go to `public` for a real user.
    pub location: String,
    schema: Option<String>,
    /// A plain connection to the server, in cairn's schema: what another program sees.
    raw: Option<RefCell<postgres::Client>>,
    /// Schemas made for [`Fixture::sibling`], dropped with this one.
    siblings: RefCell<Vec<String>>,
    _dir: Option<tempfile::TempDir>,
    _slot: Option<Slot>,
}

impl Fixture {
    /// Options that open the same store (the same schema on a server) on the same clock.
    pub fn options(&self) -> Options {
        let o = Options::new().clock(self.clock.clone());
        match &self.schema {
            Some(s) => o.schema(s.clone()),
            None => o,
        }
    }

    /// Another handle on the same store, as another process would open it.
    pub fn reopen(&self) -> Store {
        self.options().open(&self.location).expect("reopen")
    }

    /// Where another store of this engine, named `name`, would live, and the options that
    /// open it there (on the same clock): a file beside this one, or another schema. Nothing
    /// exists there until a store is opened; [`Fixture::sibling_exists`] says whether one was.
    #[allow(dead_code)]
    pub fn sibling(&self, name: &str) -> (Options, String) {
        let o = Options::new().clock(self.clock.clone());
        match &self.schema {
            Some(schema) => {
                let other = format!("{schema}_{name}");
                self.siblings.borrow_mut().push(other.clone());
                (o.schema(other), self.location.clone())
            }
            None => {
                let path = std::path::Path::new(&self.location).with_file_name(format!("{name}.db"));
                (o, path.to_string_lossy().into_owned())
            }
        }
    }

    /// Whether anything was created at [`Fixture::sibling`]`(name)`.
    #[allow(dead_code)]
    pub fn sibling_exists(&self, name: &str) -> bool {
        match &self.schema {
            Some(schema) => {
                let other = format!("{schema}_{name}");
                let n = self.raw_i64(&format!(
                    "SELECT count(*) FROM pg_namespace WHERE nspname = '{}'",
                    other.replace('\'', "''")
                ));
                n > 0
            }
            None => std::path::Path::new(&self.location).with_file_name(format!("{name}.db")).exists(),
        }
    }

    /// Run `sql` (statements without results) as another program would, bypassing cairn: on
    /// the file, or on the server in cairn's schema.
    #[allow(dead_code)]
    pub fn raw_execute(&self, sql: &str) {
        match &self.raw {
            Some(client) => client.borrow_mut().batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}")),
            None => {
                let conn = rusqlite::Connection::open(&self.location).expect("open the file");
                conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    /// The first column of the one row `sql` returns, an integer (a `bigint` on PostgreSQL),
    /// read as another program would.
    #[allow(dead_code)]
    pub fn raw_i64(&self, sql: &str) -> i64 {
        match &self.raw {
            Some(client) => {
                client.borrow_mut().query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
            }
            None => {
                let conn = rusqlite::Connection::open(&self.location).expect("open the file");
                conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    /// The schema of the store on a server; `None` for a file.
    #[allow(dead_code)]
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The version of cairn's own schema in the store, as another program reads it.
    #[allow(dead_code)]
    pub fn cairn_version(&self) -> i64 {
        match self.engine {
            Engine::Sqlite => self.raw_i64("PRAGMA user_version"),
            Engine::Postgres => {
                self.raw_i64("SELECT value::bigint FROM cairn_meta WHERE key = 'schema_version'")
            }
        }
    }

    /// Set the version of cairn's own schema in the store behind cairn's back.
    #[allow(dead_code)]
    pub fn set_cairn_version(&self, version: i64) {
        match self.engine {
            Engine::Sqlite => self.raw_execute(&format!("PRAGMA user_version = {version}")),
            Engine::Postgres => self.raw_execute(&format!(
                "UPDATE cairn_meta SET value = '{version}' WHERE key = 'schema_version'"
            )),
        }
    }

    /// A plain connection to the test server (PostgreSQL only), for what the test does
    /// behind cairn's back: hold a row lock, end a backend.
    #[allow(dead_code)]
    pub fn server(&self) -> std::cell::RefMut<'_, postgres::Client> {
        self.raw.as_ref().expect("a PostgreSQL fixture").borrow_mut()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            let mut all = vec![schema.clone(), format!("{schema}_app")];
            all.extend(self.siblings.borrow().iter().cloned());
            if let Some(client) = &self.raw {
                let mut client = client.borrow_mut();
                let _ = client.batch_execute("ROLLBACK"); // a row lock a failed test still held
                for s in all {
                    let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"));
                }
            }
        }
    }
}

/// The fixture for `engine`, or `None` (said loudly, or failed under `CAIRN_NO_SKIP`) when it
/// cannot run here.
pub fn fixture(engine: Engine) -> Option<Fixture> {
    let clock = ManualClock::new(1_700_000_000_000);
    match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("state.db");
            let store = Options::new().clock(clock.clone()).open(&path).expect("open");
            Some(Fixture {
                engine,
                store,
                clock,
                location: path.to_string_lossy().into_owned(),
                schema: None,
                raw: None,
                siblings: RefCell::new(Vec::new()),
                _dir: Some(dir),
                _slot: None,
            })
        }
        Engine::Postgres => {
            let url = server_url()?;
            let slot = Slot::take();
            let schema = fresh_schema();
            let mut raw =
                postgres::Client::connect(&url, postgres::NoTls).expect("connect to the test server");
            raw.batch_execute(&format!("CREATE SCHEMA \"{schema}_app\"")).expect("the users' schema");
            let location = format!("{url}{}options=-c%20search_path%3D{schema}_app", sep(&url));
            let store = Options::new()
                .clock(clock.clone())
                .schema(schema.clone())
                .open(&location)
                .expect("open on postgres");
            raw.batch_execute(&format!("SET search_path TO \"{schema}\"")).expect("search_path");
            Some(Fixture {
                engine,
                store,
                clock,
                location,
                schema: Some(schema),
                raw: Some(RefCell::new(raw)),
                siblings: RefCell::new(Vec::new()),
                _dir: None,
                _slot: Some(slot),
            })
        }
    }
}

/// The separator before one more query parameter of `url`.
fn sep(url: &str) -> char {
    if url.contains('?') {
        '&'
    } else {
        '?'
    }
}

/// The test server's URL if a server answers there and this build can use it.
pub fn server_url() -> Option<String> {
    let url = std::env::var("CAIRN_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    if !cfg!(feature = "postgres") {
        crate::skip_unless_ci("a build with the postgres feature (cargo test --features postgres)");
        return None;
    }
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(mut client) => {
            clean_stale_schemas(&mut client);
            Some(url)
        }
        Err(e) => {
            crate::skip_unless_ci(&format!("a PostgreSQL server at {url} ({e}); set CAIRN_TEST_PG"));
            None
        }
    }
}

/// PostgreSQL tests running at once, at most: each opens a few connections (a dozen for the
/// concurrency tests), and the server takes 100. `CAIRN_TEST_PG_TESTS` overrides it.
struct Slot;

static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

impl Slot {
    fn take() -> Slot {
        let most: usize =
            std::env::var("CAIRN_TEST_PG_TESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(4).max(1);
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= most {
            used = SLOT_FREED.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *SLOTS.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        SLOT_FREED.notify_one();
    }
}

const PREFIX: &str = "cairn_test_";

/// `cairn_test_<unix seconds>_<pid>_<n>`: unique, and old ones recognisable by their time.
fn fresh_schema() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{PREFIX}{secs}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Schemas of test runs that were killed before they could drop them: older than an hour.
fn clean_stale_schemas(client: &mut postgres::Client) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let Ok(rows) =
            client.query("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'cairn\\_test\\_%'", &[])
        else {
            return;
        };
        for row in rows {
            let name: String = row.get(0);
            let secs: u64 = name[PREFIX.len()..].split('_').next().and_then(|s| s.parse().ok()).unwrap_or(0);
            if secs + 3600 < now {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
            }
        }
    });
}

/// `contract! { fn name(f) { body } ... }`: each body runs on every engine, with `f` the
/// [`Fixture`]; it returns `Result<(), cairn::Error>`. Doc comments go before `fn`, then
/// optionally `#[postgres_ignore = "why"]`, which ignores the PostgreSQL half (a library bug
/// the test found, named in `why`).
#[macro_export]
macro_rules! contract {
    ($(
        $(#[doc = $doc:literal])*
        $(#[postgres_ignore = $why:literal])?
        fn $name:ident($f:ident) $body:block
    )*) => {
        $(
            $(#[doc = $doc])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                fn body($f: &$crate::engines::Fixture) -> Result<(), cairn::Error> $body

                #[test]
                fn sqlite() -> Result<(), cairn::Error> {
                    let f = $crate::engines::fixture($crate::engines::Engine::Sqlite).expect("sqlite");
                    body(&f)
                }

                #[test]
                $(#[ignore = $why])?
                fn postgres() -> Result<(), cairn::Error> {
                    match $crate::engines::fixture($crate::engines::Engine::Postgres) {
                        Some(f) => body(&f),
                        None => Ok(()),
                    }
                }
            }
        )*
    };
}

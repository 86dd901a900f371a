//! The contract suite's harness: the same test body on every engine. `contract!` writes, for
//! each test, one `#[test]` on a SQLite file and one on a fresh schema of the PostgreSQL server
//! named by `CAIRN_TEST_PG` (the fixture of every suite, [`cairn_testkit::postgres`]). Without
//! a reachable server the PostgreSQL half says so and skips, which `CAIRN_NO_SKIP` turns into a
//! failure (`.ci/run` sets it and starts the server). Each schema is dropped when its test
//! ends; schemas left by killed runs are dropped when a later run starts. (The library is
//! built with its `postgres` feature here: cairn-testkit, a dev-dependency, asks for it.)
//!
//! The contract tests live in the file of their feature (`cache.rs`, `ledger.rs`, ...) beside
//! the few that are about a SQLite file and run on it alone; `cargo test --test it postgres`
//! runs every PostgreSQL half.

use cairn::{ManualClock, Options, Store};
use cairn_testkit::postgres::{test_schema, Client, TestSchema};

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
    /// the steps its files went through (11); PostgreSQL started at SQLite's sixth layout (1),
    /// and took the seventh and eighth steps with it (2, 3: durable runs); the ninth (the
    /// cache's sweep index) is SQLite's alone; the tenth (queue controls, limits) is 4; the eleventh (cron jobs) is 5.
    pub fn cairn_schema_version(self) -> i64 {
        match self {
            Engine::Sqlite => 11,
            Engine::Postgres => 5,
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
    /// On PostgreSQL, the test's schema, with a plain connection to the server whose
    /// `search_path` is cairn's schema: what another program sees. Declared after `store`, so
    /// that the store's connection closes before the schema is dropped.
    pg: Option<TestSchema>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// Options that open the same store (the same schema on a server) on the same clock.
    pub fn options(&self) -> Options {
        let o = Options::new().clock(self.clock.clone());
        match &self.pg {
            Some(pg) => o.schema(pg.name()),
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
        match &self.pg {
            Some(pg) => (o.schema(pg.sibling(name)), self.location.clone()),
            None => {
                let path = std::path::Path::new(&self.location).with_file_name(format!("{name}.db"));
                (o, path.to_string_lossy().into_owned())
            }
        }
    }

    /// Whether anything was created at [`Fixture::sibling`]`(name)`.
    #[allow(dead_code)]
    pub fn sibling_exists(&self, name: &str) -> bool {
        match &self.pg {
            Some(pg) => {
                let other = format!("{}_{name}", pg.name());
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
        match &self.pg {
            Some(pg) => pg.client().batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}")),
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
        match &self.pg {
            Some(pg) => pg.query_i64(sql, &[]),
            None => {
                let conn = rusqlite::Connection::open(&self.location).expect("open the file");
                conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    /// The schema of the store on a server; `None` for a file.
    #[allow(dead_code)]
    pub fn schema(&self) -> Option<&str> {
        self.pg.as_ref().map(TestSchema::name)
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
    pub fn server(&self) -> std::cell::RefMut<'_, Client> {
        self.pg().client()
    }

    /// The test's schema on the server (PostgreSQL only).
    #[allow(dead_code)]
    pub fn pg(&self) -> &TestSchema {
        self.pg.as_ref().expect("a PostgreSQL fixture")
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
                pg: None,
                _dir: Some(dir),
            })
        }
        Engine::Postgres => {
            let pg = test_schema()?;
            let location = pg.app_location();
            let store = Options::new()
                .clock(clock.clone())
                .schema(pg.name())
                .open(&location)
                .expect("open on postgres");
            pg.client().batch_execute(&format!("SET search_path TO \"{}\"", pg.name())).expect("search_path");
            Some(Fixture { engine, store, clock, location, pg: Some(pg), _dir: None })
        }
    }
}

/// A model test's run (`model.rs`, `ledger_model.rs`): proptest draws sequences of 1 to 79
/// operations from `op`, and `one_case` runs each on the fixture's store in a namespace of its
/// own (`<prefix><n>`, the n-th case): a fresh store per case would cost a schema per case on
/// PostgreSQL. A failing case is shrunk and kept in the regression file of `source_file`.
/// Cases per run: `sqlite_cases` on SQLite, fewer (24) on PostgreSQL, where each step and its
/// checks are up to some thirty round trips; `CAIRN_MODEL_CASES` overrides both.
pub fn run_model<S: proptest::strategy::Strategy>(
    f: &Fixture,
    source_file: &'static str,
    sqlite_cases: u32,
    prefix: &str,
    op: S,
    one_case: impl Fn(&Fixture, &str, Vec<S::Value>) -> Result<(), proptest::test_runner::TestCaseError>,
) {
    let default = match f.engine {
        Engine::Sqlite => sqlite_cases,
        Engine::Postgres => 24,
    };
    let cases = std::env::var("CAIRN_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let config = proptest::test_runner::Config {
        cases,
        source_file: Some(source_file),
        ..proptest::test_runner::Config::default()
    };
    let case = std::cell::Cell::new(0u32);
    let outcome =
        proptest::test_runner::TestRunner::new(config).run(&proptest::collection::vec(op, 1..80), |ops| {
            case.set(case.get() + 1);
            one_case(f, &format!("{prefix}{}", case.get()), ops)
        });
    if let Err(e) = outcome {
        panic!("{e}");
    }
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

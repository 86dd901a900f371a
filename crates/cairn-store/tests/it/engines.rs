//! The contract suite's harness: the same test body on every engine. `contract!` writes, for
//! each test, one `#[test]` on a SQLite file and one on a fresh schema of the PostgreSQL server
//! named by `CAIRN_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`). Without a
//! reachable server, or in a build without the `postgres` feature, the PostgreSQL half says so
//! and skips, which `CAIRN_NO_SKIP` turns into a failure (`.ci/run` sets it and starts the
//! server). Each schema is dropped when its test ends; schemas left by killed runs are dropped
//! when a later run starts.

use cairn::{ManualClock, Options, Store};

/// Where a test's store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A file in a temporary directory.
    Sqlite,
    /// A fresh schema on the test server.
    Postgres,
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
    /// The file path or URL.
    pub location: String,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
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
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            drop_schema(schema);
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
                _dir: Some(dir),
            })
        }
        Engine::Postgres => {
            let url = server_url()?;
            let schema = fresh_schema();
            let store = Options::new()
                .clock(clock.clone())
                .schema(schema.clone())
                .open(&url)
                .expect("open on postgres");
            Some(Fixture { engine, store, clock, location: url, schema: Some(schema), _dir: None })
        }
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

const PREFIX: &str = "cairn_test_";

/// `cairn_test_<unix seconds>_<pid>_<n>`: unique, and old ones recognisable by their time.
fn fresh_schema() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{PREFIX}{secs}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn drop_schema(schema: &str) {
    let Some(url) = std::env::var("CAIRN_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| Some("postgres://postgres@127.0.0.1:5432/test".into()))
    else {
        return;
    };
    if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
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
/// [`Fixture`]; it returns `Result<(), cairn::Error>`.
#[macro_export]
macro_rules! contract {
    ($( $(#[$meta:meta])* fn $name:ident($f:ident) $body:block )*) => {
        $(
            $(#[$meta])*
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

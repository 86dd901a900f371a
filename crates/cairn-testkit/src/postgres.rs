//! The PostgreSQL fixture of every test suite (cairn-state's contract suite and PostgreSQL
//! tests, the CLI's and this crate's process tests): a fresh schema per test on the server named
//! by `CAIRN_TEST_PG` (default [`DEFAULT_URL`]), dropped when the test ends. Without a server
//! that answers, [`test_schema`] says so and skips ([`crate::skip_unless_ci`]), which
//! `CAIRN_NO_SKIP` turns into a failure (`.ci/run` sets it and starts the server).
//!
//! Schemas are named `cairn_test_<unix seconds>_<pid>_<n>`: a later run of any suite drops
//! the ones a killed run left, once they are an hour old.

use std::cell::{RefCell, RefMut};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub use ::postgres::types::ToSql;
pub use ::postgres::Client;

use crate::skip_unless_ci;

/// The test server when `CAIRN_TEST_PG` is unset or empty.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The prefix of every schema the tests make.
const PREFIX: &str = "cairn_test_";

/// The test server's URL: `CAIRN_TEST_PG`, else [`DEFAULT_URL`].
pub fn server_url() -> String {
    std::env::var("CAIRN_TEST_PG").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| DEFAULT_URL.into())
}

/// One test's place on the server: the schema [`TestSchema::name`] for cairn's tables (nothing
/// is created there until a store is opened), the schema `<name>_app` (made at once) for the
/// users' tables (migrations, user SQL), as `public` would hold them for a real user, and a
/// plain connection ([`TestSchema::client`]) for what the test does behind cairn's back. Both
/// schemas, and those named by [`TestSchema::sibling`], are dropped on drop.
pub struct TestSchema {
    server: String,
    name: String,
    client: RefCell<Client>,
    siblings: RefCell<Vec<String>>,
    _slot: Slot,
}

/// A fresh [`TestSchema`] on the test server, or `None` (said loudly, or a failure under
/// `CAIRN_NO_SKIP`) when no server answers. At most `CAIRN_TEST_PG_TESTS` (default 4) are
/// held at once in one process: each test opens a few connections (a dozen for the
/// concurrency tests), and the server takes 100; the others wait for a free slot.
pub fn test_schema() -> Option<TestSchema> {
    let server = server_url();
    let slot = Slot::take();
    let mut client = match Client::connect(&server, ::postgres::NoTls) {
        Ok(client) => client,
        Err(e) => {
            skip_unless_ci(&format!("a PostgreSQL server at {server} ({e}); set CAIRN_TEST_PG"));
            return None;
        }
    };
    clean_stale_schemas(&mut client);
    let name = fresh_schema();
    client.batch_execute(&format!("CREATE SCHEMA \"{name}_app\"")).expect("the users' schema");
    Some(TestSchema {
        server,
        name,
        client: RefCell::new(client),
        siblings: RefCell::new(Vec::new()),
        _slot: slot,
    })
}

impl TestSchema {
    /// The schema of cairn's tables.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's URL, as `CAIRN_TEST_PG` names it.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The store's URL: the server's with `cairn_schema=<name>`; what `Store::open`, a script
    /// or a child process is given.
    pub fn url(&self) -> String {
        format!("{}{}cairn_schema={}", self.server, sep(&self.server), self.name)
    }

    /// [`TestSchema::url`] with the session's `search_path` set to `<name>_app`, where the
    /// users' tables go.
    pub fn app_url(&self) -> String {
        format!("{}&{}", self.url(), self.search_path())
    }

    /// The server's URL with the session's `search_path` set to `<name>_app`, without
    /// `cairn_schema`: for options that name the schema themselves (`Options::schema`).
    pub fn app_location(&self) -> String {
        format!("{}{}{}", self.server, sep(&self.server), self.search_path())
    }

    fn search_path(&self) -> String {
        format!("options=-c%20search_path%3D{}_app", self.name)
    }

    /// The name of another schema for this test, `<name>_<suffix>` (nothing is created),
    /// dropped with this one.
    pub fn sibling(&self, suffix: &str) -> String {
        let other = format!("{}_{suffix}", self.name);
        self.siblings.borrow_mut().push(other.clone());
        other
    }

    /// The plain connection to the server: what another program sees. Its `search_path` is
    /// the server's default until the test sets it.
    pub fn client(&self) -> RefMut<'_, Client> {
        self.client.borrow_mut()
    }

    /// The first column of the one row `sql` returns, a `bigint`, read on [`TestSchema::client`].
    pub fn query_i64(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> i64 {
        self.client().query_one(sql, params).unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
    }

    /// End the server process `pid` (another connection's backend) from the server's side,
    /// and wait (at most 20 s) until it is gone.
    pub fn end_backend(&self, pid: i32) {
        assert_eq!(
            self.query_i64("SELECT pg_terminate_backend($1)::int::int8", &[&pid]),
            1,
            "no backend {pid} to end"
        );
        let until = Instant::now() + Duration::from_secs(20);
        while self.query_i64("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", &[&pid]) > 0 {
            assert!(Instant::now() < until, "backend {pid} still there 20 s after pg_terminate_backend");
            std::thread::sleep(Duration::from_millis(5)); // pacing the poll
        }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let client = self.client.get_mut();
        let _ = client.batch_execute("ROLLBACK"); // a row lock a failed test still held
        let mut all = vec![self.name.clone(), format!("{}_app", self.name)];
        all.append(self.siblings.get_mut());
        for s in all {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"));
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

/// `cairn_test_<unix seconds>_<pid>_<n>`: unique, and old ones recognisable by their time.
fn fresh_schema() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{PREFIX}{}_{}_{}", unix_seconds(), std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Drop the schemas of test runs that were killed before they could: older than an hour.
/// Once per process.
fn clean_stale_schemas(client: &mut Client) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let now = unix_seconds();
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

/// A place among the PostgreSQL tests running at once in this process (see [`test_schema`]).
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

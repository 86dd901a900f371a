//! The PostgreSQL engine: one `postgres::Client` per store, cairn's tables in a schema of their
//! own (default `cairn`), each feature's statements in the file of the same name beside this
//! one, as for SQLite.
//!
//! Transactions are READ COMMITTED with a `lock_timeout` from the busy timeout. SQLite lets one
//! writer in at a time; here many hosts write at once, so every operation on one key inside a
//! write transaction first takes a transaction-scoped advisory lock on that key, and a shared
//! one on its namespace (strict two-phase locking on keys; a batch of many keys takes its
//! namespace's lock exclusively instead): a read-then-write of a key (an increment, a checkpoint bumped
//! from its value) is as safe as under SQLite's lock, while writers of different keys run side
//! by side. Queue claims use `FOR UPDATE SKIP LOCKED` instead, so workers never wait on each
//! other's rows. No session state is kept (only `SET LOCAL`), so a pooler in transaction mode
//! works.

mod cache;
mod checkpoint;
mod hits;
mod job;
mod ledger;
mod limit;
mod lock;
mod maintenance;
mod memo;
mod metrics;
mod migrate;
mod run;
pub(crate) mod schema;
mod user_sql;
mod watch;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use crate::error::{Error, Result};

/// What to open: the URL (with its password), the schema, and how long to wait for locks.
pub(crate) struct OpenSpec<'a> {
    pub url: &'a str,
    pub schema: &'a str,
    pub busy_timeout: Duration,
}

/// One connection to a PostgreSQL server, and cairn's schema on it.
pub(crate) struct Engine {
    client: RefCell<Client>,
    /// To reconnect after the server dropped the connection (outside a transaction).
    config: postgres::Config,
    /// The URL without its password: what messages and `Store::path` show.
    shown: PathBuf,
    /// The URL as given (password included, `cairn_schema` taken out): to open the same
    /// server again from another connection (a lock's keep-alive). Never shown.
    url: String,
    schema: String,
    /// The schema as a quoted identifier, put in place of `{s}` in every statement.
    quoted: String,
    busy_ms: Cell<u64>,
    in_tx: Cell<bool>,
    /// The advisory locks the open transaction holds (see `Engine::lock_key`).
    tx_locks: RefCell<TxLocks>,
    /// Rows changed by the last statement that reported it.
    last_changes: Cell<usize>,
    /// Prepared statements, by template: a prepared statement costs one round trip once,
    /// instead of a prepare, an execute and a close each time.
    statements: RefCell<HashMap<&'static str, Statement>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("postgres::Engine").field("url", &self.shown).field("schema", &self.schema).finish()
    }
}

/// The URL without cairn's own `cairn_schema=` parameter (which the driver would refuse),
/// and that parameter's value. The parameters start where the driver starts them: at the
/// first `?` after the user part, which runs to the first `@` (a password may hold a `?`).
pub(crate) fn split_schema(url: &str) -> (String, Option<String>) {
    let after_user = url.find('@').map_or(0, |at| at + 1);
    let Some(mark) = url[after_user..].find('?').map(|i| after_user + i) else {
        return (url.to_owned(), None);
    };
    let (base, query) = (&url[..mark], &url[mark + 1..]);
    let mut schema = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("cairn_schema=") {
            Some(v) => {
                schema = Some(percent_decoded(v));
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    (url, schema)
}

/// A URL parameter's value with its `%XX` escapes decoded, as every other part of the URL is
/// (`?cairn_schema=my%20jobs` names the schema `my jobs`). Left as written if the escapes do
/// not make UTF-8 text.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| value.to_owned())
}

/// A schema name as a quoted identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Engine {
    pub fn open(spec: &OpenSpec<'_>) -> Result<Engine> {
        let shown = PathBuf::from(crate::storage::redact_url(spec.url));
        if spec.schema.is_empty() || spec.schema.len() > 63 || spec.schema.contains('\0') {
            return Err(Error::invalid("a PostgreSQL schema name is 1 to 63 bytes without NUL"));
        }
        if spec.schema.starts_with("pg_") {
            return Err(Error::invalid(format!(
                "schema name {:?}: names starting with pg_ are reserved for PostgreSQL's own schemas; choose another (?cairn_schema=NAME in the URL, or Options::schema)",
                spec.schema
            )));
        }
        let config: postgres::Config = spec.url.parse().map_err(|e| {
            Error::invalid(format!(
                "{}: not a PostgreSQL URL cairn can use ({e}); write postgres://user@host:port/database",
                shown.display()
            ))
        })?;
        if config.get_ssl_mode() == postgres::config::SslMode::Require {
            return Err(Error::invalid(format!(
                "{}: sslmode=require, but this cairn has no TLS support; it will not fall back to plaintext",
                shown.display()
            )));
        }
        let client = connect(&config, &shown)?;
        let engine = Engine {
            client: RefCell::new(client),
            config,
            shown,
            url: spec.url.to_owned(),
            quoted: quote_ident(spec.schema),
            schema: spec.schema.to_owned(),
            busy_ms: Cell::new(millis_u64(spec.busy_timeout)),
            in_tx: Cell::new(false),
            tx_locks: RefCell::new(TxLocks::default()),
            last_changes: Cell::new(0),
            statements: RefCell::new(HashMap::new()),
        };
        engine.check_server()?;
        Ok(engine)
    }

    /// The server must keep text as UTF-8 (keys are text) and be recent enough for the
    /// statements used here.
    fn check_server(&self) -> Result<()> {
        let row = self.raw_one(
            "SELECT current_setting('server_encoding'), current_setting('server_version_num')::int",
            &[],
        )?;
        let encoding: String = row.get(0);
        let version: i32 = row.get(1);
        if encoding != "UTF8" {
            return Err(Error::invalid(format!(
                "{}: the database's encoding is {encoding}; cairn keeps keys as UTF-8 text: use a UTF8 database",
                self.shown.display()
            )));
        }
        if version < 130_000 {
            return Err(Error::invalid(format!(
                "{}: PostgreSQL {} is older than 13, which cairn needs",
                self.shown.display(),
                version / 10_000
            )));
        }
        Ok(())
    }

    /// Row locks and the fence in the WHERE make one statement atomic on its own.
    /// A server has no file to be moved under it.
    pub(crate) fn ensure_same_file(&self) -> Result<()> {
        Ok(())
    }

    pub(crate) fn settle_if_moved(&self) {}

    pub(crate) fn location(&self) -> PathBuf {
        PathBuf::from(self.url())
    }

    /// A server's files are its own business (`backup` is pg_dump's job there).
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    pub(crate) fn log_bytes(&self) -> u64 {
        0
    }

    pub(crate) fn schema_latest(&self) -> i64 {
        schema::latest()
    }

    pub fn single_statement_writes(&self) -> bool {
        true
    }

    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// Where another connection to the same store connects: the URL with its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_ms.get())
    }

    pub fn set_busy_timeout(&self, d: Duration) {
        self.busy_ms.set(millis_u64(d));
    }

    /// Turn a driver error into cairn's, against this server.
    pub fn err(&self, e: postgres::Error) -> Error {
        classify(e, &self.shown, self.busy_timeout(), self.in_tx.get())
    }

    /// The connection, reconnecting first if the server dropped it while no transaction was
    /// open (a transaction's work would be lost with the connection, so inside one the drop is
    /// reported instead).
    fn client(&self) -> Result<std::cell::RefMut<'_, Client>> {
        let mut client = self.client.borrow_mut();
        if client.is_closed() && !self.in_tx.get() {
            *client = connect(&self.config, &self.shown)?;
            self.statements.borrow_mut().clear();
        }
        Ok(client)
    }

    /// The prepared statement for `template`, whose `{s}` stands for cairn's schema.
    fn statement(
        &self,
        client: &mut Client,
        template: &'static str,
    ) -> std::result::Result<Statement, postgres::Error> {
        if let Some(st) = self.statements.borrow().get(template) {
            return Ok(st.clone());
        }
        let st = client.prepare(&template.replace("{s}", &self.quoted))?;
        self.statements.borrow_mut().insert(template, st.clone());
        Ok(st)
    }

    /// `f` with the cached statement for `template`. Outside a transaction, a statement that
    /// is safe to repeat (a read, or a write that `idempotent` says changes nothing the second
    /// time) and finds the connection dropped runs once more on a new one (see
    /// `again_if_dropped`); any other write that loses its connection may have committed, and
    /// says so.
    fn run<T>(
        &self,
        template: &'static str,
        idempotent: bool,
        f: impl Fn(&mut Client, &Statement) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let attempt = |client: &mut Client| {
            let st = self.statement(client, template)?;
            f(client, &st)
        };
        let outside = !self.in_tx.get();
        if outside && (idempotent || is_read(template)) {
            return self.again_if_dropped(attempt);
        }
        attempt(&mut *self.client()?).map_err(|e| match self.err(e) {
            Error::Unavailable { path, detail, .. } if outside => {
                Error::Unavailable { path, detail, maybe_committed: true }
            }
            other => other,
        })
    }

    /// Rows of a cached statement.
    fn rows(&self, template: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.run(template, false, |client, st| client.query(st, params))
    }

    /// The rows of a cached write that is safe to send again on a new connection if the
    /// first one was lost before it reached the server.
    fn rows_idempotent(&self, template: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.run(template, true, |client, st| client.query(st, params))
    }

    /// At most one row of a cached statement.
    fn row(&self, template: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        self.run(template, false, |client, st| client.query_opt(st, params))
    }

    /// Run a cached statement; the rows it changed.
    fn exec(&self, template: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.exec_as(template, false, params)
    }

    /// [`Engine::exec`] of a write that changes nothing when repeated (a fenced completion):
    /// outside a transaction, it survives a connection the server dropped.
    fn exec_idempotent(&self, template: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.exec_as(template, true, params)
    }

    fn exec_as(
        &self,
        template: &'static str,
        idempotent: bool,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        let n = self.run(template, idempotent, |client, st| client.execute(st, params))?;
        self.last_changes.set(usize::try_from(n).unwrap_or(usize::MAX));
        Ok(n)
    }

    /// The busy timeout as a `lock_timeout` setting, for statements that bound their own lock
    /// waits (`set_config(.., true)` in the statement): a write run on its own, outside a
    /// transaction, has no `SET LOCAL` before it.
    fn lock_timeout(&self) -> String {
        format!("{}ms", self.busy_ms.get().max(1))
    }

    /// One row of a statement that is not cached (rare ones, built at run time).
    fn raw_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        if self.in_tx.get() || !is_read(sql) {
            return self.client()?.query_one(sql, params).map_err(|e| self.err(e));
        }
        self.again_if_dropped(|client| client.query_one(sql, params))
    }

    /// Statements without parameters or results, `{s}` replaced, in one round trip.
    fn batch(&self, template: &str) -> Result<()> {
        self.client()?.batch_execute(&template.replace("{s}", &self.quoted)).map_err(|e| self.err(e))
    }

    /// Inside a write transaction, wait for (and hold until it ends) the lock on one key of
    /// one kind of row, and a shared hold on its namespace; outside one, nothing. See the
    /// module documentation. Past [`KEY_LOCKS_PER_TX`] locks in one transaction, the key's
    /// namespace is locked exclusively instead (see `Engine::lock_keys`).
    fn lock_key(&self, kind: &str, ns: &str, key: &str) -> Result<()> {
        self.lock_keys(kind, ns, &[key])
    }

    /// Locks on several keys of one kind, taken in one round trip and in a fixed order (so two
    /// transactions locking overlapping sets cannot deadlock on them).
    ///
    /// Each advisory lock takes an entry of the server's lock table, which all sessions share
    /// and which holds about `max_locks_per_transaction` (64) per connection: a transaction
    /// locking every key it writes ran the server out of it ("out of shared memory") near
    /// 13,000 keys, failing other sessions' transactions too. So a transaction holds at most
    /// [`KEY_LOCKS_PER_TX`] key locks: past that, and for a batch of more than
    /// [`KEY_LOCKS_AT_MOST`] keys, it takes the namespace's lock exclusively, which stands for
    /// every key in it (single-key locks take it shared), and needs no key lock of that
    /// namespace for the rest of the transaction. Escalating waits for the other
    /// transactions writing the namespace: a large transaction is as exclusive as on SQLite,
    /// where a writer has the whole file.
    fn lock_keys(&self, kind: &str, ns: &str, keys: &[&str]) -> Result<()> {
        if !self.in_tx.get() || keys.is_empty() {
            return Ok(());
        }
        let whole = self.ns_lock_id(kind, ns);
        let mut ids: Vec<i64> = {
            let held = self.tx_locks.borrow();
            if held.exclusive.contains(&whole) {
                return Ok(());
            }
            let mut ids: Vec<i64> = keys.iter().map(|k| self.key_lock_id(kind, ns, k)).collect();
            ids.retain(|id| !held.keys.contains(id));
            let shared_too = usize::from(!held.keys.contains(&whole));
            if keys.len() > KEY_LOCKS_AT_MOST || held.keys.len() + ids.len() + shared_too > KEY_LOCKS_PER_TX {
                drop(held);
                return self.lock_namespace(kind, ns);
            }
            ids
        };
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        self.exec(
            "SELECT pg_advisory_xact_lock_shared($1), count(pg_advisory_xact_lock(k)) FROM unnest($2::bigint[]) AS k",
            &[&whole, &ids],
        )?;
        let mut held = self.tx_locks.borrow_mut();
        held.keys.insert(whole);
        held.keys.extend(ids);
        Ok(())
    }

    /// Inside a write transaction, the namespace's lock held exclusively: for a write to all
    /// of its keys at once (clear), which must wait for every transaction holding one of them.
    fn lock_namespace(&self, kind: &str, ns: &str) -> Result<()> {
        if !self.in_tx.get() {
            return Ok(());
        }
        let whole = self.ns_lock_id(kind, ns);
        if self.tx_locks.borrow().exclusive.contains(&whole) {
            return Ok(());
        }
        self.exec("SELECT pg_advisory_xact_lock($1)", &[&whole])?;
        self.tx_locks.borrow_mut().exclusive.insert(whole);
        Ok(())
    }

    /// The lock that stands for every key of one kind in a namespace (a key cannot end in
    /// NUL, so no key's lock id is computed from the same bytes).
    fn ns_lock_id(&self, kind: &str, ns: &str) -> i64 {
        self.key_lock_id(kind, ns, "\0*")
    }

    /// A 64-bit advisory lock id for a key: FNV-1a over the schema, the kind, the namespace
    /// and the key, with separators that cannot occur in them (NUL is refused in names).
    fn key_lock_id(&self, kind: &str, ns: &str, key: &str) -> i64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [self.schema.as_str(), kind, ns, key] {
            for &b in part.as_bytes().iter().chain(std::iter::once(&0u8)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        i64::from_ne_bytes(h.to_ne_bytes())
    }

    pub fn begin_immediate(&self) -> Result<()> {
        if self.in_tx.get() {
            return Err(Error::invalid("a transaction is already open on this connection"));
        }
        // One round trip: the transaction and its lock wait bound (SET LOCAL ends with it).
        let sql = format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '{}ms'",
            self.busy_ms.get().max(1)
        );
        self.again_if_dropped(|client| client.batch_execute(&sql))?;
        self.tx_locks.replace(TxLocks::default());
        self.in_tx.set(true);
        Ok(())
    }

    /// Run `f`, and once more on a new connection if the first attempt found the connection
    /// dropped by the server while it sat idle (a restart, `pg_terminate_backend`, an idle
    /// timeout): the driver only learns of that when it next sends. Only for what is safe to
    /// repeat outside a transaction: a BEGIN, or a read.
    fn again_if_dropped<T>(
        &self,
        f: impl Fn(&mut Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let first = f(&mut *self.client()?);
        match first {
            Err(e) if !self.in_tx.get() && connection_lost(&e) => {
                *self.client.borrow_mut() = connect(&self.config, &self.shown)?;
                self.statements.borrow_mut().clear();
                f(&mut *self.client()?).map_err(|e| self.err(e))
            }
            other => other.map_err(|e| self.err(e)),
        }
    }

    pub fn commit(&self) -> Result<()> {
        let mut client = self.client.borrow_mut();
        // A connection known closed before COMMIT is sent took the transaction with it.
        let sent = !client.is_closed();
        let result = client.batch_execute("COMMIT");
        self.in_tx.set(false);
        result.map_err(|e| match classify(e, &self.shown, self.busy_timeout(), !sent) {
            // The server may have committed before the connection went: say so.
            Error::Unavailable { path, detail, .. } if sent => {
                Error::Unavailable { path, detail, maybe_committed: true }
            }
            other => other,
        })
    }

    pub fn rollback_quietly(&self) {
        if self.in_tx.replace(false) {
            let _ = self.client.borrow_mut().batch_execute("ROLLBACK");
        }
    }

    pub fn in_transaction(&self) -> bool {
        self.in_tx.get()
    }

    /// PostgreSQL checks its own pages; what cairn can check is that its schema answers.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.row("SELECT 1 FROM {s}.cairn_meta LIMIT 1", &[])?;
        Ok(vec!["ok".into()])
    }

    /// The server's clock, in Unix milliseconds.
    pub fn server_millis(&self) -> Result<i64> {
        Ok(self.raw_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", &[])?.get(0))
    }

    /// Rows changed by the last statement: kept by the operations that know it.
    pub fn changes(&self) -> usize {
        self.last_changes.get()
    }
}

fn connect(config: &postgres::Config, shown: &Path) -> Result<Client> {
    config.connect(NoTls).map_err(|e| classify(e, shown, Duration::ZERO, false))
}

fn millis_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The single mapping from the server's SQLSTATEs (and a lost connection) to cairn's kinds.
pub(crate) fn classify(e: postgres::Error, path: &Path, busy_waited: Duration, in_tx: bool) -> Error {
    let path = path.to_path_buf();
    let Some(db) = e.as_db_error() else {
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed() || io || e.to_string().starts_with("error connecting") {
            let during =
                if in_tx { "; the transaction was lost with it, nothing of it was committed" } else { "" };
            return Error::Unavailable { path, detail: format!("{e}{during}"), maybe_committed: false };
        }
        return Error::Server { path, source: Box::new(e) };
    };
    let code = db.code();
    let server_says = || {
        let mut text = format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), code.code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        Box::new(ServerMessage(text.replace('\n', " ")))
    };
    if *code == SqlState::LOCK_NOT_AVAILABLE || *code == SqlState::TOO_MANY_CONNECTIONS {
        return Error::Busy { path, waited: busy_waited };
    }
    // Ended at once by the server, not after the busy timeout: say what happened.
    if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE {
        return Error::Conflict { path, detail: format!("{} (SQLSTATE {})", db.message(), code.code()) };
    }
    // 54000 on an index row: a key, id or name longer than the server can index (a btree
    // entry holds at most about 2,700 bytes, after compression), though within cairn's own
    // MAX_KEY_BYTES. A usage error, not the server's failure.
    if *code == SqlState::PROGRAM_LIMIT_EXCEEDED && db.message().starts_with("index row") {
        return Error::InvalidInput(format!(
            "{}: the server cannot index a key, id or name this long ({}); on PostgreSQL the limit is about \
             {PG_KEY_BYTES} bytes (less for text that compresses poorly), below cairn's {} elsewhere: use a \
             shorter one (a hash of it, for instance)",
            path.display(),
            db.message(),
            crate::MAX_KEY_BYTES
        ));
    }
    if *code == SqlState::DISK_FULL {
        return Error::DiskFull { path };
    }
    // 53200 with this hint: the shared lock table is full (every session's locks count
    // against it). Other kinds of running out of memory stay server errors.
    let lock_table = db.hint().is_some_and(|h| h.contains("max_locks_per_transaction"));
    if *code == SqlState::OUT_OF_MEMORY && (lock_table || db.message() == "out of shared memory") {
        return Error::ServerOutOfLocks {
            path,
            detail: format!("{} (SQLSTATE {})", db.message(), code.code()),
        };
    }
    if *code == SqlState::INSUFFICIENT_PRIVILEGE || *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        return Error::ReadOnly {
            path,
            detail: format!("{}: check the role's privileges on cairn's schema", db.message()),
        };
    }
    // Class 28 (a role that may not log in, does not exist, or gave the wrong password) and a
    // database that does not exist: the server is there, but cannot be used with this URL.
    if code.code().starts_with("28") || *code == SqlState::INVALID_CATALOG_NAME {
        return Error::Refused { path, detail: format!("{} (SQLSTATE {})", db.message(), code.code()) };
    }
    if code.code().starts_with("08") || code.code().starts_with("57P") {
        return Error::Unavailable { path, detail: db.message().to_owned(), maybe_committed: false };
    }
    Error::Server { path, source: server_says() }
}

/// About the longest key, id or name a PostgreSQL store takes: a btree index entry holds at
/// most 2,704 bytes (after compression; the row's other columns share it). Documented beside
/// [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES).
const PG_KEY_BYTES: &str = "2,700";

/// The server's own account of an error, on one line: the driver's `Display` of a server
/// error says only "db error" and keeps the words in its source, which a one-line message
/// would never show.
#[derive(Debug)]
struct ServerMessage(String);

impl std::fmt::Display for ServerMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerMessage {}

/// The most keys a batch locks one by one; a larger batch locks its namespace (see
/// `Engine::lock_keys`). Far below the server's lock table: `max_locks_per_transaction` is
/// 64 per connection by default.
const KEY_LOCKS_AT_MOST: usize = 32;

/// The most advisory locks of keys (and shared holds of namespaces) one transaction takes;
/// past them it locks namespaces whole (see `Engine::lock_keys`). A few connections' share
/// of the server's lock table (64 entries per connection by default), so that many large
/// transactions at once still leave room for everyone else's.
const KEY_LOCKS_PER_TX: usize = 256;

/// The advisory locks an open transaction holds, by id: what it has no need to take again,
/// and how close it is to [`KEY_LOCKS_PER_TX`]. Ids are hashes, so a collision can only make
/// it skip a lock it holds under another name: what that lock protects is held either way.
#[derive(Default)]
struct TxLocks {
    /// Key locks and shared namespace locks.
    keys: HashSet<i64>,
    /// Namespace locks held exclusively: every key of those namespaces is covered.
    exclusive: HashSet<i64>,
}

/// A statement that changes nothing (no write, no sequence, no lock), so that running it a
/// second time is harmless.
fn is_read(sql: &str) -> bool {
    let s = sql.trim_start();
    (s.starts_with("SELECT") || s.starts_with("WITH"))
        && !["INSERT", "UPDATE", "DELETE", "nextval", "setval", "pg_advisory", "FOR UPDATE", "FOR SHARE"]
            .iter()
            .any(|w| s.contains(w))
}

/// An error that shows the server dropped the connection (it was terminated, shut down, or
/// the network went) rather than refused the statement.
fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
        return true;
    }
    e.code().is_some_and(|c| c.code().starts_with("57P") || c.code().starts_with("08"))
}

#[cfg(test)]
mod tests {
    use super::split_schema;

    /// cairn's parameter is taken from where the driver finds the parameters: after the user
    /// part, which runs to the first `@`, so a `?` in a password does not start them.
    #[test]
    fn the_schema_parameter_is_found_after_a_question_mark_in_the_password() {
        for (url, base, schema) in [
            ("postgres://u@h/db?cairn_schema=s", "postgres://u@h/db", Some("s")),
            (
                "postgres://u@h/db?sslmode=disable&cairn_schema=s",
                "postgres://u@h/db?sslmode=disable",
                Some("s"),
            ),
            ("postgres://u:a?b@h/db?cairn_schema=s", "postgres://u:a?b@h/db", Some("s")),
            ("postgres://u:a?cairn_schema=x@h/db", "postgres://u:a?cairn_schema=x@h/db", None),
            ("postgres://h/db", "postgres://h/db", None),
            // Decoded as the rest of the URL is; a stray % is kept.
            ("postgres://h/db?cairn_schema=my%20jobs", "postgres://h/db", Some("my jobs")),
            ("postgres://h/db?cairn_schema=100%", "postgres://h/db", Some("100%")),
            ("postgres://h/db?cairn_schema=%C3%A9t%C3%A9", "postgres://h/db", Some("été")),
        ] {
            assert_eq!(split_schema(url), (base.to_owned(), schema.map(str::to_owned)), "{url}");
        }
    }
}

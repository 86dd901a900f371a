//! The PostgreSQL workloads of `bench/compare/run`, each in fresh schemas of the server named
//! by `--url` (dropped afterwards). Contenders: `cairn` (the library's own API on a
//! `postgres://` store) and `floor`, a hand-written loop on the same `postgres` crate, in a
//! table of its own with cairn's columns and indexes: the one-statement `FOR UPDATE SKIP
//! LOCKED` claim and the fenced complete of docs/DESIGN and the PostgreSQL design (§3.2), each
//! a prepared statement run in autocommit, so one round trip and one commit per statement:
//! the fastest correct loop.
//!
//! ```text
//! cairn-compare pg-claims     --url URL --items 5000 --ks 1,4,8,16 --batches 1 --rounds 5
//! cairn-compare pg-filter-new --url URL --size 1000000 --chunk 1000
//! cairn-compare pg-round-trips --url URL
//! ```
//!
//! Claims run in worker **processes** (this binary's `pg-worker`), started, connected and
//! prepared before a common start signal; the clock runs from that signal to the last
//! worker's report. Autovacuum is off on the development server, so every queue is created
//! fresh and `VACUUM (ANALYZE)`d before its run.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::ToSocketAddrs;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn::Store;
use postgres::{Client, NoTls, Statement};
use serde_json::json;

use crate::pgwire::{Relay, Seen};
use crate::{emit, id, me, now_ms, Res};

/// The queue's namespace, for both contenders.
const NS: &str = "queue";
/// Long enough that no claim expires during a run: every claim is a pending item's.
const LEASE: Duration = Duration::from_secs(600);

fn item(i: usize) -> String {
    format!("item-{i:07}")
}

// ---------------------------------------------------------------- schemas

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

/// A fresh schema, dropped with everything in it when this value is.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn fresh(url: &str, what: &str) -> Schema {
        let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
        Schema { url: url.to_owned(), name: format!("cairn_bench_{}_{what}_{n}", std::process::id()) }
    }

    /// The URL of a cairn store in this schema.
    fn cairn_url(&self) -> String {
        cairn_url(&self.url, &self.name)
    }

    /// `"schema".table`
    fn table(&self, table: &str) -> String {
        format!("\"{}\".{table}", self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.url, NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
        }
    }
}

fn cairn_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}cairn_schema={schema}")
}

/// Schemas left by a bench process that no longer runs (killed mid-run).
fn drop_stale_schemas(admin: &mut Client) -> Res {
    let rows =
        admin.query("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'cairn\\_bench\\_%'", &[])?;
    for r in rows {
        let name: String = r.get(0);
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid
            .is_some_and(|p| p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists())
        {
            admin.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- the floor

/// cairn's ledger table, its primary key and its partial queue index, under another name.
const FLOOR_DDL: &str = r#"
CREATE SCHEMA {s};
CREATE TABLE {s}.queue (
    ns text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL, state smallint NOT NULL, seq bigint,
    attempts bigint NOT NULL DEFAULT 0, worker text, token bigint NOT NULL DEFAULT 0, holder text COLLATE "C",
    result bytea, result_kind smallint, error text, updated_at bigint NOT NULL, PRIMARY KEY (ns, id));
CREATE INDEX queue_ready ON {s}.queue (ns, state, seq) INCLUDE (holder) WHERE seq IS NOT NULL;
"#;

/// The claim of design §3.2: the expired claim first, else the oldest pending item.
const FLOOR_CLAIM: &str = "WITH expired AS MATERIALIZED ( \
      SELECT id FROM {s}.queue WHERE ns = $1 AND state = 1 AND seq IS NOT NULL AND seq <= $3 \
      ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED), \
    pending AS MATERIALIZED ( \
      SELECT id FROM {s}.queue WHERE ns = $1 AND state = 0 AND seq IS NOT NULL \
      ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
    UPDATE {s}.queue l SET state = 1, seq = $4, worker = $2, token = l.token + 1, updated_at = $3 \
    WHERE l.ns = $1 AND l.id = (SELECT id FROM expired UNION ALL SELECT id FROM pending LIMIT 1) \
    RETURNING l.id, l.token";

/// Up to `$5` items at once, expired claims first.
const FLOOR_CLAIM_MANY: &str = "WITH expired AS MATERIALIZED ( \
      SELECT id, seq FROM {s}.queue WHERE ns = $1 AND state = 1 AND seq IS NOT NULL AND seq <= $3 \
      ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED), \
    pending AS MATERIALIZED ( \
      SELECT id, seq FROM {s}.queue WHERE ns = $1 AND state = 0 AND seq IS NOT NULL \
      ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED), \
    pick AS MATERIALIZED ( \
      SELECT id FROM (SELECT id, 0 AS pri, seq FROM expired UNION ALL SELECT id, 1, seq FROM pending) c \
      ORDER BY pri, seq LIMIT $5) \
    UPDATE {s}.queue l SET state = 1, seq = $4, worker = $2, token = l.token + 1, updated_at = $3 \
    FROM pick WHERE l.ns = $1 AND l.id = pick.id RETURNING l.id, l.token";

/// Fenced: nothing changes unless this worker's claim is still the item's latest.
const FLOOR_COMPLETE: &str = "UPDATE {s}.queue SET state = 2, seq = NULL, worker = NULL, error = NULL, \
    result = NULL, updated_at = $5 WHERE ns = $1 AND id = $2 AND state = 1 AND worker = $3 AND token = $4";

/// A batch of claims completed in one statement, each fenced by its own token.
const FLOOR_COMPLETE_MANY: &str =
    "UPDATE {s}.queue l SET state = 2, seq = NULL, worker = NULL, error = NULL, \
    result = NULL, updated_at = $3 FROM unnest($2::text[], $4::bigint[]) AS c(id, token) \
    WHERE l.ns = $1 AND l.id = c.id AND l.state = 1 AND l.worker = $5 AND l.token = c.token";

struct Floor {
    client: Client,
    claim: Statement,
    claim_many: Statement,
    complete: Statement,
    complete_many: Statement,
}

impl Floor {
    fn connect(url: &str, schema: &str) -> Res<Floor> {
        let mut client = Client::connect(url, NoTls)?;
        let q = format!("\"{schema}\"");
        let mut prep = |sql: &str| client.prepare(&sql.replace("{s}", &q));
        let (claim, claim_many) = (prep(FLOOR_CLAIM)?, prep(FLOOR_CLAIM_MANY)?);
        let (complete, complete_many) = (prep(FLOOR_COMPLETE)?, prep(FLOOR_COMPLETE_MANY)?);
        Ok(Floor { client, claim, claim_many, complete, complete_many })
    }

    /// Claim and complete until the queue is empty, `batch` items at a time; how many.
    fn drain(&mut self, worker: &str, batch: u32) -> Res<usize> {
        let lease = i64::try_from(LEASE.as_millis())?;
        let mut n = 0;
        loop {
            let now = now_ms();
            if batch == 1 {
                let Some(row) = self.client.query_opt(&self.claim, &[&NS, &worker, &now, &(now + lease)])?
                else {
                    return Ok(n);
                };
                let (id, token): (String, i64) = (row.get(0), row.get(1));
                let done = self.client.execute(&self.complete, &[&NS, &id, &worker, &token, &now_ms()])?;
                if done != 1 {
                    return Err(format!("floor: lost the claim on {id}").into());
                }
                n += 1;
            } else {
                let limit = i64::from(batch);
                let rows =
                    self.client.query(&self.claim_many, &[&NS, &worker, &now, &(now + lease), &limit])?;
                if rows.is_empty() {
                    return Ok(n);
                }
                let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                let tokens: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
                let done =
                    self.client.execute(&self.complete_many, &[&NS, &ids, &now_ms(), &tokens, &worker])?;
                if done != ids.len() as u64 {
                    return Err(format!("floor: completed {done} of a batch of {}", ids.len()).into());
                }
                n += ids.len();
            }
        }
    }
}

/// What a cairn worker does: the library's own API.
fn cairn_drain(store: &Store, worker: &str, batch: u32) -> Res<usize> {
    let queue = store.ledger(NS);
    let mut n = 0;
    if batch == 1 {
        while let Some(claim) = queue.claim_next(worker, LEASE)? {
            queue.complete(&claim)?;
            n += 1;
        }
        return Ok(n);
    }
    loop {
        let claims = queue.claim_next_many(worker, LEASE, batch)?;
        if claims.is_empty() {
            return Ok(n);
        }
        let done = queue.complete_many(&claims)?;
        if done.iter().any(|d| !d) {
            return Err(format!("cairn: a claim of a batch of {} was fenced", claims.len()).into());
        }
        n += claims.len();
    }
}

// ---------------------------------------------------------------- claims by processes

/// A queue of `items` pending items for `contender`, in a fresh schema, vacuumed.
fn fill_queue(admin: &mut Client, url: &str, contender: &str, items: usize) -> Res<Schema> {
    let schema = Schema::fresh(url, contender);
    let table = match contender {
        "cairn" => {
            let store = Store::open(schema.cairn_url())?;
            let ids: Vec<String> = (0..items).map(item).collect();
            for chunk in ids.chunks(10_000) {
                store.ledger(NS).enqueue(chunk)?;
            }
            schema.table("cairn_ledger")
        }
        _ => {
            admin.batch_execute(&FLOOR_DDL.replace("{s}", &format!("\"{}\"", schema.name)))?;
            let table = schema.table("queue");
            let n = i64::try_from(items)?;
            admin.execute(
                &format!(
                    "INSERT INTO {table} (ns, id, state, seq, updated_at) \
                     SELECT $1, 'item-' || lpad((i - 1)::text, 7, '0'), 0, i, $2 FROM generate_series(1, $3::bigint) i"
                ),
                &[&NS, &now_ms(), &n],
            )?;
            table
        }
    };
    admin.batch_execute(&format!("VACUUM (ANALYZE) {table}"))?;
    Ok(schema)
}

struct Worker {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Worker {
    fn line(&mut self) -> Res<String> {
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        if line.is_empty() {
            let status = self.child.wait()?;
            return Err(format!("a worker exited ({status}) without saying why; see its stderr").into());
        }
        Ok(line.trim().to_owned())
    }
}

/// K worker processes drain the queue; items per second from the start signal to the last
/// worker's count. Checks that every item was completed exactly once.
fn drain_with_processes(
    url: &str,
    contender: &str,
    schema: &Schema,
    k: usize,
    batch: u32,
    items: usize,
) -> Res<Run> {
    let mut workers: Vec<Worker> = (0..k)
        .map(|w| -> Res<Worker> {
            let mut child = Command::new(me()?)
                .args(["pg-worker", "--url", url, "--contender", contender, "--schema", &schema.name])
                .args(["--worker", &format!("w{w}"), "--batch", &batch.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
            Ok(Worker { child, out })
        })
        .collect::<Res<_>>()?;
    for w in &mut workers {
        let line = w.line()?;
        if line != "ready" {
            return Err(format!("a worker said {line:?} instead of ready").into());
        }
    }
    let started = Instant::now();
    for w in &mut workers {
        let mut stdin = w.child.stdin.take().ok_or("no stdin")?;
        stdin.write_all(b"go\n")?;
    }
    let (mut total, mut client_us, mut server_us) = (0, 0.0, 0.0);
    for w in &mut workers {
        let line = w.line()?;
        let mut f = line.strip_prefix("done ").ok_or(format!("a worker said {line:?}"))?.split(' ');
        total += f.next().unwrap_or("").parse::<usize>()?;
        client_us += f.next().unwrap_or("").parse::<f64>()?;
        server_us += f.next().unwrap_or("").parse::<f64>()?;
    }
    let secs = started.elapsed().as_secs_f64();
    for w in &mut workers {
        let status = w.child.wait()?;
        if !status.success() {
            return Err(format!("a {contender} worker failed: {status}").into());
        }
    }
    // Exactly once: the workers' completions add up, and the table agrees.
    let table = schema.table(if contender == "cairn" { "cairn_ledger" } else { "queue" });
    let mut admin = Client::connect(url, NoTls)?;
    let done: i64 = admin.query_one(&format!("SELECT count(*) FROM {table} WHERE state = 2"), &[])?.get(0);
    if total != items || usize::try_from(done)? != items {
        return Err(
            format!("{contender}: {total} completions reported, {done} done rows, {items} items").into()
        );
    }
    Ok(Run {
        per_s: items as f64 / secs,
        client_us: client_us / items as f64,
        server_us: server_us / items as f64,
    })
}

/// One drained queue: items per second, and CPU per item in the workers and in their backends.
struct Run {
    per_s: f64,
    client_us: f64,
    server_us: f64,
}

/// `pg-worker`: connect and prepare, say `ready`, wait for `go` on stdin, drain the queue,
/// print `done N`.
/// The line ends with the CPU time (µs) this process and its server backend spent from the
/// start signal to the end.
pub fn worker(url: &str, contender: &str, schema: &str, worker: &str, batch: u32) -> Res {
    let wait_for_go = || -> Res {
        println!("ready");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(())
    };
    // The CPU spent is read before the connection closes, while its backend still runs.
    let (n, (client, server)) = match contender {
        "cairn" => {
            let store = Store::open(cairn_url(url, schema))?;
            let backend = match store.query("SELECT pg_backend_pid()::bigint", &[])?.first().map(|r| &r[0]) {
                Some(cairn::SqlValue::Integer(pid)) => u32::try_from(*pid)?,
                other => return Err(format!("pg_backend_pid() gave {other:?}").into()),
            };
            wait_for_go()?;
            let cpu = Cpu::start(backend);
            (cairn_drain(&store, worker, batch)?, cpu.spent())
        }
        "floor" => {
            let mut floor = Floor::connect(url, schema)?;
            let backend: i32 = floor.client.query_one("SELECT pg_backend_pid()", &[])?.get(0);
            let backend = u32::try_from(backend)?;
            wait_for_go()?;
            let cpu = Cpu::start(backend);
            (floor.drain(worker, batch)?, cpu.spent())
        }
        other => return Err(format!("unknown contender {other}").into()),
    };
    println!("done {n} {client:.0} {server:.0}");
    Ok(())
}

/// CPU time of this process and of its server backend from a start.
struct Cpu {
    backend: String,
    client: f64,
    server: f64,
}

impl Cpu {
    fn start(backend: u32) -> Cpu {
        let backend = backend.to_string();
        Cpu { client: cpu_us("self"), server: cpu_us(&backend), backend }
    }

    /// µs of CPU since the start: (this process, its backend).
    fn spent(&self) -> (f64, f64) {
        (cpu_us("self") - self.client, cpu_us(&self.backend) - self.server)
    }
}

/// CPU time of a process (`self` or a pid), in µs: the first field of `/proc/PID/schedstat`,
/// the nanoseconds it ran on a CPU (exact, where `/proc/PID/stat` counts 10 ms ticks).
fn cpu_us(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()))
        .map_or(f64::NAN, |ns| ns / 1000.0)
}

/// `pg-claims`: for each round, batch size and K, cairn and the floor one after the other
/// (alternating which goes first), each on a fresh queue.
pub fn claims(url: &str, items: usize, ks: &[usize], batches: &[u32], rounds: usize) -> Res {
    let mut admin = Client::connect(url, NoTls)?;
    drop_stale_schemas(&mut admin)?;
    server(&mut admin)?;
    let label = |when: &str| {
        let list: Vec<String> = batches.iter().map(u32::to_string).collect();
        format!("{when} the claims at N = {}", list.join(", "))
    };
    latency(&mut admin, url, &label("before"))?;
    // Per (batch, K, contender), in round order: the rate, the machine's load average when the
    // run started (other work on the box shows there), and CPU per item in the workers and in
    // their server backends.
    type Runs = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);
    let mut runs: std::collections::BTreeMap<(u32, usize, &str), Runs> = Default::default();
    for round in 0..rounds {
        for &batch in batches {
            for &k in ks {
                let order = if round % 2 == 0 { ["cairn", "floor"] } else { ["floor", "cairn"] };
                for contender in order {
                    let schema = fill_queue(&mut admin, url, contender, items)?;
                    let load = load_average();
                    let run = drain_with_processes(url, contender, &schema, k, batch, items)?;
                    eprintln!(
                        "round {round}: {contender} batch {batch} K={k}: {:.0} items/s, CPU per item {:.0} µs \
                         worker + {:.0} µs server (load {load:.1})",
                        run.per_s, run.client_us, run.server_us
                    );
                    let entry = runs.entry((batch, k, contender)).or_default();
                    entry.0.push(run.per_s);
                    entry.1.push(load);
                    entry.2.push(run.client_us);
                    entry.3.push(run.server_us);
                }
            }
        }
    }
    let median = |xs: &[f64]| {
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for ((batch, k, contender), (rates, loads, client, server)) in runs {
        let mut r = rates.clone();
        r.sort_by(f64::total_cmp);
        emit(
            json!({ "workload": "pg_claims", "contender": contender, "batch": batch, "k": k, "items": items }),
            json!({ "median_per_s": r[r.len() / 2], "min_per_s": r[0], "max_per_s": r[r.len() - 1],
                    "rounds": rates, "load": loads,
                    "client_cpu_us": median(&client), "server_cpu_us": median(&server) }),
        );
    }
    latency(&mut admin, url, &label("after"))?;
    Ok(())
}

/// The 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The server's version and the settings that decide these figures.
fn server(admin: &mut Client) -> Res {
    let mut settings = serde_json::Map::new();
    for name in [
        "server_version",
        "synchronous_commit",
        "fsync",
        "wal_sync_method",
        "commit_delay",
        "shared_buffers",
        "autovacuum",
        "max_connections",
        "max_locks_per_transaction",
    ] {
        let v: String = admin.query_one("SELECT current_setting($1)", &[&name])?.get(0);
        settings.insert(name.to_owned(), json!(v));
    }
    emit(json!({ "workload": "pg_server" }), serde_json::Value::Object(settings));
    Ok(())
}

/// What one round trip and one committed write cost on this server now (a prepared `SELECT
/// 1`; an autocommit update of a one-row table, which waits for its WAL flush).
fn latency(admin: &mut Client, url: &str, when: &str) -> Res {
    let schema = Schema::fresh(url, "latency");
    let table = schema.table("one");
    admin.batch_execute(&format!(
        "CREATE SCHEMA \"{}\"; CREATE TABLE {table} (n bigint); INSERT INTO {table} VALUES (0)",
        schema.name
    ))?;
    let select = admin.prepare("SELECT 1")?;
    let update = admin.prepare(&format!("UPDATE {table} SET n = n + 1"))?;
    let time = |n: u32, f: &mut dyn FnMut() -> Res| -> Res<f64> {
        let t = Instant::now();
        for _ in 0..n {
            f()?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / f64::from(n))
    };
    let rt = time(2000, &mut || admin.query_one(&select, &[]).map(drop).map_err(Into::into))?;
    let commit = time(300, &mut || admin.execute(&update, &[]).map(drop).map_err(Into::into))?;
    let sync: String = admin.query_one("SELECT current_setting('synchronous_commit')", &[])?.get(0);
    emit(
        json!({ "workload": "pg_latency", "when": when }),
        json!({ "round_trip_us": rt, "commit_us": commit, "synchronous_commit": sync }),
    );
    Ok(())
}

// ---------------------------------------------------------------- filter_new

/// `pg-filter-new`: a ledger of `size` done ids filled through `mark_done_many` in chunks
/// (timed apart), then `filter_new` of 10,000 ids, half of them known, against the same
/// statement run by hand on the same table (the floor), interleaved round by round.
pub fn filter_new(url: &str, size: usize, chunk: usize) -> Res {
    let mut admin = Client::connect(url, NoTls)?;
    drop_stale_schemas(&mut admin)?;
    let schema = Schema::fresh(url, "filter");
    let store = Store::open(schema.cairn_url())?;
    let ledger = store.ledger("bench");
    let t = Instant::now();
    for start in (0..size).step_by(chunk) {
        let ids: Vec<String> = (start..(start + chunk).min(size)).map(id).collect();
        ledger.mark_done_many(&ids)?;
    }
    let fill = t.elapsed().as_secs_f64();
    emit(
        json!({ "workload": "pg_fill", "contender": "cairn", "size": size, "chunk": chunk }),
        json!({ "total_s": fill, "ids_per_s": size as f64 / fill }),
    );
    let table = schema.table("cairn_ledger");
    admin.batch_execute(&format!("VACUUM (ANALYZE) {table}"))?;

    let batch: Vec<String> =
        (0..10_000).map(|i| if i % 2 == 0 { id(i * 97 % size) } else { format!("fresh-{i}") }).collect();
    let floor_sql = admin.prepare(&format!(
        "SELECT id FROM {table} WHERE ns = $1 AND id = ANY($2::text[]) AND state IN (2, 3)"
    ))?;
    let mut floor = |ids: &[String]| -> Res<usize> {
        let rows = admin.query(&floor_sql, &[&"bench", &ids])?;
        let known: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(ids.iter().filter(|i| !known.contains(*i)).count())
    };
    let cairn = |ids: &[String]| -> Res<usize> { Ok(ledger.filter_new(ids)?.len()) };
    if cairn(&batch)? != 5_000 || floor(&batch)? != 5_000 {
        return Err("filter_new: expected 5,000 new ids of 10,000".into());
    }
    const ROUNDS: usize = 7;
    const CALLS: u32 = 10;
    let mut per_call: [Vec<f64>; 2] = Default::default();
    for round in 0..ROUNDS {
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let t = Instant::now();
            for _ in 0..CALLS {
                if side == 0 {
                    cairn(&batch)?
                } else {
                    floor(&batch)?
                };
            }
            per_call[side].push(t.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
        }
    }
    for (side, name) in ["cairn", "floor"].iter().enumerate() {
        let r = &mut per_call[side];
        r.sort_by(f64::total_cmp);
        emit(
            json!({ "workload": "pg_filter_new", "contender": name, "op": "filter_new_10k", "size": size }),
            json!({ "median_us": r[ROUNDS / 2], "min_us": r[0], "max_us": r[ROUNDS - 1], "n": CALLS }),
        );
    }

    // Round trips per call, counted on the wire.
    let relay = relay(url)?;
    let through = Store::open(cairn_url(&relayed_url(url, relay.port())?, &schema.name))?;
    let counted = through.ledger("bench");
    counted.filter_new(&batch)?; // prepares its statement
    for n in [10_000, 100_000] {
        let ids: Vec<String> =
            (0..n).map(|i| if i % 2 == 0 { id(i * 97 % size) } else { format!("fresh-{i}") }).collect();
        relay.take();
        counted.filter_new(&ids)?;
        let seen = relay.take();
        emit(
            json!({ "workload": "pg_round_trips", "contender": "cairn", "op": format!("filter_new of {n} ids") }),
            seen_json(&seen, 1),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- round trips per item

fn relay(url: &str) -> Res<Relay> {
    let config: postgres::Config = url.parse()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => return Err("the bench counts round trips over TCP: give a host in the URL".into()),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let addr = (host.as_str(), port).to_socket_addrs()?.next().ok_or("the server's address")?;
    Ok(Relay::start(addr)?)
}

/// The URL with its host and port replaced by the relay's.
fn relayed_url(url: &str, port: u16) -> Res<String> {
    let (scheme, rest) = url.split_once("://").ok_or("a URL of the form postgres://user@host:port/db")?;
    let (user, rest) = rest.split_once('@').map_or(("", rest), |(u, r)| (u, r));
    let tail = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
    let at = if user.is_empty() { String::new() } else { format!("{user}@") };
    Ok(format!("{scheme}://{at}127.0.0.1:{port}{tail}"))
}

fn seen_json(seen: &Seen, per: usize) -> serde_json::Value {
    let per = per as f64;
    let statements: serde_json::Map<String, serde_json::Value> =
        seen.statements.iter().map(|(sql, n)| (abbreviate(sql), json!(*n as f64 / per))).collect();
    json!({ "round_trips": seen.round_trips as f64 / per, "statements": seen.statement_count() as f64 / per,
            "by_statement": statements })
}

/// The first words of a statement, enough to tell it apart, with `{s}` for the bench's schema.
fn abbreviate(sql: &str) -> String {
    let mut sql = sql.to_owned();
    while let Some(at) = sql.find("\"cairn_bench_") {
        let end = sql[at + 1..].find('"').map_or(sql.len(), |e| at + e + 2);
        sql.replace_range(at..end, "{s}");
    }
    let short: String = sql.chars().take(100).collect();
    if short.len() < sql.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// `pg-round-trips`: one worker of each contender through the counting relay, claiming and
/// completing 300 items one at a time and 1,000 in batches: round trips and statements per
/// item, by statement.
pub fn round_trips(url: &str) -> Res {
    let mut admin = Client::connect(url, NoTls)?;
    drop_stale_schemas(&mut admin)?;
    let relay = relay(url)?;
    let via = relayed_url(url, relay.port())?;
    for (batch, items) in [(1u32, 300usize), (10, 1_000), (100, 1_000)] {
        for contender in ["cairn", "floor"] {
            let schema = fill_queue(&mut admin, url, contender, items)?;
            let done = if contender == "cairn" {
                let store = Store::open(cairn_url(&via, &schema.name))?;
                relay.take();
                cairn_drain(&store, "w0", batch)?
            } else {
                let mut floor = Floor::connect(&via, &schema.name)?;
                relay.take();
                floor.drain("w0", batch)?
            };
            let seen = relay.take();
            if done != items {
                return Err(format!("{contender}: drained {done} of {items}").into());
            }
            emit(
                json!({ "workload": "pg_round_trips", "contender": contender, "op": "claim+complete", "batch": batch, "items": items }),
                seen_json(&seen, items),
            );
        }
    }
    run_round_trips(&relay, &via, url)
}

/// Durable runs (issue 24): 300 steps recorded in a new run held by this process (no renewal
/// thread, so that only the steps are on the wire), replayed from the finished run, and
/// recorded in a resumed attempt; each after one step that prepares its statements.
fn run_round_trips(relay: &Relay, via: &str, url: &str) -> Res {
    const STEPS: usize = 300;
    let schema = Schema::fresh(url, "runs");
    let store = Store::open(cairn_url(via, &schema.name))?;
    let options = cairn::RunOptions::new().keep_alive(false).lease(LEASE);
    let step = |i: usize| move || Ok::<_, cairn::Error>(format!("result-{i}"));
    for replay in [false, true] {
        let mut run = store.run_with("bench", options.clone())?;
        if run.is_finished() != replay {
            return Err("runs: the run is not in the state the bench expects".into());
        }
        run.step("warm", step(STEPS))?;
        relay.take();
        for i in 0..STEPS {
            let got: String = run.step(&format!("step-{i}"), step(i))?;
            if got != format!("result-{i}") {
                return Err("runs: a step replayed another result".into());
            }
        }
        let seen = relay.take();
        let op = if replay { "run.step, replayed" } else { "run.step, recorded" };
        emit(
            json!({ "workload": "pg_round_trips", "contender": "cairn", "op": op, "items": STEPS }),
            seen_json(&seen, STEPS),
        );
        if !replay {
            run.finish()?;
        }
    }
    // A resumed attempt: its first attempt failed after one step, so each new step reads
    // whether an earlier attempt recorded it before recording it.
    let mut first = store.run_with("resumed", options.clone())?;
    first.step("warm", step(STEPS))?;
    first.fail("the bench's failed first attempt")?;
    let mut run = store.run_with("resumed", options)?;
    run.step("warm", step(STEPS))?;
    relay.take();
    for i in 0..STEPS {
        run.step(&format!("step-{i}"), step(i))?;
    }
    let seen = relay.take();
    emit(
        json!({ "workload": "pg_round_trips", "contender": "cairn", "op": "run.step, recorded in a resumed attempt", "items": STEPS }),
        seen_json(&seen, STEPS),
    );
    run.finish()?;
    Ok(())
}

//! `cairn-compare`: the Rust contenders of `bench/compare/run` on its workloads, one JSON line
//! per figure on stdout. Contenders: `cairn` (the library), `floor` (raw rusqlite with cached
//! statements, the same pragmas and the schema a careful engineer would write) and `json` (a
//! state file rewritten atomically, temp file and rename, on each update).
//!
//! ```text
//! cairn-compare cache    --dir DIR
//! cairn-compare ledger   --dir DIR --sizes 10000,1000000,10000000
//! cairn-compare stampede --dir DIR --procs 4 --compute-ms 100
//! cairn-compare overlap  --dir DIR --k 4 --ops 500
//! cairn-compare cli      --dir DIR --cairn BIN --hello BIN [--bkt BIN] [--sqlite3 BIN] [--rounds 300]
//! ```
//!
//! The PostgreSQL workloads (`pg-claims`, `pg-filter-new`, `pg-round-trips`) are in [`pg`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn::{Error, Store};
use rusqlite::{params, Connection};
use serde_json::json;

mod pg;
mod pgwire;

const TTL: Duration = Duration::from_secs(3600);
const ROUNDS: usize = 7;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("usage: cairn-compare cache|ledger|stampede|overlap --dir DIR [...]");
        eprintln!("       cairn-compare pg-claims|pg-filter-new|pg-round-trips --url postgres://... [...]");
        return ExitCode::from(2);
    };
    let opts: HashMap<&str, &str> = args[1..]
        .chunks(2)
        .filter_map(|p| Some((p[0].trim_start_matches("--"), p.get(1)?.as_str())))
        .collect();
    let run = || -> Res {
        let num = |name: &str, default: u64| opts.get(name).map_or(Ok(default), |v| v.parse());
        if let Some(pg) = cmd.strip_prefix("pg-") {
            let url = *opts.get("url").ok_or("--url postgres://... is required")?;
            let list = |name: &str, default: &str| -> Res<Vec<u64>> {
                let v = opts.get(name).unwrap_or(&default);
                Ok(v.split(',').map(str::parse).collect::<Result<_, _>>()?)
            };
            let usize_of = |v: u64| usize::try_from(v);
            return match pg {
                "claims" => pg::claims(
                    url,
                    usize_of(num("items", 5_000)?)?,
                    &list("ks", "1,4,8,16")?.into_iter().map(usize_of).collect::<Result<Vec<_>, _>>()?,
                    &list("batches", "1")?.into_iter().map(u32::try_from).collect::<Result<Vec<_>, _>>()?,
                    usize_of(num("rounds", 3)?)?,
                ),
                "worker" => pg::worker(
                    url,
                    opts.get("contender").ok_or("--contender")?,
                    opts.get("schema").ok_or("--schema")?,
                    opts.get("worker").ok_or("--worker")?,
                    u32::try_from(num("batch", 1)?)?,
                ),
                "filter-new" => {
                    pg::filter_new(url, usize_of(num("size", 1_000_000)?)?, usize_of(num("chunk", 1_000)?)?)
                }
                "round-trips" => pg::round_trips(url),
                other => Err(format!("unknown workload pg-{other}").into()),
            };
        }
        let dir = PathBuf::from(opts.get("dir").ok_or("--dir is required")?);
        match cmd.as_str() {
            "cache" => cache(&dir),
            "ledger" => {
                let sizes = opts.get("sizes").unwrap_or(&"10000,1000000,10000000");
                let sizes: Vec<usize> = sizes.split(',').map(str::parse).collect::<Result<_, _>>()?;
                ledger(&dir, &sizes)
            }
            "stampede" => stampede(&dir, num("procs", 4)?, num("compute-ms", 100)?),
            "stampede-worker" => stampede_worker(&dir, num("compute-ms", 100)?),
            "overlap" => overlap(&dir, num("k", 4)?, num("ops", 500)?),
            "overlap-worker" => overlap_worker(&dir, num("ops", 500)?),
            "cli" => {
                let tool = |name: &str| opts.get(name).map(PathBuf::from);
                cli(
                    &dir,
                    &CliTools {
                        cairn: tool("cairn").ok_or("--cairn is required")?,
                        hello: tool("hello").ok_or("--hello is required")?,
                        bkt: tool("bkt"),
                        sqlite3: tool("sqlite3"),
                    },
                    num("rounds", 300)?,
                )
            }
            other => Err(format!("unknown workload {other}").into()),
        }
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn-compare: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Per-operation time over `ROUNDS` rounds of `n` calls: median, fastest and slowest round.
fn measure(n: usize, mut f: impl FnMut(usize) -> Res) -> Res<serde_json::Value> {
    for i in 0..n.min(1000) {
        f(i)?; // warm-up
    }
    let mut per_op = Vec::with_capacity(ROUNDS);
    for r in 0..ROUNDS {
        let t = Instant::now();
        for i in 0..n {
            f(r * n + i)?;
        }
        per_op.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    per_op.sort_by(f64::total_cmp);
    Ok(json!({ "median_us": per_op[ROUNDS / 2], "min_us": per_op[0], "max_us": per_op[ROUNDS - 1], "n": n }))
}

fn emit(mut v: serde_json::Value, fields: serde_json::Value) {
    if let (Some(o), Some(f)) = (v.as_object_mut(), fields.as_object()) {
        for (k, x) in f {
            o.insert(k.clone(), x.clone());
        }
    }
    println!("{v}");
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn value() -> Vec<u8> {
    vec![b'x'; 100]
}

// ---------------------------------------------------------------- the cache

/// What every cache contender does.
trait CacheSide {
    fn get(&mut self, key: &str) -> Res<Option<Vec<u8>>>;
    fn set(&mut self, key: &str, v: &[u8]) -> Res;
    fn set_many(&mut self, items: &[String], v: &[u8]) -> Res;
}

struct CairnCache(Store);

impl CacheSide for CairnCache {
    fn get(&mut self, key: &str) -> Res<Option<Vec<u8>>> {
        Ok(self.0.cache("bench").get(key)?)
    }
    fn set(&mut self, key: &str, v: &[u8]) -> Res {
        Ok(self.0.cache("bench").set(key, v, TTL)?)
    }
    fn set_many(&mut self, items: &[String], v: &[u8]) -> Res {
        self.0.transaction(|tx| {
            for k in items {
                tx.cache("bench").set(k, v, TTL)?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(())
    }
}

/// The floor: what a careful engineer writes by hand on rusqlite.
struct Floor(Connection);

impl Floor {
    fn open(path: &Path) -> Res<Floor> {
        let c = Connection::open(path)?;
        c.busy_timeout(Duration::from_secs(5))?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "NORMAL")?;
        // The same pragmas as cairn's connections, page cache included: a floor, not a strawman.
        c.pragma_update(None, "cache_size", -16 * 1024)?;
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                                            expires_at INTEGER, PRIMARY KEY (ns, key));
             CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
             CREATE TABLE IF NOT EXISTS done (ns TEXT NOT NULL, id TEXT NOT NULL, done_at INTEGER NOT NULL,
                                              PRIMARY KEY (ns, id)) WITHOUT ROWID;",
        )?;
        Ok(Floor(c))
    }

    fn upsert(&self, key: &str, v: &[u8]) -> Res {
        self.0
            .prepare_cached(
                "INSERT INTO kv (ns, key, value, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            )?
            .execute(params!["bench", key, v, now_ms() + TTL.as_millis() as i64])?;
        Ok(())
    }
}

impl CacheSide for Floor {
    fn get(&mut self, key: &str) -> Res<Option<Vec<u8>>> {
        let mut st = self.0.prepare_cached(
            "SELECT value FROM kv WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )?;
        let mut rows = st.query(params!["bench", key, now_ms()])?;
        Ok(rows.next()?.map(|r| r.get(0)).transpose()?)
    }
    fn set(&mut self, key: &str, v: &[u8]) -> Res {
        self.upsert(key, v)
    }
    fn set_many(&mut self, items: &[String], v: &[u8]) -> Res {
        self.0.execute_batch("BEGIN IMMEDIATE")?;
        for k in items {
            self.upsert(k, v)?;
        }
        self.0.execute_batch("COMMIT")?;
        Ok(())
    }
}

/// A JSON state file: loaded once, rewritten whole (temp file, rename) after each update, as
/// scripts do. Its reads are dictionary lookups in memory and see no other process's writes,
/// so only its writes are comparable.
struct JsonFile {
    path: PathBuf,
    data: serde_json::Map<String, serde_json::Value>,
}

impl JsonFile {
    fn new(path: PathBuf) -> JsonFile {
        JsonFile { path, data: serde_json::Map::new() }
    }

    fn save(&self) -> Res {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.data)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    fn put(&mut self, key: &str, v: &[u8]) {
        let entry = json!({ "v": String::from_utf8_lossy(v), "exp": now_ms() + TTL.as_millis() as i64 });
        self.data.insert(key.to_owned(), entry);
    }
}

fn cache(dir: &Path) -> Res {
    const KEYS: usize = 10_000;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("https://example.com/page/{i}")).collect();
    let misses: Vec<String> = (0..KEYS).map(|i| format!("https://example.com/missing/{i}")).collect();
    let v = value();
    let mut sides: Vec<(&str, Box<dyn CacheSide>)> = vec![
        ("cairn", Box::new(CairnCache(Store::open(dir.join("cairn-cache.db"))?))),
        ("floor", Box::new(Floor::open(&dir.join("floor-cache.db"))?)),
    ];
    for (name, side) in &mut sides {
        side.set_many(&keys, &v)?;
        let tag = |op: &str| json!({ "workload": "cache", "contender": name, "op": op });
        emit(tag("get_hit"), measure(20_000, |i| side.get(&keys[i * 7 % KEYS]).map(drop))?);
        emit(tag("get_miss"), measure(20_000, |i| side.get(&misses[i * 7 % KEYS]).map(drop))?);
        emit(tag("set_ttl"), measure(2_000, |i| side.set(&keys[i * 7 % KEYS], &v))?);
        emit(tag("set_10k_tx"), measure(3, |_| side.set_many(&keys, &v))?);
    }

    let mut file = JsonFile::new(dir.join("state.json"));
    for k in &keys {
        file.put(k, &v);
    }
    file.save()?;
    let tag = |op: &str| json!({ "workload": "cache", "contender": "json", "op": op });
    emit(
        tag("set_ttl"),
        measure(200, |i| {
            file.put(&keys[i * 7 % KEYS], &v);
            file.save()
        })?,
    );
    emit(
        tag("set_10k_tx"),
        measure(3, |_| {
            for k in &keys {
                file.put(k, &v);
            }
            file.save()
        })?,
    );
    for op in ["get_hit", "get_miss"] {
        let reason = "a dictionary lookup in memory: no cross-process view, not comparable";
        emit(tag(op), json!({ "skipped": reason }));
    }
    Ok(())
}

// ---------------------------------------------------------------- the ledger

trait LedgerSide {
    fn fill(&mut self, from: usize, to: usize) -> Res;
    fn mark(&mut self, id: &str) -> Res;
    fn is_done(&mut self, id: &str) -> Res<bool>;
    fn filter_new(&mut self, ids: &[String]) -> Res<usize>;
}

fn id(i: usize) -> String {
    format!("order-{i:09}")
}

struct CairnLedger(Store);

impl LedgerSide for CairnLedger {
    fn fill(&mut self, from: usize, to: usize) -> Res {
        let ids: Vec<String> = (from..to).map(id).collect();
        for chunk in ids.chunks(100_000) {
            self.0.ledger("bench").mark_done_many(chunk)?;
        }
        Ok(())
    }
    fn mark(&mut self, id: &str) -> Res {
        self.0.ledger("bench").mark_done(id)?;
        Ok(())
    }
    fn is_done(&mut self, id: &str) -> Res<bool> {
        Ok(self.0.ledger("bench").is_done(id)?)
    }
    fn filter_new(&mut self, ids: &[String]) -> Res<usize> {
        Ok(self.0.ledger("bench").filter_new(ids)?.len())
    }
}

impl Floor {
    fn insert_done(&self, id: &str) -> Res {
        self.0
            .prepare_cached("INSERT OR IGNORE INTO done (ns, id, done_at) VALUES ('bench', ?1, ?2)")?
            .execute(params![id, now_ms()])?;
        Ok(())
    }
}

impl LedgerSide for Floor {
    fn fill(&mut self, from: usize, to: usize) -> Res {
        for start in (from..to).step_by(100_000) {
            self.0.execute_batch("BEGIN IMMEDIATE")?;
            for i in start..(start + 100_000).min(to) {
                self.insert_done(&id(i))?;
            }
            self.0.execute_batch("COMMIT")?;
        }
        Ok(())
    }
    fn mark(&mut self, id: &str) -> Res {
        self.insert_done(id)
    }
    fn is_done(&mut self, id: &str) -> Res<bool> {
        let mut st = self.0.prepare_cached("SELECT 1 FROM done WHERE ns = 'bench' AND id = ?1")?;
        Ok(st.exists([id])?)
    }
    fn filter_new(&mut self, ids: &[String]) -> Res<usize> {
        // One read transaction for the batch, as a careful engineer would.
        self.0.execute_batch("BEGIN")?;
        let mut n = 0;
        for i in ids {
            n += usize::from(!self.is_done(i)?);
        }
        self.0.execute_batch("COMMIT")?;
        Ok(n)
    }
}

/// A JSON file of done ids, rewritten whole after each mark.
struct JsonLedger {
    file: PathBuf,
    done: HashSet<String>,
}

impl LedgerSide for JsonLedger {
    fn fill(&mut self, from: usize, to: usize) -> Res {
        self.done.extend((from..to).map(id));
        self.save()
    }
    fn mark(&mut self, id: &str) -> Res {
        self.done.insert(id.to_owned());
        self.save()
    }
    fn is_done(&mut self, id: &str) -> Res<bool> {
        Ok(self.done.contains(id))
    }
    fn filter_new(&mut self, ids: &[String]) -> Res<usize> {
        Ok(ids.iter().filter(|i| !self.done.contains(*i)).count())
    }
}

impl JsonLedger {
    fn save(&self) -> Res {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.done)?)?;
        std::fs::rename(&tmp, &self.file)?;
        Ok(())
    }
}

fn ledger(dir: &Path, sizes: &[usize]) -> Res {
    let mut sides: Vec<(&str, Box<dyn LedgerSide>, Vec<usize>)> = vec![
        ("cairn", Box::new(CairnLedger(Store::open(dir.join("cairn-ledger.db"))?)), sizes.to_vec()),
        ("floor", Box::new(Floor::open(&dir.join("floor-ledger.db"))?), sizes.to_vec()),
        // A million ids make a 20 MB file rewritten per mark: the point is made at 100k.
        (
            "json",
            Box::new(JsonLedger { file: dir.join("ledger.json"), done: HashSet::new() }),
            vec![10_000, 100_000],
        ),
    ];
    for (name, side, sizes) in &mut sides {
        let mut filled = 0;
        for &size in sizes.iter() {
            side.fill(filled, size)?;
            filled = size;
            let tag = |op: &str| json!({ "workload": "ledger", "contender": name, "op": op, "size": size });
            let marks = if *name == "json" { 20 } else { 2_000 };
            let mut next = 0usize;
            emit(
                tag("mark"),
                measure(marks, |_| {
                    next += 1;
                    side.mark(&format!("new-{size}-{next}"))
                })?,
            );
            emit(
                tag("is_done"),
                measure(20_000, |i| side.is_done(&id(i.wrapping_mul(7919) % size)).map(drop))?,
            );
            let batch: Vec<String> = (0..10_000)
                .map(|i| if i % 2 == 0 { id(i * 97 % size) } else { format!("fresh-{i}") })
                .collect();
            emit(tag("filter_new_10k"), measure(3, |_| side.filter_new(&batch).map(drop))?);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- processes

fn me() -> Res<PathBuf> {
    Ok(std::env::current_exe()?)
}

fn stampede(dir: &Path, procs: u64, compute_ms: u64) -> Res {
    let db = dir.join("stampede.db");
    Store::open(&db)?; // created before the race, as a cron job's store would be
    let t = Instant::now();
    let children: Vec<_> = (0..procs)
        .map(|_| {
            Command::new(me()?)
                .args(["stampede-worker", "--dir"])
                .arg(dir)
                .args(["--compute-ms", &compute_ms.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(Into::into)
        })
        .collect::<Res<_>>()?;
    let mut computations = 0;
    for c in children {
        let out = c.wait_with_output()?;
        computations += String::from_utf8_lossy(&out.stdout).matches("computed").count();
    }
    emit(
        json!({ "workload": "stampede", "contender": "cairn", "procs": procs, "compute_ms": compute_ms }),
        json!({ "computations": computations, "total_ms": t.elapsed().as_secs_f64() * 1e3 }),
    );
    Ok(())
}

fn stampede_worker(dir: &Path, compute_ms: u64) -> Res {
    let store = Store::open(dir.join("stampede.db"))?;
    let v: String = store.cache("s").get_or_set_with("report", None, || {
        std::thread::sleep(Duration::from_millis(compute_ms));
        println!("computed");
        Ok::<_, Error>("42".to_owned())
    })?;
    assert_eq!(v, "42");
    Ok(())
}

fn overlap(dir: &Path, k: u64, ops: u64) -> Res {
    let db = dir.join(format!("overlap-{k}.db"));
    Store::open(&db)?;
    let t = Instant::now();
    let children: Vec<_> = (0..k)
        .map(|_| {
            Command::new(me()?)
                .args(["overlap-worker", "--dir"])
                .arg(&db)
                .args(["--ops", &ops.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(Into::into)
        })
        .collect::<Res<_>>()?;
    let mut errors = 0u64;
    for c in children {
        let out = c.wait_with_output()?;
        errors += String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().unwrap_or(ops);
    }
    let secs = t.elapsed().as_secs_f64();
    let total: i64 = Store::open(&db)?.cache("c").get("n")?.unwrap_or(0);
    let acknowledged = k * ops - errors;
    emit(
        json!({ "workload": "overlap", "contender": "cairn", "k": k, "ops": ops }),
        json!({ "ops_per_s": (k * ops) as f64 / secs, "errors": errors,
                "lost": acknowledged as i64 - total, "final": total }),
    );
    Ok(())
}

/// `dir` is the database file here. Prints how many increments failed.
fn overlap_worker(db: &Path, ops: u64) -> Res {
    let store = Store::open(db)?;
    let mut errors = 0;
    for _ in 0..ops {
        if store.cache("c").incr("n", 1, None).is_err() {
            errors += 1;
        }
    }
    println!("{errors}");
    Ok(())
}

// ---------------------------------------------------------------- whole processes

/// The binaries of the command-line rows.
struct CliTools {
    cairn: PathBuf,
    /// A Rust binary that prints a line: the start-up floor.
    hello: PathBuf,
    bkt: Option<PathBuf>,
    sqlite3: Option<PathBuf>,
}

/// Whole invocations, as a shell script makes them: each figure is spawning the process,
/// its start-up, its work and its exit, timed from the parent. The contenders of every row
/// run in alternation, one call each per round, so that a machine busy with something else
/// slows them alike; medians and quartiles of `rounds` calls.
fn cli(dir: &Path, tools: &CliTools, rounds: u64) -> Res {
    let db = dir.join("cli.db");
    let bkt_dir = dir.join("bkt");
    let cairn = |args: &[&str]| {
        let mut c = Command::new(&tools.cairn);
        c.arg("--db").arg(&db).args(args);
        c
    };
    let select = "SELECT value FROM cairn_cache WHERE ns = 'default' AND key = 'greeting'";
    // (row, contender, command)
    let mut rows: Vec<(&str, &str, Command)> = Vec::new();
    rows.push(("startup", "cairn", {
        let mut c = Command::new(&tools.cairn);
        c.arg("--version");
        c
    }));
    rows.push(("startup", "rust-hello", Command::new(&tools.hello)));
    rows.push(("cache_get", "cairn", cairn(&["cache", "get", "greeting"])));
    if let Some(sqlite3) = &tools.sqlite3 {
        let mut c = Command::new(sqlite3);
        c.arg(&db).arg(select);
        rows.push(("cache_get", "sqlite3", c));
    }
    // The least a read of the same row from a Rust process on SQLite costs (the binary beside
    // cairn-hello), for the memo row: how much of cairn's replay SQLite itself takes.
    let floor = tools.hello.with_file_name("cairn-read-floor");
    if floor.is_file() {
        let mut c = Command::new(floor);
        c.arg(&db).args(["default", "greeting"]);
        rows.push(("memo_hit", "rusqlite-read", c));
    }
    rows.push(("memo_hit", "cairn", cairn(&["memo", "--ttl", "1h", "--", "echo", "hello"])));
    if let Some(bkt) = &tools.bkt {
        let mut c = Command::new(bkt);
        c.arg("--cache-dir").arg(&bkt_dir).args(["--ttl", "1h", "--", "echo", "hello"]);
        rows.push(("memo_hit", "bkt", c));
    }
    // The value, the memo's result and bkt's are stored before the first round.
    spawn_ok(&mut cairn(&["cache", "set", "greeting", "hello"]))?;
    for (_, _, cmd) in &mut rows {
        spawn_ok(cmd)?;
    }
    // Per call: wall time, and the CPU time (user + system) the child used, which a machine
    // busy with other work disturbs much less than wall time.
    let mut wall: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds as usize); rows.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds as usize); rows.len()];
    for _ in 0..rounds {
        for (i, (_, _, cmd)) in rows.iter_mut().enumerate() {
            let before = children_cpu_us()?;
            let t = Instant::now();
            spawn_ok(cmd)?;
            wall[i].push(t.elapsed().as_secs_f64() * 1e6);
            cpu[i].push(children_cpu_us()? - before);
        }
    }
    for (((row, contender, _), mut w), mut c) in rows.into_iter().zip(wall).zip(cpu) {
        w.sort_by(f64::total_cmp);
        c.sort_by(f64::total_cmp);
        let at = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        emit(
            json!({ "workload": "cli", "op": row, "contender": contender, "rounds": rounds }),
            json!({ "median_us": at(&w, 0.5), "q1_us": at(&w, 0.25), "q3_us": at(&w, 0.75),
                    "cpu_median_us": at(&c, 0.5) }),
        );
    }
    if tools.bkt.is_none() {
        emit(json!({ "workload": "cli", "contender": "bkt" }), json!({ "skipped": "bkt is not installed" }));
    }
    if tools.sqlite3.is_none() {
        emit(
            json!({ "workload": "cli", "contender": "sqlite3" }),
            json!({ "skipped": "sqlite3 is not installed" }),
        );
    }
    Ok(())
}

/// User and system CPU time of the children waited for so far, in µs.
fn children_cpu_us() -> Res<f64> {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e6 + t.tv_usec() as f64;
    Ok(us(u.user_time()) + us(u.system_time()))
}

/// Run `cmd` with no input and its output discarded; an error unless it exits 0.
fn spawn_ok(cmd: &mut Command) -> Res {
    let status = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    if !status.success() {
        return Err(format!("{cmd:?} exited with {status}").into());
    }
    Ok(())
}

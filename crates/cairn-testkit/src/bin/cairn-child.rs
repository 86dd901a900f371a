//! The child process of cairn's crash and multi-process tests. Each subcommand runs one
//! scripted workload against a store and reports progress on stdout, one line per event, so
//! the parent can SIGKILL it at any point and then check what survived.
//!
//! Usage: `cairn-child <workload> --db PATH [--name value ...]`; `PATH` may be a PostgreSQL URL
//! (`postgres://host/db?cairn_schema=S`), for the workloads that run on a server too.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use cairn::{Clock, Error, Migrations, Options, Run, RunOptions, Store, SystemClock, M};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((workload, rest)) = args.split_first() else {
        eprintln!("usage: cairn-child <workload> --db PATH [--name value ...]");
        return ExitCode::from(2);
    };
    let opts: HashMap<&str, &str> =
        rest.chunks(2).filter_map(|c| Some((c[0].strip_prefix("--")?, c.get(1)?.as_str()))).collect();
    let result = match workload.as_str() {
        "crash-writer" => crash_writer(&opts),
        "incr" => incr(&opts),
        "mixed" => mixed(&opts),
        "stampede" => stampede(&opts),
        "migrate" => migrate(&opts),
        "hold" => hold(&opts),
        "ledger-job" => ledger_job(&opts),
        "batch-job" => batch_job(&opts),
        "migrate-steps" => migrate_steps(&opts),
        "claim-worker" => claim_worker(&opts),
        "lock-hold" => lock_hold(&opts),
        "fork-lock" => fork_lock(&opts),
        "claim-hold" => claim_hold(&opts),
        "conn-wait" => conn_wait(&opts),
        "migrate-scope" => migrate_scope(&opts),
        "run-steps" => run_steps(&opts),
        "run-stale" => run_stale(&opts),
        "limit-take" => limit_take(&opts),
        other => Err(Error::InvalidInput(format!("unknown workload {other}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn-child: {e} ({:?})", e.kind());
            ExitCode::from(3)
        }
    }
}

fn arg<'a>(opts: &HashMap<&str, &'a str>, name: &str) -> Result<&'a str, Error> {
    opts.get(name).copied().ok_or_else(|| Error::InvalidInput(format!("missing --{name}")))
}

fn num(opts: &HashMap<&str, &str>, name: &str, default: u64) -> Result<u64, Error> {
    opts.get(name)
        .map_or(Ok(default), |v| v.parse().map_err(|_| Error::InvalidInput(format!("--{name} {v}"))))
}

fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    // The parent may already be gone; a test child has nothing better to do than stop.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Multi-statement transactions, forever: transaction `i` writes `i/a`, `i/b` (a value whose
/// size varies so that commits span different numbers of pages), bumps `count` and sets
/// `last`, then reports `COMMIT i`; `BEGIN i` is printed mid-transaction, so the parent can
/// tell which kills landed inside one. A restart continues after the last committed `i`.
fn crash_writer(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    let cap = num(opts, "size-cap", 24_000)? as usize;
    let mut i = store.cache("crash").get::<i64>("count")?.unwrap_or(0);
    say(format_args!("READY {i}"));
    loop {
        let size = 16 + ((i as usize * 7919) % cap);
        store.transaction(|tx| {
            let c = tx.cache("crash");
            c.set(&format!("{i}/a"), vec![(i % 251) as u8; size], None)?;
            say(format_args!("BEGIN {i}"));
            c.set(&format!("{i}/b"), vec![(i % 251) as u8; size / 2 + 1], None)?;
            c.incr("count", 1, None)?;
            c.set("last", i, None)?;
            Ok::<_, Error>(())
        })?;
        say(format_args!("COMMIT {i}"));
        i += 1;
    }
}

/// `--n` read-modify-write updates of one counter, each its own transaction: `--mode incr`
/// through `Cache::incr`, `--mode rmw` through a get and a set in an explicit transaction.
fn incr(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Options::new().busy_timeout(Duration::from_secs(30)).open(arg(opts, "db")?)?;
    let key = arg(opts, "key")?;
    let rmw = opts.get("mode") == Some(&"rmw");
    for _ in 0..num(opts, "n", 100)? {
        if rmw {
            store.transaction(|tx| {
                let c = tx.cache("overlap");
                let v = c.get::<i64>(key)?.unwrap_or(0);
                c.set(key, v + 1, None)
            })?;
        } else {
            store.cache("overlap").incr(key, 1, None)?;
        }
    }
    say(format_args!("DONE"));
    Ok(())
}

/// `--n` transactions with the store's default options (a 5 s busy timeout), each touching
/// every structure: the shared counter `total`, a ledger mark of `<worker>-<i>`, this worker's
/// cache entry and its checkpoint. After each, reads as a job would make them between writes,
/// checked: its own mark and checkpoint are visible, and `total` never goes backwards. Any
/// error (a busy one included) ends the child with status 3. Prints `DONE <elapsed ms>`.
fn mixed(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    let worker = arg(opts, "worker")?;
    let started = std::time::Instant::now();
    let mut seen_total = 0;
    for i in 0..num(opts, "n", 100)? {
        let id = format!("{worker}-{i}");
        store.transaction(|tx| {
            tx.cache("mixed").incr("total", 1, None)?;
            tx.ledger("mixed").mark_done(&id)?;
            tx.cache("mixed").set(&format!("{worker}/last"), i, None)?;
            tx.checkpoint(worker).set(i)
        })?;
        let total = store.cache("mixed").get::<i64>("total")?.unwrap_or(0);
        let own_checkpoint = store.checkpoint(worker).get::<u64>()?;
        let own_mark_pending = !store.ledger("mixed").filter_new([id.as_str()])?.is_empty();
        if total <= seen_total || own_checkpoint != Some(i) || own_mark_pending {
            return Err(Error::InvalidInput(format!(
                "after commit {i}: total {total} (before: {seen_total}), checkpoint {own_checkpoint:?}, \
                 own mark pending: {own_mark_pending}"
            )));
        }
        seen_total = total;
    }
    say(format_args!("DONE {}", started.elapsed().as_millis()));
    Ok(())
}

/// The system clock, saying `WAITING` the first time cairn sleeps on it: cairn sleeps only
/// while it polls for another process's work (a cache fill in progress), so the line tells
/// the parent that this process found the computation running and waits for it.
#[derive(Debug, Default)]
struct Announcing(AtomicBool);

impl Clock for Announcing {
    fn now_millis(&self) -> i64 {
        SystemClock.now_millis()
    }

    fn sleep(&self, d: Duration) {
        if !self.0.swap(true, Ordering::Relaxed) {
            say(format_args!("WAITING"));
        }
        SystemClock.sleep(d);
    }
}

/// `get_or_set_with` on one key; the computation appends a line to `--log` and takes
/// `--ms` milliseconds, or with `--ms stdin` lasts until stdin closes. Prints `WAITING` if
/// it waits for another process's computation, then the value obtained.
fn stampede(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let fill = Duration::from_millis(num(opts, "fill-ms", 30_000)?);
    let store = Options::new().fill_timeout(fill).clock(Announcing::default()).open(arg(opts, "db")?)?;
    let log = arg(opts, "log")?;
    let ms = match opts.get("ms") {
        Some(&"stdin") => None,
        _ => Some(num(opts, "ms", 200)?),
    };
    let value: String = store.cache("stampede").get_or_set_with(arg(opts, "key")?, None, || {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        writeln!(f, "computed by {}", std::process::id()).map_err(|e| Error::InvalidInput(e.to_string()))?;
        match ms {
            Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
            None => {
                std::io::copy(&mut std::io::stdin(), &mut std::io::sink())
                    .map_err(|e| Error::InvalidInput(e.to_string()))?;
            }
        }
        Ok::<_, Error>(format!("value from {}", std::process::id()))
    })?;
    say(format_args!("VALUE {value}"));
    Ok(())
}

/// Four migration steps on a plain file; with `--die-at N`, step N does part of its work
/// and then the process aborts, as a crash inside a step would.
fn migrate(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let die_at = num(opts, "die-at", 0)?;
    let step = |n: u64, sql: &'static str| {
        M::up_with(move |db| {
            db.execute_batch(sql)?;
            if n == die_at {
                std::process::abort();
            }
            Ok(())
        })
    };
    let migrations = Migrations::new(vec![
        step(1, "CREATE TABLE one (x); INSERT INTO one VALUES (1);"),
        step(2, "CREATE TABLE two (x); INSERT INTO two VALUES (2);"),
        step(3, "CREATE TABLE three (x); INSERT INTO three VALUES (3);"),
        step(4, "CREATE TABLE four (x); INSERT INTO four VALUES (4);"),
    ]);
    let report = migrations.apply_to_file(arg(opts, "db")?)?;
    say(format_args!("MIGRATED {} -> {}", report.from, report.to));
    Ok(())
}

/// Open the store, write once, report `READY`, and keep it open until stdin closes: lets the
/// parent inspect the -wal and -shm files while they exist.
fn hold(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    store.cache("hold").set("k", "v", None)?;
    say(format_args!("READY"));
    let mut sink = String::new();
    while std::io::stdin().lock().read_line(&mut sink).map_err(|e| Error::InvalidInput(e.to_string()))? > 0 {}
    Ok(())
}

/// A resumable job over ids `0..--n`: each item's mark, a per-item work counter and the job's
/// checkpoint (how many items are behind it) commit in one transaction, and `DONE i` is
/// printed after each commit. Restarted, it resumes from the checkpoint and skips done ids.
fn ledger_job(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    let n = num(opts, "n", 1000)?;
    let start = store.checkpoint("job").get::<u64>()?.unwrap_or(0);
    say(format_args!("RESUME {start}"));
    for i in start..n {
        let id = i.to_string();
        if !store.ledger("job").filter_new([id.as_str()])?.is_empty() {
            let newly = store.transaction(|tx| {
                let newly = tx.ledger("job").mark_done(&id)?;
                tx.cache("work").incr(&id, 1, None)?;
                tx.checkpoint("job").set(i + 1)?;
                Ok::<_, Error>(newly)
            })?;
            if newly {
                say(format_args!("DONE {i}"));
            }
        }
    }
    say(format_args!("FINISHED"));
    Ok(())
}

/// A resumable job over ids `0..--n` in batches of 1 to `--max-batch` ids: each batch's
/// marks, one work counter per item and the job's checkpoint (the first id not yet done)
/// commit in one transaction. `BEGIN end` is printed inside the transaction, after the marks;
/// `BATCH end` after the commit. Restarted, it resumes from the checkpoint.
fn batch_job(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    let n = num(opts, "n", 20_000)?;
    let max = num(opts, "max-batch", 300)?.max(1);
    let mut start = store.checkpoint("batch").get::<u64>()?.unwrap_or(0);
    say(format_args!("RESUME {start}"));
    while start < n {
        // Batch sizes vary so that commits span different numbers of pages.
        let end = (start + 1 + start.wrapping_mul(7919) % max).min(n);
        let ids: Vec<String> = (start..end).map(|i| i.to_string()).collect();
        let fresh = store.ledger("batch").filter_new(&ids)?;
        store.transaction(|tx| {
            tx.ledger("batch").mark_done_many(&fresh)?;
            say(format_args!("BEGIN {end}"));
            let work = tx.cache("work");
            for id in &fresh {
                work.incr(id, 1, None)?;
            }
            tx.checkpoint("batch").set(end)
        })?;
        say(format_args!("BATCH {end}"));
        start = end;
    }
    say(format_args!("FINISHED"));
    Ok(())
}

/// Apply the steps of [`torture_migrations`](cairn_testkit::torture_migrations) one commit at a time, printing `AT k` after the
/// commit of step `k`: with `--scope S`, to a cairn store at `--db` (created, with cairn's own
/// schema migrations, if missing) under that scope; without, to a plain SQLite file's
/// user_version.
fn migrate_steps(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let path = arg(opts, "db")?;
    let steps = num(opts, "steps", 12)? as i64;
    let all = cairn_testkit::torture_migrations(steps, |k| say(format_args!("STEP {k}")));
    let store = match opts.get("scope") {
        Some(scope) => Some((Store::open(path)?, *scope)),
        None => None,
    };
    let current = match &store {
        Some((store, scope)) => store.migration_status(scope, &all)?.current,
        None => all.status_of_file(path)?.current,
    };
    say(format_args!("OPEN {current}"));
    for k in current + 1..=steps {
        // A list that ends at step k: each call applies one step, one transaction, one report.
        let upto = cairn_testkit::torture_migrations(k, |k| say(format_args!("STEP {k}")));
        let report = match &store {
            Some((store, scope)) => store.migrate(scope, &upto)?,
            None => upto.apply_to_file(path)?,
        };
        say(format_args!("AT {}", report.to));
    }
    say(format_args!("MIGRATED"));
    Ok(())
}

/// A queue worker: claims items with `--lease-ms` leases, "works" `--work-ms` on each, then
/// completes the claim and bumps the item's work counter in one transaction. Prints `READY`
/// once the store is open, `DONE id` per completion, and exits when nothing is left to claim
/// or pending.
fn claim_worker(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Options::new().busy_timeout(Duration::from_secs(30)).open(arg(opts, "db")?)?;
    let worker = arg(opts, "worker")?;
    let lease = Duration::from_millis(num(opts, "lease-ms", 500)?);
    let work = Duration::from_millis(num(opts, "work-ms", 2)?);
    say(format_args!("READY"));
    loop {
        let Some(claim) = store.ledger("queue").claim_next(worker, lease)? else {
            let c = store.ledger("queue").counts()?;
            if c.pending + c.claimed == 0 {
                say(format_args!("IDLE"));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20)); // others hold the rest: poll again
            continue;
        };
        say(format_args!("CLAIMED {}", claim.id()));
        std::thread::sleep(work); // the work: a window for kills to land holding a claim
        let done = store.transaction(|tx| {
            tx.ledger("queue").complete(&claim)?;
            tx.cache("work").incr(claim.id(), 1, None)
        });
        match done {
            Ok(_) => say(format_args!("DONE {}", claim.id())),
            Err(e) if e.kind() == cairn::ErrorKind::LeaseLost => say(format_args!("LOST {}", claim.id())),
            Err(e) => return Err(e),
        }
    }
}

/// Take the lock `--name` for `--ttl-ms` and hold it until stdin closes (or the process is
/// killed). Prints `LOCKED`, or `HELD` and exits 1 if another holder has it.
fn lock_hold(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    let ttl = Duration::from_millis(num(opts, "ttl-ms", 60_000)?);
    let Some(guard) = store.try_lock(arg(opts, "name")?, ttl)? else {
        say(format_args!("HELD"));
        std::process::exit(1);
    };
    say(format_args!("LOCKED"));
    let mut sink = String::new();
    while std::io::stdin().lock().read_line(&mut sink).map_err(|e| Error::InvalidInput(e.to_string()))? > 0 {}
    drop(guard);
    say(format_args!("RELEASED"));
    Ok(())
}

/// A process that took a lock (so cairn knows who it is) forks; the child opens the store
/// again and takes a lock of its own, reports the pid the lock row names (`CHILD pid holder`),
/// and holds it until its stdin closes, then dies without releasing it (abort). The parent
/// reports `PARENT pid` and exits at once.
fn fork_lock(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    use nix::unistd::{fork, ForkResult};
    let db = arg(opts, "db")?;
    let store = Store::open(db)?;
    let parent_lock = store.try_lock("parent", Duration::from_secs(3600))?;
    drop(parent_lock);
    drop(store);
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim().to_owned())));
    if threads.as_deref() != Some("1") {
        return Err(Error::InvalidInput(format!(
            "fork-lock must fork a single-threaded process; threads: {threads:?}"
        )));
    }
    // SAFETY: this process has exactly one thread (checked just above through /proc), so the
    // child inherits no lock held by another thread and may run any code, as after exec.
    #[allow(unsafe_code)]
    let forked = unsafe { fork() }.map_err(|e| Error::InvalidInput(format!("fork: {e}")))?;
    match forked {
        ForkResult::Parent { .. } => {
            say(format_args!("PARENT {}", std::process::id()));
            Ok(())
        }
        ForkResult::Child => {
            let store = Store::open(db)?;
            let guard = store.try_lock("child", Duration::from_secs(3600))?;
            let holder = store.lock_holder("child")?.map_or(0, |h| h.pid);
            say(format_args!("CHILD {} {holder} {}", std::process::id(), guard.is_some()));
            let mut sink = String::new();
            while std::io::stdin()
                .lock()
                .read_line(&mut sink)
                .map_err(|e| Error::InvalidInput(e.to_string()))?
                > 0
            {}
            std::process::abort();
        }
    }
}

/// Claims the next item of `--ns` for `--worker` with an hour's lease, reports `CLAIMED id`
/// (or `NONE`), and holds it until stdin closes. With `--lease-only 1` the claim is not tied to
/// this process.
fn claim_hold(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    let mut ledger = store.ledger(arg(opts, "ns")?);
    if num(opts, "lease-only", 0)? == 1 {
        ledger = ledger.holder(cairn::ClaimHolder::LeaseOnly);
    }
    match ledger.claim_next(arg(opts, "worker")?, Duration::from_secs(3600))? {
        Some(claim) => say(format_args!("CLAIMED {}", claim.id())),
        None => say(format_args!("NONE")),
    }
    let mut sink = String::new();
    while std::io::stdin().lock().read_line(&mut sink).map_err(|e| Error::InvalidInput(e.to_string()))? > 0 {}
    Ok(())
}

/// The server process behind a store on PostgreSQL (`SELECT pg_backend_pid()`), for the parent
/// to end it; 0 for a file.
fn backend_pid(store: &Store, in_tx: Option<&cairn::Tx<'_>>) -> Result<i64, Error> {
    if store.journal_mode() != "postgres" {
        return Ok(0);
    }
    let rows = match in_tx {
        Some(tx) => tx.query("SELECT pg_backend_pid()", &[])?,
        None => store.query("SELECT pg_backend_pid()", &[])?,
    };
    match rows.first().and_then(|r| r.first()) {
        Some(cairn::SqlValue::Integer(pid)) => Ok(*pid),
        other => Err(Error::InvalidInput(format!("pg_backend_pid() gave {other:?}"))),
    }
}

/// Wait until stdin closes.
fn until_stdin_closes() -> Result<(), Error> {
    std::io::copy(&mut std::io::stdin(), &mut std::io::sink())
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
    Ok(())
}

fn outcome<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("FAILED {:?}: {e}", e.kind()),
    }
}

/// A store whose connection the parent ends from the server's side. With `--in-tx 1`: begins
/// a transaction, writes a cache entry (`c/k`), a ledger mark (`l/1`) and a checkpoint (`j`)
/// in it, prints `OPEN <backend pid>`, waits for stdin to close, writes once more (`c/k2`)
/// and commits: prints `TX ok` or `TX FAILED <kind>: <message>`. Without: writes `c/k`,
/// prints `OPEN <backend pid>`, waits, then prints `NEXT ok` or `NEXT FAILED ...` for one
/// more write (`c/k2`). Either way, one write after that: `AFTER ok` or `AFTER FAILED ...`.
fn conn_wait(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    if num(opts, "in-tx", 0)? == 1 {
        let done = store.transaction(|tx| {
            tx.cache("c").set("k", "in the transaction", None)?;
            tx.ledger("l").mark_done("1")?;
            tx.checkpoint("j").set("p")?;
            say(format_args!("OPEN {}", backend_pid(&store, Some(tx))?));
            until_stdin_closes()?;
            tx.cache("c").set("k2", "in the transaction", None)
        });
        say(format_args!("TX {}", outcome(&done)));
    } else {
        store.cache("c").set("k", "before", None)?;
        say(format_args!("OPEN {}", backend_pid(&store, None)?));
        until_stdin_closes()?;
        say(format_args!("NEXT {}", outcome(&store.cache("c").set("k2", "next", None))));
    }
    say(format_args!("AFTER {}", outcome(&store.cache("c").set("after", "after", None))));
    Ok(())
}

/// `--steps` steps (4 by default) under scope `--scope`, each inserting its number into the
/// users' table `migrated` (made by step 1); each prints `STEP k` as it runs, and step
/// `--hold-step` then waits for stdin to close, inside its transaction. Prints `OPEN <backend
/// pid>` once the store is open, then `APPLIED k k ...` (the steps this process applied).
fn migrate_scope(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    let hold = num(opts, "hold-step", 0)?;
    say(format_args!("OPEN {}", backend_pid(&store, None)?));
    let steps: Vec<M<'_>> = (1..=num(opts, "steps", 4)?)
        .map(|k| {
            M::up_with(move |db| {
                if k == 1 {
                    db.execute_batch("CREATE TABLE migrated (step INTEGER NOT NULL)")?;
                }
                say(format_args!("STEP {k}"));
                if k == hold {
                    until_stdin_closes()?;
                }
                db.execute(&format!("INSERT INTO migrated VALUES ({k})"), &[])?;
                Ok(())
            })
        })
        .collect();
    let report = store.migrate(arg(opts, "scope")?, &Migrations::new(steps))?;
    let applied: Vec<String> = report.applied.iter().map(i64::to_string).collect();
    let line = format!("APPLIED {}", applied.join(" "));
    say(format_args!("{}", line.trim_end()));
    Ok(())
}

/// How many steps of a `run-steps` run (`s000` to `s099`) commit their writes with their record
/// (`Run::step_tx`): every fifth, `s004`, `s009`, ...
fn is_tx_step(i: u64) -> bool {
    i % 5 == 4
}

/// Step `i` of a `run-steps` run, executed by `exec` (a name for this execution: the attempt
/// and the pid): the execution appends `s<i> <exec>` to the side file `log` and syncs it before
/// returning the value `s<i> by <exec>`; printed `BEGIN s<i>` as it starts executing. A step
/// of [`is_tx_step`] also, in its transaction, bumps the cache counter `<run>` of namespace
/// `torture` and marks `<run>/s<i>` done in ledger `torture`. Returns the step's value,
/// executed or replayed.
fn torture_step(run: &mut Run<'_>, i: u64, exec: &str, log: &str) -> Result<String, Error> {
    let name = format!("s{i:03}");
    let execute = || -> Result<String, Error> {
        say(format_args!("BEGIN {name}"));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .map_err(|e| Error::InvalidInput(format!("{log}: {e}")))?;
        // One write(2): a kill leaves the whole line or none of it.
        f.write_all(format!("{name} {exec}\n").as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| Error::InvalidInput(format!("{log}: {e}")))?;
        Ok(format!("{name} by {exec}"))
    };
    if is_tx_step(i) {
        let id = run.id().to_owned();
        run.step_tx(&name, |tx| {
            let value = execute()?;
            tx.cache("torture").incr(&id, 1, None)?;
            tx.ledger("torture").mark_done(&format!("{id}/{name}"))?;
            Ok(value)
        })
    } else {
        run.step(&name, execute)
    }
}

/// The run `--run` of `--steps` steps (100 by default; see [`torture_step`]), taken with a lease
/// of `--lease-ms` (waiting up to 30 s for another attempt), then finished. Prints `READY
/// <attempt>` once it holds the run, `STEP s<i> <value>` as each step returns, and `FINISHED`.
/// With `--pause-after N`, prints `PAUSED` after N steps and waits, holding the run, until
/// stdin closes.
fn run_steps(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Options::new().busy_timeout(Duration::from_secs(30)).open(arg(opts, "db")?)?;
    let log = arg(opts, "log")?;
    let lease = Duration::from_millis(num(opts, "lease-ms", 60_000)?);
    let pause = opts.get("pause-after").map(|_| num(opts, "pause-after", 0)).transpose()?;
    let mut run =
        store.run_with(arg(opts, "run")?, RunOptions::new().lease(lease).wait(Duration::from_secs(30)))?;
    let exec = format!("a{}-p{}", run.attempt(), std::process::id());
    say(format_args!("READY {}", run.attempt()));
    for i in 0..num(opts, "steps", 100)? {
        if pause == Some(i) {
            say(format_args!("PAUSED"));
            until_stdin_closes()?;
        }
        let value = torture_step(&mut run, i, &exec, log)?;
        say(format_args!("STEP s{i:03} {value}"));
    }
    run.finish()?;
    say(format_args!("FINISHED"));
    Ok(())
}

/// A holder that goes stale: takes the run `--run` with a lease of `--lease-ms` that nothing
/// renews, runs step 0 as `run-steps` does, prints `HELD <pid>` and waits until stdin closes
/// (the parent stops it meanwhile, and another attempt takes the run over); then runs each of
/// the steps numbered in `--late` (`10,14`) and prints `LATE s<i> ok <value>` or `LATE s<i>
/// <error kind>`.
fn run_stale(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Options::new().busy_timeout(Duration::from_secs(30)).open(arg(opts, "db")?)?;
    let log = arg(opts, "log")?;
    let lease = Duration::from_millis(num(opts, "lease-ms", 500)?);
    let mut run = store.run_with(arg(opts, "run")?, RunOptions::new().lease(lease).keep_alive(false))?;
    let exec = format!("a{}-p{}", run.attempt(), std::process::id());
    torture_step(&mut run, 0, &exec, log)?;
    say(format_args!("HELD {}", std::process::id()));
    until_stdin_closes()?;
    for late in arg(opts, "late")?.split(',') {
        let i: u64 = late.parse().map_err(|_| Error::InvalidInput(format!("--late {late}")))?;
        match torture_step(&mut run, i, &exec, log) {
            Ok(value) => say(format_args!("LATE s{i:03} ok {value}")),
            Err(e) => say(format_args!("LATE s{i:03} {:?}", e.kind())),
        }
    }
    Ok(())
}

/// A caller of the rate limit `--name` (`--count` per `--period-ms`, `--burst`) that always
/// wants a slot: from the Unix time `--start-ms` to `--until-ms` (this host's clock) it takes
/// one, reporting `GRANT t` with the time it was decided at (µs, on the limiter's timeline),
/// or sleeps the retry-after it was told. `READY` once the store is open.
fn limit_take(opts: &HashMap<&str, &str>) -> Result<(), Error> {
    let store = Store::open(arg(opts, "db")?)?;
    let period = Duration::from_millis(num(opts, "period-ms", 1000)?);
    let rate = cairn::Rate::new(num(opts, "count", 1)?, period)?;
    let burst = u32::try_from(num(opts, "burst", 1)?).map_err(|_| Error::InvalidInput("--burst".into()))?;
    let limiter = store.limiter(arg(opts, "name")?, rate).burst(burst);
    let start = i64::try_from(num(opts, "start-ms", 0)?).unwrap_or(i64::MAX);
    let until = i64::try_from(num(opts, "until-ms", 0)?).unwrap_or(i64::MAX);
    say(format_args!("READY"));
    let wait_for = |t: i64| Duration::from_millis(u64::try_from(t - SystemClock.now_millis()).unwrap_or(0));
    std::thread::sleep(wait_for(start));
    while SystemClock.now_millis() < until {
        let decision = limiter.take()?;
        match decision.retry_after() {
            None => say(format_args!("GRANT {}", decision.at_micros())),
            Some(wait) => std::thread::sleep(wait.min(wait_for(until))),
        }
    }
    say(format_args!("DONE"));
    Ok(())
}

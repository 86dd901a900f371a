//! The main demo: a resumable backfill of 100,000 orders on the default store (`$CAIRN_DB`,
//! else `$XDG_STATE_HOME/cairn/state.db`, else `~/.local/state/cairn/state.db`).
//!
//! Each order needs its customer's profile (an expensive lookup, computed once and cached for
//! an hour) and a slow call that fails now and then. Every batch of results is recorded in the
//! ledger together with the job's checkpoint, in one transaction; failed orders are retried in
//! later passes and given up after three attempts. Interrupt it at any moment (Ctrl-C,
//! `kill -9`) and run it again: it carries on without redoing a single order. Run it once more
//! when it has finished: it reports that everything is done, in a fraction of a second.
//!
//! Run: `cargo run --release -p cairn-state --example demo [-- --orders N --step-us US --reset]`

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cairn::{Error, Json, Store};
use serde::{Deserialize, Serialize};

const LEDGER: &str = "demo-orders";
const BATCH: usize = 500;
const CUSTOMERS: u64 = 2_000;
const MAX_ATTEMPTS: u32 = 3;

/// The job's checkpoint: where it stands, committed with each batch's marks.
#[derive(Serialize, Deserialize, Default, Debug)]
struct Progress {
    runs: u32,
    batches: u64,
    enriched: u64,
    failures: u64,
}

#[derive(Serialize, Deserialize)]
struct Enriched {
    customer: String,
    tier: String,
    total_cents: u64,
}

struct Args {
    orders: u64,
    step: Duration,
    reset: bool,
}

fn main() -> ExitCode {
    match parse_args().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(1)
        }
    }
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args { orders: 100_000, step: Duration::from_micros(20), reset: false };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| Error::InvalidInput(format!("{name} needs a whole number")))
        };
        match a.as_str() {
            "--orders" => args.orders = value("--orders")?,
            "--step-us" => args.step = Duration::from_micros(value("--step-us")?),
            "--reset" => args.reset = true,
            other => {
                return Err(Error::InvalidInput(format!("unknown argument {other}; see the file's header")))
            }
        }
    }
    Ok(args)
}

fn run(args: Args) -> Result<(), Error> {
    let started = Instant::now();
    let path = cairn::default_path()?;
    let store = Store::open(&path)?;
    println!("store: {}", path.display());
    if args.reset {
        store.transaction(|tx| {
            tx.ledger(LEDGER).clear()?;
            tx.checkpoint(LEDGER).delete()
        })?;
        println!("reset: starting over");
    }

    let ids: Vec<String> = (0..args.orders).map(|i| format!("order-{i:06}")).collect();
    let ledger = store.ledger(LEDGER).max_attempts(MAX_ATTEMPTS);
    let mut todo = ledger.filter_new(ids.iter().map(String::as_str))?;
    let mut progress = store.checkpoint(LEDGER).get::<Json<Progress>>()?.map(|j| j.0).unwrap_or_default();
    if todo.is_empty() {
        let c = ledger.counts()?;
        println!(
            "all {} orders already handled ({} done, {} given up) - nothing to do; checked in {} ms",
            ids.len(),
            c.done,
            c.failed,
            started.elapsed().as_millis()
        );
        return Ok(());
    }
    progress.runs += 1;
    println!(
        "run #{}: {} of {} orders to do ({} enriched before, {} batches committed so far)",
        progress.runs,
        todo.len(),
        ids.len(),
        progress.enriched,
        progress.batches
    );

    let mut bar = Bar::new(todo.len());
    let mut lookups = 0u64;
    let run_nonce = started.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    for pass in 0..MAX_ATTEMPTS {
        if todo.is_empty() {
            break;
        }
        if pass > 0 {
            eprintln!();
            println!("pass {}: retrying {} failed orders", pass + 1, todo.len());
            bar = Bar::new(todo.len());
        }
        for batch in todo.chunks(BATCH) {
            let mut done = Vec::with_capacity(batch.len());
            let mut failed = Vec::new();
            for &id in batch {
                let customer = customer_of(id);
                let tier: String = store.cache("demo-customers").get_or_set_with(
                    &customer,
                    Duration::from_secs(3600),
                    || {
                        lookups += 1;
                        Ok::<_, Error>(lookup_customer(&customer))
                    },
                )?;
                match slow_call(id, args.step, run_nonce ^ u64::from(pass)) {
                    Ok(total_cents) => done.push((id, Enriched { customer, tier, total_cents })),
                    Err(why) => failed.push((id, why)),
                }
            }
            progress.batches += 1;
            progress.enriched += done.len() as u64;
            progress.failures += failed.len() as u64;
            // The batch's marks, its failures and the checkpoint: all of it, or none of it.
            store.transaction(|tx| {
                let ledger = tx.ledger(LEDGER).max_attempts(MAX_ATTEMPTS);
                for (id, result) in &done {
                    ledger.mark_done_with(id, Json(result))?;
                }
                for (id, why) in &failed {
                    ledger.fail(id, why)?;
                }
                tx.checkpoint(LEDGER).set(Json(&progress))
            })?;
            bar.advance(batch.len());
        }
        todo = store.ledger(LEDGER).filter_new(todo)?;
    }
    bar.finish();

    let c = store.ledger(LEDGER).counts()?;
    let stats = store.cache("demo-customers").stats()?;
    println!(
        "run #{} finished in {:.1} s: {} orders done, {} given up after {MAX_ATTEMPTS} attempts",
        progress.runs,
        started.elapsed().as_secs_f64(),
        c.done,
        c.failed
    );
    println!(
        "customer lookups: {lookups} computed this run, cache hit rate {:.1}% over all runs",
        100.0 * stats.hit_rate().unwrap_or(0.0)
    );
    Ok(())
}

fn customer_of(order: &str) -> String {
    format!("customer-{}", hash(order.as_bytes(), 0) % CUSTOMERS)
}

/// Stands in for a slow profile service.
fn lookup_customer(customer: &str) -> String {
    std::thread::sleep(Duration::from_micros(200));
    ["bronze", "silver", "gold"][(hash(customer.as_bytes(), 1) % 3) as usize].to_string()
}

/// Stands in for a slow API call that fails about 3% of the time.
fn slow_call(order: &str, step: Duration, nonce: u64) -> Result<u64, String> {
    let until = Instant::now() + step;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    let h = hash(order.as_bytes(), nonce);
    if h % 100 < 3 {
        return Err(format!("upstream returned HTTP 503 for {order}"));
    }
    Ok(h % 100_000)
}

/// FNV-1a, seeded: a stable stand-in for randomness.
fn hash(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// A progress bar on stderr when it is a terminal; a line every 10% otherwise.
struct Bar {
    total: usize,
    done: usize,
    tty: bool,
    shown: usize,
    started: Instant,
}

impl Bar {
    fn new(total: usize) -> Bar {
        Bar { total, done: 0, tty: std::io::stderr().is_terminal(), shown: 0, started: Instant::now() }
    }

    fn advance(&mut self, n: usize) {
        self.done += n;
        let pct = self.done * 100 / self.total.max(1);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let filled = pct * 30 / 100;
            let _ = write!(
                err,
                "\r[{}{}] {:>3}% {}/{} orders, {:.1} s",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                pct,
                self.done,
                self.total,
                self.started.elapsed().as_secs_f64()
            );
        } else if pct >= self.shown + 10 {
            self.shown = pct - pct % 10;
            let _ = writeln!(err, "{pct}% ({}/{} orders)", self.done, self.total);
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

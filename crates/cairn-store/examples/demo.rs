//! A scraper that remembers: 300 slow page fetches, cached for ten minutes in the default
//! store (`$CAIRN_DB`, else `$XDG_STATE_HOME/cairn/state.db`, else
//! `~/.local/state/cairn/state.db`). The first run fetches; a second run within ten minutes
//! reads everything from the cache. Kill it at any moment: what was cached stays cached.
//!
//! Run: `cargo run --release -p cairn-store --example demo`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use cairn::{Error, Json, Store};
use serde::{Deserialize, Serialize};

const PAGES: usize = 300;
const TTL: Duration = Duration::from_secs(600);

#[derive(Serialize, Deserialize)]
struct RunSummary {
    run: i64,
    fetched: usize,
    from_cache: usize,
    millis: u128,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(1)
        }
    }
}

/// Stands in for an HTTP request: slow, and worth not repeating.
fn fetch(url: &str) -> String {
    std::thread::sleep(Duration::from_millis(5));
    format!("<html><title>{url}</title></html>")
}

fn run() -> Result<(), Error> {
    let path = cairn::default_path()?;
    let mut store = Store::open(&path)?;
    println!("store: {}", path.display());

    let started = Instant::now();
    let mut fetched = 0;
    let pages = store.cache("demo-pages");
    for i in 0..PAGES {
        let url = format!("https://example.com/catalog/page/{i}");
        let body: String = pages.get_or_set_with(&url, TTL, || {
            fetched += 1;
            Ok::<_, Error>(fetch(&url))
        })?;
        debug_assert!(body.contains(&url));
        if (i + 1) % 50 == 0 {
            eprint!("\r{} / {PAGES} pages", i + 1);
        }
    }
    eprintln!();
    let stats = pages.stats()?;

    // The run counter and its summary are updated together or not at all.
    let summary = store.transaction(|tx| {
        let run = tx.cache("demo").incr("runs", 1, None)?;
        let summary =
            RunSummary { run, fetched, from_cache: PAGES - fetched, millis: started.elapsed().as_millis() };
        tx.cache("demo").set("last-run", Json(&summary), None)?;
        Ok::<_, Error>(summary)
    })?;

    println!(
        "run #{}: {PAGES} pages in {} ms: {} fetched, {} from the cache",
        summary.run, summary.millis, summary.fetched, summary.from_cache
    );
    println!(
        "namespace demo-pages: {} entries, {} bytes, hit rate {:.0}% over all runs",
        stats.entries,
        stats.bytes,
        100.0 * stats.hit_rate().unwrap_or(0.0)
    );
    if summary.fetched > 0 {
        println!("run it again: within ten minutes every page comes from the cache.");
    }
    Ok(())
}

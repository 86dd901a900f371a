//! How long the pages take with a million ledger items (docs/BENCHMARKS.md, "cairn ui"):
//!
//! ```text
//! cargo run --release -p cairn-ui --example million -- [STORE] [ROUNDS]
//! ```
//!
//! STORE is a file (default: a fresh one in a temporary directory) or a postgres:// URL; it is
//! filled once (a namespace `big` of 1,000,000 items: 990,000 done, 9,000 pending, 1,000
//! failed, spread through the id range) unless it already holds them. Then each page is
//! fetched ROUNDS times (default 50) over HTTP from a server on port 0, and the median and
//! the slowest are printed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cairn::Store;

const ITEMS: u64 = 1_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = tempfile::tempdir()?;
    let location = args.next().unwrap_or_else(|| dir.path().join("million.db").display().to_string());
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(50);
    let store = Store::open(&location)?;
    let c = store.ledger("big").counts()?;
    if c.pending + c.done + c.failed < ITEMS {
        fill(&store)?;
    }
    let c = store.ledger("big").counts()?;
    println!("store {location}: big has {} pending, {} done, {} failed", c.pending, c.done, c.failed);
    // What the overview's time is made of: the counts by state, and the rest of the metrics.
    for (what, f) in [
        (
            "Ledger::counts of big",
            &(|| store.ledger("big").counts().map(drop)) as &dyn Fn() -> cairn::Result<()>,
        ),
        ("Store::metrics", &|| store.metrics().map(drop)),
    ] {
        let mut times = Vec::new();
        for _ in 0..rounds.min(10) {
            let t = Instant::now();
            f()?;
            times.push(t.elapsed());
        }
        times.sort();
        println!("{what:<32} median {:>8.2} ms", ms(times[times.len() / 2]));
    }

    let server = cairn_ui::Server::bind(&cairn_ui::Options::new().listen("127.0.0.1:0".parse()?))?;
    let (addr, token) = (server.local_addr(), server.token().to_owned());
    let served = location.clone();
    std::thread::spawn(move || -> Result<(), String> {
        let store = Store::open(&served).map_err(|e| e.to_string())?;
        server.serve(&store).map_err(|e| e.to_string())
    });
    for page in [
        "/",
        "/queue/big",
        "/queue/big?state=failed",
        "/queue/big?state=pending",
        "/queue/big?q=item-0500",
        "/queue/big?after=item-0999000",
    ] {
        let sep = if page.contains('?') { '&' } else { '?' };
        let target = format!("{page}{sep}token={token}");
        let mut times = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, len) = get(&addr.to_string(), &target)?;
            times.push(t.elapsed());
            assert_eq!(status, 200, "{page}");
            size = len;
        }
        // The first view of the overview may wait for the first count of `big`, which the
        // server begins at its start (crates/cairn-ui/src/counts.rs): shown on its own.
        let first = times[0];
        times.sort();
        println!(
            "{page:<32} median {:>8.2} ms  max {:>8.2} ms  first {:>8.2} ms  ({size} bytes, {rounds} rounds)",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            ms(first)
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// 1,000,000 items in batches of 10,000, one transaction each; every 100th pending, every
/// 1000th (offset) failed, the rest done.
fn fill(store: &Store) -> cairn::Result<()> {
    let t = Instant::now();
    let ledger = store.ledger("big").max_attempts(1);
    for batch in 0..(ITEMS / 10_000) {
        let ids: Vec<String> =
            (batch * 10_000..(batch + 1) * 10_000).map(|i| format!("item-{i:07}")).collect();
        store.transaction(|tx| {
            let l = tx.ledger("big");
            l.enqueue(&ids)?;
            let done: Vec<&String> = ids
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 100 != 0 && i % 1000 != 7)
                .map(|(_, id)| id)
                .collect();
            l.mark_done_many(done)?;
            Ok::<_, cairn::Error>(())
        })?;
        for (i, id) in ids.iter().enumerate() {
            if i % 1000 == 7 {
                ledger.fail(id, "HTTP 502")?;
            }
        }
    }
    println!("filled in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// One GET: (status, body length).
fn get(addr: &str, target: &str) -> std::io::Result<(u16, usize)> {
    let mut s = TcpStream::connect(addr)?;
    write!(s, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.len()).unwrap_or(0);
    Ok((status, body))
}

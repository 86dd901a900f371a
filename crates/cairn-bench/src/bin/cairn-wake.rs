//! `cairn-wake`: how soon a waiting worker claims what another process queues, and what an
//! idle waiter costs (issue 20's targets: p50 at most 2 ms and p99 at most 20 ms on a file,
//! an idle waiter under 1% of a core).
//!
//! ```text
//! cairn-wake [--samples N] [--idle-secs S] [--store PATH-OR-URL]
//! ```
//!
//! It starts a worker process (itself, with `--waiter`) blocked in `claim_next_wait` on an
//! empty queue, then queues items one at a time from this process, each after a pause of 5
//! to 20 ms so that the worker is asleep when it comes; the latency of one item is from the
//! start of the enqueue here to the return of the claim there (both on the system clock, in
//! microseconds). Then, for the idle cost, it reads the worker's CPU time (`/proc/PID/stat`)
//! over S seconds in which nothing is queued. Without `--store`, a file in a temporary
//! directory.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NS: &str = "wake";

fn micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The worker: claim with a wait, print the item and the time of the claim, complete it.
fn waiter(store: &str) -> cairn::Result<()> {
    let store = cairn::Store::open(store)?;
    let queue = store.ledger(NS);
    let mut out = std::io::stdout().lock();
    println!("ready");
    loop {
        let Some(claim) =
            queue.claim_next_wait("waiter", Duration::from_secs(60), Duration::from_secs(120))?
        else {
            return Ok(());
        };
        let at = micros();
        queue.complete(&claim)?;
        if claim.id() == "stop" {
            return Ok(());
        }
        let _ = writeln!(out, "{} {at}", claim.id());
        let _ = out.flush();
    }
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: fields 14 and 15 of the line are the 12th and
    // 13th after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if let Some(store) = arg("--waiter") {
        return Ok(waiter(&store)?);
    }
    let samples: usize = arg("--samples").map_or(Ok(300), |s| s.parse())?;
    let idle_secs: u64 = arg("--idle-secs").map_or(Ok(10), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let location =
        arg("--store").unwrap_or_else(|| dir.path().join("wake.db").to_string_lossy().into_owned());
    let store = cairn::Store::open(&location)?;
    let queue = store.ledger(NS);
    queue.clear()?;

    let mut child = Command::new(std::env::current_exe()?)
        .args(["--waiter", &location])
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    lines.next().ok_or("the worker did not start")??;
    std::thread::sleep(Duration::from_millis(200));

    let mut latencies = Vec::with_capacity(samples);
    let mut commits = Vec::with_capacity(samples);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..samples {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(5_000 + seed % 15_000));
        let id = format!("item-{i}");
        let start = micros();
        queue.enqueue([id.as_str()])?;
        commits.push(micros() - start);
        let line = lines.next().ok_or("the worker exited")??;
        let (got, at) = line.split_once(' ').ok_or("a bad line")?;
        assert_eq!(got, id);
        latencies.push(at.parse::<i64>()? - start);
    }
    latencies.sort_unstable();
    println!(
        "wake-up latency over {samples} items ({}): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        if cairn::Store::open(&location)?.journal_mode() == "postgres" {
            "PostgreSQL"
        } else {
            "SQLite file"
        },
        percentile(&latencies, 0.5) as f64 / 1000.0,
        percentile(&latencies, 0.9) as f64 / 1000.0,
        percentile(&latencies, 0.99) as f64 / 1000.0,
        latencies[latencies.len() - 1] as f64 / 1000.0,
    );

    commits.sort_unstable();
    println!(
        "(the enqueue itself, to its commit: p50 {:.2} ms, p99 {:.2} ms)",
        percentile(&commits, 0.5) as f64 / 1000.0,
        percentile(&commits, 0.99) as f64 / 1000.0
    );
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid).ok_or("no /proc")?;
    std::thread::sleep(Duration::from_secs(idle_secs));
    let after = cpu_ticks(pid).ok_or("no /proc")?;
    let ticks_per_sec = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.unwrap_or(100) as f64;
    let cpu = (after - before) as f64 / ticks_per_sec;
    println!(
        "idle waiter: {cpu:.3} s of CPU in {idle_secs} s ({:.3}% of a core)",
        cpu / idle_secs as f64 * 100.0
    );
    queue.enqueue(["stop"])?;
    child.wait()?;
    Ok(())
}

//! Crash torture. The bug this guards against: a process killed in the middle of a
//! multi-statement transaction leaving part of it behind (a ledger mark without its
//! checkpoint, half a cache update, a migration step without its version bump), a commit the
//! process saw succeed going missing, or an item done twice because a dead worker's claim was
//! both taken over and completed.
//!
//! Four real workloads run in child processes, each reporting every commit as it happens;
//! the harness SIGKILLs them at random moments (during start-up and open, mid-transaction,
//! mid-commit, mid-checkpoint), then reopens the file and checks `integrity_check`, that
//! every reported commit is there, that no transaction is partly applied, and that each
//! ledger item is done exactly once. Rounds go to the workload with the fewest kills so far,
//! so each takes about a quarter of `CAIRN_CRASH_KILLS` (400 by default; 5,000 or more on
//! demand). `CAIRN_SEED` replays a run.

mod batch_job;
mod cache_writer;
mod claims;
mod migrations;
mod runs;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn::Error;
use cairn_testkit::{env_count, Rng, Running};

pub(crate) use cache_writer::verify;

/// What one workload went through over a run.
#[derive(Debug, Default)]
struct Tally {
    /// Children SIGKILLed before they finished.
    kills: u64,
    /// Kills that landed mid-work: inside a transaction, or holding a claim.
    mid_work: u64,
    /// Commits the children reported before they died, all checked present.
    reported: u64,
    /// Files the workload went through.
    files: u64,
}

/// One workload of the torture. The harness gives it a fresh file when the last one has
/// served its turn; each round starts children on the file, SIGKILLs them at random moments
/// and checks the file against everything reported on it so far.
trait Workload {
    fn name(&self) -> &'static str;
    /// Forget the last file; `path` is the `n`th (from 1), not created yet.
    fn start_file(&mut self, path: &Path, n: u64) -> Result<(), Error>;
    /// One round; returns whether the file has served its turn.
    fn round(&mut self, path: &Path, rng: &mut Rng, tally: &mut Tally) -> Result<bool, Error>;
}

/// A workload with its tally and the file it is on.
struct Entry {
    workload: Box<dyn Workload>,
    tally: Tally,
    file: Option<PathBuf>,
}

impl Entry {
    fn new(workload: impl Workload + 'static) -> Self {
        Entry { workload: Box::new(workload), tally: Tally::default(), file: None }
    }

    fn round(&mut self, dir: &Path, rng: &mut Rng) -> Result<(), Error> {
        let path = match &self.file {
            Some(path) => path.clone(),
            None => {
                self.tally.files += 1;
                let n = self.tally.files;
                let path = dir.join(format!("{}-{n}.db", self.workload.name().replace(' ', "-")));
                self.workload.start_file(&path, n)?;
                self.file.insert(path).clone()
            }
        };
        if self.workload.round(&path, rng, &mut self.tally)? {
            self.file = None;
        }
        Ok(())
    }
}

/// Wait for the moment to kill `run`: one time in five a few milliseconds after its start
/// (start-up, open, creating the file), otherwise up to `steady_ms` after it printed its
/// `ready` line, so that a loaded machine's slow start-up does not eat the steady work.
fn await_kill_point(rng: &mut Rng, run: &Running, ready: &str, steady_ms: u64) {
    if rng.below(5) == 0 {
        std::thread::sleep(Duration::from_millis(rng.below(8)));
    } else {
        run.wait_for(Duration::from_secs(10), |l| l.starts_with(ready));
        std::thread::sleep(Duration::from_millis(rng.below(steady_ms)));
    }
}

#[test]
fn sigkill_at_random_points_in_every_workload_never_loses_a_reported_commit_or_leaves_half_a_transaction() {
    let _machine = crate::heavy();
    let kills = env_count("CAIRN_CRASH_KILLS", 400);
    let seed = Rng::seed_from_env();
    eprintln!("crash torture: {kills} kills, CAIRN_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut workloads = [
        Entry::new(cache_writer::CacheWriter::default()),
        Entry::new(batch_job::BatchJob::default()),
        Entry::new(claims::Claims::default()),
        Entry::new(migrations::MigrationSteps::default()),
    ];
    let started = std::time::Instant::now();
    let (mut rounds, mut no_kill_in_a_row) = (0u64, 0u32);
    let total = |w: &[Entry]| w.iter().map(|e| e.tally.kills).sum::<u64>();
    while total(&workloads) < kills {
        let e = workloads.iter_mut().min_by_key(|e| e.tally.kills).expect("workloads");
        let before = e.tally.kills;
        if let Err(err) = e.round(dir.path(), &mut rng) {
            panic!("{} after {} kills (CAIRN_SEED={seed}): {err}", e.workload.name(), e.tally.kills);
        }
        rounds += 1;
        // The workload with the fewest kills runs next: one whose children always finish
        // before their kill would be picked forever.
        no_kill_in_a_row = if e.tally.kills > before { 0 } else { no_kill_in_a_row + 1 };
        assert!(
            no_kill_in_a_row < 100,
            "{}: 100 rounds in a row finished before their kill",
            e.workload.name()
        );
        if rounds % 500 == 0 {
            eprintln!("crash torture: {} kills in {:.0?}", total(&workloads), started.elapsed());
        }
    }
    eprintln!("crash torture: {rounds} rounds in {:.0?}", started.elapsed());
    for Entry { workload: w, tally: t, .. } in &workloads {
        eprintln!(
            "crash torture: {:<13} {:>5} kills survived ({} mid-work), {} reported commits all present, {} files",
            w.name(),
            t.kills,
            t.mid_work,
            t.reported,
            t.files
        );
        assert!(t.reported > 0, "{}: the children never committed: nothing was exercised", w.name());
        assert!(
            t.mid_work > 0 || t.kills < 20,
            "{}: no kill landed mid-work: the kill points are off",
            w.name()
        );
    }
}

/// The signal `Running::kill` sends (9 on every Unix).
const SIGKILL: i32 = 9;

/// SIGKILL `run` and return its stdout lines, failing the test if the child had failed by
/// itself (a workload error would otherwise pass for a kill).
fn kill(run: Running) -> Vec<String> {
    let (status, lines, stderr) = run.kill_and_wait().expect("kill");
    assert!(
        status.success() || status.signal() == Some(SIGKILL),
        "the child failed by itself ({status}) before its kill: {stderr}"
    );
    lines
}

/// The number after `prefix` on each line that starts with it.
fn numbers_after(lines: &[String], prefix: &str) -> Vec<u64> {
    lines.iter().filter_map(|l| l.strip_prefix(prefix)?.parse().ok()).collect()
}

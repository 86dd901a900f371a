//! Memoizing a command's result: its stdout, stderr and exit status, replayed exactly while
//! fresh, computed once across processes when missing, and optionally served stale while one
//! process refreshes it.
//!
//! A result is stored as an ordinary cache entry of its namespace, holding a small record
//! (see `record.rs`): when it was produced, the status, and the output as frames in the order
//! the command wrote them, inline up to 1 MiB, beyond that in chunks of about 1 MiB written
//! while the command runs. A recording or a replay holds one chunk in memory at a time,
//! whatever the size of the output. The entry lives for `ttl + stale`; whether it is fresh or
//! stale is decided from the time inside the record, so a call with a shorter `--ttl` than the
//! one that stored it still sees it as expired.
//!
//! The key is what the result depends on ([`CommandKey`]): the command line and working
//! directory, or a name, and the environment variables, files and standard input the caller
//! names. A changed input is another key, so a miss.

mod key;
mod record;
mod run;

use std::time::Duration;

use crate::cache::Cache;
use crate::codec::{truncated, Decode, Encode, ValueKind};
use crate::error::{Error, Result};
use crate::storage::{CacheOps, EngineOps, MemoOps};

pub use key::{command_key, CommandKey, KeptInput};
use record::{frames, Body, Record};
pub use run::{ChildRun, MemoRecorder};

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    /// The exit status; a command killed by signal N is recorded as 128 + N, as shells do.
    pub status: i32,
    /// Its standard output, byte for byte.
    pub stdout: Vec<u8>,
    /// Its standard error, byte for byte.
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// True for exit status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// Which of a command's outputs a piece of output was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Where a replayed result's output goes, piece by piece, in the order the command wrote it:
/// see [`Cache::memo_stream`].
pub type MemoSink<'a, E> = dyn FnMut(Stream, &[u8]) -> Result<(), E> + 'a;

/// How long results stay fresh, and what is kept. `MemoPolicy::new(ttl)` then the methods
/// below; the defaults are written on each.
///
/// ```
/// use cairn::MemoPolicy;
/// use std::time::Duration;
///
/// let p = MemoPolicy::new(Duration::from_secs(3600)).stale(Duration::from_secs(600)).cache_failures(true);
/// assert_eq!(p.stale, Duration::from_secs(600));
/// assert!(!p.force);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoPolicy {
    /// How long a result is replayed as is.
    pub ttl: Duration,
    /// How long after `ttl` an expired result may still be served while a refresh runs.
    pub stale: Duration,
    /// Keep results of commands that exited non-zero (by default they are not stored).
    pub cache_failures: bool,
    /// Run the command even if a fresh result is stored, and store the new one.
    pub force: bool,
}

impl MemoPolicy {
    /// Fresh for `ttl`, never stale, failures not kept, not forced.
    pub fn new(ttl: Duration) -> Self {
        MemoPolicy { ttl, stale: Duration::ZERO, cache_failures: false, force: false }
    }

    /// Serve an expired result for up to `d` more while it is refreshed. Default: zero.
    pub fn stale(mut self, d: Duration) -> Self {
        self.stale = d;
        self
    }

    /// Keep the results of commands that exit non-zero. Default: false.
    pub fn cache_failures(mut self, yes: bool) -> Self {
        self.cache_failures = yes;
        self
    }

    /// Run the command even if a fresh result is stored (after any run of the same key in
    /// progress elsewhere has finished), and store its result. Default: false.
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }

    fn validate(&self) -> Result<()> {
        crate::duration::at_least_1ms(
            self.ttl,
            "a memo TTL",
            "would never replay a result (every call would run the command)",
        )
    }

    fn keeps(&self, status: i32) -> bool {
        status == 0 || self.cache_failures
    }
}

/// The outcome of [`Cache::memo`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Memoized {
    /// A fresh stored result (perhaps stored by another process while this one waited).
    Cached(CommandOutput),
    /// This call ran the command. `stored` is false for a failure without
    /// [`MemoPolicy::cache_failures`].
    Ran {
        /// What it produced.
        output: CommandOutput,
        /// Whether it was kept for the next calls.
        stored: bool,
    },
    /// An expired result, within the stale window: serve it, and refresh it in the background
    /// (see [`Cache::memo_refresh`]) unless `refreshing` says another process already does.
    Stale {
        /// The previous result.
        output: CommandOutput,
        /// True while another process recomputes it.
        refreshing: bool,
    },
}

/// What [`Cache::memo_stream`] did; every variant carries the exit status to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoOutcome {
    /// A fresh stored result was replayed (perhaps stored by another process while this one
    /// waited for it).
    Replayed {
        /// Its exit status.
        status: i32,
    },
    /// This call ran the command; its output went to the caller as it was written.
    Ran {
        /// The command's exit status.
        status: i32,
        /// Whether the result was kept: false for a failure without
        /// [`MemoPolicy::cache_failures`], or when its chunks were removed while it ran (a
        /// `clear` meanwhile).
        stored: bool,
    },
    /// An expired result within the stale window was replayed: refresh it in the background
    /// ([`Cache::memo_refresh_stream`]) unless `refreshing` says another process already does.
    Stale {
        /// Its exit status.
        status: i32,
        /// True while another process recomputes it.
        refreshing: bool,
    },
}

impl MemoOutcome {
    /// The exit status replayed or run.
    pub fn status(&self) -> i32 {
        match *self {
            MemoOutcome::Replayed { status }
            | MemoOutcome::Ran { status, .. }
            | MemoOutcome::Stale { status, .. } => status,
        }
    }
}

/// How often a replay is attempted when the result it found was replaced or removed before
/// its first byte could be read (another process stored a new one, or cleared it).
const REPLAY_ATTEMPTS: usize = 8;

/// What the compute-once path ended with.
enum Computed {
    /// Another process's result, replayed.
    Replayed(i32),
    /// The result found was gone before its first byte: look again.
    Vanished,
    /// This call ran the command.
    Ran { status: i32, stored: bool },
}

impl Cache<'_> {
    /// Replay the stored result of `key` while fresh; otherwise `run` the command (once across
    /// processes: overlapping calls wait for the first one's result) and keep what it produced
    /// according to `policy`. The output is held in memory; [`Cache::memo_stream`] passes it
    /// on as it comes instead.
    ///
    /// ```
    /// use cairn::{CommandOutput, MemoPolicy, Memoized};
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let memo = store.cache("memo");
    /// let policy = MemoPolicy::new(Duration::from_secs(60));
    /// let run = || Ok(CommandOutput { status: 0, stdout: b"hello\n".to_vec(), stderr: vec![] });
    /// assert!(matches!(memo.memo("greeting", policy, run)?, Memoized::Ran { stored: true, .. }));
    /// let again = memo.memo("greeting", policy, || unreachable!("replayed, not run"))?;
    /// assert!(matches!(again, Memoized::Cached(o) if o.stdout == b"hello\n"));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn memo(
        &self,
        key: &str,
        policy: MemoPolicy,
        run: impl FnOnce() -> Result<CommandOutput>,
    ) -> Result<Memoized> {
        let mut replayed = CommandOutput::default();
        let mut ran: Option<CommandOutput> = None;
        let outcome = self.memo_stream(key, policy, &mut collect_into(&mut replayed), |rec| {
            let output = run()?;
            rec.write(Stream::Stdout, &output.stdout)?;
            rec.write(Stream::Stderr, &output.stderr)?;
            let status = output.status;
            ran = Some(output);
            Ok::<_, Error>(status)
        })?;
        Ok(match outcome {
            MemoOutcome::Replayed { status } => Memoized::Cached(CommandOutput { status, ..replayed }),
            MemoOutcome::Stale { status, refreshing } => {
                Memoized::Stale { output: CommandOutput { status, ..replayed }, refreshing }
            }
            MemoOutcome::Ran { stored, .. } => Memoized::Ran { output: ran.unwrap_or_default(), stored },
        })
    }

    /// Recompute `key` unless it is fresh (another process refreshed it first): the background
    /// half of serving stale results. Concurrent refreshes of one key run the command once.
    /// Returns what this call ran, if it ran anything.
    pub fn memo_refresh(
        &self,
        key: &str,
        policy: MemoPolicy,
        run: impl FnOnce() -> Result<CommandOutput>,
    ) -> Result<Option<CommandOutput>> {
        let mut ran: Option<CommandOutput> = None;
        self.memo_refresh_stream(key, policy, |rec| {
            let output = run()?;
            rec.write(Stream::Stdout, &output.stdout)?;
            rec.write(Stream::Stderr, &output.stderr)?;
            let status = output.status;
            ran = Some(output);
            Ok::<_, Error>(status)
        })?;
        Ok(ran)
    }

    /// [`Cache::memo`] for outputs of any size, passed on as they come. A stored result is
    /// replayed through `replay`, piece by piece in the order the command wrote them, one
    /// chunk (about 1 MiB) in memory at a time. Otherwise `run` runs the command: it hands
    /// every piece of output to the [`MemoRecorder`] (which writes it to the store in chunks
    /// as it comes) and passes it on to its own caller at once; [`MemoRecorder::record_child`]
    /// does both for a child process. Returns which happened, with the status to report.
    ///
    /// ```
    /// use cairn::{MemoOutcome, MemoPolicy, Store, Stream};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let memo = store.cache("memo");
    /// let policy = MemoPolicy::new(Duration::from_secs(60));
    /// let mut shown = Vec::new();
    /// let mut show = |_: Stream, b: &[u8]| {
    ///     shown.extend_from_slice(b); // where the caller's output goes
    ///     Ok::<_, cairn::Error>(())
    /// };
    /// let ran = memo.memo_stream("k", policy, &mut show, |rec| {
    ///     rec.write(Stream::Stdout, b"hello\n")?; // the command's output, as it comes
    ///     Ok(0)
    /// })?;
    /// assert_eq!(ran, MemoOutcome::Ran { status: 0, stored: true });
    /// let again = memo.memo_stream("k", policy, &mut show, |_| unreachable!("replayed"))?;
    /// assert_eq!(again, MemoOutcome::Replayed { status: 0 });
    /// assert_eq!(shown, b"hello\n"); // replayed (this run passed nothing on itself)
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn memo_stream<E: From<Error>>(
        &self,
        key: &str,
        policy: MemoPolicy,
        replay: &mut MemoSink<'_, E>,
        run: impl FnOnce(&mut MemoRecorder<'_, '_>) -> Result<i32, E>,
    ) -> Result<MemoOutcome, E> {
        policy.validate()?;
        crate::names::validate_ns(self.namespace())?;
        crate::names::validate_key(key)?;
        let mut run = Some(run);
        for attempt in 1..=REPLAY_ATTEMPTS {
            // A result that keeps vanishing under the replay is not chased forever: the last
            // attempt runs the command.
            let policy = policy.force(policy.force || attempt == REPLAY_ATTEMPTS);
            if !policy.force {
                if let Some(record) = self.lookup(key)?.and_then(|v| Record::decode(v.bytes).ok()) {
                    let age = self.age(&record);
                    let stale = age >= policy.ttl;
                    if age < policy.ttl.saturating_add(policy.stale) {
                        self.count(true);
                        let refreshing = stale && self.is_filling(key)?;
                        if !self.replay(key, &record, replay)? {
                            continue;
                        }
                        return Ok(if stale {
                            MemoOutcome::Stale { status: record.status, refreshing }
                        } else {
                            MemoOutcome::Replayed { status: record.status }
                        });
                    }
                }
                self.count(false);
            }
            match self.compute(key, policy, replay, &mut run)? {
                Computed::Replayed(status) => return Ok(MemoOutcome::Replayed { status }),
                Computed::Ran { status, stored } => return Ok(MemoOutcome::Ran { status, stored }),
                Computed::Vanished => continue,
            }
        }
        // Not reached: the last attempt runs the command, and what runs cannot vanish.
        Err(E::from(Error::invalid("the stored result kept changing while it was replayed; run again")))
    }

    /// [`Cache::memo_refresh`] for outputs of any size: `run` as in [`Cache::memo_stream`].
    /// Returns the status of what this call ran, if it ran anything.
    pub fn memo_refresh_stream<E: From<Error>>(
        &self,
        key: &str,
        policy: MemoPolicy,
        run: impl FnOnce(&mut MemoRecorder<'_, '_>) -> Result<i32, E>,
    ) -> Result<Option<i32>, E> {
        policy.validate()?;
        crate::names::validate_ns(self.namespace())?;
        crate::names::validate_key(key)?;
        let mut run = Some(run);
        // A fresh result found here is not replayed: the refresh only makes sure one exists.
        let mut ignore = |_: Stream, _: &[u8]| Ok::<(), E>(());
        match self.compute(key, policy, &mut ignore, &mut run)? {
            Computed::Ran { status, .. } => Ok(Some(status)),
            Computed::Replayed(_) | Computed::Vanished => Ok(None),
        }
    }

    /// Drop the stored result of `key` (fresh or not yet swept) with its chunks. False if
    /// there was none.
    ///
    /// ```
    /// use cairn::{CommandOutput, MemoPolicy, Store};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let memo = store.cache("memo");
    /// memo.memo("k", MemoPolicy::new(Duration::from_secs(60)), || Ok(CommandOutput::default()))?;
    /// assert!(memo.memo_forget("k")?);
    /// assert!(!memo.memo_forget("k")?);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn memo_forget(&self, key: &str) -> Result<bool> {
        crate::names::validate_key(key)?;
        let ns = self.namespace();
        self.write(|s| {
            // A bounded namespace's sizes change: its lock first, as every write takes it.
            self.limits_in(s)?;
            let existed = s.engine.cache_delete(ns, key, s.now())?.is_some();
            s.engine.memo_chunks_gc(s.now())?;
            Ok(existed)
        })
    }

    fn age(&self, record: &Record) -> Duration {
        Duration::from_millis(u64::try_from(self.store.now().saturating_sub(record.produced_at)).unwrap_or(0))
    }

    fn count(&self, hit: bool) {
        self.store.cache_state().count(self.namespace(), hit, self.store.is_read_only());
    }

    /// The compute-once path: replay what another process stores meanwhile, or run.
    fn compute<E: From<Error>, F>(
        &self,
        key: &str,
        policy: MemoPolicy,
        replay: &mut MemoSink<'_, E>,
        run: &mut Option<F>,
    ) -> Result<Computed, E>
    where
        F: FnOnce(&mut MemoRecorder<'_, '_>) -> Result<i32, E>,
    {
        let store = self.store;
        let fresh = |bytes: &[u8]| {
            !policy.force
                && record::produced_at(bytes).is_some_and(|at| {
                    u128::try_from(store.now().saturating_sub(at)).unwrap_or(0) < policy.ttl.as_millis()
                })
        };
        let found = |v: crate::storage::Stored| -> Result<Computed, E> {
            let record = Record::decode(v.bytes).map_err(|e| self.damaged(key, &e.detail))?;
            Ok(if self.replay(key, &record, replay)? {
                Computed::Replayed(record.status)
            } else {
                Computed::Vanished
            })
        };
        let Some(run) = run.take() else {
            return Err(E::from(Error::invalid("a memo's command was already run by this call")));
        };
        if self.in_tx() {
            // The transaction holds the write lock: nobody else can be computing; the chunks
            // and the record commit with it.
            let mut rec = MemoRecorder::new(self, key);
            let status = run(&mut rec)?;
            return Ok(Computed::Ran { status, stored: self.keep(&mut rec, key, policy, status, None)? });
        }
        self.compute_once(key, &fresh, found, |ticket| {
            // Renewed until the record is kept (or the command failed): the chunks written as
            // the command runs are protected by the marker alone.
            let _alive = ticket.keep_alive()?;
            let mut rec = MemoRecorder::new(self, key);
            let status = run(&mut rec)?;
            let stored = self.keep(&mut rec, key, policy, status, Some(ticket))?;
            Ok(Computed::Ran { status, stored })
        })
    }

    /// Store what `rec` recorded, if the policy keeps it: the record, and the chunks made
    /// current (the key's other results' chunks dropped), in one write with the fill marker's
    /// release (`ticket`), or inside the caller's transaction.
    fn keep(
        &self,
        rec: &mut MemoRecorder<'_, '_>,
        key: &str,
        policy: MemoPolicy,
        status: i32,
        ticket: Option<&crate::cache::FillTicket<'_, '_>>,
    ) -> Result<bool> {
        if !policy.keeps(status) {
            return Ok(false); // the recorder drops its chunks, the ticket the marker
        }
        let body = rec.finish()?;
        let record = Record { produced_at: self.store.now(), status, body };
        let bytes = record.encode()?;
        let ns = self.namespace();
        let keep = policy.ttl.saturating_add(policy.stale);
        let commit = |s: &crate::Store| -> Result<bool> {
            let gen = match record.body {
                Body::Chunks { gen, count } => {
                    // Chunks removed while the command ran (a clear of the namespace) would
                    // leave a record pointing at nothing: not stored then.
                    if s.engine.memo_chunks_count(ns, key, gen)? != u64::from(count) {
                        return Ok(false);
                    }
                    gen
                }
                Body::Inline(_) => 0,
            };
            let expires = Some(crate::clock::deadline(s.now(), keep));
            self.store_in(s, key, (&bytes, ValueKind::Bytes), expires)?;
            s.engine.memo_chunks_drop_others(ns, key, gen)?;
            Ok(true)
        };
        let stored = match ticket {
            Some(t) => t.commit(commit)?,
            None => commit(self.store)?,
        };
        rec.mark_kept(stored);
        Ok(stored)
    }

    /// Pass a stored result's output to `out`. False if its chunks were gone before the
    /// first (the result was replaced or removed since its record was read): nothing was
    /// passed on, and the caller looks again.
    fn replay<E: From<Error>>(
        &self,
        key: &str,
        record: &Record,
        out: &mut MemoSink<'_, E>,
    ) -> Result<bool, E> {
        let (gen, count) = match &record.body {
            Body::Inline(bytes) => {
                for frame in frames(bytes) {
                    let (stream, piece) = frame.ok_or_else(|| self.damaged(key, "a damaged output frame"))?;
                    out(stream, piece)?;
                }
                return Ok(true);
            }
            Body::Chunks { gen, count } => (*gen, *count),
        };
        let mut failed: Option<E> = None;
        let seen = self.store.engine.memo_chunks_each(self.namespace(), key, gen, &mut |data| {
            for frame in frames(data) {
                let (stream, piece) = frame.ok_or_else(|| self.damaged(key, "a damaged output chunk"))?;
                if let Err(e) = out(stream, piece) {
                    failed = Some(e);
                    return Err(Error::invalid("the replay's reader stopped"));
                }
            }
            Ok(())
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let seen = seen?;
        self.store.engine.release_memory();
        if seen == 0 {
            return Ok(false);
        }
        if seen != u64::from(count) {
            return Err(E::from(self.damaged(key, &format!("{seen} output chunks of {count}"))));
        }
        Ok(true)
    }

    fn damaged(&self, key: &str, detail: &str) -> Error {
        Error::Decode {
            ns: self.namespace().to_owned(),
            key: truncated(key),
            expected: "a memoized command result",
            detail: detail.to_owned(),
        }
    }
}

/// A replay target that collects the output in memory.
fn collect_into(out: &mut CommandOutput) -> impl FnMut(Stream, &[u8]) -> Result<()> + '_ {
    |stream, bytes| {
        match stream {
            Stream::Stdout => out.stdout.extend_from_slice(bytes),
            Stream::Stderr => out.stderr.extend_from_slice(bytes),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    // Replay, expiry, the stale window, failures and forced runs are tested on both engines
    // in tests/it/memo.rs.

    /// A command that runs past the fill timeout keeps its output: its fill marker, which
    /// alone protects the chunks written so far, is renewed while it runs, so a sweep by
    /// another process meanwhile (here a forget, which collects orphan chunks) leaves them.
    /// Before, the marker expired after the fill timeout and the sweep deleted the chunks: the
    /// command's output was lost and, for `cairn step`, the step not recorded.
    #[test]
    fn a_long_commands_chunks_outlive_the_fill_timeout() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::invalid(e.to_string()))?;
        let path = dir.path().join("state.db");
        let clock = crate::ManualClock::new(1_000_000);
        let options = crate::Options::new().clock(clock.clone()).fill_timeout(Duration::from_millis(150));
        let store = options.clone().open(&path)?;
        let other = options.open(&path)?;
        let memo = store.cache("m");
        let big = vec![b'x'; 3 * record::CHUNK_BYTES];
        let policy = MemoPolicy::new(Duration::from_secs(3600));
        let ran = memo.memo_stream("k", policy, &mut |_, _| Ok::<_, Error>(()), |rec| {
            rec.write(Stream::Stdout, &big)?;
            // The command runs on, ten fill timeouts by the store's clock.
            clock.advance(Duration::from_millis(1500));
            // Wait (a bounded poll of the thread's work, not a guess) for the renewal from the
            // advanced time.
            let started = std::time::Instant::now();
            loop {
                let until = other.engine.fill_get("m", "k")?.map_or(0, |(_, until)| until);
                if until > crate::Clock::now_millis(&clock) {
                    break;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    return Err(Error::invalid("the fill marker was not renewed"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            other.cache("elsewhere").memo_forget("nothing")?; // collects orphan chunks
            Ok(0)
        })?;
        assert_eq!(ran, MemoOutcome::Ran { status: 0, stored: true });
        let mut got = Vec::new();
        memo.memo_stream(
            "k",
            policy,
            &mut |_, b: &[u8]| {
                got.extend_from_slice(b);
                Ok::<_, Error>(())
            },
            |_| unreachable!("replayed"),
        )?;
        assert_eq!(got.len(), big.len());
        Ok(())
    }

    #[test]
    fn stdout_and_stderr_replay_interleaved_as_written() -> Result<()> {
        let store = Store::open_in_memory()?;
        let memo = store.cache("m");
        let policy = MemoPolicy::new(Duration::from_secs(60));
        let pieces: [(Stream, &[u8]); 4] =
            [(Stream::Stdout, b"1"), (Stream::Stderr, b"2"), (Stream::Stdout, b"3"), (Stream::Stderr, b"")];
        memo.memo_stream("k", policy, &mut |_, _| Ok::<_, Error>(()), |rec| {
            for (s, b) in pieces {
                rec.write(s, b)?;
            }
            Ok(0)
        })?;
        let mut got = Vec::new();
        let mut keep = |s, b: &[u8]| {
            got.push((s, b.to_vec()));
            Ok::<_, Error>(())
        };
        memo.memo_stream("k", policy, &mut keep, |_| unreachable!("replayed"))?;
        assert_eq!(
            got,
            [
                (Stream::Stdout, b"1".to_vec()),
                (Stream::Stderr, b"2".to_vec()),
                (Stream::Stdout, b"3".to_vec())
            ]
        );
        Ok(())
    }
}

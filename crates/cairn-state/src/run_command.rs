//! Steps that are commands (the CLI's `cairn step`): the command runs once, its output is
//! recorded while it runs and replayed, byte for byte, by every later attempt.
//!
//! The output is kept as a memo record (the memo machinery: frames inline up to 1 MiB, chunks
//! beyond, bounded memory either way) in the internal cache namespace [`OUTPUT_NS`], without
//! expiry, under a key made of the run, the step and the attempt's fencing token. The step's
//! recorded value is that key. A stale attempt writes its output under its own token's key and
//! its step record is refused, so its output is never the one a replay finds (and it drops it).
//! Resetting, forgetting or pruning a run drops the output of the steps it forgets.

use std::ffi::OsStr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::lock::KeepAlive;
use crate::memo::{MemoOutcome, MemoPolicy, MemoRecorder, MemoSink, Stream};
#[cfg(test)]
use crate::run::run_prefix;
use crate::run::{step_prefix, HeldRun, OUTPUT_NS};
use crate::storage::RunOps;
use crate::store::Store;

/// What [`Store::command_step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandStep {
    /// The step was recorded before: its output was replayed, nothing ran.
    Replayed,
    /// The command ran and exited with `status` (recorded as done if 0, as failed otherwise).
    Ran {
        /// Its exit status as a shell reports it.
        status: i32,
    },
}

/// The version of a command step: a digest of its command line (each argument, its length
/// first, so that `a b` and `"a b"` differ), shown in `StepChanged` messages.
///
/// ```
/// assert_ne!(cairn::command_version(&["echo", "a b"]), cairn::command_version(&["echo", "a", "b"]));
/// ```
pub fn command_version<S: AsRef<OsStr>>(argv: &[S]) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut digest = Sha256::new();
    for arg in argv {
        let bytes = arg.as_ref().as_bytes();
        digest.update((bytes.len() as u64).to_be_bytes());
        digest.update(bytes);
    }
    // By hand rather than a `format!` per byte: this runs in every `cairn step` process.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut version = String::with_capacity(21);
    version.push_str("argv:");
    for b in &digest.finalize()[..8] {
        version.push(char::from(HEX[usize::from(b >> 4)]));
        version.push(char::from(HEX[usize::from(b & 15)]));
    }
    version
}

/// The output key of step `name` of run `id` by the attempt holding `token`, for one call
/// (`call`: two processes of one script running the same step side by side write apart, and
/// the one whose record is refused drops only its own): each part led by its length, so that
/// one run's (or one step's) keys are exactly those with its prefix.
fn output_key(id: &str, name: &str, token: i64, call: &str) -> String {
    format!("{}{token}/{call}", step_prefix(id, name))
}

/// This call among the processes of one host: its pid and the time, in nanoseconds.
fn this_call() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}.{nanos}", std::process::id())
}

/// Kept until the step is forgotten: no expiry.
fn forever() -> MemoPolicy {
    MemoPolicy::new(Duration::MAX)
}

impl Store {
    /// The position of step `name` in run `run` for a caller whose steps are processes of
    /// their own (no [`HeldRun::next_step`] counter survives between them): the position it
    /// was recorded at, else one after the last recorded step.
    pub fn step_position(&self, run: &HeldRun, name: &str) -> Result<i64> {
        crate::run::validate_step_name(name)?;
        let steps = self.engine.steps_list(run.id())?;
        Ok(match steps.iter().find(|s| s.name == name) {
            Some(step) => step.seq,
            None => steps.iter().map(|s| s.seq).max().unwrap_or(0) + 1,
        })
    }

    /// Run step `name` of `run` as a command: if recorded (under the same `version`, else
    /// [`Error::StepChanged`]), replay its output through `replay` and run nothing; otherwise
    /// `run_it` runs the command, handing its output to the [`MemoRecorder`] (which keeps it
    /// as it comes) and passing it on, and returns its status. Status 0 records the step as
    /// done; any other records it as failed, with nothing kept, for the next attempt to run
    /// again. The run's lease is renewed while the command runs. `LeaseLost` if another
    /// attempt took the run meanwhile: nothing recorded, the output dropped.
    pub fn command_step<E: From<Error>>(
        &self,
        run: &HeldRun,
        name: &str,
        version: &str,
        replay: &mut MemoSink<'_, E>,
        run_it: impl FnOnce(&mut MemoRecorder<'_, '_>) -> std::result::Result<i32, E>,
    ) -> std::result::Result<CommandStep, E> {
        // As a step of a library run is: '#' is kept for repeated names.
        crate::run::validate_step_name(name)?;
        let cache = self.cache(OUTPUT_NS);
        if let Some(key) = self.replay_step::<String>(run, name, version)? {
            let gone = || {
                Error::invalid(format!(
                    "the recorded output of step '{name}' of run '{}' is gone; to run it again: cairn run reset {} --from {}",
                    run.id(),
                    crate::error::shell_word(run.id()),
                    crate::error::shell_word(name)
                ))
            };
            cache.memo_stream(&key, forever(), replay, |_| Err(E::from(gone())))?;
            return Ok(CommandStep::Replayed);
        }
        let key = output_key(run.id(), name, run.token(), &this_call());
        if key.len() > crate::MAX_KEY_BYTES {
            // Each is valid alone; the output's key holds both.
            return Err(E::from(Error::invalid(format!(
                "the run id ({} bytes) and the step name ({} bytes) are too long together for cairn step, which keeps \
                 the output under a key holding both: keep them under {} bytes together",
                run.id().len(),
                name.len(),
                crate::MAX_KEY_BYTES - 64
            ))));
        }
        let renewer = if self.journal_mode() == "memory" { None } else { Some(self.keep_run_alive(run)?) };
        let started = self.now_millis();
        let mut ignore = |_: Stream, _: &[u8]| Ok::<(), E>(());
        // Failures are kept too, for a moment: their output's tail is what the step shows.
        let ran = cache.memo_stream(&key, forever().force(true).cache_failures(true), &mut ignore, run_it);
        // A lost lease shows when the step is recorded, below.
        let _ = renewer.map(KeepAlive::stop);
        let status = match ran? {
            MemoOutcome::Ran { status, stored } => {
                if status == 0 && !stored {
                    return Err(E::from(Error::invalid(format!(
                        "the output of step '{name}' was removed from the store while it ran; run the script again"
                    ))));
                }
                status
            }
            // Not reached: a forced memo runs the command.
            MemoOutcome::Replayed { status } | MemoOutcome::Stale { status, .. } => status,
        };
        let glimpse = self.glimpse(&cache, &key);
        // The position is taken with the record, not before the command: steps of one script
        // run side by side (`cairn step a ... & cairn step b ... & wait`) get positions of
        // their own, in the order they are recorded, so a reset from one keeps the others.
        let seq = None;
        if status == 0 {
            let head = glimpse.as_ref().map(Glimpse::head);
            if let Err(e) =
                self.record_step_with_output(run, name, seq, version, started, Ok(&key), head.as_deref())
            {
                let _ = cache.memo_forget(&key);
                return Err(E::from(self.why_not_recorded(run, name, e)));
            }
        } else {
            let _ = cache.memo_forget(&key);
            // The command's status is what the caller needs; a failure to record it (the run
            // lost meanwhile) changes nothing for the next attempt.
            let error = format!("the command exited with status {status}");
            let tail = glimpse.as_ref().map(Glimpse::tail);
            let _ = self.record_step_with_output::<String>(
                run,
                name,
                seq,
                version,
                started,
                Err(&error),
                tail.as_deref(),
            );
        }
        Ok(CommandStep::Ran { status })
    }
}

impl Store {
    /// A refused record is a lost lease, unless this attempt still holds the run: then another
    /// process of the same script recorded the step meanwhile (the same step run side by side).
    fn why_not_recorded(&self, run: &HeldRun, name: &str, e: Error) -> Error {
        if e.kind() != crate::ErrorKind::LeaseLost {
            return e;
        }
        match self.engine.run_get(run.id()) {
            Ok(Some(row)) if row.token == run.token() => Error::invalid(format!(
                "step '{name}' of run '{}' was recorded meanwhile by another process of this script: steps run \
                 side by side need names of their own; this one's command ran too, and its output is dropped",
                run.id()
            )),
            _ => e,
        }
    }

    /// The first and last bytes of the output kept under `key`, read back in bounded memory;
    /// None if it cannot be read (what it is for, operators' view, is not worth failing over).
    fn glimpse(&self, cache: &Cache<'_>, key: &str) -> Option<Glimpse> {
        let mut g = Glimpse::default();
        let mut sink = |stream: Stream, bytes: &[u8]| {
            g.take(stream, bytes);
            Ok::<(), Error>(())
        };
        let gone = |_: &mut MemoRecorder<'_, '_>| Err::<i32, Error>(Error::invalid("no output kept"));
        cache.memo_stream(key, forever().cache_failures(true), &mut sink, gone).ok()?;
        Some(g)
    }
}

/// How much of a command step's output is kept beside it for operators, each way.
const GLIMPSE_BYTES: usize = 1000;
/// And in lines.
const GLIMPSE_LINES: usize = 10;

/// The head and the tail of each stream of a command's output.
#[derive(Default)]
struct Glimpse {
    out_head: Vec<u8>,
    out_tail: std::collections::VecDeque<u8>,
    err_head: Vec<u8>,
    err_tail: std::collections::VecDeque<u8>,
}

impl Glimpse {
    fn take(&mut self, stream: Stream, bytes: &[u8]) {
        let (head, tail) = match stream {
            Stream::Stdout => (&mut self.out_head, &mut self.out_tail),
            Stream::Stderr => (&mut self.err_head, &mut self.err_tail),
        };
        let room = GLIMPSE_BYTES.saturating_sub(head.len());
        head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let keep = &bytes[bytes.len().saturating_sub(GLIMPSE_BYTES)..];
        tail.extend(keep);
        while tail.len() > GLIMPSE_BYTES {
            tail.pop_front();
        }
    }

    /// The start of what a step printed: its output, else its error output.
    fn head(&self) -> String {
        let bytes = if self.out_head.is_empty() { &self.err_head } else { &self.out_head };
        let text = String::from_utf8_lossy(bytes);
        text.lines().take(GLIMPSE_LINES).collect::<Vec<_>>().join("\n")
    }

    /// The end of why a step failed: its error output, else its output.
    fn tail(&self) -> String {
        let tail = if self.err_tail.is_empty() { &self.out_tail } else { &self.err_tail };
        let bytes: Vec<u8> = tail.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(GLIMPSE_LINES)..].join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step shows the first lines of what it printed, or the last lines of what it
    /// complained about, each cut to a bounded size whatever the output's.
    #[test]
    fn a_glimpse_keeps_the_head_of_the_output_and_the_tail_of_the_errors() {
        let mut g = Glimpse::default();
        let many: String = (0..100).map(|i| format!("line {i}\n")).collect();
        g.take(Stream::Stdout, many.as_bytes());
        g.take(Stream::Stderr, b"warning\n");
        g.take(Stream::Stderr, many.as_bytes());
        assert_eq!(g.head(), (0..10).map(|i| format!("line {i}")).collect::<Vec<_>>().join("\n"));
        assert_eq!(g.tail(), (90..100).map(|i| format!("line {i}")).collect::<Vec<_>>().join("\n"));
        let mut quiet = Glimpse::default();
        quiet.take(Stream::Stderr, b"only errors\n");
        assert_eq!((quiet.head(), quiet.tail()), ("only errors".to_owned(), "only errors".to_owned()));
    }

    /// Joining a finished run for one step reads the output namespace's policy with it: the
    /// same answer a hit would read, for every kind of bounds, so that the replay of the
    /// output need not read it.
    #[test]
    fn the_output_policy_read_with_a_finished_run_is_the_one_a_hit_reads() -> Result<()> {
        use crate::{CacheLimits, Eviction, RunOptions};
        let dir = tempfile::tempdir().map_err(|e| Error::invalid(e.to_string()))?;
        let path = dir.path().join("state.db");
        let store = Store::open(&path)?;
        let options = RunOptions::new().keep_alive(false);
        let mut run = store.run_with("r", options.clone())?;
        run.step("a", || Ok::<_, Error>(1i64))?;
        run.finish()?;
        let lru = Eviction::LeastRecentlyUsed;
        let bounds = [
            None,
            Some(CacheLimits { max_entries: Some(10), max_bytes: None, eviction: lru }),
            Some(CacheLimits { max_entries: None, max_bytes: Some(1 << 20), eviction: lru }),
            Some(CacheLimits { max_entries: None, max_bytes: None, eviction: lru }),
            Some(CacheLimits { max_entries: Some(10), ..CacheLimits::default() }),
        ];
        let mut reads = Vec::new();
        for limits in bounds {
            if let Some(limits) = limits {
                store.cache(OUTPUT_NS).set_limits(limits)?;
            }
            let reader = Store::open(&path)?;
            let read = reader.cache_state().is_lru(&reader.engine, OUTPUT_NS)?;
            let joined = Store::open(&path)?;
            assert_eq!(joined.cache_state().known_policy(OUTPUT_NS), None);
            joined.take_run_for_step("r", &options, "a")?;
            assert_eq!(joined.cache_state().known_policy(OUTPUT_NS), Some(read), "{limits:?}");
            reads.push(read);
        }
        assert_eq!(reads, [false, true, true, false, false], "only bounded lru namespaces record use");
        Ok(())
    }

    /// A command's version is what earlier versions of cairn recorded for it, or every step
    /// they recorded would be StepChanged.
    #[test]
    fn a_commands_version_is_the_one_recorded_before() {
        assert_eq!(command_version(&["echo", "hello"]), "argv:08368a0963c4cc67");
    }

    #[test]
    fn one_runs_output_keys_are_not_under_another_runs_prefix() {
        assert!(!output_key("a/1", "b", 1, "9.1").starts_with(&run_prefix("a")));
        assert!(!output_key("ab", "c", 1, "9.1").starts_with(&step_prefix("ab", "c/1")));
        assert!(output_key("ab", "c", 7, "9.1").starts_with(&step_prefix("ab", "c")));
        assert_ne!(output_key("ab", "c", 7, "9.1"), output_key("ab", "c", 7, "9.2"), "one key per call");
    }
}

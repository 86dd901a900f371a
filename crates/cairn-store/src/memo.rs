//! Memoizing a command's result: its stdout, stderr and exit status, replayed exactly while
//! fresh, computed once across processes when missing, and optionally served stale while one
//! process refreshes it.
//!
//! A result is stored as an ordinary cache entry of its namespace, in a small binary record
//! (a magic tag, the time it was produced, the status, the two outputs). The entry lives for
//! `ttl + stale`; whether it is fresh or stale is decided from the time inside the record, so
//! a call with a shorter `--ttl` than the one that stored it still sees it as expired.

use std::borrow::Cow;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cache::{Cache, MAX_VALUE_BYTES};
use crate::codec::{Decode, DecodeError, Encode};
use crate::error::{Error, Result};

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

/// How long results stay fresh, and what is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoPolicy {
    /// How long a result is replayed as is.
    pub ttl: Duration,
    /// How long after `ttl` an expired result may still be served while a refresh runs.
    pub stale: Duration,
    /// Keep results of commands that exited non-zero (by default they are not stored).
    pub cache_failures: bool,
}

impl MemoPolicy {
    /// Fresh for `ttl`, never stale, failures not kept.
    pub fn new(ttl: Duration) -> Self {
        MemoPolicy { ttl, stale: Duration::ZERO, cache_failures: false }
    }

    fn validate(&self) -> Result<()> {
        crate::duration::at_least_1ms(
            self.ttl,
            "a memo TTL",
            "would never replay a result (every call would run the command)",
        )
    }
}

/// The outcome of [`Cache::memo`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Memoized {
    /// A fresh stored result (perhaps stored by another process while this one waited).
    Cached(CommandOutput),
    /// This call ran the command. `stored` is false for a failure without
    /// [`MemoPolicy::cache_failures`], and for outputs larger than a cache value may be.
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

/// A stable cache key for a command line run in `cwd`: a hash of both, so that any argv
/// (long, binary, with NUL-free bytes of any encoding) makes a short key.
///
/// ```
/// use std::path::Path;
///
/// let a = cairn::command_key(&["ls".into(), "-l".into()], Path::new("/tmp"));
/// let b = cairn::command_key(&["ls".into(), "-l".into()], Path::new("/home"));
/// assert_ne!(a, b);
/// assert!(a.starts_with("cmd:"));
/// ```
pub fn command_key(argv: &[OsString], cwd: &Path) -> String {
    let mut h = Sha256::new();
    // Length-prefixed, so that ["a b"] and ["a", "b"] differ.
    for part in std::iter::once(cwd.as_os_str()).chain(argv.iter().map(OsString::as_os_str)) {
        let bytes = os_bytes(part);
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(&bytes);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("cmd:{hex}")
}

#[cfg(unix)]
fn os_bytes(s: &std::ffi::OsStr) -> Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    Cow::Borrowed(s.as_bytes())
}

#[cfg(not(unix))]
fn os_bytes(s: &std::ffi::OsStr) -> Cow<'_, [u8]> {
    Cow::Owned(s.to_string_lossy().into_owned().into_bytes())
}

const MAGIC: &[u8; 6] = b"CMEMO1";
const HEADER: usize = MAGIC.len() + 8 + 4 + 8;

/// A stored result: when it was produced, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    produced_at: i64,
    output: CommandOutput,
}

impl Encode for Record {
    fn encode(&self) -> Result<Cow<'_, [u8]>> {
        let o = &self.output;
        let mut b = Vec::with_capacity(HEADER + o.stdout.len() + o.stderr.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.produced_at.to_be_bytes());
        b.extend_from_slice(&o.status.to_be_bytes());
        b.extend_from_slice(&(o.stdout.len() as u64).to_be_bytes());
        b.extend_from_slice(&o.stdout);
        b.extend_from_slice(&o.stderr);
        Ok(Cow::Owned(b))
    }
}

impl Decode for Record {
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let bad = |what: &str| DecodeError::new("a memoized command result", what.to_owned());
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad("no memo record header"));
        }
        let int = |at: usize, n: usize| -> [u8; 8] {
            let mut a = [0u8; 8];
            a[8 - n..].copy_from_slice(&bytes[at..at + n]);
            a
        };
        let produced_at = i64::from_be_bytes(int(6, 8));
        let status = i32::from_be_bytes(bytes[14..18].try_into().map_err(|_| bad("short status"))?);
        let out_len = u64::from_be_bytes(int(18, 8));
        let out_end = usize::try_from(out_len)
            .ok()
            .and_then(|n| n.checked_add(HEADER))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| bad("stdout length beyond the record"))?;
        Ok(Record {
            produced_at,
            output: CommandOutput {
                status,
                stdout: bytes[HEADER..out_end].to_vec(),
                stderr: bytes[out_end..].to_vec(),
            },
        })
    }
}

/// Why the computation ended without a value to store.
enum NotStored {
    Cairn(Error),
    Kept(CommandOutput),
}

impl From<Error> for NotStored {
    fn from(e: Error) -> Self {
        NotStored::Cairn(e)
    }
}

impl Cache<'_> {
    /// Replay the stored result of `key` while fresh; otherwise `run` the command (once across
    /// processes: overlapping calls wait for the first one's result) and keep what it produced
    /// according to `policy`.
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
        policy.validate()?;
        let now = self.store.now();
        if let Some(record) = self.get::<Record>(key)? {
            let age = Duration::from_millis(u64::try_from(now - record.produced_at).unwrap_or(0));
            if age < policy.ttl {
                return Ok(Memoized::Cached(record.output));
            }
            if age < policy.ttl.saturating_add(policy.stale) {
                return Ok(Memoized::Stale { output: record.output, refreshing: self.is_filling(key)? });
            }
        }
        self.compute(key, policy, run)
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
        policy.validate()?;
        Ok(match self.compute(key, policy, run)? {
            Memoized::Ran { output, .. } => Some(output),
            _ => None,
        })
    }

    fn compute(
        &self,
        key: &str,
        policy: MemoPolicy,
        run: impl FnOnce() -> Result<CommandOutput>,
    ) -> Result<Memoized> {
        let store = self.store;
        let fresh = |bytes: &[u8]| {
            Record::decode(bytes.to_vec()).is_ok_and(|r| {
                let age = store.now().saturating_sub(r.produced_at);
                u128::try_from(age).unwrap_or(0) < policy.ttl.as_millis()
            })
        };
        let mut ran = false;
        let keep = policy.ttl.saturating_add(policy.stale);
        let result = self.get_or_fill(key, Some(keep), &fresh, || {
            ran = true;
            let output = run()?;
            let record = Record { produced_at: store.now(), output };
            let size = HEADER + record.output.stdout.len() + record.output.stderr.len();
            if (record.output.success() || policy.cache_failures) && size <= MAX_VALUE_BYTES {
                Ok(record)
            } else {
                Err(NotStored::Kept(record.output))
            }
        });
        match result {
            Ok(record) if ran => Ok(Memoized::Ran { output: record.output, stored: true }),
            Ok(record) => Ok(Memoized::Cached(record.output)),
            Err(NotStored::Kept(output)) => Ok(Memoized::Ran { output, stored: false }),
            Err(NotStored::Cairn(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, Options};

    fn out(s: &str, status: i32) -> CommandOutput {
        CommandOutput { status, stdout: s.as_bytes().to_vec(), stderr: format!("err:{s}").into_bytes() }
    }

    #[test]
    fn record_round_trips_binary_outputs_exactly() {
        let output = CommandOutput { status: -3, stdout: vec![0, 255, 10, 0], stderr: vec![0xc3, 0x28] };
        let r = Record { produced_at: 1_700_000_000_123, output };
        let back = Record::decode(r.encode().unwrap().into_owned()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn truncated_or_foreign_records_are_decode_errors() {
        let r = Record { produced_at: 5, output: out("abc", 0) };
        let bytes = r.encode().unwrap().into_owned();
        assert!(Record::decode(bytes[..HEADER - 1].to_vec()).is_err());
        assert!(Record::decode(b"plain value that is long enough".to_vec()).is_err());
        let mut lying = bytes.clone();
        lying[18..26].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(Record::decode(lying).is_err());
    }

    #[test]
    fn command_key_separates_argument_boundaries_and_directories() {
        let k = |args: &[&str], cwd: &str| {
            command_key(&args.iter().map(OsString::from).collect::<Vec<_>>(), Path::new(cwd))
        };
        assert_eq!(k(&["echo", "a b"], "/x"), k(&["echo", "a b"], "/x"));
        assert_ne!(k(&["echo", "a b"], "/x"), k(&["echo", "a", "b"], "/x"));
        assert_ne!(k(&["echo"], "/x"), k(&["echo"], "/y"));
    }

    #[test]
    fn fresh_results_replay_then_expire_then_serve_stale_within_the_window() -> Result<()> {
        let clock = ManualClock::new(1_000_000);
        let store = Options::new().clock(clock.clone()).open_in_memory()?;
        let memo = store.cache("m");
        let policy = MemoPolicy {
            ttl: Duration::from_secs(10),
            stale: Duration::from_secs(60),
            cache_failures: false,
        };
        assert_eq!(
            memo.memo("k", policy, || Ok(out("v1", 0)))?,
            Memoized::Ran { output: out("v1", 0), stored: true }
        );
        clock.advance(Duration::from_secs(9));
        assert_eq!(memo.memo("k", policy, || panic!("must replay"))?, Memoized::Cached(out("v1", 0)));
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            memo.memo("k", policy, || panic!("must serve stale"))?,
            Memoized::Stale { output: out("v1", 0), refreshing: false }
        );
        // Without a stale window the same stored result is a miss.
        let strict = MemoPolicy::new(Duration::from_secs(10));
        assert_eq!(
            memo.memo("k", strict, || Ok(out("v2", 0)))?,
            Memoized::Ran { output: out("v2", 0), stored: true }
        );
        // A refresh of a fresh result runs nothing.
        assert_eq!(memo.memo_refresh("k", policy, || panic!("fresh"))?, None);
        clock.advance(Duration::from_secs(70 + 11));
        assert_eq!(
            memo.memo("k", policy, || Ok(out("v3", 0)))?,
            Memoized::Ran { output: out("v3", 0), stored: true }
        );
        Ok(())
    }

    #[test]
    fn failures_are_kept_only_when_asked() -> Result<()> {
        let store = Store::open_in_memory()?;
        let memo = store.cache("m");
        let policy = MemoPolicy::new(Duration::from_secs(10));
        assert_eq!(
            memo.memo("k", policy, || Ok(out("bad", 2)))?,
            Memoized::Ran { output: out("bad", 2), stored: false }
        );
        assert_eq!(
            memo.memo("k", policy, || Ok(out("bad", 3)))?,
            Memoized::Ran { output: out("bad", 3), stored: false }
        );
        let keep = MemoPolicy { cache_failures: true, ..policy };
        assert_eq!(
            memo.memo("k", keep, || Ok(out("bad", 4)))?,
            Memoized::Ran { output: out("bad", 4), stored: true }
        );
        assert_eq!(memo.memo("k", policy, || panic!("kept"))?, Memoized::Cached(out("bad", 4)));
        Ok(())
    }

    use crate::Store;
}

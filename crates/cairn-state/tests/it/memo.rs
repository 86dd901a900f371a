//! Memoized command results (the CLI's `cairn memo`): replayed while fresh, served stale
//! within the window, failures kept only when asked, runs forced; outputs of any size
//! recorded in chunks as they come and replayed exactly, a command run once for overlapping
//! callers; on both engines. What only a file shows, the chunk rows themselves (none left
//! behind by a result replaced, forgotten, cleared, swept or never kept), is checked on
//! SQLite alone. (The record format and the command key are tested beside the code.)

use std::time::Duration;

use cairn::{CommandOutput, Error, MemoOutcome, MemoPolicy, Memoized, Store, Stream};

use crate::{contract, temp_store};

fn out(s: &str, status: i32) -> CommandOutput {
    CommandOutput { status, stdout: s.as_bytes().to_vec(), stderr: format!("err:{s}").into_bytes() }
}

contract! {
    fn fresh_results_replay_then_expire_then_serve_stale_within_the_window(f) {
        let memo = f.store.cache("m");
        let policy = MemoPolicy::new(Duration::from_secs(10)).stale(Duration::from_secs(60));
        assert_eq!(
            memo.memo("k", policy, || Ok(out("v1", 0)))?,
            Memoized::Ran { output: out("v1", 0), stored: true }
        );
        f.clock.advance(Duration::from_secs(9));
        assert_eq!(memo.memo("k", policy, || panic!("must replay"))?, Memoized::Cached(out("v1", 0)));
        f.clock.advance(Duration::from_secs(2));
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
        f.clock.advance(Duration::from_secs(70 + 11));
        assert_eq!(
            memo.memo("k", policy, || Ok(out("v3", 0)))?,
            Memoized::Ran { output: out("v3", 0), stored: true }
        );
        assert_eq!(
            f.reopen().cache("m").memo("k", policy, || panic!("stored"))?,
            Memoized::Cached(out("v3", 0))
        );
        Ok(())
    }

    fn failures_are_kept_only_when_asked(f) {
        let memo = f.store.cache("m");
        let policy = MemoPolicy::new(Duration::from_secs(10));
        assert_eq!(
            memo.memo("k", policy, || Ok(out("bad", 2)))?,
            Memoized::Ran { output: out("bad", 2), stored: false }
        );
        assert_eq!(
            memo.memo("k", policy, || Ok(out("bad", 3)))?,
            Memoized::Ran { output: out("bad", 3), stored: false }
        );
        let keep = policy.cache_failures(true);
        assert_eq!(
            memo.memo("k", keep, || Ok(out("bad", 4)))?,
            Memoized::Ran { output: out("bad", 4), stored: true }
        );
        assert_eq!(memo.memo("k", policy, || panic!("kept"))?, Memoized::Cached(out("bad", 4)));
        Ok(())
    }

    fn force_runs_even_when_fresh_and_stores_the_new_result(f) {
        let memo = f.store.cache("m");
        let policy = MemoPolicy::new(Duration::from_secs(60));
        memo.memo("k", policy, || Ok(out("v1", 0)))?;
        assert_eq!(
            memo.memo("k", policy.force(true), || Ok(out("v2", 0)))?,
            Memoized::Ran { output: out("v2", 0), stored: true }
        );
        assert_eq!(f.reopen().cache("m").memo("k", policy, || panic!("fresh"))?, Memoized::Cached(out("v2", 0)));
        Ok(())
    }

    /// A memo output of several chunks, written as it comes, replays exactly from another
    /// connection, and is forgotten with its chunks.
    fn a_large_memo_output_replays_exactly_from_another_connection(f) {
        let policy = cairn::MemoPolicy::new(Duration::from_secs(3600));
        let big = pieces(4 * 1024 * 1024 + 3);
        assert_eq!(record(&f.store, "k", policy, &big)?, cairn::MemoOutcome::Ran { status: 0, stored: true });
        let other = f.reopen();
        assert_eq!(replay(&other, "k", policy)?, split(&big));
        assert!(other.cache("m").memo_forget("k")?);
        let ran = record(&f.store, "k", policy, &pieces(10))?;
        assert_eq!(ran, cairn::MemoOutcome::Ran { status: 0, stored: true }, "forgotten: run again");
        Ok(())
    }

    /// Several connections asking for one large result at once: the command runs once, and
    /// every one of them gets its output whole.
    fn overlapping_memo_calls_run_a_large_command_once(f) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let runs = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let store = f.options().busy_timeout(Duration::from_secs(60)).open(&f.location).expect("open");
                let runs = Arc::clone(&runs);
                std::thread::spawn(move || -> Result<(Vec<u8>, Vec<u8>), Error> {
                    let big = pieces(2 * 1024 * 1024);
                    // What reached this caller, replayed or passed on while it ran.
                    let got = std::cell::RefCell::new((Vec::new(), Vec::new()));
                    let take = |s: cairn::Stream, b: &[u8]| {
                        let mut g = got.borrow_mut();
                        match s {
                            cairn::Stream::Stdout => g.0.extend_from_slice(b),
                            cairn::Stream::Stderr => g.1.extend_from_slice(b),
                        }
                    };
                    let policy = cairn::MemoPolicy::new(Duration::from_secs(3600));
                    store.cache("m").memo_stream(
                        "k",
                        policy,
                        &mut |s, b| {
                            take(s, b);
                            Ok::<_, Error>(())
                        },
                        |rec| {
                            runs.fetch_add(1, Ordering::SeqCst);
                            for (s, b) in &big {
                                rec.write(*s, b)?;
                                take(*s, b);
                            }
                            Ok(0)
                        },
                    )?;
                    Ok(got.into_inner())
                })
            })
            .collect();
        let want = split(&pieces(2 * 1024 * 1024));
        for h in handles {
            assert!(h.join().expect("thread")? == want);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        Ok(())
    }
}

/// Output of `n` bytes, stdout and stderr interleaved in writes of uneven sizes.
pub fn pieces(n: usize) -> Vec<(Stream, Vec<u8>)> {
    let mut out = Vec::new();
    let (mut made, mut i) = (0, 0u64);
    while made < n {
        let len = (1 + (i * 7919) % 70_000) as usize;
        let len = len.min(n - made);
        let stream = if i % 5 == 4 { Stream::Stderr } else { Stream::Stdout };
        out.push((stream, (0..len).map(|j| ((j as u64 + i) % 251) as u8).collect()));
        made += len;
        i += 1;
    }
    out
}

/// Record `out` as the result of `key`.
pub fn record(
    store: &Store,
    key: &str,
    policy: MemoPolicy,
    out: &[(Stream, Vec<u8>)],
) -> Result<MemoOutcome, Error> {
    store.cache("m").memo_stream(key, policy, &mut |_, _| Ok::<_, Error>(()), |rec| {
        for (s, b) in out {
            rec.write(*s, b)?;
        }
        Ok(0)
    })
}

/// Replay `key`, which must be stored: what came out, stdout and stderr apart.
pub fn replay(store: &Store, key: &str, policy: MemoPolicy) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let outcome = store.cache("m").memo_stream(
        key,
        policy,
        &mut |s, b| {
            match s {
                Stream::Stdout => o.extend_from_slice(b),
                Stream::Stderr => e.extend_from_slice(b),
            }
            Ok::<_, Error>(())
        },
        |_| panic!("{key} must replay, not run"),
    )?;
    assert!(matches!(outcome, MemoOutcome::Replayed { status: 0 }), "{outcome:?}");
    Ok((o, e))
}

pub fn split(out: &[(Stream, Vec<u8>)]) -> (Vec<u8>, Vec<u8>) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    for (s, b) in out {
        match s {
            Stream::Stdout => o.extend_from_slice(b),
            Stream::Stderr => e.extend_from_slice(b),
        }
    }
    (o, e)
}

fn chunk_rows(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM cairn_memo_chunk", [], |r| r.get(0)).unwrap()
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_large_output_is_kept_in_chunks_that_go_with_its_entry_whichever_way_it_goes() -> Result<(), Error> {
    let (_d, path, store, clock) = temp_store();
    let policy = MemoPolicy::new(HOUR);
    let big = pieces(5 * 1024 * 1024 + 17);
    let c = store.cache("m");
    for key in ["a", "b", "c", "d", "e"] {
        record(&store, key, policy, &big)?;
    }
    assert!(chunk_rows(&path) >= 5 * 5, "about 1 MiB a chunk: {}", chunk_rows(&path));
    assert_eq!(replay(&store, "a", policy)?, split(&big));

    let per_result = chunk_rows(&path) / 5;
    record(&store, "a", policy.force(true), &pieces(3 * 1024 * 1024))?;
    assert_eq!(
        replay(&store, "a", policy)?,
        split(&pieces(3 * 1024 * 1024)),
        "the new result replaces the old"
    );
    record(&store, "b", policy.force(true), &pieces(10))?;
    assert_eq!(chunk_rows(&path), 3 * per_result + 3, "the old chunks went; a small result is inline");

    assert!(c.memo_forget("a")?);
    assert!(c.delete("c")?);
    assert_eq!(c.clear_prefix("d")?, 1);
    assert_eq!(chunk_rows(&path), per_result, "forget, delete and clear drop chunks");
    store.cache("m").set("e", "now a plain value", None)?;
    store.sweep()?;
    assert_eq!(
        chunk_rows(&path),
        per_result,
        "an entry replaced by another value keeps nothing alive, but..."
    );
    store.cache("m").delete("e")?;
    assert_eq!(chunk_rows(&path), 0, "...its chunks go with the entry at the latest");

    record(&store, "short", MemoPolicy::new(Duration::from_secs(1)), &big)?;
    clock.advance(Duration::from_secs(2));
    assert!(chunk_rows(&path) > 0);
    store.sweep()?;
    assert_eq!(chunk_rows(&path), 0, "an expired result's chunks go with the sweep");
    Ok(())
}

#[test]
fn a_run_not_kept_or_failing_mid_way_leaves_no_chunks() -> Result<(), Error> {
    let (_d, path, store, _c) = temp_store();
    let policy = MemoPolicy::new(HOUR);
    let big = pieces(3 * 1024 * 1024);
    let outcome = store.cache("m").memo_stream("failed", policy, &mut |_, _| Ok::<_, Error>(()), |rec| {
        for (s, b) in &big {
            rec.write(*s, b)?;
        }
        Ok(2)
    })?;
    assert_eq!(outcome, MemoOutcome::Ran { status: 2, stored: false });
    let err = store.cache("m").memo_stream("broke", policy, &mut |_, _| Ok::<_, Error>(()), |rec| {
        for (s, b) in &big {
            rec.write(*s, b)?;
        }
        Err(Error::InvalidInput("the command could not be read to its end".into()))
    });
    assert!(err.is_err());
    assert_eq!(chunk_rows(&path), 0);
    assert!(store.cache("m").keys("")?.is_empty());
    Ok(())
}

#[test]
fn results_stored_by_the_first_memo_format_still_replay() -> Result<(), Error> {
    let (_d, _p, store, _c) = temp_store();
    let mut v1 = b"CMEMO1".to_vec();
    v1.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    v1.extend_from_slice(&0i32.to_be_bytes());
    v1.extend_from_slice(&3u64.to_be_bytes());
    v1.extend_from_slice(b"outerr");
    store.cache("m").set("old", v1, HOUR)?;
    assert_eq!(replay(&store, "old", MemoPolicy::new(HOUR))?, (b"out".to_vec(), b"err".to_vec()));
    Ok(())
}

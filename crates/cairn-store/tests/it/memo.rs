//! Memoized command results (the CLI's `cairn memo`): replayed while fresh, served stale
//! within the window, failures kept only when asked; on both engines. (The record format and
//! the command key are tested beside the code.)

use std::time::Duration;

use cairn::{CommandOutput, MemoPolicy, Memoized};

use crate::contract;

fn out(s: &str, status: i32) -> CommandOutput {
    CommandOutput { status, stdout: s.as_bytes().to_vec(), stderr: format!("err:{s}").into_bytes() }
}

contract! {
    fn fresh_results_replay_then_expire_then_serve_stale_within_the_window(f) {
        let memo = f.store.cache("m");
        let policy = MemoPolicy {
            ttl: Duration::from_secs(10),
            stale: Duration::from_secs(60),
            cache_failures: false,
        };
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
        let keep = MemoPolicy { cache_failures: true, ..policy };
        assert_eq!(
            memo.memo("k", keep, || Ok(out("bad", 4)))?,
            Memoized::Ran { output: out("bad", 4), stored: true }
        );
        assert_eq!(memo.memo("k", policy, || panic!("kept"))?, Memoized::Cached(out("bad", 4)));
        Ok(())
    }
}

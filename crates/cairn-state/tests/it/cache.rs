//! The cache's semantics, with a manual clock: no test here sleeps. Every test but two runs on
//! both engines (`contract!`); the exceptions are about SQLite's private in-memory stores and
//! the file beside the database where reading processes leave their hit counts.

use std::cell::Cell;
use std::time::Duration;

use cairn::{CacheLimits, Clock, Error, ErrorKind, Eviction, Json, Store};
use serde::{Deserialize, Serialize};

use crate::contract;
use crate::engines::Fixture;
use crate::temp_store;

const MIN: Duration = Duration::from_secs(60);

contract! {
    fn set_is_an_idempotent_upsert(f) {
        let store = &f.store;
        let c = store.cache("n");
        c.set("k", "v1", None)?;
        c.set("k", "v1", None)?;
        c.set("k", "v2", None)?;
        assert_eq!(c.get::<String>("k")?.as_deref(), Some("v2"));
        assert_eq!(c.keys("")?, vec!["k"]);
        assert_eq!(c.stats()?.entries, 1);
        Ok(())
    }

    fn an_entry_expires_exactly_at_its_ttl(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        c.set("k", "v", MIN)?;
        clock.advance(MIN - Duration::from_millis(1));
        assert_eq!(c.get::<String>("k")?.as_deref(), Some("v"));
        assert!(c.contains("k")?);
        clock.advance(Duration::from_millis(1));
        assert_eq!(c.get::<String>("k")?, None, "an expired entry is a miss");
        assert!(!c.contains("k")?);
        assert!(c.keys("")?.is_empty());
        Ok(())
    }

    fn sweep_removes_only_expired_entries_and_counts_them(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        for i in 0..10 {
            c.set(&format!("short{i}"), "x", MIN)?;
        }
        c.set("long", "x", MIN * 10)?;
        c.set("forever", "x", None)?;
        store.cache("other").set("short", "x", MIN)?;
        clock.advance(MIN * 2);
        assert_eq!(c.sweep()?, 10);
        assert_eq!(c.stats()?.entries, 2);
        assert_eq!(store.sweep()?, 1, "the store-wide sweep finds the other namespace's entry");
        assert_eq!(store.sweep()?, 0);
        Ok(())
    }

    fn writes_sweep_expired_entries_in_passing_so_the_store_cannot_grow_without_bound(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        // A scraper that caches every page for a minute and never sweeps explicitly.
        for round in 0..20 {
            for i in 0..50 {
                c.set(&format!("page-{round}-{i}"), vec![0u8; 100], MIN)?;
            }
            clock.advance(MIN * 2);
        }
        let entries = c.stats()?.entries;
        assert!(entries <= 100, "{entries} entries remain: expired ones are piling up");
        Ok(())
    }

    /// On SQLite a refresh leaves the entry filed in the sweep index under its first expiry (a
    /// lower bound): sweeps must still keep it while it is fresh, remove the expired entries
    /// filed beside it, and remove it once its own, later, expiry has passed.
    fn a_refreshed_entry_outlives_its_first_expiry_and_is_swept_at_its_last(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        c.set("refreshed", "v1", MIN)?;
        for i in 0..10 {
            c.set(&format!("short{i}"), "x", MIN)?;
        }
        clock.advance(MIN / 2);
        c.set("refreshed", "v2", MIN * 10)?;
        clock.advance(MIN * 2);
        assert_eq!(store.sweep()?, 10, "the explicit sweep takes the expired entries only");
        assert_eq!(c.get::<String>("refreshed")?.as_deref(), Some("v2"));
        clock.advance(MIN * 10);
        assert_eq!(store.sweep()?, 1, "swept at its last expiry");
        assert_eq!(c.stats()?.entries, 0);

        // The same through the sweep in passing, with more refreshed entries filed ahead of
        // the expired ones than one sweep in passing looks at (64): the sweeps must file them
        // again to reach the expired ones behind them.
        for i in 0..100 {
            c.set(&format!("refreshed{i}"), "v1", MIN)?;
        }
        clock.advance(Duration::from_millis(1));
        for i in 0..10 {
            c.set(&format!("short{i}"), "x", MIN)?;
        }
        for i in 0..100 {
            c.set(&format!("refreshed{i}"), "v2", MIN * 10)?;
        }
        clock.advance(MIN * 2);
        for i in 0..32 {
            store.cache("other").set(&format!("k{i}"), "v", None)?;
        }
        assert_eq!(c.stats()?.entries, 100, "writes swept the expired entries in passing");
        assert_eq!(c.get::<String>("refreshed7")?.as_deref(), Some("v2"));
        clock.advance(MIN * 10);
        for i in 0..32 {
            store.cache("other").set(&format!("k{i}"), "v", None)?;
        }
        assert_eq!(c.stats()?.entries, 0, "and the refreshed ones once they expired");
        Ok(())
    }

    /// A write or a touch that brings an entry's expiry earlier must be swept at the new
    /// expiry, not at the one it replaced.
    fn an_entry_whose_expiry_is_brought_earlier_is_swept_at_the_new_one(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        c.set("set", "v", MIN * 60)?;
        c.set("set", "v", MIN)?;
        c.set("touched", "v", MIN * 60)?;
        assert!(c.touch("touched", MIN)?);
        c.set("was-forever", "v", None)?;
        c.set("was-forever", "v", MIN)?;
        assert!(c.add("added", "v", MIN)?);
        clock.advance(MIN * 2);
        for i in 0..16 {
            store.cache("other").set(&format!("k{i}"), "v", None)?;
        }
        assert_eq!(c.stats()?.entries, 0, "the sweep in passing found all four");
        c.set("again", "v", MIN * 60)?;
        c.set("again", "v", MIN)?;
        clock.advance(MIN * 2);
        assert_eq!(store.sweep()?, 1, "the explicit sweep found it");
        Ok(())
    }

    /// An entry that no longer expires (a touch or a set without a TTL) may stay filed in
    /// SQLite's sweep index under its old expiry until a sweep looks at it: sweeps must keep it.
    fn an_entry_that_no_longer_expires_is_kept_by_every_sweep(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        for round in ["explicit", "in passing"] {
            c.set("touched", "v", MIN)?;
            assert!(c.touch("touched", None)?);
            c.set("set", "v", MIN)?;
            c.set("set", "w", None)?;
            clock.advance(MIN * 2);
            if round == "explicit" {
                assert_eq!(store.sweep()?, 0, "{round}");
            } else {
                for i in 0..16 {
                    store.cache("other").set(&format!("k{i}"), "v", None)?;
                }
            }
            assert_eq!(c.sweep()?, 0, "{round}");
            assert_eq!(c.get::<String>("touched")?.as_deref(), Some("v"), "{round}");
            assert_eq!(c.get::<String>("set")?.as_deref(), Some("w"), "{round}");
        }
        Ok(())
    }

    /// The sweep in passing is paid by the writes that create entries: a queue worker that
    /// never writes the cache does not sweep it (on a server, a transaction each time).
    fn only_writes_of_the_cache_sweep_it_in_passing(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        for i in 0..10 {
            c.set(&format!("k{i}"), "v", MIN)?;
        }
        clock.advance(MIN * 2);
        let other = f.reopen(); // a fresh store handle: its first cache write sweeps
        let l = other.ledger("q");
        for i in 0..20 {
            l.mark_done(&format!("id{i}"))?;
        }
        assert_eq!(c.stats()?.entries, 10, "ledger writes swept the cache");
        other.cache("n").set("fresh", "v", None)?;
        assert_eq!(c.stats()?.entries, 1, "a cache write sweeps in passing");
        Ok(())
    }

    fn add_stores_only_when_absent_or_expired(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        assert!(c.add("k", "first", MIN)?);
        assert!(!c.add("k", "second", MIN)?);
        assert_eq!(c.get::<String>("k")?.as_deref(), Some("first"));
        clock.advance(MIN);
        assert!(c.add("k", "third", None)?, "an expired entry counts as absent");
        assert_eq!(c.get::<String>("k")?.as_deref(), Some("third"));
        Ok(())
    }

    fn delete_reports_whether_a_fresh_entry_was_removed(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        c.set("k", "v", MIN)?;
        c.set("gone", "v", MIN)?;
        assert!(c.delete("k")?);
        assert!(!c.delete("k")?);
        clock.advance(MIN);
        assert!(!c.delete("gone")?, "an expired entry was not there for the caller");
        assert_eq!(c.stats()?.entries, 0);
        Ok(())
    }

    fn touch_re_expires_fresh_entries_only(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        c.set("k", "v", MIN)?;
        clock.advance(MIN / 2);
        assert!(c.touch("k", MIN)?);
        clock.advance(MIN * 3 / 4);
        assert!(c.contains("k")?, "touch moved the expiry to a minute after the touch");
        assert!(c.touch("k", None)?);
        clock.advance(MIN * 100);
        assert!(c.contains("k")?, "touch with None made it permanent");
        assert!(!c.touch("missing", MIN)?);
        Ok(())
    }

    fn incr_counts_from_zero_keeps_expiry_and_rejects_non_integers(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        assert_eq!(c.incr("hits", 1, MIN)?, 1);
        clock.advance(MIN / 2);
        assert_eq!(c.incr("hits", 41, None)?, 42);
        assert_eq!(c.get::<String>("hits")?.as_deref(), Some("42"));
        clock.advance(MIN / 2);
        assert_eq!(c.get::<i64>("hits")?, None, "the window set on creation still applies");
        assert_eq!(c.incr("hits", -3, None)?, -3, "an expired counter restarts from zero");
        c.set("text", "abc", None)?;
        assert_eq!(c.incr("text", 1, None).unwrap_err().kind(), ErrorKind::Decode);
        c.set("max", i64::MAX, None)?;
        assert_eq!(c.incr("max", 1, None).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(c.get::<i64>("max")?, Some(i64::MAX), "a failed incr changes nothing");
        Ok(())
    }

    fn keys_by_prefix_are_sorted_fresh_and_exact_at_the_boundary(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        for k in ["user:2", "user:10", "user;", "user", "usera", "order:1", "user:\u{10FFFF}x"] {
            c.set(k, "x", None)?;
        }
        c.set("user:old", "x", MIN)?;
        clock.advance(MIN);
        assert_eq!(c.keys("user:")?, vec!["user:10", "user:2", "user:\u{10FFFF}x"]);
        assert_eq!(c.keys("")?.len(), 7);
        assert!(c.keys("zzz")?.is_empty());
        Ok(())
    }

    fn len_counts_only_fresh_entries_of_the_namespace(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        assert_eq!(c.len()?, 0);
        assert!(c.is_empty()?);
        c.set("a", "x", None)?;
        c.set("b", "x", MIN)?;
        store.cache("other").set("c", "x", None)?;
        assert_eq!(c.len()?, 2);
        clock.advance(MIN);
        assert_eq!(c.len()?, 1, "an expired entry not yet swept is not counted");
        assert_eq!(c.stats()?.entries, 2, "while stats still count what is stored");
        Ok(())
    }

    fn set_many_writes_all_or_nothing_and_get_many_reads_in_order(f) {
        let store = &f.store;
        let c = store.cache("n");
        c.set_many([("a", 1_i64), ("b", 2)], MIN)?;
        assert_eq!(c.get_many::<i64, _>(["b", "missing", "a"])?, [Some(2), None, Some(1)]);
        let long = "k".repeat(5000);
        let err = c.set_many([("c", 3_i64), (long.as_str(), 4)], None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(c.get::<i64>("c")?, None, "nothing of a refused batch is stored");
        store.transaction(|tx| {
            tx.cache("n").set_many([("d", 4_i64)], None)?;
            assert_eq!(tx.cache("n").get_many::<i64, _>(["d"])?, [Some(4)]);
            Err::<(), _>(Error::InvalidInput("roll back".into()))
        })
        .unwrap_err();
        assert_eq!(c.get::<i64>("d")?, None, "in a transaction, set_many joins it");
        Ok(())
    }

    fn get_each_reads_each_key_as_get_does_with_its_own_error_and_hit_count(f) {
        let store = &f.store;
        let c = store.cache("each");
        c.set_many([("a", 1_i64), ("b", 2)], None)?;
        let got = c.get_each::<i64, _>(["b", "missing", "bad\0key", "a"])?;
        assert_eq!(got[0].as_ref().ok(), Some(&Some(2)));
        assert_eq!(got[1].as_ref().ok(), Some(&None));
        assert_eq!(got[2].as_ref().err().map(Error::kind), Some(ErrorKind::InvalidInput), "a bad key fails alone");
        assert_eq!(got[3].as_ref().ok(), Some(&Some(1)));
        store.flush_stats()?;
        let st = c.stats()?;
        assert_eq!((st.hits, st.misses), (2, 1), "each key counted as a get counts it; the refused one not");
        // Least recently used: each hit is a use, as a get's is.
        c.set_limits(CacheLimits { max_entries: Some(2), eviction: Eviction::LeastRecentlyUsed, ..Default::default() })?;
        let got = c.get_each::<i64, _>(["a"])?;
        assert_eq!(got[0].as_ref().ok(), Some(&Some(1)));
        c.set("c", 3_i64, None)?;
        assert_eq!(c.get::<i64>("b")?, None, "b was used least recently: evicted");
        assert_eq!(c.get::<i64>("a")?, Some(1));
        store.transaction(|tx| {
            tx.cache("each").set("d", 4_i64, None)?;
            let got = tx.cache("each").get_each::<i64, _>(["d"])?;
            assert_eq!(got[0].as_ref().ok(), Some(&Some(4)), "in a transaction, it sees its writes");
            Ok::<_, Error>(())
        })?;
        Ok(())
    }

    fn namespaces_are_isolated_and_clear_empties_only_one(f) {
        let store = &f.store;
        store.cache("a").set("k", "a", None)?;
        store.cache("b").set("k", "b", None)?;
        assert_eq!(store.cache("a").clear()?, 1);
        assert_eq!(store.cache("a").get::<String>("k")?, None);
        assert_eq!(store.cache("b").get::<String>("k")?.as_deref(), Some("b"));
        assert_eq!(store.cache_namespaces()?, vec!["b"], "an emptied namespace without settings is gone");
        store.cache("a").set_limits(CacheLimits { max_entries: Some(5), ..Default::default() })?;
        assert_eq!(store.cache_namespaces()?, vec!["a", "b"], "one with settings is listed");
        Ok(())
    }

    fn values_round_trip_as_bytes_text_and_json_exactly(f) {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Job {
            id: u64,
            tags: Vec<String>,
        }
        let c = f.store.cache("n");
        let binary = vec![0u8, 0xff, 0xfe, 0, b'\n', 0x80];
        c.set("bin", &binary, None)?;
        assert_eq!(c.get::<Vec<u8>>("bin")?, Some(binary.clone()));
        assert_eq!(c.get::<String>("bin").unwrap_err().kind(), ErrorKind::Decode);
        c.set("empty", b"".as_slice(), None)?;
        assert_eq!(c.get::<Vec<u8>>("empty")?, Some(vec![]), "an empty value is a hit, not a miss");
        let job = Job { id: 7, tags: vec!["a'; DROP TABLE cairn_cache; --".into()] };
        c.set("job", Json(&job), None)?;
        assert_eq!(c.get::<Json<Job>>("job")?.map(|j| j.0), Some(job));
        assert_eq!(c.get::<Json<Vec<u8>>>("job").unwrap_err().kind(), ErrorKind::Decode);
        Ok(())
    }

    fn hostile_names_are_data_not_sql(f) {
        let store = &f.store;
        let ns = "ns'); DROP TABLE cairn_cache; --";
        let key = "k\"; DELETE FROM cairn_cache_ns; /*";
        store.cache(ns).set(key, "v", None)?;
        assert_eq!(store.cache(ns).get::<String>(key)?.as_deref(), Some("v"));
        assert_eq!(store.cache(ns).keys("k\"")?, vec![key]);
        assert_eq!(store.integrity_check()?, vec!["ok"]);
        Ok(())
    }

    fn bad_keys_and_namespaces_are_invalid_input_and_write_nothing(f) {
        let store = &f.store;
        let c = store.cache("n");
        assert_eq!(c.set("", "v", None).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(c.get::<String>("a\0b").unwrap_err().kind(), ErrorKind::InvalidInput);
        let long = "k".repeat(cairn::MAX_KEY_BYTES + 1);
        assert_eq!(c.set(&long, "v", None).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(store.cache("").set("k", "v", None).unwrap_err().kind(), ErrorKind::InvalidInput);
        let key_at_limit = "k".repeat(cairn::MAX_KEY_BYTES);
        c.set(&key_at_limit, "v", None)?;
        assert_eq!(c.stats()?.entries, 1);
        Ok(())
    }

    fn get_or_set_with_computes_on_a_miss_only(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        let runs = Cell::new(0);
        let compute = || {
            runs.set(runs.get() + 1);
            Ok::<_, Error>(format!("value-{}", runs.get()))
        };
        assert_eq!(c.get_or_set_with("k", MIN, compute)?, "value-1");
        assert_eq!(c.get_or_set_with("k", MIN, compute)?, "value-1");
        clock.advance(MIN);
        assert_eq!(c.get_or_set_with("k", MIN, compute)?, "value-2");
        assert_eq!(runs.get(), 2);
        Ok(())
    }

    /// Issue 19.12: a computation asking for its own key waited for its own fill marker until
    /// the fill timeout (30 s) before computing.
    fn a_computation_asking_for_its_own_key_is_refused_at_once(f) {
        let c = f.store.cache("c");
        let err = c
            .get_or_set_with("k", MIN, || c.get_or_set_with("k", MIN, || Ok::<_, Error>(1_i64)))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("asked for again by its own computation"), "{err}");
        assert_eq!(c.get::<i64>("k")?, None, "nothing stored");
        let other = c.get_or_set_with("k", MIN, || c.get_or_set_with("other", MIN, || Ok::<_, Error>(2_i64)))?;
        assert_eq!((other, c.get::<i64>("other")?), (2, Some(2)), "another key inside is fine");
        Ok(())
    }

    fn get_or_set_with_stores_nothing_when_compute_fails_and_releases_the_marker(f) {
        let (store, clock) = (&f.store, &f.clock);
        let c = store.cache("n");
        let err = c
            .get_or_set_with("k", None, || Err::<String, _>(Error::InvalidInput("upstream down".into())))
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid input: upstream down");
        assert_eq!(c.get::<String>("k")?, None);
        assert_eq!(fill_markers(f), 0, "a failed computation leaves no marker to wait on");
        let before = clock.now_millis();
        let v = c.get_or_set_with("k", None, || Ok::<_, Error>("second".to_string()))?;
        assert_eq!((v.as_str(), clock.now_millis()), ("second", before), "no waiting happened");
        Ok(())
    }

    fn a_panicking_computation_releases_its_marker(f) {
        let store = &f.store;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store
                .cache("n")
                .get_or_set_with("k", None, || -> Result<String, Error> { panic!("bug in compute") })
        }));
        assert!(outcome.is_err());
        assert_eq!(fill_markers(f), 0);
        Ok(())
    }

    fn a_waiter_takes_over_a_fill_abandoned_by_a_crashed_process_after_the_fill_timeout(f) {
        let clock = &f.clock;
        let started = std::time::Instant::now();
        // What a process killed mid-computation leaves behind: a live marker nobody will release.
        let t0 = clock.now_millis();
        f.raw_execute(&format!(
            "INSERT INTO cairn_cache_fill (ns, key, owner, expires_at) VALUES ('n', 'k', 'dead-process', {})",
            t0 + 60_000
        ));
        let waiter = f.options().fill_timeout(MIN).open(&f.location)?;
        let v = waiter.cache("n").get_or_set_with("k", None, || Ok::<_, Error>("recovered".to_string()))?;
        assert_eq!(v, "recovered");
        assert!(clock.now_millis() >= t0 + 60_000, "the waiter waited out the lease on the clock");
        assert!(started.elapsed() < Duration::from_secs(30), "and without sleeping for real");
        assert_eq!(fill_markers(f), 0);
        Ok(())
    }

    fn a_bounded_namespace_evicts_the_least_recently_stored_first(f) {
        let store = &f.store;
        let c = store.cache("n");
        c.set_limits(CacheLimits { max_entries: Some(3), ..Default::default() })?;
        for k in ["a", "b", "c"] {
            c.set(k, "x", None)?;
        }
        assert_eq!(c.get::<String>("a")?.as_deref(), Some("x"), "a read does not save 'a'");
        c.set("d", "x", None)?;
        assert_eq!(c.keys("")?, vec!["b", "c", "d"]);
        c.set("b", "y", None)?; // rewriting makes it the most recently stored
        c.set("e", "x", None)?;
        assert_eq!(c.keys("")?, vec!["b", "d", "e"]);
        assert_eq!(c.stats()?.evictions, 2);
        Ok(())
    }

    fn least_recently_used_eviction_keeps_what_is_read(f) {
        let store = &f.store;
        let c = store.cache("n");
        c.set_limits(CacheLimits {
            max_entries: Some(3),
            eviction: Eviction::LeastRecentlyUsed,
            ..Default::default()
        })?;
        for k in ["a", "b", "c"] {
            c.set(k, "x", None)?;
        }
        assert!(c.get::<String>("a")?.is_some());
        c.set("d", "x", None)?;
        assert_eq!(c.keys("")?, vec!["a", "c", "d"], "'b' was used least recently");
        Ok(())
    }

    fn a_byte_bound_evicts_until_under_and_refuses_an_entry_that_cannot_fit(f) {
        let store = &f.store;
        let c = store.cache("n");
        c.set_limits(CacheLimits { max_bytes: Some(1000), ..Default::default() })?;
        for i in 0..20 {
            c.set(&format!("k{i:02}"), vec![1u8; 97], None)?; // 100 bytes with the key
        }
        let s = c.stats()?;
        assert!(s.bytes <= 1000, "{s:?}");
        assert_eq!(s.entries, 10);
        assert_eq!(c.keys("")?.first().map(String::as_str), Some("k10"));
        let err = c.set("huge", vec![0u8; 2000], None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(c.stats()?.entries, 10, "the refused entry evicted nothing");
        Ok(())
    }

    fn setting_a_bound_on_a_full_namespace_evicts_at_once_oldest_first(f) {
        let store = &f.store;
        let c = store.cache("n");
        for i in 0..10 {
            c.set(&format!("k{i}"), "x", None)?;
        }
        c.set_limits(CacheLimits { max_entries: Some(4), ..Default::default() })?;
        assert_eq!(c.keys("")?, vec!["k6", "k7", "k8", "k9"]);
        c.set_limits(CacheLimits::default())?;
        for i in 10..20 {
            c.set(&format!("k{i}"), "x", None)?;
        }
        assert_eq!(c.stats()?.entries, 14, "removing the bound stops eviction");
        assert_eq!(
            c.set_limits(CacheLimits { max_entries: Some(0), ..Default::default() }).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        Ok(())
    }

    fn bounds_set_by_one_process_are_enforced_by_another(f) {
        let store = &f.store;
        store.cache("n").set_limits(CacheLimits { max_entries: Some(2), ..Default::default() })?;
        let other = f.reopen();
        for k in ["a", "b", "c"] {
            other.cache("n").set(k, "x", None)?;
        }
        assert_eq!(other.cache("n").keys("")?, vec!["b", "c"]);
        assert_eq!(other.cache("n").limits()?.max_entries, Some(2));
        Ok(())
    }

    fn statistics_count_hits_misses_and_survive_the_process(f) {
        let store = f.reopen(); // a process of its own, whose end flushes its counts
        let c = store.cache("n");
        c.set("k", "v", None)?;
        for _ in 0..3 {
            c.get::<String>("k")?;
        }
        c.get::<String>("nope")?;
        let s = c.stats()?;
        assert_eq!((s.hits, s.misses, s.entries), (3, 1, 1));
        assert_eq!(s.bytes, 2);
        assert_eq!(s.hit_rate(), Some(0.75));
        drop(store); // flushes the counts gathered by reads
        let again = f.reopen();
        let s = again.cache("n").stats()?;
        assert_eq!((s.hits, s.misses), (3, 1));
        Ok(())
    }

    fn byte_and_entry_counts_stay_exact_through_every_kind_of_change_bounded_or_not(f) {
        // Bounded namespaces keep their counts as they change; unbounded ones count on demand.
        // Both must agree with what is stored, through every path that adds or removes entries.
        let (store, clock) = (&f.store, &f.clock);
        for (ns, bound) in [("unbounded", None), ("bounded", Some(1000))] {
            let c = store.cache(ns);
            c.set("pre", "1234", None)?; // written before the bound: counted when it is set
            c.set_limits(CacheLimits { max_entries: bound, ..Default::default() })?;
            let counts = || c.stats().map(|s| (s.entries, s.bytes));
            assert_eq!(counts()?, (1, 3 + 4), "{bound:?}");
            c.set("a", "12345", None)?; // 1 + 5
            c.set("a", "12", None)?; // 1 + 2
            c.add("b", "xyz", MIN)?; // 1 + 3
            c.incr("cc", 100, None)?; // 2 + 3
            c.set("é", "v", None)?; // 2 bytes of key + 1
            assert_eq!(counts()?, (5, 7 + 3 + 4 + 5 + 3), "{bound:?}");
            c.delete("a")?;
            c.delete("pre")?;
            clock.advance(MIN);
            c.sweep()?;
            assert_eq!(counts()?, (2, 5 + 3), "{bound:?}");
            store.cache(ns).set("z", "1", MIN)?;
            clock.advance(MIN);
            store.sweep()?;
            assert_eq!(counts()?, (2, 5 + 3), "{bound:?}: the store-wide sweep");
            c.clear()?;
            assert_eq!(counts()?, (0, 0), "{bound:?}");
        }
        Ok(())
    }

    fn reads_in_a_read_only_store_do_not_count_or_write(f) {
        f.store.cache("n").set("k", "v", None)?;
        let ro = f.options().read_only(true).open(&f.location)?;
        assert_eq!(ro.cache("n").get::<String>("k")?.as_deref(), Some("v"));
        drop(ro);
        let s = f.reopen().cache("n").stats()?;
        assert_eq!((s.hits, s.misses), (0, 0));
        Ok(())
    }

    fn hostile_names_are_data_in_every_feature_and_prefixes_are_not_patterns(f) {
        let store = &f.store;
        let evil =
            ["x'); DROP TABLE cairn_ledger; --", "\"; DELETE FROM cairn_lock; /*", "100% _done_ \\ ' \""];
        for name in evil {
            store.ledger(name).mark_done(name)?;
            assert!(store.ledger(name).is_done(name)?);
            let claim = store.ledger(name).claim("c", name, Duration::from_secs(60))?.expect("claimed");
            store.ledger(name).complete(&claim)?;
            store.checkpoint(name).set(name)?;
            assert_eq!(store.checkpoint(name).get::<String>()?.as_deref(), Some(name));
            let guard = store.try_lock(name, Duration::from_secs(60))?.expect("free");
            assert_eq!(store.lock_holder(name)?.map(|h| h.pid), Some(std::process::id()));
            drop(guard);
        }
        // LIKE's wildcards in a prefix are plain characters.
        let c = store.cache("p");
        for k in ["100%", "1000", "a_b", "axb", "a\\b"] {
            c.set(k, "v", None)?;
        }
        assert_eq!(c.keys("100%")?, vec!["100%"]);
        assert_eq!(c.keys("a_")?, vec!["a_b"]);
        assert_eq!(c.keys("a\\")?, vec!["a\\b"]);
        assert_eq!(store.ledger_namespaces()?.len(), 3);
        assert_eq!(store.integrity_check()?, vec!["ok"]);
        Ok(())
    }

    fn large_binary_values_round_trip_and_oversized_ones_are_refused_clearly(f) {
        let c = f.store.cache("big");
        // 16 MiB of every byte value, NULs and invalid UTF-8 included.
        let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        c.set("big", &big, None)?;
        assert_eq!(c.get::<Vec<u8>>("big")?.as_deref(), Some(&big[..]));
        let too_big = vec![0u8; cairn::MAX_VALUE_BYTES + 1]; // zeroed pages: allocated lazily
        let err = c.set("huge", &too_big, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains(&cairn::MAX_VALUE_BYTES.to_string()), "{err}");
        assert!(!c.contains("huge")?);
        Ok(())
    }

    /// The documented limit itself, not just a large value: SQLite's own length limit, page
    /// overflow chains and the WAL, and PostgreSQL's protocol and out-of-line storage, must
    /// all take a value of exactly `MAX_VALUE_BYTES`.
    ///
    /// Needs about 1 GiB of memory at its peak (0.8 GiB resident on SQLite, measured): the
    /// 256 MiB value, the engine's copies of it as it binds and as it reads it back, and the
    /// value read back. So it waits for the lock of the heavy tests, then checks what the
    /// machine has available: below 1.5 GiB it skips loudly (fails instead under
    /// `CAIRN_NO_SKIP`), rather than pushing the machine into swap or the OOM killer and
    /// failing some other test.
    fn a_value_of_exactly_the_documented_limit_round_trips_in_about_1_gib_of_memory(f) {
        const NEEDS_KIB: u64 = 3 << 19; // 1.5 GiB: the peak and a margin
        let _machine =
            cairn_testkit::exclusive(cairn_testkit::HEAVY).expect("take the lock of the heavy tests");
        match mem_available_kib() {
            Some(kib) if kib >= NEEDS_KIB => {}
            available => {
                let what = format!(
                    "1.5 GiB of available memory to round-trip a 256 MiB value; MemAvailable is {}",
                    available.map_or("unknown (no /proc/meminfo)".into(), |k| format!("{} MiB", k >> 10))
                );
                cairn_testkit::skip_unless_ci(&what);
                return Ok(());
            }
        }
        let store = f.reopen();
        let c = store.cache("limit");
        let mut at_limit = vec![0u8; cairn::MAX_VALUE_BYTES];
        // Every byte value, NULs and invalid UTF-8 included, at the ends and at page boundaries.
        for (i, b) in at_limit.iter_mut().enumerate().step_by(4093) {
            *b = (i % 251) as u8 ^ 0x80;
        }
        *at_limit.last_mut().expect("non-empty") = 0xff;
        c.set("at-limit", &at_limit, None)?;
        drop(store);
        let store = f.reopen();
        let back = store.cache("limit").get::<Vec<u8>>("at-limit")?.expect("stored");
        assert!(back == at_limit, "the value at the limit did not round-trip");
        assert_eq!(store.integrity_check()?, vec!["ok"]);
        Ok(())
    }

    /// Found by the batch fuzz target: `"ttl":"0h"` stored an entry that was expired at once, so
    /// the set silently did nothing. Sub-millisecond TTLs are refused everywhere a TTL is given.
    fn a_ttl_under_a_millisecond_is_refused_instead_of_storing_an_expired_entry(f) {
        let c = f.store.cache("n");
        for ttl in [Duration::ZERO, Duration::from_micros(999)] {
            let err = c.set("k", "v", ttl).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("at least 1ms"), "{err}");
            assert_eq!(c.add("k", "v", ttl).unwrap_err().kind(), ErrorKind::InvalidInput);
            assert_eq!(c.incr("k", 1, ttl).unwrap_err().kind(), ErrorKind::InvalidInput);
            assert_eq!(c.touch("k", ttl).unwrap_err().kind(), ErrorKind::InvalidInput);
            let computed = c.get_or_set_with("k", ttl, || Ok::<_, Error>("v".to_string()));
            assert_eq!(computed.unwrap_err().kind(), ErrorKind::InvalidInput);
        }
        assert!(!c.contains("k")?);
        c.set("k", "v", Duration::from_millis(1))?;
        assert_eq!(c.get::<String>("k")?.as_deref(), Some("v"));
        Ok(())
    }
}

/// The compute-once markers left in the store, as another program counts them.
fn fill_markers(f: &Fixture) -> i64 {
    f.raw_i64("SELECT count(*) FROM cairn_cache_fill")
}

/// SQLite only: an in-memory store is a private SQLite database (a server has none).
#[test]
fn in_memory_stores_are_private() -> Result<(), Error> {
    let a = Store::open_in_memory()?;
    let b = Store::open_in_memory()?;
    a.cache("n").set("k", "v", None)?;
    assert_eq!(b.cache("n").get::<String>("k")?, None);
    Ok(())
}

/// `MemAvailable` from /proc/meminfo, in KiB.
fn mem_available_kib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// SQLite only (a file beside the database; PostgreSQL writes its counts apart, after commits):
/// a process that only reads (a `cairn cache get`, a memo replay) leaves its counts in
/// `<db>-hits` instead of committing a write transaction for them: the database is not
/// written, the counts show in `stats` at once, and the next write adds them, once.
#[test]
fn a_reading_process_leaves_its_counts_beside_the_file_and_the_next_write_adds_them_once() -> Result<(), Error>
{
    let (_d, path, store, _c) = temp_store();
    store.cache("n").set("k", "v", None)?;
    drop(store);
    let stored_hits = || -> i64 {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("SELECT coalesce(sum(hits), 0) FROM cairn_cache_ns", [], |r| r.get(0)).unwrap()
    };
    let data_version = || std::fs::metadata(&path).unwrap().modified().unwrap();
    let before = data_version();
    for _ in 0..2 {
        let reader = Store::open(&path)?;
        assert_eq!(reader.cache("n").get::<String>("k")?.as_deref(), Some("v"));
        reader.cache("n").get::<String>("missing")?;
    }
    assert_eq!(stored_hits(), 0, "no write transaction for the counts");
    assert_eq!(data_version(), before, "the database file was not written");
    let hits_file = std::fs::read(path.with_extension("db-hits")).unwrap();
    assert!(!hits_file.is_empty());
    let writer = Store::open(&path)?;
    let s = writer.cache("n").stats()?;
    assert_eq!((s.hits, s.misses), (2, 2), "the counts kept apart show at once");
    writer.cache("other").set("x", "1", None)?;
    assert_eq!(stored_hits(), 2, "added by the next write");
    assert!(std::fs::read(path.with_extension("db-hits")).unwrap().is_empty());
    let s = writer.cache("n").stats()?;
    assert_eq!((s.hits, s.misses), (2, 2), "and counted once");
    // flush_stats (what `cairn stats` runs first) adds them without waiting for a write.
    drop(writer);
    Store::open(&path)?.cache("n").get::<String>("k")?;
    Store::open(&path)?.flush_stats()?;
    assert_eq!(stored_hits(), 3);
    assert!(std::fs::read(path.with_extension("db-hits")).unwrap().is_empty());
    Ok(())
}

/// SQLite only (its log is what is counted): refreshing entries that carry a TTL appends no
/// more pages to the write-ahead log than refreshing entries without one. Each refresh moved
/// the entry in the expiry index once (a page for the removal, one for the insertion: about
/// three pages per commit against one); the index now keeps a lower bound of the expiry,
/// which a refresh that extends it leaves alone.
#[test]
fn a_refresh_with_a_ttl_logs_no_more_pages_than_one_without() -> Result<(), Box<dyn std::error::Error>> {
    fn logged_pages(ttl: Option<Duration>) -> Result<u64, Box<dyn std::error::Error>> {
        let (_d, path, store, clock) = temp_store();
        let keys: Vec<String> = (0..2_000).map(|i| format!("https://example.com/page/{i}")).collect();
        store.transaction(|tx| {
            let c = tx.cache("n");
            keys.iter().try_for_each(|k| c.set(k, vec![b'v'; 100], ttl))
        })?;
        let wal = path.with_extension("db-wal");
        let before = std::fs::metadata(&wal)?.len();
        let c = store.cache("n");
        for i in 0..200 {
            clock.advance(Duration::from_secs(1)); // every refresh moves the expiry later
            c.set(&keys[i * 7919 % keys.len()], vec![b'w'; 100], ttl)?;
        }
        let after = std::fs::metadata(&wal)?.len();
        assert!(after > before, "the log was reset during the writes: the count would be wrong");
        Ok((after - before) / (4096 + 24))
    }
    let with_ttl = logged_pages(Some(Duration::from_secs(3600)))?;
    let without = logged_pages(None)?;
    assert!(
        with_ttl * 10 <= without * 11,
        "200 refreshes logged {with_ttl} pages with a TTL against {without} without one"
    );
    Ok(())
}

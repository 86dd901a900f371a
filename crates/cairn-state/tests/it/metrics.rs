//! The metrics snapshot on every engine: what it counts, how it ages the oldest queued item,
//! and what its Prometheus text says.

use std::time::Duration;

use cairn::{ItemState, JobEnd, Pause, QueueItem, Schedule};

use crate::contract;

const LEASE: Duration = Duration::from_secs(60);

contract! {
    /// Items by state (waiting group members and lapsed claims as pending), paused or not,
    /// and the oldest queued item aged from its due time across priorities: the oldest item
    /// of a low priority counts even behind younger ones of a higher priority.
    fn metrics_count_ledger_items_by_state_and_age_the_item_ready_longest(f) {
        let l = f.store.ledger("q").max_attempts(1);
        l.enqueue(["old"])?;
        f.clock.advance(Duration::from_secs(10));
        l.enqueue_items([
            QueueItem::new("high-1").priority(5),
            QueueItem::new("high-2").priority(5),
            QueueItem::new("later").delay(Duration::from_secs(3600)),
            QueueItem::new("g-1").group("g"),
            QueueItem::new("g-2").group("g"),
            QueueItem::new("gone"),
        ])?;
        l.mark_done("x")?;
        assert!(l.cancel("gone")?);
        let claimed = l.claim_next("w1", LEASE)?.expect("high-1");
        assert_eq!(claimed.id(), "high-1");
        let failing = l.claim_next("w1", LEASE)?.expect("high-2");
        assert_eq!(l.fail_claim(&failing, "boom")?, ItemState::Failed);
        l.pause(None)?;
        f.clock.advance(Duration::from_millis(5_250));

        let m = f.store.metrics()?;
        assert_eq!(m.ledger.len(), 1);
        let q = &m.ledger[0];
        assert_eq!(q.ns, "q");
        let c = q.counts;
        // old, later, g-1 and g-2 (waiting behind g-1).
        assert_eq!((c.pending, c.claimed, c.done, c.failed, c.cancelled), (4, 1, 1, 1, 1));
        assert_eq!(c.paused, Some(Pause::UntilResumed));
        assert_eq!(q.oldest_queued, Some(Duration::from_millis(15_250)), "old, queued first, priority 0");

        let text = m.to_prometheus();
        for line in [
            "cairn_ledger_items{ns=\"q\",state=\"pending\"} 4\n",
            "cairn_ledger_items{ns=\"q\",state=\"claimed\"} 1\n",
            "cairn_ledger_items{ns=\"q\",state=\"cancelled\"} 1\n",
            "cairn_ledger_oldest_queued_age_seconds{ns=\"q\"} 15.25\n",
            "cairn_ledger_paused{ns=\"q\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }

        // Once the old item is handed out, the oldest is the group's head, queued 10 s later.
        l.resume()?;
        let old = l.claim_next("w2", LEASE)?.expect("old");
        assert_eq!(old.id(), "old");
        let q = &f.store.metrics()?.ledger[0];
        assert_eq!(q.oldest_queued, Some(Duration::from_millis(5_250)));
        assert_eq!(q.counts.paused, None);
        Ok(())
    }

    /// Items due later are not queued yet; a claim whose lease ran out is, from the lease's end.
    fn metrics_age_a_lapsed_claim_from_its_lease_end_and_ignore_items_due_later(f) {
        let later = f.store.ledger("later");
        later.enqueue_items([QueueItem::new("a").delay(Duration::from_secs(60))])?;
        let lapsed = f.store.ledger("lapsed");
        lapsed.enqueue(["z"])?;
        lapsed.claim_next("w1", Duration::from_secs(5))?.expect("z");
        f.clock.advance(Duration::from_secs(20));

        let m = f.store.metrics()?;
        let names: Vec<&str> = m.ledger.iter().map(|l| l.ns.as_str()).collect();
        assert_eq!(names, ["lapsed", "later"]);
        assert_eq!(m.ledger[0].oldest_queued, Some(Duration::from_secs(15)));
        assert_eq!(m.ledger[0].counts.pending, 1, "a lapsed claim counts as pending");
        assert_eq!(m.ledger[1].oldest_queued, None);
        let text = m.to_prometheus();
        assert!(text.contains("cairn_ledger_oldest_queued_age_seconds{ns=\"later\"} 0\n"), "{text}");
        assert!(text.contains("cairn_ledger_oldest_queued_age_seconds{ns=\"lapsed\"} 15\n"), "{text}");

        f.clock.advance(Duration::from_secs(60));
        let m = f.store.metrics()?;
        assert_eq!(m.ledger[1].oldest_queued, Some(Duration::from_secs(20)), "due 20 s ago");
        Ok(())
    }

    /// Cache namespaces with their sizes and counters, as `Cache::stats` gives them, and
    /// names that need escaping come back intact in the text.
    fn metrics_give_each_cache_namespace_its_entries_bytes_hits_and_misses(f) {
        let pages = f.store.cache("pages");
        pages.set("a", "x", None)?;
        pages.set("b", "yy", None)?;
        assert!(pages.get::<String>("a")?.is_some());
        assert!(pages.get::<String>("nope")?.is_none());
        let odd = "a \"quoted\"\\ns\nwith a line feed";
        f.store.cache(odd).set("k", 1i64, None)?;

        let m = f.store.metrics()?;
        let names: Vec<&str> = m.cache.iter().map(|c| c.ns.as_str()).collect();
        assert_eq!(names, [odd, "pages"]);
        let p = &m.cache[1].stats;
        assert_eq!((p.entries, p.hits, p.misses), (2, 1, 1));
        assert_eq!(p.bytes, pages.stats()?.bytes);
        assert!(p.bytes >= 5);

        let text = m.to_prometheus();
        assert!(text.contains("cairn_cache_hits_total{ns=\"pages\"} 1\n"), "{text}");
        assert!(text.contains("cairn_cache_misses_total{ns=\"pages\"} 1\n"), "{text}");
        assert!(text.contains("cairn_cache_entries{ns=\"a \\\"quoted\\\"\\\\ns\\nwith a line feed\"} 1\n"), "{text}");
        Ok(())
    }

    /// Locks and semaphores with a live holder, each with how many slots are held; none once
    /// released or expired.
    fn metrics_count_the_locks_held_and_their_slots(f) {
        let other = f.reopen();
        let nightly = f.store.try_lock("nightly", LEASE)?.expect("free");
        let one = f.store.try_semaphore("pool", 3, LEASE)?.expect("free");
        let two = other.try_semaphore("pool", 3, LEASE)?.expect("free");
        let m = f.store.metrics()?;
        let locks: Vec<(&str, u64)> = m.locks.iter().map(|l| (l.name.as_str(), l.held)).collect();
        assert_eq!(locks, [("nightly", 1), ("pool", 2)]);
        let text = m.to_prometheus();
        assert!(text.contains("cairn_locks_held 2\n"), "{text}");
        assert!(text.contains("cairn_lock_slots_held{lock=\"pool\"} 2\n"), "{text}");
        drop((nightly, one, two));
        assert_eq!(f.store.metrics()?.locks, []);
        Ok(())
    }

    /// Each job that ran: when it last succeeded, the duration and status of its newest
    /// finished run, its runs by outcome and whether it runs now.
    fn metrics_give_each_job_its_last_success_duration_status_and_runs(f) {
        let job = f.store.job("nightly", Schedule::parse_every("1h")?)?;
        f.clock.set_millis(7_200_000);
        job.run(|_| JobEnd::status(0))?;
        f.clock.advance(Duration::from_secs(3600));
        let clock = f.clock.clone();
        job.run(move |_| {
            clock.advance(Duration::from_millis(1500));
            JobEnd::status(3)
        })?;
        let m = f.store.metrics()?;
        assert_eq!(m.jobs.len(), 1);
        let j = &m.jobs[0];
        assert_eq!(j.name, "nightly");
        assert_eq!(j.last_success_ms, Some(7_200_000));
        assert_eq!(j.last_duration, Some(Duration::from_millis(1500)));
        assert_eq!(j.last_status, Some(3));
        assert_eq!((j.succeeded, j.failed, j.running), (1, 1, false));
        let text = m.to_prometheus();
        assert!(text.contains("cairn_job_last_success_timestamp_seconds{job=\"nightly\"} 7200\n"), "{text}");
        assert!(text.contains("cairn_job_last_duration_seconds{job=\"nightly\"} 1.5\n"), "{text}");
        assert!(text.contains("cairn_job_last_exit_status{job=\"nightly\"} 3\n"), "{text}");
        assert!(text.contains("cairn_job_runs_total{job=\"nightly\",outcome=\"failed\"} 1\n"), "{text}");
        assert!(text.contains("cairn_job_running{job=\"nightly\"} 0\n"), "{text}");
        Ok(())
    }
}

contract! {
    /// `metrics_with` takes each ledger namespace's counts from the caller (once each, as a
    /// dashboard keeping counts of its own does) and reads everything else as `metrics` does.
    fn metrics_with_takes_the_counts_from_the_caller_and_reads_the_rest(f) {
        f.store.ledger("a").enqueue(["x"])?;
        f.store.ledger("b").mark_done("y")?;
        let mut asked = Vec::new();
        let m = f.store.metrics_with(|ledger| {
            asked.push(ledger.namespace().to_owned());
            let mut kept = cairn::LedgerCounts::default();
            kept.done = 41;
            Ok(kept)
        })?;
        asked.sort();
        assert_eq!(asked, ["a", "b"]);
        assert!(m.ledger.iter().all(|l| l.counts.done == 41), "{:?}", m.ledger);
        let a = m.ledger.iter().find(|l| l.ns == "a").expect("namespace a");
        assert!(a.oldest_queued.is_some(), "read, not taken from the caller");
        let read = f.store.metrics()?;
        let b = read.ledger.iter().find(|l| l.ns == "b").expect("namespace b");
        assert_eq!((b.counts.done, b.counts.pending), (1, 0), "metrics itself still reads");
        Ok(())
    }

    /// `open_again` is another handle on the same store, for another thread: what one
    /// writes, the other reads there.
    fn open_again_is_another_handle_on_the_same_store(f) {
        let other = f.store.open_again()?;
        f.store.ledger("q").mark_done("a")?;
        let seen = std::thread::spawn(move || {
            let done = other.ledger("q").is_done("a")?;
            other.ledger("q").mark_done("b")?;
            Ok::<_, cairn::Error>(done)
        })
        .join()
        .expect("the other thread");
        assert!(seen?);
        assert!(f.store.ledger("q").is_done("b")?);
        Ok(())
    }
}

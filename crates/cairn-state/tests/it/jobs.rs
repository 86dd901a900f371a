//! Cron jobs: slot arithmetic (DST included), once per slot, retry and no-retry, catch-up
//! bounds, history retention and the health check, on every engine with the manual clock.

use std::time::Duration;

use cairn::{parse_time, CatchUp, JobEnd, JobOutcome, RunOutcome, Schedule, Slot};

use crate::contract;

const H: i64 = 3_600_000;

fn t(text: &str) -> i64 {
    parse_time(text).expect("a time")
}

fn every(text: &str) -> Schedule {
    Schedule::parse_every(text).expect("a schedule")
}

fn ok(_: &Slot) -> JobEnd {
    JobEnd::status(0)
}

#[test]
fn every_cuts_time_into_multiples_of_its_period_since_the_epoch() -> Result<(), cairn::Error> {
    let s = every("10m");
    assert_eq!(s.slot_at(0)?, Slot { start_ms: 0, end_ms: 600_000 });
    assert_eq!(s.slot_at(599_999)?, Slot { start_ms: 0, end_ms: 600_000 });
    assert_eq!(s.slot_at(600_000)?, Slot { start_ms: 600_000, end_ms: 1_200_000 });
    assert_eq!(s.slot_at(-1)?, Slot { start_ms: -600_000, end_ms: 0 });
    assert_eq!(s.to_string(), "every 10m");
    assert_eq!(s.to_string().parse::<Schedule>()?.slot_at(1)?, s.slot_at(1)?);
    let odd = every("1h30m1500ms");
    assert_eq!(odd.to_string().parse::<Schedule>()?.slot_at(1)?, odd.slot_at(1)?, "{odd}");
    Ok(())
}

#[test]
fn a_cron_occurrence_starts_its_slot_and_ends_the_one_before() -> Result<(), cairn::Error> {
    let s = Schedule::cron("*/15 * * * *", "UTC")?;
    let at = t("2026-01-01T10:15:00Z");
    assert_eq!(s.slot_at(at)?, Slot { start_ms: at, end_ms: at + H / 4 });
    assert_eq!(s.slot_at(at - 1)?, Slot { start_ms: at - H / 4, end_ms: at });
    Ok(())
}

#[test]
fn bad_schedules_are_refused_with_a_clear_error() {
    for bad in ["0s", "-5m", "", "ten"] {
        let e = Schedule::parse_every(bad).expect_err(bad);
        assert_eq!(e.kind(), cairn::ErrorKind::InvalidInput, "{bad}");
    }
    for (expr, tz) in
        [("0 3 * *", "UTC"), ("0 3 * * * *", "UTC"), ("61 3 * * *", "UTC"), ("0 3 * * *", "Mars/Base")]
    {
        let e = Schedule::cron(expr, tz).expect_err(expr);
        assert_eq!(e.kind(), cairn::ErrorKind::InvalidInput, "{expr} {tz}");
    }
}

#[test]
fn a_daily_cron_slot_is_23_hours_on_the_spring_forward_day_and_25_on_the_fall_back_day(
) -> Result<(), cairn::Error> {
    let s = Schedule::cron("0 3 * * *", "Europe/Berlin")?;
    // 2026-03-29: 02:00 CET becomes 03:00 CEST.
    let spring = s.slot_at(t("2026-03-28T12:00:00Z"))?;
    assert_eq!(spring.start_ms, t("2026-03-28T02:00:00Z"), "03:00 CET");
    assert_eq!(spring.end_ms, t("2026-03-29T01:00:00Z"), "03:00 CEST");
    assert_eq!(spring.end_ms - spring.start_ms, 23 * H);
    // 2026-10-25: 03:00 CEST becomes 02:00 CET.
    let fall = s.slot_at(t("2026-10-24T12:00:00Z"))?;
    assert_eq!(fall.start_ms, t("2026-10-24T01:00:00Z"), "03:00 CEST");
    assert_eq!(fall.end_ms, t("2026-10-25T02:00:00Z"), "03:00 CET");
    assert_eq!(fall.end_ms - fall.start_ms, 25 * H);
    assert_eq!(s.to_string(), "cron 0 3 * * * Europe/Berlin");
    Ok(())
}

#[test]
fn an_hourly_cron_keeps_hour_long_slots_through_both_dst_changes() -> Result<(), cairn::Error> {
    let s = Schedule::cron("0 * * * *", "Europe/Berlin")?;
    for day in ["2026-03-29", "2026-10-25"] {
        for hour in 0..4 {
            let at = t(&format!("{day}T0{hour}:30:00Z"));
            let slot = s.slot_at(at)?;
            assert_eq!(slot.start_ms, at - H / 2, "{day} {hour}:30Z");
            assert_eq!(slot.end_ms, at + H / 2, "{day} {hour}:30Z");
        }
    }
    Ok(())
}

contract! {
    fn a_job_runs_once_per_slot_and_again_in_the_next(f) {
        let job = f.store.job("j", every("1h"))?;
        let mut calls = Vec::new();
        let first = job.run(|s| { calls.push(*s); JobEnd::status(0) })?;
        assert!(first.ran());
        assert!(matches!(job.run(ok)?, JobOutcome::Done { .. }));
        assert!(matches!(f.reopen().job("j", every("1h"))?.run(ok)?, JobOutcome::Done { .. }), "another process");
        f.clock.advance(Duration::from_secs(3600));
        assert!(job.run(|s| { calls.push(*s); JobEnd::status(0) })?.ran());
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].start_ms, calls[0].end_ms);
        Ok(())
    }

    fn a_failed_run_leaves_its_slot_due_unless_no_retry(f) {
        let job = f.store.job("j", every("1h"))?;
        let failed = job.run(|_| JobEnd { status: 3, stderr_tail: Some("boom\n".into()) })?;
        assert_eq!(failed.status(), 3);
        assert_eq!(job.due()?.len(), 1, "the slot is still due");
        assert_eq!(job.run(ok)?.status(), 0);
        assert!(job.due()?.is_empty());

        let once = f.store.job("once", every("1h"))?.no_retry(true);
        assert_eq!(once.run(|_| JobEnd::status(1))?.status(), 1);
        assert!(matches!(once.run(ok)?, JobOutcome::Done { .. }), "one attempt per slot");
        Ok(())
    }

    fn catch_up_all_runs_the_missed_slots_oldest_first_at_most_max(f) {
        let job = f.store.job("j", every("1h"))?.catch_up(CatchUp::All).max_catch_up(5);
        assert_eq!(job.due()?.len(), 1, "a job that never ran has no missed slots");
        job.run(ok)?;
        f.clock.advance(Duration::from_secs(3 * 3600));
        let due = job.due()?;
        assert_eq!(due.len(), 3, "the two missed slots and the current one");
        assert!(due.windows(2).all(|w| w[0].end_ms == w[1].start_ms), "oldest first, contiguous");
        f.clock.advance(Duration::from_secs(100 * 3600));
        let JobOutcome::Ran(runs) = job.run(ok)? else { panic!("ran") };
        assert_eq!(runs.len(), 5, "bounded by max_catch_up");
        assert_eq!(runs[4].slot, job.current_slot()?, "the newest ones, ending with the current");
        assert!(job.due()?.is_empty());

        let none = f.store.job("n", every("1h"))?;
        none.run(ok)?;
        f.clock.advance(Duration::from_secs(5 * 3600));
        assert_eq!(none.due()?.len(), 1, "catch-up none: only the current slot");
        Ok(())
    }

    fn a_daily_cron_catches_up_each_missed_day_across_a_dst_change(f) {
        f.clock.set_millis(t("2026-03-27T12:00:00Z"));
        let job = f.store.job("d", Schedule::cron("0 3 * * *", "Europe/Berlin")?)?.catch_up(CatchUp::All);
        job.run(ok)?;
        f.clock.set_millis(t("2026-03-30T12:00:00Z"));
        let JobOutcome::Ran(runs) = job.run(ok)? else { panic!("ran") };
        let starts: Vec<i64> = runs.iter().map(|r| r.slot.start_ms).collect();
        assert_eq!(
            starts,
            vec![t("2026-03-28T02:00:00Z"), t("2026-03-29T01:00:00Z"), t("2026-03-30T01:00:00Z")],
            "03:00 CET, then 03:00 CEST"
        );
        Ok(())
    }

    fn a_failed_slot_ends_the_catch_up_and_is_run_first_next_time(f) {
        let job = f.store.job("j", every("1h"))?.catch_up(CatchUp::All);
        job.run(ok)?;
        f.clock.advance(Duration::from_secs(3 * 3600));
        let JobOutcome::Ran(runs) = job.run(|_| JobEnd::status(1))? else { panic!("ran") };
        assert_eq!(runs.len(), 1);
        let JobOutcome::Ran(again) = job.run(ok)? else { panic!("ran") };
        assert_eq!(again.len(), 3);
        assert_eq!(again[0].slot, runs[0].slot);
        Ok(())
    }

    fn history_keeps_every_run_newest_first_up_to_keep(f) {
        let job = f.store.job("j", every("1m"))?.keep(3);
        for i in 0..5 {
            job.run(|_| JobEnd { status: i % 2, stderr_tail: Some(format!("line {i}")) })?;
            f.clock.advance(Duration::from_secs(60));
        }
        let h = f.store.job_history("j", 10)?;
        assert_eq!(h.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5, 4, 3]);
        assert_eq!(h[0].outcome, RunOutcome::Succeeded);
        assert_eq!(h[1].outcome, RunOutcome::Failed);
        assert_eq!(h[1].status, Some(1));
        assert_eq!(h[1].stderr_tail.as_deref(), Some("line 3"));
        assert_eq!(h[0].pid, i64::from(std::process::id()));
        assert_eq!(f.store.job_history("j", 1)?.len(), 1);
        let info = f.store.job_info("j")?.expect("listed");
        assert_eq!((info.succeeded, info.failed), (3, 2), "counters outlive the pruned history");
        assert_eq!(info.schedule, "every 1m");
        assert!(!info.running);
        assert_eq!(info.last_success.map(|r| r.seq), Some(5));
        assert_eq!(info.last_failure.map(|r| r.seq), Some(4));
        assert_eq!(f.store.jobs()?.len(), 1);
        Ok(())
    }

    fn check_is_healthy_only_within_max_age_of_the_last_success(f) {
        let day = Duration::from_secs(86_400);
        let never = f.store.job_check("j", day)?;
        assert!(!never.healthy);
        assert!(never.message.contains("never succeeded"), "{}", never.message);
        let job = f.store.job("j", every("1h"))?;
        job.run(ok)?;
        assert!(f.store.job_check("j", day)?.healthy);
        f.clock.advance(Duration::from_secs(3600));
        job.run(|_| JobEnd { status: 2, stderr_tail: Some("disk full\n".into()) })?;
        let h = f.store.job_check("j", day)?;
        assert!(h.healthy, "{}", h.message);
        assert!(h.message.contains("exit status 2: disk full"), "{}", h.message);
        f.clock.advance(day);
        assert!(!f.store.job_check("j", day)?.healthy);
        Ok(())
    }

    fn a_job_held_by_another_process_is_reported_running(f) {
        let other = f.reopen();
        let job = f.store.job("j", every("1h"))?;
        let mut inner = None;
        job.run(|_| {
            inner = Some(other.job("j", every("1h")).and_then(|j| j.run(ok)));
            JobEnd::status(0)
        })?;
        let inner = inner.expect("called")?;
        assert!(matches!(inner, JobOutcome::Running { .. }), "{inner:?}");
        Ok(())
    }
}

//! Rate limits with real processes competing: 1, 8 and 32 callers that always want a slot share
//! one limit for a few seconds, on a file and on PostgreSQL (the server's clock). From the
//! times the slots were handed out at (on the limiter's timeline, as each child reports them):
//! no window of any length W holds more than rate × W + burst, and the callers got at least 95%
//! of the rate (no slot lost, whoever competes). Nothing about timing is asserted beyond that.

use std::time::Duration;

use cairn::{Clock, Error, Store, SystemClock};
use cairn_testkit::postgres::test_schema;
use cairn_testkit::Running;

use crate::{child, heavy};

/// 50 slots a second with a burst of 10, for 3 seconds: far below what the machine can do, long
/// enough for the bound to bite, and a burst that absorbs a caller paused for up to 180 ms (a
/// loaded machine) without losing its slots.
const COUNT: u64 = 50;
const PERIOD_MS: u64 = 1000;
const BURST: u32 = 10;
const RUN_MS: i64 = 3000;

/// `procs` children of `limit-take` on the store at `location`; every slot's time (µs).
fn compete(location: &str, name: &str, procs: usize) -> Vec<i64> {
    // Time for every child to start and open the store before the race begins.
    let start = SystemClock.now_millis() + 1500 + 50 * i64::try_from(procs).unwrap_or(0);
    let until = start + RUN_MS;
    let (count, period, burst) = (COUNT.to_string(), PERIOD_MS.to_string(), BURST.to_string());
    let (start_s, until_s) = (start.to_string(), until.to_string());
    let children: Vec<Running> = (0..procs)
        .map(|_| {
            Running::spawn(
                child(),
                &[
                    "limit-take",
                    "--db",
                    location,
                    "--name",
                    name,
                    "--count",
                    &count,
                    "--period-ms",
                    &period,
                    "--burst",
                    &burst,
                    "--start-ms",
                    &start_s,
                    "--until-ms",
                    &until_s,
                ],
            )
            .expect("spawn cairn-child")
        })
        .collect();
    let mut grants = Vec::new();
    for c in children {
        let (status, lines, stderr) = c.finish_within(Duration::from_secs(120)).expect("wait");
        assert!(status.success(), "a child failed: {stderr}");
        assert_eq!(lines.last().map(String::as_str), Some("DONE"), "{stderr}");
        grants.extend(
            lines.iter().filter_map(|l| l.strip_prefix("GRANT ")).map(|t| t.parse::<i64>().expect("µs")),
        );
    }
    grants.sort_unstable();
    let wanted = COUNT as f64 * RUN_MS as f64 / PERIOD_MS as f64;
    eprintln!(
        "{procs} processes: {} slots in {RUN_MS} ms at {COUNT}/s, burst {BURST} (rate × time: {wanted})",
        grants.len()
    );
    assert_bound(&grants);
    assert!(
        grants.len() as f64 >= 0.95 * wanted,
        "{procs} processes got {} slots, under 95% of {wanted}",
        grants.len()
    );
    grants
}

/// No window holds more than rate × its length + burst: for every pair of slots `i <= j`, the
/// window from one to the other holds `j - i + 1` of them.
fn assert_bound(times: &[i64]) {
    let period_us = i128::from(PERIOD_MS) * 1000;
    for i in 0..times.len() {
        for j in i..times.len() {
            let n = i128::try_from(j - i + 1).expect("fits");
            let w = i128::from(times[j] - times[i]);
            assert!(
                (n - i128::from(BURST)) * period_us <= w * i128::from(COUNT),
                "{n} slots within {w} µs at {COUNT} per {PERIOD_MS} ms with a burst of {BURST}"
            );
        }
    }
}

#[test]
fn competing_processes_on_a_file_never_exceed_the_bound_and_get_the_rate() -> Result<(), Error> {
    let _machine = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    drop(Store::open(&path)?); // created once, before the children race to open it
    let location = path.to_string_lossy().into_owned();
    for procs in [1, 8, 32] {
        compete(&location, &format!("api-{procs}"), procs);
    }
    Ok(())
}

#[test]
fn competing_processes_on_postgres_never_exceed_the_bound_on_the_servers_clock() -> Result<(), Error> {
    let Some(pg) = test_schema() else { return Ok(()) };
    let _machine = heavy();
    drop(Store::open(pg.app_url())?);
    for procs in [1, 8, 32] {
        compete(&pg.app_url(), &format!("api-{procs}"), procs);
    }
    Ok(())
}

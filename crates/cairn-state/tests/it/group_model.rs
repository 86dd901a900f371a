//! Property test: under any sequence of queue operations on items in groups (claims, completes,
//! failures, releases, marks, deletes, retries, lapsed leases), no two items of one group are
//! claimed at once, and no group is left stuck: once every lease has run out, draining the
//! queue settles every item it holds. On both engines.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cairn::{Claim, ItemState, Ledger, QueueItem};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::contract;
use crate::engines::{run_model, Fixture};

const IDS: usize = 9;
const LEASE: Duration = Duration::from_secs(3600);

fn id(i: usize) -> String {
    format!("i{i}")
}

/// Three groups of three, and each item's priority, so that heads of different priorities
/// compete.
fn item(i: usize) -> QueueItem {
    QueueItem::new(id(i)).group(format!("g{}", i % 3)).priority((i % 2) as i64)
}

fn group_of(id: &str) -> String {
    let i: usize = id[1..].parse().unwrap_or(0);
    format!("g{}", i % 3)
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue(Vec<usize>),
    ClaimNext,
    ClaimNextMany(u32),
    Complete(Index),
    FailClaim(Index),
    Release(Index),
    MarkDone(usize),
    Delete(usize),
    Fail(usize),
    RetryAll,
    Lapse,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::collection::vec(0..IDS, 1..4).prop_map(Op::Enqueue),
        4 => Just(Op::ClaimNext),
        1 => (1u32..4).prop_map(Op::ClaimNextMany),
        4 => any::<Index>().prop_map(Op::Complete),
        2 => any::<Index>().prop_map(Op::FailClaim),
        1 => any::<Index>().prop_map(Op::Release),
        1 => (0..IDS).prop_map(Op::MarkDone),
        1 => (0..IDS).prop_map(Op::Delete),
        1 => (0..IDS).prop_map(Op::Fail),
        1 => Just(Op::RetryAll),
        1 => Just(Op::Lapse),
    ]
}

/// At most one claimed item per group, as `list` shows claims (live leases). `grouped`: the
/// ids queued into their group (an id first known by a failure or a mark has none).
fn check_exclusive(l: &Ledger<'_>, grouped: &BTreeSet<String>) -> Result<(), TestCaseError> {
    let claimed = l.list(Some(ItemState::Claimed), None, 100).map_err(fail)?;
    let mut per_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in claimed.into_iter().filter(|i| grouped.contains(&i.id)) {
        per_group.entry(group_of(&item.id)).or_default().push(item.id);
    }
    for (g, ids) in per_group {
        prop_assert!(ids.len() <= 1, "group {} has {:?} claimed at once", g, ids);
    }
    Ok(())
}

fn fail(e: cairn::Error) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn pick<'c>(claims: &'c [Claim], i: &Index) -> Option<&'c Claim> {
    (!claims.is_empty()).then(|| &claims[i.index(claims.len())])
}

fn one_case(f: &Fixture, ns: &str, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let l = f.store.ledger(ns).retry_delay(Duration::ZERO).max_attempts(3);
    let mut claims: Vec<Claim> = Vec::new();
    let mut grouped = BTreeSet::new();
    for op in ops {
        match &op {
            Op::Enqueue(ids) => {
                for i in ids {
                    if l.item(&id(*i)).map_err(fail)?.is_none() {
                        grouped.insert(id(*i));
                    }
                }
            }
            Op::Delete(i) => drop(grouped.remove(&id(*i))),
            _ => {}
        }
        // Refusals (a fenced claim, an unknown id) are answers too; only the invariants count.
        match op {
            Op::Enqueue(ids) => drop(l.enqueue_items(ids.into_iter().map(item)).map_err(fail)?),
            Op::ClaimNext => claims.extend(l.claim_next("w", LEASE).map_err(fail)?),
            Op::ClaimNextMany(n) => claims.extend(l.claim_next_many("w", LEASE, n).map_err(fail)?),
            Op::Complete(i) => drop(pick(&claims, &i).map(|c| l.complete(c))),
            Op::FailClaim(i) => drop(pick(&claims, &i).map(|c| l.fail_claim(c, "x"))),
            Op::Release(i) => drop(pick(&claims, &i).map(|c| l.release(c))),
            Op::MarkDone(i) => drop(l.mark_done(&id(i)).map_err(fail)?),
            Op::Delete(i) => drop(l.delete(&id(i)).map_err(fail)?),
            Op::Fail(i) => drop(l.fail(&id(i), "x")),
            Op::RetryAll => drop(l.retry_all_failed().map_err(fail)?),
            Op::Lapse => f.clock.advance(LEASE),
        }
        check_exclusive(&l, &grouped)?;
    }
    // Every lease runs out; draining must then settle everything the queue holds.
    f.clock.advance(LEASE);
    for _ in 0..(4 * IDS) {
        match l.claim_next("w", LEASE).map_err(fail)? {
            Some(c) => {
                check_exclusive(&l, &grouped)?;
                l.complete(&c).map_err(fail)?;
            }
            None => break,
        }
    }
    let counts = l.counts().map_err(fail)?;
    prop_assert_eq!((counts.pending, counts.claimed), (0, 0), "a group was left stuck");
    Ok(())
}

contract! {
    fn no_group_has_two_items_claimed_or_is_left_stuck_under_any_operations(f) {
        run_model(f, file!(), 200, "groups-", op(), one_case);
        Ok(())
    }
}

//! A worker that dies holding claims: on the same host its items are handed out again at once,
//! not after their (here, hour-long) leases; a claim made "lease only" waits for its lease.

use std::time::Duration;

use cairn::{Error, ItemState, LedgerPolicy, Store};
use cairn_testkit::Running;

use crate::child;

/// A child that claims one item of namespace `q` of the store at `p` (a file or a URL) for
/// `worker`, tied to its process unless `lease_only`, and holds it; the child and the id.
pub(crate) fn claim_in_child(p: &str, worker: &str, lease_only: bool) -> (Running, String) {
    let lo = if lease_only { "1" } else { "0" };
    let run = Running::spawn(
        child(),
        &["claim-hold", "--db", p, "--ns", "q", "--worker", worker, "--lease-only", lo],
    )
    .expect("spawn");
    assert!(run.wait_for(Duration::from_secs(20), |l| l.starts_with("CLAIMED ")), "{:?}", run.lines());
    let id = run.lines().iter().find_map(|l| l.strip_prefix("CLAIMED ").map(str::to_owned)).expect("claimed");
    (run, id)
}

#[test]
fn a_killed_workers_claims_are_handed_out_again_at_once_and_lease_only_ones_wait() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("q.db");
    let store = Store::open(&path)?;
    let ledger = store.ledger("q");
    ledger.enqueue(["a", "b", "c"])?;
    let p = path.to_str().expect("utf-8");
    let (victim, held) = claim_in_child(p, "victim", false);
    let (bystander, other) = claim_in_child(p, "bystander", true);
    assert_eq!((held.as_str(), other.as_str()), ("a", "b"));
    // While the victim lives, its claim holds.
    assert!(ledger.claim(&held, "me", Duration::from_secs(60))?.is_none());
    victim.kill().expect("kill");
    bystander.kill().expect("kill");
    // The victim's item comes first (its work is oldest), then the pending one; the lease-only
    // claim of the other dead process is left to its lease.
    let first = ledger.claim_next("me", Duration::from_secs(60))?.expect("the dead worker's item");
    assert_eq!(first.id(), "a");
    let second = ledger.claim_next("me", Duration::from_secs(60))?.expect("the pending item");
    assert_eq!(second.id(), "c");
    assert!(ledger.claim_next("me", Duration::from_secs(60))?.is_none(), "b waits for its lease");
    ledger.complete(&first)?;
    // The dead worker no longer holds anything it could complete.
    assert!(ledger.held_claim("a", "victim")?.is_none());
    assert!(ledger.claim("b", "me", Duration::from_secs(60))?.is_none(), "b is still under its lease");
    assert_eq!(ledger.item("a")?.map(|i| i.state), Some(ItemState::Done));
    Ok(())
}

/// Issue 19.2: an item that kills every worker taking it. Each worker, a process of its own,
/// claims the next item of `q` at `p` (a file or a URL; `store` is this process's view of it)
/// and is SIGKILLed holding it: the next worker takes the claim over at once (its process is
/// gone) and that counts as an attempt, so after the namespace's max attempts (3, set in the
/// store, read by every child) the item is given up and the next worker gets the next item.
/// Before, a takeover left the attempts as they were and the poison item went round forever.
pub(crate) fn a_poison_item_is_given_up_after_its_max_attempts(p: &str, store: &Store) -> Result<(), Error> {
    let ledger = store.ledger("q");
    ledger.set_policy(LedgerPolicy { max_attempts: Some(3), ..LedgerPolicy::default() })?;
    ledger.enqueue(["poison", "next"])?;
    for attempt in 1..=3 {
        let (worker, id) = claim_in_child(p, &format!("w{attempt}"), false);
        assert_eq!(id, "poison", "attempt {attempt}");
        let item = ledger.item("poison")?.expect("known");
        assert_eq!((item.state, item.attempts), (ItemState::Claimed, attempt - 1), "claims lost so far");
        worker.kill().expect("kill");
    }
    let (worker, id) = claim_in_child(p, "w4", false);
    assert_eq!(id, "next", "the poison item was given up, and the next one claimed");
    let poison = ledger.item("poison")?.expect("known");
    assert_eq!((poison.state, poison.attempts), (ItemState::Failed, 3));
    assert_eq!(poison.error.as_deref(), Some("its claims were lost 3 times: the worker died or hung"));
    worker.finish().expect("the last worker ends");
    Ok(())
}

#[test]
fn a_poison_item_that_kills_every_worker_is_given_up_after_its_max_attempts() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("q.db");
    let store = Store::open(&path)?;
    a_poison_item_is_given_up_after_its_max_attempts(path.to_str().expect("utf-8"), &store)
}

"""A ledger namespace's policy (max attempts, retry delay) means the same wherever the namespace
is used: a store's handle, a transaction's, another process, the CLI (issue 25.2)."""

from __future__ import annotations

import json
import subprocess

import cairn


def test_the_policy_given_to_store_ledger_holds_inside_a_transaction(any_store: cairn.Store) -> None:
    queue = any_store.ledger("q", max_attempts=10)
    queue.enqueue(["poison"])
    for _ in range(9):
        with any_store.transaction() as tx:
            # By name, without the handle's settings: the stored policy applies (it gave the
            # item up after 3 before the policy was kept in the store).
            assert tx.ledger("q").fail("poison", "boom") == cairn.ItemState.PENDING
    with any_store.transaction() as tx:
        assert tx.ledger("q").fail("poison", "boom") == cairn.ItemState.FAILED
    assert any_store.ledger("q").max_attempts == 10
    assert any_store.ledger("q").policy() == cairn.LedgerPolicy(max_attempts=10, retry_delay=None)


def test_a_handle_without_settings_keeps_the_stored_policy_and_set_policy_changes_it(
    any_store: cairn.Store,
) -> None:
    any_store.ledger("q", max_attempts=5, retry_delay="30s")
    plain = any_store.ledger("q")
    assert (plain.max_attempts, plain.retry_delay) == (5, 30.0), "a handle without settings resets nothing"
    plain.set_policy(max_attempts=None, retry_delay=None)
    assert plain.policy() == cairn.LedgerPolicy(max_attempts=None, retry_delay=None)
    assert (plain.max_attempts, plain.retry_delay) == (cairn._cairn.DEFAULT_MAX_ATTEMPTS, cairn._cairn.DEFAULT_RETRY_DELAY)


def test_the_cli_and_python_share_one_policy(cli: str, store: cairn.Store) -> None:
    store.ledger("jobs", max_attempts=7)
    shown = subprocess.run(
        [cli, "--db", store.path, "--json", "-n", "jobs", "ledger", "policy"], capture_output=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["max_attempts"] == 7
    set_by_cli = subprocess.run(
        [cli, "--db", store.path, "-n", "jobs", "ledger", "policy", "--max-attempts", "2"], capture_output=True, timeout=60
    )
    assert set_by_cli.returncode == 0, set_by_cli.stderr
    assert store.ledger("jobs").max_attempts == 2

"""Pure decisions: backoff, caps as waits, sliding windows. No clock is patched: ``now`` is an argument."""

from __future__ import annotations

import ast
from pathlib import Path

from watchfolder.core import machine
from watchfolder.core.model import Action, State

POLICY = machine.RetryPolicy(max_attempts=4, initial_seconds=10, max_seconds=60)


def test_transient_failures_back_off_exponentially_then_fail_when_the_budget_is_spent():
    waits, attempts, now = [], 0, 1000.0
    while True:
        decision = machine.decide(action=Action.RETRY, scope="item", wait=None, attempts=attempts, now=now,
                                  policy=POLICY)
        attempts = decision.attempts
        if decision.item_state is State.FAILED:
            break
        waits.append(decision.next_attempt_at - now)
    assert waits == [10, 20, 40]
    assert decision.budget_spent and attempts == 4


def test_backoff_is_capped():
    assert machine.backoff_seconds(10, POLICY) == 60


def test_caps_are_waits_that_do_not_spend_the_budget_and_probe_with_growing_intervals():
    first = machine.decide(action=Action.WAIT, scope="account", wait="pending_share", attempts=2, now=0.0,
                           policy=POLICY)
    assert first.item_state is State.WAITING and first.attempts == 2
    assert first.account_wait_until == 3600
    second = machine.decide(action=Action.WAIT, scope="account", wait="pending_share", attempts=2, now=0.0,
                            policy=POLICY, probe_seconds=first.account_probe_seconds)
    assert second.account_wait_until == 7200
    capped = machine.decide(action=Action.WAIT, scope="account", wait="pending_share", attempts=0, now=0.0,
                            policy=POLICY, probe_seconds=86400)
    assert capped.account_wait_until == 86400


def test_daily_post_cap_waits_until_a_day_after_the_oldest_recent_post():
    decision = machine.decide(action=Action.WAIT, scope="account", wait="daily_posts", attempts=0,
                              now=100_000.0, policy=POLICY, post_times=[10_000.0, 50_000.0, 90_000.0])
    assert decision.next_attempt_at == 50_000.0 + 86400   # 10,000 is older than a day already


def test_active_user_cap_makes_the_whole_app_wait():
    decision = machine.decide(action=Action.WAIT, scope="app", wait="active_users", attempts=0, now=0.0,
                              policy=POLICY)
    assert decision.app_wait_until == 3600 and decision.account_wait_until is None


def test_account_wide_refusals_pause_and_sign_in_loss_waits_for_the_user():
    paused = machine.decide(action=Action.PAUSE, scope="account", wait=None, attempts=0, now=0.0, policy=POLICY)
    assert paused.pause_account and paused.item_state is State.WAITING
    reauth = machine.decide(action=Action.REAUTH, scope="account", wait=None, attempts=0, now=0.0, policy=POLICY)
    assert reauth.reauth and reauth.item_state is State.WAITING
    failed = machine.decide(action=Action.FAIL, scope="item", wait=None, attempts=0, now=0.0, policy=POLICY)
    assert failed.item_state is State.FAILED


def test_sliding_window_allows_the_next_call_when_the_oldest_of_the_window_ages_out():
    times = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert machine.rate_allows_at(times, 6, now=55.0) == 60.001
    assert machine.rate_allows_at(times, 7, now=55.0) == 55.0
    assert machine.rate_allows_at(times, 6, now=61.0) == 61.0
    assert machine.rate_allows_at(times, 0, now=55.0) == 55.0


def test_the_machine_imports_no_io_library():
    tree = ast.parse(Path(machine.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"os", "sqlite3", "requests", "watchdog", "structlog", "time", "socket"}

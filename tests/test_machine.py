"""Pure decisions: backoff, caps as waits, sliding windows. No clock is patched: ``now`` is an argument."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from watchfolder.core import machine
from watchfolder.core.model import Action, Item, Mode, State

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
    assert waits == [10, 60, 60]   # growing as fast as it must to span a day, capped at max_seconds
    assert decision.budget_spent and attempts == 4


def test_the_default_budget_retries_within_ten_seconds_and_spans_about_a_day():
    policy = machine.RetryPolicy()
    waits = [machine.backoff_seconds(attempt, policy) for attempt in range(1, policy.max_attempts)]
    assert waits[0] <= 10
    assert waits == sorted(waits) and max(waits) <= policy.max_seconds
    assert 0.8 * machine.DAY <= sum(waits) <= 1.2 * machine.DAY
    short = machine.RetryPolicy(max_attempts=5, initial_seconds=10, max_seconds=86400)
    spread = [machine.backoff_seconds(attempt, short) for attempt in range(1, short.max_attempts)]
    assert spread[1] / spread[0] == machine.growth(short) >= 2
    assert 0.8 * machine.DAY <= sum(spread) <= 1.2 * machine.DAY


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
    assert machine.rate_allows_at(times, 6, now=55.0) == 60.5
    assert machine.rate_allows_at(times, 7, now=55.0) == 55.0
    assert machine.rate_allows_at(times, 6, now=61.0) == 61.0
    assert machine.rate_allows_at(times, 0, now=55.0) == 55.0


# Every module the core may import: pure standard library (no clock, no I/O, no randomness) and itself.
CORE_IMPORTS = {"__future__", "collections.abc", "dataclasses", "datetime", "enum", "functools", "itertools",
                "json", "math", "operator", "re", "reprlib", "string", "types", "typing", "unicodedata"}
CORE = Path(machine.__file__).resolve().parent


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    found |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return found


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda path: path.name)
def test_the_core_imports_only_pure_standard_modules_and_itself(path):
    outside = {name for name in imports_of(path) if not name.startswith("watchfolder.core")}
    allowed = CORE_IMPORTS

    assert outside <= allowed, f"{path.name} imports {sorted(outside - allowed)}"
    source = path.read_text(encoding="utf-8")
    assert not re.search(r"\.(now|today|utcnow)\(", source), f"{path.name} reads the clock: pass `now` instead"


def test_the_import_check_catches_an_io_import(tmp_path):
    module = tmp_path / "leaky.py"
    module.write_text("import os\nfrom time import monotonic\nfrom watchfolder.core import model\n")

    assert {name for name in imports_of(module) if not name.startswith("watchfolder.core")} - CORE_IMPORTS == {
        "os", "time"}


# ---- decide: every branch, with the whole Decision it returns -------------------------------------

NOW = 1000.0
DECIDE_CASES = [
    ("retry, rate limit: a minute, budget untouched",
     {"action": Action.RETRY, "wait": "rate_limit", "attempts": 2},
     machine.Decision(State.WAITING, NOW + machine.RATE_LIMIT_BACKOFF, "rate_limit", 2)),
    ("retry, budget spent: failed",
     {"action": Action.RETRY, "attempts": 3},
     machine.Decision(State.FAILED, attempts=4, budget_spent=True)),
    ("retry: backoff spends one attempt, the wait grows as fast as the day's span needs",
     {"action": Action.RETRY, "attempts": 1},
     machine.Decision(State.WAITING, NOW + 60, "backoff", 2, streak=2)),
    ("retry after progress: the wait starts again from the first",
     {"action": Action.RETRY, "attempts": 1, "streak": 0},
     machine.Decision(State.WAITING, NOW + 10, "backoff", 2, streak=1)),
    ("wait, pending drafts refused: asked again after cap_probe",
     {"action": Action.WAIT, "wait": "pending_share", "probe_seconds": 3600, "cap_probe": 1800},
     machine.Decision(State.WAITING, NOW + 1800, "pending_share", 0, account_wait_until=NOW + 1800,
                      account_probe_seconds=1800)),
    ("wait, daily posts: a day after the oldest recent post",
     {"action": Action.WAIT, "wait": "daily_posts", "post_times": [NOW - 100]},
     machine.Decision(State.WAITING, NOW - 100 + machine.DAY, "daily_posts", 0,
                      account_wait_until=NOW - 100 + machine.DAY)),
    ("wait, daily posts: the answer's own time wins",
     {"action": Action.WAIT, "wait": "daily_posts", "retry_at": NOW + 5, "post_times": [NOW - 100]},
     machine.Decision(State.WAITING, NOW + 5, "daily_posts", 0, account_wait_until=NOW + 5)),
    ("wait, app scope: every account waits",
     {"action": Action.WAIT, "scope": "app", "wait": "active_users"},
     machine.Decision(State.WAITING, NOW + 3600, "active_users", 0, app_wait_until=NOW + 3600,
                      account_probe_seconds=3600)),
    ("wait, account scope: the probe interval doubles",
     {"action": Action.WAIT, "wait": "pending_share", "probe_seconds": 3600},
     machine.Decision(State.WAITING, NOW + 7200, "pending_share", 0, account_wait_until=NOW + 7200,
                      account_probe_seconds=7200)),
    ("reinit: queued again at once, budget untouched",
     {"action": Action.REINIT, "attempts": 1},
     machine.Decision(State.QUEUED, NOW, None, 1, reinit=True)),
    ("refresh refused again: a transient failure",
     {"action": Action.REFRESH, "attempts": 0},
     machine.Decision(State.WAITING, NOW + 10, "backoff", 1, streak=1)),
    ("pause, app scope: every account waits, nothing paused by name",
     {"action": Action.PAUSE, "scope": "app"},
     machine.Decision(State.WAITING, NOW + 3600, "paused", 0, app_wait_until=NOW + 3600,
                      account_probe_seconds=3600)),
    ("pause, account scope",
     {"action": Action.PAUSE},
     machine.Decision(State.WAITING, NOW + 3600, "paused", 0, pause_account=True, account_wait_until=NOW + 3600,
                      account_probe_seconds=3600)),
    ("reauth: waits for the user, no time set",
     {"action": Action.REAUTH, "attempts": 1},
     machine.Decision(State.WAITING, None, "sign_in", 1, reauth=True)),
    ("fail",
     {"action": Action.FAIL, "attempts": 2},
     machine.Decision(State.FAILED, attempts=2)),
]


@pytest.mark.parametrize(("case", "given", "expected"), DECIDE_CASES, ids=[case for case, _, _ in DECIDE_CASES])
def test_decide_covers_every_branch(case, given, expected):
    arguments = {"scope": "account", "wait": None, "attempts": 0, "now": NOW, "policy": POLICY, **given}

    assert machine.decide(**arguments) == expected


# ---- the next step, a resume, a status ------------------------------------------------------------

def item(**fields) -> Item:
    base = dict.fromkeys(Item.__slots__)
    base.update(id=1, account="alice", name="clip.mp4", kind="video", folder="inbox", state=State.QUEUED,
                size=100, mtime_ns=0, ctime_ns=0, ino=0, detected_at=0.0, updated_at=0.0, attempts=0,
                uploaded_bytes=0, init_count=0, orphans="[]", post_ids="[]", moved=0, staged="[]")
    base.update(fields)
    return Item(**base)


TASK = {"publish_id": "v_inbox_file~1", "upload_url": "http://upload", "upload_expires_at": NOW + 60}
STEP_CASES = [
    ("queued in inbox", {}, machine.Step.PREPARE),
    ("waiting in inbox before anything was sent", {"state": State.WAITING}, machine.Step.PREPARE),
    ("waiting with a task at TikTok", {"state": State.WAITING, **TASK}, machine.Step.RESUME),
    ("waiting in processing/ after new content", {"state": State.WAITING, "folder": "processing"},
     machine.Step.RESUME),
    ("queued but not in inbox/", {"folder": "processing"}, machine.Step.NOTHING),
    ("uploading without a task", {"state": State.UPLOADING}, machine.Step.INIT),
    ("uploading with chunks left", {"state": State.UPLOADING, **TASK, "uploaded_bytes": 40}, machine.Step.UPLOAD),
    ("uploading, the URL expired", {"state": State.UPLOADING, **TASK, "upload_expires_at": NOW},
     machine.Step.REINIT),
    ("uploading, every byte acknowledged", {"state": State.UPLOADING, **TASK, "uploaded_bytes": 100,
                                            "upload_expires_at": NOW - 1}, machine.Step.HANDED_OVER),
    ("uploading, TikTok pulls the media", {"state": State.UPLOADING, "publish_id": "p_pull~1"},
     machine.Step.HANDED_OVER),
    ("processing", {"state": State.PROCESSING, **TASK}, machine.Step.POLL),
    ("done", {"state": State.DONE}, machine.Step.NOTHING),
    ("failed", {"state": State.FAILED}, machine.Step.NOTHING),
    ("cancelled", {"state": State.CANCELLED}, machine.Step.NOTHING),
]


@pytest.mark.parametrize(("case", "fields", "step"), STEP_CASES, ids=[case for case, _, _ in STEP_CASES])
def test_next_step(case, fields, step):
    assert machine.next_step(item(**fields), NOW) is step


@pytest.mark.parametrize(("fields", "state"), [
    ({}, State.UPLOADING),
    ({**TASK, "uploaded_bytes": 40}, State.UPLOADING),
    ({**TASK, "uploaded_bytes": 100}, State.PROCESSING),
    ({"publish_id": "p_pull~1"}, State.PROCESSING),
])
def test_a_parked_trip_resumes_where_it_left(fields, state):
    assert machine.resume_state(item(state=State.WAITING, **fields)) is state


@pytest.mark.parametrize(("status", "mode", "verdict"), [
    ("SEND_TO_USER_INBOX", Mode.INBOX, machine.StatusVerdict.DONE),
    ("PUBLISH_COMPLETE", Mode.INBOX, machine.StatusVerdict.DONE),
    ("SEND_TO_USER_INBOX", Mode.DIRECT, machine.StatusVerdict.PENDING),
    ("PUBLISH_COMPLETE", Mode.DIRECT, machine.StatusVerdict.DONE),
    ("PROCESSING_UPLOAD", Mode.INBOX, machine.StatusVerdict.PENDING),
    ("PROCESSING_DOWNLOAD", Mode.DIRECT, machine.StatusVerdict.PENDING),
    ("FAILED", Mode.INBOX, machine.StatusVerdict.FAILED),
    ("FAILED", Mode.DIRECT, machine.StatusVerdict.FAILED),
])
def test_after_status(status, mode, verdict):
    assert machine.after_status(status, mode) is verdict


def test_the_backoff_grows_with_failures_in_a_row_while_the_budget_counts_them_all():
    after_progress = machine.decide(action=Action.RETRY, scope="item", wait=None, attempts=2, now=0.0,
                                    policy=POLICY, streak=0)
    assert after_progress.next_attempt_at == 10 and after_progress.attempts == 3 and after_progress.streak == 1
    again = machine.decide(action=Action.RETRY, scope="item", wait=None, attempts=2, now=0.0, policy=POLICY, streak=1)
    assert again.next_attempt_at == 60 and again.streak == 2
    spent = machine.decide(action=Action.RETRY, scope="item", wait=None, attempts=3, now=0.0, policy=POLICY, streak=0)
    assert spent.item_state is State.FAILED and spent.budget_spent


def test_a_budget_of_a_thousand_attempts_neither_overflows_nor_waits_past_the_cap():
    policy = machine.RetryPolicy(max_attempts=1000, initial_seconds=0.2, max_seconds=1)
    assert machine.backoff_seconds(999, policy) == 1
    assert machine.backoff_seconds(1, machine.RetryPolicy(max_attempts=1000)) == 10

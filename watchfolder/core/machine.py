"""Pure decisions: an item's next step, what TikTok's status means, what to do after a refusal, and
when the next call is allowed.

No I/O and no clock: every function takes ``now`` (epoch seconds) when time matters and returns data.
The pipeline carries the decisions out. A test keeps the core's imports to pure standard library modules.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

from watchfolder.core.model import Action, Item, Mode, State

DAY = 86400.0
WINDOW = 60.0
PROBE_FIRST = 3600.0       # a capped account is probed again after an hour …
PROBE_MAX = DAY            # … doubling up to once a day
RATE_LIMIT_BACKOFF = 65.0  # a 429 that came anyway: the sliding window is 60 s
PENDING_DRAFT_CAP = 5      # TikTok: at most 5 pending inbox drafts in any 24 h (shown by status, not enforced)
DAILY_POST_CAP = 15        # TikTok: "typically around 15" direct posts a day per creator
LEDGER_KEEP = DAY          # the longest window any decision reads from the ledger (the daily caps)

WAIT_TEXT = {
    "pending_share": "TikTok allows 5 pending drafts per 24 h",
    "daily_posts": "TikTok's daily post limit for this account is reached",
    "active_users": "the TikTok app reached its daily cap of posting users",
    "rate_limit": "TikTok's per-minute rate limit",
    "creator_cannot_post": "TikTok says this creator cannot post right now",
    "publish_at": "scheduled",
    "backoff": "retrying after a temporary failure",
    "disk": "the disk or share refused a move or a read",
    "inbox_unavailable": "the inbox is not there (share not mounted?)",
    "cannot_read": "cannot read: permission denied",
    "settling": "the file changed; waiting until it stops changing",
    "checking_duplicate": "comparing with a file of the same size and ends that cannot be read right now",
    "paused": "the account is paused",
    "paused_by_you": "paused by you",
    "sign_in": "sign in again",
}


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The per-item budget for transient failures."""

    max_attempts: int = 8
    initial_seconds: float = 10.0
    max_seconds: float = 43200.0
    span_seconds: float = DAY    # the tries of one budget spread over about this long


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What to do with an item (and maybe its account or the whole app) after a refusal.

    ``item_state`` is WAITING (try again at ``next_attempt_at``), FAILED, or QUEUED (retry at once,
    e.g. after a reinit). ``attempts`` is the item's new transient-failure count.
    """

    item_state: State
    next_attempt_at: float | None = None
    wait_reason: str | None = None
    attempts: int = 0
    reinit: bool = False
    account_wait_until: float | None = None
    account_probe_seconds: float | None = None
    app_wait_until: float | None = None
    pause_account: bool = False
    reauth: bool = False
    budget_spent: bool = False
    streak: int = 0


class Step(enum.StrEnum):
    """What the pipeline does next with an item."""

    PREPARE = "prepare"          # in inbox/, nothing sent: check, hash, dedupe, read settings, claim
    RESUME = "resume"            # parked after its trip began: back to the step it left
    INIT = "init"                # uploading with no task at TikTok: send the init
    REINIT = "reinit"            # uploading, but the upload URL has expired: abandon the task, init again
    UPLOAD = "upload"            # uploading with chunks left to send
    HANDED_OVER = "handed_over"  # TikTok holds every byte (or pulls the media itself): on to processing
    POLL = "poll"                # processing: ask TikTok how it is going
    NOTHING = "nothing"          # finished, or nothing the pipeline can do now


class StatusVerdict(enum.StrEnum):
    """What one answer of TikTok's status endpoint means for the item."""

    DONE = "done"        # the final status for the account's mode
    FAILED = "failed"    # TikTok gave up on this publish (its fail_reason decides what follows)
    PENDING = "pending"  # still under way: poll again


# The statuses that finish an item, per mode: an inbox draft is done once it reaches the creator's inbox.
FINAL_STATUSES: dict[Mode, frozenset[str]] = {
    Mode.INBOX: frozenset({"SEND_TO_USER_INBOX", "PUBLISH_COMPLETE"}),
    Mode.DIRECT: frozenset({"PUBLISH_COMPLETE"}),
}


def next_step(item: Item, now: float) -> Step:
    """Given an item as stored, return what the pipeline does with it next."""
    if item.state in (State.QUEUED, State.WAITING) and item.folder == "inbox" and item.publish_id is None:
        return Step.PREPARE
    if item.state is State.WAITING:
        return Step.RESUME
    if item.state is State.UPLOADING:
        if item.publish_id is None:
            return Step.INIT
        if item.upload_url is not None and item.uploaded_bytes < item.size:
            if item.upload_expires_at is not None and now >= item.upload_expires_at:
                return Step.REINIT
            return Step.UPLOAD
        return Step.HANDED_OVER
    if item.state is State.PROCESSING:
        return Step.POLL
    return Step.NOTHING


def resume_state(item: Item) -> State:
    """A parked item whose trip had begun goes back to PROCESSING once TikTok holds every byte (or pulls
    the media itself), else to UPLOADING (which sends the init again if there is none)."""
    sent = item.publish_id is not None and (item.upload_url is None or item.uploaded_bytes >= item.size)
    return State.PROCESSING if sent else State.UPLOADING


def after_status(status: str, mode: Mode) -> StatusVerdict:
    """Given TikTok's publish status and the account's mode, return what it means for the item."""
    if status == "FAILED":
        return StatusVerdict.FAILED
    if status in FINAL_STATUSES[mode]:
        return StatusVerdict.DONE
    return StatusVerdict.PENDING


def backoff_seconds(attempt: int, policy: RetryPolicy, jitter: float = 1.0) -> float:
    """Given the attempt number (1 = first failure), return the wait before the next try.

    The first wait is ``initial_seconds``; each next one is ``growth(policy)`` times longer, capped at
    ``max_seconds``, so the ``max_attempts`` tries of a budget span about ``span_seconds``. ``jitter``
    (e.g. 0.7–1.0) spreads retries of many items so they do not come back at the same second.
    """
    wait = policy.initial_seconds
    factor = growth(policy)
    for _ in range(max(0, attempt - 1)):
        if wait >= policy.max_seconds:
            break
        wait *= factor
    return min(wait, policy.max_seconds) * jitter


def growth(policy: RetryPolicy) -> float:
    """The factor between two backoff waits that makes the waits of one budget (``max_attempts - 1`` of
    them, each capped at ``max_seconds``) add up to about ``span_seconds``; at least 2."""
    waits = policy.max_attempts - 1
    if waits <= 1 or policy.initial_seconds <= 0:
        return 2.0

    def span(factor: float) -> float:
        total, wait = 0.0, policy.initial_seconds
        for _ in range(waits):
            total += min(wait, policy.max_seconds)
            if total >= policy.span_seconds:
                break
            wait = min(wait * factor, policy.max_seconds)
        return total

    low, high = 2.0, 1000.0
    if span(low) >= policy.span_seconds:
        return low
    if span(high) < policy.span_seconds:
        return high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if span(middle) < policy.span_seconds else (low, middle)
    return high


def next_probe(previous: float | None) -> float:
    """A cap's probe interval: one hour, then doubling, at most a day."""
    if not previous:
        return PROBE_FIRST
    return min(previous * 2, PROBE_MAX)


def cap_frees_at(sent: Sequence[float], cap: int, now: float) -> float | None:
    """Given the times drafts (or posts) were sent, when one more fits TikTok's ``cap`` per 24 h: None
    when it fits now, else the time the oldest of the last ``cap`` is a day old."""
    recent = sorted(t for t in sent if t > now - DAY)
    if cap <= 0 or len(recent) < cap:
        return None
    return recent[len(recent) - cap] + DAY


def rate_allows_at(times: Sequence[float], limit: int, now: float, window: float = WINDOW) -> float:
    """Given the times of recent calls, return when one more call fits in a sliding window of ``limit``.

    Return ``now`` when it fits already; ``limit`` 0 means no limit.
    """
    if limit <= 0:
        return now
    recent = sorted(t for t in times if t > now - window)
    if len(recent) < limit:
        return now
    # The call that has to age out of the window is the limit-th most recent one.
    # Half a second to spare: the call is timed when it is decided, TikTok times it when it arrives, and
    # an earlier call delayed on the way (a loaded NAS) must not make the next one land inside the window.
    return recent[len(recent) - limit] + window + 0.5


def daily_posts_wait(post_times: Sequence[float], now: float) -> float:
    """``spam_risk_too_many_posts``: wait until 24 h after the oldest post of the last 24 h (or a day)."""
    recent = [t for t in post_times if t > now - DAY]
    return (min(recent) + DAY) if recent else now + DAY


def decide(
    *,
    action: Action,
    scope: str,
    wait: str | None,
    attempts: int,
    now: float,
    policy: RetryPolicy,
    jitter: float = 1.0,
    retry_at: float | None = None,
    probe_seconds: float | None = None,
    post_times: Sequence[float] = (),
    streak: int | None = None,
    cap_probe: float | None = None,
) -> Decision:
    """Given a refusal's policy (action, scope, wait kind) and the item's history, return the Decision.

    Waits never spend the retry budget; transient failures do, and the last one fails the item. The
    backoff grows with ``streak``, the transient failures in a row since the item last made progress
    (``attempts`` when not given), so one failure at each step of a trip is retried soon each time.
    """
    if action is Action.RETRY:
        if wait == "rate_limit":
            return Decision(State.WAITING, now + RATE_LIMIT_BACKOFF, "rate_limit", attempts)
        spent = attempts + 1
        if spent >= policy.max_attempts:
            return Decision(State.FAILED, attempts=spent, budget_spent=True)
        step = spent if streak is None else streak + 1
        return Decision(State.WAITING, now + backoff_seconds(step, policy, jitter), "backoff", spent, streak=step)
    if action is Action.WAIT:
        if wait == "daily_posts":
            until = retry_at or daily_posts_wait(post_times, now)
            if cap_probe and not [t for t in post_times if t > now - DAY]:
                until = retry_at or now + cap_probe   # nothing in the ledger frees: ask again in a while
            return Decision(State.WAITING, until, wait, attempts, account_wait_until=until)
        if wait == "pending_share" and cap_probe:
            # The creator frees a slot by posting a draft in the app, at any time: ask again every so often.
            until = retry_at or now + cap_probe
            return Decision(State.WAITING, until, wait, attempts, account_wait_until=until,
                            account_probe_seconds=cap_probe)
        probe = next_probe(probe_seconds)
        until = retry_at or now + probe
        if scope == "app":
            return Decision(State.WAITING, until, wait, attempts, app_wait_until=until, account_probe_seconds=probe)
        return Decision(State.WAITING, until, wait, attempts, account_wait_until=until, account_probe_seconds=probe)
    if action is Action.REINIT:
        return Decision(State.QUEUED, now, None, attempts, reinit=True)
    if action is Action.REFRESH:
        # A second access_token_invalid right after a refresh: treat as a transient failure.
        return decide(action=Action.RETRY, scope=scope, wait=None, attempts=attempts, now=now, policy=policy,
                      jitter=jitter, streak=streak)
    if action is Action.PAUSE:
        probe = next_probe(probe_seconds)
        if scope == "app":
            # The app itself is refused (wrong client key or secret): every account waits.
            return Decision(State.WAITING, now + probe, "paused", attempts, app_wait_until=now + probe,
                            account_probe_seconds=probe)
        return Decision(State.WAITING, now + probe, "paused", attempts, pause_account=True,
                        account_wait_until=now + probe, account_probe_seconds=probe)
    if action is Action.REAUTH:
        return Decision(State.WAITING, None, "sign_in", attempts, reauth=True)
    return Decision(State.FAILED, attempts=attempts)


def wait_text(reason: str | None) -> str:
    """A phrase for ``status`` explaining a wait reason."""
    if reason is None:
        return ""
    return WAIT_TEXT.get(reason, reason.replace("_", " "))

"""What happens to an item when TikTok (or the disk, or the sign-in) says no: the outcomes half of the pipeline.

``Outcomes`` is a base class of ``pipeline.Pipeline``: it carries out the pure machine's decisions
(wait, pause, reinit, fail, sign in again) on the store, one compare-and-set at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from watchfolder.core import machine, text
from watchfolder.core.errors import AuthError, TikTokError
from watchfolder.core.model import Item, State
from watchfolder.core.transitions import UPLOAD_RESET, Event
from watchfolder.daemon.publisher import Publisher
from watchfolder.logs import Logger
from watchfolder.store.store import Store
from watchfolder.tiktok import codes


class Outcomes:
    """Needs ``store``, ``publisher``, ``clock``, ``jitter`` and ``retry_policy`` from the subclass."""

    store: Store
    publisher: Publisher
    clock: Callable[[], float]
    jitter: Callable[[], float]
    retry_policy: machine.RetryPolicy
    cap_probe: float | None = None
    # Called after TikTok's app-wide wait was written (the scheduler then reads it again, not every pass).
    on_app_wait: Callable[[], None] | None = None

    # ---- when TikTok says no -------------------------------------------------------------------

    def _refused(self, item: Item, exc: TikTokError, log: Logger) -> Item:
        """Carry out the policy for a refusal (one table: tiktok/codes.py) through the pure machine."""
        now = self.clock()
        policy = codes.for_fail_reason(exc.code) if exc.code in codes.FAIL_REASONS and exc.http_status is None \
            else codes.for_error(exc.code, exc.http_status)
        action = exc.action
        account_state = self.store.account_state(item.account)
        decision = machine.decide(
            action=action, scope=policy.scope, wait=policy.wait, attempts=item.attempts, now=now,
            policy=self.retry_policy, jitter=self.jitter(),
            retry_at=exc.retry_at.timestamp() if exc.retry_at else None,
            probe_seconds=account_state.probe_seconds,
            post_times=self.store.ledger_times(item.account, "post", now - machine.DAY),
            streak=item.retry_streak, cap_probe=self.cap_probe,
        )
        log.warning("tiktok_refused", code=exc.code, action=str(action), log_id=exc.log_id,
                    http_status=exc.http_status, decision=str(decision.item_state), attempts=decision.attempts)
        if decision.reinit:
            return self._reinit(item, exc.message or exc.code, log)
        if decision.account_wait_until is not None or decision.pause_account:
            self.store.set_account_state(
                item.account, wait_until=decision.account_wait_until, wait_reason=decision.wait_reason,
                wait_code=exc.code, probe_seconds=decision.account_probe_seconds,
                paused_code=exc.code if decision.pause_account else None,
                paused_message=(exc.advice or exc.message) if decision.pause_account else None,
            )
        if decision.app_wait_until is not None:
            self.store.set_runtime("app_wait", {"until": decision.app_wait_until, "code": exc.code}, now)
            if self.on_app_wait is not None:
                self.on_app_wait()
        if decision.reauth:
            return self._reauth(item, AuthError(item.account, exc.advice or exc.message, code=exc.code), log)
        if decision.item_state is State.FAILED:
            message = exc.advice or exc.message
            if decision.budget_spent:
                message = (f"gave up after {decision.attempts} attempts; the last failure: "
                           f"{exc.code}: {exc.message}")
            return self._fail(item, exc.code, message, log, log_id=exc.log_id, attempts=decision.attempts)
        streak: dict[str, Any] = {"retry_streak": decision.streak} if decision.streak else {}
        return self._park(item, decision.next_attempt_at, decision.wait_reason, log, attempts=decision.attempts,
                          detail=exc.advice or exc.message, **streak)

    def _reinit(self, item: Item, why: str, log: Logger) -> Item:
        """Abandon the current upload task and start again with a new init (recorded as such)."""
        if item.publish_id:
            item = self._orphan(item, f"publish_id {item.publish_id} abandoned: {why}", log, answered=True)
        attempts = item.attempts + 1
        if attempts >= self.retry_policy.max_attempts:
            return self._fail(item, "gave_up", f"gave up after {attempts} attempts: {why}", log, attempts=attempts)
        self.publisher.abandon(item, log)
        return self.store.apply(item, Event.REINIT, now=self.clock(), note="reinit", **UPLOAD_RESET,
                                attempts=attempts)

    def _orphan(self, item: Item, note: str, log: Logger, *, answered: bool = False) -> Item:
        orphans = json.loads(item.orphans or "[]")
        orphans.append({"at": text.iso(self.clock()), "publish_id": item.publish_id, "note": note})
        self.store.note(item.id, "orphaned_init", now=self.clock(), detail=note)
        log.warning("init_orphaned", note=note)
        return self.store.update(item.id, now=self.clock(), orphans=orphans, init_started_at=None)

    def _park(self, item: Item, until: float | None, reason: str | None, log: Logger, *, attempts: int | None = None,
              detail: str | None = None, event: Event = Event.PARKED, **more: Any) -> Item:
        """Park the item until ``until`` (``event`` says why, with its ``more`` fields: a refused move, new content)."""
        fields: dict[str, Any] = {**more, "next_attempt_at": until, "wait_reason": reason, "detail": detail}
        if attempts is not None:
            fields["attempts"] = attempts
        if item.state is not State.WAITING:
            log.info("item_waiting", reason=reason, until=text.iso(until))
        return self.store.apply(item, event, now=self.clock(), note=reason, **fields)

    def _reauth(self, item: Item, exc: AuthError, log: Logger) -> Item:
        stamp = self.publisher.tokens_stamp(item.account)
        self.store.set_account_state(item.account, paused_code="sign_in", paused_tokens_at=stamp,
                                     paused_message=exc.message)
        log.error("account_needs_sign_in", reason=exc.message)
        return self.store.apply(item, Event.SIGN_IN, now=self.clock(), wait_reason="sign_in", next_attempt_at=None,
                                detail=exc.message, note="sign_in")

    def _fail(self, item: Item, code: str, message: str, log: Logger, *, log_id: str = "", **fields: Any) -> Item:
        log.warning("item_failed", code=code, reason=message)
        self.publisher.abandon(item, log)  # a pull TikTok is still running is cancelled
        return self.store.apply(item, Event.FAILED, now=self.clock(), note=code, error_code=code,
                                error_message=message, error_log_id=log_id, **fields)

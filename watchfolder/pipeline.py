"""One item's trip to TikTok, run by a worker thread: prepare → init → chunks → status → outcome.

Write-ahead throughout: the intent to init is committed before the call, the answer as soon as it
arrives, every acknowledged byte before the next chunk, the outcome before the file moves. A worker
that is stopped (or killed) leaves the item in a state from which the next start resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchfolder import finish, machine
from watchfolder.config import AccountSettings, Settings
from watchfolder.errors import AuthError, MediaError, StoreError, TikTokError
from watchfolder.intake import entries, media
from watchfolder.intake.intake import resolve_post_settings
from watchfolder.model import Action, Item, Kind, Mode, State, VideoSource
from watchfolder.pacing import Pacer, Parked, Stopped
from watchfolder.publish import Publisher
from watchfolder.store import Store
from watchfolder.tiktok import codes

HASH_BLOCK = 1024 * 1024


class Pipeline:
    """Works one item at a time for one account; each worker thread builds its own."""

    def __init__(self, *, settings: Settings, store: Store, publisher: Publisher, pacer: Pacer,
                 clock: Callable[[], float], stop: threading.Event, log: Any,
                 jitter: Callable[[], float] = lambda: random.uniform(0.8, 1.2)) -> None:
        self.settings = settings
        self.store = store
        self.publisher = publisher
        self.pacer = pacer
        self.clock = clock
        self.stop = stop
        self.log = log
        self.jitter = jitter
        self.retry_policy = machine.RetryPolicy(settings.upload.max_attempts, settings.upload.retry_initial_seconds,
                                                settings.upload.retry_max_seconds)

    def folder(self, item: Item, name: str) -> Path:
        return self.settings.root / item.account / name

    # ---- entry point ---------------------------------------------------------------------------

    def run(self, item_id: int) -> Item:
        """Work on the item until it is finished, parked (waiting) or the daemon stops; return it."""
        item = self.store.get(item_id)
        log = self.log.bind(account=item.account, item=entries.display_name(item.name), item_id=item.id)
        account = self.settings.account(item.account)
        try:
            if item.state in (State.QUEUED, State.WAITING) and item.folder == "inbox":
                item = self._prepare(item, account, log)
            refreshed = False
            while not item.state.finished and item.state not in (State.QUEUED, State.WAITING):
                try:
                    item = self._advance(item, account, log)
                except TikTokError as exc:
                    if exc.action is Action.REFRESH and not refreshed:
                        refreshed = True
                        self.publisher.refresh(item.account, log)
                        continue
                    item = self._refused(item, exc, log)
            if item.state in (State.QUEUED, State.WAITING) and item.folder == "processing":
                # A reinit put it back in line; it is already in processing/ and goes again at once.
                pass
        except Stopped:
            log.info("worker_stopped", state=str(self.store.get(item.id).state))
            return self.store.get(item.id)
        except Parked as parked:
            item = self._park(self.store.get(item.id), parked.until, parked.reason, log)
        except AuthError as exc:
            item = self._reauth(self.store.get(item.id), exc, log)
        except TikTokError as exc:
            item = self._refused(self.store.get(item.id), exc, log)
        if item.state.finished:
            finish.finish(self.settings.root, self.store, item, self.clock(), log)
        return self.store.get(item.id)

    # ---- before anything is sent ---------------------------------------------------------------

    def _prepare(self, item: Item, account: AccountSettings, log: Any) -> Item:
        """Check the file is still there and unchanged, hash it, dedupe, re-read settings, claim it."""
        now = self.clock()
        path = self.folder(item, "inbox") / item.name
        if not os.path.lexists(path):
            return self.store.transition(item.id, item.state, State.CANCELLED, now=now,
                                         detail="taken out of inbox/ before it was sent")
        stat = os.lstat(path)
        if (stat.st_size, stat.st_mtime_ns, stat.st_ino) != (item.size, item.mtime_ns, item.ino) and not path.is_dir():
            item = self.store.update(item.id, now=now, size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                                     ino=stat.st_ino, sha256=None)
        if item.sha256 is None:
            item = self.store.update(item.id, now=self.clock(), sha256=self._hash(path))
        if self.settings.dedupe:
            first = self.store.duplicate_of(item)
            if first is not None:
                where = f"{first.folder}/{first.result_name or first.name}"
                return self._fail(item, "duplicate", f"the same content was already taken in as {where} "
                                  f"(item {first.id}); set dedupe: false to post it again", log, duplicate_of=first.id)
        try:
            entry = entries.classify(self.folder(item, "inbox"), item.account, item.name, self.settings.watch.ignore)
            post = resolve_post_settings(account.defaults, self.folder(item, "inbox"), entry, Kind(item.kind),
                                         str(account.mode), ignore_globs=self.settings.watch.ignore)
        except MediaError as exc:
            return self._fail(item, exc.code, exc.message, log)
        settings_name = post.source_file if entry.kind != "photo_set" else None
        from watchfolder import postsettings

        # Settings are read again here, so an edit made while the item waited (publish_at too) counts.
        item = self.store.update(item.id, now=self.clock(), settings_name=settings_name,
                                 post_info=postsettings.as_dict(post),
                                 publish_at=post.publish_at.timestamp() if post.publish_at else None)
        if item.publish_at and item.publish_at > self.clock():
            return self.store.transition(item.id, item.state, State.WAITING, now=self.clock(),
                                         next_attempt_at=item.publish_at, wait_reason="publish_at")
        return self.store.transition(item.id, (State.QUEUED, State.WAITING), State.UPLOADING, now=self.clock(),
                                     next_attempt_at=None, wait_reason=None, detail=None)

    def _hash(self, path: Path) -> str:
        digest = hashlib.sha256()
        files = [path] if not path.is_dir() else entries.photo_files(path, self.settings.watch.ignore)
        buffer = bytearray(HASH_BLOCK)
        view = memoryview(buffer)
        for file in files:
            with open(file, "rb") as handle:
                while True:
                    if self.stop.is_set():
                        raise Stopped
                    count = handle.readinto(buffer)
                    if not count:
                        break
                    digest.update(view[:count])
        return digest.hexdigest()

    # ---- the steps ---------------------------------------------------------------------------

    def _advance(self, item: Item, account: AccountSettings, log: Any) -> Item:
        """Do the next step of an UPLOADING or PROCESSING item; return the item after it."""
        if self.stop.is_set():
            raise Stopped
        if item.state is State.UPLOADING:
            if item.publish_id is None:
                return self._init(item, account, log)
            if item.upload_url is not None and item.uploaded_bytes < item.size:
                return self._upload(item, log)
            return self.store.transition(item.id, State.UPLOADING, State.PROCESSING, now=self.clock())
        if item.state is State.PROCESSING:
            return self._poll(item, account, log)
        raise StoreError(f"item {item.id} is {item.state}: nothing to advance")

    def _init(self, item: Item, account: AccountSettings, log: Any) -> Item:
        if item.init_started_at is not None:
            # The one ambiguous case: an init went out and its answer was never recorded.
            item = self._orphan(item, "an init was sent but its answer was lost (crash or timeout); "
                                      "TikTok may hold one unused draft for it", log)
        if Mode(account.mode) is Mode.DIRECT:
            self.publisher.check_creator(item, account, log)
        self.pacer.take(item.account, "init")
        item = self.store.update(item.id, now=self.clock(), init_started_at=self.clock(),
                                 init_count=item.init_count + 1)
        result = self.publisher.init(item, account, log)
        item = self.store.update(item.id, now=self.clock(), **result)
        self.store.set_account_state(item.account, wait_until=None, wait_reason=None, wait_code=None,
                                     probe_seconds=None, paused_code=None, paused_message=None)
        if Mode(account.mode) is Mode.DIRECT:
            self.store.ledger_add(item.account, "post", self.clock())
        log.info("init_done", publish_id=item.publish_id, chunks=item.chunk_count)
        if item.folder == "inbox":
            item = self._to_processing(item, log)
        if item.upload_url is None:
            return self.store.transition(item.id, State.UPLOADING, State.PROCESSING, now=self.clock())
        return item

    def _to_processing(self, item: Item, log: Any) -> Item:
        """Commit, then rename the file (and settings file) from inbox/ to processing/."""
        item = self.store.update(item.id, now=self.clock(), folder="processing")
        inbox, processing = self.folder(item, "inbox"), self.folder(item, "processing")
        from watchfolder import outbox

        if os.path.lexists(inbox / item.name):
            name, settings_name = outbox.move_item(inbox, processing, item.name, item.settings_name)
            if (name, settings_name) != (item.name, item.settings_name):
                item = self.store.update(item.id, now=self.clock(), name=name, settings_name=settings_name)
        log.info("moved_to_processing")
        return item

    def _upload(self, item: Item, log: Any) -> Item:
        path = self.folder(item, "processing") / item.name
        if item.upload_expires_at is not None and self.clock() >= item.upload_expires_at:
            return self._reinit(item, "the upload URL expired", log)
        step = max(1, item.size // 10)
        next_report = (item.uploaded_bytes // step + 1) * step
        for first, last in self.publisher.remaining_ranges(item):
            if self.stop.is_set():
                raise Stopped
            self._check_identity(item, path)
            try:
                ack = self.publisher.put_chunk(item, path, first, last)
            except TikTokError as exc:
                resume = getattr(exc, "resume_offset", None)
                if exc.code == "range_mismatch" and resume is not None:
                    log.warning("upload_realigned", acknowledged=item.uploaded_bytes, server=resume)
                    self.store.note(item.id, "realigned", now=self.clock(),
                                    detail=f"server had {resume} bytes, we had {item.uploaded_bytes}")
                    return self.store.update(item.id, now=self.clock(), uploaded_bytes=resume)
                raise
            item = self.store.update(item.id, now=self.clock(), uploaded_bytes=ack.next_offset)
            if ack.next_offset >= next_report or ack.complete:
                log.info("upload_progress", percent=int(100 * ack.next_offset / max(1, item.size)),
                         bytes=ack.next_offset, total=item.size)
                next_report = (ack.next_offset // step + 1) * step
            if ack.complete:
                break
        self._check_identity(item, path)
        return self.store.transition(item.id, State.UPLOADING, State.PROCESSING, now=self.clock(),
                                     uploaded_bytes=item.size)

    def _check_identity(self, item: Item, path: Path) -> None:
        stat = os.stat(path)
        if (stat.st_size, stat.st_mtime_ns) != (item.size, item.mtime_ns):
            raise TikTokError("file_changed", "the file changed while it was being uploaded; it starts again "
                              "as new content", action=Action.REINIT)

    def _poll(self, item: Item, account: AccountSettings, log: Any) -> Item:
        self.pacer.take(item.account, "status")
        status = self.publisher.status(item)
        fields: dict[str, Any] = {"status": status.status, "post_ids": list(status.post_ids)}
        if status.status == "FAILED":
            reason = status.fail_reason or "unknown"
            policy = codes.for_fail_reason(reason)
            item = self.store.update(item.id, now=self.clock(), **fields)
            raise TikTokError(reason, f"TikTok's processing failed: {reason}", action=policy.action,
                              advice=policy.advice)
        if item.upload_url is None and status.downloaded_bytes is not None:
            fields["uploaded_bytes"] = status.downloaded_bytes  # a pull's progress, for `status`
        final = {"SEND_TO_USER_INBOX", "PUBLISH_COMPLETE"} if Mode(account.mode) is Mode.INBOX \
            else {"PUBLISH_COMPLETE"}
        if status.status in final:
            self.publisher.release(item)
            item = self.store.transition(item.id, State.PROCESSING, State.DONE, now=self.clock(),
                                         detail=status.status, **fields)
            log.info("publish_complete", status=status.status, publish_id=item.publish_id)
            return item
        if status.status != item.status:
            self.store.note(item.id, "tiktok_status", now=self.clock(), detail=status.status)
        item = self.store.update(item.id, now=self.clock(), **fields)
        if self.stop.wait(self.settings.upload.status_poll_seconds):
            raise Stopped
        return item

    # ---- when TikTok says no -------------------------------------------------------------------

    def _refused(self, item: Item, exc: TikTokError, log: Any) -> Item:
        """Carry out the policy for a refusal (one table: tiktok/codes.py) through the pure machine."""
        now = self.clock()
        policy = codes.for_fail_reason(exc.code) if exc.code in codes.FAIL_REASONS and exc.http_status is None \
            else codes.for_error(exc.code, exc.http_status)
        action = exc.action
        if exc.code == "file_changed":
            action = Action.REINIT
        account_state = self.store.account_state(item.account)
        decision = machine.decide(
            action=action, scope=policy.scope, wait=policy.wait, attempts=item.attempts, now=now,
            policy=self.retry_policy, jitter=self.jitter(),
            retry_at=exc.retry_at.timestamp() if exc.retry_at else None,
            probe_seconds=account_state.probe_seconds,
            post_times=self.store.ledger_times(item.account, "post", now - machine.DAY),
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
        if decision.reauth:
            return self._reauth(item, AuthError(item.account, exc.advice or exc.message, code=exc.code), log)
        if decision.item_state is State.FAILED:
            message = exc.advice or exc.message
            if decision.budget_spent:
                message = (f"gave up after {decision.attempts} attempts; the last failure: "
                           f"{exc.code}: {exc.message}")
            return self._fail(item, exc.code, message, log, log_id=exc.log_id, attempts=decision.attempts)
        return self._park(item, decision.next_attempt_at, decision.wait_reason, log, attempts=decision.attempts,
                          detail=exc.advice or exc.message)

    def _reinit(self, item: Item, why: str, log: Any) -> Item:
        """Abandon the current upload task and start again with a new init (recorded as such)."""
        if item.publish_id:
            item = self._orphan(item, f"publish_id {item.publish_id} abandoned: {why}", log, answered=True)
        attempts = item.attempts + 1
        if attempts >= self.retry_policy.max_attempts:
            return self._fail(item, "gave_up", f"gave up after {attempts} attempts: {why}", log, attempts=attempts)
        self.publisher.abandon(item, log)
        return self.store.update(item.id, now=self.clock(), publish_id=None, upload_url=None,
                                 upload_expires_at=None, uploaded_bytes=0, init_started_at=None,
                                 attempts=attempts, staged="[]")

    def _orphan(self, item: Item, note: str, log: Any, *, answered: bool = False) -> Item:
        orphans = json.loads(item.orphans or "[]")
        orphans.append({"at": finish.iso(self.clock()), "publish_id": item.publish_id, "note": note})
        self.store.note(item.id, "orphaned_init", now=self.clock(), detail=note)
        log.warning("init_orphaned", note=note)
        return self.store.update(item.id, now=self.clock(), orphans=orphans, init_started_at=None)

    def _park(self, item: Item, until: float | None, reason: str | None, log: Any, *, attempts: int | None = None,
              detail: str | None = None) -> Item:
        fields: dict[str, Any] = {"next_attempt_at": until, "wait_reason": reason, "detail": detail}
        if attempts is not None:
            fields["attempts"] = attempts
        if item.state is State.WAITING:
            return self.store.update(item.id, now=self.clock(), **fields)
        log.info("item_waiting", reason=reason, until=finish.iso(until))
        return self.store.transition(item.id, item.state, State.WAITING, now=self.clock(), detail=reason, **fields)

    def _reauth(self, item: Item, exc: AuthError, log: Any) -> Item:
        stamp = self.publisher.tokens_stamp(item.account)
        self.store.set_account_state(item.account, paused_code="sign_in", paused_tokens_at=stamp,
                                     paused_message=exc.message)
        log.error("account_needs_sign_in", reason=exc.message)
        if item.state in (State.UPLOADING, State.PROCESSING, State.QUEUED):
            return self.store.transition(item.id, item.state, State.WAITING, now=self.clock(),
                                         wait_reason="sign_in", next_attempt_at=None, detail=exc.message)
        return item

    def _fail(self, item: Item, code: str, message: str, log: Any, *, log_id: str = "", **fields: Any) -> Item:
        log.warning("item_failed", code=code, reason=message)
        self.publisher.abandon(item, log)  # a pull TikTok is still running is cancelled
        return self.store.transition(item.id, item.state, State.FAILED, now=self.clock(), detail=code,
                                     error_code=code, error_message=message, error_log_id=log_id, **fields)


def video_source(account: AccountSettings) -> VideoSource:
    return VideoSource(account.video_source)


__all__ = ["Pipeline", "Stopped", "media"]

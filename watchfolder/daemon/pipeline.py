"""One item's trip to TikTok, run by a worker thread: prepare → init → chunks → status → outcome.

Write-ahead throughout: the intent to init is committed before the call, the answer as soon as it
arrives, every acknowledged byte before the next chunk, the outcome before the file moves. A worker
that is stopped (or killed) leaves the item in a state from which the next start resumes.
Over 300 lines because the trip's steps share one write-ahead order that reads best in one place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchfolder.config.settings import AccountSettings, Settings
from watchfolder.core import machine, text
from watchfolder.core.errors import AuthError, MediaError, StoreError, TikTokError
from watchfolder.core.model import Action, Item, Kind, Mode, State, VideoSource
from watchfolder.core.transitions import UPLOAD_RESET, WAIT_CLEARED, Event
from watchfolder.daemon import creator, dedupe, finish, quirk
from watchfolder.daemon.contenthash import RunningHash
from watchfolder.daemon.itemfile import ItemFile
from watchfolder.daemon.outcomes import Outcomes
from watchfolder.daemon.pacing import Pacer, Parked, Stopped
from watchfolder.daemon.publisher import Publisher
from watchfolder.intake import entries, settle
from watchfolder.intake.intake import resolve_post_settings
from watchfolder.logs import Logger
from watchfolder.openfile import NotTheFile, OpenMedia, what_is
from watchfolder.store import schedule
from watchfolder.store.store import AccountState, Store
from watchfolder.tiktok import codes

DISK_RETRY_SECONDS = 30.0    # a move refused by the disk (full, read-only) is tried again after this
UNAVAILABLE_RECHECK = 60.0   # an item whose inbox is away or whose file cannot be read is tried again after this
CHUNK_RETRY_SECONDS = (1.0, 2.0, 4.0)   # a chunk PUT that failed for a moment is sent again after these waits …
CHUNK_URL_MARGIN = 30.0      # … while its upload URL stays valid this long after; then the item backs off


class Pipeline(Outcomes):
    """Works one item at a time for one account; each worker thread builds its own."""

    def __init__(self, *, settings: Settings, store: Store, publisher: Publisher, pacer: Pacer,
                 clock: Callable[[], float], stop: threading.Event, log: Logger,
                 jitter: Callable[[], float] = lambda: random.uniform(0.7, 1.0)) -> None:
        self.settings = settings
        self.store = store
        self.publisher = publisher
        self.pacer = pacer
        self.clock = clock
        self.stop = stop
        self.log = log
        self.jitter = jitter
        self.cap_probe = settings.upload.cap_probe_seconds
        self.retry_policy = machine.RetryPolicy(settings.upload.max_attempts, settings.upload.retry_initial_seconds,
                                                settings.upload.retry_max_seconds)
        self._hold_checked = False   # the account's pause was read by this trip's init, moments ago
        # The item's file, opened once per trip without following links and proven to be the one taken
        # in (openfile); every byte hashed, staged or sent comes from it. Closed when run() returns.
        self.file = ItemFile(stop, settings.watch.ignore)
        # The sha256 of a video sent in chunks, built from the blocks sent (``contenthash``); per trip.
        self.running: RunningHash | None = None

    def folder(self, item: Item, name: str) -> Path:
        return self.settings.root / item.account / name

    # ---- entry point ---------------------------------------------------------------------------

    def run(self, item_id: int, item: Item | None = None) -> bool:
        """Work on the item until it is finished, parked (waiting) or the daemon stops; return True when it
        is all there (unfinished, or finished and moved with its sidecar), False when its move is still to
        be made (the disk refused it: the main loop tries again). ``item``: its row as the scheduler just
        read it (every write is a compare-and-set on its state), else it is read here."""
        item = item if item is not None and item.id == item_id else self.store.get(item_id)
        self._hold_checked = False
        log = self.log.bind(account=item.account, item=text.display_name(item.name), item_id=item.id)
        account = self.settings.account(item.account)
        try:
            first = machine.next_step(item, self.clock())
            if first is machine.Step.PREPARE:
                item = self._prepare(item, account, log)
            elif first is machine.Step.RESUME:
                item = self._resume(item)
            if item.state in (State.UPLOADING, State.PROCESSING) and item.publish_id is not None:
                item = self._settle_in_processing(item, log)
            refreshed = False
            while not item.state.finished and item.state not in (State.QUEUED, State.WAITING):
                if item.state is State.PROCESSING and (item.next_attempt_at or 0) > self.clock():
                    break   # TikTok is processing it: the poller asks at next_attempt_at; this worker is free
                try:
                    item = self._advance(item, account, log)
                except TikTokError as exc:
                    if exc.action is Action.REFRESH and not refreshed:
                        refreshed = True
                        self.publisher.refresh(item.account, log)
                        continue
                    item = self._refused(item, exc, log)
        except Stopped:
            log.info("worker_stopped", state=str(self.store.get(item.id).state))
            return True
        except Parked as parked:
            item = self._park(self.store.get(item.id), parked.until, parked.reason, log, detail=parked.detail)
        except AuthError as exc:
            item = self._reauth(self.store.get(item.id), exc, log)
        except TikTokError as exc:
            item = self._refused(self.store.get(item.id), exc, log)
        except OSError as exc:
            # The disk or the share said no mid-trip (share gone, permission, disk full): wait, never lose.
            item = self.store.get(item.id)
            if not item.state.finished:
                log.error("item_disk_error", error=f"{type(exc).__name__}: {exc.strerror or exc}")
                item = self._park(item, self.clock() + DISK_RETRY_SECONDS, "disk", log,
                                  detail=f"{exc.strerror or exc}; tried again shortly")
        except Exception as exc:  # a bug must not turn into a hot loop or a lost file
            log.exception("item_unexpected_error", error=f"{type(exc).__name__}: {exc}")
            item = self.store.get(item.id)
            if not item.state.finished:
                item = self._refused(item, codes.refusal("unexpected_error", f"{type(exc).__name__}: {exc}"), log)
        finally:
            self.file.close()
            self.running = None
        if item.state.finished:
            # The sidecar's sha256, for a file that failed (or went) before it was all sent.
            item = dedupe.fill_sha256(self.store, self.file, item, self.folder(item, item.folder) / item.name,
                                      now=self.clock(), log=log, why="finished_before_sent")
            self.file.close()
            return finish.finish(self.settings.root, self.store, item, self.clock(), log)
        return True

    # ---- before anything is sent ---------------------------------------------------------------

    def _prepare(self, item: Item, account: AccountSettings, log: Logger) -> Item:
        """Check the file is still there and unchanged, hash it, dedupe, re-read settings, claim it."""
        now = self.clock()
        path = self.folder(item, "inbox") / item.name
        what = what_is(path)
        if what == "gone":
            if not path.parent.is_dir():
                # The share is away (or the inbox was moved): not the user taking the file out.
                return self._park(item, now + UNAVAILABLE_RECHECK, "inbox_unavailable", log,
                                  detail="the inbox is unavailable (share not mounted?)")
            return self.store.apply(item, Event.TAKEN_OUT, now=now, note="taken out of inbox/ before it was sent")
        if what in ("symlink", "special") or (what == "folder" and Kind(item.kind) is Kind.VIDEO):
            # Never followed, never read: a link to a token file must not become a "video".
            replaced = NotTheFile(what, item.name)
            log.warning("item_replaced", reason=replaced.message)
            return self.store.apply(item, Event.REPLACED, now=now,
                                    note=f"{replaced.message}; cancelled before it was sent")
        current = settle.fingerprint(path, self.settings.watch.ignore)
        if current is not None and settle.differs(current, item):
            item = self.store.update(item.id, now=now, size=current.size, mtime_ns=current.mtime_ns,
                                     ctime_ns=current.ctime_ns, ino=current.ino, dev=current.dev, sha256=None,
                                     quick_key=None)
            # New content under the same name (rewritten in place too: the change time tells): it is
            # taken again once it has stopped changing.
            return self._park(item, now + self.settings.watch.settle_seconds, "settling", log,
                              detail="the file changed after it was taken in; it goes once it stops changing")
        first = None
        try:
            # The cheap key, then the full hash only when it matches another item (``dedupe``).
            if item.quick_key is None:
                item = dedupe.keyed(self.store, self.file, item, path, whole=not self._in_chunks(item, account),
                                    now=self.clock(), log=log)
            if self.settings.dedupe:
                first, item = dedupe.original_of(self.store, self.file, item, path, root=self.settings.root,
                                                 stop=self.stop, now=self.clock(), log=log)
        except NotTheFile:
            # Swapped between the look above and the open: look again once it has settled.
            return self._park(item, now + self.settings.watch.settle_seconds, "settling", log,
                              detail="the file changed after it was taken in; it goes once it stops changing")
        except PermissionError:
            # Readable when it was taken in, not now (share permissions changed): wait, never fail.
            return self._park(item, now + UNAVAILABLE_RECHECK, "cannot_read", log,
                              detail="cannot read: permission denied (it is picked up once readable)")
        if first is not None:
            where = f"{first.folder}/{first.result_name or first.name}"
            return self._fail(item, "duplicate", f"the same content was already taken in as {where} "
                              f"(item {first.id}); set dedupe: false to post it again", log, duplicate_of=first.id)
        try:
            entry = entries.classify(self.folder(item, "inbox"), item.account, item.name, self.settings.watch.ignore)
            post = resolve_post_settings(account.defaults, self.folder(item, "inbox"), entry, Kind(item.kind),
                                         str(account.mode), ignore_globs=self.settings.watch.ignore,
                                         zone=self.settings.zone())
        except MediaError as exc:
            return self._fail(item, exc.code, exc.message, log)
        settings_name = post.source_file if entry.kind != "photo_set" else None
        from watchfolder.config import post as postsettings

        # Settings are read again here, so an edit made while the item waited (publish_at too) counts.
        publish_at = post.publish_at.timestamp() if post.publish_at else None
        claim: dict[str, Any] = {"settings_name": settings_name, "post_info": postsettings.as_dict(post),
                                 "publish_at": publish_at}
        if publish_at and publish_at > self.clock():
            return self.store.apply(item, Event.SCHEDULED, now=self.clock(), **claim, next_attempt_at=publish_at,
                                    wait_reason="publish_at")
        return self.store.apply(item, Event.CLAIMED, now=self.clock(), **claim, **WAIT_CLEARED)

    def _resume(self, item: Item) -> Item:
        """A parked item whose trip had begun goes back to the step it left (``machine.resume_state``)."""
        sent = machine.resume_state(item) is State.PROCESSING
        return self.store.apply(item, Event.RESUMED_SENT if sent else Event.RESUMED, now=self.clock(),
                                **WAIT_CLEARED)

    def _settle_in_processing(self, item: Item, log: Logger) -> Item:
        """Once TikTok has answered the init the file belongs in processing/: finish a move there that a
        crash (or a disk error) cut short, including a link made whose source was not yet unlinked."""
        if item.folder == "inbox":
            return self._to_processing(item, log)
        from watchfolder.daemon import outbox

        inbox, processing = self.folder(item, "inbox"), self.folder(item, "processing")
        for name in filter(None, (item.name, item.settings_name)):
            source, target = inbox / name, processing / name
            if not os.path.lexists(source) or os.path.isdir(source):
                continue
            mine = name != item.name or os.lstat(source).st_ino == item.ino
            if os.path.lexists(target) and outbox.same_copy(source, target):
                os.unlink(source)   # a hard link (or a copy to another filesystem) whose source was not yet removed
            elif not os.path.lexists(target) and mine:
                outbox.move_no_overwrite(source, target)
            if name == item.name:
                item = self._moved(item, target)
        return item

    def _moved(self, item: Item, path: Path) -> Item:
        """After our own move: record the file's new change time (and inode, after a copy)."""
        fields: dict[str, Any] = dict(self.file.after_move(item, path) or {})
        return self.store.update(item.id, now=self.clock(), **fields) if fields else item

    # ---- the steps ---------------------------------------------------------------------------

    def _advance(self, item: Item, account: AccountSettings, log: Logger) -> Item:
        """Do the next step of an UPLOADING or PROCESSING item; return the item after it."""
        if self.stop.is_set():
            raise Stopped
        step = machine.next_step(item, self.clock())
        if step is machine.Step.INIT:
            return self._init(item, account, log)
        if step is machine.Step.REINIT:
            return self._reinit(item, "the upload URL expired", log)
        if step is machine.Step.UPLOAD:
            return self._upload(item, log)
        if step is machine.Step.HANDED_OVER:
            return self._sent(item)
        if step is machine.Step.POLL:
            return self._poll(item, account, log)
        raise StoreError(f"item {item.id} is {item.state}: nothing to advance ({step})")

    def _init(self, item: Item, account: AccountSettings, log: Logger) -> Item:
        if item.init_started_at is not None:
            item = self._lost_init(item, account, log)
            if item.state.finished:
                return item
        try:
            media = self.file.for_init(item, self.folder(item, item.folder) / item.name)
        except NotTheFile:
            return self._new_content(item, self.folder(item, item.folder) / item.name, log)
        step = quirk.step_for(self.store, item, account, self.settings, has_host=self.publisher.mediahost is not None)
        if item.sha256 is None and (step.pull or not self._in_chunks(item, account)):
            # Not sent in chunks (TikTok pulls it), so not hashed while sent: read it whole now.
            item = self.store.update(item.id, now=self.clock(), sha256=dedupe.full_sha256(
                self.file, item, self.folder(item, item.folder) / item.name, log, "not_sent_in_chunks"))
        if Mode(account.mode) is Mode.DIRECT:
            info = self.publisher.check_creator(item, account, log)
            creator.remember(self.store, item.account, info, self.clock())
            item = creator.honour_interactions(self.store, item, info, self.clock(), log)
        if Kind(item.kind) is Kind.VIDEO:
            creator.check_length(self.store, self.publisher, self.settings, item, account, self.clock(), log,
                                 media=media)
        held = self._check_hold(item)   # a pause, or a cap the ledger says is full: this init is not sent
        self._hold_checked = True        # … and the first chunk after its answer need not ask again
        called = self.pacer.turn(item.account, "init")
        item = self.store.apply(item, Event.INIT_SENT, now=self.clock(), init_started_at=self.clock(),
                                init_count=item.init_count + 1, ledger=[("init", called)])
        item_id = item.id

        def staged(names: list[str]) -> None:
            # Write-ahead: what TikTok may pull is known before the init goes out, so a lost answer
            # can still be made harmless (the staged files are removed before any new init).
            self.store.update(item_id, now=self.clock(), staged=names)

        try:
            result = self.publisher.init(item, account, log, on_staged=staged, media=media, plan=step.plan,
                                         pull=step.pull)
        except TikTokError as exc:
            if exc.code != "network_error":
                # TikTok answered (with a refusal): no upload task exists, so nothing is ambiguous.
                self.store.update(item.id, now=self.clock(), init_started_at=None)
            if step.plan is not None and quirk.is_quirk(exc, step.plan.count):
                message = quirk.refused(self.store, item, step.plan, exc, self.settings,
                                        has_host=self.publisher.mediahost is not None, now=self.clock(), log=log)
                return self.store.get(item.id) if message is None else \
                    self._fail(item, exc.code, message, log, log_id=exc.log_id)
            raise
        except AuthError:
            # No usable token, so no init went out: nothing to call orphaned when the account resumes.
            self.store.update(item.id, now=self.clock(), init_started_at=None)
            raise
        # One commit: TikTok's answer, the draft (or post) its daily cap counts, and (write-ahead) the
        # file's new folder; the move itself follows in _to_processing.
        moving = {"folder": "processing"} if item.folder == "inbox" else {}
        sent = "post" if Mode(account.mode) is Mode.DIRECT else "draft"
        answered = self.clock()
        item = self.store.apply(item, Event.INIT_ANSWERED, now=answered, retry_streak=0, **result, **moving,
                                ledger=[(sent, answered)], retime=[("init", called, answered)])
        if held.wait_until or held.probe_seconds or (held.paused_code and held.paused_code not in (
                "sign_in", schedule.USER_PAUSE)):
            # TikTok took an init again: whatever cap or pause held the account is over.
            self.store.set_account_state(item.account, wait_until=None, wait_reason=None, wait_code=None,
                                         probe_seconds=None, paused_code=None, paused_message=None)
        log.info("init_done", publish_id=item.publish_id, chunks=item.chunk_count)
        if moving:
            item = self._to_processing(item, log, committed=True)
            if item.state is State.WAITING:
                return item
        if item.upload_url is None:
            return self._sent(item)
        return item

    def _lost_init(self, item: Item, account: AccountSettings, log: Logger) -> Item:
        """The one ambiguous case: an init went out and its answer was never recorded (a crash, a
        dropped connection). TikTok offers no lookup by content, so the task it may hold is recorded
        as an orphan. A file upload's orphan never gets a byte, so a new init is safe. Media TikTok
        pulls is removed first, so a pull not yet done fails; but a Direct Post whose pull may already
        be done could be published, so that item is never sent again: it fails, saying so."""
        pulled = json.loads(item.staged or "[]")
        if pulled:
            self.publisher.release(item)
            item = self.store.update(item.id, now=self.clock(), staged=[])
        item = self._orphan(item, "an init was sent but its answer was lost (crash or dropped connection); "
                                  "TikTok may hold one unused upload task for it", log)
        if pulled and Mode(account.mode) is Mode.DIRECT:
            return self._fail(item, "init_answer_lost",
                              "a Direct Post was sent to TikTok but its answer was lost, so it may already be "
                              "published; it is not sent again. Check the TikTok profile, and if the post is "
                              "not there, put the file back with `watchfolder retry`", log)
        return item

    def _to_processing(self, item: Item, log: Logger, *, committed: bool = False) -> Item:
        """Commit (unless the init's answer was ``committed`` with the new folder), then rename the file
        (and settings file) from inbox/ to processing/.

        On a disk error (full, read-only, permission, share away) nothing moves: the item waits in
        inbox/ with the reason shown in `status`, and tries the move again later.
        """
        if not committed:
            item = self.store.apply(item, Event.MOVING, now=self.clock(), folder="processing")
        inbox, processing = self.folder(item, "inbox"), self.folder(item, "processing")
        from watchfolder.daemon import outbox

        if os.path.lexists(inbox / item.name):
            try:
                name, settings_name = outbox.move_item(inbox, processing, item.name, item.settings_name)
            except OSError as exc:
                if exc.errno not in finish.DISK_ERRORS:
                    raise
                reason = f"cannot move to processing/: {os.strerror(exc.errno or 0).lower()}; will retry"
                log.error("move_failed", reason=reason)
                return self._park(item, self.clock() + DISK_RETRY_SECONDS, "disk", log, detail=reason,
                                  event=Event.MOVE_REFUSED, folder="inbox")
            if (name, settings_name) != (item.name, item.settings_name):
                item = self.store.update(item.id, now=self.clock(), name=name, settings_name=settings_name)
            item = self._moved(item, processing / name)
        log.info("moved_to_processing")
        return item

    def _upload(self, item: Item, log: Logger) -> Item:
        path = self.folder(item, "processing") / item.name
        step = max(1, item.size // 10)
        next_report = (item.uploaded_bytes // step + 1) * step
        for first, last in self.publisher.remaining_ranges(item):
            if self.stop.is_set():
                raise Stopped
            checked, self._hold_checked = self._hold_checked, False
            if not checked and self.store.account_state(item.account).paused_code == schedule.USER_PAUSE:
                # Paused by the user: stop at this chunk boundary; `resume` continues from this byte.
                raise Parked(None, "paused_by_you")
            if self.file.changed(item, path):
                return self._new_content(item, path, log)
            assert self.file.media is not None  # changed() opened it
            try:
                ack = self._put_chunk(item, self.file.media, first, last, log, self._hasher(item))
            except MediaError as exc:
                if exc.code != "file_changed":
                    raise
                return self._new_content(item, path, log)
            except TikTokError as exc:
                resume = getattr(exc, "resume_offset", None)
                if exc.code == "range_mismatch" and resume is not None and resume != item.uploaded_bytes:
                    # TikTok's progress is the truth: typically a chunk it took just before a crash,
                    # whose acknowledgement was never committed. (No progress at all: retried later.)
                    log.warning("upload_realigned", acknowledged=item.uploaded_bytes, server=resume)
                    self.store.note(item.id, "realigned", now=self.clock(),
                                    detail=f"server had {resume} bytes, we had {item.uploaded_bytes}")
                    return self.store.update(item.id, now=self.clock(), uploaded_bytes=resume)
                raise
            # Progress is durable, but for the last chunk: its acknowledgement is committed with the move
            # on to processing (below), and a lost one is realigned by TikTok's own progress (416) anyway.
            if ack.complete:
                item = dataclasses.replace(item, uploaded_bytes=ack.next_offset)
            else:
                item = self.store.update(item.id, now=self.clock(), durable=True, uploaded_bytes=ack.next_offset,
                                         retry_streak=0)
            if ack.next_offset >= next_report or ack.complete:
                log.info("upload_progress", percent=int(100 * ack.next_offset / max(1, item.size)),
                         bytes=ack.next_offset, total=item.size)
                next_report = (ack.next_offset // step + 1) * step
            if ack.complete:
                break
        hashed: dict[str, Any] = {}
        if self.running is not None and item.sha256 is None and self.file.media is not None:
            # Every byte acknowledged: the hash built from the bytes sent is the file's (caught up if a restart
            # or a 416 skipped bytes this trip did not send), recorded with `uploaded` before anything reads it.
            hashed["sha256"] = self.running.finish(item.size, self.file.media.fd)
            log.info("content_hashed", read="while_sent", caught_up=self.running.caught_up, bytes=item.size)
            item = dataclasses.replace(item, **hashed)
        if self.file.changed(item, path):
            # TikTok already holds every byte and no API call can stop it now, so the post goes ahead.
            log.warning("file_changed_after_upload")
            self.store.note(item.id, "file_changed", now=self.clock(),
                            detail="the file changed after its last chunk was sent; TikTok has the earlier bytes")
        return self._sent(item, uploaded_bytes=item.size, retry_streak=0, **hashed)

    def _check_hold(self, item: Item) -> AccountState:
        """Raise Parked when the account is paused or the ledger says its cap is full; else return the
        account's waits as read (an init TikTok takes lifts them)."""
        mode = str(self.settings.account(item.account).mode)
        state = self.store.account_state(item.account)
        hold = schedule.account_hold(self.store, item.account, mode, self.clock(), cap=self.settings.daily_cap(mode),
                                     state=state)
        if hold is not None and hold.reason in ("paused_by_you", "pending_share", "daily_posts"):
            raise Parked(hold.until, hold.reason, hold.detail)
        return state

    def _sent(self, item: Item, **fields: Any) -> Item:
        """TikTok holds every byte (or pulls the media itself): the item awaits its processing, and the
        poller asks about it after ``upload.status_poll_seconds``. Its sha256 is known from here on."""
        item = dedupe.fill_sha256(self.store, self.file, item, self.folder(item, item.folder) / item.name,
                                  now=self.clock(), log=self.log, why="handed_over")
        now = self.clock()
        return self.store.apply(item, Event.UPLOADED, now=now,
                                next_attempt_at=now + self.settings.upload.status_poll_seconds, **fields)

    def _in_chunks(self, item: Item, account: AccountSettings) -> bool:
        """True for a video sent as FILE_UPLOAD chunks: its sha256 is built while it is sent."""
        return Kind(item.kind) is Kind.VIDEO and VideoSource(account.video_source) is VideoSource.FILE_UPLOAD

    def _hasher(self, item: Item) -> RunningHash | None:
        """The running hash the chunks feed, while the item's sha256 is unknown."""
        if item.sha256 is not None:
            return None
        if self.running is None:
            self.running = RunningHash(self.stop)
        return self.running

    def _put_chunk(self, item: Item, media: OpenMedia, first: int, last: int, log: Logger,
                   hasher: RunningHash | None = None) -> Any:
        """Send one chunk; a transient failure (5xx, a dropped connection) is sent again within seconds
        while the upload URL is valid, before the item backs off as a whole. ``hasher`` is put at the
        chunk's first byte before each try and fed what is sent."""
        for wait in (*CHUNK_RETRY_SECONDS, None):
            if hasher is not None:
                hasher.at(first, media.fd)
            try:
                return self.publisher.put_chunk(item, media, first, last, hasher=hasher)
            except TikTokError as exc:
                if wait is None or exc.action is not Action.RETRY or exc.code == "range_mismatch":
                    raise
                expires = item.upload_expires_at
                if expires is not None and self.clock() + wait + CHUNK_URL_MARGIN >= expires:
                    raise
                log.warning("chunk_retry", code=exc.code, first=first, retry_in_seconds=wait)
                if self.stop.wait(wait):
                    raise Stopped from None
        raise AssertionError("unreachable")

    def _new_content(self, item: Item, path: Path, log: Logger) -> Item:
        """The file changed (or went) during its upload: abandon TikTok's task (it never gets the rest, so
        it never becomes a post), then start again as new content once the file has stopped changing."""
        if item.publish_id:
            item = self._orphan(item, f"publish_id {item.publish_id} abandoned: the file changed while it "
                                      "was being uploaded", log, answered=True)
        self.file.close()
        self.running = None
        what = what_is(path)
        if what == "gone":
            return self._fail(item, "file_gone", f"the file was taken out of {item.folder}/ while it was being "
                              "uploaded", log)
        if what != "file":
            # A link (or a pipe, a folder) now has the name: nothing of it is read or sent.
            return self._fail(item, "file_changed", f"{NotTheFile(what, item.name).message}; the upload was "
                              "abandoned", log)
        stat = os.lstat(path)
        self.publisher.release(item)
        log.warning("file_changed", size=stat.st_size)
        return self._park(item, self.clock() + self.settings.watch.settle_seconds, "settling", log,
                          detail="the file changed while it was being uploaded; it starts again as new content "
                                 "once it stops changing", event=Event.FILE_CHANGED, **UPLOAD_RESET,
                          size=stat.st_size, mtime_ns=stat.st_mtime_ns, ctime_ns=stat.st_ctime_ns, ino=stat.st_ino,
                          dev=stat.st_dev, sha256=None, quick_key=None)

    def _poll(self, item: Item, account: AccountSettings, log: Logger) -> Item:
        try:
            called = self.pacer.turn(item.account, "status")
        except Parked as parked:
            # The account's status calls are spent for this minute: ask when the window has room.
            return self.store.update(item.id, now=self.clock(), next_attempt_at=parked.until or self.clock())
        try:
            status = self.publisher.status(item)
        except BaseException:
            self.store.ledger_add(item.account, "status", called)
            raise
        fields: dict[str, Any] = {"status": status.status, "post_ids": list(status.post_ids), "retry_streak": 0}
        verdict = machine.after_status(status.status, Mode(account.mode))
        if verdict is machine.StatusVerdict.FAILED:
            reason = status.fail_reason or "unknown"
            policy = codes.for_fail_reason(reason)
            # This publish is over at TikTok: whatever comes next (retry, wait, sign-in) starts a new init.
            self.publisher.release(item)
            item = self.store.apply(item, Event.TIKTOK_FAILED, now=self.clock(), **{**UPLOAD_RESET, **fields},
                                    ledger=[("status", called)])
            self.store.note(item.id, "tiktok_failed", now=self.clock(), detail=reason)
            raise TikTokError(reason, f"TikTok's processing failed: {reason}", action=policy.action,
                              advice=policy.advice)
        if item.upload_url is None and status.downloaded_bytes is not None:
            fields["uploaded_bytes"] = status.downloaded_bytes  # a pull's progress, for `status`
        if verdict is machine.StatusVerdict.DONE:
            self.publisher.release(item)
            # The outcome and (write-ahead) the file's name in done/, one commit before the move.
            item = self.store.apply(item, Event.PUBLISH_COMPLETE, now=self.clock(), note=status.status, **fields,
                                    result_name=finish.plan(self.folder(item, "done"), item),
                                    ledger=[("status", called)])
            log.info("publish_complete", status=status.status, publish_id=item.publish_id)
            return item
        if status.status != item.status:
            self.store.note(item.id, "tiktok_status", now=self.clock(), detail=status.status)
        self.store.ledger_add(item.account, "status", called)
        now = self.clock()
        return self.store.update(item.id, now=now, next_attempt_at=now + self.settings.upload.status_poll_seconds,
                                 **fields)


__all__ = ["Pipeline", "Stopped"]

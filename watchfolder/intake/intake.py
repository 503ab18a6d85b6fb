"""Intake: turn watcher events into items in the store, once what they name has settled.

Runs on the main loop's thread only. Decides what a settled inbox entry is (video, photo post,
settings file, junk, bad) and records it; media we refuse goes to the store as FAILED before any
API call, and the finisher moves it to failed/ with its sidecar.
Over 300 lines because each kind of entry's decision and its record sit side by side on purpose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import queue
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from watchfolder.config import post as postsettings
from watchfolder.config.settings import Settings
from watchfolder.core import text
from watchfolder.core.errors import MediaError
from watchfolder.core.model import Kind, Mode, State
from watchfolder.core.transitions import Event
from watchfolder.intake import entries, settle, videocheck
from watchfolder.intake.ignore import is_ignored
from watchfolder.intake.watcher import WatchEvent
from watchfolder.logs import Logger
from watchfolder.media import convert
from watchfolder.openfile import Identity, NotTheFile, OpenFolder, OpenMedia
from watchfolder.store.store import Store

ORPHAN_SETTINGS_SECONDS = 600.0   # a settings file whose media never came goes to failed/ after this
UNREADABLE_RECHECK = 5.0          # how often a file we cannot read is tried again
INBOX_GONE_RECHECK = 30.0         # an entry of a vanished inbox is kept; the rescan on its return wakes it sooner
SLICE_SECONDS = 0.2               # the longest one pass of the main loop spends taking files in
TROUBLE_RECHECK = 30.0            # an entry that could not be examined (I/O error, a bug) is tried again after this
STORE_RECHECK = 5.0               # a pass whose items could not be committed (state disk full): tried again after this
SETTLING_SHOWN = 20               # entries merely settling (or waiting their turn) listed per account in `status`
INBOX_GONE_NOTE = "waiting: the inbox is unavailable (share not mounted?)"
TROUBLE_NOTE = "cannot read it right now (see the log); trying again"
# Pictures and clips a photo folder may hold that a photo post cannot take (see _refuse_foreign_media).
FOREIGN_MEDIA = frozenset({".heic", ".heif", ".avif", ".gif", ".bmp", ".tif", ".tiff", ".dng", ".cr2", ".cr3",
                           ".nef", ".arw", ".raw", ".mp4", ".mov", ".m4v", ".webm"})
INBOX_CAPTION_NOTE = ("TikTok drops the title of a video sent to the inbox (drafts): the creator writes it in "
                      "the app; the sidecar keeps it. Use mode: direct to post with a caption")


@dataclasses.dataclass(slots=True)
class Pending:
    account: str
    name: str
    recheck_at: float
    first_seen: float


@dataclasses.dataclass(slots=True)
class Insert:
    """An item decided in this pass, committed with the pass's others (``Store.add_items``), then logged."""

    pending: Pending
    record: dict[str, Any]
    level: str | None     # the log line said once it is committed, with its item_id (None: none)
    event: str | None
    fields: dict[str, Any]


class Intake:
    """Owns the settle windows and the 'notices' (symlinks, unreadable files, orphan settings) for `status`."""

    def __init__(self, settings: Settings, store: Store, events: queue.Queue[WatchEvent], *,
                 log: Logger, fingerprint: Callable[..., settle.Fingerprint | None] = settle.fingerprint) -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.log = log
        self.fingerprint = fingerprint
        self.settler = settle.Settler(settings.watch.settle_seconds)
        self.pending: dict[tuple[str, str], Pending] = {}
        self.notices: dict[tuple[str, str], str] = {}
        self.accounts = {account.name: account for account in settings.accounts}
        self.caption_warned: set[str] = set()  # inbox accounts already told that TikTok drops captions
        self.slice_seconds = SLICE_SECONDS
        # This pass's: the inbox listings (one per folder, reused by every entry), the time zone, the
        # items decided and not yet committed.
        self.listings = entries.Listings()
        self._zone: datetime.tzinfo | None = None
        self._inserts: dict[tuple[str, str], Insert] = {}
        self._flowing = False   # the last pass recorded items: a backlog is being taken in

    def inbox(self, account: str) -> Path:
        return self.settings.root / account / "inbox"

    def drain(self, now: float) -> int:
        """Move every queued watcher event into the pending set; return how many arrived."""
        count = 0
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return count
            count += 1
            if event.account not in self.accounts:
                continue
            key = (event.account, event.name)
            if key not in self.pending:
                self.pending[key] = Pending(event.account, event.name, now, now)
            else:
                self.pending[key].recheck_at = now

    def step(self, now: float) -> int:
        """Look at the pending entries whose recheck time has come, for at most ``slice_seconds`` (at least
        one entry); return how many items were recorded. What is left stays due, so the main loop comes
        back at once, after scheduling, health and watchdog pings: a 100,000-file backlog is taken in
        slices instead of one pass that holds the loop for minutes.

        Each folder is listed at most once in a pass, and the items it decides are committed together at
        its end (a crash before that commit loses only the decision: the files are still in inbox/, and
        the start's scan takes them in again). The first pass that records an item after one that recorded
        none ends with it, so its upload starts while the rest of a backlog is taken in."""
        self.drain(now)
        self.listings = entries.Listings()
        self._zone = None
        recorded = 0
        ends = time.monotonic() + self.slice_seconds
        looked = 0
        for key, pending in list(self.pending.items()):
            if pending.recheck_at > now:
                continue
            if looked and time.monotonic() >= ends:
                break
            looked += 1
            try:
                done, changed = self._examine(pending, now)
            except Exception as exc:  # noqa: BLE001 - one odd entry or a share outage must not stop the daemon
                self._trouble(pending, now, exc)
                continue
            recorded += changed
            if done and key not in self._inserts:
                self.pending.pop(key, None)
                self.settler.forget(_settle_key(key))
            if recorded and not self._flowing:
                break
        self._commit(now)
        self._flowing = recorded > 0
        return recorded

    def _commit(self, now: float) -> None:
        """Commit the pass's items in one transaction, then log them and forget their entries. On a store
        error they stay pending (tried again after STORE_RECHECK) and the error goes up to the loop, which
        reports it (``/healthz``) and carries on."""
        inserts, self._inserts = list(self._inserts.values()), {}
        if not inserts:
            return
        try:
            ids = self.store.add_items([insert.record for insert in inserts])
        except Exception:
            for insert in inserts:
                insert.pending.recheck_at = now + STORE_RECHECK
            raise
        for insert, item_id in zip(inserts, ids, strict=True):
            key = (insert.pending.account, insert.pending.name)
            self.pending.pop(key, None)
            self.settler.forget(_settle_key(key))
            if insert.level is not None:
                getattr(self.log, insert.level)(insert.event, **insert.fields, item_id=item_id)

    def _insert(self, pending: Pending, record: dict[str, Any], level: str | None, event: str | None,
                **fields: Any) -> None:
        self._inserts[(pending.account, pending.name)] = Insert(pending, record, level, event, fields)

    def zone(self) -> datetime.tzinfo:
        if self._zone is None:
            self._zone = self.settings.zone()
        return self._zone

    def next_wakeup(self) -> float | None:
        return min((p.recheck_at for p in self.pending.values()), default=None)

    def waiting_entries(self, now: float) -> list[dict[str, Any]]:
        """Entries not yet taken in (still being written, unreadable, settings without media), for `status`.

        Every entry with a notice is listed; of those merely settling or waiting their turn, the first
        SETTLING_SHOWN of each account, then one line with how many more (the main loop publishes this
        after every pass: a row per file of a 10,000-file backlog cost more than taking files in)."""
        rows = []
        settling: dict[str, int] = {}
        for (account, name), pending in self.pending.items():
            note = self.notices.get((account, name))
            if note is None:
                shown = settling[account] = settling.get(account, 0) + 1
                if shown > SETTLING_SHOWN:
                    continue
                growing = self.settler.growing_since(_settle_key((account, name)))
                since = growing if growing is not None else pending.first_seen
                note = f"being written or settling since {_clock(since)}"
            rows.append({"account": account, "name": text.display_name(name), "note": note})
        for account, count in settling.items():
            if count > SETTLING_SHOWN:
                rows.append({"account": account, "name": "",
                             "note": f"and {count - SETTLING_SHOWN:,} more files settling or waiting to be taken in"})
        for (account, name), note in self.notices.items():
            if (account, name) not in self.pending:
                rows.append({"account": account, "name": text.display_name(name), "note": note})
        return rows

    # ---- one entry -------------------------------------------------------------------------

    def _examine(self, pending: Pending, now: float) -> tuple[bool, int]:
        """Return (finished with this entry, items recorded)."""
        account, name = pending.account, pending.name
        key = (account, name)
        entry = entries.classify(self.inbox(account), account, name, self.settings.watch.ignore)
        if entry.kind == "ignored":
            return True, 0
        if entry.kind == "missing" and not os.path.isdir(self.inbox(account)):
            # The share went away (or the inbox was moved): that is not the user taking the file out,
            # so nothing is cancelled; the watcher rescans the inbox when it is back.
            self.notices[key] = INBOX_GONE_NOTE
            pending.recheck_at = now + INBOX_GONE_RECHECK
            return False, 0
        if self.notices.get(key) in (INBOX_GONE_NOTE, TROUBLE_NOTE):
            del self.notices[key]
        if entry.kind == "missing":
            self.notices.pop(key, None)
            self._cancel_if_waiting(account, name, now)
            return True, 0
        if entry.kind == "symlink":
            if key not in self.notices:
                self.log.warning("symlink_left_alone", account=account, item=text.display_name(name))
            self.notices[key] = "a symlink: left alone (watchfolder never follows links out of the inbox)"
            # A file taken in and then replaced by a link: the item is cancelled, the link never read.
            self._cancel_if_waiting(account, name, now, note=NotTheFile("symlink", name).message)
            return True, 0
        open_item = self.store.find_open(account, name)
        if open_item is not None and open_item.folder == "processing":
            return True, 0
        try:
            fp = self.fingerprint(entry.path, self.settings.watch.ignore)
        except PermissionError:
            self._unreadable(pending, now)
            return False, 0
        verdict = self.settler.observe(_settle_key(key), fp, now)
        if verdict.gone or fp is None:
            return True, 0
        if verdict.waiting:
            pending.recheck_at = min(verdict.until or now, now + self.settings.watch.settle_seconds)
            return False, 0
        if entry.kind == "settings":
            return self._settings_file(pending, entry, now)
        if open_item is not None:
            self._refresh_identity(open_item.id, fp, now)
            return True, 0
        if entry.kind in ("video", "photo") and not self._settings_settled(pending, entry, now):
            return False, 0
        try:
            recorded = self._take_in(pending, entry, fp, now)
        except PermissionError:
            self._unreadable(pending, now)
            return False, 0
        except NotTheFile:
            # Swapped (for a link, another file) between the settle check and the open: look again.
            self.settler.forget(_settle_key(key))
            pending.recheck_at = now
            return False, 0
        self.notices.pop(key, None)
        return True, recorded

    def _unreadable(self, pending: Pending, now: float) -> None:
        key = (pending.account, pending.name)
        if key not in self.notices:
            self.log.warning("cannot_read", account=pending.account, item=text.display_name(pending.name))
        self.notices[key] = "cannot read: permission denied (it is picked up once readable)"
        pending.recheck_at = now + UNREADABLE_RECHECK

    def _trouble(self, pending: Pending, now: float, exc: Exception) -> None:
        """Keep an entry that could not be examined (unreadable, share outage, a bug) and look again later."""
        if isinstance(exc, PermissionError):
            self._unreadable(pending, now)
            return
        key = (pending.account, pending.name)
        if self.notices.get(key) != TROUBLE_NOTE:
            item = text.display_name(pending.name)
            if isinstance(exc, OSError):
                self.log.warning("inbox_read_failed", account=pending.account, item=item,
                                 reason=exc.strerror or str(exc))
            else:
                self.log.exception("intake_failed", account=pending.account, item=item,
                                   error=f"{type(exc).__name__}: {exc}")
        self.notices[key] = TROUBLE_NOTE
        pending.recheck_at = now + TROUBLE_RECHECK

    def _cancel_if_waiting(self, account: str, name: str, now: float,
                           note: str = "taken out of inbox/ before it was sent") -> None:
        item = self.store.find_open(account, name)
        if item is None or item.folder != "inbox":
            return
        if item.state in (State.QUEUED, State.WAITING):
            self.store.apply(item, Event.TAKEN_OUT, now=now, note=note)
            self.log.info("item_cancelled", account=account, item=text.display_name(name))

    def _refresh_identity(self, item_id: int, fp: settle.Fingerprint, now: float) -> None:
        item = self.store.get(item_id)
        if settle.differs(fp, item) and item.state in (State.QUEUED, State.WAITING):
            # New content under the same name, before anything was sent (rewritten in place with its
            # mtime put back too: the change time tells): it starts afresh.
            self.store.update(item.id, now=now, size=fp.size, mtime_ns=fp.mtime_ns, ctime_ns=fp.ctime_ns,
                              ino=fp.ino, dev=fp.dev, sha256=None, quick_key=None)

    def _settings_file(self, pending: Pending, entry: entries.Entry, now: float) -> tuple[bool, int]:
        account, name = pending.account, pending.name
        stem = os.path.splitext(name)[0]
        inbox = self.inbox(account)
        for candidate in self.listings.view(inbox).with_stem(stem):
            if candidate != name:
                other = entries.classify(inbox, account, candidate, self.settings.watch.ignore)
                if other.kind in ("video", "photo", "photo_set", "other"):
                    self.notices.pop((account, name), None)
                    return True, 0
        for item in self.store.items(states=(State.UPLOADING, State.PROCESSING), account=account):
            if item.settings_name == name:
                return True, 0
        if now - pending.first_seen < ORPHAN_SETTINGS_SECONDS:
            self.notices[(account, name)] = "settings file waiting for its media"
            pending.recheck_at = pending.first_seen + ORPHAN_SETTINGS_SECONDS
            return False, 0
        self.notices.pop((account, name), None)
        self._insert(pending, {
            "account": account, "name": name, "kind": "settings", "now": now, "state": State.FAILED,
            "error_code": "settings_without_media",
            "error_message": f"no media named {stem}.* arrived within {int(ORPHAN_SETTINGS_SECONDS // 60)} "
                             "minutes of this settings file",
        }, None, None)
        return True, 1

    def _take_in(self, pending: Pending, entry: entries.Entry, fp: settle.Fingerprint, now: float) -> int:
        """Decide the item the settled entry makes (queued, waiting, or refused: failed) and add it to the
        pass's inserts; return 1."""
        account = self.accounts[entry.account]
        inbox = self.inbox(entry.account)
        settings_path = entries.settings_for(inbox, entry.name, self.listings) if entry.kind != "photo_set" else None
        settings_name = settings_path.name if settings_path is not None else None
        base: dict[str, Any] = {"size": fp.size, "mtime_ns": fp.mtime_ns, "ctime_ns": fp.ctime_ns, "ino": fp.ino,
                                "dev": fp.dev, "settings_name": settings_name, "source_mode": str(account.mode)}
        kind = Kind.PHOTO if entry.kind in ("photo", "photo_set") else Kind.VIDEO
        content_type: str | None
        found: dict[str, Any] = {}
        try:
            if entry.kind == "video":
                # Sniffed from a descriptor opened without following links and proven to be the file
                # that settled (NotTheFile otherwise): a link swapped in is never read.
                with OpenMedia.open(entry.path, Identity(fp.ino, fp.size, fp.mtime_ns, fp.ctime_ns, fp.dev)) as opened:
                    creator = videocheck.creator_limit(self.store, entry.account, now)
                    info, warnings = videocheck.checked(opened.file, self.settings, creator)
                content_type, found = info.content_type, videocheck.fields(info, warnings)
            else:
                content_type = self._check_media(entry)
            post = resolve_post_settings(account.defaults, inbox, entry, kind, str(account.mode),
                                         ignore_globs=self.settings.watch.ignore, zone=self.zone(),
                                         listings=self.listings)
        except NotTheFile:
            raise
        except MediaError as exc:
            # Bounded and printable: a message may quote a name's stray bytes or a hostile value.
            message = text.bounded(text.printable(exc.message), 4000)
            if isinstance(exc, videocheck.VideoRefused):
                found = videocheck.fields(exc.info, exc.warnings)
            self._insert(pending, {"account": entry.account, "name": entry.name, "kind": str(kind), "now": now,
                                   "state": State.FAILED, "error_code": exc.code, "error_message": message,
                                   "note": message, **base, **found},
                         "warning", "item_refused", account=entry.account, item=text.display_name(entry.name),
                         code=exc.code, reason=message)
            return 1
        if kind is Kind.VIDEO and Mode(account.mode) is Mode.INBOX and post.title:
            self._warn_caption(entry.account, post.source_file)
        publish_at = post.publish_at.timestamp() if post.publish_at else None
        state = State.WAITING if publish_at and publish_at > now else State.QUEUED
        self._insert(pending, {
            "account": entry.account, "name": entry.name, "kind": str(kind), "now": now, "state": state,
            "content_type": content_type, "publish_at": publish_at,
            "next_attempt_at": publish_at if state is State.WAITING else None,
            "wait_reason": "publish_at" if state is State.WAITING else None,
            "post_info": postsettings.as_dict(post), **base, **found,
        }, "info", "item_queued", account=entry.account, item=text.display_name(entry.name), kind=str(kind),
            size=fp.size, state=str(state))
        return 1

    def _settings_settled(self, pending: Pending, entry: entries.Entry, now: float) -> bool:
        """Return True when the media's settings file, if it has one, has settled too.

        A settings file that lands a moment after its media (inside the media's settle window) is
        used; waiting for it to settle as well keeps a half-written one from being read as empty.
        """
        path = entries.settings_for(self.inbox(entry.account), entry.name, self.listings)
        if path is None:
            return True
        verdict = self.settler.observe(_settle_key((entry.account, path.name)), self.fingerprint(path), now)
        if verdict.waiting:
            pending.recheck_at = min(verdict.until or now, now + self.settings.watch.settle_seconds)
            return False
        return True

    def _warn_caption(self, account: str, source_file: str | None) -> None:
        """Say once per account and run that TikTok drops the captions of inbox drafts (the sidecar keeps it)."""
        if account in self.caption_warned:
            return
        self.caption_warned.add(account)
        self.log.warning("inbox_caption_dropped", account=account,
                         source=text.display_name(source_file) if source_file else "account defaults",
                         reason=INBOX_CAPTION_NOTE)

    def _check_media(self, entry: entries.Entry) -> str | None:
        """Photos and anything that is not a video (videos are probed from their open descriptor)."""
        if entry.kind in ("photo", "photo_set"):
            if entry.kind == "photo_set":
                _refuse_foreign_media(entry.path, self.settings.watch.ignore)
            with contextlib.ExitStack() as stack:
                # Each image read through a descriptor opened without following links (openfile).
                if entry.kind == "photo":
                    opened = [(entry.name, stack.enter_context(OpenMedia.open(entry.path)))]
                else:
                    folder = stack.enter_context(OpenFolder(entry.path))
                    opened = [(image.name, stack.enter_context(folder.open(image.name)))
                              for image in entries.photo_files(entry.path, self.settings.watch.ignore)]
                try:
                    convert.check_photos([image.proc_path for _, image in opened], convert=self.settings.photos.convert)
                except MediaError as exc:  # named after the descriptor's path: name the user's image instead
                    names = {image.proc_path.name: name for name, image in opened}
                    head, colon, rest = exc.message.partition(": ")
                    if colon and head in names:
                        raise MediaError(exc.code, f"{text.display_name(names[head])}: {rest}") from None
                    raise
            return None
        raise MediaError("unsupported_media", unsupported_message(entry.name))


def _refuse_foreign_media(folder: Path, ignore_globs: Sequence[str]) -> None:
    """Raise MediaError naming the first picture or clip in a photo folder that a photo post cannot take.

    Refused rather than left out, so a folder of iPhone HEICs and JPEGs does not become a post quietly
    missing half its photos. Other files (notes, thumbnails databases) are left out as before.
    """
    with os.scandir(folder) as listing:
        foreign = sorted((d.name for d in listing if os.path.splitext(d.name)[1].lower() in FOREIGN_MEDIA
                          and not is_ignored(d.name, ignore_globs)), key=entries.natural_key)
    if foreign:
        raise MediaError("unsupported_media", f"{text.display_name(foreign[0])}: a photo post takes JPEG and "
                         "WebP images only (PNG too with photos.convert: true): convert it, or take it out of "
                         "the folder")


def resolve_post_settings(defaults: Mapping[str, object], inbox: Path, entry: entries.Entry, kind: Kind,
                          mode: str, *, ignore_globs: Sequence[str] = (),
                          zone: datetime.tzinfo = datetime.UTC,
                          listings: entries.Listings | None = None) -> postsettings.PostSettings:
    """Given an inbox entry, read its settings file (``<stem>.yaml``/``.txt`` beside a file, ``post.yaml``
    inside a photo folder) over the account defaults and return the checked settings.

    Raise MediaError("bad_post_settings", …) when they are bad, including a ``photo_cover_index`` that
    names no image of the post (counted as ``entries.photo_files`` with ``ignore_globs`` counts them).
    A ``publish_at`` without an offset is read as wall-clock time in ``zone``; ``listings``: the
    folders already listed in this pass.
    """
    path = entries.settings_for(inbox, entry.name, listings)
    values = postsettings.read_settings_file(path) if path is not None else {}
    post = postsettings.resolve(defaults, values, kind=kind, mode=Mode(mode),
                                source_name=path.name if path is not None else None, zone=zone)
    if entry.kind in ("photo", "photo_set") and post.photo_cover_index:
        count = 1 if entry.kind == "photo" else len(entries.photo_files(entry.path, ignore_globs))
        if post.photo_cover_index >= count:
            raise MediaError("bad_post_settings", f"{post.source_file or 'account defaults'}: "
                             f"'photo_cover_index': {post.photo_cover_index} names no image; this post has "
                             f"{count} (0 is the first)")
    return post


def inbox_caption_warnings(settings: Settings) -> list[str]:
    """Given the settings, return one line per inbox-mode account whose inbox holds videos with a settings
    file that gives a caption (TikTok drops captions of inbox drafts), naming those files; for `check`.

    Unreadable inboxes and settings files are skipped: the daemon reports those itself.
    """
    lines = []
    for account in settings.accounts:
        if Mode(account.mode) is not Mode.INBOX:
            continue
        inbox = settings.root / account.name / "inbox"
        captioned = []
        try:
            videos = [e for e in entries.list_inbox(inbox, account.name, settings.watch.ignore) if e.kind == "video"]
        except OSError:
            continue
        for entry in videos:
            path = entries.settings_for(inbox, entry.name)
            try:
                title = postsettings.read_settings_file(path).get("title") if path is not None else None
            except (OSError, MediaError):
                continue
            if title and path is not None:
                captioned.append(text.display_name(path.name))
        if captioned:
            shown = ", ".join(captioned[:5]) + (f" and {len(captioned) - 5} more" if len(captioned) > 5 else "")
            lines.append(f"{account.name}: {shown} set a caption. {INBOX_CAPTION_NOTE}")
    return lines


def unsupported_message(name: str) -> str:
    ext = os.path.splitext(name)[1].lower() or "(no extension)"
    return (f"'{ext}' files are not something TikTok accepts: drop videos (.mp4, .mov, .webm), images "
            "(.jpg, .webp) or a folder of images")


def _settle_key(key: tuple[str, str]) -> str:
    return f"{key[0]}\0{key[1]}"


def _clock(epoch: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

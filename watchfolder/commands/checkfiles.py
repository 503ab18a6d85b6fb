"""``watchfolder check FILE… [--account NAME] [--json]``: each file's verdict as if dropped into that account's inbox.

Nothing is sent and nothing moves: the same content checks intake runs (a video's headers against
TikTok's limits, with the creator's cached maximum length; photos; the settings file beside it), and
what would be sent. Exit 0 when every file would be accepted, 1 otherwise.
Text: one line per file, warnings under it. ``--json``: ``{"ok", "account", "files": [{"file",
"accepted", "code", "message", "media", "warnings", "sent_as"}]}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from watchfolder.config.settings import AccountSettings, Settings
from watchfolder.core.errors import MediaError
from watchfolder.core.model import Kind, VideoSource
from watchfolder.intake import entries, videocheck
from watchfolder.intake.intake import resolve_post_settings, unsupported_message
from watchfolder.media import convert
from watchfolder.ops.report import media_text
from watchfolder.store.store import Store
from watchfolder.tiktok import chunks


def verdict(path: Path, settings: Settings, account: AccountSettings, store: Store | None,
            now: float, shown: str | None = None) -> dict[str, Any]:
    """Given a file (or photo folder), return its verdict for ``account`` as a JSON-ready dict."""
    row: dict[str, Any] = {"file": shown or str(path), "accepted": False, "code": None, "message": "", "media": None,
                           "warnings": [], "sent_as": None}
    entry = entries.classify(path.parent, account.name, path.name, settings.watch.ignore)
    kind = Kind.PHOTO if entry.kind in ("photo", "photo_set") else Kind.VIDEO
    try:
        if entry.kind == "missing":
            raise MediaError("not_found", "no such file")
        if entry.kind in ("ignored", "symlink", "settings"):
            what = {"ignored": "an ignored name (hidden, temporary or in watch.ignore): never uploaded",
                    "symlink": "a symlink: watchfolder never follows links out of the inbox",
                    "settings": "a settings file: it goes with the media of the same name"}[entry.kind]
            raise MediaError(f"{entry.kind}_entry", what)
        if entry.kind == "video":
            info, warnings = videocheck.checked(path, settings, videocheck.creator_limit(store, account.name, now))
            row.update(media=info.as_dict(), warnings=list(warnings))
        elif entry.kind in ("photo", "photo_set"):
            images = [path] if entry.kind == "photo" else entries.photo_files(path, settings.watch.ignore)
            convert.check_photos(images, convert=settings.photos.convert)
        else:
            raise MediaError("unsupported_media", unsupported_message(path.name))
        post = resolve_post_settings(account.defaults, path.parent, entry, kind, str(account.mode),
                                     ignore_globs=settings.watch.ignore)
    except videocheck.VideoRefused as exc:
        row.update(code=exc.code, message=exc.message, media=exc.info.as_dict(), warnings=list(exc.warnings))
        return row
    except MediaError as exc:
        row.update(code=exc.code, message=exc.message)
        return row
    row.update(accepted=True, sent_as=_sent_as(path, kind, account, settings), settings_file=post.source_file)
    return row


def _sent_as(path: Path, kind: Kind, account: AccountSettings, settings: Settings) -> str:
    where = "drafts in the creator's TikTok inbox" if str(account.mode) == "inbox" else "a direct post"
    if kind is Kind.PHOTO:
        return f"a photo post as {where}, pulled by TikTok from media_host (PULL_FROM_URL)"
    if VideoSource(account.video_source) is VideoSource.PULL_FROM_URL:
        return f"a video as {where}, pulled by TikTok from media_host (PULL_FROM_URL)"
    plan = chunks.plan(os.stat(path).st_size, settings.upload.chunk_size)
    return (f"a video as {where}, uploaded (FILE_UPLOAD) in {plan.count} chunk{'s' if plan.count > 1 else ''} "
            f"of {plan.chunk_size:,} bytes")


def render(rows: list[dict[str, Any]], account: str) -> str:
    lines = []
    for row in rows:
        name = row["file"]
        if row["accepted"]:
            what = media_text(row["media"])
            lines.append(f"ok    {name}: accepted for {account}" + (f" ({what})" if what else "")
                         + f"; sent as {row['sent_as']}")
        else:
            lines.append(f"FAIL  {name}: {row['code']}: {row['message']}")
        lines += [f"      warning: {w}" for w in row["warnings"]]
    accepted = sum(row["accepted"] for row in rows)
    lines.append(f"\n{accepted} of {len(rows)} would be accepted for {account}.")
    return "\n".join(lines)


def main(settings: Settings, files: list[str], *, account_name: str | None = None, as_json: bool = False,
         now: float | None = None, out: IO[str] | None = None) -> int:
    stream = out if out is not None else sys.stdout
    account = settings.account(account_name) if account_name else settings.accounts[0]
    now = time.time() if now is None else now
    store = None
    if (settings.state_dir / "watchfolder.sqlite3").exists():
        try:
            store = Store(settings.state_dir, readonly=True)
        except Exception:  # noqa: BLE001 - the cached creator limit is a bonus; the verdict stands without it
            store = None
    try:
        rows = [verdict(Path(os.path.abspath(name)), settings, account, store, now, name) for name in files]
    finally:
        if store is not None:
            store.close()
    ok = all(row["accepted"] for row in rows)
    if as_json:
        print(json.dumps({"ok": ok, "account": account.name, "files": rows}, indent=2, ensure_ascii=False),
              file=stream)
    else:
        print(render(rows, account.name), file=stream)
    return 0 if ok else 1

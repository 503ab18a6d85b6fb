"""What the status page's paths answer (``/``, ``/style.css``, ``/api/status``, ``/item/N``), for the metrics
server (``ops/metrics.py``) to send. Every answer is computed from ``report.collect`` (the read model of
``watchfolder status``) at the time of the request, on a read-only connection of its own."""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from watchfolder import zones
from watchfolder.config.settings import Settings
from watchfolder.core.errors import WatchfolderError
from watchfolder.ops import itemview, page, pagestyle, progress, report
from watchfolder.ops.actions import Actions

HTML = "text/html; charset=utf-8"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
# Nothing but this host: no script at all, styles and images from the page's own origin, forms post back here.
SECURITY_HEADERS: Mapping[str, str] = MappingProxyType({
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
})
QUEUE_SHOWN = 50  # per account, the first items of the queue; the rest are counted (the page stays small)


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=lambda: SECURITY_HEADERS)


def _free(path: Path) -> str:
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    return f"{progress.size(usage.free)} free of {progress.size(usage.total)}"


def _hidden(data: dict[str, Any]) -> dict[str, int]:
    """Per account, how many queued or waiting items the report counted but did not list."""
    listed: dict[str, int] = {}
    for row in data.get("items") or []:
        if row["state"] in ("queued", "waiting"):
            listed[row["account"]] = listed.get(row["account"], 0) + 1
    return {acc["account"]: acc["queued"] + acc["waiting"] - listed.get(acc["account"], 0)
            for acc in data.get("accounts") or [] if acc["queued"] + acc["waiting"] > listed.get(acc["account"], 0)}


class StatusPage:
    """The page's answers for one config; ``health`` returns the health report's dict (None: no monitor)."""

    def __init__(self, settings: Settings, health: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.settings = settings
        self.health = health
        self.actions = Actions(settings)

    def handles(self, path: str) -> bool:
        return self.settings.metrics.page and (path in ("/", "/style.css", "/api/status")
                                               or path.startswith(("/item/", "/actions/")))

    def post(self, path: str, body: bytes, client: str, authorization: str | None, now: float) -> Answer:
        """The answer to a POST: the action done (or refused, nothing changed) and the page with what happened."""
        outcome = self.actions.post(path, body, client, authorization, now)
        try:
            data = report.collect(self.settings, now, QUEUE_SHOWN)
        except WatchfolderError as exc:
            return Answer(outcome.status, TEXT, self.private(f"{outcome.message}\nwatchfolder: {exc}\n"))
        allowed = self.actions.may_act(client, authorization)
        return Answer(outcome.status, HTML, self.overview(data, now, flash=outcome.message, forms_on=allowed))

    def get(self, path: str, now: float, *, forms_on: bool = False) -> Answer:
        """The answer to a GET of ``path`` (one that ``handles``); ``forms_on``: the asker may use the actions."""
        if path == "/style.css":
            return Answer(200, "text/css; charset=utf-8", pagestyle.CSS.encode())
        if path.startswith("/item/"):
            return self.item(path.removeprefix("/item/"), now, forms_on=forms_on)
        try:
            data = report.collect(self.settings, now, None if path == "/api/status" else QUEUE_SHOWN)
        except WatchfolderError as exc:
            return Answer(503, TEXT, self.private(f"watchfolder: {exc}\n"))
        if path == "/api/status":
            return Answer(200, JSON, json.dumps(data, indent=2, ensure_ascii=False).encode())
        if path == "/":
            return Answer(200, HTML, self.overview(data, now, forms_on=forms_on))
        return Answer(404, TEXT, b"not found\n")

    def item(self, ref: str, now: float, *, forms_on: bool = False) -> Answer:
        """An item's detail view; 404 for anything but the id of an item of a configured account."""
        if not (ref.isascii() and ref.isdigit()) or len(ref) > 18:
            return Answer(404, TEXT, b"not found\n")
        try:
            view = itemview.detail(self.settings, int(ref), now)
        except WatchfolderError as exc:
            return Answer(503, TEXT, self.private(f"watchfolder: {exc}\n"))
        if view is None:
            return Answer(404, TEXT, f"no item {ref}\n".encode())
        forms = self.actions.forms_for([view["item"]]) if forms_on else ""
        return Answer(200, HTML, self.private(page.item_page(view, self.settings.zone(), forms)))

    def private(self, text: str) -> bytes:
        """A page's bytes with the state directory's path (outside the media root, in a health problem or a
        database error) shown as ``[state_dir]``."""
        where = str(self.settings.state_dir)
        return text.replace(where, "[state_dir]").replace(html.escape(where, quote=True), "[state_dir]").encode()

    def overview(self, data: dict[str, Any], now: float, *, forms_on: bool = False, flash: str = "") -> bytes:
        zone = self.settings.zone()
        forms = {str(acc["account"]): self.actions.forms_for([r for r in data.get("items") or []
                                                              if r["account"] == acc["account"]], acc)
                 for acc in data.get("accounts") or []} if forms_on else {}
        hidden = _hidden(data)
        disk = {"Free space (media root)": _free(self.settings.root),
                "Free space (state)": _free(self.settings.state_dir)}
        return self.private(page.render(data, zone, health=self.health() if self.health else None, disk=disk,
                           now_text=zones.shown(now, zone, seconds=True), forms=forms, flash=flash,
                                        hidden=hidden))

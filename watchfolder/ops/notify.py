"""Notifications: a POST to a webhook (JSON) and/or an ntfy-style topic (plain text) when something needs a person.

Four events, each sent once and each dropped when left out of ``notify.events``: ``item_done`` (a draft
waits in the TikTok app, or a post is up), ``item_failed`` (an item reached failed/), ``account_paused``
(TikTok refused an account as a whole, or its sign-in is gone) and ``token_expiring`` (the refresh token
expires within ``tiktok.refresh_warn_days``). The hook finds them in the store from the main loop
(the done and failed events after a remembered event id, the accounts table, the token files), remembers
what it has announced in the store's ``runtime`` table so a restart does not repeat itself, and
hands the messages to a sender thread, so a slow webhook never holds up the loop. The payloads are
documented in docs/service.md. No token or secret is ever part of one; URLs are logged by host only.
"""

from __future__ import annotations

import dataclasses
import email.header
import json
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from watchfolder import __version__, logs
from watchfolder.config.settings import Settings
from watchfolder.core.errors import AuthError
from watchfolder.core.text import bounded, display_name, iso, printable
from watchfolder.daemon.hooks import DaemonView

SCAN_SECONDS = 2.0        # how often the store is looked at for new failures and pauses
EXPIRY_SECONDS = 3600.0   # how often the token files are looked at
RETRY_DELAYS = (1.0, 5.0)  # between the attempts of one POST (three in all)
TIMEOUT = 10.0
RUNTIME_KEY = "notify"


@dataclasses.dataclass(frozen=True)
class Event:
    """One notification. ``fields`` are the event's own keys of the webhook payload."""

    kind: str       # item_done | item_failed | account_paused | token_expiring
    severity: str   # error | warning | info
    account: str
    title: str
    message: str
    at: float
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)


def webhook_payload(event: Event, host: str) -> dict[str, Any]:
    """Given an event and this machine's name, return the JSON body POSTed to ``notify.webhook``."""
    return {"source": "watchfolder", "version": __version__, "event": event.kind, "severity": event.severity,
            "account": event.account, "title": event.title, "message": event.message, "at": iso(event.at),
            "host": host, **event.fields}


_NTFY_TAGS = {"item_done": "white_check_mark", "item_failed": "x", "account_paused": "pause_button",
              "token_expiring": "key"}


def ntfy_request(event: Event) -> tuple[dict[str, str], bytes]:
    """Given an event, return the headers and UTF-8 body of the plain POST to ``notify.ntfy``.

    Header values must be Latin-1 on the wire; a title with other characters (an emoji in a file
    name) is sent as an RFC 2047 encoded word, which ntfy decodes.
    """
    title = event.title
    if not title.isascii():
        title = email.header.Header(title, "utf-8").encode()
    headers = {"Title": title, "Priority": "high" if event.severity == "error" else "default",
               "Tags": f"{_NTFY_TAGS.get(event.kind, 'bell')},watchfolder",
               "Content-Type": "text/plain; charset=utf-8"}
    return headers, event.message.encode("utf-8")


def post_url(post_id: str) -> str:
    """The address of a public TikTok post: TikTok opens a video by its id, whatever the @name part says."""
    return f"https://www.tiktok.com/@/video/{post_id}"


def done_event(item: Any, name: str, mode: str, now: float) -> Event:
    """``item_done``: inbox mode, a draft waits in the creator's TikTok app; direct mode, the post is up
    (with its URL when TikTok gave the post id: only for posts others may see)."""
    post_ids = [str(p) for p in json.loads(item.post_ids or "[]")]
    url = post_url(post_ids[0]) if post_ids else None
    if mode == "direct":
        title = f"{item.account}: {name} is posted"
        message = f"{name} is posted for {item.account}" + (f": {url}" if url else " (TikTok gave no public link)")
    else:
        title = f"{item.account}: a draft waits in the TikTok app"
        message = f"a draft waits in the TikTok app for {item.account}: {name}"
    return Event("item_done", "info", item.account, title, message, now,
                 {"item": name, "item_id": item.id, "kind": item.kind, "mode": mode, "status": item.status,
                  "publish_id": item.publish_id, "post_ids": post_ids, "post_url": url})


class Sender:
    """POSTs events from a queue on its own thread, three attempts each; never raises into the daemon."""

    def __init__(self, *, webhook: str | None, ntfy: str | None, log: logs.Logger | None = None,
                 timeout: float = TIMEOUT, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.webhook, self.ntfy = webhook, ntfy
        self.log = log if log is not None else logs.get_logger()
        self.timeout = timeout
        self.retry_delays = retry_delays
        self.host = socket.gethostname()
        self.queue: queue.Queue[Event | None] = queue.Queue()
        self.closing = threading.Event()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"watchfolder/{__version__}"
        self.thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self.thread.start()

    def put(self, event: Event) -> None:
        # Whatever an error message quoted (bytes of a name that were not UTF-8, a huge value), what is
        # sent is valid UTF-8 of a bounded size.
        self.queue.put(dataclasses.replace(event, title=bounded(printable(event.title), 250),
                                           message=bounded(printable(event.message), 4000),
                                           account=printable(event.account)))

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, for ``timeout`` seconds at most, then stop the thread."""
        self.queue.put(None)
        self.thread.join(timeout)
        self.closing.set()  # a retry still waiting gives up now
        self.thread.join(1.0)
        self.session.close()

    def _run(self) -> None:
        while (event := self.queue.get()) is not None:
            if self.webhook:
                self._guarded(event, self._webhook)
            if self.ntfy:
                self._guarded(event, self._ntfy)

    def _guarded(self, event: Event, send: Callable[[Event], None]) -> None:
        """Send one event to one target; whatever it raises is logged, and the thread lives on."""
        try:
            send(event)
        except Exception as exc:  # noqa: BLE001 - one odd event must not silence every later one
            self.log.error("notification_error", kind=event.kind, account=event.account,
                           error=f"{type(exc).__name__}: {exc}")

    def _webhook(self, event: Event) -> None:
        assert self.webhook is not None
        self._post(self.webhook, event, json=webhook_payload(event, self.host))

    def _ntfy(self, event: Event) -> None:
        assert self.ntfy is not None
        headers, body = ntfy_request(event)
        self._post(self.ntfy, event, data=body, headers=headers)

    def _post(self, url: str, event: Event, **request: Any) -> None:
        target = urlsplit(url).netloc  # the path may be a secret topic name: log the host only
        outcome = ""
        for attempt, delay in enumerate((*self.retry_delays, None), start=1):
            try:
                response = self.session.post(url, timeout=self.timeout, allow_redirects=False, **request)
                outcome = f"HTTP {response.status_code}"
                if response.status_code < 300:
                    self.log.info("notification_sent", kind=event.kind, account=event.account, target=target)
                    return
                if response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refuses this request; asking again will not change that
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            if delay is None or self.closing.wait(delay):
                break
            self.log.info("notification_retry", kind=event.kind, target=target, attempt=attempt, outcome=outcome)
        self.log.warning("notification_failed", kind=event.kind, account=event.account, target=target,
                         outcome=outcome)


class Notifier:
    """The daemon hook that finds events in the store and hands them to a Sender."""

    def __init__(self, settings: Settings, *, sender: Sender | None = None, log: logs.Logger | None = None,
                 scan_seconds: float = SCAN_SECONDS, expiry_seconds: float = EXPIRY_SECONDS) -> None:
        self.settings = settings
        self.log = log if log is not None else logs.get_logger()
        self.sender = sender or Sender(webhook=settings.notify.webhook, ntfy=settings.notify.ntfy, log=self.log)
        self.scan_seconds = scan_seconds
        self.expiry_seconds = expiry_seconds
        self.state: dict[str, Any] = {}
        self._last_scan = self._last_expiry = float("-inf")

    def on_ready(self, daemon: DaemonView) -> None:
        """Load what was announced before; on the first start ever, begin after the failures already recorded."""
        stored = daemon.state.runtime(RUNTIME_KEY)
        if stored is not None:
            self.state = {"event_id": 0, "paused": {}, "expiry": {}, **stored[0]}
        else:
            self.state = {"event_id": daemon.state.last_event_id(), "paused": {}, "expiry": {}}

    def on_tick(self, daemon: DaemonView, now: float) -> None:
        mono = time.monotonic()
        if mono - self._last_scan < self.scan_seconds:
            return
        self._last_scan = mono
        before = repr(self.state)
        self._failures(daemon, now)
        self._pauses(daemon, now)
        if mono - self._last_expiry >= self.expiry_seconds:
            self._last_expiry = mono
            self._expiring(daemon, now)
        if repr(self.state) != before:
            daemon.state.set_runtime(RUNTIME_KEY, self.state, now)

    def on_stop(self, daemon: DaemonView) -> None:
        self.sender.close()

    def _put(self, event: Event) -> None:
        if event.kind in self.settings.notify.events:
            self.sender.put(event)

    # ---- finding events ---------------------------------------------------------------------------

    def _failures(self, daemon: DaemonView, now: float) -> None:
        rows = daemon.state.outcomes_after(self.state["event_id"])
        for event_id, item_id, state in rows:
            item = daemon.state.get(item_id)
            name = display_name(item.name)
            if state == "done":
                self._put(done_event(item, name, self._mode(item.account), now))
                self.state["event_id"] = event_id
                continue
            message = bounded(printable(item.error_message or ""), 2000)
            error = {"code": item.error_code, "message": message, "log_id": item.error_log_id}
            self._put(Event(
                "item_failed", "error", item.account, f"{item.account}: {name} failed",
                f"{name} ({item.account}) went to failed/: {item.error_code}: {message}".strip(),
                now, {"item": name, "item_id": item.id, "kind": item.kind, "error": error}))
            self.state["event_id"] = event_id
        if not rows:  # move past other events too, so the next query starts near the end of the table
            self.state["event_id"] = max(self.state["event_id"], daemon.state.last_event_id())

    def _mode(self, account: str) -> str:
        return next((str(a.mode) for a in self.settings.accounts if a.name == account), "inbox")

    def _pauses(self, daemon: DaemonView, now: float) -> None:
        paused: dict[str, str] = self.state.setdefault("paused", {})
        for account in self.settings.accounts:
            state = daemon.state.account_state(account.name)
            if not state.paused_code:
                paused.pop(account.name, None)
                continue
            if paused.get(account.name) == state.paused_code:
                continue
            paused[account.name] = state.paused_code
            if state.paused_code == "sign_in":
                text = f"{account.name} is paused until it signs in again: watchfolder auth login {account.name}"
            else:
                until = f"; next try {iso(state.wait_until)}" if state.wait_until else ""
                text = f"{account.name} is paused: {state.paused_message or state.paused_code}{until}"
            self._put(Event("account_paused", "warning", account.name, f"{account.name}: account paused",
                                  text, now, {"code": state.paused_code, "until": iso(state.wait_until)}))

    def _expiring(self, daemon: DaemonView, now: float) -> None:
        expiry: dict[str, float] = self.state.setdefault("expiry", {})
        window = self.settings.tiktok.refresh_warn_days * 86400
        for account in self.settings.accounts:
            try:
                tokens = daemon.token_store.load(account.name)
            except AuthError:
                tokens = None
            if tokens is None or tokens.refresh_expires_at - now > window:
                expiry.pop(account.name, None)  # renewed (or gone): a later expiry is news again
                continue
            if expiry.get(account.name) == tokens.refresh_expires_at:
                continue
            expiry[account.name] = tokens.refresh_expires_at
            days = (tokens.refresh_expires_at - now) / 86400
            when = "has expired" if days <= 0 else f"expires in {days:.1f} days"
            self._put(Event(
                "token_expiring", "error" if days <= 1 else "warning", account.name,
                f"{account.name}: TikTok sign-in {when}",
                f"The TikTok sign-in of {account.name} {when} ({iso(tokens.refresh_expires_at)}); renew it with: "
                f"watchfolder auth login {account.name}",
                now, {"expires_at": iso(tokens.refresh_expires_at), "days_left": round(days, 2)}))

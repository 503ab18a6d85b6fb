"""The status page at ``/``: the read model of ``watchfolder status`` (``ops/report.py``) as one HTML page.

Server-rendered, read-only, nothing loaded from outside the host: one stylesheet (``/style.css``,
``ops/pagestyle.py``) and a ``<meta http-equiv="refresh">``. Every name and message is HTML-escaped
(names come from the file system and may be hostile), and nothing is shown that ``status`` would not
show: no token, no secret, no path outside the media root.
"""

from __future__ import annotations

import datetime
import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

from watchfolder.ops import progress

REFRESH_SECONDS = 5
HEAD = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">{refresh}<title>{title}</title>'
        '<link rel="stylesheet" href="/style.css"></head><body>')


def esc(value: object) -> str:
    """Any value as HTML text, quotes included (safe in element content and in attribute values)."""
    return html.escape("" if value is None else str(value), quote=True)


def local(stamp: str | None, zone: datetime.tzinfo) -> str:
    """``2026-12-03T17:00:00Z`` → ``18:00 CET`` today-ish, else ``2026-12-03 18:00 CET``; None → ``-``."""
    if not stamp:
        return "-"
    moment = datetime.datetime.fromisoformat(stamp).astimezone(zone)
    label = moment.tzname() or moment.strftime("%z")
    return moment.strftime("%Y-%m-%d %H:%M") + f" {label}"


def head(title: str, *, refresh: str | None) -> str:
    """The document's head; ``refresh``: the URL to load again every REFRESH_SECONDS (None: no refresh)."""
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}; url={esc(refresh)}">' if refresh else ""
    return HEAD.format(refresh=meta, title=esc(title))


def table(caption: str, headers: Iterable[str], rows: list[list[str]], *, cls: str, empty: str = "") -> str:
    """A semantic table (caption, column headers with scope); each cell carries its header as data-label
    for the narrow layout. Cells are HTML already (escaped by the caller). No rows: ``empty`` as a line."""
    names = list(headers)
    if not rows:
        return f'<p class="empty {cls}">{esc(empty)}</p>' if empty else ""
    head_row = "".join(f'<th scope="col">{esc(name)}</th>' for name in names)
    body = "".join(
        "<tr>" + "".join(f'<td data-label="{esc(name)}">{cell}</td>' for name, cell in zip(names, row, strict=True))
        + "</tr>" for row in rows)
    return (f'<table class="{cls}"><caption>{esc(caption)}</caption><thead><tr>{head_row}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def item_link(row: Mapping[str, Any]) -> str:
    return f'<a href="/item/{int(row["id"])}">{esc(row["name"])}</a>'


def _speed(row: Mapping[str, Any]) -> str:
    speed = row.get("speed_bytes_per_second")
    return f"{progress.size(speed)}/s" if speed else "-"


def _eta(row: Mapping[str, Any]) -> str:
    eta = row.get("eta_seconds")
    return f"about {progress.duration(eta)}" if eta is not None else "-"


def _why(row: Mapping[str, Any]) -> str:
    """The reason an item waits: the summary (without the next try, shown in its own column) and the detail."""
    text = str(row["summary"]).split("; next try ")[0]
    if row.get("detail"):
        text += f" ({row['detail']})"
    return esc(text)


def _failure(row: Mapping[str, Any]) -> list[str]:
    named = f"auth login {row['account']}"
    message = str(row.get("message") or "").replace("auth login ACCOUNT", named)
    advice = str(row.get("advice") or "").replace("auth login ACCOUNT", named)
    if message == advice:  # the daemon records the advice as the message when it has one
        message = "-"
    return [item_link(row), f"<code>{esc(row.get('error') or 'failed')}</code>", esc(message), esc(advice or "-")]


def _done(row: Mapping[str, Any], zone: datetime.tzinfo) -> list[str]:
    url = row.get("post_url")
    post = f'<a href="{esc(url)}" rel="noreferrer noopener">the post</a>' if url else esc(row.get("summary"))
    return [item_link(row), esc(local(row.get("updated_at"), zone)), post]


def account_section(acc: Mapping[str, Any], items: list[Mapping[str, Any]], zone: datetime.tzinfo,
                    forms: str = "", hidden: int = 0) -> str:
    """One account: its sign-in and state, TikTok's budget, then its items by what they are doing (``hidden``:
    how many more items wait in the queue than ``items`` holds)."""
    name = str(acc["account"])
    anchor = f"account-{esc(name)}"
    note = str(acc["note"])
    if acc.get("signed_in"):
        signed = f"signed in until {local(acc.get('signed_in_until'), zone)}"
    else:
        signed = f"not signed in: {acc.get('tokens_problem') or 'no sign-in stored'}"
        if "auth login" not in note:
            signed += f"; fix: watchfolder auth login {name}"
    note = note.replace("auth login ACCOUNT", f"auth login {name}")
    state_cls = "ok" if note == "ok" else ("bad" if note.startswith(("paused", "sign in")) else "warn")
    facts = [("Sign-in", esc(signed)), ("State", f'<span class="{state_cls}">{esc(note)}</span>'),
             ("TikTok's budget", esc(f"{acc['budget_text']}; about {acc['budget_left']} left")),
             *([("Fix", f"<code>watchfolder auth login {esc(name)}</code>")]
               if acc.get("paused") == "sign_in" or not acc.get("signed_in") else []),
             ("Counts", esc(f"{acc['queued']} queued, {acc['waiting']} waiting, {acc['uploading']} uploading, "
                            f"{acc['processing']} awaiting TikTok, {acc['done_today']} done and "
                            f"{acc['failed_today']} failed in 24 h"))]
    by_state: dict[str, list[Mapping[str, Any]]] = {}
    for row in items:
        by_state.setdefault(str(row["state"]), []).append(row)
    uploading = [[item_link(r), f'<progress max="100" value="{int(r["percent"])}" aria-label="{esc(r["name"])}: '
                  f'{int(r["percent"])}% sent"></progress> {int(r["percent"])}%',
                  esc(_speed(r)), esc(_eta(r))] for r in by_state.get("uploading", [])]
    processing = [[item_link(r), esc(r["summary"])] for r in by_state.get("processing", [])]
    queue = [[item_link(r), esc(r["state"]), _why(r), esc(local(r.get("next_attempt_at") or r.get("publish_at"), zone))]
             for r in by_state.get("queued", []) + by_state.get("waiting", [])]
    parts = [f'<section class="account" id="{anchor}" aria-labelledby="{anchor}-h">',
             f'<h2 id="{anchor}-h">{esc(name)} <span class="mode">{esc(acc["mode"])}</span></h2>',
             '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>", forms,
             table("Uploading now", ("Item", "Sent", "Speed", "Time left"), uploading, cls="uploading"),
             table("Awaiting TikTok", ("Item", "What"), processing, cls="processing"),
             table("Queue", ("Item", "State", "Why it waits", "Next try"), queue, cls="queue",
                   empty="Nothing queued."),
             f'<p class="more">and {hidden} more in the queue (all of them: <a href="/api/status">JSON</a>)</p>'
             if hidden else "",
             table("Done in the last 24 h", ("Item", "When", "Result"),
                   [_done(r, zone) for r in by_state.get("done", [])], cls="done"),
             table("Failed in the last 24 h", ("Item", "Code", "Message", "What to do"),
                   [_failure(r) for r in by_state.get("failed", [])], cls="failed"),
             "</section>"]
    return "".join(parts)


def health_section(data: Mapping[str, Any], health: Mapping[str, Any] | None, disk: Mapping[str, str]) -> str:
    """The daemon: running or not, its health problems, each inbox's observer, the free space."""
    daemon = data.get("daemon")
    if daemon is None or not daemon.get("running"):
        line = "not running"
        cls = "bad"
    else:
        line, cls = f"running (pid {daemon['pid']})", "ok"
    facts = [("Daemon", f'<span class="{cls}">{esc(line)}</span>')]
    if health is not None:
        ok = bool(health.get("ok"))
        facts.append(("Health", f'<span class="{"ok" if ok else "bad"}">{esc(health.get("status"))}</span>'))
        age = health.get("loop_age_seconds")
        if age is not None:
            facts.append(("Main loop", esc(f"last pass {float(age):.1f} s ago")))
        for problem in health.get("problems") or []:
            facts.append(("Problem", f'<span class="bad">{esc(problem)}</span>'))
    for label, value in disk.items():
        facts.append((esc(label), esc(value)))
    observers = (daemon or {}).get("observers") or (health or {}).get("observers") or []
    rows = [[esc(o.get("account")), esc(o.get("method", "")),
             esc("watching" if o.get("alive") and o.get("available", True) else o.get("message") or "not watching")]
            for o in observers]
    return ('<section class="health" id="health" aria-labelledby="health-h"><h2 id="health-h">Daemon</h2>'
            '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"
            + table("Inboxes", ("Account", "Observer", "State"), rows, cls="observers") + "</section>")


def notices_section(data: Mapping[str, Any]) -> str:
    notices = data.get("notices") or []
    rows = [[esc(n.get("account")), esc(n.get("name")), esc(n.get("note"))] for n in notices]
    return table("Files in an inbox that are not taken", ("Account", "File", "Why"), rows, cls="notices")


def render(data: Mapping[str, Any], zone: datetime.tzinfo, *, health: Mapping[str, Any] | None = None,
           disk: Mapping[str, str] | None = None, now_text: str = "", forms: Mapping[str, str] | None = None,
           flash: str = "", hidden: Mapping[str, int] | None = None) -> str:
    """The whole page from ``report.collect``'s dict, the health report and the disk lines; ``forms``: per
    account the HTML of its action forms (only when actions are on), ``flash``: a line to show on top,
    ``hidden``: per account, how many queued items were left out of ``data``."""
    parts = [head("watchfolder", refresh="/"), '<header><h1>watchfolder</h1>',
             f'<p class="stamp">updated {esc(now_text)}; refreshes every {REFRESH_SECONDS} s · '
             '<a href="/api/status">JSON</a></p></header><main>']
    if flash:
        parts.append(f'<p class="flash" role="status">{esc(flash)}</p>')
    if data.get("message"):
        parts.append(f'<p class="bad">{esc(data["message"])}</p>')
    items = list(data.get("items") or [])
    for acc in data.get("accounts") or []:
        mine = [row for row in items if row.get("account") == acc["account"]]
        name = str(acc["account"])
        parts.append(account_section(acc, mine, zone, (forms or {}).get(name, ""), (hidden or {}).get(name, 0)))
    parts.append(notices_section(data))
    parts.append(health_section(data, health, disk or {}))
    parts.append("</main></body></html>")
    return "".join(parts)


def item_page(view: Mapping[str, Any], zone: datetime.tzinfo, forms: str = "") -> str:
    """An item's detail view (``itemview.detail``): what status says, its history as a timeline, the raw sidecar."""
    row = view["item"]
    account = str(row["account"])
    facts = [("Account", f'<a href="/#account-{esc(account)}">{esc(account)}</a>'), ("State", esc(row["state"])),
             ("Where it is", esc(row["summary"]))]
    if row.get("detail"):
        facts.append(("Detail", esc(row["detail"])))
    if row.get("error"):
        facts.append(("Code", f"<code>{esc(row['error'])}</code>"))
        if row.get("advice"):
            facts.append(("What to do", esc(row["advice"])))
    if row.get("post_url"):
        facts.append(("Post", f'<a href="{esc(row["post_url"])}" rel="noreferrer noopener">{esc(row["post_url"])}</a>'))
    if row.get("media_text"):
        facts.append(("Media", esc(row["media_text"])))
    events = "".join(
        f'<li><time datetime="{esc(e["at"])}">{esc(local(e["at"], zone))}</time> <strong>{esc(e["state"])}</strong>'
        + (f" — {esc(e['detail'])}" if e.get("detail") else "") + "</li>" for e in view["history"])
    if view.get("sidecar") is not None:
        raw = ('<h2 id="sidecar">The sidecar</h2>'
               f'<pre>{esc(json.dumps(view["sidecar"], indent=2, ensure_ascii=False))}</pre>')
    else:
        raw = (f'<h2 id="sidecar">The sidecar</h2><p class="empty">{esc(view.get("sidecar_note"))}</p>'
               f'<h2>The status row</h2><pre>{esc(json.dumps(row, indent=2, ensure_ascii=False))}</pre>')
    return (head(f"{row['name']} · watchfolder",
                 refresh=None if row["state"] in ("done", "failed", "cancelled") else f"/item/{int(row['id'])}")
            + f'<header><p><a href="/">← all accounts</a></p><h1>{esc(row["name"])}</h1></header><main>'
            + '<section aria-labelledby="facts-h"><h2 id="facts-h">Now</h2><dl class="facts">'
            + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>" + forms + "</section>"
            + '<section aria-labelledby="history-h"><h2 id="history-h">History</h2>'
            + f'<ol class="timeline">{events}</ol></section>'
            + f"<section>{raw}</section></main></body></html>")

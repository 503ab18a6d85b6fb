"""The state directory, its database and token files, and how each inbox is watched (the mount table,
the inotify limits)."""

from __future__ import annotations

import errno
import getpass
import os
import stat
from collections.abc import Iterator, Sequence

from watchfolder import fsinfo
from watchfolder.config.settings import Settings
from watchfolder.core.errors import WatchfolderError
from watchfolder.ops.doctor.findings import FAIL, OK, WARN, Check
from watchfolder.ops.doctor.setup import writable
from watchfolder.store import queries, statelock
from watchfolder.store.store import DB_NAME, Store
from watchfolder.tiktok.tokens import TokenStore


def state_dir(settings: Settings, mounts: Sequence[fsinfo.Mount], now: float) -> Iterator[Check]:
    state_dir = settings.state_dir
    where = state_dir if state_dir.exists() else state_dir.parent
    if not state_dir.exists() and not where.is_dir():
        yield Check("state_dir", FAIL, f"{state_dir}: its parent folder does not exist; create it or fix state_dir")
        return
    if not writable(where):
        yield Check("state_dir", FAIL, f"{where} is not writable for {getpass.getuser()}: the state and tokens live "
                    "there; give the daemon's user access, or choose another state_dir")
        return
    try:
        kind = statelock.refuse_network_state(state_dir, allowed=settings.allow_network_state_dir, mounts=mounts)
    except WatchfolderError as exc:
        yield Check("state_dir", FAIL, str(exc))
        return
    if kind is not None and fsinfo.is_network(kind):
        yield Check("state_dir", WARN, f"{state_dir} is on a network filesystem ({kind}), allowed by "
                    "allow_network_state_dir: SQLite locking is unreliable there; prefer a local disk")
    else:
        fs = f" on {kind}" if kind else ""
        yield Check("state_dir", OK, f"{state_dir}{fs}, a local disk" + ("" if state_dir.exists() else
                                                                       " (created at the first start)"))
    tokens_dir = TokenStore(state_dir).directory
    loose = [p for p in [tokens_dir, *sorted(tokens_dir.glob("*.json"))] if p.exists()
             and stat.S_IMODE(os.stat(p).st_mode) & 0o077]
    if loose:
        yield Check("tokens_dir", FAIL, f"readable by group or others: {', '.join(map(str, loose))}; fix with: "
                    f"chmod 700 {tokens_dir}; chmod 600 {tokens_dir}/*.json")
    if (state_dir / DB_NAME).exists():
        yield database(settings, now)


def database(settings: Settings, now: float) -> Check:
    try:
        store = Store(settings.state_dir, readonly=True)
    except WatchfolderError as exc:
        return Check("database", FAIL, str(exc))
    try:
        verdict = queries.quick_check(store)
        live = store.runtime("daemon")
    except Exception as exc:  # noqa: BLE001 - sqlite3 errors of every kind mean the same here
        return Check("database", FAIL, f"the state database cannot be read: {exc}")
    finally:
        store.close()
    if verdict != "ok":
        return Check("database", FAIL, f"the state database is damaged ({verdict}): stop the daemon and restore "
                     f"{settings.state_dir / DB_NAME} from a backup")
    running = live is not None and statelock.held(settings.state_dir, live[0].get("pid"))
    daemon = f"a daemon is running (pid {live[0].get('pid')})" if running and live else "no daemon is running"
    return Check("database", OK, f"the state database is sound; {daemon}")


def watching(settings: Settings, mounts: Sequence[fsinfo.Mount],
           limits: dict[str, int | None] | None) -> Iterator[Check]:
    inotify_inboxes = []
    for account in settings.accounts:
        inbox = settings.root / account.name / "inbox"
        method, reason = fsinfo.choose_observer(settings.watch.observer, inbox, mounts)
        risky = method == "inotify" and "only be found by the periodic rescan" in reason
        yield Check(f"watch:{account.name}", WARN if risky else OK, f"{method}: {reason}" + (
            "; set watch.observer: auto or polling" if risky else ""))
        if method == "inotify":
            inotify_inboxes.append(inbox)
    if not inotify_inboxes:
        return
    limits = fsinfo.inotify_limits() if limits is None else limits
    folders = sum(1 + sum(len(dirs) for _, dirs, _ in os.walk(inbox)) for inbox in inotify_inboxes)
    watches, instances = limits.get("max_user_watches"), limits.get("max_user_instances")
    if watches is None or instances is None:
        yield Check("inotify", WARN, "the inotify limits cannot be read (/proc/sys/fs/inotify); if watching fails, "
                    "the inbox is polled instead")
    elif instances < len(inotify_inboxes) + 8:  # other programs of the same user need instances too
        yield Check("inotify", WARN, fsinfo.inotify_limit_advice(errno.EMFILE, limits))
    elif watches < folders + 1024:
        yield Check("inotify", WARN, fsinfo.inotify_limit_advice(errno.ENOSPC, limits))
    else:
        yield Check("inotify", OK, f"max_user_watches {watches}, max_user_instances {instances}: enough for "
                    f"{folders} watched folder(s) in {len(inotify_inboxes)} inbox(es)")

"""Putting a failed item back: its file (and its settings file) from ``failed/`` into its account's ``inbox/``,
the old sidecar kept beside it as a record, the store told (``Event.RETRIED``). Used by ``watchfolder retry``
and the status page's retry action."""

from __future__ import annotations

import os

from watchfolder.config.settings import Settings
from watchfolder.core.errors import UsageError
from watchfolder.core.model import Item, State
from watchfolder.core.transitions import Event
from watchfolder.daemon import outbox
from watchfolder.store.store import Store


def find_failed(store: Store, settings: Settings, ref: str) -> Item:
    """An item id, or a name in some account's failed/ folder (its media or sidecar name)."""
    items = store.items(states=(State.FAILED,))
    if ref.isdigit():
        for item in items:
            if item.id == int(ref):
                return item
        raise UsageError(f"no failed item with id {ref} (see watchfolder status)")
    name = os.path.basename(ref.rstrip("/"))
    if name.endswith(".json"):
        name = name[: -len(".json")]
    matches = [i for i in items if i.folder == "failed" and name in (i.result_name, i.name)]
    if not matches:
        raise UsageError(f"'{ref}' is not a failed item: give a name from a failed/ folder or an id from status")
    if len(matches) > 1:
        ids = ", ".join(str(i.id) for i in matches)
        raise UsageError(f"'{ref}' names several failed items ({ids}): give the item id instead")
    return matches[-1]


def put_back(settings: Settings, store: Store, item: Item, now: float, by: str) -> str:
    """Move a failed item back into its inbox; return the name it has there. ``by`` says who asked (for the
    history). Raise UsageError when its file is no longer in failed/."""
    base = settings.root / item.account
    name = item.result_name or item.name
    if not os.path.lexists(base / "failed" / name):
        raise UsageError(f"{item.account}/failed/{name} is no longer there: nothing to put back")
    settings_name = None
    if item.settings_name:
        stem = outbox.split_name(name)[0]
        candidate = stem + outbox.split_name(item.settings_name)[1]
        settings_name = candidate if os.path.lexists(base / "failed" / candidate) else None
    new_name, _ = outbox.move_item(base / "failed", base / "inbox", name, settings_name)
    sidecar = base / "failed" / f"{name}.json"
    if sidecar.exists():
        # The old sidecar would be misleading once the item goes again; keep it as a record beside it.
        number = outbox.free_number(base / "failed", [f"{name}.retried.json"], sidecar=False)
        outbox.move_no_overwrite(sidecar, base / "failed" / outbox.suffixed(f"{name}.retried.json", number))
    store.apply(item, Event.RETRIED, now=now, note=f"put back in inbox/ as {new_name} by {by}")
    return new_name

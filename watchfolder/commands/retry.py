"""``watchfolder retry ITEM``: put a failed item (and its settings file) back in its account's inbox."""

from __future__ import annotations

import time

from watchfolder.config.settings import Settings
from watchfolder.daemon.retrying import find_failed, put_back
from watchfolder.store.store import Store


def main(settings: Settings, ref: str, *, now: float | None = None) -> int:
    store = Store(settings.state_dir)
    try:
        item = find_failed(store, settings, ref)
        name = item.result_name or item.name
        new_name = put_back(settings, store, item, time.time() if now is None else now, "watchfolder retry")
        print(f"{item.account}/failed/{name} → {item.account}/inbox/{new_name}: it will be taken in again "
              "with a fresh attempt budget")
        return 0
    finally:
        store.close()

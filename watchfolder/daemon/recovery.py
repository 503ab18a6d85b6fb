"""Startup recovery: what a crash or a power cut left half done, finished before the loop starts.

Moves a crash interrupted are finished (the outcome was committed before the move, so ``finish``
knows where each file goes). A sidecar a crash cut short is only ever a temp file (sidecars are
renamed into place whole): those are removed, and ``finish`` writes the sidecar again. Uploads that
were under way are not touched here: they resume through the normal schedule, from the last
acknowledged chunk.
"""

from __future__ import annotations

from watchfolder.config.settings import Settings
from watchfolder.core.model import State
from watchfolder.daemon import finish
from watchfolder.logs import Logger
from watchfolder.store.store import Store


def recover(settings: Settings, store: Store, now: float, log: Logger) -> set[int]:
    """Finish what a crash left; return the items whose move still could not be made (the loop retries them)."""
    for account in settings.accounts:
        for folder in ("done", "failed"):
            for leftover in (settings.root / account.name / folder).glob(".sidecar-*.tmp"):
                try:
                    leftover.unlink(missing_ok=True)
                except OSError:
                    pass  # a read-only folder: finish reports it for that item
    unmoved = {item.id for item in store.items(unmoved=True)
               if not finish.finish(settings.root, store, item, now, log)}
    resumed = store.items(states=(State.UPLOADING, State.PROCESSING))
    if resumed:
        log.info("resuming_items", count=len(resumed), items=[i.id for i in resumed])
    return unmoved

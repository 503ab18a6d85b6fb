"""The transition table: every way an item's ``state`` may change, named by the event that changes it.

The store enforces it on every write that touches ``state``, ``folder``, ``publish_id`` or ``moved``:
such a write names an event, ``(item.state, event)`` must be in ``TRANSITIONS``, and the event must be
one that may set the guarded fields it carries (``EVENT_FIELDS``). Pure data, standard library only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from watchfolder.core.model import State


class Event(enum.StrEnum):
    """Something that happened to an item; together with its state it decides the next state."""

    TAKEN_OUT = "taken_out"                # the user took the file out of inbox/ before it was sent
    REPLACED = "replaced"                  # a link or a special file now has its name: never read, never sent
    SCHEDULED = "scheduled"                # its publish_at is still ahead: it waits for it
    CLAIMED = "claimed"                    # checked, deduped, settings read again: the trip begins
    RESUMED = "resumed"                    # a parked trip goes back to sending (init again if there is none)
    RESUMED_SENT = "resumed_sent"          # a parked trip whose media TikTok holds goes back to polling
    INIT_SENT = "init_sent"                # write-ahead: an init is about to go out
    INIT_ANSWERED = "init_answered"        # TikTok answered the init: publish_id (and upload_url)
    MOVING = "moving"                      # write-ahead: the file is about to move inbox/ → processing/
    MOVE_REFUSED = "move_refused"          # the disk refused that move: the file stays in inbox/, parked
    UPLOADED = "uploaded"                  # TikTok holds the media (every chunk sent, or the URL handed over)
    FILE_CHANGED = "file_changed"          # the file changed mid-upload: task abandoned, parked until settled
    TIKTOK_FAILED = "tiktok_failed"        # status FAILED: this publish is over at TikTok
    REINIT = "reinit"                      # the upload task is abandoned; a new init follows
    PARKED = "parked"                      # a wait: backoff, cap, pause, disk, share away, settling
    SIGN_IN = "sign_in"                    # the account needs `watchfolder auth login`
    PUBLISH_COMPLETE = "publish_complete"  # TikTok's final status for the account's mode
    FAILED = "failed"                      # the outcome is failed (refused, gave up, duplicate, …)
    MOVED = "moved"                        # the file and its sidecar reached done/ or failed/
    FILE_MISSING = "file_missing"          # nothing left to move: the record is closed without a file
    RETRIED = "retried"                    # `watchfolder retry` put the failed file back in inbox/


_OPEN = (State.QUEUED, State.WAITING, State.UPLOADING, State.PROCESSING)
_SENDING = (State.UPLOADING, State.PROCESSING)


def _from(states: tuple[State, ...], event: Event, new: State | None = None) -> dict[tuple[State, Event], State]:
    """``event`` in each of ``states`` leads to ``new`` (None: the state stays as it is)."""
    return {(state, event): new or state for state in states}


TRANSITIONS: Mapping[tuple[State, Event], State] = MappingProxyType({
    **_from((State.QUEUED, State.WAITING), Event.TAKEN_OUT, State.CANCELLED),
    **_from((State.QUEUED, State.WAITING), Event.REPLACED, State.CANCELLED),
    **_from((State.QUEUED, State.WAITING), Event.SCHEDULED, State.WAITING),
    **_from((State.QUEUED, State.WAITING), Event.CLAIMED, State.UPLOADING),
    (State.WAITING, Event.RESUMED): State.UPLOADING,
    (State.WAITING, Event.RESUMED_SENT): State.PROCESSING,
    (State.UPLOADING, Event.INIT_SENT): State.UPLOADING,
    (State.UPLOADING, Event.INIT_ANSWERED): State.UPLOADING,
    **_from(_SENDING, Event.MOVING),
    **_from(_SENDING, Event.MOVE_REFUSED, State.WAITING),
    (State.UPLOADING, Event.UPLOADED): State.PROCESSING,
    (State.UPLOADING, Event.FILE_CHANGED): State.WAITING,
    (State.PROCESSING, Event.TIKTOK_FAILED): State.PROCESSING,
    **_from(_SENDING, Event.REINIT, State.UPLOADING),
    **_from(_OPEN, Event.PARKED, State.WAITING),
    **_from(_OPEN, Event.SIGN_IN, State.WAITING),
    (State.PROCESSING, Event.PUBLISH_COMPLETE): State.DONE,
    **_from(_OPEN, Event.FAILED, State.FAILED),
    **_from((State.DONE, State.FAILED), Event.MOVED),
    **_from((State.DONE, State.FAILED), Event.FILE_MISSING),
    (State.FAILED, Event.RETRIED): State.CANCELLED,
})

# Pairs that keep the state and add no row to the item's history (progress inside a state). Every
# other legal pair appends one event row, which the sidecar's ``history`` shows.
QUIET: frozenset[tuple[State, Event]] = frozenset(
    pair for pair, new in TRANSITIONS.items() if new is pair[0] and pair[1] is not Event.SCHEDULED
)

# The columns only an event may write; ``state`` itself comes from the table, never from a caller.
GUARDED_FIELDS = frozenset({"state", "folder", "publish_id", "moved"})

# Which guarded columns each event may set (events not listed set none of them).
EVENT_FIELDS: Mapping[Event, frozenset[str]] = MappingProxyType({
    Event.INIT_ANSWERED: frozenset({"publish_id", "folder"}),   # inbox/ → processing/ written ahead with it
    Event.MOVING: frozenset({"folder"}),
    Event.MOVE_REFUSED: frozenset({"folder"}),
    Event.FILE_CHANGED: frozenset({"publish_id"}),
    Event.TIKTOK_FAILED: frozenset({"publish_id"}),
    Event.REINIT: frozenset({"publish_id"}),
    Event.MOVED: frozenset({"folder", "moved"}),
    Event.FILE_MISSING: frozenset({"moved"}),
})

# The one "start the upload again" field set: no task at TikTok, nothing sent, nothing staged.
UPLOAD_RESET: Mapping[str, Any] = MappingProxyType({
    "publish_id": None, "upload_url": None, "upload_expires_at": None, "uploaded_bytes": 0,
    "init_started_at": None, "staged": [], "chunk_size": None, "chunk_count": None, "status": None,
})

# A wait is over: the item is due now and no longer explains a wait.
WAIT_CLEARED: Mapping[str, Any] = MappingProxyType({"next_attempt_at": None, "wait_reason": None,
                                                       "detail": None})


def next_state(state: State, event: Event) -> State | None:
    """The state ``event`` leads to from ``state``, or None when the table does not allow it."""
    return TRANSITIONS.get((state, event))

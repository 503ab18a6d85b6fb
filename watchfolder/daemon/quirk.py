"""TikTok's multi-chunk quirk (interface.md): every multi-chunk FILE_UPLOAD init refused with
``invalid_params`` "The chunk size is invalid", reported against the real API since 2026-08, while
single-chunk uploads up to 64,000,000 bytes still work.

Such a refusal is not final: the next init tries a different valid chunk plan; after that, with a
``media_host`` the item goes through PULL_FROM_URL, without one further plans are tried, and after at
most ``MAX_INITS`` inits it fails with a message naming the problem and the way out. Each step is an
event in the item's history (``chunk_quirk``), which is also how the next step is found after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from watchfolder.config.settings import AccountSettings, Settings
from watchfolder.core.errors import TikTokError
from watchfolder.core.model import Item, Kind, VideoSource
from watchfolder.logs import Logger
from watchfolder.store.store import Store
from watchfolder.tiktok import chunks

EVENT = "chunk_quirk"
MAX_INITS = 3
WAY_OUT = ("set video_source: pull_from_url for this account with a media_host (TikTok then fetches the "
           "video itself), or send videos of at most 64,000,000 bytes (one chunk)")


@dataclass(frozen=True)
class Step:
    """How the next init sends the video: a chunk plan (FILE_UPLOAD), or ``pull`` (PULL_FROM_URL)."""

    plan: chunks.ChunkPlan | None
    pull: bool = False


def is_quirk(exc: TikTokError, plan_count: int | None) -> bool:
    """True when a FILE_UPLOAD init of several chunks was refused for its chunk size."""
    return (exc.code in ("invalid_params", "invalid_param") and (plan_count or 0) > 1
            and "chunk size" in (exc.message or "").lower())


def plans(size: int, configured: int) -> list[chunks.ChunkPlan]:
    """The distinct valid plans to try, in order: the configured one, 64,000,000-byte chunks (the fewest
    chunks), then 5 MiB chunks (the most)."""
    found: list[chunks.ChunkPlan] = []
    for preferred in (configured, chunks.MAX_CHUNK, chunks.MIN_CHUNK):
        plan = chunks.plan(size, preferred)
        if plan not in found:
            found.append(plan)
    return found


def refusals(store: Store, item_id: int) -> int:
    """How many inits of this item TikTok refused for the quirk so far."""
    return sum(1 for event in store.history(item_id) if event["state"] == EVENT)


def next_step(refused: int, size: int, configured: int, *, has_host: bool) -> Step | None:
    """Given how many inits were refused for the quirk, return how the next init sends the video, or None
    when nothing is left to try (the item fails)."""
    candidates = plans(size, configured)
    if refused == 0:
        return Step(candidates[0])
    if refused >= MAX_INITS:
        return None
    if has_host:
        return Step(candidates[1]) if refused == 1 and len(candidates) > 1 else Step(None, pull=True)
    return Step(candidates[refused]) if refused < len(candidates) else None


def describe(plan: chunks.ChunkPlan) -> str:
    return f"{plan.count} chunks of {plan.chunk_size:,} bytes" if plan.count > 1 else \
        f"one chunk of {plan.size:,} bytes"


def step_note(plan: chunks.ChunkPlan, exc: TikTokError, following: Step | None) -> str:
    """The history line for one refused init: what was refused and what comes next."""
    said = f"TikTok refused the upload as {describe(plan)}: {exc.code} \"{exc.message}\" (the multi-chunk quirk)"
    if following is None:
        return said + "; nothing left to try"
    if following.pull:
        return said + "; next: PULL_FROM_URL through media_host"
    assert following.plan is not None
    return said + f"; next: {describe(following.plan)}"


def final_message(tried: list[str]) -> str:
    return (f"TikTok refused every multi-chunk upload of this video ({'; '.join(tried)}) with invalid_params "
            "\"The chunk size is invalid\": a known TikTok problem since 2026-08, where only uploads in one chunk "
            f"of at most 64,000,000 bytes work. Way out: {WAY_OUT}")


def step_for(store: Store, item: Item, account: AccountSettings, settings: Settings, *, has_host: bool) -> Step:
    """How this init sends a video file: the configured plan, or the quirk's next step."""
    if Kind(item.kind) is Kind.PHOTO or VideoSource(account.video_source) is VideoSource.PULL_FROM_URL:
        return Step(None)
    # An item that never sent an init (INIT_SENT counts them) has no refusal: its history need not be read.
    refused = refusals(store, item.id) if item.init_count > 0 else 0
    found = next_step(refused, item.size, settings.upload.chunk_size, has_host=has_host)
    return found or Step(None)


def refused(store: Store, item: Item, plan: chunks.ChunkPlan, exc: TikTokError, settings: Settings, *,
            has_host: bool, now: float, log: Logger) -> str | None:
    """Record one init refused for the quirk in the item's history; return None when the next init has
    something left to try, else the message the item fails with."""
    count = refusals(store, item.id) + 1
    following = next_step(count, item.size, settings.upload.chunk_size, has_host=has_host)
    log.warning("multi_chunk_quirk", chunks=plan.count, chunk_size=plan.chunk_size, refused=count,
                next="pull_from_url" if following and following.pull else "plan" if following else "fail")
    store.note(item.id, EVENT, now=now, detail=step_note(plan, exc, following))
    if following is not None:
        return None
    return final_message([describe(p) for p in plans(item.size, settings.upload.chunk_size)][:count])

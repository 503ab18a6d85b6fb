"""The FILE_UPLOAD chunk rules checked at init (reference §2.1), written independently of the client's
chunk planner on purpose: a bug shared by both would pass every test."""

from __future__ import annotations

from watchfolder.emulator.config import EmulatorConfig


def chunk_plan_problem(video_size: int, chunk_size: int, total_chunk_count: int,
                       config: EmulatorConfig) -> str | None:
    """Given the declared sizes, return why TikTok would refuse them, or None if they are valid.

    The thresholds come from ``config``; the defaults accept only what is valid under both readings of
    "MB" (5 MiB <= chunk <= 64,000,000; final chunk <= 128,000,000; video <= 4,000,000,000).
    """
    if video_size <= 0:
        return "The video size is invalid"
    if video_size > config.max_video_bytes:
        return f"The video size is invalid: over {config.max_video_bytes} bytes"
    if chunk_size <= 0 or total_chunk_count <= 0:
        return "The chunk size is invalid"
    if video_size < config.min_chunk_bytes:
        # A small video goes up whole, in one chunk exactly its size.
        if chunk_size != video_size or total_chunk_count != 1:
            return "The chunk size is invalid: a video under 5 MB must be sent as one chunk of its size"
        return None
    if not config.min_chunk_bytes <= chunk_size <= config.max_chunk_bytes:
        return (f"The chunk size is invalid: it must be between {config.min_chunk_bytes} "
                f"and {config.max_chunk_bytes} bytes")
    expected_count = video_size // chunk_size
    if total_chunk_count != expected_count:
        return (f"The chunk size is invalid: total_chunk_count must be floor(video_size / chunk_size) "
                f"= {expected_count}")
    if not 1 <= total_chunk_count <= config.max_chunk_count:
        return f"The chunk size is invalid: total_chunk_count must be 1..{config.max_chunk_count}"
    if total_chunk_count == 1 and video_size > config.single_chunk_max_bytes:
        return f"The chunk size is invalid: a video over {config.single_chunk_max_bytes} bytes needs several chunks"
    final_chunk = video_size - (total_chunk_count - 1) * chunk_size
    if final_chunk > config.max_final_chunk_bytes:
        return f"The chunk size is invalid: the final chunk would be {final_chunk} bytes"
    if config.multi_chunk_quirk and total_chunk_count > 1:
        return "The chunk size is invalid"  # the real API's reported answer, word for word
    return None


def expected_range(video_size: int, chunk_size: int, total_chunk_count: int, index: int) -> tuple[int, int]:
    """Return the (first, last) byte positions of chunk ``index`` (0-based); the final one takes the rest."""
    first = index * chunk_size
    last = video_size - 1 if index == total_chunk_count - 1 else first + chunk_size - 1
    return first, last

"""The FILE_UPLOAD chunk plan: how a video of a given size is cut for TikTok. Pure, no I/O.

TikTok's rules (Media Transfer Guide): ``total_chunk_count = floor(video_size / chunk_size)``
with the remainder folded into the final chunk; every chunk 5 MB .. 64 MB except the final
one, which may grow to 128 MB; a video under 5 MB goes whole; a video over 64 MB goes in at
least two chunks; 1 .. 1000 chunks; at most 4 GB. The docs never say whether "MB" means 10^6
or 2^20 bytes, so every limit below is chosen to hold under both readings.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_CHUNK = 5 * 1024 * 1024
"""5 MiB (5,242,880 bytes): at least 5 MB under both readings."""

MAX_CHUNK = 64_000_000
"""64 MB decimal: at most 64 MB under both readings (64 MiB would break the decimal one)."""

MAX_CHUNKS = 1000

# "4 GB" is 4,000,000,000 bytes in decimal and 4,294,967,296 (4 GiB) in binary. A file between
# the two would pass our check and then be refused by a server that reads the limit as decimal,
# after the upload had already begun; so we take the smaller reading and refuse such a file up
# front, where the user can still do something about it.
MAX_VIDEO = 4_000_000_000

DEFAULT_CHUNK = MAX_CHUNK
"""The default plan: the largest chunks the rules allow. Every chunk waits one round trip for its answer
before the next starts, so the link idles ``rtt / (chunk_time + rtt)`` of the time: at 1 Gbit/s and 20 ms
that is 0.20 with 10,000,000-byte chunks and 0.04 with 64,000,000 (benchmark 9 measures it), and the
fewer chunks a file has, the fewer inits meet TikTok's multi-chunk quirk (a video of up to 64 MB goes
whole). The price is what a failed chunk re-sends: at most 64 MB (2.6 s at 200 Mbit/s, 26 s at 20 Mbit/s),
paid once per failure, against a round trip paid on every chunk; on a slow line the round trip hardly
matters and ``upload.chunk_size`` trades it back (5,242,880 resends the least)."""


@dataclass(frozen=True)
class ChunkPlan:
    """How a video of ``size`` bytes is sent: ``count`` chunks of ``chunk_size`` bytes, the last one
    also carrying the remainder. These are exactly the init's ``video_size``, ``chunk_size`` and
    ``total_chunk_count``."""

    size: int
    chunk_size: int
    count: int

    def ranges(self) -> list[tuple[int, int]]:
        """Return each chunk's inclusive byte range ``(first, last)`` in upload order; the final
        range ends at ``size - 1``, so the remainder travels with the last chunk."""
        result = [(index * self.chunk_size, (index + 1) * self.chunk_size - 1) for index in range(self.count)]
        first, _ = result[-1]
        result[-1] = (first, self.size - 1)
        return result


def plan(size: int, preferred: int = DEFAULT_CHUNK) -> ChunkPlan:
    """Given a video's size in bytes and the configured chunk size, return a plan that obeys every
    rule of TikTok's Media Transfer Guide; raise ValueError if ``size`` is 0 (or negative) or
    above MAX_VIDEO.

    ``preferred`` is clamped into MIN_CHUNK .. MAX_CHUNK rather than refused, so any configured
    chunk size yields a valid plan.
    """
    if size <= 0:
        raise ValueError(f"a video of {size} bytes cannot be uploaded")
    if size > MAX_VIDEO:
        raise ValueError(f"a video of {size:,} bytes is over TikTok's limit of {MAX_VIDEO:,} bytes")
    if size < MIN_CHUNK:
        # Under 5 MB TikTok wants the whole file in one chunk with chunk_size == video_size.
        return ChunkPlan(size=size, chunk_size=size, count=1)
    chunk = min(max(preferred, MIN_CHUNK), MAX_CHUNK)
    if size > MAX_CHUNK:
        # Over 64 MB needs at least two chunks; with the floor rule one oversize chunk would
        # otherwise appear when size < 2 * chunk. size // 2 > 32 MB, so this stays above MIN_CHUNK.
        chunk = min(chunk, size // 2)
    if size // chunk > MAX_CHUNKS:
        # Unreachable with today's limits (4e9 / 5 MiB = 762 chunks), kept so the rule holds if
        # MAX_VIDEO or MIN_CHUNK change: grow the chunk until the count fits.
        chunk = -(-size // MAX_CHUNKS)
    count = size // chunk
    if count <= 1:
        # A file of at most 64 MB that fits in one chunk (count is 0 when size < chunk): send it
        # whole with chunk_size == video_size, the form TikTok's own single-chunk example uses,
        # rather than a chunk_size that differs from the only chunk's length.
        chunk, count = size, 1
    return ChunkPlan(size=size, chunk_size=chunk, count=count)

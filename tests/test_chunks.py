"""The chunk plan obeys TikTok's Media Transfer Guide (§2.1) for every size, under both readings of "MB"."""

from __future__ import annotations

import random

import pytest

from watchfolder.tiktok import chunks

MB_DECIMAL = 1_000_000
MIB = 1024 * 1024


def assert_obeys_every_rule(plan: chunks.ChunkPlan) -> None:
    """Each rule of §2.1, checked against the decimal and the binary reading of "MB" at once."""
    size, chunk_size, count = plan.size, plan.chunk_size, plan.count
    assert 1 <= size <= 4_000_000_000  # ≤ 4 GB under both readings
    assert count == size // chunk_size  # rule 1: the count is rounded down
    assert 1 <= count <= 1000  # rule 5
    if size < 5 * MIB:  # rule 3 under the binary reading; the decimal one only widens rule 2
        assert (chunk_size, count) == (size, 1)
    else:
        assert 5 * MIB <= chunk_size <= 64 * MB_DECIMAL  # rule 2 under both readings
    if size > 64 * MB_DECIMAL:  # rule 4 under the decimal (smaller) reading
        assert count >= 2
    ranges = plan.ranges()
    assert len(ranges) == count
    assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
    for (_, last), (next_first, _) in zip(ranges, ranges[1:], strict=False):
        assert next_first == last + 1  # contiguous, in order, nothing skipped or sent twice
    for first, last in ranges[:-1]:
        assert last - first + 1 == chunk_size
    final = ranges[-1][1] - ranges[-1][0] + 1
    assert chunk_size <= final <= 128 * MB_DECIMAL  # the final chunk absorbs the remainder
    if count == 1:
        assert final <= 64 * MB_DECIMAL  # never one chunk above 64 MB


def test_tiktoks_chunked_example_gives_five_chunks_with_the_remainder_in_the_last() -> None:
    plan = chunks.plan(50_000_123, 10_000_000)

    assert (plan.chunk_size, plan.count) == (10_000_000, 5)
    assert plan.ranges() == [
        (0, 9_999_999),
        (10_000_000, 19_999_999),
        (20_000_000, 29_999_999),
        (30_000_000, 39_999_999),
        (40_000_000, 50_000_122),
    ]


def test_tiktoks_small_example_goes_whole_in_one_chunk() -> None:
    plan = chunks.plan(4_194_304)

    assert plan == chunks.ChunkPlan(size=4_194_304, chunk_size=4_194_304, count=1)
    assert plan.ranges() == [(0, 4_194_303)]


@pytest.mark.parametrize("size", [1, 5 * MB_DECIMAL, 5 * MIB - 1])
def test_a_video_under_5_mib_goes_whole(size: int) -> None:
    assert chunks.plan(size) == chunks.ChunkPlan(size=size, chunk_size=size, count=1)


@pytest.mark.parametrize("size", [5 * MIB, 5 * MIB + 1, 9_999_999])
def test_a_video_smaller_than_the_preferred_chunk_goes_whole(size: int) -> None:
    """Between 5 MiB and the chunk size the floor rule would give zero chunks: send it as one."""
    assert chunks.plan(size, 10_000_000) == chunks.ChunkPlan(size=size, chunk_size=size, count=1)


def test_a_video_of_exactly_64_mb_may_go_in_one_chunk() -> None:
    assert chunks.plan(64 * MB_DECIMAL, 64 * MB_DECIMAL).count == 1


@pytest.mark.parametrize("preferred", [10_000_000, 40_000_000, 64 * MB_DECIMAL, 10**9])
@pytest.mark.parametrize("size", [64 * MB_DECIMAL + 1, 64 * MIB, 64 * MIB + 1, 100 * MB_DECIMAL, 127_999_999])
def test_a_video_just_over_64_mb_gets_at_least_two_chunks(size: int, preferred: int) -> None:
    plan = chunks.plan(size, preferred)

    assert plan.count >= 2
    assert_obeys_every_rule(plan)


def test_a_preferred_chunk_size_outside_the_limits_is_clamped() -> None:
    assert chunks.plan(100 * MB_DECIMAL, 1).chunk_size == chunks.MIN_CHUNK
    assert chunks.plan(1_000 * MB_DECIMAL, 10**10).chunk_size == chunks.MAX_CHUNK


def test_the_largest_video_fits_within_1000_chunks_even_at_the_smallest_chunk() -> None:
    plan = chunks.plan(chunks.MAX_VIDEO, 1)

    assert plan.count <= 1000
    assert_obeys_every_rule(plan)


@pytest.mark.parametrize("size", [0, -1, 4_000_000_001, 4 * 1024**3])
def test_an_empty_or_over_4_gb_video_is_refused(size: int) -> None:
    """4 GiB is refused too: the smaller (decimal) reading of "4 GB" is the one we can rely on."""
    with pytest.raises(ValueError, match="bytes"):
        chunks.plan(size)


def test_every_plan_over_many_sizes_and_chunk_sizes_obeys_every_rule() -> None:
    rng = random.Random(20261126)
    boundaries = [1, 5 * MB_DECIMAL, 5 * MIB - 1, 5 * MIB, 5 * MIB + 1, 10_000_000, 64 * MB_DECIMAL - 1,
                  64 * MB_DECIMAL, 64 * MB_DECIMAL + 1, 64 * MIB, 128 * MB_DECIMAL, 128 * MB_DECIMAL + 1,
                  4_000_000_000 - 1, 4_000_000_000]
    sizes = boundaries + [int(10 ** rng.uniform(0, 9.6)) for _ in range(3000)]
    preferred_sizes = [1, 5 * MIB - 1, 5 * MIB, 7_777_777, 10_000_000, 32 * MB_DECIMAL + 1,
                       64 * MB_DECIMAL, 64 * MB_DECIMAL + 1, 10**12]
    for size in sizes:
        for preferred in preferred_sizes:
            assert_obeys_every_rule(chunks.plan(size, preferred))


def busy_share(plan: chunks.ChunkPlan, rate_bits: float, rtt: float) -> float:
    """The share of a link a plan can fill when each chunk waits one round trip for its answer."""
    sending = plan.size * 8 / rate_bits
    return sending / (sending + plan.count * rtt)


def test_the_default_plan_sends_the_fewest_chunks_the_rules_allow() -> None:
    """No valid plan has fewer chunks: a file of up to 64 MB goes whole, a larger one in 64,000,000-byte
    chunks (at least two), the remainder riding in the last."""
    rng = random.Random(20261203)
    sizes = [1, 5 * MIB, 64 * MB_DECIMAL, 64 * MB_DECIMAL + 1, 127_999_999, 128 * MB_DECIMAL + 1, 10**9,
             4_000_000_000] + [int(10 ** rng.uniform(0, 9.6)) for _ in range(2000)]
    for size in sizes:
        plan = chunks.plan(size)
        assert_obeys_every_rule(plan)
        fewest = 1 if size <= 64 * MB_DECIMAL else max(2, size // (64 * MB_DECIMAL))
        assert plan.count == fewest, size


def test_the_default_plan_keeps_a_fast_distant_uplink_busy_where_the_former_default_did_not() -> None:
    """1 Gbit/s with 20 ms of round trip, a 1 GB file: 10,000,000-byte chunks leave the line idle a fifth of
    the time, the default plan under 5 %."""
    default, former = chunks.plan(10**9), chunks.plan(10**9, 10_000_000)

    assert (default.chunk_size, default.count) == (64_000_000, 15)
    assert busy_share(default, 1e9, 0.020) > 0.95
    assert busy_share(former, 1e9, 0.020) < 0.81


def test_a_configured_chunk_size_still_overrides_the_default(tmp_path) -> None:
    from watchfolder.config import settings as config

    base = (f"root: {tmp_path}/media\nstate_dir: {tmp_path}/state\ntiktok:\n  client_key: k\n"
            "accounts:\n  alice:\n    mode: inbox\n")
    (tmp_path / "plain.yaml").write_text(base, encoding="utf-8")
    (tmp_path / "small.yaml").write_text(base + "upload:\n  chunk_size: 10000000\n", encoding="utf-8")
    env = {"WATCHFOLDER_CLIENT_SECRET": "s"}

    default = config.load(tmp_path / "plain.yaml", env=env).upload.chunk_size
    configured = config.load(tmp_path / "small.yaml", env=env).upload.chunk_size

    assert chunks.plan(50_000_123, default) == chunks.ChunkPlan(50_000_123, 50_000_123, 1)
    assert chunks.plan(50_000_123, configured) == chunks.ChunkPlan(50_000_123, 10_000_000, 5)

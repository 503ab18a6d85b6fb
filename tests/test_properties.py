"""Hostile input, generated: random bytes and random structures thrown at every parser a stranger can feed.

An inbox is written by many hands, and the servers answer anyone who can reach them. For each parser the
property is the same: it returns, or it raises the module's own error type (never IndexError, struct.error,
RecursionError, ...), and what it says stays short (an error message under a few KiB, however big the input).
Each property runs a bounded number of examples so the whole file takes seconds.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import math
import os
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from watchfolder.config import post
from watchfolder.config import settings as config
from watchfolder.core.errors import ConfigError, MediaError
from watchfolder.core.limits import VideoLimits
from watchfolder.core.model import Kind, Mode
from watchfolder.core.text import bounded, display_name, printable, short
from watchfolder.httpserve.framing import Complete, Framing, Refusal
from watchfolder.httpserve.limits import Limits, Unsatisfiable, byte_range
from watchfolder.intake import entries
from watchfolder.media import probe, samples
from watchfolder.media.info import VideoInfo
from watchfolder.media.verdict import CreatorLimit, judge
from watchfolder.mediahost.server import LIMITS, FileServer

MESSAGE_LIMIT = 4096  # "a few KiB": what a sidecar, a log line or a status row may quote
FAST = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=4000, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def valid(scratch: Path) -> dict[str, bytes]:
    """Real files of each format, as seeds for mutation."""
    return {
        "mp4": samples.write_mp4(scratch / "seed.mp4", duration_seconds=1.0).read_bytes(),
        "webm": samples.write_webm(scratch / "seed.webm", size=600).read_bytes(),
        "jpeg": samples.write_jpeg(scratch / "seed.jpg", 64, 48, seed=3).read_bytes(),
        "webp": samples.write_webp(scratch / "seed.webp", 64, 48, seed=3).read_bytes(),
    }


# --- media sniffers ---------------------------------------------------------------------------

def _box(kind: bytes, payload: bytes, size_mode: int) -> bytes:
    """An ISO-BMFF box whose size field is right, or (by size_mode) 0, 1 + largesize, or a lie."""
    if size_mode == 0:
        return struct.pack(">I4s", 8 + len(payload), kind) + payload
    if size_mode == 1:
        return struct.pack(">I4s", 0, kind) + payload
    if size_mode == 2:
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    if size_mode == 3:
        return struct.pack(">I4sQ", 1, kind, 2**64 - 1) + payload
    return struct.pack(">I4s", size_mode, kind) + payload  # any declared size


_KINDS = st.sampled_from([b"ftyp", b"moov", b"mdat", b"mvhd", b"trak", b"tkhd", b"mdia", b"hdlr", b"free",
                          b"wide", b"skip", b"udta"]) | st.binary(min_size=4, max_size=4)
_SIZE_MODES = st.sampled_from([0, 0, 0, 1, 2, 3]) | st.integers(0, 2**32 - 1)
boxes = st.recursive(
    st.builds(_box, _KINDS, st.binary(max_size=64), _SIZE_MODES),
    lambda children: st.builds(lambda kind, kids, mode: _box(kind, b"".join(kids), mode),
                               _KINDS, st.lists(children, max_size=4), _SIZE_MODES),
    max_leaves=20,
)
mp4_like = st.builds(lambda first, rest: first + b"".join(rest),
                     st.builds(_box, st.just(b"ftyp"), st.sampled_from([b"isom\0\0\0\0", b"qt  \0\0\0\0", b""]),
                               st.just(0)),
                     st.lists(boxes, max_size=6))


def _vint(value: int, length: int) -> bytes:
    return ((1 << (7 * length)) | (value & ((1 << (7 * length)) - 1))).to_bytes(length, "big")


def _element(element_id: int, payload: bytes, length: int, lie: int | None) -> bytes:
    size = len(payload) if lie is None else lie
    return element_id.to_bytes(max(1, (element_id.bit_length() + 7) // 8), "big") + _vint(size, length) + payload


_IDS = st.sampled_from([0x1A45DFA3, 0x4282, 0x18538067, 0x1549A966, 0x4489, 0x2AD7B1, 0x1654AE6B, 0xAE, 0xE0,
                        0xB0, 0xBA, 0x83, 0x1F43B675]) | st.integers(1, 2**32 - 1)
elements = st.recursive(
    st.builds(_element, _IDS, st.binary(max_size=16), st.integers(1, 8), st.none() | st.integers(0, 2**56)),
    lambda children: st.builds(lambda i, kids, n, lie: _element(i, b"".join(kids), n, lie),
                               _IDS, st.lists(children, max_size=4), st.integers(1, 8),
                               st.none() | st.integers(0, 2**56)),
    max_leaves=20,
)
webm_like = st.builds(lambda doctype, rest: _element(0x1A45DFA3, _element(0x4282, doctype, 1, None), 1, None)
                      + b"".join(rest), st.sampled_from([b"webm", b"matroska", b""]), st.lists(elements, max_size=5))


def _segment(marker: int, payload: bytes, length: int | None) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", (len(payload) + 2 if length is None else length)) + payload


jpeg_like = st.builds(lambda segs, tail: b"\xff\xd8" + b"".join(segs) + tail,
                      st.lists(st.builds(_segment, st.integers(0, 255), st.binary(max_size=32),
                                         st.none() | st.integers(0, 0xFFFF)), max_size=8),
                      st.binary(max_size=16))


def _mutate(data: bytes, edits: list[tuple[int, int, int]], cut: int | None) -> bytes:
    """Overwrite, insert or delete a few bytes, then maybe truncate."""
    out = bytearray(data)
    for op, where, value in edits:
        at = where % (len(out) + 1)
        if op == 0 and at < len(out):
            out[at] = value
        elif op == 1:
            out.insert(at, value)
        elif at < len(out):
            del out[at]
    return bytes(out[:cut] if cut is not None else out)


edits = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**20), st.integers(0, 255)), max_size=8)


def _sniff(scratch: Path, data: bytes, check: str) -> None:
    path = scratch / f"sample-{check}"
    path.write_bytes(data)
    try:
        getattr(probe, check)(path)
    except MediaError as error:
        assert len(str(error)) < MESSAGE_LIMIT, f"{len(str(error))} characters"


@pytest.mark.parametrize("check", ["check_video", "check_image"])
@FAST
@given(data=st.binary(max_size=2048))
def test_sniffers_on_random_bytes(scratch: Path, check: str, data: bytes) -> None:
    _sniff(scratch, data, check)


@pytest.mark.parametrize("check", ["check_video", "check_image"])
@FAST
@given(data=st.one_of(mp4_like, webm_like, jpeg_like))
def test_sniffers_on_random_structures(scratch: Path, check: str, data: bytes) -> None:
    _sniff(scratch, data, check)


@pytest.mark.parametrize("kind", ["mp4", "webm", "jpeg", "webp"])
@FAST
@given(changes=edits, cut=st.none() | st.integers(0, 4096))
def test_sniffers_on_damaged_real_files(scratch: Path, valid: dict[str, bytes], kind: str,
                                        changes: list[tuple[int, int, int]], cut: int | None) -> None:
    check = "check_video" if kind in ("mp4", "webm") else "check_image"
    _sniff(scratch, _mutate(valid[kind], changes, cut), check)


@FAST
@given(data=st.one_of(mp4_like, webm_like, st.binary(max_size=1024)), budget=st.integers(0, 4096))
def test_video_probe_on_a_read_budget(data: bytes, budget: int) -> None:
    """However small the read budget, the probe answers or refuses with its own error."""
    try:
        info = probe.probe(io.BytesIO(data), budget=budget)
    except MediaError as error:
        assert len(str(error)) < MESSAGE_LIMIT
        return
    assert info.size == len(data)
    assert info.duration_seconds is None or (math.isfinite(info.duration_seconds) and info.duration_seconds > 0)


_maybe_float = st.none() | st.floats(allow_nan=True, allow_infinity=True)
_maybe_int = st.none() | st.integers(-(2**40), 2**40)
video_infos = st.builds(
    VideoInfo, container=st.sampled_from(["mp4", "mov", "webm"]) | st.text(max_size=30),
    content_type=st.sampled_from(["video/mp4", "video/webm"]), size=st.integers(0, 2**63),
    duration_seconds=_maybe_float, width=_maybe_int, height=_maybe_int,
    codec=st.none() | st.sampled_from(["h264", "h265", "vp9", "av1"]) | st.text(max_size=5000),
    fps=_maybe_float, audio=st.none() | st.sampled_from(["aac", "opus"]) | st.text(max_size=5000),
    fragmented=st.booleans())


@FAST
@given(info=video_infos, creator=st.none() | st.builds(CreatorLimit, seconds=st.integers(-10, 10**6),
                                                        age_seconds=st.floats(0, 1e9), who=st.text(max_size=50)))
def test_verdict_on_any_headers(info: VideoInfo, creator: CreatorLimit | None) -> None:
    """Whatever a file's headers claim, the verdict is an answer whose words stay short."""
    verdict = judge(info, VideoLimits(), creator)
    if verdict.refusal is not None:
        assert len(str(verdict.refusal)) < MESSAGE_LIMIT, len(str(verdict.refusal))
    assert all(len(warning) < MESSAGE_LIMIT for warning in verdict.warnings)


# --- post settings ----------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50)
           | st.sampled_from(["SELF_ONLY", "PUBLIC_TO_EVERYONE", "2026-12-01T18:00:00+01:00", "2026-12-01",
                              "x" * 10_000]) | st.dates() | st.datetimes())
structures = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=12) | st.sampled_from(sorted(post.KEYS)), inner,
                                            max_size=5), max_leaves=25)
settings_maps = st.dictionaries(st.sampled_from(sorted(post.KEYS)) | st.text(max_size=20), structures, max_size=8)


@SLOW
@example(values={"x" * 5000: 1, "title": 7}, kind=Kind.VIDEO, mode=Mode.DIRECT,
         defaults={"brand_content_toggle": "x" * 10_000, "privacy_level": ["x" * 10_000]})
@given(values=settings_maps, kind=st.sampled_from(list(Kind)), mode=st.sampled_from(list(Mode)),
       defaults=settings_maps)
def test_resolve_on_random_settings(values: dict[str, object], kind: Kind, mode: Mode,
                                    defaults: dict[str, object]) -> None:
    try:
        post.resolve(defaults, values, kind=kind, mode=mode, source_name="clip.yaml")
    except MediaError as error:
        assert error.code == "bad_post_settings"
        assert len(str(error)) < MESSAGE_LIMIT, f"{len(str(error))} characters"
    problems = post.check_keys_and_values(defaults, "accounts.alice.defaults")
    assert all(len(problem) < MESSAGE_LIMIT for problem in problems)


def _settings_file(scratch: Path, data: bytes, suffix: str) -> None:
    path = scratch / f"clip{suffix}"
    path.write_bytes(data)
    try:
        raw = post.read_settings_file(path)
    except MediaError as error:
        assert error.code == "bad_post_settings"
        assert len(str(error)) < MESSAGE_LIMIT, f"{len(str(error))} characters"
        return
    assert isinstance(raw, dict)


@FAST
@given(data=st.binary(max_size=1024), suffix=st.sampled_from([".yaml", ".yml", ".txt"]))
def test_settings_files_of_random_bytes(scratch: Path, data: bytes, suffix: str) -> None:
    _settings_file(scratch, data, suffix)


@FAST
@given(value=structures)
def test_settings_files_of_random_yaml(scratch: Path, value: object) -> None:
    _settings_file(scratch, yaml.safe_dump(value, allow_unicode=True).encode(), ".yaml")


# --- the config loader --------------------------------------------------------------------------

_SECTIONS = ["tiktok", "watch", "upload", "media_host", "photos", "metrics", "notify", "accounts", "state_dir",
             "root", "dedupe", "log"]
_known = {section: sorted(keys) for section, keys in config.KEYS.items()}


def _section(name: str) -> st.SearchStrategy[dict[str, object]]:
    return st.dictionaries(st.sampled_from(_known[name]) | st.text(max_size=10), structures, max_size=6)


accounts_maps = st.dictionaries(
    st.text(max_size=20) | st.sampled_from(["alice", "Alice", "x" * 5000, ".hidden", "a/b"]) | st.integers(),
    st.none() | structures | st.fixed_dictionaries({}, optional={
        "mode": scalars, "video_source": scalars, "defaults": settings_maps | structures}),
    max_size=4)
configs = st.dictionaries(st.sampled_from(_SECTIONS) | st.text(max_size=10), structures, max_size=8) | \
    st.fixed_dictionaries({}, optional={
        "root": scalars, "state_dir": scalars, "tiktok": _section("tiktok"), "watch": _section("watch"),
        "upload": _section("upload"), "dedupe": scalars, "media_host": _section("media_host"),
        "photos": _section("photos"), "metrics": _section("metrics"), "notify": _section("notify"),
        "accounts": accounts_maps, "log_level": scalars})


def _load(scratch: Path, text: bytes) -> None:
    path = scratch / "config.yaml"
    path.write_bytes(text)
    try:
        config.load(path, env={})
    except ConfigError as error:
        assert all(len(problem) < MESSAGE_LIMIT for problem in error.problems), max(map(len, error.problems))


@FAST
@given(data=st.binary(max_size=1024))
def test_config_loader_on_random_bytes(scratch: Path, data: bytes) -> None:
    _load(scratch, data)


@SLOW
@example(value={"accounts": {"x" * 5000: None}, "tiktok": {"x" * 5000: 1}})
@given(value=configs)
def test_config_loader_on_random_structures(scratch: Path, value: object) -> None:
    _load(scratch, yaml.safe_dump(value, allow_unicode=True).encode())


# --- the Range parser ---------------------------------------------------------------------------

ranges = st.text(max_size=60) | st.builds(
    lambda a, sep, b, pad: f"{pad}bytes{pad}={pad}{a}{sep}{b}{pad}",
    st.text("0123456789", max_size=30), st.sampled_from(["-", "--", ",", "-0-"]), st.text("0123456789", max_size=30),
    st.sampled_from(["", " ", "\t", "\x0b", "\xa0"]))


@FAST
@given(header=ranges, size=st.integers(0, 2**63))
def test_range_parser(header: str, size: int) -> None:
    try:
        span = byte_range(header, size)
    except Unsatisfiable:
        return
    if span is not None:
        first, last = span
        assert 0 <= first <= last < size


@pytest.fixture(scope="module")
def file_server(scratch: Path) -> Iterator[FileServer]:
    folder = scratch / "www"
    folder.mkdir()
    (folder / ("A" * 32 + ".jpg")).write_bytes(b"staged bytes")
    server = FileServer(("127.0.0.1", 0), folder, "/t/", dataclasses.replace(LIMITS, header_seconds=2))
    server.start()
    yield server
    server.stop()


_LINES = st.sampled_from([b"GET /t/" + b"A" * 32 + b".jpg HTTP/1.1", b"HEAD / HTTP/1.0", b"POST /t/x HTTP/1.1",
                          b"GET", b"", b"\r\n", b"GET / HTTP/2.0", b"BREW /pot HTCPCP/1.0"]) | st.binary(max_size=80)
_FIELDS = st.sampled_from([b"Host: x", b"Range: bytes=0-3", b"Range: bytes=" + b"9" * 40 + b"-",
                           b"Expect: 100-continue", b"Content-Length: 3", b"Content-Length: -1",
                           b"Transfer-Encoding: chunked",
                           b"Connection: close", b"Connection: keep-alive", b"If-Range: x"]) | st.binary(max_size=60)
requests_like = st.builds(lambda line, fields, body: line + b"\r\n" + b"\r\n".join(fields) + b"\r\n\r\n" + body,
                          _LINES, st.lists(_FIELDS, max_size=6), st.binary(max_size=20))


@FAST
@given(data=st.lists(requests_like, min_size=1, max_size=3).map(b"".join) | st.binary(max_size=400),
       cuts=st.lists(st.integers(0, 400), max_size=12))
def test_framing_does_not_depend_on_how_the_bytes_arrive(data: bytes, cuts: list[int]) -> None:
    """A request fed byte by byte, in random pieces or at once: the same request, or the same refusal."""
    limits = Limits(max_request_line=120, max_header_bytes=240, max_headers=6, max_body=16)
    whole = Framing(limits).feed(data)
    framing, verdict = Framing(limits), None
    edges = [0, *sorted(c for c in cuts if c < len(data)), len(data)]
    for start, end in itertools.pairwise(edges):
        verdict = framing.feed(data[start:end])
        if verdict is not None:
            break
    if isinstance(whole, Complete):
        assert isinstance(verdict, Complete) and verdict.request == whole.request
        assert whole.rest.startswith(verdict.rest)
        assert data.endswith(whole.request + whole.rest)
    elif isinstance(whole, Refusal):
        assert isinstance(verdict, Refusal) and verdict.code == whole.code
    else:
        assert verdict is None


@FAST
@given(data=st.lists(requests_like, min_size=1, max_size=3) | st.lists(st.binary(max_size=300), max_size=2))
def test_http_server_on_random_requests(file_server: FileServer, data: list[bytes]) -> None:
    """Whatever arrives, the answer (if any) starts with a status line and the server keeps serving."""
    with socket.create_connection(("127.0.0.1", file_server.bound_port or 0), timeout=10) as sock:
        try:
            sock.sendall(b"".join(data))
            sock.shutdown(socket.SHUT_WR)
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
        except ConnectionResetError:
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1."), answer[:80]
    with socket.create_connection(("127.0.0.1", file_server.bound_port or 0), timeout=10) as sock:
        sock.sendall(b"GET /t/" + b"A" * 32 + b".jpg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"".join(iter(lambda: sock.recv(65536), b"")).endswith(b"\r\n\r\nstaged bytes")


# --- names ----------------------------------------------------------------------------------------

fs_names = (st.binary(min_size=1, max_size=255).map(os.fsdecode)
            | st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=60))


@FAST
@given(name=st.binary(max_size=300).map(os.fsdecode) | st.text(max_size=300))
def test_display_name_is_always_printable_utf8(name: str) -> None:
    shown = display_name(name)
    shown.encode("utf-8")  # no surrogate survives: a sidecar or a log line can always hold it
    assert "\n" not in shown and "\r" not in shown and "\x00" not in shown
    assert len(shown) <= 10 * len(name) + 10


@FAST
@given(value=structures | st.binary(max_size=300).map(os.fsdecode) | st.text(max_size=20_000),
       limit=st.integers(1, 200))
def test_short_quotes_any_value_in_bounded_printable_text(value: object, limit: int) -> None:
    shown = short(value, limit)
    shown.encode("utf-8")
    assert len(shown) <= 8 * limit + 60  # escapes may widen what is kept, never without bound
    assert len(bounded(str(value), limit)) <= limit + 40
    printable(str(value)).encode("utf-8")


@FAST
@given(names=st.lists(fs_names, max_size=8))
def test_natural_key_orders_any_names(names: list[str]) -> None:
    ordered = sorted(names, key=entries.natural_key)
    assert sorted(ordered, key=entries.natural_key) == ordered
    assert len({entries.natural_key(n) for n in names}) == len(set(names))  # distinct names never tie


@FAST
@given(name=fs_names)
def test_classify_any_name(scratch: Path, name: str) -> None:
    assume("/" not in name and "\x00" not in name and name not in (".", ".."))
    assume(len(os.fsencode(name)) <= 255)
    inbox = scratch / "inbox"
    inbox.mkdir(exist_ok=True)
    entry = entries.classify(inbox, "alice", name, ["*.tmp"])
    assert entry.kind in (entries.MISSING, entries.IGNORED)
    (inbox / name).write_bytes(b"x")
    try:
        entry = entries.classify(inbox, "alice", name, ["*.tmp"])
        assert entry.kind in (entries.VIDEO, entries.PHOTO, entries.SETTINGS, entries.OTHER, entries.IGNORED)
        assert entry.path == inbox / name
    finally:
        (inbox / name).unlink()

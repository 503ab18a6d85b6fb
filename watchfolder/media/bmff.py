"""MP4 and MOV (ISO base media): the box structure, then what the headers say about the video.

The top-level boxes must tile the file and include ``moov`` and ``mdat`` (else the copy is truncated).
The details come from ``moov`` only (``mvhd``, each ``trak``'s ``tkhd``/``mdhd``/``hdlr``/``stsd``/
``stsz``/``stts``) and, for a fragmented file, from the ``moof`` headers (``tfhd``/``tfdt``/``trun``);
sample tables are never read whole, so a 2 GB file with its ``moov`` at the end costs a seek and a few
reads. Details are a courtesy: damaged inner boxes leave them unknown, never refuse a playable file.
Over 300 lines because the box walk and the header readers share one read budget.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from watchfolder.core.errors import MediaError
from watchfolder.media.info import BudgetSpent, Source, VideoInfo

MAX_TOP_LEVEL_BOXES = 10_000  # real files have a handful (a fragmented one a few per second); bounds a hostile one
_MOOF_READ = 16 * 1024        # a fragment header is a few hundred bytes; a longer one is read this far
_STTS_READ = 64 * 1024        # time-to-sample entries read when stsz gives no sample count

VIDEO_CODECS = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "h265", b"hev1": "h265", b"vp08": "vp8",
                b"vp09": "vp9", b"av01": "av1", b"mp4v": "mpeg4", b"apch": "prores", b"apcn": "prores",
                b"apcs": "prores", b"apco": "prores", b"ap4h": "prores", b"ap4x": "prores", b"jpeg": "mjpeg",
                b"mjpa": "mjpeg", b"dvh1": "h265", b"dvhe": "h265", b"dva1": "h264", b"dvav": "h264"}
AUDIO_CODECS = {b"mp4a": "aac", b"Opus": "opus", b"ac-3": "ac3", b"ec-3": "eac3", b"fLaC": "flac",
                b"alac": "alac", b"sowt": "pcm", b"twos": "pcm", b"lpcm": "pcm", b"ipcm": "pcm", b"in24": "pcm",
                b"in32": "pcm", b"fl32": "pcm", b"fl64": "pcm", b".mp3": "mp3", b"samr": "amr"}
_MP4A_OBJECT_TYPES = {0x40: "aac", 0x66: "aac", 0x67: "aac", 0x68: "aac", 0x69: "mp3", 0x6B: "mp3", 0xA5: "ac3",
                      0xA6: "eac3", 0xAD: "opus"}

Box = tuple[bytes, int, int]  # (type, payload start, box end)


def fmt_type(kind: bytes) -> str:
    return kind.decode("latin-1") if all(32 <= c < 127 for c in kind) else kind.hex()


def boxes(src: Source, start: int, end: int, *, lenient: bool = False) -> list[Box]:
    """Given a byte span, return its boxes as (type, payload start, box end).

    Raise MediaError if they don't tile the span exactly; with ``lenient``, return the boxes that
    parsed instead (inner boxes only feed the details, which must never refuse a playable file).
    """
    found: list[Box] = []
    offset = start
    while offset < end:
        problem = box_problem(src, offset, end) if len(found) < MAX_TOP_LEVEL_BOXES else MediaError(
            "unsupported_media", f"more than {MAX_TOP_LEVEL_BOXES:,} boxes: not a usable video")
        if isinstance(problem, MediaError):
            if lenient:
                break
            raise problem
        found.append(problem)
        offset = problem[2]
    return found


def box_problem(src: Source, offset: int, end: int) -> Box | MediaError:
    """Given a box's offset, return (type, payload start, box end), or the MediaError saying why not."""
    header = src.read_at(offset, min(16, end - offset))
    size, kind = struct.unpack_from(">I4s", header) if len(header) >= 8 else (0, b"")
    header_len = 16 if size == 1 else 8  # size 1: a 64-bit largesize follows the type
    if len(header) < header_len:
        where = f"the header of box '{fmt_type(kind)}'" if kind else f"a box header at byte {offset:,}"
        return MediaError("truncated_video", f"the file ends inside {where}: the copy looks incomplete")
    if size == 1:
        size = struct.unpack_from(">Q", header, 8)[0]
    elif size == 0:
        size = end - offset  # size 0: the box runs to the end of the file
    if size < header_len:
        return MediaError("truncated_video", f"box '{fmt_type(kind)}' at byte {offset:,} declares an "
                          f"impossible size ({size:,}): the file is damaged")
    if offset + size > end:
        return MediaError("truncated_video", f"the file ends inside box '{fmt_type(kind)}' ({end - offset:,} "
                          f"of {size:,} bytes): the copy looks incomplete")
    return kind, offset + header_len, offset + size


def _child(src: Source, payload: int, end: int, *path: bytes) -> tuple[int, int] | None:
    """Follow ``path`` (box types, outermost first) down from a span; return the last box's span or None."""
    span: tuple[int, int] | None = (payload, end)
    for kind in path:
        assert span is not None
        span = next(((start, stop) for k, start, stop in boxes(src, *span, lenient=True) if k == kind), None)
        if span is None:
            return None
    return span


@dataclass
class _Track:
    handler: bytes = b""
    track_id: int = 0
    width: int | None = None
    height: int | None = None
    timescale: int = 0
    duration: int = 0
    samples: int = 0
    fourcc: bytes = b""
    codec: str | None = None
    default_duration: int = 0  # from mvex/trex, for fragments
    fragments: list[tuple[int, int, int]] = field(default_factory=list)  # (base time or -1, samples, duration)


def probe_bmff(src: Source, head: bytes) -> VideoInfo:
    """Given an MP4/MOV source and its first bytes, return what it is; raise MediaError for a truncated copy."""
    container = "mov" if head[4:8] != b"ftyp" or head[8:12] == b"qt  " else "mp4"
    top = boxes(src, 0, src.size)
    found = {kind: (start, stop) for kind, start, stop in reversed(top)}
    for needed, why in ((b"moov", "the index of the video"), (b"mdat", "the media data")):
        if needed not in found:
            raise MediaError("truncated_video", f"there is no '{needed.decode()}' box ({why}): the recording "
                             "looks unfinished or the file is damaged")
    content_type = "video/quicktime" if container == "mov" else "video/mp4"
    movie_scale, movie_duration, fragment_duration = 0, 0, 0
    tracks: list[_Track] = []
    try:
        movie_scale, movie_duration, tracks, fragment_duration = _moov(src, found[b"moov"])
        if any(kind == b"moof" for kind, _, _ in top):
            _fragments(src, [(start, stop) for kind, start, stop in top if kind == b"moof"], tracks)
    except (BudgetSpent, struct.error, IndexError):
        pass  # what was read so far stands; the rest stays unknown
    if tracks and not any(t.handler == b"vide" for t in tracks):
        raise MediaError("unsupported_media", "the file has no video track (audio only?)")
    video = next((t for t in tracks if t.handler == b"vide"), _Track())
    audio = next((t for t in tracks if t.handler == b"soun"), None)
    fragmented = any(kind == b"moof" for kind, _, _ in top)
    duration = movie_duration / movie_scale if movie_scale and movie_duration else None
    if not duration and fragment_duration and movie_scale:
        duration = fragment_duration / movie_scale
    fps, track_seconds = _rate(video)
    if not duration and track_seconds:
        duration = track_seconds
    return VideoInfo(container, content_type, src.size, duration, video.width, video.height, codec=video.codec,
                     fps=fps, audio=audio.codec if audio else None, fragmented=fragmented)


def _rate(track: _Track) -> tuple[float | None, float | None]:
    """Return (mean frames per second, the track's length in seconds) from its samples, moov's or fragments'."""
    samples, units = track.samples, track.duration
    if track.fragments:
        samples += sum(count for _, count, _ in track.fragments)
        timed = [f for f in track.fragments if f[0] >= 0]
        if timed and len(timed) == len(track.fragments):
            first, last = timed[0], timed[-1]
            units = max(units, last[0] + last[2] - first[0])
        else:
            units += sum(length for _, _, length in track.fragments)
    if not track.timescale or units <= 0:
        return None, None
    seconds = units / track.timescale
    return (samples / seconds if samples else None), seconds


def _moov(src: Source, moov: tuple[int, int]) -> tuple[int, int, list[_Track], int]:
    """Return (movie timescale, movie duration, the tracks, mehd's fragment duration) from moov."""
    scale = duration = fragment_duration = 0
    tracks: list[_Track] = []
    trex: dict[int, int] = {}
    for kind, start, stop in boxes(src, *moov, lenient=True):
        if kind == b"mvhd":
            data = src.read_at(start, 32)
            fmt = ">4xQQIQ" if data[:1] == b"\x01" else ">4xIIII"
            if len(data) >= struct.calcsize(fmt):
                _, _, scale, duration = struct.unpack_from(fmt, data)
                if duration in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
                    duration = 0
        elif kind == b"trak":
            tracks.append(_trak(src, start, stop))
        elif kind == b"mvex":
            for sub, s_start, _ in boxes(src, start, stop, lenient=True):
                data = src.read_at(s_start, 16)
                if sub == b"mehd" and len(data) >= 8:
                    fragment_duration = struct.unpack_from(">Q" if data[0] == 1 else ">I", data, 4)[0]
                elif sub == b"trex" and len(data) >= 16:
                    track_id, _, default = struct.unpack_from(">III", data, 4)
                    trex[track_id] = default
    for track in tracks:
        track.default_duration = trex.get(track.track_id, 0)
    return scale, duration, tracks, fragment_duration


def _trak(src: Source, start: int, stop: int) -> _Track:
    track = _Track()
    tkhd = _child(src, start, stop, b"tkhd")
    if tkhd:
        data = src.read_at(tkhd[0], 96)
        wide = data[:1] == b"\x01"
        if len(data) >= (24 if wide else 16):
            track.track_id = struct.unpack_from(">I", data, 20 if wide else 12)[0]
        base = 52 if wide else 40  # the 3x3 matrix follows the versioned times
        if len(data) >= base + 44:
            a, b = struct.unpack_from(">ii", data, base)
            width, height = (v >> 16 for v in struct.unpack_from(">II", data, base + 36))
            if a == 0 and b != 0:  # a 90 or 270 degree rotation: show what a viewer sees
                width, height = height, width
            track.width, track.height = width or None, height or None
    mdia = _child(src, start, stop, b"mdia")
    if mdia is None:
        return track
    for kind, b_start, _ in boxes(src, *mdia, lenient=True):
        if kind == b"hdlr":
            track.handler = src.read_at(b_start + 8, 4)
        elif kind == b"mdhd":
            data = src.read_at(b_start, 32)
            fmt = ">4xQQIQ" if data[:1] == b"\x01" else ">4xIIII"
            if len(data) >= struct.calcsize(fmt):
                _, _, track.timescale, track.duration = struct.unpack_from(fmt, data)
                if track.duration in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
                    track.duration = 0
    stbl = _child(src, *mdia, b"minf", b"stbl")
    if stbl is not None:
        _stbl(src, stbl, track)
    if track.handler != b"vide":
        track.width = track.height = None
    return track


def _stbl(src: Source, stbl: tuple[int, int], track: _Track) -> None:
    """Read the sample entry's codec and the sample count (stsz, else a bounded look at stts)."""
    stts: tuple[int, int] | None = None
    for kind, start, stop in boxes(src, *stbl, lenient=True):
        if kind == b"stsd":
            entry = src.read_at(start + 8, 8)
            if len(entry) == 8:
                track.fourcc = entry[4:8]
                table = VIDEO_CODECS if track.handler == b"vide" else AUDIO_CODECS
                track.codec = table.get(track.fourcc, fmt_type(track.fourcc).strip().lower() or None)
                if track.fourcc == b"mp4a":
                    track.codec = _mp4a_codec(src, start + 8, min(stop, start + 8 + struct.unpack(">I", entry[:4])[0]))
        elif kind in (b"stsz", b"stz2"):
            data = src.read_at(start, 12)
            if len(data) == 12:
                track.samples = struct.unpack_from(">I", data, 8)[0]
        elif kind == b"stts":
            stts = (start, stop)
    if not track.samples and stts is not None:
        data = src.read_at(stts[0], min(stts[1] - stts[0], _STTS_READ))
        count = struct.unpack_from(">I", data, 4)[0] if len(data) >= 8 else 0
        entries = min(count, (len(data) - 8) // 8)
        track.samples = sum(struct.unpack_from(">I", data, 8 + 8 * i)[0] for i in range(entries))


def _mp4a_codec(src: Source, start: int, stop: int) -> str:
    """An ``mp4a`` entry is AAC unless its esds names another object type (MP3 in MP4, for one)."""
    esds = _child(src, start + 8 + 28, stop, b"esds")
    if esds is None:
        return "aac"
    data = src.read_at(esds[0] + 4, min(64, esds[1] - esds[0] - 4))
    pos = 0
    try:
        for wanted in (0x03, 0x04):
            if data[pos] != wanted:
                return "aac"
            pos += 1
            while data[pos] & 0x80:  # the descriptor length: up to four 7-bit groups
                pos += 1
            pos += 1
            if wanted == 0x03:
                flags = data[pos + 2]
                pos += 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
                if flags & 0x40:
                    pos += 1 + data[pos]
        return _MP4A_OBJECT_TYPES.get(data[pos], "aac")
    except IndexError:
        return "aac"


def _fragments(src: Source, moofs: list[tuple[int, int]], tracks: list[_Track]) -> None:
    """Add each fragment's (base decode time, sample count, duration) to its track, while the budget lasts."""
    by_id = {t.track_id: t for t in tracks}
    for moof_start, moof_stop in moofs:
        span = (moof_start, min(moof_stop, moof_start + _MOOF_READ))
        for kind, start, stop in boxes(src, *span, lenient=True):
            if kind != b"traf":
                continue
            track_id, default, base, count, length = 0, 0, -1, 0, 0
            for sub, s_start, s_stop in boxes(src, start, stop, lenient=True):
                data = src.read_at(s_start, s_stop - s_start)
                flags = int.from_bytes(data[1:4], "big")
                if sub == b"tfhd":
                    track_id = struct.unpack_from(">I", data, 4)[0]
                    pos = 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
                    if flags & 0x08:
                        default = struct.unpack_from(">I", data, pos)[0]
                elif sub == b"tfdt":
                    base = struct.unpack_from(">Q" if data[0] == 1 else ">I", data, 4)[0]
                elif sub == b"trun":
                    samples = struct.unpack_from(">I", data, 4)[0]
                    count += samples
                    pos = 8 + (4 if flags & 0x001 else 0) + (4 if flags & 0x004 else 0)
                    if flags & 0x100:
                        step = 4 * bin(flags & 0xF00).count("1")
                        shown = min(samples, (len(data) - pos) // step)
                        length += sum(struct.unpack_from(">I", data, pos + step * i)[0] for i in range(shown))
                    else:
                        track = by_id.get(track_id)
                        length += samples * (default or (track.default_duration if track else 0))
            track = by_id.get(track_id)
            if track is not None and count:
                track.fragments.append((base, count, length))

"""WebM (EBML/Matroska): the header, the Segment's extent, then Info and Tracks for the details.

Info (duration) and Tracks (codec, pixel size, DefaultDuration → frame rate, the audio codec) sit before
the first Cluster in every muxer's output, so the first MiB is all that is read.
"""

from __future__ import annotations

import struct

from watchfolder.core.errors import MediaError
from watchfolder.media.info import Source, VideoInfo

HEAD_READ = 1024 * 1024
VIDEO_CODECS = {"V_VP8": "vp8", "V_VP9": "vp9", "V_AV1": "av1", "V_MPEG4/ISO/AVC": "h264",
                "V_MPEGH/ISO/HEVC": "h265", "V_THEORA": "theora"}
AUDIO_CODECS = {"A_OPUS": "opus", "A_VORBIS": "vorbis", "A_AAC": "aac", "A_MPEG/L3": "mp3", "A_FLAC": "flac",
                "A_AC3": "ac3", "A_EAC3": "eac3"}

SEGMENT, INFO, TRACKS, TRACK_ENTRY, VIDEO = 0x18538067, 0x1549A966, 0x1654AE6B, 0xAE, 0xE0
TRACK_TYPE, CODEC_ID, DEFAULT_DURATION = 0x83, 0x86, 0x23E383
DURATION, TIMESTAMP_SCALE, PIXEL_WIDTH, PIXEL_HEIGHT, DOC_TYPE = 0x4489, 0x2AD7B1, 0xB0, 0xBA, 0x4282


def element(buf: bytes, pos: int) -> tuple[int, int, int | None]:
    """Given a buffer and position, return (element id, data start, data size or None if unknown)."""
    values = []
    for keep_marker in (True, False):
        length = 9 - buf[pos].bit_length()  # IndexError past the end; a 0 byte gives 9, caught below
        if length > 8 or pos + length > len(buf):
            raise IndexError(pos)
        value = int.from_bytes(buf[pos:pos + length], "big")
        if not keep_marker:
            value &= (1 << (7 * length)) - 1
            value = -1 if value == (1 << (7 * length)) - 1 else value  # all ones: size unknown (live stream)
        values.append(value)
        pos += length
    return values[0], pos, (values[1] if values[1] >= 0 else None)


def children(buf: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]:
    """Given a span of a buffer, return its complete child elements as (id, data), stopping at the first cut one."""
    found, pos, end = [], start, min(len(buf), len(buf) if end is None else end)
    while pos < end:
        kind, data, size = element(buf, pos)
        if size is None or data + size > len(buf):
            break
        found.append((kind, buf[data:data + size]))
        pos = data + size
    return found


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big")


def probe_ebml(src: Source) -> VideoInfo:
    """Given a WebM source, return what it is; raise MediaError for Matroska that is not WebM or a cut copy."""
    buf = src.read_at(0, HEAD_READ)
    try:
        _, data, header_size = element(buf, 0)
        if header_size is None or data + header_size > len(buf):
            raise IndexError(data)
        if dict(children(buf, data, data + header_size)).get(DOC_TYPE, b"").rstrip(b"\0") != b"webm":
            raise MediaError("unsupported_media", "not a video TikTok accepts (MP4, MOV or WebM): it looks like "
                             "a Matroska (MKV) video; remux it to MP4 or WebM")
        kind, seg_data, seg_size = element(buf, data + header_size)
    except IndexError:
        raise MediaError("truncated_video", "the file ends inside the WebM header: the copy looks incomplete") from None
    if kind != SEGMENT:
        raise MediaError("truncated_video", "there is no WebM Segment after the header: the file is damaged")
    if seg_size is not None and seg_data + seg_size > src.size:
        raise MediaError("truncated_video", f"the file ends inside the WebM Segment ({src.size - seg_data:,} of "
                         f"{seg_size:,} bytes): the copy looks incomplete")
    duration = width = height = fps = codec = audio = None
    try:  # the details are a courtesy: a damaged Info or Tracks leaves them unknown
        segment = dict(children(buf, seg_data, None if seg_size is None else seg_data + seg_size))
        info = dict(children(segment.get(INFO, b"")))
        if len(raw := info.get(DURATION, b"")) in (4, 8):
            scale = _uint(info.get(TIMESTAMP_SCALE, b"")) or 1_000_000  # nanoseconds per tick
            duration = struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0] * scale / 1e9 or None
        entries = [dict(children(entry)) for kind, entry in children(segment.get(TRACKS, b"")) if kind == TRACK_ENTRY]
        video = next((e for e in entries if e.get(TRACK_TYPE) == b"\x01"), {})
        sound = next((e for e in entries if e.get(TRACK_TYPE) == b"\x02"), None)
        pixels = dict(children(video.get(VIDEO, b"")))
        width = _uint(pixels.get(PIXEL_WIDTH, b"")) or None
        height = _uint(pixels.get(PIXEL_HEIGHT, b"")) or None
        if video.get(CODEC_ID):
            name = video[CODEC_ID].rstrip(b"\0").decode("ascii", "replace")
            codec = VIDEO_CODECS.get(name, name.lower())
        if per_frame := _uint(video.get(DEFAULT_DURATION, b"")):
            fps = 1e9 / per_frame
        if sound is not None:
            name = sound.get(CODEC_ID, b"").rstrip(b"\0").decode("ascii", "replace")
            audio = AUDIO_CODECS.get(name, name.lower() or None)
    except (IndexError, struct.error):
        pass
    return VideoInfo("webm", "video/webm", src.size, duration, width, height, codec=codec, fps=fps, audio=audio)

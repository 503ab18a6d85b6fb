"""Benchmark 9: what fraction of a user's uplink watchfolder fills, on a simulated WAN link.

The emulator sits behind a link with a set rate and round trip. Where the machine allows it (root, network
namespaces, ``tc``), the emulator and a delaying proxy (``bench.wanlink``) run in one namespace, every sender
in another, joined by a veth pair whose client side is limited by ``tc … tbf``; the proxy holds each piece of
data half the round trip each way. Elsewhere the proxy alone paces the upstream direction and adds the round
trip, on loopback. Plain HTTP (the TLS cost per GB is benchmark 6's).

For each profile the same file goes up through ``watchfolder run``, curl and the bare clients of
``bench.clients``, at each chunk size; the figure is the upload window's bytes per second (``rig.upload_window``:
from the first chunk's answer to the last's, every per-chunk round trip included) over the link's rate.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.proc import Sampler
from bench.report import Figure, Section, verdict
from bench.rig import Context, EmulatorProcess, _started
from bench.uploads import Upload, bare_upload, curl_upload, daemon_upload, split_chunks
from bench.wanlink import Namespaces
from watchfolder.media import samples
from watchfolder.tiktok.chunks import MAX_CHUNK, MIN_CHUNK, ChunkPlan, plan

DAEMON = "watchfolder run"
FRAMING = 1448 / 1514   # TCP payload per full Ethernet frame that tbf counts (MTU 1500, TCP timestamps)
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Profile:
    name: str
    rate_bits: int
    rtt_ms: int
    size: int
    rounds: int = 1    # a fast profile's uploads take seconds: rounds in rotating order, the median kept

    @property
    def label(self) -> str:
        rate = f"{self.rate_bits / 1e9:g} Gbit/s" if self.rate_bits >= 1e9 else f"{self.rate_bits / 1e6:g} Mbit/s"
        return f"{rate}, {self.rtt_ms} ms"


PROFILES = (Profile("home", 20_000_000, 50, 25_000_000), Profile("office", 100_000_000, 30, 150_000_000),
            Profile("fibre", 1_000_000_000, 20, 500_000_000, rounds=3))
SMOKE = (Profile("fibre", 1_000_000_000, 20, 12_000_000),)
CHUNKS = (10_000_000, MAX_CHUNK)          # the former default, and the largest the rules allow
SWEPT = (DAEMON, "curl", "httpclient")    # at every chunk size; the others at the largest only


@dataclass
class Row:
    profile: Profile
    chunk_size: int
    upload: Upload

    @property
    def fraction(self) -> float:
        return self.upload.size / self.upload.seconds / (self.profile.rate_bits / 8)


class Link:
    """The emulator behind the simulated link; ``base_url`` is the proxy's address as the senders see it."""

    def __init__(self, folder: Path, ctx: Context) -> None:
        self.folder, self.ctx = folder, ctx
        self.namespaces: Namespaces | None = None
        self.proxy: subprocess.Popen[bytes] | None = None
        self.how = ""
        namespaces = None
        try:
            namespaces = Namespaces().create()
            namespaces.shape(PROFILES[0].rate_bits)   # tc and tbf are there too
            self.namespaces = namespaces
        except (OSError, subprocess.CalledProcessError) as exc:
            if namespaces is not None:
                namespaces.remove()
            ctx.say(f"wan: no network namespaces or tc tbf here ({exc}); the proxy alone simulates the link")
        self.emulator = EmulatorProcess(folder / "emulator", ["daemon", "bare"])
        if self.namespaces is not None:
            self.emulator.command = self.namespaces.in_server(self.emulator.command)
            self.namespaces.enter()
        try:
            self.emulator.start()
        except BaseException:
            if self.namespaces is not None:
                self.namespaces.remove()
            raise
        self.emulator_url = self.emulator.base_url
        self.sampler = Sampler(self.emulator.process.pid).start()  # type: ignore[union-attr]

    def use(self, profile: Profile) -> None:
        """Set the link to ``profile``: the tbf rate (namespaces) and a fresh proxy with its round trip."""
        self._stop_proxy()
        upstream = self.emulator_url.removeprefix("http://")
        command = [sys.executable, "-m", "bench.wanlink", "--upstream", upstream, "--rtt-ms", str(profile.rtt_ms)]
        if self.namespaces is not None:
            self.namespaces.shape(profile.rate_bits)
            command = self.namespaces.in_server([*command, "--listen", f"{Namespaces.SERVER_IP}:0"])
            self.how = ("network namespaces joined by a veth pair, `tc qdisc … tbf` on the sender's side for the "
                        "rate, `python -m bench.wanlink` beside the emulator for the round trip")
        else:
            command += ["--listen", "127.0.0.1:0", "--rate-bits", str(profile.rate_bits)]
            self.how = ("loopback through `python -m bench.wanlink`, which paces the upstream at the rate and adds "
                        "the round trip")
        self.proxy = _started(subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT))
        assert self.proxy.stdout is not None
        ready, _, _ = select.select([self.proxy.stdout], [], [], 30)
        line = self.proxy.stdout.readline().decode() if ready else ""
        if not line.startswith("listening: "):
            raise RuntimeError("the link's proxy did not start")
        self.emulator.base_url = "http://" + line.split(": ", 1)[1].strip()

    def _stop_proxy(self) -> None:
        if self.proxy is not None and self.proxy.poll() is None:
            self.proxy.terminate()
            self.proxy.wait()
        if self.proxy is not None and self.proxy.stdout is not None:
            self.proxy.stdout.close()

    def close(self) -> None:
        self.sampler.stop()
        self._stop_proxy()
        self.emulator.stop()
        if self.namespaces is not None:
            self.namespaces.remove()


def run(ctx: Context) -> list[Section]:
    folder = ctx.work / "wan"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    profiles = SMOKE if ctx.smoke else PROFILES
    chunks = (MIN_CHUNK,) if ctx.smoke else CHUNKS
    rows: list[Row] = []
    curl_shown = ""
    link = Link(folder, ctx)
    try:
        for profile in profiles:
            link.use(profile)
            path = samples.write_mp4(folder / f"{profile.name}.mp4", size=profile.size, seed=8008)
            for chunk_size in chunks:
                chunk_plan = plan(profile.size, chunk_size)
                parts = split_chunks(path, chunk_plan, folder / "chunks")
                os.sync()
                clients = SWEPT if chunk_size != chunks[-1] else (*SWEPT, "sendfile", "requests")
                runs: dict[str, list[Upload]] = {}
                for index in range(profile.rounds):
                    for client in clients[index % len(clients):] + clients[:index % len(clients)]:
                        ctx.say(f"wan: {profile.label}, {chunk_size:,}-byte chunks, round {index + 1}, {client}")
                        upload, shown = _upload(client, folder, link, path, chunk_plan, parts)
                        curl_shown = curl_shown or shown
                        runs.setdefault(client, []).append(upload)
                        time.sleep(0.5)   # let the link's queue drain between senders
                for client in clients:
                    middle = sorted(runs[client], key=lambda upload: upload.rate)[len(runs[client]) // 2]
                    rows.append(Row(profile, chunk_plan.chunk_size, middle))
                shutil.rmtree(folder / "chunks", ignore_errors=True)
            path.unlink()
    finally:
        link.close()
    return [_section(rows, link.how, curl_shown)]


def _upload(client: str, folder: Path, link: Link, path: Path, chunk_plan: ChunkPlan,
            parts: list[Path]) -> tuple[Upload, str]:
    """One upload of ``path`` over the link by ``client``; return it and (for curl) its command for the page."""
    if client == DAEMON:
        upload = daemon_upload(folder / "daemon", link.emulator, link.sampler, path, "daemon", chunk_plan.chunk_size)
        shutil.rmtree(folder / "daemon", ignore_errors=True)
        return upload, ""
    if client == "curl":
        upload, command = curl_upload(link.emulator, link.sampler, chunk_plan, parts, "bare")
        return upload, " ".join(command[:4]) + " … --upload-file CHUNK … 'UPLOAD_URL'"
    return bare_upload(client, link.emulator, link.sampler, path, "bare", chunk_plan.chunk_size), ""


def _section(rows: list[Row], how: str, curl_shown: str) -> Section:
    figures: list[Figure] = []
    profiles = list(dict.fromkeys(row.profile for row in rows))
    for profile in profiles:
        mine = [row for row in rows if row.profile == profile]
        ours = max((row for row in mine if row.upload.client == DAEMON), key=lambda row: row.fraction)
        curl = max((row for row in mine if row.upload.client == "curl"), key=lambda row: row.fraction)
        figures.append(Figure(f"{DAEMON}, {profile.label}: share of the link ({ours.chunk_size:,}-byte chunks)",
                              f"{ours.fraction:.2f}", "≥ 0.9", verdict(ours.fraction >= 0.9),
                              _note(profile, mine, ours)))
        ratio = ours.fraction / curl.fraction
        figures.append(Figure(f"{DAEMON} ÷ curl, {profile.label} (each at its best chunk size)", f"{ratio:.2f}",
                              "≥ 1.0", verdict(ratio >= 0.995),
                              f"curl reached {curl.fraction:.2f} of the link with {curl.chunk_size:,}-byte chunks"))
    body = [
        f"The link: {how}. Plain HTTP; the file is a pseudo-random MP4 in the page cache, the same for every sender "
        "of a profile. The share of the link is the upload window's payload (`rig.upload_window`: from the first "
        "chunk's answer to the last chunk's, so every per-chunk round trip counts; a one-chunk upload from the "
        "init's answer) over the link's rate; `tbf` counts the Ethernet, IP and TCP headers too, so payload can "
        "reach about 0.96 of it at most. CPU is the sender's own over the same window, per GB of payload. "
        f"curl: `{curl_shown}`, one kept-alive connection; the bare clients are `python -m bench.clients MODE`.",
        "",
        "A profile with several rounds shows each sender's median round (by rate); the senders take turns first.",
        "",
        "| link | sender | chunk size | chunks | share of the link | MB/s | ms per chunk | sender CPU s/GB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        count = max(row.upload.file_size // row.chunk_size, 1)
        body.append(f"| {row.profile.label}, {row.profile.size / 1e6:g} MB | {row.upload.client} | "
                    f"{row.chunk_size:,} | {count} | {row.fraction:.2f} | {row.upload.rate * 1000:.1f} | "
                    f"{row.upload.chunk_ms:.0f} | {row.upload.cpu_per_gb:.2f} |")
    return Section(9, "WAN: the share of a simulated uplink each sender fills", "python -m bench --only wan",
                   figures, body)


def _note(profile: Profile, mine: list[Row], ours: Row) -> str:
    by_chunk = ", ".join(f"{row.fraction:.2f} at {row.chunk_size:,}" for row in mine if row.upload.client == DAEMON)
    note = f"by chunk size: {by_chunk}"
    if ours.fraction >= 0.9:
        return note
    seconds_per_chunk = ours.chunk_size * 8 / profile.rate_bits
    ideal = seconds_per_chunk / (seconds_per_chunk + profile.rtt_ms / 1000)
    best = max(mine, key=lambda row: row.fraction)
    gap = (f"the best sender here ({best.upload.client}) reached {best.fraction:.2f} with a median of "
           f"{best.upload.chunk_ms:.0f} ms per chunk against watchfolder's {ours.upload.chunk_ms:.0f} ms")
    if ours.upload.chunk_ms <= best.upload.chunk_ms * 1.02:
        gap += (", so the rest of the gap is in single slower chunks, not in the work between chunks (not "
                "diagnosed here; other work on the machine moves single chunks)")
    return (f"{note}. Missed: each chunk waits one round trip for its answer before the next starts, which "
            f"alone caps {ours.chunk_size:,}-byte chunks at {ideal:.2f} of this link, and the headers tbf counts "
            f"at about 0.96: together about {ideal * FRAMING:.2f}; {gap}. Next step: keep a second chunk in "
            "flight where TikTok allows it (unconfirmed), which hides the round trip")

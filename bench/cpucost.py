"""Benchmark 6: CPU per GB uploaded, what TLS adds, and the floor this CPU sets (from ``throughput``'s run).

The floor is what the HTTPS upload phase cannot go below here, measured in the same run: SHA-256 per GB in
this process (``uploads.hash_cost``) plus the cipher the TLS server picked, per GB, by ``openssl speed``.
Neither counts reading the file or writing the socket, so it is a lower bound, not an estimate.
"""

from __future__ import annotations

import re
import statistics
import subprocess
from collections.abc import Callable

from bench.report import INFO, Figure, Section, verdict
from bench.uploads import Upload

DAEMON = "watchfolder run"
BLOCKS = "http.client, 1 MiB blocks"
HASHING = "http.client, 1 MiB blocks + SHA-256"
MEMORY = "http.client, from memory (no file, no hash)"
SENDFILE = "http.client + socket.sendfile"
UPLOAD_GOAL = 0.7   # CPU-s per GB, the upload phase (issue 19)
ITEM_GOAL = 0.8     # CPU-s per GB, the whole item


def cipher_cost(cipher: str) -> tuple[str, float] | None:
    """Given an OpenSSL cipher name (``TLS_AES_256_GCM_SHA384``, ``ECDHE-RSA-AES128-GCM-SHA256``, …), return
    (the EVP name, CPU-seconds per GB) from ``openssl speed`` on 16 KiB blocks (a TLS record's size), or None
    if the cipher is not one it measures or openssl is missing."""
    name = cipher.upper().replace("-", "_")
    evp = ("aes-256-gcm" if "AES_256_GCM" in name or "AES256_GCM" in name else
           "aes-128-gcm" if "AES_128_GCM" in name or "AES128_GCM" in name else
           "chacha20-poly1305" if "CHACHA20" in name else "")
    if not evp:
        return None
    try:
        done = subprocess.run(["openssl", "speed", "-evp", evp, "-bytes", "16384", "-seconds", "2"],
                              capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # The last line: "AES-256-GCM    4134385.37k" (thousands of bytes per second of CPU time).
    match = re.search(r"\s([\d.]+)k\s*$", done.stdout)
    if done.returncode != 0 or match is None:
        return None
    return evp, 1e9 / (float(match.group(1)) * 1000)


def _median(uploads: list[Upload], key: Callable[[Upload], float]) -> float:
    return statistics.median(key(u) for u in uploads)


def cpu_section(plain: dict[str, list[Upload]], secure: dict[str, list[Upload]], hashing: float,
                command: str, runs_table: list[str]) -> Section:
    """Section 6 from the plain and TLS rounds of ``throughput``; ``hashing`` is SHA-256's CPU-s per GB here."""
    per_gb = {client: _median(uploads, lambda u: u.cpu_per_gb) for client, uploads in plain.items()}
    per_gb_tls = {client: _median(uploads, lambda u: u.cpu_per_gb) for client, uploads in secure.items()}
    daemon_item = _median(plain[DAEMON], lambda u: u.item_cpu / (u.file_size / 1e9))
    upload, upload_tls = per_gb[DAEMON], per_gb_tls[DAEMON]
    while_sent = all(u.hashed_while_sending for u in plain[DAEMON] + secure[DAEMON])
    ciphers = sorted({u.cipher for uploads in secure.values() for u in uploads if u.cipher})
    cipher = ciphers[0] if ciphers else ""
    measured = cipher_cost(cipher) if cipher else None
    # What the HTTPS upload phase cannot go below: the cipher, and the hash when it is built while sending.
    floor = (hashing if while_sent else 0.0) + measured[1] if measured else None
    how = "1 MiB blocks, SHA-256 while sending" if while_sent else "1 MiB blocks; SHA-256 before, not counted"
    plain_how = "1 MiB blocks, SHA-256 while sending" if while_sent else "sendfile; SHA-256 before, not counted"
    figures = [
        Figure(f"{DAEMON}, upload phase, plain HTTP ({plain_how})", f"{upload:.2f} s/GB", f"≤ {UPLOAD_GOAL} s/GB",
               verdict(upload <= UPLOAD_GOAL), _plain_note(upload, per_gb, hashing, while_sent)),
        Figure(f"{DAEMON}, upload phase, HTTPS ({cipher or 'TLS'}, {how})", f"{upload_tls:.2f} s/GB",
               f"≤ {UPLOAD_GOAL} s/GB", verdict(upload_tls <= UPLOAD_GOAL),
               _tls_note(upload, upload_tls, per_gb, per_gb_tls, floor, while_sent)),
        Figure(f"{DAEMON}, whole item, plain HTTP (settle, SHA-256, init, chunks, status, move, sidecar)",
               f"{daemon_item:.2f} s/GB", f"≤ {ITEM_GOAL} s/GB", verdict(daemon_item <= ITEM_GOAL),
               _item_note(daemon_item, upload, hashing, while_sent)),
    ]
    if measured is not None and floor is not None:
        parts = f"SHA-256 in this process {hashing:.2f} s/GB and " if while_sent else ""
        figures.append(Figure("floor of the HTTPS upload phase on this CPU ("
                              + ("SHA-256 + the cipher" if while_sent else "the cipher") + ", nothing else)",
                              f"{floor:.2f} s/GB", verdict=INFO,
                              note=f"{parts}{cipher} (`openssl speed -evp {measured[0]} -bytes 16384`, the cipher "
                                   f"the server picked) {measured[1]:.2f} s/GB; reading the file and writing the "
                                   "socket come on top"))
    figures.append(Figure("SHA-256 of the file in 1 MiB blocks (this process, this CPU)", f"{hashing:.2f} s/GB"))
    for client in (SENDFILE, BLOCKS, HASHING, "requests, file object", "curl"):
        if client in per_gb:
            figures.append(Figure(f"bare {client}, plain HTTP", f"{per_gb[client]:.2f} s/GB", verdict=INFO))
    for client in (BLOCKS, HASHING, MEMORY, "curl"):
        if client in per_gb_tls:
            figures.append(Figure(f"bare {client}, HTTPS", f"{per_gb_tls[client]:.2f} s/GB", verdict=INFO))
    body = [
        "User + system CPU of the sender alone while it uploads (the daemon's read from `/proc/<pid>/stat` every "
        "20 ms and taken over the streaming window the emulator recorded; a bare client's from `getrusage` around "
        "its PUT loop and curl's from `wait4`, both scaled to the chunks in that window). The same uploads as "
        "benchmark 1, then the emulator behind TLS: `python -m bench.tlsemu` wraps its socket with a throwaway "
        "self-signed P-256 certificate made by `openssl req -x509`, and the daemon trusts it through "
        "`SSL_CERT_FILE` and `REQUESTS_CA_BUNDLE`. "
        + ("The daemon builds the file's SHA-256 from the blocks it sends (its log says `content_hashed` "
           "`read=while_sent`), so its upload phase includes the hash; `python -m bench.clients hashing` does the "
           "same bare. " if while_sent else
           "The daemon hashed the file before its upload, so its upload phase leaves the hash out. ")
        + "The whole item adds what the daemon does before and after the upload. `python -m bench.clients memory` "
        "sends the same blocks from memory, without reading the file or hashing: what the stream alone costs.",
        "",
        "On loopback the sender's socket writes also carry part of the receiver's TCP work (softirq time is "
        "charged to the process that is running), so every sender's socket share is higher here than toward a "
        "remote host.",
        "",
        "Over TLS:",
        "",
        *runs_table,
    ]
    return Section(6, "CPU per GB uploaded, what TLS adds, and the floor", command, figures, body)


def _tls_note(upload: float, upload_tls: float, per_gb: dict[str, float], per_gb_tls: dict[str, float],
              floor: float | None, while_sent: bool) -> str:
    bare = per_gb_tls.get(HASHING if while_sent else BLOCKS, 0.0)
    stream = per_gb_tls.get(MEMORY, 0.0)
    note = (f"TLS adds {upload_tls - upload:+.2f} s/GB to the daemon's plain-HTTP upload phase. Bare over TLS: "
            f"sending from memory {stream:.2f} s/GB (cipher and socket), 1 MiB blocks from the file "
            f"{per_gb_tls.get(BLOCKS, 0.0):.2f}, the same with SHA-256 while sending "
            f"{per_gb_tls.get(HASHING, 0.0):.2f}")
    if not while_sent:
        note += ". The daemon hashed before sending in this run, so this figure leaves the hash out"
    if upload_tls <= UPLOAD_GOAL:
        return note
    if floor is not None and floor > UPLOAD_GOAL:
        return (f"{note}. Missed, and not reachable on this CPU: SHA-256 and the cipher alone need {floor:.2f} s/GB "
                "(the floor above) before a byte is read or written; "
                + (f"the daemon spends {upload_tls - bare:.2f} s/GB more than the bare client that sends the same "
                   "way" if upload_tls > bare else
                   f"the daemon spends no more than the bare client that sends the same way ({bare:.2f} s/GB)")
                + ". Next step: none in the send path (block sizes "
                "64 KiB to 4 MiB, a larger SO_SNDBUF, batching records through a MemoryBIO and sending from mmap "
                "were all within the noise: `watchfolder/tiktok/sendbody.py`); kernel TLS with sendfile would save "
                "the copy into user space and the socket writes, not the hash or the cipher")
    if bare > UPLOAD_GOAL:
        return (f"{note}. Missed: the floor ({floor or 0:.2f} s/GB) allows the goal, but the bare client that sends "
                f"the same way already spends {bare:.2f} s/GB: the copy into user space and a socket write per "
                "16 KiB record. Next step: kernel TLS with sendfile (out of scope here)")
    return (f"{note}. Missed: the bare client that sends the same way stays at {bare:.2f} s/GB, so the daemon's own "
            f"work between chunks ({upload_tls - bare:+.2f} s/GB) tips it over. Next step: profile the worker "
            "between chunks over HTTPS")


def _plain_note(upload: float, per_gb: dict[str, float], hashing: float, while_sent: bool) -> str:
    if not while_sent:
        return "the hash is not in this figure (the daemon hashed before sending in this run)"
    bare = per_gb.get(HASHING, 0.0)
    note = (f"SHA-256 alone is {hashing:.2f} s/GB of it; the bare client that sends the same way spends {bare:.2f} "
            f"s/GB, and without the hash {per_gb.get(BLOCKS, 0.0):.2f}")
    if upload <= UPLOAD_GOAL:
        return note
    if bare > UPLOAD_GOAL:
        return (f"{note}. Missed: the hash and the copy of every byte into user space that it needs already pass the "
                "goal in the bare client; the upload phase carries the hash that used to be a read of its own "
                "before the init (see the whole item)")
    return (f"{note}. Missed by the daemon's own work between chunks ({upload - bare:+.2f} s/GB). Next step: profile "
            "the worker between chunks")


def _item_note(item: float, upload: float, hashing: float, while_sent: bool) -> str:
    if while_sent:
        note = (f"the upload phase is {upload:.2f} s/GB with the hash in it (SHA-256 alone: {hashing:.2f} s/GB); "
                "the rest is the quick key, settle, init, status, move and sidecar")
    else:
        note = (f"the upload itself is {upload:.2f} s/GB and hashing the file before it {hashing:.2f} s/GB")
    if item > ITEM_GOAL:
        note += (". Missed: SHA-256 alone takes most of the goal on this CPU (on a NAS CPU without SHA "
                 "instructions it costs several times more). Next step: let a NAS turn the hash off (dedupe: false "
                 "and no sha256 in the sidecar)")
    return note

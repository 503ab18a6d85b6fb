"""What one process costs, read from /proc: CPU (user + sys), memory (RSS, peak RSS) and I/O counters.

Only the process named by its pid is counted, never its parent or children: the benchmarks measure the
daemon alone, with the emulator and the benchmark itself in other processes.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """One reading: wall time (``time.time()``), CPU seconds of user and system time, RSS in bytes."""

    at: float
    user: float
    system: float
    rss: int

    @property
    def cpu(self) -> float:
        return self.user + self.system


def cpu_seconds(pid: int) -> tuple[float, float]:
    """Given a pid, return its (user, system) CPU seconds so far, every thread included.

    Raise FileNotFoundError (or ProcessLookupError) once the process is gone.
    """
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        text = stat.read()
    # The command name (field 2) may hold spaces or parentheses: count fields after its last ")".
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """Given a pid, return its VmRSS and VmHWM (peak RSS) in KiB, read from /proc/<pid>/status."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def io_counters(pid: int) -> dict[str, int]:
    """Given a pid, return its /proc/<pid>/io counters (every thread included): ``write_bytes`` (bytes it
    caused to be sent to the storage layer), ``wchar`` (bytes passed to write-like calls, page cache and
    sockets included), ``syscw`` (write-like calls), and the read side. Reading it needs the right to
    trace the process (the same user, as here)."""
    counters = {}
    with open(f"/proc/{pid}/io", encoding="ascii") as io:
        for line in io:
            key, _, value = line.partition(":")
            counters[key.strip()] = int(value)
    return counters


def sample(pid: int) -> Sample:
    user, system = cpu_seconds(pid)
    return Sample(time.time(), user, system, memory_kib(pid).get("VmRSS", 0) * 1024)


class Sampler:
    """Reads a process's CPU and RSS every ``interval`` seconds in a background thread.

    ``cpu_between(t0, t1)`` then gives the CPU it used between two wall times (linear between
    samples), so a phase whose bounds are known only afterwards (from the emulator's records) can be
    measured. /proc counts CPU in clock ticks (10 ms), so a phase should last a second or more.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{pid}", daemon=True)

    def start(self) -> Sampler:
        self.samples.append(sample(self.pid))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append(sample(self.pid))
            except (FileNotFoundError, ProcessLookupError):
                return

    def cpu_at(self, moment: float) -> tuple[float, float]:
        """Return the (user, system) CPU seconds at wall time ``moment``, interpolated between samples."""
        samples = list(self.samples)
        if not samples:
            raise ValueError("no samples taken")
        times = [s.at for s in samples]
        index = bisect.bisect_left(times, moment)
        if index == 0:
            return samples[0].user, samples[0].system
        if index >= len(samples):
            return samples[-1].user, samples[-1].system
        before, after = samples[index - 1], samples[index]
        share = (moment - before.at) / max(after.at - before.at, 1e-9)
        return (before.user + share * (after.user - before.user),
                before.system + share * (after.system - before.system))

    def cpu_between(self, start: float, end: float) -> tuple[float, float]:
        """Return the (user, system) CPU seconds used between two wall times."""
        user0, system0 = self.cpu_at(start)
        user1, system1 = self.cpu_at(end)
        return user1 - user0, system1 - system0

    def peak_rss_between(self, start: float, end: float) -> int:
        """Return the largest sampled RSS (bytes) between two wall times (0 if none was sampled)."""
        return max((s.rss for s in self.samples if start <= s.at <= end), default=0)

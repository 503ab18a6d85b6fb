"""Figures, the machine line, the console table and docs/benchmarks.md."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MET, MISSED, INFO = "met", "MISSED", ""


@dataclass
class Figure:
    """One measured figure: what, how much, the goal (empty: context only), met or missed, and why."""

    name: str
    value: str
    goal: str = ""
    verdict: str = INFO
    note: str = ""


@dataclass
class Section:
    """One benchmark's result: its figures, the command that reproduces them, and a body of markdown
    (method, per-run tables, raw commands) for docs/benchmarks.md."""

    number: int
    title: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    seconds: float = 0.0


def verdict(ok: bool) -> str:
    return MET if ok else MISSED


def machine_line() -> str:
    """CPU model, cores, RAM, Python, kernel and date, in one line."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Python {platform.python_version()}, "
            f"Linux {platform.release()}, {date}")


def load_average() -> str:
    """The 1-minute load average: other work on the machine is the main source of noise in these figures."""
    return f"{os.getloadavg()[0]:.2f}"


def tool_versions() -> str:
    """The versions of the outside tools the baselines use (curl, OpenSSL)."""
    versions = []
    for command in (["curl", "--version"], ["openssl", "version"]):
        try:
            first = subprocess.run(command, capture_output=True, text=True, check=False).stdout.splitlines()
            versions.append(first[0].split(" (")[0] if first else f"{command[0]}: unknown")
        except OSError:
            versions.append(f"{command[0]}: not installed")
    return "; ".join(versions)


def console_table(sections: list[Section]) -> str:
    """The summary as fixed-width text for the terminal."""
    rows = [("#", "figure", "measured", "goal", "verdict")]
    for section in sections:
        for figure in section.figures:
            rows.append((str(section.number), figure.name, figure.value, figure.goal or "-", figure.verdict or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    widths[1] = min(widths[1], 60)
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell[:widths[i]].ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(sections: list[Section], *, machine: str, tools: str, command: str, seconds: float,
             load: str) -> str:
    """docs/benchmarks.md: machine, how to run, the summary table, each benchmark, and the misses."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` (the `bench/` package); do not edit by hand, run it again.",
        "",
        f"- **Machine:** {machine}",
        f"- **Tools:** {tools}",
        f"- **Command:** `{command}` (took {seconds / 60:.1f} minutes; 1-minute load average {load} at the start: "
        "other work on the machine slows single rounds, so keep it quiet)",
        "- **Peer:** the project's TikTok emulator (`python -m watchfolder.emulator`) on 127.0.0.1, in its own "
        "process, with rate limits and caps off, processing instant and content checks off. The daemon is "
        "`watchfolder run -c CONFIG`, also a process of its own, signed in with `watchfolder auth import`. "
        "CPU and memory are read from `/proc/<pid>/stat` and `/proc/<pid>/status` (VmHWM) of the daemon "
        "process alone.",
        "- Each figure below names the command that reproduces it (`python -m bench --only NAME`, run from the "
        "repository root with the virtualenv's Python). Comparisons are made within one run.",
        "",
        "## Summary",
        "",
        "| # | figure | measured | goal | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for section in sections:
        for figure in section.figures:
            lines.append(f"| {section.number} | {_cell(figure.name)} | {_cell(figure.value)} | "
                         f"{_cell(figure.goal) or '–'} | {figure.verdict or '–'} |")
    for section in sections:
        lines += ["", f"## {section.number}. {section.title}", "",
                  f"Reproduce: `{section.command}` ({section.seconds:.0f} s in this run).", ""]
        lines += section.body
        notes = [f for f in section.figures if f.note]
        if notes:
            lines += [""]
            lines += [f"- **{_cell(f.name)}** ({f.verdict or 'context'}): {f.note}" for f in notes]
    missed = [(s, f) for s in sections for f in s.figures if f.verdict == MISSED]
    lines += ["", "## Goals missed", ""]
    if missed:
        lines += [f"- {s.number}. **{_cell(f.name)}**: {f.value} against {f.goal}. {f.note}" for s, f in missed]
    else:
        lines.append("None in this run.")
    return "\n".join(lines) + "\n"


def splice(page: str, sections: list[Section], *, machine: str, command: str, seconds: float, load: str) -> str:
    """``page`` (an existing docs/benchmarks.md) with ``sections`` put in: each replaces the section of its number
    (or goes in before "Goals missed"), its summary rows and missed goals replace that number's, and it says
    which run measured it, since the page's header names another run."""
    lines = page.rstrip("\n").split("\n")
    for section in sections:
        number = section.number
        head = next((i for i, line in enumerate(lines) if line.startswith(f"## {number}. ")), None)
        if head is not None:
            end = next(i for i in range(head + 1, len(lines)) if lines[i].startswith("## "))
            del lines[head:end]
        else:
            head = lines.index("## Goals missed")
        block = markdown([section], machine=machine, tools="", command="", seconds=0, load="").split("\n")
        start = block.index(f"## {number}. {section.title}")
        body = block[start:block.index("## Goals missed")]
        body.insert(2, f"Measured by `{command}` on {machine}, {seconds / 60:.1f} minutes, 1-minute load "
                       f"average {load} at the start (the page's header names the run of the other sections).")
        body.insert(3, "")
        lines[head:head] = body
        summary = [row for row in block if row.startswith(f"| {number} | ")]
        lines = [line for line in lines if not line.startswith(f"| {number} | ")]
        rows = [i for i, line in enumerate(lines) if re.match(r"\| \d+ \| ", line)]
        before = [i for i in rows if int(lines[i].split(" | ")[0][2:]) < number]
        place = before[-1] + 1 if before else (rows[0] if rows else lines.index("| --- | --- | --- | --- | --- |") + 1)
        lines[place:place] = summary
        missed = [line for line in block[block.index("## Goals missed"):] if line.startswith(f"- {number}. ")]
        lines = [line for line in lines if not line.startswith(f"- {number}. ")]
        goals = lines.index("## Goals missed")
        if "None in this run." in lines[goals:]:
            lines.remove("None in this run.")
        tail = goals + 2
        while tail < len(lines) and lines[tail].startswith("- ") and int(lines[tail][2:].split(".")[0]) < number:
            tail += 1
        lines[tail:tail] = missed
        if not any(line.startswith("- ") for line in lines[goals:]):
            lines.insert(goals + 2, "None in this run.")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

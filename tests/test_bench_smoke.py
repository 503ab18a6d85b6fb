"""The benchmarks run: ``python -m bench --smoke`` puts every benchmark through its paces at tiny sizes.

Timing goals are the benchmarks' business, not the tests': this only proves the code that measures works
end to end (emulator, daemon, baselines, page) and that the page it writes keeps its promises.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("openssl") is None,
                    reason="the baselines need curl, and the TLS run needs openssl to make its certificate")
def test_every_benchmark_runs_in_smoke_mode_and_writes_its_page(tmp_path: Path) -> None:
    """All six benchmarks run against the emulator, print the table, write the page and clean up."""
    page = tmp_path / "benchmarks.md"
    work = tmp_path / "work"

    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(page), "--work", str(work)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)

    assert done.returncode == 0, done.stderr[-4000:]
    text = page.read_text(encoding="utf-8")
    for number in range(1, 7):
        assert re.search(rf"^## {number}\. ", text, re.MULTILINE), f"section {number} is missing"
    assert "- **Machine:** " in text and "Python 3." in text
    summary = [line for line in text.splitlines() if re.match(r"\| [1-6] \| ", line)]
    assert len(summary) >= 20
    assert all(re.search(r"\d", line.split(" | ")[2]) for line in summary), "a figure without a number"
    assert "sidecar's sha256: yes" in text   # every daemon upload arrived byte for byte
    assert not re.search(r"\b(act|rft)\.[A-Za-z0-9_-]{8}", text + done.stdout + done.stderr)  # no emulator token
    assert str(tmp_path) not in text and str(ROOT) not in text   # no machine path on the page
    assert "watchfolder run" in done.stdout   # the table is printed too
    assert not work.exists()


def test_a_page_never_shows_a_token(tmp_path: Path) -> None:
    """The curl command line the page shows hides the upload URL, whose query holds an upload token, and the
    folder of the chunk files (the page speaks of the project, not of one machine)."""
    from bench.uploads import shown_curl

    command = ["curl", "--silent", "--upload-file", "/somewhere/chunks/chunk-0000", "-H", "Expect:",
               "http://127.0.0.1:1/video?upload_id=abc&upload_token=SECRET", "--next", "--upload-file", "chunk-0001"]

    shown = shown_curl(command, 2)

    assert "SECRET" not in shown and "'UPLOAD_URL'" in shown and "2 in all" in shown
    assert "/somewhere" not in shown and " chunk-0000 " in shown   # no machine path on the page


def test_a_run_of_some_benchmarks_puts_its_sections_into_the_page_and_keeps_the_others() -> None:
    """``--only`` replaces the sections it ran (and their summary rows and missed goals), adds new ones in
    number order, says which run measured them, and leaves every other figure as it was."""
    from bench import report
    from bench.report import Figure, Section

    def page(sections: list[Section]) -> str:
        return report.markdown(sections, machine="M1", tools="t", command="python -m bench", seconds=60, load="0")

    old = page([Section(1, "One", "c1", [Figure("f1", "1", "≥ 2", report.MISSED, "why 1")], ["body 1"]),
                Section(3, "Three", "c3", [Figure("f3", "3", "≥ 4", report.MISSED, "why 3")], ["body 3"])])
    new = [Section(3, "Three", "c3", [Figure("f3", "5", "≥ 4", report.MET, "fine")], ["body 3 again"]),
           Section(9, "Nine", "c9", [Figure("f9", "0.8", "≥ 0.9", report.MISSED, "why 9")], ["body 9"])]

    text = report.splice(old, new, machine="M2", command="python -m bench --only x", seconds=60, load="1")

    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        "## Summary", "## 1. One", "## 3. Three", "## 9. Nine", "## Goals missed"]
    assert [line.split(" | ")[:3] for line in text.splitlines() if re.match(r"\| \d \| ", line)] == [
        ["| 1", "f1", "1"], ["| 3", "f3", "5"], ["| 9", "f9", "0.8"]]
    assert "body 1" in text and "body 3 again" in text and "body 3\n" not in text
    assert "- 1. **f1**" in text and "- 9. **f9**" in text and "- 3. **f3**" not in text
    assert text.count("Measured by `python -m bench --only x` on M2") == 2 and "- **Machine:** M1" in text


def test_the_fsync_count_takes_each_call_once_in_its_window_and_sorts_it_by_what_it_flushed(tmp_path: Path) -> None:
    """strace's ``-f -ttt -y`` lines: a call another thread interrupted (``<unfinished ...>``) counts once, calls
    outside the window not at all, and each is put under what its descriptor names, without the machine path."""
    from bench.fsyncs import flushes, kind

    state = tmp_path / "state"
    done = tmp_path / "tiktok" / "alice" / "done"
    done.mkdir(parents=True)
    state.mkdir()
    trace = tmp_path / "strace.txt"
    trace.write_text("\n".join([
        f"100 1000.000001 fdatasync(5<{state}/watchfolder.sqlite3-wal>) = 0",          # before the window
        f"101 1001.000001 fdatasync(5<{state}/watchfolder.sqlite3-wal> <unfinished ...>",
        f"102 1001.000002 fsync(7<{done}/.sidecar-abc.tmp>) = 0",
        "101 1001.000003 <... fdatasync resumed>) = 0",
        f"102 1001.000004 fsync(8<{done}>) = 0",
        f"100 1001.000005 fsync(6<{state}/watchfolder.sqlite3>) = 0",
        "100 1001.000006 +++ exited with 0 +++",
        f"100 1003.000000 fsync(8<{done}>) = 0",                                       # after it
    ]) + "\n", encoding="utf-8")

    calls = flushes(trace, 1001.0, 1002.0)

    assert [call for call, _ in calls] == ["fdatasync", "fsync", "fsync", "fsync"]
    kinds = [kind(path, state) for _, path in calls]
    assert kinds == ["SQLite WAL (durable commits, checkpoints)", "sidecar (temp file before its rename)",
                     "a done/ folder (after a rename or a sidecar)", "SQLite database file (checkpoints)"]
    assert not any(str(tmp_path) in text for text in kinds)

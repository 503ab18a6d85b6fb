"""``python -m bench``: run the benchmarks against the emulator on loopback, print the table, write the page.

    python -m bench                         all of them (about 35 minutes on 2 cores), writes docs/benchmarks.md
    python -m bench --only throughput,idle  some of them (idle needs the backlog's 10,000 done files: it
                                            runs the backlog first; it idles 12 minutes)
    python -m bench --smoke                 every benchmark with tiny sizes, in seconds (proves the code runs;
                                            writes nothing unless --out is given)

Names: throughput (1 and 6), memory (2), latency (3), backlog (4), idle (5), probe (7: the media probe per
file, a second), page (8: the status page's bytes and server time with 10,000 items), wan (9: the share of a
simulated uplink, namespaces + tc tbf where allowed; a few minutes), processing (10: 20 videos with 30 s of
TikTok processing each through one account, about 4 minutes), fsyncs (11: flush calls per item, counted
with strace). Scratch files go to bench/out/ (or
--work) and big ones are deleted after each benchmark.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench import backlog, fsyncs, idle, latency, memory, page, probe, processing, report, throughput, wan
from bench.rig import Context

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS: dict[str, Callable[[Context], list[report.Section]]] = {
    "throughput": throughput.run,
    "memory": memory.run,
    "latency": latency.run,
    "backlog": backlog.run,
    "idle": idle.run_idle,
    "probe": probe.run,
    "page": page.run,
    "wan": wan.run,
    "processing": processing.run,
    "fsyncs": fsyncs.run,
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated names: " + ", ".join(BENCHMARKS))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that every benchmark runs")
    parser.add_argument("--out", type=Path, help="the page to write (default docs/benchmarks.md; none with --smoke)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "run", help="scratch folder")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder afterwards")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if "idle" in names and "backlog" not in names:
        names.insert(names.index("idle"), "backlog")
    args.names = [name for name in BENCHMARKS if name in names]
    if args.out is None and not args.smoke:
        args.out = ROOT / "docs" / "benchmarks.md"
    return args


def _interrupted(number: int, frame: FrameType | None) -> None:
    # SIGTERM as Ctrl-C: the benchmarks' finally blocks stop the daemons and emulators they started.
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    ctx = Context(work=args.work, smoke=args.smoke, say=lambda text: print(f"· {text}", file=sys.stderr, flush=True))
    started, load = time.monotonic(), report.load_average()
    sections: list[report.Section] = []
    for name in args.names:
        ctx.say(f"{name} …")
        begun = time.monotonic()
        try:
            found = BENCHMARKS[name](ctx)
        except Exception:
            # Keep what was measured, and the scratch folder with its logs, to look at.
            print(report.console_table(sections), file=sys.stderr)
            raise
        for section in found:
            section.seconds = time.monotonic() - begun
            sections.append(section)
        ctx.say(f"{name}: {time.monotonic() - begun:.0f} s")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    seconds = time.monotonic() - started
    sections.sort(key=lambda section: section.number)
    print(report.console_table(sections))
    print(f"\n{report.machine_line()}; {seconds:.0f} s in all")
    if args.out is not None:
        shown = "python -m bench" + (f" --only {','.join(args.names)}" if args.only else "") + \
            (" --smoke" if args.smoke else "")
        if args.only and args.out.exists():
            # Some benchmarks only: put their sections into the page, keep the others' figures.
            text = report.splice(args.out.read_text(encoding="utf-8"), sections, machine=report.machine_line(),
                                 command=shown, seconds=seconds, load=load)
        else:
            text = report.markdown(sections, machine=report.machine_line(), tools=report.tool_versions(),
                                   command=shown, seconds=seconds, load=load)
        report.write(args.out, text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

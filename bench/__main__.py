"""`python -m bench`: run the benchmarks and print one table (see --help for sizes and cases)."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
from pathlib import Path

from bench.cases import (
    Row,
    Sizes,
    bare_encode_seconds,
    crowd,
    midjourney_polling,
    replica_notices,
    startup,
    tail_latency,
    text_throughput,
    voice_overhead,
)

CASES = ("voice", "tail", "crowd", "text", "midjourney", "startup", "replicas")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--voice-turns", type=int, default=Sizes.voice_turns)
    parser.add_argument("--users", type=int, default=Sizes.users, help="people sending a voice note at once")
    parser.add_argument("--latency", type=float, default=Sizes.latency, help="seconds per gateway call (crowd)")
    parser.add_argument("--texts", type=int, default=Sizes.texts)
    parser.add_argument("--text-users", type=int, default=Sizes.text_users)
    parser.add_argument("--mj-tasks", type=int, default=Sizes.mj_tasks)
    parser.add_argument("--mj-interval", type=float, default=Sizes.mj_interval)
    parser.add_argument("--mj-window", type=float, default=Sizes.mj_window, help="seconds of polling measured")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, its numbers mean little")
    return parser.parse_args()


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), "")  # fmt: skip
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores {model}, Python {platform.python_version()}"


def verdict(value: str, goal: str) -> str:
    """met / not met, comparing the value's first number with the goal's ("<= 1.3", "< 300", "0", "3 (…)")."""
    wanted = re.match(r"\s*(<=|<)?\s*([\d.]+)", goal)
    measured = re.search(r"-?[\d.]+", value)
    if not goal or wanted is None or measured is None:
        return ""
    operator, limit, got = wanted.group(1), float(wanted.group(2)), float(measured.group())
    met = got <= limit if operator == "<=" else got < limit if operator == "<" else abs(got - limit) < 0.05
    return "met" if met else "NOT MET"


def table(rows: list[Row]) -> str:
    header = ("case", "measure", "value", "goal", "")
    lines_of = [header, *((*row, verdict(row[2], row[3])) for row in rows)]
    widths = [max(len(row[i]) for row in lines_of) for i in range(5)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in lines_of]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


async def main() -> int:
    args = parse()
    sizes = Sizes(args.voice_turns, args.users, args.latency, args.texts, args.text_users, args.mj_tasks,
                  args.mj_interval, args.mj_window)  # fmt: skip
    if args.quick:
        sizes = Sizes(voice_turns=3, users=4, latency=0.2, texts=20, text_users=4, mj_tasks=5,
                      mj_interval=0.5, mj_window=2.0)  # fmt: skip
    chosen = [case.strip() for case in args.cases.split(",") if case.strip()]
    unknown = set(chosen) - set(CASES)
    if unknown:
        print(f"unknown cases: {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}", flush=True)
    encode = bare_encode_seconds()
    rows: list[Row] = []
    for case in chosen:
        print(f"running {case}…", file=sys.stderr, flush=True)
        if case == "voice":
            rows += await voice_overhead(sizes, encode)
        elif case == "tail":
            rows += await tail_latency(sizes, encode)
        elif case == "crowd":
            rows += await crowd(sizes, encode)
        elif case == "text":
            rows += await text_throughput(sizes)
        elif case == "midjourney":
            rows += await midjourney_polling(sizes)
        elif case == "replicas":
            rows += await replica_notices(20 if args.quick else 200)
        else:
            rows += await startup(1 if args.quick else 3)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

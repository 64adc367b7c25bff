"""`python -m bench --quick` runs end to end and prints its table; the timings themselves are not judged here."""

from __future__ import annotations

import subprocess
import sys

from testkit.bot_process import PROJECT_ROOT


def test_the_benchmark_runs_and_prints_every_case() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for case in ("voice turn", "tail", "many at once", "text", "midjourney", "start-up", "replicas"):
        assert case in table
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines() if "|" in line}
    assert rows["errors"] == "0"  # every voice note of the crowd was answered with a voice message
    assert rows["ids per call (largest)"] == "5"  # all five pending tasks asked for in one call

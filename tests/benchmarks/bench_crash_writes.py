"""Crash-safe writes, full size: SIGKILL of the CLI at 50 random moments during render and write.

Run: python -m tests.benchmarks.bench_crash_writes [KILLS]
Prints how many kills left nothing, a partial folder, or a finished one, and any broken file.
"""
from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

from bridge.client import EngineProcess
from tests.bridge.crash_writes import kill_cli_at_random


def main() -> int:
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rng = random.Random(50)
    empty = partial = finished = 0
    broken: list[str] = []
    with EngineProcess() as engine, tempfile.TemporaryDirectory() as tmp:
        for index in range(kills):
            verdict = kill_cli_at_random(engine.target, Path(tmp) / f"clip{index}", rng, longest=3.0)
            broken += verdict.broken
            finished += verdict.files >= 8
            partial += 0 < verdict.files < 8
            empty += verdict.files == 0
    print(f"{kills} SIGKILLs of `cadenza generate`: {empty} left no file, {partial} a partial folder, "
          f"{finished} a finished clip; broken files: {len(broken)}")
    for line in broken:
        print("  broken:", line)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

"""Engine cold start with the text model: process start -> SERVING, then the first Describe.

The engine loads all-MiniLM-L6-v2 in a background thread at start, so SERVING should not wait
for it (budget: <= 3 s); the first Describe does wait for the model if it is still loading.
Run on an idle machine:  python tests/benchmarks/bench_cold_start.py [RUNS]
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bridge.client import EngineClient, EngineProcess  # noqa: E402

PROMPT = "Funky disco groove at 118 BPM in E minor with slap bass, rhythm guitar and drums, 8 bars"


def one_run() -> tuple[float, float, float]:
    began = time.perf_counter()
    with EngineProcess() as process, EngineClient(process.target) as client:
        client.check(timeout=30)
        serving = time.perf_counter() - began
        t = time.perf_counter()
        client.describe(PROMPT)
        first = time.perf_counter() - t
        t = time.perf_counter()
        client.describe(PROMPT + " with strings")
        warm = time.perf_counter() - t
    return serving, first, warm


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = [one_run() for _ in range(runs)]
    for i, (serving, first, warm) in enumerate(results, 1):
        print(f"run {i}: start -> SERVING {serving:.2f} s, first Describe {first:.2f} s, "
              f"next Describe {warm * 1000:.0f} ms")
    print(f"median: start -> SERVING {statistics.median(r[0] for r in results):.2f} s, "
          f"first Describe {statistics.median(r[1] for r in results):.2f} s, "
          f"start -> first Describe answered {statistics.median(r[0] + r[1] for r in results):.2f} s, "
          f"next Describe {statistics.median(r[2] for r in results) * 1000:.0f} ms")


if __name__ == "__main__":
    main()

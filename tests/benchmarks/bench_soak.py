"""Soak, full size: an hour (or argv[1] seconds) of mixed requests from 4 clients.

Run: python tests/benchmarks/bench_soak.py [SECONDS]
Prints request count, errors, p99 latency per third of the run and its drift, and the
engine's RSS, file descriptors and threads after warm-up and at the end.
"""
from __future__ import annotations

import sys

from tests.engine.soak import soak


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3600.0
    result = soak(seconds, clients=4)
    thirds = [result.p99(k * seconds / 3, (k + 1) * seconds / 3) for k in range(3)]
    warm = next(s for s in result.samples if s.at >= seconds / 3)
    last = result.samples[-1]
    print(f"soak {seconds:.0f} s, 4 clients: {len(result.latencies)} requests, {len(result.errors)} errors")
    print("p99 latency by third: " + ", ".join(f"{p:.3f} s" for p in thirds)
          + f"; drift last vs first {100 * (thirds[2] - thirds[0]) / thirds[0]:+.1f}%")
    middle, end = result.rss_median(seconds / 3, 2 * seconds / 3), result.rss_median(2 * seconds / 3, 2 * seconds)
    print(f"RSS median middle third {middle:.0f} -> last third {end:.0f} KiB ({100 * (end - middle) / middle:+.1f}%; "
          f"first warm sample {warm.rss_kib}, last {last.rss_kib}), "
          f"fds {warm.fds} -> {last.fds}, threads {warm.threads} -> {last.threads}")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())

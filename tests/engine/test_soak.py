"""Soak, CI size: 60 s of mixed requests from 4 clients (CADENZA_SOAK_SECONDS changes it).
Nothing fails, and after warm-up the engine's memory grows under 10% with no leaked file
descriptors or threads. Latency drift is printed here and judged by the benchmark."""
from __future__ import annotations

import os

from tests.engine.soak import soak

SECONDS = float(os.environ.get("CADENZA_SOAK_SECONDS", "60"))


def test_soak_mixed_requests_leak_no_memory_fds_or_threads():
    result = soak(SECONDS, clients=4)
    assert not result.errors, result.errors[:5]
    assert len(result.latencies) > 20
    warm = [s for s in result.samples if s.at >= SECONDS / 3]
    first, last = warm[0], result.samples[-1]
    growth = (last.rss_kib - first.rss_kib) / first.rss_kib
    print(f"\n{len(result.latencies)} requests; RSS {first.rss_kib} -> {last.rss_kib} KiB ({100 * growth:+.1f}%), "
          f"fds {first.fds} -> {last.fds}, threads {first.threads} -> {last.threads}; p99 first third "
          f"{result.p99(0, SECONDS / 3):.3f} s, last third {result.p99(2 * SECONDS / 3, SECONDS):.3f} s")
    assert growth < 0.10
    assert last.fds <= first.fds + 2
    assert last.threads <= first.threads + 2

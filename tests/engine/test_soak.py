"""Soak, CI size: 60 s of mixed requests from 4 clients (CADENZA_SOAK_SECONDS changes it).
Nothing fails; after warm-up (the first third) the engine's memory grows under 10% from the
middle third to the last (medians of the samples, so one allocator high-water mark does not
decide), with no leaked file descriptors or threads. Latency drift is printed here and judged
by the benchmark."""
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
    middle, end = result.rss_median(SECONDS / 3, 2 * SECONDS / 3), result.rss_median(2 * SECONDS / 3, 2 * SECONDS)
    growth = (end - middle) / middle
    print(f"\n{len(result.latencies)} requests; RSS median {middle:.0f} -> {end:.0f} KiB ({100 * growth:+.1f}%), "
          f"fds {first.fds} -> {last.fds}, threads {first.threads} -> {last.threads}; p99 first third "
          f"{result.p99(0, SECONDS / 3):.3f} s, last third {result.p99(2 * SECONDS / 3, SECONDS):.3f} s")
    assert growth < 0.10
    assert last.fds <= first.fds + 2
    assert last.threads <= first.threads + 2

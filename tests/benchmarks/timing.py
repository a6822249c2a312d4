"""Wall-clock timing shared by the benchmarks."""
from __future__ import annotations

import time
from collections.abc import Callable


def timed(call: Callable[[], object], runs: int) -> list[float]:
    """Seconds each of ``runs`` calls took."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds

"""What the benchmarks share: wall-clock timing, percentiles, and the 8-bar 4-part clip they time."""
from __future__ import annotations

import time
from collections.abc import Callable

from engine.music.spec import MusicSpec, Part
from engine.music.theory import Key, Meter

# The benchmark clip: 8 bars of 4/4 in A minor at 120 BPM, four parts (keys, bass, drums, lead).
PARTS = [Part("piano", "keys", "Acoustic Grand Piano", 0, False, 21, 108),
         Part("bass", "bass", "Electric Bass (finger)", 33, False, 28, 67),
         Part("drums", "drums", "Standard Kit", 0, True, 35, 81),
         Part("lead", "melody", "Lead 1 (square)", 80, False, 48, 96)]


def spec(seed: int, style: str) -> MusicSpec:
    """The benchmark clip's spec in ``style`` with ``seed``."""
    return MusicSpec(prompt="benchmark", tempo_bpm=120.0, key=Key("A", "minor"), meter=Meter(4, 4), bars=8,
                     start_bar=1, parts=PARTS, style=style, mood="neutral", arc="steady", swing=False, seed=seed)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(call: Callable[[], object], runs: int) -> list[float]:
    """Seconds each of ``runs`` calls took."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds

"""The learning-rate schedule every Cadenza model trains with: a linear warm-up, then a cosine
from the peak rate down to a floor (nanoGPT's)."""
from __future__ import annotations

import math


def warmup_cosine(step: int, warmup_steps: int, done: float, peak: float, floor: float) -> float:
    """The rate for ``step`` (counted from 0): rising linearly over ``warmup_steps``, then falling
    from ``peak`` to ``floor`` as ``done`` (the share of the run after warm-up, 0-1) grows."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(1.0, max(0.0, done))))

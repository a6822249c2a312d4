"""Every request field's accepted range as one table, and the one check that reads it.

mido's message specs are the model: the ranges are data, the check is one function, and the
error quotes the table, so what a user reads is what the code enforces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.config import (
    BARS_MAX,
    BARS_MIN,
    SEED_MAX,
    START_BAR_MAX,
    START_BAR_MIN,
    TEMPO_MAX_BPM,
    TEMPO_MIN_BPM,
)
from engine.errors import SpecError


@dataclass(frozen=True)
class Range:
    """What a field accepts: a number of ``kind`` from ``low`` to ``high`` inclusive."""

    label: str
    kind: type
    low: float
    high: float
    unit: str = ""


FIELDS: dict[str, Range] = {
    "tempo_bpm": Range("tempo", float, TEMPO_MIN_BPM, TEMPO_MAX_BPM, " BPM"),
    "bars": Range("bars", int, BARS_MIN, BARS_MAX),
    "start_bar": Range("start bar", int, START_BAR_MIN, START_BAR_MAX),
    "seed": Range("seed", int, 0, SEED_MAX),
}


def check(name: str, value: float, field: str | None = None) -> float:
    """``value`` as the field's kind if the table accepts it; else SpecError naming ``field`` and the range."""
    spec = FIELDS[name]
    field = field or name
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(field, f"{spec.label} must be a number, got {type(value).__name__}")
    accepted = f"{spec.low:g}-{spec.high:g}{spec.unit}" if spec.kind is float else f"{int(spec.low)}-{int(spec.high)}"
    if not math.isfinite(value) or not spec.low <= value <= spec.high:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        raise SpecError(field, f"{spec.label} must be {accepted}, got {shown}")
    if spec.kind is int and value != int(value):
        raise SpecError(field, f"{spec.label} must be a whole number {accepted}, got {value:g}")
    return spec.kind(value)

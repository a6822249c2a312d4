"""MusicSpec: the fully resolved request that flows from understand to compose.

Every field records where its value came from, so a user can always ask "what did
you understand?" and see which words (or which DAW setting) decided it.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field

from engine.theory import Key, Meter


class Source(enum.StrEnum):
    """Where a resolved field's value came from."""

    EXPLICIT = "explicit"  # said in the prompt or given as an override
    CONTEXT = "context"    # taken from the DAW session
    INFERRED = "inferred"  # inferred from the text
    DEFAULT = "default"    # the embedded default


@dataclass(frozen=True)
class Part:
    """One track of the clip: what plays it and what it does."""

    name: str
    role: str        # melody, chords, bass, drums, pad
    instrument: str  # General MIDI instrument name
    program: int     # General MIDI program 0-127
    is_drum: bool
    low: int         # playable pitch range, inclusive
    high: int


@dataclass
class MusicSpec:
    """What was asked, fully resolved; ``sources`` maps each field name to its Source."""

    prompt: str
    tempo_bpm: float
    key: Key
    meter: Meter
    bars: int
    start_bar: int
    parts: list[Part]
    style: str
    mood: str
    arc: str
    swing: bool
    seed: int
    energy: float = 0.5  # 0 calm and sparse .. 1 intense and driving, judged from the prompt's meaning
    quantize: bool = False  # True: every drum hit exactly on its grid step (default: the model's micro-timing)
    sources: dict[str, Source] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Length of the clip in seconds at its tempo."""
        return self.bars * self.meter.quarters_per_bar * 60.0 / self.tempo_bpm

    def to_json(self) -> dict:
        """A plain dict for spec.json and `cadenza describe --json`."""
        data = asdict(self)
        data["key"] = str(self.key)
        data["meter"] = str(self.meter)
        data["sources"] = {name: source.value for name, source in self.sources.items()}
        return data

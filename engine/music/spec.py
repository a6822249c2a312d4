"""MusicSpec: the fully resolved request that flows from understand to compose.

Every field records where its value came from, so a user can always ask "what did
you understand?" and see which words (or which DAW setting) decided it.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field

from engine.errors import SpecError
from engine.music.theory import Key, Meter


class Source(enum.StrEnum):
    """Where a resolved field's value came from."""

    EXPLICIT = "explicit"  # said in the prompt or given as an override
    CONTEXT = "context"    # taken from the DAW session
    INFERRED = "inferred"  # inferred from the text
    DEFAULT = "default"    # the embedded default


class Role(enum.StrEnum):
    """What a part does in the clip; every part has exactly one."""

    MELODY = "melody"  # the tune
    CHORDS = "chords"  # comping: chords in the style's rhythm
    KEYS = "keys"      # a keyboard part voicing the model's inner voices (both hands)
    PAD = "pad"        # sustained harmony
    BASS = "bass"
    DRUMS = "drums"


@dataclass(frozen=True)
class Part:
    """One track of the clip: what plays it and what it does."""

    name: str
    role: Role       # a Role; a plain string naming one is accepted and converted
    instrument: str  # General MIDI instrument name
    program: int     # General MIDI program 0-127
    is_drum: bool
    low: int         # playable pitch range, inclusive
    high: int

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "role", Role(self.role))
        except ValueError:
            raise SpecError("role", f"{self.role!r} is not a role; accepted: "
                                    f"{', '.join(r.value for r in Role)}") from None


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
    quantize: bool = False  # True: every note exactly on its grid step (default: learned micro-timing, all parts)
    chords: list[str] = field(default_factory=list)  # a progression asked for, one chord per bar (repeated)
    sources: dict[str, Source] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Length of the clip in seconds at its tempo."""
        return self.bars * self.meter.quarters_per_bar * 60.0 / self.tempo_bpm

    def to_json(self) -> dict:
        """The spec as spec.json holds it (the one JSON shape): the proto's field names, sources as words."""
        data = asdict(self)
        data["key"] = {"tonic": self.key.tonic, "mode": self.key.mode}
        data["meter"] = {"numerator": self.meter.numerator, "denominator": self.meter.denominator}
        data["sources"] = {name: Source(source).value for name, source in self.sources.items()}
        return data

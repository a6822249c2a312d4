"""The generator's token vocabulary: MidiTok REMI with programs, plus conditioning tokens.

Music is MidiTok 3.1 REMI in one stream with programs: per bar ``Bar TimeSig`` and then
``Position Program Pitch Duration`` (more ``Program Pitch Duration`` for notes at the same
position). Programs are *voice slots*, not General MIDI sounds: 0 the melody (top voice),
1 and 2 the inner voices, 3 the bass. Compose maps slots onto the spec's parts. This keeps
bar and track infilling possible later (a bar is a span between Bar tokens, a track is a slot).

The conditioning prefix says what is asked, one token each:
``BOS Style Tonic Mode TimeSig Tempo Density Bars Slot...`` then the music, then ``EOS``.
Its tokens are appended after MidiTok's vocabulary; their names live in the checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from engine.music.theory import MODES, Key, Meter

SLOTS = 4
SLOT_NAMES = ("melody", "upper", "lower", "bass")
# Where each voice slot sits when nothing narrower is asked (inclusive MIDI pitches).
SLOT_REGISTER = ((60, 84), (53, 77), (45, 69), (34, 62))
STYLES = ("chorale", "folk", "celtic", "renaissance", "classical", "user")
TEMPO_EDGES = (70.0, 95.0, 120.0, 150.0)  # buckets: <70, 70-95, 95-120, 120-150, >=150
DENSITIES = 4
MAX_BARS_TOKEN = 32
POSITIONS_PER_BEAT = 4

# MidiTok TokenizerConfig arguments (saved in the checkpoint with the weights).
TOKENIZER_PARAMS: dict = {
    "pitch_range": (21, 109),
    "beat_res": {(0, 4): POSITIONS_PER_BEAT, (4, 12): 2},
    "use_velocities": False,
    "use_programs": True,
    "one_token_stream_for_programs": True,
    "programs": list(range(SLOTS)),
    "use_time_signatures": True,
    "time_signature_range": {2: list(range(1, 9)), 4: list(range(1, 13)), 8: list(range(1, 17)),
                             16: list(range(1, 17))},
    "use_tempos": False,
    "use_chords": False,
    "use_rests": False,
    "special_tokens": ["PAD", "BOS", "EOS"],
    "remove_duplicated_notes": True,
}


def condition_names() -> list[str]:
    """Every conditioning token, in vocabulary order."""
    names = [f"Style_{s}" for s in STYLES]
    names += [f"Tonic_{pc}" for pc in range(12)]
    names += [f"Mode_{m}" for m in MODES]
    names += [f"Tempo_{i}" for i in range(len(TEMPO_EDGES) + 1)] + ["Tempo_unknown"]
    names += [f"Density_{i}" for i in range(DENSITIES)]
    names += [f"Bars_{n}" for n in range(1, MAX_BARS_TOKEN + 1)]
    names += [f"Slot_{s}" for s in range(SLOTS)]
    return names


def build_tokenizer(params: dict | None = None):
    """The MidiTok REMI tokenizer for ``params`` (default: TOKENIZER_PARAMS)."""
    from miditok import REMI, TokenizerConfig

    return REMI(TokenizerConfig(**(params or TOKENIZER_PARAMS)))


def tempo_bucket(bpm: float | None) -> str:
    """The Tempo_ token for a tempo."""
    if bpm is None:
        return "Tempo_unknown"
    return f"Tempo_{int(np.searchsorted(TEMPO_EDGES, bpm, side='right'))}"


def density_level(notes_per_beat_per_voice: float) -> int:
    """0 sparse (under one note every 1.3 beats) .. 3 busy (two or more notes a beat)."""
    return int(np.searchsorted((0.75, 1.25, 2.0), notes_per_beat_per_voice, side="right"))


@dataclass
class Vocab:
    """MidiTok's vocabulary plus the conditioning tokens, and lookups the decoder needs."""

    tokenizer: object
    conditions: list[str] = field(default_factory=condition_names)

    @cached_property
    def base(self) -> dict[str, int]:
        return dict(self.tokenizer.vocab)

    @property
    def size(self) -> int:
        return len(self.base) + len(self.conditions)

    def id(self, name: str) -> int:
        """Token id of a MidiTok token or conditioning token name."""
        if name in self.base:
            return self.base[name]
        try:
            return len(self.base) + self.conditions.index(name)
        except ValueError:
            raise KeyError(f"no token {name!r} in the vocabulary") from None

    @cached_property
    def names(self) -> list[str]:
        names = [""] * self.size
        for name, i in self.base.items():
            names[i] = name
        for k, name in enumerate(self.conditions):
            names[len(self.base) + k] = name
        return names

    def _values(self, prefix: str, parse) -> np.ndarray:
        """Per token id: the parsed value of tokens named prefix_value, else -1."""
        out = np.full(self.size, -1, dtype=np.int64)
        for i, name in enumerate(self.names):
            if name.startswith(prefix + "_"):
                out[i] = parse(name[len(prefix) + 1:])
        return out

    @cached_property
    def pitch_of(self) -> np.ndarray:
        return self._values("Pitch", int)

    @cached_property
    def position_of(self) -> np.ndarray:
        return self._values("Position", int)

    @cached_property
    def program_of(self) -> np.ndarray:
        return self._values("Program", int)

    @cached_property
    def duration_beats(self) -> np.ndarray:
        """Per token id: a Duration token's length in beats (of the meter's beat), else 0."""
        out = np.zeros(self.size)
        for i, name in enumerate(self.names):
            if name.startswith("Duration_"):
                beats, sub, res = (int(x) for x in name[len("Duration_"):].split("."))
                out[i] = beats + sub / res
        return out

    @cached_property
    def tonic_of(self) -> np.ndarray:
        return self._values("Tonic", int)

    def time_signature(self, meter: Meter) -> int:
        """The TimeSig token of a meter; KeyError naming the meters the model can write."""
        name = f"TimeSig_{meter.numerator}/{meter.denominator}"
        if name not in self.base:
            raise KeyError(f"the model cannot write meter {meter}: accepted are N/2 (N 1-8), N/4 (1-12), "
                           f"N/8 and N/16 (1-16)")
        return self.base[name]

    @property
    def bar(self) -> int:
        return self.base["Bar_None"]

    @property
    def bos(self) -> int:
        return self.base["BOS_None"]

    @property
    def eos(self) -> int:
        return self.base["EOS_None"]

    @property
    def pad(self) -> int:
        return self.base["PAD_None"]

    def prefix(self, style: str, key: Key, meter: Meter, tempo_bpm: float | None, density: int, bars: int,
               slots: list[int]) -> list[int]:
        """The conditioning prefix for a request."""
        return [self.bos, self.id(f"Style_{style}"), self.id(f"Tonic_{key.tonic_pc}"), self.id(f"Mode_{key.mode}"),
                self.time_signature(meter), self.id(tempo_bucket(tempo_bpm)), self.id(f"Density_{density}"),
                self.id(f"Bars_{min(max(1, bars), MAX_BARS_TOKEN)}")] + [self.id(f"Slot_{s}") for s in sorted(slots)]

"""Pitch names, modes, scales and meters: the music theory the other stages share.

Pure functions over small values; no I/O. Keys are parsed from the ways people write
them ("F# minor", "F#m", "Bb", "C sharp minor", "D dorian"); meters from "7/4".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from engine.config import METER_DENOMINATORS, METER_NUMERATOR_MAX, TICKS_PER_QUARTER
from engine.errors import SpecError

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Semitone steps of each mode from its tonic.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
}
MODE_ALIASES = {
    "maj": "major", "ionian": "major", "m": "minor", "min": "minor", "aeolian": "minor",
    "dor": "dorian", "phryg": "phrygian", "lyd": "lydian", "mixo": "mixolydian",
    "mix": "mixolydian",
}
ACCEPTED_KEYS = "a tonic A-G with an optional #/b (or 'sharp'/'flat') and a mode: " + ", ".join(MODES)

# Spelling of each pitch class for flat and sharp keys.
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Major-key tonic pitch classes conventionally spelled with flats.
_FLAT_MAJOR_PCS = {5, 10, 3, 8, 1, 6}
# Offset from a mode's tonic to its relative major's tonic.
_RELATIVE_MAJOR = {"major": 0, "minor": 3, "dorian": 10, "phrygian": 8, "lydian": 7,
                   "mixolydian": 5, "locrian": 1}

_KEY_RE = re.compile(
    r"^\s*([A-Ga-g])[\s-]*(#|♯|sharp\b|flat\b|b|♭)?\s*(.*?)\s*$"
)


@dataclass(frozen=True)
class Key:
    """A tonic and a mode, e.g. Key("F#", "minor")."""

    tonic: str
    mode: str

    @property
    def tonic_pc(self) -> int:
        return pitch_class(self.tonic)

    def scale_pcs(self) -> tuple[int, ...]:
        """Pitch classes of the scale, tonic first."""
        return tuple((self.tonic_pc + step) % 12 for step in MODES[self.mode])

    def fifths(self) -> int:
        """Sharps (positive) or flats (negative) of the key signature of the relative major."""
        major_pc = (self.tonic_pc + _RELATIVE_MAJOR[self.mode]) % 12
        fifths = (major_pc * 7) % 12
        if fifths > 6 or (fifths == 6 and "b" in self.tonic):
            fifths -= 12
        return fifths

    def __str__(self) -> str:
        return f"{self.tonic} {self.mode}"


@dataclass(frozen=True)
class Meter:
    """A time signature; ``quarters_per_bar`` is what the beat grid needs."""

    numerator: int
    denominator: int

    @property
    def quarters_per_bar(self) -> float:
        return self.numerator * 4.0 / self.denominator

    def bar_ticks(self, ticks_per_quarter: int = TICKS_PER_QUARTER) -> int:
        """Length of one bar in ticks (the one place this is computed)."""
        return self.numerator * 4 * ticks_per_quarter // self.denominator

    def beat_ticks(self, ticks_per_quarter: int = TICKS_PER_QUARTER) -> int:
        """Length of one beat (a denominator unit) in ticks."""
        return ticks_per_quarter * 4 // self.denominator

    @property
    def group_starts(self) -> tuple[int, ...]:
        """The beats (0-based, in denominator units) that start a beat group: the strong beats.

        Simple meters: every beat; compound (6/8, 9/8, 12/8): every third; odd eighth meters
        group in twos with a three last (5/8 = 2+3, 7/8 = 2+2+3).
        """
        n = self.numerator
        if self.denominator >= 8 and n % 3 == 0 and n > 3:
            sizes = [3] * (n // 3)
        elif self.denominator >= 8 and n > 3:
            sizes = [2] * ((n - 3) // 2) + [3] * (1 + (n - 3) % 2)
            if sum(sizes) != n:
                sizes = [2] * (n // 2 - 1) + [3]
        else:
            sizes = [1] * n
        starts, at = [], 0
        for size in sizes:
            starts.append(at)
            at += size
        return tuple(starts)

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


def pitch_class(name: str) -> int:
    """Pitch class of a note name such as "C", "F#", "Bb"."""
    pc = _LETTER_PC[name[0].upper()]
    for accidental in name[1:]:
        pc += 1 if accidental in "#♯" else -1 if accidental in "b♭" else 0
    return pc % 12


def spell(pc: int, mode: str) -> str:
    """The conventional spelling of a tonic pitch class in a mode (Bb major, F# minor)."""
    major_pc = (pc + _RELATIVE_MAJOR[mode]) % 12
    names = _FLAT_NAMES if major_pc in _FLAT_MAJOR_PCS else _SHARP_NAMES
    return names[pc % 12]


def normalise_mode(word: str) -> str | None:
    """The canonical mode name for a word, or None if it names no mode."""
    word = word.strip().lower()
    if word in MODES:
        return word
    return MODE_ALIASES.get(word)


def parse_key(text: str, field: str = "key") -> Key:
    """Parse a key name; raise SpecError naming ``field`` if it is not one."""
    match = _KEY_RE.match(text or "")
    if not match:
        raise SpecError(field, f"unknown key {text!r}; accepted: {ACCEPTED_KEYS}")
    letter, accidental, rest = match.groups()
    accidental = accidental or ""
    sign = {"#": "#", "♯": "#", "sharp": "#", "b": "b", "♭": "b", "flat": "b", "": ""}[accidental]
    rest = rest.strip()
    if rest == "":
        mode = "minor" if letter.islower() and len(text.strip()) == 1 else "major"
    else:
        found = normalise_mode(rest)
        if found is None:
            raise SpecError(field, f"unknown key {text!r}; accepted: {ACCEPTED_KEYS}")
        mode = found
    tonic = letter.upper() + sign
    return Key(tonic=tonic, mode=mode)


def parse_meter(text: str, field: str = "meter") -> Meter:
    """Parse "7/4" into a Meter; raise SpecError naming ``field`` if impossible."""
    match = re.fullmatch(r"\s*(\d{1,3})\s*/\s*(\d{1,3})\s*", text or "")
    if not match:
        raise SpecError(field, f"meter must look like 4/4 or 7/8, got {text!r}")
    return check_meter(int(match.group(1)), int(match.group(2)), field)


def check_meter(numerator: int, denominator: int, field: str = "meter") -> Meter:
    """A Meter if numerator is 1-32 and denominator a power of two up to 32."""
    if not 1 <= numerator <= METER_NUMERATOR_MAX or denominator not in METER_DENOMINATORS:
        raise SpecError(
            field,
            f"impossible meter {numerator}/{denominator}; accepted: numerator "
            f"1-{METER_NUMERATOR_MAX} over {', '.join(map(str, METER_DENOMINATORS))}",
        )
    return Meter(numerator, denominator)

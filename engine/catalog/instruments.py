"""The instrument catalogue (engine/catalog/data/instruments.toml) and lookups into it."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from engine.errors import SpecError


@dataclass(frozen=True)
class Instrument:
    """One catalogue entry: a General MIDI sound, its default role, range and names."""

    name: str
    part: str
    program: int
    role: str
    low: int
    high: int
    is_drum: bool
    words: tuple[str, ...]


@lru_cache(maxsize=1)
def catalogue() -> tuple[Instrument, ...]:
    """Every instrument the engine knows, in file order."""
    raw = _load()
    return tuple(
        Instrument(
            name=entry["name"], part=entry["part"], program=entry["program"], role=entry["role"],
            low=entry["range"][0], high=entry["range"][1], is_drum=entry.get("drum", False),
            words=tuple(entry["words"]),
        )
        for entry in raw["instrument"]
    )


def _load() -> dict:
    return tomllib.loads(resources.files("engine.catalog.data").joinpath("instruments.toml").read_text())


@lru_cache(maxsize=1)
def by_word() -> dict[str, Instrument]:
    """Every synonym mapped to its instrument."""
    table: dict[str, Instrument] = {}
    for instrument in catalogue():
        for word in instrument.words:
            table[word.lower()] = instrument
    return table


@lru_cache(maxsize=1)
def ensembles() -> dict[str, tuple[Instrument, ...]]:
    """Ensemble words ("string quartet") mapped to the instruments they stand for."""
    return {
        word: tuple(lookup(name) for name in entry["instruments"])
        for entry in _load().get("ensemble", [])
        for word in entry["words"]
    }


def lookup(word: str) -> Instrument:
    """The instrument a word names; KeyError if none."""
    return by_word()[word.lower()]


def lookup_all(word: str) -> tuple[Instrument, ...]:
    """The instruments a word names: one, or several for an ensemble word."""
    return ensembles().get(word.lower()) or (lookup(word),)


def all_words() -> list[str]:
    """Every instrument and ensemble word."""
    return list(by_word()) + list(ensembles())


# The instrument a part of each role gets when neither the prompt nor the style names one.
ROLE_DEFAULTS = {"melody": "flute", "chords": "piano", "keys": "piano", "pad": "pad", "bass": "bass",
                 "drums": "drums"}


def for_role(role: str) -> Instrument:
    """The default instrument for a role (ROLE_DEFAULTS); SpecError for a role that does not exist."""
    if role not in ROLE_DEFAULTS:
        raise SpecError("role", f"unknown part {role!r}; accepted: {', '.join(ROLE_DEFAULTS)}")
    return lookup(ROLE_DEFAULTS[role])

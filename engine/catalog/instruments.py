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
    keys: tuple[int, ...] = ()  # percussion: the keys (GM percussion map, or pitches of ``program``) it strikes
    pattern: str = ""           # percussion: a 4/4 bar of 16 steps, "1".."9" strike that key of ``keys``, "-" rests
    stand_in: str = ""          # an instrument General MIDI has no program for: what plays it instead
    timeline: bool = False      # percussion: plays the style's timeline (its clave, styles.toml) where it has one

    @property
    def is_percussion(self) -> bool:
        """A hand drum, bell or shaker beside the kit: it strikes its own ``keys`` in its own ``pattern``."""
        return bool(self.keys)


@lru_cache(maxsize=1)
def catalogue() -> tuple[Instrument, ...]:
    """Every instrument the engine knows, in file order."""
    raw = _load()
    return tuple(
        Instrument(
            name=entry["name"], part=entry["part"], program=entry["program"], role=entry["role"],
            low=entry["range"][0], high=entry["range"][1], is_drum=entry.get("drum", False),
            words=tuple(entry["words"]), keys=tuple(entry.get("keys", ())), pattern=entry.get("pattern", ""),
            stand_in=entry.get("stand_in", ""), timeline=bool(entry.get("timeline", False)),
        )
        for entry in raw["instrument"]
    )


@lru_cache(maxsize=1)
def by_part() -> dict[str, Instrument]:
    """Every instrument by its part name ("congas", "taiko")."""
    return {instrument.part: instrument for instrument in catalogue()}


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


@lru_cache(maxsize=1)
def _percussion_by_name() -> dict[str, Instrument]:
    return {instrument.name: instrument for instrument in catalogue() if instrument.is_percussion}


def percussion(name: str) -> Instrument | None:
    """The percussion instrument with this General MIDI-style ``name`` ("Congas", "Taiko Drum"), else None."""
    return _percussion_by_name().get(name)


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

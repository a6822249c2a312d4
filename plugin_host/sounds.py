"""Which source plays each part, from data (plugin_host/data/sounds.toml).

A source is a synthesised voice (``synth:NAME``, plugin_host/synth.py), the best General MIDI
SoundFont on this machine (``bank``) or the one that ships with pretty_midi (``gm``). The choice
follows, first match wins: the request's own choice per part or role, a word of the prompt, the
style, the part's name, else the bank. ``choose`` returns the choice with the reason for it, so
the clip can say what played each part and why.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from plugin_host.synth import Voice

BANK = "bank"
GM = "gm"
SYNTH_PREFIX = "synth:"


class SoundDataError(ValueError):
    """sounds.toml or a requested source is not what is accepted; the message says what is."""


@dataclass(frozen=True)
class Choice:
    """A part's source and why it was chosen (request, word "...", style ..., part, default)."""

    source: str
    reason: str


@lru_cache(maxsize=1)
def _data() -> dict:
    return tomllib.loads(resources.files("plugin_host.data").joinpath("sounds.toml").read_text())


@cache
def voice(name: str) -> Voice:
    """The synth voice ``name`` as sounds.toml defines it."""
    entry = _data().get("voice", {}).get(name)
    if entry is None:
        raise SoundDataError(f"no synth voice {name!r} (accepted: {', '.join(voice_names())})")
    params = tuple(sorted((str(k), float(v)) for k, v in entry.get("params", {}).items()))
    kit = bool(entry.get("kit", False))
    pans = tuple(sorted((int(k), float(v)) for k, v in _data().get("kit_pan", {}).items())) if kit else ()
    return Voice(name=name, dsp=entry["dsp"], kit=kit, voices=int(entry.get("voices", 16)), params=params,
                 description=entry.get("description", ""), pans=pans)


def voice_names() -> tuple[str, ...]:
    return tuple(_data().get("voice", {}))


def sources() -> tuple[str, ...]:
    """Every source a request may name."""
    return (BANK, GM, *(f"{SYNTH_PREFIX}{name}" for name in voice_names()))


def check_source(source: str, field: str = "sound") -> str:
    """``source`` if it is one of ``sources()``, else SoundDataError naming what is accepted."""
    if source not in sources():
        raise SoundDataError(f"{field}: unknown source {source!r} (accepted: {', '.join(sources())})")
    return source


def _words(prompt: str) -> list[str]:
    """The [word] entries whose word occurs in ``prompt`` as a whole word, in the data's order."""
    text = prompt.lower()
    return [word for word in _data().get("word", {})
            if re.search(rf"(?<![\w-]){re.escape(word.lower())}(?![\w-])", text)]


def choose(name: str, role: str, *, style: str | None = None, prompt: str = "",
           requested: dict[str, str] | None = None) -> Choice:
    """The source for part ``name`` playing ``role`` (see the module docstring for the order)."""
    data = _data()
    requested = requested or {}
    for key in (name, role):
        if key in requested:
            return Choice(check_source(requested[key]), "request")
    for word in _words(prompt):
        table = data["word"][word]
        for key in (name, role):
            if key in table:
                return Choice(check_source(table[key], f"word {word}"), f"word {word!r}")
    table = data.get("style", {}).get(style or "", {})
    for key in (name, role):
        if key in table:
            return Choice(check_source(table[key], f"style {style}"), f"style {style}")
    if name in data.get("part", {}):
        return Choice(check_source(data["part"][name], f"part {name}"), "part")
    return Choice(BANK, "default")


def bank_candidates() -> list[Path]:
    """The SoundFont files sounds.toml lists as banks, best first (whether present or not)."""
    return [Path(path).expanduser() for path in _data().get("banks", {}).get("paths", [])]


def find_bank() -> Path | None:
    """The best General MIDI SoundFont present on this machine, or None (then the pretty_midi one plays)."""
    for path in bank_candidates():
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class Treatment:
    """Processing a clip gets when its prompt or style asks: its name and parameters."""

    name: str
    params: tuple[tuple[str, float], ...]

    def get(self, key: str) -> float:
        return dict(self.params)[key]


def treatments(style: str | None, prompt: str = "", requested: tuple[str, ...] | None = None) -> list[Treatment]:
    """The treatments for a clip: those ``requested`` if given, else those the prompt's words or the style ask for."""
    table = _data().get("treatment", {})
    if requested is not None:
        unknown = [name for name in requested if name not in table]
        if unknown:
            raise SoundDataError(f"treatments: unknown {', '.join(unknown)} (accepted: {', '.join(table)})")
        names = list(requested)
    else:
        text = prompt.lower()
        names = [name for name, entry in table.items()
                 if (style or "") in entry.get("styles", [])
                 or any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text) for w in entry.get("words", []))]
    return [Treatment(name, tuple(sorted((k, float(v)) for k, v in table[name].items()
                                         if k not in ("words", "styles")))) for name in names]


def treatment_names() -> tuple[str, ...]:
    return tuple(_data().get("treatment", {}))

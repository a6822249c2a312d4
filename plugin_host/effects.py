"""Per-role effect chains built from pedalboard's built-ins, chosen by style data (data/effects.toml).

The style picks a chain by looking it up, never by an ``if style == ...`` branch: a style that
the data file does not mention gets the role defaults.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pedalboard

from engine.errors import Broken

# The built-ins a chain may name. Anything else in the data file is an error naming this list.
ALLOWED = ("HighpassFilter", "LowpassFilter", "HighShelfFilter", "LowShelfFilter", "PeakFilter", "LadderFilter",
           "Compressor", "Limiter", "NoiseGate", "Gain", "Reverb", "Delay", "Chorus", "Phaser", "Distortion",
           "Bitcrush", "Clipping")
FALLBACK_ROLE = "chords"


class EffectsDataError(Broken, ValueError):
    """effects.toml (or a chain given to ``build_chain``) names something pedalboard cannot build."""


@dataclass(frozen=True)
class RoleMix:
    """How one role sounds in one style: its effect chain (as data) and its stem loudness in the mix."""

    role: str
    level_lufs: float
    effects: tuple[dict, ...]
    pan: float = 0.0


@lru_cache(maxsize=1)
def _data() -> dict:
    return tomllib.loads(resources.files("plugin_host.data").joinpath("effects.toml").read_text())


def roles() -> tuple[str, ...]:
    """The roles the data file has default chains for."""
    return tuple(_data()["role"])


def styles() -> tuple[str, ...]:
    """The styles that change some role's chain."""
    return tuple(_data().get("style", {}))


def role_for_program(program: int, is_drum: bool) -> str:
    """The role a track takes when the request names none: drum channel, else GM program ranges."""
    if is_drum:
        return "drums"
    for role, ranges in _data()["program_roles"].items():
        if any(low <= program <= high for low, high in ranges):
            return role
    return FALLBACK_ROLE


def role_mix(role: str, style: str | None) -> RoleMix:
    """The chain and level for ``role`` in ``style``; unknown roles fall back to the chords chain."""
    data = _data()
    base = data["role"].get(role) or data["role"][FALLBACK_ROLE]
    override = data.get("style", {}).get(style or "", {}).get("role", {}).get(role, {})
    return RoleMix(role=role, level_lufs=float(override.get("level_lufs", base["level_lufs"])),
                   effects=tuple(override.get("effects", base.get("effects", []))),
                   pan=float(override.get("pan", base.get("pan", 0.0))))


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power (left, right) gains for ``pan`` in -1..1, both 1.0 at the centre."""
    if not -1.0 <= pan <= 1.0:
        raise EffectsDataError(f"pan must be -1 (left) to 1 (right), got {pan}")
    angle = (pan + 1.0) * math.pi / 4.0
    return math.sqrt(2.0) * math.cos(angle), math.sqrt(2.0) * math.sin(angle)


def build_chain(effects: tuple[dict, ...] | list[dict], tempo_bpm: float) -> list[pedalboard.Plugin]:
    """pedalboard plugins for a chain given as data; ``delay_beats`` becomes seconds at ``tempo_bpm``."""
    chain = []
    for entry in effects:
        params = dict(entry)
        kind = params.pop("type", None)
        if kind not in ALLOWED:
            raise EffectsDataError(f"effect type {kind!r} is not one of {', '.join(ALLOWED)}")
        if "delay_beats" in params:
            params["delay_seconds"] = float(params.pop("delay_beats")) * 60.0 / tempo_bpm
        if kind == "LadderFilter" and isinstance(params.get("mode"), str):
            params["mode"] = getattr(pedalboard.LadderFilter.Mode, params["mode"])
        try:
            chain.append(getattr(pedalboard, kind)(**params))
        except TypeError as error:
            raise EffectsDataError(f"{kind}: {error}") from None
    return chain

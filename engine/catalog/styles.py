"""The style catalogue (engine/catalog/data/styles.toml): grooves, idioms, tempo ranges as data."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Style:
    """What the arranger needs to know about a style."""

    name: str
    keywords: tuple[str, ...]
    tempo: tuple[float, float]
    core_roles: tuple[str, ...]
    default_parts: tuple[str, ...]
    progressions: tuple[tuple[int, ...], ...]
    swing: bool
    bass_idiom: str
    patterns: dict[str, str]  # kick, snare, hat, ride, bass, comp: 16-step strings for 4/4
    description: str = ""     # what a prompt is compared with (sentence embedding) to pick the style
    sevenths: str = "none"    # comping/pad voicings: "all" chords with their diatonic 7th, "dominant" (V7) only
    part_roles: tuple[tuple[str, str], ...] = ()  # (part, role): a named instrument's role in this style
    drum_genre: str | None = None  # the Groove genre the drum model plays for this style (None: no genre)

    def role_of(self, part: str, default: str) -> str:
        """The role an instrument's part plays in this style (``part_roles``), else its own ``default``."""
        return dict(self.part_roles).get(part, default)

    @property
    def typical_tempo(self) -> float:
        return round((self.tempo[0] + self.tempo[1]) / 2)


_PATTERN_KEYS = ("kick", "snare", "hat", "ride", "bass", "comp")


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Style]:
    """Every style the arranger knows, by name."""
    raw = tomllib.loads(resources.files("engine.catalog.data").joinpath("styles.toml").read_text())
    styles = {}
    for entry in raw["style"]:
        styles[entry["name"]] = Style(
            name=entry["name"],
            keywords=tuple(entry["keywords"]),
            tempo=(float(entry["tempo"][0]), float(entry["tempo"][1])),
            core_roles=tuple(entry["core_roles"]),
            default_parts=tuple(entry["default_parts"]),
            progressions=tuple(tuple(p) for p in entry["progressions"]),
            swing=entry.get("swing", False),
            bass_idiom=entry.get("bass_idiom", "pattern"),
            patterns={k: entry[k] for k in _PATTERN_KEYS if k in entry},
            description=entry.get("description", entry["name"]),
            sevenths=_sevenths(entry),
            part_roles=tuple(sorted(entry.get("part_roles", {}).items())),
            drum_genre=entry.get("drum_genre") or None,
        )
    return styles


SEVENTHS = ("none", "dominant", "all")


def _sevenths(entry: dict) -> str:
    value = entry.get("sevenths", "none")
    if value not in SEVENTHS:
        raise ValueError(f"styles.toml: style {entry['name']!r} has sevenths = {value!r}; accepted: "
                         f"{', '.join(SEVENTHS)}")
    return value


def get(name: str) -> Style:
    """The named style; KeyError if unknown."""
    return catalogue()[name]

"""The style catalogue (engine/catalog/data/styles.toml): grooves, idioms, tempo ranges as data."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

# The drum kit's voices, in the drum model's order (engine/model/drums.py VOICE_NAMES; a test keeps the two equal).
KIT_VOICES = ("kick", "snare", "closed_hat", "open_hat", "low_tom", "mid_tom", "high_tom", "crash", "ride")
# Where in the form an ensemble hit plays (engine/compose/drums.py reads the form's sections and phrases).
FORM_PLACES = ("section_start", "phrase_start", "section_end", "phrase_end", "every_bar")
RULE_CELLS = "Xx-."  # a kit rule's cell: an accented hit, a hit, no hit, the model's choice


@dataclass(frozen=True)
class EnsembleHit:
    """A percussion stroke the form places (styles.toml ``[[style.drums.hits]]``)."""

    at: str                    # one of FORM_PLACES
    key: int                   # General MIDI percussion key (channel 10)
    steps: tuple[int, ...]     # 16th steps of the bar (those inside a shorter bar are played)
    velocity: tuple[int, int]  # the first and the last step's velocity: a swell rises from one to the other


@dataclass(frozen=True)
class Timeline:
    """A style's timeline (styles.toml ``[style.drums] timeline``): a clave, or jazz's hi-hat foot, of one or
    more 4/4 bars that runs through the whole clip, fills too, restarting where each phrase starts."""

    name: str      # what it is ("son clave 3-2")
    voice: str     # the kit voice the drum model plays it on (and hears it as): one of KIT_VOICES
    key: int       # the General MIDI percussion key its strokes are written at (37 side stick, 44 pedal hi-hat)
    cells: str     # 16 cells per bar of RULE_CELLS without "." (X accented stroke, x stroke, - rest)

    @property
    def bars(self) -> int:
        return len(self.cells) // 16


@dataclass(frozen=True)
class DrumStyle:
    """What a drum part plays in a style (styles.toml ``[style.drums]``; see engine/compose/drums.py)."""

    kit: bool = True                            # the drum model's kit plays
    rules: tuple[tuple[str, str], ...] = ()     # (kit voice, 16 cells of RULE_CELLS): the style's constraints
    hits: tuple[EnsembleHit, ...] = ()          # strokes the form places (beside the kit, or instead of it)
    time_keeper: str = ""                       # the kit voice the model's hi-hat strokes are played on ("" as learned)
    timeline: Timeline | None = None            # a pattern the kit plays through the clip (a clave)


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
    song: bool = False        # listeners expect a tune: a melody joins when the named parts leave none
    scale: tuple[int, ...] = ()  # semitones above the tonic every pitched note keeps to (pelog), else the key's
    drums: DrumStyle = DrumStyle()  # what its drum part plays: the kit with the style's rules, or ensemble hits
    registers: tuple[tuple[str, tuple[int, int]], ...] = ()  # (role, (low, high) MIDI): where the style plays it
    mode: str | None = None   # "minor": its idiom's mode, taken when the prompt names no key (before a mood's)

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
            song=bool(entry.get("song", False)),
            scale=_scale(entry),
            drums=_drums(entry),
            registers=_registers(entry),
            mode=_mode(entry),
        )
    return styles


MODES = ("major", "minor")


def _mode(entry: dict) -> str | None:
    mode = entry.get("mode")
    if mode is not None and mode not in MODES:
        raise ValueError(f"styles.toml: style {entry['name']!r} has mode = {mode!r}; accepted: {', '.join(MODES)}")
    return mode


REGISTER_ROLES = ("melody", "chords", "keys", "pad", "bass")


def _registers(entry: dict) -> tuple[tuple[str, tuple[int, int]], ...]:
    raw = entry.get("registers", {})
    out = []
    for role, span in raw.items():
        pitches = isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) for v in span)
        if role not in REGISTER_ROLES or not (pitches and 0 <= span[0] < span[1] <= 127):
            raise ValueError(f"styles.toml: style {entry['name']!r} has registers.{role} = {span!r}; accepted: a role "
                             f"({', '.join(REGISTER_ROLES)}) = [low, high], MIDI pitches 0-127, low < high")
        out.append((role, (span[0], span[1])))
    return tuple(sorted(out))


SEVENTHS = ("none", "dominant", "all")


def _drums(entry: dict) -> DrumStyle:
    raw = entry.get("drums", {})
    name = entry["name"]
    where = f"styles.toml: style {name!r} [style.drums]"
    unknown = set(raw) - {"kit", "rules", "hits", "time_keeper", "timeline"}
    if unknown:
        raise ValueError(f"{where} has {sorted(unknown)}; accepted: kit, rules, hits, time_keeper, timeline")
    rules = []
    for voice, cells in raw.get("rules", {}).items():
        if voice not in KIT_VOICES:
            raise ValueError(f"{where} rules name voice {voice!r}; accepted: {', '.join(KIT_VOICES)}")
        if len(cells) != 16 or set(cells) - set(RULE_CELLS):
            raise ValueError(f"{where} rules.{voice} = {cells!r}; accepted: 16 cells of X (accented hit), x (hit), "
                             "- (no hit), . (the model's choice)")
        rules.append((voice, cells))
    hits = []
    for hit in raw.get("hits", []):
        at, key, steps, velocity = hit.get("at"), hit.get("key"), hit.get("steps", [0]), hit.get("velocity", [100])
        if at not in FORM_PLACES:
            raise ValueError(f"{where} hit at = {at!r}; accepted: {', '.join(FORM_PLACES)}")
        if not isinstance(key, int) or not 0 <= key <= 127:
            raise ValueError(f"{where} hit key = {key!r}; accepted: a General MIDI percussion key 0-127")
        if not steps or not all(isinstance(s, int) and 0 <= s < 64 for s in steps):
            raise ValueError(f"{where} hit steps = {steps!r}; accepted: 16th steps 0-63 of the bar")
        if not 1 <= len(velocity) <= 2 or not all(isinstance(v, int) and 1 <= v <= 127 for v in velocity):
            raise ValueError(f"{where} hit velocity = {velocity!r}; accepted: [v] or [first, last], each 1-127")
        hits.append(EnsembleHit(at, key, tuple(steps), (velocity[0], velocity[-1])))
    time_keeper = raw.get("time_keeper", "")
    if time_keeper and time_keeper not in KIT_VOICES:
        raise ValueError(f"{where} time_keeper = {time_keeper!r}; accepted: one of {', '.join(KIT_VOICES)}")
    return DrumStyle(kit=bool(raw.get("kit", True)), rules=tuple(rules), hits=tuple(hits), time_keeper=time_keeper,
                     timeline=_timeline(raw.get("timeline"), where))


def _timeline(raw: dict | None, where: str) -> Timeline | None:
    if raw is None:
        return None
    unknown = set(raw) - {"name", "voice", "key", "cells"}
    if unknown:
        raise ValueError(f"{where} timeline has {sorted(unknown)}; accepted: name, voice, key, cells")
    voice, key, cells = raw.get("voice", "snare"), raw.get("key"), raw.get("cells", "")
    if voice not in KIT_VOICES:
        raise ValueError(f"{where} timeline voice = {voice!r}; accepted: {', '.join(KIT_VOICES)}")
    if not isinstance(key, int) or not 0 <= key <= 127:
        raise ValueError(f"{where} timeline key = {key!r}; accepted: a General MIDI percussion key 0-127")
    if not cells or len(cells) % 16 or set(cells) - set("Xx-") or not set(cells) & set("Xx"):
        raise ValueError(f"{where} timeline cells = {cells!r}; accepted: 16 cells per 4/4 bar (one or more bars) "
                         "of X (accented stroke), x (stroke), - (rest), with at least one stroke")
    return Timeline(str(raw.get("name", "")), voice, key, cells)


def _scale(entry: dict) -> tuple[int, ...]:
    value = tuple(entry.get("scale", ()))
    if value and (value[0] != 0 or list(value) != sorted(set(value)) or not all(0 <= v < 12 for v in value)):
        raise ValueError(f"styles.toml: style {entry['name']!r} has scale = {list(value)}; accepted: rising "
                         "semitones above the tonic, 0 first, each 0-11")
    return value


def _sevenths(entry: dict) -> str:
    value = entry.get("sevenths", "none")
    if value not in SEVENTHS:
        raise ValueError(f"styles.toml: style {entry['name']!r} has sevenths = {value!r}; accepted: "
                         f"{', '.join(SEVENTHS)}")
    return value


def get(name: str) -> Style:
    """The named style; KeyError if unknown."""
    return catalogue()[name]

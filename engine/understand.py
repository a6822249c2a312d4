"""Understand: prompt text + overrides -> MusicSpec, every field with its source.

Explicit attributes (tempo, key, meter, length, instruments, dynamics words) are parsed
from the text here. Style and mood are matched against the catalogues' words; fields
nobody named fall back to the style's or the embedded defaults, and say so.
"""
from __future__ import annotations

import random
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from engine import instruments, styles
from engine.config import (
    BARS_MAX, BARS_MIN, DEFAULTS, PROMPT_MAX_CHARS, SEED_MAX, START_BAR_MAX, START_BAR_MIN,
    TEMPO_MAX_BPM, TEMPO_MIN_BPM,
)
from engine.errors import SpecError
from engine.spec import MusicSpec, Part, Source
from engine.theory import MODES, Key, Meter, check_meter, parse_key, parse_meter


@dataclass(frozen=True)
class Overrides:
    """Values given beside the prompt (CLI flags, request fields); each wins over the text."""

    tempo_bpm: float | None = None
    key: str | None = None
    meter: str | None = None
    bars: int | None = None
    seed: int | None = None
    start_bar: int | None = None


# Tempo words, as quarter-note BPM.
TEMPO_WORDS: dict[str, float] = {
    "grave": 40, "largo": 50, "lento": 56, "very slow": 60, "adagio": 70, "slow": 72,
    "andante": 84, "moderato": 108, "mid-tempo": 100, "midtempo": 100, "allegretto": 116,
    "upbeat": 124, "allegro": 132, "fast": 140, "vivace": 150, "very fast": 170, "presto": 176,
}
# Meters a word implies.
METER_WORDS: dict[str, tuple[int, int]] = {
    "waltz": (3, 4), "minuet": (3, 4), "mazurka": (3, 4), "jig": (6, 8), "tarantella": (6, 8),
    "march": (4, 4), "reel": (4, 4), "slip jig": (9, 8),
}
ARC_WORDS: dict[str, str] = {
    "crescendo": "crescendo", "building": "crescendo", "builds": "crescendo",
    "build up": "crescendo", "building up": "crescendo", "rising": "crescendo",
    "swelling": "crescendo", "climax": "crescendo",
    "fading out": "decrescendo", "fade out": "decrescendo", "fades out": "decrescendo",
    "decrescendo": "decrescendo", "diminuendo": "decrescendo", "dying away": "decrescendo",
}
SWING_WORDS = ("swing", "swung", "shuffle", "triplet feel")
NO_SWING_WORDS = ("straight", "no swing")
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "twelve": 12, "sixteen": 16, "twenty": 20, "twenty-four": 24,
    "thirty-two": 32, "sixty-four": 64,
}

_NUM = r"(\d+(?:\.\d+)?|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + ")"
_TEMPO_RES = (
    re.compile(r"(\d+(?:\.\d+)?)\s*(?:bpm|beats per minute)\b"),
    re.compile(r"\btempo\s*(?:of\s*|=\s*|:\s*)?(\d+(?:\.\d+)?)\b"),
    re.compile(r"(?:♩|q|quarter)\s*=\s*(\d+(?:\.\d+)?)"),
)
_BARS_RE = re.compile(_NUM + r"[\s-]*(?:bars?|measures?)\b")
_SECONDS_RE = re.compile(_NUM + r"[\s-]*(?:seconds?|secs?|s)\b")
_METER_RE = re.compile(r"(?<![\d/])(\d{1,3})\s*/\s*(\d{1,3})(?![\d/])")
_MODE_NAMES = "|".join(sorted(set(MODES) | {"maj", "min", "ionian", "aeolian"}, key=len, reverse=True))
_KEY_WITH_MODE_RE = re.compile(
    r"\b([A-Ga-g](?:#|♯|b|♭|\s+sharp|\s+flat|-sharp|-flat)?)\s*(" + _MODE_NAMES + r")\b"
)
_KEY_SHORT_RE = re.compile(r"(?<![\w#])([A-G](?:#|♯|b|♭)?m)(?![\w#])")
_KEY_AFTER_IN_RE = re.compile(r"\b(?:in|key of)\s+([A-G](?:#|♯|b|♭)?)(?![\w#♯♭])")
_NEGATION_RE = re.compile(r"\b(?:no|without|minus)\s+(?:any\s+)?([a-z][a-z\- ]*?)(?=[,.;:!]|$| and | or | in | at | with )")


def _word_number(token: str) -> float:
    return float(NUMBER_WORDS.get(token, token) if token in NUMBER_WORDS else token)


def _find_words(text: str, words: list[str]) -> list[tuple[int, int, str]]:
    """Non-overlapping occurrences of ``words`` in ``text``, longest first, as (start, end, word)."""
    taken: list[tuple[int, int, str]] = []
    for word in sorted(words, key=len, reverse=True):
        for match in re.finditer(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text):
            if all(match.end() <= s or match.start() >= e for s, e, _ in taken):
                taken.append((match.start(), match.end(), word))
    return sorted(taken)


@lru_cache(maxsize=1)
def _moods() -> list[dict]:
    return tomllib.loads(resources.files("engine.data").joinpath("moods.toml").read_text())["mood"]


def check_prompt(prompt: str) -> str:
    """The prompt, stripped; SpecError if empty or over the limit."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise SpecError("prompt", f"is empty; describe the music in 1-{PROMPT_MAX_CHARS} characters")
    if len(prompt) > PROMPT_MAX_CHARS:
        raise SpecError("prompt", f"is {len(prompt)} characters; at most {PROMPT_MAX_CHARS} are accepted")
    return prompt.strip()


def check_tempo(bpm: float, field: str = "tempo_bpm") -> float:
    if not TEMPO_MIN_BPM <= bpm <= TEMPO_MAX_BPM:
        raise SpecError(field, f"tempo must be {TEMPO_MIN_BPM:g}-{TEMPO_MAX_BPM:g} BPM, got {bpm:g}")
    return float(bpm)


def check_bars(bars: int, field: str = "bars") -> int:
    if not BARS_MIN <= bars <= BARS_MAX:
        raise SpecError(field, f"bars must be {BARS_MIN}-{BARS_MAX}, got {bars}")
    return int(bars)


def check_start_bar(bar: int, field: str = "start_bar") -> int:
    if not START_BAR_MIN <= bar <= START_BAR_MAX:
        raise SpecError(field, f"start bar must be {START_BAR_MIN}-{START_BAR_MAX}, got {bar}")
    return int(bar)


def check_seed(seed: int, field: str = "seed") -> int:
    if not 0 <= seed <= SEED_MAX:
        raise SpecError(field, f"seed must be 0-{SEED_MAX}, got {seed}")
    return int(seed)


def _parse_tempo(text: str) -> tuple[float | None, Source | None]:
    for pattern in _TEMPO_RES:
        match = pattern.search(text)
        if match:
            return check_tempo(float(match.group(1))), Source.EXPLICIT
    found = _find_words(text, list(TEMPO_WORDS))
    if found:
        return TEMPO_WORDS[found[0][2]], Source.INFERRED
    return None, None


def _parse_key(text: str, original: str) -> Key | None:
    for pattern, source_text in ((_KEY_WITH_MODE_RE, text), (_KEY_SHORT_RE, original),
                                 (_KEY_AFTER_IN_RE, original)):
        match = pattern.search(source_text)
        if match:
            return parse_key(" ".join(g for g in match.groups() if g))
    return None


def _parse_meter(text: str) -> tuple[Meter | None, Source | None]:
    match = _METER_RE.search(text)
    if match:
        return check_meter(int(match.group(1)), int(match.group(2))), Source.EXPLICIT
    found = _find_words(text, list(METER_WORDS))
    if found:
        return Meter(*METER_WORDS[found[0][2]]), Source.INFERRED
    return None, None


def _parse_length(text: str) -> tuple[int | None, float | None]:
    """Bars, or seconds when the length is given in time."""
    match = _BARS_RE.search(text)
    if match:
        return check_bars(int(_word_number(match.group(1)))), None
    match = _SECONDS_RE.search(text)
    if match:
        return None, _word_number(match.group(1))
    return None, None


def _excluded_roles(text: str) -> set[str]:
    excluded = set()
    for match in _NEGATION_RE.finditer(text):
        for start, end, word in _find_words(match.group(1), instruments.all_words()):
            excluded.update(i.role for i in instruments.lookup_all(word))
    if re.search(r"\bdrumless\b", text):
        excluded.add("drums")
    return excluded


def _style(text: str) -> tuple[styles.Style, Source, tuple[int, int]]:
    """The style the text names, its source, and the span of the words that named it."""
    keywords = {kw: style for style in styles.catalogue().values() for kw in style.keywords}
    found = _find_words(text, list(keywords))
    if found:
        # The longest keyword names the style most precisely ("drum and bass" over "bass").
        start, end, word = max(found, key=lambda hit: hit[1] - hit[0])
        return keywords[word], Source.INFERRED, (start, end)
    return styles.get(DEFAULTS.style), Source.DEFAULT, (0, 0)


def _mood(text: str) -> tuple[dict, Source]:
    words = {word: mood for mood in _moods() for word in mood["words"]}
    found = _find_words(text, list(words))
    if found:
        return words[found[0][2]], Source.INFERRED
    return next(m for m in _moods() if m["name"] == DEFAULTS.mood), Source.DEFAULT


def _parts(text: str, style: styles.Style, style_span: tuple[int, int],
           excluded: set[str]) -> tuple[list[Part], Source]:
    # Words inside a negation ("no drums") or inside a style's name ("drum and bass")
    # do not name a part; a style keyword that is itself an instrument word ("walking bass") does.
    skip = [m.span(1) for m in _NEGATION_RE.finditer(text)]
    if text[style_span[0]:style_span[1]] not in instruments.all_words():
        skip.append(style_span)
    named: list[instruments.Instrument] = []
    for start, end, word in _find_words(text, instruments.all_words()):
        if any(s <= start and end <= e for s, e in skip):
            continue
        found = instruments.lookup_all(word)
        # An ensemble may double an instrument; two words for one instrument name one part.
        if len(found) > 1 or found[0] not in named:
            named.extend(found)
    source = Source.EXPLICIT
    if not named:
        named = [instruments.lookup(word) for word in style.default_parts]
        source = Source.INFERRED
    solo = re.search(r"\b(solo|unaccompanied|alone)\b", text) is not None
    if not solo:
        present = {i.role for i in named}
        for role in style.core_roles:
            if role not in present:
                named.append(_instrument_for_role(style, role))
    chosen = [i for i in named if i.role not in excluded]
    pitched = [i for i in chosen if not i.is_drum]
    has_melody = any(i.role == "melody" for i in pitched)
    parts: list[Part] = []
    used: set[str] = set()
    for instrument in chosen:
        role = instrument.role
        if role == "keys" and len(pitched) > 1 and has_melody:
            role = "chords"
        name = instrument.part
        n = 2
        while name in used:
            name, n = f"{instrument.part}_{n}", n + 1
        used.add(name)
        parts.append(Part(name=name, role=role, instrument=instrument.name,
                          program=instrument.program, is_drum=instrument.is_drum,
                          low=instrument.low, high=instrument.high))
    return parts, source


def _instrument_for_role(style: styles.Style, role: str) -> instruments.Instrument:
    for word in style.default_parts:
        instrument = instruments.lookup(word)
        if instrument.role == role:
            return instrument
    return instruments.lookup({"drums": "drums", "bass": "bass", "chords": "piano",
                               "melody": "synth lead", "pad": "pad"}[role])


def understand(prompt: str, overrides: Overrides = Overrides()) -> MusicSpec:
    """Resolve a prompt and overrides into a MusicSpec; SpecError names any bad field."""
    prompt = check_prompt(prompt)
    text = prompt.lower()
    sources: dict[str, Source] = {}
    notes: list[str] = []

    style, sources["style"], style_span = _style(text)
    mood, sources["mood"] = _mood(text)

    if overrides.tempo_bpm is not None:
        tempo, sources["tempo_bpm"] = check_tempo(overrides.tempo_bpm), Source.EXPLICIT
    else:
        tempo, sources["tempo_bpm"] = _parse_tempo(text)
        if tempo is None:
            if sources["style"] is Source.INFERRED:
                tempo, sources["tempo_bpm"] = style.typical_tempo, Source.INFERRED
            elif sources["mood"] is Source.INFERRED:
                tempo, sources["tempo_bpm"] = float(mood["tempo"]), Source.INFERRED
            else:
                tempo, sources["tempo_bpm"] = DEFAULTS.tempo_bpm, Source.DEFAULT

    if overrides.key is not None:
        key, sources["key"] = parse_key(overrides.key), Source.EXPLICIT
    else:
        key = _parse_key(text, prompt)
        sources["key"] = Source.EXPLICIT
        if key is None:
            if sources["mood"] is Source.INFERRED and mood["mode"] == "minor":
                key, sources["key"] = Key("A", "minor"), Source.INFERRED
            else:
                key, sources["key"] = Key(DEFAULTS.tonic, DEFAULTS.mode), Source.DEFAULT

    if overrides.meter is not None:
        meter, sources["meter"] = parse_meter(overrides.meter), Source.EXPLICIT
    else:
        meter, sources["meter"] = _parse_meter(text)
        if meter is None:
            meter, sources["meter"] = Meter(*DEFAULTS.meter), Source.DEFAULT

    if overrides.bars is not None:
        bars, sources["bars"] = check_bars(overrides.bars), Source.EXPLICIT
    else:
        bars, seconds = _parse_length(text)
        sources["bars"] = Source.EXPLICIT
        if bars is None and seconds is not None:
            bar_seconds = meter.quarters_per_bar * 60.0 / tempo
            bars = check_bars(max(1, round(seconds / bar_seconds)))
            notes.append(f"{seconds:g} seconds at {tempo:g} BPM in {meter} is {bars} bars")
        if bars is None:
            bars, sources["bars"] = DEFAULTS.bars, Source.DEFAULT

    if overrides.start_bar is not None:
        start_bar, sources["start_bar"] = check_start_bar(overrides.start_bar), Source.CONTEXT
    else:
        start_bar, sources["start_bar"] = DEFAULTS.start_bar, Source.DEFAULT

    if overrides.seed is not None:
        seed, sources["seed"] = check_seed(overrides.seed), Source.EXPLICIT
    else:
        seed, sources["seed"] = random.SystemRandom().randrange(2**31), Source.DEFAULT

    found_arc = _find_words(text, list(ARC_WORDS))
    arc, sources["arc"] = (ARC_WORDS[found_arc[0][2]], Source.EXPLICIT) if found_arc else (DEFAULTS.arc, Source.DEFAULT)

    if _find_words(text, list(NO_SWING_WORDS)):
        swing, sources["swing"] = False, Source.EXPLICIT
    elif _find_words(text, list(SWING_WORDS)):
        swing, sources["swing"] = True, Source.EXPLICIT
    else:
        swing, sources["swing"] = style.swing, Source.INFERRED if sources["style"] is Source.INFERRED else Source.DEFAULT

    parts, sources["parts"] = _parts(text, style, style_span, _excluded_roles(text))
    if not parts:
        raise SpecError("prompt", "leaves no instrument to play; name at least one that is not excluded")

    return MusicSpec(
        prompt=prompt, tempo_bpm=tempo, key=key, meter=meter, bars=bars, start_bar=start_bar,
        parts=parts, style=style.name, mood=mood["name"], arc=arc, swing=swing, seed=seed,
        sources=sources, notes=notes,
    )
